"""The catalog's ``incidents:`` section: detection rules, routes, sinks, the outbox.

Every model forbids unknown keys, like the rest of the catalog. Each sink's model is its
sink module's (:mod:`scd_monitor.sinks`: ``WebhookSinkConfig``, ``EmailSinkConfig``,
``FileSinkConfig``, united as ``SinkConfig``); severities, signal kinds, audiences and
event kinds are :mod:`scd_monitor.catalog.incident_kinds`. Secrets (the webhook's HMAC
key, the SMTP password) are :class:`~scd_monitor.config.types.SecretRef` values each
sink's model names and reads (``SinkConfigBase.resolve``); :func:`secret_problems` and
:func:`resolve_secrets` do it for the whole section, for the catalog loader. The catalog
never holds them. ``docs/incidents.md`` shows the YAML.

Per-service overrides (``overrides:``) change only the keys they name::

    overrides:
      - provider: prestador-a          # every service of the provider …
        service: autenticacion         # … or only this one
        rules: {degradation: {after: 30m}, outage: {severity: high}}
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Annotated

from pydantic import Field, field_validator, model_validator

from scd_monitor.catalog.incident_kinds import (
    EVENT_KINDS,
    Audience,
    EventKind,
    Severity,
    SignalKind,
)
from scd_monitor.config.durations import Duration
from scd_monitor.config.types import Slug, StrictModel
from scd_monitor.net.tls import tls_files
from scd_monitor.sinks import EmailSinkConfig, SinkConfig
from scd_monitor.sinks.base import secret_problem

__all__ = [
    "BackoffConfig",
    "BurnRateRule",
    "CertificateRule",
    "DegradationRule",
    "DirectoryRule",
    "IncidentsConfig",
    "Issuer",
    "Loc",
    "MonitorRule",
    "OutageRule",
    "OutboxConfig",
    "Route",
    "Rules",
    "ServiceOverride",
    "ServicePolicy",
    "SlaAtRiskRule",
    "resolve_secrets",
    "secret_problems",
]

_BURN_WINDOWS = (
    timedelta(hours=1),
    timedelta(hours=6),
    timedelta(days=1),
    timedelta(days=3),
)


def _not_negative(value: timedelta) -> timedelta:
    if value < timedelta(0):
        raise ValueError("must not be negative")
    return value


class _Rule(StrictModel):
    enabled: bool = True
    severity: Severity | None = None
    """Overrides the severity derived from the rule and the service type."""


class OutageRule(_Rule):
    """The service is confirmed down (by its rule, after ``failures_to_open`` probes)."""

    after: Duration = timedelta(0)
    """Extra time the outage must last before an incident opens (the state tracker's
    debounce already confirmed it)."""


class DegradationRule(_Rule):
    """The service answers slower than its ``latency_threshold`` (or a non-critical
    check is down) for at least ``after``."""

    after: Duration = timedelta(minutes=10)


class BurnRateRule(StrictModel):
    window: Duration
    above: Annotated[float, Field(gt=0)]

    @field_validator("window")
    @classmethod
    def _known_window(cls, value: timedelta) -> timedelta:
        if value not in _BURN_WINDOWS:
            raise ValueError("burn rate windows are 1h, 6h, 1d or 3d (the SLA engine's)")
        return value


class SlaAtRiskRule(_Rule):
    """A burn rate over its threshold, or month-to-date availability below the target."""

    burn_rates: list[BurnRateRule] = Field(
        default_factory=lambda: [
            BurnRateRule(window=timedelta(hours=1), above=14.4),
            BurnRateRule(window=timedelta(hours=6), above=6.0),
        ]
    )
    """Defaults: the multi-window thresholds that spend 2 % (1 h) and 5 % (6 h) of a
    30-day budget."""
    availability_below_target: bool = True
    after: Duration = timedelta(0)


class CertificateRule(_Rule):
    """A peer certificate (TLS and HTTPS checks) expiring within ``expiring_within``, or
    expired. ``severity`` applies to expiring ones; ``expired_severity`` to expired."""

    expiring_within: Duration = timedelta(days=14)
    expired_severity: Severity | None = None


class OidcKeyRule(_Rule):
    """OIDC checks: a signing key removed from the provider's JWKS while a token it signed
    was still valid (an ``early`` key event, :mod:`scd_monitor.store.oidckeys`). The
    signal lasts ``lasts`` after the removal; the incident then resolves as usual."""

    lasts: Duration = timedelta(hours=1)


class DirectoryRule(_Rule):
    """X-Road directory anomalies of a source, on its platform service.

    Subsystems, services or members that disappeared within ``vanished_for`` (and did not
    come back); the global configuration expiring (within the source's
    ``min_validity``) or expired; no successful read for ``stale_after`` (default: three
    of the source's intervals).
    """

    vanished_for: Duration = timedelta(hours=24)
    stale_after: Duration | None = None


class MonitorRule(_Rule):
    """The monitor's own faults: canaries down, or a mass failure of the providers.
    Reported to operations only, never to the authority or a provider."""

    after: Duration = timedelta(0)


class Rules(StrictModel):
    outage: OutageRule = OutageRule()
    degradation: DegradationRule = DegradationRule()
    sla_at_risk: SlaAtRiskRule = SlaAtRiskRule()
    certificate: CertificateRule = CertificateRule()
    directory: DirectoryRule = DirectoryRule()
    monitor: MonitorRule = MonitorRule()
    oidc_keys: OidcKeyRule = OidcKeyRule()

    def merged(self, override: Rules) -> Rules:
        """These rules with the keys ``override`` names (and only those) replaced."""
        update = {}
        for name in override.model_fields_set:
            mine = getattr(self, name)
            theirs = getattr(override, name)
            update[name] = mine.model_copy(
                update={f: getattr(theirs, f) for f in theirs.model_fields_set}
            )
        return self.model_copy(update=update) if update else self


class ServiceOverride(StrictModel):
    """Rules and timings for every service of ``provider``, or only ``service``."""

    provider: Slug
    service: Slug | None = None
    rules: Rules = Rules()
    resolve_after: Duration | None = None
    quiet_period: Duration | None = None


class Route(StrictModel):
    """Which events go to which sinks, for one audience."""

    audience: Audience
    sinks: Annotated[list[Slug], Field(min_length=1)]
    min_severity: Severity = Severity.LOW
    events: Annotated[list[EventKind], Field(min_length=1)] = Field(
        default_factory=lambda: list(EVENT_KINDS)
    )
    types: list[SignalKind] | None = None
    """Only incidents of these types (default: all)."""
    providers: list[Slug] | None = None
    """Only incidents of these providers (default: all)."""


class BackoffConfig(StrictModel):
    """Delay before retry ``n`` (1-based): ``min(max, initial × multiplier^(n-1))``, then
    a random share of up to ``jitter`` of it taken off."""

    initial: Duration = timedelta(seconds=10)
    max: Duration = timedelta(hours=1)
    multiplier: Annotated[float, Field(ge=1)] = 2.0
    jitter: Annotated[float, Field(ge=0, le=1)] = 0.2

    @model_validator(mode="after")
    def _ordered(self) -> BackoffConfig:
        if self.initial <= timedelta(0) or self.max < self.initial:
            raise ValueError("need 0 < initial <= max")
        return self


class OutboxConfig(StrictModel):
    interval: Duration = timedelta(seconds=5)
    """How often the dispatcher looks for due deliveries."""
    lease: Duration = timedelta(minutes=2)
    """How long a claimed delivery is ours; after a crash it is claimed again then."""
    batch: Annotated[int, Field(ge=1, le=1000)] = 50
    concurrency: Annotated[int, Field(ge=1, le=64)] = 4
    backoff: BackoffConfig = BackoffConfig()
    max_attempts: Annotated[int, Field(ge=1)] | None = None
    """Give up (``failed``, kept and shown) after this many attempts; default: never."""

    @model_validator(mode="after")
    def _lease_positive(self) -> OutboxConfig:
        if self.lease <= timedelta(0) or self.interval <= timedelta(0):
            raise ValueError("'lease' and 'interval' must be positive")
        return self


class Issuer(StrictModel):
    """Who sends the reports (shown in them)."""

    name: str = "Articulador de los Servicios Ciudadanos Digitales"
    contact: str | None = None


@dataclass(frozen=True, slots=True)
class ServicePolicy:
    """The rules and timings in force for one service (defaults + its overrides)."""

    rules: Rules
    resolve_after: timedelta
    quiet_period: timedelta


class IncidentsConfig(StrictModel):
    """The ``incidents:`` section of the catalog."""

    enabled: bool = True
    evaluate_every: Duration = timedelta(seconds=10)
    resolve_after: Duration = timedelta(minutes=5)
    """An incident is resolved once its conditions stayed clear this long."""
    quiet_period: Duration = timedelta(minutes=30)
    """A problem that comes back within this time after its incident was resolved
    re-opens that incident instead of opening a new one."""
    evidence_results: Annotated[int, Field(ge=0, le=50)] = 5
    """Last failing probe results per check quoted in a report."""
    issuer: Issuer = Issuer()
    rules: Rules = Rules()
    overrides: list[ServiceOverride] = Field(default_factory=list)
    routes: list[Route] = Field(default_factory=list)
    sinks: list[SinkConfig] = Field(default_factory=list)
    outbox: OutboxConfig = OutboxConfig()

    @field_validator("evaluate_every", "resolve_after", "quiet_period")
    @classmethod
    def _durations(cls, value: timedelta) -> timedelta:
        return _not_negative(value)

    @model_validator(mode="after")
    def _consistent(self) -> IncidentsConfig:
        if self.evaluate_every <= timedelta(0):
            raise ValueError("'evaluate_every' must be positive")
        ids = [s.id for s in self.sinks]
        seen: set[str] = set()
        for ident in ids:
            if ident in seen:
                raise ValueError(f"duplicate sink id {ident!r}")
            seen.add(ident)
        audiences: dict[str, set[str]] = {}
        for index, route in enumerate(self.routes):
            for name in route.sinks:
                if name not in seen:
                    raise ValueError(f"routes[{index}]: unknown sink {name!r}")
                audiences.setdefault(name, set()).add(route.audience)
        for sink in self.sinks:
            used = audiences.get(sink.id, set())
            if len(used) > 1:
                raise ValueError(
                    f"sink {sink.id!r} is routed to several audiences ({', '.join(sorted(used))});"
                    " give each audience its own sink"
                )
            if isinstance(sink, EmailSinkConfig) and not sink.to and used - {"provider"}:
                raise ValueError(
                    f"sink {sink.id!r}: 'to' is required for the {', '.join(sorted(used))} audience"
                )
        for index, override in enumerate(self.overrides):
            for name in ("resolve_after", "quiet_period"):
                value = getattr(override, name)
                if value is not None and value < timedelta(0):
                    raise ValueError(f"overrides[{index}].{name} must not be negative")
        return self

    def sink(self, ident: str) -> SinkConfig | None:
        return next((s for s in self.sinks if s.id == ident), None)

    def audience_of(self, sink: str) -> Audience | None:
        """The audience a sink serves (each sink serves one), or None when unrouted."""
        return next((r.audience for r in self.routes if sink in r.sinks), None)

    def policy(self, provider: str, service: str) -> ServicePolicy:
        """Defaults, then provider-wide overrides, then the service's own, in file order."""
        rules = self.rules
        resolve_after = self.resolve_after
        quiet = self.quiet_period
        matching = [o for o in self.overrides if o.provider == provider and o.service is None]
        matching += [o for o in self.overrides if o.provider == provider and o.service == service]
        for o in matching:
            rules = rules.merged(o.rules)
            resolve_after = o.resolve_after if o.resolve_after is not None else resolve_after
            quiet = o.quiet_period if o.quiet_period is not None else quiet
        return ServicePolicy(rules=rules, resolve_after=resolve_after, quiet_period=quiet)


Loc = tuple[str | int, ...]
"""A location in the catalog, from its root (``("incidents", "sinks", 0, "secret")``)."""


def secret_problems(config: IncidentsConfig, base_dir: Path) -> list[tuple[Loc, str]]:
    """``(location, problem)`` for every sink secret that cannot be read and every sink
    TLS file that does not exist (for the catalog loader's ``file:line: key: problem``
    lines): the secrets of every sink first, then the files."""
    problems: list[tuple[Loc, str]] = []
    for index, sink in enumerate(config.sinks):
        for name, ref in sink.secrets():
            problem = secret_problem(ref, base_dir)
            if problem is not None:
                problems.append((("incidents", "sinks", index, name), problem))
    for index, sink in enumerate(config.sinks):
        tls = sink.tls_options()
        for name, path in tls_files(tls) if tls is not None else []:
            if not (base_dir / path).is_file():
                problems.append(
                    (
                        ("incidents", "sinks", index, "tls", name),
                        f"file not found: {base_dir / path}",
                    )
                )
    return problems


def resolve_secrets(config: IncidentsConfig, base_dir: Path) -> IncidentsConfig:
    """A copy with every sink's secrets read (``SecretRef.value``) and relative paths
    (file sink directories, TLS files) made absolute against ``base_dir`` (the catalog's
    folder). Call :func:`secret_problems` first: a missing secret raises
    ``KeyError``/``OSError``.
    """
    return config.model_copy(update={"sinks": [sink.resolve(base_dir) for sink in config.sinks]})
