"""Opening a database for reading (``Store.open_existing``): nothing is ever made, and
a database scd-monitor never wrote is one clear line, on SQLite and PostgreSQL."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import create_engine, inspect, text

from scd_monitor.errors import NoStoreDataError, StoreError
from scd_monitor.probes.base import Outcome, ProbeResult
from scd_monitor.store import CheckRepository, ResultRepository, Store, schema
from scd_monitor.store.incidents import IncidentRepository
from tests.store.fixtures.databases import load_v1_sqlite, private_postgres_database

AT = datetime(2026, 3, 2, 13, 0, tzinfo=UTC)


def no_data(url: str) -> str:
    return f"{url} holds no scd-monitor data; start the daemon on it first, or check the URL"


def listing(directory: Path) -> list[str]:
    return sorted(p.relative_to(directory).as_posix() for p in directory.rglob("*"))


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def result(vantage: str = "bogota") -> ProbeResult:
    return ProbeResult(
        check_id="p/s/c",
        kind="http",
        vantage=vantage,
        started_at=AT,
        duration=0.1,
        outcome=Outcome(ok=True, status_code=200),
    )


@pytest.fixture
def pg_url(postgres_url: str) -> Iterator[str]:
    with private_postgres_database(postgres_url) as url:
        yield url


# -- SQLite: nothing is made ----------------------------------------------------------------


def test_a_missing_sqlite_path_makes_no_file_nor_directory(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/typo/store.db"
    with pytest.raises(NoStoreDataError) as info:
        Store.open_existing(url)
    assert str(info.value) == no_data(url)
    with pytest.raises(NoStoreDataError):
        Store.open_existing(url, writable=True)
    assert listing(tmp_path) == []


def test_a_directory_is_not_a_database(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}"
    with pytest.raises(NoStoreDataError, match="holds no scd-monitor data"):
        Store.open_existing(url)
    assert listing(tmp_path) == []


def test_an_empty_sqlite_file_is_left_empty(tmp_path: Path) -> None:
    path = tmp_path / "store.db"
    path.touch()
    url = f"sqlite:///{path}"
    for writable in (False, True):
        with pytest.raises(NoStoreDataError) as info:
            Store.open_existing(url, writable=writable)
        assert str(info.value) == no_data(url)
    assert path.stat().st_size == 0
    assert listing(tmp_path) == ["store.db"]  # no -wal, no -shm, no journal


def test_a_text_file_is_one_line_not_a_traceback(tmp_path: Path) -> None:
    path = tmp_path / "store.db"
    path.write_text("fecha;estado\n2026-03-01;operación normal\n" * 40, encoding="utf-8")
    before = digest(path)
    url = f"sqlite:///{path}"
    with pytest.raises(NoStoreDataError) as info:
        Store.open_existing(url)
    assert str(info.value) == no_data(url)
    assert digest(path) == before
    assert listing(tmp_path) == ["store.db"]


def test_a_database_of_another_application_is_not_ours(tmp_path: Path) -> None:
    path = tmp_path / "other.db"
    engine = create_engine(f"sqlite:///{path}")
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE usuarios (id INTEGER PRIMARY KEY, nombre TEXT)"))
        conn.execute(text("CREATE TABLE alembic_version (version_num VARCHAR(32))"))
        conn.execute(text("INSERT INTO alembic_version VALUES ('ae1027a6acf')"))
    engine.dispose()
    before = digest(path)
    with pytest.raises(NoStoreDataError):
        Store.open_existing(f"sqlite:///{path}")
    assert digest(path) == before


# -- databases scd-monitor wrote -------------------------------------------------------------


def test_an_upgraded_sqlite_database_is_read_and_never_written(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/store.db"
    daemon = Store(url)
    daemon.create_schema()
    ResultRepository(daemon).write([result()])
    daemon.dispose()
    main = tmp_path / "store.db"
    before = digest(main)

    store = Store.open_existing(url)
    try:
        assert store.access == "read"
        assert [r.check_id for r in ResultRepository(store).read()] == ["p/s/c"]
        assert IncidentRepository(store).list_incidents(open_only=False) == []
        store.ping()
        with pytest.raises(StoreError, match="readonly"):
            ResultRepository(store).write([result("medellin")])
        with pytest.raises(StoreError, match="read-only"):
            store.create_schema()
    finally:
        store.dispose()
    assert digest(main) == before


def test_writable_opening_writes_rows_but_makes_nothing_else(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/store.db"
    daemon = Store(url)
    daemon.create_schema()
    daemon.dispose()
    store = Store.open_existing(url, writable=True)
    try:
        assert store.access == "write"
        ResultRepository(store).write([result()])
        assert len(ResultRepository(store).read()) == 1
    finally:
        store.dispose()


def test_a_database_of_the_release_before_migrations_is_read_as_it_is(tmp_path: Path) -> None:
    """The choice: reading does not upgrade; the tables of that release are revision
    0001's, so they are read as they are (the daemon upgrades when it starts)."""
    url = load_v1_sqlite(tmp_path / "v1.db")
    store = Store.open_existing(url)
    try:
        assert len(CheckRepository(store).list()) == 3
        (incident,) = IncidentRepository(store).list_incidents(open_only=False)
        assert incident.context["provider_name"] == "Prestador Ñandú S.A.S."
        assert schema.current(store) is None  # still unversioned
    finally:
        store.dispose()


