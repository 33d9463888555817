"""State spans in the store (:class:`SpanRepository`): cursors, spans, machine snapshots,
forgetting a vantage; on SQLite and PostgreSQL alike."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import insert, select

from scd_monitor.probes.base import ErrorKind, Outcome, ProbeResult
from scd_monitor.sla.derive import MachineSnapshot, Observation, Verdict
from scd_monitor.sla.model import Period, Span, State
from scd_monitor.store import ResultRepository, Store
from scd_monitor.store.spans import SpanRepository, StoredSpan
from scd_monitor.store.tables import check_machines, check_spans, tracker_cursors
from tests.conftest import utc

T0 = utc(2026, 11, 2, 10, 0, 0)
A, B = "p/s/a", "p/s/b"


def span(start: int, end: int, state: State = State.UP, reason: str | None = None) -> Span:
    return Span(T0 + timedelta(minutes=start), T0 + timedelta(minutes=end), state, reason)


def probe(check: str, minute: int, *, vantage: str = "v1", ok: bool = True) -> ProbeResult:
    return ProbeResult(
        check_id=check,
        kind="tls",
        vantage=vantage,
        started_at=T0 + timedelta(minutes=minute),
        duration=0.2,
        outcome=Outcome(ok=ok, error_kind=None if ok else ErrorKind.TIMEOUT),
    )


@pytest.fixture
def repo(store: Store) -> SpanRepository:
    return SpanRepository(store)


def rows(store: Store) -> list[tuple[int, str, str, Span]]:
    with store.engine.connect() as conn:
        found = conn.execute(select(check_spans).order_by(check_spans.c.id)).all()
    return [
        (r.id, r.check_id, r.vantage, Span(r.start, r.end, State(r.state), r.reason)) for r in found
    ]


# -- the cursor and the results after it ----------------------------------------------------


def test_the_cursor_starts_absent_and_advances_per_vantage(
    store: Store, repo: SpanRepository
) -> None:
    with store.transaction("test") as conn:
        assert repo.cursor(conn, "v1") is None
        repo.advance_cursor(conn, "v1", 7, T0)
    with store.transaction("test") as conn:
        assert repo.cursor(conn, "v1") == 7
        repo.advance_cursor(conn, "v1", 12, T0 + timedelta(minutes=1))
        repo.advance_cursor(conn, "v2", 3, T0)
    with store.transaction("test") as conn:
        assert repo.cursor(conn, "v1") == 12
        assert repo.cursor(conn, "v2") == 3
    with store.engine.connect() as conn:
        stored = {r.vantage: r for r in conn.execute(select(tracker_cursors))}
    assert set(stored) == {"v1", "v2"}
    assert stored["v1"].updated_at == T0 + timedelta(minutes=1)


def test_results_after_the_cursor_are_this_vantages_in_id_order(
    store: Store, repo: SpanRepository
) -> None:
    results = ResultRepository(store)
    results.write([probe(A, 0), probe(A, 0, vantage="v2"), probe(B, 1), probe(A, 2, ok=False)])
    with store.transaction("test") as conn:
        everything = repo.results_after(conn, "v1", None, limit=100)
        ids = [i for i, _ in everything]
        assert ids == sorted(ids) and len(ids) == 3
        assert [(r.check_id, r.started_at) for _, r in everything] == [
            (A, T0),
            (B, T0 + timedelta(minutes=1)),
            (A, T0 + timedelta(minutes=2)),
        ]
        assert everything[2][1].outcome.error_kind is ErrorKind.TIMEOUT
        after_first = repo.results_after(conn, "v1", ids[0], limit=100)
        assert [i for i, _ in after_first] == ids[1:]
        assert [i for i, _ in repo.results_after(conn, "v1", None, limit=2)] == ids[:2]
        assert repo.results_after(conn, "v1", ids[-1], limit=100) == []
        (only,) = repo.results_after(conn, "v2", None, limit=100)
        assert only[1].vantage == "v2"


# -- spans ---------------------------------------------------------------------------------


def test_a_continuing_span_extends_the_last_row_and_another_is_appended(
    store: Store, repo: SpanRepository
) -> None:
    with store.transaction("test") as conn:
        first = repo.save_spans(conn, A, "v1", [span(0, 10)])
        assert first is not None
        # Same state and reason, starting where the last ends: the same row grows.
        grown = repo.save_spans(conn, A, "v1", [span(10, 12)], last=first)
        assert grown == StoredSpan(first.id, span(0, 12))
        # Another state, another reason, or a gap: new rows.
        last = repo.save_spans(
            conn,
            A,
            "v1",
            [
                span(12, 15, State.DOWN, "timeout"),
                span(15, 16, State.DOWN, "status"),
                span(20, 25),
            ],
            last=grown,
        )
    assert last is not None and last.span == span(20, 25)
    stored = rows(store)
    assert [(c, v, s) for _, c, v, s in stored] == [
        (A, "v1", span(0, 12)),
        (A, "v1", span(12, 15, State.DOWN, "timeout")),
        (A, "v1", span(15, 16, State.DOWN, "status")),
        (A, "v1", span(20, 25)),
    ]
    assert stored[0][0] == first.id
    assert stored[-1][0] == last.id


def test_without_last_the_stored_last_span_is_read_so_a_restart_extends_it(
    store: Store, repo: SpanRepository
) -> None:
    with store.transaction("round 1") as conn:
        repo.save_spans(conn, A, "v1", [span(0, 5), span(5, 10, State.DOWN, "timeout")])
        repo.save_spans(conn, A, "v2", [span(10, 20, State.DOWN, "timeout")])
        repo.save_spans(conn, B, "v1", [span(10, 20, State.DOWN, "timeout")])
    with store.transaction("round 2, a new process") as conn:
        assert repo.last_span(conn, A, "v1") is not None
        last = repo.save_spans(conn, A, "v1", [span(10, 20, State.DOWN, "timeout")])
        assert repo.last_span(conn, A, "v1") == last
        assert repo.last_span(conn, "p/s/none", "v1") is None
    assert last is not None and last.span == span(5, 20, State.DOWN, "timeout")
    assert [s for _, c, v, s in rows(store) if (c, v) == (A, "v1")] == [
        span(0, 5),
        span(5, 20, State.DOWN, "timeout"),
    ]
    # The other vantage's and the other check's rows were not touched.
    assert [s for _, c, v, s in rows(store) if (c, v) != (A, "v1")] == [
        span(10, 20, State.DOWN, "timeout"),
        span(10, 20, State.DOWN, "timeout"),
    ]


def test_saving_no_spans_changes_nothing(store: Store, repo: SpanRepository) -> None:
    with store.transaction("test") as conn:
        assert repo.save_spans(conn, A, "v1", []) is None
        stored = repo.append_span(conn, A, "v1", span(0, 1))
        assert repo.save_spans(conn, A, "v1", []) == stored
    assert len(rows(store)) == 1


def test_spans_of_a_window_are_those_overlapping_it_per_check_and_vantage(
    store: Store, repo: SpanRepository
) -> None:
    with store.transaction("test") as conn:
        repo.save_spans(
            conn,
            A,
            "v1",
            [
                span(0, 10),
                span(10, 20, State.DOWN, "timeout"),
                span(20, 30),
                span(30, 40, State.DOWN),
            ],
        )
        repo.save_spans(conn, A, "v2", [span(5, 25)])
        repo.save_spans(conn, B, "v1", [span(15, 18, State.MAINTENANCE)])
    window = Period(T0 + timedelta(minutes=10), T0 + timedelta(minutes=30))
    with store.transaction("test") as conn:
        got = repo.spans(conn, window)
        only_a = repo.spans(conn, window, check_ids={A})
    # A span ending at the window's start, or starting at its end, does not overlap it;
    # the others are returned whole (not clipped), in start order.
    assert got == {
        (A, "v1"): [span(10, 20, State.DOWN, "timeout"), span(20, 30)],
        (A, "v2"): [span(5, 25)],
        (B, "v1"): [span(15, 18, State.MAINTENANCE)],
    }
    assert only_a == {k: v for k, v in got.items() if k[0] == A}


# -- machine snapshots ----------------------------------------------------------------------


SNAPSHOT = MachineSnapshot(
    down=True,
    outage_start=T0 + timedelta(minutes=10),
    outage_reason="timeout",
    tail=(Observation(T0 + timedelta(minutes=14), Verdict.FAIL, error="timeout"),),
    current=span(10, 14, State.DOWN, "timeout"),
    last_observation_at=T0 + timedelta(minutes=14),
    last_state=State.DOWN,
    closed_until=T0 + timedelta(minutes=10),
)


def test_machine_snapshots_round_trip_and_are_replaced(store: Store, repo: SpanRepository) -> None:
    empty = MachineSnapshot()
    with store.transaction("test") as conn:
        assert repo.machines(conn) == {}
        repo.save_machine(conn, A, "v1", empty, T0)
        repo.save_machine(conn, A, "v2", empty, T0)
        repo.save_machine(conn, B, "v1", empty, T0)
    with store.transaction("test") as conn:
        repo.save_machine(conn, A, "v1", SNAPSHOT, T0 + timedelta(minutes=15))
    with store.transaction("test") as conn:
        assert repo.machines(conn) == {(A, "v1"): SNAPSHOT, (A, "v2"): empty, (B, "v1"): empty}
        assert repo.machines(conn, vantage="v1") == {(A, "v1"): SNAPSHOT, (B, "v1"): empty}
        assert repo.machines(conn, vantage="v1", check_ids={B}) == {(B, "v1"): empty}
    with store.engine.connect() as conn:
        updated = {
            (r.check_id, r.vantage): r.updated_at for r in conn.execute(select(check_machines))
        }
    assert updated[(A, "v1")] == T0 + timedelta(minutes=15)
    assert updated[(B, "v1")] == T0


def test_snapshots_of_checks_not_asked_for_are_not_parsed(
    store: Store, repo: SpanRepository
) -> None:
    with store.engine.begin() as conn:
        conn.execute(
            insert(check_machines).values(
                check_id="p/s/retired", vantage="v1", snapshot={"version": -1}, updated_at=T0
            )
        )
    with store.transaction("test") as conn:
        repo.save_machine(conn, A, "v1", SNAPSHOT, T0)
        assert repo.machines(conn, check_ids={A, B}) == {(A, "v1"): SNAPSHOT}
        with pytest.raises(ValueError, match="version"):
            repo.machines(conn)


# -- rebuilding and atomicity ----------------------------------------------------------------


def test_forgetting_a_vantage_deletes_only_its_spans_machines_and_cursor(
    store: Store, repo: SpanRepository
) -> None:
    with store.transaction("test") as conn:
        for vantage in ("v1", "v2"):
            repo.save_spans(conn, A, vantage, [span(0, 10)])
            repo.save_machine(conn, A, vantage, SNAPSHOT, T0)
            repo.advance_cursor(conn, vantage, 42, T0)
    with store.transaction("test") as conn:
        repo.forget_vantage(conn, "v1")
    with store.transaction("test") as conn:
        assert repo.cursor(conn, "v1") is None
        assert repo.cursor(conn, "v2") == 42
        assert repo.last_span(conn, A, "v1") is None
        assert repo.machines(conn) == {(A, "v2"): SNAPSHOT}
        assert repo.spans(conn, Period(T0, T0 + timedelta(hours=1))) == {(A, "v2"): [span(0, 10)]}


def test_a_round_is_stored_all_or_nothing_in_the_callers_transaction(
    store: Store, repo: SpanRepository
) -> None:
    with store.transaction("round 1") as conn:
        first = repo.save_spans(conn, A, "v1", [span(0, 10)])
        repo.advance_cursor(conn, "v1", 5, T0)
    with pytest.raises(RuntimeError), store.transaction("round 2") as conn:
        repo.save_spans(conn, A, "v1", [span(10, 20), span(20, 30, State.DOWN)], last=first)
        repo.save_machine(conn, A, "v1", SNAPSHOT, T0)
        repo.advance_cursor(conn, "v1", 9, T0)
        raise RuntimeError("the round fails after writing")
    with store.transaction("test") as conn:
        assert repo.cursor(conn, "v1") == 5
        assert repo.machines(conn) == {}
    assert [s for _, _, _, s in rows(store)] == [span(0, 10)]
