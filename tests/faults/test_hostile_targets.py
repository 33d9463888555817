"""Hostile targets (issue 12): one poisonous answer must never stop the monitor.

Each test runs a real daemon (:func:`~tests.faults.harness.running_daemon`) against real
servers on 127.0.0.1: two healthy targets and one hostile one. Whatever the hostile one
answers, the three invariants hold for the healthy ones (every probe logged is stored,
state and SLA advance, ``/healthz`` under a second), and the hostile check's own results
are stored too, in a sanitised form that says what happened. Storage cases run on SQLite
and on PostgreSQL.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from scd_monitor.probes.base import ErrorKind, ProbeResult
from scd_monitor.store import ResultRepository, Store
from scd_simulator.rawhttp import Connection, HttpServer, Request, Response
from tests.faults.harness import assert_keeps_working, running_daemon
from tests.store.fixtures.databases import private_postgres_database

HEALTHY = {"sanos/web/inicio", "sanos/web/salud"}
HOSTILE = "hostil/api/objetivo"
LONE_SURROGATE_JSON = b'{"issuer": "\\ud800", "status": "UP"}'


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """Each storage case on both databases (a private PostgreSQL database per test)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/hostile.db"
        return
    postgres_url: str = request.getfixturevalue("postgres_url")
    with private_postgres_database(postgres_url) as url:
        yield url


@asynccontextmanager
async def serving(body: bytes, status: int = 200, **headers: str) -> AsyncIterator[str]:
    """A server on 127.0.0.1 that always gives this answer; its base URL."""
    response = Response(
        status, body, content_type="application/json", headers=tuple(headers.items())
    )

    async def handler(_request: Request, _conn: Connection) -> Response:
        return response

    async with HttpServer(handler, "127.0.0.1", 0) as server:
        yield f"http://127.0.0.1:{server.port}"


def write_catalog(path: Path, healthy_url: str, hostile_check: dict[str, Any]) -> Path:
    """Two healthy checks and the hostile one, every second with a 500 ms timeout."""
    catalog = {
        "defaults": {"interval": "1s", "timeout": "500ms"},
        "providers": [
            {
                "id": "sanos",
                "name": "Sanos",
                "services": [
                    {
                        "id": "web",
                        "type": "otro",
                        "checks": [
                            {"id": "inicio", "kind": "http", "url": f"{healthy_url}/"},
                            {
                                "id": "salud",
                                "kind": "http",
                                "url": f"{healthy_url}/salud",
                                "json": [{"path": "status", "equals": "UP"}],
                            },
                        ],
                    }
                ],
            },
            {
                "id": "hostil",
                "name": "Hostil",
                "services": [
                    {"id": "api", "type": "otro", "checks": [{"id": "objetivo", **hostile_check}]}
                ],
            },
        ],
    }
    path.write_text(yaml.safe_dump(catalog, sort_keys=False), encoding="utf-8")
    return path


def stored_results(url: str, check_id: str) -> list[ProbeResult]:
    store = Store(url)
    try:
        return ResultRepository(store).read(check_id=check_id, vantage="faults")
    finally:
        store.dispose()


def assert_clean(text: str | None) -> None:
    """Valid, NUL-free Unicode: what any store, log or header can take."""
    assert text is not None
    text.encode("utf-8", "strict")
    assert "\x00" not in text


FAST = {"state_interval": timedelta(seconds=1), "sla_interval": timedelta(seconds=1)}


async def run_case(
    tmp_path: Path, database_url: str, hostile_check: dict[str, Any]
) -> list[ProbeResult]:
    """Run the daemon on the catalog, check the invariants; the hostile check's results."""
    async with serving(b'{"status": "UP"}') as healthy:
        catalog = write_catalog(tmp_path / "catalog.yaml", healthy, hostile_check)
        async with running_daemon(catalog, tmp_path, database_url, **FAST) as running:
            await assert_keeps_working(running, HEALTHY, rounds=3)
            logged = running.daemon.pipeline.snapshot().counters[HOSTILE].runs
            assert logged >= 2
            await asyncio.sleep(0.7)  # one flush interval and a bit
            stored = stored_results(database_url, HOSTILE)
            assert len(stored) >= logged, "the hostile check's own results are stored too"
    return stored


