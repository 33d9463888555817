"""``python -m scd_monitor`` runs the command line."""

from __future__ import annotations

import sys

from scd_monitor.cli import main

sys.exit(main())
