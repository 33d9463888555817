"""The state tracker over SQLite and PostgreSQL: spans as stored facts, restarts, rebuilds."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
import structlog
from sqlalchemy import select

from scd_monitor.catalog import parse_catalog
from scd_monitor.clock import FixedClock
from scd_monitor.probes.base import ErrorKind, Outcome, ProbeResult
from scd_monitor.runtime.tracker import StateTracker
from scd_monitor.sla.derive import CheckStateMachine
from scd_monitor.sla.model import Span, State
from scd_monitor.store import ResultRepository, Store
from scd_monitor.store.tables import check_spans, latency_daily, latency_hourly
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
        sla: {latency_threshold: 1s}
        checks:
          - {id: a, kind: tls, host: a.example}
          - {id: b, kind: tls, host: b.example}
"""
)
T0 = utc(2026, 11, 2, 10, 0, 0)
A, B = "p/s/a", "p/s/b"


def probe(check: str, minute: int, ok: bool, duration: float = 0.2) -> ProbeResult:
    return ProbeResult(
        check_id=check,
        kind="tls",
        vantage="v1",
        started_at=T0 + timedelta(minutes=minute),
        duration=duration,
        outcome=Outcome(ok=ok, error_kind=None if ok else ErrorKind.TIMEOUT),
    )


# Check a: up for 10 min, down from minute 10 (5 failures), up again from minute 15.
HISTORY_A = [probe(A, m, ok=not 10 <= m < 15) for m in range(30)]
# Check b: a 2-probe blip (below failures_to_open=3) and slow probes.
HISTORY_B = [probe(B, m, ok=m not in (5, 6), duration=1.5 if m >= 20 else 0.3) for m in range(30)]


def tracker(store: Store, now: datetime) -> StateTracker:
    t = StateTracker(store, vantage="v1", clock=FixedClock(now), batch_limit=7)
    t.set_catalog(CATALOG)
    return t


def stored_spans(store: Store, check: str) -> list[Span]:
    with store.engine.connect() as conn:
        rows = conn.execute(
            select(check_spans).where(check_spans.c.check_id == check).order_by(check_spans.c.start)
        ).all()
    return [Span(r.start, r.end, State(r.state), r.reason) for r in rows]


def interleaved() -> list[ProbeResult]:
    return sorted(HISTORY_A + HISTORY_B, key=lambda r: (r.started_at, r.check_id))


def test_spans_are_derived_and_stored(store: Store) -> None:
    ResultRepository(store).write(interleaved())
    t = tracker(store, T0 + timedelta(minutes=30))
    assert t.run_until_idle() == 60
    spans_a = stored_spans(store, A)
    assert Span(T0 + timedelta(minutes=10), T0 + timedelta(minutes=15), State.DOWN, "timeout") in (
        spans_a
    )
    assert spans_a[0] == Span(T0, T0 + timedelta(minutes=10), State.UP, None)
    assert not any(s.state is State.DOWN for s in stored_spans(store, B))
    current = t.current()
    assert current[A].state is State.UP
    assert current[B].state is State.DEGRADED
    assert t.run_once() == 0, "nothing is processed twice"


def test_a_restart_continues_an_outage_and_equals_one_uninterrupted_run(store: Store) -> None:
    results = interleaved()
    first, second = results[:26], results[26:]  # minutes 0-12: a has failed 3 times
    ResultRepository(store).write(first)
    t1 = tracker(store, T0 + timedelta(minutes=13))
    t1.run_until_idle()
    assert t1.current()[A].state is State.DOWN
    assert t1.current()[A].since == T0 + timedelta(minutes=10)

    ResultRepository(store).write(second)
    t2 = tracker(store, T0 + timedelta(minutes=30))  # a new process: state from the store
    t2.run_until_idle()
    resumed = {c: stored_spans(store, c) for c in (A, B)}

    t2.rebuild()
    rebuilt = {c: stored_spans(store, c) for c in (A, B)}
    assert resumed == rebuilt
    downs = [s for s in resumed[A] if s.state is State.DOWN]
    assert downs == [
        Span(T0 + timedelta(minutes=10), T0 + timedelta(minutes=15), State.DOWN, "timeout")
    ]


def test_latency_rollups(store: Store) -> None:
    ResultRepository(store).write(HISTORY_B)
    t = tracker(store, T0 + timedelta(minutes=30))
    t.run_until_idle()
    with store.engine.connect() as conn:
        (row,) = conn.execute(select(latency_hourly)).all()
    assert row.hour == T0
    assert row.ok_count == 28
    assert row.under_threshold_count == 28 - 10
    with store.engine.connect() as conn:
        (day,) = conn.execute(select(latency_daily)).all()
    assert (day.day, day.ok_count, day.under_threshold_count) == (T0.replace(hour=0), 28, 18)
    assert day.histogram == row.histogram
    t.rebuild()
    with store.engine.connect() as conn:
        (again,) = conn.execute(select(latency_hourly)).all()
        (day_again,) = conn.execute(select(latency_daily)).all()
    assert (again.ok_count, again.under_threshold_count) == (28, 18)
    assert (day_again.ok_count, day_again.under_threshold_count) == (28, 18)  # not doubled