async def test_a_lone_surrogate_in_a_json_answer_is_stored_sanitised(
    tmp_path: Path, database: str
) -> None:
    async with serving(LONE_SURROGATE_JSON) as hostile:
        check = {
            "kind": "http",
            "url": f"{hostile}/.well-known/openid-configuration",
            "json": [{"path": "issuer", "equals": "https://idp.example"}],
        }
        stored = await run_case(tmp_path, database, check)
    result = stored[-1]
    assert result.error_kind is ErrorKind.ASSERTION
    assert_clean(result.outcome.message)
    assert "\ufffd" in (result.outcome.message or ""), "replaced and marked, not dropped"


async def test_a_nul_byte_in_a_health_check_body_is_stored_sanitised(
    tmp_path: Path, database: str
) -> None:
    async with serving(b"proxy: unhealthy\x00\x01 db down", status=500) as hostile:
        check = {"kind": "xroad_health", "url": f"{hostile}/"}
        stored = await run_case(tmp_path, database, check)
    result = stored[-1]
    assert result.error_kind is ErrorKind.STATUS
    assert result.outcome.status_code == 500
    assert_clean(result.outcome.message)
    assert "unhealthy\u2400\u2401 db down" in (result.outcome.message or "")


async def test_a_lone_surrogate_in_an_xroad_rest_fault_is_stored_sanitised(
    tmp_path: Path, database: str
) -> None:
    fault = json.dumps(
        {"type": "Server.ServerProxy.\ud800", "message": "fall\ud800o", "detail": "id-\udfff"}
    ).encode("ascii")
    async with serving(fault, status=500, **{"X-Road-Error": "Server.ServerProxy.Bad"}) as ss:
        check = {
            "kind": "xroad_metaservice",
            "security_server": {"url": ss, "client": "CO/GOB/8999999999/MONITOR"},
            "metaservice": "rest_list_methods",
            "provider": "CO/GOB/899999001/CARPETA",
        }
        stored = await run_case(tmp_path, database, check)
    result = stored[-1]
    assert result.error_kind is ErrorKind.STATUS
    assert_clean(result.outcome.message)
    assert "fall\ufffdo" in (result.outcome.message or "")
    for value in result.outcome.details.values():
        if isinstance(value, str):
            assert_clean(value)


async def test_a_catastrophic_regex_does_not_block_the_event_loop(tmp_path: Path) -> None:
    # ^(\w+\s?)*$ backtracks exponentially on a run of word characters that ends in a
    # non-word one: about 2 s for this body with Python's re (17.6 s at 28 bytes).
    body = b"a" * 25 + b"!"
    async with serving(body) as hostile:
        check = {"kind": "http", "url": f"{hostile}/", "body_regex": r"^(\w+\s?)*$"}
        started = time.perf_counter()
        stored = await run_case(tmp_path, f"sqlite:///{tmp_path}/regex.db", check)
        elapsed = time.perf_counter() - started
    assert stored[-1].error_kind is ErrorKind.ASSERTION
    assert stored[-1].duration < 0.5, "judged well within the probe's timeout"
    assert elapsed < 15


async def test_check_command_prints_outside_text_without_a_traceback(tmp_path: Path) -> None:
    async with serving(LONE_SURROGATE_JSON) as hostile:
        catalog = write_catalog(
            tmp_path / "catalog.yaml",
            hostile,
            {"kind": "http", "url": f"{hostile}/", "json": [{"path": "issuer", "equals": "x"}]},
        )
        command = [sys.executable, "-m", "scd_monitor", "check", "--catalog", str(catalog)]
        for fmt, encoding in [("table", "utf-8"), ("json", "utf-8"), ("table", "ascii")]:
            proc = await asyncio.to_thread(
                subprocess.run,
                [*command, "--format", fmt, HOSTILE],
                capture_output=True,
                timeout=60,
                check=False,
                env={**os.environ, "PYTHONIOENCODING": encoding},
            )
            assert b"Traceback" not in proc.stderr, proc.stderr.decode(errors="replace")
            assert proc.returncode == 1, proc.stderr.decode(errors="replace")
            out = proc.stdout.decode(encoding)  # strictly: valid in the terminal's encoding
            assert HOSTILE in out
            if encoding == "utf-8":
                assert "\ufffd" in (json.loads(out)[0]["message"] if fmt == "json" else out)
