"""What detection looks at: a snapshot of the monitor's view at one instant.

:class:`Observations` is plain data. :func:`observe` builds it from the daemon's own
objects (the effective catalog, the state tracker's current states, the latest probe
results, the month-to-date SLA report, the directory watcher's statuses) without any
I/O, so the daemon can call it on the event loop or in a thread. Tests build
:class:`Observations` directly.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Protocol

from scd_monitor.analysis.servicestate import service_state
from scd_monitor.catalog.models import MonitorSelf
from scd_monitor.sla.model import State

if TYPE_CHECKING:
    from scd_monitor.analysis.reporting import SlaReport
    from scd_monitor.catalog.models import Catalog, ResolvedCheck
    from scd_monitor.probes.base import ProbeResult
    from scd_monitor.sla.engine import SlaFigures
    from scd_monitor.xroad.directory import DirectoryEvent

__all__ = [
    "CheckObservation",
    "DirectoryObservation",
    "Observations",
    "ServiceObservation",
    "observe",
]


class _Status(Protocol):
    """What :func:`observe` reads of a :class:`scd_monitor.analysis.views.CheckStatus`."""

    @property
    def state(self) -> State: ...

    @property
    def since(self) -> datetime | None: ...

    @property
    def last_observation_at(self) -> datetime | None: ...


class _SourceStatus(Protocol):
    """What :func:`observe` reads of a :class:`scd_monitor.analysis.views.SourceStatus`."""

    @property
    def last_success(self) -> datetime | None: ...

    @property
    def directory(self) -> object | None: ...


@dataclass(frozen=True, slots=True)
class CheckObservation:
    check_id: str
    check: str
    critical: bool
    state: State
    since: datetime | None = None
    """Start of the check's confirmed outage (its first failing probe), when DOWN."""
    error_kind: str | None = None
    """Error kind of the last probe result, when it failed."""
    message: str | None = None
    cert_not_after: datetime | None = None
    """Expiry of the peer certificate seen by the last probe result."""
    observed_at: datetime | None = None
    host: str = ""
    """The destination host (the network self-check counts distinct hosts)."""


@dataclass(frozen=True, slots=True)
class ServiceObservation:
    provider: str
    service: str
    service_type: str
    state: State
    """The service's state now (:func:`scd_monitor.analysis.servicestate.service_state`:
    by its rule, maintenance windows applied)."""
    checks: tuple[CheckObservation, ...] = ()
    sla: SlaFigures | None = None
    """Month-to-date SLA figures, when computed."""
    amber_from: float | None = None
    """The service's catalog ``sla.amber_from`` (its amber band's bound; ``None``: default)."""
    provider_name: str | None = None
    service_name: str | None = None
    provider_contact: str | None = None


@dataclass(frozen=True, slots=True)
class DirectoryObservation:
    """One X-Road directory source, as its platform service."""

    source: str
    provider: str
    """The source's provider (the platform service's provider)."""
    service: str
    """The platform service's id (the source's id)."""
    instance: str
    interval: timedelta
    last_success_at: datetime | None = None
    globalconf_expires_at: datetime | None = None
    min_validity: timedelta = timedelta(minutes=1)


@dataclass(frozen=True, slots=True)
class Observations:
    """Everything detection needs, at one instant."""

    at: datetime
    vantage: str
    services: tuple[ServiceObservation, ...] = ()
    canaries: tuple[CheckObservation, ...] = ()
    directories: tuple[DirectoryObservation, ...] = ()
    directory_events: tuple[DirectoryEvent, ...] | None = None
    """Directory events of the last ``vanished_for``; ``None``: the incident service
    reads them from the store."""
    monitor: MonitorSelf = field(default_factory=MonitorSelf)
    """How the monitor tells its own faults (catalog ``monitor``)."""
    oidc_key_removals: tuple[KeyRemoval, ...] = ()
    """OIDC signing keys removed while a token they signed was valid (recent ones)."""


