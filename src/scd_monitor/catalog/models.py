"""The catalog: providers → services → checks, as pydantic models.

Every model forbids unknown keys, so a typo is an error and not a silently ignored
setting. ``interval`` and ``timeout`` are inherited downwards: catalog ``defaults`` →
provider → service → check; the nearest one wins. :meth:`Catalog.resolved_checks`
flattens the tree into :class:`ResolvedCheck` values, the form the rest of the
daemon works with.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    SecretStr,
    Tag,
    field_validator,
    model_validator,
)

from scd_monitor.catalog.durations import Duration

SLUG_PATTERN = r"^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$"
Slug = Annotated[str, Field(pattern=SLUG_PATTERN)]

ServiceType = Literal["autenticacion_digital", "carpeta_ciudadana", "interoperabilidad", "otro"]

_HEADER_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")


class StrictModel(BaseModel):
    """Base of every catalog model: unknown keys are errors; values are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class SecretRef(StrictModel):
    """A secret read from the environment or from a file, never written in the catalog.

    After loading, ``value`` holds it as a ``SecretStr`` (never printed).
    """

    env: str | None = None
    file: Path | None = None
    value: SecretStr | None = Field(default=None, exclude=True)

    @model_validator(mode="after")
    def _one_source(self) -> SecretRef:
        if (self.env is None) == (self.file is None):
            raise ValueError("give exactly one of 'env' or 'file'")
        return self


class TlsOptions(StrictModel):
    """How a check speaks TLS to its target."""

    verify: bool = True
    ca_file: Path | None = None
    client_cert: Path | None = None
    client_key: Path | None = None
    server_name: str | None = None

    @model_validator(mode="after")
    def _key_needs_cert(self) -> TlsOptions:
        if self.client_key is not None and self.client_cert is None:
            raise ValueError("'client_key' needs 'client_cert'")
        return self


class JsonAssertion(StrictModel):
    """An assertion on one field of a JSON response body.

    ``path`` is a dotted path (``issuer``, ``keys.0.kid``). With no other key the
    assertion is that the field exists.
    """

    path: Annotated[str, Field(min_length=1)]
    equals: str | int | float | bool | None = None
    matches: str | None = None
    exists: bool = True

    @field_validator("matches")
    @classmethod
    def _regex_compiles(cls, value: str | None) -> str | None:
        if value is not None:
            _compile(value)
        return value


def _compile(pattern: str) -> re.Pattern[str]:
    try:
        return re.compile(pattern)
    except re.error as exc:
        raise ValueError(f"invalid regular expression {pattern!r}: {exc}") from None


class _CheckBase(StrictModel):
    id: Slug
    name: str | None = None
    critical: bool = True
    enabled: bool = True
    interval: Duration | None = None
    timeout: Duration | None = None


class HttpCheck(_CheckBase):
    """An HTTP(S) request whose answer is judged by status, body and JSON assertions."""

    kind: Literal["http"]
    url: str
    method: Literal["GET", "HEAD", "POST", "PUT", "OPTIONS"] = "GET"
    headers: dict[str, str] = Field(default_factory=dict)
    secret_headers: dict[str, SecretRef] = Field(default_factory=dict)
    body: str | None = None
    expect_status: Annotated[list[Annotated[int, Field(ge=100, le=599)]], Field(min_length=1)] = [
        200
    ]
    maintenance_status: list[Annotated[int, Field(ge=100, le=599)]] = Field(default_factory=list)
    """Statuses that mean "in maintenance" (e.g. ``[503]`` for an X-Road health check):
    such a probe fails, but the time is maintenance, not downtime."""
    body_regex: str | None = None
    body_not_regex: str | None = None
    json_assertions: list[JsonAssertion] = Field(default_factory=list, alias="json")
    max_body_bytes: Annotated[int, Field(gt=0)] = 1_048_576
    follow_redirects: bool = False
    max_redirects: Annotated[int, Field(ge=0, le=20)] = 5
    tls: TlsOptions = TlsOptions()

    model_config = ConfigDict(populate_by_name=True)

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"expected an http:// or https:// URL with a host, got {value!r}")
        return value

    @model_validator(mode="after")
    def _maintenance_not_expected(self) -> HttpCheck:
        both = set(self.maintenance_status) & set(self.expect_status)
        if both:
            raise ValueError(f"status {sorted(both)} both expected and meaning maintenance")
        return self

    @field_validator("body_regex", "body_not_regex")
    @classmethod
    def _regex_compiles(cls, value: str | None) -> str | None:
        if value is not None:
            _compile(value)
        return value

    @field_validator("headers", "secret_headers")
    @classmethod
    def _header_names(cls, value: dict[str, object]) -> dict[str, object]:
        for name in value:
            if not _HEADER_NAME.match(name):
                raise ValueError(f"invalid HTTP header name {name!r}")
        return value


