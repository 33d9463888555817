"""Schema migrations on SQLite files and a private PostgreSQL database per test: the
migrated schema is the tables module's, a database of the release before migrations
keeps every row, upgrades are idempotent, a newer database is refused, two upgraders
at once make the schema once."""

from __future__ import annotations

import hashlib
import json
import random
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, create_engine, insert, inspect, select, text
from sqlalchemy.exc import IntegrityError

from scd_monitor.errors import ConflictError, StoreError
from scd_monitor.incidents.lifecycle import TrackerState
from scd_monitor.probes.base import ErrorKind, Outcome, ProbeResult
from scd_monitor.sla.latency import N_BUCKETS
from scd_monitor.store import (
    CheckRepository,
    DirectoryRepository,
    ResultRepository,
    Store,
    UsageRepository,
    schema,
)
from scd_monitor.store.incidents import IncidentRepository
from scd_monitor.store.months import FrozenMonthRepository, NewFreeze
from scd_monitor.store.outbox import OutboxRepository
from scd_monitor.store.results import to_row
from scd_monitor.store.rollups import LatencyRepository
from scd_monitor.store.tables import (
    check_machines,
    check_spans,
    incident_leases,
    incident_sequences,
    latency_daily,
    latency_hourly,
    metadata,
    probe_results,
    schema_info,
    tracker_cursors,
)
from scd_monitor.xroad.directory import DirectoryEvent
from scd_monitor.xroad.opmon import OperationalRecord
from tests.store.fixtures.databases import (
    V1_COUNTS,
    load_v1_postgresql,
    load_v1_sqlite,
    private_postgres_database,
    raw_rows,
    shape,
)

