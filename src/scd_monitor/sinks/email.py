"""The e-mail sink: SMTP with STARTTLS (or implicit TLS) and authentication.

The message is ``multipart/mixed``: a ``multipart/alternative`` with the Spanish text
and HTML renderings, and the report's JSON attached (``<report id>.json``). Its
``Message-ID`` is derived from the idempotency key (``<KEY@scd-monitor>``), and the key
is also in ``X-SCD-Idempotency-Key``, so a mailbox or a ticketing system can drop a
second copy. Recipients: the sink's ``to`` (and ``cc``), or the provider's contact for
the provider audience.

Why the standard library's :mod:`smtplib` in a thread rather than aiosmtplib: it is
mature, has STARTTLS, implicit TLS and AUTH PLAIN/LOGIN, adds no runtime dependency, and
a few messages per incident make a worker thread per delivery cheap; every socket
operation is bounded by the sink's ``timeout``. The password is handed to ``login`` only:
it is never logged, and SMTP errors quote the server's answer, not our command.

Outcomes: authentication refused, recipients or sender refused with a 5xx, a server
without STARTTLS when it is required → permanent; 4xx answers, timeouts, connection and
TLS errors → transient.
"""

from __future__ import annotations

import asyncio
import smtplib
import ssl
from email.message import EmailMessage
from email.utils import formatdate

from scd_monitor.errors import SinkError
from scd_monitor.incidents.config import EmailSinkConfig
from scd_monitor.sinks.base import DeliveryPayload
from scd_monitor.sinks.webhook import ssl_context

__all__ = ["EmailSink", "build_message"]


def build_message(config: EmailSinkConfig, payload: DeliveryPayload) -> EmailMessage:
    """The message for ``payload`` (its recipients: see the module docstring)."""
    recipients = [payload.recipient] if payload.audience == "provider" and payload.recipient else []
    recipients = recipients or list(config.to)
    if not recipients:
        raise SinkError("no recipient: the sink has no 'to' and the delivery none", permanent=True)
    msg = EmailMessage()
    prefix = config.subject_prefix.strip()
    msg["Subject"] = f"{prefix} {payload.subject}" if prefix else payload.subject
    msg["From"] = config.sender
    msg["To"] = ", ".join(recipients)
    if config.cc:
        msg["Cc"] = ", ".join(config.cc)
    msg["Date"] = formatdate(localtime=False, usegmt=True)
    msg["Message-ID"] = f"<{payload.idempotency_key}@scd-monitor>"
    msg["X-SCD-Idempotency-Key"] = payload.idempotency_key
    msg["X-SCD-Incident"] = payload.incident
    msg["X-SCD-Report"] = payload.report_id
    msg["X-SCD-Event"] = payload.event
    msg["X-SCD-Audience"] = payload.audience
    msg["Content-Language"] = "es-CO"
    msg.set_content(payload.text, subtype="plain", charset="utf-8")
    msg.add_alternative(payload.html, subtype="html", charset="utf-8")
    msg.add_attachment(
        payload.body,
        maintype="application",
        subtype="json",
        filename=f"{payload.report_id}.json",
    )
    return msg


class EmailSink:
    """Send each report as one e-mail through one SMTP server."""

    def __init__(self, config: EmailSinkConfig, *, context: ssl.SSLContext | None = None) -> None:
        if config.password is not None and config.password.value is None:
            raise ValueError(
                f"sink {config.id!r}: the password has not been read (resolve_secrets)"
            )
        self._config = config
        self._context = context

    @property
    def name(self) -> str:
        return self._config.id

    async def deliver(self, payload: DeliveryPayload) -> None:
        message = build_message(self._config, payload)
        await asyncio.to_thread(self._send, message)

    def _ssl(self) -> ssl.SSLContext:
        if self._context is None:
            try:
                self._context = ssl_context(self._config.tls)
            except (OSError, ssl.SSLError) as exc:
                raise SinkError(f"TLS settings unusable: {exc}", permanent=True) from exc
        return self._context

    def _send(self, message: EmailMessage) -> None:
        config = self._config
        where = f"smtp://{config.host}:{config.port}"
        timeout = config.timeout.total_seconds()
        try:
            smtp: smtplib.SMTP
            if config.security == "tls":
                smtp = smtplib.SMTP_SSL(
                    config.host, config.port, timeout=timeout, context=self._ssl()
                )
            else:
                smtp = smtplib.SMTP(config.host, config.port, timeout=timeout)
            with smtp:
                smtp.ehlo()
                if config.security == "starttls":
                    if not smtp.has_extn("starttls"):
                        raise SinkError(f"{where} does not offer STARTTLS", permanent=True)
                    smtp.starttls(context=self._ssl())
                    smtp.ehlo()
                if config.username is not None and config.password is not None:
                    password = config.password.value
                    assert password is not None
                    smtp.login(config.username, password.get_secret_value())
                refused = smtp.send_message(message)
        except SinkError:
            raise
        except smtplib.SMTPAuthenticationError as exc:
            raise SinkError(
                f"{where}: authentication refused ({exc.smtp_code})", permanent=True
            ) from exc
        except smtplib.SMTPRecipientsRefused as exc:
            codes = {code for code, _ in exc.recipients.values()}
            raise SinkError(
                f"{where}: recipients refused: {', '.join(sorted(exc.recipients))}",
                permanent=all(code >= 500 for code in codes),
            ) from exc
        except smtplib.SMTPNotSupportedError as exc:
            raise SinkError(f"{where}: {exc}", permanent=True) from exc
        except smtplib.SMTPResponseException as exc:
            text = (
                exc.smtp_error.decode("utf-8", "replace")
                if isinstance(exc.smtp_error, bytes)
                else str(exc.smtp_error)
            )
            raise SinkError(
                f"{where}: {exc.smtp_code} {text.strip()[:200]}", permanent=exc.smtp_code >= 500
            ) from exc
        except (smtplib.SMTPException, OSError) as exc:  # disconnects, timeouts, TLS, refused
            raise SinkError(f"{where}: {type(exc).__name__}: {exc}", permanent=False) from exc
        if refused:
            raise SinkError(
                f"{where}: accepted for some recipients, refused for {', '.join(sorted(refused))}",
                permanent=True,
            )
