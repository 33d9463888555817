"""The store's database (:class:`Store`), on SQLite and PostgreSQL alike."""

from __future__ import annotations

import pytest
from sqlalchemy import update

from scd_monitor.errors import StoreError
from scd_monitor.store import Store
from scd_monitor.store.tables import SCHEMA_VERSION, schema_info


def test_schema_creation_is_idempotent(store: Store) -> None:
    store.create_schema()
    store.create_schema()
    store.ping()


def test_a_newer_schema_is_refused(store: Store) -> None:
    with store.engine.begin() as conn:
        conn.execute(update(schema_info).values(version=SCHEMA_VERSION + 1))
    with pytest.raises(StoreError, match="newer"):
        store.create_schema()


def test_unreachable_database_is_a_store_error_without_password(tmp_path: object) -> None:
    s = Store("postgresql+psycopg://scd:hunter2@127.0.0.1:1/nowhere")
    with pytest.raises(StoreError) as info:
        s.ping()
    assert "hunter2" not in str(info.value)
    assert "127.0.0.1:1" in str(info.value)
    s.dispose()


def test_sqlite_runs_in_wal_mode(tmp_path: object) -> None:
    from sqlalchemy import text

    s = Store(f"sqlite:///{tmp_path}/wal.db")
    s.create_schema()
    with s.engine.connect() as conn:
        assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
    s.dispose()
