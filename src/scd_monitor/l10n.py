"""Spanish (es-CO) for people: numbers, percentages, dates, times and durations.

One source for the monthly exports (XLSX, PDF) and the incident reports:

- Numbers: decimal comma, ``.`` between thousands (``1.234,5``), as es-CO writes them.
- Percentages: a space before ``%`` and three decimals, rounded half up as a spreadsheet
  rounds (``99,512 %``), so the PDF shows the digits the XLSX shows. Deciding anything
  (*Cumple*, bands) is done on the exact figures, never on these strings.
- Dates: ``1 de noviembre de 2026``, ``octubre de 2026``; date and time in tables
  ``05/10/2026 10:00:00``; in prose ``3 de diciembre de 2026, 09:42``; with the UTC
  offset (incident reports, read anywhere) ``04/05/2026 10:15:00 (UTC-5)``: day first, a
  24-hour clock, the offset as people write it (``UTC-5``, ``UTC+5:30``, ``UTC``). Always
  in the zone given (the catalog's). :func:`localize_instants` rewrites the ISO-8601 UTC
  instants found in a text that way.
- Durations: ``2 h 40 min``, ``5 h 49 min 50 s``, ``3 d 4 h``; under a minute with one
  decimal at most (``12,5 s``); ``0 s`` for nothing; a negative one with ``-``.
- A missing value reads ``–`` (an en dash, in cp1252 and so in the PDF's core fonts).

Pure functions; the machine formats (CSV, JSON) do not use them (they use
:mod:`scd_monitor.timefmt`). Imports nothing of the application.
"""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_EVEN, ROUND_HALF_UP, Decimal
from zoneinfo import ZoneInfo

__all__ = [
    "DASH",
    "MONTHS",
    "duration",
    "local_datetime",
    "local_instant",
    "localize_instants",
    "long_date",
    "long_datetime",
    "month_name",
    "number",
    "percent",
    "seconds",
    "utc_offset",
]

MONTHS: tuple[str, ...] = (
    "enero",
    "febrero",
    "marzo",
    "abril",
    "mayo",
    "junio",
    "julio",
    "agosto",
    "septiembre",
    "octubre",
    "noviembre",
    "diciembre",
)

DASH = "–"
"""What a missing value reads as (an en dash, in cp1252 and so in the PDF's core fonts)."""


def long_date(day: date) -> str:
    """``date(2026, 11, 1)`` → ``"1 de noviembre de 2026"``."""
    return f"{day.day} de {MONTHS[day.month - 1]} de {day.year}"


def month_name(year: int, month: int) -> str:
    """``(2026, 10)`` → ``"octubre de 2026"``."""
    return f"{MONTHS[month - 1]} de {year}"


def local_datetime(instant: datetime, tz: ZoneInfo, *, seconds: bool = True) -> str:
    """``05/10/2026 10:00:00`` (or ``05/10/2026 10:00``) in ``tz``: tables."""
    value = instant.astimezone(tz)
    return value.strftime("%d/%m/%Y %H:%M:%S" if seconds else "%d/%m/%Y %H:%M")


def long_datetime(instant: datetime, tz: ZoneInfo) -> str:
    """``3 de diciembre de 2026, 09:42`` in ``tz``: prose."""
    value = instant.astimezone(tz)
    return f"{long_date(value.date())}, {value:%H:%M}"


def utc_offset(instant: datetime) -> str:
    """The offset of an aware ``instant`` as people write it: ``UTC-5``, ``UTC+5:30``,
    ``UTC`` (no offset)."""
    offset = instant.utcoffset() or timedelta(0)
    minutes = int(offset.total_seconds()) // 60
    if minutes == 0:
        return "UTC"
    sign = "-" if minutes < 0 else "+"
    hours, rest = divmod(abs(minutes), 60)
    return f"UTC{sign}{hours}" + (f":{rest:02d}" if rest else "")


def local_instant(instant: datetime, tz: ZoneInfo) -> str:
    """``04/05/2026 10:15:00 (UTC-5)`` in ``tz``: an instant a reader anywhere can place
    (the offset is that of the instant, so it follows daylight saving time)."""
    value = instant.astimezone(tz)
    return f"{value:%d/%m/%Y %H:%M:%S} ({utc_offset(value)})"


_ISO_UTC = re.compile(r"\b\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:\d{2})")


def localize_instants(text: str, tz: ZoneInfo) -> str:
    """``text`` with every ISO-8601 instant (``2026-12-03T14:42:52Z``) written as
    :func:`local_instant` writes it in ``tz``; anything else untouched."""

    def local(match: re.Match[str]) -> str:
        raw = match.group(0)
        try:
            instant = datetime.fromisoformat(raw.replace("Z", "+00:00"))
        except ValueError:
            return raw
        return local_instant(instant, tz)

    return _ISO_UTC.sub(local, text)


def _es(digits: str) -> str:
    """``"-1234567.50"`` (a plain decimal) → ``"-1.234.567,50"``."""
    sign = "-" if digits.startswith("-") else ""
    whole, dot, fraction = digits.removeprefix("-").partition(".")
    grouped = f"{int(whole):,}".replace(",", ".")
    return f"{sign}{grouped},{fraction}" if dot else f"{sign}{grouped}"


def number(value: float, *, decimals: int = 1) -> str:
    """A plain number, rounded half to even, zeros trimmed: ``1234.56`` → ``"1.234,6"``."""
    exact = Decimal(repr(float(value))).quantize(
        Decimal(1).scaleb(-decimals), rounding=ROUND_HALF_EVEN
    )
    if exact == 0:
        exact = abs(exact)  # no "-0"
    text = f"{exact:f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return _es(text)


def percent(ratio: float | None, *, decimals: int = 3) -> str:
    """``0.99512`` → ``"99,512 %"``; ``None`` → ``"–"``."""
    if ratio is None:
        return DASH
    exact = Decimal(repr(float(ratio))) * 100
    value = exact.quantize(Decimal(1).scaleb(-decimals), rounding=ROUND_HALF_UP)
    if value == 0:
        value = abs(value)  # no "-0,000 %"
    return f"{_es(f'{value:f}')} %"


def seconds(value: float | str | None) -> str:
    """A latency in seconds: ``0.324007`` → ``"0,324 s"``; ``"+Inf"`` → ``"> 60 s"``."""
    if value is None:
        return DASH
    if isinstance(value, str) or value == float("inf"):
        return "> 60 s"
    return f"{number(value, decimals=3)} s"


def duration(value: timedelta | None) -> str:
    """``timedelta(hours=5, minutes=49, seconds=50)`` → ``"5 h 49 min 50 s"``.

    From a minute up, whole seconds (rounded half to even) and the units that are not
    zero; under a minute, seconds with one decimal at most. ``None`` → ``"–"``.
    """
    if value is None:
        return DASH
    sign = "-" if value < timedelta(0) else ""
    value = abs(value)
    micros = value // timedelta(microseconds=1)
    if micros < 60_000_000:
        return f"{sign}{number(micros / 1_000_000, decimals=1)} s"
    total = int(Decimal(micros).scaleb(-6).quantize(Decimal(1), rounding=ROUND_HALF_EVEN))
    days, rest = divmod(total, 86_400)
    hours, rest = divmod(rest, 3_600)
    minutes, secs = divmod(rest, 60)
    parts = [
        f"{n} {unit}" for n, unit in ((days, "d"), (hours, "h"), (minutes, "min"), (secs, "s")) if n
    ]
    return sign + " ".join(parts)
