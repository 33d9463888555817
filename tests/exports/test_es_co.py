"""The exports' own Spanish wording (why an outage is charged) and the rangos de medición."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from scd_monitor.exports import Band, es_co
from scd_monitor.exports.model import band_of, compliance_label
from scd_monitor.sla.engine import Outage


def test_bands_are_exact() -> None:
    day = timedelta(days=1)
    # target 0.995: green down to 0.995 exactly, amber down to 0.99 exactly.
    assert band_of(day, day * 0.005, 0.995) is Band.GREEN
    assert band_of(day, day * 0.005 + timedelta(microseconds=1), 0.995) is Band.AMBER
    assert band_of(day, day * 0.01, 0.995) is Band.AMBER
    assert band_of(day, day * 0.01 + timedelta(microseconds=1), 0.995) is Band.RED
    assert band_of(timedelta(0), timedelta(0), 0.995) is None
    assert band_of(day, timedelta(0), 1.0) is Band.GREEN
    assert band_of(day, timedelta(microseconds=1), 1.0) is Band.RED
    assert [compliance_label(m) for m in (True, False, None)] == [
        "Cumple",
        "No cumple",
        "Sin datos",
    ]


def test_why_an_outage_is_charged() -> None:
    t = datetime(2026, 10, 19, 7, 30, tzinfo=UTC)
    partial = Outage(t, t + timedelta(minutes=70), timedelta(minutes=70), timedelta(minutes=40),
                     {"cambio de certificados": timedelta(minutes=30)}, "x: timeout")  # fmt: skip
    assert es_co.outage_charged(partial) == "Parcial"
    assert es_co.outage_why(partial) == (
        "Se descuentan 40 min; no se descuentan 30 min en mantenimiento «cambio de certificados»"
    )
    excluded = {"monitor_fault": timedelta(minutes=20), "unknown": timedelta(minutes=40)}
    none = Outage(t, t + timedelta(hours=1), timedelta(hours=1), timedelta(0), excluded, None)
    assert es_co.outage_charged(none) == "No"
    assert es_co.outage_why(none) == (
        "No se descuenta: 20 min con falla del monitor; 40 min sin medición"
    )
    whole = Outage(t, None, timedelta(hours=1), timedelta(hours=1), {}, None)
    assert es_co.outage_charged(whole) == "Sí"
