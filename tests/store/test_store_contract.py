"""The store's contract, run over SQLite and PostgreSQL alike."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import update

from scd_monitor.catalog import parse_catalog
from scd_monitor.errors import StoreError
from scd_monitor.probes.base import ErrorKind, Outcome, ProbeResult
from scd_monitor.store import Store
from scd_monitor.store.repository import MESSAGE_MAX
from scd_monitor.store.tables import SCHEMA_VERSION, schema_info
from tests.conftest import utc

CATALOG = """
providers:
  - id: prestador-a
    name: Prestador A
    services:
      - id: autenticacion
        type: autenticacion_digital
        checks:
          - {id: oidc, kind: http, url: "https://a.example/.well-known/openid-configuration"}
          - {id: cert, kind: tls, host: a.example}
  - id: prestador-b
    name: Prestador B
    services:
      - id: carpeta
        type: carpeta_ciudadana
        checks:
          - {id: health, kind: http, url: "https://b.example/health", interval: 1m, timeout: 5s}
"""


def result(
    check_id: str = "prestador-a/autenticacion/oidc",
    *,
    at: datetime,
    ok: bool = True,
    vantage: str = "bogota",
    **outcome: object,
) -> ProbeResult:
    return ProbeResult(
        check_id=check_id,
        kind="http",
        vantage=vantage,
        started_at=at,
        duration=0.25,
        outcome=Outcome(ok=ok, **outcome),  # type: ignore[arg-type]
    )


def test_schema_creation_is_idempotent(store: Store) -> None:
    store.create_schema()
    store.create_schema()
    store.ping()


def test_results_round_trip_every_field(store: Store) -> None:
    at = datetime(2026, 11, 3, 14, 0, 5, 123000, tzinfo=UTC)
    expiry = utc(2027, 1, 1, 0, 0, 0)
    failing = result(
        at=at + timedelta(seconds=30),
        ok=False,
        error_kind=ErrorKind.STATUS,
        message="unexpected status 503",
        status_code=503,
        phases={"connect": 0.01, "tls": 0.02, "first_byte": 0.1},
        cert_not_after=expiry,
        details={"http_version": "HTTP/1.1", "bytes_read": 12},
    )
    store.write_results([result(at=at, status_code=200), failing])
    got = store.results(check_id="prestador-a/autenticacion/oidc")
    assert [r.started_at for r in got] == [at, at + timedelta(seconds=30)]
    assert all(r.started_at.tzinfo is not None for r in got)
    assert got[1] == failing
    assert got[0].ok and got[0].outcome.status_code == 200


def test_aware_non_utc_times_are_stored_as_the_same_instant(store: Store) -> None:
    bogota = timezone(timedelta(hours=-5))
    at = datetime(2026, 11, 3, 9, 0, tzinfo=bogota)
    store.write_results([result(at=at)])
    (got,) = store.results()
    assert got.started_at == at
    assert got.started_at.utcoffset() == timedelta(0)


def test_naive_datetimes_are_refused(store: Store) -> None:
    with pytest.raises(StoreError):
        store.write_results([result(at=datetime(2026, 11, 3, 9, 0))])
    assert store.results() == []


def test_filters_by_check_vantage_and_half_open_period(store: Store) -> None:
    t0 = utc(2026, 11, 1, 5, 0, 0)
    rows = [
        result(at=t0 + timedelta(minutes=i), vantage=v, check_id=c)
        for i in range(4)
        for v in ("bogota", "medellin")
        for c in ("prestador-a/autenticacion/oidc", "prestador-b/carpeta/health")
    ]
    store.write_results(rows)
    got = store.results(
        check_id="prestador-b/carpeta/health",
        vantage="medellin",
        since=t0 + timedelta(minutes=1),
        until=t0 + timedelta(minutes=3),
    )
    assert [r.started_at for r in got] == [t0 + timedelta(minutes=1), t0 + timedelta(minutes=2)]
    assert {(r.check_id, r.vantage) for r in got} == {("prestador-b/carpeta/health", "medellin")}
    assert len(store.results(limit=5)) == 5


def test_long_messages_are_truncated_not_refused(store: Store) -> None:
    store.write_results([result(at=utc(2026, 11, 1, 0, 0, 0), ok=False, message="x" * 5000)])
    (got,) = store.results()
    assert got.outcome.message is not None
    assert len(got.outcome.message) == MESSAGE_MAX


def test_sync_checks_adds_updates_retires_and_revives(store: Store) -> None:
    catalog = parse_catalog(CATALOG)
    checks = catalog.resolved_checks()
    t1, t2, t3 = utc(2026, 11, 1, 0, 0, 0), utc(2026, 11, 2, 0, 0, 0), utc(2026, 11, 3, 0, 0, 0)
    store.sync_checks(checks, t1)
    rows = {r.id: r for r in store.checks()}
    assert set(rows) == {
        "prestador-a/autenticacion/oidc",
        "prestador-a/autenticacion/cert",
        "prestador-b/carpeta/health",
    }
    health = rows["prestador-b/carpeta/health"]
    assert (health.interval_seconds, health.timeout_seconds) == (60.0, 5.0)
    assert rows["prestador-a/autenticacion/cert"].target == "a.example:443"

    store.sync_checks(checks[:2], t2)  # prestador-b left the catalog: retired, history kept
    rows = {r.id: r for r in store.checks()}
    assert rows["prestador-b/carpeta/health"].retired_at == t2
    assert rows["prestador-a/autenticacion/oidc"].retired_at is None
    assert rows["prestador-a/autenticacion/oidc"].first_seen == t1
    assert [r.id for r in store.checks(include_retired=False)] == [
        "prestador-a/autenticacion/cert",
        "prestador-a/autenticacion/oidc",
    ]

    store.sync_checks(checks, t3)  # it came back
    rows = {r.id: r for r in store.checks()}
    assert rows["prestador-b/carpeta/health"].retired_at is None
    assert rows["prestador-b/carpeta/health"].first_seen == t1
    assert rows["prestador-b/carpeta/health"].last_seen == t3


def test_a_batch_is_all_or_nothing(store: Store) -> None:
    good = result(at=utc(2026, 11, 1, 0, 0, 0))
    bad = result(at=datetime(2026, 11, 1, 0, 0, 1))
    with pytest.raises(StoreError):
        store.write_results([good, bad])
    assert store.results() == []


def test_a_newer_schema_is_refused(store: Store) -> None:
    with store.engine.begin() as conn:
        conn.execute(update(schema_info).values(version=SCHEMA_VERSION + 1))
    with pytest.raises(StoreError, match="newer"):
        store.create_schema()


def test_unreachable_database_is_a_store_error_without_password(tmp_path: object) -> None:
    s = Store("postgresql+psycopg://scd:hunter2@127.0.0.1:1/nowhere")
    with pytest.raises(StoreError) as info:
        s.ping()
    assert "hunter2" not in str(info.value)
    assert "127.0.0.1:1" in str(info.value)
    s.dispose()


def test_sqlite_runs_in_wal_mode(tmp_path: object) -> None:
    from sqlalchemy import text

    s = Store(f"sqlite:///{tmp_path}/wal.db")
    s.create_schema()
    with s.engine.connect() as conn:
        assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
    s.dispose()
