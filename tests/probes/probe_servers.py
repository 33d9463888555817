"""Local servers that behave and misbehave on purpose, and check builders, for probe tests.

A plain module (not a conftest): ``from tests.probes.probe_servers import …``. Every server listens
on ``127.0.0.1:0``. HTTP targets run on the simulator's raw server (:mod:`scd_simulator.rawhttp`),
whose handlers may answer, or take the connection over to hang, reset, drip or send garbage;
:func:`serve_raw` runs bare ``asyncio`` streams for what happens below HTTP (TLS, silence).
"""

from __future__ import annotations

import asyncio
import gzip
import socket
import ssl
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from scd_monitor.catalog.models import CheckSpec, HttpCheck, ResolvedCheck, Sla, TlsCheck
from scd_simulator.certs import CertificateAuthority, KeyPair
from scd_simulator.rawhttp import (
    NOT_HTTP,
    Connection,
    Handler,
    HttpServer,
    Request,
    Response,
    json_response,
)

RawHandler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]
App = Handler
"""An HTTP target's behaviour: answer the request, or take the connection over."""


@dataclass
class Server:
    """A running test server: its port, the requests it parsed, the connections it took."""

    port: int
    count_connections: Callable[[], int]
    requests: list[Request] = field(default_factory=list)

    @property
    def connections(self) -> int:
        return self.count_connections()

    def url(self, path: str = "/", *, scheme: str = "http") -> str:
        return f"{scheme}://127.0.0.1:{self.port}{path}"


