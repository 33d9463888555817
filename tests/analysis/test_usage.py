"""The use of the platform from usage buckets: approximate percentiles checked against
exact computations, each request counted once (Producer records over Client ones), the
success ratios and their lookup without a version."""

from __future__ import annotations

import math
from bisect import bisect_left
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from fractions import Fraction
from itertools import pairwise

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scd_monitor.analysis.usage import (
    FAULT_SIDES,
    percentile,
    success_ratio_by_service,
    success_ratio_for,
    summarize,
)
from scd_monitor.store.usage import DURATION_BUCKETS_MS, N_HISTOGRAM, UsageBucket
from scd_monitor.xroad.identifiers import ServiceId

START = datetime(2026, 3, 1, 5, 0, tzinfo=UTC)
END = START + timedelta(days=31)
BOUNDS = DURATION_BUCKETS_MS

AUTH = "CO/GOB/900000001/AUTH/login/v1"
AUTH_V2 = "CO/GOB/900000001/AUTH/login/v2"
AUTH_BARE = "CO/GOB/900000001/AUTH/login"
PAGOS = "CO/COM/900000002/PAGOS/pagar"


def hist(**at: int) -> tuple[int, ...]:
    """A histogram with ``count`` at bucket ``b<index>``."""
    counts = [0] * N_HISTOGRAM
    for name, count in at.items():
        counts[int(name[1:])] = count
    return tuple(counts)


def bucket(
    service: str = AUTH,
    *,
    side: str = "Producer",
    count: int = 10,
    ok: bool = True,
    fault: str = "",
    client: str = "CO/GOB/8999990001/CARPETA",
    at: datetime = START,
    histogram: tuple[int, ...] | None = None,
) -> UsageBucket:
    histogram = histogram if histogram is not None else hist(b6=count)
    return UsageBucket(
        source="xroad-co",
        security_server="CO/GOB/899999/ss1",
        bucket_start=at,
        side=side,
        client=client,
        service=service,
        succeeded=ok,
        fault_code=fault,
        provider_member="/".join(service.split("/")[:3]) if service else "",
        count=count,
        duration_count=sum(histogram),
        duration_sum_ms=75 * sum(histogram),
        histogram=histogram,
        request_bytes=count * 100,
        response_bytes=count * 1000,
    )


# -- percentile ------------------------------------------------------------------------


def reference_percentile(counts: tuple[int, ...], q: Fraction) -> Fraction | None:
    """The same estimate computed another way: the piecewise linear CDF through the
    points (bound, running count), inverted at q·n, with Fractions throughout."""
    n = sum(counts)
    if n == 0:
        return None
    target = q * n
    points = [(Fraction(0), Fraction(0))]
    running = 0
    for bound, count in zip(BOUNDS, counts, strict=False):
        running += count
        points.append((Fraction(bound), Fraction(running)))
    if running < target:
        return Fraction(BOUNDS[-1])  # in the +Inf bucket
    for (x0, y0), (x1, y1) in pairwise(points):
        if y1 > y0 and y1 >= target:
            return x0 + (x1 - x0) * (target - y0) / (y1 - y0)
    return Fraction(BOUNDS[-1])


def test_percentile_interpolates_inside_the_bucket() -> None:
    # 10 durations in (10, 20]: the median is taken halfway.
    assert percentile(hist(b4=10), 0.5) == 15.0
    # 100 in (0, 1], 100 in (50, 100]: p95 is rank 190, the 90th of the second bucket.
    assert percentile(hist(b0=100, b6=100), 0.95) == 50 + 50 * 90 / 100
    # Rank exactly at a bucket's end is that bucket's upper bound.
    assert percentile(hist(b0=50, b1=50), 0.5) == 1.0
    assert percentile(hist(b9=3), 1.0) == 1000.0
    assert percentile(hist(b9=3, b12=1), 0.0) == 500.0  # lower bound of the first non-empty


