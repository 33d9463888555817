"""The daemon's own HTTP server (aiohttp): ``/metrics``, ``/healthz``, ``/readyz``, ``/``."""

from __future__ import annotations

from scd_monitor.web.server import (
    PROMETHEUS_TEXT,
    Readiness,
    WebEndpoints,
    WebServer,
    accepts_gzip,
    make_app,
    web_server,
)

__all__ = [
    "PROMETHEUS_TEXT",
    "Readiness",
    "WebEndpoints",
    "WebServer",
    "accepts_gzip",
    "make_app",
    "web_server",
]
