"""The incident report: a versioned JSON document (``schemas/incident-report.schema.json``)
built from stored facts by a pure function, and its Spanish renderings (text and HTML).

A report is made once per reported event and stored with its renderings; every
delivery of it sends those exact bytes, so a receiver that sees the same idempotency
key twice always sees the same content.

What people read (``summary``, the conditions' and operation lines, the text and HTML
renderings) is es-CO: numbers with a decimal comma, instants in the catalog's time zone
as ``04/05/2026 09:53:00 (UTC-5)`` (:func:`scd_monitor.l10n.local_instant`). What
machines read (``start``, ``at``, ``since``, ``generated_at`` …) stays ISO-8601 UTC.
"""

from __future__ import annotations

import html
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from scd_monitor import __version__, l10n
from scd_monitor.catalog.incident_kinds import Severity, SignalKind
from scd_monitor.incidents.labels import (
    EVENT_LABELS,
    KIND_LABELS,
    KIND_PHRASES,
    REASON_LABELS,
    SERVICE_TYPE_LABELS,
    SEVERITY_LABELS,
    error_kind_label,
    named,
)
from scd_monitor.incidents.model import MONITOR_PROVIDER
from scd_monitor.incidents.recommendations import recommendations
from scd_monitor.logs import redact_evidence, redact_processor
from scd_monitor.sla.bands import Band, BandBounds
from scd_monitor.timefmt import iso_utc

__all__ = [
    "SCHEMA_ID",
    "SCHEMA_VERSION",
    "EventFacts",
    "Evidence",
    "IncidentFacts",
    "NoteFacts",
    "RenderedReport",
    "build_report",
    "redact_evidence",
    "render",
    "render_html",
    "render_text",
    "sla_impact",
]

SCHEMA_VERSION = 1
SCHEMA_ID = "https://scd-monitor.invalid/schemas/incident-report.schema.json"


@dataclass(frozen=True, slots=True)
class IncidentFacts:
    code: str
    provider: str
    service: str
    status: str
    """``open``, ``recovering`` or ``resolved``."""
    type: SignalKind
    severity: Severity
    kinds: tuple[SignalKind, ...]
    started_at: datetime
    detected_at: datetime
    ended_at: datetime | None
    resolved_at: datetime | None
    context: Mapping[str, Any]
    """``provider_name``, ``service_name``, ``service_type``, ``provider_contact``,
    ``conditions``, ``operation``, ``impact``, ``sla``: kept up to date by the service."""


@dataclass(frozen=True, slots=True)
class EventFacts:
    seq: int
    kind: str
    reason: str
    at: datetime
    severity: Severity


@dataclass(frozen=True, slots=True)
class NoteFacts:
    at: datetime
    author: str | None
    text: str


@dataclass(frozen=True, slots=True)
class Evidence:
    """One failing probe result, as quoted in a report (already redacted)."""

    check_id: str
    vantage: str
    started_at: datetime
    duration_seconds: float
    error_kind: str | None
    message: str | None
    status_code: int | None = None
    details: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class RenderedReport:
    document: dict[str, Any]
    body: str
    """The JSON text: the exact bytes (UTF-8) every sink sends."""
    text: str
    html: str
    subject: str


def redact_details(details: Mapping[str, Any]) -> dict[str, Any]:
    cleaned = dict(redact_processor(None, "", dict(details)))
    return {k: redact_evidence(v) if isinstance(v, str) else v for k, v in cleaned.items()}