def test_percentile_of_the_overflow_bucket_is_its_lower_bound() -> None:
    assert percentile(hist(b15=5), 0.5) == 60000.0
    assert percentile(hist(b0=1, b15=99), 0.95) == 60000.0
    assert percentile(hist(b0=99, b15=1), 0.95) == pytest.approx(0.95 * 100 / 99)


def test_percentile_of_nothing_is_none_and_bad_input_is_refused() -> None:
    assert percentile((0,) * N_HISTOGRAM, 0.95) is None
    with pytest.raises(ValueError, match="expected 16"):
        percentile((1, 2, 3), 0.5)
    with pytest.raises(ValueError, match="within"):
        percentile(hist(b0=1), 1.5)
    with pytest.raises(ValueError, match="negative"):
        percentile(tuple(-1 if i == 0 else 0 for i in range(N_HISTOGRAM)), 0.5)


@pytest.mark.parametrize(
    "counts",
    [
        hist(b0=1),
        hist(b3=7, b4=1, b10=2),
        hist(b0=100, b6=100),
        tuple(range(1, N_HISTOGRAM + 1)),
        hist(b1=1, b14=1, b15=1),
    ],
)
@pytest.mark.parametrize("q", ["0", "0.05", "0.5", "0.9", "0.95", "0.99", "1"])
def test_percentile_matches_the_exact_computation(counts: tuple[int, ...], q: str) -> None:
    expected = reference_percentile(counts, Fraction(q))
    assert expected is not None
    assert percentile(counts, float(q)) == pytest.approx(float(expected), rel=1e-12)


durations = st.lists(st.integers(min_value=0, max_value=120_000), min_size=1, max_size=300)
quantiles = st.sampled_from([0.01, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99, 1.0])


def histogram_of(values: list[int]) -> tuple[int, ...]:
    counts = [0] * N_HISTOGRAM
    for v in values:
        counts[bisect_left(BOUNDS, v)] += 1
    return tuple(counts)


@settings(max_examples=300, deadline=None)
@given(values=durations, q=quantiles)
def test_percentile_lies_in_the_bucket_of_the_true_value(values: list[int], q: float) -> None:
    """The true q-quantile (the value of rank ceil(q·n)) and the estimate share a
    bucket: the estimate is within the bounds the docstring promises."""
    ordered = sorted(values)
    rank = max(1, math.ceil(Fraction(repr(q)) * len(values)))
    true = ordered[rank - 1]
    index = bisect_left(BOUNDS, true)
    lower = BOUNDS[index - 1] if index else 0
    estimate = percentile(histogram_of(values), q)
    assert estimate is not None
    if index == len(BOUNDS):
        assert estimate == BOUNDS[-1]  # "more than a minute"
    else:
        assert lower <= estimate <= BOUNDS[index]


@settings(max_examples=200, deadline=None)
@given(values=durations)
def test_percentile_grows_with_q(values: list[int]) -> None:
    counts = histogram_of(values)
    estimates = [percentile(counts, q / 20) for q in range(21)]
    assert all(e is not None for e in estimates)
    assert estimates == sorted(estimates)  # type: ignore[type-var]
    assert estimates[-1] is not None and estimates[-1] <= max(BOUNDS[-1], max(values))


# -- counting a request once -------------------------------------------------------------


def test_producer_records_win_over_client_records() -> None:
    buckets = [
        bucket(AUTH, side="Producer", count=100),
        bucket(AUTH, side="Producer", count=4, ok=False, fault="Server.ServerProxy.X"),
        bucket(AUTH, side="Client", count=70),  # the same requests, seen by a consumer
        bucket(PAGOS, side="Client", count=30),  # the provider's server is not monitored
        bucket(PAGOS, side="Client", count=3, ok=False, fault="Server.ClientProxy.Y"),
    ]

    report = summarize(buckets, START, END)

    pagos, auth = report.services  # sorted by identifier
    assert (auth.service, auth.counted_side, auth.requests, auth.failures) == (
        AUTH,
        "Producer",
        104,
        4,
    )
    assert (pagos.service, pagos.counted_side, pagos.requests, pagos.failures) == (
        PAGOS,
        "Client",
        33,
        3,
    )
    assert report.requests == 137  # never 207 (the sum of both sides)
    assert sum(c.requests for c in report.clients) == 137


