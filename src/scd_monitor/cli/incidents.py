"""``scd-monitor incidents list|show|note|resolve`` and ``scd-monitor deliveries``.

Thin, like the rest of the CLI: parse, call :class:`IncidentService` or the outbox's
repository, print. :func:`add_parsers` adds both commands to the CLI's sub-parsers;
:func:`run` runs whichever was chosen.
"""

from __future__ import annotations

import argparse
import getpass
import json
import sys
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, TextIO
from zoneinfo import ZoneInfo

from scd_monitor import l10n
from scd_monitor.catalog import load_catalog
from scd_monitor.catalog.incidents import IncidentsConfig
from scd_monitor.clock import Clock, SystemClock
from scd_monitor.config.settings import Settings
from scd_monitor.errors import ConfigError, NotFoundError
from scd_monitor.incidents.service import IncidentService
from scd_monitor.store import Store
from scd_monitor.store.incidents import IncidentRow
from scd_monitor.store.outbox import DeliveryRow
from scd_monitor.timefmt import iso_utc

__all__ = ["COMMANDS", "add_parsers", "run"]


def add_parsers(
    sub: argparse._SubParsersAction[argparse.ArgumentParser],
    common: argparse.ArgumentParser,
) -> None:
    """Add ``incidents`` and ``deliveries`` to the CLI (``common``: the shared options)."""
    incidents = sub.add_parser("incidents", help="list, show, annotate and resolve incidents")
    actions = incidents.add_subparsers(dest="action", required=True, metavar="ACTION")
    listing = actions.add_parser(
        "list", parents=[common], help="open incidents (--all: also resolved ones)"
    )
    listing.add_argument("--all", action="store_true", help="include resolved incidents")
    listing.add_argument("--limit", type=int, default=100)
    listing.add_argument("--format", choices=["table", "json"], default="table")
    show = actions.add_parser(
        "show", parents=[common], help="one incident: events, actions, deliveries, report"
    )
    show.add_argument("id", help="SCD-YYYY-NNNNNN")
    show.add_argument("--format", choices=["text", "json"], default="text")
    note = actions.add_parser(
        "note", parents=[common], help="record an action taken (sends an update report)"
    )
    note.add_argument("id")
    note.add_argument("text", help='what was done, in Spanish: "Se reinició el balanceador …"')
    note.add_argument("--author", help="who did it (default: the login name)")
    resolve = actions.add_parser("resolve", parents=[common], help="resolve an open incident")
    resolve.add_argument("id")
    resolve.add_argument("--note", help="an action taken, recorded with the resolution")
    resolve.add_argument("--author")
    # Options on the actions only: argparse lets a sub-parser's defaults overwrite what the
    # parent parsed, so `incidents --database-url X list` would lose X.
    for parser in actions.choices.values():
        parser.add_argument("--database-url", help="SQLAlchemy URL (default: SQLite under ./data)")

    deliveries = sub.add_parser(
        "deliveries", parents=[common], help="the report outbox: pending, failed, retry"
    )
    which = deliveries.add_mutually_exclusive_group()
    which.add_argument("--pending", action="store_true", help="only pending and in flight")
    which.add_argument("--failed", action="store_true", help="only failed (permanently)")
    which.add_argument("--retry", type=int, metavar="ID", help="re-queue delivery ID now")
    deliveries.add_argument("--limit", type=int, default=200)
    deliveries.add_argument("--format", choices=["table", "json"], default="table")
    deliveries.add_argument("--database-url", help="SQLAlchemy URL (default: SQLite under ./data)")


