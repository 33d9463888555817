"""The e-mail sink: SMTP with STARTTLS (or implicit TLS) and authentication.

The message is ``multipart/mixed``: a ``multipart/alternative`` with the Spanish text
and HTML renderings, and the report's JSON attached (``<report id>.json``). Its
``Message-ID`` is derived from the idempotency key (``<KEY@scd-monitor>``), and the key
is also in ``X-SCD-Idempotency-Key``, so a mailbox or a ticketing system can drop a
second copy. Recipients: the sink's ``to`` (and ``cc``), or the provider's contact for
the provider audience; the envelope is given explicitly, never read back from headers.

Header-safe: the subject carries provider and service names from outside (an X-Road
directory's member names). Every header value we write goes through
:func:`header_text`: :func:`~scd_monitor.sinks.text.clean_text` on one line (no CR, LF,
NUL or other control character: they become their pictures, ``␍``, ``␀``; lone surrogates
become U+FFFD; LF and tabs a space), at most :data:`SUBJECT_MAX` characters for the
subject (200 for the others), and ``=?`` written ``= ?`` (Python's e-mail package would
otherwise *decode* text that looks like an RFC 2047 encoded word, CR LF included, before
writing it: a header injection). We then encode and fold these headers ourselves
(:class:`_Folded`): ASCII text as it is, folded at spaces; any other text as RFC 2047
``=?utf-8?b?…?=`` words of whole characters, spaces inside the words (the e-mail
package's own folder puts spaces *between* words, where decoders drop them). Lines stay
within 78 characters where a space allows, within 998 always (76 with encoded words). Bodies
are cleaned the same way (line breaks kept) and sent quoted-printable, so the message is
7-bit ASCII unless an address needs SMTPUTF8. A recipient that is not one valid address
is a permanent failure. The message is built and serialised before any connection, and
any failure to do so is permanent (:class:`SinkError`), never an exception that would be
retried for ever.

Why the standard library's :mod:`smtplib` in a thread rather than aiosmtplib: it is
mature, has STARTTLS, implicit TLS and AUTH PLAIN/LOGIN, adds no runtime dependency, and
a few messages per incident make a worker thread per delivery cheap; every socket
operation is bounded by the sink's ``timeout``. The password is handed to ``login`` only:
it is never logged, and SMTP errors quote the server's answer (cleaned, 200 characters at
most), not our command.

Outcomes: any 5xx answer (greeting, authentication, sender, every refused recipient,
data), a server without STARTTLS when it is required, an extension the message needs
(SMTPUTF8) missing, a message that cannot be built or sent → permanent; 4xx answers
(including a temporary authentication failure, 454, and some recipients refused with a
4xx) → transient; failures without an answer (timeouts, DNS, connection and TLS errors, a
dropped connection) are classified by :func:`scd_monitor.net.errors.classify`, and all of
those are transient.

TLS (``starttls`` or ``tls``): the monitor's one trust policy
(:mod:`scd_monitor.net.tls`): the sink's ``tls.ca_file`` or certifi's bundle,
``tls.verify``, a client certificate, and ``tls.server_name`` (instead of ``host``) for
SNI and the certificate check. No ALPN is offered (this is not HTTP).

Configuration: :class:`EmailSinkConfig` (``kind: email``).
"""

from __future__ import annotations

import asyncio
import base64
import re
import smtplib
import ssl
from dataclasses import dataclass
from datetime import timedelta
from email.errors import MessageError
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import SMTP, Policy
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
from scd_monitor.sinks.text import clean_text

__all__ = [
    "SUBJECT_MAX",
    "EmailSink",
    "EmailSinkConfig",
    "Envelope",
    "build_envelope",
    "build_message",
    "header_text",
]

SUBJECT_MAX = 250
"""The longest subject (characters, prefix included); longer ones end in ``…``."""
_HEADER_MAX = 200
_POLICY = SMTP
_ATEXT = re.compile(r"[^A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]")
_FILENAME = re.compile(r"[^A-Za-z0-9._-]")
_REPLY_MAX = 200

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


def header_text(value: object, *, limit: int = _HEADER_MAX) -> str:
    """``value`` fit for a mail header: one clean line of at most ``limit`` characters in
    which nothing looks like an RFC 2047 encoded word (see the module docstring)."""
    text = clean_text(value, one_line=True).replace("=?", "= ?")
    return clean_text(text, limit=limit, one_line=True)


_LINE = 78
_WORD_LINE = 76
_WORD_BYTES = 45
"""UTF-8 bytes per encoded word on a continuation line: 60 base64 characters, 72 with
``=?utf-8?b?`` and ``?=``, 73 with the folding space."""