def sla_impact(
    figures: Any, *, started_at: datetime, amber_from: float | None = None
) -> dict[str, Any] | None:
    """The SLA impact of an incident from month-to-date :class:`SlaFigures` (or None),
    with the month's *rango de medición* (:mod:`scd_monitor.sla.bands`)."""
    if figures is None:
        return None
    band = BandBounds.of(figures.target, amber_from).band(
        figures.eligible, figures.charged_downtime
    )
    incident_charged = timedelta(0)
    for outage in figures.outages:
        end = outage.end or figures.now
        if end > started_at:
            incident_charged += outage.charged
    budget = figures.error_budget
    consumed_ratio = None
    if budget is not None and budget.budget > timedelta(0):
        consumed_ratio = budget.consumed / budget.budget
    return {
        "period_start": iso_utc(figures.period.start),
        "as_of": iso_utc(figures.now),
        "target": figures.target,
        "availability": figures.availability,
        "band": None if band is None else band.value,
        "charged_downtime_seconds": _secs(figures.charged_downtime),
        "incident_charged_seconds": _secs(incident_charged),
        "error_budget_seconds": _secs(budget.budget) if budget is not None else None,
        "error_budget_consumed_seconds": _secs(budget.consumed) if budget is not None else None,
        "error_budget_consumed_ratio": consumed_ratio,
        "error_budget_remaining_ratio": budget.remaining_ratio if budget is not None else None,
        "burn_rates": [
            {"window_seconds": _secs(b.window), "rate": b.rate} for b in figures.burn_rates
        ],
    }


def _secs(value: timedelta) -> float:
    seconds = value.total_seconds()
    return int(seconds) if seconds == int(seconds) else round(seconds, 3)


def build_report(
    incident: IncidentFacts,
    event: EventFacts,
    notes: Sequence[NoteFacts],
    evidence: Sequence[Evidence],
    *,
    generated_at: datetime,
    timezone: str,
    issuer_name: str,
    issuer_contact: str | None = None,
) -> dict[str, Any]:
    """The report document of ``event`` (pure; valid against the JSON Schema)."""
    ctx = incident.context
    end = incident.ended_at if incident.status == "resolved" else None
    until = end or generated_at
    impact = ctx.get("impact") or {}
    error_kinds = sorted(
        set(impact.get("error_kinds", [])) | {e.error_kind for e in evidence if e.error_kind}
    )
    service_type = str(ctx.get("service_type") or "otro")
    status = incident.status
    tz = ZoneInfo(timezone)
    doc: dict[str, Any] = {
        "$schema": SCHEMA_ID,
        "schema_version": SCHEMA_VERSION,
        "report_id": f"{incident.code}.{event.seq}",
        "language": "es-CO",
        "generated_at": iso_utc(generated_at),
        "timezone": timezone,
        "issuer": {"name": issuer_name, "contact": issuer_contact},
        "software": {"name": "scd-monitor", "version": __version__},
        "incident": {
            "id": incident.code,
            "type": incident.type.value,
            "type_label": KIND_LABELS[incident.type],
            "types": [k.value for k in incident.kinds],
            "severity": incident.severity.value,
            "severity_label": SEVERITY_LABELS[incident.severity],
            "status": status,
            "provider": {
                "id": incident.provider,
                "name": ctx.get("provider_name") or incident.provider,
                "contact": ctx.get("provider_contact"),
            },
            "service": {
                "id": incident.service,
                "name": ctx.get("service_name") or incident.service,
                "type": service_type,
                "type_label": SERVICE_TYPE_LABELS.get(service_type, service_type),
            },
            "start": iso_utc(incident.started_at),
            "detected": iso_utc(incident.detected_at),
            "end": iso_utc(end) if end is not None else None,
            "duration_seconds": _secs(max(until - incident.started_at, timedelta(0))),
            "ongoing": end is None,
        },
        "event": {
            "sequence": event.seq,
            "kind": event.kind,
            "kind_label": EVENT_LABELS[event.kind],
            "reason": event.reason,
            "reason_label": REASON_LABELS.get(event.reason, event.reason),
            "at": iso_utc(event.at),
        },
        "impact": {
            "checks": sorted(set(impact.get("checks", []))),
            "vantages": sorted(set(impact.get("vantages", [])) | {e.vantage for e in evidence}),
            "error_kinds": error_kinds,
        },
        "conditions": [
            {
                "kind": c["kind"],
                "kind_label": KIND_LABELS[SignalKind(c["kind"])],
                "severity": c["severity"],
                "summary": l10n.localize_instants(c["summary"], tz),
                "since": c.get("since"),
            }
            for c in ctx.get("conditions", [])
        ]
        if status != "resolved"
        else [],
        # Lines written before instants were localized may still carry ISO-8601 UTC ones.
        "operation": [l10n.localize_instants(line, tz) for line in ctx.get("operation", [])],
        "evidence": [
            {
                "check": e.check_id,
                "vantage": e.vantage,
                "at": iso_utc(e.started_at),
                "duration_seconds": round(e.duration_seconds, 3),
                "error_kind": e.error_kind,
                "message": e.message,
                "status_code": e.status_code,
                "details": dict(e.details),
            }
            for e in evidence
        ],
        "actions": [
            {"at": iso_utc(n.at), "author": n.author, "text": n.text}
            for n in sorted(notes, key=lambda n: n.at)
        ],
        "recommendations": recommendations(error_kinds, incident.kinds),
        "sla_impact": ctx.get("sla"),
    }
    doc["summary"] = _summary(doc, timezone)
    return doc


