"""The store's database: its URL, engine, access mode and transactions.

One :class:`Store` per database; the aggregates are read and written through the
repositories next to this module (:mod:`~scd_monitor.store.checks`,
:mod:`~scd_monitor.store.results`, :mod:`~scd_monitor.store.directories`, ...), each
given the store. All calls are blocking; database errors are translated into
:class:`StoreError` (a lost unique-key race into :class:`ConflictError`).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import unquote, urlsplit

from sqlalchemy import URL, Connection, Engine, create_engine, event, literal, select
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.pool import NullPool

from scd_monitor.errors import ConflictError, NoStoreDataError, StoreError

if TYPE_CHECKING:
    from scd_monitor.store.schema import UpgradeResult


def redacted_url(url: str) -> str:
    """The database URL with its password hidden, for logs and errors."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return "<unparsable database URL>"


Access = Literal["create", "write", "read"]
"""How a :class:`Store` opens its database: ``create`` (the daemon: an SQLite file and
its directory are made when missing), ``write`` (an existing database only, nothing
made) or ``read`` (an existing database, read-only)."""


class Store:
    """One database scd-monitor keeps its state in, opened in one access mode."""

    def __init__(self, url: str, *, echo: bool = False, access: Access = "create") -> None:
        self.url_for_humans = redacted_url(url)
        self.access: Access = access
        try:
            parsed = make_url(url)
        except Exception as exc:
            raise StoreError(f"invalid database URL {self.url_for_humans}: {exc}") from None
        self.dialect = parsed.get_backend_name()
        kwargs: dict[str, Any] = {"echo": echo, "future": True}
        if self.dialect == "sqlite":
            path = _sqlite_path(parsed)
            if access != "create":
                # Opening must not make the file (nor its directory): check it is there,
                # then open it by URI in mode "ro" or "rw", which never creates.
                if path is None or not path.is_file():
                    raise NoStoreDataError(self.url_for_humans)
                kwargs["creator"] = partial(_sqlite_connect, path, readonly=access == "read")
            elif path is not None:
                path.parent.mkdir(parents=True, exist_ok=True)
            kwargs["connect_args"] = {"check_same_thread": False, "timeout": 30}
            if path is None:
                # Every connection to ":memory:" is a new database; share one.
                from sqlalchemy.pool import StaticPool

                kwargs["poolclass"] = StaticPool
        elif self.dialect == "postgresql":
            kwargs["pool_pre_ping"] = True
            kwargs["pool_size"] = 4
            kwargs["connect_args"] = {"connect_timeout": 5}
            if access == "read":
                options = str(parsed.query.get("options") or "")
                kwargs["connect_args"]["options"] = (
                    f"{options} -c default_transaction_read_only=on".strip()
                )
        else:
            kwargs["poolclass"] = NullPool
        try:
            self.engine: Engine = create_engine(parsed, **kwargs)
        except (SQLAlchemyError, ImportError) as exc:
            raise StoreError(f"cannot use database {self.url_for_humans}: {exc}") from None
        if self.dialect == "sqlite":
            pragmas = _sqlite_read_pragmas if access == "read" else _sqlite_pragmas
            event.listen(self.engine, "connect", pragmas)

    @classmethod
    def open_existing(cls, url: str, *, writable: bool = False, echo: bool = False) -> Store:
        """Open a database scd-monitor already wrote, for the commands that read it
        (``sla``, ``export sla``, ``incidents``, ``deliveries``, ``directory``,
        ``states``); ``writable`` for those that also write rows (a note, a retry, a
        rebuild). Nothing is created: no file, no directory, no table.

        :class:`NoStoreDataError` when scd-monitor never wrote it (a mistyped SQLite
        path, an empty or non-database file, a PostgreSQL database without its tables);
        :class:`StoreError` when a newer release wrote it or it must be upgraded first
        (see :func:`scd_monitor.store.schema.require_readable`).
        """
        from scd_monitor.store import schema

        store = cls(url, echo=echo, access="read")
        try:
            schema.require_readable(store)
        except BaseException:
            store.dispose()
            raise
        if not writable:
            return store
        store.dispose()
        return cls(url, echo=echo, access="write")

    @contextmanager
    def transaction(self, what: str) -> Iterator[Connection]:
        """One transaction; a driver error becomes one :class:`StoreError` line naming
        ``what`` and the (redacted) URL, a lost unique-key race a :class:`ConflictError`."""
        try:
            with self.engine.begin() as conn:
                yield conn
        except StoreError:
            raise
        except IntegrityError as exc:
            detail = str(getattr(exc, "orig", None) or exc).strip().splitlines()
            raise ConflictError(
                f"{what}: lost a race with another process ({detail[0] if detail else exc})"
            ) from exc
        except SQLAlchemyError as exc:
            detail = str(getattr(exc, "orig", None) or exc).strip().splitlines()
            raise StoreError(
                f"{what} failed on {self.url_for_humans}: {detail[0] if detail else exc}"
            ) from exc

    def create_schema(self) -> UpgradeResult:
        """Bring the database to this release's schema (:func:`scd_monitor.store.schema.
        upgrade`): create it when empty, migrate it when older, refuse it when newer."""
        from scd_monitor.store import schema

        if self.access == "read":
            raise StoreError(f"{self.url_for_humans} is open read-only; cannot change its schema")
        return schema.upgrade(self)

    def ping(self) -> None:
        """Whether the database answers (:class:`StoreError` if not)."""
        with self.transaction("ping") as conn:
            conn.execute(select(literal(1)))

    def dispose(self) -> None:
        self.engine.dispose()


def _sqlite_path(url: URL) -> Path | None:
    """The file of an SQLite URL; None for an in-memory database."""
    database = url.database or ""
    if str(url.query.get("uri", "")).lower() in ("true", "1") and database.startswith("file:"):
        # sqlite:///file:path?mode=...&uri=true
        parts = urlsplit(database)
        if url.query.get("mode") == "memory" or parts.path in ("", ":memory:"):
            return None
        return Path(unquote(parts.path))
    if database in ("", ":memory:"):
        return None
    return Path(database)


def _sqlite_connect(path: Path, *, readonly: bool) -> sqlite3.Connection:
    """Open an existing SQLite file; mode ``ro``/``rw`` never creates one."""
    mode = "ro" if readonly else "rw"
    return sqlite3.connect(
        f"{path.resolve().as_uri()}?mode={mode}", uri=True, check_same_thread=False, timeout=30
    )


def _sqlite_read_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cursor = dbapi_conn.cursor()
    try:
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA query_only=ON")
    finally:
        cursor.close()


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cursor = dbapi_conn.cursor()
    try:
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA foreign_keys=ON")
    finally:
        cursor.close()
