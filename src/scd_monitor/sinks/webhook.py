"""The webhook sink: the report's JSON POSTed to a URL, signed, with an idempotency key.

Headers: ``X-SCD-Signature: sha256=<hex>`` — HMAC-SHA256 of the exact body bytes with
the shared secret; ``Idempotency-Key`` — the same on every attempt of one (incident,
event, sink); ``X-SCD-Incident``, ``X-SCD-Report``, ``X-SCD-Event``, ``X-SCD-Audience``,
``X-SCD-Attempt``. Redirects are not followed.

Outcomes: 2xx delivered; 408, 409, 425, 429 and 5xx, timeouts and connection errors
are transient (``Retry-After`` honoured); any other status (3xx, 4xx) is permanent.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import ssl
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime

import httpx

from scd_monitor import __version__
from scd_monitor.config.types import TlsOptions
from scd_monitor.errors import SinkError
from scd_monitor.incidents.config import WebhookSinkConfig
from scd_monitor.incidents.report import redact_evidence
from scd_monitor.sinks.base import DeliveryPayload, RetryLater

__all__ = ["SIGNATURE_HEADER", "WebhookSink", "sign", "verify_signature"]

SIGNATURE_HEADER = "X-SCD-Signature"
_TRANSIENT_4XX = frozenset({408, 409, 425, 429})
_MAX_RETRY_AFTER = timedelta(hours=1)


def sign(secret: bytes, body: bytes) -> str:
    """The signature header's value: ``sha256=`` and the HMAC-SHA256 hex of ``body``."""
    return "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()


def verify_signature(secret: bytes, body: bytes, header: str | None) -> bool:
    """What a receiver does: constant-time comparison of the header with the body's HMAC."""
    return header is not None and hmac.compare_digest(sign(secret, body), header)


def ssl_context(tls: TlsOptions) -> ssl.SSLContext:
    """A client context from the catalog's TLS options (CA file, verify, client cert)."""
    context = ssl.create_default_context(
        cafile=str(tls.ca_file) if tls.ca_file is not None else None
    )
    if not tls.verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    if tls.client_cert is not None:
        context.load_cert_chain(
            str(tls.client_cert), str(tls.client_key) if tls.client_key else None
        )
    return context


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
    ) -> None:
        if config.secret.value is None:
            raise ValueError(f"sink {config.id!r}: the secret has not been read (resolve_secrets)")
        self._config = config
        self._secret = config.secret.value.get_secret_value().encode("utf-8")
        self._transport = transport
        self._context: ssl.SSLContext | None = None

    @property
    def name(self) -> str:
        return self._config.id

    def _ssl(self) -> ssl.SSLContext:
        if self._context is None:
            self._context = ssl_context(self._config.tls)
        return self._context

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
        try:
            verify: ssl.SSLContext | bool = self._ssl() if config.url.startswith("https:") else True
        except (OSError, ssl.SSLError) as exc:
            raise SinkError(f"TLS settings unusable: {exc}", permanent=True) from exc
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
                    client.post(config.url, content=payload.body, headers=headers), timeout
                )
        except (TimeoutError, httpx.TimeoutException) as exc:
            raise SinkError(
                f"POST {where}: no answer within {timeout:g}s", permanent=False
            ) from exc
        except httpx.HTTPError as exc:
            raise SinkError(
                f"POST {where}: {type(exc).__name__}: {redact_evidence(str(exc))}", permanent=False
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
