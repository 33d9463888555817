"""The incident service over a real store (SQLite and PostgreSQL): evaluate, note,
resolve, restart, one incident per service, reports valid against the schema."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from sqlalchemy import select

from scd_monitor.errors import NotFoundError, StoreError
from scd_monitor.incidents.service import IncidentService
from scd_monitor.probes.base import ErrorKind, Outcome, ProbeResult
from scd_monitor.store import ResultRepository, Store
from scd_monitor.store.tables import deliveries, incident_reports, incidents
from tests.incidents.conftest import SettableClock, config, healthy, outage
from tests.incidents.figures import figures
from tests.incidents.schema import validate


def make(store: Store, clock: SettableClock, **cfg: object) -> IncidentService:
    return IncidentService(store, config(**cfg), clock=clock, holder="bogota")


def reports(store: Store) -> list[dict]:  # type: ignore[type-arg]
    with store.engine.connect() as conn:
        rows = conn.execute(select(incident_reports.c.body).order_by(incident_reports.c.id))
        return [json.loads(r.body) for r in rows]


def seed_failures(store: Store, clock: SettableClock) -> None:
    ResultRepository(store).write(
        [
            ProbeResult(
                check_id="prestador-a/autenticacion/oidc",
                kind="http",
                vantage="bogota",
                started_at=clock.now() - timedelta(seconds=30 * i),
                duration=10.0,
                outcome=Outcome.failure(
                    ErrorKind.TIMEOUT,
                    "no answer from https://user:hunter2@a.example/x?access_token=s3cr3t",
                    details={"password": "hunter2", "bytes": 0},
                ),
            )
            for i in range(1, 4)
        ]
    )


def test_outage_open_note_resolve_cycle(store: Store, clock: SettableClock) -> None:
    seed_failures(store, clock)
    service = make(store, clock)
    opened = service.evaluate(outage(clock.now()))
    assert [(e.kind, e.incident, e.deliveries) for e in opened] == [
        ("opened", "SCD-2026-000001", 1)
    ]
    clock.advance(timedelta(seconds=10))
    assert service.evaluate(outage(clock.now())) == []  # the same problem: nothing new

    note = service.note("scd-2026-000001", "Se reinició el proveedor de identidad", author="ana")
    assert (note.kind, note.reason, note.seq) == ("updated", "note", 2)

    clock.advance(timedelta(minutes=1))
    resolved = service.evaluate(healthy(clock.now()))
    assert [e.kind for e in resolved] == ["resolved"]

    docs = reports(store)
    assert [d["event"]["kind"] for d in docs] == ["opened", "updated", "resolved"]
    for d in docs:
        validate(d)
    assert docs[1]["actions"] == [
        {
            "at": docs[1]["actions"][0]["at"],
            "author": "ana",
            "text": "Se reinició el proveedor de identidad",
        }
    ]
    assert docs[2]["incident"]["end"] is not None and docs[2]["conditions"] == []
    evidence = docs[0]["evidence"]
    assert len(evidence) == 3 and evidence[0]["error_kind"] == "timeout"
    text = json.dumps(docs)
    assert "hunter2" not in text and "s3cr3t" not in text
    assert docs[0]["recommendations"][0]["basis"] == "error_kind:timeout"

    detail = service.show("SCD-2026-000001")
    assert detail.incident.status == "resolved"
    assert [e.kind for e, _, _ in detail.events] == ["opened", "updated", "resolved"]
    assert len(detail.deliveries) == 3
    assert service.list() == [] and len(service.list(open_only=False)) == 1


def test_codes_are_sequential_per_year(store: Store, clock: SettableClock) -> None:
    service = make(store, clock)
    codes = []
    for i in range(3):
        events = service.evaluate(outage(clock.now(), provider=f"p{i}"))
        codes += [e.incident for e in events if e.kind == "opened"]
    assert codes == ["SCD-2026-000001", "SCD-2026-000002", "SCD-2026-000003"]


def test_state_survives_a_restart(store: Store, clock: SettableClock) -> None:
    make(store, clock).evaluate(outage(clock.now()))
    clock.advance(timedelta(seconds=30))
    again = make(store, clock)  # a new daemon on the same database
    assert again.evaluate(outage(clock.now())) == []
    clock.advance(timedelta(seconds=30))
    assert [e.kind for e in again.evaluate(healthy(clock.now()))] == ["resolved"]
    with store.engine.connect() as conn:
        assert conn.execute(select(incidents.c.code)).scalars().all() == ["SCD-2026-000001"]


def test_another_evaluator_holding_the_lease_does_nothing(
    store: Store, clock: SettableClock
) -> None:
    first = make(store, clock)
    second = IncidentService(store, config(), clock=clock, holder="medellin")
    assert first.evaluate(outage(clock.now()))
    assert second.evaluate(outage(clock.now(), provider="otro")) == []
    clock.advance(timedelta(minutes=5))  # the first one's lease ran out
    events = second.evaluate(outage(clock.now(), provider="otro"))
    assert [(e.kind, e.provider) for e in events] == [
        ("opened", "otro"),
        ("resolved", "prestador-a"),  # the first daemon's incident, seen by the new evaluator
    ]


def test_manual_resolution_and_errors(store: Store, clock: SettableClock) -> None:
    service = make(store, clock)
    (event,) = service.evaluate(outage(clock.now()))
    resolved = service.resolve(event.incident, author="ana", text="Falla confirmada y atendida")
    assert resolved.kind == "resolved" and resolved.reason == "manual"
    with pytest.raises(NotFoundError):
        service.resolve(event.incident)
    with pytest.raises(NotFoundError):
        service.note("SCD-2026-999999", "x")
    with pytest.raises(ValueError):
        service.note(event.incident, "  ")
    clock.advance(timedelta(minutes=1))
    assert service.evaluate(outage(clock.now())) == []  # suppressed until it clears
    clock.advance(timedelta(minutes=1))
    service.evaluate(healthy(clock.now()))
    clock.advance(timedelta(minutes=1))
    (back,) = service.evaluate(outage(clock.now()))
    assert (back.incident, back.reason) == (event.incident, "reopened")
    doc = reports(store)[-1]
    validate(doc)
    assert [a["text"] for a in doc["actions"]] == ["Falla confirmada y atendida"]


def test_routing_by_severity_and_audience(store: Store, clock: SettableClock) -> None:
    cfg = {
        "resolve_after": "1h",
        "sinks": [
            {"id": "mintic", "kind": "file", "directory": "/x"},
            {"id": "ops", "kind": "file", "directory": "/y"},
            {
                "id": "prestadores",
                "kind": "email",
                "host": "127.0.0.1",
                "sender": "monitor@scd.example",
            },
        ],
        "routes": [
            {"audience": "authority", "sinks": ["mintic"], "min_severity": "critical"},
            {"audience": "provider", "sinks": ["prestadores"], "events": ["opened"]},
            {"audience": "operations", "sinks": ["ops"]},
        ],
    }
    service = make(store, clock, **cfg)
    service.evaluate(outage(clock.now()))  # critical: all three
    service.evaluate(
        outage(clock.now(), provider="sin-contacto", contact=None, service_type="otro")
    )
    with store.engine.connect() as conn:
        rows = conn.execute(
            select(
                deliveries.c.idempotency_key, deliveries.c.status, deliveries.c.recipient
            ).order_by(deliveries.c.id)
        ).all()
    assert [tuple(r) for r in rows] == [
        ("SCD-2026-000001.1.mintic", "pending", None),
        ("SCD-2026-000001.1.prestadores", "pending", "soporte@prestador-a.example"),
        ("SCD-2026-000001.1.ops", "pending", None),
        ("SCD-2026-000002.1.prestadores", "failed", None),  # no contact: kept, shown
        ("SCD-2026-000002.1.ops", "pending", None),
    ]


def test_sla_impact_is_in_the_report(store: Store, clock: SettableClock) -> None:
    now = clock.now()
    obs = outage(now, sla=figures(now, outage_start=now - timedelta(minutes=2)))
    make(store, clock).evaluate(obs)
    (doc,) = reports(store)
    validate(doc)
    impact = doc["sla_impact"]
    assert impact["incident_charged_seconds"] == 120
    assert impact["charged_downtime_seconds"] == 180
    assert 0 < impact["error_budget_consumed_ratio"] < 1


def test_a_failed_transaction_stores_nothing(store: Store, clock: SettableClock) -> None:
    service = make(store, clock)

    def boom(*_a: object, **_k: object) -> None:
        raise StoreError("disk on fire")

    service.outbox.add_delivery = boom  # type: ignore[method-assign]
    with pytest.raises(StoreError):
        service.evaluate(outage(clock.now()))
    with store.engine.connect() as conn:
        assert conn.execute(select(incidents.c.id)).first() is None
    service2 = make(store, clock)
    assert [e.incident for e in service2.evaluate(outage(clock.now()))] == ["SCD-2026-000001"]


def test_no_fresh_data_keeps_the_incident_open(store: Store, clock: SettableClock) -> None:
    from scd_monitor.incidents.observe import Observations
    from scd_monitor.sla.model import State
    from tests.incidents.conftest import service as observed

    incidents_service = make(store, clock)
    incidents_service.evaluate(outage(clock.now()))
    for _ in range(5):  # e.g. a restart before the state tracker's first pass
        clock.advance(timedelta(minutes=1))
        blind = Observations(at=clock.now(), vantage="bogota", services=(observed(State.UNKNOWN),))
        assert incidents_service.evaluate(blind) == []
    assert [i.status for i in incidents_service.list()] == ["open"]
    clock.advance(timedelta(minutes=1))
    assert [e.kind for e in incidents_service.evaluate(healthy(clock.now()))] == ["resolved"]


def test_hostile_names_from_a_directory_are_stored_and_reported_clean(
    store: Store, clock: SettableClock
) -> None:
    """Issue 12: a discovered name with a lone surrogate, NUL and a line feed used to
    crash the evaluation while storing (and with it, every service's incidents)."""
    import dataclasses

    now = clock.now()
    obs = outage(now)
    hostile = dataclasses.replace(
        obs.services[0],
        provider_name="Miembro \ud800 malo\x00",
        service_name="Servicio\nBcc: x@y \udfff" + "x" * 10_000,
    )
    obs = dataclasses.replace(obs, services=(hostile,))
    (event,) = make(store, clock).evaluate(obs)
    assert event.incident == "SCD-2026-000001"
    (doc,) = reports(store)
    validate(doc)
    text = json.dumps(doc, ensure_ascii=False)
    text.encode("utf-8")  # strict: no lone surrogate left
    assert "\x00" not in text
    assert "Miembro \ufffd malo\u2400" in text
    assert "[+" in text  # the 10 kB name was bounded, and says so