def _about(inc: Mapping[str, Any]) -> str:
    """What the incident is about, to follow *por*: ``caída del servicio Carpeta
    Ciudadana del prestador Prestador A S.A.S.`` (no doubled *servicio* or *prestador*,
    whatever the names)."""
    if inc["provider"]["id"] == MONITOR_PROVIDER:
        return KIND_PHRASES[SignalKind.MONITOR_FAULT]
    service = inc["service"]
    phrase = KIND_PHRASES[SignalKind(inc["type"])].format(
        servicio=named("servicio", service["name"]) + _type_note(service)
    )
    return f"{phrase} del {named('prestador', inc['provider']['name'])}"


def _type_note(service: Mapping[str, Any]) -> str:
    """`` (Carpeta Ciudadana)`` after a service's name, unless the name says it already
    or the type is *otro*."""
    if service["type"] == "otro":
        return ""
    label = str(service["type_label"])
    core = label.split(" (")[0]
    if core.casefold() in str(service["name"]).casefold():
        return ""
    return f" ({label})"


def _period(sentence: str) -> str:
    """``sentence`` ended by one period (a name may end with one: *S.A.S.*)."""
    return sentence if sentence.endswith(".") else f"{sentence}."


def _name_and_id(entity: Mapping[str, Any]) -> str:
    """``Prestador A (prestador-a)``; the name alone when it shows the id already."""
    name, ident = str(entity["name"]), str(entity["id"])
    return name if ident in name else f"{name} ({ident})"


def _summary(doc: Mapping[str, Any], timezone: str) -> str:
    tz = ZoneInfo(timezone)
    inc = doc["incident"]
    code = inc["id"]
    about = _about(inc)
    start = _t(inc["start"], tz)
    severity = inc["severity_label"].lower()
    if inc["end"] is not None:
        end = _t(inc["end"], tz)
        duration = l10n.duration(timedelta(seconds=inc["duration_seconds"]))
        lead = (
            f"Se cierra el incidente {code}"
            if doc["event"]["kind"] == "resolved"
            else f"El incidente {code} está cerrado"
        )
        return (
            f"{_period(f'{lead}, abierto por {about}')} Inicio: {start}; fin: {end}; "
            f"duración: {duration}. Severidad: {severity}."
        )
    if doc["event"]["kind"] == "opened":
        return (
            f"{_period(f'Se abre el incidente {code} por {about}')} Inicio: {start}. "
            f"Severidad: {severity}."
        )
    state = (
        "sigue abierto"
        if inc["status"] == "open"
        else "está en observación antes del cierre: las condiciones se normalizaron"
    )
    return (
        f"El incidente {code}, abierto por {about}, {state}. Inicio: {start}. "
        f"Severidad: {severity}."
    )


def to_body(document: Mapping[str, Any]) -> str:
    return json.dumps(document, ensure_ascii=False, indent=2) + "\n"


def subject_of(document: Mapping[str, Any]) -> str:
    inc = document["incident"]
    ev = document["event"]
    return (
        f"{inc['id']} · {ev['kind_label']} · Severidad {inc['severity_label'].lower()} · "
        f"{inc['type_label']} · {inc['provider']['name']} / {inc['service']['name']}"
    )


def render(document: dict[str, Any]) -> RenderedReport:
    return RenderedReport(
        document=document,
        body=to_body(document),
        text=render_text(document),
        html=render_html(document),
        subject=subject_of(document),
    )


