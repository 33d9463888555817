"""Which maintenance windows of a service are excluded from its ANS in a period.

Rules, exactly:

- A one-off :class:`MaintenanceWindow` ``[start, end)`` is *allowed* unless the service
  sets ``maintenance_notice`` and the window's ``announced_at`` is missing or later
  than ``start - maintenance_notice`` (announcing exactly ``notice`` ahead is enough).
  A window that is not allowed is *rejected*: it is reported, with why, and its time
  is not excluded (an outage in it is charged).
- A :class:`RecurringMaintenance` starts at every fire time of its 5-field cron
  expression, with standard cron semantics (``cronsim``: 0 and 7 are Sunday, names
  ``mon``..``sun``, ranges and steps; when both day-of-month and day-of-week are
  restricted, either one matching is enough), read on the wall clock of the catalog's
  zone ``tz``, and lasts ``duration`` of elapsed time (start converted to UTC, then
  ``duration`` added). It is a standing announcement, so ``maintenance_notice`` does
  not apply to it. Occurrences that began before the period but reach into it are
  included (the expansion looks back by ``duration``).
  In a DST zone, a fire time that falls in the spring-forward gap is read with the
  pre-transition offset (the instant the gap pushes it to: 02:30 in a 02:00→03:00 gap
  starts at 03:30 new time), and two fire times naming the same instant start one
  window. On fall-back day the repeated hour is walked in time order through both of
  its occurrences, and the same wall time twice in a row starts *one* window, at its
  first occurrence (a daily 02:30 starts once; every 30 minutes goes on through both
  occurrences of the hour).
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

from cronsim import CronSim

from scd_monitor.catalog.models import MaintenanceWindow, RecurringMaintenance, Service
from scd_monitor.config.durations import format_duration
from scd_monitor.sla.intervals import clip_spans, flatten, to_utc
from scd_monitor.sla.model import Period, Span, State
from scd_monitor.timefmt import iso_utc

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
        required = (
            f"the service requires {format_duration(notice)} notice "
            f"(announcement due by {iso_utc(deadline)})"
        )
        if announced is None:
            rejected = f"not announced: {required}"
        elif announced > deadline:
            ahead = (
                f"{format_duration(start - announced)} before the start"
                if announced <= start
                else f"{format_duration(announced - start)} after the start"
            )
            rejected = f"announced {iso_utc(announced)}, {ahead}; {required}"
    return PlannedWindow(start, end, item.reason, "once", announced, rejected)


_OFFSET_SLACK = timedelta(hours=3)
"""More than any change of a zone's UTC offset: how far past the period, in wall-clock
time, fire times are read so that none whose instant meets the period is missed."""


def _recurring(
    item: RecurringMaintenance, lo: datetime, hi: datetime, tz: ZoneInfo
) -> list[PlannedWindow]:
    # cronsim walks naive wall-clock times (it applies no DST rule of its own); each is
    # placed in ``tz`` by _instants, and the fire times are then taken in time order.
    wall_lo = (lo - item.duration).astimezone(tz).replace(tzinfo=None) - _OFFSET_SLACK
    wall_hi = hi.astimezone(tz).replace(tzinfo=None) + _OFFSET_SLACK
    fires: list[tuple[datetime, datetime]] = []
    for wall in CronSim(item.cron, wall_lo):
        if wall >= wall_hi:
            break
        fires.extend((start, wall) for start in _instants(wall, tz))
    fires.sort()
    out: list[PlannedWindow] = []
    started: set[datetime] = set()
    last_wall: datetime | None = None
    for start, wall in fires:
        # The same wall time twice in a row is one fire time read twice (fall-back day);
        # two wall times naming the same instant (a gap) start one window.
        if wall != last_wall and start not in started:
            started.add(start)
            end = start + item.duration
            if start < hi and end > lo:
                out.append(PlannedWindow(start, end, item.reason, "recurring"))
        last_wall = wall
    return out


def _instants(wall: datetime, tz: ZoneInfo) -> list[datetime]:
    """The UTC instants the naive wall-clock time ``wall`` names in ``tz``: one; both
    readings of a time that happens twice (fall-back); for a time that does not happen
    (spring-forward gap), its reading with the pre-transition offset."""
    first = wall.replace(tzinfo=tz, fold=0).astimezone(UTC)
    second = wall.replace(tzinfo=tz, fold=1).astimezone(UTC)
    if first == second or first.astimezone(tz).replace(tzinfo=None) != wall:
        return [first]
    return [first, second]