class _Folded(str):
    """A header value encoded and folded by us, written exactly as it is: the e-mail
    policy stores a value with a matching ``name`` unparsed and writes it with ``fold``
    (the header-object protocol of :class:`email.policy.EmailPolicy`)."""

    name: str

    def __new__(cls, name: str, text: str) -> _Folded:
        self = super().__new__(cls, _encode(name, text))
        self.name = name
        return self

    def fold(self, *, policy: Policy) -> str:
        linesep = policy.linesep
        return f"{self.name}: {self}".replace("\r\n", linesep) + linesep


def _encode(name: str, text: str) -> str:
    """``text`` (clean, one line) as a folded header value, lines joined by CR LF + space."""
    if text.isascii():
        lines: list[str] = []
        line, room = "", _LINE - len(name) - 2
        for word in text.split(" "):
            if line and len(line) + 1 + len(word) > room:
                lines.append(line)
                line, room = word, _LINE - 1
            else:
                line = f"{line} {word}" if line else word
        return "\r\n ".join([*lines, line])
    # RFC 2047: a line with encoded words is at most 76 characters; a word of n bytes is
    # 12 + 4·⌈n/3⌉ characters long. The first line also holds "Name: ".
    chunks: list[str] = []
    current, budget = "", max(3, (_WORD_LINE - len(name) - 2 - 12) // 4 * 3)
    for ch in text:
        if current and len((current + ch).encode("utf-8")) > budget:
            chunks.append(current)
            current, budget = ch, _WORD_BYTES
        else:
            current += ch
    chunks.append(current)
    return "\r\n ".join(
        "=?utf-8?b?" + base64.b64encode(c.encode("utf-8")).decode("ascii") + "?=" for c in chunks
    )


def _set(msg: EmailMessage, name: str, value: object, *, limit: int = _HEADER_MAX) -> None:
    """Set header ``name`` to ``value`` from outside: cleaned, bounded, encoded, folded."""
    msg[name] = _Folded(name, header_text(value, limit=limit))


def _address_problem(address: str) -> str | None:
    """Why ``address`` is not exactly one plain ``local@domain`` address, or ``None``."""
    if clean_text(address, one_line=True) != address or not address or " " in address:
        return "not a single address"
    try:
        parsed = Address(addr_spec=address)
    except (ValueError, IndexError, TypeError, MessageError):
        return "not a valid address"
    if parsed.addr_spec != address:
        return "not a single plain address"
    return None


def _recipients(config: EmailSinkConfig, payload: DeliveryPayload) -> list[str]:
    if payload.audience == "provider" and payload.recipient:
        problem = _address_problem(payload.recipient)
        if problem is not None:
            shown = header_text(payload.recipient, limit=80)
            raise SinkError(f"recipient {shown!r} refused: {problem}", permanent=True)
        return [payload.recipient]
    if not config.to:
        raise SinkError("no recipient: the sink has no 'to' and the delivery none", permanent=True)
    return list(config.to)


def build_message(config: EmailSinkConfig, payload: DeliveryPayload) -> EmailMessage:
    """The message for ``payload`` (its recipients: see the module docstring).

    Raises :class:`SinkError` (permanent) when there is no usable recipient; other
    values are made safe, never refused.
    """
    recipients = _recipients(config, payload)
    msg = EmailMessage(policy=_POLICY)
    prefix = config.subject_prefix.strip()
    subject = f"{prefix} {payload.subject}" if prefix else payload.subject
    _set(msg, "Subject", subject, limit=SUBJECT_MAX)
    msg["From"] = config.sender
    msg["To"] = ", ".join(recipients)
    if config.cc:
        msg["Cc"] = ", ".join(config.cc)
    msg["Date"] = formatdate(localtime=False, usegmt=True)
    key = _ATEXT.sub("-", payload.idempotency_key)[:_HEADER_MAX]
    msg["Message-ID"] = f"<{key}@scd-monitor>"
    _set(msg, "X-SCD-Idempotency-Key", payload.idempotency_key)
    _set(msg, "X-SCD-Incident", payload.incident)
    _set(msg, "X-SCD-Report", payload.report_id)
    _set(msg, "X-SCD-Event", payload.event)
    _set(msg, "X-SCD-Audience", payload.audience)
    msg.set_content(
        clean_text(payload.text), subtype="plain", charset="utf-8", cte="quoted-printable"
    )
    msg.add_alternative(
        clean_text(payload.html), subtype="html", charset="utf-8", cte="quoted-printable"
    )
    msg.add_attachment(
        payload.body,
        maintype="application",
        subtype="json",
        filename=_FILENAME.sub("_", payload.report_id)[:_HEADER_MAX] + ".json",
    )
    msg["Content-Language"] = "es-CO"  # after the parts: set_content drops Content-* headers
    return msg


@dataclass(frozen=True, slots=True)
class Envelope:
    """What goes over SMTP: ``MAIL FROM``, ``RCPT TO`` and the message's bytes."""

    sender: str
    recipients: tuple[str, ...]
    data: bytes
    international: bool
    """An address is not ASCII: the server must offer SMTPUTF8."""


def build_envelope(config: EmailSinkConfig, payload: DeliveryPayload) -> Envelope:
    """The message built and serialised for sending; :class:`SinkError` (permanent) if it
    cannot be: the same payload would fail the same way on every attempt."""
    try:
        message = build_message(config, payload)
        recipients = (*_recipients(config, payload), *config.cc)
        international = not all(a.isascii() for a in (config.sender, *recipients))
        data = message.as_bytes(policy=_POLICY.clone(utf8=international))
    except SinkError:
        raise
    except (ValueError, TypeError, LookupError, MessageError) as exc:
        raise SinkError(
            f"the message cannot be built: {type(exc).__name__}: "
            f"{header_text(exc, limit=_REPLY_MAX)}",
            permanent=True,
        ) from exc
    return Envelope(config.sender, recipients, data, international)


def _reply(exc: smtplib.SMTPResponseException) -> str:
    """The server's answer in an exception, as one clean, bounded line."""
    raw = exc.smtp_error
    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)
    return clean_text(text, limit=_REPLY_MAX, one_line=True)


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
        await asyncio.to_thread(self._build_and_send, payload)

    def _build_and_send(self, payload: DeliveryPayload) -> None:
        self._send(build_envelope(self._config, payload))

    def _ssl(self) -> ssl.SSLContext:
        if self._context is None:
            try:
                self._context = build_context(self._config.tls, alpn=())
            except (OSError, ssl.SSLError) as exc:
                raise SinkError(f"TLS settings unusable: {exc}", permanent=True) from exc
        return self._context

    def _send(self, envelope: Envelope) -> None:
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
                options: list[str] = []
                if envelope.international:
                    if not smtp.has_extn("smtputf8"):
                        raise smtplib.SMTPNotSupportedError(
                            "an address is not ASCII and the server does not offer SMTPUTF8"
                        )
                    options = ["SMTPUTF8", "BODY=8BITMIME"]
                refused = smtp.sendmail(
                    envelope.sender, list(envelope.recipients), envelope.data, options
                )
        except SinkError:
            raise
        except smtplib.SMTPRecipientsRefused as exc:
            codes = {code for code, _ in exc.recipients.values()}
            raise SinkError(
                f"{where}: recipients refused: {_refused(exc.recipients)}",
                permanent=all(code >= 500 for code in codes),
            ) from exc
        except smtplib.SMTPNotSupportedError as exc:
            raise SinkError(f"{where}: {header_text(exc)}", permanent=True) from exc
        except smtplib.SMTPResponseException as exc:  # authentication, sender, data, greeting
            what = (
                "authentication refused"
                if isinstance(exc, smtplib.SMTPAuthenticationError)
                else "answered"
            )
            raise SinkError(
                f"{where}: {what}: {exc.smtp_code} {_reply(exc)}", permanent=exc.smtp_code >= 500
            ) from exc
        except (smtplib.SMTPException, OSError) as exc:  # disconnects, timeouts, TLS, refused
            failure = classify(exc)
            raise SinkError(
                f"{where}: {failure.kind}: {header_text(failure.message)}",
                permanent=not failure.transient,
            ) from exc
        except (ValueError, UnicodeError) as exc:  # smtplib refusing to send what we gave it
            raise SinkError(
                f"{where}: the message cannot be sent: {type(exc).__name__}", permanent=True
            ) from exc
        if refused:
            codes = {code for code, _ in refused.values()}
            raise SinkError(
                f"{where}: accepted for some recipients, refused for {_refused(refused)}",
                permanent=all(code >= 500 for code in codes),
            )


def _refused(recipients: dict[str, tuple[int, bytes]]) -> str:
    """``address (code)`` for each refused recipient, cleaned and bounded."""
    parts = [f"{header_text(a, limit=80)} ({code})" for a, (code, _) in sorted(recipients.items())]
    return clean_text(", ".join(parts), limit=_REPLY_MAX * 2, one_line=True)
