"""Spanish (es-CO) words for the reports: kinds, severities, events, states.

Numbers, instants and durations are written by :mod:`scd_monitor.l10n` (Spanish) and
:mod:`scd_monitor.timefmt` (ISO-8601).
"""

from __future__ import annotations

from scd_monitor.catalog.incident_kinds import Severity, SignalKind

__all__ = [
    "AUDIENCE_LABELS",
    "EVENT_LABELS",
    "KIND_LABELS",
    "SERVICE_TYPE_LABELS",
    "SEVERITY_LABELS",
]

KIND_LABELS: dict[SignalKind, str] = {
    SignalKind.OUTAGE: "Caída del servicio",
    SignalKind.DEGRADATION: "Degradación sostenida del servicio",
    SignalKind.SLA_AT_RISK: "Acuerdo de Niveles de Servicio (ANS) en riesgo",
    SignalKind.CERT_EXPIRING: "Certificado próximo a vencer",
    SignalKind.CERT_EXPIRED: "Certificado vencido",
    SignalKind.DIRECTORY_ANOMALY: "Anomalía del directorio de X-Road",
    SignalKind.MONITOR_FAULT: "Falla del sistema de monitoreo",
}

SEVERITY_LABELS: dict[Severity, str] = {
    Severity.CRITICAL: "Crítica",
    Severity.HIGH: "Alta",
    Severity.MEDIUM: "Media",
    Severity.LOW: "Baja",
}

EVENT_LABELS: dict[str, str] = {
    "opened": "Apertura",
    "updated": "Actualización",
    "resolved": "Cierre",
}

REASON_LABELS: dict[str, str] = {
    "opened": "Incidente abierto",
    "escalated": "Aumentó la severidad o cambió el tipo del incidente",
    "new_condition": "Se detectó una nueva condición",
    "reopened": "El problema reapareció dentro del periodo de calma: continúa el mismo incidente",
    "recurred": "El problema reapareció antes de confirmarse la recuperación",
    "cleared": "Las condiciones se normalizaron; en observación antes del cierre",
    "note": "El equipo de operaciones registró una acción",
    "resolved": "Condiciones normalizadas durante el periodo de observación",
    "manual": "Cerrado por el equipo de operaciones",
}

SERVICE_TYPE_LABELS: dict[str, str] = {
    "autenticacion_digital": "Autenticación Digital",
    "carpeta_ciudadana": "Carpeta Ciudadana",
    "interoperabilidad": "Interoperabilidad (X-Road)",
    "otro": "Otro",
}

AUDIENCE_LABELS: dict[str, str] = {
    "authority": "Autoridad (MinTIC)",
    "provider": "Prestador",
    "operations": "Operaciones",
}

STATE_LABELS: dict[str, str] = {
    "up": "disponible",
    "down": "caído",
    "degraded": "degradado",
    "maintenance": "en mantenimiento",
    "unknown": "sin datos",
}
