"""Directory snapshots and events in the store (:class:`DirectoryRepository`), on SQLite
and PostgreSQL alike."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from scd_monitor.store import DirectoryRepository, Store
from scd_monitor.xroad.directory import Directory, DirectoryEvent

T0 = datetime(2026, 11, 23, 15, 0, tzinfo=UTC)


@pytest.fixture
def repo(store: Store) -> DirectoryRepository:
    return DirectoryRepository(store)


def directory(services: int, at: datetime = T0) -> Directory:
    return Directory.build(
        "co",
        "CO",
        at,
        {
            "member": {"CO/GOB/1": {"name": "Ministerio"}},
            "subsystem": {"CO/GOB/1/A": {"name": None}},
            "service": {
                f"CO/GOB/1/A/s{i}": {"protocol": "REST", "type": "REST", "endpoints": ["GET /"]}
                for i in range(services)
            },
            "security_server": {},
        },
        globalconf_expires_at=at + timedelta(minutes=10),
        globalconf_version=2,
    )


def test_snapshots_and_events_round_trip(repo: DirectoryRepository) -> None:
    assert repo.latest() == {}
    first = directory(3)
    baseline = DirectoryEvent(T0, "co", "directory", "baseline", "CO", {"services": 3})
    repo.save("co", directory=first, events=[baseline])
    stored = repo.latest()["co"]
    assert stored.directory.to_json() == first.to_json()
    assert stored.last_success_at == T0

    second = directory(2, T0 + timedelta(minutes=10))
    gone = DirectoryEvent(
        second.fetched_at,
        "co",
        "service",
        "disappeared",
        "CO/GOB/1/A/s2",
        {"before": {"protocol": "REST"}},
    )
    repo.save("co", directory=second, events=[gone])
    assert repo.latest()["co"].directory.same_entities(second)
    later = T0 + timedelta(minutes=20)
    failed = DirectoryEvent(later, "co", "directory", "fetch_failed", "CO", {"error": "HTTP 500"})
    repo.save("co", events=[failed])
    repo.save("co", last_success_at=later + timedelta(minutes=1))
    stored = repo.latest()["co"]
    assert stored.directory.same_entities(second), "a failure leaves the last good directory"
    assert stored.last_success_at == later + timedelta(minutes=1)

    events = repo.events()
    assert [(e.kind, e.change) for e in events] == [
        ("directory", "baseline"),
        ("service", "disappeared"),
        ("directory", "fetch_failed"),
    ]
    assert events[1].details == {"before": {"protocol": "REST"}}
    assert events[1].id is not None
    since = repo.events(since=T0 + timedelta(minutes=5))
    assert [e.change for e in since] == ["disappeared", "fetch_failed"]
    assert repo.events(source="other") == []


def test_one_unreadable_snapshot_never_hides_the_others(
    repo: DirectoryRepository, store: Store
) -> None:
    """Issue 12: a snapshot this release cannot read (a bad format) used to raise for every
    source, so discovery never started; now that source alone reads afresh."""
    from sqlalchemy import update

    from scd_monitor.store.tables import directory_snapshots

    repo.save("co", directory=directory(3))
    repo.save("co-qa", directory=directory(1))
    with store.transaction("poison") as conn:
        conn.execute(
            update(directory_snapshots)
            .where(directory_snapshots.c.source == "co-qa")
            .values(snapshot={"format": "from the future"})
        )
    latest = repo.latest()
    assert list(latest) == ["co"]
    assert latest["co"].directory.to_json() == directory(3).to_json()
