"""Probe results in the store (:class:`ResultRepository`), on SQLite and PostgreSQL alike."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from scd_monitor.errors import StoreError
from scd_monitor.probes.base import ErrorKind, Outcome, ProbeResult
from scd_monitor.store import ResultRepository, Store
from scd_monitor.store.results import MESSAGE_MAX, RejectedRowsError, transient
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


# -- identity and poison (issue 12) ------------------------------------------------------


def poison(r: ProbeResult, **fields: object) -> ProbeResult:
    """``r`` with outcome fields set past the edge sanitiser (as a bug or a replayed
    spool line could bring them): the store must take them on its own."""
    for name, value in fields.items():
        object.__setattr__(r.outcome, name, value)
    return r


def test_a_result_written_again_is_stored_once(results: ResultRepository) -> None:
    t0 = utc(2026, 11, 1, 0, 0, 0)
    batch = [result(at=t0 + timedelta(seconds=i)) for i in range(3)]
    results.write(batch)
    results.write([*batch, result(at=t0 + timedelta(seconds=3))])  # a replayed spool
    results.write(batch[1:2])
    assert [r.started_at for r in results.read()] == [t0 + timedelta(seconds=i) for i in range(4)]
    # Another vantage or check at the same instant is another run.
    results.write([result(at=t0, vantage="medellin"), result("p/s/otra", at=t0)])
    assert len(results.read()) == 6


def test_unstorable_values_are_replaced_and_marked(results: ResultRepository) -> None:
    at = utc(2026, 11, 1, 0, 0, 0)
    bad = poison(
        result("p/s/c\ud800", at=at, ok=False, error_kind=ErrorKind.ASSERTION),
        message="issuer \ud800 and \x00",
        details={"issuer": "\udfff", "nested": {"list": ["ok", "x\x00"]}, "ratio": float("nan")},
        phases={"connect": float("inf"), "tls": 0.01},
        status_code=99_999,
    )
    object.__setattr__(bad, "duration", float("nan"))
    fine = result(at=at + timedelta(seconds=1))
    assert results.write([bad, fine]) == 1
    stored, kept = results.read()
    assert kept == fine
    assert (stored.ok, stored.outcome.error_kind, stored.started_at) == (
        False,
        ErrorKind.ASSERTION,
        at,
    )
    assert stored.check_id == "p/s/c\ufffd"
    assert stored.outcome.message is not None
    assert stored.outcome.message.startswith("issuer \ufffd and ")
    for text in (stored.check_id, stored.outcome.message, repr(stored.outcome.details)):
        text.encode("utf-8")
        assert "\x00" not in text
    details = dict(stored.outcome.details)
    note = str(details.pop("internal"))
    assert note.startswith("store: replaced unstorable values")
    for field in ("check_id", "message", "details.issuer", "details.nested.list[1]"):
        assert field in note
    assert details["ratio"] == "nan"
    assert stored.outcome.phases == {"tls": 0.01}
    assert (stored.duration, stored.outcome.status_code) == (0.0, None)


def test_an_isolated_result_keeps_its_identity_and_verdict(results: ResultRepository) -> None:
    at = datetime(2026, 11, 1, 0, 0, 0)  # naive: write refuses it, isolation keeps it
    bad = result(at=at, ok=False, error_kind=ErrorKind.STATUS, status_code=500, message="ñ")
    with pytest.raises(RejectedRowsError):
        results.write([bad])
    results.write_isolated(bad, ValueError("a value the database refused"))
    (stored,) = results.read()
    assert (stored.ok, stored.outcome.error_kind, stored.outcome.status_code) == (
        False,
        ErrorKind.STATUS,
        500,
    )
    assert stored.started_at == at.replace(tzinfo=UTC)
    assert stored.outcome.message == "\\xf1"
    assert stored.kind == "http"
    note = str(stored.outcome.details["internal"])
    assert note.startswith("store: the database refused this result (a value the database")
    assert "started_at (naive, taken as UTC)" in note


def test_an_unreachable_database_is_transient_not_a_refusal() -> None:
    store = Store("postgresql+psycopg://scd:pw@127.0.0.1:1/nowhere")
    with pytest.raises(StoreError) as info:
        ResultRepository(store).write([result(at=utc(2026, 11, 1, 0, 0, 0))])
    assert not isinstance(info.value, RejectedRowsError)
    assert transient(info.value)
    store.dispose()
