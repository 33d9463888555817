"""What people read in a report, reviewed like a PDF: es-CO numbers (decimal comma),
instants in the catalog's time zone as people write them, no ISO-8601 UTC instant in
the human text (the machine fields keep them), no doubled words whatever the names,
and severities and states that never need a gender guessed."""

from __future__ import annotations

import dataclasses
import html
import itertools
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from scd_monitor.catalog.incident_kinds import Severity, SignalKind
from scd_monitor.catalog.loader import parse_catalog
from scd_monitor.incidents.detect import describe_states, detect
from scd_monitor.incidents.labels import named
from scd_monitor.incidents.model import MONITOR_PROVIDER, MONITOR_SERVICE
from scd_monitor.incidents.observe import DirectoryObservation, Observations
from scd_monitor.incidents.report import (
    EventFacts,
    Evidence,
    IncidentFacts,
    NoteFacts,
    build_report,
    render,
    sla_impact,
)
from scd_monitor.incidents.runner import build_runner
from scd_monitor.incidents.service import IncidentService, names_from_catalog
from scd_monitor.sla.model import State
from scd_monitor.store import Store
from scd_monitor.store.tables import incident_reports
from scd_monitor.xroad.directory import DirectoryEvent
from tests.incidents.conftest import SettableClock, check, config, healthy, outage, service
from tests.incidents.figures import figures
from tests.incidents.schema import validate

ISO_INSTANT = re.compile(r"\d{4}-\d\d-\d\dT")
DECIMAL_POINT = re.compile(r"\d\.\d")
REPORT_ID = re.compile(r"SCD-\d{4}-\d{6}\.\d+")  # an identifier, not a number
DOUBLED_WORD = re.compile(r"\b(\w+)\s+\1\b", re.IGNORECASE)
# A feminine adjective in parentheses then a state: "Verificación x (crítica): caído".
AGREEMENT_SLIP = re.compile(r"\((?:no )?crítica\):", re.IGNORECASE)
SEVERITY_AS_ADJECTIVE = re.compile(r"\((?:Crítica|Alta|Media|Baja)\)")

EXPIRY = datetime(2026, 12, 3, 14, 42, 52, tzinfo=UTC)
"""An instant in UTC: 09:42:52 in Bogotá (UTC-5 all year)."""


def human(doc: dict[str, Any]) -> list[str]:
    """Everything of a report a person reads: its prose fields and its renderings."""
    rendered = render(doc)
    cells = rendered.html.replace("</th>", ": ")  # a row of the table reads "key: value"
    page = html.unescape(re.sub(r"<[^>]+>", " ", cells))
    return [
        doc["summary"],
        *(c["summary"] for c in doc["conditions"]),
        *doc["operation"],
        rendered.text,
        page,
        rendered.subject,
    ]


def facts(
    *,
    status: str = "open",
    kind: SignalKind = SignalKind.OUTAGE,
    provider: str = "prestador-a",
    provider_name: str = "Prestador A S.A.S.",
    service_name: str | None = "Carpeta",
    service_type: str = "carpeta_ciudadana",
    started_at: datetime = EXPIRY - timedelta(minutes=7),
    **context: Any,
) -> IncidentFacts:
    resolved = status == "resolved"
    return IncidentFacts(
        code="SCD-2026-000042",
        provider=provider,
        service="carpeta",
        status=status,
        type=kind,
        severity=Severity.CRITICAL,
        kinds=(kind,),
        started_at=started_at,
        detected_at=started_at + timedelta(minutes=2),
        ended_at=EXPIRY if status != "open" else None,
        resolved_at=EXPIRY + timedelta(minutes=5) if resolved else None,
        context={
            "provider_name": provider_name,
            "service_name": service_name,
            "service_type": service_type,
            "conditions": [],
            "operation": [],
            "impact": {"checks": [], "vantages": ["bogota"], "error_kinds": []},
            "sla": None,
            **context,
        },
    )


def report(
    incident: IncidentFacts,
    *,
    event: str = "opened",
    timezone: str = "America/Bogota",
    notes: tuple[NoteFacts, ...] = (),
    evidence: tuple[Evidence, ...] = (),
) -> dict[str, Any]:
    reason = {"opened": "opened", "updated": "note", "resolved": "resolved"}[event]
    at = EXPIRY + timedelta(minutes=5)
    doc = build_report(
        incident,
        EventFacts(1, event, reason, at, incident.severity),
        list(notes),
        list(evidence),
        generated_at=at,
        timezone=timezone,
        issuer_name="Articulador SCD",
    )
    validate(doc)
    return doc