@dataclass(frozen=True, slots=True)
class KeyRemoval:
    """An ``early`` key event of an ``oidc`` check (:mod:`scd_monitor.store.oidckeys`)."""

    check_id: str
    kid: str
    at: datetime
    token_valid_until: datetime | None = None


def observe(
    catalog: Catalog,
    states: Mapping[str, _Status],
    *,
    now: datetime,
    vantage: str,
    latest: Mapping[str, ProbeResult] | None = None,
    sla: SlaReport | None = None,
    directories: Mapping[str, _SourceStatus] | None = None,
    directory_events: Sequence[DirectoryEvent] | None = None,
    key_removals: Sequence[KeyRemoval] = (),
) -> Observations:
    """The monitor's view now, from the daemon's objects (no I/O).

    ``catalog``: the effective catalog (with discovered services); ``states``:
    :meth:`StateTracker.current`; ``latest``: the results pipeline's snapshot
    ``latest`` (last result per check id); ``sla``: the month-to-date report;
    ``directories``: :meth:`DirectoryWatcher.statuses`.
    """
    latest = latest or {}
    figures = {(s.provider, s.service): s.figures for s in sla.services} if sla else {}
    by_service: dict[tuple[str, str], list[tuple[ResolvedCheck, CheckObservation]]] = {}
    canaries: list[CheckObservation] = []
    for check in catalog.resolved_checks():
        status = states.get(check.id)
        result = latest.get(check.id)
        outcome = result.outcome if result is not None else None
        obs = CheckObservation(
            check_id=check.id,
            check=check.check,
            critical=check.critical,
            state=status.state if status is not None else State.UNKNOWN,
            since=status.since if status is not None else None,
            error_kind=(
                outcome.error_kind.value
                if outcome is not None and not outcome.ok and outcome.error_kind is not None
                else None
            ),
            message=outcome.message if outcome is not None and not outcome.ok else None,
            cert_not_after=outcome.cert_not_after if outcome is not None else None,
            observed_at=status.last_observation_at if status is not None else None,
            host=check.host or check.id,
        )
        if check.canary:
            canaries.append(obs)
        else:
            by_service.setdefault((check.provider, check.service), []).append((check, obs))

    services: list[ServiceObservation] = []
    tz = catalog.tz
    for provider in catalog.providers:
        for service in provider.services:
            members = by_service.get((provider.id, service.id))
            if not members:
                continue
            state = service_state(
                service, [(c, o.state) for c, o in members], now=now, tz=tz, vantage=vantage
            )
            services.append(
                ServiceObservation(
                    provider=provider.id,
                    service=service.id,
                    service_type=service.type,
                    state=state,
                    checks=tuple(o for _, o in members),
                    sla=figures.get((provider.id, service.id)),
                    amber_from=service.sla.amber_from,
                    provider_name=provider.name,
                    service_name=service.name,
                    provider_contact=provider.contact,
                )
            )

    sources: list[DirectoryObservation] = []
    statuses = directories or {}
    for source in catalog.xroad:
        if not source.enabled:
            continue
        source_status = statuses.get(source.id)
        directory = source_status.directory if source_status is not None else None
        expires = getattr(directory, "globalconf_expires_at", None)
        sources.append(
            DirectoryObservation(
                source=source.id,
                provider=source.provider.id,
                service=source.id,
                instance=source.instance,
                interval=source.interval,
                last_success_at=(source_status.last_success if source_status is not None else None),
                globalconf_expires_at=expires if isinstance(expires, datetime) else None,
                min_validity=(
                    source.globalconf.min_validity
                    if source.globalconf is not None
                    else timedelta(minutes=1)
                ),
            )
        )
    return Observations(
        at=now,
        vantage=vantage,
        services=tuple(services),
        canaries=tuple(canaries),
        directories=tuple(sources),
        directory_events=tuple(directory_events) if directory_events is not None else None,
        monitor=catalog.monitor,
        oidc_key_removals=tuple(key_removals),
    )
