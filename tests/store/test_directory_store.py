"""Directory snapshots and events in the store, on SQLite and PostgreSQL alike."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from scd_monitor.catalog.models import ResolvedCheck, Sla, TlsCheck
from scd_monitor.store import Store
from scd_monitor.xroad.directory import Directory, DirectoryEvent

T0 = datetime(2026, 11, 23, 15, 0, tzinfo=UTC)


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


def test_snapshots_and_events_round_trip(store: Store) -> None:
    assert store.directories() == {}
    first = directory(3)
    baseline = DirectoryEvent(T0, "co", "directory", "baseline", "CO", {"services": 3})
    store.save_directory("co", directory=first, events=[baseline])
    stored = store.directories()["co"]
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
    store.save_directory("co", directory=second, events=[gone])
    assert store.directories()["co"].directory.same_entities(second)
    later = T0 + timedelta(minutes=20)
    failed = DirectoryEvent(later, "co", "directory", "fetch_failed", "CO", {"error": "HTTP 500"})
    store.save_directory("co", events=[failed])
    store.save_directory("co", last_success_at=later + timedelta(minutes=1))
    stored = store.directories()["co"]
    assert stored.directory.same_entities(second), "a failure leaves the last good directory"
    assert stored.last_success_at == later + timedelta(minutes=1)

    events = store.directory_events()
    assert [(e.kind, e.change) for e in events] == [
        ("directory", "baseline"),
        ("service", "disappeared"),
        ("directory", "fetch_failed"),
    ]
    assert events[1].details == {"before": {"protocol": "REST"}}
    assert events[1].id is not None
    since = store.directory_events(since=T0 + timedelta(minutes=5))
    assert [e.change for e in since] == ["disappeared", "fetch_failed"]
    assert store.directory_events(source="other") == []


def test_sync_checks_writes_only_what_changed_and_retires(store: Store) -> None:
    def check(name: str, interval: int = 30) -> ResolvedCheck:
        spec = TlsCheck(id=name, kind="tls", host="a.example")
        return ResolvedCheck(
            provider="p",
            service="s",
            check=name,
            kind="tls",
            interval=timedelta(seconds=interval),
            timeout=timedelta(seconds=5),
            critical=True,
            spec=spec,
            service_type="otro",
            provider_name="P",
            sla=Sla(),
        )

    store.sync_checks([check("a"), check("b")], T0)
    store.sync_checks([check("a", 60)], T0 + timedelta(minutes=1))
    rows = {r.id: r for r in store.checks()}
    assert rows["p/s/a"].interval_seconds == 60
    assert rows["p/s/a"].last_seen == T0 + timedelta(minutes=1)
    assert rows["p/s/a"].first_seen == T0
    assert rows["p/s/b"].retired_at == T0 + timedelta(minutes=1)
    assert rows["p/s/b"].last_seen == T0
    store.sync_checks([check("a", 60), check("b")], T0 + timedelta(minutes=2))
    rows = {r.id: r for r in store.checks()}
    assert rows["p/s/b"].retired_at is None
    assert rows["p/s/b"].last_seen == T0 + timedelta(minutes=2)
