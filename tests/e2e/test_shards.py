"""Two replicas of one vantage (shards 0/2 and 1/2) on one PostgreSQL database, probing
real local HTTP servers: every check probed by exactly one of them, the states and the
SLA those of one daemon over the same results, and a gap left by a stopped replica read
as unknown time, never charged."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from scd_monitor.analysis.reporting import SlaReporter
from scd_monitor.catalog import Catalog, parse_catalog
from scd_monitor.clock import FixedClock, SystemClock
from scd_monitor.config.settings import load_settings
from scd_monitor.probes.base import ErrorKind, Outcome, ProbeResult
from scd_monitor.runtime.daemon import Daemon, build
from scd_monitor.runtime.shard import Shard
from scd_monitor.runtime.tracker import StateTracker
from scd_monitor.sla.model import Period
from scd_monitor.store import ResultRepository, Store
from tests.conftest import utc
from tests.e2e.test_daemon_inprocess import free_port
from tests.probes.probe_servers import respond, routes, serve
from tests.store.fixtures.databases import private_postgres_database

pytestmark = pytest.mark.postgres

OK_CHECKS = [f"ok{i}" for i in range(8)]
DOWN_CHECKS = ["down0", "down1"]


def catalog_for(port: int) -> Catalog:
    def checks(names: list[str]) -> str:
        return "\n".join(
            f"          - {{id: {n}, kind: http, url: 'http://127.0.0.1:{port}/{n}'}}"
            for n in names
        )

    return parse_catalog(
        f"""
defaults: {{interval: 1s, timeout: 500ms}}
providers:
  - id: prestador-a
    name: Prestador A
    services:
      - id: autenticacion
        type: otro
        checks:
{checks([*OK_CHECKS[:4], DOWN_CHECKS[0]])}
  - id: prestador-b
    name: Prestador B
    services:
      - id: carpeta
        type: otro
        checks:
{checks([*OK_CHECKS[4:], DOWN_CHECKS[1]])}
"""
    )


@pytest.fixture
def database(postgres_url: str) -> Iterator[str]:
    with private_postgres_database(postgres_url) as url:
        yield url


def replica(catalog: Catalog, url: str, tmp_path: Path, shard: str) -> Daemon:
    settings = load_settings(
        database_url=url,
        listen=f"127.0.0.1:{free_port()}",
        vantage="bogota",
        shard=shard,
        shutdown_grace=timedelta(seconds=2),
        state_interval=timedelta(seconds=1),
        store_flush_interval=timedelta(milliseconds=100),
        spool_dir=tmp_path / f"spool-{shard.replace('/', '-')}",
        sla_worker=False,
        export_dir="",
    )
    return build(settings, catalog=catalog)


async def wait_until(predicate: Callable[[], bool], within: float = 20) -> None:
    deadline = asyncio.get_running_loop().time() + within
    while not predicate():
        if asyncio.get_running_loop().time() > deadline:
            pytest.fail("condition not met in time")
        await asyncio.sleep(0.05)


async def test_two_replicas_share_the_checks_and_give_one_daemon_s_sla(
    database: str, tmp_path: Path
) -> None:
    app = routes(
        {
            **{f"/{n}": respond(200, b"ok") for n in OK_CHECKS},
            **{f"/{n}": respond(500) for n in DOWN_CHECKS},
        }
    )
    async with serve(app) as server:
        catalog = catalog_for(server.port)
        every = {c.id for c in catalog.resolved_checks()}
        started = SystemClock().now()
        primary = replica(catalog, database, tmp_path, "0/2")
        other = replica(catalog, database, tmp_path, "1/2")
        stops = [asyncio.Event(), asyncio.Event()]
        tasks = [
            asyncio.create_task(d.run(s)) for d, s in zip((primary, other), stops, strict=True)
        ]
        try:
            # Both have probed all their checks, and the down checks are confirmed down.
            await wait_until(
                lambda: (
                    len(primary.pipeline.snapshot().latest) + len(other.pipeline.snapshot().latest)
                    == len(every)
                )
            )
            await wait_until(
                lambda: (
                    sum(1 for s in primary.tracker.current().values() if s.state.value == "down")
                    == len(DOWN_CHECKS)
                )
            )
            primary.publish_snapshot()
            other.publish_snapshot()
            primary_metrics = primary.metrics.render().decode()
            other_metrics = other.metrics.render().decode()
        finally:
            stops[1].set()  # the replica first: the primary tracks its last results
            assert await asyncio.wait_for(tasks[1], 30) == 0
            stops[0].set()
            assert await asyncio.wait_for(tasks[0], 30) == 0
        ended = SystemClock().now()

    # Every check probed by exactly one replica, the one its hash names.
    mine = {c.id for c in primary.pipeline.snapshot().checks}
    theirs = {c.id for c in other.pipeline.snapshot().checks}
    assert mine | theirs == every and not mine & theirs
    assert mine == {c for c in every if Shard(0, 2).owns(c)}
    assert primary.scheduler.job_count + other.scheduler.job_count == len(every)
    runs = {
        cid: (
            primary.pipeline.snapshot().counters.get(cid),
            other.pipeline.snapshot().counters.get(cid),
        )
        for cid in every
    }
    assert all((a is None) != (b is None) for a, b in runs.values()), "one prober per check"
    store = Store(database)
    try:
        stored = Counter(r.check_id for r in ResultRepository(store).read(vantage="bogota"))
        for cid, (a, b) in runs.items():
            assert stored[cid] == (a or b).runs > 0  # type: ignore[union-attr]

        # Series: probes from their own replica; states, service states and SLA only from
        # the primary, for every check of the vantage.
        other_owned = sorted(theirs)[0].split("/")[-1]
        assert f'scd_check_state{{check="{other_owned}"' in primary_metrics
        assert "scd_check_state" not in other_metrics
        assert "scd_service_state" not in other_metrics
        assert f'scd_probe_success{{check="{other_owned}"' in other_metrics

        # The SLA as the two replicas left it equals one daemon's over the same results:
        # the single-daemon tracker derives everything again from the stored results.
        period = Period(started - timedelta(minutes=1), ended + timedelta(seconds=1))
        reporter = SlaReporter(store, catalog, FixedClock(ended + timedelta(seconds=1)))
        sharded = reporter.report(period).to_json()
        single = StateTracker(
            store, vantage="bogota", clock=FixedClock(ended + timedelta(seconds=1))
        )
        single.set_catalog(catalog)
        single.rebuild()
        assert reporter.report(period).to_json() == sharded
        services = {s["service"]: s for s in sharded["services"]}
        assert all(s["charged_downtime_seconds"] > 0 for s in services.values())
    finally:
        store.dispose()


def test_a_stopped_replica_leaves_unknown_time_never_charged(tmp_path: Path) -> None:
    """The replica probing a down check stops for 10 minutes: that stretch is unknown (no
    results), not down; the outage before and after it is charged, the gap is not."""
    catalog = parse_catalog(
        """
