"""Every format shows the figures of ``scd-monitor sla --format json`` for the same month."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from scd_monitor import l10n
from scd_monitor.exports import ExportSource, build_month_export, export_month
from scd_monitor.sla.calendar import month_period
from tests.exports.conftest import NOW
from tests.exports.readers import pdf_pages, read_csv, read_json, read_xlsx, xlsx_table

# Depend on "now" (the CLI's is the real time, the export's is the month's end).
_NOW_DEPENDENT = {"now", "burn_rates"}


def _without(entry: dict[str, Any], keys: set[str]) -> dict[str, Any]:
    return {k: v for k, v in entry.items() if k not in keys}


def test_the_json_export_contains_the_reporters_json(source: ExportSource) -> None:
    export = build_month_export(source, month="2026-10", now=NOW)
    period = month_period(2026, 10, source.catalog.tz)
    sla = source.reporter.report(period, now=export.as_of).to_json()
    doc = export.to_json()
    for key in ("report_version", "software_version", "catalog_version", "timezone", "period"):
        assert doc[key] == sla[key]
    assert doc["as_of"] == sla["as_of"]
    assert len(doc["services"]) == len(sla["services"])
    for mine, theirs in zip(doc["services"], sla["services"], strict=True):
        assert {k: mine[k] for k in theirs} == theirs
    for mine, theirs in zip(doc["providers"], sla["providers"], strict=True):
        assert {k: mine[k] for k in theirs} == theirs


def test_every_format_agrees_with_the_sla_command(
    source: ExportSource, history_url: str, catalog_file: Path, tmp_path: Path
) -> None:
    if datetime.now(UTC) < month_period(2026, 11, source.catalog.tz).start:
        pytest.skip("the sla command evaluates October up to the real now")
    env = {k: v for k, v in os.environ.items() if not k.startswith("SCD_MONITOR_")}
    proc = subprocess.run(
        [
            sys.executable, "-m", "scd_monitor", "sla", "--format", "json",
            "--month", "2026-10", "--catalog", str(catalog_file),
            "--database-url", history_url,
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env=env,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    sla = json.loads(proc.stdout)

    result = export_month(source, month="2026-10", output_dir=tmp_path, now=NOW)
    doc = read_json(result.path("json"))
    for mine, theirs in zip(doc["services"], sla["services"], strict=True):
        assert _without({k: mine[k] for k in theirs}, _NOW_DEPENDENT) == _without(
            theirs, _NOW_DEPENDENT
        )
    for mine, theirs in zip(doc["providers"], sla["providers"], strict=True):
        assert {k: mine[k] for k in theirs} == theirs

    by_key = {(s["provider"], s["service"]): s for s in sla["services"]}
    for row in read_csv(result.path("csv")):
        s = by_key[(row["provider"], row["service"])]
        for column, value in (
            ("availability", s["availability"]),
            ("coverage", s["coverage"]),
            ("charged_downtime_seconds", s["charged_downtime_seconds"]),
            ("excluded_maintenance_seconds", s["excluded_maintenance_seconds"]),
            ("unknown_seconds", s["unknown_seconds"]),
            ("outage_count", s["outage_count"]),
            ("mttr_seconds", s["mttr_seconds"]),
            ("latency_compliance", s["latency"]["compliance"]),
        ):
            assert row[column] == ("" if value is None else str(value)), column

    services = xlsx_table(read_xlsx(result.path("xlsx"))["Servicios"])
    for row in services:
        s = by_key[(row["Prestador"], row["Servicio"])]
        assert row["Disponibilidad"] == s["availability"]
        assert row["Cobertura de medición"] == s["coverage"]
        assert row["Interrupciones (total)"] == s["outages_total"]


@pytest.mark.usefixtures("pdftools")
def test_the_pdf_shows_the_reporters_figures(source: ExportSource, tmp_path: Path) -> None:
    result = export_month(source, month="2026-10", formats=["pdf"], output_dir=tmp_path, now=NOW)
    period = month_period(2026, 10, source.catalog.tz)
    sla = source.reporter.report(period, now=result.as_of)
    text = " ".join(pdf_pages(result.path("pdf")))
    for s in sla.services:
        f = s.figures
        assert l10n.percent(f.availability) in text
        assert l10n.percent(f.coverage) in text
        assert l10n.duration(f.charged_downtime) in text
        assert l10n.duration(f.unknown) in text
        counted = "descontada" if f.outage_count == 1 else "descontadas"
        assert f"{f.outage_count} {counted} de {f.outages_total}" in text
    for p in sla.providers:
        assert f"{p.provider_name} ({p.provider})" in text
        assert l10n.percent(p.figures.availability) in text
