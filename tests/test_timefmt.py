"""ISO-8601 instants and clock durations for machines and operators."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from scd_monitor.timefmt import hms, iso_utc


def test_iso_utc_is_utc_with_z() -> None:
    bogota = ZoneInfo("America/Bogota")
    assert iso_utc(datetime(2026, 12, 3, 14, 42, 52, tzinfo=UTC)) == "2026-12-03T14:42:52Z"
    assert iso_utc(datetime(2026, 12, 3, 9, 42, 52, tzinfo=bogota)) == "2026-12-03T14:42:52Z"
    assert iso_utc(datetime(2026, 1, 1, tzinfo=UTC) + timedelta(microseconds=5)) == (
        "2026-01-01T00:00:00.000005Z"
    )


def test_iso_utc_refuses_a_naive_datetime() -> None:
    with pytest.raises(ValueError, match="naive"):
        iso_utc(datetime(2026, 12, 3, 14, 42, 52))


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (timedelta(0), "0h00m00s"),
        (timedelta(hours=1, minutes=2, seconds=3), "1h02m03s"),
        (timedelta(seconds=59.9), "0h00m59s"),
        (timedelta(days=2, minutes=5), "48h05m00s"),
        (timedelta(seconds=-65), "-0h01m05s"),
    ],
)
def test_hms(value: timedelta, text: str) -> None:
    assert hms(value) == text
