"""The daemon's HTTP endpoints (aiohttp) over a real socket, with httpx and raw clients."""

from __future__ import annotations

import asyncio
import gzip
import logging
import socket
import threading
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import httpx
import pytest
import structlog
from aiohttp import web
from structlog.testing import capture_logs

from scd_monitor.web import (
    PROMETHEUS_TEXT,
    Readiness,
    WebEndpoints,
    WebServer,
    accepts_gzip,
    web_server,
)
from scd_monitor.web import server as server_module

BODY = b"".join(b"# HELP m%d a metric\n# TYPE m%d gauge\nm%d 1.0\n" % (i, i, i) for i in range(300))


def endpoints_for(
    render: Callable[[], bytes] = lambda: BODY,
    before_render: Callable[[], None] = lambda: None,
    readiness: Callable[[], Readiness] = lambda: Readiness(ready=True),
) -> WebEndpoints:
    return WebEndpoints(render_metrics=render, before_render=before_render, readiness=readiness)


@asynccontextmanager
async def serving(
    endpoints: WebEndpoints, *, keepalive_timeout: float = 15.0
) -> AsyncIterator[WebServer]:
    server = web_server(endpoints, "127.0.0.1", 0, keepalive_timeout=keepalive_timeout)
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


def client(server: WebServer, limits: httpx.Limits | None = None) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        base_url=f"http://127.0.0.1:{server.port}", timeout=5, limits=limits or httpx.Limits()
    )


