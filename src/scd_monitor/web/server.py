"""The daemon's HTTP endpoints on aiohttp: ``/metrics``, ``/healthz``, ``/readyz`` and ``/``.

``/healthz`` is answered by the event loop itself, so a blocked loop fails it. ``/metrics``
is rendered, and gzipped when the scraper accepts it, in a worker thread, one at a time;
given ``render_metrics_gzip`` (:meth:`DaemonMetrics.render_gzip
<scd_monitor.web.metrics.DaemonMetrics.render_gzip>`: the cached per-check text's
compressed segments reused), the gzipped body comes from it instead of compressing the
whole text at every scrape.

To extend (e.g. a public status page): pass ``extra_routes=`` (aiohttp route definitions) to
:func:`web_server`, or mount a sub-application with ``server.app.add_subapp(prefix, app)``
before :meth:`WebServer.start`; a second listener is ``WebServer(make_app(routes), host, port)``.
"""

from __future__ import annotations

import asyncio
import gzip
import json
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import structlog
from aiohttp import web
from aiohttp.abc import AbstractAccessLogger
from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.typedefs import Handler

__all__ = [
    "PROMETHEUS_TEXT",
    "Readiness",
    "WebEndpoints",
    "WebServer",
    "accepts_gzip",
    "make_app",
    "web_server",
]

log = structlog.get_logger("scd_monitor.web")

PROMETHEUS_TEXT = "text/plain; version=0.0.4; charset=utf-8"
"""What ``generate_latest`` produces (not ``CONTENT_TYPE_LATEST``: 1.0.0 in newer clients)."""

SERVER_HEADER = "scd-monitor"
MAX_LINE_SIZE = 8190
"""Longest request line (and longest header line) accepted, in bytes."""
MAX_FIELD_SIZE = 8190
MAX_HEADERS = 100
KEEPALIVE_TIMEOUT_SECONDS = 15.0
"""How long a connection may wait for (the whole of) its next request."""
SHUTDOWN_TIMEOUT_SECONDS = 3.0
"""How long :meth:`WebServer.stop` lets a request in progress finish (twice, at most)."""
BACKLOG = 128
GZIP_LEVEL = 6

_INDEX = (
    b"<!doctype html><html><head><title>scd-monitor</title></head><body><h1>scd-monitor</h1>"
    b"<ul><li><a href='/metrics'>/metrics</a></li><li><a href='/healthz'>/healthz</a></li>"
    b"<li><a href='/readyz'>/readyz</a></li></ul></body></html>\n"
)


@dataclass(frozen=True, slots=True)
class Readiness:
    ready: bool
    reasons: tuple[str, ...] = ()


def accepts_gzip(accept_encoding: str) -> bool:
    """Whether an ``Accept-Encoding`` value allows gzip (``gzip`` or ``*``, not ``q=0``)."""
    for item in accept_encoding.split(","):
        coding, *params = (part.strip() for part in item.split(";"))
        if coding.lower() not in ("gzip", "x-gzip", "*"):
            continue
        for param in params:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    if float(value) <= 0:
                        break
                except ValueError:
                    break
        else:
            return True
    return False


class WebEndpoints:
    """The handlers of the daemon's own endpoints."""

    def __init__(
        self,
        *,
        render_metrics: Callable[[], bytes],
        before_render: Callable[[], None],
        readiness: Callable[[], Readiness],
        render_metrics_gzip: Callable[[], bytes] | None = None,
    ) -> None:
        self._render = render_metrics
        self._render_gzip = render_metrics_gzip
        self._before_render = before_render
        self._readiness = readiness
        self._lock = asyncio.Lock()

    def routes(self) -> list[web.RouteDef]:
        """GET (and HEAD) routes for the four paths."""
        return [
            web.get("/metrics", self.metrics),
            web.get("/healthz", self.healthz),
            web.get("/readyz", self.readyz),
            web.get("/", self.index),
        ]

    async def metrics(self, request: web.Request) -> web.Response:
        compress = accepts_gzip(request.headers.get("Accept-Encoding", ""))
        try:
            body = await self._render_one(compress)
        except Exception:
            log.exception("metrics.render_failed")
            return web.Response(status=500, text="metrics rendering failed; see the daemon log\n")
        headers = {"Content-Type": PROMETHEUS_TEXT, "Vary": "Accept-Encoding"}
        if compress:
            headers["Content-Encoding"] = "gzip"
        return web.Response(body=body, headers=headers)

    async def healthz(self, _request: web.Request) -> web.Response:
        return web.Response(text="ok\n")

    async def readyz(self, _request: web.Request) -> web.Response:
        state = self._readiness()
        payload = {"ready": state.ready, "reasons": list(state.reasons)}
        return web.Response(
            status=200 if state.ready else 503,
            text=json.dumps(payload) + "\n",
            content_type="application/json",
        )

    async def index(self, _request: web.Request) -> web.Response:
        return web.Response(body=_INDEX, content_type="text/html", charset="utf-8")

    async def _render_one(self, compress: bool) -> bytes:
        """Snapshot on the loop, render (and compress) in a thread; one render at a time.

        The lock is held until the thread is done, even when the request is cancelled
        (at shutdown), so two renders never run at once.
        """
        await self._lock.acquire()
        try:
            self._before_render()
            work = asyncio.ensure_future(asyncio.to_thread(self._render_body, compress))
        except BaseException:
            self._lock.release()
            raise
        work.add_done_callback(self._render_done)
        return await asyncio.shield(work)

    def _render_body(self, compress: bool) -> bytes:
        if compress and self._render_gzip is not None:
            return self._render_gzip()
        body = self._render()
        return gzip.compress(body, compresslevel=GZIP_LEVEL, mtime=0) if compress else body

    def _render_done(self, work: asyncio.Future[bytes]) -> None:
        self._lock.release()
        if not work.cancelled():
            work.exception()  # retrieved: when the request was cancelled nobody else reads it


