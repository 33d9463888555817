"""Which maintenance windows of a service are excluded from its ANS in a period.

Rules, exactly:

- A one-off :class:`MaintenanceWindow` ``[start, end)`` is *allowed* unless the service
  sets ``maintenance_notice`` and the window's ``announced_at`` is missing or later
  than ``start - maintenance_notice`` (announcing exactly ``notice`` ahead is enough).
  A window that is not allowed is *rejected*: it is reported, with why, and its time
  is not excluded (an outage in it is charged).
- A :class:`RecurringMaintenance` starts at every fire time of its 5-field cron
  expression read in the catalog's zone ``tz`` and lasts ``duration`` of elapsed time
  (start converted to UTC, then ``duration`` added). It is a standing announcement, so
  ``maintenance_notice`` does not apply to it. Occurrences that began before the period
  but reach into it are included (the expansion looks back by ``duration``).
  In a DST zone, a fire time that falls in the spring-forward gap is APScheduler's
  reading of it (the wall time with the pre-transition offset, i.e. the instant the gap
  pushes it to); a wall time that happens twice on fall-back day starts *one* window,
  at its first occurrence.
- Only windows that overlap the period are returned. :attr:`MaintenancePlan.allowed`
  is the union of the allowed windows clipped to the period, as normalized
  MAINTENANCE spans ready for :func:`scd_monitor.sla.timeline.service_timeline`;
  where allowed windows overlap, the piece's reason lists each window's reason.

A check *observed* in maintenance (an X-Road health check answering 503) is not a
window: it arrives as a MAINTENANCE check span and is handled by the timeline.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

from scd_monitor.catalog.models import (
    MaintenanceWindow,
    RecurringMaintenance,
    Service,
    standard_crontab,
)
from scd_monitor.sla.intervals import clip_spans, flatten, to_utc
from scd_monitor.sla.model import Period, Span, State

__all__ = ["MaintenancePlan", "PlannedWindow", "maintenance_spans"]


@dataclass(frozen=True, slots=True)
class PlannedWindow:
    """One occurrence of a maintenance window that meets the period (not clipped)."""

    start: datetime
    end: datetime
    reason: str
    kind: Literal["once", "recurring"]
    announced_at: datetime | None = None
    rejected: str | None = None
    """Why the window is not excluded; ``None`` when it is allowed."""

    @property
    def allowed(self) -> bool:
        return self.rejected is None


@dataclass(frozen=True, slots=True)
class MaintenancePlan:
    """The maintenance of one service over one period."""

    period: Period
    allowed: list[Span]
    """Allowed windows ∩ period: normalized MAINTENANCE spans, reason = window reason."""
    windows: list[PlannedWindow]
    """Every occurrence meeting the period, allowed or not, by start then reason."""

    @property
    def rejected(self) -> list[PlannedWindow]:
        """The windows that are *not* excluded, each with ``rejected`` saying why."""
        return [w for w in self.windows if w.rejected is not None]

    @property
    def excluded(self) -> timedelta:
        """Total time excluded by allowed windows within the period."""
        return sum((s.duration for s in self.allowed), timedelta(0))


def maintenance_spans(service: Service, period: Period, tz: ZoneInfo) -> MaintenancePlan:
    """Expand the service's maintenance over ``period`` (see the module docstring)."""
    lo, hi = to_utc(period.start), to_utc(period.end)
    windows: list[PlannedWindow] = []
    for item in service.maintenance:
        if isinstance(item, MaintenanceWindow):
            window = _one_off(item, service.maintenance_notice)
            if window.start < hi and window.end > lo:
                windows.append(window)
        else:
            windows.extend(_recurring(item, lo, hi, tz))
    windows.sort(key=lambda w: (w.start, w.end, w.reason, w.kind))
    spans = [
        Span(w.start, w.end, State.MAINTENANCE, w.reason) for w in windows if w.rejected is None
    ]
    allowed = clip_spans(flatten(spans, state=State.MAINTENANCE), Period(lo, hi))
    return MaintenancePlan(period=Period(lo, hi), allowed=allowed, windows=windows)


def _one_off(item: MaintenanceWindow, notice: timedelta | None) -> PlannedWindow:
    start, end = to_utc(item.start), to_utc(item.end)
    announced = to_utc(item.announced_at) if item.announced_at is not None else None
    rejected: str | None = None
    if notice is not None:
        deadline = start - notice
        if announced is None:
            rejected = (
                f"not announced: the service requires {_human(notice)} notice "
                f"(announcement due by {_iso(deadline)})"
            )
        elif announced > deadline:
            rejected = (
                f"announced {_iso(announced)}, {_human(start - announced)} before the start; "
                f"the service requires {_human(notice)} notice "
                f"(announcement due by {_iso(deadline)})"
            )
    return PlannedWindow(start, end, item.reason, "once", announced, rejected)


def _recurring(
    item: RecurringMaintenance, lo: datetime, hi: datetime, tz: ZoneInfo
) -> list[PlannedWindow]:
    # Imported here like the catalog does: APScheduler is only needed to expand cron.
    from apscheduler.triggers.cron import CronTrigger

    trigger = CronTrigger.from_crontab(standard_crontab(item.cron), timezone=tz)
    out: list[PlannedWindow] = []
    fire: datetime | None = trigger.get_next_fire_time(None, (lo - item.duration).astimezone(tz))
    last_wall: datetime | None = None
    while fire is not None:
        start = fire.astimezone(UTC)
        if start >= hi:
            break
        wall = fire.replace(tzinfo=None)
        if wall != last_wall:  # the second reading of a repeated (fall-back) wall time
            end = start + item.duration
            if end > lo:
                out.append(PlannedWindow(start, end, item.reason, "recurring"))
        last_wall = wall
        fire = trigger.get_next_fire_time(fire, fire)
    return out


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _human(value: timedelta) -> str:
    seconds = int(value.total_seconds())
    sign = "-" if seconds < 0 else ""
    seconds = abs(seconds)
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [f"{n}{unit}" for n, unit in ((days, "d"), (hours, "h"), (minutes, "m"), (secs, "s"))]
    kept = [p for p in parts if not p.startswith("0")]
    return sign + ("".join(kept) if kept else "0s")
