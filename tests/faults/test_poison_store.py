"""Poison in the store (issue 12, seen 1 and 2): no single row stops storage.

The edge sanitiser cleans what targets send; these tests put poison *past* it (a check
id with a lone surrogate, NUL and lone surrogates set on an outcome after it was
cleaned, a row a database constraint refuses, a spool line left by an earlier run) and
show that the store survives on its own, on SQLite and on PostgreSQL: every other
result is stored, the poison row is stored in a cleaned form with an ``internal`` note,
the writer stays alive, and ``/readyz`` says whether results are being stored.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml
from sqlalchemy import text

from scd_monitor.catalog.models import ResolvedCheck
from scd_monitor.probes import build_probes
from scd_monitor.probes.base import Outcome, Probe, ProbeResult
from scd_monitor.store import ResultRepository, ResultWriter, Store
from scd_monitor.store.spool import Journal, encode
from scd_simulator.rawhttp import Connection, HttpServer, Request, Response
from tests.faults.harness import Running, assert_keeps_working, running_daemon, wait_until
from tests.store.fixtures.databases import private_postgres_database

HEALTHY = {"sanos/web/inicio", "sanos/web/salud"}
HOSTILE = "hostil/api/objetivo"
T0 = datetime(2026, 12, 1, tzinfo=UTC)


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/poison.db"
        return
    with private_postgres_database(request.getfixturevalue("postgres_url")) as url:
        yield url


def past_the_edge(outcome: Outcome, **fields: object) -> Outcome:
    """``outcome`` with fields set after its own cleaning (a bug, a replayed line)."""
    for name, value in fields.items():
        object.__setattr__(outcome, name, value)
    return outcome


def run(check_id: str, at: datetime, outcome: Outcome | None = None) -> ProbeResult:
    return ProbeResult(check_id, "http", "faults", at, 0.05, outcome or Outcome(ok=True))


def refuse(store: Store, marker: str) -> None:
    """A constraint the store's cleaning knows nothing of: rows whose details contain
    ``marker`` are refused by the database itself."""
    with store.engine.begin() as conn:
        if store.dialect == "sqlite":
            conn.execute(
                text(
                    "CREATE TRIGGER refuse BEFORE INSERT ON scd_probe_results "
                    f"WHEN NEW.details LIKE '%{marker}%' "
                    "BEGIN SELECT RAISE(ABORT, 'refused by a constraint'); END"
                )
            )
        else:
            conn.execute(
                text(
                    "ALTER TABLE scd_probe_results ADD CONSTRAINT refuse "
                    f"CHECK (details::text NOT LIKE '%{marker}%') NOT VALID"
                )
            )


def allow(store: Store) -> None:
    with store.engine.begin() as conn:
        if store.dialect == "sqlite":
            conn.execute(text("DROP TRIGGER refuse"))
        else:
            conn.execute(text("ALTER TABLE scd_probe_results DROP CONSTRAINT refuse"))


def assert_clean(value: object) -> None:
    text_ = json.dumps(value, ensure_ascii=False) if not isinstance(value, str) else value
    text_.encode("utf-8", "strict")
    assert "\x00" not in text_


# -- the writer, fed directly -----------------------------------------------------------


def test_poison_rows_are_stored_cleaned_and_never_stop_the_writer(
    database: str, tmp_path: Path
) -> None:
    store = Store(database)
    store.create_schema()
    refuse(store, "refuse-me")
    writer = ResultWriter(
        ResultRepository(store), journal=Journal(tmp_path / "spool"), batch_size=25
    )
    writer.recover()
    writer.start()
    poisons = [
        past_the_edge(Outcome(ok=False), message="issuer \ud800 fin"),  # seen 1
        past_the_edge(Outcome(ok=False), message="proxy\x00 down"),  # seen 2 (PostgreSQL)
        past_the_edge(Outcome(ok=True), details={"a": [{"b": "\udfff\x00"}]}),
        past_the_edge(Outcome(ok=True), details={"refused": "refuse-me"}),  # bisected
    ]
    submitted = 0
    for i in range(100):
        writer.submit(run("sanos/web/inicio", T0 + timedelta(seconds=i)))
        submitted += 1
        if i % 25 == 10:
            writer.submit(run(f"{HOSTILE}\ud800", T0 + timedelta(seconds=i), poisons[i // 25]))
    assert writer.flush(timeout=20), writer.stats()
    stats = writer.stats()
    assert (stats.alive, stats.healthy, stats.restarts_total) == (True, True, 0)
    assert stats.poisoned_total == len(poisons)
    repository = ResultRepository(store)
    assert len(repository.read(check_id="sanos/web/inicio")) == submitted
    stored = repository.read(check_id=f"{HOSTILE}\ufffd")
    assert len(stored) == len(poisons)
    for result in stored:
        assert_clean(result.outcome.message or "")
        assert_clean(dict(result.outcome.details))
        assert str(result.outcome.details["internal"]).startswith("store: ")
    assert "the database refused this result" in str(stored[-1].outcome.details["internal"])
    assert writer.close(timeout=5)
    assert not list((tmp_path / "spool").glob("results-*.jsonl"))
    allow(store)
    store.dispose()


# -- a daemon --------------------------------------------------------------------------------


class PoisonProbe:
    """The real probe of a kind, whose outcomes for :data:`HOSTILE` carry poison past
    the edge sanitiser (as a probe bug would)."""

    def __init__(self, inner: Probe) -> None:
        self.inner = inner

    async def __call__(self, check: ResolvedCheck) -> Outcome:
        outcome = await self.inner(check)
        if check.id == HOSTILE:
            past_the_edge(
                outcome, message="fall\ud800o \x00", details={"issuer": "\ud800", "x": "\x00"}
            )
        return outcome


@asynccontextmanager
async def serving() -> AsyncIterator[str]:
    async def handler(_request: Request, _conn: Connection) -> Response:
        return Response(200, b'{"status": "UP"}', content_type="application/json")

    async with HttpServer(handler, "127.0.0.1", 0) as server:
        yield f"http://127.0.0.1:{server.port}"


def write_catalog(path: Path, url: str) -> Path:
    def service(provider: str, service: str, checks: list[str]) -> dict[str, object]:
        return {
            "id": provider,
            "name": provider.title(),
            "services": [
                {
                    "id": service,
                    "type": "otro",
                    "checks": [{"id": c, "kind": "http", "url": f"{url}/{c}"} for c in checks],
                }
            ],
        }

    catalog = {
        "defaults": {"interval": "1s", "timeout": "500ms"},
        "providers": [
            service("sanos", "web", ["inicio", "salud"]),
            service("hostil", "api", ["objetivo"]),
        ],
    }
    path.write_text(yaml.safe_dump(catalog, sort_keys=False), encoding="utf-8")
    return path


def seed_spool(spool: Path) -> Path:
    """What an earlier run left: a good line, poison lines, and a line cut in half."""
    spool.mkdir(parents=True)
    lines = [encode(run("sanos/web/retirado", T0))]  # not a check in force: not counted
    for i, fields in enumerate(
        [
            {"check_id": f"{HOSTILE}\ud800"},
            {"message": "nul\x00 y \ud800"},
            {"details": {"kind": "http", "issuer": "\udbff"}},
        ],
        1,
    ):
        row = json.loads(encode(run(HOSTILE, T0 + timedelta(seconds=i))))
        row.update(fields)
        lines.append(json.dumps(row).encode("ascii") + b"\n")
    lines.append(b'{"check_id": "sanos/web/retirado", "vantage": "fau\n')
    path = spool / "results-20261201T000000000000Z-1.jsonl"
    path.write_bytes(b"".join(lines))
    return path


async def readyz(running: Running) -> tuple[int, list[str]]:
    response = await running.get("/readyz")
    return response.status_code, list(response.json()["reasons"])


async def test_a_daemon_stores_everything_around_poison(database: str, tmp_path: Path) -> None:
    spooled = seed_spool(tmp_path / "spool")
    probes = build_probes()
    probes["http"] = PoisonProbe(probes["http"])
    fast = {"state_interval": timedelta(seconds=1), "sla_interval": timedelta(seconds=1)}
    async with (
        serving() as url,
        running_daemon(
            write_catalog(tmp_path / "catalog.yaml", url),
            tmp_path,
            database,
            probes=probes,
            **fast,
        ) as running,
    ):
        await assert_keeps_working(running, HEALTHY, rounds=3)
        writer = running.daemon.writer
        await wait_until(lambda: not spooled.exists(), within=10)
        assert (tmp_path / "spool" / f"rejected-{spooled.name}").is_file()
        logged = running.daemon.pipeline.snapshot().counters[HOSTILE].runs
        await wait_until(lambda: running.stored_counts().get(HOSTILE, 0) >= logged + 2)
        store = Store(database)
        hostile = ResultRepository(store).read(check_id=HOSTILE)
        from_spool = ResultRepository(store).read(check_id=f"{HOSTILE}\ufffd")
        store.dispose()
        assert len(from_spool) == 1 and len(hostile) >= logged + 2
        for result in [*hostile, *from_spool]:
            assert_clean(result.outcome.message or "")
            assert_clean(dict(result.outcome.details))
        live = [r for r in hostile if r.started_at > T0 + timedelta(minutes=1)]
        assert all(str(r.outcome.details["internal"]).startswith("store: ") for r in live)
        stats = writer.stats()
        assert (stats.alive, stats.healthy, stats.restarts_total) == (True, True, 0)
        assert stats.poisoned_total >= len(live) + 1
        assert await readyz(running) == (200, [])
        metrics = (await running.get("/metrics")).text
        assert "scd_store_writer_up 1.0" in metrics
        assert "scd_store_writer_restarts_total 0.0" in metrics
        assert "scd_store_poisoned_results_total 0.0" not in metrics

        # Readiness tells the truth: a database that refuses every row is "not ready",
        # nothing is lost meanwhile, and storage resumes when it takes rows again.
        store = Store(database)
        refuse(store, "")
        try:
            await wait_until(lambda: not writer.stats().healthy, within=10)
            status, reasons = await readyz(running)
            assert status == 503
            assert any("store: last write failed" in r for r in reasons), reasons
        finally:
            allow(store)
            store.dispose()
        await wait_until(lambda: writer.stats().healthy, within=20)
        await assert_keeps_working(running, HEALTHY, rounds=1)
        assert await readyz(running) == (200, [])
