"""Alembic's environment for scd-monitor's schema.

At run time :mod:`scd_monitor.store.schema` passes the connection to migrate in
``config.attributes["connection"]``, already inside the transaction that holds the
upgrade lock; the migrations run in that transaction and the caller commits. Without a
connection (a developer's ``alembic.command`` call with ``sqlalchemy.url`` set, see
:func:`scd_monitor.store.schema.alembic_config`) this connects to that URL, or writes
SQL in offline mode.
"""

from __future__ import annotations

from typing import Any

from alembic import context
from sqlalchemy import Connection, create_engine
from sqlalchemy.pool import NullPool

from scd_monitor.store.schema import context_options
from scd_monitor.store.tables import metadata


def _migrate(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        **context_options(),
    )
    with context.begin_transaction():
        context.run_migrations()


def _run() -> None:
    config = context.config
    given: Any = config.attributes.get("connection")
    url = config.get_main_option("sqlalchemy.url")
    if context.is_offline_mode():
        if not url:
            raise RuntimeError("offline migrations need sqlalchemy.url (for its dialect)")
        context.configure(
            url=url,
            target_metadata=metadata,
            literal_binds=True,
            **context_options(),
        )
        with context.begin_transaction():
            context.run_migrations()
    elif isinstance(given, Connection):
        _migrate(given)
    else:
        if not url:
            raise RuntimeError("no connection given and no sqlalchemy.url set")
        engine = create_engine(url, poolclass=NullPool)
        try:
            with engine.connect() as connection:
                _migrate(connection)
                connection.commit()
        finally:
            engine.dispose()


_run()
