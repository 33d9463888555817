"""Probe kinds. One module per kind; :func:`build_probes` is the registry."""

from __future__ import annotations

from scd_monitor.net.tls import ContextCache
from scd_monitor.probes.base import PHASES, ErrorKind, Outcome, Probe, ProbeResult
from scd_monitor.probes.http import HttpProbe
from scd_monitor.probes.oidc import OidcProbe
from scd_monitor.probes.tls import TlsProbe
from scd_monitor.probes.xroad_globalconf import XRoadGlobalconfProbe
from scd_monitor.probes.xroad_health import XRoadHealthProbe
from scd_monitor.probes.xroad_metaservice import XRoadMetaserviceProbe

__all__ = [
    "PHASES",
    "ContextCache",
    "ErrorKind",
    "HttpProbe",
    "OidcProbe",
    "Outcome",
    "Probe",
    "ProbeResult",
    "TlsProbe",
    "XRoadGlobalconfProbe",
    "XRoadHealthProbe",
    "XRoadMetaserviceProbe",
    "build_probes",
]


def build_probes() -> dict[str, Probe]:
    """One probe per catalog ``kind`` (the keys equal ``CHECK_KINDS``).

    The probes share one :class:`ContextCache`, so a check's TLS options are loaded
    once for every probe kind alike.
    """
    contexts = ContextCache()
    return {
        "http": HttpProbe(contexts=contexts),
        "oidc": OidcProbe(contexts=contexts),
        "tls": TlsProbe(contexts=contexts),
        "xroad_health": XRoadHealthProbe(contexts=contexts),
        "xroad_metaservice": XRoadMetaserviceProbe(contexts=contexts),
        "xroad_globalconf": XRoadGlobalconfProbe(contexts=contexts),
    }