def _t(value: str | None, tz: ZoneInfo) -> str:
    """An ISO-8601 instant of the document as people read it, in ``tz``."""
    return l10n.DASH if value is None else l10n.local_instant(datetime.fromisoformat(value), tz)


def _sla_lines(sla: Mapping[str, Any] | None, tz: ZoneInfo) -> list[str]:
    if sla is None:
        return ["Todavía no hay cifras del ANS calculadas para este servicio."]
    lines = []
    if sla.get("as_of"):
        lines.append(f"Cifras calculadas al {_t(sla['as_of'], tz)}")
    lines.append(f"Meta de disponibilidad del ANS: {l10n.percent(sla['target'])}")
    if sla.get("availability") is not None:
        lines.append(f"Disponibilidad del mes a la fecha: {l10n.percent(sla['availability'])}")
    if sla.get("band") is not None:
        band = Band(sla["band"])
        lines.append(f"Rango de medición del mes a la fecha: {band.label} ({band.colour_name})")
    lines.append(
        "Tiempo de caída imputado en el mes: "
        + l10n.duration(timedelta(seconds=sla["charged_downtime_seconds"]))
    )
    lines.append(
        "Tiempo imputado a este incidente: "
        + l10n.duration(timedelta(seconds=sla["incident_charged_seconds"]))
    )
    if sla.get("error_budget_seconds") is not None:
        consumed = sla.get("error_budget_consumed_ratio")
        share = f"{l10n.percent(consumed, decimals=1)} " if consumed is not None else ""
        lines.append(
            f"Presupuesto de error consumido: {share}("
            + l10n.duration(timedelta(seconds=sla["error_budget_consumed_seconds"]))
            + " de "
            + l10n.duration(timedelta(seconds=sla["error_budget_seconds"]))
            + ")"
        )
    rates = [
        f"{l10n.number(b['rate'], decimals=2)} en "
        f"{l10n.duration(timedelta(seconds=b['window_seconds']))}"
        for b in sla.get("burn_rates", [])
        if b.get("rate") is not None
    ]
    if rates:
        lines.append(
            "Tasas de consumo del presupuesto de error (1 = el ritmo que lo agota justo al "
            "final del mes): " + "; ".join(rates)
        )
    return lines


def _sections(doc: Mapping[str, Any]) -> list[tuple[str, list[str]]]:
    tz = ZoneInfo(doc["timezone"])
    inc = doc["incident"]
    impact = doc["impact"]
    duration = l10n.duration(timedelta(seconds=inc["duration_seconds"]))
    head = [
        f"Tipo: {inc['type_label']}",
        f"Severidad: {inc['severity_label']}",
        f"Estado: {_STATUS[inc['status']]}",
        f"Prestador: {_name_and_id(inc['provider'])}",
        f"Servicio: {_name_and_id(inc['service'])}",
        f"Tipo de servicio: {inc['service']['type_label']}",
        f"Inicio: {_t(inc['start'], tz)}",
        f"Detección: {_t(inc['detected'], tz)}",
        f"Fin: {_t(inc['end'], tz) if inc['end'] else 'en curso'}",
        f"Duración: {duration}{' (en curso)' if inc['ongoing'] else ''}",
        f"Evento: {doc['event']['kind_label']} — {doc['event']['reason_label']}",
        f"Zona horaria: {doc['timezone']}",
    ]
    conditions = [
        f"{c['kind_label']} — severidad: {SEVERITY_LABELS[Severity(c['severity'])].lower()}"
        + (f"; desde el {_t(c['since'], tz)}" if c.get("since") else "")
        + f". {c['summary']}"
        for c in doc["conditions"]
    ]
    evidence = [
        f"{_t(e['at'], tz)} · {e['vantage']} · {e['check']}: "
        + (error_kind_label(e["error_kind"]) if e["error_kind"] else "falla")
        + (f" (HTTP {e['status_code']})" if e.get("status_code") else "")
        + (f" — {e['message']}" if e.get("message") else "")
        for e in doc["evidence"]
    ]
    actions = [
        f"{_t(a['at'], tz)}" + (f" ({a['author']})" if a.get("author") else "") + f": {a['text']}"
        for a in doc["actions"]
    ]
    return [
        ("Datos del incidente", head),
        ("Resumen", [doc["summary"]]),
        (
            "Impacto",
            [
                "Verificaciones afectadas: " + (", ".join(impact["checks"]) or l10n.DASH),
                "Puntos de medición: " + (", ".join(impact["vantages"]) or l10n.DASH),
                "Tipos de error: "
                + (", ".join(error_kind_label(k) for k in impact["error_kinds"]) or l10n.DASH),
            ],
        ),
        ("Condiciones detectadas", conditions or ["Ninguna activa."]),
        ("Condiciones de operación", list(doc["operation"]) or [l10n.DASH]),
        (
            "Evidencia (últimos resultados fallidos: hora · punto de medición · verificación)",
            evidence or ["Sin resultados fallidos registrados."],
        ),
        ("Acciones tomadas", actions or ["Ninguna registrada todavía."]),
        ("Recomendaciones", [r["text"] for r in doc["recommendations"]] or [l10n.DASH]),
        ("Impacto en el ANS (mes a la fecha)", _sla_lines(doc["sla_impact"], tz)),
    ]


