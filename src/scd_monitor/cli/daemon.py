"""``scd-monitor run | validate | check``: the daemon, the catalog, one round of probes."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import structlog

from scd_monitor.catalog import Catalog, ResolvedCheck, load_catalog
from scd_monitor.catalog.discovered import effective_catalog
from scd_monitor.cli.output import EXIT_CHECK_FAILED, EXIT_OK
from scd_monitor.clock import SystemClock
from scd_monitor.config.settings import Settings
from scd_monitor.errors import ConfigError


def add_parsers(
    sub: argparse._SubParsersAction[argparse.ArgumentParser],
    common: argparse.ArgumentParser,
) -> None:
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


def _run(settings: Settings, _args: argparse.Namespace) -> int:
    from scd_monitor.runtime.daemon import build

    daemon = build(settings)
    return asyncio.run(daemon.run())


def _validate(settings: Settings, args: argparse.Namespace) -> int:
    path: Path = args.path or settings.catalog
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


def _check(settings: Settings, args: argparse.Namespace) -> int:
    ids: Sequence[str] = args.ids
    fmt: str = args.format
    from scd_monitor.probes import build_probes
    from scd_monitor.runtime.scheduling import run_probe

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
    _never_raise_on_output()
    if fmt == "json":
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


def _never_raise_on_output() -> None:
    """Messages quote what targets sent. They are valid Unicode already (the probes'
    outcomes are cleaned), but a terminal may not take all of it (``LANG=C``, a Windows
    code page): what stdout's encoding cannot show is replaced rather than raising."""
    reconfigure = getattr(sys.stdout, "reconfigure", None)
    if reconfigure is not None:
        reconfigure(errors="replace")


COMMANDS = {"run": _run, "validate": _validate, "check": _check}
