"""Hard stops (issue 12, seen 11 and 12): what a daemon logged as probed is stored, once,
whatever kills it and whenever.

Real processes (``python -m scd_monitor run``) against a real target on 127.0.0.1,
stopped with SIGTERM and SIGKILL; "database down" is a PostgreSQL URL nobody answers,
"up" a private PostgreSQL database (seen 11) or an SQLite file (seen 12). Each probe
is one ``probe.finished`` log line; the figures compared are those lines per check and
the rows stored per check. A SIGKILL may fall between a result reaching the spool and
its log line, so each kill allows one stored result more than logged, never one less.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
import yaml

from scd_monitor.errors import StoreError
from scd_monitor.store import ResultRepository, Store
from scd_simulator.rawhttp import Connection, HttpServer, Request, Response
from tests.faults.harness import free_port, wait_until
from tests.store.fixtures.databases import private_postgres_database

pytestmark = pytest.mark.e2e

DOWN = "postgresql+psycopg://scd:pw@127.0.0.1:1/nowhere"
VANTAGE = "crash"


@pytest.fixture
def postgres_database(postgres_url: str) -> Iterator[str]:
    with private_postgres_database(postgres_url) as url:
        yield url


@asynccontextmanager
async def target() -> AsyncIterator[str]:
    async def handler(_request: Request, _conn: Connection) -> Response:
        return Response(200, b'{"status": "UP"}', content_type="application/json")

    async with HttpServer(handler, "127.0.0.1", 0) as server:
        yield f"http://127.0.0.1:{server.port}"


def write_catalog(path: Path, url: str, *, checks: int, interval: str) -> Path:
    catalog = {
        "defaults": {"interval": interval, "timeout": "500ms"},
        "providers": [
            {
                "id": "prestador",
                "name": "Prestador",
                "services": [
                    {
                        "id": "web",
                        "type": "otro",
                        "checks": [
                            {"id": f"c{i:02d}", "kind": "http", "url": f"{url}/{i}"}
                            for i in range(checks)
                        ],
                    }
                ],
            }
        ],
    }
    path.write_text(yaml.safe_dump(catalog, sort_keys=False), encoding="utf-8")
    return path


class Runs:
    """Daemon processes started one after the other on one catalog and spool."""

    def __init__(self, tmp_path: Path, catalog: Path, **env: str) -> None:
        self.tmp_path = tmp_path
        self.catalog = catalog
        self.env = env
        self.logs: list[Path] = []
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, database_url: str) -> None:
        log = self.tmp_path / f"run-{len(self.logs) + 1}.log"
        self.logs.append(log)
        env = {
            **os.environ,
            "SCD_MONITOR_LOG_FORMAT": "json",
            "SCD_MONITOR_LOG_LEVEL": "debug",  # probe.finished per probe
            "SCD_MONITOR_VANTAGE": VANTAGE,
            "SCD_MONITOR_SPOOL_DIR": str(self.tmp_path / "spool"),
            "SCD_MONITOR_EXPORT_DIR": "",
            "SCD_MONITOR_SLA_WORKER": "false",
            "SCD_MONITOR_SHUTDOWN_GRACE": "2s",
            **self.env,
        }
        command = [sys.executable, "-m", "scd_monitor", "run", "--catalog", str(self.catalog)]
        command += ["--listen", f"127.0.0.1:{free_port()}", "--database-url", database_url]
        with log.open("wb") as out:
            self.proc = subprocess.Popen(
                command,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )

    async def stop(self, sig: signal.Signals) -> int:
        assert self.proc is not None
        self.proc.send_signal(sig)
        await wait_until(lambda: self.proc is not None and self.proc.poll() is not None, 30)
        return self.proc.returncode

    def logged(self, runs: slice = slice(None)) -> Counter[str]:
        """``probe.finished`` lines per check, in the runs chosen."""
        counts: Counter[str] = Counter()
        for log in self.logs[runs]:
            for line in log.read_bytes().splitlines():
                if line.startswith(b"{") and b'"probe.finished"' in line:
                    counts[json.loads(line)["check"]] += 1
        return counts

    def cleanup(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def stored(url: str) -> Counter[str]:
    store = Store(url)
    try:
        return Counter(r.check_id for r in ResultRepository(store).read(vantage=VANTAGE))
    except StoreError:  # no tables yet: nothing stored
        return Counter()
    finally:
        store.dispose()


def spooled(tmp_path: Path) -> int:
    return sum(len(f.read_bytes().splitlines()) for f in (tmp_path / "spool").glob("*.jsonl"))


def at_least(runs: Runs, n: int, run: int) -> Callable[[], bool]:
    """Whether the run numbered ``run`` (from 0, still running) logged ``n`` probes."""

    def check() -> bool:
        assert runs.proc is not None and runs.proc.poll() is None, runs.logs[run].read_text()
        return sum(runs.logged(slice(run, run + 1)).values()) >= n

    return check


def assert_each_stored_once(logged: Counter[str], found: Counter[str], *, kills: int) -> None:
    assert set(found) == set(logged)
    lost = {c: logged[c] - found[c] for c in logged if found[c] < logged[c]}
    extra = {c: found[c] - logged[c] for c in logged if found[c] > logged[c] + kills}
    assert not lost, (
        f"{sum(lost.values())} of {sum(logged.values())} logged results not stored "
        f"({len(lost)} checks)"
    )
    assert not extra, f"stored more than logged (+{kills} for the kills): {extra}"


async def test_spooled_results_survive_a_second_crash(
    tmp_path: Path, postgres_database: str
) -> None:
    """Seen 11: database down → SIGTERM (spooled) → start, still down → SIGKILL →
    database up → start, SIGKILL while replaying → start → every logged result stored
    once, the spool empty."""
    async with target() as url:
        runs = Runs(tmp_path, write_catalog(tmp_path / "c.yaml", url, checks=8, interval="1s"))
        try:
            runs.start(DOWN)
            await wait_until(at_least(runs, 30, 0), 30)
            assert await runs.stop(signal.SIGTERM) == 0
            after_sigterm = spooled(tmp_path)
            assert after_sigterm >= 30

            runs.start(DOWN)
            await wait_until(at_least(runs, 30, 1), 30)
            assert await runs.stop(signal.SIGKILL) == -signal.SIGKILL

            runs.start(postgres_database)  # replays, and is killed once it has stored some
            await wait_until(lambda: sum(stored(postgres_database).values()) > 0, 30)
            assert await runs.stop(signal.SIGKILL) == -signal.SIGKILL

            runs.start(postgres_database)
            await wait_until(at_least(runs, 20, 3), 30)
            assert await runs.stop(signal.SIGTERM) == 0
        finally:
            runs.cleanup()
    logged, found = runs.logged(), stored(postgres_database)
    print(  # the figures for docs/reliability.md (pytest -s)
        f"\nseen 11: spooled at SIGTERM {after_sigterm}, logged {sum(logged.values())}, "
        f"stored {sum(found.values())}"
    )
    assert_each_stored_once(logged, found, kills=2)
    assert spooled(tmp_path) == 0


async def test_sigkill_while_writing_loses_nothing(tmp_path: Path) -> None:
    """Seen 12: SIGKILL at 100 results/s with a batch not yet flushed (a 2 s flush
    interval makes sure one is) → the next start stores it, once."""
    db = f"sqlite:///{tmp_path}/crash.db"
    async with target() as url:
        catalog = write_catalog(tmp_path / "c.yaml", url, checks=100, interval="1s")
        runs = Runs(tmp_path, catalog, SCD_MONITOR_STORE_FLUSH_INTERVAL="2s")
        try:
            runs.start(db)
            await wait_until(at_least(runs, 300, 0), 30)
            assert await runs.stop(signal.SIGKILL) == -signal.SIGKILL
            before_restart = sum(stored(db).values())

            runs.start(db)
            await wait_until(at_least(runs, 50, 1), 30)
            assert await runs.stop(signal.SIGTERM) == 0
        finally:
            runs.cleanup()
    logged, found = runs.logged(), stored(db)
    first_run = sum(runs.logged(slice(0, 1)).values())
    print(
        f"\nseen 12: first run logged {first_run}, stored before the restart "
        f"{before_restart} ({first_run - before_restart} in the spool only); "
        f"in all logged {sum(logged.values())}, stored {sum(found.values())}"
    )
    assert before_restart < first_run, "the kill fell on an unflushed batch"
    assert_each_stored_once(logged, found, kills=1)
    assert spooled(tmp_path) == 0
