"""``scd-monitor incidents …`` and ``scd-monitor deliveries …`` (as the CLI will call them)
and the Prometheus collector."""

from __future__ import annotations

import argparse
import io
import json
from datetime import timedelta

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from scd_monitor.cli import incidents as commands
from scd_monitor.incidents.metrics import IncidentCollector, IncidentMetricsSnapshot
from scd_monitor.incidents.outbox import OutboxDispatcher
from scd_monitor.incidents.service import IncidentService
from scd_monitor.store import Store
from tests.incidents.conftest import Recorder, SettableClock, config, outage


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="scd-monitor")
    common = argparse.ArgumentParser(add_help=False)
    sub = p.add_subparsers(dest="command", required=True)
    commands.add_parsers(sub, common)
    return p


def cli(store_url: str, clock: SettableClock, *argv: str) -> tuple[int, str]:
    args = parser().parse_args(argv)
    out = io.StringIO()
    code = commands.run(
        args,
        database_url=store_url,
        config=config(resolve_after="1h"),
        timezone="America/Bogota",
        clock=clock,
        out=out,
    )
    return code, out.getvalue()


def test_incident_commands(store: Store, store_url: str, clock: SettableClock) -> None:
    service = IncidentService(store, config(resolve_after="1h"), clock=clock, holder="v")
    (event,) = service.evaluate(outage(clock.now()))
    code, out = cli(store_url, clock, "incidents", "list")
    assert code == 0 and event.incident in out and "critical" in out
    code, out = cli(
        store_url,
        clock,
        "incidents",
        "note",
        event.incident,
        "Se reinició el IdP",
        "--author",
        "ana",
    )
    assert code == 0 and "update report" in out
    code, out = cli(store_url, clock, "incidents", "show", event.incident)
    assert code == 0 and "Se reinició el IdP" in out and "REPORTE DE INCIDENTE" in out
    code, out = cli(store_url, clock, "incidents", "show", event.incident, "--format", "json")
    body = json.loads(out)
    assert [e["kind"] for e in body["events"]] == ["opened", "updated"]
    assert body["actions"][0]["author"] == "ana"
    code, out = cli(store_url, clock, "incidents", "resolve", event.incident, "--note", "Atendido")
    assert code == 0 and "resolved" in out
    code, out = cli(store_url, clock, "incidents", "resolve", event.incident)
    assert code == 1
    code, out = cli(store_url, clock, "incidents", "list")
    assert "no open incidents" in out
    code, out = cli(store_url, clock, "incidents", "list", "--all", "--format", "json")
    assert json.loads(out)[0]["status"] == "resolved"


async def test_deliveries_commands(store: Store, store_url: str, clock: SettableClock) -> None:
    service = IncidentService(store, config(resolve_after="1h"), clock=clock, holder="v")
    service.evaluate(outage(clock.now()))
    service.evaluate(outage(clock.now(), provider="p2"))
    from scd_monitor.errors import SinkError

    sink = Recorder(fail=[SinkError("HTTP 410: gone", permanent=True)])
    await OutboxDispatcher(store, {"fake": sink}, clock).run_once()
    code, out = cli(store_url, clock, "deliveries", "--failed")
    assert code == 0 and "HTTP 410" in out
    failed = json.loads(cli(store_url, clock, "deliveries", "--failed", "--format", "json")[1])
    assert len(failed) == 1
    code, out = cli(store_url, clock, "deliveries", "--retry", str(failed[0]["id"]))
    assert code == 0 and "re-queued" in out
    pending = json.loads(cli(store_url, clock, "deliveries", "--pending", "--format", "json")[1])
    assert [d["id"] for d in pending] == [failed[0]["id"]]
    code, out = cli(store_url, clock, "deliveries")
    assert "backlog 1" in out
    with pytest.raises(SystemExit):
        parser().parse_args(["deliveries", "--failed", "--pending"])


async def test_collector(store: Store, clock: SettableClock) -> None:
    service = IncidentService(store, config(resolve_after="1h"), clock=clock, holder="v")
    service.evaluate(outage(clock.now()))
    dispatcher = OutboxDispatcher(store, {"fake": Recorder()}, clock)
    clock.advance(timedelta(seconds=5))
    before = service.stats()
    await dispatcher.run_once()
    snapshots = [
        IncidentMetricsSnapshot(stats=before, sinks=("fake",), evaluations_total=1),
        IncidentMetricsSnapshot(
            stats=service.stats(),
            outcomes=dict(dispatcher.outcomes),
            sinks=("fake",),
            evaluations_total=2,
            last_evaluation_timestamp=clock.now().timestamp(),
        ),
    ]
    registry = CollectorRegistry(auto_describe=False)
    registry.register(IncidentCollector(lambda: snapshots[0]))
    text = generate_latest(registry).decode()
    assert 'scd_incidents_open{severity="critical"} 1.0' in text
    assert 'scd_incidents_open{severity="low"} 0.0' in text
    assert 'scd_incident_deliveries{sink="fake",status="pending"} 1.0' in text
    assert "scd_outbox_backlog 1.0" in text
    assert "scd_outbox_oldest_pending_age_seconds 5.0" in text
    snapshots.pop(0)
    text = generate_latest(registry).decode()
    assert 'scd_incident_delivery_attempts_total{outcome="delivered",sink="fake"} 1.0' in text
    assert 'scd_incident_deliveries{sink="fake",status="delivered"} 1.0' in text
    assert "scd_outbox_backlog 0.0" in text
    assert "scd_incident_evaluations_total 2.0" in text
