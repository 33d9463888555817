"""Calendar periods in the catalog's time zone, as UTC instants.

An ANS month is a month of the catalog's zone (``America/Bogota`` by default): it
runs from local midnight on the 1st to local midnight on the 1st of the next month.
Those two local times are converted to UTC *before* anything is subtracted, so a month
with a DST change has its real length (``Europe/Madrid``, March 2026: 743 h).

Where local midnight does not exist (a zone that springs forward at 00:00), the day
starts at the first instant of the local date: Python's ``fold=0`` reading of a
missing wall time uses the offset from before the transition, which lands exactly on
the transition instant. Where local midnight happens twice (a zone that falls back at
01:00 → 00:00), ``fold=0`` picks the first occurrence, again the day's first instant.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from scd_monitor.sla.model import Period

__all__ = [
    "day_periods",
    "local_midnight",
    "month_of",
    "month_period",
    "parse_month",
]

_MONTH = re.compile(r"^(\d{4})-(\d{2})$")


def local_midnight(day: date, tz: ZoneInfo) -> datetime:
    """The UTC instant at which ``day`` begins in ``tz``."""
    return datetime.combine(day, time(0), tzinfo=tz).astimezone(UTC)


def month_period(year: int, month: int, tz: ZoneInfo) -> Period:
    """The month ``year-month`` of ``tz`` as a UTC period ``[first midnight, next)``.

    ``month_period(2026, 11, ZoneInfo("America/Bogota"))`` is
    ``[2026-11-01T05:00Z, 2026-12-01T05:00Z)``.
    """
    if not 1 <= month <= 12:
        raise ValueError(f"month must be 1..12, got {month}")
    first = date(year, month, 1)
    following = date(year + 1, 1, 1) if month == 12 else date(year, month + 1, 1)
    return Period(local_midnight(first, tz), local_midnight(following, tz))


def parse_month(text: str) -> tuple[int, int]:
    """``"2026-11"`` → ``(2026, 11)``; anything else is a ``ValueError``."""
    match = _MONTH.match(text.strip())
    if match is None:
        raise ValueError(f"expected a month as YYYY-MM, got {text!r}")
    year, month = int(match.group(1)), int(match.group(2))
    if not 1 <= month <= 12 or year < 1:
        raise ValueError(f"expected a month as YYYY-MM, got {text!r}")
    return year, month


def month_of(instant: datetime, tz: ZoneInfo) -> Period:
    """The month of ``tz`` that contains ``instant`` (aware)."""
    if instant.tzinfo is None:
        raise ValueError("instant must be timezone-aware")
    local = instant.astimezone(tz)
    return month_period(local.year, local.month, tz)


def day_periods(period: Period, tz: ZoneInfo) -> list[Period]:
    """The local days of ``tz`` that meet ``period``, each clipped to ``period``.

    Consecutive, gap-free and covering ``period`` exactly; a 23 h or 25 h day stays
    23 h or 25 h. An empty period gives ``[]``.
    """
    start, end = period.start.astimezone(UTC), period.end.astimezone(UTC)
    if end <= start:
        return []
    out: list[Period] = []
    day = start.astimezone(tz).date()
    # The local date of an instant can begin after it only if that midnight does not
    # exist and the zone's transition is odd; step back once to be safe.
    if local_midnight(day, tz) > start:
        day -= timedelta(days=1)
    while True:
        lo = local_midnight(day, tz)
        hi = local_midnight(day + timedelta(days=1), tz)
        if lo >= end:
            break
        piece_lo, piece_hi = max(lo, start), min(hi, end)
        if piece_lo < piece_hi:
            out.append(Period(piece_lo, piece_hi))
        day += timedelta(days=1)
    return out
