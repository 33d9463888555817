"""What went wrong on the network: one classifier for probes, the X-Road client and sinks.

:func:`classify` maps what httpx, ``ssl``, ``socket`` and ``smtplib`` raise onto a
closed set of kinds (:class:`NetErrorKind`) with a short message and whether retrying
can help. The probes copy the kind into their ``ErrorKind``, the X-Road client into its
``FailureKind`` (the values are the same words), and the sinks decide transient or
permanent by it.

Rules, first match wins:

* an httpx timeout → ``timeout``;
* then, walking the exception and what it was raised from (``__cause__``,
  ``__context__``, exception groups; :func:`classify_cause`): ``socket.gaierror`` →
  ``dns``; ``ssl.SSLError`` → ``tls``; ``TimeoutError`` → ``timeout``; refused, reset,
  unreachable → ``connect``; the monitor out of file descriptors or memory →
  ``internal`` (transient);
* then httpx's own classes: ``ConnectError`` → ``connect``; a malformed or cut
  answer (``RemoteProtocolError``, ``ReadError``, ``WriteError``, ``DecodingError``, any
  other ``HTTPError``) → ``protocol``; a request that cannot be sent
  (``LocalProtocolError``, ``UnsupportedProtocol``, ``InvalidURL``, ``ValueError``) →
  ``internal``, and permanent: it would fail the same way every time;
* any other ``OSError`` (``smtplib``'s errors among them) → ``connect``.

Everything that reached the network is transient: a refused connection, a timeout, an
untrusted certificate can all be fixed on the other side.
"""

from __future__ import annotations

import enum
import errno
import os
import socket
import ssl
from collections.abc import Iterator
from dataclasses import dataclass

import httpx

__all__ = [
    "NetErrorKind",
    "NetFailure",
    "classify",
    "classify_cause",
    "describe_ssl_error",
    "is_verify_failure",
    "protocol_message",
]


class NetErrorKind(enum.StrEnum):
    """Why a network exchange failed. A closed set."""

    DNS = "dns"
    """The name did not resolve."""
    CONNECT = "connect"
    """The TCP connection was refused, reset or unreachable."""
    TIMEOUT = "timeout"
    """No (complete) answer in time."""
    TLS = "tls"
    """The TLS handshake failed, or the certificate was not trusted."""
    PROTOCOL = "protocol"
    """The peer broke the protocol: malformed answer, connection cut mid-answer."""
    INTERNAL = "internal"
    """The monitor's own problem: out of resources, or a request it cannot send."""


@dataclass(frozen=True, slots=True)
class NetFailure:
    """A classified failure: its kind, words for a message, whether to retry."""

    kind: NetErrorKind
    message: str
    transient: bool = True
    """False only when retrying the same exchange must fail the same way."""


def describe_ssl_error(exc: ssl.SSLError) -> str:
    """Why a TLS handshake or session failed, in words fit for a message."""
    if isinstance(exc, ssl.SSLCertVerificationError):
        reason = exc.verify_message or exc.reason or "unknown reason"
        return f"certificate verify failed: {str(reason).rstrip('.')}"
    if isinstance(exc, ssl.SSLEOFError | ssl.SSLZeroReturnError):
        return "TLS connection closed by the peer"
    reason = exc.reason or exc.strerror or str(exc)
    return f"TLS error: {str(reason).lower().replace('_', ' ')}"


_LOCAL_ERRNOS = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOMEM, errno.ENOBUFS})
"""The monitor's own resources ran out: INTERNAL, not the peer's fault."""

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


def classify_cause(exc: BaseException) -> NetFailure | None:
    """The failure named by the exception or anything it was raised from, or ``None``.

    Walks ``__cause__``, ``__context__`` and exception groups, outermost first, and
    answers for the first link it recognises (``socket.gaierror``, ``ssl.SSLError``,
    ``TimeoutError``, an ``OSError`` with a known ``errno``). ``None`` when nothing in
    the chain is recognised: see :func:`classify` for a total answer.
    """
    for link in _chain(exc):
        if isinstance(link, socket.gaierror):
            return NetFailure(NetErrorKind.DNS, f"name resolution failed: {link.strerror or link}")
        if isinstance(link, ssl.SSLError):
            return NetFailure(NetErrorKind.TLS, describe_ssl_error(link))
        if isinstance(link, TimeoutError):
            return NetFailure(NetErrorKind.TIMEOUT, "timed out")
        if isinstance(link, OSError) and link.errno in _CONNECT_ERRNOS:
            return NetFailure(NetErrorKind.CONNECT, os.strerror(link.errno).lower())
        if isinstance(link, OSError) and link.errno in _LOCAL_ERRNOS:
            return NetFailure(
                NetErrorKind.INTERNAL, f"monitor out of resources: {os.strerror(link.errno)}"
            )
    return None


def classify(exc: BaseException) -> NetFailure:
    """The failure ``exc`` stands for (see the module docstring for the rules)."""
    if isinstance(exc, httpx.TimeoutException):
        return NetFailure(NetErrorKind.TIMEOUT, "timed out")
    known = classify_cause(exc)
    if known is not None:
        return known
    if isinstance(exc, httpx.ConnectError):
        return NetFailure(NetErrorKind.CONNECT, str(exc) or "connection failed")
    if isinstance(
        exc, httpx.LocalProtocolError | httpx.UnsupportedProtocol | httpx.InvalidURL | ValueError
    ):
        return NetFailure(NetErrorKind.INTERNAL, f"cannot send the request: {exc}", transient=False)
    if isinstance(exc, httpx.RemoteProtocolError):
        return NetFailure(NetErrorKind.PROTOCOL, protocol_message(exc))
    if isinstance(exc, httpx.DecodingError):
        return NetFailure(NetErrorKind.PROTOCOL, f"could not decode the response: {exc}")
    if isinstance(exc, httpx.ReadError | httpx.WriteError):
        return NetFailure(NetErrorKind.PROTOCOL, "connection closed in the middle of the exchange")
    if isinstance(exc, httpx.HTTPError):
        return NetFailure(NetErrorKind.PROTOCOL, f"{type(exc).__name__}: {exc}")
    if isinstance(exc, OSError):
        return NetFailure(NetErrorKind.CONNECT, f"{type(exc).__name__}: {exc}")
    return NetFailure(NetErrorKind.INTERNAL, f"{type(exc).__name__}: {exc}", transient=False)


def protocol_message(exc: httpx.RemoteProtocolError) -> str:
    """Words for a malformed answer, or for a connection closed in the middle of one."""
    text = str(exc)
    if "disconnected" in text or "closed" in text or "incomplete" in text:
        return f"connection closed in the middle of the response: {text}"
    return f"malformed HTTP response: {text}"


def is_verify_failure(exc: BaseException) -> bool:
    """Whether certificate verification is what failed (httpx wraps the ``ssl`` error)."""
    return any(isinstance(link, ssl.SSLCertVerificationError) for link in _chain(exc))


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
