"""TLS pieces the probes share: cached contexts, peer certificates, error classification.

* :class:`ContextCache` builds an :class:`ssl.SSLContext` from :class:`TlsOptions` once
  and hands the same object to every later run. Loading a CA bundle costs ~10 ms and
  the daemon runs hundreds of probes a second, so contexts are never built per run.
  The key holds the options that shape a context (``server_name`` does not: it is
  per connection) and the mtime and size of every file they name, so a rotated client
  certificate or CA file is picked up on the next run.
* :func:`read_peer` parses what the peer sent (leaf and, where Python exposes it, the
  rest of the chain) with ``cryptography``: expiry is known even for a certificate
  the verifier rejected.
* :func:`handshake` opens a TCP connection and does a TLS handshake, nothing else; the
  TLS probe is built on it, and the HTTP probe uses it to read a certificate that
  failed verification.
* :func:`classify_network_error` maps what sockets, ``ssl`` and the libraries that
  wrap them raise onto :class:`ErrorKind`.

Trust: with ``verify`` on, the CA file of the options is the only trust anchor, or
``certifi``'s bundle when none is given (the same default as httpx, so the HTTP and TLS
probes agree on what is trusted, whatever the host's CA store holds).
"""

from __future__ import annotations

import asyncio
import errno
import os
import socket
import ssl
import time
from collections import OrderedDict
from collections.abc import Iterator, MutableMapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import certifi
from cryptography import x509

from scd_monitor.config.types import TlsOptions
from scd_monitor.probes.base import ErrorKind

__all__ = [
    "ContextCache",
    "PeerCertificates",
    "classify_network_error",
    "describe_ssl_error",
    "handshake",
    "read_peer",
]

_FileStamp = tuple[str, int, int]
_ContextKey = tuple[bool, Path | None, Path | None, Path | None, tuple[_FileStamp, ...]]


class ContextCache:
    """SSL client contexts by the options that shape them, least recently used evicted.

    Contexts are shared between concurrent runs; nothing here mutates one after it
    is built (httpcore sets ALPN to ``http/1.1`` on every connect; it is set here
    already, so that write never changes anything).
    """

    def __init__(self, *, max_size: int = 256) -> None:
        self._max_size = max_size
        self._contexts: OrderedDict[_ContextKey, ssl.SSLContext] = OrderedDict()

    def __len__(self) -> int:
        return len(self._contexts)

    def get(self, options: TlsOptions, *, verify: bool | None = None) -> ssl.SSLContext:
        """The context for ``options``; ``verify=False`` forces a non-verifying one.

        Raises ``OSError`` or ``ssl.SSLError`` when a named file is missing or invalid:
        that is the monitor's problem, not the target's, and callers must call this
        before they touch the network so the error is not mistaken for the target's.
        """
        verifying = options.verify if verify is None else verify
        ca_file = options.ca_file if verifying else None
        files = [p for p in (ca_file, options.client_cert, options.client_key) if p is not None]
        key: _ContextKey = (
            verifying,
            ca_file,
            options.client_cert,
            options.client_key,
            tuple(_stamp(p) for p in files),
        )
        context = self._contexts.get(key)
        if context is not None:
            self._contexts.move_to_end(key)
            return context
        context = _build_context(
            verify=verifying,
            ca_file=ca_file,
            client_cert=options.client_cert,
            client_key=options.client_key,
        )
        self._contexts[key] = context
        while len(self._contexts) > self._max_size:
            self._contexts.popitem(last=False)
        return context


def _stamp(path: Path) -> _FileStamp:
    info = path.stat()
    return (str(path), info.st_mtime_ns, info.st_size)


def _build_context(
    *,
    verify: bool,
    ca_file: Path | None,
    client_cert: Path | None,
    client_key: Path | None,
) -> ssl.SSLContext:
    # PROTOCOL_TLS_CLIENT has secure defaults (TLS >= 1.2, hostname checking, CERT_REQUIRED).
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    if verify:
        context.load_verify_locations(cafile=os.fspath(ca_file or certifi.where()))
    else:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    if client_cert is not None:
        context.load_cert_chain(client_cert, client_key)
    context.set_alpn_protocols(["http/1.1"])
    return context


