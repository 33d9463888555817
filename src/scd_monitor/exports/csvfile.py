"""The CSV export: one row per provider and service (columns in ``docs/exports.md``).

UTF-8 without a byte-order mark, RFC 4180 (comma separator, ``\\r\\n`` line ends, quotes
where needed), a header row. Values are the JSON export's values: ratios as fractions
(``0.9963727183075708``, decimal point), durations in seconds, times in UTC ISO-8601,
empty for none; ``met`` is ``true``/``false``. Every row says whether the report is
``FINAL`` or ``PROVISIONAL`` (the month has not closed). In a closed month a service
measured below its minimum coverage has ``compliance`` ``Cobertura insuficiente``,
``coverage_sufficient`` ``false`` and ``met`` and ``band`` empty: no verdict (its
``availability`` is only for information).

When the export has the use of the X-Road platform (:mod:`scd_monitor.exports.usage`),
:func:`render_usage_csv` writes it as a file of its own (``USAGE_COLUMNS``): a row per
provider member (``level`` ``provider``, its totals), then one per service of it
(``level`` ``service``); no file when the month has no usage data.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from typing import Any

from scd_monitor.analysis.usage import FAULT_SIDES
from scd_monitor.exports.model import MonthExport, ServiceExport
from scd_monitor.exports.usage import UsageFigures

__all__ = ["COLUMNS", "USAGE_COLUMNS", "render_csv", "render_usage_csv"]

_Getter = Callable[[MonthExport, ServiceExport, dict[str, Any]], Any]


def _budget(key: str) -> _Getter:
    def get(_e: MonthExport, _s: ServiceExport, j: dict[str, Any]) -> Any:
        budget = j["error_budget"]
        return None if budget is None else budget[key]

    return get


def _key(key: str) -> _Getter:
    return lambda _e, _s, j: j[key]


COLUMNS: tuple[tuple[str, _Getter], ...] = (
    ("month", lambda e, _s, _j: e.month),
    ("report_status", lambda e, _s, _j: "PROVISIONAL" if e.provisional else "FINAL"),
    ("period_start", lambda _e, _s, j: j["period"]["start"]),
    ("period_end", lambda _e, _s, j: j["period"]["end"]),
    ("as_of", lambda _e, _s, j: j["now"]),
    ("timezone", lambda e, _s, _j: e.timezone),
    ("catalog_version", lambda e, _s, _j: e.catalog_version),
    ("provider", _key("provider")),
    ("provider_name", _key("provider_name")),
    ("service", _key("service")),
    ("service_name", _key("service_name")),
    ("service_type", _key("service_type")),
    ("target", _key("target")),
    ("availability", _key("availability")),
    ("compliance", _key("compliance")),
    ("met", _key("met")),
    ("band", _key("band")),
    ("eligible_seconds", _key("eligible_seconds")),
    ("charged_downtime_seconds", _key("charged_downtime_seconds")),
    ("excluded_maintenance_seconds", _key("excluded_maintenance_seconds")),
    ("unknown_seconds", _key("unknown_seconds")),
    ("coverage", _key("coverage")),
    ("coverage_sufficient", _key("coverage_sufficient")),
    ("min_coverage", _key("min_coverage")),
    ("outage_count", _key("outage_count")),
    ("outages_total", _key("outages_total")),
    ("mttr_seconds", _key("mttr_seconds")),
    ("mtbf_seconds", _key("mtbf_seconds")),
    ("latency_threshold_seconds", _key("latency_threshold_seconds")),
    ("latency_samples", lambda _e, _s, j: j["latency"]["samples"]),
    ("latency_compliance", lambda _e, _s, j: j["latency"]["compliance"]),
    ("latency_p95_seconds", lambda _e, _s, j: j["latency"]["p95_seconds"]),
    ("error_budget_seconds", _budget("budget_seconds")),
    ("error_budget_consumed_seconds", _budget("consumed_seconds")),
    ("error_budget_remaining_seconds", _budget("remaining_seconds")),
    ("error_budget_used_ratio", _key("error_budget_used_ratio")),
    ("incident_count", lambda _e, s, _j: len(s.incidents)),
    ("incidents", lambda _e, s, _j: " ".join(i.id for i in s.incidents)),
)
"""Column name → how to read it from (export, service, the service's JSON entry)."""


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    return str(value)


def render_csv(export: MonthExport) -> bytes:
    out = io.StringIO(newline="")
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow([name for name, _ in COLUMNS])
    for service in export.services:
        entry = service.to_json()
        writer.writerow([_cell(get(export, service, entry)) for _, get in COLUMNS])
    return out.getvalue().encode("utf-8")


USAGE_COLUMNS: tuple[str, ...] = (
    "month",
    "report_status",
    "period_start",
    "period_end",
    "provider_member",
    "provider",
    "provider_name",
    "level",
    "service",
    "counted_side",
    "requests",
    "successes",
    "failures",
    "success_ratio",
    "p95_ms",
    *(f"failures_{side}" for side in FAULT_SIDES),
    "top_fault_codes",
)
"""The columns of the usage file (``docs/exports.md``)."""


def render_usage_csv(export: MonthExport) -> bytes | None:
    """The use of the X-Road platform as CSV; ``None`` (no file) when the export has no
    section or the section no data."""
    usage = export.usage
    section = None if usage is None else usage.to_json()
    if usage is None or section is None:
        return None
    out = io.StringIO(newline="")
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(USAGE_COLUMNS)
    common = [
        export.month,
        "PROVISIONAL" if export.provisional else "FINAL",
        section["period"]["start"],
        section["period"]["end"],
    ]

    def figures(f: UsageFigures) -> list[Any]:
        j = f.to_json()
        return [j["requests"], j["successes"], j["failures"], j["success_ratio"], j["p95_ms"],
                *f.faults]  # fmt: skip

    for p in usage.providers:
        who = [p.member, p.provider, p.name]
        writer.writerow(
            [_cell(v) for v in (*common, *who, "provider", None, None, *figures(p.figures), None)]
        )
        for s in p.services:
            codes = ";".join(f"{code}={n}" for code, n in s.top_faults)
            row = (*common, *who, "service", s.service, s.counted_side, *figures(s.figures),
                   codes or None)  # fmt: skip
            writer.writerow([_cell(v) for v in row])
    return out.getvalue().encode("utf-8")
