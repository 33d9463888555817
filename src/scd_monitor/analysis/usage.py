"""The use of the X-Road platform over a period, from the stored usage buckets.

Pure functions over :class:`~scd_monitor.store.usage.UsageBucket` lists (read with
:meth:`UsageRepository.buckets <scd_monitor.store.usage.UsageRepository.buckets>` or,
for a month, the already summed :meth:`~scd_monitor.store.usage.UsageRepository.totals`):
no I/O, no clock.

**Counting a request once.** A request between two monitored security servers is
recorded twice: a ``Client`` record at the consumer's security server and a ``Producer``
record at the provider's. Per service, :func:`summarize` counts the ``Producer`` records
when there is any for that service in the period, otherwise its ``Client`` records;
never the sum. The provider's security server sees every request that reaches the
service, whoever the consumer and wherever it is monitored, so its records are the
complete set when it is monitored; a service whose provider's server is not monitored is
seen only through its consumers' servers (``counted_side`` says which). A provider's
server monitored for only part of the period makes that service's figures cover only
that part. The provider and client figures are built from the same chosen records, so
they add up to the services' figures. Records that name no service (requests refused
before they were resolved) belong to no service: they are counted, from both sides, in
:attr:`UsageReport.unattributed` and in the clients' figures.

**Percentiles** come from the fixed duration histogram (bounds
:data:`~scd_monitor.store.usage.DURATION_BUCKETS_MS`: 1, 2, 5, 10, 20, 50, 100, 200,
500, 1000, 2000, 5000, 10000, 20000, 60000 ms, then ``+Inf``) and are approximate: see
:func:`percentile`.

**Faults** are grouped by the side their code blames (:func:`scd_monitor.xroad.errors.
fault_side`: ``consumer``, ``provider``, ``client``, ``unknown``); a failure without a
fault code is ``unknown``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from fractions import Fraction

from scd_monitor.store.usage import DURATION_BUCKETS_MS, N_HISTOGRAM, UsageBucket
from scd_monitor.xroad.errors import fault_side
from scd_monitor.xroad.identifiers import ServiceId

__all__ = [
    "FAULT_SIDES",
    "TOP_FAULTS",
    "ClientUsage",
    "ProviderUsage",
    "ServiceUsage",
    "UsageReport",
    "percentile",
    "success_ratio_by_service",
    "success_ratio_for",
    "summarize",
]

FAULT_SIDES = ("consumer", "provider", "client", "unknown")
"""The keys of every ``faults_by_side``, always all present."""

TOP_FAULTS = 5
"""How many fault codes ``top_faults`` lists."""

P95 = 0.95


def percentile(
    histogram: Sequence[int], q: float, bounds: Sequence[int] = DURATION_BUCKETS_MS
) -> float | None:
    """The ``q``-quantile (``0 ≤ q ≤ 1``) of the durations counted in ``histogram`` (ms);
    None when it counts nothing. Approximate.

    ``histogram[i]`` counts the durations ``d`` with ``bounds[i-1] < d ≤ bounds[i]``
    (from 0 for the first), the last one those above ``bounds[-1]`` (``+Inf``). The
    quantile's rank is ``q · n`` (``q`` read exactly as written: 0.95 is 19/20); the
    first bucket whose running count reaches it holds the quantile, and the value is
    interpolated linearly inside it, as if its durations were spread evenly between its
    bounds (Prometheus' ``histogram_quantile``). So the true value lies in the same
    bucket: the error is at most the bucket's width (1 → 2 → 5 ms … 20 → 60 s). A
    quantile in the ``+Inf`` bucket is reported as its lower bound (60000 ms): "more than
    a minute". ``q = 0`` gives the lower bound of the first non-empty bucket.
    """
    if len(histogram) != len(bounds) + 1:
        raise ValueError(f"expected {len(bounds) + 1} bucket counts, got {len(histogram)}")
    if not 0 <= q <= 1:
        raise ValueError(f"q must be within [0, 1], got {q}")
    if any(n < 0 for n in histogram):
        raise ValueError("bucket counts must not be negative")
    n = sum(histogram)
    if n == 0:
        return None
    rank = Fraction(repr(float(q))) * n
    seen = 0
    for index, count in enumerate(histogram):
        before = seen
        seen += count
        if count == 0 or seen < rank:
            continue
        if index == len(bounds):
            return float(bounds[-1])
        lower = bounds[index - 1] if index else 0
        return float(lower + (bounds[index] - lower) * (rank - before) / count)
    raise AssertionError("the rank never exceeds the count")


@dataclass(frozen=True, slots=True)
class ServiceUsage:
    """One service's requests in the period, from one side's records."""

    service: str
    """The service's identifier (text form, version included when the records give it)."""
    provider_member: str
    counted_side: str
    """``Producer`` or ``Client``: whose records these figures count (module docstring)."""
    requests: int
    successes: int
    failures: int
    success_ratio: float | None
    """``successes / requests``; None without requests."""
    p95_ms: float | None
    """Approximate (:func:`percentile`); None when no record gave a duration."""
    histogram: tuple[int, ...]
    duration_count: int
    duration_sum_ms: int
    request_bytes: int
    response_bytes: int
    faults_by_side: Mapping[str, int]
    """Failures by the side their fault code blames (:data:`FAULT_SIDES`, all present)."""
    top_faults: tuple[tuple[str, int], ...]
    """The :data:`TOP_FAULTS` commonest fault codes of the failures, commonest first."""


@dataclass(frozen=True, slots=True)
class ProviderUsage:
    """One provider member's services, each counted as in :class:`ServiceUsage`."""

    provider_member: str
    requests: int
    successes: int
    failures: int
    success_ratio: float | None
    p95_ms: float | None
    faults_by_side: Mapping[str, int]
    top_faults: tuple[tuple[str, int], ...]
    services: tuple[ServiceUsage, ...]


@dataclass(frozen=True, slots=True)
class ClientUsage:
    """One client member's requests (its subsystems together), from the records the
    services are counted from, and those that name no service."""

    client_member: str
    """INSTANCE/CLASS/MEMBER; ``''`` for records that name no client."""
    requests: int
    failures: int


@dataclass(frozen=True, slots=True)
class UsageReport:
    """What :func:`summarize` found in ``[start, end)``."""

    start: datetime
    end: datetime
    services: tuple[ServiceUsage, ...]
    providers: tuple[ProviderUsage, ...]
    clients: tuple[ClientUsage, ...]
    unattributed: int
    """Records, of either side, that name no service."""

    @property
    def requests(self) -> int:
        return sum(s.requests for s in self.services)


class _Sums:
    """Running sums of some buckets (mutable, private)."""

    __slots__ = ("bytes_in", "bytes_out", "d_count", "d_sum", "faults", "hist", "n", "ok")

    def __init__(self) -> None:
        self.n = self.ok = self.d_count = self.d_sum = self.bytes_in = self.bytes_out = 0
        self.hist = [0] * N_HISTOGRAM
        self.faults: Counter[str] = Counter()

    def add(self, b: UsageBucket) -> None:
        self.n += b.count
        if b.succeeded:
            self.ok += b.count
        else:
            self.faults[b.fault_code] += b.count
        self.d_count += b.duration_count
        self.d_sum += b.duration_sum_ms
        self.bytes_in += b.request_bytes
        self.bytes_out += b.response_bytes
        for i, count in enumerate(b.histogram):
            self.hist[i] += count

    def merge(self, other: _Sums) -> None:
        self.n += other.n
        self.ok += other.ok
        self.d_count += other.d_count
        self.d_sum += other.d_sum
        self.bytes_in += other.bytes_in
        self.bytes_out += other.bytes_out
        self.faults.update(other.faults)
        for i, count in enumerate(other.hist):
            self.hist[i] += count

    def ratio(self) -> float | None:
        return self.ok / self.n if self.n else None

    def by_side(self) -> dict[str, int]:
        sides = dict.fromkeys(FAULT_SIDES, 0)
        for code, count in self.faults.items():
            sides[fault_side(code) if code else "unknown"] += count
        return sides

    def top(self) -> tuple[tuple[str, int], ...]:
        coded = sorted(((c, n) for c, n in self.faults.items() if c), key=lambda x: (-x[1], x[0]))
        return tuple(coded[:TOP_FAULTS])


def _member(client: str) -> str:
    return "/".join(client.split("/")[:3]) if client else ""


def summarize(buckets: Iterable[UsageBucket], start: datetime, end: datetime) -> UsageReport:
    """The services, providers and clients of the buckets that start in ``[start,
    end)``, each request counted once (see the module docstring)."""
    by_service: dict[str, dict[str, list[UsageBucket]]] = {}
    unattributed: list[UsageBucket] = []
    for b in buckets:
        if not start <= b.bucket_start < end:
            continue
        if not b.service:
            unattributed.append(b)
            continue
        by_service.setdefault(b.service, {}).setdefault(b.side, []).append(b)

    services: list[ServiceUsage] = []
    providers: dict[str, tuple[_Sums, list[ServiceUsage]]] = {}
    clients: dict[str, _Sums] = {}
    for service, sides in sorted(by_service.items()):
        side = "Producer" if sides.get("Producer") else "Client"
        chosen = sides.get(side, [])
        sums = _Sums()
        for b in chosen:
            sums.add(b)
            clients.setdefault(_member(b.client), _Sums()).add(b)
        usage = ServiceUsage(
            service=service,
            provider_member=chosen[0].provider_member if chosen else "",
            counted_side=side,
            requests=sums.n,
            successes=sums.ok,
            failures=sums.n - sums.ok,
            success_ratio=sums.ratio(),
            p95_ms=percentile(sums.hist, P95),
            histogram=tuple(sums.hist),
            duration_count=sums.d_count,
            duration_sum_ms=sums.d_sum,
            request_bytes=sums.bytes_in,
            response_bytes=sums.bytes_out,
            faults_by_side=sums.by_side(),
            top_faults=sums.top(),
        )
        services.append(usage)
        provider = providers.setdefault(usage.provider_member, (_Sums(), []))
        provider[0].merge(sums)
        provider[1].append(usage)
    for b in unattributed:
        clients.setdefault(_member(b.client), _Sums()).add(b)

    return UsageReport(
        start=start,
        end=end,
        services=tuple(services),
        providers=tuple(
            ProviderUsage(
                provider_member=member,
                requests=sums.n,
                successes=sums.ok,
                failures=sums.n - sums.ok,
                success_ratio=sums.ratio(),
                p95_ms=percentile(sums.hist, P95),
                faults_by_side=sums.by_side(),
                top_faults=sums.top(),
                services=tuple(its),
            )
            for member, (sums, its) in sorted(providers.items())
        ),
        clients=tuple(
            ClientUsage(client_member=member, requests=sums.n, failures=sums.n - sums.ok)
            for member, sums in sorted(clients.items())
        ),
        unattributed=sum(b.count for b in unattributed),
    )


def success_ratio_by_service(report: UsageReport) -> dict[str, float | None]:
    """Each service's success ratio, by its text form (version included when given)."""
    return {s.service: s.success_ratio for s in report.services}


def success_ratio_for(report: UsageReport, service: ServiceId | str) -> float | None:
    """The success ratio of ``service``; None when it had no requests in the period.

    A service asked for with its version matches only that version. Asked for without
    one, it matches the records that give no version and those of every version, summed
    (a catalog that names ``…/SUBSYSTEM/consultar`` gets the figures of ``consultar/v1``
    and ``consultar/v2`` together).
    """
    asked = str(service)
    if isinstance(service, ServiceId):
        versioned = service.service_version is not None
    else:
        versioned = len(asked.split("/")) == 6
    if versioned:
        exact = next((s for s in report.services if s.service == asked), None)
        return exact.success_ratio if exact is not None else None
    matching = [
        s
        for s in report.services
        if s.service == asked
        or (s.service.count("/") == 5 and s.service.rsplit("/", 1)[0] == asked)
    ]
    requests = sum(s.requests for s in matching)
    return sum(s.successes for s in matching) / requests if requests else None