defaults: {interval: 1m, timeout: 10s}
providers:
  - id: p
    name: P
    services:
      - id: s
        type: otro
        checks:
          - {id: a, kind: tls, host: a.example}
"""
    )
    t0 = utc(2026, 11, 2, 10, 0, 0)
    minutes = [*range(0, 20), *range(30, 40)]  # no results from minute 20 to 30
    results = [
        ProbeResult(
            check_id="p/s/a",
            kind="tls",
            vantage="bogota",
            started_at=t0 + timedelta(minutes=m),
            duration=0.1,
            outcome=Outcome.failure(ErrorKind.CONNECT, "refused") if m >= 10 else Outcome(ok=True),
        )
        for m in minutes
    ]
    store = Store(f"sqlite:///{tmp_path}/gap.db")
    try:
        store.create_schema()
        ResultRepository(store).write(results)
        now = FixedClock(t0 + timedelta(minutes=40))
        tracker = StateTracker(store, vantage="bogota", clock=now)
        tracker.set_catalog(catalog)
        tracker.run_until_idle()
        report = SlaReporter(store, catalog, now).report(
            Period(t0, t0 + timedelta(minutes=40)), now=now.at
        )
        (service,) = report.services
        figures = service.figures
        # The last result before the stop (minute 19) covers up to its staleness (2 ×
        # interval + timeout = 2m10s): minute 21:10 to 30 is unknown, nothing else.
        assert figures.unknown == timedelta(minutes=8, seconds=50)
        # Down from minute 10 to 21:10 and from 30 to 40: never the unobserved stretch.
        assert figures.charged_downtime == timedelta(minutes=21, seconds=10)
        assert figures.outages_total == 1, "one outage across the gap, as across a restart"
    finally:
        store.dispose()
