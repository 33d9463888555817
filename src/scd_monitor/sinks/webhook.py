"""The webhook sink: the report's JSON POSTed to a URL, signed, with an idempotency key.

Signing follows the Standard Webhooks convention (https://www.standardwebhooks.com/):

* ``webhook-id``: the delivery's stable id, the same on every attempt of one (incident,
  event, sink), for the receiver to drop copies: the idempotency key with its dots made
  underscores (:func:`webhook_id`; the convention wants no ``.`` in an id), e.g.
  ``SCD-2026-000001_1_mintic-webhook``;
* ``webhook-timestamp``: the attempt's time, integer seconds since the Unix epoch;
* ``webhook-signature``: ``v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">``, one
  per valid key, space-separated: the sink's ``secret`` and, during a key rotation, each
  of its ``previous_secrets`` whose ``until`` has not passed.

A receiver recomputes the HMAC with its key(s), compares in constant time, refuses a
timestamp more than a tolerance (5 minutes) away from its clock, and applies each id once
(:func:`check_signature` is that check, minus the id memory). A captured request then
verifies for 5 minutes at most, and only once. Keys: ``whsec_<base64>`` (the convention's
form) or any other text, used as its UTF-8 bytes (:func:`~scd_monitor.sinks.base.hmac_key`).

Also sent: ``Idempotency-Key`` (the idempotency key itself), ``X-SCD-Incident``,
``X-SCD-Report``, ``X-SCD-Event``, ``X-SCD-Audience``, ``X-SCD-Attempt``; and, while
``legacy_signature`` is true (the default, for receivers not yet migrated), the
deprecated ``X-SCD-Signature: sha256=<hex>``, the HMAC-SHA256 of the body alone with the
``secret`` as written: it has no timestamp, so it can be replayed. Redirects are not
followed. Header values are ASCII (:func:`_ascii`); the catalog's ``headers`` are checked
at load (a token name, printable ASCII value, none of the names the sink sets).

Outcomes: 2xx delivered; 408, 409, 425, 429 and 5xx are transient (``Retry-After``
honoured); any other status (3xx, 4xx) is permanent. Failures without an answer are
classified by :func:`scd_monitor.net.errors.classify`: timeouts, DNS, connection and TLS
errors are transient; a request that cannot be built or sent at all is permanent. Of an
answer only the status, ``Retry-After`` and at most 4 KiB of an error body (for the
message, cleaned and cut to 200 characters) are read.

TLS: the monitor's one trust policy (:mod:`scd_monitor.net.tls`): the sink's
``tls.ca_file`` or certifi's bundle, ``tls.verify``, a client certificate for mutual
TLS, and ``tls.server_name`` for SNI and the certificate check.

Configuration: :class:`WebhookSinkConfig` (``kind: webhook``).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import hmac
import math
import re
import ssl
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Annotated, Literal

import httpx
from pydantic import AfterValidator, AwareDatetime, Field

from scd_monitor import __version__
from scd_monitor.clock import Clock, SystemClock
from scd_monitor.config.durations import Duration
from scd_monitor.config.types import HttpUrlText, SecretRef, TlsOptions
from scd_monitor.errors import SinkError
from scd_monitor.logs import redact_evidence
from scd_monitor.net.errors import classify
from scd_monitor.net.tls import ContextCache, httpx_extensions, with_absolute_files
from scd_monitor.sinks.base import (
    DeliveryPayload,
    HmacSecretRef,
    RetryLater,
    SinkConfigBase,
    read_secret,
)
from scd_monitor.sinks.text import clean_text

__all__ = [
    "ID_HEADER",
    "LEGACY_SIGNATURE_HEADER",
    "SIGNATURE_HEADER",
    "TIMESTAMP_HEADER",
    "TOLERANCE",
    "PreviousSecret",
    "WebhookSink",
    "WebhookSinkConfig",
    "check_signature",
    "legacy_signature",
    "sign",
    "webhook_id",
]

ID_HEADER = "webhook-id"
TIMESTAMP_HEADER = "webhook-timestamp"
SIGNATURE_HEADER = "webhook-signature"
LEGACY_SIGNATURE_HEADER = "X-SCD-Signature"
TOLERANCE = timedelta(minutes=5)
"""How far from a receiver's clock a ``webhook-timestamp`` may be (the convention's 5 min)."""

_TRANSIENT_4XX = frozenset({408, 409, 425, 429})
_MAX_RETRY_AFTER = timedelta(hours=1)
_PLAIN = TlsOptions(verify=False)
_SNIPPET_BYTES = 4096
_SNIPPET_CHARS = 200

_TOKEN = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
_VALUE = re.compile(r"^[\x21-\x7e](?:[\x20-\x7e\t]*[\x21-\x7e])?$|^$")
_RESERVED = frozenset(
    {
        "content-type",
        "content-length",
        "content-encoding",
        "transfer-encoding",
        "connection",
        "host",
        "user-agent",
        "idempotency-key",
    }
)


def _header_name(name: str) -> str:
    if not _TOKEN.match(name):
        raise ValueError(f"{name!r} is not a valid HTTP header name")
    lower = name.lower()
    if lower in _RESERVED or lower.startswith(("webhook-", "x-scd-")):
        raise ValueError(f"header {name!r} is set by the sink itself")
    return name


def _header_value(value: str) -> str:
    if not _VALUE.match(value):
        raise ValueError("a header value must be printable ASCII on one line, unpadded")
    return value


HeaderName = Annotated[str, AfterValidator(_header_name)]
HeaderValue = Annotated[str, AfterValidator(_header_value)]


def webhook_id(idempotency_key: str) -> str:
    """The ``webhook-id`` of a delivery: its idempotency key with ``.`` made ``_`` (one to
    one: the key's parts, ``SCD-YYYY-NNNNNN``, the event's number and a sink slug, hold no
    ``_``)."""
    return idempotency_key.replace(".", "_")


def sign(key: bytes, msg_id: str, timestamp: int, body: bytes) -> str:
    """One ``webhook-signature`` entry: ``v1,`` and the base64 HMAC-SHA256 of
    ``{msg_id}.{timestamp}.{body}`` with ``key``."""
    content = f"{msg_id}.{timestamp}.".encode() + body
    digest = hmac.new(key, content, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode("ascii")


def legacy_signature(secret: bytes, body: bytes) -> str:
    """The deprecated ``X-SCD-Signature``: ``sha256=`` and the HMAC-SHA256 hex of the body
    alone (replayable: no timestamp, no id)."""
    return "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()


def check_signature(
    keys: Sequence[bytes],
    headers: Mapping[str, str],
    body: bytes,
    *,
    now: datetime,
    tolerance: timedelta = TOLERANCE,
) -> str | None:
    """What a receiver checks, statelessly: ``None`` when a ``v1`` signature of
    ``headers`` matches one of ``keys`` and the timestamp is within ``tolerance`` of
    ``now``, else why not. (The receiver must also remember the ids it applied, for at
    least the tolerance, and drop a repeated one.)"""
    lower = {k.lower(): v for k, v in headers.items()}
    msg_id = lower.get(ID_HEADER)
    stamp = lower.get(TIMESTAMP_HEADER)
    signatures = lower.get(SIGNATURE_HEADER)
    if not (msg_id and stamp and signatures):
        return "missing webhook-id, webhook-timestamp or webhook-signature"
    if not stamp.isascii() or not stamp.isdigit() or len(stamp) > 12:
        return "malformed webhook-timestamp"
    age = now.timestamp() - int(stamp)
    if age > tolerance.total_seconds():
        return "timestamp too old"
    if -age > tolerance.total_seconds():
        return "timestamp too new"
    expected = [
        base64.b64decode(sign(key, msg_id, int(stamp), body).partition(",")[2]) for key in keys
    ]
    for entry in signatures.split(" "):
        version, _, value = entry.partition(",")
        if version != "v1":
            continue
        try:
            given = base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            continue
        if any(hmac.compare_digest(given, e) for e in expected):
            return None
    return "no matching signature"


class PreviousSecret(HmacSecretRef):
    """A key still signed with during a rotation: until ``until`` (aware ISO-8601), or
    until it is removed from the catalog."""

    until: AwareDatetime | None = None


class WebhookSinkConfig(SinkConfigBase):
    """JSON POST of the report, signed the Standard Webhooks way (see the module)."""

    kind: Literal["webhook"]
    url: HttpUrlText
    secret: HmacSecretRef
    previous_secrets: list[PreviousSecret] = Field(default_factory=list)
    """Keys also signed with during a rotation (one ``v1,`` signature each)."""
    legacy_signature: bool = True
    """Also send the deprecated, replayable ``X-SCD-Signature`` (body only, ``secret``)."""
    timeout: Duration = timedelta(seconds=10)
    headers: dict[HeaderName, HeaderValue] = Field(default_factory=dict)
    tls: TlsOptions = TlsOptions()

    def secrets(self) -> list[tuple[str, SecretRef]]:
        out: list[tuple[str, SecretRef]] = [("secret", self.secret)]
        return out + [("previous_secrets", p) for p in self.previous_secrets]

    def tls_options(self) -> TlsOptions:
        return self.tls

    def resolve(self, base_dir: Path) -> WebhookSinkConfig:
        return self.model_copy(
            update={
                "secret": read_secret(self.secret, base_dir),
                "previous_secrets": [read_secret(p, base_dir) for p in self.previous_secrets],
                "tls": with_absolute_files(self.tls, base_dir),
            }
        )


def _retry_after(value: str | None, now: datetime) -> timedelta | None:
    if not value:
        return None
    value = value.strip()
    if value.isascii() and value.isdigit():  # more than 9 digits is years: the cap anyway
        seconds = timedelta(seconds=int(value)) if len(value) <= 9 else _MAX_RETRY_AFTER
    else:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError, OverflowError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = when - now
    return max(timedelta(0), min(seconds, _MAX_RETRY_AFTER))


def _ascii(value: str) -> str:
    """An HTTP header value from our own data, made safe whatever it holds."""
    text = clean_text(value, limit=1000, one_line=True)
    return text.encode("ascii", "backslashreplace").decode("ascii")


async def _error_head(response: httpx.Response) -> str:
    """At most the first 4 KiB of an error answer's body, as one clean line (nothing for
    an encoded body: a small compressed body can expand enormously)."""
    if response.headers.get("content-encoding", "identity").strip().lower() not in ("", "identity"):
        return ""
    raw = bytearray()
    try:
        async for chunk in response.aiter_raw():
            raw += chunk
            if len(raw) >= _SNIPPET_BYTES:
                break
    except httpx.HTTPError:
        pass  # the status is the answer; its body is only decoration
    text = bytes(raw[:_SNIPPET_BYTES]).decode("utf-8", "replace")
    return clean_text(text, limit=_SNIPPET_CHARS, one_line=True)


class WebhookSink:
    """POST the report to one URL."""

    def __init__(
        self,
        config: WebhookSinkConfig,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        contexts: ContextCache | None = None,
        clock: Clock | None = None,
    ) -> None:
        refs: list[SecretRef] = [config.secret, *config.previous_secrets]
        if any(ref.value is None for ref in refs):
            raise ValueError(f"sink {config.id!r}: the secret has not been read (resolve_secrets)")
        self._config = config
        self._key = config.secret.key()
        value = config.secret.value
        assert value is not None
        self._legacy_key = value.get_secret_value().encode("utf-8", "surrogateescape")
        self._previous = [(p.key(), p.until) for p in config.previous_secrets]
        self._transport = transport
        self._contexts = contexts if contexts is not None else ContextCache(max_size=4)
        self._clock: Clock = clock if clock is not None else SystemClock()

    @property
    def name(self) -> str:
        return self._config.id

    def keys(self, now: datetime) -> list[bytes]:
        """The keys signed with at ``now``: the secret, then each previous one still valid."""
        out = [self._key]
        for key, until in self._previous:
            if (until is None or now < until) and key not in out:
                out.append(key)
        return out

    def headers(self, payload: DeliveryPayload, now: datetime) -> dict[str, str]:
        """Every header of the request for ``payload`` made at ``now``."""
        config = self._config
        msg_id = _ascii(webhook_id(payload.idempotency_key))  # signed exactly as sent
        timestamp = math.floor(now.timestamp())
        signatures = " ".join(sign(k, msg_id, timestamp, payload.body) for k in self.keys(now))
        own = {
            "Content-Type": "application/json; charset=utf-8",
            "User-Agent": f"scd-monitor/{__version__}",
            ID_HEADER: msg_id,
            TIMESTAMP_HEADER: str(timestamp),
            SIGNATURE_HEADER: signatures,
            "Idempotency-Key": payload.idempotency_key,
            "X-SCD-Incident": payload.incident,
            "X-SCD-Report": payload.report_id,
            "X-SCD-Event": payload.event,
            "X-SCD-Audience": payload.audience,
            "X-SCD-Attempt": str(payload.attempt),
        }
        if config.legacy_signature:
            own[LEGACY_SIGNATURE_HEADER] = legacy_signature(self._legacy_key, payload.body)
        return {**config.headers, **{name: _ascii(value) for name, value in own.items()}}

    async def deliver(self, payload: DeliveryPayload) -> None:
        config = self._config
        timeout = config.timeout.total_seconds()
        https = config.url.startswith("https:")
        try:
            # Plain HTTP never speaks TLS (redirects are not followed): the cached
            # non-verifying context spares httpx building a verifying one per delivery.
            verify = self._contexts.get(config.tls if https else _PLAIN)
        except (OSError, ssl.SSLError) as exc:
            raise SinkError(f"TLS settings unusable: {exc}", permanent=True) from exc
        extensions = httpx_extensions(config.tls) if https else {}
        where = redact_evidence(config.url)
        try:
            headers = self.headers(payload, self._clock.now())
            status, retry_after, snippet = await asyncio.wait_for(
                self._post(headers, payload.body, verify, extensions), timeout
            )
        except (TimeoutError, httpx.TimeoutException) as exc:
            raise SinkError(
                f"POST {where}: no answer within {timeout:g}s", permanent=False
            ) from exc
        except httpx.HTTPError as exc:
            failure = classify(exc)
            raise SinkError(
                f"POST {where}: {failure.kind}: {redact_evidence(failure.message)}",
                permanent=not failure.transient,
            ) from exc
        except (ValueError, TypeError) as exc:  # will fail the same way every time
            raise SinkError(
                f"POST {where}: the request cannot be built: {type(exc).__name__}",
                permanent=True,
            ) from exc
        if 200 <= status < 300:
            return
        snippet = redact_evidence(snippet) or ""
        message = f"POST {where}: HTTP {status}" + (f": {snippet}" if snippet else "")
        if status >= 500 or status in _TRANSIENT_4XX:
            after = _retry_after(retry_after, self._clock.now())
            if after is not None:
                raise RetryLater(message, retry_after=after)
            raise SinkError(message, permanent=False)
        raise SinkError(message, permanent=True)

    async def _post(
        self,
        headers: dict[str, str],
        body: bytes,
        verify: ssl.SSLContext,
        extensions: dict[str, object],
    ) -> tuple[int, str | None, str]:
        """``(status, Retry-After, error body head)``; a 2xx body is never read."""
        async with (
            httpx.AsyncClient(
                timeout=httpx.Timeout(self._config.timeout.total_seconds()),
                verify=verify,
                follow_redirects=False,
                transport=self._transport,
                trust_env=False,
            ) as client,
            client.stream(
                "POST", self._config.url, content=body, headers=headers, extensions=extensions
            ) as response,
        ):
            status = response.status_code
            if 200 <= status < 300:
                return status, None, ""
            return status, response.headers.get("retry-after"), await _error_head(response)
