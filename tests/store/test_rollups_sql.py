"""Latency rollups summed by the database (:meth:`LatencyRepository.totals`), on SQLite
and PostgreSQL alike: the same sums as adding up :meth:`LatencyRepository.buckets`,
whether the period's whole UTC days are read from the daily rows or not."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from operator import add
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import insert, select

from scd_monitor.sla.latency import N_BUCKETS, LatencyHistogram
from scd_monitor.store import Store
from scd_monitor.store.rollups import LatencyBucket, LatencyRepository
from scd_monitor.store.tables import latency_daily, latency_hourly
from tests.conftest import utc

H0 = utc(2026, 11, 2, 10, 0, 0)
HOUR = timedelta(hours=1)


@pytest.fixture
def repo(store: Store) -> LatencyRepository:
    return LatencyRepository(store)


def random_bucket(
    rng: random.Random, check: str, vantage: str, hour: datetime, most: int
) -> LatencyBucket:
    """A bucket of 1 to ``most`` random latencies (0–70 s, threshold 2 s)."""
    latencies = [rng.uniform(0.0, 70.0) for _ in range(rng.randint(1, most))]
    return LatencyBucket(
        check_id=check,
        vantage=vantage,
        hour=hour,
        ok_count=len(latencies),
        under_threshold_count=sum(1 for x in latencies if x <= 2.0),
        histogram=LatencyHistogram.of(latencies),
    )


def by_summing_buckets(
    store: Store, repo: LatencyRepository, start: object, end: object
) -> dict[str, tuple[int, int, list[int]]]:
    out: dict[str, tuple[int, int, list[int]]] = {}
    with store.transaction("test") as conn:
        for b in repo.buckets(conn, start, end):  # type: ignore[arg-type]
            ok, under, counts = out.get(b.check_id) or (0, 0, [0] * N_BUCKETS)
            out[b.check_id] = (
                ok + b.ok_count,
                under + b.under_threshold_count,
                list(map(add, counts, b.histogram.counts)),
            )
    return out


def totals(
    store: Store, repo: LatencyRepository, start: object, end: object, **kwargs: object
) -> dict[str, tuple[int, int, list[int]]]:
    with store.transaction("test") as conn:
        return {
            t.check_id: (t.ok_count, t.under_threshold_count, t.counts)
            for t in repo.totals(conn, start, end, **kwargs)  # type: ignore[arg-type]
        }


def test_totals_equal_the_sum_of_the_buckets_over_hours_and_vantages(
    store: Store, repo: LatencyRepository
) -> None:
    rng = random.Random(7)
    with store.transaction("seed") as conn:
        for check in ("p/s/a", "p/s/b", "p/t/c"):
            for vantage in ("v1", "v2"):
                for hour in range(-3, 30):
                    repo.add(conn, random_bucket(rng, check, vantage, H0 + hour * HOUR, 12))
    # Mid-hour ends: the first and last hours count whole, as with ``buckets``.
    for start, end in (
        (H0, H0 + 24 * HOUR),
        (H0 + timedelta(minutes=30), H0 + 5 * HOUR + timedelta(minutes=1)),
        (H0 - 10 * HOUR, H0 + 100 * HOUR),
        (H0 + 200 * HOUR, H0 + 300 * HOUR),
    ):
        assert totals(store, repo, start, end) == by_summing_buckets(store, repo, start, end)
    got = totals(store, repo, H0, H0 + 24 * HOUR, check_ids={"p/s/b"})
    assert list(got) == ["p/s/b"]
    assert got == {
        k: v for k, v in by_summing_buckets(store, repo, H0, H0 + 24 * HOUR).items() if k == "p/s/b"
    }


def seed_days(store: Store, repo: LatencyRepository, *, days: int = 5) -> None:
    """Three checks, two vantages, every hour of ``days`` days from 2026-11-01 00:00 UTC
    minus six hours (some hours with no probe)."""
    rng = random.Random(11)
    base = datetime(2026, 11, 1, tzinfo=UTC) - 6 * HOUR
    with store.transaction("seed") as conn:
        for check in ("p/s/a", "p/s/b", "p/t/c"):
            for vantage in ("v1", "v2"):
                for hour in range(days * 24 + 12):
                    if rng.random() < 0.1:
                        continue
                    repo.add(conn, random_bucket(rng, check, vantage, base + hour * HOUR, 5))


def test_the_daily_rows_are_the_sums_of_their_hours(store: Store, repo: LatencyRepository) -> None:
    seed_days(store, repo, days=3)
    with store.transaction("test") as conn:
        hours = list(repo.buckets(conn, H0 - 1000 * HOUR, H0 + 1000 * HOUR))
        days = conn.execute(select(latency_daily)).all()
    expected: dict[tuple[str, str, datetime], tuple[int, int, list[int]]] = {}
    for b in hours:
        key = (b.check_id, b.vantage, b.hour.replace(hour=0))
        ok, under, counts = expected.get(key) or (0, 0, [0] * N_BUCKETS)
        expected[key] = (
            ok + b.ok_count,
            under + b.under_threshold_count,
            list(map(add, counts, b.histogram.counts)),
        )
    got = {
        (d.check_id, d.vantage, d.day): (d.ok_count, d.under_threshold_count, d.histogram)
        for d in days
    }
    assert got == expected
    assert {d.day.hour for d in days} == {0}
    # 31 October 18:00 to 4 November 06:00 UTC: parts of five UTC days
    assert len(got) == 3 * 2 * 5


BOGOTA = ZoneInfo("America/Bogota")
KOLKATA = ZoneInfo("Asia/Kolkata")  # +05:30: month edges in the middle of UTC hours


def test_a_month_in_the_catalogs_zone_reads_days_and_edge_hours_alike(
    store: Store, repo: LatencyRepository
) -> None:
    seed_days(store, repo, days=5)
    for zone in (BOGOTA, KOLKATA, UTC):
        for start, end in (
            (datetime(2026, 11, 1, tzinfo=zone), datetime(2026, 11, 4, tzinfo=zone)),
            (datetime(2026, 11, 1, 0, 30, tzinfo=zone), datetime(2026, 11, 3, 23, 1, tzinfo=zone)),
            (datetime(2026, 11, 2, tzinfo=zone), datetime(2026, 11, 3, tzinfo=zone)),
        ):
            assert totals(store, repo, start, end) == by_summing_buckets(store, repo, start, end)


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    start_minutes=st.integers(min_value=-600, max_value=7000),
    length_minutes=st.integers(min_value=0, max_value=7000),
)
def test_any_period_sums_as_its_hours(
    store: Store, repo: LatencyRepository, start_minutes: int, length_minutes: int
) -> None:
    if not hasattr(store, "_seeded_days"):  # one seed per store, shared by the examples
        seed_days(store, repo, days=4)
        store._seeded_days = True  # type: ignore[attr-defined]
    start = datetime(2026, 11, 1, tzinfo=UTC) + timedelta(minutes=start_minutes)
    end = start + timedelta(minutes=length_minutes)
    assert totals(store, repo, start, end) == by_summing_buckets(store, repo, start, end)


def malformed(store: Store, histogram: object, *, table: object = latency_hourly) -> None:
    with store.transaction("seed") as conn:
        values = {
            "check_id": "p/s/a",
            "vantage": "v1",
            "ok_count": 1,
            "under_threshold_count": 1,
            "histogram": histogram,
        }
        if table is latency_hourly:
            values["hour"] = H0 + HOUR
        else:
            values["day"] = H0.replace(hour=0)
        conn.execute(insert(table).values(**values))  # type: ignore[arg-type]


def error_of(store: Store, repo: LatencyRepository, start: object, end: object) -> str | None:
    with store.transaction("test") as conn:
        found = {t.check_id: t for t in repo.totals(conn, start, end)}  # type: ignore[arg-type]
    return found["p/s/a"].error


def test_a_histogram_of_the_wrong_length_spoils_only_its_check(
    store: Store, repo: LatencyRepository
) -> None:
    with store.transaction("seed") as conn:
        repo.add(conn, LatencyBucket("p/s/b", "v1", H0, 1, 1, LatencyHistogram.of([0.5])))
        repo.add(conn, LatencyBucket("p/s/a", "v1", H0, 1, 1, LatencyHistogram.of([0.5])))
    malformed(store, [1, 0, 0])
    error = error_of(store, repo, H0, H0 + 3 * HOUR)
    assert error is not None
    assert "malformed latency rollup of 'p/s/a'" in error
    got = totals(store, repo, H0, H0 + 3 * HOUR)
    assert got["p/s/a"] == (0, 0, [])
    assert got["p/s/b"] == (1, 1, LatencyHistogram.of([0.5]).counts)
    # Not parsed when not asked for.
    assert totals(store, repo, H0, H0 + 3 * HOUR, check_ids={"p/s/b"}) == {
        "p/s/b": (1, 1, LatencyHistogram.of([0.5]).counts)
    }


@pytest.mark.parametrize(
    "histogram", [["x"] * N_BUCKETS, [None] * N_BUCKETS, {"a": 1}, "\udcff\x00", 7]
)
def test_a_histogram_that_is_not_numbers_spoils_only_its_check(
    store: Store, repo: LatencyRepository, histogram: object
) -> None:
    with store.transaction("seed") as conn:
        repo.add(conn, LatencyBucket("p/s/b", "v1", H0, 1, 1, LatencyHistogram.of([0.5])))
    malformed(store, histogram)
    error = error_of(store, repo, H0, H0 + 3 * HOUR)
    assert error is not None and "malformed latency rollup" in error
    assert totals(store, repo, H0, H0 + 3 * HOUR)["p/s/b"][0] == 1


def test_a_malformed_daily_row_is_found_when_its_day_is_read(
    store: Store, repo: LatencyRepository
) -> None:
    malformed(store, [1, 2], table=latency_daily)
    day = H0.replace(hour=0)
    assert error_of(store, repo, day - HOUR, day + 2 * 24 * HOUR) is not None
    # A period of hours only (no whole day) reads the hourly rows, which are fine.
    with store.transaction("test") as conn:
        assert list(repo.totals(conn, day + HOUR, day + 3 * HOUR)) == []


def test_forgetting_a_vantage_deletes_its_daily_rows_too(
    store: Store, repo: LatencyRepository
) -> None:
    seed_days(store, repo, days=2)
    with store.transaction("forget") as conn:
        repo.forget_vantage(conn, "v1")
    with store.transaction("test") as conn:
        vantages = set(conn.execute(select(latency_daily.c.vantage)).scalars())
    assert vantages == {"v2"}
    start, end = datetime(2026, 11, 1, tzinfo=UTC), datetime(2026, 11, 3, tzinfo=UTC)
    assert totals(store, repo, start, end) == by_summing_buckets(store, repo, start, end)
