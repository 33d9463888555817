"""``scd-monitor sla | export sla | states``: the ANS figures, their export, their spans.

``sla freeze | recompute | frozen`` are the closed months, frozen
(:mod:`scd_monitor.cli.months`); ``export sla`` of a frozen month renders its frozen
figures (the manifest's ``frozen`` says so).

``sla`` shows beside each service's probe availability its success inside X-Road over
the same period (``XROAD-OK``, *Éxito en X-Road*: the operational monitoring records of
the monitored security servers, :func:`xroad_success`), so that "the probes say up, the
real traffic fails" shows; ``export sla`` includes the use of the platform
(:mod:`scd_monitor.exports.usage`).
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from scd_monitor.catalog import Catalog, load_catalog
from scd_monitor.catalog.discovered import effective_catalog
from scd_monitor.cli import months
from scd_monitor.cli.output import EXIT_CONFIG, EXIT_OK, error, table
from scd_monitor.clock import SystemClock
from scd_monitor.config.settings import Settings
from scd_monitor.errors import ConfigError
from scd_monitor.sla.bands import Band, BandBounds
from scd_monitor.sla.model import Period
from scd_monitor.timefmt import hms, iso_utc
from scd_monitor.xroad.identifiers import ClientId, ServiceId

if TYPE_CHECKING:
    from scd_monitor.analysis.usage import ServiceUsage, UsageReport


def add_parsers(
    sub: argparse._SubParsersAction[argparse.ArgumentParser],
    common: argparse.ArgumentParser,
) -> None:
    sla = sub.add_parser(
        "sla",
        parents=[common],
        help="availability and SLA figures per service and provider; closed months, frozen",
        description="Without ACTION: the figures of --month or --from/--to. freeze: freeze a "
        "closed --month now; recompute: compute a frozen --month again (--reason required, "
        "recorded; the previous freeze is kept); frozen: list the frozen months.",
    )
    sla.add_argument(
        "action",
        nargs="?",
        choices=months.ACTIONS,
        metavar="ACTION",
        help="freeze | recompute | frozen (none: the figures)",
    )
    # Required without ACTION (checked in _sla: argparse cannot say "unless ACTION").
    when = sla.add_mutually_exclusive_group()
    when.add_argument("--month", help="calendar month YYYY-MM in the catalog's time zone")
    when.add_argument("--from", dest="since", help="period start (ISO-8601; local if no offset)")
    sla.add_argument("--to", dest="until", help="period end (with --from; default: now)")
    sla.add_argument("--provider")
    sla.add_argument("--service")
    sla.add_argument("--format", choices=["table", "json"], default="table")
    sla.add_argument("--reason", help="recompute: why the frozen month is computed again")
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


def _period(args: argparse.Namespace, catalog: Catalog, now: datetime) -> Period:
    from scd_monitor.sla.calendar import month_period, parse_month

    tz = catalog.tz
    if args.month:
        try:
            year, month = parse_month(args.month)
        except ValueError as exc:
            raise ConfigError([f"--month: {exc}"]) from None
        period = month_period(year, month, tz)
        if period.start > now:
            # As `export sla` says: nothing is measured yet, so no figure (a burn rate of a
            # month to come would be noise).
            raise ConfigError([f"--month: {args.month} has not begun yet"])
        return period

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
    if start > now:
        raise ConfigError([f"--from: {args.since} is in the future"])
    return Period(start.astimezone(UTC), end.astimezone(UTC))


def _sla(settings: Settings, args: argparse.Namespace) -> int:
    from scd_monitor.analysis.reporting import SlaReporter
    from scd_monitor.exports.usage import store_usage
    from scd_monitor.store import DirectoryRepository, Store

    if args.action is not None:
        return months.run(settings, args)
    if not args.month and not args.since:
        raise ConfigError(["sla: one of --month or --from is required"])
    if args.reason is not None:
        raise ConfigError(["sla: --reason is for `sla recompute` only"])
    catalog = load_catalog(settings.catalog)
    clock = SystemClock()
    now = clock.now()
    period = _period(args, catalog, now)
    store = Store.open_existing(settings.database_url.get_secret_value())
    try:
        catalog = effective_catalog(catalog, DirectoryRepository(store))
        if args.provider and not any(p.id == args.provider for p in catalog.providers):
            raise ConfigError([f"--provider: no provider {args.provider!r} in the catalog"])
        report = SlaReporter(store, catalog, clock).report(
            period, provider=args.provider, service=args.service, now=now
        )
        usage = store_usage(store)(period.start, min(period.end, now))
    finally:
        store.dispose()
    bands = service_bands(report, catalog)
    xroad = xroad_success(report, usage)
    if args.format == "json":
        doc = report.to_json()
        doc["services"] = [
            _with_band(entry, band) for entry, band in zip(doc["services"], bands, strict=True)
        ]
        # Beside ``services``, not in its entries: those are the export's entries too
        # (schemas/sla-export.schema.json), which do not carry it.
        doc["xroad_success"] = [
            x.to_json(s.provider, s.service) for s, x in zip(report.services, xroad, strict=True)
        ]
        print(json.dumps(doc, indent=2, ensure_ascii=False))
        return EXIT_OK
    print(render_slatable(report, bands, xroad))
    return EXIT_OK


@dataclass(frozen=True, slots=True)
class XRoadSuccess:
    """A catalog service's success inside X-Road over the report's period."""

    xroad_service: str | None
    """The X-Road service (or subsystem) it was matched with; ``None`` if none."""
    requests: int = 0
    successes: int = 0

    @property
    def ratio(self) -> float | None:
        """successes / requests; ``None`` without requests (shown ``-``)."""
        return None if self.requests <= 0 else self.successes / self.requests

    def to_json(self, provider: str, service: str) -> dict[str, Any]:
        return {
            "provider": provider,
            "service": service,
            "xroad_service": self.xroad_service,
            "requests": self.requests,
            "successes": self.successes,
            "success_ratio": self.ratio,
        }


def xroad_success(report: Any, usage: UsageReport | None) -> list[XRoadSuccess]:
    """Each service's success inside X-Road, in the order of ``report.services``.

    A service whose catalog name is an X-Road service identifier (a discovered service)
    gets that service's figures: the same version, or every version when its name has
    none, or, when the usage has none of its version, every version; a service whose
    name is a subsystem identifier (a discovered subsystem) gets the sum over the
    subsystem's services. Any other service, or one without requests, has none.
    """
    exact: dict[str, tuple[int, int]] = {}
    unversioned: dict[str, tuple[int, int]] = {}
    subsystem: dict[str, tuple[int, int]] = {}
    for entry in () if usage is None else _usage_services(usage):
        try:
            ident = ServiceId.parse(entry.service)
        except ValueError:
            continue
        for sums, key in (
            (exact, str(ident)),
            (unversioned, str(ident.without_version())),
            (subsystem, str(ident.client)),
        ):
            requests, successes = sums.get(key, (0, 0))
            sums[key] = (requests + entry.requests, successes + entry.successes)
    out: list[XRoadSuccess] = []
    for s in report.services:
        matched, (requests, successes) = _match(s.service_name or "", exact, unversioned, subsystem)
        out.append(XRoadSuccess(matched, requests, successes))
    return out


def _usage_services(usage: UsageReport) -> Sequence[ServiceUsage]:
    return usage.services


def _match(
    name: str,
    exact: dict[str, tuple[int, int]],
    unversioned: dict[str, tuple[int, int]],
    subsystem: dict[str, tuple[int, int]],
) -> tuple[str | None, tuple[int, int]]:
    """The X-Road service (or subsystem) a catalog service name stands for, and its
    (requests, successes); ``(None, (0, 0))`` for none."""
    try:
        ident = ServiceId.parse(name)
    except ValueError:
        try:
            client = ClientId.parse(name)
        except ValueError:
            return None, (0, 0)
        key = str(client)
        if client.subsystem_code is None or key not in subsystem:
            return None, (0, 0)
        return key, subsystem[key]
    text = str(ident)
    if ident.service_version is not None and text in exact:
        return text, exact[text]
    bare = str(ident.without_version())
    if bare in unversioned:
        return bare, unversioned[bare]
    return None, (0, 0)


def service_bands(report: Any, catalog: Catalog) -> list[Band | None]:
    """Each service's *rango de medición* by the one definition (the export's too): its
    target and the catalog's ``sla.amber_from``; ``None`` without eligible time."""
    bands: list[Band | None] = []
    for s in report.services:
        f = s.figures
        spec = catalog.service(s.provider, s.service)
        bounds = BandBounds.of(f.target, None if spec is None else spec.sla.amber_from)
        bands.append(bounds.band(f.eligible, f.charged_downtime))
    return bands


