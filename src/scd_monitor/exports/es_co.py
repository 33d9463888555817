"""How the human formats (XLSX, PDF) write numbers, dates and durations: Spanish, es-CO.

- Dates: ``1 de noviembre de 2026``; date and time in tables: ``05/10/2026 10:00:00``
  (day/month/year, 24 h, in the catalog's time zone).
- Percentages: decimal comma, a space before ``%``, three decimals, rounded half up as
  a spreadsheet rounds (so the PDF shows the digits the XLSX shows). *Cumple* / *No
  cumple* is decided on the exact figures, never on the rounded ones.
- Durations: ``2 h 40 min``, ``5 h 49 min 50 s``, ``3 d 4 h``; under a minute with one
  decimal at most (``12,5 s``); ``0 s`` for nothing.

Pure functions; the machine formats (CSV, JSON) do not use them.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_EVEN, ROUND_HALF_UP, Decimal
from zoneinfo import ZoneInfo

from scd_monitor.sla.engine import Outage

__all__ = [
    "MONTHS",
    "duration",
    "excluded_label",
    "local_datetime",
    "long_date",
    "month_name",
    "number",
    "outage_charged",
    "outage_why",
    "percent",
    "seconds",
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
    """``05/10/2026 10:00:00`` in ``tz``."""
    value = instant.astimezone(tz)
    return value.strftime("%d/%m/%Y %H:%M:%S" if seconds else "%d/%m/%Y %H:%M")


def _comma(text: str) -> str:
    return text.replace(".", ",")


def percent(ratio: float | None, *, decimals: int = 3) -> str:
    """``0.99512`` → ``"99,512 %"``; ``None`` → ``"–"``."""
    if ratio is None:
        return DASH
    exact = Decimal(repr(float(ratio))) * 100
    step = Decimal(1).scaleb(-decimals)
    value = exact.quantize(step, rounding=ROUND_HALF_UP)
    if value == 0:
        value = abs(value)  # no "-0,000 %"
    return f"{_comma(str(value))} %"


def number(value: float, *, decimals: int = 1) -> str:
    """A plain number with a decimal comma, rounded half to even, zeros trimmed."""
    exact = Decimal(repr(float(value))).quantize(
        Decimal(1).scaleb(-decimals), rounding=ROUND_HALF_EVEN
    )
    text = f"{exact:f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return _comma(text)


def seconds(value: float | str | None) -> str:
    """A latency in seconds: ``0.324007`` → ``"0,324 s"``; ``"+Inf"`` → ``"> 60 s"``."""
    if value is None:
        return DASH
    if isinstance(value, str) or value == float("inf"):
        return "> 60 s"
    return f"{number(value, decimals=3)} s"


def duration(value: timedelta | None) -> str:
    """``timedelta(hours=5, minutes=49, seconds=50)`` → ``"5 h 49 min 50 s"``."""
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


def excluded_label(key: str) -> str:
    """Why part of an outage was not charged, from the engine's ``excluded`` keys."""
    if key == "maintenance":
        return "en mantenimiento anunciado por el servicio"
    if key == "unknown":
        return "sin medición"
    if key == "monitor_fault":
        return "con falla del monitor"
    return f"en mantenimiento «{key}»"


def outage_charged(outage: Outage) -> str:
    """``Sí`` (all of it charged), ``No`` (none) or ``Parcial``."""
    if outage.charged <= timedelta(0):
        return "No"
    return "Sí" if outage.charged >= outage.duration else "Parcial"


def outage_why(outage: Outage) -> str:
    """Why an outage is (or is not, or partly) charged, in one sentence."""
    excluded = "; ".join(
        f"{duration(v)} {excluded_label(k)}" for k, v in outage.excluded.items() if v
    )
    if outage.charged <= timedelta(0):
        return f"No se descuenta: {excluded}" if excluded else "No se descuenta"
    if not excluded:
        return "Se descuenta completa: ocurrió en tiempo elegible"
    return f"Se descuentan {duration(outage.charged)}; no se descuentan {excluded}"
