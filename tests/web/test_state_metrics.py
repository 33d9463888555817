"""State and month-to-date SLA metrics: values, rules, and promtool's lint."""

from __future__ import annotations

import os
import shutil
import subprocess
from datetime import timedelta

import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.exposition import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from scd_monitor.analysis.reporting import ServiceReport, SlaReport
from scd_monitor.analysis.views import CheckStatus
from scd_monitor.catalog import parse_catalog
from scd_monitor.clock import SystemClock
from scd_monitor.sla.engine import sla_figures
from scd_monitor.sla.model import Period, Span, State
from scd_monitor.sla.timeline import CheckTimeline, service_timeline
from scd_monitor.web.metrics import StateCollector
from tests.conftest import utc

CATALOG = parse_catalog(
    """
providers:
  - id: p
    name: P
    services:
      - id: any
        type: otro
        checks:
          - {id: a, kind: tls, host: a.example}
          - {id: b, kind: tls, host: b.example}
          - {id: extra, kind: tls, host: c.example, critical: false}
      - id: all
        type: otro
        rule: all
        checks:
          - {id: a, kind: tls, host: a.example}
          - {id: b, kind: tls, host: b.example}
"""
)
NOW = utc(2026, 11, 10, 12, 0, 0)


def status(state: State) -> CheckStatus:
    since = NOW - timedelta(minutes=5) if state is State.DOWN else None
    return CheckStatus(state=state, since=since, last_observation_at=NOW)


def report() -> SlaReport:
    period = Period(utc(2026, 11, 1, 5, 0, 0), NOW)
    spans = [Span(period.start, NOW - timedelta(minutes=36), State.UP)]
    spans.append(Span(NOW - timedelta(minutes=36), NOW, State.DOWN, "timeout"))
    timeline = service_timeline(
        [CheckTimeline("p/any/a", "p", "v", True, spans)],
        rule="any",
        vantage_quorum=1,
        period=period,
        maintenance=[],
        monitor_faults={},
    )
    figures = sla_figures(
        timeline,
        period=period,
        now=NOW,
        target=0.99,
        latency=None,
        month_period=Period(period.start, utc(2026, 12, 1, 5, 0, 0)),
    )
    return SlaReport(
        period=period,
        now=NOW,
        timezone="America/Bogota",
        catalog_version=None,
        services=(ServiceReport("p", "P", "any", None, "otro", figures, ()),),
        providers=(),
    )


def render(states: dict[str, CheckStatus]) -> str:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(
        StateCollector(
            checks=lambda: CATALOG.resolved_checks(),
            catalog=lambda: CATALOG,
            states=lambda: states,
            sla=report,
            vantage="v",
            clock=SystemClock(),
        )
    )
    return generate_latest(registry).decode()


def samples(text: str) -> dict[str, dict[tuple[tuple[str, str], ...], float]]:
    out: dict[str, dict[tuple[tuple[str, str], ...], float]] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out.setdefault(s.name, {})[tuple(sorted(s.labels.items()))] = s.value
    return out


def key(**labels: str) -> tuple[tuple[str, str], ...]:
    return tuple(sorted(labels.items()))


def test_check_and_service_states_follow_the_rules() -> None:
    text = render(
        {
            "p/any/a": status(State.DOWN),
            "p/any/b": status(State.UP),
            "p/any/extra": status(State.UP),
            "p/all/a": status(State.DOWN),
            "p/all/b": status(State.UP),
        }
    )
    m = samples(text)
    down_a = key(provider="p", service="any", check="a", vantage="v", state="down")
    assert m["scd_check_state"][down_a] == 1.0
    up_a = key(provider="p", service="any", check="a", vantage="v", state="up")
    assert m["scd_check_state"][up_a] == 0.0
    since = m["scd_check_down_since_timestamp_seconds"]
    assert (
        since[key(provider="p", service="any", check="a", vantage="v")]
        == (NOW - timedelta(minutes=5)).timestamp()
    )
    up = m["scd_service_up"]
    assert up[key(provider="p", service="any", vantage="v")] == 0.0, "rule any: one down"
    assert up[key(provider="p", service="all", vantage="v")] == 1.0, "rule all: not all down"


def test_non_critical_check_only_degrades_and_unknown_is_absent() -> None:
    m = samples(
        render(
            {
                "p/any/a": status(State.UP),
                "p/any/b": status(State.UP),
                "p/any/extra": status(State.DOWN),
            }
        )
    )
    state = m["scd_service_state"]
    assert state[key(provider="p", service="any", vantage="v", state="degraded")] == 1.0
    assert m["scd_service_up"][key(provider="p", service="any", vantage="v")] == 1.0
    assert key(provider="p", service="all", vantage="v") not in m["scd_service_up"]
    assert state[key(provider="p", service="all", vantage="v", state="unknown")] == 1.0


def test_sla_gauges() -> None:
    m = samples(render({}))
    k = key(provider="p", service="any")
    assert m["scd_sla_target_ratio"][k] == 0.99
    assert m["scd_sla_charged_downtime_seconds"][k] == 36 * 60
    # 36 min down in the last hour against a 1 % budget: burn rate 60.
    assert m["scd_sla_burn_rate"][key(provider="p", service="any", window="1h")] == (
        pytest.approx(60.0)
    )
    assert 0 < m["scd_sla_availability_ratio"][k] < 1
    assert m["scd_sla_outages"][k] == 1.0
    # The rangos de medición's bounds: the target, and 2 × 0.99 − 1 (exactly 0.98).
    lower = m["scd_sla_band_lower_ratio"]
    assert lower[key(provider="p", service="any", band="green")] == 0.99
    assert lower[key(provider="p", service="any", band="amber")] == 0.98


def test_promtool_check_metrics_passes_on_state_metrics() -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        if os.environ.get("SCD_MONITOR_REQUIRE_PROMTOOL") == "1":
            pytest.fail("promtool is required (Debian package 'prometheus')")
        pytest.skip("promtool not installed")
    text = render({"p/any/a": status(State.DOWN)})
    proc = subprocess.run(
        [promtool, "check", "metrics"], input=text, capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.strip() == "" and proc.stderr.strip() == "", proc.stdout + proc.stderr
