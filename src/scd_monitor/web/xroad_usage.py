"""Use of the X-Road platform, from its operational monitoring: the series of the
*Uso de la plataforma* board (docs/uso-plataforma.md).

Built at scrape time from immutable views the collector (:mod:`scd_monitor.runtime.opmon`)
publishes: per security server the collection's state and its last health data, per
source the totals of the records stored since the daemon started (counters: they start
from zero at a restart, which ``rate()`` understands; the records themselves are stored
once, whatever the restarts). Label values past the source's ``max_label_values`` are
already folded into ``_other`` by the collector, so the number of series is bounded.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from scd_monitor.xroad.opmon import HealthData

__all__ = [
    "DURATION_BUCKETS_SECONDS",
    "OTHER",
    "ServerUsageStatus",
    "UsageCollector",
    "UsageTotals",
    "UsageView",
]

OTHER = "_other"
"""The label value every value past the cap is folded into."""

DURATION_BUCKETS_SECONDS = (
    0.001,
    0.002,
    0.005,
    0.01,
    0.02,
    0.05,
    0.1,
    0.2,
    0.5,
    1.0,
    2.0,
    5.0,
    10.0,
    20.0,
    60.0,
)
"""Upper bounds of the request duration histogram (``+Inf`` follows)."""

CALLS = ("operational_data", "health_data")


@dataclass(frozen=True, slots=True)
class UsageTotals:
    """One source's records since the daemon started, by the board's dimensions."""

    services: Mapping[tuple[str, str, str], int] = field(default_factory=dict)
    """(provider member, service, result) → requests."""
    clients: Mapping[tuple[str, str], int] = field(default_factory=dict)
    """(client member, result) → requests."""
    faults: Mapping[tuple[str, str], int] = field(default_factory=dict)
    """(side, fault code) → failed requests."""
    durations: Mapping[str, tuple[tuple[int, ...], float]] = field(default_factory=dict)
    """provider member → (per-bucket counts, ``+Inf`` last; sum of seconds)."""


@dataclass(frozen=True, slots=True)
class ServerUsageStatus:
    """One security server of one source, as the collector sees it now."""

    source: str
    security_server: str
    records_total: int = 0
    refused_total: int = 0
    cursor: int | None = None
    """Unix seconds: records before it are collected."""
    up: Mapping[str, bool] = field(default_factory=dict)
    """call → whether its last attempt answered (absent: not tried yet)."""
    last_success: Mapping[str, float] = field(default_factory=dict)
    health: HealthData | None = None


@dataclass(frozen=True, slots=True)
class UsageView:
    servers: tuple[ServerUsageStatus, ...] = ()
    totals: Mapping[str, UsageTotals] = field(default_factory=lambda: MappingProxyType({}))


class UsageCollector(Collector):
    """``scd_xroad_service_*``, ``scd_xroad_client_*``, ``scd_xroad_opmon_*`` and
    ``scd_xroad_health_*`` from the collector's latest view."""

    def __init__(self, view: Callable[[], UsageView]) -> None:
        self._view = view

    def collect(self) -> Iterable[Metric]:
        view = self._view()
        yield from _totals(view.totals)
        yield from _collection(view.servers)
        yield from _health(view.servers)


def _totals(totals: Mapping[str, UsageTotals]) -> Iterable[Metric]:
    services = CounterMetricFamily(
        "scd_xroad_service_requests",
        "X-Road requests per service from the operational data records collected since "
        "the daemon started (the provider's records when there are any, else the "
        "client's), by result.",
        labels=["source", "provider_member", "service", "result"],
    )
    clients = CounterMetricFamily(
        "scd_xroad_client_requests",
        "X-Road requests per client member from the operational data records collected "
        "since the daemon started, by result.",
        labels=["source", "client_member", "result"],
    )
    faults = CounterMetricFamily(
        "scd_xroad_service_faults",
        "Failed X-Road requests by the side the fault code blames (consumer, provider, "
        "client, unknown) and fault code.",
        labels=["source", "side", "fault_code"],
    )
    durations = HistogramMetricFamily(
        "scd_xroad_service_request_duration_seconds",
        "Duration of X-Road requests (responseOutTs - requestInTs of the records), by "
        "provider member.",
        labels=["source", "provider_member"],
    )
    bounds = [*(_le(b) for b in DURATION_BUCKETS_SECONDS), "+Inf"]
    for source, total in sorted(totals.items()):
        for (member, service, result), n in sorted(total.services.items()):
            services.add_metric([source, member, service, result], float(n))
        for (member, result), n in sorted(total.clients.items()):
            clients.add_metric([source, member, result], float(n))
        for (side, code), n in sorted(total.faults.items()):
            faults.add_metric([source, side, code], float(n))
        for member, (counts, seconds) in sorted(total.durations.items()):
            cumulative, running = [], 0
            for bound, count in zip(bounds, counts, strict=True):
                running += count
                cumulative.append((bound, float(running)))
            durations.add_metric([source, member], cumulative, seconds)
    yield from (services, clients, faults, durations)


