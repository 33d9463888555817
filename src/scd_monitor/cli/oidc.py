"""``scd-monitor oidc``: the signing keys of the OIDC providers and their rotations."""

from __future__ import annotations

import argparse
import json
from datetime import UTC, datetime

from scd_monitor.catalog import load_catalog
from scd_monitor.cli.directory import parse_since
from scd_monitor.cli.output import EXIT_OK, table
from scd_monitor.config.settings import Settings
from scd_monitor.errors import ConfigError


def add_parsers(
    sub: argparse._SubParsersAction[argparse.ArgumentParser],
    common: argparse.ArgumentParser,
) -> None:
    keys = sub.add_parser(
        "oidc-keys",
        parents=[common],
        help="the key ids each OIDC provider's JWKS last listed, or their changes (rotations)",
    )
    keys.add_argument("--changes", action="store_true", help="list the stored key events instead")
    keys.add_argument(
        "--since", help="with --changes: from this time (ISO-8601, local if no offset) or ago (1h)"
    )
    keys.add_argument("--until", help="with --changes: up to this time (exclusive)")
    keys.add_argument("--check", help="only this check (provider/service/check)")
    keys.add_argument("--format", choices=["table", "json"], default="table")
    keys.add_argument("--database-url", help="SQLAlchemy URL (default: SQLite under ./data)")


def _oidc_keys(settings: Settings, args: argparse.Namespace) -> int:
    from scd_monitor.store import Store
    from scd_monitor.store.oidckeys import OidcKeyRepository

    if not args.changes and (args.since or args.until):
        raise ConfigError(["--since and --until go with --changes"])
    store = Store.open_existing(settings.database_url.get_secret_value())
    try:
        repo = OidcKeyRepository(store)
        if args.changes:
            catalog = load_catalog(settings.catalog)
            now = datetime.now(UTC)
            since = parse_since(args.since, catalog.tz, now, "--since") if args.since else None
            until = parse_since(args.until, catalog.tz, now, "--until") if args.until else None
            events = repo.events(since=since, until=until, check=args.check)
        else:
            current = repo.current()
    finally:
        store.dispose()
    if args.changes:
        if args.format == "json":
            document = [
                {
                    "at": e.at.isoformat(),
                    "check": e.check_id,
                    "vantage": e.vantage,
                    "change": e.change,
                    "kid": e.kid,
                    "early": e.early,
                    "details": dict(e.details),
                }
                for e in events
            ]
            print(json.dumps(document, indent=2, ensure_ascii=False))
            return EXIT_OK
        rows = [
            (
                e.at.isoformat(timespec="seconds"),
                e.check_id,
                e.vantage,
                e.change,
                e.kid,
                "early: a token it signed was still valid" if e.early else "",
            )
            for e in events
        ]
        lines = table(("AT (UTC)", "CHECK", "VANTAGE", "CHANGE", "KID", "NOTE"), rows)
        print("\n".join(lines) if rows else "no key events")
        return EXIT_OK
    chosen = {k: v for k, v in sorted(current.items()) if args.check in (None, k[0])}
    if args.format == "json":
        document = [
            {
                "check": check,
                "vantage": vantage,
                "kids": list(state.kids),
                "seen_at": state.seen_at.isoformat(),
                "token_kid": state.token_kid,
                "token_valid_until": state.token_valid_until.isoformat()
                if state.token_valid_until
                else None,
            }
            for (check, vantage), state in chosen.items()
        ]
        print(json.dumps(document, indent=2, ensure_ascii=False))
        return EXIT_OK
    if not chosen:
        print("no keys stored yet (the daemon stores them once an oidc check has run)")
        return EXIT_OK
    current_rows = [
        (
            check,
            vantage,
            " ".join(state.kids) or "(none)",
            state.token_kid or "",
            state.seen_at.isoformat(timespec="seconds"),
        )
        for (check, vantage), state in chosen.items()
    ]
    header = ("CHECK", "VANTAGE", "KIDS", "TOKEN KID", "SEEN (UTC)")
    print("\n".join(table(header, current_rows)))
    return EXIT_OK


COMMANDS = {"oidc-keys": _oidc_keys}
