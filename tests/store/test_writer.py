"""The batched result writer: batches, flushes, survives a dead database, never silent."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import replace
from datetime import timedelta

from scd_monitor.errors import StoreError
from scd_monitor.probes.base import Outcome, ProbeResult
from scd_monitor.store import ResultRepository, ResultWriter, Store
from scd_monitor.store.results import RejectedRowsError
from tests.conftest import utc

T0 = utc(2026, 11, 1, 0, 0, 0)


def results(n: int, start: int = 0) -> list[ProbeResult]:
    return [
        ProbeResult(
            check_id="p/s/c",
            kind="http",
            vantage="v",
            started_at=T0 + timedelta(seconds=i),
            duration=0.1,
            outcome=Outcome(ok=True),
        )
        for i in range(start, start + n)
    ]


class FlakyStore:
    """Result storage that refuses writes while ``down`` is set (a unit-test double of
    :class:`ResultRepository`)."""

    def __init__(self) -> None:
        self.down = threading.Event()
        self.batches: list[list[ProbeResult]] = []
        self.failures = 0

    def write(self, batch: Sequence[ProbeResult]) -> int:
        if self.down.is_set():
            self.failures += 1
            raise StoreError("database is down")
        self.batches.append(list(batch))
        return 0


def test_writes_everything_in_batches_to_a_real_store(tmp_path: object) -> None:
    store = Store(f"sqlite:///{tmp_path}/w.db")
    store.create_schema()
    writer = ResultWriter(ResultRepository(store), batch_size=100, flush_interval=0.05)
    writer.start()
    for r in results(250):
        writer.submit(r)
    assert writer.close(timeout=10)
    stats = writer.stats()
    assert stats.written_total == 250
    assert stats.batches_total >= 3
    assert stats.pending == 0
    assert [r.started_at for r in ResultRepository(store).read()] == [
        r.started_at for r in results(250)
    ]


def test_a_dead_database_buffers_and_recovers_without_loss() -> None:
    flaky = FlakyStore()
    flaky.down.set()
    writer = ResultWriter(flaky, batch_size=50, flush_interval=0.02, max_backoff=0.05)  # type: ignore[arg-type]
    writer.start()
    for r in results(120):
        writer.submit(r)
    assert not writer.flush(timeout=0.5)
    stats = writer.stats()
    assert not stats.healthy
    assert stats.pending == 120
    assert stats.errors_total >= 1
    assert stats.last_error == "database is down"
    flaky.down.clear()
    for r in results(30, start=120):
        writer.submit(r)
    assert writer.close(timeout=5)
    written = [r for batch in flaky.batches for r in batch]
    assert [r.started_at for r in written] == [r.started_at for r in results(150)]
    assert writer.stats().healthy
    assert writer.stats().dropped_total == 0


def test_a_full_buffer_drops_the_oldest_and_counts_it() -> None:
    flaky = FlakyStore()
    flaky.down.set()
    writer = ResultWriter(
        flaky,  # type: ignore[arg-type]
        batch_size=10,
        flush_interval=0.02,
        buffer_limit=1000,
        max_backoff=0.05,
    )
    writer.start()
    for r in results(1100):
        writer.submit(r)
    stats = writer.stats()
    assert stats.dropped_total == 100
    assert stats.pending == 1000
    flaky.down.clear()
    assert writer.close(timeout=5)
    written = [r for batch in flaky.batches for r in batch]
    assert len(written) == 1000
    assert written[0].started_at == T0 + timedelta(seconds=100)


# -- poison rows, crashes (issue 12) -----------------------------------------------------


class PickyStore:
    """Result storage that refuses, as a database does, any batch holding a result whose
    message is ``"poison"`` (a unit-test double of :class:`ResultRepository`)."""

    def __init__(self, *, refuse_isolated: bool = False) -> None:
        self.stored: list[ProbeResult] = []
        self.isolated: list[ProbeResult] = []
        self.attempts = 0
        self.refuse_isolated = refuse_isolated

    def write(self, batch: Sequence[ProbeResult]) -> int:
        self.attempts += 1
        if any(r.outcome.message == "poison" for r in batch):
            raise RejectedRowsError("invalid byte sequence for encoding UTF8")
        self.stored.extend(batch)
        return 0

    def write_isolated(self, result: ProbeResult, refusal: BaseException) -> None:
        if self.refuse_isolated:
            raise RejectedRowsError("relation scd_probe_results does not exist")
        self.isolated.append(result)


def poisoned(results: list[ProbeResult], *at: int) -> list[ProbeResult]:
    return [
        replace(r, outcome=Outcome(ok=False, message="poison")) if i in at else r
        for i, r in enumerate(results)
    ]


def test_a_refused_row_is_isolated_and_every_other_row_written() -> None:
    picky = PickyStore()
    writer = ResultWriter(picky, batch_size=64, flush_interval=0.02)  # type: ignore[arg-type]
    writer.start()
    batch = poisoned(results(128), 5, 77)
    for r in batch:
        writer.submit(r)
    assert writer.close(timeout=5)
    assert [r.started_at for r in picky.isolated] == [batch[5].started_at, batch[77].started_at]
    good = [r for i, r in enumerate(batch) if i not in (5, 77)]
    assert [r.started_at for r in picky.stored] == [r.started_at for r in good]
    stats = writer.stats()
    assert (stats.written_total, stats.poisoned_total, stats.pending) == (128, 2, 0)
    assert stats.healthy and stats.alive and stats.restarts_total == 0
    # Bisection: about 2 log2(64) writes per bad row, not one write per row.
    assert picky.attempts <= 2 + 2 * 2 * 6


def test_transient_failures_are_retried_as_they_are_not_bisected() -> None:
    flaky = FlakyStore()
    flaky.down.set()
    writer = ResultWriter(flaky, batch_size=50, flush_interval=0.02, max_backoff=0.05)  # type: ignore[arg-type]
    writer.start()
    for r in results(50):
        writer.submit(r)
    assert not writer.flush(timeout=0.3)
    flaky.down.clear()
    assert writer.close(timeout=5)
    assert [len(b) for b in flaky.batches] == [50]


def test_a_row_refused_even_isolated_is_kept_and_the_store_reported_failing() -> None:
    picky = PickyStore(refuse_isolated=True)
    writer = ResultWriter(picky, batch_size=10, flush_interval=0.02, max_backoff=0.05)  # type: ignore[arg-type]
    writer.start()
    for r in poisoned(results(10), 0):
        writer.submit(r)
    assert not writer.flush(timeout=0.5)
    stats = writer.stats()
    assert not stats.healthy
    assert stats.pending == 10, "nothing dropped: the database is at fault, not the row"
    assert "refuses even a cleaned result" in (stats.last_error or "")
    writer.close(timeout=0.1)


def test_a_writer_that_fails_on_its_own_error_is_restarted_and_counted() -> None:
    flaky = FlakyStore()
    failures = iter([RuntimeError("a bug in the writer"), None])

    def observe(_seconds: float) -> None:
        error = next(failures, None)
        if error is not None:
            raise error

    writer = ResultWriter(
        flaky,  # type: ignore[arg-type]
        batch_size=10,
        flush_interval=0.02,
        restart_delay=0.01,
        observe_write=observe,
    )
    writer.start()
    for r in results(30):
        writer.submit(r)
    assert writer.close(timeout=5)
    stats = writer.stats()
    assert stats.restarts_total == 1
    assert stats.healthy and stats.pending == 0
    written = {r.started_at for batch in flaky.batches for r in batch}
    assert written == {r.started_at for r in results(30)}
