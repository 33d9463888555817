"""The probes' asyncio network backend against httpcore's own (anyio) backend.

The reference is httpx's default transport: for every way a target can behave (answer,
large body, refuse, hang, reset, close, lie about the length, TLS faults), the probes'
transport must end the same way, in the same exception class, classified as the same
kind by :func:`~scd_monitor.net.errors.classify`. Real servers on 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import httpcore
import httpx
import pytest

from scd_monitor.net.backend import AsyncioBackend, probe_transport
from scd_monitor.net.errors import classify
from scd_simulator.certs import CertificateAuthority
from scd_simulator.rawhttp import Connection, Request, Response
from tests.probes.probe_servers import (
    close_silently,
    garbage,
    hang,
    reset,
    respond,
    serve,
    serve_raw,
    server_context,
    truncated,
    unused_port,
    wait_for_eof,
)

Ending = tuple[str, str, int | None, int]
"""Exception class name (or ``ok``), classified kind, status, body length."""


async def _exchange(url: str, transport: httpx.AsyncBaseTransport, limit: float) -> Ending:
    async with httpx.AsyncClient(transport=transport, timeout=limit, trust_env=False) as client:
        try:
            response = await client.get(url)
        except (httpx.HTTPError, OSError) as exc:
            return type(exc).__name__, classify(exc).kind.value, None, 0
    return "ok", "", response.status_code, len(response.content)


async def _both(url: str, context: ssl.SSLContext, limit: float = 1.0) -> tuple[Ending, Ending]:
    reference = httpx.AsyncHTTPTransport(verify=context, trust_env=False)
    return (
        await _exchange(url, reference, limit),
        await _exchange(url, probe_transport(context), limit),
    )


def _client_context(ca: CertificateAuthority | None = None) -> ssl.SSLContext:
    context = ssl.create_default_context()
    if ca is not None:
        context.load_verify_locations(cadata=ca.cert_pem.decode())
    return context


async def _big(_request: Request, _conn: Connection) -> Response:
    return Response(200, bytes(range(256)) * 8192)  # 2 MiB: reading pauses and resumes


def test_the_probe_transport_pool_runs_on_the_asyncio_backend() -> None:
    # httpx takes no network backend: probe_transport replaces its pool. An httpx
    # upgrade that renames the attribute must fail here.
    transport = probe_transport(ssl.create_default_context())
    pool = transport._pool
    assert isinstance(pool, httpcore.AsyncConnectionPool)
    assert isinstance(pool._network_backend, AsyncioBackend)


@pytest.mark.parametrize(
    "app",
    [respond(200, b"ok"), respond(503), _big, hang, reset, close_silently, garbage, truncated],
    ids=["ok", "503", "2MiB", "hang", "reset", "close", "garbage", "truncated"],
)
async def test_plain_http_ends_as_with_httpx_default_backend(app: Any) -> None:
    async with serve(app) as server:
        reference, ours = await _both(server.url("/x"), _client_context(), limit=0.5)
    assert ours == reference
    if app is _big:
        assert ours == ("ok", "", 200, 2 * 1024 * 1024)


async def test_refused_and_silent_tls_end_as_with_httpx_default_backend() -> None:
    refused = f"http://127.0.0.1:{unused_port()}/"
    reference, ours = await _both(refused, _client_context())
    assert ours == reference == ("ConnectError", "connect", None, 0)
    async with serve_raw(wait_for_eof) as silent:  # TCP up, no TLS answer
        reference, ours = await _both(silent.url("/", scheme="https"), _client_context(), 0.3)
    assert ours == reference == ("ConnectTimeout", "timeout", None, 0)


async def test_tls_faults_end_as_with_httpx_default_backend(tmp_path: Path) -> None:
    ca = CertificateAuthority("backend-test CA")
    other = CertificateAuthority("someone else")
    good = server_context(ca.issue(["127.0.0.1"]), tmp_path)
    endings: dict[str, tuple[Ending, Ending]] = {}
    async with serve(respond(200, b"secure"), ssl_context=good) as server:
        url = server.url("/", scheme="https")
        endings["trusted"] = await _both(url, _client_context(ca))
        endings["untrusted"] = await _both(url, _client_context(other))
    async with serve(respond(200), ssl_context=good) as server:
        # the server speaks TLS, the client plain HTTP: garbage back
        endings["plain-to-tls"] = await _both(server.url("/"), _client_context(ca))
    async with serve(respond(200)) as server:  # plain server, TLS client
        endings["tls-to-plain"] = await _both(server.url("/", scheme="https"), _client_context(ca))
    for name, (reference, ours) in endings.items():
        assert ours == reference, name
    assert endings["trusted"][1] == ("ok", "", 200, 6)
    assert endings["untrusted"][1][1] == "tls"


async def test_a_read_timeout_closes_the_connection() -> None:
    async with serve(hang) as server:
        before = len(asyncio.all_tasks())
        ending = await _exchange(server.url(), probe_transport(_client_context()), limit=0.2)
        # The server's handler (hang) ends only when the client's socket closes.
        for _ in range(100):
            if len(asyncio.all_tasks()) <= before:
                break
            await asyncio.sleep(0.02)
        after = len(asyncio.all_tasks())
    assert ending == ("ReadTimeout", "timeout", None, 0)
    assert server.connections == 1
    assert after <= before


async def test_tls_stream_exposes_the_ssl_object_for_certificates(tmp_path: Path) -> None:
    ca = CertificateAuthority("backend-test CA")
    good = server_context(ca.issue(["127.0.0.1"]), tmp_path)
    seen: dict[str, Any] = {}

    async def trace(name: str, info: Mapping[str, Any]) -> None:
        if name == "connection.start_tls.complete":
            stream = info["return_value"]
            seen["ssl_object"] = stream.get_extra_info("ssl_object")
            seen["server_addr"] = stream.get_extra_info("server_addr")

    async with serve(respond(200, b"ok"), ssl_context=good) as server:
        transport = probe_transport(_client_context(ca))
        async with httpx.AsyncClient(transport=transport, trust_env=False) as client:
            response = await client.get(
                server.url("/", scheme="https"), extensions={"trace": trace}
            )
    assert response.status_code == 200
    assert isinstance(seen["ssl_object"], ssl.SSLObject)
    assert seen["ssl_object"].getpeercert(binary_form=True)
    assert seen["server_addr"] == ("127.0.0.1", server.port)