def test_an_older_release_lacking_tables_must_be_upgraded_first(tmp_path: Path) -> None:
    url = load_v1_sqlite(tmp_path / "old.db")
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text("DROP TABLE scd_directory_events"))
    engine.dispose()
    with pytest.raises(StoreError) as info:
        Store.open_existing(url)
    assert str(info.value) == (
        f"the database {url} has an older scd-monitor schema (made before migrations); "
        "run `scd-monitor db upgrade`, or start the daemon on it"
    )


def test_a_database_of_a_newer_release_is_refused(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/store.db"
    daemon = Store(url)
    daemon.create_schema()
    with daemon.engine.begin() as conn:
        conn.execute(text(f"UPDATE {schema.VERSION_TABLE} SET version_num = '0042'"))  # noqa: S608
    daemon.dispose()
    with pytest.raises(StoreError) as info:
        Store.open_existing(url)
    assert not isinstance(info.value, NoStoreDataError)
    assert str(info.value) == (
        f"the database {url} was written by a newer scd-monitor (revision 0042); "
        "upgrade scd-monitor"
    )


# -- PostgreSQL -------------------------------------------------------------------------------


def test_a_postgresql_database_without_our_tables(pg_url: str) -> None:
    url_with_password = pg_url.replace("postgres@", "postgres:hunter2@")
    for writable in (False, True):
        with pytest.raises(NoStoreDataError) as info:
            Store.open_existing(url_with_password, writable=writable)
        message = str(info.value)
        assert message == no_data(url_with_password.replace("hunter2", "***"))
        assert "hunter2" not in message
    engine = create_engine(pg_url)
    with engine.connect() as conn:
        assert inspect(conn).get_table_names() == []
    engine.dispose()


def test_an_upgraded_postgresql_database_is_read_read_only(pg_url: str) -> None:
    daemon = Store(pg_url)
    daemon.create_schema()
    ResultRepository(daemon).write([result()])
    daemon.dispose()
    store = Store.open_existing(pg_url)
    try:
        assert [r.vantage for r in ResultRepository(store).read()] == ["bogota"]
        with pytest.raises(StoreError, match="read-only transaction"):
            ResultRepository(store).write([result("medellin")])
    finally:
        store.dispose()
    writer = Store.open_existing(pg_url, writable=True)
    try:
        ResultRepository(writer).write([result("medellin")])
        assert len(ResultRepository(writer).read()) == 2
    finally:
        writer.dispose()


def test_status_of_an_empty_database_says_so(pg_url: str) -> None:
    store = Store(pg_url, access="read")
    try:
        status = schema.status(store)
        assert not status.holds_data
        assert status.lines()[1] == "current:  none: no scd-monitor data"
    finally:
        store.dispose()
