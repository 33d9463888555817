"""Scripted SMTP servers on 127.0.0.1 for the e-mail sink's outcomes: aiosmtpd answering
what a test tells it (per recipient, at MAIL, at DATA, at AUTH), and a bare greeter that
answers its greeting and hangs up."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Callable
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from scd_monitor.sinks.email import EmailSink, EmailSinkConfig
from tests.incidents.receivers import free_port


@dataclass
class ScriptedSmtp:
    """aiosmtpd, plain (``security: none``) unless given a certificate (then STARTTLS,
    and AUTH with ``password``). Every reply not scripted is a success."""

    rcpt: Callable[[str], str | None] = lambda _address: None
    """The reply to ``RCPT TO:<address>`` (``None``: ``250 OK``)."""
    mail: str | None = None
    data: str | None = None
    auth: str | None = None
    """The reply to every AUTH attempt (``None``: check ``password``)."""
    cert: Path | None = None
    key: Path | None = None
    password: str = "s3creto-smtp"
    smtputf8: bool = True
    messages: list[EmailMessage] = field(default_factory=list)
    raw: list[bytes] = field(default_factory=list)
    envelopes: list[tuple[str, list[str]]] = field(default_factory=list)
    port: int = 0
    _controller: Any = None

    def __enter__(self) -> ScriptedSmtp:
        from aiosmtpd.controller import Controller
        from aiosmtpd.smtp import AuthResult, LoginPassword

        outer = self

        class Handler:
            async def handle_MAIL(
                self, server: Any, session: Any, envelope: Any, address: str, options: Any
            ) -> str:
                if outer.mail is not None:
                    return outer.mail
                envelope.mail_from = address
                return "250 OK"

            async def handle_RCPT(
                self, server: Any, session: Any, envelope: Any, address: str, options: Any
            ) -> str:
                reply = outer.rcpt(address)
                if reply is not None:
                    return reply
                envelope.rcpt_tos.append(address)
                return "250 OK"

            async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
                if outer.data is not None:
                    return outer.data
                content = envelope.original_content
                outer.raw.append(content)
                outer.messages.append(message_from_bytes(content, policy=policy.default))  # type: ignore[arg-type]
                outer.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
                return "250 OK"

        def authenticator(
            server: Any, session: Any, envelope: Any, mechanism: str, data: Any
        ) -> Any:
            if outer.auth is not None:
                return AuthResult(success=False, handled=False, message=outer.auth)
            ok = isinstance(data, LoginPassword) and data.password.decode() == outer.password
            return AuthResult(success=ok, handled=False)

        self.port = free_port()
        kwargs: dict[str, Any] = {"enable_SMTPUTF8": self.smtputf8}
        if self.cert is not None and self.key is not None:
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            context.load_cert_chain(str(self.cert), str(self.key))
            kwargs.update(
                tls_context=context,
                require_starttls=True,
                authenticator=authenticator,
                auth_require_tls=True,
            )
        self._controller = Controller(Handler(), hostname="127.0.0.1", port=self.port, **kwargs)
        self._controller.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._controller.stop()


class Greeter:
    """A TCP server that answers every connection with one line and closes it."""

    def __init__(self, greeting: bytes) -> None:
        self.greeting = greeting
        self.port = 0
        self._server: asyncio.Server | None = None

    async def _serve(self, _reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(self.greeting)
        await writer.drain()
        writer.close()

    async def __aenter__(self) -> Greeter:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()


def plain_email_sink(port: int, **extra: Any) -> EmailSink:
    """An e-mail sink to 127.0.0.1:``port`` without TLS or credentials."""
    data: dict[str, Any] = {
        "id": "correo",
        "kind": "email",
        "host": "127.0.0.1",
        "port": port,
        "security": "none",
        "sender": "monitor@scd.example",
        "to": ["incidentes@mintic.example"],
        "timeout": "5s",
    }
    data.update(extra)
    return EmailSink(EmailSinkConfig.model_validate(data))
