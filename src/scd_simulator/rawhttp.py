"""A minimal asyncio HTTP/1.1 server for the simulator and the tests' misbehaving targets.

Parses one ``Content-Length`` request at a time with fixed caps; a handler answers with a
:class:`Response` or takes the :class:`Connection` over to hang, reset, drip, stream or
send garbage.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import socket
import struct
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from email.utils import formatdate
from http import HTTPStatus
from ssl import SSLContext
from urllib.parse import urlsplit

import structlog

from scd_simulator.net import Lifecycle, check_loopback

__all__ = [
    "NOT_HTTP",
    "Connection",
    "Handler",
    "HttpServer",
    "Request",
    "Response",
    "json_response",
]

log = structlog.get_logger()

MAX_HEAD_BYTES = 16 * 1024
MAX_HEADERS = 100
MAX_BODY_BYTES = 1024 * 1024
IDLE_TIMEOUT_SECONDS = 15.0
"""How long a connection may wait for (the rest of) its next request."""

_TOKEN = re.compile(rb"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
_VERSION = re.compile(rb"^HTTP/1\.[01]$")

NOT_HTTP = b"\x00\xff\xfeSSH-2.0-not-http\r\n\x16\x03\x01\x00\x05hello\r\n\r\n"
"""Bytes a handler can send instead of an HTTP response (``conn.write(NOT_HTTP)``)."""


@dataclass(frozen=True, slots=True)
class Request:
    """One parsed request. Header names are lower-cased; the last of duplicates wins."""

    method: str
    target: str
    path: str
    query: str
    version: str
    headers: dict[str, str]
    body: bytes

    @property
    def keep_alive(self) -> bool:
        """Whether the client asked to keep the connection open after this request."""
        tokens = {t.strip().lower() for t in self.headers.get("connection", "").split(",")}
        if "close" in tokens:
            return False
        return self.version == "HTTP/1.1" or "keep-alive" in tokens


@dataclass(frozen=True, slots=True)
class Response:
    """What a handler answers; ``Date``, ``Server``, ``Content-Length`` etc. are added.

    A header in ``headers`` replaces the default of that name: a ``Content-Length``
    promising more than ``body`` makes a truncated answer, a ``Transfer-Encoding``
    drops the default ``Content-Length`` (for a handler that streams the body itself).
    """

    status: int = 200
    body: bytes = b""
    content_type: str = "text/plain; charset=utf-8"
    headers: tuple[tuple[str, str], ...] = ()
    close: bool = False

    def encode(self, *, head_only: bool, close: bool, server: str = "scd-monitor") -> bytes:
        try:
            reason = HTTPStatus(self.status).phrase
        except ValueError:
            reason = "Unknown"
        given = {name.lower() for name, _ in self.headers}
        defaults = [
            ("Date", formatdate(usegmt=True)),
            ("Server", server),
            ("Content-Type", self.content_type),
        ]
        if "transfer-encoding" not in given:
            defaults.append(("Content-Length", str(len(self.body))))
        lines = [f"HTTP/1.1 {self.status} {reason}"]
        lines.extend(f"{name}: {value}" for name, value in defaults if name.lower() not in given)
        lines.extend(f"{name}: {value}" for name, value in self.headers)
        if close and "connection" not in given:
            lines.append("Connection: close")
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        return head if head_only else head + self.body


def json_response(
    status: int,
    payload: object,
    *,
    content_type: str = "application/json",
    headers: tuple[tuple[str, str], ...] = (),
) -> Response:
    """``payload`` as UTF-8 JSON (non-ASCII characters kept as they are)."""
    body = json.dumps(payload, ensure_ascii=False).encode("utf-8")
    return Response(status, body, content_type=content_type, headers=headers)


class Connection:
    """The connection a request came on, for handlers that take it over."""

    __slots__ = ("_protocol",)

    def __init__(self, protocol: _HttpProtocol) -> None:
        self._protocol = protocol

    @property
    def closed(self) -> bool:
        return self._protocol.lost or self._protocol.transport.is_closing()

    def write(self, data: bytes) -> None:
        """Send raw bytes (no HTTP framing)."""
        if not self.closed:
            self._protocol.transport.write(data)

    async def send(self, data: bytes) -> None:
        """Send raw bytes, then wait while the peer is slow to take them.

        Raises :class:`ConnectionResetError` once the connection is gone, so a handler
        that streams forever ends with its client.
        """
        self.write(data)
        await self._protocol.drain()

    async def trickle(self, data: bytes, *, interval: float, chunk: int = 1) -> None:
        """Send ``data`` ``chunk`` bytes at a time, ``interval`` seconds apart: a slow server
        whose every single read succeeds."""
        for start in range(0, len(data), chunk):
            await self.send(data[start : start + chunk])
            await asyncio.sleep(interval)

    def close(self) -> None:
        """Close after flushing what was written."""
        self._protocol.transport.close()

    def reset(self) -> None:
        """Abort the connection with a TCP RST (``SO_LINGER`` 0), dropping unsent data."""
        transport = self._protocol.transport
        sock = transport.get_extra_info("socket")
        if sock is not None:
            # Already gone: aborting is all that is left to do.
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        transport.abort()

    async def wait_closed(self) -> None:
        """Return when the peer has gone away (or the server closed the connection)."""
        await self._protocol.wait_lost()


Handler = Callable[[Request, Connection], Awaitable[Response | None]]
"""Answer a request, or take the connection over and return ``None``.

