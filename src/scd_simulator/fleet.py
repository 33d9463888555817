"""The fleet: scripted fake SCD endpoints on loopback, and the Simulator that composes them
with fake OpenID Connect providers, a fake X-Road (security server and configuration source
over one directory) and the control API under ``/_sim/``.
"""

from __future__ import annotations

import asyncio
import bisect
import json
import ssl
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial
from http import HTTPStatus
from pathlib import Path
from typing import Any, get_args
from urllib.parse import parse_qs, unquote

import structlog
import yaml

from scd_monitor.clock import Clock, SystemClock
from scd_monitor.config.durations import format_duration, parse_duration
from scd_simulator.certs import CertificateAuthority, KeyPair, self_signed
from scd_simulator.confsource import FakeConfigurationSource
from scd_simulator.directory import FakeService, XRoadDirectory
from scd_simulator.net import CERT_HOSTS, Lifecycle, base_url, check_loopback, start_all
from scd_simulator.oidc import ACR_VALUES, SECRET_ENV, KeySource, OidcProvider
from scd_simulator.opmon import OpMonData
from scd_simulator.rawhttp import (
    NOT_HTTP,
    Connection,
    HttpServer,
    Request,
    Response,
    json_response,
)
from scd_simulator.scenario import (
    Behaviour,
    EndpointKind,
    EndpointSpec,
    Outage,
    Phase,
    Scenario,
    TlsMode,
    format_behaviour,
    parse_behaviour,
)
from scd_simulator.securityserver import FakeSecurityServer

__all__ = ["MONITOR_MEMBER_CODE", "Simulator", "XRoadSimulator"]

log = structlog.get_logger()

CONTROL_PREFIX = "/_sim/"

_SERVICE_TYPES: dict[str, str] = {
    "oidc": "autenticacion_digital",
    "carpeta": "carpeta_ciudadana",
    "xroad_health": "interoperabilidad",
    "generic": "otro",
}
_KINDS: tuple[EndpointKind, ...] = get_args(EndpointKind)
_JSON = "application/json"
_PLACEHOLDER = Response(500, b"endpoint not prepared\n")
MONITOR_MEMBER_CODE = "8999999999"
"""Member code of the monitor's own X-Road client in a simulated directory."""

BehaviourLike = Behaviour | str | Mapping[str, Any]
"""A :class:`Behaviour` or its YAML/JSON form (``"hang"``, ``{"status": 503}``)."""


class XRoadSimulator(Lifecycle):
    """A :class:`FakeSecurityServer` and a :class:`FakeConfigurationSource` over one directory."""

    def __init__(
        self,
        directory: XRoadDirectory,
        *,
        host: str = "127.0.0.1",
        tls: bool = False,
        workdir: Path | None = None,
        ss_port: int = 0,
        health_port: int = 0,
        conf_port: int = 0,
        opmon: OpMonData | None = None,
    ) -> None:
        self.directory = directory
        self.security_server = FakeSecurityServer(
            directory,
            host=host,
            port=ss_port,
            health_port=health_port,
            tls=tls,
            workdir=workdir,
            opmon=opmon,
        )
        self.configuration_source = FakeConfigurationSource(directory, host=host, port=conf_port)

    async def start(self) -> None:
        await start_all([self.security_server, self.configuration_source])

    async def stop(self) -> None:
        await self.configuration_source.stop()
        await self.security_server.stop()

    def describe(self) -> dict[str, Any]:
        ss, cs = self.security_server, self.configuration_source
        return {
            "security_server": ss.url,
            "health": ss.health_url,
            "internalconf": cs.internal_url,
            "externalconf": cs.external_url,
            "instance": self.directory.instance,
            "members": len(self.directory.members),
            "subsystems": len(self.directory.subsystems),
            "opmon": self.security_server.opmon.describe(),
        }


@dataclass(slots=True)
class _Endpoint:
    spec: EndpointSpec
    override: Behaviour | None = None
    hits: int = 0
    url: str = ""
    offsets: list[float] = field(default_factory=list)
    behaviours: list[Behaviour] = field(default_factory=list)
    healthy: Response = _PLACEHOLDER  # replaced at start, once the URL is known
    bad_json: Response = _PLACEHOLDER