# -- numbers --------------------------------------------------------------------------------


def test_numbers_have_a_decimal_comma() -> None:
    sla = figures(
        EXPIRY,
        availability=0.99123,
        burn={timedelta(hours=1): 20.25, timedelta(hours=6): 6.5},
        charged=timedelta(minutes=27),
    )
    observed = service(State.UP, sla=sla, name="carpeta", service_type="carpeta_ciudadana")
    signals = detect(Observations(at=EXPIRY, vantage="bogota", services=(observed,)), config())
    conditions = [
        {"kind": s.kind.value, "severity": s.severity.value, "summary": s.summary, "since": None}
        for s in signals[("prestador-a", "carpeta")]
    ]
    doc = report(
        facts(
            kind=SignalKind.SLA_AT_RISK,
            conditions=conditions,
            sla=sla_impact(sla, started_at=EXPIRY - timedelta(hours=1)),
        )
    )
    text = render(doc).text
    assert "Disponibilidad del mes a la fecha: 99,123 %" in text
    assert "Meta de disponibilidad del ANS: 99,500 %" in text
    assert "(99,123 %) está por debajo de la meta del ANS (99,500 %)" in text
    assert "ventana de 1 h: 20,25 (umbral: 14,4)" in text
    assert "20,25 en 1 h; 6,5 en 6 h; 0,5 en 1 d; 0,5 en 3 d" in text
    assert "Presupuesto de error consumido: 12,1 % (27 min de 3 h 43 min 12 s)" in text
    for part in human(doc):
        assert not DECIMAL_POINT.search(REPORT_ID.sub("", part)), part
    # The JSON keeps numbers as numbers.
    assert doc["sla_impact"]["availability"] == 0.99123


# -- instants -------------------------------------------------------------------------------


def test_instants_are_bogota_time_as_people_write_them() -> None:
    cert = check("tls", cert_not_after=EXPIRY, service="carpeta")
    observed = dataclasses.replace(
        service(State.UP, [cert], name="carpeta"), service_name="Carpeta"
    )
    at = EXPIRY + timedelta(minutes=1)
    (signal,) = detect(Observations(at=at, vantage="bogota", services=(observed,)), config())[
        ("prestador-a", "carpeta")
    ]
    assert signal.summary == (
        "El certificado del servidor de la verificación tls venció el 03/12/2026 09:42:52 (UTC-5)."
    )
    doc = report(
        facts(
            kind=SignalKind.CERT_EXPIRED,
            started_at=EXPIRY,
            conditions=[{"kind": "cert_expired", "severity": "high", "summary": signal.summary}],
        ),
        notes=(NoteFacts(EXPIRY + timedelta(minutes=3), "ana", "Se avisó al prestador."),),
    )
    text = render(doc).text
    assert "Inicio: 03/12/2026 09:42:52 (UTC-5)" in text
    assert "Detección: 03/12/2026 09:44:52 (UTC-5)" in text
    assert "03/12/2026 09:45:52 (UTC-5) (ana): Se avisó al prestador." in text
    assert "generado el 03/12/2026 09:47:52 (UTC-5)" in text
    assert "Zona horaria: America/Bogota" in text
    # What machines read stays ISO-8601 UTC.
    assert doc["incident"]["start"] == "2026-12-03T14:42:52Z"
    assert doc["generated_at"] == "2026-12-03T14:47:52Z"
    assert doc["actions"][0]["at"] == "2026-12-03T14:45:52Z"


@pytest.mark.parametrize(
    ("zone", "local"),
    [
        ("America/Bogota", "03/12/2026 09:42:52 (UTC-5)"),
        ("America/Lima", "03/12/2026 09:42:52 (UTC-5)"),
        ("Europe/Madrid", "03/12/2026 15:42:52 (UTC+1)"),
        ("Asia/Kolkata", "03/12/2026 20:12:52 (UTC+5:30)"),
    ],
)
def test_instants_follow_the_zone_given(zone: str, local: str) -> None:
    doc = report(facts(started_at=EXPIRY), timezone=zone)
    assert f"Inicio: {local}" in render(doc).text
    assert local in doc["summary"]
    assert doc["incident"]["start"] == "2026-12-03T14:42:52Z"


CATALOG = """
timezone: America/New_York
providers:
  - id: prestador-a
    name: Prestador A S.A.S.
    services:
      - id: autenticacion
        name: Autenticación Digital (producción)
        type: autenticacion_digital
        checks:
          - {id: oidc, kind: tls, host: a.example}
incidents:
  resolve_after: 0s
"""