def run(
    args: argparse.Namespace,
    *,
    database_url: str,
    config: IncidentsConfig | None,
    timezone: str,
    clock: Clock | None = None,
    out: TextIO | None = None,
) -> int:
    """Run ``incidents …`` or ``deliveries …``; 0 fine, 1 nothing done (not found,
    not open, not retryable)."""
    out = out or sys.stdout
    clock = clock or SystemClock()
    writes = (
        args.action in ("note", "resolve")
        if args.command == "incidents"
        else bool(args.retry is not None)
    )
    store = Store.open_existing(database_url, writable=writes)
    try:
        service = IncidentService(
            store, config or IncidentsConfig(), clock=clock, timezone=timezone
        )
        if args.command == "deliveries":
            return _deliveries(service, args, out, clock)
        return _incidents(service, args, out, ZoneInfo(timezone))
    except NotFoundError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except ValueError as exc:
        raise ConfigError([str(exc)]) from None
    finally:
        store.dispose()


def _incidents(
    service: IncidentService, args: argparse.Namespace, out: TextIO, tz: ZoneInfo
) -> int:
    action = args.action
    if action == "list":
        rows = service.list(open_only=not args.all, limit=args.limit)
        if args.format == "json":
            json.dump([_incident_json(r) for r in rows], out, ensure_ascii=False, indent=2)
            out.write("\n")
        else:
            _print_table(
                out,
                ["id", "status", "severity", "type", "provider/service", "start", "duration"],
                [
                    [
                        r.code,
                        r.status,
                        r.severity.value,
                        r.type.value,
                        f"{r.provider}/{r.service}",
                        _local(r.started_at, tz),
                        l10n.duration((r.ended_at or datetime.now(UTC)) - r.started_at),
                    ]
                    for r in rows
                ],
            )
            if not rows:
                out.write("no open incidents\n" if not args.all else "no incidents\n")
        return 0
    if action == "show":
        detail = service.show(args.id)
        if args.format == "json":
            body = {
                **_incident_json(detail.incident),
                "events": [
                    {
                        "seq": e.seq,
                        "kind": e.kind,
                        "reason": e.reason,
                        "at": iso_utc(e.at),
                        "severity": e.severity.value,
                        "reported": notify,
                    }
                    for e, notify, _ in detail.events
                ],
                "actions": [
                    {"at": iso_utc(n.at), "author": n.author, "text": n.text} for n in detail.notes
                ],
                "deliveries": [_delivery_json(d) for d in detail.deliveries],
            }
            json.dump(body, out, ensure_ascii=False, indent=2)
            out.write("\n")
            return 0
        inc = detail.incident
        out.write(f"{inc.code}  {inc.status}  {inc.severity.value}  {inc.type.value}\n")
        out.write(f"  {inc.provider}/{inc.service}   start {_local(inc.started_at, tz)}")
        out.write(f"   detected {_local(inc.detected_at, tz)}")
        if inc.ended_at is not None:
            out.write(f"   end {_local(inc.ended_at, tz)}")
        out.write("\n\nevents\n")
        for e, notify, _ in detail.events:
            mark = "reported" if notify else "recorded"
            out.write(f"  {e.seq:>3}  {_local(e.at, tz)}  {e.kind:<8} {e.reason:<14} {mark}\n")
        out.write("\nactions taken\n")
        for n in detail.notes:
            who = f" ({n.author})" if n.author else ""
            out.write(f"  {_local(n.at, tz)}{who}: {n.text}\n")
        if not detail.notes:
            out.write("  none\n")
        out.write("\ndeliveries\n")
        _print_deliveries(out, detail.deliveries, tz, indent="  ")
        if detail.last_report_text:
            out.write("\nlast report\n\n")
            out.write(detail.last_report_text)
        return 0
    if action == "note":
        author = args.author or _login()
        event = service.note(args.id, args.text, author=author)
        out.write(
            f"{event.incident}: action recorded; update report {event.incident}.{event.seq} "
            f"queued for {event.deliveries} sink(s)\n"
        )
        return 0
    if action == "resolve":
        author = args.author or _login()
        event = service.resolve(args.id, author=author, text=args.note)
        out.write(
            f"{event.incident}: resolved; resolution report {event.incident}.{event.seq} "
            f"queued for {event.deliveries} sink(s)\n"
        )
        return 0
    raise AssertionError(action)


