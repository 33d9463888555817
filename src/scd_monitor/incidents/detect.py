"""Detection: observations → signals per service. Pure functions, no clock, no I/O.

Rules (each configurable per service through :meth:`IncidentsConfig.policy`):

- **outage**: the service is DOWN by its rule (critical checks confirmed down by the
  state tracker); ``since`` = the earliest outage start of its down checks.
- **degradation**: the service is DEGRADED (slower than its latency threshold, or a
  non-critical check down); must last ``after`` (10 min) before it counts.
- **sla_at_risk**: a configured burn rate over its threshold (``sla_burn:<window>``),
  or month-to-date availability below the target (``sla_availability:<YYYY-MM>``).
- **certificate**: a peer certificate expired (``cert_expired``) or expiring within
  ``expiring_within`` (``cert_expiring``), one key per check.
- **directory** (X-Road sources, on their platform service): members, subsystems or
  services that disappeared in the last ``vanished_for`` and did not come back; the
  global configuration expired or expiring; no successful read for ``stale_after``.
- **oidc_keys** (``oidc`` checks): a signing key removed from the provider's JWKS while a
  token it signed was still valid (``oidc_key_removed``), for ``lasts`` after the removal,
  one key per check and key id.
- **monitor**: a canary down, or a mass failure (as the SLA defines it) → one
  ``monitor_fault`` signal on ``scd-monitor/monitor``; while it lasts, outages and
  degradations are not signalled (that time is UNKNOWN, never charged to a provider).

Severities, unless a rule sets one: see :func:`default_severity`.

Summaries are es-CO for the reports: numbers by :mod:`scd_monitor.l10n`, instants in
``tz`` (the catalog's time zone, the one the reports use).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from scd_monitor import l10n
from scd_monitor.analysis.selfcheck import CheckNow, SelfCheck, self_check
from scd_monitor.catalog.incident_kinds import Severity, SignalKind
from scd_monitor.catalog.incidents import IncidentsConfig, Rules
from scd_monitor.incidents.labels import STATE_LABELS, error_kind_label
from scd_monitor.incidents.model import MONITOR_PROVIDER, MONITOR_SERVICE, Signal
from scd_monitor.incidents.observe import (
    CheckObservation,
    DirectoryObservation,
    KeyRemoval,
    Observations,
    ServiceObservation,
)
from scd_monitor.sla.model import State
from scd_monitor.timefmt import iso_utc

if TYPE_CHECKING:
    from scd_monitor.xroad.directory import DirectoryEvent

__all__ = ["ServiceKey", "default_severity", "detect", "unobservable"]

ServiceKey = tuple[str, str]

_BURN_LABELS = {3600: "1h", 21600: "6h", 86400: "1d", 259200: "3d"}
_VANISHING = ("member", "subsystem", "service")
_BOGOTA = ZoneInfo("America/Bogota")


def default_severity(kind: SignalKind, service_type: str, trigger: str = "") -> Severity:
    """The severity a signal gets unless its rule sets one.

    ======================  ===========================================================
    outage                  critical for Autenticación Digital and Interoperabilidad,
                            high otherwise
    degradation             medium (low for ``otro``)
    sla_at_risk             high below the target, medium for a burn rate alone
    cert_expiring           medium
    cert_expired            high
    oidc_key_removed        high
    directory_anomaly       critical when the global configuration expired, high
                            otherwise
    monitor_fault           high (operations only)
    ======================  ===========================================================
    """
    if kind is SignalKind.OUTAGE:
        if service_type in ("autenticacion_digital", "interoperabilidad"):
            return Severity.CRITICAL
        return Severity.HIGH
    if kind is SignalKind.DEGRADATION:
        return Severity.LOW if service_type == "otro" else Severity.MEDIUM
    if kind is SignalKind.SLA_AT_RISK:
        return Severity.HIGH if trigger == "availability" else Severity.MEDIUM
    if kind is SignalKind.CERT_EXPIRING:
        return Severity.MEDIUM
    if kind is SignalKind.CERT_EXPIRED:
        return Severity.HIGH
    if kind is SignalKind.DIRECTORY_ANOMALY:
        return Severity.CRITICAL if trigger == "globalconf_expired" else Severity.HIGH
    return Severity.HIGH


def detect(
    obs: Observations, config: IncidentsConfig, *, tz: ZoneInfo = _BOGOTA
) -> dict[ServiceKey, list[Signal]]:
    """Every signal true at ``obs.at``, by (provider, service); services without a
    signal are absent. ``tz``: the zone the summaries write instants in."""
    out: dict[ServiceKey, list[Signal]] = defaultdict(list)
    monitor = monitor_signals(obs, config.policy(MONITOR_PROVIDER, MONITOR_SERVICE).rules)
    for signal in monitor:
        out[signal.service_key].append(signal)
    monitor_fault = bool(monitor) or _monitor_fault_at_all(obs)
    for service in obs.services:
        rules = config.policy(service.provider, service.service).rules
        signals: list[Signal] = []
        if not monitor_fault:
            signals += outage_signals(service, rules)
            signals += degradation_signals(service, rules)
        signals += sla_signals(service, rules)
        signals += certificate_signals(service, rules, obs.at, tz)
        signals += oidc_key_signals(service, obs.oidc_key_removals, rules, obs.at, tz)
        if signals:
            out[(service.provider, service.service)].extend(signals)
    events = obs.directory_events or ()
    for source in obs.directories:
        rules = config.policy(source.provider, source.service).rules
        signals = directory_signals(source, events, rules, obs.at, tz)
        if signals:
            out[(source.provider, source.service)].extend(signals)
    return dict(out)


def unobservable(obs: Observations) -> set[ServiceKey]:
    """Services about which nothing is known now: state UNKNOWN (no fresh data), or every
    service while the monitor is at fault. Their absent signals are not read as cleared."""
    if _monitor_fault_at_all(obs):
        return {(s.provider, s.service) for s in obs.services}
    return {(s.provider, s.service) for s in obs.services if s.state is State.UNKNOWN}


def _monitor_fault_at_all(obs: Observations) -> bool:
    """A monitor fault even when the monitor rule is disabled (outages still suppressed)."""
    return not vantage_check(obs).trusted


def vantage_check(obs: Observations) -> SelfCheck:
    """The vantage's self-check (:mod:`scd_monitor.analysis.selfcheck`) over the
    observed checks."""
    checks = [
        CheckNow(c.check_id, s.provider, c.host or c.check_id, c.state, c.error_kind)
        for s in obs.services
        for c in s.checks
    ]
    checks += [
        CheckNow(c.check_id, MONITOR_PROVIDER, c.host or c.check_id, c.state, canary=True)
        for c in obs.canaries
    ]
    return self_check(checks, obs.monitor)


def _sev(
    rule_severity: Severity | None, kind: SignalKind, service_type: str, trigger: str = ""
) -> Severity:
    return rule_severity or default_severity(kind, service_type, trigger)


def _error_kinds(checks: Iterable[CheckObservation]) -> tuple[str, ...]:
    return tuple(sorted({c.error_kind for c in checks if c.error_kind}))


def _kinds_text(kinds: Sequence[str]) -> str:
    """``; tipo de error: tiempo de espera agotado (timeout)`` (plural for several)."""
    if not kinds:
        return ""
    noun = "tipo de error" if len(kinds) == 1 else "tipos de error"
    return f"; {noun}: " + ", ".join(error_kind_label(k) for k in kinds)


def outage_signals(service: ServiceObservation, rules: Rules) -> list[Signal]:
    rule = rules.outage
    if not rule.enabled or service.state is not State.DOWN:
        return []
    down = [c for c in service.checks if c.state is State.DOWN]
    critical = [c for c in service.checks if c.critical]
    down_critical = [c for c in down if c.critical] or down
    starts = [c.since for c in down_critical if c.since is not None]
    kinds = _error_kinds(down_critical)
    which = "verificaciones críticas" if critical else "verificaciones"
    summary = (
        f"El servicio no responde. {which.capitalize()} caídas: {len(down_critical)} de "
        f"{len(critical) or len(service.checks)}"
        + (f" ({', '.join(c.check for c in down_critical)})" if down_critical else "")
        + _kinds_text(kinds)
        + "."
    )
    return [
        Signal(
            provider=service.provider,
            service=service.service,
            kind=SignalKind.OUTAGE,
            key="outage",
            severity=_sev(rule.severity, SignalKind.OUTAGE, service.service_type),
            summary=summary,
            since=min(starts) if starts else None,
            after=rule.after,
            checks=tuple(c.check_id for c in down_critical),
            error_kinds=kinds,
            details={"down_checks": len(down_critical), "critical_checks": len(critical)},
        )
    ]


def degradation_signals(service: ServiceObservation, rules: Rules) -> list[Signal]:
    rule = rules.degradation
    if not rule.enabled or service.state is not State.DEGRADED:
        return []
    involved = [c for c in service.checks if c.state in (State.DEGRADED, State.DOWN)]
    slow = [c for c in involved if c.state is State.DEGRADED]
    down = [c for c in involved if c.state is State.DOWN]
    parts = []
    if slow:
        parts.append(
            "respuestas por encima del umbral de latencia en " + ", ".join(c.check for c in slow)
        )
    if down:
        parts.append("verificaciones no críticas caídas: " + ", ".join(c.check for c in down))
    summary = "Servicio degradado: " + ("; ".join(parts) or "estado degradado") + "."
    return [
        Signal(
            provider=service.provider,
            service=service.service,
            kind=SignalKind.DEGRADATION,
            key="degradation",
            severity=_sev(rule.severity, SignalKind.DEGRADATION, service.service_type),
            summary=summary,
            after=rule.after,
            checks=tuple(c.check_id for c in involved),
            error_kinds=_error_kinds(down),
            details={"slow_checks": len(slow), "down_noncritical_checks": len(down)},
        )
    ]


def sla_signals(service: ServiceObservation, rules: Rules) -> list[Signal]:
    rule = rules.sla_at_risk
    figures = service.sla
    if not rule.enabled or figures is None:
        return []
    out: list[Signal] = []
    rates = {b.window: b for b in figures.burn_rates}
    for threshold in rule.burn_rates:
        burn = rates.get(threshold.window)
        if burn is None or burn.rate is None or burn.rate <= threshold.above:
            continue
        label = _BURN_LABELS.get(int(threshold.window.total_seconds()), str(threshold.window))
        out.append(
            Signal(
                provider=service.provider,
                service=service.service,
                kind=SignalKind.SLA_AT_RISK,
                key=f"sla_burn:{label}",
                severity=_sev(rule.severity, SignalKind.SLA_AT_RISK, service.service_type, "burn"),
                summary=(
                    "Tasa de consumo del presupuesto de error en la ventana de "
                    f"{l10n.duration(threshold.window)}: {l10n.number(burn.rate, decimals=2)} "
                    f"(umbral: {l10n.number(threshold.above, decimals=3)}); tiempo de caída "
                    f"imputado en esa ventana: {l10n.duration(burn.charged)}."
                ),
                after=rule.after,
                details={
                    "window_seconds": int(threshold.window.total_seconds()),
                    "burn_rate": burn.rate,
                    "threshold": threshold.above,
                },
            )
        )
    if rule.availability_below_target and figures.availability is not None and figures.met is False:
        month = (
            figures.error_budget.month.start
            if figures.error_budget is not None
            else figures.period.start
        )
        out.append(
            Signal(
                provider=service.provider,
                service=service.service,
                kind=SignalKind.SLA_AT_RISK,
                key=f"sla_availability:{iso_utc(month)[:7]}",
                severity=_sev(
                    rule.severity, SignalKind.SLA_AT_RISK, service.service_type, "availability"
                ),
                summary=(
                    "La disponibilidad del mes a la fecha "
                    f"({l10n.percent(figures.availability)}) está por debajo de la meta del "
                    f"ANS ({l10n.percent(figures.target)})."
                ),
                after=rule.after,
                details={"availability": figures.availability, "target": figures.target},
            )
        )
    return out


def certificate_signals(
    service: ServiceObservation, rules: Rules, now: datetime, tz: ZoneInfo = _BOGOTA
) -> list[Signal]:
    rule = rules.certificate
    if not rule.enabled:
        return []
    out: list[Signal] = []
    for check in service.checks:
        expiry = check.cert_not_after
        if expiry is None:
            continue
        remaining = expiry - now
        if remaining <= timedelta(0):
            kind = SignalKind.CERT_EXPIRED
            severity = rule.expired_severity or default_severity(kind, service.service_type)
            summary = (
                f"El certificado del servidor de la verificación {check.check} venció el "
                f"{l10n.local_instant(expiry, tz)}."
            )
        elif remaining <= rule.expiring_within:
            kind = SignalKind.CERT_EXPIRING
            severity = _sev(rule.severity, kind, service.service_type)
            summary = (
                f"El certificado del servidor de la verificación {check.check} vence el "
                f"{l10n.local_instant(expiry, tz)}, dentro de {l10n.duration(remaining)}."
            )
        else:
            continue
        out.append(
            Signal(
                provider=service.provider,
                service=service.service,
                kind=kind,
                key=f"cert:{check.check_id}",
                severity=severity,
                summary=summary,
                checks=(check.check_id,),
                details={"not_after": iso_utc(expiry), "check": check.check_id},
            )
        )
    return out


def oidc_key_signals(
    service: ServiceObservation,
    removals: Sequence[KeyRemoval],
    rules: Rules,
    now: datetime,
    tz: ZoneInfo = _BOGOTA,
) -> list[Signal]:
    """A signal per signing key of the service's ``oidc`` checks removed early, while it
    is at most ``rules.oidc_keys.lasts`` old."""
    rule = rules.oidc_keys
    if not rule.enabled or not removals:
        return []
    checks = {c.check_id: c for c in service.checks}
    out: list[Signal] = []
    for removal in removals:
        check = checks.get(removal.check_id)
        if check is None or not timedelta(0) <= now - removal.at <= rule.lasts:
            continue
        kind = SignalKind.OIDC_KEY_REMOVED
        until = removal.token_valid_until
        valid = ", mientras un token firmado con ella seguía vigente"
        if until is not None:
            valid += f" hasta el {l10n.local_instant(until, tz)}"
        out.append(
            Signal(
                provider=service.provider,
                service=service.service,
                kind=kind,
                key=f"oidc_key:{removal.check_id}:{removal.kid}",
                severity=_sev(rule.severity, kind, service.service_type),
                summary=(
                    f"El proveedor OIDC de la verificación {check.check} retiró de su JWKS la "
                    f"llave {removal.kid} el {l10n.local_instant(removal.at, tz)}{valid}: "
                    "las partes confiantes que tengan esos tokens no pueden verificarlos."
                ),
                checks=(removal.check_id,),
                details={
                    "check": removal.check_id,
                    "kid": removal.kid,
                    "removed_at": iso_utc(removal.at),
                    **({"token_valid_until": iso_utc(until)} if until else {}),
                },
            )
        )
    return out


def directory_signals(
    source: DirectoryObservation,
    events: Sequence[DirectoryEvent],
    rules: Rules,
    now: datetime,
    tz: ZoneInfo = _BOGOTA,
) -> list[Signal]:
    rule = rules.directory
    if not rule.enabled:
        return []
    kind = SignalKind.DIRECTORY_ANOMALY
    out: list[Signal] = []

    def signal(
        key: str, trigger: str, summary: str, since: datetime | None, **details: object
    ) -> None:
        out.append(
            Signal(
                provider=source.provider,
                service=source.service,
                kind=kind,
                key=key,
                severity=_sev(rule.severity, kind, "interoperabilidad", trigger),
                summary=summary,
                since=since,
                details={"source": source.source, "instance": source.instance, **details},
            )
        )

    vanished = _vanished(source.source, events, since=now - rule.vanished_for)
    if vanished:
        subjects = sorted(vanished)
        by_kind: dict[str, int] = defaultdict(int)
        for k, _subject in vanished:
            by_kind[k] += 1
        names = {
            "member": ("miembro", "miembros"),
            "subsystem": ("subsistema", "subsistemas"),
            "service": ("servicio", "servicios"),
        }
        counted = ", ".join(
            f"{n} {names[k][n != 1] if k in names else k}" for k, n in sorted(by_kind.items())
        )
        listed = ", ".join(s for _, s in subjects[:10])
        more = f" y {len(subjects) - 10} más" if len(subjects) > 10 else ""
        signal(
            "directory_vanished",
            "vanished",
            f"Elementos que desaparecieron del directorio de X-Road {source.instance} "
            f"(fuente {source.source}): {counted} — {listed}{more}.",
            min(vanished.values()),
            vanished=[{"kind": k, "subject": s} for k, s in subjects[:50]],
            vanished_count=len(subjects),
        )
    expires = source.globalconf_expires_at
    if expires is not None:
        remaining = expires - now
        if remaining <= timedelta(0):
            signal(
                "globalconf",
                "globalconf_expired",
                f"La configuración global de X-Road {source.instance} venció el "
                f"{l10n.local_instant(expires, tz)}: los servidores de seguridad que no la "
                "renueven dejan de intercambiar mensajes.",
                expires,
                expires_at=iso_utc(expires),
            )
        elif remaining < source.min_validity:
            signal(
                "globalconf",
                "globalconf_expiring",
                f"La configuración global de X-Road {source.instance} vence el "
                f"{l10n.local_instant(expires, tz)}, dentro de {l10n.duration(remaining)}, y "
                "no se ha renovado.",
                None,
                expires_at=iso_utc(expires),
            )
    stale_after = rule.stale_after or 3 * source.interval
    last = source.last_success_at
    if last is not None and now - last > stale_after:
        signal(
            "directory_stale",
            "stale",
            f"El directorio de X-Road {source.instance} (fuente {source.source}) no se ha "
            f"podido leer desde el {l10n.local_instant(last, tz)}, hace "
            f"{l10n.duration(now - last)}.",
            last + stale_after,
            last_success_at=iso_utc(last),
        )
    return out


def _vanished(
    source: str, events: Sequence[DirectoryEvent], *, since: datetime
) -> dict[tuple[str, str], datetime]:
    """(kind, subject) → when it disappeared, for entities whose last event since
    ``since`` is a disappearance."""
    last: dict[tuple[str, str], tuple[datetime, str]] = {}
    for event in events:
        if event.source != source or event.at < since:
            continue
        if event.kind not in _VANISHING or event.change not in ("appeared", "disappeared"):
            continue
        key = (event.kind, event.subject)
        previous = last.get(key)
        if previous is None or event.at >= previous[0]:
            last[key] = (event.at, event.change)
    return {k: at for k, (at, change) in last.items() if change == "disappeared"}


def monitor_signals(obs: Observations, rules: Rules) -> list[Signal]:
    rule = rules.monitor
    if not rule.enabled:
        return []
    severity = rule.severity or default_severity(SignalKind.MONITOR_FAULT, "otro")

    def signal(
        key: str,
        summary: str,
        checks: Sequence[CheckObservation] = (),
        details: Mapping[str, Any] | None = None,
    ) -> Signal:
        starts = [c.since for c in checks if c.since is not None]
        return Signal(
            provider=MONITOR_PROVIDER,
            service=MONITOR_SERVICE,
            kind=SignalKind.MONITOR_FAULT,
            key=key,
            severity=severity,
            summary=summary,
            since=min(starts) if starts else None,
            after=rule.after,
            checks=tuple(c.check_id for c in checks),
            error_kinds=_error_kinds(checks),
            details=details or {},
        )

    out: list[Signal] = []
    verdict = vantage_check(obs)
    canaries = [c for c in obs.canaries if c.check_id in verdict.canaries_down]
    if canaries:
        out.append(
            signal(
                "canaries",
                "Verificaciones de control del monitor caídas desde el punto de medición "
                f"{obs.vantage}: "
                + ", ".join(c.check for c in canaries)
                + ". Mientras dure la falla, las mediciones de ese punto no se imputan a "
                "los prestadores.",
                canaries,
            )
        )
    if verdict.mass_failure is not None:
        down, fresh = verdict.mass_failure
        out.append(
            signal(
                "mass_failure",
                f"Falla masiva vista desde el punto de medición {obs.vantage}: {down} de "
                f"{fresh} prestadores con verificaciones caídas al mismo tiempo; se presume "
                "una falla del monitor y no se imputa a los prestadores.",
                details={"providers_down": down, "providers_fresh": fresh},
            )
        )
    blind = verdict.blind_hosts
    if blind is not None:
        out.append(
            signal(
                "network_path",
                f"El punto de medición {obs.vantage} no logra resolver ni conectar con "
                f"ninguno de sus destinos ({len(blind)} destinos distintos fallan a la vez "
                "por DNS o conexión y ninguno responde): se presume una falla de la red "
                "o del resolvedor del propio monitor. Las mediciones de este punto no se "
                "imputan a los prestadores.",
                [c for s in obs.services for c in s.checks if c.state is State.DOWN and c.since],
                details={"hosts": list(blind)},
            )
        )
    return out


def describe_states(service: ServiceObservation, tz: ZoneInfo = _BOGOTA) -> list[str]:
    """Lines for the report's *condiciones de operación*: each check and its state
    (``Verificación oidc (crítica) — estado: caído desde el …; último error: …``)."""
    lines = [f"Estado del servicio: {STATE_LABELS.get(service.state.value, service.state.value)}."]
    for check in service.checks:
        state = STATE_LABELS.get(check.state.value, check.state.value)
        since = f" desde el {l10n.local_instant(check.since, tz)}" if check.since else ""
        extra = f"; último error: {error_kind_label(check.error_kind)}" if check.error_kind else ""
        critical = "crítica" if check.critical else "no crítica"
        lines.append(f"Verificación {check.check} ({critical}) — estado: {state}{since}{extra}.")
    return lines