def test_the_catalogs_time_zone_reaches_every_instant(tmp_path: Path) -> None:
    """A non-default zone with daylight saving time (until 1 November 2026 UTC-4, then
    UTC-5): each instant shows its own offset (the certificate expires in winter)."""
    catalog = parse_catalog(CATALOG)
    assert catalog.timezone == "America/New_York"
    store = Store(f"sqlite:///{tmp_path}/store.db")
    store.create_schema()
    try:
        now = datetime(2026, 10, 28, 15, tzinfo=UTC)
        expiry = datetime(2026, 11, 5, 14, 42, 52, tzinfo=UTC)
        clock = SettableClock(at=now)
        runner = build_runner(
            catalog.incidents,
            store,
            clock,
            timezone=catalog.timezone,
            vantage="bogota",
            observe=lambda: None,
            names=names_from_catalog(catalog),
        )
        down = check(
            "oidc",
            State.DOWN,
            since=now - timedelta(minutes=2),
            error_kind="tls",
            cert_not_after=expiry,
        )
        observed = service(State.DOWN, [down])
        runner.service.evaluate(Observations(at=now, vantage="bogota", services=(observed,)))
        (doc,) = stored_reports(store)
    finally:
        store.dispose()
    text = render(doc).text
    assert doc["timezone"] == "America/New_York"
    assert "Inicio: 28/10/2026 10:58:00 (UTC-4)" in text  # 14:58 UTC, summer time
    assert "vence el 05/11/2026 09:42:52 (UTC-5), dentro de 7 d 23 h 42 min 52 s" in text
    assert "estado: caído desde el 28/10/2026 10:58:00 (UTC-4)" in text
    assert "Zona horaria: America/New_York" in text
    for part in human(doc):
        assert not ISO_INSTANT.search(part), part


def stored_reports(store: Store) -> list[dict[str, Any]]:
    import json

    with store.engine.connect() as conn:
        rows = conn.execute(select(incident_reports.c.body).order_by(incident_reports.c.id))
        return [json.loads(r.body) for r in rows]


def test_instants_stored_by_older_versions_are_localized_too() -> None:
    doc = report(
        facts(
            conditions=[
                {
                    "kind": "cert_expired",
                    "severity": "high",
                    "summary": "El certificado venció el 2026-12-03T14:42:52Z.",
                    "since": "2026-12-03T14:42:52Z",
                }
            ],
            operation=["Verificación tls (crítica): caído, desde 2026-12-03T14:42:52Z."],
        )
    )
    assert doc["conditions"][0]["summary"] == (
        "El certificado venció el 03/12/2026 09:42:52 (UTC-5)."
    )
    assert doc["conditions"][0]["since"] == "2026-12-03T14:42:52Z"  # machine field
    assert "03/12/2026 09:42:52 (UTC-5)" in doc["operation"][0]
    for part in human(doc):
        assert not ISO_INSTANT.search(part), part


# -- every kind, every stage: no ISO instant, no doubled word, no agreement slip -----------


def scenario_reports(tmp_path: Path, timezone: str) -> list[dict[str, Any]]:
    """Reports of every kind of condition the detection makes, opened, updated (a note)
    and resolved, through the incident service over a real store."""
    store = Store(f"sqlite:///{tmp_path}/store.db")
    store.create_schema()
    try:
        clock = SettableClock()
        cfg = config(rules={"degradation": {"after": "0s"}})
        svc = IncidentService(store, cfg, clock=clock, holder="bogota", timezone=timezone)
        sla = figures(clock.now(), availability=0.98, burn={timedelta(hours=1): 20.25})
        svc.evaluate(outage(clock.now(), sla=sla))
        svc.note("SCD-2026-000001", "Se reinició el proveedor de identidad.", author="ana")
        clock.advance(timedelta(minutes=1))
        svc.evaluate(healthy(clock.now()))

        clock.advance(timedelta(hours=1))
        now = clock.now()
        checks = [
            check("tls", cert_not_after=now + timedelta(days=3, hours=4), service="carpeta"),
            check("tls2", cert_not_after=now - timedelta(hours=1), service="carpeta"),
            check("docs", State.DEGRADED, service="carpeta", critical=False),
            check("api", State.DOWN, service="carpeta", critical=False, since=now),
        ]
        degraded = dataclasses.replace(
            service(State.DEGRADED, checks, name="carpeta", service_type="carpeta_ciudadana"),
            service_name="Servicio de carpeta",
        )
        svc.evaluate(Observations(at=now, vantage="bogota", services=(degraded,)))

        source = DirectoryObservation(
            source="co-test",
            provider="plataforma",
            service="co-test",
            instance="CO-TEST",
            interval=timedelta(minutes=10),
            last_success_at=now - timedelta(hours=1),
            globalconf_expires_at=now - timedelta(minutes=1),
        )
        events = tuple(
            DirectoryEvent(now - timedelta(hours=2), "co-test", kind, "disappeared", subject)
            for kind, subject in (
                ("subsystem", "CO/GOB/1/A"),
                ("service", "CO/GOB/1/B/x"),
                ("service", "CO/GOB/1/B/y"),
            )
        )
        svc.evaluate(
            Observations(at=now, vantage="bogota", directories=(source,), directory_events=events)
        )
        canary = check(
            "internet", State.DOWN, provider=MONITOR_PROVIDER, service="canaries", since=now
        )
        svc.evaluate(Observations(at=now, vantage="bogota", canaries=(canary,)))
        return stored_reports(store)
    finally:
        store.dispose()


