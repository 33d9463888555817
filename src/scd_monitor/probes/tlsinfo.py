"""TLS pieces the probes share: peer certificates, a bare handshake, error kinds.

* :func:`read_peer` parses what the peer sent (leaf and, where Python exposes it, the
  rest of the chain) with ``cryptography``: expiry is known even for a certificate
  the verifier rejected.
* :func:`handshake` opens a TCP connection and does a TLS handshake, nothing else; the
  TLS probe is built on it, and the HTTP probe uses it to read a certificate that
  failed verification.
* :func:`error_kind` turns the network classifier's kinds
  (:class:`~scd_monitor.net.errors.NetErrorKind`) into the probes' :class:`ErrorKind`.

Contexts (and the trust policy) come from :mod:`scd_monitor.net.tls`; the
classification of network errors from :mod:`scd_monitor.net.errors`.
"""

from __future__ import annotations

import asyncio
import errno
import socket
import ssl
import time
from collections.abc import MutableMapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from cryptography import x509

from scd_monitor.net.errors import NetErrorKind
from scd_monitor.probes.base import ErrorKind

__all__ = [
    "PeerCertificates",
    "error_kind",
    "handshake",
    "read_peer",
]

_ERROR_KINDS: dict[NetErrorKind, ErrorKind] = {
    NetErrorKind.DNS: ErrorKind.DNS,
    NetErrorKind.CONNECT: ErrorKind.CONNECT,
    NetErrorKind.TIMEOUT: ErrorKind.TIMEOUT,
    NetErrorKind.TLS: ErrorKind.TLS,
    NetErrorKind.PROTOCOL: ErrorKind.PROTOCOL,
    NetErrorKind.INTERNAL: ErrorKind.INTERNAL,
}


def error_kind(kind: NetErrorKind) -> ErrorKind:
    """The probe error kind for a network failure kind (the same word)."""
    return _ERROR_KINDS[kind]


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
    :func:`scd_monitor.net.errors.classify` maps those. Records ``dns``, ``connect`` and
    ``tls`` seconds into ``phases``. The caller bounds the time (``asyncio.timeout_at``); give
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
