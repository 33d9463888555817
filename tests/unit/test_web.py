"""The daemon's HTTP endpoints over a real socket."""

from __future__ import annotations

import httpx

from scd_monitor.web import Readiness, WebEndpoints, web_server


async def test_endpoints() -> None:
    readiness = [Readiness(ready=False, reasons=("store: down",))]
    renders: list[bool] = []

    def render() -> bytes:
        renders.append(True)
        return b"# HELP x y\n"

    endpoints = WebEndpoints(
        render_metrics=render, before_render=lambda: None, readiness=lambda: readiness[-1]
    )
    server = web_server(endpoints, "127.0.0.1", 0)
    await server.start()
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.port}") as client:
            metrics = await client.get("/metrics")
            assert metrics.status_code == 200
            assert metrics.headers["content-type"].startswith("text/plain; version=0.0.4")
            assert metrics.content == b"# HELP x y\n"
            assert metrics.headers["server"] == "scd-monitor"
            assert (await client.get("/healthz")).text == "ok\n"
            not_ready = await client.get("/readyz")
            assert not_ready.status_code == 503
            assert not_ready.json() == {"ready": False, "reasons": ["store: down"]}
            readiness.append(Readiness(ready=True))
            assert (await client.get("/readyz")).status_code == 200
            assert (await client.get("/nope")).status_code == 404
            post = await client.post("/metrics", content=b"x")
            assert post.status_code == 405
            assert post.headers["allow"] == "GET, HEAD"
            head = await client.head("/healthz")
            assert head.status_code == 200 and head.content == b""
    finally:
        await server.stop()
    assert len(renders) == 1