@pytest.fixture(scope="module")
def every_report(tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, Any]]:
    docs = scenario_reports(tmp_path_factory.mktemp("scenario"), "America/Bogota")
    types = {d["incident"]["type"] for d in docs}
    assert {"outage", "cert_expired", "directory_anomaly", "monitor_fault"} <= types
    assert {d["event"]["kind"] for d in docs} == {"opened", "updated", "resolved"}
    kinds = {c["kind"] for d in docs for c in d["conditions"]}
    assert kinds >= {"outage", "sla_at_risk", "cert_expired", "cert_expiring"}
    return docs


def test_no_iso_instant_in_what_people_read(every_report: list[dict[str, Any]]) -> None:
    for doc in every_report:
        for part in human(doc):
            assert not ISO_INSTANT.search(part), part
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", doc["incident"]["start"])


def test_no_decimal_point_doubled_word_or_agreement_slip(
    every_report: list[dict[str, Any]],
) -> None:
    for doc in every_report:
        for part in human(doc):
            assert not DECIMAL_POINT.search(REPORT_ID.sub("", part)), part
            assert not DOUBLED_WORD.search(part), DOUBLED_WORD.search(part)
            assert not AGREEMENT_SLIP.search(part), part
            assert not SEVERITY_AS_ADJECTIVE.search(part), part
            assert ".." not in part and "((" not in part and "))" not in part, part


def test_checks_states_are_written_after_estado(every_report: list[dict[str, Any]]) -> None:
    lines = [line for doc in every_report for line in doc["operation"]]
    checks = [line for line in lines if line.startswith("Verificación ")]
    assert checks
    for line in checks:
        assert re.match(
            r"Verificación \S+ \((?:no )?crítica\) — estado: "
            r"(?:disponible|caído|degradado|en mantenimiento|sin datos)[ .;]",
            line,
        ), line
    assert "Verificación api (no crítica) — estado: caído desde el " in "\n".join(checks)


def test_every_kind_of_condition_reads_well(every_report: list[dict[str, Any]]) -> None:
    summaries = {c["summary"] for d in every_report for c in d["conditions"]}
    expected = [
        "El servicio no responde. Verificaciones críticas caídas: 1 de 1 (oidc); tipo de "
        "error: tiempo de espera agotado (timeout).",
        "La disponibilidad del mes a la fecha (98,000 %) está por debajo de la meta del ANS "
        "(99,500 %).",
        "Servicio degradado: respuestas por encima del umbral de latencia en docs; "
        "verificaciones no críticas caídas: api.",
        "El certificado del servidor de la verificación tls2 venció el 04/05/2026 10:01:00 "
        "(UTC-5).",
        "El certificado del servidor de la verificación tls vence el 07/05/2026 15:01:00 "
        "(UTC-5), dentro de 3 d 4 h.",
        "Elementos que desaparecieron del directorio de X-Road CO-TEST (fuente co-test): "
        "2 servicios, 1 subsistema — CO/GOB/1/B/x, CO/GOB/1/B/y, CO/GOB/1/A.",
        "La configuración global de X-Road CO-TEST venció el 04/05/2026 11:00:00 (UTC-5): "
        "los servidores de seguridad que no la renueven dejan de intercambiar mensajes.",
        "El directorio de X-Road CO-TEST (fuente co-test) no se ha podido leer desde el "
        "04/05/2026 10:01:00 (UTC-5), hace 1 h.",
        "Verificaciones de control del monitor caídas desde el punto de medición bogota: "
        "internet. Mientras dure la falla, las mediciones de ese punto no se imputan a los "
        "prestadores.",
    ]
    for summary in expected:
        assert summary in summaries, summary
    burn = next(s for s in summaries if s.startswith("Tasa de consumo"))
    assert burn == (
        "Tasa de consumo del presupuesto de error en la ventana de 1 h: 20,25 (umbral: 14,4); "
        "tiempo de caída imputado en esa ventana: 3 min."
    )