def test_the_rule_looks_at_the_period_only() -> None:
    """Producer records outside the period do not make the Client records inside it
    disappear."""
    buckets = [
        bucket(AUTH, side="Producer", count=50, at=START - timedelta(minutes=15)),
        bucket(AUTH, side="Client", count=20, at=START),
        bucket(AUTH, side="Producer", count=99, at=END),  # [start, end): END is out
    ]
    (auth,) = summarize(buckets, START, END).services
    assert (auth.counted_side, auth.requests) == ("Client", 20)


def test_figures_ratios_faults_and_percentiles_of_a_service() -> None:
    buckets = [
        bucket(AUTH, count=90, histogram=hist(b6=90)),
        bucket(AUTH, count=6, ok=False, fault="Server.ServerProxy.ServiceFailed"),
        bucket(AUTH, count=2, ok=False, fault="Server.ClientProxy.NetworkError"),
        bucket(AUTH, count=1, ok=False, fault="Client.BadRequest"),
        bucket(AUTH, count=1, ok=False, fault=""),
        bucket(AUTH, side="Client", count=1000, ok=False, fault="Server.ClientProxy.Z"),
    ]

    (auth,) = summarize(buckets, START, END).services

    assert (auth.requests, auth.successes, auth.failures) == (100, 90, 10)
    assert auth.success_ratio == 0.9
    assert auth.faults_by_side == {"consumer": 2, "provider": 6, "client": 1, "unknown": 1}
    assert tuple(auth.faults_by_side) == FAULT_SIDES
    assert auth.top_faults == (
        ("Server.ServerProxy.ServiceFailed", 6),
        ("Server.ClientProxy.NetworkError", 2),
        ("Client.BadRequest", 1),
    )
    assert auth.histogram == hist(b6=100)
    assert auth.p95_ms == percentile(hist(b6=100), 0.95) == 97.5
    assert (auth.request_bytes, auth.response_bytes) == (10_000, 100_000)
    assert auth.provider_member == "CO/GOB/900000001"


def test_providers_and_clients_add_their_parts_up() -> None:
    buckets = [
        bucket(AUTH, count=10, client="CO/GOB/1/A"),
        bucket(AUTH_V2, count=5, ok=False, fault="Server.ServerProxy.X", client="CO/GOB/1/B"),
        bucket(PAGOS, side="Client", count=7, client="CO/GOB/2/C"),
        bucket("", side="Client", count=4, ok=False, fault="Client.Bad", client="CO/GOB/2/C"),
        bucket("", side="Producer", count=1, ok=False, client=""),
    ]

    report = summarize(buckets, START, END)

    assert [(p.provider_member, p.requests, p.failures) for p in report.providers] == [
        ("CO/COM/900000002", 7, 0),
        ("CO/GOB/900000001", 15, 5),
    ]
    gob = report.providers[1]
    assert [s.service for s in gob.services] == [AUTH, AUTH_V2]
    assert gob.success_ratio == pytest.approx(10 / 15)
    assert gob.faults_by_side["provider"] == 5
    assert [(c.client_member, c.requests, c.failures) for c in report.clients] == [
        ("", 1, 1),
        ("CO/GOB/1", 15, 5),  # subsystems A and B together
        ("CO/GOB/2", 11, 4),  # the unattributed records included
    ]
    assert report.unattributed == 5
    assert all(s.service for s in report.services)


