"""Numeric weekdays in maintenance cron read as standard cron (0 and 7 = Sunday)."""

from __future__ import annotations

from scd_monitor.catalog.models import standard_crontab


def test_numeric_weekdays_are_standard_cron() -> None:
    assert standard_crontab("0 3 * * 0") == "0 3 * * sun"
    assert standard_crontab("0 3 * * 7") == "0 3 * * sun"
    assert standard_crontab("0 2 * * 1-5") == "0 2 * * mon-fri"
    assert standard_crontab("0 2 * * SUN") == "0 2 * * SUN"
    assert standard_crontab("30 0 1 * *") == "30 0 1 * *"
