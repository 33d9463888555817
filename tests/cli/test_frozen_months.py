"""``scd-monitor sla freeze | recompute | frozen`` and ``export sla`` of a frozen month,
on a copy of October's history (SQLite) and on PostgreSQL."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import text

from scd_monitor.cli import main
from scd_monitor.store import FrozenMonthRepository, Store
from tests.exports.history import build_store
from tests.exports.test_usage_section import copy_database


@pytest.fixture(autouse=True)
def _no_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("SCD_MONITOR_DATABASE_URL", "SCD_MONITOR_CATALOG", "SCD_MONITOR_EXPORT_DIR"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request: pytest.FixtureRequest, history_url: str, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield copy_database(history_url, tmp_path / "october.db")
        return
    pg = str(request.getfixturevalue("postgres_schema_url"))
    build_store(pg).dispose()
    yield pg


@pytest.fixture
def sqlite_url(history_url: str, tmp_path: Path) -> str:
    return copy_database(history_url, tmp_path / "october.db")


def cli(
    capsys: pytest.CaptureFixture[str], catalog: Path, url: str, *argv: str
) -> tuple[int, str, str]:
    code = main([*argv, "--catalog", str(catalog), "--database-url", url])
    out, err = capsys.readouterr()
    return code, out, err


def export(
    capsys: pytest.CaptureFixture[str], catalog: Path, url: str, out: Path
) -> tuple[dict[str, bytes], dict[str, object]]:
    code, stdout, err = cli(capsys, catalog, url, "export", "sla", "--month", "2026-10",
                            "--output", str(out))  # fmt: skip
    assert code == 0, err
    directory = out / "sla-2026-10"
    manifest = json.loads((directory / "manifest.json").read_text())
    files = {p.name: p.read_bytes() for p in directory.iterdir() if p.name != "manifest.json"}
    return files, {**manifest, "stdout": stdout}


def test_freeze_recompute_and_list(
    url: str, catalog_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli(capsys, catalog_file, url, "sla", "frozen")[:2] == (0, "no frozen month\n")
    before, plain = export(capsys, catalog_file, url, tmp_path / "before")
    assert plain["frozen"] is None

    code, out, err = cli(capsys, catalog_file, url, "sla", "freeze", "--month", "2026-10")
    assert code == 0, err
    assert out.startswith("2026-10: frozen (revision 1, sha256 ")
    code, out, _ = cli(capsys, catalog_file, url, "sla", "freeze", "--month", "2026-10")
    assert code == 0 and "frozen already" in out and "nothing done" in out

    # Prune every result and span: the export of the frozen month is the same bytes.
    store = Store(url)
    try:
        with store.engine.begin() as conn:
            for table in ("scd_probe_results", "scd_check_spans", "scd_latency_hourly"):
                conn.execute(text(f"DELETE FROM {table}"))  # noqa: S608 - our table names
    finally:
        store.dispose()
    after, manifest = export(capsys, catalog_file, url, tmp_path / "after")
    assert after == before
    assert manifest["report_sha256"] == plain["report_sha256"]
    frozen = manifest["frozen"]
    assert isinstance(frozen, dict) and frozen["reason"] == "closed" and frozen["revision"] == 1
    assert "from the month frozen at" in str(manifest["stdout"])

    code, _, err = cli(capsys, catalog_file, url, "sla", "recompute", "--month", "2026-10")
    assert code == 2 and "--reason is required" in err
    code, out, err = cli(capsys, catalog_file, url, "sla", "recompute", "--month", "2026-10",
                         "--reason", "Spans borrados por error; se recalcula")  # fmt: skip
    assert code == 0, err
    assert "recomputed as revision 2" in out and "revision 1 kept in the history" in out
    assert "figures CHANGED" in out, "recomputed from the pruned store"

    code, out, _ = cli(capsys, catalog_file, url, "sla", "frozen", "--month", "2026-10",
                       "--format", "json")  # fmt: skip
    assert code == 0
    doc = json.loads(out)
    [current] = doc["frozen"]
    [old] = doc["history"]
    assert current["revision"] == 2
    assert current["reason"] == "Spans borrados por error; se recalcula"
    assert "@" in current["frozen_by"]
    assert (old["revision"], old["reason"], old["superseded_by"]) == (
        1, "closed", current["frozen_by"]
    )  # fmt: skip
    code, out, _ = cli(capsys, catalog_file, url, "sla", "frozen")
    assert code == 0
    assert out.splitlines()[0].split()[:5] == ["MONTH", "REV", "FROZEN-AT", "BY", "REASON"]
    assert out.splitlines()[1].startswith("2026-10  2 ")


def test_an_open_month_is_refused_and_nothing_is_frozen(
    sqlite_url: str, catalog_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    now = datetime.now(UTC)
    this_month = f"{now.year}-{now.month:02d}"
    code, out, err = cli(capsys, catalog_file, sqlite_url, "sla", "freeze", "--month", this_month)
    assert code == 2 and out == ""
    assert f"{this_month} has not closed yet" in err
    code, _, err = cli(capsys, catalog_file, sqlite_url, "sla", "recompute", "--month",
                       "2026-10", "--reason", "x")  # fmt: skip
    assert code == 2 and "2026-10 is not frozen" in err
    store = Store(sqlite_url)
    try:
        assert FrozenMonthRepository(store).months() == []
    finally:
        store.dispose()


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["sla", "freeze"], "--month YYYY-MM is required"),
        (["sla", "freeze", "--month", "2026-10", "--reason", "x"], "--reason is for recompute"),
        (["sla", "freeze", "--month", "2026-10", "--provider", "alfa"], "--provider not allowed"),
        (["sla", "recompute", "--month", "2026-10", "--reason", "  "], "--reason is required"),
        (["sla"], "one of --month or --from is required"),
        (["sla", "--month", "2026-10", "--reason", "x"], "--reason is for `sla recompute`"),
    ],
)
def test_wrong_options_are_refused(
    argv: list[str],
    message: str,
    sqlite_url: str,
    catalog_file: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, err = cli(capsys, catalog_file, sqlite_url, *argv)
    assert code == 2 and out == ""
    assert message in err


def test_frozen_reads_a_database_that_never_froze_anything_read_only(
    sqlite_url: str, catalog_file: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    path = Path(sqlite_url.removeprefix("sqlite:///"))
    before = path.read_bytes()
    code, out, _ = cli(capsys, catalog_file, sqlite_url, "sla", "frozen", "--month", "2026-10")
    assert (code, out) == (0, "2026-10: not frozen\n")
    assert path.read_bytes() == before
