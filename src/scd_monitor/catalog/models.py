"""The catalog: providers → services → checks, as pydantic models.

Every model forbids unknown keys, so a typo is an error and not a silently ignored
setting. ``interval`` and ``timeout`` are inherited downwards: catalog ``defaults`` →
provider → service → check; the nearest one wins. :meth:`Catalog.resolved_checks`
flattens the tree into :class:`ResolvedCheck` values, the form the rest of the
daemon works with.

X-Road (the Interoperabilidad platform) has three check kinds of its own
(``xroad_health``, ``xroad_metaservice``, ``xroad_globalconf``) and a catalog section
``xroad:`` of directory sources (:class:`XRoadSource`) whose discovered members,
subsystems and services become providers, services and checks at run time
(:mod:`scd_monitor.catalog.discovered`). Identifier fields are checked with
:mod:`scd_monitor.xroad.identifiers` (imported lazily: that package imports this module).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    AfterValidator,
    ConfigDict,
    Discriminator,
    Field,
    PrivateAttr,
    Tag,
    field_validator,
    model_validator,
)

from scd_monitor.catalog.incidents import IncidentsConfig
from scd_monitor.config.durations import Duration
from scd_monitor.config.types import (
    HttpUrlText,
    Label,
    SecretRef,
    Slug,
    StrictModel,
    TlsOptions,
)
from scd_monitor.patterns import compile_pattern

ServiceType = Literal["autenticacion_digital", "carpeta_ciudadana", "interoperabilidad", "otro"]

_HEADER_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")


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


def _compile(pattern: str) -> None:
    """RE2, as the probes match (:mod:`scd_monitor.patterns`): linear time on any body."""
    compile_pattern(pattern)


class _CheckBase(StrictModel):
    id: Slug
    name: Label | None = None
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
    expect_status: Annotated[list[Annotated[int, Field(ge=100, le=599)]], Field(min_length=1)] = (
        Field(default_factory=lambda: [200])
    )
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


# -- X-Road -------------------------------------------------------------------------


def _xroad_part(value: str) -> str:
    from scd_monitor.xroad.identifiers import validate_part

    return validate_part(value, "X-Road instance")


def _xroad_client(value: str) -> str:
    from scd_monitor.xroad.identifiers import ClientId

    ClientId.parse(value)
    return value


def _xroad_service(value: str) -> str:
    from scd_monitor.xroad.identifiers import ServiceId

    ServiceId.parse(value)
    return value


def _xroad_service_ref(value: str) -> str:
    """A service code (any version) or a whole service identifier."""
    from scd_monitor.xroad.identifiers import ServiceId, validate_part

    if "/" in value:
        ServiceId.parse(value)
        return value
    return validate_part(value, "service code")


def _xroad_server(value: str) -> str:
    from scd_monitor.xroad.identifiers import ClientId, validate_part

    parts = value.split("/")
    if len(parts) != 4:
        raise ValueError(
            f"security server identifier {value!r} has {len(parts)} parts, "
            "expected 4 (INSTANCE/CLASS/MEMBER/SERVERCODE)"
        )
    ClientId(*parts[:3])
    validate_part(parts[3], "server code")
    return value


XRoadInstance = Annotated[str, AfterValidator(_xroad_part)]
XRoadClientId = Annotated[str, AfterValidator(_xroad_client)]
"""``INSTANCE/CLASS/MEMBER[/SUBSYSTEM]``, checked by :meth:`ClientId.parse`."""
XRoadServiceId = Annotated[str, AfterValidator(_xroad_service)]
"""``INSTANCE/CLASS/MEMBER/SUBSYSTEM/SERVICE[/VERSION]``, checked by :meth:`ServiceId.parse`."""
XRoadServiceRef = Annotated[str, AfterValidator(_xroad_service_ref)]
XRoadServerId = Annotated[str, AfterValidator(_xroad_server)]


class SecurityServerRef(StrictModel):
    """A security server the monitor calls as one of its information systems.

    ``url`` is its address for information systems; ``client`` the monitor's own X-Road
    client (``CO/GOB/8999999999/MONITOR``); ``tls`` the CA and, for mutual TLS (the
    security server's "HTTPS with authentication" mode), the client certificate and key
    registered for that information system.
    """

    url: HttpUrlText
    client: XRoadClientId
    tls: TlsOptions = TlsOptions()


XRoadMetaservice = Literal[
    "list_clients",
    "list_central_services",
    "rest_list_methods",
    "rest_allowed_methods",
    "rest_get_openapi",
    "soap_list_methods",
    "soap_allowed_methods",
    "soap_get_wsdl",
]
METHOD_LISTS: frozenset[str] = frozenset(
    {"rest_list_methods", "rest_allowed_methods", "soap_list_methods", "soap_allowed_methods"}
)
"""Metaservices asked of one provider (``provider``) that list its services."""
DESCRIPTIONS: frozenset[str] = frozenset({"rest_get_openapi", "soap_get_wsdl"})
"""Metaservices that describe one service (``service``)."""


class XRoadHealthCheck(_CheckBase):
    """A security server's health check: 200 healthy, 500 unhealthy, 503 maintenance
    (a failure counted as maintenance, not downtime)."""

    kind: Literal["xroad_health"]
    url: HttpUrlText
    tls: TlsOptions = TlsOptions()


class XRoadMetaserviceCheck(_CheckBase):
    """One metaservice call through a security server, with assertions on the answer.

    ``list_clients`` / ``list_central_services`` list an instance (default: the client's);
    the method lists (``rest_list_methods`` …) need ``provider`` (a subsystem);
    ``rest_get_openapi`` / ``soap_get_wsdl`` need ``service``. Assertions:
    ``expect_clients`` (listed by ``list_clients``), ``expect_services`` (service codes
    or whole service ids listed by a method list; central service codes by
    ``list_central_services``), ``min_entries``.
    """

    kind: Literal["xroad_metaservice"]
    security_server: SecurityServerRef
    metaservice: XRoadMetaservice
    instance: XRoadInstance | None = None
    provider: XRoadClientId | None = None
    service: XRoadServiceId | None = None
    expect_clients: list[XRoadClientId] = Field(default_factory=list)
    expect_services: list[XRoadServiceRef] = Field(default_factory=list)
    min_entries: Annotated[int, Field(ge=0)] | None = None

    @model_validator(mode="after")
    def _fits_the_metaservice(self) -> XRoadMetaserviceCheck:
        ms = self.metaservice
        if ms in METHOD_LISTS:
            if self.provider is None:
                raise ValueError(f"metaservice {ms} needs 'provider' (a subsystem id)")
            if self.provider.count("/") != 3:
                raise ValueError(f"metaservice {ms}: 'provider' must be a subsystem id")
        elif self.provider is not None:
            raise ValueError(f"'provider' is not used by metaservice {ms}")
        if ms in DESCRIPTIONS:
            if self.service is None:
                raise ValueError(f"metaservice {ms} needs 'service' (a service id)")
        elif self.service is not None:
            raise ValueError(f"'service' is not used by metaservice {ms}")
        if self.instance is not None and ms not in ("list_clients", "list_central_services"):
            raise ValueError(f"'instance' is not used by metaservice {ms}")
        if self.expect_clients and ms != "list_clients":
            raise ValueError("'expect_clients' needs metaservice list_clients")
        if self.expect_services and ms not in METHOD_LISTS | {"list_central_services"}:
            raise ValueError(
                "'expect_services' needs a method list (rest_/soap_list_methods, "
                "…_allowed_methods) or list_central_services"
            )
        if ms == "list_central_services" and any("/" in s for s in self.expect_services):
            raise ValueError("list_central_services: 'expect_services' takes central service codes")
        if self.min_entries is not None and ms in DESCRIPTIONS:
            raise ValueError(f"'min_entries' is not used by metaservice {ms}")
        return self


class XRoadGlobalconfCheck(_CheckBase):
    """Download a global configuration (directory + shared parameters) and judge it.

    Fails (``assertion``) when the directory has expired or expires within
    ``min_validity``, or when an expected member, subsystem or security server is not
    listed. The directory's signature is checked with ``verification_cert`` and/or the
    certificates of a configuration ``anchor`` file, when given.
    """

    kind: Literal["xroad_globalconf"]
    url: HttpUrlText
    instance: XRoadInstance | None = None
    verification_cert: Path | None = None
    anchor: Path | None = None
    min_validity: Duration = timedelta(minutes=1)
    tls: TlsOptions = TlsOptions()
    expect_members: list[XRoadClientId] = Field(default_factory=list)
    """Members or subsystems that must be listed."""
    expect_security_servers: list[XRoadServerId] = Field(default_factory=list)
    """``INSTANCE/CLASS/MEMBER/SERVERCODE`` of servers that must be registered."""
    min_members: Annotated[int, Field(ge=0)] | None = None


OidcEndpoint = Literal["authorization", "token", "userinfo", "end_session"]
OIDC_ENDPOINTS: tuple[OidcEndpoint, ...] = ("authorization", "token", "userinfo", "end_session")


class OidcClient(StrictModel):
    """A monitoring client the provider issued for the monitor: used only for a
    ``client_credentials`` token request (never a user's login, never personal data)."""

    client_id: Annotated[str, Field(min_length=1, max_length=256)]
    client_secret: SecretRef
    auth_method: Literal["client_secret_basic", "client_secret_post"] = "client_secret_basic"
    scope: Annotated[str, Field(min_length=1, max_length=512)] | None = None
    """``scope`` of the token request (none by default: the client's default scopes)."""
    audience: Annotated[str, Field(min_length=1, max_length=512)] | None = None
    """The ``aud`` the token must carry (default: ``client_id``)."""


class OidcExpectations(StrictModel):
    """Values the discovery document must list (each list: all of them, in any order)."""

    scopes_supported: list[Annotated[str, Field(min_length=1)]] = Field(default_factory=list)
    acr_values_supported: list[Annotated[str, Field(min_length=1)]] = Field(default_factory=list)
    code_challenge_methods_supported: list[Annotated[str, Field(min_length=1)]] = Field(
        default_factory=lambda: ["S256"]
    )
    grant_types_supported: list[Annotated[str, Field(min_length=1)]] = Field(default_factory=list)
    response_types_supported: list[Annotated[str, Field(min_length=1)]] = Field(
        default_factory=list
    )

    def required(self) -> dict[str, list[str]]:
        """Field name → the values it must list (empty lists left out)."""
        return {name: list(values) for name, values in self.model_dump().items() if values}


class OidcCheck(_CheckBase):
    """An OpenID Connect provider seen as a relying party sees it, in one probe.

    Steps: the discovery document (``issuer`` equal to the configured one, the fields of
    OIDC Discovery 1.0 §3, the expectations), the JWKS (every key parses, a signing key for
    each advertised algorithm, ``x5c`` certificates not expired), the endpoints answering
    as a live server does to a request without credentials, and, with a ``client``, a
    ``client_credentials`` token whose signature, ``iss``, ``aud`` and ``exp`` are
    verified against the JWKS (:mod:`scd_monitor.probes.oidc`).
    """

    kind: Literal["oidc"]
    issuer: HttpUrlText
    """Exactly as the provider publishes it (compared character for character)."""
    client: OidcClient | None = None
    expect: OidcExpectations = OidcExpectations()
    endpoints: list[OidcEndpoint] = Field(default_factory=lambda: list(OIDC_ENDPOINTS))
    """Which advertised endpoints are contacted without credentials (an endpoint the
    document does not advertise is skipped, except ``authorization`` and ``token``)."""
    signing_algs: Literal["advertised"] | list[Annotated[str, Field(min_length=1)]] = "advertised"
    """The algorithms the JWKS must hold a signing key for: ``advertised`` (default) every
    one of the document's ``id_token_signing_alg_values_supported``; or a list (e.g.
    ``[RS256]``), each of which the document must advertise. Keycloak advertises every
    algorithm it supports, not those it has keys for: give it the list."""
    max_document_bytes: Annotated[int, Field(gt=0, le=16 * 1_048_576)] = 1_048_576
    tls: TlsOptions = TlsOptions()

    @field_validator("issuer")
    @classmethod
    def _issuer(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.query or parts.fragment:
            raise ValueError("an issuer has no query or fragment (OIDC Discovery 1.0 §2)")
        return value

    @property
    def discovery_url(self) -> str:
        """``{issuer}/.well-known/openid-configuration`` (OIDC Discovery 1.0 §4)."""
        return self.issuer.rstrip("/") + "/.well-known/openid-configuration"


CheckSpec = (
    HttpCheck
    | TlsCheck
    | XRoadHealthCheck
    | XRoadMetaserviceCheck
    | XRoadGlobalconfCheck
    | OidcCheck
)
"""Every check model (the members of :data:`Check`)."""

Check = Annotated[CheckSpec, Field(discriminator="kind")]

CHECK_KINDS: tuple[str, ...] = (
    "http",
    "tls",
    "xroad_health",
    "xroad_metaservice",
    "xroad_globalconf",
    "oidc",
)
"""The catalog's ``kind`` literals; the probe registry must have exactly these keys."""


class Sla(StrictModel):
    """The service's *Acuerdo de Niveles de Servicio* (ANS)."""

    availability_target: Annotated[float, Field(gt=0, le=1)] = 0.995
    latency_threshold: Duration = timedelta(seconds=2)
    amber_from: Annotated[float, Field(ge=0, lt=1)] | None = None
    """Lower bound of the amber *rango de medición* (docs/rangos-de-medicion.md); below it
    is red. Default ``2 * availability_target - 1``: one error budget below the target."""
    min_coverage: Annotated[float, Field(ge=0, le=1)] = 0.9
    """The measured share of a closed month's eligible time below which the month gets no
    compliance verdict (*cobertura insuficiente*)."""

    @model_validator(mode="after")
    def _amber_below_target(self) -> Sla:
        if self.amber_from is not None and self.amber_from >= self.availability_target:
            raise ValueError(
                f"'amber_from' ({self.amber_from}) must be below 'availability_target' "
                f"({self.availability_target})"
            )
        return self

    @property
    def amber_lower(self) -> float:
        """The amber band's lower bound, with the default applied (never below 0)."""
        if self.amber_from is not None:
            return self.amber_from
        return max(0.0, 2 * self.availability_target - 1)


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
    reason: Annotated[Label, Field(min_length=1)]
    announced_at: AwareDatetime | None = None
    """When the provider announced it; needed when the service sets a minimum notice."""

    @model_validator(mode="after")
    def _ordered(self) -> MaintenanceWindow:
        if self.end <= self.start:
            raise ValueError("'end' must be after 'start'")
        return self


class RecurringMaintenance(StrictModel):
    """A maintenance window that recurs: starts on a cron schedule, lasts ``duration``.

    The cron expression (minute hour day-of-month month day-of-week) is standard cron,
    as ``cronsim`` reads it: 0 and 7 are Sunday, names ``mon``..``sun`` and
    ``jan``..``dec``, ranges and steps, and when both day-of-month and day-of-week are
    restricted a day matching either one fires (``0 2 1 * mon``: the 1st and every
    Monday). It is read on the wall clock of the catalog's time zone.
    """

    cron: str
    duration: Duration
    reason: Annotated[Label, Field(min_length=1)]

    @field_validator("cron")
    @classmethod
    def _valid_cron(cls, value: str) -> str:
        from cronsim import CronSim, CronSimError

        if len(value.split()) != 5:
            raise ValueError("expected 5 cron fields: minute hour day month day-of-week")
        try:
            CronSim(value, datetime(2000, 1, 1))
        except CronSimError as exc:
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
    name: Label | None = None
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
    def _unique_checks(cls, value: list[CheckSpec]) -> list[CheckSpec]:
        _reject_duplicates("check", [c.id for c in value])
        return value


class Provider(StrictModel):
    id: Slug
    name: Annotated[Label, Field(min_length=1)]
    contact: Label | None = None
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
    spec: CheckSpec
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
        if isinstance(spec, HttpCheck | XRoadHealthCheck | XRoadGlobalconfCheck):
            return _bare_url(spec.url)
        if isinstance(spec, OidcCheck):
            return _bare_url(spec.issuer)
        if isinstance(spec, XRoadMetaserviceCheck):
            subject = spec.provider or spec.service or spec.instance or ""
            what = f"{spec.metaservice} {subject}".rstrip()
            return f"{_bare_url(spec.security_server.url)} {what}"
        return f"{spec.host}:{spec.port}"

    @property
    def host(self) -> str:
        """The host name the check's connection goes to (lower case, no port): what
        the monitor's network self-check counts as one independent destination."""
        spec = self.spec
        if isinstance(spec, HttpCheck | XRoadHealthCheck | XRoadGlobalconfCheck):
            url = spec.url
        elif isinstance(spec, OidcCheck):
            url = spec.issuer
        elif isinstance(spec, XRoadMetaserviceCheck):
            url = spec.security_server.url
        else:
            return spec.host.lower()
        return _hostname(url)


@lru_cache(maxsize=1 << 16)
def _hostname(url: str) -> str:
    """The URL's host, lower case ('' if none); cached: incident evaluation asks for
    every check's at every round."""
    return (urlsplit(url).hostname or "").lower()


def _bare_url(url: str) -> str:
    """A URL without credentials, query or fragment."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}{parts.path}"


NetworkPathKind = Literal["dns", "connect", "timeout", "tls"]


class MassFailure(StrictModel):
    """When most providers fail at once, the monitor is the likelier culprit."""

    min_ratio: Annotated[float, Field(gt=0, le=1)] = 0.5
    """Share of the providers (with fresh data) that must have a check down."""
    min_providers: Annotated[int, Field(ge=2)] = 3


class NetworkPath(StrictModel):
    """The built-in self-check: the vantage's own resolver and network path, judged from
    the error pattern alone (README, "SLA definition"). Needs no configuration."""

    enabled: bool = True
    min_hosts: Annotated[int, Field(ge=2)] = 2
    """Distinct destination hosts that must fail with a network-path error at once."""
    error_kinds: Annotated[tuple[NetworkPathKind, ...], Field(min_length=1)] = ("dns", "connect")
    """Error kinds that mean "could not reach the destination at all"."""


class MonitorSelf(StrictModel):
    """How the monitor tells its own faults from the providers'."""

    canaries: list[Check] = Field(default_factory=list)
    """Control targets that should always answer; when they fail, the monitor is at fault."""
    mass_failure: MassFailure = MassFailure()
    network_path: NetworkPath = NetworkPath()

    @field_validator("canaries")
    @classmethod
    def _unique_canaries(cls, value: list[CheckSpec]) -> list[CheckSpec]:
        _reject_duplicates("canary", [c.id for c in value])
        return value


# -- X-Road directory discovery ---------------------------------------------------------


class XRoadGlobalconfSource(StrictModel):
    """Where a directory source downloads the global configuration from."""

    url: HttpUrlText
    """The configuration source's download URL, e.g. ``http://CENTRAL/internalconf``."""
    verification_cert: Path | None = None
    anchor: Path | None = None
    min_validity: Duration = timedelta(minutes=1)
    """A directory expiring sooner than this is announced as ``expiring``."""
    tls: TlsOptions = TlsOptions()


class DiscoveryProvider(StrictModel):
    """How discovered entries become providers.

    This provider holds one service per source (id = the source's id) with the checks of
    the platform itself: the security server's health check, the global configuration,
    ``listClients``. With ``members_as_providers`` (the default) every discovered member is
    a provider of its own (id = :meth:`ClientId.slug` of the member, name = the member's
    name) holding its subsystems and services; without it they all go to this provider.
    """

    id: Slug
    name: Annotated[Label, Field(min_length=1)]
    contact: Label | None = None
    members_as_providers: bool = True


class _TemplateCheck(StrictModel):
    id: Slug
    name: Label | None = None
    critical: bool = True
    enabled: bool = True
    interval: Duration | None = None
    timeout: Duration | None = None
    kind: Literal["xroad_metaservice"]


class SubsystemCheckTemplate(_TemplateCheck):
    """A check made for every discovered subsystem, asked of that subsystem."""

    metaservice: Literal[
        "rest_list_methods", "rest_allowed_methods", "soap_list_methods", "soap_allowed_methods"
    ]
    min_entries: Annotated[int, Field(ge=0)] | None = None


class ServiceCheckTemplate(_TemplateCheck):
    """A check made for every discovered service.

    ``list_methods`` / ``allowed_methods``: the service's subsystem lists it (REST or SOAP
    by the service's protocol); ``description``: its OpenAPI description (OPENAPI
    services) or WSDL (SOAP services) is served; REST services without a description get
    no check of this kind.
    """

    metaservice: Literal["list_methods", "allowed_methods", "description"] = "list_methods"


class DiscoveryTemplate(StrictModel):
    """What every discovered subsystem and service is given."""

    sla: Sla = Sla()
    interval: Duration | None = None
    timeout: Duration | None = None
    subsystem_checks: list[SubsystemCheckTemplate] = Field(default_factory=list)
    service_checks: list[ServiceCheckTemplate] = Field(default_factory=list)

    @model_validator(mode="after")
    def _unique_ids(self) -> DiscoveryTemplate:
        _reject_duplicates("subsystem check", [c.id for c in self.subsystem_checks])
        _reject_duplicates("service check", [c.id for c in self.service_checks])
        return self


class OperationalMonitoring(StrictModel):
    """X-Road operational monitoring read through the source's security server
    (``getSecurityServerOperationalData`` every ``interval``, ``getSecurityServerHealthData``
    every ``health_interval``) from each of ``security_servers``
    (``INSTANCE/CLASS/MEMBER/SERVERCODE``; the monitor's client must be allowed to read
    them: the server's owner or the instance's central monitoring client sees every
    record, any other client only its own).

    On the first start of a server, records from ``lookback`` ago are read (X-Road keeps
    them about 7 days); afterwards from where the stored cursor says. X-Road publishes a
    record once ``publish_delay`` has passed (its ``records-available-timestamp-offset``,
    60 s by default): later records are asked for in the next round. Labels of the use
    metrics with more than ``max_label_values`` values are folded into ``_other``.
    """

    enabled: bool = True
    security_servers: Annotated[list[XRoadServerId], Field(min_length=1, max_length=256)]
    interval: Duration = timedelta(minutes=5)
    health_interval: Duration = timedelta(minutes=1)
    lookback: Duration = timedelta(days=1)
    publish_delay: Duration = timedelta(minutes=1)
    max_pages: Annotated[int, Field(ge=1, le=100_000)] = 1000
    """Pages read per round at most (a round after a long stop catches up over rounds)."""
    max_label_values: Annotated[int, Field(ge=1, le=100_000)] = 500

    @field_validator("security_servers")
    @classmethod
    def _unique_servers(cls, value: list[str]) -> list[str]:
        _reject_duplicates("security server", value)
        return value

    @model_validator(mode="after")
    def _within_retention(self) -> OperationalMonitoring:
        if self.lookback > timedelta(days=7):
            raise ValueError("lookback: X-Road keeps operational data about 7 days, at most 7d")
        if self.interval <= timedelta(0) or self.health_interval <= timedelta(0):
            raise ValueError("interval and health_interval must be positive")
        return self


class XRoadSource(StrictModel):
    """An X-Road directory to discover: members, subsystems, their services.

    Read from the global configuration (``globalconf``) and/or ``listClients`` of a
    ``security_server``; each subsystem's services from REST and SOAP ``listMethods``
    (which need the security server), every ``interval``, at most ``concurrency``
    requests at a time, each bounded by ``timeout``.
    """

    id: Slug
    name: Label | None = None
    instance: XRoadInstance
    enabled: bool = True
    globalconf: XRoadGlobalconfSource | None = None
    security_server: SecurityServerRef | None = None
    health_url: HttpUrlText | None = None
    """The security server's health check, probed as the platform's ``health`` check."""
    interval: Duration = timedelta(minutes=10)
    timeout: Duration = timedelta(seconds=30)
    concurrency: Annotated[int, Field(ge=1, le=512)] = 16
    provider: DiscoveryProvider
    template: DiscoveryTemplate = DiscoveryTemplate()
    operational_monitoring: OperationalMonitoring | None = None
    """Use of the platform from X-Road's own operational monitoring (docs/uso-plataforma.md)."""

    @model_validator(mode="after")
    def _has_a_directory(self) -> XRoadSource:
        if self.globalconf is None and self.security_server is None:
            raise ValueError("give 'globalconf', 'security_server' or both to read the directory")
        if self.security_server is None and (
            self.template.subsystem_checks or self.template.service_checks
        ):
            raise ValueError(
                "template checks call metaservices: they need 'security_server' "
                "(services are listed through it too)"
            )
        if self.security_server is None and self.operational_monitoring is not None:
            raise ValueError(
                "operational_monitoring is read through our own security server: "
                "it needs 'security_server'"
            )
        return self


CANARY_PROVIDER = "scd-monitor"
CANARY_SERVICE = "canaries"


class Catalog(StrictModel):
    """The whole catalog file."""

    _index: tuple[list[Provider], dict[tuple[str, str], Service]] | None = PrivateAttr(default=None)
    """(the providers list it was built from, (provider, service) → service)."""

    version: str | None = None
    timezone: str = "America/Bogota"
    defaults: Defaults = Defaults()
    monitor: MonitorSelf = MonitorSelf()
    providers: list[Provider]
    xroad: list[XRoadSource] = Field(default_factory=list)
    """X-Road directory sources; what they discover is added at run time."""
    incidents: IncidentsConfig = IncidentsConfig()
    """Detection rules, routes and sinks of incident reports (docs/incidents.md)."""

    @model_validator(mode="before")
    @classmethod
    def _providers_optional_with_xroad(cls, data: object) -> object:
        if isinstance(data, dict) and "providers" not in data and data.get("xroad"):
            return {**data, "providers": []}
        return data

    @model_validator(mode="after")
    def _something_to_watch(self) -> Catalog:
        if not self.providers and not self.xroad:
            raise ValueError("the catalog needs at least one provider or an 'xroad' source")
        return self

    @field_validator("xroad")
    @classmethod
    def _unique_sources(cls, value: list[XRoadSource]) -> list[XRoadSource]:
        _reject_duplicates("xroad source", [s.id for s in value])
        if any(s.provider.id == CANARY_PROVIDER for s in value):
            raise ValueError(f"provider id {CANARY_PROVIDER!r} is reserved for the canaries")
        return value

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
        index = self._index
        if index is None or index[0] is not self.providers:
            services = {(p.id, s.id): s for p in reversed(self.providers) for s in p.services}
            index = (self.providers, services)
            self._index = index
        return index[1].get((provider, service))

    def provider(self, provider: str) -> Provider | None:
        return next((p for p in self.providers if p.id == provider), None)

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
