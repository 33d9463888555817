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
without STARTTLS when it is required → permanent; 4xx answers → transient; failures
without an answer (timeouts, DNS, connection and TLS errors, a dropped connection) are
classified by :func:`scd_monitor.net.errors.classify`, and all of those are transient.

TLS (``starttls`` or ``tls``): the monitor's one trust policy
(:mod:`scd_monitor.net.tls`): the sink's ``tls.ca_file`` or certifi's bundle,
``tls.verify``, a client certificate, and ``tls.server_name`` (instead of ``host``) for
SNI and the certificate check. No ALPN is offered (this is not HTTP).

Configuration: :class:`EmailSinkConfig` (``kind: email``).
"""

from __future__ import annotations

import asyncio
import smtplib
import ssl
from datetime import timedelta
from email.message import EmailMessage
from email.utils import formatdate
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, model_validator

from scd_monitor.config.durations import Duration
from scd_monitor.config.types import SecretRef, TlsOptions
from scd_monitor.errors import SinkError
from scd_monitor.net.errors import classify
from scd_monitor.net.tls import build_context, server_name, with_absolute_files
from scd_monitor.sinks.base import DeliveryPayload, SinkConfigBase, read_secret

__all__ = ["EmailSink", "EmailSinkConfig", "build_message"]

_ADDRESS = r"^[^@\s]+@[^@\s]+$"


class EmailSinkConfig(SinkConfigBase):
    """SMTP: text and HTML alternatives with the JSON report attached.

    ``security``: ``starttls`` (default, port 587), ``tls`` (implicit, port 465) or
    ``none`` (only without credentials, e.g. a local relay). ``to`` is required unless
    every route using the sink is for the provider audience (then the provider's
    ``contact`` is the recipient).
    """

    kind: Literal["email"]
    host: Annotated[str, Field(min_length=1)]
    port: Annotated[int, Field(ge=1, le=65535)] = 587
    security: Literal["starttls", "tls", "none"] = "starttls"
    username: str | None = None
    password: SecretRef | None = None
    sender: Annotated[str, Field(pattern=_ADDRESS)]
    to: list[Annotated[str, Field(pattern=_ADDRESS)]] = Field(default_factory=list)
    cc: list[Annotated[str, Field(pattern=_ADDRESS)]] = Field(default_factory=list)
    subject_prefix: str = "[SCD]"
    timeout: Duration = timedelta(seconds=30)
    tls: TlsOptions = TlsOptions()

    @model_validator(mode="after")
    def _credentials(self) -> EmailSinkConfig:
        if (self.username is None) != (self.password is None):
            raise ValueError("give both 'username' and 'password', or neither")
        if self.security == "none" and self.username is not None:
            raise ValueError("credentials are never sent without TLS: use 'starttls' or 'tls'")
        return self

    def secrets(self) -> list[tuple[str, SecretRef]]:
        return [("password", self.password)] if self.password is not None else []

    def tls_options(self) -> TlsOptions:
        return self.tls

    def resolve(self, base_dir: Path) -> EmailSinkConfig:
        update: dict[str, object] = {"tls": with_absolute_files(self.tls, base_dir)}
        if self.password is not None:
            update["password"] = read_secret(self.password, base_dir)
        return self.model_copy(update=update)


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
                self._context = build_context(self._config.tls, alpn=())
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
                smtp = smtplib.SMTP_SSL(timeout=timeout, context=self._ssl())
            else:
                smtp = smtplib.SMTP(timeout=timeout)
            # smtplib sends as SNI and checks the certificate against the host it was
            # created with (``_host``, stable since Python 3.4): created unconnected, it is
            # given the TLS name (``tls.server_name`` or ``host``) instead.
            smtp._host = server_name(config.tls, config.host)  # type: ignore[attr-defined]
            with smtp:
                code, greeting = smtp.connect(config.host, config.port)
                if code != 220:
                    raise smtplib.SMTPConnectError(code, greeting)
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
            failure = classify(exc)
            raise SinkError(
                f"{where}: {failure.kind}: {failure.message}", permanent=not failure.transient
            ) from exc
        if refused:
            raise SinkError(
                f"{where}: accepted for some recipients, refused for {', '.join(sorted(refused))}",
                permanent=True,
            )