@asynccontextmanager
async def serve_raw(
    handler: RawHandler, *, ssl_context: ssl.SSLContext | None = None
) -> AsyncIterator[Server]:
    """Run ``handler`` for every connection; on exit abort what is still connected.

    Handler tasks are not cancelled (asyncio's stream callback logs cancelled handlers
    as errors on Python 3.11): their connections are aborted, so they end on their own.
    """
    live: dict[asyncio.Task[Any], asyncio.StreamWriter] = {}
    accepted = 0

    async def connected(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal accepted
        task = asyncio.current_task()
        assert task is not None
        live[task] = writer
        accepted += 1
        try:
            await handler(reader, writer)
        except (ConnectionError, ssl.SSLError, asyncio.IncompleteReadError, EOFError):
            writer.transport.abort()
        else:
            writer.close()  # flushes what was written, then closes
        finally:
            live.pop(task, None)

    server = await asyncio.start_server(connected, "127.0.0.1", 0, ssl=ssl_context)
    try:
        yield Server(server.sockets[0].getsockname()[1], lambda: accepted)
    finally:
        server.close()
        for writer in live.values():
            writer.transport.abort()
        if live:
            await asyncio.wait(list(live), timeout=2)
        await server.wait_closed()


@asynccontextmanager
async def serve(app: App, *, ssl_context: ssl.SSLContext | None = None) -> AsyncIterator[Server]:
    """An HTTP/1.1 server (keep-alive) that records every request and hands it to ``app``."""
    requests: list[Request] = []

    async def handler(request: Request, conn: Connection) -> Response | None:
        requests.append(request)
        return await app(request, conn)

    async with HttpServer(
        handler, "127.0.0.1", ssl_context=ssl_context, server_header="probe-test"
    ) as http:
        yield Server(http.port, lambda: http.accepted, requests)


# --- apps -------------------------------------------------------------------------------


def respond(status: int = 200, body: bytes = b"", headers: Mapping[str, str] | None = None) -> App:
    """Always this answer; ``headers`` replace the defaults of the same name."""
    response = Response(status, body, headers=tuple((headers or {}).items()))

    async def app(_request: Request, _conn: Connection) -> Response:
        return response

    return app


def respond_json(document: object, status: int = 200) -> App:
    response = json_response(status, document)

    async def app(_request: Request, _conn: Connection) -> Response:
        return response

    return app


def respond_gzip(body: bytes) -> App:
    return respond(200, gzip.compress(body, mtime=0), {"Content-Encoding": "gzip"})


def routes(table: Mapping[str, App]) -> App:
    async def app(request: Request, conn: Connection) -> Response | None:
        return await table.get(request.target, respond(404))(request, conn)

    return app


async def hang(_request: Request, conn: Connection) -> None:
    """Accept the request and never answer (until the client goes away)."""
    await conn.wait_closed()


async def reset(_request: Request, conn: Connection) -> None:
    """Answer the request with a TCP reset (SO_LINGER 0, then close)."""
    conn.reset()


async def close_silently(_request: Request, _conn: Connection) -> None:
    """An orderly close (FIN) without a response."""


async def garbage(_request: Request, conn: Connection) -> None:
    conn.write(NOT_HTTP)


async def truncated(_request: Request, _conn: Connection) -> Response:
    """Promise 1000 bytes, send 10, close."""
    return Response(200, b"0123456789", headers=(("Content-Length", "1000"),), close=True)


async def endless(_request: Request, conn: Connection) -> None:
    """A chunked body that never ends: write until the client goes away."""
    head = Response(200, headers=(("Transfer-Encoding", "chunked"),))
    await conn.send(head.encode(head_only=True, close=False))
    block = b"x" * 16384
    chunk = f"{len(block):x}\r\n".encode() + block + b"\r\n"
    while True:
        await conn.send(chunk)


async def drip(_request: Request, conn: Connection) -> None:
    """Headers at once, then a byte every 50 ms: no single read ever times out."""
    head = Response(200, headers=(("Content-Length", "100000"),))
    await conn.send(head.encode(head_only=True, close=False))
    await conn.trickle(b"." * 100_000, interval=0.05)


async def wait_for_eof(reader: asyncio.StreamReader, _writer: asyncio.StreamWriter) -> None:
    """A raw handler that says nothing and waits for the client to close."""
    await reader.read()


def unused_port() -> int:
    """A port on 127.0.0.1 that nothing listens on (bound, then closed)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


@contextmanager
def blocking_tls_server(context: ssl.SSLContext) -> Iterator[int]:
    """A TLS server in a thread with blocking sockets, like most real servers.

    Every connection: handshake, read once, close. Yields the port.
    """
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    listener.settimeout(0.05)
    stop = threading.Event()

    def run() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            conn.settimeout(2)
            try:
                with context.wrap_socket(conn, server_side=True) as tls:
                    tls.recv(65536)
            except OSError:
                pass
            finally:
                conn.close()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1]
    finally:
        stop.set()
        thread.join(timeout=5)
        listener.close()


# --- certificates ---------------------------------------------------------------------


def server_context(
    pair: KeyPair,
    directory: Path,
    *,
    client_ca: CertificateAuthority | None = None,
    extra_chain: bytes = b"",
) -> ssl.SSLContext:
    """A server context presenting ``pair`` (plus ``extra_chain`` PEM certificates).

    With ``client_ca`` the server requires a client certificate issued by it.
    """
    cert, key = pair.write(directory, f"server-{id(pair)}")
    if extra_chain:
        cert.write_bytes(cert.read_bytes() + extra_chain)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    if client_ca is not None:
        context.verify_mode = ssl.CERT_REQUIRED
        context.load_verify_locations(cadata=client_ca.cert_pem.decode())
    return context


# --- checks -----------------------------------------------------------------------------


def resolved(spec: CheckSpec, *, timeout: float = 0.5) -> ResolvedCheck:
    return ResolvedCheck(
        provider="prov",
        service="svc",
        check=spec.id,
        kind=spec.kind,
        interval=timedelta(seconds=30),
        timeout=timedelta(seconds=timeout),
        critical=True,
        spec=spec,
        service_type="otro",
        provider_name="Provider",
        sla=Sla(),
    )


def http_check(url: str, *, timeout: float = 2.0, **fields: Any) -> ResolvedCheck:
    spec = HttpCheck.model_validate({"id": "check", "kind": "http", "url": url, **fields})
    return resolved(spec, timeout=timeout)


def tls_check(
    port: int, *, host: str = "127.0.0.1", timeout: float = 2.0, **fields: Any
) -> ResolvedCheck:
    spec = TlsCheck.model_validate(
        {"id": "check", "kind": "tls", "host": host, "port": port, **fields}
    )
    return resolved(spec, timeout=timeout)


def break_dns(monkeypatch: Any, suffix: str = ".invalid") -> None:
    """Make names ending in ``suffix`` fail to resolve, without asking any resolver."""
    real = socket.getaddrinfo

    def fake(host: Any, *args: Any, **kwargs: Any) -> Any:
        name = host.decode() if isinstance(host, bytes) else str(host)
        if name.endswith(suffix):
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", fake)
