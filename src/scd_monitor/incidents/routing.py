"""Routing: which sinks get the report of an event, for which audience. Pure.

A route matches an event when its ``events`` include the event's kind, the incident's
severity is at least ``min_severity``, and its ``types`` / ``providers`` (when given)
include the incident's. Monitor-side incidents (``monitor_fault``) go to the
operations audience only, whatever the routes say. Each sink gets at most one delivery
per event (a sink serves one audience; the configuration enforces it). For the provider
audience the recipient is the provider's ``contact``: a sink that needs an e-mail
address gets a delivery that is failed at once, visibly, when the provider has none.
"""

from __future__ import annotations

from dataclasses import dataclass

from scd_monitor.catalog.incident_kinds import Audience, Severity, SignalKind
from scd_monitor.catalog.incidents import IncidentsConfig
from scd_monitor.sinks.email import EmailSinkConfig

__all__ = ["Planned", "plan_deliveries"]


@dataclass(frozen=True, slots=True)
class Planned:
    sink: str
    audience: Audience
    recipient: str | None = None
    problem: str | None = None
    """Why it cannot be delivered (stored as a ``failed`` delivery, never dropped)."""


def plan_deliveries(
    config: IncidentsConfig,
    *,
    event_kind: str,
    incident_type: SignalKind,
    severity: Severity,
    provider: str,
    provider_contact: str | None,
) -> list[Planned]:
    out: dict[str, Planned] = {}
    for route in config.routes:
        if event_kind not in route.events:
            continue
        if severity.rank < route.min_severity.rank:
            continue
        if route.types is not None and incident_type not in route.types:
            continue
        if route.providers is not None and provider not in route.providers:
            continue
        if incident_type is SignalKind.MONITOR_FAULT and route.audience != "operations":
            continue
        for sink in route.sinks:
            if sink in out:
                continue
            spec = config.sink(sink)
            recipient = None
            problem = None
            if route.audience == "provider":
                recipient = (provider_contact or "").strip() or None
                if isinstance(spec, EmailSinkConfig) and (
                    recipient is None or "@" not in recipient
                ):
                    problem = (
                        f"provider {provider!r} has no e-mail contact in the catalog"
                        if recipient is None
                        else f"provider {provider!r} contact {recipient!r} is not an e-mail address"
                    )
            out[sink] = Planned(sink, route.audience, recipient, problem)
    return list(out.values())
