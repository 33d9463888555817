"""Spanish (es-CO) words for the reports: kinds, severities, events, states, errors.

Numbers, instants and durations are written by :mod:`scd_monitor.l10n` (Spanish) and
:mod:`scd_monitor.timefmt` (ISO-8601).

Agreement: severities and states are written after their noun (``severidad: crítica``,
``estado: caído``), never as adjectives of another noun, so no gender is ever guessed.
Names from the catalog are quoted after a common noun (``servicio``, ``prestador``)
unless they already start with it (:func:`named`), so no word is ever doubled.
"""

from __future__ import annotations

import re
import unicodedata

from scd_monitor.catalog.incident_kinds import Severity, SignalKind

__all__ = [
    "AUDIENCE_LABELS",
    "ERROR_KIND_LABELS",
    "EVENT_LABELS",
    "KIND_LABELS",
    "KIND_PHRASES",
    "REASON_LABELS",
    "SERVICE_TYPE_LABELS",
    "SEVERITY_LABELS",
    "STATE_LABELS",
    "error_kind_label",
    "named",
]

KIND_LABELS: dict[SignalKind, str] = {
    SignalKind.OUTAGE: "Caída del servicio",
    SignalKind.DEGRADATION: "Degradación sostenida del servicio",
    SignalKind.SLA_AT_RISK: "Acuerdo de Niveles de Servicio (ANS) en riesgo",
    SignalKind.CERT_EXPIRING: "Certificado próximo a vencer",
    SignalKind.CERT_EXPIRED: "Certificado vencido",
    SignalKind.DIRECTORY_ANOMALY: "Anomalía del directorio de X-Road",
    SignalKind.MONITOR_FAULT: "Falla del sistema de monitoreo",
    SignalKind.OIDC_KEY_REMOVED: "Llave de firma OIDC retirada antes de tiempo",
}

KIND_PHRASES: dict[SignalKind, str] = {
    SignalKind.OUTAGE: "caída del {servicio}",
    SignalKind.DEGRADATION: "degradación sostenida del {servicio}",
    SignalKind.SLA_AT_RISK: "riesgo de incumplir el ANS en el {servicio}",
    SignalKind.CERT_EXPIRING: "certificado próximo a vencer en el {servicio}",
    SignalKind.CERT_EXPIRED: "certificado vencido en el {servicio}",
    SignalKind.DIRECTORY_ANOMALY: "anomalía del directorio de X-Road en el {servicio}",
    SignalKind.MONITOR_FAULT: "falla del sistema de monitoreo",
    SignalKind.OIDC_KEY_REMOVED: "llave de firma OIDC retirada antes de tiempo en el {servicio}",
}
"""What an incident is about, in a sentence: ``{servicio}`` is :func:`named` ("servicio",
name) (``caída del servicio Carpeta Ciudadana``; ``caída del Servicio de carpeta``)."""

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
    "resolved": "Las condiciones se mantuvieron normales durante el periodo de observación",
    "manual": "Incidente cerrado manualmente por el equipo de operaciones",
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

ERROR_KIND_LABELS: dict[str, str] = {
    "dns": "falla de resolución DNS",
    "connect": "falla de conexión",
    "timeout": "tiempo de espera agotado",
    "tls": "falla de TLS o del certificado",
    "status": "respuesta HTTP inesperada",
    "assertion": "contenido inesperado en la respuesta",
    "too_large": "respuesta demasiado grande",
    "protocol": "error de protocolo",
    "internal": "falla interna del monitor",
}
"""The probes' error kinds (:class:`scd_monitor.probes.base.ErrorKind`) in words."""


def error_kind_label(kind: str) -> str:
    """``"timeout"`` → ``"tiempo de espera agotado (timeout)"``: the words, then the code
    the boards and metrics use (``error_kind``); an unknown code as it is."""
    label = ERROR_KIND_LABELS.get(kind)
    return f"{label} ({kind})" if label is not None else kind


def _folded(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def named(noun: str, name: str) -> str:
    """``("servicio", "Carpeta")`` → ``"servicio Carpeta"``; a name that already starts
    with the noun stands alone: ``("servicio", "Servicio de carpeta")`` →
    ``"Servicio de carpeta"`` (never *servicio Servicio de carpeta*); so does an id such
    as ``prestador-b``. Case and accents are ignored in the comparison."""
    first = re.match(r"[^\W\d_]+", _folded(name).lstrip())
    if first is not None and first.group(0) in (_folded(noun), _folded(noun) + "s"):
        return name
    return f"{noun} {name}"
