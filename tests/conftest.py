"""Shared fixtures: stores over SQLite and PostgreSQL, result factories."""

from __future__ import annotations

import logging
import os
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
import structlog
from sqlalchemy import create_engine, text

from scd_monitor.store import Store

POSTGRES_URL = os.environ.get(
    "SCD_MONITOR_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
REQUIRE_POSTGRES = os.environ.get("SCD_MONITOR_REQUIRE_POSTGRES") == "1"


def _postgres_available() -> str | None:
    try:
        engine = create_engine(POSTGRES_URL, connect_args={"connect_timeout": 3})
        with engine.connect() as conn:
            conn.execute(text("select 1"))
        engine.dispose()
    except Exception as exc:
        return str(exc).splitlines()[0]
    return None


@pytest.fixture(autouse=True)
def _logging_is_per_test(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No test leaves its logging behind for the next one.

    The daemon configures structlog once with ``cache_logger_on_first_use``: in a long
    process that is right, but in a test session a module-level logger cached by one test
    (a CLI run in-process) would ignore every later ``capture_logs`` and write to a stream
    pytest has closed. Here caching is off and the root logger is restored after each test.
    """
    configure = structlog.configure

    def without_cache(**kwargs: Any) -> None:
        kwargs["cache_logger_on_first_use"] = False
        configure(**kwargs)

    monkeypatch.setattr(structlog, "configure", without_cache)
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    structlog.reset_defaults()
    root.handlers[:] = handlers
    root.setLevel(level)


@pytest.fixture(scope="session")
def postgres_url() -> str:
    """The test PostgreSQL server; skipped locally when absent, a failure in CI."""
    problem = _postgres_available()
    if problem is not None:
        if REQUIRE_POSTGRES:
            pytest.fail(f"PostgreSQL required but unavailable at {POSTGRES_URL}: {problem}")
        pytest.skip(f"PostgreSQL unavailable: {problem}")
    return POSTGRES_URL


@pytest.fixture
def postgres_schema_url(postgres_url: str) -> Iterator[str]:
    """A URL whose connections use a fresh, private schema (dropped afterwards)."""
    schema = f"t_{uuid.uuid4().hex[:12]}"
    engine = create_engine(postgres_url)
    with engine.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    sep = "&" if "?" in postgres_url else "?"
    yield f"{postgres_url}{sep}options=-csearch_path%3D{schema}"
    with engine.begin() as conn:
        conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: object) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/store.db"
    return str(request.getfixturevalue("postgres_schema_url"))


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    s = Store(store_url)
    s.create_schema()
    yield s
    s.dispose()


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]