def test_the_summary_of_each_stage(every_report: list[dict[str, Any]]) -> None:
    first = [d for d in every_report if d["incident"]["id"] == "SCD-2026-000001"]
    assert [d["summary"] for d in first] == [
        "Se abre el incidente SCD-2026-000001 por caída del servicio Autenticación Digital A "
        "del Prestador A. Inicio: 04/05/2026 09:58:00 (UTC-5). Severidad: crítica.",
        "El incidente SCD-2026-000001, abierto por caída del servicio Autenticación Digital A "
        "del Prestador A, sigue abierto. Inicio: 04/05/2026 09:58:00 (UTC-5). Severidad: "
        "crítica.",
        "Se cierra el incidente SCD-2026-000001, abierto por caída del servicio Autenticación "
        "Digital A del Prestador A. Inicio: 04/05/2026 09:58:00 (UTC-5); fin: 04/05/2026 "
        "10:01:00 (UTC-5); duración: 3 min. Severidad: crítica.",
    ]
    monitor = next(d for d in every_report if d["incident"]["provider"]["id"] == MONITOR_PROVIDER)
    assert monitor["incident"]["service"]["id"] == MONITOR_SERVICE
    assert monitor["summary"].startswith(
        "Se abre el incidente SCD-2026-000004 por falla del sistema de monitoreo. Inicio:"
    )
    assert "Prestador: scd-monitor (sistema de monitoreo)\n" in render(monitor).text + "\n"


def test_a_recovering_incident() -> None:
    doc = report(facts(status="recovering"), event="updated")
    assert doc["summary"] == (
        "El incidente SCD-2026-000042, abierto por caída del servicio Carpeta (Carpeta "
        "Ciudadana) del Prestador A S.A.S., está en observación antes del cierre: las "
        "condiciones se normalizaron. Inicio: 03/12/2026 09:35:52 (UTC-5). Severidad: crítica."
    )
    assert "Estado: En observación" in render(doc).text


# -- names: never "servicio del servicio" -----------------------------------------------------

SERVICE_NAMES = [
    None,  # the id stands in: "carpeta"
    "carpeta",
    "Servicio de carpeta",
    "servicio carpeta ciudadana",
    "SERVICIO DE AUTENTICACIÓN",
    "Servicios de interoperabilidad",
    "Carpeta Ciudadana Digital",
]
PROVIDER_NAMES = ["Prestador A S.A.S.", "prestador-b", "PRESTADOR DE SERVICIOS X", "Certicámara"]


def _names() -> Iterator[tuple[str | None, str, SignalKind, str]]:
    stages = ["open", "recovering", "resolved"]
    yield from itertools.product(SERVICE_NAMES, PROVIDER_NAMES, list(SignalKind), stages)


def test_no_doubled_words_whatever_the_names() -> None:
    for service_name, provider_name, kind, status in _names():
        event = {"open": "opened", "recovering": "updated", "resolved": "resolved"}[status]
        provider = MONITOR_PROVIDER if kind is SignalKind.MONITOR_FAULT else "prestador-a"
        doc = report(
            facts(
                status=status,
                kind=kind,
                provider=provider,
                provider_name=provider_name,
                service_name=service_name,
            ),
            event=event,
        )
        for part in human(doc):
            assert not DOUBLED_WORD.search(part), (part, DOUBLED_WORD.search(part))
            lowered = part.lower()
            assert "servicio del servicio" not in lowered, part
            assert "servicio servicio" not in lowered, part
            assert "prestador prestador" not in lowered, part
            assert ".." not in part, part


def test_the_title_names_the_service_once() -> None:
    doc = report(facts(service_name=None))  # an outage of "carpeta", no name in the catalog
    summary = doc["summary"]
    assert "caída del servicio carpeta (Carpeta Ciudadana) del Prestador A S.A.S." in summary
    doc = report(facts(service_name="Servicio de carpeta", provider_name="Acme"))
    summary = doc["summary"]
    assert "por caída del Servicio de carpeta (Carpeta Ciudadana) del prestador Acme." in summary
    # A name that already says the type gets no parenthesis.
    doc = report(facts(service_name="Carpeta Ciudadana Digital"))
    assert "caída del servicio Carpeta Ciudadana Digital del" in doc["summary"]


