"""Schema migrations: bring a database to this release's schema, and say where it stands.

The migrations are Alembic revisions shipped in the package
(:mod:`scd_monitor.store.migrations`, no ``alembic.ini``); the revision a database is
at is kept in ``scd_alembic_version`` (not ``alembic_version``, so that a database
shared with another Alembic-managed application keeps both apart).

:func:`upgrade` is what the daemon runs at start (``Store.create_schema``) and what
``scd-monitor db upgrade`` runs. It holds a lock while it looks and migrates, so that
two daemons starting together on one database do it once: on PostgreSQL a transaction
advisory lock, with every revision in that one transaction (DDL is transactional
there); on SQLite ``BEGIN EXCLUSIVE`` on the connection the revisions run on. What it
finds:

* an empty database: every revision runs;
* a database of a release before migrations (``scd_schema`` version 1, no version
  table): revision 0001 is *adopted*: it makes only the tables and indexes that are
  missing (earlier releases added tables without changing the version) and records
  0001; then the later revisions run. Every row is kept;
* a versioned database: the revisions after its own run;
* a revision this release does not know, or ``scd_schema.version`` above
  :data:`~scd_monitor.store.tables.SCHEMA_VERSION`: a newer release wrote it, and
  :class:`StoreError` says to upgrade scd-monitor. Nothing is changed.

Reading commands open the database with ``Store.open_existing``, which calls
:func:`require_readable`: it makes nothing, refuses a database scd-monitor never wrote
(:class:`NoStoreDataError`) and one written by a newer release, and reads any known
revision from :data:`READABLE_FROM` on, unversioned ones of the last release before
migrations included (their tables are revision 0001's), without upgrading them: the
daemon does that when it starts.

Adding a revision (the schema changes in :mod:`scd_monitor.store.tables`)::

    from alembic import command
    from scd_monitor.store.schema import alembic_config

    command.revision(
        alembic_config("sqlite:////tmp/head.db"),  # a database at head, for the diff
        message="what changes",
        rev_id="0002",
        autogenerate=True,
    )

then edit the script (it is frozen history: spell types out, no imports from
``tables``), and set :data:`READABLE_FROM` to it when the read paths need it.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, Protocol

from alembic import command
from alembic.autogenerate.api import AutogenContext
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy import Connection, Engine, inspect, select, text
from sqlalchemy.exc import OperationalError, SQLAlchemyError

from scd_monitor.errors import NoStoreDataError, StoreError
from scd_monitor.store.tables import SCHEMA_VERSION, UTCDateTime, metadata, schema_info

__all__ = [
    "MIGRATIONS",
    "READABLE_FROM",
    "READABLE_WITHOUT",
    "VERSION_TABLE",
    "Database",
    "SchemaStatus",
    "UpgradeResult",
    "alembic_config",
    "context_options",
    "current",
    "head",
    "require_readable",
    "revisions",
    "status",
    "upgrade",
]

VERSION_TABLE = "scd_alembic_version"
"""Where the revision of a database is kept."""

MIGRATIONS = Path(__file__).resolve().with_name("migrations")
"""The Alembic environment and its revisions, inside the package."""

READABLE_FROM = "0001"
"""The oldest revision whose tables this release's read paths can read as they are."""

READABLE_WITHOUT = frozenset(
    {
        "scd_xroad_usage",
        "scd_xroad_usage_cursors",
        "scd_frozen_months",
        "scd_frozen_month_history",
        "scd_latency_daily",
        "scd_oidc_keys",
        "scd_oidc_key_events",
    }
)
"""Tables of later revisions (0003 to 0006) that a database may lack and still be
read as it is: their read paths find nothing there (:class:`~scd_monitor.store.usage.
UsageRepository` reads no usage, :class:`~scd_monitor.store.months.FrozenMonthRepository`
no frozen month), as in a database that never collected or froze any, or read what
they summarise instead (:meth:`~scd_monitor.store.rollups.LatencyRepository.totals`
reads every hour of a period from ``scd_latency_hourly``)."""

