"""Hourly latency rollups in the store (:class:`LatencyRepository`), on SQLite and
PostgreSQL alike."""

from __future__ import annotations

import random
from datetime import timedelta

import pytest
from sqlalchemy import insert, select

from scd_monitor.sla.latency import LatencyHistogram
from scd_monitor.store import Store
from scd_monitor.store.rollups import LatencyBucket, LatencyRepository
from scd_monitor.store.tables import latency_daily, latency_hourly
from tests.conftest import utc

H0 = utc(2026, 11, 2, 10, 0, 0)
HOUR = timedelta(hours=1)
A, B = "p/s/a", "p/s/b"


def bucket(
    check_id: str = A,
    vantage: str = "v1",
    hour: int = 0,
    latencies: tuple[float, ...] = (0.2,),
    threshold: float = 1.0,
) -> LatencyBucket:
    return LatencyBucket(
        check_id=check_id,
        vantage=vantage,
        hour=H0 + hour * HOUR,
        ok_count=len(latencies),
        under_threshold_count=sum(1 for x in latencies if x <= threshold),
        histogram=LatencyHistogram.of(latencies),
    )


@pytest.fixture
def repo(store: Store) -> LatencyRepository:
    return LatencyRepository(store)


def everything(store: Store, repo: LatencyRepository) -> dict[tuple[str, str, int], LatencyBucket]:
    with store.transaction("test") as conn:
        found = list(repo.buckets(conn, H0 - 48 * HOUR, H0 + 48 * HOUR))
    return {(b.check_id, b.vantage, (b.hour - H0) // HOUR): b for b in found}


def test_adding_to_a_bucket_sums_the_counts_and_merges_the_histograms(
    store: Store, repo: LatencyRepository
) -> None:
    with store.transaction("round 1") as conn:
        repo.add(conn, bucket(latencies=(0.2, 1.5)))
    with store.transaction("round 2") as conn:
        repo.add(conn, bucket(latencies=(0.3, 0.4, 2.5)))
        repo.add(conn, bucket(latencies=(9.0,)))
    got = everything(store, repo)
    assert list(got) == [(A, "v1", 0)]
    merged = got[(A, "v1", 0)]
    assert merged.hour == H0
    assert merged.ok_count == 6
    assert merged.under_threshold_count == 3
    assert merged.histogram == LatencyHistogram.of([0.2, 1.5, 0.3, 0.4, 2.5, 9.0])


def test_buckets_are_per_check_vantage_and_hour(store: Store, repo: LatencyRepository) -> None:
    with store.transaction("test") as conn:
        repo.add(conn, bucket(A, "v1", 0, (0.1,)))
        repo.add(conn, bucket(A, "v1", 1, (0.2, 0.3)))
        repo.add(conn, bucket(A, "v2", 0, (1.1, 1.2, 1.3)))
        repo.add(conn, bucket(B, "v1", 0, (0.4,) * 4))
    got = everything(store, repo)
    assert {k: b.ok_count for k, b in got.items()} == {
        (A, "v1", 0): 1,
        (A, "v1", 1): 2,
        (A, "v2", 0): 3,
        (B, "v1", 0): 4,
    }
    assert got[(A, "v2", 0)].under_threshold_count == 0
    assert got[(A, "v2", 0)] == bucket(A, "v2", 0, (1.1, 1.2, 1.3))


def test_the_buckets_of_a_period_are_those_of_the_hours_that_meet_it(
    store: Store, repo: LatencyRepository
) -> None:
    with store.transaction("test") as conn:
        for hour in range(-2, 5):
            repo.add(conn, bucket(hour=hour))
    # [10:30, 13:00): the hour from 10:00 meets it, the one from 13:00 does not.
    start, end = H0 + HOUR / 2, H0 + 3 * HOUR
    with store.transaction("test") as conn:
        hours = sorted((b.hour - H0) // HOUR for b in repo.buckets(conn, start, end))
        on_the_hour = sorted((b.hour - H0) // HOUR for b in repo.buckets(conn, H0, H0 + HOUR))
    assert hours == [0, 1, 2]
    assert on_the_hour == [0]


def test_buckets_of_checks_not_asked_for_are_not_parsed(
    store: Store, repo: LatencyRepository
) -> None:
    with store.engine.begin() as conn:
        conn.execute(
            insert(latency_hourly).values(
                check_id="p/s/retired",
                vantage="v1",
                hour=H0,
                ok_count=1,
                under_threshold_count=1,
                histogram=[1, 2, 3],  # not a histogram
            )
        )
    with store.transaction("test") as conn:
        repo.add(conn, bucket(A))
        repo.add(conn, bucket(B))
        wanted = list(repo.buckets(conn, H0, H0 + HOUR, check_ids={A}))
        assert wanted == [bucket(A)]
        with pytest.raises(ValueError, match="bucket counts"):
            list(repo.buckets(conn, H0, H0 + HOUR))


def test_forgetting_a_vantage_deletes_only_its_rollups(
    store: Store, repo: LatencyRepository
) -> None:
    with store.transaction("test") as conn:
        for vantage in ("v1", "v2"):
            repo.add(conn, bucket(A, vantage, 0))
            repo.add(conn, bucket(B, vantage, 1))
    with store.transaction("test") as conn:
        repo.forget_vantage(conn, "v1")
    assert sorted(everything(store, repo)) == [(A, "v2", 0), (B, "v2", 1)]


def test_an_addition_is_undone_with_the_callers_transaction(
    store: Store, repo: LatencyRepository
) -> None:
    with store.transaction("round 1") as conn:
        repo.add(conn, bucket(latencies=(0.2,)))
    with pytest.raises(RuntimeError), store.transaction("round 2") as conn:
        repo.add(conn, bucket(latencies=(0.5, 0.6)))
        repo.add(conn, bucket(hour=1))
        raise RuntimeError("the round fails after writing")
    assert everything(store, repo) == {(A, "v1", 0): bucket(latencies=(0.2,))}


def test_adding_many_equals_adding_one_by_one(store: Store, repo: LatencyRepository) -> None:
    """One round's buckets in one call (a few statements) leave the same hourly and
    daily rows as adding them one at a time, repeated keys and existing rows included."""
    rng = random.Random(3)
    rounds = [
        [
            bucket(
                rng.choice((A, B, "p/t/c")),
                rng.choice(("v1", "v2")),
                rng.randrange(-30, 30),
                tuple(rng.uniform(0, 5) for _ in range(rng.randint(1, 4))),
            )
            for _ in range(40)
        ]
        for _ in range(4)
    ]

    def rows(s: Store) -> tuple[object, object]:
        with s.engine.connect() as conn:
            return (
                sorted(tuple(r) for r in conn.execute(select(latency_hourly))),
                sorted(tuple(r) for r in conn.execute(select(latency_daily))),
            )

    for buckets in rounds:
        with store.transaction("many") as conn:
            repo.add_many(conn, buckets)
    many = rows(store)
    with store.transaction("reset") as conn:
        conn.execute(latency_hourly.delete())
        conn.execute(latency_daily.delete())
    for buckets in rounds:
        with store.transaction("one by one") as conn:
            for b in buckets:
                repo.add(conn, b)
    assert rows(store) == many
    hourly, daily = many
    assert len(hourly) > 40 and len(daily) >= 6  # existing rows were merged into
