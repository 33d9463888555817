"""A status that means maintenance (X-Road health check 503) is excluded, not downtime."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from scd_monitor.catalog import parse_catalog
from scd_monitor.clock import SystemClock
from scd_monitor.errors import ConfigError
from scd_monitor.probes import build_probes
from scd_monitor.probes.base import ErrorKind
from scd_monitor.runtime.scheduling import run_probe
from scd_monitor.sla.derive import DerivePolicy, derive_spans
from scd_monitor.sla.model import State
from scd_simulator.fleet import Simulator


async def test_a_maintenance_status_is_marked_and_derived_as_maintenance(tmp_path: Path) -> None:
    sim = Simulator(tmp_path)
    sim.add_endpoint("p/interop/health", kind="xroad_health", behaviour={"status": 503})
    async with sim:
        catalog = parse_catalog(
            f"""
providers:
  - id: p
    name: P
    services:
      - id: interop
        type: interoperabilidad
        checks:
          - id: health
            kind: http
            url: "{sim.url("p/interop/health")}"
            maintenance_status: [503]
"""
        )
        (check,) = catalog.resolved_checks()
        probe = build_probes()["http"]
        results = [
            await run_probe(probe, check, vantage="v", clock=SystemClock()) for _ in range(4)
        ]
    assert all(not r.ok and r.error_kind is ErrorKind.STATUS for r in results)
    assert all(r.outcome.details.get("maintenance") is True for r in results)
    policy = DerivePolicy(latency_threshold=timedelta(seconds=2), staleness=timedelta(seconds=30))
    spans = derive_spans(results, policy)
    assert {s.state for s in spans} == {State.MAINTENANCE}


def test_a_status_cannot_be_both_expected_and_maintenance() -> None:
    with pytest.raises(ConfigError, match="both expected and meaning maintenance"):
        parse_catalog(
            """
providers:
  - id: p
    name: P
    services:
      - id: s
        type: otro
        checks:
          - {id: c, kind: http, url: "http://127.0.0.1/", expect_status: [200, 503],
             maintenance_status: [503]}
"""
        )
