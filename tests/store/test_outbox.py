"""The outbox's repository over SQLite and PostgreSQL: exclusive claims with leases,
settlements guarded by the claim's token, re-queueing."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

import pytest

from scd_monitor.errors import NotFoundError
from scd_monitor.incidents.service import IncidentService
from scd_monitor.store import Store
from scd_monitor.store.outbox import ERROR_MAX, OutboxRepository
from tests.incidents.conftest import SettableClock, config, outage

LEASE = timedelta(seconds=60)


@pytest.fixture
def clock() -> SettableClock:
    return SettableClock()


def subject_of(document: Mapping[str, Any]) -> str:
    return f"subject of {document['incident']['id']}"


def seed(store: Store, clock: SettableClock, n: int = 1) -> None:
    service = IncidentService(store, config(resolve_after="1h"), clock=clock, holder="v")
    for i in range(n):
        service.evaluate(outage(clock.now(), provider=f"p{i}"))


def test_claims_are_exclusive_until_the_lease_ends(store: Store, clock: SettableClock) -> None:
    seed(store, clock, 3)
    repo = OutboxRepository(store)
    now = clock.now()
    first = repo.claim(now, sinks=["fake"], lease=LEASE, limit=10, subject=subject_of)
    assert len(first) == 3 and all(c.payload.attempt == 1 for c in first)
    assert repo.claim(now, sinks=["fake"], lease=LEASE, limit=10, subject=subject_of) == []
    assert repo.claim(now, sinks=["other"], lease=LEASE, limit=10, subject=subject_of) == []
    later = now + timedelta(seconds=61)  # the claimer died: the leases ran out
    second = repo.claim(later, sinks=["fake"], lease=LEASE, limit=10, subject=subject_of)
    assert sorted(c.id for c in second) == sorted(c.id for c in first)
    assert all(c.payload.attempt == 2 for c in second)
    # the first claimer comes back: its settlement is refused, the new claim stands
    assert not repo.settle_delivered(first[0].id, first[0].token, later)
    assert repo.settle_delivered(second[0].id, second[0].token, later)
    (row,) = [d for d in repo.deliveries() if d.id == second[0].id]
    assert row.status == "delivered" and row.attempts == 2
    assert second[0].payload.body == first[0].payload.body


def test_a_claim_carries_its_report(store: Store, clock: SettableClock) -> None:
    seed(store, clock)
    repo = OutboxRepository(store)
    (claimed,) = repo.claim(clock.now(), sinks=["fake"], lease=LEASE, limit=10, subject=subject_of)
    payload = claimed.payload
    assert (payload.incident, payload.report_id, payload.event) == (
        "SCD-2026-000001",
        "SCD-2026-000001.1",
        "opened",
    )
    assert payload.idempotency_key == "SCD-2026-000001.1.fake"
    assert payload.subject == "subject of SCD-2026-000001"
    assert json.loads(payload.body)["incident"]["id"] == "SCD-2026-000001"
    assert payload.text and payload.html
    (row,) = repo.deliveries(statuses=["in_flight"])
    assert row.id == claimed.id and repo.delivery(claimed.id) == row
    assert repo.delivery(999_999) is None


def test_a_failed_settlement_waits_or_fails_for_good(store: Store, clock: SettableClock) -> None:
    seed(store, clock)
    repo = OutboxRepository(store)
    now = clock.now()
    (claimed,) = repo.claim(now, sinks=["fake"], lease=LEASE, limit=10, subject=subject_of)
    due = now + timedelta(seconds=10)
    assert repo.settle_failed(
        claimed.id, claimed.token, error="x" * 5000, permanent=False, next_attempt_at=due
    )
    (row,) = repo.deliveries()
    assert (row.status, row.next_attempt_at, row.claimed_until) == ("pending", due, None)
    assert row.last_error == "x" * ERROR_MAX
    assert repo.claim(now, sinks=["fake"], lease=LEASE, limit=10, subject=subject_of) == []
    (again,) = repo.claim(due, sinks=["fake"], lease=LEASE, limit=10, subject=subject_of)
    assert repo.settle_failed(
        again.id, again.token, error="401", permanent=True, next_attempt_at=due
    )
    assert not repo.settle_failed(
        again.id, again.token, error="late", permanent=False, next_attempt_at=due
    )
    (row,) = repo.deliveries(statuses=["failed"])
    assert (row.attempts, row.last_error) == (2, "401")
    assert repo.retry(row.id, now)
    assert repo.deliveries(statuses=["pending"])[0].next_attempt_at == now
    with pytest.raises(NotFoundError):
        repo.retry(999_999, now)
