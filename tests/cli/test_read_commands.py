"""Read commands never create or half-create a database; ``db upgrade`` / ``db current``.

Every command that reads the store (``sla``, ``export sla``, ``incidents``,
``deliveries``, ``directory``, ``states``) on a database scd-monitor never wrote (a
mistyped SQLite path, an empty file, an empty PostgreSQL database) exits 2 with one line
on stderr, makes no file and no table, and prints no driver error.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, inspect

from scd_monitor.cli import main
from scd_monitor.store import Store, schema
from tests.store.fixtures.databases import private_postgres_database

CATALOG = str(Path(__file__).resolve().parents[2] / "config" / "catalog.example.yaml")

READ_COMMANDS: dict[str, list[str]] = {
    "sla": ["sla", "--month", "2026-11"],
    "sla --format json": ["sla", "--month", "2026-11", "--format", "json"],
    "export sla": ["export", "sla", "--month", "2026-11", "--format", "csv"],
    "incidents list": ["incidents", "list"],
    "incidents show": ["incidents", "show", "SCD-2026-000001"],
    "incidents note": ["incidents", "note", "SCD-2026-000001", "Se reinició el servicio"],
    "incidents resolve": ["incidents", "resolve", "SCD-2026-000001"],
    "deliveries": ["deliveries"],
    "deliveries --retry": ["deliveries", "--retry", "1"],
    "directory": ["directory"],
    "directory --changes": ["directory", "--changes"],
    "states rebuild": ["states", "rebuild"],
}


def run(
    argv: list[str], url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> tuple[int, str, str]:
    extra = ["--output", str(tmp_path / "out")] if argv[0] == "export" else []
    code = main([*argv, *extra, "--catalog", CATALOG, "--database-url", url])
    out, err = capsys.readouterr()
    return code, out, err


def listing(directory: Path) -> list[str]:
    return sorted(p.relative_to(directory).as_posix() for p in directory.rglob("*"))


@pytest.fixture(autouse=True)
def _no_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("SCD_MONITOR_DATABASE_URL", "SCD_MONITOR_CATALOG", "SCD_MONITOR_EXPORT_DIR"):
        monkeypatch.delenv(name, raising=False)


@pytest.mark.parametrize("name", list(READ_COMMANDS))
def test_a_mistyped_sqlite_path_is_one_line_and_makes_nothing(
    name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"sqlite:///{tmp_path}/typo/store.db"
    code, out, err = run(READ_COMMANDS[name], url, tmp_path, capsys)
    assert code == 2
    assert out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert f"{url} holds no scd-monitor data; start the daemon on it first" in lines[0]
    assert "sqlite3" not in err and "Traceback" not in err
    assert listing(tmp_path) == []


@pytest.mark.parametrize("name", ["sla", "incidents list", "directory", "states rebuild"])
def test_an_empty_sqlite_file_stays_empty(
    name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "empty.db"
    path.touch()
    code, _, err = run(READ_COMMANDS[name], f"sqlite:///{path}", tmp_path, capsys)
    assert code == 2
    assert "holds no scd-monitor data" in err
    assert path.stat().st_size == 0
    assert listing(tmp_path) == ["empty.db"]


@pytest.fixture
def pg_url(postgres_url: str) -> Iterator[str]:
    with private_postgres_database(postgres_url) as url:
        yield url


@pytest.mark.postgres
@pytest.mark.parametrize("name", ["sla", "export sla", "incidents note", "deliveries --retry"])
def test_an_empty_postgresql_database_gets_no_table(
    name: str, pg_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(READ_COMMANDS[name], pg_url, tmp_path, capsys)
    assert code == 2
    assert len(err.strip().splitlines()) == 1
    assert "holds no scd-monitor data" in err
    assert "psycopg." not in err and "Error:" not in err
    engine = create_engine(pg_url)
    try:
        assert inspect(engine).get_table_names() == []
    finally:
        engine.dispose()


# -- db upgrade / db current ---------------------------------------------------------------


def test_db_current_reads_only_and_says_what_is_pending(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "store.db"
    path.touch()
    code, out, _ = run(["db", "current"], f"sqlite:///{path}", tmp_path, capsys)
    assert code == 1
    assert "current:  none: no scd-monitor data" in out
    assert "upgrade:  pending" in out
    assert path.stat().st_size == 0


def test_db_upgrade_creates_then_reports_at_head_and_read_commands_work(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"sqlite:///{tmp_path}/store.db"
    code, out, _ = run(["db", "upgrade"], url, tmp_path, capsys)
    assert code == 0
    assert out.strip() == f"{url}: created the schema at {schema.head()}"

    code, out, _ = run(["db", "upgrade"], url, tmp_path, capsys)
    assert code == 0
    assert out.strip() == f"{url}: at {schema.head()} already"

    code, out, _ = run(["db", "current"], url, tmp_path, capsys)
    assert code == 0
    assert f"current:  {schema.head()}" in out
    assert "upgrade:  none needed" in out

    for name in ("sla", "incidents list", "deliveries", "directory"):
        code, _, err = run(READ_COMMANDS[name], url, tmp_path, capsys)
        assert code == 0, (name, err)


def test_db_current_refuses_a_newer_release(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"sqlite:///{tmp_path}/store.db"
    store = Store(url)
    try:
        schema.upgrade(store)
        with store.engine.begin() as conn:
            conn.exec_driver_sql("UPDATE scd_alembic_version SET version_num = 'ffff_future'")
    finally:
        store.dispose()
    code, out, err = run(["db", "current"], url, tmp_path, capsys)
    assert code == 1
    assert "ffff_future (unknown to this release)" in out
    assert "written by a newer scd-monitor" in err
    code, _, err = run(READ_COMMANDS["sla"], url, tmp_path, capsys)
    assert code == 2
    assert "newer scd-monitor" in err


@pytest.mark.postgres
def test_db_upgrade_on_postgresql(
    pg_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(["db", "current"], pg_url, tmp_path, capsys)
    assert code == 1
    assert "none: no scd-monitor data" in out
    code, out, _ = run(["db", "upgrade"], pg_url, tmp_path, capsys)
    assert code == 0
    assert "created the schema at" in out
    code, out, _ = run(["db", "current"], pg_url, tmp_path, capsys)
    assert code == 0
    assert "none needed" in out