ADOPT_LEGACY = "scd_adopt_legacy"
"""Set in the Alembic config's attributes when revision 0001 adopts a database of a
release before migrations (it then makes only what is missing)."""

LEGACY_TABLE = schema_info.name

# Alembic's ``context`` and ``op`` are process-wide proxies: one upgrade at a time per
# process (taken before the database's lock, so it cannot deadlock with it).
_IN_PROCESS = threading.Lock()

# pg_advisory_xact_lock's key: "scd-sch" in ASCII. Any fixed number does; it only has
# to be the same for every scd-monitor on one database.
_PG_LOCK_KEY = 0x7363642D736368


class Database(Protocol):
    """What this module needs of a :class:`~scd_monitor.store.Store`."""

    @property
    def engine(self) -> Engine: ...

    @property
    def dialect(self) -> str: ...

    @property
    def url_for_humans(self) -> str: ...


@dataclass(frozen=True, slots=True)
class SchemaStatus:
    """Where a database stands, as :func:`status` found it (``scd-monitor db current``)."""

    database: str
    """The database URL, password hidden."""
    current: str | None
    """Its revision; None when unversioned (empty, or made before migrations)."""
    head: str
    """This release's revision."""
    legacy_version: int | None
    """``scd_schema.version``; None when there is no such table (or row)."""
    tables: frozenset[str]
    """scd-monitor's tables present, the version table included."""
    missing: frozenset[str]
    """Tables of this release's schema that the database lacks."""

    @property
    def holds_data(self) -> bool:
        """Whether scd-monitor ever wrote this database."""
        return bool(self.tables)

    @property
    def known(self) -> bool:
        """Whether this release knows the database's revision (None counts as known)."""
        return self.current is None or self.current in revisions()

    @property
    def newer(self) -> bool:
        """Written by a newer release: this one must neither migrate nor read it."""
        return not self.known or (self.legacy_version or 0) > SCHEMA_VERSION

    @property
    def legacy(self) -> bool:
        """Made by a release before migrations (tables, no version)."""
        return self.current is None and self.holds_data

    @property
    def pending(self) -> bool:
        """Whether :func:`upgrade` would change the database."""
        return not self.newer and self.current != self.head

    def newer_message(self) -> str:
        found = (
            f"revision {self.current}"
            if not self.known
            else f"schema version {self.legacy_version}"
        )
        return (
            f"the database {self.database} was written by a newer scd-monitor ({found}); "
            "upgrade scd-monitor"
        )

    def lines(self) -> list[str]:
        """What ``scd-monitor db current`` prints, one fact a line."""
        if self.current is not None:
            now = self.current if self.known else f"{self.current} (unknown to this release)"
        elif self.holds_data:
            now = f"none: made before migrations (scd_schema version {self.legacy_version})"
        else:
            now = "none: no scd-monitor data"
        if self.newer:
            verdict = f"refused: {self.newer_message()}"
        elif self.pending:
            verdict = "pending: run `scd-monitor db upgrade`, or start the daemon"
        else:
            verdict = "none needed"
        return [
            f"database: {self.database}",
            f"current:  {now}",
            f"head:     {self.head}",
            f"upgrade:  {verdict}",
        ]


@dataclass(frozen=True, slots=True)
class UpgradeResult:
    """What :func:`upgrade` did."""

    database: str
    before: str | None
    after: str
    adopted: bool
    """A database of a release before migrations was adopted as revision 0001."""

    @property
    def changed(self) -> bool:
        return self.before != self.after

    def line(self) -> str:
        if not self.changed:
            return f"{self.database}: at {self.after} already"
        if self.adopted:
            return (
                f"{self.database}: adopted the schema of a release before migrations, "
                f"now at {self.after}"
            )
        if self.before is None:
            return f"{self.database}: created the schema at {self.after}"
        return f"{self.database}: upgraded from {self.before} to {self.after}"


