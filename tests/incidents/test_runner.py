"""The pieces as the daemon will wire them: a parsed catalog, real probe results, the real
state tracker, :func:`observe`, and the runner's loops delivering to a file drop."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta
from pathlib import Path

from scd_monitor.catalog import parse_catalog
from scd_monitor.catalog.incidents import IncidentsConfig
from scd_monitor.incidents.observe import Observations, observe
from scd_monitor.incidents.runner import build_runner
from scd_monitor.incidents.service import names_from_catalog
from scd_monitor.probes.base import ErrorKind, Outcome, ProbeResult
from scd_monitor.runtime.tracker import StateTracker
from scd_monitor.sla.model import State
from scd_monitor.store import ResultRepository, Store
from tests.incidents.conftest import T0, SettableClock
from tests.incidents.schema import validate

CATALOG = parse_catalog(
    """
defaults: {interval: 1m, timeout: 10s}
providers:
  - id: prestador-a
    name: Prestador A
    contact: soporte@prestador-a.example
    services:
      - id: autenticacion
        name: Autenticación Digital A
        type: autenticacion_digital
        sla: {latency_threshold: 1s}
        maintenance:
          - {start: "2026-05-04T11:00:00-05:00", end: "2026-05-04T11:30:00-05:00", reason: Parche}
        checks:
          - {id: oidc, kind: http, url: "https://idp.prestador-a.example/.well-known/openid-configuration"}
          - {id: cert, kind: tls, host: idp.prestador-a.example, critical: false}
"""
)
OIDC = "prestador-a/autenticacion/oidc"


def result(minute: int, ok: bool, check: str = OIDC) -> ProbeResult:
    return ProbeResult(
        check_id=check,
        kind="http",
        vantage="bogota",
        started_at=T0 + timedelta(minutes=minute),
        duration=0.2,
        outcome=Outcome(
            ok=ok,
            error_kind=None if ok else ErrorKind.CONNECT,
            message=None if ok else "connection refused",
            cert_not_after=T0 + timedelta(days=3) if check.endswith("cert") else None,
        ),
    )


def read_reports(directory: Path, code: str) -> list[dict]:  # type: ignore[type-arg]
    return [json.loads(p.read_text()) for p in sorted(directory.glob(f"{code}.*.json"))]


async def test_tracker_states_become_an_incident_and_its_files(
    store: Store, tmp_path: Path, clock: SettableClock
) -> None:
    tracker = StateTracker(store, vantage="bogota", clock=clock)
    tracker.set_catalog(CATALOG)
    latest: dict[str, ProbeResult] = {}

    def observations() -> Observations:
        return observe(CATALOG, tracker.current(), now=clock.now(), vantage="bogota", latest=latest)

    config = IncidentsConfig.model_validate(
        {
            "resolve_after": "2m",
            "evaluate_every": "10ms",
            "sinks": [{"id": "archivo", "kind": "file", "directory": str(tmp_path)}],
            "routes": [{"audience": "operations", "sinks": ["archivo"]}],
            "outbox": {"interval": "10ms"},
        }
    )
    runner = build_runner(
        config,
        store,
        clock,
        timezone=CATALOG.timezone,
        vantage="bogota",
        observe=observations,
        names=names_from_catalog(CATALOG),
    )

    async def minute(m: int, ok: bool) -> list[object]:
        batch = [result(m, ok), result(m, True, "prestador-a/autenticacion/cert")]
        ResultRepository(store).write(batch)
        latest.update({r.check_id: r for r in batch})
        clock.at = T0 + timedelta(minutes=m, seconds=5)
        tracker.run_until_idle()
        return await runner.evaluate_once()

    # the certificate expires in 3 days: an incident opens at once
    assert [e.kind for e in await minute(0, True)] == ["opened"]  # type: ignore[attr-defined]
    (cert,) = runner.service.list()
    assert cert.type.value == "cert_expiring"
    for m in (1, 2, 3):
        await minute(m, False)
    assert tracker.current()[OIDC].state is State.DOWN  # 3 failures: confirmed
    assert [i.type.value for i in runner.service.list()] == ["outage"]  # same incident, escalated
    for m in range(4, 9):
        await minute(m, True)  # the outage ends; the certificate keeps the incident open

    stop = asyncio.Event()
    task = asyncio.create_task(runner.run(stop))
    while runner.service.stats().backlog:
        await asyncio.sleep(0.01)
    stop.set()
    await asyncio.wait_for(task, 5)

    code = cert.code
    docs = read_reports(tmp_path, code)
    for d in docs:
        validate(d)
    assert [(d["event"]["kind"], d["event"]["reason"]) for d in docs] == [
        ("opened", "opened"),
        ("updated", "escalated"),
    ]
    outage = docs[1]
    assert outage["incident"]["start"] == "2026-05-04T15:00:05Z"  # the cert's, first seen
    assert outage["incident"]["provider"]["name"] == "Prestador A"
    assert outage["impact"]["error_kinds"] == ["connect"]
    assert outage["evidence"][0]["message"] == "connection refused"
    assert any("caído" in line for line in outage["operation"])
    snap = runner.snapshot()
    assert snap.stats is not None and snap.evaluations_total >= 8


def test_an_allowed_maintenance_window_is_not_an_outage(store: Store, clock: SettableClock) -> None:
    tracker = StateTracker(store, vantage="bogota", clock=clock)
    tracker.set_catalog(CATALOG)
    # 11:05-11:10 Bogotá = 16:05-16:10 UTC: inside the window
    ResultRepository(store).write([result(65 + m, False) for m in range(5)])
    clock.at = T0 + timedelta(minutes=70)
    tracker.run_until_idle()
    assert tracker.current()[OIDC].state is State.DOWN
    obs = observe(CATALOG, tracker.current(), now=clock.now(), vantage="bogota")
    (service,) = obs.services
    assert service.state is State.MAINTENANCE
