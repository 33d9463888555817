"""The report: the JSON Schema, the Spanish renderings, redaction of evidence."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from scd_monitor.catalog.incident_kinds import Severity, SignalKind
from scd_monitor.incidents.report import (
    EventFacts,
    Evidence,
    IncidentFacts,
    NoteFacts,
    build_report,
    redact_details,
    redact_evidence,
    render,
)
from tests.incidents.conftest import T0
from tests.incidents.schema import SCHEMA, validate


def incident(**overrides: object) -> IncidentFacts:
    values: dict[str, object] = {
        "code": "SCD-2026-000042",
        "provider": "prestador-a",
        "service": "autenticacion",
        "status": "open",
        "type": SignalKind.OUTAGE,
        "severity": Severity.CRITICAL,
        "kinds": (SignalKind.OUTAGE,),
        "started_at": T0 - timedelta(minutes=7),
        "detected_at": T0 - timedelta(minutes=5),
        "ended_at": None,
        "resolved_at": None,
        "context": {
            "provider_name": "Prestador A S.A.S.",
            "service_name": "Autenticación <Digital> & más",
            "service_type": "autenticacion_digital",
            "provider_contact": "soporte@a.example",
            "conditions": [
                {
                    "kind": "outage",
                    "severity": "critical",
                    "summary": "El servicio no responde.",
                    "since": "2026-05-04T14:53:00Z",
                }
            ],
            "operation": ["Estado del servicio: caído."],
            "impact": {
                "checks": ["prestador-a/autenticacion/oidc"],
                "vantages": ["bogota"],
                "error_kinds": ["timeout"],
            },
            "sla": None,
        },
    }
    values.update(overrides)
    return IncidentFacts(**values)  # type: ignore[arg-type]


def doc(**overrides: object) -> dict:  # type: ignore[type-arg]
    return build_report(
        incident(**overrides),
        EventFacts(1, "opened", "opened", T0 - timedelta(minutes=5), Severity.CRITICAL),
        [NoteFacts(T0, "ana", "Se escaló al prestador.")],
        [
            Evidence(
                "prestador-a/autenticacion/oidc",
                "bogota",
                T0 - timedelta(minutes=1),
                10.0,
                "timeout",
                "sin respuesta",
                None,
                {},
            )
        ],
        generated_at=T0,
        timezone="America/Bogota",
        issuer_name="Articulador SCD",
    )


def test_the_schema_is_a_valid_draft_2020_12_schema() -> None:
    import jsonschema

    jsonschema.Draft202012Validator.check_schema(SCHEMA)


def test_open_report_is_valid_and_in_spanish() -> None:
    d = doc()
    validate(d)
    assert d["report_id"] == "SCD-2026-000042.1"
    assert d["incident"]["duration_seconds"] == 420 and d["incident"]["ongoing"]
    assert d["incident"]["type_label"] == "Caída del servicio"
    assert d["summary"].startswith(
        "Se abre el incidente SCD-2026-000042 por caída del servicio Autenticación"
    )
    assert d["summary"].endswith("Severidad: crítica.")
    assert "04/05/2026 09:53:00 (UTC-5)" in d["summary"]  # Bogotá time
    assert d["incident"]["start"] == "2026-05-04T14:53:00Z"  # the machine field stays UTC
    rendered = render(d)
    assert json.loads(rendered.body) == d
    assert "Recomendaciones" in rendered.text and "Acciones tomadas" in rendered.text
    assert "Se escaló al prestador." in rendered.text
    assert "Autenticación &lt;Digital&gt; &amp; más" in rendered.html  # escaped
    assert "<Digital>" not in rendered.html
    assert rendered.subject.startswith("SCD-2026-000042 · Apertura · Severidad crítica")


def test_resolved_report() -> None:
    d = build_report(
        incident(status="resolved", ended_at=T0, resolved_at=T0 + timedelta(minutes=5)),
        EventFacts(3, "resolved", "resolved", T0 + timedelta(minutes=5), Severity.CRITICAL),
        [],
        [],
        generated_at=T0 + timedelta(minutes=5),
        timezone="America/Bogota",
        issuer_name="Articulador SCD",
    )
    validate(d)
    assert d["incident"]["end"] == "2026-05-04T15:00:00Z" and not d["incident"]["ongoing"]
    assert d["incident"]["duration_seconds"] == 420
    assert d["conditions"] == []
    assert d["summary"].startswith("Se cierra el incidente SCD-2026-000042")
    assert "7 min" in render(d).text


def test_schema_rejects_what_it_should() -> None:
    d = doc()
    d["incident"]["severity"] = "urgent"
    with pytest.raises(AssertionError):
        validate(d)
    d = doc()
    del d["evidence"]
    with pytest.raises(AssertionError):
        validate(d)


@pytest.mark.parametrize(
    ("raw", "hidden"),
    [
        ("GET https://user:pa55w0rd@host/x failed", "pa55w0rd"),
        ("redirect to https://idp/cb?code=abc123&state=ok", "abc123"),
        ("https://h/x?access_token=tok3n&y=1", "tok3n"),
        ("header Authorization: Bearer eyJhbGciOi.payload.sig", "eyJhbGciOi"),
        ("https://h/x?api_key=k3y", "k3y"),
    ],
)
def test_evidence_is_redacted(raw: str, hidden: str) -> None:
    cleaned = redact_evidence(raw)
    assert cleaned is not None and hidden not in cleaned and "**********" in cleaned


def test_details_are_redacted_by_key() -> None:
    assert redact_details({"password": "x", "token": "y", "bytes": 3, "url": "https://a:b@h/"}) == {
        "password": "**********",
        "token": "**********",
        "bytes": 3,
        "url": "https://a:**********@h/",
    }
