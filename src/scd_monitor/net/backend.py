"""A lean asyncio network backend for httpcore: the probes' sockets without anyio.

httpx talks to the network through httpcore, and httpcore (on asyncio) through anyio:
every connect runs in a task group of its own, every read and write in a cancel scope.
At hundreds of probes a second that wrapping cost as much CPU as the HTTP exchange
itself (``bench/README.md``). :class:`AsyncioBackend` implements httpcore's
``AsyncNetworkBackend`` on plain asyncio: one ``loop.create_connection`` (asyncio's
own Happy Eyeballs, 250 ms, as anyio), a buffering protocol, and a timer per wait.

TLS is done the way anyio's ``TLSStream`` does it with ``standard_compatible=False``
(what httpcore asks for): an :class:`ssl.SSLObject` over memory BIOs on top of the TCP
stream, no closing handshake. The exceptions are the same classes, raised from the same
causes, as httpcore's anyio backend raises them, so
:func:`~scd_monitor.net.errors.classify` and the probes' rules (a reset during the
handshake, a TLS 1.3 rejection) see exactly what they saw before:

* connect: ``OSError`` (refused, unreachable, ``socket.gaierror``) → ``ConnectError``
  from it; timeout → ``ConnectTimeout``;
* TLS handshake: ``ssl.SSLError`` → ``ConnectError`` from it; the peer closing or
  resetting → ``ConnectError`` (from the reset, or with the ``SSLEOFError`` as context);
* read: a reset → ``ReadError`` from it; an orderly close → ``b""``; timeout →
  ``ReadTimeout``; write: a reset → ``WriteError``; timeout → ``WriteTimeout``.

:func:`probe_transport` gives an httpx transport whose pool uses this backend.
"""

# httpcore's interface names its parameters ``timeout``: ASYNC109 does not apply.
# ruff: noqa: ASYNC109

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import select
import socket
import ssl
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

import httpcore
import httpx

__all__ = ["AsyncioBackend", "probe_transport"]

_T = TypeVar("_T")
_READ_LIMIT = 256 * 1024
"""Bytes buffered from the socket before reading is paused until the caller reads."""
_HAPPY_EYEBALLS_DELAY = 0.25


class _EndOfStream(Exception):
    """The peer closed the stream (anyio's ``EndOfStream``)."""


class _BrokenStream(Exception):
    """The stream broke under us (anyio's ``BrokenResourceError``); see ``__cause__``."""


class _Protocol(asyncio.Protocol):
    """Buffers what arrives and wakes the one reader or writer waiting."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.eof = False
        self.lost = False
        self.exception: BaseException | None = None
        self.paused_reading = False
        self.paused_writing = False
        self._waiter: asyncio.Future[None] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if len(self.buffer) > _READ_LIMIT and not self.paused_reading and self.transport:
            self.transport.pause_reading()
            self.paused_reading = True
        self._wake()

    def eof_received(self) -> bool:
        self.eof = True
        self._wake()
        return True  # keep the transport for writing, as anyio does (half-close)

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        self.eof = True
        if exc is not None:
            self.exception = exc
        self._wake()

    def pause_writing(self) -> None:
        self.paused_writing = True

    def resume_writing(self) -> None:
        self.paused_writing = False
        self._wake()

    async def wait(self, seconds: float | None) -> None:
        """Until something arrives, the peer closes, or writing may go on; at most
        ``seconds`` (then :class:`TimeoutError`)."""
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[None] = loop.create_future()
        self._waiter = waiter
        timer = None if seconds is None else loop.call_later(seconds, _expire, waiter)
        try:
            await waiter
        finally:
            self._waiter = None
            if timer is not None:
                timer.cancel()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)


def _expire(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_exception(TimeoutError())


class _Deadline:
    """What is left of one operation's timeout across several waits."""

    __slots__ = ("_at", "_loop")

    def __init__(self, timeout: float | None) -> None:
        self._loop = asyncio.get_running_loop()
        self._at = None if timeout is None else self._loop.time() + timeout

    def left(self) -> float | None:
        if self._at is None:
            return None
        left = self._at - self._loop.time()
        if left <= 0:
            raise TimeoutError()
        return left