def _deliveries(
    service: IncidentService, args: argparse.Namespace, out: TextIO, clock: Clock
) -> int:
    repo = service.outbox
    if args.retry is not None:
        if repo.retry(args.retry, clock.now()):
            out.write(f"delivery {args.retry} re-queued\n")
            return 0
        print(
            f"error: delivery {args.retry} is delivered or in flight", file=__import__("sys").stderr
        )
        return 1
    statuses: list[str] | None = None
    if args.pending:
        statuses = ["pending", "in_flight"]
    elif args.failed:
        statuses = ["failed"]
    rows = repo.deliveries(statuses=statuses, limit=args.limit)
    if args.format == "json":
        json.dump([_delivery_json(d) for d in rows], out, ensure_ascii=False, indent=2)
        out.write("\n")
        return 0
    _print_deliveries(out, rows, ZoneInfo("UTC"), indent="")
    stats = repo.stats(clock.now())
    age = stats.oldest_pending_age_seconds
    out.write(
        f"\nbacklog {stats.backlog}"
        + (f", oldest {l10n.duration(timedelta(seconds=age))}" if age is not None else "")
        + "\n"
    )
    return 0


def _print_deliveries(
    out: TextIO, rows: Sequence[DeliveryRow], tz: ZoneInfo, *, indent: str
) -> None:
    if not rows:
        out.write(f"{indent}none\n")
        return
    _print_table(
        out,
        ["id", "report", "sink", "audience", "status", "attempts", "next/delivered", "last error"],
        [
            [
                str(d.id),
                d.report_id,
                d.sink,
                d.audience,
                d.status,
                str(d.attempts),
                _local(d.delivered_at, tz)
                if d.delivered_at
                else ("—" if d.status == "failed" else _local(d.next_attempt_at, tz)),
                (d.last_error or "")[:80],
            ]
            for d in rows
        ],
        indent=indent,
    )


def _print_table(
    out: TextIO, header: Sequence[str], rows: Sequence[Sequence[str]], *, indent: str = ""
) -> None:
    if not rows:
        return
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(header)]
    for line in [header, *rows]:
        out.write(
            indent
            + "  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip()
            + "\n"
        )


def _local(value: datetime | None, tz: ZoneInfo) -> str:
    return "—" if value is None else value.astimezone(tz).strftime("%Y-%m-%d %H:%M:%S%z")


def _login() -> str | None:
    try:
        return getpass.getuser()
    except (OSError, KeyError):
        return None


def _incident_json(r: IncidentRow) -> dict[str, Any]:
    return {
        "id": r.code,
        "provider": r.provider,
        "service": r.service,
        "status": r.status,
        "type": r.type.value,
        "severity": r.severity.value,
        "types": [k.value for k in r.kinds],
        "start": iso_utc(r.started_at),
        "detected": iso_utc(r.detected_at),
        "end": iso_utc(r.ended_at) if r.ended_at else None,
        "resolved": iso_utc(r.resolved_at) if r.resolved_at else None,
    }


def _delivery_json(d: DeliveryRow) -> dict[str, Any]:
    return {
        "id": d.id,
        "report": d.report_id,
        "event": d.event,
        "sink": d.sink,
        "audience": d.audience,
        "recipient": d.recipient,
        "idempotency_key": d.idempotency_key,
        "status": d.status,
        "attempts": d.attempts,
        "next_attempt_at": iso_utc(d.next_attempt_at),
        "last_error": d.last_error,
        "last_attempt_at": iso_utc(d.last_attempt_at) if d.last_attempt_at else None,
        "delivered_at": iso_utc(d.delivered_at) if d.delivered_at else None,
        "created_at": iso_utc(d.created_at),
    }


def _command(settings: Settings, args: argparse.Namespace) -> int:
    catalog = load_catalog(settings.catalog)
    return run(
        args,
        database_url=settings.database_url.get_secret_value(),
        config=catalog.incidents,
        timezone=catalog.timezone,
    )


COMMANDS = {"incidents": _command, "deliveries": _command}