class Simulator(Lifecycle):
    """Fake SCD endpoints, scripted per endpoint and over time, on 127.0.0.1 or ::1.

    Creating it makes a private CA and writes ``workdir/ca.crt``; server certificates
    go to ``workdir/certs/`` when the listeners start. ``ports`` fixes a listener's
    port per TLS mode (default 0: any free port)::

        sim = Simulator(workdir=tmp_path)
        sim.add_endpoint("prestador-a/autenticacion/oidc", kind="oidc", tls="valid")
        sim.add_endpoint("prestador-a/carpeta/health", kind="carpeta",
                         outage={"from": "2m", "to": "4m"})
        async with sim:
            sim.url("prestador-a/autenticacion/oidc")      # https://127.0.0.1:PORT/prestador-a/...
            sim.set_behaviour("prestador-a/carpeta/health", {"status": 503})
            sim.write_catalog(tmp_path / "catalog.yaml")

    :meth:`add_oidc_provider` adds a fake OpenID Connect provider (discovery, JWKS, token,
    userinfo, authorize, logout under its issuer; :mod:`scd_simulator.oidc`) with key
    rotation and faults, steered from Python or the control API::

        GET    /_sim/oidc                                   every provider: issuer, kids, hits
        GET    /_sim/oidc/<id>                              one provider
        PUT    /_sim/oidc/<id>/fault     {"fault": "slow_jwks", "seconds": 5} | null
                                         (issuer_mismatch, missing_key, expired_x5c,
                                          token_500, slow_jwks)
        POST   /_sim/oidc/<id>/rotate    {"retire_previous": false}   a new signing key
        DELETE /_sim/oidc/<id>/keys/<kid>                   retire a key

    One listening socket per TLS mode in use (``none`` always, for the control API under
    ``/_sim/``); endpoints share it and are told apart by path. Everything runs on the
    caller's event loop.

    With ``xroad=`` (an :class:`~scd_simulator.directory.XRoadDirectory`) the simulator
    also runs a fake X-Road over that directory (:class:`XRoadSimulator`:
    a security server with its health check, a configuration source), started and stopped
    with it; :meth:`Simulator.write_catalog` then adds an ``xroad:`` discovery source pointing
    at it, and the control API steers it (another process can change the directory)::

        GET    /_sim/xroad                                  URLs, counts, health status
        PUT    /_sim/xroad/health        {"status": 503}    the health check's answer
        PUT    /_sim/xroad/fault         {"code": "Server.ServerProxy.X", "only": [...]} | null
        PUT    /_sim/xroad/delay         {"seconds": 0.02, "only": [...]}   answer later (0: now)
        PUT    /_sim/xroad/conf-status   {"status": 500} | null   the configuration source
        PUT    /_sim/xroad/expiry        {"at": "2026-01-01T00:00:00Z"} | null
        POST   /_sim/xroad/services      {"subsystem": "CO/GOB/…/SIS01", "code": "x",
                                          "version": null, "kind": "REST"}
        DELETE /_sim/xroad/services?subsystem=CO/GOB/…/SIS01&code=x[&version=v1]
        DELETE /_sim/xroad/subsystems?id=CO/GOB/…/SIS01
    """

    def __init__(
        self,
        workdir: Path,
        *,
        host: str = "127.0.0.1",
        ports: Mapping[TlsMode, int] | None = None,
        clock: Clock | None = None,
        xroad: XRoadDirectory | None = None,
        xroad_client: str | None = None,
        xroad_opmon: OpMonData | None = None,
    ) -> None:
        """``xroad``: also serve a fake X-Road over this directory. ``xroad_client`` is the
        monitor's own client id in it (default ``INSTANCE/CLASS/8999999999/MONITOR``, with the
        directory's first member class); it is added to the directory when missing, since
        the security server answers only known clients. ``xroad_opmon``: the operational
        monitoring data its security server answers with (default: none)."""
        check_loopback(host)
        self.workdir = workdir
        self.host = host
        self._ports: dict[TlsMode, int] = dict(ports or {})
        self._clock = clock or SystemClock()
        self.xroad = xroad
        self.xroad_opmon = xroad_opmon
        self.xroad_client: str | None = None
        self._xroad_sim: XRoadSimulator | None = None
        self._xroad_health = 200
        if xroad is not None:
            member_class = next(iter(xroad.member_classes), "GOB")
            default = f"{xroad.instance}/{member_class}/{MONITOR_MEMBER_CODE}/MONITOR"
            self.xroad_client = xroad_client or default
            parts = self.xroad_client.split("/")
            if len(parts) != 4 or parts[0] != xroad.instance:
                raise ValueError(
                    f"xroad_client {self.xroad_client!r} must be a subsystem of {xroad.instance}"
                )
            if xroad.find_client(tuple(parts)) is None:
                xroad.add_subsystem(parts[1], parts[2], parts[3], name="scd-monitor")
        self._ca = CertificateAuthority("scd-monitor simulator CA")
        self.ca_file = self._ca.write_cert(workdir / "ca.crt")
        self._endpoints: dict[str, _Endpoint] = {}
        self._routes: dict[TlsMode, dict[str, _Endpoint]] = {}
        self._oidc: dict[str, OidcProvider] = {}
        self._oidc_keys = KeySource()
        self._servers: dict[TlsMode, HttpServer] = {}
        self._t0 = 0.0
        self._t0_wall = datetime.now(UTC)

    # -- building ----------------------------------------------------------------------

    @classmethod
    def from_scenario(
        cls,
        scenario: Scenario,
        *,
        workdir: Path,
        host: str = "127.0.0.1",
        port: int = 0,
        clock: Clock | None = None,
        xroad: XRoadDirectory | None = None,
        xroad_opmon: OpMonData | None = None,
    ) -> Simulator:
        """A simulator with the scenario's endpoints; ``port`` (if not 0) fixes the plain one."""
        ports: dict[TlsMode, int] = {mode: s.port for mode, s in scenario.listeners.items()}
        if port:
            ports["none"] = port
        sim = cls(
            workdir, host=host, ports=ports, clock=clock, xroad=xroad, xroad_opmon=xroad_opmon
        )
        for spec in scenario.endpoints:
            sim.add(spec)
        return sim

    @classmethod
    def fleet(
        cls,
        n: int,
        *,
        workdir: Path,
        host: str = "127.0.0.1",
        tls: TlsMode = "none",
        kind: EndpointKind | None = None,
        checks_per_service: int = 10,
        services_per_provider: int = 10,
        clock: Clock | None = None,
    ) -> Simulator:
        """A simulator with ``n`` healthy endpoints (see :meth:`add_fleet`)."""
        sim = cls(workdir, host=host, clock=clock)
        sim.add_fleet(
            n,
            tls=tls,
            kind=kind,
            checks_per_service=checks_per_service,
            services_per_provider=services_per_provider,
        )
        return sim

    def add_fleet(
        self,
        n: int,
        *,
        tls: TlsMode = "none",
        kind: EndpointKind | None = None,
        checks_per_service: int = 10,
        services_per_provider: int = 10,
        prefix: str = "flota",
    ) -> list[str]:
        """Add ``n`` healthy endpoints ``flota-0001/servicio-01/check-01`` … and return their ids.

        Endpoints fill services of ``checks_per_service`` checks, and services fill
        providers of ``services_per_provider``. With no ``kind`` the services take the
        kinds ``oidc``, ``carpeta``, ``xroad_health``, ``generic`` in turn.
        """
        if n < 0 or checks_per_service < 1 or services_per_provider < 1:
            raise ValueError("n must be >= 0 and the group sizes >= 1")
        ids = []
        for i in range(n):
            service_no, check = divmod(i, checks_per_service)
            provider, service = divmod(service_no, services_per_provider)
            endpoint_id = (
                f"{prefix}-{provider + 1:04d}/servicio-{service + 1:02d}/check-{check + 1:02d}"
            )
            self.add_endpoint(endpoint_id, kind=kind or _KINDS[service_no % len(_KINDS)], tls=tls)
            ids.append(endpoint_id)
        return ids

    def add_endpoint(
        self,
        endpoint_id: str,
        *,
        kind: EndpointKind = "generic",
        tls: TlsMode = "none",
        path: str | None = None,
        behaviour: BehaviourLike | None = None,
        timeline: Sequence[Phase | Mapping[str, Any]] | None = None,
        outage: Outage | Mapping[str, Any] | None = None,
    ) -> EndpointSpec:
        """Add one endpoint ``provider/service/check``; its path defaults to ``/`` + id.

        ``behaviour`` (constant) and ``outage`` (``{"from": "2m", "to": "4m"}``) or a
        ``timeline`` of phases (``{"at": "0.3s", "behaviour": "hang"}``). Raises
        ``ValueError`` (a pydantic ``ValidationError``) on a bad argument.
        """
        data: dict[str, Any] = {"id": endpoint_id, "kind": kind, "tls": tls}
        for key, value in (
            ("path", path),
            ("behaviour", behaviour),
            ("timeline", timeline),
            ("outage", outage),
        ):
            if value is not None:
                data[key] = dict(value) if isinstance(value, Mapping) else value
        if timeline is not None:
            data["timeline"] = [dict(p) if isinstance(p, Mapping) else p for p in timeline]
        spec = EndpointSpec.model_validate(data)
        self.add(spec)
        return spec

    def add(self, spec: EndpointSpec) -> None:
        """Add a validated endpoint. After start its TLS mode must already be listening."""
        if spec.id in self._endpoints or spec.id in self._oidc:
            raise ValueError(f"duplicate endpoint id {spec.id!r}")
        if self._oidc_at(spec.tls, spec.path) is not None:
            raise ValueError(f"path {spec.path!r} is under an OIDC provider's issuer")
        if self._servers and spec.tls not in self._servers:
            raise ValueError(f"no {spec.tls!r} listener is running; add endpoints before start")
        routes = self._routes.setdefault(spec.tls, {})
        if spec.path in routes:
            raise ValueError(f"duplicate path {spec.path!r} on the {spec.tls!r} listener")
        endpoint = _Endpoint(spec)
        self._endpoints[spec.id] = endpoint
        routes[spec.path] = endpoint
        if self._servers:
            self._prepare(endpoint)

    def add_oidc_provider(
        self,
        provider_id: str,
        *,
        tls: TlsMode = "valid",
        client_id: str = "scd-monitor",
        client_secret: str | None = None,
        secret_env: str | None = None,
        redirect_uris: Sequence[str] = (),
        audience: Sequence[str] = (),
    ) -> OidcProvider:
        """Add a fake OIDC provider ``provider/service/check`` whose issuer is that path on
        the ``tls`` listener (``https://127.0.0.1:PORT/provider/service/check``).

        ``client_secret`` defaults to a random one; ``secret_env`` (the variable the
        catalog names for it) to ``SCD_SIM_OIDC_SECRET``, then ``SCD_SIM_OIDC_SECRET_2``
        … for the next providers. See :class:`~scd_simulator.oidc.OidcProvider`.
        """
        EndpointSpec.model_validate({"id": provider_id, "tls": tls})  # the id's and mode's rules
        if provider_id in self._endpoints or provider_id in self._oidc:
            raise ValueError(f"duplicate endpoint id {provider_id!r}")
        if self._servers and tls not in self._servers:
            raise ValueError(f"no {tls!r} listener is running; add providers before start")
        path = "/" + provider_id
        for other in self._routes.get(tls, {}):
            if other == path or other.startswith(path + "/"):
                raise ValueError(f"endpoint path {other!r} is under the issuer path {path!r}")
        for other_provider in self._oidc.values():
            other = other_provider.path
            same_listener = other_provider.tls == tls
            if same_listener and (path.startswith(other + "/") or other.startswith(path + "/")):
                raise ValueError(f"issuer paths {path!r} and {other!r} overlap")
        envs = {p.secret_env for p in self._oidc.values()}
        if secret_env is None:
            secret_env = SECRET_ENV
            n = 1
            while secret_env in envs:
                n += 1
                secret_env = f"{SECRET_ENV}_{n}"
        if secret_env in envs:
            raise ValueError(f"secret_env {secret_env!r} is another provider's")
        provider = OidcProvider(
            provider_id,
            tls=tls,
            client_id=client_id,
            client_secret=client_secret,
            secret_env=secret_env,
            redirect_uris=redirect_uris,
            audience=audience,
            clock=self._clock,
            keys=self._oidc_keys,
        )
        self._oidc[provider_id] = provider
        if self._servers:
            provider.bind(self._base_url(tls))
        return provider

    # -- running -----------------------------------------------------------------------

    async def start(self) -> None:
        """Bind one listener per TLS mode in use (and ``none``, for the control API)."""
        if self._servers:
            raise RuntimeError("simulator already started")
        self._t0 = self._clock.monotonic()
        self._t0_wall = self._clock.now()
        modes: list[TlsMode] = ["none"]
        in_use = {p.tls for p in self._oidc.values()}
        modes += [
            m for m in ("valid", "expired", "self_signed") if self._routes.get(m) or m in in_use
        ]
        try:
            for mode in modes:
                server = HttpServer(
                    partial(self._handle, mode),
                    self.host,
                    self._ports.get(mode, 0),
                    ssl_context=self._ssl_context(mode),
                    server_header="scd-monitor-simulator",
                )
                await server.start()
                self._servers[mode] = server
            if self.xroad is not None:
                xroad_sim = XRoadSimulator(
                    self.xroad, host=self.host, workdir=self.workdir, opmon=self.xroad_opmon
                )
                await xroad_sim.start()
                self._xroad_sim = xroad_sim
                xroad_sim.configuration_source.write_anchor(self.xroad_anchor)
        except BaseException:
            await self.stop()
            raise
        for endpoint in self._endpoints.values():
            self._prepare(endpoint)
        for provider in self._oidc.values():
            provider.bind(self._base_url(provider.tls))

    async def stop(self) -> None:
        """Stop listening, drop open connections, cancel hanging requests."""
        servers, self._servers = list(self._servers.values()), {}
        xroad_sim, self._xroad_sim = self._xroad_sim, None
        if xroad_sim is not None:
            await xroad_sim.stop()
        for server in servers:
            await server.stop()

    def _ssl_context(self, mode: TlsMode) -> ssl.SSLContext | None:
        if mode == "none":
            return None
        now = datetime.now(UTC)
        pair: KeyPair
        if mode == "valid":
            pair = self._ca.issue(CERT_HOSTS)
        elif mode == "expired":
            pair = self._ca.issue(
                CERT_HOSTS, not_before=now - timedelta(days=91), not_after=now - timedelta(days=1)
            )
        else:
            pair = self_signed(CERT_HOSTS)
        cert, key = pair.write(self.workdir / "certs", mode)
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(cert, key)
        return context

    def _prepare(self, endpoint: _Endpoint) -> None:
        """Fill in what needs the bound port and the start time: URL, bodies, schedule."""
        endpoint.url = self.url(endpoint.spec.id)
        endpoint.healthy, endpoint.bad_json = _bodies(endpoint.spec.kind, endpoint.url)
        timed = []
        for index, phase in enumerate(endpoint.spec.phases()):
            at = phase.at
            offset = (
                at.total_seconds()
                if isinstance(at, timedelta)
                else (at - self._t0_wall).total_seconds()
            )
            timed.append((offset, index, phase.behaviour))
        timed.sort(key=lambda item: (item[0], item[1]))
        endpoint.offsets = [offset for offset, _, _ in timed]
        endpoint.behaviours = [behaviour for _, _, behaviour in timed]

    # -- inspecting and steering -------------------------------------------------------

    @property
    def listener_urls(self) -> dict[TlsMode, str]:
        """Base URL of every running listener, by TLS mode."""
        return {mode: self._base_url(mode) for mode in self._servers}

    @property
    def control_url(self) -> str:
        """Base URL of the control API (``…/_sim/``)."""
        return self._base_url("none") + CONTROL_PREFIX

    @property
    def endpoint_ids(self) -> list[str]:
        return list(self._endpoints)

    @property
    def xroad_simulator(self) -> XRoadSimulator:
        """The running fake X-Road (``xroad=`` given, simulator started)."""
        if self._xroad_sim is None:
            raise RuntimeError("no X-Road is running (give xroad= and start the simulator)")
        return self._xroad_sim

    @property
    def xroad_anchor(self) -> Path:
        """The configuration anchor of the fake X-Road's configuration source."""
        return self.workdir / "xroad-configuration-anchor.xml"

    @property
    def oidc_providers(self) -> dict[str, OidcProvider]:
        """The fake OIDC providers, by id."""
        return dict(self._oidc)

    def oidc_provider(self, provider_id: str) -> OidcProvider:
        try:
            return self._oidc[provider_id]
        except KeyError:
            raise KeyError(f"unknown OIDC provider {provider_id!r}") from None

    def _oidc_at(self, mode: TlsMode, path: str) -> OidcProvider | None:
        """The provider whose issuer path is ``path`` or a prefix of it on that listener."""
        for provider in self._oidc.values():
            if provider.tls == mode and (
                path == provider.path or path.startswith(provider.path + "/")
            ):
                return provider
        return None

    def set_xroad_health(self, status: int) -> None:
        """What the fake security server's health check answers (503: maintenance)."""
        self.xroad_simulator.security_server.set_health(status)
        self._xroad_health = status

    def describe_xroad(self) -> dict[str, Any]:
        """The fake X-Road as the control API and the ready line show it."""
        sim = self.xroad_simulator
        directory = sim.directory
        return {
            **sim.describe(),
            "services": sum(len(s.services) for s in directory.subsystems),
            "security_servers": len(directory.security_servers),
            "client": self.xroad_client,
            "anchor": str(self.xroad_anchor.resolve()),
            "health_status": self._xroad_health,
        }

    def url(self, endpoint_id: str) -> str:
        """The endpoint's full URL, port included (the simulator must be started)."""
        spec = self._get(endpoint_id).spec
        return self._base_url(spec.tls) + spec.path

    def _base_url(self, mode: TlsMode) -> str:
        server = self._servers.get(mode)
        if server is None:
            raise RuntimeError(f"the {mode!r} listener is not running (start the simulator)")
        return base_url("http" if mode == "none" else "https", self.host, server.port)

    def hits(self, endpoint_id: str) -> int:
        """Requests the endpoint has received (whatever its behaviour did with them)."""
        return self._get(endpoint_id).hits

    def behaviour(self, endpoint_id: str) -> Behaviour:
        """What the endpoint does right now."""
        return self._current(self._get(endpoint_id))

    def set_behaviour(self, endpoint_id: str, behaviour: BehaviourLike | None) -> None:
        """Override the endpoint's timeline from now on; ``None`` returns to the timeline."""
        endpoint = self._get(endpoint_id)
        override = None if behaviour is None else parse_behaviour(behaviour)
        endpoint.override = override
        log.info(
            "simulator.behaviour_set",
            endpoint=endpoint_id,
            behaviour=None if override is None else format_behaviour(override),
        )

    def _get(self, endpoint_id: str) -> _Endpoint:
        try:
            return self._endpoints[endpoint_id]
        except KeyError:
            raise KeyError(f"unknown endpoint {endpoint_id!r}") from None

    def _current(self, endpoint: _Endpoint) -> Behaviour:
        if endpoint.override is not None:
            return endpoint.override
        elapsed = self._clock.monotonic() - self._t0
        index = bisect.bisect_right(endpoint.offsets, elapsed) - 1
        return endpoint.behaviours[index] if index >= 0 else Behaviour()

    def describe(self, endpoint_id: str) -> dict[str, Any]:
        """The endpoint as the control API shows it."""
        endpoint = self._get(endpoint_id)
        spec = endpoint.spec
        return {
            "id": spec.id,
            "url": endpoint.url or None,
            "kind": spec.kind,
            "tls": spec.tls,
            "behaviour": format_behaviour(self._current(endpoint)),
            "overridden": endpoint.override is not None,
            "hits": endpoint.hits,
        }

    # -- the catalog -------------------------------------------------------------------

    def write_catalog(
        self,
        path: Path,
        *,
        interval: str | timedelta = "30s",
        timeout: str | timedelta = "10s",
        xroad_interval: str | timedelta = "10m",
        xroad_provider: str = "interoperabilidad",
    ) -> Path:
        """Write an scd-monitor catalog with one ``http`` check per endpoint and one ``oidc``
        check per OIDC provider; return ``path``.

        Ids ``provider/service/check`` become the tree; TLS checks trust the
        simulator's CA (so ``expired`` and ``self_signed`` endpoints fail as they should).
        An ``oidc`` check names its client's secret by environment variable (the
        provider's ``secret_env``; its value is ``client_secret``).
        With a fake X-Road running, an ``xroad:`` source ``sim`` reads its directory every
        ``xroad_interval`` (global configuration checked against the anchor, listClients,
        REST and SOAP listMethods), with the platform under provider ``xroad_provider``, a
        ``metadatos`` check (REST listMethods) per subsystem and a ``listado`` check
        (listed by listMethods) per service.
        """
        every, within = parse_duration(interval), parse_duration(timeout)
        if not timedelta(0) < within < every:
            raise ValueError("timeout must be positive and shorter than interval")
        if not self._endpoints and not self._oidc and self._xroad_sim is None:
            raise ValueError("the simulator has no endpoints to put in a catalog")
        # provider → service → (kind, check) of each endpoint and OIDC provider
        providers: dict[str, dict[str, list[tuple[EndpointKind, dict[str, Any]]]]] = {}
        entries = [(e.spec.id, e.spec.kind, self._check(e)) for e in self._endpoints.values()]
        entries += [(i, "oidc", self._oidc_check(o)) for i, o in self._oidc.items()]
        for entry_id, kind, check in entries:
            provider, service, _ = entry_id.split("/")
            providers.setdefault(provider, {}).setdefault(service, []).append((kind, check))
        catalog = {
            "defaults": {"interval": format_duration(every), "timeout": format_duration(within)},
            "providers": [
                {
                    "id": provider,
                    "name": provider,
                    "services": [
                        {
                            "id": service,
                            "type": _service_type([kind for kind, _ in checks]),
                            "checks": [check for _, check in checks],
                        }
                        for service, checks in services.items()
                    ],
                }
                for provider, services in providers.items()
            ],
        }
        if self._xroad_sim is not None:
            if xroad_provider in providers:
                raise ValueError(f"xroad_provider {xroad_provider!r} is an endpoint's provider")
            catalog["xroad"] = [
                self._xroad_source(
                    parse_duration(xroad_interval), within, every, provider=xroad_provider
                )
            ]
        dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
        text = yaml.dump(catalog, Dumper=dumper, sort_keys=False, allow_unicode=True)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(
            "# Generated by the scd-monitor simulator: one check per simulated endpoint.\n" + text,
            encoding="utf-8",
        )
        return path

    def _xroad_source(
        self, every: timedelta, within: timedelta, checks_every: timedelta, *, provider: str
    ) -> dict[str, Any]:
        sim = self.xroad_simulator
        if not within < every:
            raise ValueError("timeout must be shorter than xroad_interval")
        return {
            "id": "sim",
            "name": f"X-Road {sim.directory.instance} (simulated)",
            "instance": sim.directory.instance,
            "globalconf": {
                "url": sim.configuration_source.internal_url,
                "anchor": str(self.xroad_anchor.resolve()),
            },
            "security_server": {"url": sim.security_server.url, "client": self.xroad_client},
            "health_url": sim.security_server.health_url,
            "interval": format_duration(every),
            "timeout": format_duration(within),
            "provider": {"id": provider, "name": "Plataforma de Interoperabilidad (simulada)"},
            "template": {
                "interval": format_duration(checks_every),
                "subsystem_checks": [
                    {
                        "id": "metadatos",
                        "kind": "xroad_metaservice",
                        "metaservice": "rest_list_methods",
                    }
                ],
                "service_checks": [
                    {"id": "listado", "kind": "xroad_metaservice", "metaservice": "list_methods"}
                ],
            },
        }

    def _check(self, endpoint: _Endpoint) -> dict[str, Any]:
        spec = endpoint.spec
        check: dict[str, Any] = {
            "id": spec.id.rsplit("/", 1)[1],
            "kind": "http",
            "url": self.url(spec.id),
            "expect_status": [200],
        }
        if spec.kind == "oidc":
            check["json"] = [{"path": "issuer"}]
        elif spec.kind == "carpeta":
            check["json"] = [{"path": "status", "equals": "UP"}]
        if spec.tls != "none":
            check["tls"] = {"ca_file": str(self.ca_file.resolve())}
        return check

    def _oidc_check(self, provider: OidcProvider) -> dict[str, Any]:
        check: dict[str, Any] = {
            "id": provider.id.rsplit("/", 1)[1],
            "kind": "oidc",
            "issuer": provider.issuer,
            "client": {
                "client_id": provider.client_id,
                "client_secret": {"env": provider.secret_env},
            },
            "expect": {
                "scopes_supported": ["openid", "co_scope"],
                "acr_values_supported": list(ACR_VALUES),
                "code_challenge_methods_supported": ["S256"],
                "grant_types_supported": ["client_credentials"],
            },
        }
        if provider.tls != "none":
            check["tls"] = {"ca_file": str(self.ca_file.resolve())}
        return check

    # -- serving -----------------------------------------------------------------------

    async def _handle(self, mode: TlsMode, request: Request, conn: Connection) -> Response | None:
        endpoint = self._routes.get(mode, {}).get(request.path)
        if endpoint is None:
            provider = self._oidc_at(mode, request.path)
            if provider is not None:
                return await provider.handle(request, request.path[len(provider.path) :])
            if mode == "none" and request.path.startswith(CONTROL_PREFIX):
                return self._control(request)
            return Response(404, b"no simulated endpoint at this path\n")
        endpoint.hits += 1
        behaviour = self._current(endpoint)
        mode_ = behaviour.mode
        if mode_ == "hang":
            await conn.wait_closed()
            return None
        if mode_ == "reset":
            conn.reset()
            return None
        if mode_ == "garbage":
            conn.write(NOT_HTTP)
            return None
        if mode_ == "bad_json":
            return endpoint.bad_json
        if behaviour.delay:
            await asyncio.sleep(behaviour.delay.total_seconds())
        if mode_ == "healthy":
            return endpoint.healthy
        assert behaviour.status is not None
        return _status_response(behaviour.status, behaviour.body)

    def _control(self, request: Request) -> Response:
        rest = request.path[len(CONTROL_PREFIX) :]
        if rest == "xroad" or rest.startswith("xroad/"):
            return self._control_xroad(request, rest.removeprefix("xroad").lstrip("/"))
        if rest == "oidc" or rest.startswith("oidc/"):
            return self._control_oidc(request, unquote(rest.removeprefix("oidc").lstrip("/")))
        if rest == "endpoints":
            if request.method not in ("GET", "HEAD"):
                return _json_response(405, {"error": "use GET"}, allow="GET, HEAD")
            return _json_response(200, [self.describe(i) for i in self._endpoints])
        if not rest.startswith("endpoints/"):
            return _json_response(404, {"error": "unknown control path"})
        endpoint_id = unquote(rest.removeprefix("endpoints/"))
        if endpoint_id not in self._endpoints:
            return _json_response(404, {"error": f"unknown endpoint {endpoint_id!r}"})
        if request.method in ("GET", "HEAD"):
            return _json_response(200, self.describe(endpoint_id))
        if request.method != "PUT":
            return _json_response(405, {"error": "use GET or PUT"}, allow="GET, HEAD, PUT")
        try:
            spec = json.loads(request.body)
            behaviour = None if spec is None else parse_behaviour(spec)
        except ValueError as exc:  # json.JSONDecodeError is a ValueError too
            return _json_response(400, {"error": f"invalid behaviour: {exc}"})
        self.set_behaviour(endpoint_id, behaviour)
        return _json_response(200, self.describe(endpoint_id))

    def _control_xroad(self, request: Request, what: str) -> Response:
        if self._xroad_sim is None:
            return _json_response(404, {"error": "no X-Road is simulated (start with xroad=)"})
        sim = self._xroad_sim
        method = request.method
        try:
            if what == "":
                if method not in ("GET", "HEAD"):
                    return _json_response(405, {"error": "use GET"}, allow="GET, HEAD")
                return _json_response(200, self.describe_xroad())
            if what in ("health", "fault", "delay", "conf-status", "expiry"):
                if method != "PUT":
                    return _json_response(405, {"error": "use PUT"}, allow="PUT")
                body = json.loads(request.body or b"null")
                if what == "health":
                    self.set_xroad_health(int(body["status"]))
                elif what == "fault":
                    only = None if body is None else body.get("only")
                    sim.security_server.set_fault(None if body is None else body["code"], only=only)
                elif what == "delay":
                    sim.security_server.set_delay(float(body["seconds"]), only=body.get("only"))
                elif what == "conf-status":
                    status = None if body is None else int(body["status"])
                    sim.configuration_source.set_status(status)
                else:
                    at = None if body is None else datetime.fromisoformat(body["at"])
                    self.xroad_simulator.directory.set_expiry(at)
                return _json_response(200, self.describe_xroad())
            if what == "services" and method == "POST":
                body = json.loads(request.body)
                service = FakeService(
                    body["code"], version=body.get("version"), kind=body.get("kind", "REST")
                )
                sim.directory.add_service(body["subsystem"], service)
                log.info(
                    "simulator.xroad_service_added", subsystem=body["subsystem"], code=service.code
                )
                return _json_response(201, self.describe_xroad())
            if what in ("services", "subsystems") and method == "DELETE":
                query = {k: v[-1] for k, v in parse_qs(request.query).items()}
                if what == "services":
                    sim.directory.remove_service(
                        query["subsystem"], query["code"], query.get("version")
                    )
                    log.info(
                        "simulator.xroad_service_removed",
                        subsystem=query["subsystem"],
                        code=query["code"],
                    )
                else:
                    sim.directory.remove_subsystem(query["id"])
                    log.info("simulator.xroad_subsystem_removed", subsystem=query["id"])
                return _json_response(200, self.describe_xroad())
        except KeyError as exc:
            return _json_response(404, {"error": f"not found or missing field: {exc}"})
        except (ValueError, TypeError) as exc:  # JSON errors are ValueErrors too
            return _json_response(400, {"error": str(exc)})
        if what in ("services", "subsystems"):
            allow = "POST, DELETE" if what == "services" else "DELETE"
            return _json_response(405, {"error": f"use {allow}"}, allow=allow)
        return _json_response(404, {"error": "unknown X-Road control path"})

    def _control_oidc(self, request: Request, what: str) -> Response:
        """``""`` (all), ``<id>``, ``<id>/fault``, ``<id>/rotate``, ``<id>/keys/<kid>``."""
        method = request.method
        if what == "" or what in self._oidc:
            if method not in ("GET", "HEAD"):
                return _json_response(405, {"error": "use GET"}, allow="GET, HEAD")
            if what:
                return _json_response(200, self._oidc[what].describe())
            return _json_response(200, [p.describe() for p in self._oidc.values()])
        head, _, action = what.rpartition("/")
        kid = None
        if head not in self._oidc or action not in ("fault", "rotate"):
            owner, keys, last = what.rpartition("/keys/")
            if keys and owner in self._oidc:
                head, action, kid = owner, "keys", last
        provider = self._oidc.get(head)
        if provider is None or action not in ("fault", "rotate", "keys"):
            return _json_response(404, {"error": f"unknown OIDC provider or action {what!r}"})
        allow = {"fault": "PUT", "rotate": "POST", "keys": "DELETE"}[action]
        if method != allow:
            return _json_response(405, {"error": f"use {allow}"}, allow=allow)
        try:
            body = json.loads(request.body or b"null")
            if action == "fault":
                fields = {"fault", "seconds"}
                if body is not None and (
                    not isinstance(body, dict) or not {"fault"} <= body.keys() <= fields
                ):
                    raise ValueError('expected {"fault": "...", "seconds": N} or null')
                fault, seconds = (
                    (None, None) if body is None else (body["fault"], body.get("seconds"))
                )
                provider.set_fault(fault, seconds=None if seconds is None else float(seconds))
            elif action == "rotate":
                if not isinstance(body, dict | None):
                    raise ValueError('expected {"retire_previous": false} or nothing')
                retire = (body or {}).get("retire_previous", False)
                if not isinstance(retire, bool):
                    raise ValueError("retire_previous must be true or false")
                provider.rotate(retire_previous=retire)
            else:
                assert kid is not None
                provider.retire(kid)
        except KeyError as exc:
            return _json_response(404, {"error": str(exc.args[0]) if exc.args else "not found"})
        except (ValueError, TypeError) as exc:  # JSON errors are ValueErrors too
            return _json_response(400, {"error": str(exc)})
        return _json_response(200, provider.describe())