@pytest.mark.parametrize(
    ("noun", "name", "phrase"),
    [
        ("servicio", "carpeta", "servicio carpeta"),
        ("servicio", "Servicio de carpeta", "Servicio de carpeta"),
        ("servicio", "SERVICIOS web", "SERVICIOS web"),
        ("servicio", "Serviciobus", "servicio Serviciobus"),
        ("prestador", "Prestador A S.A.S.", "Prestador A S.A.S."),
        ("prestador", "Certicámara", "prestador Certicámara"),
        ("prestador", "prestador-b", "prestador-b"),
    ],
)
def test_named(noun: str, name: str, phrase: str) -> None:
    assert named(noun, name) == phrase


# -- severities and states --------------------------------------------------------------------


def test_operation_lines_write_the_state_after_estado() -> None:
    observed = service(
        State.DOWN,
        [
            check("documentos", State.DOWN, since=EXPIRY, error_kind="status"),
            check("portal", State.UP, critical=False),
        ],
    )
    lines = describe_states(observed, ZoneInfo("America/Bogota"))
    assert lines == [
        "Estado del servicio: caído.",
        "Verificación documentos (crítica) — estado: caído desde el 03/12/2026 09:42:52 "
        "(UTC-5); último error: respuesta HTTP inesperada (status).",
        "Verificación portal (no crítica) — estado: disponible.",
    ]


def test_conditions_and_evidence_lines() -> None:
    doc = report(
        facts(
            conditions=[
                {
                    "kind": "outage",
                    "severity": "critical",
                    "summary": "El servicio no responde.",
                    "since": "2026-12-03T14:42:52Z",
                }
            ],
            impact={"checks": ["prestador-a/carpeta/api"], "vantages": [], "error_kinds": []},
        ),
        evidence=(
            Evidence("prestador-a/carpeta/api", "bogota", EXPIRY, 10.0, "timeout", "sin respuesta"),
            Evidence("prestador-a/carpeta/api", "medellin", EXPIRY, 0.2, "status", None, 503),
        ),
    )
    text = render(doc).text
    assert (
        "Caída del servicio — severidad: crítica; desde el 03/12/2026 09:42:52 (UTC-5). "
        "El servicio no responde." in text
    )
    assert (
        "03/12/2026 09:42:52 (UTC-5) · bogota · prestador-a/carpeta/api: tiempo de espera "
        "agotado (timeout) — sin respuesta" in text
    )
    assert (
        "03/12/2026 09:42:52 (UTC-5) · medellin · prestador-a/carpeta/api: respuesta HTTP "
        "inesperada (status) (HTTP 503)" in text
    )
    assert "Tipos de error: respuesta HTTP inesperada (status), tiempo de espera agotado" in text
    assert "Puntos de medición: bogota, medellin" in text


# -- the rango de medición ---------------------------------------------------------------------


def test_the_report_names_the_months_band_from_the_one_definition() -> None:
    """Issue 11: the incident report shows the same band as the board and the export
    (docs/rangos-de-medicion.md), with the service's own amber bound."""
    start = datetime(2026, 5, 1, 5, tzinfo=UTC)
    now = start + timedelta(seconds=100_000)
    # 1 000 s charged out of 100 000: 99 %, the default amber bound of a 99.5 % target.
    sla = dataclasses.replace(
        figures(now, availability=0.99, charged=timedelta(seconds=1_000)),
        eligible=timedelta(seconds=100_000),
    )
    at_bound = sla_impact(sla, started_at=now - timedelta(hours=1))
    assert at_bound is not None and at_bound["band"] == "amber"
    doc = report(facts(kind=SignalKind.SLA_AT_RISK, sla=at_bound))
    assert "Rango de medición del mes a la fecha: Incumplimiento leve (Ámbar)" in render(doc).text
    # The catalog's amber_from moves the bound: the same figures are red.
    strict = sla_impact(sla, started_at=now - timedelta(hours=1), amber_from=0.992)
    assert strict is not None and strict["band"] == "red"
    doc = report(facts(kind=SignalKind.SLA_AT_RISK, sla=strict))
    assert "Rango de medición del mes a la fecha: Incumplimiento grave (Rojo)" in render(doc).text
