"""The network floor shared by probes, the X-Road client and the sinks.

::

    tls.py     the one builder of TLS client contexts (one trust policy) and their cache
    errors.py  the one classifier of httpx/ssl/socket errors into a closed set of kinds
    backend.py the probes' asyncio network backend for httpcore (no anyio per socket call)

It imports only the configuration types, the standard library, ``certifi``, ``httpx``
and its ``httpcore``; everything that speaks to the network imports it, never the other
way round.
"""

from __future__ import annotations

from scd_monitor.net.errors import NetErrorKind, NetFailure, classify, classify_cause
from scd_monitor.net.tls import ContextCache, build_context

__all__ = [
    "ContextCache",
    "NetErrorKind",
    "NetFailure",
    "build_context",
    "classify",
    "classify_cause",
]