def _service_type(kinds: list[EndpointKind]) -> str:
    types = {_SERVICE_TYPES[kind] for kind in kinds}
    return types.pop() if len(types) == 1 else "otro"


def _json_response(status: int, payload: object, *, allow: str | None = None) -> Response:
    return json_response(status, payload, headers=(("Allow", allow),) if allow else ())


def _status_response(status: int, body: str | None) -> Response:
    if body is None:
        return Response(status, f"{status} {HTTPStatus(status).phrase}\n".encode())
    looks_json = body.lstrip()[:1] in ("{", "[")
    content_type = _JSON if looks_json else "text/plain; charset=utf-8"
    return Response(status, body.encode(), content_type=content_type)


def _bodies(kind: EndpointKind, url: str) -> tuple[Response, Response]:
    """The healthy answer for ``kind`` and its ``bad_json`` twin (a truncated JSON body)."""
    document: dict[str, Any]
    if kind == "oidc":
        document = {
            "issuer": url,
            "authorization_endpoint": f"{url}/authorize",
            "token_endpoint": f"{url}/token",
            "userinfo_endpoint": f"{url}/userinfo",
            "jwks_uri": f"{url}/jwks",
            "response_types_supported": ["code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "scopes_supported": ["openid", "profile", "email"],
        }
    else:
        document = {"status": "UP"}
    encoded = json.dumps(document).encode()
    bad_json = Response(200, encoded[: len(encoded) // 2], content_type=_JSON)
    if kind in ("oidc", "carpeta"):
        return Response(200, encoded, content_type=_JSON), bad_json
    return Response(200, b"OK\n"), bad_json