_STATUS = {"open": "Abierto", "recovering": "En observación", "resolved": "Resuelto"}


def _title(doc: Mapping[str, Any]) -> str:
    return (
        f"Reporte de incidente {doc['incident']['id']} — {doc['event']['kind_label']} "
        f"(reporte n.º {doc['event']['sequence']})"
    )


def render_text(doc: Mapping[str, Any]) -> str:
    tz = ZoneInfo(doc["timezone"])
    lines = [
        _title(doc).upper(),
        f"Servicios Ciudadanos Digitales · {doc['issuer']['name']} · generado el "
        f"{_t(doc['generated_at'], tz)}",
        "",
    ]
    for title, body in _sections(doc):
        lines.append(title)
        lines.append("-" * len(title))
        bullet = len(body) > 1 or title in ("Recomendaciones", "Acciones tomadas")
        lines.extend(f"  - {line}" if bullet else f"  {line}" for line in body)
        lines.append("")
    lines.append(
        f"Identificador del reporte: {doc['report_id']} · formato v{doc['schema_version']}"
    )
    return "\n".join(lines) + "\n"


def render_html(doc: Mapping[str, Any]) -> str:
    tz = ZoneInfo(doc["timezone"])
    e = html.escape
    color = {"critical": "#b71c1c", "high": "#e65100", "medium": "#f9a825", "low": "#2e7d32"}[
        doc["incident"]["severity"]
    ]
    parts = [
        "<!DOCTYPE html>",
        '<html lang="es-CO"><head><meta charset="utf-8">',
        f"<title>{e(_title(doc))}</title></head>",
        '<body style="font-family: Arial, Helvetica, sans-serif; color: #212121; '
        'max-width: 820px">',
        f'<h1 style="font-size: 20px; border-left: 6px solid {color}; padding-left: 8px">'
        f"{e(_title(doc))}</h1>",
        f'<p style="color: #616161">Servicios Ciudadanos Digitales · {e(doc["issuer"]["name"])} · '
        f"generado el {e(_t(doc['generated_at'], tz))}</p>",
    ]
    for title, body in _sections(doc):
        parts.append(f'<h2 style="font-size: 16px; margin-top: 18px">{e(title)}</h2>')
        if title == "Datos del incidente":
            parts.append('<table style="border-collapse: collapse">')
            for line in body:
                key, _, value = line.partition(": ")
                parts.append(
                    f'<tr><th style="text-align: left; padding: 2px 12px 2px 0">{e(key)}</th>'
                    f"<td>{e(value)}</td></tr>"
                )
            parts.append("</table>")
        elif len(body) == 1 and title in ("Resumen",):
            parts.append(f"<p>{e(body[0])}</p>")
        else:
            parts.append("<ul>" + "".join(f"<li>{e(line)}</li>" for line in body) + "</ul>")
    parts.append(
        f'<p style="color: #9e9e9e; font-size: 12px">Identificador del reporte: '
        f"{e(doc['report_id'])} · formato v{doc['schema_version']}</p>"
    )
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"
