"""One set of bands: the board's rango de medición is the export's, on a grid of cases.

For each case the same stored durations go down both roads:

- the daemon's: :func:`~scd_monitor.sla.engine.sla_figures` → the SLA report →
  :class:`~scd_monitor.web.metrics.StateCollector` → the text exposition, parsed back →
  the series promtool is fed (two daemons, as Prometheus scrapes them) → the recording
  rules of ``config/prometheus/rules/recording.yml`` → ``provider_service:scd_sla_band:code``;
- the export's: :func:`~scd_monitor.exports.build_month_export` over the same report and
  catalog → each service's ``band``.

promtool is told to expect the export's band (its code), so it passes only if the two
agree on every case. The grid has targets as ANS write them and awkward ones (a float
``2t − 1`` that is not the decimal, an ``amber_from`` one float step below the target,
100 %, 50 % and below), default and explicit ``sla.amber_from``, and availabilities on
each bound and a few microseconds either side of it over a day, 30 days and 31 days
less a few microseconds (where two availabilities on either side of a bound round to
the same float, unless the daemon rounds them apart: it does).
"""

from __future__ import annotations

import math
import os
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from fractions import Fraction
from pathlib import Path

import pytest
import yaml
from prometheus_client import CollectorRegistry
from prometheus_client.exposition import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from scd_monitor.analysis.reporting import ProviderReport, ServiceReport, SlaReport
from scd_monitor.catalog import Catalog, parse_catalog
from scd_monitor.clock import SystemClock
from scd_monitor.exports import ExportSource, build_month_export
from scd_monitor.sla.bands import Band, BandBounds
from scd_monitor.sla.engine import provider_figures, sla_figures
from scd_monitor.sla.model import Period, Span, State
from scd_monitor.sla.timeline import CheckTimeline, service_timeline
from scd_monitor.web.metrics import StateCollector
from tests.conftest import utc

ROOT = Path(__file__).resolve().parents[2]
RECORDING = ROOT / "config" / "prometheus" / "rules" / "recording.yml"

US = timedelta(microseconds=1)
DAY = timedelta(days=1)
START = utc(2026, 10, 1, 5, 0, 0)
"""October 2026 begins in Bogotá; the cases' periods start here."""
NOW = utc(2026, 11, 15, 12, 0, 0)
"""The export runs after October has closed."""

# (target, amber_from): None is the default 2 × target − 1 (at least 0).
TERMS: tuple[tuple[float, float | None], ...] = (
    (0.995, None),
    (0.995, 0.97),
    (0.999, None),
    (0.98, None),
    (0.98, 0.9),
    (0.9, None),
    (0.9, 0.5),
    (0.99995, None),
    (0.99995, 0.9999),
    (0.9999999, None),  # 2t − 1 in floats is 0.9999998000000001; the bound is 0.9999998
    (0.7, None),  # 2t − 1 in floats is 0.3999999999999999; the bound is 2/5
    (0.5, None),  # amber from 0: never red
    (0.3, None),
    (0.95, 0.9499999999999999),  # the amber band is one float step wide
    (1.0, None),  # no amber band: green or red
    (1.0, 0.999),
)
ELIGIBLE = (DAY, 30 * DAY, 31 * DAY - US, 31 * DAY - 7 * US)
OFFSETS = (-2, -1, 0, 1, 2)
"""Microseconds of up-time either side of the least that reaches a bound."""
PLAIN = (Fraction(1), Fraction(0), Fraction(1, 2), Fraction(99, 100), Fraction(7918, 10000))


@dataclass(frozen=True, slots=True)
class Case:
    """One evaluation: the (eligible, up) time of every service, in microseconds."""

    name: str
    durations: tuple[tuple[int, int], ...]
    """Per service of :data:`TERMS`: (eligible, up); eligible 0 = no eligible time."""


