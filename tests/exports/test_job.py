"""The scheduled export: due on the 1st (Bogotá) for the previous month, once."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from scd_monitor.exports import (
    ExportError,
    ExportSource,
    IncidentRef,
    MonthlyExportJob,
    export_month,
    read_manifest,
)
from scd_monitor.sla.model import Period
from tests.exports.conftest import INCIDENTS
from tests.exports.history import BOGOTA

FIRST = datetime(2026, 11, 1, 0, 0, tzinfo=BOGOTA)  # 2026-11-01T05:00Z


def job(source: ExportSource, out: Path, **options: object) -> MonthlyExportJob:
    return MonthlyExportJob(lambda: source, output_dir=out, **options)  # type: ignore[arg-type]


def test_due_on_the_first_day_of_the_month_in_the_catalogs_zone(
    source: ExportSource, tmp_path: Path
) -> None:
    j = job(source, tmp_path)
    assert j.due(FIRST - timedelta(minutes=1)) is None, "31 October 23:59 in Bogotá"
    assert j.due(datetime(2026, 11, 1, 4, 59, tzinfo=UTC)) is None, "already 1 Nov in UTC"
    assert j.due(FIRST + timedelta(minutes=2)) is None, "still settling"
    assert j.due(FIRST + timedelta(minutes=5)) == "2026-10"
    assert j.due(FIRST + timedelta(hours=23, minutes=59)) == "2026-10"
    assert j.due(FIRST + timedelta(days=1)) is None, "only on the first day"
    assert j.due(datetime(2026, 11, 15, 12, tzinfo=BOGOTA)) is None, "not mid-month"
    assert j.due(datetime(2027, 1, 1, 6, tzinfo=BOGOTA)) == "2026-12", "across the year"


def test_runs_once_and_not_again_after_a_restart(source: ExportSource, tmp_path: Path) -> None:
    j = job(source, tmp_path)
    at = FIRST + timedelta(minutes=10)
    result = j.run(at)
    assert result is not None
    assert result.directory == tmp_path / "sla-2026-10"
    assert not result.provisional
    assert [f.format for f in result.files] == ["csv", "json", "pdf", "xlsx"]
    assert j.due(at + timedelta(minutes=1)) is None
    assert j.run(at + timedelta(minutes=1)) is None

    restarted = job(source, tmp_path)  # a new process: only the directory remembers
    assert restarted.due(at + timedelta(hours=3)) is None
    assert restarted.run(at + timedelta(hours=3)) is None


def test_a_provisional_export_of_the_month_does_not_count(
    source: ExportSource, tmp_path: Path
) -> None:
    mid_october = datetime(2026, 10, 20, 12, tzinfo=BOGOTA)
    early = export_month(source, month="2026-10", output_dir=tmp_path, now=mid_october)
    assert early.provisional
    j = job(source, tmp_path)
    at = FIRST + timedelta(minutes=30)
    assert j.due(at) == "2026-10"
    result = j.run(at)
    assert result is not None and not result.provisional
    manifest = read_manifest(tmp_path / "sla-2026-10")
    assert manifest is not None and manifest["provisional"] is False
    assert job(source, tmp_path).due(at) is None


def test_an_incomplete_export_is_done_again(source: ExportSource, tmp_path: Path) -> None:
    export_month(source, month="2026-10", formats=["csv"], output_dir=tmp_path, now=FIRST)
    export_month(
        source, month="2026-10", formats=["csv"], output_dir=tmp_path, now=FIRST, provider="alfa"
    )
    j = job(source, tmp_path)
    at = FIRST + timedelta(minutes=30)
    assert j.due(at) == "2026-10", "only the CSV is there"
    j.run(at)
    (tmp_path / "sla-2026-10" / "sla-2026-10.pdf").unlink()
    assert job(source, tmp_path).due(at) == "2026-10", "a listed file is missing"
    assert job(source, tmp_path, formats=["csv", "json"]).due(at) is None


def test_a_failure_is_retried_later(source: ExportSource, tmp_path: Path) -> None:
    blocker = tmp_path / "exports"
    blocker.write_text("a file where the directory should be")
    j = job(source, blocker, retry_after=timedelta(minutes=15))
    at = FIRST + timedelta(minutes=10)
    with pytest.raises(ExportError):
        j.run(at)
    assert j.due(at + timedelta(minutes=5)) is None
    assert j.due(at + timedelta(minutes=15)) == "2026-10"
    blocker.unlink()
    assert j.run(at + timedelta(minutes=16)) is not None
    assert j.due(at + timedelta(minutes=17)) is None


def test_the_incidents_of_the_month_are_asked_for(source: ExportSource, tmp_path: Path) -> None:
    asked: list[Period] = []

    def incidents(period: Period) -> Sequence[IncidentRef]:
        asked.append(period)
        return INCIDENTS

    j = job(source, tmp_path, incidents=incidents)
    result = j.run(FIRST + timedelta(minutes=10))
    assert result is not None
    assert asked == [Period(datetime(2026, 10, 1, tzinfo=BOGOTA), FIRST)]
    assert b"SCD-2026-000123" in result.path("csv").read_bytes()


def test_settle_must_come_before_the_end_of_the_catch_up(
    source: ExportSource, tmp_path: Path
) -> None:
    with pytest.raises(ValueError, match="settle"):
        job(source, tmp_path, settle=timedelta(days=2))