class _Stream(httpcore.AsyncNetworkStream):
    """httpcore's ``read``/``write`` over ``receive``/``send``, with anyio's exception
    mapping (see the module docstring)."""

    async def receive(self, max_bytes: int, deadline: _Deadline) -> bytes:
        raise NotImplementedError

    async def send(self, data: bytes, deadline: _Deadline) -> None:
        raise NotImplementedError

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        try:
            return await self.receive(max_bytes, _Deadline(timeout))
        except _EndOfStream:
            return b""
        except TimeoutError as exc:
            raise httpcore.ReadTimeout(exc) from exc
        except _BrokenStream as exc:
            raise httpcore.ReadError(exc) from exc

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        if not buffer:
            return
        try:
            await self.send(buffer, _Deadline(timeout))
        except TimeoutError as exc:
            raise httpcore.WriteTimeout(exc) from exc
        except _BrokenStream as exc:
            raise httpcore.WriteError(exc) from exc


class _SocketStream(_Stream):
    """A TCP connection: httpcore's stream interface over :class:`_Protocol`."""

    def __init__(self, transport: asyncio.Transport, protocol: _Protocol) -> None:
        self._transport = transport
        self._protocol = protocol
        self._closed = False

    # -- the raw byte stream (anyio's SocketStream semantics) --------------------------

    async def receive(self, max_bytes: int, deadline: _Deadline) -> bytes:
        """Bytes as they arrive; :class:`_EndOfStream` at an orderly close."""
        protocol = self._protocol
        while not protocol.buffer and not protocol.eof:
            await protocol.wait(deadline.left())
        if protocol.buffer:
            data = bytes(protocol.buffer[:max_bytes])
            del protocol.buffer[:max_bytes]
            if protocol.paused_reading and len(protocol.buffer) <= _READ_LIMIT // 2:
                protocol.paused_reading = False
                if not self._transport.is_closing():
                    self._transport.resume_reading()
            return data
        if protocol.exception is not None:
            raise _BrokenStream from protocol.exception
        raise _EndOfStream

    async def send(self, data: bytes, deadline: _Deadline) -> None:
        protocol = self._protocol
        if protocol.exception is not None:
            raise _BrokenStream from protocol.exception
        if protocol.lost or self._transport.is_closing():
            raise _BrokenStream from ConnectionResetError("connection closed")
        self._transport.write(data)
        while protocol.paused_writing and not protocol.lost:
            await protocol.wait(deadline.left())
        if protocol.exception is not None:
            raise _BrokenStream from protocol.exception

    # -- the rest of httpcore's interface ---------------------------------------------

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        transport = self._transport
        if not transport.is_closing():
            with contextlib.suppress(OSError):
                transport.write_eof()
        transport.abort()

    async def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.AsyncNetworkStream:
        try:
            return await _TLSStream.wrap(self, ssl_context, server_hostname, _Deadline(timeout))
        except TimeoutError as exc:
            await self.aclose()
            raise httpcore.ConnectTimeout(exc) from exc
        except (_BrokenStream, _EndOfStream, ssl.SSLError) as exc:
            await self.aclose()
            raise httpcore.ConnectError(exc) from exc
        except BaseException:
            await self.aclose()
            raise

    def get_extra_info(self, info: str) -> Any:
        if info == "client_addr":
            return self._transport.get_extra_info("sockname")
        if info == "server_addr":
            return self._transport.get_extra_info("peername")
        if info == "socket":
            return self._transport.get_extra_info("socket")
        if info == "is_readable":
            if self._protocol.buffer or self._protocol.eof:
                return True
            sock = self._transport.get_extra_info("socket")
            return sock is not None and _readable(sock)
        return None