def cases() -> Iterator[Case]:
    """Per service, its own bounds' ties and neighbours; one case a promtool test."""
    bounds = [BandBounds.of(*t) for t in TERMS]
    for eligible in ELIGIBLE:
        micros = eligible // US
        for which in ("green", "amber"):
            for offset in OFFSETS:
                per_service = []
                for b in bounds:
                    lower = b.green if which == "green" else b.amber
                    up = min(max(math.ceil(lower * micros) + offset, 0), micros)
                    per_service.append((micros, up))
                yield Case(f"{which} bound {offset:+d} us, {_span(eligible)}", tuple(per_service))
    for share in PLAIN:
        micros = (30 * DAY) // US
        up = math.floor(share * micros)
        yield Case(f"availability {float(share)} over 30 days", ((micros, up),) * len(TERMS))
    yield Case("no eligible time", ((0, 0),) * len(TERMS))


def _span(eligible: timedelta) -> str:
    days, rest = divmod(eligible, DAY)
    return f"{days} d" if not rest else f"{days + 1} d - {(DAY - rest) // US} us"


CATALOG_YAML = "providers:\n  - id: p\n    name: P\n    services:\n" + "".join(
    f"      - id: s{i:02d}\n"
    "        type: otro\n"
    f"        sla: {{availability_target: {target!r}"
    + ("" if amber is None else f", amber_from: {amber!r}")
    + "}\n"
    f"        checks: [{{id: c, kind: tls, host: s{i:02d}.example}}]\n"
    for i, (target, amber) in enumerate(TERMS)
)


def report(catalog: Catalog, case: Case) -> SlaReport:
    """The SLA report the daemon would publish for ``case``, by the SLA engine."""
    services = []
    for i, ((eligible, up), (target, _)) in enumerate(zip(case.durations, TERMS, strict=True)):
        service = f"s{i:02d}"
        assert catalog.service("p", service) is not None
        if eligible:
            period = Period(START, START + eligible * US)
            spans = [Span(START, START + up * US, State.UP)]
            spans.append(Span(START + up * US, period.end, State.DOWN, "timeout"))
            spans = [s for s in spans if s.start < s.end]
        else:  # a day with no data at all: every instant UNKNOWN, none eligible
            period = Period(START, START + DAY)
            spans = []
        timeline = service_timeline(
            [CheckTimeline(f"p/{service}/c", "p", "v", True, spans)],
            rule="any",
            vantage_quorum=1,
            period=period,
            maintenance=[],
            monitor_faults={},
        )
        figures = sla_figures(timeline, period=period, now=period.end, target=target, latency=None)
        assert figures.eligible == eligible * US
        services.append(ServiceReport("p", "P", service, None, "otro", figures, ()))
    return SlaReport(
        period=Period(START, START + 31 * DAY),
        now=START + 31 * DAY,
        timezone="America/Bogota",
        catalog_version=None,
        services=tuple(services),
        providers=(ProviderReport("p", "P", provider_figures([s.figures for s in services])),),
    )


class OneReport:
    """A reporter that answers every period with the case's report."""

    def __init__(self, report: SlaReport) -> None:
        self._report = report

    def report(
        self,
        period: Period,
        *,
        provider: str | None = None,
        service: str | None = None,
        now: datetime | None = None,
    ) -> SlaReport:
        return self._report


def export_bands(catalog: Catalog, sla: SlaReport) -> dict[str, Band | None]:
    """The export's band of each service, through the export's own path."""
    export = build_month_export(ExportSource(OneReport(sla), catalog), month="2026-10", now=NOW)
    return {s.report.service: s.band for s in export.services}


