"""The JSON export: the machine form, described by ``schemas/sla-export.schema.json``."""

from __future__ import annotations

import json

from scd_monitor.exports.model import MonthExport

__all__ = ["render_json"]


def render_json(export: MonthExport) -> bytes:
    """UTF-8, two-space indent, stable key order, a final newline: byte-identical for
    the same export."""
    text = json.dumps(export.to_json(), indent=2, ensure_ascii=False, allow_nan=False)
    return (text + "\n").encode("utf-8")
