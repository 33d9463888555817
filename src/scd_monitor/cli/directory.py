"""``scd-monitor directory``: the discovered X-Road directories and their changes."""

from __future__ import annotations

import argparse
import json
from datetime import UTC, datetime
from typing import Any

from scd_monitor.catalog import load_catalog
from scd_monitor.cli.output import EXIT_OK, table
from scd_monitor.config.settings import Settings
from scd_monitor.errors import ConfigError


def add_parsers(
    sub: argparse._SubParsersAction[argparse.ArgumentParser],
    common: argparse.ArgumentParser,
) -> None:
    directory = sub.add_parser(
        "directory",
        parents=[common],
        help="the discovered X-Road directories (last good, per source) or their changes",
    )
    directory.add_argument(
        "--changes", action="store_true", help="list the stored directory events instead"
    )
    directory.add_argument(
        "--since", help="with --changes: from this time (ISO-8601, local if no offset) or ago (1h)"
    )
    directory.add_argument("--until", help="with --changes: up to this time (exclusive)")
    directory.add_argument("--source", help="only this xroad source")
    directory.add_argument("--format", choices=["table", "json"], default="table")
    directory.add_argument("--database-url", help="SQLAlchemy URL (default: SQLite under ./data)")


def parse_since(text: str, tz: Any, now: datetime, flag: str) -> datetime:
    """An ISO-8601 instant (in ``tz`` without an offset) or a duration ago (``1h``, ``7d``)."""
    from scd_monitor.config.durations import parse_duration

    try:
        return now - parse_duration(text)
    except ValueError:
        pass
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise ConfigError(
            [f"{flag}: expected an ISO-8601 time or a duration such as '1h', got {text!r}"]
        ) from None
    return (value.replace(tzinfo=tz) if value.tzinfo is None else value).astimezone(UTC)


def _directory(settings: Settings, args: argparse.Namespace) -> int:
    from scd_monitor.store import DirectoryRepository, Store

    if not args.changes and (args.since or args.until):
        raise ConfigError(["--since and --until go with --changes"])
    store = Store.open_existing(settings.database_url.get_secret_value())
    try:
        if args.changes:
            catalog = load_catalog(settings.catalog)
            now = datetime.now(UTC)
            since = parse_since(args.since, catalog.tz, now, "--since") if args.since else None
            until = parse_since(args.until, catalog.tz, now, "--until") if args.until else None
            events = DirectoryRepository(store).events(source=args.source, since=since, until=until)
        else:
            stored = DirectoryRepository(store).latest()
    finally:
        store.dispose()
    if args.changes:
        if args.format == "json":
            print(json.dumps([e.to_json() for e in events], indent=2, ensure_ascii=False))
            return EXIT_OK
        rows = [
            (
                e.at.isoformat(timespec="seconds"),
                e.source,
                e.kind,
                e.change,
                e.subject,
                _event_summary(e.details),
            )
            for e in events
        ]
        lines = table(("AT (UTC)", "SOURCE", "KIND", "CHANGE", "SUBJECT", "DETAILS"), rows)
        print("\n".join(lines) if rows else "no directory events")
        return EXIT_OK
    chosen = {k: v for k, v in sorted(stored.items()) if args.source in (None, k)}
    if args.format == "json":
        print(
            json.dumps(
                [directory_json(v.directory, v.last_success_at) for v in chosen.values()],
                indent=2,
                ensure_ascii=False,
            )
        )
        return EXIT_OK
    if not chosen:
        print("no directory stored yet (the daemon stores one per xroad source once read)")
        return EXIT_OK
    for ident, item in chosen.items():
        print("\n".join(render_directory(ident, item.directory, item.last_success_at)))
    return EXIT_OK


def _event_summary(details: Any) -> str:
    """A short line for the table: the error, what changed, or the plain values."""
    if not details:
        return ""
    if "error" in details:
        return str(details["error"])[:80]
    before, after = details.get("before"), details.get("after")
    if isinstance(before, dict) and isinstance(after, dict):
        changed = [
            f"{k}: {_short(before.get(k))} → {_short(after.get(k))}"
            for k in sorted(set(before) | set(after))
            if before.get(k) != after.get(k)
        ]
        return "; ".join(changed)[:80]
    shown = before if isinstance(before, dict) else after if isinstance(after, dict) else details
    return " ".join(f"{k}={_short(v)}" for k, v in shown.items())[:80]


def _short(value: Any) -> str:
    if isinstance(value, list):
        return f"[{len(value)}]"
    return str(value)


def directory_json(directory: Any, last_success_at: datetime) -> dict[str, Any]:
    """A stored directory as ``scd-monitor directory --format json`` shows it."""
    from scd_monitor.xroad.directory import service_provider

    services_of: dict[str, list[dict[str, Any]]] = {}
    for key, attrs in directory.services.items():
        services_of.setdefault(service_provider(key), []).append({"id": key, **attrs})
    subsystems_of: dict[str, list[dict[str, Any]]] = {}
    for key, attrs in directory.subsystems.items():
        subsystems_of.setdefault(key.rsplit("/", 1)[0], []).append(
            {"id": key, **attrs, "services": services_of.get(key, [])}
        )
    expires = directory.globalconf_expires_at
    return {
        "source": directory.source,
        "instance": directory.instance,
        "fetched_at": directory.fetched_at.isoformat(),
        "last_success_at": last_success_at.isoformat(),
        "globalconf_expires_at": expires.isoformat() if expires else None,
        "counts": directory.counts(),
        "partial": list(directory.partial),
        "members": [
            {"id": key, **attrs, "subsystems": subsystems_of.get(key, [])}
            for key, attrs in directory.members.items()
        ],
        "security_servers": [
            {"id": key, **attrs} for key, attrs in directory.security_servers.items()
        ],
    }


def render_directory(ident: str, directory: Any, last_success_at: datetime) -> list[str]:
    """The human listing of one source's directory."""
    counts = directory.counts()
    expires = directory.globalconf_expires_at
    lines = [
        f"source {ident}: instance {directory.instance}, read {directory.fetched_at.isoformat()} "
        f"(last success {last_success_at.isoformat()})",
        "  "
        + ", ".join(f"{n} {name.replace('_', ' ')}" for name, n in counts.items())
        + (f"; global configuration expires {expires.isoformat()}" if expires else ""),
        "",
    ]
    data = directory_json(directory, last_success_at)
    rows: list[tuple[str, str, str]] = []
    for member in data["members"]:
        rows.append(("member", member["id"], member.get("name") or ""))
        for sub in member["subsystems"]:
            rows.append(("  subsystem", sub["id"], sub.get("name") or ""))
            for service in sub["services"]:
                what = f"{service.get('protocol')} {service.get('type') or ''}".strip()
                rows.append(("    service", service["id"], what))
    for server in data["security_servers"]:
        rows.append(("security server", server["id"], server.get("address") or ""))
    lines += table(("KIND", "ID", "NAME / TYPE"), rows)
    lines.append("")
    return lines


COMMANDS = {"directory": _directory}