def test_success_ratios_and_the_lookup_without_a_version() -> None:
    buckets = [
        bucket(AUTH, count=8),
        bucket(AUTH, count=2, ok=False, fault="Server.ServerProxy.X"),
        bucket(AUTH_V2, count=5),
        bucket(AUTH_BARE, count=5, ok=False),
        bucket(PAGOS, count=4),
    ]
    report = summarize(buckets, START, END)

    ratios = success_ratio_by_service(report)

    assert ratios == {AUTH: 0.8, AUTH_V2: 1.0, AUTH_BARE: 0.0, PAGOS: 1.0}
    assert success_ratio_for(report, AUTH) == 0.8
    assert success_ratio_for(report, ServiceId.parse(AUTH_V2)) == 1.0
    # Without a version: every version and the unversioned records, summed.
    assert success_ratio_for(report, AUTH_BARE) == (8 + 5) / 20
    assert success_ratio_for(report, ServiceId.parse(AUTH).without_version()) == 13 / 20
    assert success_ratio_for(report, PAGOS + "/v9") is None  # that version had none
    assert success_ratio_for(report, PAGOS) == 1.0
    assert success_ratio_for(report, "CO/GOB/1/X/nada") is None


# -- properties ----------------------------------------------------------------------------

services_st = st.sampled_from([AUTH, AUTH_V2, PAGOS, ""])
buckets_st = st.lists(
    st.builds(
        lambda service, side, count, ok, client, minutes: bucket(
            service,
            side=side,
            count=count,
            ok=ok,
            fault="" if ok else "Server.ServerProxy.X",
            client=client,
            at=START + timedelta(minutes=15 * minutes),
        ),
        services_st,
        st.sampled_from(["Client", "Producer"]),
        st.integers(min_value=1, max_value=1000),
        st.booleans(),
        st.sampled_from(["CO/GOB/1/A", "CO/GOB/1/B", "CO/GOB/2/C", ""]),
        st.integers(min_value=-4, max_value=4),
    ),
    max_size=40,
)


@settings(max_examples=200, deadline=None)
@given(buckets=buckets_st)
def test_each_request_is_counted_from_one_side(buckets: list[UsageBucket]) -> None:
    end = START + timedelta(hours=1)
    inside = [b for b in buckets if START <= b.bucket_start < end]
    report = summarize(buckets, START, end)

    for s in report.services:
        sides = {b.side for b in inside if b.service == s.service}
        assert s.counted_side == ("Producer" if "Producer" in sides else "Client")
        counted = [b for b in inside if b.service == s.service and b.side == s.counted_side]
        assert s.requests == sum(b.count for b in counted)
        assert s.successes + s.failures == s.requests
        assert sum(s.faults_by_side.values()) == s.failures
        assert s.success_ratio == s.successes / s.requests
    assert {s.service for s in report.services} == {b.service for b in inside if b.service}
    assert sum(p.requests for p in report.providers) == report.requests
    assert sum(c.requests for c in report.clients) == report.requests + report.unattributed
    assert report.unattributed == sum(b.count for b in inside if not b.service)


@settings(max_examples=100, deadline=None)
@given(buckets=buckets_st)
def test_summing_buckets_first_changes_nothing(buckets: list[UsageBucket]) -> None:
    """What UsageRepository.totals returns (buckets summed over time and servers) gives
    the same report as the buckets themselves."""
    end = START + timedelta(hours=1)
    merged: dict[tuple[object, ...], UsageBucket] = {}
    for b in buckets:
        if not START <= b.bucket_start < end:
            continue
        key = (b.side, b.client, b.service, b.succeeded, b.fault_code)
        old = merged.get(key)
        merged[key] = (
            replace(b, security_server="", bucket_start=START)
            if old is None
            else replace(
                old,
                count=old.count + b.count,
                duration_count=old.duration_count + b.duration_count,
                duration_sum_ms=old.duration_sum_ms + b.duration_sum_ms,
                histogram=tuple(x + y for x, y in zip(old.histogram, b.histogram, strict=True)),
                request_bytes=old.request_bytes + b.request_bytes,
                response_bytes=old.response_bytes + b.response_bytes,
            )
        )
    assert summarize(list(merged.values()), START, end) == summarize(buckets, START, end)
