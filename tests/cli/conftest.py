"""The CLI's tests reuse the incidents' test fixtures (a settable clock) and the exports'
month of simulated history (a database and its catalog)."""

from __future__ import annotations

from tests.exports.conftest import catalog_file, history_url
from tests.incidents.conftest import clock

__all__ = ["catalog_file", "clock", "history_url"]