@web.middleware
async def _plain_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """One-line plain-text 404/405 (with ``Allow``) and 500 answers; no HTML, no traceback."""
    try:
        response = await handler(request)
    except web.HTTPMethodNotAllowed as exc:
        allow = ", ".join(sorted(exc.allowed_methods))
        return web.Response(status=405, text="method not allowed\n", headers={"Allow": allow})
    except web.HTTPNotFound:
        return web.Response(status=404, text="not found\n")
    except web.HTTPException:
        raise
    except Exception:
        log.exception("web.handler_failed", method=request.method, path=request.path)
        return web.Response(status=500, text="internal error\n")
    return response


async def _server_header(_request: web.Request, response: web.StreamResponse) -> None:
    response.headers["Server"] = SERVER_HEADER


class _ClientErrorsAtDebug(logging.Filter):
    """aiohttp logs each malformed request at error level with a traceback: it is the
    client's fault, so it becomes one structlog debug line instead."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, HttpProcessingError) and 400 <= exc.code < 500:
            first_line = exc.message.strip().splitlines()[0] if exc.message.strip() else ""
            peer = record.args[0] if isinstance(record.args, tuple) and record.args else None
            log.debug("web.bad_request", status=exc.code, error=first_line[:200], peer=peer)
            return False
        return True


_protocol_log = logging.getLogger("scd_monitor.web.protocol")
"""aiohttp's connection-level logger for our servers (instead of ``aiohttp.server``)."""
_protocol_log.addFilter(_ClientErrorsAtDebug())


class _AccessLog(AbstractAccessLogger):
    """Access log lines through structlog, at debug."""

    def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
        log.debug(
            "web.request",
            method=request.method,
            path=request.path,
            status=response.status,
            seconds=round(time, 6),
            peer=request.remote,
        )


def make_app(extra_routes: Iterable[web.AbstractRouteDef] = ()) -> web.Application:
    """An application with the error middleware and the ``Server`` header, no routes yet."""
    app = web.Application(middlewares=[_plain_errors])
    app.on_response_prepare.append(_server_header)
    app.add_routes(list(extra_routes))
    return app


class WebServer:
    """Serve one aiohttp application on one TCP listener (``port`` 0: an ephemeral one).

    :meth:`start` raises :class:`OSError` when the address cannot be bound; :attr:`port`
    is then the bound port. :meth:`stop` closes idle and half-received connections at once
    and gives a request in progress ``shutdown_timeout`` seconds (twice at most).
    """

    def __init__(
        self,
        app: web.Application,
        host: str,
        port: int,
        *,
        keepalive_timeout: float = KEEPALIVE_TIMEOUT_SECONDS,
        shutdown_timeout: float = SHUTDOWN_TIMEOUT_SECONDS,
        max_line_size: int = MAX_LINE_SIZE,
        max_field_size: int = MAX_FIELD_SIZE,
        max_headers: int = MAX_HEADERS,
        backlog: int = BACKLOG,
    ) -> None:
        self.app = app
        self.host = host
        self.port = port
        self._backlog = backlog
        self._runner_options: dict[str, Any] = {
            "keepalive_timeout": keepalive_timeout,
            "shutdown_timeout": shutdown_timeout,
            "max_line_size": max_line_size,
            "max_field_size": max_field_size,
            "max_headers": max_headers,
        }
        self._runner: web.AppRunner | None = None

    @property
    def running(self) -> bool:
        return self._runner is not None

    async def start(self) -> None:
        if self._runner is not None:
            raise RuntimeError("web server already started")
        runner = web.AppRunner(
            self.app,
            handle_signals=False,
            access_log_class=_AccessLog,
            logger=_protocol_log,
            handler_cancellation=False,  # a scraper going away does not cancel a render
            **self._runner_options,
        )
        await runner.setup()
        site = web.TCPSite(runner, self.host or None, self.port, backlog=self._backlog)
        try:
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        self.port = int(runner.addresses[0][1])

    async def stop(self) -> None:
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    async def __aenter__(self) -> WebServer:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()


def web_server(
    endpoints: WebEndpoints,
    host: str,
    port: int,
    *,
    extra_routes: Iterable[web.AbstractRouteDef] = (),
    keepalive_timeout: float = KEEPALIVE_TIMEOUT_SECONDS,
    shutdown_timeout: float = SHUTDOWN_TIMEOUT_SECONDS,
) -> WebServer:
    """The daemon's endpoints, plus ``extra_routes``, on ``host:port`` (not started yet)."""
    app = make_app([*endpoints.routes(), *extra_routes])
    return WebServer(
        app, host, port, keepalive_timeout=keepalive_timeout, shutdown_timeout=shutdown_timeout
    )
