"""Maintenance cron is standard cron (cronsim): 0 and 7 are Sunday, names, ranges, steps,
the day-of-month / day-of-week OR rule; a bad expression is a clear catalog error."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from scd_monitor.catalog import parse_catalog
from scd_monitor.catalog.models import Service
from scd_monitor.errors import ConfigError
from scd_monitor.sla.calendar import month_period
from scd_monitor.sla.maintenance import maintenance_spans
from scd_monitor.sla.model import Period

BOGOTA = ZoneInfo("America/Bogota")
DECEMBER = month_period(2026, 12, BOGOTA)  # 2026-12-01 is a Tuesday


def service(cron: str) -> Service:
    return Service.model_validate(
        {
            "id": "svc",
            "type": "otro",
            "checks": [{"id": "c", "kind": "http", "url": "https://example.org/"}],
            "maintenance": [{"cron": cron, "duration": "1h", "reason": "r"}],
        }
    )


def local_starts(cron: str) -> list[datetime]:
    plan = maintenance_spans(service(cron), DECEMBER, BOGOTA)
    return [w.start.astimezone(BOGOTA).replace(tzinfo=None) for w in plan.windows]


SUNDAYS = [datetime(2026, 12, d, 3) for d in (6, 13, 20, 27)]


@pytest.mark.parametrize("cron", ["0 3 * * 0", "0 3 * * 7", "0 3 * * sun", "0 3 * * SUN"])
def test_sunday_is_0_7_or_its_name(cron: str) -> None:
    assert local_starts(cron) == SUNDAYS


def test_numeric_ranges_and_steps() -> None:
    weekdays = local_starts("0 2 * * 1-5")
    assert len(weekdays) == 23  # December 2026: 23 weekdays
    assert all(d.weekday() < 5 and d.hour == 2 for d in weekdays)
    assert local_starts("0 2 * * mon-fri") == weekdays
    assert local_starts("30 0 1 * *") == [datetime(2026, 12, 1, 0, 30)]
    assert local_starts("0 */12 1 * *") == [datetime(2026, 12, 1, 0), datetime(2026, 12, 1, 12)]


def test_day_of_month_or_day_of_week() -> None:
    # Both restricted: the 1st (a Tuesday) AND every Monday, as standard cron fires.
    mondays = [datetime(2026, 12, d, 2) for d in (7, 14, 21, 28)]
    assert local_starts("0 2 1 * mon") == [datetime(2026, 12, 1, 2), *mondays]
    # One of them a star: only the other one restricts.
    assert local_starts("0 2 * * mon") == mondays
    assert local_starts("0 2 1 * *") == [datetime(2026, 12, 1, 2)]


def test_fire_times_are_on_the_catalogs_wall_clock() -> None:
    plan = maintenance_spans(service("0 2 1 * *"), DECEMBER, BOGOTA)
    assert [(w.start, w.end) for w in plan.windows] == [
        (datetime(2026, 12, 1, 7, tzinfo=UTC), datetime(2026, 12, 1, 8, tzinfo=UTC))
    ]


def test_dst_zones_do_not_crash() -> None:
    # Spring forward in New York, 2026-03-08 02:00 → 03:00: a 02:30 fire time reads with
    # the pre-transition offset (EST), i.e. 07:30Z, the instant 03:30 EDT names.
    new_york = ZoneInfo("America/New_York")
    for cron in ("30 2 * * *", "*/30 * * * *", "0 1-3 8 3 sun"):
        plan = maintenance_spans(service(cron), month_period(2026, 3, new_york), new_york)
        starts = [w.start for w in plan.windows]
        assert starts == sorted(set(starts)), cron
    plan = maintenance_spans(service("30 2 8 3 *"), month_period(2026, 3, new_york), new_york)
    assert [w.start for w in plan.windows] == [datetime(2026, 3, 8, 7, 30, tzinfo=UTC)]
    # Fall back in New York, 2026-11-01 02:00 EDT → 01:00 EST: every 30 minutes goes on
    # through both 01:xx hours; a daily 01:30 starts once, at its first occurrence.
    night = Period(datetime(2026, 11, 1, 4, tzinfo=UTC), datetime(2026, 11, 1, 8, tzinfo=UTC))
    every = maintenance_spans(service("*/30 * * * *"), night, new_york)
    starts = [w.start for w in every.windows]
    assert starts == [night.start + timedelta(minutes=30 * n) for n in range(-1, 8)]
    daily = maintenance_spans(service("30 1 * * *"), night, new_york)
    assert [w.start for w in daily.windows] == [datetime(2026, 11, 1, 5, 30, tzinfo=UTC)]
    # Lord Howe moves by 30 minutes; it must expand too.
    lord_howe = ZoneInfo("Australia/Lord_Howe")
    plan = maintenance_spans(service("15 2 * * *"), month_period(2026, 10, lord_howe), lord_howe)
    assert len(plan.windows) == 31
    assert all(w.end - w.start == timedelta(hours=1) for w in plan.windows)


CATALOG = """
providers:
  - id: p
    name: P
    services:
      - id: s
        type: otro
        checks:
          - {{id: c, kind: tls, host: c.example}}
        maintenance:
          - {{cron: "{cron}", duration: 1h, reason: weekly}}
"""


@pytest.mark.parametrize(
    ("cron", "message"),
    [
        ("0 2 * * mun", "invalid cron expression '0 2 * * mun': Bad day-of-week"),
        ("0 2 * * 8", "invalid cron expression '0 2 * * 8': Bad day-of-week"),
        ("61 2 * * *", "invalid cron expression '61 2 * * *': Bad minute"),
        ("0 24 * * *", "invalid cron expression '0 24 * * *': Bad hour"),
        ("0 2 30 2 *", "invalid cron expression '0 2 30 2 *': Bad day-of-month"),
        ("*/0 * * * *", "invalid cron expression '*/0 * * * *': Bad minute"),
        ("0 2 * * 5-1", "invalid cron expression '0 2 * * 5-1': Bad day-of-week"),
        ("0 0 2 * * *", "expected 5 cron fields"),
    ],
)
def test_invalid_expressions_are_catalog_errors(cron: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_catalog(CATALOG.format(cron=cron), filename="catalog.yaml")
    problems = info.value.problems
    assert any(
        "providers[0].services[0].maintenance[0].cron" in p and message in p for p in problems
    ), problems
