"""``scd-monitor sla freeze | recompute | frozen``: closed months, frozen (issue 14).

The daemon freezes each month once it closed (:class:`~scd_monitor.exports.job.
MonthFreezeJob`); from then on every export of it renders the frozen figures. These
commands are the operator's side of it:

* ``sla freeze --month M`` freezes a closed month now (a month before the daemon ran
  this release, say); refuses a month not closed; does nothing to a frozen one.
* ``sla recompute --month M --reason TEXT`` computes a frozen month again from the store
  and freezes the result as its next revision; the previous revision stays in the
  store's history, and the reason, who (``user@host``) and when are recorded. Refused
  without a reason.
* ``sla frozen [--month M] [--format json]`` lists the frozen months (with ``--month``,
  that month's earlier revisions too). Reads only.

The ``sla`` parser and its options are :mod:`scd_monitor.cli.sla`'s; ``action`` picks
one of these.
"""

from __future__ import annotations

import argparse
import getpass
import json
import socket
from typing import Any

from scd_monitor.catalog import load_catalog
from scd_monitor.catalog.discovered import effective_catalog
from scd_monitor.cli.output import EXIT_OK, table
from scd_monitor.clock import SystemClock
from scd_monitor.config.settings import Settings
from scd_monitor.errors import ConfigError

ACTIONS = ("freeze", "recompute", "frozen")

_ONLY_FOR_REPORTS = {
    "since": "--from",
    "until": "--to",
    "provider": "--provider",
    "service": "--service",
}


def operator() -> str:
    """Who runs the command, as recorded with a recomputation: ``user@host``."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no login name (a container without a passwd entry)
        user = "unknown"
    return f"{user}@{socket.gethostname()}"


def check_arguments(args: argparse.Namespace) -> None:
    """:class:`ConfigError` for options that ``args.action`` does not take or needs."""
    wrong = [flag for dest, flag in _ONLY_FOR_REPORTS.items() if getattr(args, dest, None)]
    if wrong:
        raise ConfigError([f"sla {args.action}: {', '.join(wrong)} not allowed"])
    if args.action in ("freeze", "recompute") and not args.month:
        raise ConfigError([f"sla {args.action}: --month YYYY-MM is required"])
    if args.action == "recompute" and not (args.reason or "").strip():
        raise ConfigError(["sla recompute: --reason is required (it is recorded with the month)"])
    if args.action != "recompute" and args.reason is not None:
        raise ConfigError([f"sla {args.action}: --reason is for recompute only"])


def run(settings: Settings, args: argparse.Namespace) -> int:
    check_arguments(args)
    if args.action == "frozen":
        return _frozen(settings, args)
    return _freeze(settings, args)


def _freeze(settings: Settings, args: argparse.Namespace) -> int:
    from scd_monitor.analysis.reporting import SlaReporter
    from scd_monitor.exports import ExportSource, freeze_month, recompute_month, store_usage
    from scd_monitor.exports.incidents import incidents_of
    from scd_monitor.sla.model import Period
    from scd_monitor.store import DirectoryRepository, FrozenMonthRepository, Store

    declared = load_catalog(settings.catalog)
    clock = SystemClock()
    now = clock.now()
    store = Store.open_existing(settings.database_url.get_secret_value(), writable=True)
    try:
        catalog = effective_catalog(declared, DirectoryRepository(store))
        source = ExportSource(SlaReporter(store, catalog, clock), catalog, usage=store_usage(store))
        months = FrozenMonthRepository(store)

        def incidents(period: Period) -> Any:
            return incidents_of(store, period)

        if args.action == "freeze":
            frozen, froze = freeze_month(
                source, months, month=args.month, now=now, incidents=incidents, by=operator()
            )
            info = frozen.info
            if froze:
                print(f"{info.month}: frozen (revision {info.revision}, sha256 {info.sha256})")
            else:
                print(
                    f"{info.month}: frozen already at {_local(info.frozen_at, info.timezone)} "
                    f"(revision {info.revision}, reason {info.reason!r}); nothing done"
                )
            return EXIT_OK
        previous, new = recompute_month(
            source,
            months,
            month=args.month,
            now=now,
            reason=args.reason,
            by=operator(),
            incidents=incidents,
        )
    finally:
        store.dispose()
    same = previous.report_sha256 == new.info.report_sha256
    print(
        f"{new.month}: recomputed as revision {new.info.revision} by {new.info.frozen_by} "
        f"(reason {new.info.reason!r}); revision {previous.revision} kept in the history"
    )
    print(f"  figures {'unchanged' if same else 'CHANGED'}: report sha256 "
          f"{previous.report_sha256[:12]} -> {new.info.report_sha256[:12]}")  # fmt: skip
    return EXIT_OK


def _frozen(settings: Settings, args: argparse.Namespace) -> int:
    from scd_monitor.store import FrozenMonthRepository, Store
    from scd_monitor.store.months import FrozenMonthInfo

    month: str | None = None
    if args.month:
        from scd_monitor.sla.calendar import parse_month

        try:
            year, number = parse_month(args.month)
        except ValueError as exc:
            raise ConfigError([f"--month: {exc}"]) from None
        month = f"{year:04d}-{number:02d}"
    store = Store.open_existing(settings.database_url.get_secret_value())
    try:
        months = FrozenMonthRepository(store)
        current = [m for m in months.months() if month is None or m.month == month]
        history = months.history(month) if month is not None else []
    finally:
        store.dispose()
    if args.format == "json":
        doc: dict[str, Any] = {"frozen": [m.to_json() for m in current]}
        if month is not None:
            doc["history"] = [m.to_json() for m in history]
        print(json.dumps(doc, indent=2, ensure_ascii=False))
        return EXIT_OK

    def row(m: FrozenMonthInfo, superseded: bool) -> tuple[str, ...]:
        return (
            m.month,
            str(m.revision),
            _local(m.frozen_at, m.timezone),
            m.frozen_by,
            m.reason,
            m.catalog_version or "-",
            m.software_version,
            m.sha256[:12],
            ""
            if not superseded or m.superseded_at is None
            else _local(m.superseded_at, m.timezone),
        )

    if not current and not history:
        print("no frozen month" if month is None else f"{month}: not frozen")
        return EXIT_OK
    header = (
        "MONTH",
        "REV",
        "FROZEN-AT",
        "BY",
        "REASON",
        "CATALOG",
        "SOFTWARE",
        "SHA256",
        "SUPERSEDED",
    )
    rows = [row(m, False) for m in current] + [row(m, True) for m in reversed(history)]
    print("\n".join(table(header, rows)))
    return EXIT_OK


def _local(instant: Any, zone: str) -> str:
    from zoneinfo import ZoneInfo

    try:
        return str(instant.astimezone(ZoneInfo(zone)).isoformat(timespec="seconds"))
    except (KeyError, ValueError):
        return str(instant.isoformat(timespec="seconds"))
