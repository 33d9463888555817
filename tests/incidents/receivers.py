"""Real local receivers for the sinks: a webhook server (HttpServer on 127.0.0.1:0) that
verifies Standard Webhooks signatures (``webhook-id``, ``-timestamp``, ``-signature``,
5 minutes of tolerance on the real clock) and deduplicates by idempotency key, and an
SMTP server (aiosmtpd) with STARTTLS and AUTH."""

from __future__ import annotations

import asyncio
import hashlib
import random
import socket
import ssl
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from scd_monitor.sinks.webhook import check_signature
from scd_simulator.rawhttp import Connection, HttpServer, Request, Response

SECRET = "clave-compartida-de-prueba"


@dataclass
class WebhookReceiver:
    """Answers 503 while ``failing()`` says so, then 200; applies each key once."""

    secret: bytes = SECRET.encode()
    failing: Callable[[int], bool] = lambda _n: False
    """Given the number of requests so far, whether to answer 503."""
    delay: tuple[float, float] = (0.0, 0.0)
    requests: int = 0
    bad_signatures: int = 0
    applied: dict[str, str] = field(default_factory=dict)
    """Idempotency key → sha256 of the body first applied."""
    duplicates: int = 0
    conflicts: list[str] = field(default_factory=list)
    """Keys seen again with a different body (must stay empty)."""
    bodies: dict[str, bytes] = field(default_factory=dict)
    headers: dict[str, dict[str, str]] = field(default_factory=dict)
    server: HttpServer | None = None

    async def handle(self, request: Request, _conn: Connection) -> Response:
        n = self.requests
        self.requests += 1
        await self._pause()
        if request.method != "POST":
            return Response(405)
        if check_signature([self.secret], request.headers, request.body, now=datetime.now(UTC)):
            self.bad_signatures += 1
            return Response(401, b"bad signature\n")
        if self.failing(n):
            return Response(503, b"try later\n")
        key = request.headers.get("idempotency-key", "")
        digest = hashlib.sha256(request.body).hexdigest()
        if key in self.applied:
            self.duplicates += 1
            if self.applied[key] != digest:
                self.conflicts.append(key)
            return Response(200, b"duplicate ignored\n")
        self.applied[key] = digest
        self.bodies[key] = request.body
        self.headers[key] = dict(request.headers)
        await self._pause()  # applied but not yet answered: a sender killed now resends
        return Response(202, b"accepted\n")

    async def _pause(self) -> None:
        if self.delay[1] > 0:
            await asyncio.sleep(random.uniform(*self.delay))

    async def __aenter__(self) -> WebhookReceiver:
        self.server = HttpServer(self.handle, "127.0.0.1", 0)
        await self.server.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.server is not None
        await self.server.stop()

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.port}/scd/incidentes"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class SmtpServer:
    """aiosmtpd with STARTTLS required before AUTH (LOGIN and PLAIN)."""

    cert: Path
    key: Path
    username: str = "monitor"
    password: str = "s3creto-smtp"
    exclude: tuple[str, ...] = ()
    starttls: bool = True
    messages: list[EmailMessage] = field(default_factory=list)
    envelopes: list[Any] = field(default_factory=list)
    auth_mechanisms: list[str] = field(default_factory=list)
    port: int = 0
    _controller: Any = None

    def __enter__(self) -> SmtpServer:
        from aiosmtpd.controller import Controller
        from aiosmtpd.smtp import AuthResult, LoginPassword

        outer = self

        class Handler:
            async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
                outer.envelopes.append(envelope)
                outer.messages.append(
                    message_from_bytes(envelope.original_content, policy=policy.default)  # type: ignore[arg-type]
                )
                return "250 OK"

        def authenticator(
            server: Any, session: Any, envelope: Any, mechanism: str, data: Any
        ) -> Any:
            ok = (
                isinstance(data, LoginPassword)
                and data.login.decode() == outer.username
                and data.password.decode() == outer.password
            )
            if ok:
                outer.auth_mechanisms.append(mechanism)
            return AuthResult(success=ok, handled=False)

        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(str(self.cert), str(self.key))
        self.port = free_port()
        kwargs: dict[str, Any] = {
            "authenticator": authenticator,
            "auth_require_tls": self.starttls,
            "auth_exclude_mechanism": list(self.exclude),
        }
        if self.starttls:
            kwargs.update(tls_context=context, require_starttls=True)
        self._controller = Controller(Handler(), hostname="127.0.0.1", port=self.port, **kwargs)
        self._controller.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._controller.stop()
