"""``scd-monitor sla`` and ``export sla`` as a shell user meets them: the month in the
catalog's time zone, no figures for a month to come, a closed pipe is not a crash."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest


def scd(*argv: str, stdout: int | None = subprocess.PIPE) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "scd_monitor", *argv],
        stdout=stdout,
        stderr=subprocess.PIPE,
        text=True,
        timeout=120,
        check=False,
    )


def test_the_table_header_shows_the_month_in_the_catalogs_time_zone(
    history_url: str, catalog_file: Path
) -> None:
    proc = scd("sla", "--month", "2026-10", "--catalog", str(catalog_file),
               "--database-url", history_url)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    first = proc.stdout.splitlines()[0]
    assert first.startswith("SLA 2026-10-01T00:00:00-05:00 .. 2026-11-01T00:00:00-05:00 ")
    assert "(time zone America/Bogota" in first


def test_a_month_to_come_is_refused_like_the_export_refuses_it(
    history_url: str, catalog_file: Path, tmp_path: Path
) -> None:
    now = datetime.now(UTC)
    future = f"{now.year + 1}-{now.month:02d}"
    sla = scd("sla", "--month", future, "--catalog", str(catalog_file),
              "--database-url", history_url)  # fmt: skip
    assert sla.returncode == 2
    assert sla.stdout == ""
    assert sla.stderr.strip() == f"error: --month: {future} has not begun yet"
    export = scd("export", "sla", "--month", future, "--output", str(tmp_path),
                 "--catalog", str(catalog_file), "--database-url", history_url)  # fmt: skip
    assert export.returncode == 2
    assert f"{future} has not begun yet" in export.stderr


@pytest.mark.parametrize(
    "argv",
    [
        ["sla", "--month", "2026-10", "--format", "json"],
        ["sla", "--month", "2026-10"],
        ["export", "sla", "--month", "2026-10", "--format", "csv"],
    ],
    ids=["sla-json", "sla-table", "export"],
)
def test_a_reader_that_went_away_is_no_traceback(
    argv: list[str], history_url: str, catalog_file: Path, tmp_path: Path
) -> None:
    read_end, write_end = os.pipe()
    os.close(read_end)  # `… | head -0`: the reader is gone before the first byte
    extra = ["--output", str(tmp_path / "out")] if argv[0] == "export" else []
    try:
        proc = scd(*argv, *extra, "--catalog", str(catalog_file), "--database-url",
                   history_url, stdout=write_end)  # fmt: skip
    finally:
        os.close(write_end)
    assert "Traceback" not in proc.stderr
    assert "Exception ignored" not in proc.stderr
    assert "BrokenPipeError" not in proc.stderr
    assert proc.returncode == 0
    if argv[0] == "export":
        assert (tmp_path / "out" / "sla-2026-10" / "manifest.json").is_file()