class _TLSStream(_Stream):
    """TLS over a :class:`_SocketStream` with memory BIOs (anyio's TLSStream, non-standard
    compatible: no closing handshake, an unexpected EOF is an end of stream)."""

    def __init__(
        self,
        raw: _SocketStream,
        ssl_object: ssl.SSLObject,
        incoming: ssl.MemoryBIO,
        outgoing: ssl.MemoryBIO,
    ) -> None:
        self._raw = raw
        self._ssl = ssl_object
        self._incoming = incoming
        self._outgoing = outgoing
        self._broken = False

    @classmethod
    async def wrap(
        cls,
        raw: _SocketStream,
        context: ssl.SSLContext,
        server_hostname: str | None,
        deadline: _Deadline,
    ) -> _TLSStream:
        incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
        ssl_object = context.wrap_bio(incoming, outgoing, server_hostname=server_hostname)
        stream = cls(raw, ssl_object, incoming, outgoing)
        await stream._call(ssl_object.do_handshake, deadline)
        return stream

    async def _flush(self, deadline: _Deadline) -> None:
        if self._outgoing.pending:
            try:
                await self._raw.send(self._outgoing.read(), deadline)
            except BaseException:
                self._broken = True
                raise

    async def _call(self, method: Callable[..., _T], deadline: _Deadline, *args: Any) -> _T:
        if self._broken:
            raise _BrokenStream
        while True:
            try:
                result = method(*args)
            except ssl.SSLWantReadError:
                try:
                    await self._flush(deadline)
                    data = await self._raw.receive(65536, deadline)
                except _EndOfStream:
                    self._incoming.write_eof()
                except _BrokenStream:
                    self._incoming.write_eof()
                    self._outgoing.write_eof()
                    raise
                else:
                    self._incoming.write(data)
            except ssl.SSLWantWriteError:
                await self._flush(deadline)
            except ssl.SSLSyscallError as exc:
                self._incoming.write_eof()
                self._outgoing.write_eof()
                raise _BrokenStream from exc
            except ssl.SSLError as exc:
                self._incoming.write_eof()
                self._outgoing.write_eof()
                if isinstance(exc, ssl.SSLEOFError) or (
                    exc.strerror and "UNEXPECTED_EOF_WHILE_READING" in exc.strerror
                ):
                    raise _EndOfStream from None
                raise
            else:
                await self._flush(deadline)
                return result

    async def receive(self, max_bytes: int, deadline: _Deadline) -> bytes:
        data = await self._call(self._ssl.read, deadline, max_bytes)
        if not data:
            raise _EndOfStream
        return data

    async def send(self, data: bytes, deadline: _Deadline) -> None:
        await self._call(self._ssl.write, deadline, data)

    async def aclose(self) -> None:
        await self._raw.aclose()

    async def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise NotImplementedError("TLS within TLS (an HTTPS proxy) is not used by the probes")

    def get_extra_info(self, info: str) -> Any:
        if info == "ssl_object":
            return self._ssl
        return self._raw.get_extra_info(info)


class AsyncioBackend(httpcore.AsyncNetworkBackend):
    """httpcore's network backend on plain asyncio (see the module docstring)."""

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[tuple[Any, ...]] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(timeout):
                transport, protocol = await loop.create_connection(
                    _Protocol,
                    host,
                    port,
                    local_addr=(local_address, 0) if local_address else None,
                    # Racing addresses costs a task each: only for names, which may
                    # resolve to several.
                    happy_eyeballs_delay=None if _is_ip(host) else _HAPPY_EYEBALLS_DELAY,
                )
        except TimeoutError as exc:
            raise httpcore.ConnectTimeout(exc) from exc
        except OSError as exc:
            raise httpcore.ConnectError(exc) from exc
        for option in socket_options or ():
            sock = transport.get_extra_info("socket")
            sock.setsockopt(*option)
        return _SocketStream(transport, protocol)

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[tuple[Any, ...]] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise httpcore.ConnectError("unix sockets are not used by the probes")

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _readable(sock: socket.socket) -> bool:
    try:
        readable, _, _ = select.select([sock], [], [], 0)
    except (OSError, ValueError):
        return True
    return bool(readable)


_BACKEND = AsyncioBackend()
_LIMITS = httpx.Limits(max_connections=100, max_keepalive_connections=20)
"""httpx's default limits (a redirect to the same origin reuses the connection)."""


class _ProbeTransport(httpx.AsyncHTTPTransport):
    """httpx's transport (its exception mapping, its request and response conversion)
    over a pool on :class:`AsyncioBackend`. httpx takes no network backend, so the pool is
    set here instead of by ``AsyncHTTPTransport.__init__`` (which would build one more
    pool per probe only to drop it); ``tests/net/test_backend.py`` checks the attribute,
    so an httpx upgrade that renames it fails there, not in production."""

    def __init__(self, context: ssl.SSLContext) -> None:
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=context,
            max_connections=_LIMITS.max_connections,
            max_keepalive_connections=_LIMITS.max_keepalive_connections,
            keepalive_expiry=_LIMITS.keepalive_expiry,
            network_backend=_BACKEND,
        )


def probe_transport(context: ssl.SSLContext) -> httpx.AsyncHTTPTransport:
    """An httpx transport for one probe run: a pool of its own on :class:`AsyncioBackend`."""
    return _ProbeTransport(context)
