"""``scd-monitor db upgrade | current``: the database schema (Alembic revisions).

``db upgrade`` brings a database to this release's schema (creating it when empty,
adopting one made before migrations), under the same lock the daemon takes at start, so
it is safe beside a starting daemon. ``db current`` only reads: it prints where the
database stands and exits 1 when an upgrade is pending or a newer release wrote it.
"""

from __future__ import annotations

import argparse

from scd_monitor.cli.output import EXIT_CHECK_FAILED, EXIT_OK, error
from scd_monitor.config.settings import Settings

_URL_HELP = "SQLAlchemy URL (default: $SCD_MONITOR_DATABASE_URL, or SQLite under ./data)"


def add_parsers(
    sub: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    db = sub.add_parser("db", help="the database schema: upgrade, current revision")
    actions = db.add_subparsers(dest="action", required=True, metavar="ACTION")
    upgrade = actions.add_parser(
        "upgrade", parents=[common], help="bring the database to this release's schema"
    )
    current = actions.add_parser(
        "current", parents=[common], help="print the database's revision (reads only)"
    )
    for parser in (upgrade, current):
        parser.add_argument("--database-url", help=_URL_HELP)


def _upgrade(settings: Settings) -> int:
    from scd_monitor.store import Store, schema

    store = Store(settings.database_url.get_secret_value())
    try:
        print(schema.upgrade(store).line())
    finally:
        store.dispose()
    return EXIT_OK


def _current(settings: Settings) -> int:
    from scd_monitor.store import Store, schema

    store = Store(settings.database_url.get_secret_value(), access="read")
    try:
        status = schema.status(store)
    finally:
        store.dispose()
    print("\n".join(status.lines()))
    if status.newer:
        error([status.newer_message()])
        return EXIT_CHECK_FAILED
    return EXIT_CHECK_FAILED if status.pending else EXIT_OK


def _command(settings: Settings, args: argparse.Namespace) -> int:
    return _upgrade(settings) if args.action == "upgrade" else _current(settings)


COMMANDS = {"db": _command}
