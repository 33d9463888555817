"""Recommendations (es-CO) for the reports: one template per probe error kind and per
kind of condition. Reports quote those that apply, error kinds first, without repeats."""

from __future__ import annotations

from collections.abc import Iterable

from scd_monitor.catalog.incident_kinds import SignalKind

__all__ = ["BY_ERROR_KIND", "BY_SIGNAL_KIND", "recommendations"]

BY_ERROR_KIND: dict[str, str] = {
    "dns": (
        "Verificar los registros DNS del dominio del servicio (A/AAAA y CNAME), la delegación "
        "de la zona y la vigencia del dominio, y confirmar que el nombre resuelve desde redes "
        "externas."
    ),
    "connect": (
        "Verificar que el servicio esté en ejecución y escuchando en el puerto publicado, y "
        "revisar cortafuegos, balanceadores de carga y reglas de red que puedan estar "
        "rechazando las conexiones."
    ),
    "timeout": (
        "Revisar la capacidad y la carga de los servidores, los tiempos de respuesta de las "
        "dependencias (bases de datos, servicios externos) y la saturación de la red; "
        "considerar escalar la infraestructura."
    ),
    "tls": (
        "Revisar el certificado del servidor (vigencia, cadena de confianza completa, nombre "
        "del host) y la configuración TLS (versiones y cifrados admitidos)."
    ),
    "status": (
        "Revisar los registros de la aplicación y del servidor web para identificar la causa "
        "de las respuestas HTTP inesperadas (5xx o 4xx) y corregir el despliegue o la "
        "configuración; en X-Road, revisar el código de error SOAP/REST devuelto."
    ),
    "assertion": (
        "Verificar que el contenido de la respuesta corresponda al esperado (documento de "
        "descubrimiento, metadatos, directorio o servicios publicados) y revisar despliegues "
        "o cambios de configuración recientes."
    ),
    "too_large": (
        "Revisar por qué la respuesta excede el tamaño esperado: puede indicar una página de "
        "error o un cambio no anunciado en el servicio."
    ),
    "protocol": (
        "Revisar la conformidad del servicio con el protocolo (HTTP, mensajes SOAP/REST de "
        "X-Road, JSON); la causa puede ser un proxy intermedio o un despliegue defectuoso."
    ),
    "internal": (
        "Falla interna del sistema de monitoreo: el equipo de operaciones del articulador la "
        "revisa; no se imputa al prestador."
    ),
}

BY_SIGNAL_KIND: dict[SignalKind, str] = {
    SignalKind.OUTAGE: (
        "Activar el procedimiento de gestión de incidentes del prestador, informar el tiempo "
        "estimado de solución y documentar la causa raíz una vez restablecido el servicio."
    ),
    SignalKind.DEGRADATION: (
        "Revisar el desempeño del servicio (uso de CPU y memoria, colas, consultas lentas) y "
        "de sus dependencias antes de que la degradación se convierta en una caída."
    ),
    SignalKind.SLA_AT_RISK: (
        "Priorizar la estabilidad del servicio durante el resto del mes: el presupuesto de "
        "error del ANS se está consumiendo más rápido de lo admisible; evitar cambios no "
        "urgentes y ventanas de mantenimiento no anunciadas."
    ),
    SignalKind.CERT_EXPIRING: (
        "Renovar el certificado antes de su vencimiento e instalar la cadena completa; "
        "verificar después la instalación en todos los nodos del servicio."
    ),
    SignalKind.CERT_EXPIRED: (
        "Renovar e instalar de inmediato un certificado vigente con su cadena completa: los "
        "clientes que validan el certificado no pueden conectarse."
    ),
    SignalKind.DIRECTORY_ANOMALY: (
        "Confirmar con el miembro de X-Road y con la entidad de gobierno de la plataforma si el "
        "cambio en el directorio fue planeado; si no lo fue, revisar el registro del "
        "subsistema o del servicio y la distribución de la configuración global."
    ),
    SignalKind.OIDC_KEY_REMOVED: (
        "Volver a publicar la llave retirada en el JWKS hasta que venzan los tokens que "
        "firmó; en adelante, rotar publicando primero la llave nueva, firmar con ella y "
        "retirar la anterior solo cuando hayan vencido sus tokens."
    ),
    SignalKind.MONITOR_FAULT: (
        "Verificar la conectividad y los recursos del punto de medición (red, DNS, servidor "
        "de seguridad propio); mientras dure la falla, las mediciones no se imputan a los "
        "prestadores."
    ),
}


def recommendations(
    error_kinds: Iterable[str], signal_kinds: Iterable[SignalKind]
) -> list[dict[str, str]]:
    """``[{"basis": "error_kind:timeout", "text": …}, …]``: error kinds first (sorted),
    then kinds of condition (by priority), each once."""
    out: list[dict[str, str]] = []
    for kind in sorted(set(error_kinds)):
        text = BY_ERROR_KIND.get(kind)
        if text is not None:
            out.append({"basis": f"error_kind:{kind}", "text": text})
    for signal_kind in sorted(set(signal_kinds), key=lambda k: -k.priority):
        out.append({"basis": f"type:{signal_kind.value}", "text": BY_SIGNAL_KIND[signal_kind]})
    return out
