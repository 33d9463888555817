"""The latency histogram: fixed layout, conservative quantiles, merging, JSON form."""

from __future__ import annotations

import json
import math
from datetime import timedelta
from fractions import Fraction
from itertools import pairwise

import pytest
from hypothesis import given
from hypothesis import strategies as st

from scd_monitor.sla.latency import (
    BOUNDS_SECONDS,
    BOUNDS_US,
    N_BUCKETS,
    LatencyHistogram,
    LatencyStats,
)

latencies = st.lists(st.floats(0, 90, allow_nan=False), max_size=60)


def test_the_layout_is_the_documented_one() -> None:
    assert len(BOUNDS_US) == 60 and N_BUCKETS == 61
    assert BOUNDS_US[0] == 1_000 and BOUNDS_US[-1] == 60_000_000
    assert list(BOUNDS_US) == [round(1000 * 60000 ** (i / 59)) for i in range(60)]
    assert all(a < b for a, b in pairwise(BOUNDS_US))
    assert BOUNDS_SECONDS[0] == 0.001 and BOUNDS_SECONDS[-1] == 60.0


def test_buckets_are_upper_inclusive() -> None:
    assert LatencyHistogram.bucket_of(0) == 0
    assert LatencyHistogram.bucket_of(0.001) == 0  # exactly on the bound: that bucket
    assert LatencyHistogram.bucket_of(0.0010001) == 1
    assert LatencyHistogram.bucket_of(60) == 59
    assert LatencyHistogram.bucket_of(60.000001) == 60  # overflow
    assert LatencyHistogram.bucket_of(timedelta(milliseconds=250)) == 30  # (0.223143, 0.268886]
    with pytest.raises(ValueError):
        LatencyHistogram.bucket_of(-0.1)
    with pytest.raises(ValueError):
        LatencyHistogram.bucket_of(math.nan)


def test_p95_by_hand() -> None:
    # 20 probes, 19 at 100 ms and 1 at 3 s: rank ceil(0.95 × 20) = 19 → 100 ms, whose
    # bucket (0.087832, 0.105838] reports 0.105838 s.
    assert LatencyHistogram.of([0.1] * 19 + [3.0]).quantile(0.95) == 0.105838
    # 40 probes, 38 fast and 2 slow: rank 0.95 × 40 = 38 exactly (0.95 read as 19/20,
    # not as the float just below it) → still 100 ms.
    assert LatencyHistogram.of([0.1] * 38 + [3.0] * 2).quantile(0.95) == 0.105838
    # 21 probes, 19 fast and 2 slow: rank ceil(19.95) = 20 → the first 3 s value →
    # bucket (2.519973, 3.036557] → 3.036557.
    assert LatencyHistogram.of([0.1] * 19 + [3.0] * 2).quantile(0.95) == 3.036557
    assert LatencyHistogram.of([0.1, 120.0]).quantile(1.0) == math.inf
    assert LatencyHistogram.of([0.1, 120.0]).quantile(0.0) == 0.105838
    assert LatencyHistogram().quantile(0.95) is None


@given(latencies, st.floats(0, 1))
def test_quantile_is_the_upper_bound_of_the_true_quantiles_bucket(
    values: list[float], q: float
) -> None:
    h = LatencyHistogram.of(values)
    result = h.quantile(q)
    if not values:
        assert result is None
        return
    ordered = sorted(values)
    rank = max(1, math.ceil(Fraction(repr(q)) * len(values)))
    true_value = ordered[rank - 1]
    index = LatencyHistogram.bucket_of(true_value)
    assert result == (BOUNDS_SECONDS[index] if index < 60 else math.inf)
    assert result >= true_value  # conservative


@given(latencies, latencies, latencies)
def test_merge_is_associative_commutative_and_counts(
    a: list[float], b: list[float], c: list[float]
) -> None:
    ha, hb, hc = (LatencyHistogram.of(x) for x in (a, b, c))
    assert ha.merge(hb) == hb.merge(ha)
    assert ha.merge(hb).merge(hc) == ha.merge(hb.merge(hc))
    assert ha.merge(hb) == LatencyHistogram.of(a + b)
    assert ha.merge(hb).count == len(a) + len(b)


@given(latencies)
def test_json_round_trip(values: list[float]) -> None:
    h = LatencyHistogram.of(values)
    data = json.loads(json.dumps(h.to_json()))
    assert data == h.counts and len(data) == N_BUCKETS
    assert LatencyHistogram.from_json(data) == h
    stats = LatencyStats.of(values, timedelta(seconds=2))
    assert LatencyStats.from_json(json.loads(json.dumps(stats.to_json()))) == stats


def test_from_json_refuses_a_wrong_layout() -> None:
    with pytest.raises(ValueError, match="61 bucket counts"):
        LatencyHistogram.from_json([0] * 60)
    with pytest.raises(ValueError, match="non-negative"):
        LatencyHistogram.from_json([-1] + [0] * 60)


def test_stats_by_hand() -> None:
    # Threshold 2 s: 1.0, 2.0 (at the threshold: compliant), 2.5 → 2 of 3.
    stats = LatencyStats.of([1.0, 2.0, 2.5], timedelta(seconds=2))
    assert (stats.ok_count, stats.under_threshold_count) == (3, 2)
    assert stats.compliance == 2 / 3
    # rank ceil(0.95 × 3) = 3 → 2.5 s → bucket (2.091270, 2.519973]
    assert stats.p95 == 2.519973
    empty = LatencyStats.of([], timedelta(seconds=2))
    assert empty.compliance is None and empty.p95 is None
    merged = stats.merge(LatencyStats.of([0.5], timedelta(seconds=2)))
    assert (merged.ok_count, merged.under_threshold_count) == (4, 3)
    with pytest.raises(ValueError):
        LatencyStats(1, 2, LatencyHistogram.of([1.0]))
    with pytest.raises(ValueError, match="ok_count"):
        LatencyStats(2, 1, LatencyHistogram.of([1.0]))
