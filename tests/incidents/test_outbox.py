"""The outbox dispatcher over SQLite and PostgreSQL: retries with backoff, permanent
failures kept, re-queue, statistics (claims and leases: tests/store/test_outbox.py)."""

from __future__ import annotations

import random
from datetime import timedelta

import pytest

from scd_monitor.catalog.incidents import BackoffConfig, OutboxConfig
from scd_monitor.errors import NotFoundError, SinkError
from scd_monitor.incidents.outbox import OutboxDispatcher, backoff_delay
from scd_monitor.incidents.service import IncidentService
from scd_monitor.sinks.base import RetryLater
from scd_monitor.store import Store
from scd_monitor.store.outbox import OutboxRepository
from tests.incidents.conftest import Recorder, SettableClock, config, outage

OUTBOX = OutboxConfig(
    lease=timedelta(seconds=60),
    backoff=BackoffConfig(initial=timedelta(seconds=10), max=timedelta(seconds=40), jitter=0.0),
)


def seed(store: Store, clock: SettableClock, n: int = 1) -> IncidentService:
    service = IncidentService(store, config(resolve_after="1h"), clock=clock, holder="v")
    for i in range(n):
        service.evaluate(outage(clock.now(), provider=f"p{i}"))
    return service


def test_backoff_is_capped_exponential_with_jitter() -> None:
    cfg = BackoffConfig(initial=timedelta(seconds=10), max=timedelta(minutes=5), jitter=0.0)
    rng = random.Random(1)
    delays = [backoff_delay(n, cfg, rng).total_seconds() for n in range(1, 8)]
    assert delays == [10, 20, 40, 80, 160, 300, 300]
    jittered = BackoffConfig(initial=timedelta(seconds=10), max=timedelta(minutes=5), jitter=0.5)
    samples = {backoff_delay(3, jittered, rng).total_seconds() for _ in range(50)}
    assert all(20 <= s <= 40 for s in samples) and len(samples) > 10


async def test_transient_failures_back_off_then_deliver(store: Store, clock: SettableClock) -> None:
    seed(store, clock)
    sink = Recorder(fail=[SinkError("503", permanent=False), SinkError("timeout", permanent=False)])
    dispatcher = OutboxDispatcher(store, {"fake": sink}, clock, config=OUTBOX)
    stats = await dispatcher.run_once()
    assert (stats.claimed, stats.retried) == (1, 1)
    (row,) = OutboxRepository(store).deliveries()
    assert row.status == "pending" and row.last_error == "503"
    assert row.next_attempt_at == clock.now() + timedelta(seconds=10)
    assert (await dispatcher.run_once()).claimed == 0  # not due yet
    clock.advance(timedelta(seconds=10))
    assert (await dispatcher.run_once()).retried == 1
    (row,) = OutboxRepository(store).deliveries()
    assert row.next_attempt_at == clock.now() + timedelta(seconds=20)
    clock.advance(timedelta(seconds=20))
    assert (await dispatcher.run_once()).delivered == 1
    (row,) = OutboxRepository(store).deliveries()
    assert (row.status, row.attempts, row.last_error) == ("delivered", 3, None)
    assert [p.attempt for p in sink.received] == [3]
    assert dispatcher.outcomes[("fake", "transient_error")] == 2


async def test_retry_after_is_honoured(store: Store, clock: SettableClock) -> None:
    seed(store, clock)
    sink = Recorder(fail=[RetryLater("429", retry_after=timedelta(seconds=30))])
    await OutboxDispatcher(store, {"fake": sink}, clock, config=OUTBOX).run_once()
    (row,) = OutboxRepository(store).deliveries()
    assert row.next_attempt_at == clock.now() + timedelta(seconds=30)


