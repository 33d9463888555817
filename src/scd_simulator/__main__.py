"""``python -m scd_simulator``."""

from __future__ import annotations

import sys

from scd_simulator.cli import main

sys.exit(main())