# -- the revisions ------------------------------------------------------------------------


def alembic_config(url: str | None = None, *, connection: Connection | None = None) -> Config:
    """An Alembic configuration for the shipped migrations, built without ``alembic.ini``.

    ``connection`` is what the migrations run on (inside its transaction); ``url`` is
    for offline SQL (``command.upgrade(cfg, "head", sql=True)``) and for a developer's
    ``command.revision(..., autogenerate=True)``.
    """
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS).replace("%", "%%"))
    config.set_main_option("file_template", "%%(rev)s_%%(slug)s")
    if url is not None:
        config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def context_options() -> dict[str, Any]:
    """The options of ``context.configure`` (env.py), also used to compare schemas."""
    return {
        "version_table": VERSION_TABLE,
        "compare_type": True,
        # SQLite changes tables by copying them; PostgreSQL runs the same ALTERs.
        "render_as_batch": True,
        "render_item": _render_item,
        "transaction_per_migration": False,
    }


def _render_item(kind: str, obj: Any, autogen: AutogenContext) -> str | bool:
    # Revisions are frozen history: they spell out what UTCDateTime is in DDL.
    if kind == "type" and isinstance(obj, UTCDateTime):
        return "sa.DateTime(timezone=True)"
    return False


@cache
def _script() -> ScriptDirectory:
    return ScriptDirectory.from_config(alembic_config())


def head() -> str:
    """This release's revision (the single head of the shipped migrations)."""
    heads = _script().get_heads()
    if len(heads) != 1:
        raise StoreError(f"the shipped migrations have {len(heads)} heads; expected one")
    return heads[0]


def revisions() -> tuple[str, ...]:
    """Every revision this release knows, oldest first."""
    return tuple(reversed([s.revision for s in _script().walk_revisions()]))


def _readable() -> frozenset[str]:
    known = revisions()
    return frozenset(known[known.index(READABLE_FROM) :])


# -- looking -----------------------------------------------------------------------------


def _first_line(exc: BaseException) -> str:
    detail = str(getattr(exc, "orig", None) or exc).strip().splitlines()
    return detail[0] if detail else type(exc).__name__


def _not_a_database(store: Database, exc: BaseException) -> bool:
    orig = getattr(exc, "orig", None)
    return (
        store.dialect == "sqlite"
        and isinstance(orig, sqlite3.DatabaseError)
        and "not a database" in str(orig)
    )


def _look(conn: Connection, store: Database) -> SchemaStatus:
    names = set(inspect(conn).get_table_names())
    ours = {n for n in names if n in metadata.tables or n == VERSION_TABLE}
    rev: str | None = None
    if VERSION_TABLE in names:
        rev = MigrationContext.configure(
            conn, opts={"version_table": VERSION_TABLE}
        ).get_current_revision()
    legacy: int | None = None
    if LEGACY_TABLE in names:
        value = conn.execute(select(schema_info.c.version).order_by(schema_info.c.id)).scalar()
        legacy = None if value is None else int(value)
    return SchemaStatus(
        database=store.url_for_humans,
        current=rev,
        head=head(),
        legacy_version=legacy,
        tables=frozenset(ours),
        missing=frozenset(set(metadata.tables) - names),
    )


def status(store: Database) -> SchemaStatus:
    """Where the database stands; reads only (no lock, nothing made).

    :class:`NoStoreDataError` for an SQLite file that is not a database;
    :class:`StoreError` when the database cannot be read.
    """
    try:
        with store.engine.connect() as conn:
            found = _look(conn, store)
            conn.rollback()
            return found
    except SQLAlchemyError as exc:
        if _not_a_database(store, exc):
            raise NoStoreDataError(store.url_for_humans) from exc
        raise StoreError(
            f"reading the schema version failed on {store.url_for_humans}: {_first_line(exc)}"
        ) from exc
    except CommandError as exc:
        raise StoreError(f"reading the schema version of {store.url_for_humans}: {exc}") from exc


