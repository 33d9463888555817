"""Spanish (es-CO) wording of numbers, dates and durations, and the rangos de medición."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from scd_monitor.exports import Band, es_co
from scd_monitor.exports.model import band_of, compliance_label
from scd_monitor.sla.engine import Outage


def test_dates() -> None:
    assert es_co.long_date(date(2026, 11, 1)) == "1 de noviembre de 2026"
    assert es_co.long_date(date(2026, 12, 31)) == "31 de diciembre de 2026"
    assert es_co.month_name(2026, 1) == "enero de 2026"
    bogota = ZoneInfo("America/Bogota")
    assert (
        es_co.local_datetime(datetime(2026, 10, 5, 15, tzinfo=UTC), bogota) == "05/10/2026 10:00:00"
    )


@pytest.mark.parametrize(
    ("ratio", "text"),
    [
        (0.99512, "99,512 %"),
        (0.9963727183075708, "99,637 %"),
        (0.9999996, "100,000 %"),  # rounded as a spreadsheet rounds
        (0.9986559139784946, "99,866 %"),
        (0.9672950261185556, "96,730 %"),
        (1.0, "100,000 %"),
        (0.0, "0,000 %"),
        (None, "–"),
        (1.3440860215053763, "134,409 %"),
        (-0.0000001, "0,000 %"),
    ],
)
def test_percent(ratio: float | None, text: str) -> None:
    assert es_co.percent(ratio) == text


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (timedelta(0), "0 s"),
        (timedelta(seconds=12.5), "12,5 s"),
        (timedelta(minutes=40), "40 min"),
        (timedelta(hours=2, minutes=40), "2 h 40 min"),
        (timedelta(hours=5, minutes=49, seconds=50), "5 h 49 min 50 s"),
        (timedelta(seconds=1_318_505), "15 d 6 h 15 min 5 s"),
        (timedelta(seconds=13_233.05), "3 h 40 min 33 s"),
        (timedelta(seconds=-921.6), "-15 min 22 s"),
        (None, "–"),
    ],
)
def test_duration(value: timedelta | None, text: str) -> None:
    assert es_co.duration(value) == text


def test_latency_seconds() -> None:
    assert es_co.seconds(0.324007) == "0,324 s"
    assert es_co.seconds("+Inf") == "> 60 s"
    assert es_co.seconds(None) == "–"


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