T0 = datetime(2026, 3, 2, 13, 0, tzinfo=UTC)
USAGE_TABLES = frozenset({"scd_xroad_usage", "scd_xroad_usage_cursors"})
"""Revision 0003's tables."""
FROZEN_TABLES = frozenset({"scd_frozen_months", "scd_frozen_month_history"})
"""Revision 0004's tables."""
DAILY_TABLES = frozenset({"scd_latency_daily"})
"""Revision 0005's table (filled from the hourly rollups)."""
OIDC_TABLES = frozenset({"scd_oidc_keys", "scd_oidc_key_events"})
"""Revision 0006's tables."""
LATER_TABLES = USAGE_TABLES | FROZEN_TABLES | DAILY_TABLES | OIDC_TABLES
"""Tables made by revisions after 0001 (none of them in the release before migrations)."""
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(params=["sqlite", "postgresql"])
def dialect(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def empty_url(dialect: str, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database of ``dialect``."""
    if dialect == "sqlite":
        yield f"sqlite:///{tmp_path}/store.db"
        return
    with private_postgres_database(request.getfixturevalue("postgres_url")) as url:
        yield url


@pytest.fixture
def legacy_url(empty_url: str, dialect: str, tmp_path: Path) -> str:
    """A database as the last release before migrations left it (the fixture)."""
    if dialect == "sqlite":
        return load_v1_sqlite(tmp_path / "v1.db")
    load_v1_postgresql(empty_url)
    return empty_url


@contextmanager
def another_empty_database(
    dialect: str, tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[str]:
    if dialect == "sqlite":
        yield f"sqlite:///{tmp_path}/another.db"
        return
    with private_postgres_database(request.getfixturevalue("postgres_url")) as url:
        yield url


def engine_of(url: str) -> Engine:
    return create_engine(url)


def schema_diff(store: Store) -> list[Any]:
    with store.engine.connect() as conn:
        context = MigrationContext.configure(
            conn,
            opts={
                "version_table": schema.VERSION_TABLE,
                "compare_type": True,
                "compare_server_default": True,
            },
        )
        return list(compare_metadata(context, metadata))


def count(store: Store, table: str) -> int:
    with store.engine.connect() as conn:
        return int(conn.execute(text(f'SELECT count(*) FROM "{table}"')).scalar_one())  # noqa: S608


# -- a new database ------------------------------------------------------------------------


def test_an_empty_database_is_migrated_to_the_tables_module_exactly(empty_url: str) -> None:
    store = Store(empty_url)
    try:
        assert schema.current(store) is None
        before = schema.status(store)
        assert (before.holds_data, before.pending, before.newer) == (False, True, False)

        result = schema.upgrade(store)

        assert (result.before, result.after, result.adopted) == (None, schema.head(), False)
        assert result.line().endswith(f"created the schema at {schema.head()}")
        # Nothing to ignore: tables, columns, types (UTCDateTime, the BigInteger variant),
        # nullability, indexes, unique and foreign keys, comments and server defaults.
        assert schema_diff(store) == []
        assert schema.current(store) == schema.head()
        with store.engine.connect() as conn:
            assert conn.execute(select(schema_info.c.id, schema_info.c.version)).all() == [(1, 1)]
        status = schema.status(store)
        assert status.missing == frozenset()
        assert not status.pending
        assert status.lines()[1:] == [
            f"current:  {schema.head()}",
            f"head:     {schema.head()}",
            "upgrade:  none needed",
        ]
    finally:
        store.dispose()


def test_the_comparison_sees_a_difference(tmp_path: Path) -> None:
    """A control for the test above: compare_metadata does report what is off."""
    store = Store(f"sqlite:///{tmp_path}/store.db")
    store.create_schema()
    with store.engine.begin() as conn:
        conn.execute(text("DROP INDEX ix_scd_incidents_status"))
    assert [d[0] for d in schema_diff(store)] == ["add_index"]
    store.dispose()


def test_revision_0001_is_the_schema_of_the_release_before_migrations(
    legacy_url: str, dialect: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """The same schema, whether migrated from nothing or adopted from the old release."""
    legacy = Store(legacy_url)
    try:
        schema.upgrade(legacy)
        with another_empty_database(dialect, tmp_path, request) as fresh_url:
            fresh = Store(fresh_url)
            try:
                schema.upgrade(fresh)
                with fresh.engine.connect() as a, legacy.engine.connect() as b:
                    assert shape(a) == shape(b)
                    if dialect == "sqlite":
                        # SQLite keeps each table's CREATE statement: the very same text.
                        ddl = "SELECT type, name, sql FROM sqlite_master ORDER BY type, name"
                        assert a.execute(text(ddl)).all() == b.execute(text(ddl)).all()
            finally:
                fresh.dispose()
    finally:
        legacy.dispose()


def test_upgrade_is_idempotent(empty_url: str) -> None:
    store = Store(empty_url)
    try:
        first = store.create_schema()
        assert (first.before, first.after, first.changed) == (None, schema.head(), True)
        assert "created the schema" in first.line()
        ResultRepository(store).write([_result(T0)])
        with store.engine.connect() as conn:
            before = (shape(conn), raw_rows(conn))
        again = schema.upgrade(store)
        assert not store.create_schema().changed
        assert not again.changed
        assert again.line().endswith(f"at {schema.head()} already")
        with store.engine.connect() as conn:
            assert (shape(conn), raw_rows(conn)) == before
            assert conn.execute(text(f"SELECT count(*) FROM {schema.VERSION_TABLE}")).scalar() == 1  # noqa: S608
    finally:
        store.dispose()


# -- the release before migrations -----------------------------------------------------------


def test_a_database_of_the_previous_release_keeps_every_row(legacy_url: str) -> None:
    store = Store(legacy_url)
    try:
        assert schema.current(store) is None
        status = schema.status(store)
        assert (status.legacy, status.legacy_version, status.pending) == (True, 1, True)
        assert status.lines()[1] == "current:  none: made before migrations (scd_schema version 1)"
        with store.engine.connect() as conn:
            rows_before = raw_rows(conn)
        assert {t: len(r) for t, r in rows_before.items()} == V1_COUNTS
        # Every table of that release has rows (later revisions' tables are new).
        assert set(V1_COUNTS) == set(metadata.tables) - LATER_TABLES

        result = schema.upgrade(store)

        assert (result.before, result.after, result.adopted) == (None, schema.head(), True)
        assert schema.current(store) == schema.head()
        assert schema_diff(store) == []
        with store.engine.connect() as conn:
            rows_after = raw_rows(conn)
        assert {t: r for t, r in rows_after.items() if t not in LATER_TABLES} == rows_before
        assert all(rows_after[t] == [] for t in LATER_TABLES - DAILY_TABLES)
        # The release's hourly latency rollups, summed into their days.
        assert daily_sums(store) == hourly_sums_per_day(store)
        assert len(rows_after["scd_latency_daily"]) == 2
        assert_v1_reads_back(store)

        # Still a working database: new rows get new identifiers.
        ResultRepository(store).write([_result(T0 + timedelta(hours=1))])
        assert len(ResultRepository(store).read()) == V1_COUNTS["scd_probe_results"] + 1
        DirectoryRepository(store).save(
            "xroad-co",
            events=[
                DirectoryEvent(
                    T0 + timedelta(hours=1), "xroad-co", "directory", "fetch_failed", "CO"
                )
            ],
        )
        assert [e.id for e in DirectoryRepository(store).events()] == [1, 2, 3]
    finally:
        store.dispose()


def assert_v1_reads_back(store: Store) -> None:
    """The fixture's rows, through the read APIs (and the tables where there is none)."""
    checks = {c.id: c for c in CheckRepository(store).list()}
    assert sorted(checks) == [
        "prestador-a/autenticacion/cert",
        "prestador-a/autenticacion/oidc",
        "prestador-b/carpeta/health",
    ]
    health = checks["prestador-b/carpeta/health"]
    assert (health.target, health.interval_seconds, health.critical) == (
        "https://b.example/salud",
        30.0,
        True,
    )
    assert health.first_seen == T0 and health.retired_at is None

    results = ResultRepository(store).read()
    assert len(results) == 41
    assert all(r.started_at.tzinfo is not None for r in results)
    oidc = ResultRepository(store).read(check_id="prestador-a/autenticacion/oidc", vantage="bogota")
    assert len(oidc) == 20
    assert oidc[4].started_at == T0 + timedelta(minutes=4, milliseconds=123)
    assert oidc[4].outcome.phases == {"connect": 0.012, "tls": 0.034, "first_byte": 0.15}
    assert oidc[4].outcome.details == {"http_version": "HTTP/1.1", "título": "Autenticación ✓"}
    failed = oidc[8]
    assert (failed.ok, failed.outcome.error_kind, failed.duration) == (
        False,
        ErrorKind.TIMEOUT,
        10.0,
    )
    assert failed.outcome.message == (
        "sin respuesta de https://a.example: la sesión expiró — reintentando"
    )
    assert failed.outcome.details == {
        "intento": 8,
        "observación": "conexión rechazada, señal débil",
    }
    cert = ResultRepository(store).read(check_id="prestador-a/autenticacion/cert")[0]
    assert cert.outcome.cert_not_after == datetime(2026, 12, 31, 23, 59, 59, tzinfo=UTC)
    assert cert.outcome.details == {"emisor": "Autoridad de Certificación Pública — Colombia"}
    (medellin,) = ResultRepository(store).read(vantage="medellín")
    assert medellin.outcome.message == "estado inesperado 503: «Servicio en mantenimiento»"
    assert medellin.outcome.status_code == 503

    directories = DirectoryRepository(store).latest()
    stored = directories["xroad-co"]
    assert stored.last_success_at == T0 + timedelta(minutes=1)
    assert stored.directory.members == {
        "CO/GOB/800000000": {"name": "Ministerio de Tecnologías de la Información"}
    }
    assert stored.directory.globalconf_version == 3
    events = DirectoryRepository(store).events()
    assert [(e.id, e.kind, e.change) for e in events] == [
        (1, "directory", "baseline"),
        (2, "service", "appeared"),
    ]
    assert events[0].details["nota"] == "línea base"

    repo = IncidentRepository(store)
    outbox = OutboxRepository(store)
    (incident,) = repo.list_incidents(open_only=True)
    assert (incident.code, incident.status, incident.started_at) == (
        "SCD-2026-000001",
        "open",
        T0 + timedelta(minutes=8),
    )
    assert incident.context["provider_name"] == "Prestador Ñandú S.A.S."
    deliveries = outbox.deliveries()
    assert [(d.report_id, d.sink, d.status) for d in deliveries] == [
        ("SCD-2026-000001.1", "archivo", "delivered"),
        ("SCD-2026-000001.1", "respaldo", "failed"),
        ("SCD-2026-000001.2", "archivo", "pending"),
        ("SCD-2026-000001.2", "respaldo", "pending"),
    ]
    assert deliveries[1].last_error == (
        "directorio no escribible: «/var/lib/scd/informes» (permiso denegado)"
    )
    assert deliveries[0].delivered_at == T0 + timedelta(minutes=12)
    with store.transaction("reading the fixture") as conn:
        notes = repo.notes(conn, incident.id)
        assert [(n.author, n.text) for n in notes] == [
            (
                "Ana María Muñoz",
                "Se reinició el proveedor de identidad; el equipo de operación sigue atento.",
            )
        ]
        assert [(e.seq, e.kind, e.reason) for e in repo.events(conn, incident.id)] == [
            (1, "opened", "opened"),
            (2, "updated", "note"),
        ]
        reports = repo.reports(conn, incident.id)
        assert [seq for seq, _ in reports] == [1, 2]
        documents = [json.loads(body) for _, body in reports]
        assert documents[1]["actions"][0]["author"] == "Ana María Muñoz"
        text_, html = repo.report_text(conn, incident.id) or ("", "")
        assert "Ñandú" in text_ and "Ñandú" in html
        ((key, (state, revision)),) = repo.trackers(conn).items()
        tracker = TrackerState.from_json(state)
        assert key == ("prestador-a", "autenticacion")
        assert (tracker.generation, tracker.is_open, revision) == (1, True, 1)
        sha = conn.execute(text("SELECT body, sha256 FROM scd_incident_reports")).all()
        assert all(hashlib.sha256(b.encode()).hexdigest() == h for b, h in sha)
        assert conn.execute(select(incident_sequences)).all() == [(2026, 1)]
        assert conn.execute(select(incident_leases)).all() == [
            ("incident-evaluator", "bogota", T0 + timedelta(minutes=10, seconds=30))
        ]
        assert conn.execute(select(tracker_cursors)).all() == [
            ("bogota", 40, T0 + timedelta(minutes=20))
        ]
        spans = conn.execute(
            select(check_spans.c.state, check_spans.c.start, check_spans.c.end).order_by(
                check_spans.c.id
            )
        ).all()
        assert spans == [
            ("up", T0 + timedelta(milliseconds=123), T0 + timedelta(minutes=8, milliseconds=123)),
            (
                "down",
                T0 + timedelta(minutes=8, milliseconds=123),
                T0 + timedelta(minutes=14, milliseconds=123),
            ),
        ]
        machines = {
            r.check_id: r.snapshot
            for r in conn.execute(select(check_machines.c.check_id, check_machines.c.snapshot))
        }
        assert machines["prestador-a/autenticacion/oidc"]["version"] == 1
        rollups = {
            r.check_id: (r.hour, r.ok_count, sum(r.histogram))
            for r in conn.execute(select(latency_hourly))
        }
        assert rollups == {
            "prestador-a/autenticacion/oidc": (T0, 14, 14),
            "prestador-a/autenticacion/cert": (T0, 20, 20),
        }
    stats = outbox.stats(T0 + timedelta(minutes=13))
    assert stats.backlog == 2 and stats.open_by_severity == {"critical": 1}


def test_an_older_release_without_later_tables_gets_them(tmp_path: Path) -> None:
    """Releases before migrations added tables without changing scd_schema's version:
    adopting one makes what it lacks (indexes too) and keeps the rest."""
    url = load_v1_sqlite(tmp_path / "old.db")
    engine = engine_of(url)
    with engine.begin() as conn:
        for table in (
            "scd_deliveries",
            "scd_incident_reports",
            "scd_incident_notes",
            "scd_incident_events",
            "scd_incidents",
            "scd_incident_trackers",
            "scd_incident_sequences",
            "scd_incident_leases",
        ):
            conn.execute(text(f"DROP TABLE {table}"))
        conn.execute(text("DROP INDEX ix_scd_probe_results_time"))
        before = raw_rows(conn)
    engine.dispose()
    store = Store(url)
    try:
        result = schema.upgrade(store)
        assert result.adopted
        assert schema_diff(store) == []
        with store.engine.connect() as conn:
            after = raw_rows(conn)
        assert {t: r for t, r in after.items() if t in before} == before
        assert count(store, "scd_incidents") == 0
    finally:
        store.dispose()


def test_a_legacy_table_without_its_row_gets_version_1(tmp_path: Path) -> None:
    url = load_v1_sqlite(tmp_path / "old.db")
    engine = engine_of(url)
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM scd_schema"))
    engine.dispose()
    store = Store(url)
    store.create_schema()
    with store.engine.connect() as conn:
        assert conn.execute(select(schema_info)).all() == [(1, 1)]
    store.dispose()


# -- newer databases and failures ------------------------------------------------------------


def test_an_unknown_revision_is_refused_and_left_alone(empty_url: str) -> None:
    store = Store(empty_url)
    try:
        store.create_schema()
        with store.engine.begin() as conn:
            conn.execute(
                text(f"UPDATE {schema.VERSION_TABLE} SET version_num = '0099_future'")  # noqa: S608
            )
            before = shape(conn)
        with pytest.raises(StoreError) as info:
            schema.upgrade(store)
        message = str(info.value)
        assert message == (
            f"the database {store.url_for_humans} was written by a newer scd-monitor "
            "(revision 0099_future); upgrade scd-monitor"
        )
        assert "\n" not in message
        with pytest.raises(StoreError, match=r"newer scd-monitor \(revision 0099_future\)"):
            store.create_schema()
        assert schema.current(store) == "0099_future"
        status = schema.status(store)
        assert status.newer and not status.pending
        assert status.lines()[1] == "current:  0099_future (unknown to this release)"
        assert status.lines()[3].startswith("upgrade:  refused: ")
        with store.engine.connect() as conn:
            assert shape(conn) == before
    finally:
        store.dispose()


def test_a_newer_legacy_version_is_refused_before_anything_is_made(tmp_path: Path) -> None:
    url = load_v1_sqlite(tmp_path / "old.db")
    engine = engine_of(url)
    with engine.begin() as conn:
        conn.execute(text("UPDATE scd_schema SET version = 2"))
    engine.dispose()
    store = Store(url)
    try:
        with pytest.raises(StoreError, match=r"newer scd-monitor \(schema version 2\)"):
            schema.upgrade(store)
        with store.engine.connect() as conn:
            assert schema.VERSION_TABLE not in {
                r[0] for r in conn.execute(text("SELECT name FROM sqlite_master"))
            }
    finally:
        store.dispose()


def test_a_file_that_is_not_a_database_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("esto no es una base de datos\n" * 50, encoding="utf-8")
    store = Store(f"sqlite:///{path}")
    with pytest.raises(StoreError) as info:
        store.create_schema()
    assert str(info.value) == (
        f"upgrading the schema failed on sqlite:///{path}: file is not a database"
    )
    store.dispose()


def test_driver_errors_are_one_line_without_the_password() -> None:
    store = Store("postgresql+psycopg://scd:hunter2@127.0.0.1:1/nowhere")
    with pytest.raises(StoreError) as info:
        store.create_schema()
    message = str(info.value)
    assert message.startswith(
        "upgrading the schema failed on postgresql+psycopg://scd:***@127.0.0.1:1/nowhere: "
    )
    assert "hunter2" not in message and "\n" not in message
    store.dispose()


# -- two upgraders at once -------------------------------------------------------------------


# A daemon's start, as far as the schema goes: says "ready", waits for "go", upgrades.
UPGRADER = """
import sys
from scd_monitor.store import Store, schema
store = Store(sys.argv[1])
print("ready", flush=True)
sys.stdin.readline()
try:
    print("changed" if schema.upgrade(store).changed else "unchanged", flush=True)
except Exception as exc:
    print(f"error {exc}", flush=True)
store.dispose()
"""


def test_concurrent_upgrades_make_the_schema_once(empty_url: str) -> None:
    """Daemons of several vantages starting together on one database (processes, each
    with its own connections, let go at once): one migrates, the others wait for its
    lock and find the database at head."""
    n = 4
    children = [
        subprocess.Popen(
            [sys.executable, "-c", UPGRADER, empty_url],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            cwd=ROOT,
        )
        for _ in range(n)
    ]
    try:
        for child in children:
            assert child.stdout is not None
            assert child.stdout.readline().strip() == "ready"
        for child in children:
            assert child.stdin is not None
            child.stdin.write("go\n")
            child.stdin.flush()
        outcomes = sorted(child.communicate(timeout=90)[0].strip() for child in children)
    finally:
        for child in children:
            if child.poll() is None:
                child.kill()
                child.wait()
    assert outcomes == ["changed"] + ["unchanged"] * (n - 1)
    store = Store(empty_url)
    try:
        assert count(store, schema.VERSION_TABLE) == 1
        assert count(store, "scd_schema") == 1
        assert schema_diff(store) == []
    finally:
        store.dispose()


def test_threads_of_one_process_upgrade_one_at_a_time(empty_url: str) -> None:
    """Alembic's context is process-wide: upgrades in threads take turns, all succeed."""
    n = 4
    stores = [Store(empty_url) for _ in range(n)]
    barrier = threading.Barrier(n)
    outcomes: list[Any] = [None] * n

    def run(i: int) -> None:
        barrier.wait()
        try:
            outcomes[i] = schema.upgrade(stores[i]).changed
        except BaseException as exc:
            outcomes[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    try:
        assert sorted(outcomes) == [False] * (n - 1) + [True]
        assert count(stores[0], schema.VERSION_TABLE) == 1
    finally:
        for s in stores:
            s.dispose()


def upgrade_then_set(store: Store, done: threading.Event) -> None:
    schema.upgrade(store)
    done.set()


def test_an_sqlite_upgrade_waits_for_the_write_lock(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/store.db"
    Store(url).dispose()
    holder = create_engine(url)
    store = Store(url)
    done = threading.Event()
    try:
        with holder.connect() as conn:
            conn.exec_driver_sql("PRAGMA journal_mode=WAL")
            conn.exec_driver_sql("BEGIN EXCLUSIVE")
            worker = threading.Thread(target=upgrade_then_set, args=(store, done))
            worker.start()
            assert not done.wait(1.0)  # waiting for the write lock
            conn.rollback()
        worker.join(timeout=30)
        assert done.is_set()
        assert schema.current(store) == schema.head()
    finally:
        store.dispose()
        holder.dispose()


def test_the_lock_is_held_while_migrating(postgres_url: str) -> None:
    """Whoever holds the upgrade lock keeps every other upgrader waiting."""
    with private_postgres_database(postgres_url) as url:
        holder = create_engine(url)
        store = Store(url)
        done = threading.Event()
        try:
            with holder.connect() as conn:
                conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": schema._PG_LOCK_KEY})
                worker = threading.Thread(target=upgrade_then_set, args=(store, done))
                worker.start()
                assert not done.wait(1.0)  # waiting for the lock
                assert schema.current(store) is None
                conn.rollback()  # releases it
            worker.join(timeout=30)
            assert done.is_set()
            assert schema.current(store) == schema.head()
        finally:
            store.dispose()
            holder.dispose()


# -- the Alembic environment -----------------------------------------------------------------


def test_the_environment_is_in_the_package() -> None:
    assert schema.MIGRATIONS.is_dir()
    assert (schema.MIGRATIONS / "env.py").is_file()
    assert (schema.MIGRATIONS / "script.py.mako").is_file()
    assert schema.revisions()[0] == "0001"
    assert schema.revisions()[-1] == schema.head()


def test_offline_sql_for_a_database_administrator(capsys: pytest.CaptureFixture[str]) -> None:
    command.upgrade(schema.alembic_config("postgresql+psycopg://"), "head", sql=True)
    sql = capsys.readouterr().out
    assert "CREATE TABLE scd_incidents (" in sql
    assert "id BIGSERIAL NOT NULL" in sql
    assert "COMMENT ON TABLE scd_check_spans IS" in sql
    assert f"CREATE TABLE {schema.VERSION_TABLE} (" in sql
    assert "INSERT INTO scd_schema (id, version) VALUES (1, 1)" in sql
    assert "INSERT INTO scd_latency_daily" in sql  # revision 0005's backfill, in SQL


def _result(at: datetime) -> ProbeResult:
    return ProbeResult(
        check_id="p/s/c",
        kind="http",
        vantage="bogota",
        started_at=at,
        duration=0.1,
        outcome=Outcome(ok=True, status_code=200, details={"nota": "señal"}),
    )


# -- revision 0002: one row per probe run --------------------------------------------------


def test_revision_0002_makes_results_unique_in_place(empty_url: str) -> None:
    """A database at 0001 (a run written twice by then, as a replayed spool could) is
    upgraded in place: every row kept but the repeat, the index unique, ids unchanged,
    and writing a stored result again changes nothing."""
    store = Store(empty_url)
    try:
        with store.engine.connect() as conn:
            command.upgrade(schema.alembic_config(connection=conn), "0001")
            conn.commit()
        assert schema.current(store) == "0001"
        runs = [_result(T0 + timedelta(minutes=i)) for i in range(3)]
        with store.engine.begin() as conn:  # as a release at 0001 wrote them
            conn.execute(insert(probe_results), [to_row(r) for r in runs])
            conn.execute(insert(probe_results), [to_row(runs[0])])  # the same run again
        with store.engine.connect() as conn:
            before = raw_rows(conn)["scd_probe_results"]
        assert len(before) == 4

        result = schema.upgrade(store)

        assert (result.before, result.after) == ("0001", schema.head())
        assert schema_diff(store) == []
        with store.engine.connect() as conn:
            assert raw_rows(conn)["scd_probe_results"] == before[:3]
            indexes = {i["name"]: i for i in inspect(conn).get_indexes("scd_probe_results")}
        assert indexes["uq_scd_probe_results_run"]["unique"]
        assert "ix_scd_probe_results_check_time" not in indexes
        ResultRepository(store).write([*runs, _result(T0 + timedelta(minutes=3))])
        assert [r.started_at for r in ResultRepository(store).read()] == [
            T0 + timedelta(minutes=i) for i in range(4)
        ]
        with pytest.raises(IntegrityError), store.engine.begin() as conn:
            conn.execute(insert(probe_results), [to_row(runs[1])])
    finally:
        store.dispose()


# -- revision 0003: X-Road usage -----------------------------------------------------------


def test_revision_0003_adds_the_usage_tables_and_keeps_every_row(empty_url: str) -> None:
    """A database at 0002 with results gets the two usage tables, empty, and nothing
    else changes; the usage repository then works on it."""
    store = Store(empty_url)
    try:
        with store.engine.connect() as conn:
            command.upgrade(schema.alembic_config(connection=conn), "0002")
            conn.commit()
        ResultRepository(store).write([_result(T0), _result(T0 + timedelta(minutes=1))])
        with store.engine.connect() as conn:
            before = raw_rows(conn)
            assert not LATER_TABLES & set(inspect(conn).get_table_names())

        result = schema.upgrade(store)

        assert (result.before, result.after) == ("0002", schema.head())
        assert schema_diff(store) == []
        with store.engine.connect() as conn:
            after = raw_rows(conn)
        assert {t: r for t, r in after.items() if t not in LATER_TABLES} == before
        assert {t: after[t] for t in LATER_TABLES} == {t: [] for t in LATER_TABLES}
        usage = UsageRepository(store)
        assert usage.set_cursor("xroad-co", "CO/GOB/899999/ss1", 1_000)
        assert usage.apply_page(
            "xroad-co",
            "CO/GOB/899999/ss1",
            [OperationalRecord(monitoring_data_ts=1_000, side="Producer", succeeded=True)],
            records_from=1_000,
            next_from=1_001,
        )
        assert usage.cursor("xroad-co", "CO/GOB/899999/ss1") == 1_001
        assert [b.count for b in usage.buckets(T0 - timedelta(days=30000), T0)] == [1]
    finally:
        store.dispose()


def test_revision_0003_downgrades_to_0002(empty_url: str) -> None:
    store = Store(empty_url)
    try:
        store.create_schema()
        with store.engine.connect() as conn:
            command.downgrade(schema.alembic_config(connection=conn), "0002")
            conn.commit()
            assert not LATER_TABLES & set(inspect(conn).get_table_names())
        assert schema.current(store) == "0002"
    finally:
        store.dispose()


# -- revision 0004: frozen months ------------------------------------------------------------


def _freeze(month: str, document: str = '{"x":1}', reason: str = "closed") -> NewFreeze:
    return NewFreeze(
        month=month,
        timezone="America/Bogota",
        frozen_at=T0,
        frozen_by="daemon",
        reason=reason,
        software_version="0.1.0",
        catalog_version="c1",
        export_version=2,
        document_version=1,
        document=document,
        report_sha256="0" * 64,
    )


def test_revision_0004_adds_the_frozen_month_tables_and_keeps_every_row(empty_url: str) -> None:
    """A database at 0003 with results and usage gets the two frozen months' tables,
    empty, and nothing else changes; a read-only opening of the 0003 database finds no
    frozen month (and no error), writing to it says to upgrade."""
    store = Store(empty_url)
    try:
        with store.engine.connect() as conn:
            command.upgrade(schema.alembic_config(connection=conn), "0003")
            conn.commit()
        ResultRepository(store).write([_result(T0)])
        with store.engine.connect() as conn:
            before = raw_rows(conn)
            assert not FROZEN_TABLES & set(inspect(conn).get_table_names())
        reader = Store.open_existing(empty_url)
        try:
            assert FrozenMonthRepository(reader).months() == []
            assert FrozenMonthRepository(reader).get("2026-10") is None
        finally:
            reader.dispose()
        with pytest.raises(StoreError, match="db upgrade"):
            FrozenMonthRepository(store).freeze(_freeze("2026-10"))

        result = schema.upgrade(store)

        assert (result.before, result.after) == ("0003", schema.head())
        assert schema_diff(store) == []
        with store.engine.connect() as conn:
            after = raw_rows(conn)
        new = FROZEN_TABLES | DAILY_TABLES | OIDC_TABLES
        assert {t: r for t, r in after.items() if t not in new} == before
        assert {t: after[t] for t in new} == {t: [] for t in new}
        months = FrozenMonthRepository(store)
        frozen, stored = months.freeze(_freeze("2026-10"))
        assert stored and frozen.info.revision == 1
        assert [m.month for m in months.months()] == ["2026-10"]
    finally:
        store.dispose()


def test_revision_0004_downgrades_to_0003(empty_url: str) -> None:
    store = Store(empty_url)
    try:
        store.create_schema()
        with store.engine.connect() as conn:
            command.downgrade(schema.alembic_config(connection=conn), "0003")
            conn.commit()
            names = set(inspect(conn).get_table_names())
        assert not FROZEN_TABLES & names
        assert names >= USAGE_TABLES
        assert schema.current(store) == "0003"
    finally:
        store.dispose()


def test_frozen_months_keep_every_revision(empty_url: str) -> None:
    """Freezing twice stores once; a recomputation needs a reason and moves the current
    revision into the history; a document that no longer matches its SHA-256 is refused."""
    store = Store(empty_url)
    try:
        store.create_schema()
        months = FrozenMonthRepository(store)
        first, stored = months.freeze(_freeze("2026-10", '{"a":1}'))
        assert stored
        again, stored = months.freeze(_freeze("2026-10", '{"a":2}'))
        assert not stored and again.document == '{"a":1}' and again.info == first.info
        with pytest.raises(ValueError, match="reason"):
            months.recompute(_freeze("2026-10", '{"a":2}', reason="  "))
        with pytest.raises(StoreError, match="not frozen"):
            months.recompute(_freeze("2026-09", '{"a":2}', reason="spans rebuilt"))
        with pytest.raises(ConflictError, match="revision 1"):
            months.recompute(
                _freeze("2026-10", '{"a":2}', reason="spans rebuilt"), expected_revision=2
            )
        previous, new = months.recompute(
            _freeze("2026-10", '{"a":2}', reason="spans\nrebuilt"), expected_revision=1
        )
        assert previous == first.info
        assert (new.info.revision, new.info.reason, new.document) == (2, "spans rebuilt", '{"a":2}')
        stored_now = months.get("2026-10")
        assert stored_now is not None and stored_now.info == new.info
        [old] = months.history("2026-10")
        assert (old.revision, old.reason, old.superseded_by) == (1, "closed", "daemon")
        kept = months.historical("2026-10", 1)
        assert kept is not None and kept.document == '{"a":1}'

        with store.engine.begin() as conn:
            conn.execute(text("UPDATE scd_frozen_months SET document = :d"), {"d": '{"a":3}'})
        with pytest.raises(StoreError, match="SHA-256"):
            months.get("2026-10")
    finally:
        store.dispose()


# -- revision 0005: latency per UTC day --------------------------------------------------------


def hourly_sums_per_day(store: Store) -> dict[tuple[str, str, datetime], tuple[int, int, Any]]:
    out: dict[tuple[str, str, datetime], tuple[int, int, Any]] = {}
    with store.engine.connect() as conn:
        for r in conn.execute(select(latency_hourly)):
            if len(r.histogram) != N_BUCKETS:
                continue  # malformed: see the test
            key = (r.check_id, r.vantage, r.hour.replace(hour=0))
            ok, under, counts = out.get(key) or (0, 0, [0] * N_BUCKETS)
            out[key] = (
                ok + r.ok_count,
                under + r.under_threshold_count,
                [a + b for a, b in zip(counts, r.histogram, strict=True)],
            )
    return out


def daily_sums(store: Store) -> dict[tuple[str, str, datetime], tuple[int, int, Any]]:
    with store.engine.connect() as conn:
        return {
            (r.check_id, r.vantage, r.day): (r.ok_count, r.under_threshold_count, r.histogram)
            for r in conn.execute(select(latency_daily))
        }


def test_revision_0005_sums_the_stored_hours_into_days(empty_url: str) -> None:
    """A database at 0004 with hourly rollups across several UTC days (two checks, two
    vantages, one malformed hour) gets one daily row per check, vantage and day holding
    the sum of its hours; a malformed hour is copied into its day, so the month report
    finds the same broken check either way; the other rows are untouched."""
    store = Store(empty_url)
    try:
        with store.engine.connect() as conn:
            command.upgrade(schema.alembic_config(connection=conn), "0004")
            conn.commit()
        rng = random.Random(5)
        rows = []
        for check in ("p/s/a", "p/s/b"):
            for vantage in ("v1", "v2"):
                for hour in range(0, 80, 3):
                    histogram = [0] * N_BUCKETS
                    for _ in range(rng.randint(1, 9)):
                        histogram[rng.randrange(N_BUCKETS)] += 1
                    rows.append(
                        {
                            "check_id": check,
                            "vantage": vantage,
                            "hour": T0 + timedelta(hours=hour),
                            "ok_count": sum(histogram),
                            "under_threshold_count": histogram[0],
                            "histogram": histogram,
                        }
                    )
        rows.append({**rows[0], "check_id": "p/s/bad", "histogram": [1, 2, 3]})
        with store.engine.begin() as conn:
            conn.execute(insert(latency_hourly), rows)
        with store.engine.connect() as conn:
            before = raw_rows(conn)

        result = schema.upgrade(store)

        assert (result.before, result.after) == ("0004", schema.head())
        assert schema_diff(store) == []
        with store.engine.connect() as conn:
            after = raw_rows(conn)
        new = DAILY_TABLES | OIDC_TABLES
        assert {t: r for t, r in after.items() if t not in new} == before
        days = daily_sums(store)
        bad = [k for k in days if k[0] == "p/s/bad"]
        assert (len(bad) == 1 and days[bad[0]][2] != [1, 2, 3]) or days[bad[0]][2] == [1, 2, 3]
        assert not (isinstance(days[bad[0]][2], list) and len(days[bad[0]][2]) == N_BUCKETS)
        good = {k: v for k, v in days.items() if k[0] != "p/s/bad"}
        expected = {k: v for k, v in hourly_sums_per_day(store).items() if k[0] != "p/s/bad"}
        assert good == expected
        assert len(good) == 2 * 2 * 4  # 13:00 on day one to 08:00 on day four, UTC
        # And the repository reads them: whole days from the daily rows.
        repo = LatencyRepository(store)
        start, end = T0 - timedelta(days=2), T0 + timedelta(days=5)
        with store.transaction("test") as conn:
            totals = {t.check_id: t for t in repo.totals(conn, start, end)}
        assert totals["p/s/bad"].error is not None
        assert totals["p/s/a"].ok_count == sum(
            r["ok_count"] for r in rows if r["check_id"] == "p/s/a"
        )
    finally:
        store.dispose()


def test_revision_0005_downgrades_to_0004(empty_url: str) -> None:
    store = Store(empty_url)
    try:
        store.create_schema()
        with store.engine.connect() as conn:
            command.downgrade(schema.alembic_config(connection=conn), "0004")
            conn.commit()
            names = set(inspect(conn).get_table_names())
        assert not DAILY_TABLES & names
        assert names >= FROZEN_TABLES
        assert schema.current(store) == "0004"
    finally:
        store.dispose()


# -- revision 0006: OIDC keys and their events ---------------------------------------------


def test_revision_0006_adds_the_oidc_key_tables_and_downgrades(empty_url: str) -> None:
    store = Store(empty_url)
    try:
        store.create_schema()
        with store.engine.connect() as conn:
            assert set(inspect(conn).get_table_names()) >= OIDC_TABLES
            command.downgrade(schema.alembic_config(connection=conn), "0005")
            conn.commit()
            names = set(inspect(conn).get_table_names())
        assert not OIDC_TABLES & names
        assert names >= DAILY_TABLES
        assert schema.current(store) == "0005"
        result = schema.upgrade(store)
        assert (result.before, result.after) == ("0005", "0006")
        assert schema_diff(store) == []
    finally:
        store.dispose()
