"""Spanish (es-CO) words for the reports: kinds, severities, events, durations, instants."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from scd_monitor.incidents.model import Severity, SignalKind

__all__ = [
    "AUDIENCE_LABELS",
    "EVENT_LABELS",
    "KIND_LABELS",
    "SERVICE_TYPE_LABELS",
    "SEVERITY_LABELS",
    "duration_es",
    "instant_es",
    "iso",
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


def iso(value: datetime) -> str:
    """UTC ISO-8601 with ``Z`` (the JSON form of every instant)."""
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def instant_es(value: datetime, tz: ZoneInfo) -> str:
    """``2026-05-04 10:15:00 (UTC-05:00)`` in the catalog's time zone."""
    local = value.astimezone(tz)
    offset = local.strftime("%z")
    return f"{local:%Y-%m-%d %H:%M:%S} (UTC{offset[:3]}:{offset[3:]})"


def duration_es(value: timedelta) -> str:
    """``2 d 3 h 5 min 7 s`` (whole seconds; ``0 s`` for less than one)."""
    total = int(value.total_seconds())
    if total <= 0:
        return "0 s"
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60), ("s", 1)):
        n, total = divmod(total, size)
        if n:
            parts.append(f"{n} {unit}")
    return " ".join(parts)
