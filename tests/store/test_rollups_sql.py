"""Latency rollups summed by the database (:meth:`LatencyRepository.totals`), on SQLite
and PostgreSQL alike: the same sums as adding up :meth:`LatencyRepository.buckets`."""

from __future__ import annotations

import random
from datetime import timedelta
from operator import add

import pytest
from sqlalchemy import insert

from scd_monitor.sla.latency import N_BUCKETS, LatencyHistogram
from scd_monitor.store import Store
from scd_monitor.store.rollups import LatencyBucket, LatencyRepository
from scd_monitor.store.tables import latency_hourly
from tests.conftest import utc

H0 = utc(2026, 11, 2, 10, 0, 0)
HOUR = timedelta(hours=1)


@pytest.fixture
def repo(store: Store) -> LatencyRepository:
    return LatencyRepository(store)


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
                    latencies = [rng.uniform(0.0, 70.0) for _ in range(rng.randint(1, 12))]
                    repo.add(
                        conn,
                        LatencyBucket(
                            check_id=check,
                            vantage=vantage,
                            hour=H0 + hour * HOUR,
                            ok_count=len(latencies),
                            under_threshold_count=sum(1 for x in latencies if x <= 2.0),
                            histogram=LatencyHistogram.of(latencies),
                        ),
                    )
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


def test_a_histogram_of_the_wrong_length_is_refused(store: Store, repo: LatencyRepository) -> None:
    with store.transaction("seed") as conn:
        for hour, histogram in ((0, [1] + [0] * (N_BUCKETS - 1)), (1, [1, 0, 0])):
            conn.execute(
                insert(latency_hourly).values(
                    check_id="p/s/a",
                    vantage="v1",
                    hour=H0 + hour * HOUR,
                    ok_count=1,
                    under_threshold_count=1,
                    histogram=histogram,
                )
            )
    with pytest.raises(ValueError, match="malformed latency rollup of 'p/s/a'"):
        totals(store, repo, H0, H0 + 3 * HOUR)
    # Not parsed when not asked for.
    assert totals(store, repo, H0, H0 + 3 * HOUR, check_ids={"p/s/b"}) == {}


def test_a_histogram_that_is_not_numbers_is_refused(store: Store, repo: LatencyRepository) -> None:
    with store.transaction("seed") as conn:
        conn.execute(
            insert(latency_hourly).values(
                check_id="p/s/a",
                vantage="v1",
                hour=H0,
                ok_count=1,
                under_threshold_count=1,
                histogram=["x"] * N_BUCKETS,
            )
        )
    with pytest.raises(ValueError, match="malformed latency rollup"):
        totals(store, repo, H0, H0 + HOUR)