async def raw_exchange(port: int, request: bytes) -> tuple[int, dict[str, str], bytes]:
    """Send ``request`` on a fresh connection, read until the server closes it."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(request)
        await writer.drain()
        data = await asyncio.wait_for(reader.read(), 5)
    finally:
        writer.close()
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return int(lines[0].split()[1]), headers, body


def get(path: str, *headers: str) -> bytes:
    lines = [f"GET {path} HTTP/1.1", "Host: x", "Connection: close", *headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


async def test_endpoints() -> None:
    readiness = [Readiness(ready=False, reasons=("store: down", "catalog: stale"))]
    renders: list[bool] = []

    def render() -> bytes:
        renders.append(True)
        return b"# HELP x y\n"

    endpoints = endpoints_for(render=render, readiness=lambda: readiness[-1])
    async with serving(endpoints) as server, client(server) as http:
        metrics = await http.get("/metrics", headers={"Accept-Encoding": "identity"})
        assert metrics.status_code == 200
        assert metrics.headers["content-type"] == PROMETHEUS_TEXT
        assert "content-encoding" not in metrics.headers
        assert metrics.content == b"# HELP x y\n"
        assert metrics.headers["server"] == "scd-monitor"
        assert (await http.get("/metrics?debug=1")).content == b"# HELP x y\n"

        health = await http.get("/healthz")
        assert (health.status_code, health.text) == (200, "ok\n")

        not_ready = await http.get("/readyz")
        assert not_ready.status_code == 503
        assert not_ready.headers["content-type"].startswith("application/json")
        assert not_ready.json() == {"ready": False, "reasons": ["store: down", "catalog: stale"]}
        readiness.append(Readiness(ready=True))
        ready = await http.get("/readyz")
        assert (ready.status_code, ready.json()) == (200, {"ready": True, "reasons": []})

        index = await http.get("/")
        assert index.status_code == 200
        assert index.headers["content-type"].startswith("text/html")
        for path in ("/metrics", "/healthz", "/readyz"):
            assert f"href='{path}'" in index.text

        missing = await http.get("/nope")
        assert (missing.status_code, missing.text) == (404, "not found\n")
        assert missing.headers["server"] == "scd-monitor"
        assert (await http.get("/metrics/")).status_code == 404

        for method, path in (("POST", "/metrics"), ("DELETE", "/"), ("PUT", "/readyz")):
            answer = await http.request(method, path, content=b"x")
            assert answer.status_code == 405, (method, path)
            assert answer.headers["allow"] == "GET, HEAD"
            assert answer.text == "method not allowed\n"
    assert len(renders) == 2


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("gzip", True),
        ("gzip, deflate, br", True),
        ("deflate, GZIP;q=0.5", True),
        ("*", True),
        ("", False),
        ("identity", False),
        ("deflate, br", False),
        ("gzip;q=0", False),
        ("gzip;q=0.0, identity", False),
        ("gzip;q=nonsense", False),
        ("gzipped", False),
    ],
)
def test_accepts_gzip(value: str, expected: bool) -> None:
    assert accepts_gzip(value) is expected


async def test_gzip_negotiated() -> None:
    async with serving(endpoints_for()) as server:
        # A raw client, to see the bytes on the wire.
        status, headers, body = await raw_exchange(
            server.port, get("/metrics", "Accept-Encoding: gzip")
        )
        assert status == 200
        assert headers["content-encoding"] == "gzip"
        assert "accept-encoding" in headers["vary"].lower()
        assert headers["content-type"] == PROMETHEUS_TEXT
        assert int(headers["content-length"]) == len(body) < len(BODY) // 5
        assert gzip.decompress(body) == BODY

        status, headers, body = await raw_exchange(server.port, get("/metrics"))
        assert status == 200
        assert "content-encoding" not in headers
        assert "accept-encoding" in headers["vary"].lower()
        assert body == BODY

        status, headers, body = await raw_exchange(
            server.port, get("/metrics", "Accept-Encoding: gzip;q=0, identity")
        )
        assert "content-encoding" not in headers
        assert body == BODY

        # httpx asks for gzip by default, as Prometheus does, and decodes it.
        async with client(server) as http:
            scrape = await http.get("/metrics")
            assert scrape.headers["content-encoding"] == "gzip"
            assert scrape.content == BODY
            plain = await http.get("/metrics", headers={"Accept-Encoding": "identity"})
            assert plain.content == scrape.content


async def test_head() -> None:
    befores: list[bool] = []
    endpoints = endpoints_for(before_render=lambda: befores.append(True))
    async with serving(endpoints) as server, client(server) as http:
        plain = await http.head("/metrics", headers={"Accept-Encoding": "identity"})
        assert plain.status_code == 200
        assert plain.content == b""
        assert plain.headers["content-type"] == PROMETHEUS_TEXT
        assert int(plain.headers["content-length"]) == len(BODY)
        assert "content-encoding" not in plain.headers
        zipped = await http.head("/metrics", headers={"Accept-Encoding": "gzip"})
        assert zipped.headers["content-encoding"] == "gzip"
        assert 0 < int(zipped.headers["content-length"]) < len(BODY)
        for path in ("/healthz", "/readyz", "/"):
            head = await http.head(path)
            assert (head.status_code, head.content) == (200, b""), path
            assert int(head.headers["content-length"]) > 0
        # The connection is still usable after the body-less answers.
        assert (await http.get("/healthz")).text == "ok\n"
    assert len(befores) == 2


async def test_render_failure_is_500_and_the_next_scrape_works(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    failures = [RuntimeError("boom postgresql://u:pw@db/x\nsecond line")]

    def render() -> bytes:
        if failures:
            raise failures.pop()
        return BODY

    before_failures = [ValueError("snapshot failed")]

    def before_render() -> None:
        if before_failures and not failures:
            raise before_failures.pop()

    # A fresh logger: capture_logs does not reach a logger cached by an earlier configure.
    monkeypatch.setattr(server_module, "log", structlog.get_logger("scd_monitor.web"))
    endpoints = endpoints_for(render=render, before_render=before_render)
    async with serving(endpoints) as server, client(server) as http:
        with capture_logs() as logs:
            failed = await http.get("/metrics")
            failed_before = await http.get("/metrics")
        for answer in (failed, failed_before):
            assert answer.status_code == 500
            assert answer.text.count("\n") == 1 and answer.text.endswith("\n")
            assert "Traceback" not in answer.text
            assert "pw" not in answer.text and "boom" not in answer.text
            assert "content-encoding" not in answer.headers
        events = [entry for entry in logs if entry["event"] == "metrics.render_failed"]
        assert len(events) == 2
        assert all(entry["log_level"] == "error" and entry["exc_info"] for entry in events)
        ok = await http.get("/metrics")
        assert (ok.status_code, ok.content) == (200, BODY)
        assert (await http.get("/healthz")).status_code == 200


async def test_concurrent_scrapes_are_serialized() -> None:
    events: list[str] = []
    guard = threading.Lock()
    active = [0, 0]  # now, most at once

    def before_render() -> None:
        events.append("before")

    def render() -> bytes:
        with guard:
            active[0] += 1
            active[1] = max(active[1], active[0])
        time.sleep(0.03)
        events.append("render")
        with guard:
            active[0] -= 1
        return BODY

    endpoints = endpoints_for(render=render, before_render=before_render)
    limits = httpx.Limits(max_connections=10)
    async with serving(endpoints) as server, client(server, limits=limits) as http:
        answers = await asyncio.gather(*(http.get("/metrics") for _ in range(6)))
    assert [answer.status_code for answer in answers] == [200] * 6
    assert all(answer.content == BODY for answer in answers)
    assert active[1] == 1, "two renders ran at once"
    assert events == ["before", "render"] * 6, "before_render once per scrape, in turn"


async def test_healthz_answers_while_a_render_is_in_progress() -> None:
    started = threading.Event()
    release = threading.Event()

    def render() -> bytes:
        started.set()
        release.wait(10)
        return BODY

    async with serving(endpoints_for(render=render)) as server, client(server) as http:
        scrape = asyncio.create_task(http.get("/metrics"))
        try:
            assert await asyncio.to_thread(started.wait, 5)
            began = time.monotonic()
            health = await asyncio.wait_for(http.get("/healthz"), 2)
            assert (health.status_code, health.text) == (200, "ok\n")
            assert time.monotonic() - began < 1
            ready = await asyncio.wait_for(http.get("/readyz"), 2)
            assert ready.status_code == 200
            assert not scrape.done(), "the render is still blocked"
        finally:
            release.set()
        assert (await scrape).content == BODY


async def test_port_taken_raises_oserror_from_start() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        server = web_server(endpoints_for(), "127.0.0.1", port)
        with pytest.raises(OSError):
            await server.start()
        assert not server.running
        await server.stop()  # harmless


async def test_stop_is_prompt_with_idle_keepalive_and_slowloris_clients() -> None:
    server = web_server(endpoints_for(), "127.0.0.1", 0)
    await server.start()
    http = client(server)
    slow_reader, slow_writer = await asyncio.open_connection("127.0.0.1", server.port)
    idle_reader, idle_writer = await asyncio.open_connection("127.0.0.1", server.port)
    try:
        assert (await http.get("/healthz")).status_code == 200  # now idle, kept alive
        slow_writer.write(b"GET /metr")  # half a request line, never finished
        await slow_writer.drain()
        idle_writer.write(get("/healthz").replace(b"Connection: close", b"X-A: b"))
        await idle_writer.drain()
        assert b"ok\n" in await asyncio.wait_for(idle_reader.readuntil(b"ok\n"), 5)
        await asyncio.sleep(0.05)

        began = time.monotonic()
        await asyncio.wait_for(server.stop(), 5)
        assert time.monotonic() - began < 1.0
        # Both raw connections were closed by the server.
        assert await asyncio.wait_for(slow_reader.read(), 2) == b""
        assert await asyncio.wait_for(idle_reader.read(), 2) == b""
        with pytest.raises(httpx.TransportError):
            await http.get("/healthz")
    finally:
        slow_writer.close()
        idle_writer.close()
        await http.aclose()
        await server.stop()


async def test_stop_is_bounded_while_a_render_hangs() -> None:
    started = threading.Event()
    release = threading.Event()
    rendered = threading.Event()

    def render() -> bytes:
        started.set()
        release.wait(10)
        rendered.set()
        return BODY

    endpoints = endpoints_for(render=render)
    server = web_server(endpoints, "127.0.0.1", 0, shutdown_timeout=0.3)
    await server.start()
    try:
        async with client(server) as http:
            scrape = asyncio.create_task(http.get("/metrics"))
            assert await asyncio.to_thread(started.wait, 5)
            began = time.monotonic()
            await asyncio.wait_for(server.stop(), 5)
            assert time.monotonic() - began < 1.5
            with pytest.raises(httpx.TransportError):
                await scrape
        # The thread cannot be stopped: the render lock is held until it returns.
        assert endpoints._lock.locked()
    finally:
        release.set()
    assert await asyncio.to_thread(rendered.wait, 5)
    for _ in range(100):
        if not endpoints._lock.locked():
            break
        await asyncio.sleep(0.01)
    assert not endpoints._lock.locked()


async def test_slowloris_is_closed_after_the_keepalive_timeout() -> None:
    async with serving(endpoints_for(), keepalive_timeout=0.5) as server:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        try:
            began = time.monotonic()
            writer.write(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")  # the head never ends
            await writer.drain()
            await asyncio.sleep(0.3)
            writer.write(b"X-Still: here\r\n")  # trickling bytes does not extend the deadline
            await writer.drain()
            assert await asyncio.wait_for(reader.read(), 3) == b""
            assert 0.4 < time.monotonic() - began < 2.5
        finally:
            writer.close()
        status, _, body = await raw_exchange(server.port, get("/healthz"))
        assert (status, body) == (200, b"ok\n")


@pytest.mark.parametrize(
    "request_bytes",
    [
        pytest.param(get("/healthz", "X-Big: " + "a" * 10_000), id="header-too-long"),
        pytest.param(get("/" + "a" * 10_000), id="request-line-too-long"),
        pytest.param(get("/healthz", *(f"X-H{i}: v" for i in range(110))), id="too-many-headers"),
        pytest.param(b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03" + b"\x00" * 40, id="tls"),
    ],
)
async def test_malformed_request_is_4xx_and_server_keeps_serving(
    request_bytes: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    async with serving(endpoints_for()) as server:
        with caplog.at_level(logging.DEBUG):
            status, _, _ = await raw_exchange(server.port, request_bytes)
        assert 400 <= status < 500
        # The client's fault: no error-level traceback in the daemon's log.
        assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
        status, _, body = await raw_exchange(server.port, get("/healthz"))
        assert (status, body) == (200, b"ok\n")
        status, _, body = await raw_exchange(server.port, get("/metrics"))
        assert (status, body) == (200, BODY)


async def test_a_handful_of_headers_is_fine() -> None:
    async with serving(endpoints_for()) as server:
        status, _, body = await raw_exchange(
            server.port, get("/healthz", *(f"X-H{i}: v" for i in range(90)))
        )
        assert (status, body) == (200, b"ok\n")


async def test_extra_routes_and_a_mounted_subapplication() -> None:
    async def status_page(_request: web.Request) -> web.Response:
        return web.Response(text="all good\n")

    sub = web.Application()
    sub.add_routes([web.get("/summary", status_page)])
    server = web_server(
        endpoints_for(), "127.0.0.1", 0, extra_routes=[web.get("/status", status_page)]
    )
    server.app.add_subapp("/public", sub)
    await server.start()
    try:
        async with client(server) as http:
            assert (await http.get("/status")).text == "all good\n"
            summary = await http.get("/public/summary")
            assert (summary.status_code, summary.text) == (200, "all good\n")
            assert summary.headers["server"] == "scd-monitor"
            assert (await http.get("/public/nope")).text == "not found\n"
            assert (await http.get("/metrics")).content == BODY
    finally:
        await server.stop()


async def test_ipv6_literal() -> None:
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as probe:
            probe.bind(("::1", 0))
    except OSError:
        pytest.skip("no IPv6 loopback")
    server = web_server(endpoints_for(), "::1", 0)
    await server.start()
    try:
        assert server.port > 0
        async with httpx.AsyncClient(base_url=f"http://[::1]:{server.port}") as http:
            assert (await http.get("/healthz")).text == "ok\n"
    finally:
        await server.stop()
