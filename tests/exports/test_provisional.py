"""A month still open is marked provisional in every format."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest

from scd_monitor.exports import ExportResult, ExportSource, export_month
from tests.exports.history import BOGOTA
from tests.exports.readers import pdf_pages, read_csv, read_json, read_xlsx, xlsx_table

MID_OCTOBER = datetime(2026, 10, 20, 12, 0, tzinfo=BOGOTA)


@pytest.fixture
def provisional(source: ExportSource, tmp_path: Path) -> ExportResult:
    return export_month(source, month="2026-10", output_dir=tmp_path, now=MID_OCTOBER)


def test_json_and_csv(provisional: ExportResult) -> None:
    assert provisional.provisional
    doc = read_json(provisional.path("json"))
    assert doc["provisional"] is True
    assert doc["provisional_note"] == "Provisional: el mes aún no ha cerrado"
    assert doc["as_of"] == "2026-10-20T17:00:00Z"
    auth = doc["services"][0]
    assert auth["period"]["partial"] is True
    days = auth["daily"]
    assert len(days) == 31
    assert [d["pending"] for d in days] == [False] * 20 + [True] * 11
    assert days[19]["end"] == "2026-10-20T17:00:00Z", "today is cut at as_of"
    assert all(d["availability"] is None for d in days[20:])
    assert {r["report_status"] for r in read_csv(provisional.path("csv"))} == {"PROVISIONAL"}


def test_xlsx(provisional: ExportResult) -> None:
    sheets = read_xlsx(provisional.path("xlsx"))
    flat = [c for row in sheets["Resumen"] for c in row if isinstance(c, str)]
    assert "PROVISIONAL — Provisional: el mes aún no ha cerrado" in flat
    assert {s["Estado del informe"] for s in xlsx_table(sheets["Servicios"])} == {"PROVISIONAL"}
    assert sheets["Diario"][1][3 + 25] is None, "26 October had not begun"


@pytest.mark.usefixtures("pdftools")
def test_pdf_every_page(provisional: ExportResult) -> None:
    pages = pdf_pages(provisional.path("pdf"))
    assert "PROVISIONAL" in pages[0]
    assert "Provisional: el mes aún no ha cerrado" in pages[0]
    for page in pages[1:]:
        assert "PROVISIONAL: el mes aún no ha cerrado" in page
