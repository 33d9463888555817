"""Spanish (es-CO) numbers, percentages, dates and durations (exports and incident reports)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from scd_monitor import l10n


def test_dates() -> None:
    assert l10n.long_date(date(2026, 11, 1)) == "1 de noviembre de 2026"
    assert l10n.long_date(date(2026, 12, 31)) == "31 de diciembre de 2026"
    assert l10n.month_name(2026, 1) == "enero de 2026"
    bogota = ZoneInfo("America/Bogota")
    at = datetime(2026, 10, 5, 15, tzinfo=UTC)
    assert l10n.local_datetime(at, bogota) == "05/10/2026 10:00:00"
    assert l10n.local_datetime(at, bogota, seconds=False) == "05/10/2026 10:00"
    assert l10n.long_datetime(datetime(2026, 12, 3, 14, 42, tzinfo=UTC), bogota) == (
        "3 de diciembre de 2026, 09:42"
    )
    assert l10n.local_instant(datetime(2026, 5, 4, 15, 15, tzinfo=UTC), bogota) == (
        "04/05/2026 10:15:00 (UTC-5)"
    )
    madrid = ZoneInfo("Europe/Madrid")
    assert l10n.local_instant(datetime(2026, 7, 1, 10, tzinfo=UTC), madrid) == (
        "01/07/2026 12:00:00 (UTC+2)"
    )
    # The offset is the instant's own: daylight saving time shows.
    assert l10n.local_instant(datetime(2026, 12, 1, 10, tzinfo=UTC), madrid) == (
        "01/12/2026 11:00:00 (UTC+1)"
    )
    assert [l10n.MONTHS[0], l10n.MONTHS[8], l10n.MONTHS[11]] == ["enero", "septiembre", "diciembre"]


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
        (12.3456789, "1.234,568 %"),  # thousands with a dot, as es-CO writes them
    ],
)
def test_percent(ratio: float | None, text: str) -> None:
    assert l10n.percent(ratio) == text


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
        (timedelta(days=3, hours=4), "3 d 4 h"),
        (timedelta(hours=2, minutes=5), "2 h 5 min"),
        (timedelta(minutes=7, seconds=30.5), "7 min 30 s"),  # half to even
        (timedelta(seconds=0.04), "0 s"),
        (None, "–"),
    ],
)
def test_duration(value: timedelta | None, text: str) -> None:
    assert l10n.duration(value) == text


def test_latency_seconds() -> None:
    assert l10n.seconds(0.324007) == "0,324 s"
    assert l10n.seconds("+Inf") == "> 60 s"
    assert l10n.seconds(None) == "–"


@pytest.mark.parametrize(
    ("value", "decimals", "text"),
    [
        (0.324007, 3, "0,324"),
        (1.5, 1, "1,5"),
        (2.0, 2, "2"),
        (1234.56, 1, "1.234,6"),
        (999.0, 0, "999"),
        (1000.0, 0, "1.000"),
        (1234567.891, 2, "1.234.567,89"),
        (-1234.5, 1, "-1.234,5"),
        (-0.01, 1, "0"),
        (0.25, 1, "0,2"),  # half to even
    ],
)
def test_number(value: float, decimals: int, text: str) -> None:
    assert l10n.number(value, decimals=decimals) == text


@pytest.mark.parametrize(
    ("zone", "at", "text"),
    [
        ("America/Bogota", datetime(2026, 12, 3, 14, 42, 52, tzinfo=UTC), "UTC-5"),
        ("America/New_York", datetime(2026, 7, 1, tzinfo=UTC), "UTC-4"),
        ("America/New_York", datetime(2026, 12, 1, tzinfo=UTC), "UTC-5"),
        ("Asia/Kolkata", datetime(2026, 7, 1, tzinfo=UTC), "UTC+5:30"),
        ("America/St_Johns", datetime(2026, 12, 1, tzinfo=UTC), "UTC-3:30"),
        ("UTC", datetime(2026, 7, 1, tzinfo=UTC), "UTC"),
    ],
)
def test_utc_offset_as_people_write_it(zone: str, at: datetime, text: str) -> None:
    assert l10n.utc_offset(at.astimezone(ZoneInfo(zone))) == text


def test_localize_instants_rewrites_iso_instants_only() -> None:
    bogota = ZoneInfo("America/Bogota")
    text = (
        "El certificado venció el 2026-12-03T14:42:52Z; leído el 2026-12-03T14:42:52.250Z, "
        "otro 2026-12-03T10:42:52-04:00; la fecha 2026-12-03 y la versión 1.2.3 quedan."
    )
    assert l10n.localize_instants(text, bogota) == (
        "El certificado venció el 03/12/2026 09:42:52 (UTC-5); leído el 03/12/2026 09:42:52 "
        "(UTC-5), otro 03/12/2026 09:42:52 (UTC-5); la fecha 2026-12-03 y la versión 1.2.3 "
        "quedan."
    )
    assert l10n.localize_instants("sin instantes", bogota) == "sin instantes"
