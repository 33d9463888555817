"""Spanish (es-CO) wording that only the human exports (XLSX, PDF) need: why an outage
is, or is not, charged.

Numbers, percentages, dates and durations are :mod:`scd_monitor.l10n`, shared with the
incident reports.
"""

from __future__ import annotations

from datetime import timedelta

from scd_monitor.l10n import duration
from scd_monitor.sla.engine import Outage

__all__ = ["excluded_label", "outage_charged", "outage_why"]


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
