"""The CLI's tests reuse the incidents' test fixtures (a settable clock)."""

from __future__ import annotations

from tests.incidents.conftest import clock

__all__ = ["clock"]