@dataclass(frozen=True, slots=True)
class PeerCertificates:
    """What the peer's certificates say, whether or not they were trusted."""

    not_after: datetime
    """Expiry (UTC) of the leaf certificate."""
    chain_not_after: datetime
    """Earliest expiry (UTC) among the certificates the peer sent (the leaf at least)."""
    chain_length: int
    """How many certificates the expiry was taken from (1 when only the leaf is known)."""
    tls_version: str | None


def read_peer(ssl_object: ssl.SSLObject | ssl.SSLSocket) -> PeerCertificates | None:
    """Parse the peer's certificates from an established TLS connection.

    ``None`` when the peer sent none or the leaf cannot be parsed. The rest of the chain
    comes from ``get_unverified_chain`` (public on Python 3.13; on 3.10 to 3.12 the same
    method exists on the private ``_sslobj``); where neither exists, the leaf alone.
    """
    der = ssl_object.getpeercert(binary_form=True)
    if not der:
        return None
    try:
        leaf = x509.load_der_x509_certificate(der)
    except ValueError:
        return None
    expiries = [leaf.not_valid_after_utc]
    for item in _unverified_chain(ssl_object):
        if item == der:
            continue
        try:
            expiries.append(x509.load_der_x509_certificate(item).not_valid_after_utc)
        except ValueError:
            continue
    return PeerCertificates(
        not_after=leaf.not_valid_after_utc,
        chain_not_after=min(expiries),
        chain_length=len(expiries),
        tls_version=ssl_object.version(),
    )


def _unverified_chain(ssl_object: ssl.SSLObject | ssl.SSLSocket) -> list[bytes]:
    owner: Any = ssl_object
    method = getattr(owner, "get_unverified_chain", None)
    if method is None:
        method = getattr(getattr(owner, "_sslobj", None), "get_unverified_chain", None)
    if method is None:
        return []
    try:
        chain = method() or []
        return [item if isinstance(item, bytes) else item.public_bytes(2) for item in chain]
    except (AttributeError, TypeError, ValueError, ssl.SSLError):
        # 2 is _ssl.ENCODING_DER. A private API may change: the leaf alone is still right.
        return []


async def handshake(
    host: str,
    port: int,
    *,
    context: ssl.SSLContext,
    server_name: str | None = None,
    phases: MutableMapping[str, float] | None = None,
    deadline: float | None = None,
) -> PeerCertificates | None:
    """Resolve ``host``, connect, handshake, read the peer's certificates, close.

    Raises what the network raises (``socket.gaierror``, ``OSError``, ``ssl.SSLError``);
    :func:`classify_network_error` maps those. Records ``dns``, ``connect`` and ``tls``
    seconds into ``phases``. The caller bounds the time (``asyncio.timeout_at``); give
    the same ``deadline`` (event loop time) here so that the polite close (sending
    close_notify, waiting a little for the peer's) never uses the time that is left
    up: it waits at most half of it, and at most 0.25 s.
    """
    loop = asyncio.get_running_loop()
    timings: MutableMapping[str, float] = phases if phases is not None else {}

    started = time.perf_counter()
    infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    timings["dns"] = time.perf_counter() - started

    started = time.perf_counter()
    transport, protocol = await _connect_first(loop, infos)
    timings["connect"] = time.perf_counter() - started

    try:
        started = time.perf_counter()
        tls_transport = await loop.start_tls(
            transport, protocol, context, server_hostname=server_name or host
        )
        timings["tls"] = time.perf_counter() - started
        if tls_transport is None:  # only when the connection closed meanwhile
            raise ssl.SSLEOFError("connection closed during the TLS handshake")
        ssl_object = tls_transport.get_extra_info("ssl_object")
        peer = read_peer(ssl_object) if ssl_object is not None else None
        tls_transport.close()
        left = deadline - loop.time() if deadline is not None else 0.5
        await protocol.wait_closed(grace=min(0.25, left / 2))
    finally:
        transport.abort()
    return peer