class TlsCheck(_CheckBase):
    """A TLS handshake only: reports the certificate chain's expiry, even if untrusted."""

    kind: Literal["tls"]
    host: Annotated[str, Field(min_length=1)]
    port: Annotated[int, Field(ge=1, le=65535)] = 443
    tls: TlsOptions = TlsOptions()
    min_days_valid: Annotated[int, Field(ge=0)] = 0


Check = Annotated[HttpCheck | TlsCheck, Field(discriminator="kind")]

CHECK_KINDS: tuple[str, ...] = ("http", "tls")
"""The catalog's ``kind`` literals; the probe registry must have exactly these keys."""


class Sla(StrictModel):
    """The service's *Acuerdo de Niveles de Servicio* (ANS)."""

    availability_target: Annotated[float, Field(gt=0, le=1)] = 0.995
    latency_threshold: Duration = timedelta(seconds=2)


class Defaults(StrictModel):
    interval: Duration = timedelta(seconds=30)
    timeout: Duration = timedelta(seconds=10)
    failures_to_open: Annotated[int, Field(ge=1, le=100)] = 3
    """Consecutive failed probes that confirm a check is DOWN."""
    successes_to_close: Annotated[int, Field(ge=1, le=100)] = 1
    """Consecutive successful probes that confirm it is UP again."""


