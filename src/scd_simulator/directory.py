"""The simulated X-Road world: members, subsystems, services and security servers.

One mutable :class:`XRoadDirectory` that the fake security server and configuration
source read when they answer, plus the X-Road vocabulary they share (namespaces,
identifiers, XML parsing, the shared- and private-parameters documents).
"""

from __future__ import annotations

import base64
import hashlib
import random
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Literal, TypeVar, get_args
from xml.sax.saxutils import escape

# No stubs for defusedxml; the second code keeps this line quiet if they get installed.
from defusedxml.ElementTree import (  # type: ignore[import-untyped, unused-ignore]
    fromstring as _defused_fromstring,
)

from scd_monitor.clock import Clock, SystemClock

__all__ = [
    "CONFIGURATION_VERSIONS",
    "FakeMember",
    "FakeService",
    "FakeSubsystem",
    "HashAlgorithm",
    "SecurityServerEntry",
    "ServiceKind",
    "XRoadDirectory",
]

XROAD_NS = "http://x-road.eu/xsd/xroad.xsd"
ID_NS = "http://x-road.eu/xsd/identifiers"
XML_DECLARATION = '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
ID_PART = re.compile(r"^[A-Za-z0-9'()+,\-.=?]+$")
"""Characters allowed in X-Road identifiers (PR-REST §4.8, PR-MESS §2.7)."""

ServiceKind = Literal["REST", "OPENAPI", "WSDL"]
HashAlgorithm = Literal["sha256", "sha512"]
HASH_URI: dict[HashAlgorithm, str] = {
    "sha256": "http://www.w3.org/2001/04/xmlenc#sha256",
    "sha512": "http://www.w3.org/2001/04/xmlenc#sha512",
}
"""Digest algorithm identifiers (XML Encryption) of global configuration and messages."""
CONFIGURATION_VERSIONS = (2, 3)
"""Global configuration versions the source can serve (PR-GCONF §2.7, Annex B)."""

_SERVICE_KINDS: tuple[ServiceKind, ...] = get_args(ServiceKind)
_T = TypeVar("_T")


def check_code(value: str, what: str) -> str:
    """``value`` if it is a valid X-Road identifier part, else ``ValueError``."""
    if not isinstance(value, str) or not ID_PART.match(value):
        raise ValueError(
            f"{what} {value!r}: X-Road identifiers use only letters, digits and '()+,-.=? "
            "(PR-REST §4.8)"
        )
    return value


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _lookup(table: Mapping[str, _T], key: str, what: str) -> _T:
    try:
        return table[key]
    except KeyError:
        raise KeyError(f"unknown {what} {key!r}") from None


def parse_xml(data: bytes) -> ET.Element:
    """Parse untrusted XML: no DTDs, no entities, bounded size."""
    if len(data) > 16 * 1024 * 1024:
        raise ValueError("XML document too large")
    root: ET.Element = _defused_fromstring(data, forbid_dtd=True)
    return root


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
        check_code(self.code, "service code")
        if self.version is not None:
            check_code(self.version, "service version")
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
        check_code(self.instance, "instance")
        check_code(self.member_class, "member class")
        check_code(self.member_code, "member code")
        check_code(self.subsystem_code, "subsystem code")

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
        self.instance = check_code(instance, "instance")
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
        return _lookup(self._members, member_id, "member")

    def subsystem(self, subsystem_id: str) -> FakeSubsystem:
        return _lookup(self._subsystems, subsystem_id, "subsystem")

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
        check_code(member_class, "member class")
        check_code(member_code, "member code")
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
        check_code(server_code, "server code")
        clients = list(clients)
        for client in clients:
            if client not in self._subsystems and client not in self._members:
                raise KeyError(f"unknown client {client!r}")
        entry = SecurityServerEntry(
            owner=owner,
            server_code=server_code,
            address=address or f"{server_code.lower()}.{owner.split('/')[2]}.invalid",
            clients=clients,
            auth_cert_hash=b64(hashlib.sha1(f"{owner}/{server_code}".encode()).digest()),  # noqa: S324  # a placeholder like the real SHA-1 auth cert hash, not security
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
        return _lookup(self._servers, server_id, "security server")

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
        root = parse_xml(data)
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
            XML_DECLARATION,
            f'<ns3:conf xmlns:ns2="{ID_NS}" xmlns:ns3="{XROAD_NS}">\n',
            f"    <instanceIdentifier>{escape(self.instance)}</instanceIdentifier>\n",
        ]
        if version >= 3:
            cert = b64(verification_cert)
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
            f"{XML_DECLARATION}"
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
