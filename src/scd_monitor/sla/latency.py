"""Latency of successful probes: a mergeable fixed-bucket histogram and SLO figures.

The bucket layout is fixed forever (it is part of the stored JSON form): 60 upper
bounds from 1 ms to 60 s, log-spaced (``round(1000 · 60000^(i/59))`` µs, a ratio of
about 1.205, i.e. ≤ 20.5 % relative resolution), written out below as integers so that
no platform's floating point can move them, plus one overflow bucket for > 60 s.
Bucket ``i`` holds values ``v`` with ``bound[i-1] < v ≤ bound[i]`` (Prometheus ``le``
semantics); bucket 0 holds everything ≤ 1 ms.

:meth:`LatencyHistogram.quantile` is *conservative*: it returns the upper bound of
the bucket that holds the q-quantile (the value of rank ``ceil(q · count)``), so the
true quantile is at most that and more than the previous bound. It never
interpolates; an overflow quantile is ``math.inf``.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from fractions import Fraction

__all__ = ["BOUNDS_SECONDS", "BOUNDS_US", "LatencyHistogram", "LatencyStats"]

BOUNDS_US: tuple[int, ...] = (
    1000, 1205, 1452, 1750, 2108, 2541, 3061, 3689, 4445, 5356,
    6454, 7778, 9372, 11293, 13608, 16398, 19759, 23810, 28691, 34572,
    41659, 50199, 60490, 72890, 87832, 105838, 127534, 153678, 185181, 223143,
    268886, 324007, 390427, 470463, 566906, 683119, 823156, 991900, 1195235, 1440254,
    1735500, 2091270, 2519973, 3036557, 3659039, 4409127, 5312981, 6402121, 7714530, 9295978,
    11201617, 13497904, 16264921, 19599165, 23616916, 28458289, 34292126, 41321875, 49792695,
    60000000,
)  # fmt: skip
"""Bucket upper bounds in microseconds (inclusive)."""

BOUNDS_SECONDS: tuple[float, ...] = tuple(b / 1_000_000 for b in BOUNDS_US)
"""The same bounds in seconds (each the float nearest to the exact value)."""

N_BUCKETS = len(BOUNDS_US) + 1
"""Buckets including the overflow bucket: the length of the JSON form."""


def _seconds(value: float | timedelta) -> float:
    seconds = value.total_seconds() if isinstance(value, timedelta) else float(value)
    if math.isnan(seconds) or seconds < 0:
        raise ValueError(f"a latency must be a non-negative number, got {value!r}")
    return seconds


def _exact(q: float) -> Fraction:
    """``q`` as the decimal it prints as (0.95 is 19/20, not the binary float)."""
    return Fraction(repr(float(q)))


@dataclass(slots=True)
class LatencyHistogram:
    """Counts of latencies per fixed bucket; ``add`` mutates, ``merge`` returns anew."""

    counts: list[int] = field(default_factory=lambda: [0] * N_BUCKETS)

    def __post_init__(self) -> None:
        if len(self.counts) != N_BUCKETS:
            raise ValueError(f"expected {N_BUCKETS} bucket counts, got {len(self.counts)}")
        if any(not isinstance(c, int) or isinstance(c, bool) or c < 0 for c in self.counts):
            raise ValueError("bucket counts must be non-negative integers")

    @staticmethod
    def bucket_of(seconds: float | timedelta) -> int:
        """The index of the bucket that holds ``seconds`` (``N_BUCKETS - 1`` = overflow)."""
        return bisect_left(BOUNDS_SECONDS, _seconds(seconds))

    def add(self, seconds: float | timedelta, count: int = 1) -> None:
        """Count ``count`` observations of ``seconds``."""
        if count < 0:
            raise ValueError("count must be non-negative")
        self.counts[self.bucket_of(seconds)] += count

    @classmethod
    def of(cls, latencies: Iterable[float | timedelta]) -> LatencyHistogram:
        """A histogram of ``latencies``."""
        histogram = cls()
        for value in latencies:
            histogram.add(value)
        return histogram

    def merge(self, other: LatencyHistogram) -> LatencyHistogram:
        """A new histogram holding both (associative and commutative)."""
        return LatencyHistogram([a + b for a, b in zip(self.counts, other.counts, strict=True)])

    @property
    def count(self) -> int:
        return sum(self.counts)

    def quantile(self, q: float) -> float | None:
        """Upper bound (s) of the bucket holding the q-quantile; ``None`` when empty.

        The q-quantile is the observation of rank ``max(1, ceil(q · count))`` in
        ascending order, ``q`` read exactly as written (0.95 → 19/20). ``math.inf``
        when it falls in the overflow bucket.
        """
        if not 0 <= q <= 1:
            raise ValueError(f"q must be within [0, 1], got {q}")
        total = self.count
        if total == 0:
            return None
        rank = max(1, math.ceil(_exact(q) * total))
        seen = 0
        for index, n in enumerate(self.counts):
            seen += n
            if seen >= rank:
                return BOUNDS_SECONDS[index] if index < len(BOUNDS_SECONDS) else math.inf
        raise AssertionError("rank never exceeds the count")

    def to_json(self) -> list[int]:
        """The counts, one per bucket, overflow last (always ``N_BUCKETS`` long)."""
        return list(self.counts)

    @classmethod
    def from_json(cls, data: Sequence[int]) -> LatencyHistogram:
        """Inverse of :meth:`to_json`; a wrong length or value is a ``ValueError``."""
        return cls(list(data))


@dataclass(frozen=True, slots=True)
class LatencyStats:
    """The latency SLO figures of a service over a period.

    ``ok_count`` counts successful probes; ``under_threshold_count`` those whose
    latency was at most the threshold (``≤``: a probe exactly at the threshold is
    compliant, as DEGRADED means *slower than* the threshold). The threshold need not
    be a bucket bound, so the compliant count is kept exactly beside the histogram,
    which must count the same ``ok_count`` probes.
    """

    ok_count: int
    under_threshold_count: int
    histogram: LatencyHistogram

    def __post_init__(self) -> None:
        if not 0 <= self.under_threshold_count <= self.ok_count:
            raise ValueError("need 0 <= under_threshold_count <= ok_count")
        if self.histogram.count != self.ok_count:
            raise ValueError("the histogram must count exactly the ok_count probes")

    @classmethod
    def of(cls, latencies: Iterable[float | timedelta], threshold: timedelta) -> LatencyStats:
        """Stats of the latencies of successful probes against ``threshold``."""
        values = [_seconds(v) for v in latencies]
        limit = threshold.total_seconds()
        under = sum(1 for v in values if v <= limit)
        return cls(len(values), under, LatencyHistogram.of(values))

    @property
    def compliance(self) -> float | None:
        """Share of successful probes at or under the threshold; ``None`` without any."""
        if self.ok_count == 0:
            return None
        return self.under_threshold_count / self.ok_count

    @property
    def p95(self) -> float | None:
        """Conservative 95th percentile in seconds (see :meth:`LatencyHistogram.quantile`)."""
        return self.histogram.quantile(0.95)

    def merge(self, other: LatencyStats) -> LatencyStats:
        return LatencyStats(
            self.ok_count + other.ok_count,
            self.under_threshold_count + other.under_threshold_count,
            self.histogram.merge(other.histogram),
        )

    def to_json(self) -> dict[str, object]:
        return {
            "ok_count": self.ok_count,
            "under_threshold_count": self.under_threshold_count,
            "histogram": self.histogram.to_json(),
        }

    @classmethod
    def from_json(cls, data: dict[str, object]) -> LatencyStats:
        ok, under, counts = data["ok_count"], data["under_threshold_count"], data["histogram"]
        if not isinstance(ok, int) or not isinstance(under, int) or not isinstance(counts, list):
            raise ValueError("malformed latency stats")
        return cls(ok, under, LatencyHistogram.from_json(counts))
