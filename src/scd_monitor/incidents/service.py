"""The incident service: what the daemon and the CLI call.

:meth:`IncidentService.evaluate` runs detection and the lifecycle over one snapshot of
observations and, in **one transaction**, stores the trackers' new states, the
incidents and their events, the report of every reported event and the outbox
deliveries of each report. A crash before the commit leaves nothing (the next
evaluation decides again from the stored trackers); after it, everything is there and
the outbox delivers it. :meth:`note` and :meth:`resolve` do the same for an operator's
action. Several daemons may share the database: only the holder of the evaluator lease
evaluates (the others return no events), and the trackers' revisions and the
incidents' unique keys make a lost race roll back rather than open a second incident.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import structlog
from sqlalchemy import Connection

from scd_monitor.catalog.incidents import IncidentsConfig
from scd_monitor.clock import Clock
from scd_monitor.errors import NotFoundError
from scd_monitor.incidents.detect import describe_states, detect, unobservable
from scd_monitor.incidents.lifecycle import Phase, TrackerState, Transition, resolve, step
from scd_monitor.incidents.model import MONITOR_PROVIDER, Signal
from scd_monitor.incidents.observe import Observations, ServiceObservation
from scd_monitor.incidents.report import (
    SCHEMA_VERSION,
    EventFacts,
    Evidence,
    IncidentFacts,
    NoteFacts,
    build_report,
    redact_details,
    redact_evidence,
    render,
    sla_impact,
)
from scd_monitor.incidents.routing import plan_deliveries
from scd_monitor.sanitize import clean_text, clean_value
from scd_monitor.store import Store
from scd_monitor.store.incidents import EventRow, EvidenceRow, IncidentRepository, IncidentRow
from scd_monitor.store.outbox import DeliveryRow, OutboxRepository, OutboxStats
from scd_monitor.timefmt import iso_utc

__all__ = ["IncidentDetail", "IncidentService", "RecordedEvent", "facts_of"]

log = structlog.get_logger("scd_monitor.incidents")

LEASE_NAME = "incident-evaluator"
_STATUS = {Phase.OPEN: "open", Phase.RECOVERING: "recovering", Phase.RESOLVED: "resolved"}


@dataclass(frozen=True, slots=True)
class RecordedEvent:
    """An event as stored: what the daemon logs and the CLI prints."""

    incident: str
    provider: str
    service: str
    seq: int
    kind: str
    reason: str
    severity: str
    type: str
    notify: bool
    deliveries: int


@dataclass(frozen=True, slots=True)
class IncidentDetail:
    incident: IncidentRow
    events: list[tuple[EventFacts, bool, Mapping[str, Any]]]
    notes: list[NoteFacts]
    deliveries: list[DeliveryRow]
    last_report_text: str | None


class IncidentService:
    """Detection + lifecycle + reports + outbox, over one store."""

    def __init__(
        self,
        store: Store,
        config: IncidentsConfig,
        *,
        clock: Clock,
        timezone: str = "America/Bogota",
        holder: str = "local",
        names: Callable[[str, str], Mapping[str, Any]] | None = None,
    ) -> None:
        self.store = store
        self.repo = IncidentRepository(store)
        self.outbox = OutboxRepository(store)
        self._config = config
        self._clock = clock
        self._timezone = timezone
        self._holder = holder
        self._names = names
        self.evaluations_total = 0
        self.conflicts_total = 0
        self.last_evaluation: datetime | None = None

    @property
    def config(self) -> IncidentsConfig:
        return self._config

    def configure(self, config: IncidentsConfig, *, timezone: str | None = None) -> None:
        """Use a new configuration (a catalog reload); trackers and incidents are kept."""
        self._config = config
        if timezone is not None:
            self._timezone = timezone

    # -- the daemon's call ------------------------------------------------------------

    def evaluate(self, observations: Observations) -> list[RecordedEvent]:
        """Detect, step every service's lifecycle, store what happened; return it.

        Returns ``[]`` without doing anything while another daemon holds the evaluator
        lease, or when incidents are disabled. Raises :class:`StoreError` (nothing
        stored) when the database fails or another process won a race.
        """
        config = self._config
        if not config.enabled:
            return []
        now = observations.at
        ttl = max(3 * config.evaluate_every, timedelta(seconds=30))
        if not self.repo.acquire_lease(LEASE_NAME, self._holder, now, ttl):
            return []
        if observations.directory_events is None and observations.directories:
            window = max(
                config.policy(d.provider, d.service).rules.directory.vanished_for
                for d in observations.directories
            )
            observations = replace(
                observations, directory_events=tuple(self.repo.directory_events(now - window))
            )
        signals = detect(observations, config, tz=ZoneInfo(self._timezone))
        held = unobservable(observations)
        services = {(s.provider, s.service): s for s in observations.services}
        recorded: list[RecordedEvent] = []
        with self.store.transaction("evaluating incidents") as conn:
            trackers = self._trackers(conn)
            for key in sorted(set(signals) | set(trackers)):
                state, revision = trackers.get(key, (TrackerState(), None))
                policy = config.policy(*key)
                new, transitions = step(
                    state,
                    signals.get(key, []),
                    now,
                    resolve_after=policy.resolve_after,
                    quiet_period=policy.quiet_period,
                    hold=key in held,
                )
                if new == state:
                    continue
                for transition in transitions:
                    recorded.append(
                        self._record(
                            conn,
                            key,
                            new,
                            transition,
                            service=services.get(key),
                            vantage=observations.vantage,
                        )
                    )
                self._save_tracker(conn, key, new, revision, now)
        self.evaluations_total += 1
        self.last_evaluation = now
        for event in recorded:
            log.info(
                "incident.event",
                incident=event.incident,
                provider=event.provider,
                service=event.service,
                change=event.kind,
                reason=event.reason,
                severity=event.severity,
                type=event.type,
                reported=event.notify,
                deliveries=event.deliveries,
            )
        return recorded

    # -- operators' calls -------------------------------------------------------------

    def note(self, code: str, text: str, *, author: str | None = None) -> RecordedEvent:
        """Record an action taken; an update report with it goes out at once."""
        text = text.strip()
        if not text:
            raise ValueError("the note is empty")
        now = self._clock.now()
        with self.store.transaction(f"adding a note to {code}") as conn:
            incident = self._incident(conn, code)
            self.repo.add_note(conn, incident.id, at=now, author=author, text=text)
            return self._event(
                conn, incident, kind="updated", reason="note", at=now, notify=True, details={}
            )

    def resolve(
        self, code: str, *, author: str | None = None, text: str | None = None
    ) -> RecordedEvent:
        """Resolve an open incident by hand (the conditions present now are suppressed
        until they clear); a resolution report goes out."""
        now = self._clock.now()
        with self.store.transaction(f"resolving {code}") as conn:
            incident = self._incident(conn, code)
            key = (incident.provider, incident.service)
            found = self._tracker(conn, key)
            if found is None or found[0].generation != incident.generation or not found[0].is_open:
                raise NotFoundError(f"{code} is not open")
            state, revision = found
            new, transition = resolve(state, now)
            assert transition is not None
            if text and text.strip():
                self.repo.add_note(conn, incident.id, at=now, author=author, text=text.strip())
            event = self._record(conn, key, new, transition, service=None, vantage=None)
            self._save_tracker(conn, key, new, revision, now)
            return event

    def list(self, *, open_only: bool = True, limit: int = 100) -> list[IncidentRow]:
        return self.repo.list_incidents(open_only=open_only, limit=limit)

    def show(self, code: str) -> IncidentDetail:
        with self.store.transaction(f"reading {code}") as conn:
            incident = self._incident(conn, code)
            events = self.repo.events(conn, incident.id)
            notes = self.repo.notes(conn, incident.id)
            text = self.repo.report_text(conn, incident.id)
        return IncidentDetail(
            incident=incident,
            events=[(_event_facts(e), e.notify, e.details) for e in events],
            notes=[NoteFacts(n.at, n.author, n.text) for n in notes],
            deliveries=self.outbox.deliveries(incident_id=incident.id),
            last_report_text=text[0] if text else None,
        )

    def stats(self) -> OutboxStats:
        return self.outbox.stats(self._clock.now())

    # -- internals ----------------------------------------------------------------------

    def _trackers(self, conn: Connection) -> dict[tuple[str, str], tuple[TrackerState, int]]:
        """Every stored tracker's state and revision."""
        return {
            key: (TrackerState.from_json(state), revision)
            for key, (state, revision) in self.repo.trackers(conn).items()
        }

    def _tracker(self, conn: Connection, key: tuple[str, str]) -> tuple[TrackerState, int] | None:
        found = self.repo.tracker(conn, key)
        return None if found is None else (TrackerState.from_json(found[0]), found[1])

    def _save_tracker(
        self,
        conn: Connection,
        key: tuple[str, str],
        state: TrackerState,
        revision: int | None,
        now: datetime,
    ) -> None:
        """Store a tracker's new state (its JSON): a blank state is never inserted,
        and a stored one is deleted once blank with no incident generation to remember."""
        drop = state.is_blank and (revision is None or state.generation == 0)
        self.repo.save_tracker(conn, key, None if drop else state.to_json(), revision, now)

    def _incident(self, conn: Connection, code: str) -> IncidentRow:
        incident = self.repo.incident_by_code(conn, code.strip().upper())
        if incident is None:
            raise NotFoundError(f"no incident {code!r}")
        return incident

    def _record(
        self,
        conn: Connection,
        key: tuple[str, str],
        state: TrackerState,
        transition: Transition,
        *,
        service: ServiceObservation | None,
        vantage: str | None,
    ) -> RecordedEvent:
        """Store one lifecycle transition: the incident row, the event, its report."""
        assert state.started_at is not None and state.detected_at is not None
        status = _STATUS[transition.phase]
        resolved = transition.phase is Phase.RESOLVED
        incident = self.repo.incident_of(conn, key, transition.generation)
        context = self._context(
            incident.context if incident is not None else {},
            key,
            transition,
            service,
            vantage,
            state,
        )
        values: dict[str, Any] = {
            "status": status,
            "open_key": None if resolved else f"{key[0]}/{key[1]}",
            "type": transition.incident_kind.value,
            "severity": transition.severity.value,
            "kinds": sorted(k.value for k in state.kinds),
            "started_at": state.started_at,
            "ended_at": state.cleared_at if resolved else None,
            "resolved_at": state.resolved_at if resolved else None,
            "context": context,
            "updated_at": transition.at,
        }
        if incident is None:
            if transition.kind != "opened":
                raise NotFoundError(
                    f"incident {transition.generation} of {key[0]}/{key[1]} is not stored"
                )
            year = state.detected_at.astimezone(ZoneInfo(self._timezone)).year
            self.repo.insert_incident(
                conn,
                code=self.repo.allocate_code(conn, year),
                provider=key[0],
                service=key[1],
                generation=transition.generation,
                detected_at=state.detected_at,
                **values,
            )
        else:
            self.repo.update_incident(conn, incident.id, **values)
        row = self.repo.incident_of(conn, key, transition.generation)
        assert row is not None
        details = {
            "signals": [
                {"key": s.key, "kind": s.kind.value, "severity": s.severity.value}
                for s in transition.signals
            ]
        }
        return self._event(
            conn,
            row,
            kind=transition.kind,
            reason=clean_text(transition.reason),
            at=transition.at,
            notify=transition.notify,
            details=details,
        )

    def _event(
        self,
        conn: Connection,
        incident: IncidentRow,
        *,
        kind: str,
        reason: str,
        at: datetime,
        notify: bool,
        details: Mapping[str, Any],
    ) -> RecordedEvent:
        event_id, seq = self.repo.add_event(
            conn,
            incident.id,
            kind=kind,
            reason=reason,
            at=at,
            severity=incident.severity,
            notify=notify,
            details=details,
        )
        planned = 0
        if notify:
            planned = self._report(
                conn, incident, EventFacts(seq, kind, reason, at, incident.severity), event_id
            )
        return RecordedEvent(
            incident=incident.code,
            provider=incident.provider,
            service=incident.service,
            seq=seq,
            kind=kind,
            reason=reason,
            severity=incident.severity.value,
            type=incident.type.value,
            notify=notify,
            deliveries=planned,
        )

    def _report(
        self, conn: Connection, incident: IncidentRow, event: EventFacts, event_id: int
    ) -> int:
        config = self._config
        now = self._clock.now()
        notes = [NoteFacts(n.at, n.author, n.text) for n in self.repo.notes(conn, incident.id)]
        checks = incident.context.get("impact", {}).get("checks", [])
        evidence = [
            _evidence(e)
            for e in self.repo.evidence(conn, checks, per_check=config.evidence_results)
        ]
        document = build_report(
            facts_of(incident),
            event,
            notes,
            evidence,
            generated_at=max(now, event.at),
            timezone=self._timezone,
            issuer_name=config.issuer.name,
            issuer_contact=config.issuer.contact,
        )
        rendered = render(document)
        report_id = self.repo.add_report(
            conn,
            incident_id=incident.id,
            event_id=event_id,
            body=rendered.body,
            text=rendered.text,
            html=rendered.html,
            schema_version=SCHEMA_VERSION,
            now=now,
        )
        planned = plan_deliveries(
            config,
            event_kind=event.kind,
            incident_type=incident.type,
            severity=incident.severity,
            provider=incident.provider,
            provider_contact=incident.context.get("provider_contact"),
        )
        for p in planned:
            self.outbox.add_delivery(
                conn,
                report_id=report_id,
                incident_id=incident.id,
                sink=p.sink,
                audience=p.audience,
                recipient=p.recipient,
                idempotency_key=f"{incident.code}.{event.seq}.{p.sink}",
                now=now,
                problem=p.problem,
            )
        return len(planned)

    def _context(
        self,
        previous: Mapping[str, Any],
        key: tuple[str, str],
        transition: Transition,
        service: ServiceObservation | None,
        vantage: str | None,
        state: TrackerState,
    ) -> dict[str, Any]:
        ctx: dict[str, Any] = dict(previous)
        names = dict(self._names(*key)) if self._names is not None else {}
        if service is not None:
            names.setdefault("provider_name", service.provider_name)
            names.setdefault("service_name", service.service_name)
            names.setdefault("service_type", service.service_type)
            names.setdefault("provider_contact", service.provider_contact)
        if key[0] == MONITOR_PROVIDER:
            names.setdefault("provider_name", "scd-monitor (sistema de monitoreo)")
            names.setdefault("service_name", "Sistema de monitoreo")
            names.setdefault("service_type", "otro")
        for name, value in names.items():
            if value is not None or name not in ctx:
                ctx[name] = value
        if transition.signals:
            ctx["conditions"] = [_condition(s) for s in transition.signals]
        elif transition.kind == "resolved":
            ctx["conditions"] = []
        if service is not None:
            ctx["operation"] = describe_states(service, ZoneInfo(self._timezone))
            impact = sla_impact(
                service.sla,
                started_at=state.started_at or transition.at,
                amber_from=service.amber_from,
            )
            if impact is not None:
                ctx["sla"] = impact
        impact_now = dict(ctx.get("impact") or {"checks": [], "vantages": [], "error_kinds": []})
        checks = set(impact_now.get("checks", []))
        kinds = set(impact_now.get("error_kinds", []))
        vantages = set(impact_now.get("vantages", []))
        for s in transition.signals:
            checks.update(s.checks)
            kinds.update(s.error_kinds)
        if vantage is not None and transition.signals:
            vantages.add(vantage)
        ctx["impact"] = {
            "checks": sorted(checks),
            "vantages": sorted(vantages),
            "error_kinds": sorted(kinds),
        }
        # Names and summaries come from outside (discovered directories, probe errors):
        # valid, NUL-free, bounded text before anything is stored or reported.
        cleaned = clean_value(ctx, limit=4000, max_items=20_000)
        assert isinstance(cleaned, dict)
        return cleaned


