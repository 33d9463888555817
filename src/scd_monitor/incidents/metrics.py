"""Prometheus metrics of incidents and their outbox, from a snapshot at scrape time.

The daemon refreshes an :class:`IncidentMetricsSnapshot` after each evaluation (one
cheap query, :meth:`IncidentService.stats`) and the collector only reads it, so a scrape
never touches the database. Every series is bounded: severities, sinks of the catalog,
four statuses, three outcomes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from scd_monitor.catalog.incident_kinds import Severity
from scd_monitor.store.outbox import OutboxStats

__all__ = ["IncidentCollector", "IncidentMetricsSnapshot"]

_STATUSES = ("pending", "in_flight", "delivered", "failed")
_OUTCOMES = ("delivered", "transient_error", "permanent_error")


@dataclass(frozen=True, slots=True)
class IncidentMetricsSnapshot:
    stats: OutboxStats | None = None
    """From :meth:`IncidentService.stats` (``None`` until the first read)."""
    outcomes: Mapping[tuple[str, str], int] = field(default_factory=dict)
    """:attr:`OutboxDispatcher.outcomes`: (sink, outcome) → attempts since start."""
    sinks: tuple[str, ...] = ()
    """The configured sinks (their series exist even at zero)."""
    evaluations_total: int = 0
    last_evaluation_timestamp: float | None = None


class IncidentCollector(Collector):
    """``scd_incidents_open``, ``scd_incident_deliveries``, ``scd_incident_delivery_attempts``,
    ``scd_outbox_backlog``, ``scd_outbox_oldest_pending_age_seconds`` and the evaluator's
    health."""

    def __init__(self, snapshot: Callable[[], IncidentMetricsSnapshot]) -> None:
        self._snapshot = snapshot

    def collect(self) -> Iterable[Metric]:
        snap = self._snapshot()
        stats = snap.stats
        open_ = GaugeMetricFamily(
            "scd_incidents_open",
            "Open incidents (not resolved), by severity.",
            labels=["severity"],
        )
        by_status = GaugeMetricFamily(
            "scd_incident_deliveries",
            "Report deliveries in the outbox, by sink and status "
            "(pending, in_flight, delivered, failed).",
            labels=["sink", "status"],
        )
        attempts = CounterMetricFamily(
            "scd_incident_delivery_attempts",
            "Delivery attempts since the daemon started, by sink and outcome "
            "(delivered, transient_error, permanent_error).",
            labels=["sink", "outcome"],
        )
        backlog = GaugeMetricFamily(
            "scd_outbox_backlog", "Deliveries not settled yet (pending or in flight)."
        )
        oldest = GaugeMetricFamily(
            "scd_outbox_oldest_pending_age_seconds",
            "Age of the oldest delivery not settled yet (0 when none).",
        )
        evaluations = CounterMetricFamily(
            "scd_incident_evaluations", "Incident evaluations run by this daemon."
        )
        last = GaugeMetricFamily(
            "scd_incident_last_evaluation_timestamp_seconds",
            "When this daemon last evaluated incidents.",
        )
        sinks = set(snap.sinks)
        if stats is not None:
            for severity in Severity:
                open_.add_metric(
                    [severity.value], float(stats.open_by_severity.get(severity.value, 0))
                )
            sinks |= {sink for sink, _ in stats.by_sink_status}
            for sink in sorted(sinks):
                for status in _STATUSES:
                    by_status.add_metric(
                        [sink, status], float(stats.by_sink_status.get((sink, status), 0))
                    )
            backlog.add_metric([], float(stats.backlog))
            oldest.add_metric([], stats.oldest_pending_age_seconds or 0.0)
        for sink in sorted(sinks | {s for s, _ in snap.outcomes}):
            for outcome in _OUTCOMES:
                attempts.add_metric([sink, outcome], float(snap.outcomes.get((sink, outcome), 0)))
        evaluations.add_metric([], float(snap.evaluations_total))
        if snap.last_evaluation_timestamp is not None:
            last.add_metric([], snap.last_evaluation_timestamp)
        yield from (open_, by_status, attempts, backlog, oldest, evaluations, last)
