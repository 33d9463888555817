"""Probe results in the store (:class:`ResultRepository`), on SQLite and PostgreSQL alike."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from scd_monitor.errors import StoreError
from scd_monitor.probes.base import ErrorKind, Outcome, ProbeResult
from scd_monitor.store import ResultRepository, Store
from scd_monitor.store.results import MESSAGE_MAX
from tests.conftest import utc


@pytest.fixture
def results(store: Store) -> ResultRepository:
    return ResultRepository(store)


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


def test_results_round_trip_every_field(results: ResultRepository) -> None:
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
    results.write([result(at=at, status_code=200), failing])
    got = results.read(check_id="prestador-a/autenticacion/oidc")
    assert [r.started_at for r in got] == [at, at + timedelta(seconds=30)]
    assert all(r.started_at.tzinfo is not None for r in got)
    assert got[1] == failing
    assert got[0].ok and got[0].outcome.status_code == 200


def test_aware_non_utc_times_are_stored_as_the_same_instant(results: ResultRepository) -> None:
    bogota = timezone(timedelta(hours=-5))
    at = datetime(2026, 11, 3, 9, 0, tzinfo=bogota)
    results.write([result(at=at)])
    (got,) = results.read()
    assert got.started_at == at
    assert got.started_at.utcoffset() == timedelta(0)


def test_naive_datetimes_are_refused(results: ResultRepository) -> None:
    with pytest.raises(StoreError):
        results.write([result(at=datetime(2026, 11, 3, 9, 0))])
    assert results.read() == []


def test_filters_by_check_vantage_and_half_open_period(results: ResultRepository) -> None:
    t0 = utc(2026, 11, 1, 5, 0, 0)
    rows = [
        result(at=t0 + timedelta(minutes=i), vantage=v, check_id=c)
        for i in range(4)
        for v in ("bogota", "medellin")
        for c in ("prestador-a/autenticacion/oidc", "prestador-b/carpeta/health")
    ]
    results.write(rows)
    got = results.read(
        check_id="prestador-b/carpeta/health",
        vantage="medellin",
        since=t0 + timedelta(minutes=1),
        until=t0 + timedelta(minutes=3),
    )
    assert [r.started_at for r in got] == [t0 + timedelta(minutes=1), t0 + timedelta(minutes=2)]
    assert {(r.check_id, r.vantage) for r in got} == {("prestador-b/carpeta/health", "medellin")}
    assert len(results.read(limit=5)) == 5


def test_long_messages_are_truncated_not_refused(results: ResultRepository) -> None:
    results.write([result(at=utc(2026, 11, 1, 0, 0, 0), ok=False, message="x" * 5000)])
    (got,) = results.read()
    assert got.outcome.message is not None
    assert len(got.outcome.message) == MESSAGE_MAX


def test_a_batch_is_all_or_nothing(results: ResultRepository) -> None:
    good = result(at=utc(2026, 11, 1, 0, 0, 0))
    bad = result(at=datetime(2026, 11, 1, 0, 0, 1))
    with pytest.raises(StoreError):
        results.write([good, bad])
    assert results.read() == []
