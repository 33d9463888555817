"""The ``scd-monitor`` command line (see :mod:`scd_monitor.cli.app`)."""

from __future__ import annotations

from scd_monitor.cli.app import main

__all__ = ["main"]
