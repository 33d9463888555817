"""The command line: parse, call, print. No logic of its own.

``scd-monitor run | validate | check | sla [freeze | recompute | frozen] | export | states |
directory | oidc-keys | incidents | deliveries | db``; exit codes: 0 fine, 1 a check failed
(``check``), 2 bad configuration, usage or database. Each command group is one module with
``add_parsers`` and ``COMMANDS`` (``sla``'s actions on frozen months are
:mod:`scd_monitor.cli.months`, dispatched from :mod:`scd_monitor.cli.sla`).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from scd_monitor import __version__
from scd_monitor.cli import daemon, db, directory, incidents, oidc, sla
from scd_monitor.cli.output import EXIT_CONFIG, error
from scd_monitor.config.settings import Settings, load_settings
from scd_monitor.errors import ConfigError, StoreError
from scd_monitor.logs import configure_logging

Handler = Callable[[Settings, argparse.Namespace], int]
GROUPS = (daemon, sla, directory, oidc, incidents, db)


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
    for group in GROUPS:
        group.add_parsers(sub, common)
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
        error(exc.problems)
        return EXIT_CONFIG
    configure_logging(settings.log_format, settings.log_level)
    handlers: dict[str, Handler] = {}
    for group in GROUPS:
        handlers.update(group.COMMANDS)
    try:
        code = handlers[args.command](settings, args)
        # Flush here, not at exit: a reader gone away (`… | head`) is seen below, not as
        # the interpreter's "Exception ignored" report and exit status 120.
        sys.stdout.flush()
        return code
    except ConfigError as exc:
        error(exc.problems)
        return EXIT_CONFIG
    except StoreError as exc:
        error([f"store: {exc}"])
        return EXIT_CONFIG
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # The reader went away (`… | head`): not an error of ours; silence the interpreter's
        # own report at exit by pointing stdout at nothing.
        import os

        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
