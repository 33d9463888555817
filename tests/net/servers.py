"""Local TLS servers and silent sockets for the network floor's tests (127.0.0.1 only).

A plain module (not a conftest): ``from tests.net.servers import …``. The HTTPS server is
a few lines of ``asyncio`` streams on purpose (it reads one request, answers ``200 ok``
and closes), so what is tested is the clients' TLS, not a server library.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from scd_simulator.certs import CertificateAuthority, KeyPair


@dataclass
class TlsServer:
    port: int
    server_names: list[str | None] = field(default_factory=list)
    """The SNI name of every handshake the server saw (``None``: no SNI sent)."""
    requests: int = 0

    def url(self, path: str = "/") -> str:
        return f"https://127.0.0.1:{self.port}{path}"


def server_context(
    pair: KeyPair,
    directory: Path,
    *,
    client_ca: CertificateAuthority | None = None,
    tls12: bool = False,
) -> ssl.SSLContext:
    """A server context presenting ``pair``; with ``client_ca`` it requires a client
    certificate issued by it. ``tls12`` caps the protocol at TLS 1.2, where a refused
    client certificate fails the handshake itself (TLS 1.3 refuses it afterwards)."""
    cert, key = pair.write(directory, f"server-{id(pair)}")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    if client_ca is not None:
        context.verify_mode = ssl.CERT_REQUIRED
        context.load_verify_locations(cadata=client_ca.cert_pem.decode())
    if tls12:
        context.maximum_version = ssl.TLSVersion.TLSv1_2
    return context


@contextlib.asynccontextmanager
async def https_server(context: ssl.SSLContext) -> AsyncIterator[TlsServer]:
    """Answer every HTTP request with ``200 ok`` over TLS; record the SNI names."""
    state = TlsServer(port=0)

    def on_sni(_sock: Any, name: str | None, _ctx: ssl.SSLContext) -> None:
        state.server_names.append(name)

    context.sni_callback = on_sni

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.decode("latin-1").split("\r\n"):
                name, _, value = line.partition(":")
                if name.strip().lower() == "content-length":
                    length = int(value.strip())
            if length:
                await reader.readexactly(length)
            state.requests += 1
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
            await writer.drain()
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()

    server = await asyncio.start_server(handle, "127.0.0.1", 0, ssl=context)
    state.port = server.sockets[0].getsockname()[1]
    try:
        yield state
    finally:
        server.close()
        await server.wait_closed()


@contextlib.contextmanager
def silent_listener() -> Iterator[int]:
    """A port that accepts TCP connections (the kernel's backlog) and never says a word."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(16)
        yield sock.getsockname()[1]


def unused_port() -> int:
    """A port on 127.0.0.1 that nothing listens on (bound, then closed)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def break_dns(monkeypatch: Any, suffix: str = ".invalid") -> None:
    """Names ending in ``suffix`` fail to resolve as glibc says it (``EAI_NONAME``),
    without asking any resolver (the tests speak to 127.0.0.1 only)."""
    real = socket.getaddrinfo

    def fake(host: Any, *args: Any, **kwargs: Any) -> Any:
        name = host.decode() if isinstance(host, bytes) else str(host)
        if name.endswith(suffix):
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", fake)
