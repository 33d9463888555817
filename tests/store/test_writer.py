"""The batched result writer: batches, flushes, survives a dead database, never silent."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from datetime import timedelta

from scd_monitor.errors import StoreError
from scd_monitor.probes.base import Outcome, ProbeResult
from scd_monitor.store import ResultRepository, ResultWriter, Store
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

    def write(self, batch: Sequence[ProbeResult]) -> None:
        if self.down.is_set():
            self.failures += 1
            raise StoreError("database is down")
        self.batches.append(list(batch))


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
