"""Local servers that behave and misbehave on purpose, and check builders, for probe tests.

A plain module (not a conftest): ``from tests.probes.probe_servers import …``. Every server listens
on ``127.0.0.1:0``; raw ``asyncio`` streams let a handler answer garbage, hang, reset
or drip bytes exactly when a test wants it.
"""

from __future__ import annotations

import asyncio
import gzip
import json
import socket
import ssl
import struct
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from scd_monitor.catalog.models import CheckSpec, HttpCheck, ResolvedCheck, Sla, TlsCheck
from scd_simulator.certs import CertificateAuthority, KeyPair

RawHandler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class Request:
    """What a test server received."""

    method: str
    target: str
    headers: Mapping[str, str]
    """Lower-cased names."""
    body: bytes


App = Callable[[Request, asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


@dataclass
class Server:
    port: int
    requests: list[Request] = field(default_factory=list)
    connections: int = 0

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
    server_info = Server(port=0)

    async def connected(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        live[task] = writer
        server_info.connections += 1
        try:
            await handler(reader, writer)
        except (ConnectionError, ssl.SSLError, asyncio.IncompleteReadError, EOFError):
            writer.transport.abort()
        else:
            writer.close()  # flushes what was written, then closes
        finally:
            live.pop(task, None)

    server = await asyncio.start_server(connected, "127.0.0.1", 0, ssl=ssl_context)
    server_info.port = server.sockets[0].getsockname()[1]
    try:
        yield server_info
    finally:
        server.close()
        for writer in live.values():
            writer.transport.abort()
        if live:
            await asyncio.wait(list(live), timeout=2)
        await server.wait_closed()


@asynccontextmanager
async def serve(app: App, *, ssl_context: ssl.SSLContext | None = None) -> AsyncIterator[Server]:
    """An HTTP/1.1 server: reads one request, records it, hands it to ``app``."""
    holder: list[Server] = []

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        request = await read_request(reader)
        holder[0].requests.append(request)
        await app(request, reader, writer)

    async with serve_raw(handler, ssl_context=ssl_context) as server:
        holder.append(server)
        yield server


async def read_request(reader: asyncio.StreamReader) -> Request:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    method, target, _version = lines[0].split(" ", 2)
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if line:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
    length = int(headers.get("content-length", "0"))
    body = await reader.readexactly(length) if length else b""
    return Request(method=method, target=target, headers=headers, body=body)


def response_bytes(
    status: int, body: bytes = b"", headers: Mapping[str, str] | None = None
) -> bytes:
    lines = [f"HTTP/1.1 {status} Whatever"]
    all_headers = {"Content-Length": str(len(body)), "Connection": "close", **(headers or {})}
    lines += [f"{name}: {value}" for name, value in all_headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


# --- apps -------------------------------------------------------------------------------


def respond(status: int = 200, body: bytes = b"", headers: Mapping[str, str] | None = None) -> App:
    async def app(_request: Request, _reader: asyncio.StreamReader, writer: Any) -> None:
        writer.write(response_bytes(status, body, headers))
        await writer.drain()

    return app


def respond_json(document: object, status: int = 200) -> App:
    return respond(status, json.dumps(document).encode(), {"Content-Type": "application/json"})


def respond_gzip(body: bytes) -> App:
    return respond(200, gzip.compress(body), {"Content-Encoding": "gzip"})


def routes(table: Mapping[str, App]) -> App:
    async def app(request: Request, reader: asyncio.StreamReader, writer: Any) -> None:
        await table.get(request.target, respond(404))(request, reader, writer)

    return app


async def hang(_request: Request, reader: asyncio.StreamReader, _writer: Any) -> None:
    """Accept the request and never answer (until the client goes away)."""
    await reader.read()


async def reset(_request: Request, _reader: asyncio.StreamReader, writer: Any) -> None:
    """Answer the request with a TCP reset (SO_LINGER 0, then close)."""
    sock = writer.get_extra_info("socket")
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


async def close_silently(_request: Request, _reader: asyncio.StreamReader, writer: Any) -> None:
    """An orderly close (FIN) without a response."""
    writer.close()


async def garbage(_request: Request, _reader: asyncio.StreamReader, writer: Any) -> None:
    writer.write(b"\x00\x01\x02 this is not HTTP at all\r\n\r\n")
    await writer.drain()


async def truncated(_request: Request, _reader: asyncio.StreamReader, writer: Any) -> None:
    """Promise 1000 bytes, send 10, close."""
    writer.write(response_bytes(200, b"", {"Content-Length": "1000"}) + b"0123456789")
    await writer.drain()


async def endless(_request: Request, _reader: asyncio.StreamReader, writer: Any) -> None:
    """A chunked body that never ends: write until the client goes away."""
    writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
    block = b"x" * 16384
    chunk = f"{len(block):x}\r\n".encode() + block + b"\r\n"
    while True:
        writer.write(chunk)
        await writer.drain()


async def drip(_request: Request, _reader: asyncio.StreamReader, writer: Any) -> None:
    """Headers at once, then a byte every 50 ms: no single read ever times out."""
    writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n")
    while True:
        writer.write(b".")
        await writer.drain()
        await asyncio.sleep(0.05)


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
