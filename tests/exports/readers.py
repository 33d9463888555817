"""Reading the exported files back, as a person's tools (or a system) would."""

from __future__ import annotations

import csv
import io
import json
import re
import subprocess
from datetime import timedelta
from pathlib import Path
from typing import Any

import openpyxl


def read_json(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_bytes())
    return data


def read_csv(path: Path) -> list[dict[str, str]]:
    text = path.read_bytes().decode("utf-8")  # UTF-8, no byte-order mark
    assert not text.startswith("\ufeff")
    return list(csv.DictReader(io.StringIO(text, newline="")))


def read_xlsx(path: Path) -> dict[str, list[tuple[Any, ...]]]:
    """Every sheet's rows (values only), by sheet name."""
    book = openpyxl.load_workbook(path)
    return {ws.title: [tuple(r) for r in ws.iter_rows(values_only=True)] for ws in book}


def xlsx_table(rows: list[tuple[Any, ...]]) -> list[dict[str, Any]]:
    """A sheet whose first row is its header, as dicts (rows with no first cell end it)."""
    header = [str(h) for h in rows[0]]
    out = []
    for row in rows[1:]:
        if row[0] is None:
            break
        out.append(dict(zip(header, row, strict=False)))
    return out


def pdf_pages(path: Path) -> list[str]:
    """The text of each page (pdftotext), whitespace collapsed to single spaces."""
    raw = subprocess.run(
        ["pdftotext", "-enc", "UTF-8", str(path), "-"],
        capture_output=True,
        check=True,
        timeout=60,
    ).stdout.decode("utf-8")
    pages = raw.split("\f")
    if pages and not pages[-1].strip():
        pages.pop()
    return [re.sub(r"\s+", " ", p).strip() for p in pages]


def seconds(value: Any) -> float:
    """An XLSX duration cell (openpyxl reads ``[h]:mm:ss`` cells as timedelta) in seconds."""
    assert isinstance(value, timedelta), value
    return value.total_seconds()
