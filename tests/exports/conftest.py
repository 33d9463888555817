"""Fixtures of the export tests: October 2026 of history in SQLite (built once), the
export source over it, the incidents, and the Poppler tools for looking at the PDF."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from scd_monitor.analysis.reporting import SlaReporter
from scd_monitor.clock import FixedClock
from scd_monitor.exports import ExportSource, IncidentRef
from scd_monitor.store import Store
from tests.exports.history import CATALOG_YAML, build_store, catalog, local

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
"""When the tests export October: well after it closed."""

INCIDENTS = (
    IncidentRef(
        "SCD-2026-000123", "alfa", "autenticacion", "alta", local(5, 10, 5), local(5, 12, 0)
    ),
    IncidentRef("SCD-2026-000130", "beta", None, "media", local(30, 22, 10), None),
    # September: not an incident of October.
    IncidentRef(
        "SCD-2026-000099", "alfa", "carpeta", "baja", local(3, 9, month=9), local(3, 10, month=9)
    ),
)  # fmt: skip

REQUIRE_PDFTOOLS = os.environ.get("SCD_MONITOR_REQUIRE_PDFTOOLS") == "1"


@pytest.fixture(scope="session")
def history_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A SQLite database holding October 2026 (see tests/exports/history.py)."""
    url = f"sqlite:///{tmp_path_factory.mktemp('history')}/october.db"
    build_store(url).dispose()
    return url


@pytest.fixture(scope="session")
def catalog_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("catalog") / "catalog.yaml"
    path.write_text(CATALOG_YAML, encoding="utf-8")
    return path


@pytest.fixture
def source(history_url: str) -> Iterator[ExportSource]:
    store = Store(history_url)
    cat = catalog()
    yield ExportSource(SlaReporter(store, cat, FixedClock(NOW)), cat)
    store.dispose()


@pytest.fixture(scope="session")
def pdftools() -> None:
    """pdftotext and pdftoppm (Debian ``poppler-utils``): skipped without them, a failure
    when ``SCD_MONITOR_REQUIRE_PDFTOOLS=1`` (CI)."""
    missing = [t for t in ("pdftotext", "pdftoppm") if shutil.which(t) is None]
    if missing:
        message = f"{' and '.join(missing)} not found: install the Debian package poppler-utils"
        if REQUIRE_PDFTOOLS:
            pytest.fail(f"SCD_MONITOR_REQUIRE_PDFTOOLS=1 but {message}")
        pytest.skip(message)