def _le(bound: float) -> str:
    return repr(float(bound))


def _collection(servers: Iterable[ServerUsageStatus]) -> Iterable[Metric]:
    labels = ["source", "security_server"]
    records = CounterMetricFamily(
        "scd_xroad_opmon_records",
        "Operational data records stored since the daemon started.",
        labels=labels,
    )
    refused = CounterMetricFamily(
        "scd_xroad_opmon_refused_records",
        "Operational data records left out as malformed since the daemon started.",
        labels=labels,
    )
    up = GaugeMetricFamily(
        "scd_xroad_opmon_up",
        "1 when the last call to the security server's operational monitoring answered, "
        "0 when it failed.",
        labels=[*labels, "call"],
    )
    cursor = GaugeMetricFamily(
        "scd_xroad_opmon_cursor_timestamp_seconds",
        "Records before this time are collected (now minus this is the collection lag).",
        labels=labels,
    )
    last = GaugeMetricFamily(
        "scd_xroad_opmon_last_success_timestamp_seconds",
        "When the call last answered.",
        labels=[*labels, "call"],
    )
    for server in servers:
        key = [server.source, server.security_server]
        records.add_metric(key, float(server.records_total))
        refused.add_metric(key, float(server.refused_total))
        if server.cursor is not None:
            cursor.add_metric(key, float(server.cursor))
        for call in CALLS:
            if call in server.up:
                up.add_metric([*key, call], 1.0 if server.up[call] else 0.0)
            if call in server.last_success:
                last.add_metric([*key, call], server.last_success[call])
    yield from (records, refused, up, cursor, last)


def _health(servers: Iterable[ServerUsageStatus]) -> Iterable[Metric]:
    labels = ["source", "security_server"]
    requests = GaugeMetricFamily(
        "scd_xroad_health_requests",
        "Requests per service in the last statistics period of the security server's "
        "health data, by result.",
        labels=[*labels, "service", "result"],
    )
    period = GaugeMetricFamily(
        "scd_xroad_health_statistics_period_seconds",
        "Length of the health data's statistics period.",
        labels=labels,
    )
    duration = GaugeMetricFamily(
        "scd_xroad_health_request_duration_seconds",
        "Request duration per service in the last statistics period (min, avg, max).",
        labels=[*labels, "service", "stat"],
    )
    last = GaugeMetricFamily(
        "scd_xroad_health_last_request_timestamp_seconds",
        "When the service last had a successful / failed request, by the health data.",
        labels=[*labels, "service", "result"],
    )
    startup = GaugeMetricFamily(
        "scd_xroad_health_monitoring_startup_timestamp_seconds",
        "When the security server's operational monitoring started.",
        labels=labels,
    )
    for server in servers:
        health = server.health
        if health is None:
            continue
        key = [server.source, server.security_server]
        period.add_metric(key, float(health.statistics_period_seconds))
        startup.add_metric(key, health.monitoring_startup.timestamp())
        for entry in health.services:
            service = str(entry.service)
            requests.add_metric([*key, service, "success"], float(entry.successful_count))
            requests.add_metric([*key, service, "failure"], float(entry.unsuccessful_count))
            for stat, ms in (
                ("min", entry.request_min_duration_ms),
                ("avg", entry.request_average_duration_ms),
                ("max", entry.request_max_duration_ms),
            ):
                if ms is not None:
                    duration.add_metric([*key, service, stat], ms / 1000.0)
            for result, when in (
                ("success", entry.last_successful),
                ("failure", entry.last_unsuccessful),
            ):
                if when is not None:
                    last.add_metric([*key, service, result], when.timestamp())
    yield from (requests, period, duration, last, startup)
