"""The daemon's HTTP endpoints: ``/metrics``, ``/healthz``, ``/readyz``.

``/healthz`` is answered by the event loop itself, so a blocked loop fails it.
``/metrics`` is rendered in a worker thread from a snapshot taken on the loop.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from dataclasses import dataclass

import structlog

from scd_monitor.httpserver import Connection, HttpServer, Request, Response

log = structlog.get_logger("scd_monitor.web")

PROMETHEUS_TEXT = "text/plain; version=0.0.4; charset=utf-8"


@dataclass(frozen=True, slots=True)
class Readiness:
    ready: bool
    reasons: tuple[str, ...] = ()


class WebEndpoints:
    """Routes requests to the three endpoints."""

    def __init__(
        self,
        *,
        render_metrics: Callable[[], bytes],
        before_render: Callable[[], None],
        readiness: Callable[[], Readiness],
    ) -> None:
        self._render = render_metrics
        self._before_render = before_render
        self._readiness = readiness
        self._lock = asyncio.Lock()

    async def handle(self, request: Request, _conn: Connection) -> Response:
        if request.method not in ("GET", "HEAD"):
            return Response(405, b"method not allowed\n", headers=(("Allow", "GET, HEAD"),))
        if request.path == "/metrics":
            async with self._lock:
                self._before_render()
                try:
                    body = await asyncio.to_thread(self._render)
                except Exception as exc:
                    log.exception("metrics.render_failed")
                    return Response(500, f"metrics rendering failed: {exc}\n".encode())
            return Response(200, body, content_type=PROMETHEUS_TEXT)
        if request.path == "/healthz":
            return Response(200, b"ok\n")
        if request.path == "/readyz":
            state = self._readiness()
            payload = {"ready": state.ready, "reasons": list(state.reasons)}
            return Response(
                200 if state.ready else 503,
                (json.dumps(payload) + "\n").encode(),
                content_type="application/json",
            )
        if request.path == "/":
            return Response(
                200,
                b"<html><body><h1>scd-monitor</h1><ul><li><a href='/metrics'>/metrics</a></li>"
                b"<li><a href='/healthz'>/healthz</a></li><li><a href='/readyz'>/readyz</a>"
                b"</li></ul></body></html>\n",
                content_type="text/html; charset=utf-8",
            )
        return Response(404, b"not found\n")


def web_server(endpoints: WebEndpoints, host: str, port: int) -> HttpServer:
    return HttpServer(endpoints.handle, host, port, server_header="scd-monitor")