def _with_band(entry: dict[str, Any], band: Band | None) -> dict[str, Any]:
    """The service's JSON entry with ``band`` (as in the export) right after ``met``."""
    out: dict[str, Any] = {}
    for key, value in entry.items():
        out[key] = value
        if key == "met":
            out["band"] = None if band is None else band.value
    return out


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.3f}%"


def _dur(value: timedelta | None) -> str:
    return "-" if value is None else hms(value)


def render_slatable(
    report: Any, bands: list[Band | None], xroad: Sequence[XRoadSuccess] | None = None
) -> str:
    """The human table of ``scd-monitor sla``; ``bands`` from :func:`service_bands`,
    ``xroad`` from :func:`xroad_success` (none: ``-`` in ``XROAD-OK``)."""
    tz = report.timezone
    zone = ZoneInfo(tz)

    def local(instant: datetime) -> str:
        return instant.astimezone(zone).isoformat(timespec="seconds")

    lines = [
        f"SLA {local(report.period.start)} .. {local(report.period.end)} "
        f"(time zone {tz}, as of {local(report.now)})",
        "",
    ]
    header = (
        "SERVICE", "AVAIL", "XROAD-OK", "TARGET", "MET", "BAND", "DOWNTIME", "MAINT",
        "UNKNOWN", "COVERAGE", "OUTAGES", "MTTR", "LAT-OK", "P95", "BUDGET", "BURN-1H",
    )  # fmt: skip
    rows = []
    successes = list(xroad) if xroad is not None else [XRoadSuccess(None)] * len(bands)
    for s, band, x in zip(report.services, bands, successes, strict=True):
        f = s.figures
        burn = next((b.rate for b in f.burn_rates if b.window == timedelta(hours=1)), None)
        rows.append(
            (
                f"{s.provider}/{s.service}",
                _pct(f.availability),
                _pct(x.ratio),
                _pct(f.target),
                "-" if f.met is None else ("yes" if f.met else "NO"),
                "-" if band is None else band.colour_name,
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
    lines += table(header, rows)
    lines += [
        "",
        "XROAD-OK: Éxito en X-Road, the share of the service's requests that succeeded "
        "inside X-Road over the same period (operational monitoring); - without data.",
        "",
        "per provider:",
    ]
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
    lines += table(("PROVIDER", "AVAIL", "DOWNTIME", "COVERAGE", "OUTAGES", "SERVICES"), prows)
    return "\n".join(lines)


def _export(settings: Settings, args: argparse.Namespace) -> int:
    from scd_monitor.analysis.reporting import SlaReporter
    from scd_monitor.exports import (
        FORMATS,
        ExportError,
        ExportSource,
        export_month,
        store_usage,
    )
    from scd_monitor.exports.incidents import incidents_of
    from scd_monitor.sla.calendar import month_period, parse_month
    from scd_monitor.store import DirectoryRepository, FrozenMonthRepository, Store

    output = args.output or settings.export_dir
    if output is None or not str(output):
        raise ConfigError(["--output: no export directory (set SCD_MONITOR_EXPORT_DIR)"])
    try:
        year, month = parse_month(args.month)
    except ValueError as exc:
        raise ConfigError([f"--month: {exc}"]) from None
    declared = load_catalog(settings.catalog)
    clock = SystemClock()
    store = Store.open_existing(settings.database_url.get_secret_value())
    try:
        catalog = effective_catalog(declared, DirectoryRepository(store))
        frozen = FrozenMonthRepository(store)
        is_frozen = frozen.info(f"{year:04d}-{month:02d}") is not None
        result = export_month(
            ExportSource(SlaReporter(store, catalog, clock), catalog, usage=store_usage(store)),
            month=args.month,
            formats=args.format or FORMATS,
            output_dir=output,
            provider=args.provider,
            now=clock.now(),
            # A frozen month is a lookup: its incidents are the frozen ones too.
            incidents=()
            if is_frozen
            else incidents_of(store, month_period(year, month, catalog.tz)),
            months=frozen,
        )
    except ExportError as exc:
        error([f"export: {exc}"])
        return EXIT_CONFIG
    finally:
        store.dispose()
    if result.provisional:
        status = "PROVISIONAL (the month has not closed)"
    elif result.insufficient_coverage:
        services = ", ".join(f"{p}/{s}" for p, s in result.insufficient_coverage)
        status = (
            f"final, INSUFFICIENT COVERAGE: no verdict for {len(result.insufficient_coverage)} "
            f"service(s) ({services})"
        )
    else:
        status = "final"
    if result.frozen is not None:
        freeze = result.frozen
        status += (
            f"; from the month frozen at {iso_utc(freeze.frozen_at)} (revision "
            f"{freeze.revision}, reason {freeze.reason!r})"
        )
    print(f"{result.directory}: {status}")
    for f in result.files:
        print(f"  {f.name}  {f.size} bytes  sha256 {f.sha256}")
    return EXIT_OK


def _states(settings: Settings, _args: argparse.Namespace) -> int:
    from scd_monitor.runtime.tracker import StateTracker
    from scd_monitor.store import DirectoryRepository, Store

    catalog = load_catalog(settings.catalog)
    store = Store.open_existing(settings.database_url.get_secret_value(), writable=True)
    try:
        catalog = effective_catalog(catalog, DirectoryRepository(store))
        tracker = StateTracker(store, vantage=settings.vantage, clock=SystemClock())
        tracker.set_catalog(catalog)
        n = tracker.rebuild()
    finally:
        store.dispose()
    print(f"rebuilt the state spans of vantage {settings.vantage!r} from {n} probe results")
    return EXIT_OK


COMMANDS = {"sla": _sla, "export": _export, "states": _states}
