"""The command line: parse, call, print. No logic of its own.

``scd-monitor run | validate | check | sla | states | directory | simulate``; exit codes:
0 fine, 1 a check failed (``check``), 2 bad configuration or usage.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import structlog

from scd_monitor import __version__
from scd_monitor.catalog import Catalog, ResolvedCheck, load_catalog
from scd_monitor.catalog.discovered import effective_catalog
from scd_monitor.clock import SystemClock
from scd_monitor.errors import ConfigError, StoreError
from scd_monitor.incidents import commands as incident_commands
from scd_monitor.logs import configure_logging
from scd_monitor.settings import Settings, load_settings
from scd_monitor.sla.model import Period

EXIT_OK = 0
EXIT_CHECK_FAILED = 1
EXIT_CONFIG = 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="scd-monitor",
        description="Probe the Servicios Ciudadanos Digitales and measure their SLA (ANS).",
    )
    parser.add_argument("--version", action="version", version=f"scd-monitor {__version__}")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--catalog", type=Path, help="catalog YAML (default: $SCD_MONITOR_CATALOG)")
    common.add_argument("--settings", type=Path, help="settings YAML file")
    common.add_argument("--log-format", choices=["auto", "json", "console"])
    common.add_argument("--log-level", choices=["debug", "info", "warning", "error"])
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = sub.add_parser("run", parents=[common], help="run the daemon")
    run.add_argument("--listen", help="host:port of /metrics, /healthz, /readyz")
    run.add_argument("--database-url", help="SQLAlchemy URL (default: SQLite under ./data)")
    run.add_argument("--vantage", help="name of this probing location")

    validate = sub.add_parser("validate", parents=[common], help="validate a catalog file")
    validate.add_argument("path", nargs="?", type=Path, help="catalog file (default: --catalog)")

    check = sub.add_parser(
        "check", parents=[common], help="probe once and print a table; exit 1 if any fails"
    )
    check.add_argument(
        "ids", nargs="*", help="check ids or prefixes (provider, provider/service, …)"
    )
    check.add_argument("--format", choices=["table", "json"], default="table")

    sla = sub.add_parser(
        "sla", parents=[common], help="availability and SLA figures per service and provider"
    )
    when = sla.add_mutually_exclusive_group(required=True)
    when.add_argument("--month", help="calendar month YYYY-MM in the catalog's time zone")
    when.add_argument("--from", dest="since", help="period start (ISO-8601; local if no offset)")
    sla.add_argument("--to", dest="until", help="period end (with --from; default: now)")
    sla.add_argument("--provider")
    sla.add_argument("--service")
    sla.add_argument("--format", choices=["table", "json"], default="table")
    sla.add_argument("--database-url", help="SQLAlchemy URL (default: SQLite under ./data)")

    export = sub.add_parser(
        "export", parents=[common], help="write the monthly ANS compliance export"
    )
    export.add_argument("what", choices=["sla"])
    export.add_argument("--month", required=True, help="YYYY-MM in the catalog's time zone")
    export.add_argument("--provider")
    export.add_argument(
        "--format",
        action="append",
        choices=["csv", "xlsx", "pdf", "json"],
        help="repeatable; default: all four",
    )
    export.add_argument("--output", type=Path, help="directory (default: the export_dir setting)")
    export.add_argument("--database-url", help="SQLAlchemy URL (default: SQLite under ./data)")

    states = sub.add_parser(
        "states",
        parents=[common],
        help="maintain derived state spans (run with the daemon stopped)",
    )
    states.add_argument("action", choices=["rebuild"])
    states.add_argument("--vantage", help="vantage whose spans to rebuild (default: setting)")
    states.add_argument("--database-url", help="SQLAlchemy URL (default: SQLite under ./data)")

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

    incident_commands.add_parsers(sub, common)

    sim = sub.add_parser("simulate", parents=[common], help="serve fake SCD providers on 127.0.0.1")
    sim.add_argument("scenario", nargs="?", type=Path, help="scenario YAML")
    sim.add_argument("--workdir", type=Path, default=Path("data/simulator"))
    sim.add_argument("--catalog-out", type=Path, help="write a catalog that probes the fleet")
    sim.add_argument("--host", default="127.0.0.1")
    sim.add_argument("--port", type=int, default=0, help="port of the plain-HTTP listener")
    sim.add_argument("--fleet", type=int, default=0, help="add N healthy synthetic endpoints")
    sim.add_argument(
        "--xroad",
        metavar="N×M",
        help="also serve a fake X-Road (security server, health check, configuration source) "
        "with N subsystems of M services each, e.g. 20x5",
    )
    return parser


def _settings(args: argparse.Namespace) -> Settings:
    overrides: dict[str, Any] = {
        "settings_file": getattr(args, "settings", None),
        "catalog": getattr(args, "catalog", None),
        "log_format": getattr(args, "log_format", None),
        "log_level": getattr(args, "log_level", None),
        "listen": getattr(args, "listen", None),
        "database_url": getattr(args, "database_url", None),
        "vantage": getattr(args, "vantage", None),
    }
    return load_settings(**overrides)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        settings = _settings(args)
    except ConfigError as exc:
        _error(exc.problems)
        return EXIT_CONFIG
    configure_logging(settings.log_format, settings.log_level)
    command = args.command
    try:
        if command == "validate":
            return _validate(args.path or settings.catalog)
        if command == "check":
            return _check(settings, args.ids, args.format)
        if command == "simulate":
            return _simulate(args)
        if command == "sla":
            return _sla(settings, args)
        if command == "export":
            return _export(settings, args)
        if command == "states":
            return _states(settings)
        if command == "directory":
            return _directory(settings, args)
        if command in incident_commands.COMMANDS:
            catalog = load_catalog(settings.catalog)
            return incident_commands.run(
                args,
                database_url=settings.database_url.get_secret_value(),
                config=catalog.incidents,
                timezone=catalog.timezone,
            )
        return _run(settings)
    except ConfigError as exc:
        _error(exc.problems)
        return EXIT_CONFIG
    except StoreError as exc:
        _error([f"store: {exc}"])
        return EXIT_CONFIG
    except KeyboardInterrupt:
        return 130


def _error(lines: Sequence[str]) -> None:
    for line in lines:
        print(f"error: {line}", file=sys.stderr)


def _validate(path: Path) -> int:
    catalog = load_catalog(path)
    checks = catalog.resolved_checks(include_disabled=True)
    services = sum(len(p.services) for p in catalog.providers)
    sources = ""
    if catalog.xroad:
        enabled = sum(1 for x in catalog.xroad if x.enabled)
        sources = f", {len(catalog.xroad)} xroad sources ({enabled} enabled)"
    print(
        f"{path}: OK: {len(catalog.providers)} providers, {services} services, "
        f"{len(checks)} checks{sources} (time zone {catalog.timezone})"
    )
    return EXIT_OK


def _run(settings: Settings) -> int:
    from scd_monitor.daemon import build

    daemon = build(settings)
    return asyncio.run(daemon.run())


def select_checks(catalog: Catalog, ids: Sequence[str]) -> list[ResolvedCheck]:
    """Checks whose id equals or starts with ``id/`` for any of ``ids`` (all if none)."""
    checks = catalog.resolved_checks()
    if not ids:
        return checks
    chosen = [c for c in checks if any(c.id == i or c.id.startswith(i + "/") for i in ids)]
    unknown = [i for i in ids if not any(c.id == i or c.id.startswith(i + "/") for c in checks)]
    if unknown:
        raise ConfigError([f"no check matches {i!r}" for i in unknown])
    return chosen


def _check(settings: Settings, ids: Sequence[str], fmt: str) -> int:
    from scd_monitor.probes import build_probes
    from scd_monitor.scheduling import run_probe

    catalog = effective_catalog(load_catalog(settings.catalog), None)
    checks = select_checks(catalog, ids)
    probes = build_probes()
    clock = SystemClock()
    semaphore = asyncio.Semaphore(settings.max_concurrency)

    async def one(check: ResolvedCheck) -> Any:
        async with semaphore:
            return await run_probe(probes[check.kind], check, vantage=settings.vantage, clock=clock)

    async def all_checks() -> list[Any]:
        return await asyncio.gather(*(one(c) for c in checks))

    results = asyncio.run(all_checks())
    if fmt == "json":
        import json

        print(
            json.dumps(
                [
                    {
                        "check": r.check_id,
                        "ok": r.ok,
                        "error_kind": r.error_kind.value if r.error_kind else None,
                        "status": r.outcome.status_code,
                        "duration_s": round(r.duration, 4),
                        "message": r.outcome.message,
                    }
                    for r in results
                ],
                indent=2,
            )
        )
    else:
        rows = [
            (
                r.check_id,
                "UP" if r.ok else "FAIL",
                r.error_kind.value if r.error_kind else "",
                str(r.outcome.status_code or ""),
                f"{r.duration * 1000:.0f}ms",
                (r.outcome.message or "")[:80],
            )
            for r in results
        ]
        header = ("CHECK", "RESULT", "ERROR", "STATUS", "TIME", "MESSAGE")
        widths = [max(len(str(x)) for x in col) for col in zip(header, *rows, strict=False)]
        for row in (header, *rows):
            print("  ".join(str(v).ljust(w) for v, w in zip(row, widths, strict=True)).rstrip())
    failed = sum(1 for r in results if not r.ok)
    structlog.get_logger("scd_monitor.cli").debug("check.done", total=len(results), failed=failed)
    return EXIT_CHECK_FAILED if failed else EXIT_OK


def _period(args: argparse.Namespace, catalog: Catalog, now: datetime) -> Period:
    from scd_monitor.sla.calendar import month_period, parse_month

    tz = catalog.tz
    if args.month:
        try:
            year, month = parse_month(args.month)
        except ValueError as exc:
            raise ConfigError([f"--month: {exc}"]) from None
        return month_period(year, month, tz)

    def instant(text: str, flag: str) -> datetime:
        try:
            value = datetime.fromisoformat(text)
        except ValueError:
            raise ConfigError(
                [f"{flag}: expected an ISO-8601 date or time, got {text!r}"]
            ) from None
        return value.replace(tzinfo=tz) if value.tzinfo is None else value

    start = instant(args.since, "--from")
    end = instant(args.until, "--to") if args.until else now
    if end <= start:
        raise ConfigError(["--to must be after --from"])
    return Period(start.astimezone(UTC), end.astimezone(UTC))


def _sla(settings: Settings, args: argparse.Namespace) -> int:
    from scd_monitor.reporting import SlaReporter
    from scd_monitor.store import Store

    catalog = load_catalog(settings.catalog)
    clock = SystemClock()
    now = clock.now()
    period = _period(args, catalog, now)
    store = Store(settings.database_url.get_secret_value())
    try:
        catalog = effective_catalog(catalog, store)
        if args.provider and not any(p.id == args.provider for p in catalog.providers):
            raise ConfigError([f"--provider: no provider {args.provider!r} in the catalog"])
        report = SlaReporter(store, catalog, clock).report(
            period, provider=args.provider, service=args.service, now=now
        )
    finally:
        store.dispose()
    if args.format == "json":
        import json

        print(json.dumps(report.to_json(), indent=2, ensure_ascii=False))
        return EXIT_OK
    print(render_sla_table(report))
    return EXIT_OK


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.3f}%"


def _dur(value: timedelta | None) -> str:
    if value is None:
        return "-"
    seconds = int(value.total_seconds())
    hours, rest = divmod(seconds, 3600)
    return f"{hours}h{rest // 60:02d}m{rest % 60:02d}s"


def render_sla_table(report: Any) -> str:
    """The human table of ``scd-monitor sla``."""
    tz = report.timezone
    lines = [
        f"SLA {report.period.start.isoformat()} .. {report.period.end.isoformat()} "
        f"(time zone {tz}, as of {report.now.isoformat(timespec='seconds')})",
        "",
    ]
    header = (
        "SERVICE", "AVAIL", "TARGET", "MET", "DOWNTIME", "MAINT", "UNKNOWN", "COVERAGE",
        "OUTAGES", "MTTR", "LAT-OK", "P95", "BUDGET", "BURN-1H",
    )  # fmt: skip
    rows = []
    for s in report.services:
        f = s.figures
        burn = next((b.rate for b in f.burn_rates if b.window == timedelta(hours=1)), None)
        rows.append(
            (
                f"{s.provider}/{s.service}",
                _pct(f.availability),
                _pct(f.target),
                "-" if f.met is None else ("yes" if f.met else "NO"),
                _dur(f.charged_downtime),
                _dur(f.excluded_maintenance),
                _dur(f.unknown),
                _pct(f.coverage),
                str(f.outage_count),
                _dur(f.mttr),
                _pct(f.latency_compliance),
                "-" if f.latency_p95 is None else f"{f.latency_p95:g}s",
                "-" if f.error_budget is None else _pct(f.error_budget.remaining_ratio),
                "-" if burn is None else f"{burn:.2f}",
            )
        )
    lines += _table(header, rows)
    lines += ["", "per provider:"]
    prows = [
        (
            p.provider,
            _pct(p.figures.availability),
            _dur(p.figures.charged_downtime),
            _pct(p.figures.coverage),
            str(p.figures.outage_count),
            f"{p.figures.met} met / {p.figures.missed} missed",
        )
        for p in report.providers
    ]
    lines += _table(("PROVIDER", "AVAIL", "DOWNTIME", "COVERAGE", "OUTAGES", "SERVICES"), prows)
    return "\n".join(lines)


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows, strict=False)]
    return [
        "  ".join(str(v).ljust(w) for v, w in zip(row, widths, strict=True)).rstrip()
        for row in (header, *rows)
    ]


def _export(settings: Settings, args: argparse.Namespace) -> int:
    from scd_monitor.exports import FORMATS, ExportError, ExportSource, export_month
    from scd_monitor.exports.incidents import incidents_of
    from scd_monitor.reporting import SlaReporter
    from scd_monitor.sla.calendar import month_period, parse_month
    from scd_monitor.store import Store

    output = args.output or settings.export_dir
    if output is None or not str(output):
        raise ConfigError(["--output: no export directory (set SCD_MONITOR_EXPORT_DIR)"])
    clock = SystemClock()
    store = Store(settings.database_url.get_secret_value())
    try:
        catalog = effective_catalog(load_catalog(settings.catalog), store)
        store.create_schema()
        try:
            year, month = parse_month(args.month)
        except ValueError as exc:
            raise ConfigError([f"--month: {exc}"]) from None
        result = export_month(
            ExportSource(SlaReporter(store, catalog, clock), catalog),
            month=args.month,
            formats=args.format or FORMATS,
            output_dir=output,
            provider=args.provider,
            now=clock.now(),
            incidents=incidents_of(store, month_period(year, month, catalog.tz)),
        )
    except ExportError as exc:
        _error([f"export: {exc}"])
        return EXIT_CONFIG
    finally:
        store.dispose()
    status = "PROVISIONAL (the month has not closed)" if result.provisional else "final"
    print(f"{result.directory}: {status}")
    for f in result.files:
        print(f"  {f.name}  {f.size} bytes  sha256 {f.sha256}")
    return EXIT_OK


def _states(settings: Settings) -> int:
    from scd_monitor.state import StateTracker
    from scd_monitor.store import Store

    catalog = load_catalog(settings.catalog)
    store = Store(settings.database_url.get_secret_value())
    try:
        store.create_schema()
        catalog = effective_catalog(catalog, store)
        tracker = StateTracker(store, vantage=settings.vantage, clock=SystemClock())
        tracker.set_catalog(catalog)
        n = tracker.rebuild()
    finally:
        store.dispose()
    print(f"rebuilt the state spans of vantage {settings.vantage!r} from {n} probe results")
    return EXIT_OK


def _since(text: str, tz: Any, now: datetime, flag: str) -> datetime:
    """An ISO-8601 instant (in ``tz`` without an offset) or a duration ago (``1h``, ``7d``)."""
    from scd_monitor.catalog.durations import parse_duration

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
    import json

    from scd_monitor.store import Store

    if not args.changes and (args.since or args.until):
        raise ConfigError(["--since and --until go with --changes"])
    store = Store(settings.database_url.get_secret_value())
    try:
        store.create_schema()
        if args.changes:
            catalog = load_catalog(settings.catalog)
            now = datetime.now(UTC)
            since = _since(args.since, catalog.tz, now, "--since") if args.since else None
            until = _since(args.until, catalog.tz, now, "--until") if args.until else None
            events = store.directory_events(source=args.source, since=since, until=until)
        else:
            stored = store.directories()
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
        lines = _table(("AT (UTC)", "SOURCE", "KIND", "CHANGE", "SUBJECT", "DETAILS"), rows)
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
    lines += _table(("KIND", "ID", "NAME / TYPE"), rows)
    lines.append("")
    return lines


def _parse_xroad(text: str | None) -> tuple[int, int] | None:
    if text is None:
        return None
    parts = text.lower().replace("×", "x").split("x")
    try:
        n, m = (int(p) for p in parts)
    except ValueError:
        raise ConfigError([f"--xroad: expected N×M (e.g. 20x5), got {text!r}"]) from None
    if n < 0 or m < 0:
        raise ConfigError([f"--xroad: counts must be 0 or more, got {text!r}"])
    return n, m


def _simulate(args: argparse.Namespace) -> int:
    from scd_monitor.simulator.cli import run_simulator

    asyncio.run(
        run_simulator(
            args.scenario,
            workdir=args.workdir,
            catalog_out=args.catalog_out,
            host=args.host,
            port=args.port,
            fleet=args.fleet,
            xroad=_parse_xroad(args.xroad),
        )
    )
    return EXIT_OK