class _Quiet(asyncio.Protocol):
    """A protocol that ignores data and reports when the connection is gone."""

    def __init__(self) -> None:
        self._lost = asyncio.get_running_loop().create_future()

    def connection_lost(self, exc: Exception | None) -> None:
        if not self._lost.done():
            self._lost.set_result(None)

    async def wait_closed(self, *, grace: float) -> None:
        """Wait up to ``grace`` seconds for the polite close (close_notify) to finish."""
        if grace <= 0:
            return
        try:
            async with asyncio.timeout(grace):
                await asyncio.shield(self._lost)
        except TimeoutError:
            pass


async def _connect_first(
    loop: asyncio.AbstractEventLoop,
    infos: list[tuple[Any, Any, Any, Any, Any]],
) -> tuple[asyncio.Transport, _Quiet]:
    """Connect to the resolved addresses in order; the first error if none answers."""
    first_error: OSError | None = None
    for family, _type, proto, _name, address in infos:
        try:
            transport, protocol = await loop.create_connection(
                _Quiet, host=address[0], port=address[1], family=family, proto=proto
            )
        except OSError as exc:
            first_error = first_error or exc
            continue
        return transport, protocol
    raise first_error or OSError(errno.EHOSTUNREACH, "no address to connect to")


def describe_ssl_error(exc: ssl.SSLError) -> str:
    """Why a TLS handshake or session failed, in words fit for a probe message."""
    if isinstance(exc, ssl.SSLCertVerificationError):
        reason = exc.verify_message or exc.reason or "unknown reason"
        return f"certificate verify failed: {str(reason).rstrip('.')}"
    if isinstance(exc, ssl.SSLEOFError | ssl.SSLZeroReturnError):
        return "TLS connection closed by the peer"
    reason = exc.reason or exc.strerror or str(exc)
    return f"TLS error: {str(reason).lower().replace('_', ' ')}"


_LOCAL_ERRNOS = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOMEM, errno.ENOBUFS})
"""The monitor's own resources ran out: INTERNAL, not the target's fault."""

_CONNECT_ERRNOS = frozenset(
    {
        errno.ECONNREFUSED,
        errno.ECONNRESET,
        errno.ECONNABORTED,
        errno.EPIPE,
        errno.ENETUNREACH,
        errno.ENETDOWN,
        errno.EHOSTUNREACH,
        errno.EHOSTDOWN,
        errno.EADDRNOTAVAIL,
    }
)


def classify_network_error(exc: BaseException) -> tuple[ErrorKind, str] | None:
    """Map an exception, or any exception it was raised from, onto an error kind.

    Walks ``__cause__``, ``__context__`` and exception groups, outermost first, and
    answers for the first link it recognises: ``socket.gaierror`` → DNS, ``ssl.SSLError``
    → TLS, ``TimeoutError`` → TIMEOUT, refused/reset/unreachable → CONNECT, the
    monitor running out of file descriptors or memory → INTERNAL. ``None``
    when nothing in the chain is recognised (the caller decides then).
    """
    for link in _chain(exc):
        if isinstance(link, socket.gaierror):
            return ErrorKind.DNS, f"name resolution failed: {link.strerror or link}"
        if isinstance(link, ssl.SSLError):
            return ErrorKind.TLS, describe_ssl_error(link)
        if isinstance(link, TimeoutError):
            return ErrorKind.TIMEOUT, "timed out"
        if isinstance(link, OSError) and link.errno in _CONNECT_ERRNOS:
            return ErrorKind.CONNECT, os.strerror(link.errno).lower()
        if isinstance(link, OSError) and link.errno in _LOCAL_ERRNOS:
            return ErrorKind.INTERNAL, f"monitor out of resources: {os.strerror(link.errno)}"
    return None


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    pending = [exc]
    while pending:
        link = pending.pop(0)
        if id(link) in seen:
            continue
        seen.add(id(link))
        yield link
        if isinstance(link, BaseExceptionGroup):
            pending.extend(link.exceptions)
        if link.__cause__ is not None:
            pending.append(link.__cause__)
        if link.__context__ is not None:
            pending.append(link.__context__)
