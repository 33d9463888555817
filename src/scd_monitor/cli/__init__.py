"""The ``scd-monitor`` command line (see :mod:`scd_monitor.cli.main`)."""

from __future__ import annotations

from scd_monitor.cli.main import main

__all__ = ["main"]
