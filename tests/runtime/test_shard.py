"""Scale (issue 14): replicas of one vantage sharing its checks by a stable hash, the
sharded tracker waiting for result ids still in flight, per-probe lines at ``debug``, and
a probe's duration measured from its own start, not from its wait for a slot."""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import random
import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime, timedelta

import pytest
import structlog
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import insert

from scd_monitor.catalog import ResolvedCheck, parse_catalog
from scd_monitor.clock import Clock, SystemClock
from scd_monitor.probes.base import ErrorKind, Outcome, ProbeResult
from scd_monitor.runtime.pipeline import ResultsPipeline
from scd_monitor.runtime.scheduling import ProbeScheduler
from scd_monitor.runtime.shard import Shard, shard_of
from scd_monitor.runtime.tracker import StateTracker
from scd_monitor.store import ResultRepository, Store
from scd_monitor.store.results import to_row
from scd_monitor.store.tables import probe_results
from tests.conftest import utc

CATALOG = parse_catalog(
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
          - {id: b, kind: tls, host: b.example}
"""
)
BASE = CATALOG.resolved_checks()[0]
A, B = "p/s/a", "p/s/b"
T0 = utc(2026, 11, 2, 10, 0, 0)


def check(provider: str, service: str, name: str) -> ResolvedCheck:
    return dataclasses.replace(BASE, provider=provider, service=service, check=name)


# -- the assignment ------------------------------------------------------------------------


def test_the_hash_is_prometheus_hashmod_and_never_changes() -> None:
    for ident in ("p/s/c", "prestador-a/autenticacion/oidc", "scd-monitor/canaries/dns"):
        digest = hashlib.md5(ident.encode(), usedforsecurity=False).digest()
        for n in (1, 2, 3, 7, 16):
            assert shard_of(ident, n) == int.from_bytes(digest[8:], "big") % n
    # Pinned: a different hash would move checks between the replicas of a running fleet.
    assert [shard_of("p/s/c", n) for n in (1, 2, 3, 5, 16)] == [0, 0, 1, 2, 4]
    assert [shard_of("prestador-a/autenticacion/oidc", n) for n in (1, 2, 3, 5, 16)] == [
        0,
        1,
        0,
        3,
        5,
    ]


def test_the_assignment_does_not_depend_on_the_process() -> None:
    """Python's ``hash()`` of a string changes with PYTHONHASHSEED; the shard must not."""
    idents = [f"prov-{i}/svc-{i % 7}/chk-{i % 3}" for i in range(200)]
    here = [shard_of(i, 5) for i in idents]
    code = (
        "import sys; from scd_monitor.runtime.shard import shard_of; "
        "print(','.join(str(shard_of(i, 5)) for i in sys.argv[1:]))"
    )
    for seed in ("1", "12345"):
        out = subprocess.run(
            [sys.executable, "-c", code, *idents],
            env={"PYTHONHASHSEED": seed, "PATH": ""},
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        assert [int(x) for x in out.strip().split(",")] == here


_slug = st.from_regex(r"[a-z][a-z0-9-]{0,12}", fullmatch=True)


@settings(max_examples=150, deadline=None)
@given(
    idents=st.lists(st.tuples(_slug, _slug, _slug), unique=True, max_size=80),
    n=st.integers(min_value=1, max_value=12),
    seed=st.integers(min_value=0, max_value=2**32 - 1),
)
def test_shards_are_disjoint_cover_every_check_and_stay_put(
    idents: list[tuple[str, str, str]], n: int, seed: int
) -> None:
    checks = [check(*ident) for ident in idents]
    shares = [Shard(i, n).select(checks) for i in range(n)]
    owners: dict[str, list[int]] = {}
    for i, share in enumerate(shares):
        for c in share:
            owners.setdefault(c.id, []).append(i)
    assert set(owners) == {c.id for c in checks}, "the union of the shards is every check"
    assert all(len(o) == 1 for o in owners.values()), "no check is in two shards"
    # The same check lands in the same shard whatever the order or the rest of the catalog.
    rng = random.Random(seed)
    other = rng.sample(checks, k=len(checks) // 2)
    rng.shuffle(other)
    for i in range(n):
        assert {c.id for c in Shard(i, n).select(other)} == {
            c.id for c in other if owners[c.id] == [i]
        }
    assert all(Shard(owners[c.id][0], n).owns(c.id) for c in checks)


def test_the_default_shard_owns_everything_and_bad_shards_are_refused() -> None:
    checks = [check("p", "s", f"c{i}") for i in range(50)]
    assert Shard().select(checks) == checks
    assert Shard().primary and not Shard().sharded
    assert Shard(1, 3).sharded and not Shard(1, 3).primary
    assert str(Shard(2, 3)) == "2/3"
    for index, count in ((3, 3), (0, 0), (-1, 2)):
        with pytest.raises(ValueError, match="i/n"):
            Shard(index, count)


# -- the sharded tracker: result ids still in flight ---------------------------------------


class Clocks(Clock):
    """A fixed instant and a monotonic reading the test moves."""

    def __init__(self, now: datetime) -> None:
        self.at = now
        self.mono = 1000.0

    def now(self) -> datetime:
        return self.at

    def monotonic(self) -> float:
        return self.mono


def result(check_id: str, minute: int, *, ok: bool = True, vantage: str = "v1") -> ProbeResult:
    return ProbeResult(
        check_id=check_id,
        kind="tls",
        vantage=vantage,
        started_at=T0 + timedelta(minutes=minute),
        duration=0.1,
        outcome=Outcome(ok=ok, error_kind=None if ok else ErrorKind.TIMEOUT),
    )


def put(store: Store, ident: int, r: ProbeResult) -> None:
    """Store ``r`` under id ``ident`` (as a writer that took that id commits it)."""
    with store.transaction("test") as conn:
        conn.execute(insert(probe_results).values(id=ident, **to_row(r)))


@pytest.fixture
def sharded(store: Store) -> Iterator[tuple[StateTracker, Clocks]]:
    clock = Clocks(T0 + timedelta(minutes=30))
    t = StateTracker(
        store, vantage="v1", clock=clock, settle=timedelta(seconds=60), keep_latest=True
    )
    t.set_catalog(CATALOG)
    yield t, clock


def test_the_sharded_tracker_waits_for_a_missing_id_then_passes_it(
    store: Store, sharded: tuple[StateTracker, Clocks]
) -> None:
    t, clock = sharded
    put(store, 1, result(A, 0))
    put(store, 3, result(A, 2))  # id 2: another replica's transaction, not committed yet
    assert t.run_until_idle() == 1, "id 3 waits: id 2 may still commit"
    put(store, 2, result(B, 1))
    assert t.run_until_idle() == 2, "id 2 committed: both are tracked, in id order"

    put(store, 5, result(A, 3))  # id 4 never comes (a rolled-back batch)
    assert t.run_until_idle() == 0
    clock.mono += 59
    assert t.run_until_idle() == 0
    clock.mono += 2
    assert t.run_until_idle() == 1, "missing for longer than the settle time: passed"

    # Another vantage's ids are not gaps.
    put(store, 6, result(A, 4, vantage="v2"))
    put(store, 7, result(B, 4))
    assert t.run_until_idle() == 1
    latest = t.latest()
    assert latest[A].started_at == T0 + timedelta(minutes=3)
    assert latest[B].started_at == T0 + timedelta(minutes=4)


def test_the_sharded_tracker_waits_for_a_real_transaction_in_flight(
    postgres_schema_url: str,
) -> None:
    store = Store(postgres_schema_url)
    try:
        store.create_schema()
        clock = Clocks(T0 + timedelta(minutes=30))
        t = StateTracker(store, vantage="v1", clock=clock, settle=timedelta(seconds=60))
        t.set_catalog(CATALOG)
        with store.engine.connect() as slow:  # replica 1's writer, slow to commit
            tx = slow.begin()
            slow.execute(insert(probe_results).values(**to_row(result(B, 0))))
            ResultRepository(store).write([result(A, 0), result(A, 1)])  # replica 0 commits
            assert t.run_until_idle() == 0, "the lower id is in flight: nothing passes it"
            tx.commit()
        assert t.run_until_idle() == 3
        assert set(t.current()) == {A, B}
    finally:
        store.dispose()


def test_state_changes_are_logged_at_info(store: Store) -> None:
    t = StateTracker(store, vantage="v1", clock=Clocks(T0 + timedelta(minutes=30)))
    t.set_catalog(CATALOG)
    ResultRepository(store).write(
        [result(A, m, ok=m < 3 or m > 6) for m in range(10)]  # down at 3, up at 7
    )
    with structlog.testing.capture_logs() as logs:
        t.run_until_idle()
    changes = [(e["state"], e["at"][11:16]) for e in logs if e["event"] == "check.state_changed"]
    assert changes[0][0] == "up"
    assert ("down", "10:05") in changes, "down once failures_to_open failures confirm it"
    assert changes[-1][0] == "up"
    assert all(e["log_level"] == "info" for e in logs if e["event"] == "check.state_changed")
    with structlog.testing.capture_logs() as logs:
        t.rebuild()
    assert not [e for e in logs if e["event"] == "check.state_changed"], "not when replaying"


# -- per-probe lines -----------------------------------------------------------------------


def test_probe_lines_are_debug_unless_the_outcome_changes() -> None:
    pipeline = ResultsPipeline(vantage="v1", sink=lambda _r: None)
    (c,) = [x for x in CATALOG.resolved_checks() if x.id == A]
    outcomes = [
        Outcome(ok=True),
        Outcome(ok=True),
        Outcome.failure(ErrorKind.TIMEOUT, "slow"),
        Outcome.failure(ErrorKind.TIMEOUT, "slow"),
        Outcome.failure(ErrorKind.DNS, "gone"),
        Outcome(ok=True),
        Outcome(ok=True),
    ]
    with structlog.testing.capture_logs() as logs:
        for minute, outcome in enumerate(outcomes):
            pipeline.submit(c, dataclasses.replace(result(A, minute), outcome=outcome, kind=c.kind))
    levels = [e["log_level"] for e in logs if e["event"] == "probe.finished"]
    assert levels == ["info", "debug", "info", "debug", "info", "info", "debug"]


# -- a probe's duration is its own ---------------------------------------------------------


class _AtOnce(random.Random):
    """Every check's first run at the same instant, just after the start: they all queue
    for the slot."""

    def uniform(self, a: float, b: float) -> float:
        return a + 0.2


async def test_a_probe_s_duration_excludes_its_wait_for_a_concurrency_slot() -> None:
    delay = 0.3
    results: list[ProbeResult] = []

    async def probe(_check: ResolvedCheck) -> Outcome:
        await asyncio.sleep(delay)
        return Outcome(ok=True)

    scheduler = ProbeScheduler(
        probes={"tls": probe},
        on_result=lambda _c, r: results.append(r),
        vantage="v1",
        clock=SystemClock(),
        max_concurrency=1,
        rng=_AtOnce(),
    )
    checks = [
        dataclasses.replace(c, interval=timedelta(seconds=30), timeout=timedelta(seconds=1))
        for c in (check("p", "s", f"c{i}") for i in range(4))
    ]
    scheduler.start(checks)
    try:
        for _ in range(100):
            if len(results) == 4:
                break
            await asyncio.sleep(0.05)
    finally:
        await scheduler.stop(5)
    assert len(results) == 4
    lags = sorted(r.lag or 0.0 for r in results)
    # One slot, four probes of 0.3 s due at once: the last waited about 0.9 s for the slot,
    # which is its scheduling lag; its duration is still the probe's own 0.3 s.
    assert lags[-1] >= 2.5 * delay
    assert all(delay * 0.95 <= r.duration < delay + 0.15 for r in results)