def facts_of(row: IncidentRow) -> IncidentFacts:
    """A stored incident as its report quotes it."""
    return IncidentFacts(
        code=row.code,
        provider=row.provider,
        service=row.service,
        status=row.status,
        type=row.type,
        severity=row.severity,
        kinds=row.kinds,
        started_at=row.started_at,
        detected_at=row.detected_at,
        ended_at=row.ended_at,
        resolved_at=row.resolved_at,
        context=row.context,
    )


def _event_facts(row: EventRow) -> EventFacts:
    return EventFacts(row.seq, row.kind, row.reason, row.at, row.severity)


def _evidence(row: EvidenceRow) -> Evidence:
    """A stored failing result, redacted for quoting in a report."""
    return Evidence(
        check_id=row.check_id,
        vantage=row.vantage,
        started_at=row.started_at,
        duration_seconds=row.duration_seconds,
        error_kind=row.error_kind,
        message=redact_evidence(row.message),
        status_code=row.status_code,
        details=redact_details(row.details),
    )


def _condition(signal: Signal) -> dict[str, Any]:
    return {
        "key": signal.key,
        "kind": signal.kind.value,
        "severity": signal.severity.value,
        "summary": signal.summary,
        "since": iso_utc(signal.since) if signal.since is not None else None,
    }


def names_from_catalog(catalog: Any) -> Callable[[str, str], Mapping[str, Any]]:
    """A ``names`` callable for :class:`IncidentService` over a (effective) catalog."""

    def names(provider: str, service: str) -> Mapping[str, Any]:
        p = catalog.provider(provider)
        s = catalog.service(provider, service)
        out: dict[str, Any] = {}
        if p is not None:
            out["provider_name"] = p.name
            out["provider_contact"] = p.contact
        if s is not None:
            out["service_name"] = s.name
            out["service_type"] = s.type
        return out

    return names
