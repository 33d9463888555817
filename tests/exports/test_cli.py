"""`scd-monitor export sla`: the command writes the same export as the library."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from scd_monitor.exports import ExportSource, export_month
from tests.exports.conftest import NOW


def test_export_command_writes_a_verified_export(
    history_url: str, catalog_file: Path, tmp_path: Path, source: ExportSource
) -> None:
    out = tmp_path / "cli"
    proc = subprocess.run(
        [
            sys.executable, "-m", "scd_monitor", "export", "sla",
            "--month", "2026-10", "--format", "csv", "--format", "json",
            "--output", str(out), "--catalog", str(catalog_file),
            "--database-url", history_url,
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    # The October history has a service never probed: no verdict for it, said plainly.
    assert "final, INSUFFICIENT COVERAGE: no verdict for 1 service(s) (beta/sin-datos)" in (
        proc.stdout
    )
    manifest = json.loads((out / "sla-2026-10" / "manifest.json").read_text())
    names = {f["name"] for f in manifest["files"]}
    assert names == {"sla-2026-10.csv", "sla-2026-10.json"}

    library = export_month(
        source, month="2026-10", formats=("csv", "json"), output_dir=tmp_path / "lib", now=NOW
    )
    by_name = {f.name: f.sha256 for f in library.files}
    assert {f["name"]: f["sha256"] for f in manifest["files"]} == by_name


def test_export_command_rejects_a_bad_month(catalog_file: Path, tmp_path: Path) -> None:
    proc = subprocess.run(
        [
            sys.executable, "-m", "scd_monitor", "export", "sla", "--month", "2026-13",
            "--output", str(tmp_path), "--catalog", str(catalog_file),
            "--database-url", f"sqlite:///{tmp_path}/empty.db",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )  # fmt: skip
    assert proc.returncode == 2
    assert "2026-13" in proc.stderr
