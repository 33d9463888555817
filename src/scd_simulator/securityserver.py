"""A fake X-Road on 127.0.0.1: a security server's metaservices and a configuration source.

The Interoperabilidad platform of the SCD runs on X-Road. This module plays both X-Road
parts a monitor talks to, over one mutable in-memory :class:`XRoadDirectory`::

    directory = XRoadDirectory()                       # instance "CO"
    sub = directory.add_subsystem("GOB", "899999001", "CARPETA", name="MinTIC",
                                  services=[FakeService("documentos", kind="OPENAPI")])
    async with FakeSecurityServer(directory) as ss, FakeConfigurationSource(directory) as cs:
        ss.url, ss.health_url, cs.internal_url          # http://127.0.0.1:PORT...
        directory.remove_service(sub.id, "documentos")   # seen by the next answer
        ss.set_fault("Server.ServerProxy.ServiceFailed") # metaservices fail
        ss.set_health(503)

What the security server serves (document sections are those of ``doc/Protocols/`` in
``nordic-institute/X-Road``):

``GET /listClients[?xRoadInstance=XX]``
    PR-META §2, Annex A, C.1: ``clientList`` XML (``text/xml``), or the JSON of Annex B's
    OpenAPI definition (``{"member": [{"id": {...}, "name": ...}]}``) when ``Accept`` asks
    for ``application/json``. Every member, each followed by its subsystems.
``GET /listCentralServices``
    Removed in X-Road 7.3 (PR-META 2.12, PR-MREST 0.6): ``404`` by default. With
    ``list_central_services="serve"`` the pre-7.3 ``centralServiceList`` XML.
``GET /r1/{INSTANCE}/{CLASS}/{MEMBER}/{SUBSYSTEM}/listMethods`` and ``…/allowedMethods``
    PR-MREST §4, Annex B.1/B.2: ``{"service": [{"member_class", "member_code",
    "object_type": "SERVICE", "service_code", "service_type", "subsystem_code",
    "xroad_instance", "endpoint_list": [{"method", "path"}]}]}``; REST and OPENAPI services
    only. Needs the ``X-Road-Client`` header (PR-REST §4.3).
``GET /r1/{INSTANCE}/{CLASS}/{MEMBER}/{SUBSYSTEM}/getOpenAPI?serviceCode=CODE``
    PR-MREST §5, Annex B.3: the OpenAPI description, YAML (``text/yaml``) or JSON when
    ``Accept`` asks for it; OPENAPI services only.
``ANY /r1/{INSTANCE}/{CLASS}/{MEMBER}/{SUBSYSTEM}/{SERVICE}[/path]``
    PR-REST §4.1: a plain service call; a known REST/OPENAPI service the client may use
    answers ``200 {"status": "UP", ...}``.
``POST /`` with a SOAP 1.1 envelope
    PR-MESS §2.2–2.5: the X-Road header (``client``, ``service``, ``id``,
    ``protocolVersion``, …) is copied to the response in the same order with a
    ``requestHash`` (SHA-512 of the request bytes) added. The body element must be named
    as the ``serviceCode`` (§2.3). ``listMethods``/``allowedMethods`` (PR-META §3, C.2–C.5)
    list WSDL services only; ``getWsdl`` (PR-META §4, C.6–C.8) answers a
    ``multipart/related`` message whose attachment is the WSDL, its endpoint replaced by
    ``http://example.org/xroad-endpoint``. A known WSDL service answers an empty
    ``{code}Response``.
Health check (separate port, like the security server's ``proxy.health-check-port``)
    Any path; the status set with :meth:`FakeSecurityServer.set_health`.

X-Road errors are JSON ``{"type", "message", "detail"}`` with an ``X-Road-Error`` header for
REST (PR-REST §4.6; ``400`` for ``Client.*`` types, ``500`` otherwise) and SOAP faults
(``faultcode``, ``faultstring``, ``faultactor``, ``detail/faultDetail``; PR-MESS §2.5, D.1;
HTTP ``500``) for SOAP. The codes the simulator uses:

=============================================  ===============================================
``Client.BadRequest``                          REST: no or a malformed ``X-Road-Client``, a bad
                                               ``/r1`` path, no ``serviceCode``, not ``GET``
``Client.InvalidSoap``                         not XML, not a SOAP 1.1 envelope, a DTD, too
                                               large, attachments, a malformed identifier
``Server.ClientProxy.ServiceFailed.MissingBody``  an envelope without a Body (PR-MESS D.1)
``Client.MissingHeaderField``                  no ``client``, ``service``, ``id`` or
                                               ``protocolVersion``
``Client.InvalidProtocolVersion``              ``protocolVersion`` is not ``4.x``
``Client.InvalidBody``                         body element not named as the ``serviceCode``
``Server.ClientProxy.UnknownMember``           client or provider not in the directory
``Server.ServerProxy.UnknownService``          no such service at the provider
``Server.ServerProxy.InvalidServiceType``      ``getWsdl`` of a REST service, ``getOpenAPI`` of
                                               a non-OPENAPI one, REST call of a WSDL service
``Server.ServerProxy.AccessDenied``            a plain call to a service outside ``allowed``
=============================================  ===============================================

The configuration source (:class:`FakeConfigurationSource`) follows PR-GCONF §2.3–2.7:
``GET /internalconf`` (private and shared parameters) and ``GET /externalconf`` (shared
parameters only, what federated instances download), ``?version=2`` (default) or ``3``,
``404`` for any other version. The answer is ``multipart/related``: the directory
(``multipart/mixed``: a header-only entry with ``Expire-date`` and ``Version``, then one
entry per part with ``Content-location`` and the base64 digest of the part named by
``Hash-algorithm-id``) and its RSA signature over the directory's bytes, with
``Signature-algorithm-id`` and ``Verification-certificate-hash``. The verification
certificate and a configuration anchor (Annex E) are exposed for clients to verify with.

Simplified against real X-Road: one X-Road instance (other ``xRoadInstance`` values list
nothing); no member-level services; ``allowed`` applies to every client alike; the
security server answers for every provider itself (no provider security server, no
message transport, no signatures or timestamps on messages); SOAP requests with
attachments are refused; REST errors are always JSON; ``X-Road-Request-Hash`` is computed
over a canonical form of the request, not the real one; the shared parameters carry no
approved CAs or TSAs; private parameters carry no federated anchors.

Everything runs on the caller's event loop and binds only loopback addresses.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import json
import random
import re
import signal
import ssl
import tempfile
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal, cast, get_args
from urllib.parse import parse_qs, unquote
from xml.sax.saxutils import escape, quoteattr

import structlog
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID

# No stubs for defusedxml; the second code keeps this line quiet if they get installed.
from defusedxml.ElementTree import (  # type: ignore[import-untyped, unused-ignore]
    fromstring as _defused_fromstring,
)

from scd_monitor.clock import Clock, SystemClock
from scd_simulator.certs import CertificateAuthority, KeyPair
from scd_simulator.fleet import check_loopback
from scd_simulator.rawhttp import Connection, HttpServer, Request, Response

__all__ = [
    "CONFIGURATION_VERSIONS",
    "METASERVICES",
    "FakeConfigurationSource",
    "FakeMember",
    "FakeSecurityServer",
    "FakeService",
    "FakeSubsystem",
    "HashAlgorithm",
    "Metaservice",
    "RecordedRequest",
    "SecurityServerEntry",
    "ServiceKind",
    "XRoadDirectory",
    "XRoadSimulator",
    "run_xroad_simulator",
]

log = structlog.get_logger()

XROAD_NS = "http://x-road.eu/xsd/xroad.xsd"
ID_NS = "http://x-road.eu/xsd/identifiers"
SOAP_ENV_NS = "http://schemas.xmlsoap.org/soap/envelope/"
WSDL_NS = "http://schemas.xmlsoap.org/wsdl/"
WSDL_SOAP_NS = "http://schemas.xmlsoap.org/wsdl/soap/"
XSD_NS = "http://www.w3.org/2001/XMLSchema"
_XML_NS = "http://www.w3.org/XML/1998/namespace"

WSDL_ENDPOINT = "http://example.org/xroad-endpoint"
"""Where every served WSDL points (PR-META §4, "WSDL-information modifications")."""

ServiceKind = Literal["REST", "OPENAPI", "WSDL"]
Metaservice = Literal[
    "listClients",
    "listCentralServices",
    "listMethods",
    "allowedMethods",
    "getOpenAPI",
    "getWsdl",
    "service",
]
"""What a request asks for; ``service`` is a plain (non-meta) service call."""
METASERVICES: tuple[Metaservice, ...] = get_args(Metaservice)
HashAlgorithm = Literal["sha256", "sha512"]
CONFIGURATION_VERSIONS = (2, 3)
"""Global configuration versions the source can serve (PR-GCONF §2.7, Annex B)."""

_SERVICE_KINDS: tuple[ServiceKind, ...] = get_args(ServiceKind)
_REST_META = ("listMethods", "allowedMethods", "getOpenAPI")
_SOAP_META = ("listMethods", "allowedMethods", "getWsdl")
_HASH_URI: dict[HashAlgorithm, str] = {
    "sha256": "http://www.w3.org/2001/04/xmlenc#sha256",
    "sha512": "http://www.w3.org/2001/04/xmlenc#sha512",
}
_SIGNATURE_URI: dict[HashAlgorithm, str] = {
    "sha256": "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256",
    "sha512": "http://www.w3.org/2001/04/xmldsig-more#rsa-sha512",
}
_XML = "text/xml;charset=UTF-8"
_JSON = "application/json;charset=utf-8"
_XML_DECLARATION = '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
MAX_SOAP_BYTES = 256 * 1024
"""Largest SOAP request parsed (the HTTP server already caps bodies at 1 MiB)."""
_ID_PART = re.compile(r"^[A-Za-z0-9'()+,\-.=?]+$")
"""Characters allowed in X-Road identifiers (PR-REST §4.8, PR-MESS §2.7)."""
_CERT_HOSTS = ["127.0.0.1", "::1", "localhost"]


def _check_code(value: str, what: str) -> str:
    if not isinstance(value, str) or not _ID_PART.match(value):
        raise ValueError(
            f"{what} {value!r}: X-Road identifiers use only letters, digits and '()+,-.=? "
            "(PR-REST §4.8)"
        )
    return value


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _digest(algorithm: HashAlgorithm, data: bytes) -> bytes:
    return hashlib.new(algorithm, data).digest()


def _iso(instant: datetime) -> str:
    return instant.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# -- the directory ---------------------------------------------------------------------


@dataclass(slots=True)
class FakeService:
    """One service of a subsystem.

    ``endpoints`` are ``(method, path)`` pairs for REST and OPENAPI services (listed by REST
    ``listMethods``; an OPENAPI service's generated description has one path per endpoint).
    ``description`` replaces the generated WSDL or OpenAPI document.
    """

    code: str
    version: str | None = None
    kind: ServiceKind = "REST"
    endpoints: tuple[tuple[str, str], ...] = ()
    description: str | None = None

    def __post_init__(self) -> None:
        _check_code(self.code, "service code")
        if self.version is not None:
            _check_code(self.version, "service version")
        if self.kind not in _SERVICE_KINDS:
            raise ValueError(f"service kind {self.kind!r}: expected one of {_SERVICE_KINDS}")
        self.endpoints = tuple((m.upper(), p) for m, p in self.endpoints)

    @property
    def is_rest(self) -> bool:
        return self.kind != "WSDL"

    def listed_endpoints(self) -> tuple[tuple[str, str], ...]:
        """The endpoints REST ``listMethods`` shows; a bare REST service has ``* **``."""
        if self.endpoints:
            return self.endpoints
        return (("GET", "/"),) if self.kind == "OPENAPI" else (("*", "**"),)


@dataclass(slots=True)
class FakeSubsystem:
    """A subsystem with its services; ``name`` is its member's name.

    ``allowed`` holds the service codes clients may use (access rights go by code,
    without version, PR-MESS §3.1); ``None`` allows all.
    """

    instance: str
    member_class: str
    member_code: str
    subsystem_code: str
    name: str
    services: list[FakeService] = field(default_factory=list)
    allowed: set[str] | None = None
    subsystem_name: str | None = None

    def __post_init__(self) -> None:
        _check_code(self.instance, "instance")
        _check_code(self.member_class, "member class")
        _check_code(self.member_code, "member code")
        _check_code(self.subsystem_code, "subsystem code")

    @property
    def id(self) -> str:
        """``INSTANCE/CLASS/MEMBER/SUBSYSTEM``, as in an ``X-Road-Client`` header."""
        return "/".join((self.instance, self.member_class, self.member_code, self.subsystem_code))

    @property
    def member_id(self) -> str:
        return "/".join((self.instance, self.member_class, self.member_code))

    def find(self, code: str, version: str | None = None) -> FakeService | None:
        """The service with ``code`` (and ``version`` when given), or ``None``."""
        for service in self.services:
            if service.code == code and (version is None or service.version == version):
                return service
        return None

    def may_use(self, code: str) -> bool:
        return self.allowed is None or code in self.allowed


@dataclass(slots=True)
class FakeMember:
    """An X-Road member (an entity: a ministry, a provider of the SCD)."""

    instance: str
    member_class: str
    member_code: str
    name: str

    @property
    def id(self) -> str:
        return "/".join((self.instance, self.member_class, self.member_code))


@dataclass(slots=True)
class SecurityServerEntry:
    """A security server in the shared parameters: its owner, code, address and clients."""

    owner: str
    """Member id ``INSTANCE/CLASS/MEMBER``."""
    server_code: str
    address: str
    clients: list[str] = field(default_factory=list)
    """Member or subsystem ids registered on the server."""
    auth_cert_hash: str = ""

    @property
    def id(self) -> str:
        return f"{self.owner}/{self.server_code}"


class XRoadDirectory:
    """The simulated X-Road world: members, subsystems, services, security servers.

    Servers read it when they answer, so a change shows in the next answer. Change it
    through its methods (they bump :attr:`revision`, which the configuration source uses
    to publish new parts); after editing objects in place, call :meth:`touch`.
    """

    def __init__(
        self,
        instance: str = "CO",
        *,
        member_classes: Mapping[str, str] | None = None,
        expiry_after: timedelta = timedelta(minutes=10),
        clock: Clock | None = None,
    ) -> None:
        self.instance = _check_code(instance, "instance")
        self.member_classes: dict[str, str] = dict(
            member_classes if member_classes is not None else {"GOB": "Entidades públicas"}
        )
        self.expiry_after = expiry_after
        """Validity of a freshly downloaded configuration directory (see :meth:`expiry`)."""
        self.clock: Clock = clock or SystemClock()
        self.central_services: list[str] = []
        """Central service codes, listed by pre-7.3 ``listCentralServices``."""
        self.ocsp_freshness_seconds = 3600
        self.time_stamping_interval_seconds = 60
        self.management_service_provider: str | None = None
        """Subsystem id named in the private parameters (default ``CO/GOB/CENTRAL/MANAGEMENT``)."""
        self.revision = 0
        self._members: dict[str, FakeMember] = {}
        self._subsystems: dict[str, FakeSubsystem] = {}
        self._servers: dict[str, SecurityServerEntry] = {}
        self._expiry: datetime | None = None

    # -- reading -----------------------------------------------------------------------

    @property
    def members(self) -> list[FakeMember]:
        return list(self._members.values())

    @property
    def subsystems(self) -> list[FakeSubsystem]:
        return list(self._subsystems.values())

    @property
    def security_servers(self) -> list[SecurityServerEntry]:
        return list(self._servers.values())

    def member(self, member_id: str) -> FakeMember:
        try:
            return self._members[member_id]
        except KeyError:
            raise KeyError(f"unknown member {member_id!r}") from None

    def subsystem(self, subsystem_id: str) -> FakeSubsystem:
        try:
            return self._subsystems[subsystem_id]
        except KeyError:
            raise KeyError(f"unknown subsystem {subsystem_id!r}") from None

    def find_client(self, parts: tuple[str, ...]) -> FakeMember | FakeSubsystem | None:
        """The member (3 parts) or subsystem (4 parts) an identifier names, or ``None``."""
        key = "/".join(parts)
        if len(parts) == 3:
            return self._members.get(key)
        if len(parts) == 4:
            return self._subsystems.get(key)
        return None

    def clients(self) -> list[tuple[FakeMember, list[FakeSubsystem]]]:
        """Every member with its subsystems, in the order they were added."""
        grouped: dict[str, list[FakeSubsystem]] = {key: [] for key in self._members}
        for sub in self._subsystems.values():
            grouped[sub.member_id].append(sub)
        return [(self._members[key], subs) for key, subs in grouped.items()]

    def expiry(self, now: datetime | None = None) -> datetime:
        """When a directory downloaded ``now`` expires: the fixed instant, or now + validity."""
        if self._expiry is not None:
            return self._expiry
        return (now or self.clock.now()) + self.expiry_after

    # -- changing ----------------------------------------------------------------------

    def touch(self) -> None:
        """Record a change made by editing objects in place."""
        self.revision += 1

    def add_member(self, member_class: str, member_code: str, name: str) -> FakeMember:
        """Add a member (or rename an existing one) and return it."""
        _check_code(member_class, "member class")
        _check_code(member_code, "member code")
        self.member_classes.setdefault(member_class, member_class)
        member = FakeMember(self.instance, member_class, member_code, name)
        existing = self._members.get(member.id)
        if existing is not None:
            existing.name = name
            member = existing
        else:
            self._members[member.id] = member
        self.touch()
        return member

    def add_subsystem(
        self,
        member_class: str,
        member_code: str,
        subsystem_code: str,
        *,
        name: str | None = None,
        subsystem_name: str | None = None,
        services: Iterable[FakeService] = (),
        allowed: Iterable[str] | None = None,
        security_server: str | None = None,
    ) -> FakeSubsystem:
        """Add a subsystem (and its member if new) and return it.

        ``name`` is the member's name (default: the existing member's, else its code);
        ``security_server`` (an id ``CO/GOB/MEMBER/SERVERCODE``) registers it as a client.
        """
        member_id = f"{self.instance}/{member_class}/{member_code}"
        if name is None:
            existing = self._members.get(member_id)
            name = existing.name if existing is not None else member_code
        sub = FakeSubsystem(
            self.instance,
            member_class,
            member_code,
            subsystem_code,
            name,
            services=list(services),
            allowed=None if allowed is None else set(allowed),
            subsystem_name=subsystem_name,
        )
        return self.add(sub, security_server=security_server)

    def add(self, subsystem: FakeSubsystem, *, security_server: str | None = None) -> FakeSubsystem:
        """Add a subsystem built by the caller (its member is added or renamed)."""
        if subsystem.instance != self.instance:
            raise ValueError(
                f"subsystem {subsystem.id!r} is not in this directory's instance {self.instance!r}"
            )
        if subsystem.id in self._subsystems:
            raise ValueError(f"duplicate subsystem {subsystem.id!r}")
        seen: set[tuple[str, str | None]] = set()
        for service in subsystem.services:
            key = (service.code, service.version)
            if key in seen:
                raise ValueError(f"duplicate service {service.code!r} in {subsystem.id!r}")
            seen.add(key)
        server = None if security_server is None else self._server(security_server)
        self.add_member(subsystem.member_class, subsystem.member_code, subsystem.name)
        self._subsystems[subsystem.id] = subsystem
        if server is not None:
            server.clients.append(subsystem.id)
        self.touch()
        return subsystem

    def remove_subsystem(self, subsystem_id: str) -> None:
        """Remove a subsystem (its member stays). Raises ``KeyError`` if unknown."""
        self.subsystem(subsystem_id)
        del self._subsystems[subsystem_id]
        for server in self._servers.values():
            if subsystem_id in server.clients:
                server.clients.remove(subsystem_id)
        self.touch()

    def remove_member(self, member_id: str) -> None:
        """Remove a member with its subsystems and the security servers it owns."""
        self.member(member_id)
        for sub_id in [s.id for s in self._subsystems.values() if s.member_id == member_id]:
            self.remove_subsystem(sub_id)
        del self._members[member_id]
        for server_id in [s.id for s in self._servers.values() if s.owner == member_id]:
            del self._servers[server_id]
        for server in self._servers.values():
            if member_id in server.clients:
                server.clients.remove(member_id)
        self.touch()

    def add_service(self, subsystem_id: str, service: FakeService) -> None:
        sub = self.subsystem(subsystem_id)
        if any(s.code == service.code and s.version == service.version for s in sub.services):
            raise ValueError(f"duplicate service {service.code!r} in {subsystem_id!r}")
        sub.services.append(service)
        self.touch()

    def remove_service(self, subsystem_id: str, code: str, version: str | None = None) -> None:
        """Remove the service ``code`` (every version, unless ``version`` is given)."""
        sub = self.subsystem(subsystem_id)
        kept = [
            s
            for s in sub.services
            if not (s.code == code and (version is None or s.version == version))
        ]
        if len(kept) == len(sub.services):
            raise KeyError(f"no service {code!r} in {subsystem_id!r}")
        sub.services = kept
        self.touch()

    def set_allowed(self, subsystem_id: str, codes: Iterable[str] | None) -> None:
        """Which service codes clients may use (``None``: all)."""
        self.subsystem(subsystem_id).allowed = None if codes is None else set(codes)
        self.touch()

    def add_security_server(
        self,
        owner: str,
        server_code: str,
        *,
        address: str | None = None,
        clients: Iterable[str] = (),
    ) -> SecurityServerEntry:
        """Register a security server owned by member ``owner`` (``CO/GOB/MEMBER``)."""
        self.member(owner)
        _check_code(server_code, "server code")
        clients = list(clients)
        for client in clients:
            if client not in self._subsystems and client not in self._members:
                raise KeyError(f"unknown client {client!r}")
        entry = SecurityServerEntry(
            owner=owner,
            server_code=server_code,
            address=address or f"{server_code.lower()}.{owner.split('/')[2]}.invalid",
            clients=clients,
            auth_cert_hash=_b64(hashlib.sha1(f"{owner}/{server_code}".encode()).digest()),  # noqa: S324  # a placeholder like the real SHA-1 auth cert hash, not security
        )
        if entry.id in self._servers:
            raise ValueError(f"duplicate security server {entry.id!r}")
        self._servers[entry.id] = entry
        self.touch()
        return entry

    def set_expiry(self, when: datetime | None) -> None:
        """Fix the configuration's ``Expire-date`` (a past instant: expired); ``None``: rolling."""
        if when is not None and when.tzinfo is None:
            raise ValueError("the expiry needs a timezone (use UTC)")
        self._expiry = when
        self.touch()

    def _server(self, server_id: str) -> SecurityServerEntry:
        try:
            return self._servers[server_id]
        except KeyError:
            raise KeyError(f"unknown security server {server_id!r}") from None

    # -- building ----------------------------------------------------------------------

    @classmethod
    def synthetic(
        cls,
        n_subsystems: int,
        services_per_subsystem: int,
        *,
        instance: str = "CO",
        member_class: str = "GOB",
        seed: int = 0,
        subsystems_per_member: int = 1,
        members_per_server: int = 50,
    ) -> XRoadDirectory:
        """A reproducible directory of ``n_subsystems`` × ``services_per_subsystem`` services.

        Members ``GOB/8000000NN`` hold ``subsystems_per_member`` subsystems ``SIS01``…;
        service kinds are drawn (about 60 % REST, 20 % OPENAPI, 20 % WSDL); one subsystem
        in ten allows only half its services. One security server per
        ``members_per_server`` members. The same ``seed`` gives the same directory.
        """
        if n_subsystems < 0 or services_per_subsystem < 0:
            raise ValueError("counts must be >= 0")
        if subsystems_per_member < 1 or members_per_server < 1:
            raise ValueError("group sizes must be >= 1")
        rng = random.Random(seed)
        directory = cls(instance, member_classes={member_class: "Entidades públicas"})
        members = subsystems = 0
        server: SecurityServerEntry | None = None
        while subsystems < n_subsystems:
            member = directory.add_member(
                member_class, f"{800_000_000 + members * 11:09d}", f"Entidad {members + 1:04d}"
            )
            if members % members_per_server == 0:
                server = directory.add_security_server(member.id, f"SS{members + 1:04d}")
            members += 1
            for j in range(min(subsystems_per_member, n_subsystems - subsystems)):
                services = []
                for k in range(services_per_subsystem):
                    draw = rng.random()
                    kind: ServiceKind = (
                        "REST" if draw < 0.6 else "OPENAPI" if draw < 0.8 else "WSDL"
                    )
                    services.append(
                        FakeService(
                            f"servicio{k + 1:02d}",
                            version="v1" if kind == "WSDL" else None,
                            kind=kind,
                        )
                    )
                allowed = None
                if rng.random() < 0.1:
                    allowed = {s.code for s in services[: len(services) // 2]}
                sub = FakeSubsystem(
                    instance,
                    member_class,
                    member.member_code,
                    f"SIS{j + 1:02d}",
                    member.name,
                    services=services,
                    allowed=allowed,
                )
                directory._subsystems[sub.id] = sub  # bulk insert: checked by construction
                if server is not None:
                    server.clients.append(sub.id)
                subsystems += 1
        directory.touch()
        return directory

    @classmethod
    def from_shared_parameters(cls, data: bytes, *, clock: Clock | None = None) -> XRoadDirectory:
        """A directory with the members, subsystems and security servers of a shared-parameters
        file (PR-GCONF Annex B, version 2 or 3), e.g. a real sample. Services start empty.
        """
        root = _parse_xml(data)
        if root.tag != f"{{{XROAD_NS}}}conf":
            raise ValueError(f"not a shared-parameters file: root element {root.tag!r}")
        instance = _text(root, "instanceIdentifier")
        classes = {
            _text(mc, "code"): _text(mc, "description")
            for mc in root.findall("globalSettings/memberClass")
        }
        directory = cls(instance, member_classes=classes, clock=clock)
        refs: dict[str, str] = {}
        for el in root.findall("member"):
            member_class = _text(el, "memberClass/code")
            directory.member_classes.setdefault(member_class, _text(el, "memberClass/description"))
            member = directory.add_member(member_class, _text(el, "memberCode"), _text(el, "name"))
            refs[el.get("id", "")] = member.id
            for sub_el in el.findall("subsystem"):
                sub = directory.add_subsystem(
                    member_class, member.member_code, _text(sub_el, "subsystemCode")
                )
                refs[sub_el.get("id", "")] = sub.id
        for el in root.findall("securityServer"):
            entry = directory.add_security_server(
                refs[_text(el, "owner")],
                _text(el, "serverCode"),
                address=el.findtext("address") or None,
                clients=[refs[c.text or ""] for c in el.findall("client")],
            )
            entry.auth_cert_hash = el.findtext("authCertHash") or entry.auth_cert_hash
        directory.central_services = [
            code
            for code in (el.findtext("serviceCode") for el in root.findall("centralService"))
            if code
        ]
        freshness = root.findtext("globalSettings/ocspFreshnessSeconds")
        if freshness:
            directory.ocsp_freshness_seconds = int(freshness)
        return directory

    # -- global configuration parts ----------------------------------------------------

    def shared_parameters(
        self,
        *,
        version: int = 2,
        source_address: str = "127.0.0.1",
        verification_cert: bytes = b"",
    ) -> bytes:
        """The shared-parameters XML of PR-GCONF Annex B (version 2 or 3).

        Version 3 adds a ``source`` element with ``source_address`` and the (DER)
        ``verification_cert``.
        """
        if version not in CONFIGURATION_VERSIONS:
            raise ValueError(f"unsupported configuration version {version}")
        out = [
            _XML_DECLARATION,
            f'<ns3:conf xmlns:ns2="{ID_NS}" xmlns:ns3="{XROAD_NS}">\n',
            f"    <instanceIdentifier>{escape(self.instance)}</instanceIdentifier>\n",
        ]
        if version >= 3:
            cert = _b64(verification_cert)
            out.append(
                f"    <source><address>{escape(source_address)}</address>"
                f"<internalVerificationCert>{cert}</internalVerificationCert>"
                f"<externalVerificationCert>{cert}</externalVerificationCert></source>\n"
            )
        refs: dict[str, str] = {}
        for member, subs in self.clients():
            ref = refs[member.id] = f"id{len(refs)}"
            description = self.member_classes.get(member.member_class, member.member_class)
            out.append(
                f'    <member id="{ref}">\n'
                f"        <memberClass><code>{escape(member.member_class)}</code>"
                f"<description>{escape(description)}</description></memberClass>\n"
                f"        <memberCode>{escape(member.member_code)}</memberCode>\n"
                f"        <name>{escape(member.name)}</name>\n"
            )
            for sub in subs:
                sub_ref = refs[sub.id] = f"id{len(refs)}"
                out.append(
                    f'        <subsystem id="{sub_ref}"><subsystemCode>'
                    f"{escape(sub.subsystem_code)}</subsystemCode></subsystem>\n"
                )
            out.append("    </member>\n")
        owners: list[FakeMember] = []
        for server in self._servers.values():
            out.append(
                f"    <securityServer>\n        <owner>{refs[server.owner]}</owner>\n"
                f"        <serverCode>{escape(server.server_code)}</serverCode>\n"
                f"        <address>{escape(server.address)}</address>\n"
                f"        <authCertHash>{escape(server.auth_cert_hash)}</authCertHash>\n"
            )
            out.extend(f"        <client>{refs[c]}</client>\n" for c in server.clients if c in refs)
            out.append("    </securityServer>\n")
            owner = self._members[server.owner]
            if owner not in owners:
                owners.append(owner)
        out.append(
            "    <globalGroup>\n        <groupCode>security-server-owners</groupCode>\n"
            "        <description>Security server owners</description>\n"
        )
        for owner in owners:
            out.append(
                '        <groupMember ns2:objectType="MEMBER">'
                f"<ns2:xRoadInstance>{escape(owner.instance)}</ns2:xRoadInstance>"
                f"<ns2:memberClass>{escape(owner.member_class)}</ns2:memberClass>"
                f"<ns2:memberCode>{escape(owner.member_code)}</ns2:memberCode></groupMember>\n"
            )
        out.append("    </globalGroup>\n")
        out.extend(
            f"    <centralService><serviceCode>{escape(code)}</serviceCode></centralService>\n"
            for code in self.central_services
        )
        out.append("    <globalSettings>\n")
        out.extend(
            f"        <memberClass><code>{escape(code)}</code>"
            f"<description>{escape(description)}</description></memberClass>\n"
            for code, description in self.member_classes.items()
        )
        out.append(
            f"        <ocspFreshnessSeconds>{self.ocsp_freshness_seconds}</ocspFreshnessSeconds>\n"
            "    </globalSettings>\n</ns3:conf>\n"
        )
        return "".join(out).encode("utf-8")

    def private_parameters(self, *, management_address: str = "https://127.0.0.1:4001/") -> bytes:
        """The private-parameters XML of PR-GCONF Annex C (no federated anchors)."""
        provider = (self.management_service_provider or "").split("/")
        if len(provider) != 4:
            first_class = next(iter(self.member_classes), "GOB")
            provider = [self.instance, first_class, "CENTRAL", "MANAGEMENT"]
        instance, member_class, member_code, subsystem_code = provider
        return (
            f"{_XML_DECLARATION}"
            f'<ns3:conf xmlns:ns2="{ID_NS}" xmlns:ns3="{XROAD_NS}">\n'
            f"    <instanceIdentifier>{escape(self.instance)}</instanceIdentifier>\n"
            "    <managementService>\n"
            f"        <authCertRegServiceAddress>{escape(management_address)}"
            "</authCertRegServiceAddress>\n"
            '        <managementRequestServiceProviderId ns2:objectType="SUBSYSTEM">'
            f"<ns2:xRoadInstance>{escape(instance)}</ns2:xRoadInstance>"
            f"<ns2:memberClass>{escape(member_class)}</ns2:memberClass>"
            f"<ns2:memberCode>{escape(member_code)}</ns2:memberCode>"
            f"<ns2:subsystemCode>{escape(subsystem_code)}</ns2:subsystemCode>"
            "</managementRequestServiceProviderId>\n"
            "    </managementService>\n"
            f"    <timeStampingIntervalSeconds>{self.time_stamping_interval_seconds}"
            "</timeStampingIntervalSeconds>\n"
            "</ns3:conf>\n"
        ).encode()


def _text(el: ET.Element, path: str) -> str:
    value = el.findtext(path)
    if value is None:
        raise ValueError(f"missing <{path}> in <{el.tag}>")
    return value.strip()


def _parse_xml(data: bytes) -> ET.Element:
    """Parse untrusted XML: no DTDs, no entities, bounded size."""
    if len(data) > 16 * 1024 * 1024:
        raise ValueError("XML document too large")
    root: ET.Element = _defused_fromstring(data, forbid_dtd=True)
    return root


# -- XML writing -----------------------------------------------------------------------


class _Prefixes:
    """Namespace prefixes of one outgoing document; unknown namespaces get ``nsN``."""

    def __init__(self) -> None:
        self.by_ns: dict[str, str] = {SOAP_ENV_NS: "SOAP-ENV", XROAD_NS: "xroad", ID_NS: "id"}

    def qname(self, tag: str) -> str:
        if not tag.startswith("{"):
            return tag
        ns, _, local = tag[1:].partition("}")
        if ns == _XML_NS:
            return f"xml:{local}"
        prefix = self.by_ns.get(ns)
        if prefix is None:
            prefix = self.by_ns[ns] = f"ns{len(self.by_ns)}"
        return f"{prefix}:{local}"

    def declarations(self) -> str:
        return " ".join(f"xmlns:{prefix}={quoteattr(ns)}" for ns, prefix in self.by_ns.items())


def _render(el: ET.Element, prefixes: _Prefixes) -> str:
    """Serialise an element received in a request, with this document's prefixes."""
    name = prefixes.qname(el.tag)
    attrs = "".join(f" {prefixes.qname(k)}={quoteattr(v)}" for k, v in el.attrib.items())
    inner = escape(el.text or "") + "".join(
        _render(child, prefixes) + escape(child.tail or "") for child in el
    )
    return f"<{name}{attrs}>{inner}</{name}>"


def _identifier_xml(tag: str, object_type: str, parts: Mapping[str, str | None]) -> str:
    """``<tag id:objectType=…><id:xRoadInstance>…`` with the ``id`` prefix (PR-MESS §2.1)."""
    fields = "".join(
        f"<id:{name}>{escape(value)}</id:{name}>" for name, value in parts.items() if value
    )
    return f'<{tag} id:objectType="{object_type}">{fields}</{tag}>'


def _service_xml(tag: str, sub: FakeSubsystem, service: FakeService) -> str:
    return _identifier_xml(
        tag,
        "SERVICE",
        {
            "xRoadInstance": sub.instance,
            "memberClass": sub.member_class,
            "memberCode": sub.member_code,
            "subsystemCode": sub.subsystem_code,
            "serviceCode": service.code,
            "serviceVersion": service.version,
        },
    )


def _soap_fault(code: str, message: str, *, headers: tuple[tuple[str, str], ...] = ()) -> Response:
    """A SOAP 1.1 fault shaped like PR-MESS Annex D.1."""
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<SOAP-ENV:Envelope xmlns:SOAP-ENV="{SOAP_ENV_NS}"><SOAP-ENV:Body><SOAP-ENV:Fault>'
        f"<faultcode>{escape(code)}</faultcode><faultstring>{escape(message)}</faultstring>"
        f'<faultactor></faultactor><detail><faultDetail xmlns="">{uuid.uuid4()}</faultDetail>'
        "</detail></SOAP-ENV:Fault></SOAP-ENV:Body></SOAP-ENV:Envelope>\n"
    )
    return Response(500, body.encode("utf-8"), content_type=_XML, headers=headers)


def _json_response(
    status: int, payload: object, *, headers: tuple[tuple[str, str], ...] = ()
) -> Response:
    body = json.dumps(payload, ensure_ascii=False).encode("utf-8")
    return Response(status, body, content_type=_JSON, headers=headers)


def _rest_error(code: str, message: str) -> Response:
    """An X-Road REST error (PR-REST §4.6): JSON body and the ``X-Road-Error`` header."""
    status = 400 if code.startswith("Client.") else 500
    payload = {"type": code, "message": message, "detail": str(uuid.uuid4())}
    return _json_response(status, payload, headers=(("X-Road-Error", code),))


def _wants_json(request: Request) -> bool:
    ranges = request.headers.get("accept", "").split(",")
    return any(r.split(";")[0].strip().lower() == "application/json" for r in ranges)


def _wsdl(sub: FakeSubsystem, service: FakeService) -> bytes:
    """A minimal document/literal WSDL for one operation (PR-MESS §3.2, PR-META C.8)."""
    if service.description is not None:
        return service.description.encode("utf-8")
    code = escape(service.code)
    tns = f"http://{sub.instance.lower()}.x-road.example/{sub.member_code}/{sub.subsystem_code}"
    version = f"<xrd:version>{escape(service.version)}</xrd:version>" if service.version else ""
    header_parts = "".join(
        f'<soap:header message="tns:requestheader" part="{p}" use="literal"/>'
        for p in ("client", "service", "userId", "id", "issue", "protocolVersion")
    )
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<wsdl:definitions name="{code}" targetNamespace={quoteattr(tns)} '
        f'xmlns:wsdl="{WSDL_NS}" xmlns:soap="{WSDL_SOAP_NS}" xmlns:xsd="{XSD_NS}" '
        f'xmlns:xrd="{XROAD_NS}" xmlns:tns={quoteattr(tns)}>\n'
        f'<wsdl:types><xsd:schema elementFormDefault="qualified" targetNamespace={quoteattr(tns)}>'
        f'<xsd:import namespace="{XROAD_NS}" schemaLocation="http://x-road.eu/xsd/xroad.xsd"/>'
        f'<xsd:element name="{code}"><xsd:complexType/></xsd:element>'
        f'<xsd:element name="{code}Response"><xsd:complexType/></xsd:element>'
        "</xsd:schema></wsdl:types>\n"
        '<wsdl:message name="requestheader">'
        + "".join(
            f'<wsdl:part name="{p}" element="xrd:{p}"/>'
            for p in ("client", "service", "userId", "id", "issue", "protocolVersion")
        )
        + "</wsdl:message>\n"
        f'<wsdl:message name="{code}"><wsdl:part name="body" element="tns:{code}"/></wsdl:message>'
        f'<wsdl:message name="{code}Response">'
        f'<wsdl:part name="body" element="tns:{code}Response"/></wsdl:message>\n'
        f'<wsdl:portType name="{code}PortType"><wsdl:operation name="{code}">'
        f'<wsdl:input message="tns:{code}"/><wsdl:output message="tns:{code}Response"/>'
        "</wsdl:operation></wsdl:portType>\n"
        f'<wsdl:binding name="{code}Binding" type="tns:{code}PortType">'
        f'<soap:binding style="document" transport="http://schemas.xmlsoap.org/soap/http"/>'
        f'<wsdl:operation name="{code}"><soap:operation soapAction="" style="document"/>'
        f'{version}<wsdl:input><soap:body parts="body" use="literal"/>{header_parts}</wsdl:input>'
        f'<wsdl:output><soap:body parts="body" use="literal"/>{header_parts}</wsdl:output>'
        "</wsdl:operation></wsdl:binding>\n"
        f'<wsdl:service name="{code}Service"><wsdl:port binding="tns:{code}Binding" '
        f'name="{code}Port"><soap:address location="{WSDL_ENDPOINT}"/></wsdl:port>'
        "</wsdl:service>\n</wsdl:definitions>\n"
    ).encode("utf-8")


