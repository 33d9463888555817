"""The webhook sink: the report's JSON POSTed to a URL, signed, with an idempotency key.

Headers: ``X-SCD-Signature: sha256=<hex>`` — HMAC-SHA256 of the exact body bytes with
the shared secret; ``Idempotency-Key`` — the same on every attempt of one (incident,
event, sink); ``X-SCD-Incident``, ``X-SCD-Report``, ``X-SCD-Event``, ``X-SCD-Audience``,
``X-SCD-Attempt``. Redirects are not followed.

Outcomes: 2xx delivered; 408, 409, 425, 429 and 5xx are transient (``Retry-After``
honoured); any other status (3xx, 4xx) is permanent. Failures without an answer are
classified by :func:`scd_monitor.net.errors.classify`: timeouts, DNS, connection and TLS
errors are transient; a request that cannot be sent at all (an illegal header value in
the catalog) is permanent.

TLS: the monitor's one trust policy (:mod:`scd_monitor.net.tls`): the sink's
``tls.ca_file`` or certifi's bundle, ``tls.verify``, a client certificate for mutual
TLS, and ``tls.server_name`` for SNI and the certificate check.

Configuration: :class:`WebhookSinkConfig` (``kind: webhook``).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import ssl
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Literal

import httpx
from pydantic import Field

from scd_monitor import __version__
from scd_monitor.config.durations import Duration
from scd_monitor.config.types import HttpUrlText, SecretRef, TlsOptions
from scd_monitor.errors import SinkError
from scd_monitor.logs import redact_evidence
from scd_monitor.net.errors import classify
from scd_monitor.net.tls import ContextCache, httpx_extensions, with_absolute_files
from scd_monitor.sinks.base import DeliveryPayload, RetryLater, SinkConfigBase, read_secret

__all__ = [
    "SIGNATURE_HEADER",
    "WebhookSink",
    "WebhookSinkConfig",
    "sign",
    "verify_signature",
]

SIGNATURE_HEADER = "X-SCD-Signature"
_TRANSIENT_4XX = frozenset({408, 409, 425, 429})
_MAX_RETRY_AFTER = timedelta(hours=1)
_PLAIN = TlsOptions(verify=False)


def sign(secret: bytes, body: bytes) -> str:
    """The signature header's value: ``sha256=`` and the HMAC-SHA256 hex of ``body``."""
    return "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()


def verify_signature(secret: bytes, body: bytes, header: str | None) -> bool:
    """What a receiver does: constant-time comparison of the header with the body's HMAC."""
    return header is not None and hmac.compare_digest(sign(secret, body), header)


class WebhookSinkConfig(SinkConfigBase):
    """JSON POST of the report, signed with HMAC-SHA256 (``X-SCD-Signature``)."""

    kind: Literal["webhook"]
    url: HttpUrlText
    secret: SecretRef
    timeout: Duration = timedelta(seconds=10)
    headers: dict[str, str] = Field(default_factory=dict)
    tls: TlsOptions = TlsOptions()

    def secrets(self) -> list[tuple[str, SecretRef]]:
        return [("secret", self.secret)]

    def tls_options(self) -> TlsOptions:
        return self.tls

    def resolve(self, base_dir: Path) -> WebhookSinkConfig:
        return self.model_copy(
            update={
                "secret": read_secret(self.secret, base_dir),
                "tls": with_absolute_files(self.tls, base_dir),
            }
        )


def _retry_after(value: str | None, now: datetime) -> timedelta | None:
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        seconds = timedelta(seconds=int(value))
    else:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = when - now
    return max(timedelta(0), min(seconds, _MAX_RETRY_AFTER))


class WebhookSink:
    """POST the report to one URL."""

    def __init__(
        self,
        config: WebhookSinkConfig,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        contexts: ContextCache | None = None,
    ) -> None:
        if config.secret.value is None:
            raise ValueError(f"sink {config.id!r}: the secret has not been read (resolve_secrets)")
        self._config = config
        self._secret = config.secret.value.get_secret_value().encode("utf-8")
        self._transport = transport
        self._contexts = contexts if contexts is not None else ContextCache(max_size=4)

    @property
    def name(self) -> str:
        return self._config.id

    async def deliver(self, payload: DeliveryPayload) -> None:
        config = self._config
        timeout = config.timeout.total_seconds()
        headers = {
            **config.headers,
            "Content-Type": "application/json; charset=utf-8",
            "User-Agent": f"scd-monitor/{__version__}",
            SIGNATURE_HEADER: sign(self._secret, payload.body),
            "Idempotency-Key": payload.idempotency_key,
            "X-SCD-Incident": payload.incident,
            "X-SCD-Report": payload.report_id,
            "X-SCD-Event": payload.event,
            "X-SCD-Audience": payload.audience,
            "X-SCD-Attempt": str(payload.attempt),
        }
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
            async with httpx.AsyncClient(
                timeout=httpx.Timeout(timeout),
                verify=verify,
                follow_redirects=False,
                transport=self._transport,
                trust_env=False,
            ) as client:
                response = await asyncio.wait_for(
                    client.post(
                        config.url, content=payload.body, headers=headers, extensions=extensions
                    ),
                    timeout,
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
        status = response.status_code
        if 200 <= status < 300:
            return
        snippet = redact_evidence(response.text[:200].strip()) or ""
        message = f"POST {where}: HTTP {status}" + (f": {snippet}" if snippet else "")
        if status >= 500 or status in _TRANSIENT_4XX:
            after = _retry_after(response.headers.get("retry-after"), datetime.now(UTC))
            if after is not None:
                raise RetryLater(message, retry_after=after)
            raise SinkError(message, permanent=False)
        raise SinkError(message, permanent=True)
