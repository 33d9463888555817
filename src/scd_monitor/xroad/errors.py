"""What the X-Road client raises: one small tree under :class:`ScdMonitorError`.

::

    ScdMonitorError
    └── XRoadFailure              anything this package raises on purpose
        ├── XRoadTransportError   no answer: name resolution, connect, TLS, timeout
        ├── XRoadProtocolError    an answer that breaks the protocol (bad XML, JSON, MIME,
        │   │                     hash, signature; too large)
        │   └── XRoadStatusError  an HTTP status the protocol does not allow here, with no
        │                         X-Road fault to explain it
        └── XRoadError            the security server answered with an X-Road fault
                                  (SOAP Fault, or the REST ``X-Road-Error`` header)

Foreign exceptions (httpx, ssl, socket, expat, json) are translated at the boundary and
chained (``raise … from exc``); none escapes. Transport failures are classified by
:func:`scd_monitor.net.errors.classify` (the one classifier probes and sinks use too).
Every text an error carries (a fault's code, string and detail as the server sent them,
a message quoting an answer) is cleaned when the error is made
(:func:`scd_monitor.sanitize.clean_text`): valid, NUL-free, bounded.
``kind`` on the first three is a plain string: one of the network kinds
(:class:`~scd_monitor.net.errors.NetErrorKind`: ``dns``, ``connect``, ``tls``,
``timeout``, ``protocol``, ``internal``) or ``status``/``too_large``. Every value is also
a value of the probes' ``ErrorKind`` (``ErrorKind(exc.kind)``), so a probe can copy it
into its outcome; this package never imports the probes.
"""

from __future__ import annotations

from typing import Literal

from scd_monitor.errors import ScdMonitorError
from scd_monitor.sanitize import clean_text

__all__ = [
    "FailureKind",
    "Side",
    "XRoadError",
    "XRoadFailure",
    "XRoadProtocolError",
    "XRoadStatusError",
    "XRoadTransportError",
    "fault_side",
]

FailureKind = Literal[
    "dns", "connect", "tls", "timeout", "status", "too_large", "protocol", "internal"
]
"""What the X-Road client can report: the network kinds, ``status`` and ``too_large``
(each also a value of the probes' ``ErrorKind``)."""

Side = Literal["consumer", "provider", "client", "unknown"]
"""Where an X-Road fault arose: the consumer's security server (``Server.ClientProxy``),
the provider's (``Server.ServerProxy``), the calling information system (``Client``),
or somewhere the code does not say."""


_CODE_LIMIT = 200
_DETAIL_LIMIT = 500


class XRoadFailure(ScdMonitorError):
    """Base of everything the X-Road client raises on purpose."""


class XRoadTransportError(XRoadFailure):
    """No usable answer arrived: DNS, connect, TLS, timeout, a connection cut short.

    ``kind`` is one of ``dns``, ``connect``, ``tls``, ``timeout``, ``protocol`` (the
    connection closed in the middle of the HTTP exchange) or ``internal`` (the monitor's
    own problem, e.g. an unreadable client certificate).
    """

    def __init__(self, kind: FailureKind, message: str) -> None:
        self.kind = kind
        self.message = clean_text(message)
        super().__init__(self.message)


class XRoadProtocolError(XRoadFailure):
    """The answer is not what the protocol says it must be.

    ``kind`` is ``protocol``, or ``too_large`` when the answer was refused for its size
    (before any of it was parsed).
    """

    def __init__(self, message: str, *, kind: FailureKind = "protocol") -> None:
        self.kind = kind
        self.message = clean_text(message)
        super().__init__(self.message)


class XRoadStatusError(XRoadProtocolError):
    """An HTTP status the exchange does not allow, and no X-Road fault in the answer."""

    def __init__(self, status_code: int, message: str) -> None:
        self.status_code = status_code
        super().__init__(message, kind="status")


class XRoadError(XRoadFailure):
    """An X-Road fault: the security server (or the provider behind it) said no.

    ``code`` is the fault code as sent (``Server.ServerProxy.ServiceFailed``…),
    ``side`` is derived from it by :func:`fault_side`. ``detail`` carries the fault
    detail (usually an error id to quote to the operator of the security server).
    """

    def __init__(
        self,
        code: str,
        message: str,
        *,
        detail: str | None = None,
        http_status: int | None = None,
    ) -> None:
        self.code = clean_text(code, limit=_CODE_LIMIT)
        self.message = clean_text(message)
        self.detail = clean_text(detail, limit=_DETAIL_LIMIT) if detail is not None else None
        self.http_status = http_status
        self.side: Side = fault_side(self.code)
        text = f"{self.code}: {self.message}" if self.message else self.code
        super().__init__(f"X-Road fault ({self.side} side) {text}")


def fault_side(code: str) -> Side:
    """Which side a fault code points at, by its first segments, case-insensitively.

    ``Server.ClientProxy.*`` → ``consumer``, ``Server.ServerProxy.*`` → ``provider``,
    ``Client`` or ``Client.*`` → ``client``, anything else → ``unknown``
    (PR-REST §4.6, PR-MESS §2.5).
    """
    segments = [segment.lower() for segment in code.strip().split(".")]
    if segments[:2] == ["server", "clientproxy"]:
        return "consumer"
    if segments[:2] == ["server", "serverproxy"]:
        return "provider"
    if segments[0] == "client":
        return "client"
    return "unknown"