def current(store: Database) -> str | None:
    """The database's revision; None when it is unversioned (empty, or made by a
    release before migrations)."""
    return status(store).current


def require_readable(store: Database) -> SchemaStatus:
    """Check that this release can read the database as it is; change nothing.

    :class:`NoStoreDataError` when scd-monitor never wrote it; :class:`StoreError` when
    a newer release wrote it, or when it is too old to read before an upgrade.
    """
    found = status(store)
    if not found.holds_data:
        raise NoStoreDataError(store.url_for_humans)
    if found.newer:
        raise StoreError(found.newer_message())
    # A database of a release before migrations has the tables of revision 0001.
    at = found.current if found.current is not None else revisions()[0]
    if at not in _readable() or found.missing - READABLE_WITHOUT:
        raise StoreError(
            f"the database {found.database} has an older scd-monitor schema "
            f"({at if found.current is not None else 'made before migrations'}); "
            "run `scd-monitor db upgrade`, or start the daemon on it"
        )
    return found


# -- changing -----------------------------------------------------------------------------


def _connect(store: Database, *, tries: int = 20) -> Connection:
    """A connection for the upgrade. On a new SQLite file, two connections switching it
    to WAL at once (the store's connect pragmas) may get "database is locked" at once,
    without waiting: nothing was done yet, so try again."""
    for attempt in range(1, tries + 1):
        try:
            return store.engine.connect()
        except OperationalError as exc:
            if store.dialect != "sqlite" or "locked" not in str(exc.orig) or attempt == tries:
                raise
            time.sleep(0.02 * attempt)
    raise AssertionError("unreachable")


@contextmanager
def _locked(conn: Connection, dialect: str) -> Iterator[None]:
    """One transaction on ``conn`` that only one upgrader at a time can be in."""
    if dialect == "sqlite":
        # Foreign keys off while tables are copied (SQLite's procedure for schema
        # changes; the pragma is a no-op inside a transaction), checked before commit.
        conn.exec_driver_sql("PRAGMA foreign_keys=OFF")
        conn.exec_driver_sql("BEGIN EXCLUSIVE")
    elif dialect == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_LOCK_KEY})
    try:
        yield
        if dialect == "sqlite":
            broken = conn.exec_driver_sql("PRAGMA foreign_key_check").first()
            if broken is not None:
                raise StoreError(f"the migration broke a foreign key of {broken[0]}")
        conn.commit()
    except BaseException:
        conn.rollback()
        raise
    finally:
        if dialect == "sqlite":
            try:
                conn.exec_driver_sql("PRAGMA foreign_keys=ON")
                conn.commit()
            except SQLAlchemyError:
                # Never hand the pool a connection without its foreign keys.
                conn.invalidate()


def upgrade(store: Database) -> UpgradeResult:
    """Bring the database to :func:`head`, under the upgrade lock; see the module doc.

    :class:`StoreError` (one line, password hidden) when a newer release wrote the
    database or when the database fails; nothing is changed then.
    """
    try:
        with _IN_PROCESS, _connect(store) as conn, _locked(conn, store.dialect):
            before = _look(conn, store)
            if before.newer:
                raise StoreError(before.newer_message())
            adopt = before.legacy
            config = alembic_config(connection=conn)
            config.attributes[ADOPT_LEGACY] = adopt
            command.upgrade(config, "head")
            after = MigrationContext.configure(
                conn, opts={"version_table": VERSION_TABLE}
            ).get_current_revision()
    except SQLAlchemyError as exc:
        raise StoreError(
            f"upgrading the schema failed on {store.url_for_humans}: {_first_line(exc)}"
        ) from exc
    except CommandError as exc:
        raise StoreError(f"upgrading the schema of {store.url_for_humans}: {exc}") from exc
    if after != head():
        raise StoreError(f"upgrading {store.url_for_humans} stopped at {after}, not {head()}")
    return UpgradeResult(store.url_for_humans, before.current, after, adopt)
