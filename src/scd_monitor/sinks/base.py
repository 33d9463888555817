"""The one protocol every sink implements, and what it is given to deliver.

A sink delivers one report to one receiver, once per call, and says how it went only
by returning (delivered) or raising :class:`~scd_monitor.errors.SinkError` with
``permanent`` set (the receiver refused it for good: 4xx, bad address, bad
credentials) or not (try again later: 5xx, timeouts, connection errors). It never
retries by itself: retries, backoff and the record of attempts are the outbox's
(:mod:`scd_monitor.incidents.outbox`). Every payload carries an idempotency key, the same
on every attempt, so that a receiver can drop a report it already has.

Each sink also owns its configuration model (the catalog's ``incidents.sinks[]`` entry
of its ``kind``), built on :class:`SinkConfigBase`: it names its secrets and TLS options
and resolves them (:meth:`SinkConfigBase.resolve`); the catalog loader asks through
:func:`scd_monitor.catalog.incidents.secret_problems` and ``resolve_secrets``. An HMAC
key (:class:`HmacSecretRef`) is also checked for its form there, so that a malformed
``whsec_`` key is a ``file:line`` error at start-up, not a failure at the first delivery.
"""

from __future__ import annotations

import base64
import binascii
import os
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Protocol, Self

from pydantic import SecretStr

from scd_monitor.config.types import SecretRef, Slug, StrictModel, TlsOptions
from scd_monitor.errors import SinkError

__all__ = [
    "DeliveryPayload",
    "HmacSecretRef",
    "RetryLater",
    "Sink",
    "SinkConfigBase",
    "SinkError",
    "hmac_key",
    "read_secret",
    "secret_problem",
]


class SinkConfigBase(StrictModel):
    """What every sink's configuration has, and how it hands over its secrets."""

    id: Slug

    def secrets(self) -> list[tuple[str, SecretRef]]:
        """``(field, reference)`` for every secret the sink needs (none by default)."""
        return []

    def tls_options(self) -> TlsOptions | None:
        """The TLS options the sink connects with, when it connects with TLS."""
        return None

    def resolve(self, base_dir: Path) -> Self:
        """A copy with every secret read and relative paths made absolute against
        ``base_dir`` (the catalog's folder). Check :func:`secret_problem` first: a
        missing secret raises ``KeyError``/``OSError``."""
        return self


WHSEC_PREFIX = "whsec_"


def hmac_key(text: str) -> bytes:
    """The key bytes of an HMAC secret as written: ``whsec_<base64>`` (the Standard
    Webhooks form: the base64 decoded, padding optional) or anything else (its UTF-8
    bytes). ``ValueError`` for an empty key or bad base64; the message never quotes the
    secret."""
    if text.startswith(WHSEC_PREFIX):
        encoded = text[len(WHSEC_PREFIX) :].strip()
        try:
            key = base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)
        except (binascii.Error, ValueError):
            raise ValueError(f"not valid base64 after {WHSEC_PREFIX!r}") from None
    else:
        try:  # the environment's undecodable bytes come back as they were
            key = text.encode("utf-8", "surrogateescape")
        except UnicodeEncodeError:
            raise ValueError("the key is not valid text") from None
    if not key:
        raise ValueError("the key is empty")
    return key


class HmacSecretRef(SecretRef):
    """A :class:`SecretRef` holding an HMAC key (see :func:`hmac_key` for its forms)."""

    def key(self) -> bytes:
        """The key bytes (the value must have been read, and be well formed)."""
        if self.value is None:
            raise ValueError("the secret has not been read (resolve_secrets)")
        return hmac_key(self.value.get_secret_value())


def secret_problem(ref: SecretRef, base_dir: Path) -> str | None:
    """Why ``ref`` cannot be read (or, for an :class:`HmacSecretRef`, is no usable key),
    or ``None``."""
    if ref.env is not None and ref.env not in os.environ:
        return f"environment variable {ref.env!r} is not set"
    if ref.file is not None and not (base_dir / ref.file).is_file():
        return f"secret file not found: {base_dir / ref.file}"
    if isinstance(ref, HmacSecretRef):
        try:
            read = read_secret(ref, base_dir)
            assert read.value is not None
            hmac_key(read.value.get_secret_value())
        except (OSError, UnicodeDecodeError) as exc:
            return f"secret cannot be read: {type(exc).__name__}"
        except ValueError as exc:
            return f"not a usable HMAC key: {exc}"
    return None


def read_secret(ref: SecretRef, base_dir: Path) -> SecretRef:
    """``ref`` with its ``value`` read from the environment or the file (stripped)."""
    if ref.env is not None:
        raw = os.environ[ref.env]
    else:
        assert ref.file is not None
        raw = (base_dir / ref.file).read_text(encoding="utf-8").strip()
    return ref.model_copy(update={"value": SecretStr(raw)})


@dataclass(frozen=True, slots=True)
class DeliveryPayload:
    """One report for one sink: the same bytes on every attempt."""

    idempotency_key: str
    """``SCD-YYYY-NNNNNN.<event seq>.<sink id>``: unique per (incident, event, sink)."""
    incident: str
    report_id: str
    event: str
    """``opened``, ``updated`` or ``resolved``."""
    audience: str
    recipient: str | None
    """The provider's contact for the provider audience; otherwise the sink's own."""
    subject: str
    body: bytes
    """The report's JSON document (UTF-8)."""
    text: str
    html: str
    attempt: int
    """1 on the first attempt."""


class RetryLater(SinkError):
    """A transient failure with the receiver's own idea of when to retry
    (``Retry-After``); the outbox waits at least that long."""

    def __init__(self, message: str, *, retry_after: timedelta) -> None:
        super().__init__(message, permanent=False)
        self.retry_after = retry_after


class Sink(Protocol):
    """Where reports go: a webhook, a mailbox, a directory."""

    @property
    def name(self) -> str:
        """The sink's id in the catalog (``incidents.sinks[].id``)."""
        ...

    async def deliver(self, payload: DeliveryPayload) -> None:
        """Deliver ``payload`` once; return when the receiver has it.

        Raises :class:`SinkError` (``permanent=True`` when retrying cannot help). Must
        not hang: every network operation is bounded by the sink's timeout.
        """
        ...