def test_out_of_order_results_are_skipped_and_counted(store: Store) -> None:
    ResultRepository(store).write(HISTORY_A[5:])
    t = tracker(store, T0 + timedelta(minutes=30))
    t.run_until_idle()
    ResultRepository(store).write(HISTORY_A[:5])  # e.g. replayed from the spool
    assert t.run_until_idle() == 5
    assert t.out_of_order_total == 5


def test_pruning_keeps_what_the_tracker_has_not_processed_and_the_spans(store: Store) -> None:
    ResultRepository(store).write(HISTORY_A[:20])
    t = tracker(store, T0 + timedelta(minutes=30))
    t.run_until_idle()
    ResultRepository(store).write(HISTORY_A[20:])  # not processed yet
    spans_before = stored_spans(store, A)
    deleted = ResultRepository(store).prune(vantage="v1", older_than=T0 + timedelta(hours=1))
    assert deleted == 20
    assert [r.started_at for r in ResultRepository(store).read()] == [
        r.started_at for r in HISTORY_A[20:]
    ]
    assert stored_spans(store, A) == spans_before
    assert ResultRepository(store).prune(vantage="other", older_than=T0 + timedelta(hours=1)) == 0


def test_a_new_check_that_never_succeeded_reads_unknown_everywhere(store: Store) -> None:
    """Issue 11 point 2: two DNS failures on a new check read ``unknown`` in the check
    state, the service state and the SLA (no availability), not ``up``."""
    from prometheus_client import CollectorRegistry
    from prometheus_client.exposition import generate_latest

    from scd_monitor.analysis.reporting import SlaReporter
    from scd_monitor.sla.model import Period
    from scd_monitor.web.metrics import StateCollector

    dns = [
        ProbeResult(
            check_id=check,
            kind="tls",
            vantage="v1",
            started_at=T0 + timedelta(minutes=m),
            duration=0.01,
            outcome=Outcome.failure(ErrorKind.DNS, "Name or service not known"),
        )
        for m in (0, 1)
        for check in (A, B)
    ]
    ResultRepository(store).write(dns)
    now = T0 + timedelta(minutes=1, seconds=30)
    t = tracker(store, now)
    t.run_until_idle()
    assert t.current()[A].state is State.UNKNOWN
    assert t.current()[A].since is None

    clock = FixedClock(now)
    registry = CollectorRegistry()
    registry.register(
        StateCollector(
            checks=CATALOG.resolved_checks,
            catalog=lambda: CATALOG,
            states=t.current,
            sla=lambda: None,
            vantage="v1",
            clock=clock,
        )
    )
    text = generate_latest(registry).decode()
    assert (
        'scd_check_state{check="a",provider="p",service="s",state="unknown",vantage="v1"} 1.0'
        in (text)
    )
    assert 'state="up",vantage="v1"} 1.0' not in text
    assert "\nscd_service_up{" not in text

    report = SlaReporter(store, CATALOG, clock).report(Period(T0, now), now=now)
    (figures,) = [s.figures for s in report.services]
    assert figures.availability is None
    assert figures.charged_downtime == timedelta()
    assert figures.unknown == now - T0


def test_a_result_one_machine_cannot_take_is_skipped_and_the_others_go_on(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One bad check (or one bad result) never stops the state of the others."""
    ResultRepository(store).write(interleaved())
    feed = CheckStateMachine.feed

    def poisoned(self: CheckStateMachine, result: ProbeResult) -> list[Span]:
        if result.check_id == B and result.started_at == T0 + timedelta(minutes=7):
            raise ValueError("a value nothing foresaw")
        return feed(self, result)

    monkeypatch.setattr(CheckStateMachine, "feed", poisoned)
    t = tracker(store, T0 + timedelta(minutes=30))
    with structlog.testing.capture_logs() as logs:
        assert t.run_until_idle() == 60, "the cursor moves past the bad result"
    assert t.failed_results_total == 1
    (event,) = [e for e in logs if e["event"] == "state.result_failed"]
    assert event["check"] == B
    downs = [s for s in stored_spans(store, A) if s.state is State.DOWN]
    assert downs == [
        Span(T0 + timedelta(minutes=10), T0 + timedelta(minutes=15), State.DOWN, "timeout")
    ]
    assert t.current()[B].state is State.DEGRADED


def test_a_failed_round_of_any_kind_leaves_memory_at_the_stored_facts(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A bug in the middle of a round (not only a database error) rolls the round back
    and drops the machines, so the retry neither loses nor doubles anything."""
    results = interleaved()
    ResultRepository(store).write(results)
    t = tracker(store, T0 + timedelta(minutes=30))
    save = t._spans.save_machines

    def broken(*_args: object, **_kwargs: object) -> None:
        raise RuntimeError("a bug after the machines were fed")

    monkeypatch.setattr(t._spans, "save_machines", broken)
    with pytest.raises(RuntimeError):
        t.run_once()
    monkeypatch.setattr(t._spans, "save_machines", save)
    assert t.run_until_idle() == 60
    spans = {c: stored_spans(store, c) for c in (A, B)}
    t.rebuild()
    assert {c: stored_spans(store, c) for c in (A, B)} == spans