def _aware(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError("give a UTC offset (e.g. 2026-12-06T02:00:00-05:00)")
    return value


AwareDatetime = Annotated[datetime, AfterValidator(_aware)]


class MaintenanceWindow(StrictModel):
    """A one-off announced maintenance window ``[start, end)``."""

    start: AwareDatetime
    end: AwareDatetime
    reason: Annotated[str, Field(min_length=1)]
    announced_at: AwareDatetime | None = None
    """When the provider announced it; needed when the service sets a minimum notice."""

    @model_validator(mode="after")
    def _ordered(self) -> MaintenanceWindow:
        if self.end <= self.start:
            raise ValueError("'end' must be after 'start'")
        return self


class RecurringMaintenance(StrictModel):
    """A maintenance window that recurs: starts on a cron schedule, lasts ``duration``.

    The cron expression (minute hour day-of-month month day-of-week) is read in the
    catalog's time zone.
    """

    cron: str
    duration: Duration
    reason: Annotated[str, Field(min_length=1)]

    @field_validator("cron")
    @classmethod
    def _valid_cron(cls, value: str) -> str:
        from apscheduler.triggers.cron import CronTrigger

        if len(value.split()) != 5:
            raise ValueError("expected 5 cron fields: minute hour day month day-of-week")
        try:
            CronTrigger.from_crontab(value, timezone="UTC")
        except ValueError as exc:
            raise ValueError(f"invalid cron expression {value!r}: {exc}") from None
        return value

    @field_validator("duration")
    @classmethod
    def _positive(cls, value: timedelta) -> timedelta:
        if value <= timedelta(0):
            raise ValueError("duration must be positive")
        return value


def _maintenance_tag(value: object) -> str:
    if isinstance(value, dict):
        return "recurring" if "cron" in value else "once"
    return "recurring" if isinstance(value, RecurringMaintenance) else "once"


Maintenance = Annotated[
    Annotated[MaintenanceWindow, Tag("once")] | Annotated[RecurringMaintenance, Tag("recurring")],
    Discriminator(_maintenance_tag),
]


class QuorumRule(StrictModel):
    quorum: Annotated[int, Field(ge=1)]


ServiceRule = Literal["any", "all"] | QuorumRule
"""How critical checks combine: ``any`` down → down, ``all`` down → down, or N down."""


class Service(StrictModel):
    id: Slug
    name: str | None = None
    type: ServiceType
    sla: Sla = Sla()
    interval: Duration | None = None
    timeout: Duration | None = None
    rule: ServiceRule = "any"
    vantage_quorum: Annotated[int, Field(ge=1)] = 1
    """Vantages (with fresh data) that must see the service down for it to be down."""
    failures_to_open: Annotated[int, Field(ge=1, le=100)] | None = None
    successes_to_close: Annotated[int, Field(ge=1, le=100)] | None = None
    maintenance: list[Maintenance] = Field(default_factory=list)
    maintenance_notice: Duration | None = None
    """Minimum notice for one-off windows: one announced later is not excluded."""
    checks: Annotated[list[Check], Field(min_length=1)]

    @model_validator(mode="after")
    def _quorum_fits(self) -> Service:
        if isinstance(self.rule, QuorumRule):
            critical = sum(1 for c in self.checks if c.critical)
            if self.rule.quorum > critical:
                raise ValueError(
                    f"rule quorum {self.rule.quorum} exceeds the {critical} critical checks"
                )
        return self

    @field_validator("checks")
    @classmethod
    def _unique_checks(cls, value: list[HttpCheck | TlsCheck]) -> list[HttpCheck | TlsCheck]:
        _reject_duplicates("check", [c.id for c in value])
        return value


class Provider(StrictModel):
    id: Slug
    name: Annotated[str, Field(min_length=1)]
    contact: str | None = None
    interval: Duration | None = None
    timeout: Duration | None = None
    services: Annotated[list[Service], Field(min_length=1)]

    @field_validator("services")
    @classmethod
    def _unique_services(cls, value: list[Service]) -> list[Service]:
        _reject_duplicates("service", [s.id for s in value])
        return value


def _reject_duplicates(what: str, ids: list[str]) -> None:
    seen: set[str] = set()
    for ident in ids:
        if ident in seen:
            raise ValueError(f"duplicate {what} id {ident!r}")
        seen.add(ident)


@dataclass(frozen=True, slots=True)
class ResolvedCheck:
    """One check with everything inherited filled in: what the scheduler runs."""

    provider: str
    service: str
    check: str
    kind: str
    interval: timedelta
    timeout: timedelta
    critical: bool
    spec: HttpCheck | TlsCheck
    service_type: ServiceType
    provider_name: str
    sla: Sla
    canary: bool = False
    """A control target of the monitor itself, not a provider's service."""

    @property
    def id(self) -> str:
        """The check's identity, the same in the store, the logs and the metrics."""
        return f"{self.provider}/{self.service}/{self.check}"

    @property
    def target(self) -> str:
        """What the check points at, for logs and ``_info`` metrics (no credentials)."""
        spec = self.spec
        if isinstance(spec, HttpCheck):
            parts = urlsplit(spec.url)
            host = parts.hostname or ""
            port = f":{parts.port}" if parts.port else ""
            return f"{parts.scheme}://{host}{port}{parts.path}"
        return f"{spec.host}:{spec.port}"


class MassFailure(StrictModel):
    """When most providers fail at once, the monitor is the likelier culprit."""

    min_ratio: Annotated[float, Field(gt=0, le=1)] = 0.5
    """Share of the providers (with fresh data) that must have a check down."""
    min_providers: Annotated[int, Field(ge=2)] = 3


class MonitorSelf(StrictModel):
    """How the monitor tells its own faults from the providers'."""

    canaries: list[Check] = Field(default_factory=list)
    """Control targets that should always answer; when they fail, the monitor is at fault."""
    mass_failure: MassFailure = MassFailure()

    @field_validator("canaries")
    @classmethod
    def _unique_canaries(cls, value: list[HttpCheck | TlsCheck]) -> list[HttpCheck | TlsCheck]:
        _reject_duplicates("canary", [c.id for c in value])
        return value


CANARY_PROVIDER = "scd-monitor"
CANARY_SERVICE = "canaries"


class Catalog(StrictModel):
    """The whole catalog file."""

    version: str | None = None
    timezone: str = "America/Bogota"
    defaults: Defaults = Defaults()
    monitor: MonitorSelf = MonitorSelf()
    providers: Annotated[list[Provider], Field(min_length=1)]

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r} (use an IANA name)") from None
        return value

    @field_validator("providers")
    @classmethod
    def _unique_providers(cls, value: list[Provider]) -> list[Provider]:
        _reject_duplicates("provider", [p.id for p in value])
        if any(p.id == CANARY_PROVIDER for p in value):
            raise ValueError(f"provider id {CANARY_PROVIDER!r} is reserved for the canaries")
        return value

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def service(self, provider: str, service: str) -> Service | None:
        for p in self.providers:
            if p.id == provider:
                return next((s for s in p.services if s.id == service), None)
        return None

    def resolved_checks(self, *, include_disabled: bool = False) -> list[ResolvedCheck]:
        """Every check with inherited ``interval`` and ``timeout`` filled in.

        The monitor's canaries come first, as provider ``scd-monitor``, service ``canaries``.
        """
        out: list[ResolvedCheck] = []
        for canary in self.monitor.canaries:
            if not canary.enabled and not include_disabled:
                continue
            out.append(
                ResolvedCheck(
                    provider=CANARY_PROVIDER,
                    service=CANARY_SERVICE,
                    check=canary.id,
                    kind=canary.kind,
                    interval=canary.interval or self.defaults.interval,
                    timeout=canary.timeout or self.defaults.timeout,
                    critical=True,
                    spec=canary,
                    service_type="otro",
                    provider_name="scd-monitor (canaries)",
                    sla=Sla(),
                    canary=True,
                )
            )
        for provider in self.providers:
            for service in provider.services:
                for check in service.checks:
                    if not check.enabled and not include_disabled:
                        continue
                    interval = _first(
                        check.interval, service.interval, provider.interval, self.defaults.interval
                    )
                    timeout = _first(
                        check.timeout, service.timeout, provider.timeout, self.defaults.timeout
                    )
                    out.append(
                        ResolvedCheck(
                            provider=provider.id,
                            service=service.id,
                            check=check.id,
                            kind=check.kind,
                            interval=interval,
                            timeout=timeout,
                            critical=check.critical,
                            spec=check,
                            service_type=service.type,
                            provider_name=provider.name,
                            sla=service.sla,
                        )
                    )
        return out


def _first(*values: timedelta | None) -> timedelta:
    for value in values:
        if value is not None:
            return value
    raise AssertionError("defaults always give a value")