The server then closes the connection if the handler has not. A handler still running
when its client goes away is cancelled.
"""


class _BadRequest(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class _HttpProtocol(asyncio.Protocol):
    """One connection: buffer bytes, parse one request, run the handler, repeat."""

    def __init__(self, server: HttpServer) -> None:
        self._server = server
        self._loop = server.loop
        self.transport: asyncio.Transport = None  # type: ignore[assignment]  # set in connection_made
        self.lost = False
        self._buffer = bytearray()
        self._task: asyncio.Task[None] | None = None
        self._idle: asyncio.TimerHandle | None = None
        self._lost_waiter: asyncio.Future[None] | None = None
        self._drain_waiter: asyncio.Future[None] | None = None
        self._paused = False
        self._continue_sent = False

    # -- asyncio.Protocol ------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self._server.connections.add(self)
        self._server.accepted += 1
        self._arm_idle()

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        if self._task is None:
            self._process()
        elif len(self._buffer) > MAX_HEAD_BYTES + MAX_BODY_BYTES and not self._paused:
            self._paused = True
            self.transport.pause_reading()

    def eof_received(self) -> bool | None:
        return None  # the client is done: close our side too

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        self._server.connections.discard(self)
        if self._idle is not None:
            self._idle.cancel()
        if self._task is not None:
            self._task.cancel()
        for waiter in (self._lost_waiter, self._drain_waiter):
            if waiter is not None and not waiter.done():
                waiter.set_result(None)

    def pause_writing(self) -> None:
        if self._drain_waiter is None or self._drain_waiter.done():
            self._drain_waiter = self._loop.create_future()

    def resume_writing(self) -> None:
        if self._drain_waiter is not None and not self._drain_waiter.done():
            self._drain_waiter.set_result(None)

    # -- internals ---------------------------------------------------------------------

    async def wait_lost(self) -> None:
        if self.lost:
            return
        if self._lost_waiter is None:
            self._lost_waiter = self._loop.create_future()
        await asyncio.shield(self._lost_waiter)

    async def drain(self) -> None:
        """Wait until the transport takes more data; raise if the connection is gone."""
        if self._drain_waiter is not None and not self._drain_waiter.done():
            await asyncio.shield(self._drain_waiter)
        if self.lost or self.transport.is_closing():
            raise ConnectionResetError("the connection is closed")

    def _arm_idle(self) -> None:
        if self._idle is not None:
            self._idle.cancel()
        self._idle = self._loop.call_later(self._server.idle_timeout, self.transport.close)

    def _process(self) -> None:
        """Parse one request out of the buffer if it is complete, and dispatch it."""
        if self.lost or self.transport.is_closing():
            return
        try:
            request = self._parse()
        except _BadRequest as exc:
            self._buffer.clear()
            body = f"{exc.message}\n".encode()
            self.transport.write(
                Response(exc.status, body).encode(
                    head_only=False, close=True, server=self._server.server_header
                )
            )
            self.transport.close()
            return
        if request is None:
            return
        if self._idle is not None:
            self._idle.cancel()
            self._idle = None
        self._task = self._loop.create_task(self._run(request))
        self._server.tasks.add(self._task)
        self._task.add_done_callback(self._server.tasks.discard)

    def _parse(self) -> Request | None:
        buffer = self._buffer
        while buffer[:2] == b"\r\n":  # RFC 9112 §2.2: ignore empty lines before a request
            del buffer[:2]
        end = buffer.find(b"\r\n\r\n")
        if end < 0:
            if len(buffer) > MAX_HEAD_BYTES:
                raise _BadRequest(431, "request head too large")
            if buffer and not buffer[:1].isalpha():
                raise _BadRequest(400, "not an HTTP request")
            return None
        if end > MAX_HEAD_BYTES:
            raise _BadRequest(431, "request head too large")
        lines = bytes(buffer[:end]).split(b"\r\n")
        parts = lines[0].split(b" ")
        if len(parts) != 3 or not _TOKEN.match(parts[0]) or not parts[1]:
            raise _BadRequest(400, "malformed request line")
        method, target, version = parts
        if not _VERSION.match(version):
            raise _BadRequest(400, "unsupported HTTP version")
        if len(lines) - 1 > MAX_HEADERS:
            raise _BadRequest(431, "too many headers")
        headers: dict[str, str] = {}
        for line in lines[1:]:
            name, sep, value = line.partition(b":")
            if not sep or not _TOKEN.match(name):
                raise _BadRequest(400, "malformed header line")
            key = name.decode("ascii").lower()
            text = value.strip(b" \t").decode("latin-1")
            if key == "content-length" and key in headers and headers[key] != text:
                raise _BadRequest(400, "conflicting Content-Length headers")
            headers[key] = text
        if "transfer-encoding" in headers:
            raise _BadRequest(501, "Transfer-Encoding is not supported; send Content-Length")
        length_text = headers.get("content-length", "0")
        if not length_text.isdigit() or not length_text.isascii():
            raise _BadRequest(400, "invalid Content-Length")
        length = int(length_text)
        if length > MAX_BODY_BYTES:
            raise _BadRequest(413, "request body too large")
        body_start = end + 4
        if len(buffer) < body_start + length:
            if (
                not self._continue_sent
                and headers.get("expect", "").lower() == "100-continue"
                and version == b"HTTP/1.1"
            ):
                self._continue_sent = True
                self.transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")
            return None
        body = bytes(buffer[body_start : body_start + length])
        del buffer[: body_start + length]
        self._continue_sent = False
        target_text = target.decode("latin-1")
        split = urlsplit(target_text)
        return Request(
            method=method.decode("ascii"),
            target=target_text,
            path=split.path or "/",
            query=split.query,
            version=version.decode("ascii"),
            headers=headers,
            body=body,
        )

    async def _run(self, request: Request) -> None:
        connection = Connection(self)
        try:
            response = await self._server.handler(request, connection)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            if isinstance(exc, ConnectionError) and (self.lost or self.transport.is_closing()):
                return  # the client went away while the handler was writing to it
            # A handler bug: answer 500 rather than leave the client waiting.
            log.exception("simulator.handler_failed", path=request.path)
            response = Response(500, b"simulator handler failed\n", close=True)
        finally:
            self._task = None
        if self.lost or self.transport.is_closing():
            return
        if response is None:  # the handler took the connection over
            self.transport.close()
            return
        close = response.close or not request.keep_alive or self._server.closing
        self.transport.write(
            response.encode(
                head_only=request.method == "HEAD", close=close, server=self._server.server_header
            )
        )
        if close:
            self.transport.close()
            return
        self._arm_idle()
        if self._paused:
            self._paused = False
            self.transport.resume_reading()
        if self._buffer:
            self._process()


class HttpServer(Lifecycle):
    """One listening socket on loopback dispatching every request to one handler.

    ``async with HttpServer(handler, host, port, ssl_context=ctx) as server:`` binds on entry
    (``port`` 0 picks a free one, read it back from :attr:`port`) and on exit stops
    listening, drops open connections and cancels running handlers.

    One :class:`asyncio.Protocol` per connection, no task until a whole request has
    arrived. The request line, headers and a ``Content-Length`` body are parsed with
    fixed caps; anything else is answered ``400`` (or ``413``, ``431``, ``501``) and the
    connection is closed. Keep-alive is supported one request at a time (no pipelining
    of answers: bytes that arrive early wait in the buffer). :attr:`accepted` counts
    the connections so far.
    """

    def __init__(
        self,
        handler: Handler,
        host: str,
        port: int = 0,
        *,
        ssl_context: SSLContext | None = None,
        idle_timeout: float = IDLE_TIMEOUT_SECONDS,
        backlog: int = 1024,
        server_header: str = "scd-monitor",
    ) -> None:
        check_loopback(host)
        self.handler = handler
        self.server_header = server_header
        self.host = host
        self.port = port
        self.ssl_context = ssl_context
        self.idle_timeout = idle_timeout
        self.backlog = backlog
        self.connections: set[_HttpProtocol] = set()
        self.accepted = 0
        self.tasks: set[asyncio.Task[None]] = set()
        self.closing = False
        self._server: asyncio.Server | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        assert self._loop is not None, "server not started"
        return self._loop

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self.closing = False
        self._server = await self._loop.create_server(
            lambda: _HttpProtocol(self),
            self.host,
            self.port,
            ssl=self.ssl_context,
            backlog=self.backlog,
            reuse_address=True,
            ssl_handshake_timeout=10.0 if self.ssl_context is not None else None,
        )
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        self.closing = True
        if self._server is not None:
            self._server.close()
        for protocol in list(self.connections):
            protocol.transport.abort()
        tasks = list(self.tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()
            self._server = None