def _openapi(service: FakeService) -> dict[str, Any]:
    paths: dict[str, dict[str, Any]] = {}
    for method, path in service.listed_endpoints():
        operation = f"{method.lower()}{re.sub(r'[^A-Za-z0-9]+', '_', path).rstrip('_')}"
        paths.setdefault(path, {})[method.lower()] = {
            "operationId": operation,
            "responses": {"200": {"description": "OK"}},
        }
    return {
        "openapi": "3.0.0",
        "info": {"title": service.code, "version": service.version or "1.0.0"},
        "servers": [{"url": "https://example.org"}],
        "paths": paths,
    }


# -- the security server ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RecordedRequest:
    """A request the fake security server received (header names lower-cased)."""

    method: str
    path: str
    query: str
    headers: Mapping[str, str]
    body: bytes


class _Problem(Exception):
    """An X-Road error to answer with (a SOAP fault or a REST error)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


@dataclass(slots=True)
class _SoapRequest:
    header: ET.Element
    body_element: ET.Element
    client: tuple[str, ...]
    provider: tuple[str, ...]
    service_code: str
    service_version: str | None


class FakeSecurityServer:
    """A fake X-Road security server: metaservices over an :class:`XRoadDirectory`.

    ``async with FakeSecurityServer(directory) as ss:`` binds the service listener (plain
    HTTP, or HTTPS with ``tls=True``; with ``require_client_cert`` the client must present a
    certificate from :attr:`ca`, as in the security server's HTTPS-with-authentication
    mode) and a plain health-check listener. ``ca`` defaults to a fresh CA; certificates
    are written to ``workdir`` when given, else to a temporary directory that is removed.
    """

    def __init__(
        self,
        directory: XRoadDirectory,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        health_port: int = 0,
        tls: bool = False,
        require_client_cert: bool = True,
        ca: CertificateAuthority | None = None,
        workdir: Path | None = None,
        list_central_services: Literal["not_found", "serve"] = "not_found",
        record: bool = True,
    ) -> None:
        check_loopback(host)
        self.directory = directory
        self.host = host
        self.tls = tls
        self.require_client_cert = require_client_cert
        self.ca = ca or (CertificateAuthority("scd-monitor X-Road simulator CA") if tls else None)
        self.workdir = workdir
        self.list_central_services = list_central_services
        self.record = record
        self.requests: list[RecordedRequest] = []
        self.health_hits = 0
        self._ports = (port, health_port)
        self._health = 200
        self._fault: tuple[str, frozenset[str] | None] | None = None
        self._delay: tuple[float, frozenset[str] | None] | None = None
        self._server: HttpServer | None = None
        self._health_server: HttpServer | None = None

    # -- running -----------------------------------------------------------------------

    async def start(self) -> None:
        if self._server is not None:
            raise RuntimeError("security server already started")
        server = HttpServer(
            self._handle,
            self.host,
            self._ports[0],
            ssl_context=self._ssl_context() if self.tls else None,
            server_header="scd-monitor-xroad-simulator",
        )
        health = HttpServer(
            self._handle_health,
            self.host,
            self._ports[1],
            server_header="scd-monitor-xroad-simulator",
        )
        await server.start()
        try:
            await health.start()
        except BaseException:
            await server.stop()
            raise
        self._server, self._health_server = server, health

    async def stop(self) -> None:
        servers = [s for s in (self._server, self._health_server) if s is not None]
        self._server = self._health_server = None
        for server in servers:
            await server.stop()

    async def __aenter__(self) -> FakeSecurityServer:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    def _ssl_context(self) -> ssl.SSLContext:
        assert self.ca is not None
        pair = self.ca.issue(_CERT_HOSTS)
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        if self.workdir is not None:
            cert, key = pair.write(self.workdir, "xroad-security-server")
            self.ca.write_cert(self.workdir / "xroad-ca.crt")
            context.load_cert_chain(cert, key)
        else:
            with tempfile.TemporaryDirectory(prefix="scd-xroad-") as tmp:
                cert, key = pair.write(Path(tmp), "server")
                context.load_cert_chain(cert, key)
        if self.require_client_cert:
            context.verify_mode = ssl.CERT_REQUIRED
            context.load_verify_locations(cadata=self.ca.cert_pem.decode("ascii"))
        return context

    # -- inspecting and steering -------------------------------------------------------

    @property
    def url(self) -> str:
        """Base URL of the service listener (no trailing slash)."""
        return self._base("https" if self.tls else "http", self._server)

    @property
    def health_url(self) -> str:
        return self._base("http", self._health_server) + "/"

    def _base(self, scheme: str, server: HttpServer | None) -> str:
        if server is None:
            raise RuntimeError("the security server is not running (start it first)")
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{scheme}://{host}:{server.port}"

    def issue_client_certificate(self, name: str = "scd-monitor") -> KeyPair:
        """A client certificate the TLS listener accepts (the chain includes the CA)."""
        if self.ca is None:
            raise RuntimeError("no CA: the security server was created without tls")
        return self.ca.issue([name], client=True)

    def set_health(self, status: int) -> None:
        """What the health check answers: 200, or a failure such as 500 or 503 (maintenance)."""
        if not 200 <= status <= 599:
            raise ValueError(f"not an HTTP status: {status}")
        self._health = status
        log.info("simulator.xroad_health_set", status=status)

    def set_fault(self, code: str | None, *, only: Iterable[Metaservice] | None = None) -> None:
        """Answer requests with the X-Road error ``code`` (``None`` clears it).

        ``only`` limits it to some of :data:`METASERVICES` (default: every request that
        parses). REST gets the JSON error and ``X-Road-Error``, SOAP a fault.
        """
        self._fault = None if code is None else (code, _scope(only))
        log.info("simulator.xroad_fault_set", code=code, only=None if only is None else list(only))

    def set_delay(self, seconds: float, *, only: Iterable[Metaservice] | None = None) -> None:
        """Wait ``seconds`` before answering (0 clears); ``only`` as in :meth:`set_fault`."""
        if seconds < 0:
            raise ValueError("the delay must be >= 0")
        self._delay = (seconds, _scope(only)) if seconds else None

    def _fault_for(self, what: Metaservice) -> _Problem | None:
        if self._fault is None:
            return None
        code, scope = self._fault
        if scope is not None and what not in scope:
            return None
        return _Problem(code, f"Simulated failure of {what}")

    async def _pause(self, what: Metaservice) -> None:
        if self._delay is not None:
            seconds, scope = self._delay
            if scope is None or what in scope:
                await asyncio.sleep(seconds)

    # -- serving -----------------------------------------------------------------------

    async def _handle_health(self, request: Request, conn: Connection) -> Response:
        self.health_hits += 1
        if self._health == 200:
            return Response(200, b"")
        messages = {500: "Health check failed", 503: "Security server is in maintenance mode"}
        message = messages.get(self._health, f"Health check answered {self._health}")
        return Response(self._health, f"{message}\n".encode())

    async def _handle(self, request: Request, conn: Connection) -> Response:
        if self.record:
            self.requests.append(
                RecordedRequest(
                    request.method,
                    request.path,
                    request.query,
                    dict(request.headers),
                    request.body,
                )
            )
        path = request.path
        if path == "/listClients":
            return await self._list_clients(request)
        if path == "/listCentralServices":
            return await self._list_central_services(request)
        if path.startswith("/r1/"):
            return await self._rest(request)
        if path == "/":
            return await self._soap(request)
        return Response(404, b"not an X-Road security server path\n")

    # listClients and listCentralServices (PR-META §2, PR-MREST §3) ......................

    def _meta_fault(self, request: Request, problem: _Problem) -> Response:
        headers = (("X-Road-Error", problem.code),)
        if _wants_json(request):
            return _rest_error(problem.code, problem.message)
        return _soap_fault(problem.code, problem.message, headers=headers)

    async def _list_clients(self, request: Request) -> Response:
        await self._pause("listClients")
        problem = self._fault_for("listClients")
        if problem is not None:
            return self._meta_fault(request, problem)
        instance = parse_qs(request.query).get("xRoadInstance", [self.directory.instance])[-1]
        clients = self.directory.clients() if instance == self.directory.instance else []
        if _wants_json(request):
            return _json_response(200, {"member": _clients_json(clients)})
        return Response(200, _clients_xml(clients), content_type=_XML)

    async def _list_central_services(self, request: Request) -> Response:
        if self.list_central_services == "not_found":
            return Response(404, b"listCentralServices was removed in X-Road 7.3\n")
        await self._pause("listCentralServices")
        problem = self._fault_for("listCentralServices")
        if problem is not None:
            return _soap_fault(
                problem.code, problem.message, headers=(("X-Road-Error", problem.code),)
            )
        instance = escape(self.directory.instance)
        items = "".join(
            '<ns2:centralService ns1:objectType="CENTRALSERVICE">'
            f"<ns1:xRoadInstance>{instance}</ns1:xRoadInstance>"
            f"<ns1:serviceCode>{escape(code)}</ns1:serviceCode></ns2:centralService>"
            for code in self.directory.central_services
        )
        body = (
            f'{_XML_DECLARATION}<ns2:centralServiceList xmlns:ns1="{ID_NS}" xmlns:ns2="{XROAD_NS}">'
            f"{items}</ns2:centralServiceList>\n"
        )
        return Response(200, body.encode("utf-8"), content_type=_XML)

    # REST (PR-REST, PR-MREST) ..............................................................

    async def _rest(self, request: Request) -> Response:
        try:
            return await self._rest_inner(request)
        except _Problem as problem:
            return _rest_error(problem.code, problem.message)

    async def _rest_inner(self, request: Request) -> Response:
        header = request.headers.get("x-road-client")
        if header is None:
            raise _Problem("Client.BadRequest", "Missing X-Road-Client header")
        client = _split_id(header)
        if client is None or len(client) not in (3, 4):
            raise _Problem(
                "Client.BadRequest",
                f"Invalid X-Road-Client header {header!r}: expected "
                "INSTANCE/CLASS/MEMBER[/SUBSYSTEM]",
            )
        segments = tuple(unquote(s) for s in request.path[len("/r1/") :].split("/"))
        meta = next(
            (i for i in (3, 4) if len(segments) == i + 1 and segments[i] in _REST_META), None
        )
        if meta is not None:
            provider, what, rest = segments[:meta], segments[meta], ""
        elif len(segments) >= 5:
            provider, what, rest = segments[:4], segments[4], "/" + "/".join(segments[5:])
        else:
            raise _Problem(
                "Client.BadRequest",
                "Error parsing the client's REST request: expected "
                "/r1/INSTANCE/CLASS/MEMBER/SUBSYSTEM/SERVICE[/path]",
            )
        if not all(_ID_PART.match(part) for part in (*provider, what)):
            raise _Problem("Client.BadRequest", "Malformed service identifier in the request URL")
        if self.directory.find_client(client) is None:
            raise _Problem(
                "Server.ClientProxy.UnknownMember", f"Client '{'/'.join(client)}' not found"
            )
        target = self.directory.find_client(provider)
        if target is None:
            raise _Problem(
                "Server.ClientProxy.UnknownMember",
                f"Could not find addresses for service provider '{'/'.join(provider)}'",
            )
        kind = cast(Metaservice, what) if meta is not None else "service"
        await self._pause(kind)
        problem = self._fault_for(kind)
        if problem is not None:
            raise problem
        if meta is not None and request.method not in ("GET", "HEAD"):
            raise _Problem("Client.BadRequest", f"Use GET for {what}, not {request.method}")
        sub = target if isinstance(target, FakeSubsystem) else None
        headers = _response_headers(request, "/".join(client), "/".join((*provider, what)))
        if what in ("listMethods", "allowedMethods") and meta is not None:
            listed: list[dict[str, Any]] = []
            if sub is not None:
                listed = [
                    _rest_service_json(sub, s)
                    for s in sub.services
                    if s.is_rest and (what == "listMethods" or sub.may_use(s.code))
                ]
            return _json_response(200, {"service": listed}, headers=headers)
        if what == "getOpenAPI" and meta is not None:
            return self._get_openapi(request, sub, provider, headers)
        return self._rest_call(request, sub, provider, what, rest, headers)

    def _get_openapi(
        self,
        request: Request,
        sub: FakeSubsystem | None,
        provider: tuple[str, ...],
        headers: tuple[tuple[str, str], ...],
    ) -> Response:
        codes = parse_qs(request.query).get("serviceCode", [])
        if len(codes) != 1 or not codes[0]:
            raise _Problem(
                "Client.BadRequest", "Exactly one query parameter serviceCode is required"
            )
        service = None if sub is None else sub.find(codes[0])
        if service is None:
            raise _Problem(
                "Server.ServerProxy.UnknownService",
                f"Unknown service '{'/'.join((*provider, codes[0]))}'",
            )
        if service.kind != "OPENAPI":
            raise _Problem(
                "Server.ServerProxy.InvalidServiceType",
                f"Service '{service.code}' is a {service.kind} service with no OpenAPI description",
            )
        if service.description is not None:
            looks_json = service.description.lstrip()[:1] == "{"
            return Response(
                200,
                service.description.encode("utf-8"),
                content_type=_JSON if looks_json else "text/yaml;charset=utf-8",
                headers=headers,
            )
        document = _openapi(service)
        if _wants_json(request):
            return _json_response(200, document, headers=headers)
        text = yaml.safe_dump(document, sort_keys=False, allow_unicode=True)
        return Response(
            200, text.encode("utf-8"), content_type="text/yaml;charset=utf-8", headers=headers
        )

    def _rest_call(
        self,
        request: Request,
        sub: FakeSubsystem | None,
        provider: tuple[str, ...],
        code: str,
        path: str,
        headers: tuple[tuple[str, str], ...],
    ) -> Response:
        service = None if sub is None else sub.find(code)
        service_id = "/".join((*provider, code))
        if service is None or sub is None:
            raise _Problem("Server.ServerProxy.UnknownService", f"Unknown service '{service_id}'")
        if not service.is_rest:
            raise _Problem(
                "Server.ServerProxy.InvalidServiceType",
                f"Service '{service_id}' is a SOAP service; call it with a SOAP message",
            )
        if not sub.may_use(code):
            raise _Problem(
                "Server.ServerProxy.AccessDenied",
                f"Request is not allowed: '{service_id}'",
            )
        payload = {"status": "UP", "service": service_id, "method": request.method, "path": path}
        return _json_response(200, payload, headers=headers)

    # SOAP (PR-MESS, PR-META §3–4) ..........................................................

    async def _soap(self, request: Request) -> Response:
        if request.method != "POST":
            return Response(405, b"send SOAP requests with POST\n", headers=(("Allow", "POST"),))
        try:
            soap = _parse_soap(request)
        except _Problem as problem:
            return _soap_fault(problem.code, problem.message)
        what = (
            cast(Metaservice, soap.service_code) if soap.service_code in _SOAP_META else "service"
        )
        try:
            if self.directory.find_client(soap.client) is None:
                raise _Problem(
                    "Server.ClientProxy.UnknownMember",
                    f"Client '{'/'.join(soap.client)}' not found",
                )
            target = self.directory.find_client(soap.provider)
            if target is None:
                raise _Problem(
                    "Server.ClientProxy.UnknownMember",
                    f"Could not find addresses for service provider '{'/'.join(soap.provider)}'",
                )
            await self._pause(what)
            injected = self._fault_for(what)
            if injected is not None:
                raise injected
            sub = target if isinstance(target, FakeSubsystem) else None
            return self._soap_answer(request, soap, sub)
        except _Problem as problem:
            return _soap_fault(problem.code, problem.message)

    def _soap_answer(
        self, request: Request, soap: _SoapRequest, sub: FakeSubsystem | None
    ) -> Response:
        prefixes = _Prefixes()
        code = soap.service_code
        if code in ("listMethods", "allowedMethods"):
            items = ""
            if sub is not None:
                items = "".join(
                    _service_xml("xroad:service", sub, s)
                    for s in sub.services
                    if s.kind == "WSDL" and (code == "listMethods" or sub.may_use(s.code))
                )
            body = f"<xroad:{code}Response>{items}</xroad:{code}Response>"
            return _soap_response(request, soap, body, prefixes)
        if code == "getWsdl":
            return self._get_wsdl(request, soap, sub, prefixes)
        service = None if sub is None else sub.find(code, soap.service_version)
        service_id = "/".join((*soap.provider, code))
        if service is None or sub is None:
            raise _Problem("Server.ServerProxy.UnknownService", f"Unknown service '{service_id}'")
        if service.kind != "WSDL":
            raise _Problem(
                "Server.ServerProxy.InvalidServiceType",
                f"Service '{service_id}' is a {service.kind} service; call it over /r1",
            )
        if not sub.may_use(code):
            raise _Problem(
                "Server.ServerProxy.AccessDenied", f"Request is not allowed: '{service_id}'"
            )
        name = prefixes.qname(soap.body_element.tag) + "Response"
        return _soap_response(request, soap, f"<{name}/>", prefixes)

    def _get_wsdl(
        self,
        request: Request,
        soap: _SoapRequest,
        sub: FakeSubsystem | None,
        prefixes: _Prefixes,
    ) -> Response:
        code = (soap.body_element.findtext(f"{{{XROAD_NS}}}serviceCode") or "").strip()
        version = soap.body_element.findtext(f"{{{XROAD_NS}}}serviceVersion")
        version = version.strip() if version else None
        if not code:
            raise _Problem("Client.InvalidBody", "getWsdl needs a serviceCode element")
        service = None if sub is None else sub.find(code, version)
        service_id = "/".join((*soap.provider, code))
        if service is None or sub is None:
            raise _Problem("Server.ServerProxy.UnknownService", f"Unknown service '{service_id}'")
        if service.kind != "WSDL":
            raise _Problem(
                "Server.ServerProxy.InvalidServiceType",
                f"Service '{service_id}' is a {service.kind} service and has no WSDL",
            )
        version_xml = (
            f"<xroad:serviceVersion>{escape(service.version)}</xroad:serviceVersion>"
            if service.version
            else ""
        )
        body = (
            f"<xroad:getWsdlResponse><xroad:serviceCode>{escape(code)}</xroad:serviceCode>"
            f"{version_xml}</xroad:getWsdlResponse>"
        )
        soap_part = _soap_response(request, soap, body, prefixes).body
        boundary = f"xroad-sim-{uuid.uuid4().hex}"
        multipart = b"".join(
            [
                f"--{boundary}\r\nContent-Type: text/xml; charset=UTF-8\r\n"
                "Content-Transfer-Encoding: 8bit\r\nContent-ID: <rootpart>\r\n\r\n".encode(),
                soap_part,
                f"\r\n--{boundary}\r\nContent-Type: text/xml; charset=UTF-8\r\n"
                "Content-Transfer-Encoding: 8bit\r\nContent-ID: <wsdl>\r\n\r\n".encode(),
                _wsdl(sub, service),
                f"\r\n--{boundary}--\r\n".encode(),
            ]
        )
        content_type = (
            f'multipart/related; type="text/xml"; start="<rootpart>"; boundary="{boundary}"'
        )
        return Response(200, multipart, content_type=content_type)


def _scope(only: Iterable[Metaservice] | None) -> frozenset[str] | None:
    if only is None:
        return None
    scope = frozenset(only)
    unknown = sorted(scope - set(METASERVICES))
    if unknown:
        raise ValueError(f"unknown metaservice(s) {unknown}; expected some of {METASERVICES}")
    return scope


def _split_id(text: str) -> tuple[str, ...] | None:
    """``INSTANCE/CLASS/MEMBER[/SUBSYSTEM]``, each part percent-decoded (PR-REST §4.2–4.3)."""
    parts = tuple(unquote(p) for p in text.strip().split("/"))
    if not all(_ID_PART.match(p) for p in parts):
        return None
    return parts


def _response_headers(request: Request, client: str, service: str) -> tuple[tuple[str, str], ...]:
    """The X-Road headers of a REST response (PR-REST §4.3); the request hash is simplified."""
    head = "\n".join(
        [f"{request.method} {request.target}"]
        + [f"{k}: {v}" for k, v in sorted(request.headers.items())]
    ).encode("utf-8")
    inner = hashlib.sha512(head).digest() + hashlib.sha512(request.body).digest()
    return (
        ("X-Road-Client", client),
        ("X-Road-Service", service),
        ("X-Road-Id", request.headers.get("x-road-id") or str(uuid.uuid4())),
        ("X-Road-Request-Id", str(uuid.uuid4())),
        ("X-Road-Request-Hash", _b64(hashlib.sha512(inner).digest())),
    )


def _rest_service_json(sub: FakeSubsystem, service: FakeService) -> dict[str, Any]:
    """One entry of REST ``listMethods`` (PR-MREST Annex B.1)."""
    entry: dict[str, Any] = {
        "member_class": sub.member_class,
        "member_code": sub.member_code,
        "object_type": "SERVICE",
        "service_code": service.code,
        "service_type": service.kind,
        "subsystem_code": sub.subsystem_code,
        "xroad_instance": sub.instance,
    }
    if service.version is not None:
        entry["service_version"] = service.version
    entry["endpoint_list"] = [{"method": m, "path": p} for m, p in service.listed_endpoints()]
    return entry


def _clients_json(clients: list[tuple[FakeMember, list[FakeSubsystem]]]) -> list[dict[str, Any]]:
    """``listClients`` as JSON (PR-META Annex B OpenAPI definition, C.1)."""
    out: list[dict[str, Any]] = []
    for member, subs in clients:
        out.append(
            {
                "id": {
                    "member_class": member.member_class,
                    "member_code": member.member_code,
                    "object_type": "MEMBER",
                    "xroad_instance": member.instance,
                },
                "name": member.name,
            }
        )
        for sub in subs:
            entry: dict[str, Any] = {
                "id": {
                    "member_class": sub.member_class,
                    "member_code": sub.member_code,
                    "subsystem_code": sub.subsystem_code,
                    "object_type": "SUBSYSTEM",
                    "xroad_instance": sub.instance,
                },
                "name": member.name,
            }
            if sub.subsystem_name is not None:
                entry["subsystem_name"] = sub.subsystem_name
            out.append(entry)
    return out


def _clients_xml(clients: list[tuple[FakeMember, list[FakeSubsystem]]]) -> bytes:
    """``listClients`` as XML: the ``clientList`` element (PR-META Annex A, C.1)."""
    out = [f'{_XML_DECLARATION}<ns2:clientList xmlns:ns1="{ID_NS}" xmlns:ns2="{XROAD_NS}">\n']
    for member, subs in clients:
        instance = f"<ns1:xRoadInstance>{escape(member.instance)}</ns1:xRoadInstance>"
        owner = (
            f"{instance}<ns1:memberClass>{escape(member.member_class)}</ns1:memberClass>"
            f"<ns1:memberCode>{escape(member.member_code)}</ns1:memberCode>"
        )
        name = f"<ns2:name>{escape(member.name)}</ns2:name>"
        out.append(
            f'<ns2:member><ns2:id ns1:objectType="MEMBER">{owner}</ns2:id>{name}</ns2:member>\n'
        )
        for sub in subs:
            sub_name = (
                f"<ns2:subsystemName>{escape(sub.subsystem_name)}</ns2:subsystemName>"
                if sub.subsystem_name is not None
                else ""
            )
            out.append(
                f'<ns2:member><ns2:id ns1:objectType="SUBSYSTEM">{owner}'
                f"<ns1:subsystemCode>{escape(sub.subsystem_code)}</ns1:subsystemCode></ns2:id>"
                f"{name}{sub_name}</ns2:member>\n"
            )
    out.append("</ns2:clientList>\n")
    return "".join(out).encode("utf-8")


def _read_identifier(el: ET.Element, field_name: str, types: tuple[str, ...]) -> tuple[str, ...]:
    """The codes of an identifier element (PR-MESS §2.1), checked for its object type."""
    object_type = el.get(f"{{{ID_NS}}}objectType")
    if object_type not in types:
        raise _Problem(
            "Client.InvalidSoap",
            f"{field_name}: objectType {object_type!r} is not one of {', '.join(types)}",
        )
    names = ["xRoadInstance", "memberClass", "memberCode"]
    if object_type in ("SUBSYSTEM", "SERVICE"):
        names.append("subsystemCode")
    if object_type == "SERVICE":
        names.append("serviceCode")
    parts = []
    for name in names:
        value = el.findtext(f"{{{ID_NS}}}{name}")
        optional = object_type == "SERVICE" and name == "subsystemCode"
        if value is None or not value.strip():
            if optional:
                continue
            raise _Problem("Client.InvalidSoap", f"{field_name}: missing {name}")
        if not _ID_PART.match(value.strip()):
            raise _Problem("Client.InvalidSoap", f"{field_name}: invalid {name} {value!r}")
        parts.append(value.strip())
    return tuple(parts)


def _parse_soap(request: Request) -> _SoapRequest:
    """Check the envelope and the X-Road header (PR-MESS §2.2–2.3)."""
    content_type = request.headers.get("content-type", "").lower()
    if content_type.startswith("multipart/"):
        raise _Problem("Client.InvalidSoap", "SOAP messages with attachments are not supported")
    if len(request.body) > MAX_SOAP_BYTES:
        raise _Problem("Client.InvalidSoap", f"SOAP message larger than {MAX_SOAP_BYTES} bytes")
    try:
        root = _parse_xml(request.body)
    except (ET.ParseError, ValueError) as exc:  # defusedxml's refusals are ValueErrors
        raise _Problem("Client.InvalidSoap", f"Malformed SOAP message: {exc}") from None
    if root.tag != f"{{{SOAP_ENV_NS}}}Envelope":
        raise _Problem("Client.InvalidSoap", f"Malformed SOAP message: root element {root.tag!r}")
    body = root.find(f"{{{SOAP_ENV_NS}}}Body")
    if body is None:
        raise _Problem(
            "Server.ClientProxy.ServiceFailed.MissingBody", "Malformed SOAP message: body missing"
        )
    header = root.find(f"{{{SOAP_ENV_NS}}}Header")
    if header is None:
        raise _Problem("Client.MissingHeaderField", "Required field 'client' is missing")
    fields: dict[str, ET.Element] = {}
    for child in header:
        if child.tag.startswith(f"{{{XROAD_NS}}}"):
            fields.setdefault(child.tag.split("}", 1)[1], child)
    for name in ("client", "service", "id", "protocolVersion"):
        if name not in fields:
            raise _Problem("Client.MissingHeaderField", f"Required field '{name}' is missing")
    version = (fields["protocolVersion"].text or "").strip()
    if not version.startswith("4."):
        raise _Problem("Client.InvalidProtocolVersion", f"Unsupported protocol version {version!r}")
    client = _read_identifier(fields["client"], "client", ("MEMBER", "SUBSYSTEM"))
    service = _read_identifier(fields["service"], "service", ("SERVICE",))
    service_version = fields["service"].findtext(f"{{{ID_NS}}}serviceVersion")
    elements = list(body)
    if not elements:
        raise _Problem("Client.InvalidBody", "The SOAP body is empty")
    code = service[-1]
    if elements[0].tag.rsplit("}", 1)[-1] != code:
        raise _Problem(
            "Client.InvalidBody",
            f"Body element {elements[0].tag!r} does not match service code {code!r} (PR-MESS §2.3)",
        )
    return _SoapRequest(
        header=header,
        body_element=elements[0],
        client=client,
        provider=service[:-1],
        service_code=code,
        service_version=service_version.strip() if service_version else None,
    )


def _soap_response(
    request: Request, soap: _SoapRequest, body_xml: str, prefixes: _Prefixes
) -> Response:
    """The header copied in order (PR-MESS §2.2) plus ``requestHash``, around ``body_xml``."""
    copied = "".join(
        _render(child, prefixes)
        for child in soap.header
        if child.tag != f"{{{XROAD_NS}}}requestHash"
    )
    request_hash = (
        f'<xroad:requestHash algorithmId="{_HASH_URI["sha512"]}">'
        f"{_b64(hashlib.sha512(request.body).digest())}</xroad:requestHash>"
    )
    envelope = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"<SOAP-ENV:Envelope {prefixes.declarations()}>"
        f"<SOAP-ENV:Header>{copied}{request_hash}</SOAP-ENV:Header>"
        f"<SOAP-ENV:Body>{body_xml}</SOAP-ENV:Body></SOAP-ENV:Envelope>\n"
    )
    return Response(200, envelope.encode("utf-8"), content_type=_XML)


# -- the configuration source ----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Snapshot:
    revision: int
    version: int
    stamp: str
    files: dict[str, bytes]
    """``private-params.xml``, ``shared-params.xml`` → their bytes."""


class FakeConfigurationSource:
    """A central server's configuration source (PR-GCONF §2.3–2.7) over a directory.

    Each change of the directory (its :attr:`~XRoadDirectory.revision`) publishes new
    parts under a new ``/V{version}/{stamp}/`` path; the last ``keep`` stay downloadable,
    so a client fetching parts of a directory it just read always gets matching bytes.
    The directory is signed with an RSA key (``rsa-sha512`` or ``rsa-sha256``, following
    ``hash_algorithm``) whose certificate is :attr:`verification_cert_der`.
    """

    def __init__(
        self,
        directory: XRoadDirectory,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        hash_algorithm: HashAlgorithm = "sha512",
        default_version: int = 2,
        keep: int = 5,
        signing_key: rsa.RSAPrivateKey | None = None,
    ) -> None:
        check_loopback(host)
        if default_version not in CONFIGURATION_VERSIONS:
            raise ValueError(f"default_version must be one of {CONFIGURATION_VERSIONS}")
        if hash_algorithm not in _HASH_URI:
            raise ValueError(f"hash_algorithm must be one of {tuple(_HASH_URI)}")
        self.directory = directory
        self.host = host
        self.hash_algorithm: HashAlgorithm = hash_algorithm
        self.default_version = default_version
        self.keep = max(1, keep)
        self.requests: list[RecordedRequest] = []
        self._port = port
        self._key = signing_key or rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self._cert = _signing_certificate(self._key, directory.instance)
        self._snapshots: dict[int, list[_Snapshot]] = {}
        self._files: dict[str, bytes] = {}
        self._seq = 0
        self._status: int | None = None
        self._delay = 0.0
        self._tamper: Literal["hash", "signature"] | None = None
        self._server: HttpServer | None = None

    # -- running -----------------------------------------------------------------------

    async def start(self) -> None:
        if self._server is not None:
            raise RuntimeError("configuration source already started")
        server = HttpServer(
            self._handle, self.host, self._port, server_header="scd-monitor-xroad-simulator"
        )
        await server.start()
        self._server = server

    async def stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            await server.stop()

    async def __aenter__(self) -> FakeConfigurationSource:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    # -- inspecting and steering -------------------------------------------------------

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("the configuration source is not running (start it first)")
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self._server.port}"

    @property
    def internal_url(self) -> str:
        """The signed directory with private and shared parameters."""
        return self.url + "/internalconf"

    @property
    def external_url(self) -> str:
        """The signed directory with the shared parameters only (for federation)."""
        return self.url + "/externalconf"

    @property
    def verification_cert(self) -> x509.Certificate:
        return self._cert

    @property
    def verification_cert_der(self) -> bytes:
        return self._cert.public_bytes(serialization.Encoding.DER)

    @property
    def verification_cert_pem(self) -> bytes:
        return self._cert.public_bytes(serialization.Encoding.PEM)

    def anchor(self, which: Literal["internal", "external"] = "internal") -> bytes:
        """A configuration anchor for this source (PR-GCONF §2.2, Annex E)."""
        url = self.internal_url if which == "internal" else self.external_url
        return (
            f'{_XML_DECLARATION}<tns:configurationAnchor xmlns:tns="{XROAD_NS}">\n'
            f"    <generatedAt>{_iso(self.directory.clock.now())}</generatedAt>\n"
            f"    <instanceIdentifier>{escape(self.directory.instance)}</instanceIdentifier>\n"
            f"    <source>\n        <downloadURL>{escape(url)}</downloadURL>\n"
            f"        <verificationCert>{_b64(self.verification_cert_der)}</verificationCert>\n"
            "    </source>\n</tns:configurationAnchor>\n"
        ).encode()

    def write_anchor(self, path: Path, which: Literal["internal", "external"] = "internal") -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(self.anchor(which))
        return path

    def set_status(self, status: int | None) -> None:
        """Answer every request with this HTTP status (e.g. 503); ``None`` serves normally."""
        if status is not None and not 200 <= status <= 599:
            raise ValueError(f"not an HTTP status: {status}")
        self._status = status
        log.info("simulator.xroad_conf_status_set", status=status)

    def set_delay(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("the delay must be >= 0")
        self._delay = seconds

    def set_tamper(self, what: Literal["hash", "signature"] | None) -> None:
        """Serve a wrong part hash or a broken signature, for clients that must notice."""
        if what not in (None, "hash", "signature"):
            raise ValueError("tamper with 'hash', 'signature' or None")
        self._tamper = what

    def shared_parameters(self, version: int | None = None) -> bytes:
        """The shared-parameters bytes a download would reference now."""
        return self._snapshot(version or self.default_version).files["shared-params.xml"]

    # -- serving -----------------------------------------------------------------------

    async def _handle(self, request: Request, conn: Connection) -> Response:
        self.requests.append(
            RecordedRequest(
                request.method, request.path, request.query, dict(request.headers), request.body
            )
        )
        if self._delay:
            await asyncio.sleep(self._delay)
        if self._status is not None:
            return Response(self._status, f"simulated status {self._status}\n".encode())
        if request.method not in ("GET", "HEAD"):
            return Response(405, b"use GET\n", headers=(("Allow", "GET, HEAD"),))
        if request.path in ("/internalconf", "/externalconf"):
            values = parse_qs(request.query).get("version", [str(self.default_version)])
            try:
                version = int(values[-1])
            except ValueError:
                version = -1
            if version not in CONFIGURATION_VERSIONS:
                return Response(
                    404, f"configuration version {values[-1]} is not available\n".encode()
                )
            return self._signed_directory(version, internal=request.path == "/internalconf")
        body = self._files.get(request.path)
        if body is None:
            return Response(404, b"no such configuration file\n")
        return Response(200, body, content_type="application/octet-stream")

    def _snapshot(self, version: int) -> _Snapshot:
        snapshots = self._snapshots.setdefault(version, [])
        if snapshots and snapshots[-1].revision == self.directory.revision:
            return snapshots[-1]
        self._seq += 1
        now = self.directory.clock.now().astimezone(UTC)
        stamp = f"{now:%Y%m%d%H%M%S}{self._seq:06d}"
        address = self.url.split("://", 1)[1] if self._server is not None else self.host
        files = {
            "private-params.xml": self.directory.private_parameters(),
            "shared-params.xml": self.directory.shared_parameters(
                version=version,
                source_address=address,
                verification_cert=self.verification_cert_der,
            ),
        }
        snapshot = _Snapshot(self.directory.revision, version, stamp, files)
        snapshots.append(snapshot)
        for name, data in files.items():
            self._files[f"/V{version}/{stamp}/{name}"] = data
        while len(snapshots) > self.keep:
            old = snapshots.pop(0)
            for name in old.files:
                self._files.pop(f"/V{version}/{old.stamp}/{name}", None)
        return snapshot

    def _signed_directory(self, version: int, *, internal: bool) -> Response:
        snapshot = self._snapshot(version)
        algorithm = self.hash_algorithm
        now = self.directory.clock.now()
        inner_boundary = f"inner{uuid.uuid4().hex}"
        envelope_boundary = f"envelope{uuid.uuid4().hex}"
        entries = [
            f"--{inner_boundary}\r\n"
            f"Expire-date: {_iso(self.directory.expiry(now))}\r\n"
            f"Version: {version}\r\n\r\n"
        ]
        parts = [("PRIVATE-PARAMETERS", "private-params.xml")] if internal else []
        parts.append(("SHARED-PARAMETERS", "shared-params.xml"))
        for identifier, name in parts:
            data = snapshot.files[name]
            digest = _digest(algorithm, b"tampered" + data if self._tamper == "hash" else data)
            entries.append(
                f"\r\n--{inner_boundary}\r\n"
                "Content-type: application/octet-stream\r\n"
                "Content-transfer-encoding: base64\r\n"
                f'Content-identifier: {identifier}; instance="{self.directory.instance}"\r\n'
                f"Content-location: /V{version}/{snapshot.stamp}/{name}\r\n"
                f"Content-file-name: {name}\r\n"
                f"Hash-algorithm-id: {_HASH_URI[algorithm]}\r\n\r\n"
                f"{_b64(digest)}"
            )
        entries.append(f"\r\n--{inner_boundary}--")
        signed = "".join(entries).encode("ascii")
        signature = self._key.sign(signed, padding.PKCS1v15(), _hash(algorithm))
        if self._tamper == "signature":
            signature = bytes([signature[0] ^ 0xFF]) + signature[1:]
        cert_hash = _b64(_digest(algorithm, self.verification_cert_der))
        body = b"".join(
            [
                (
                    f"--{envelope_boundary}\r\nContent-Type: multipart/mixed; charset=UTF-8; "
                    f"boundary={inner_boundary}\r\n\r\n"
                ).encode("ascii"),
                signed,
                f"\r\n--{envelope_boundary}\r\n"
                "Content-type: application/octet-stream\r\n"
                "Content-transfer-encoding: base64\r\n"
                f"Signature-algorithm-id: {_SIGNATURE_URI[algorithm]}\r\n"
                f"Verification-certificate-hash: {cert_hash}; "
                f'hash-algorithm-id="{_HASH_URI[algorithm]}"\r\n\r\n'
                f"{_b64(signature)}\r\n"
                f"--{envelope_boundary}--\r\n".encode("ascii"),
            ]
        )
        content_type = f"multipart/related; charset=UTF-8; boundary={envelope_boundary}"
        return Response(200, body, content_type=content_type)


def _hash(algorithm: HashAlgorithm) -> hashes.HashAlgorithm:
    return hashes.SHA512() if algorithm == "sha512" else hashes.SHA256()


def _signing_certificate(key: rsa.RSAPrivateKey, instance: str) -> x509.Certificate:
    """A self-signed certificate, a mere container for the public key (PR-GCONF §2.2)."""
    now = datetime.now(UTC)
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "scd-monitor simulator"),
            x509.NameAttribute(NameOID.COMMON_NAME, f"{instance} configuration signing"),
        ]
    )
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=3650))
        .sign(key, hashes.SHA256())
    )


# -- both, and the command-line entry point --------------------------------------------


class XRoadSimulator:
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
    ) -> None:
        self.directory = directory
        self.security_server = FakeSecurityServer(
            directory, host=host, port=ss_port, health_port=health_port, tls=tls, workdir=workdir
        )
        self.configuration_source = FakeConfigurationSource(directory, host=host, port=conf_port)

    async def start(self) -> None:
        await self.security_server.start()
        try:
            await self.configuration_source.start()
        except BaseException:
            await self.security_server.stop()
            raise

    async def stop(self) -> None:
        await self.configuration_source.stop()
        await self.security_server.stop()

    async def __aenter__(self) -> XRoadSimulator:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

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
        }


async def run_xroad_simulator(
    directory: XRoadDirectory,
    *,
    workdir: Path,
    host: str = "127.0.0.1",
    tls: bool = False,
    ss_port: int = 0,
    health_port: int = 0,
    conf_port: int = 0,
    stop: asyncio.Event | None = None,
    on_ready: Callable[[dict[str, Any]], None] | None = None,
) -> None:
    """Serve ``directory`` as a security server and a configuration source until stopped.

    Writes ``workdir/configuration-anchor.xml`` (and, with ``tls``, the CA and a client
    certificate ``xroad-client.crt``/``.key`` for the monitor), then reports one dict
    (URLs and files) to ``on_ready`` or, by default, as one JSON line on stdout. Stops
    when ``stop`` is set or on SIGINT/SIGTERM.
    """
    check_loopback(host)
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    installed: list[signal.Signals] = []
    for signum in (signal.SIGINT, signal.SIGTERM):
        # Not available off the main thread or on Windows; `stop` still works there.
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(signum, stop.set)
            installed.append(signum)
    sim = XRoadSimulator(
        directory,
        host=host,
        tls=tls,
        workdir=workdir,
        ss_port=ss_port,
        health_port=health_port,
        conf_port=conf_port,
    )
    try:
        async with sim:
            ready = {"event": "simulator.xroad_ready", **sim.describe()}
            anchor = sim.configuration_source.write_anchor(workdir / "configuration-anchor.xml")
            ready["anchor"] = str(anchor.resolve())
            if tls:
                cert, key = sim.security_server.issue_client_certificate().write(
                    workdir, "xroad-client"
                )
                ready["ca_file"] = str((workdir / "xroad-ca.crt").resolve())
                ready["client_cert"], ready["client_key"] = str(cert.resolve()), str(key.resolve())
            if on_ready is not None:
                on_ready(ready)
            else:
                print(json.dumps(ready), flush=True)  # the ready line is the interface
            await stop.wait()
    finally:
        for signum in installed:
            loop.remove_signal_handler(signum)
