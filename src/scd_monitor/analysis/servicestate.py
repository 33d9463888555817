"""A service's state now: the one combination behind the board and incident detection.

``scd_service_state`` (:class:`scd_monitor.web.metrics.StateCollector`) and incident
detection (:func:`scd_monitor.incidents.observe.observe`) both read a service's state
from :func:`service_state`, so a service inside an announced maintenance window reads
``maintenance`` on the board exactly when detection opens nothing for it.

The state is the last instant of :func:`scd_monitor.sla.timeline.service_timeline` over
one second ending ``now``, with the checks' current states and the service's *allowed*
maintenance windows (:func:`scd_monitor.sla.maintenance.maintenance_spans`, in the
catalog's time zone): critical checks combine by the service's rule (``any``, ``all``,
``quorum``); a failing non-critical check only degrades; checks without a state are
unknown; an allowed window makes the service MAINTENANCE. One vantage (this monitor's),
so no vantage quorum.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from scd_monitor.catalog.models import ResolvedCheck, Service
from scd_monitor.sla.maintenance import maintenance_spans
from scd_monitor.sla.model import Period, Span, State
from scd_monitor.sla.timeline import CheckTimeline, service_timeline

__all__ = ["service_state"]


def service_state(
    service: Service,
    checks: Iterable[tuple[ResolvedCheck, State]],
    *,
    now: datetime,
    tz: ZoneInfo,
    vantage: str,
) -> State:
    """The state of ``service`` at ``now`` from its checks' current states.

    ``checks``: the service's (non-canary) checks with their states now; ``tz``: the
    catalog's time zone (recurring maintenance is read in it); ``vantage``: this
    monitor's vantage.
    """
    instant = Period(now - timedelta(seconds=1), now)
    timelines = [
        CheckTimeline(
            check_id=check.id,
            provider=check.provider,
            vantage=vantage,
            critical=check.critical,
            spans=[Span(instant.start, instant.end, state)] if state is not State.UNKNOWN else [],
        )
        for check, state in checks
    ]
    timeline = service_timeline(
        timelines,
        rule=service.rule,
        vantage_quorum=1,
        period=instant,
        maintenance=maintenance_spans(service, instant, tz).allowed,
        monitor_faults={},
    )
    return timeline.effective[-1].state if timeline.effective else State.UNKNOWN