async def test_permanent_failures_are_kept_and_can_be_retried(
    store: Store, clock: SettableClock
) -> None:
    seed(store, clock)
    sink = Recorder(fail=[SinkError("HTTP 401: bad signature", permanent=True)])
    dispatcher = OutboxDispatcher(store, {"fake": sink}, clock, config=OUTBOX)
    assert (await dispatcher.run_once()).failed == 1
    repo = OutboxRepository(store)
    (row,) = repo.deliveries(statuses=["failed"])
    assert row.last_error == "HTTP 401: bad signature"
    clock.advance(timedelta(days=30))
    assert (await dispatcher.run_once()).claimed == 0  # kept, never retried by itself
    assert await dispatcher.retry(row.id)
    assert (await dispatcher.run_once()).delivered == 1
    assert repo.deliveries(statuses=["delivered"])[0].attempts == 2
    assert not repo.retry(row.id, clock.now())  # delivered: nothing to do
    with pytest.raises(NotFoundError):
        repo.retry(999_999, clock.now())


async def test_max_attempts_turns_transient_into_failed(store: Store, clock: SettableClock) -> None:
    seed(store, clock)
    sink = Recorder(fail=[SinkError("503", permanent=False)] * 5)
    cfg = OUTBOX.model_copy(update={"max_attempts": 2})
    dispatcher = OutboxDispatcher(store, {"fake": sink}, clock, config=cfg)
    await dispatcher.run_once()
    clock.advance(timedelta(minutes=1))
    await dispatcher.run_once()
    (row,) = OutboxRepository(store).deliveries()
    assert row.status == "failed" and row.last_error == "gave up after 2 attempts: 503"


async def test_a_crashing_sink_is_a_transient_failure(store: Store, clock: SettableClock) -> None:
    seed(store, clock)
    sink = Recorder(fail=[RuntimeError("bug")])
    stats = await OutboxDispatcher(store, {"fake": sink}, clock, config=OUTBOX).run_once()
    assert stats.retried == 1
    (row,) = OutboxRepository(store).deliveries()
    assert row.status == "pending" and "RuntimeError: bug" in (row.last_error or "")


async def test_statistics(store: Store, clock: SettableClock) -> None:
    seed(store, clock, 2)
    clock.advance(timedelta(seconds=42))
    repo = OutboxRepository(store)
    stats = repo.stats(clock.now())
    assert stats.backlog == 2 and stats.oldest_pending_age_seconds == 42
    assert stats.by_sink_status == {("fake", "pending"): 2}
    assert stats.open_by_severity == {"critical": 2}
    await OutboxDispatcher(store, {"fake": Recorder()}, clock, config=OUTBOX).run_once()
    stats = repo.stats(clock.now())
    assert stats.backlog == 0 and stats.oldest_pending_age_seconds is None
    assert stats.by_sink_status == {("fake", "delivered"): 2}


async def test_a_sink_tripping_on_the_payload_fails_for_good(
    store: Store, clock: SettableClock
) -> None:
    """The same bytes fail the same way on every attempt: permanent, not an endless retry
    (the old e-mail sink's ``ValueError`` on a name with a line break)."""
    seed(store, clock)
    sink = Recorder(fail=[ValueError("Header values may not contain linefeed")])
    dispatcher = OutboxDispatcher(store, {"fake": sink}, clock, config=OUTBOX)
    assert (await dispatcher.run_once()).failed == 1
    (row,) = OutboxRepository(store).deliveries()
    assert (row.status, row.attempts) == ("failed", 1)
    assert "ValueError" in (row.last_error or "")
    assert dispatcher.outcomes[("fake", "permanent_error")] == 1


async def test_error_texts_are_cleaned_before_they_are_stored(
    store: Store, clock: SettableClock
) -> None:
    """A receiver's answer is outside text: a NUL in it must not break the settling write
    (PostgreSQL refuses NUL in text) nor reach a terminal through ``deliveries``."""
    seed(store, clock)
    hostile = "HTTP 503: \x00\x1b[2J\ud800 ocupado\r\n" + "x" * 5000
    sink = Recorder(fail=[SinkError(hostile, permanent=False)])
    dispatcher = OutboxDispatcher(store, {"fake": sink}, clock, config=OUTBOX)
    assert (await dispatcher.run_once()).retried == 1
    (row,) = OutboxRepository(store).deliveries()
    assert row.status == "pending" and row.last_error is not None
    assert row.last_error.startswith("HTTP 503: ␀␛[2J\ufffd ocupado␍\n")
    assert len(row.last_error) <= 2000