def scraped(catalog: Catalog, sla: SlaReport) -> dict[str, list[tuple[dict[str, str], float]]]:
    """The daemon's SLA series as Prometheus reads them off ``/metrics``."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(
        StateCollector(
            checks=list,
            catalog=lambda: catalog,
            states=dict,
            sla=lambda: sla,
            vantage="v",
            clock=SystemClock(),
        )
    )
    out: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(generate_latest(registry).decode()):
        for sample in family.samples:
            if sample.name.startswith("scd_sla_") and "provider" in sample.labels:
                out.setdefault(sample.name, []).append((dict(sample.labels), sample.value))
    return out


def selector(name: str, labels: dict[str, str]) -> str:
    inner = ",".join(f'{k}="{v}"' for k, v in labels.items())
    return f"{name}{{{inner}}}"


def promtool_case(case: Case, series: dict[str, list[tuple[dict[str, str], float]]],
                  bands: dict[str, Band | None]) -> dict[str, object]:  # fmt: skip
    """One promtool test: the scraped series of two daemons, the export's band codes."""
    inputs = []
    for name, samples in sorted(series.items()):
        for labels, value in samples:
            for instance, vantage in (("a:9464", "a"), ("b:9465", "b")):
                scrape = {**labels, "job": "scd-monitor", "instance": instance, "vantage": vantage}
                # repr: the shortest text that reads back as the same float, as in /metrics.
                inputs.append({"series": selector(name, scrape), "values": f"{value!r} {value!r}"})
    expected = [
        {
            "labels": selector(
                "provider_service:scd_sla_band:code",
                {"provider": "p", "service": service, "case": case.name},
            ),
            "value": band.code,
        }
        for service, band in sorted(bands.items())
        if band is not None
    ]
    # promtool does not name the test that fails: the label `case` does.
    expr = f'label_replace(provider_service:scd_sla_band:code, "case", "{case.name}", "", "")'
    return {
        "name": case.name,
        "interval": "1m",
        "input_series": inputs,
        "promql_expr_test": [{"expr": expr, "eval_time": "1m", "exp_samples": expected}],
    }


@pytest.fixture(scope="module")
def promtool() -> str:
    found = shutil.which("promtool")
    if found is None:
        if os.environ.get("SCD_MONITOR_REQUIRE_PROMTOOL") == "1":
            pytest.fail("promtool is required (Debian package 'prometheus')")
        pytest.skip("promtool not installed")
    return found


def test_the_board_shows_the_exports_band(promtool: str, tmp_path: Path) -> None:
    catalog = parse_catalog(CATALOG_YAML)
    tests = []
    seen: set[Band | None] = set()
    ties = rounded_apart = 0
    for case in cases():
        sla = report(catalog, case)
        bands = export_bands(catalog, sla)
        series = scraped(catalog, sla)
        # The road to the export agrees with the definition itself, service by service.
        for s, (target, amber) in zip(sla.services, TERMS, strict=True):
            bounds = BandBounds.of(target, amber)
            f = s.figures
            assert bands[s.service] is bounds.band(f.eligible, f.charged_downtime)
            if f.availability is None:
                continue
            ratio = Fraction((f.eligible - f.charged_downtime) // US, f.eligible // US)
            ties += ratio in (bounds.green, bounds.amber)
            rounded_apart += bounds.comparable_ratio(f.eligible, f.charged_downtime) != float(ratio)
        seen |= set(bands.values())
        tests.append(promtool_case(case, series, bands))
    # The grid reaches every band, exact ties, and the floats the daemon must round apart.
    assert seen == {Band.GREEN, Band.AMBER, Band.RED, None}
    assert ties > 50 and rounded_apart > 0, (ties, rounded_apart)

    path = tmp_path / "bands.test.yml"
    doc = {"rule_files": [str(RECORDING)], "evaluation_interval": "1m", "tests": tests}
    path.write_text(yaml.safe_dump(doc, sort_keys=False, allow_unicode=True), encoding="utf-8")
    out = subprocess.run(
        [promtool, "test", "rules", str(path)], capture_output=True, text=True, check=False
    )
    assert out.returncode == 0, out.stdout[:8000] + out.stderr[-2000:]
    assert "SUCCESS" in out.stdout, out.stdout
