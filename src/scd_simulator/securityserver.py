"""A fake X-Road security server on loopback: metaservices (SOAP and REST), a health check.

It answers from an :class:`~scd_simulator.directory.XRoadDirectory`, shaped as the X-Road
protocol documents say; :class:`FakeSecurityServer` lists what it serves.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import ssl
import tempfile
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, cast, get_args
from urllib.parse import parse_qs, unquote
from xml.sax.saxutils import escape, quoteattr

import structlog
import yaml

from scd_simulator.certs import CertificateAuthority, KeyPair
from scd_simulator.directory import (
    HASH_URI,
    ID_NS,
    ID_PART,
    XML_DECLARATION,
    XROAD_NS,
    FakeMember,
    FakeService,
    FakeSubsystem,
    XRoadDirectory,
    b64,
    parse_xml,
)
from scd_simulator.net import CERT_HOSTS, Lifecycle, base_url, check_loopback, start_all
from scd_simulator.opmon import (
    HEALTH_DATA,
    OPMON_NS,
    OPMON_SERVICES,
    OpMonData,
    OpMonFault,
    multipart_related,
)
from scd_simulator.rawhttp import Connection, HttpServer, Request, Response, json_response

__all__ = ["MAX_SOAP_BYTES", "METASERVICES", "FakeSecurityServer", "Metaservice"]

log = structlog.get_logger()

SOAP_ENV_NS = "http://schemas.xmlsoap.org/soap/envelope/"
WSDL_NS = "http://schemas.xmlsoap.org/wsdl/"
WSDL_SOAP_NS = "http://schemas.xmlsoap.org/wsdl/soap/"
XSD_NS = "http://www.w3.org/2001/XMLSchema"
_XML_NS = "http://www.w3.org/XML/1998/namespace"

WSDL_ENDPOINT = "http://example.org/xroad-endpoint"
"""Where every served WSDL points (PR-META §4, "WSDL-information modifications")."""

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

_REST_META = ("listMethods", "allowedMethods", "getOpenAPI")
_SOAP_META = ("listMethods", "allowedMethods", "getWsdl")
_XML = "text/xml;charset=UTF-8"
_JSON = "application/json;charset=utf-8"
MAX_SOAP_BYTES = 256 * 1024
"""Largest SOAP request parsed (the HTTP server already caps bodies at 1 MiB)."""


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


def _rest_error(code: str, message: str) -> Response:
    """An X-Road REST error (PR-REST §4.6): JSON body and the ``X-Road-Error`` header."""
    status = 400 if code.startswith("Client.") else 500
    payload = {"type": code, "message": message, "detail": str(uuid.uuid4())}
    return json_response(status, payload, content_type=_JSON, headers=(("X-Road-Error", code),))


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


class FakeSecurityServer(Lifecycle):
    """A fake X-Road security server: metaservices over an :class:`XRoadDirectory`.

    ``async with FakeSecurityServer(directory) as ss:`` binds the service listener (plain
    HTTP, or HTTPS with ``tls=True``; with ``require_client_cert`` the client must present a
    certificate from :attr:`ca`, as in the security server's HTTPS-with-authentication
    mode) and a plain health-check listener. ``ca`` defaults to a fresh CA; certificates
    are written to ``workdir`` when given, else to a temporary directory that is removed.
    :attr:`requests` keeps the requests received (with ``record``).

    The Interoperabilidad platform of the SCD runs on X-Road; this and
    :class:`~scd_simulator.confsource.FakeConfigurationSource` play the two X-Road parts a
    monitor talks to, over one mutable in-memory :class:`XRoadDirectory`::

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
        ``{code}Response``. ``getSecurityServerOperationalData`` and
        ``getSecurityServerHealthData`` (PR-OPMON §2, §3; the provider is a member: the
        server's owner) are answered from :attr:`opmon` (:mod:`scd_simulator.opmon`).
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

    Simplified against real X-Road: one X-Road instance (other ``xRoadInstance`` values list
    nothing); no member-level services; ``allowed`` applies to every client alike; the
    security server answers for every provider itself (no provider security server, no
    message transport, no signatures or timestamps on messages); SOAP requests with
    attachments are refused; REST errors are always JSON; ``X-Road-Request-Hash`` is computed
    over a canonical form of the request, not the real one.
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
        opmon: OpMonData | None = None,
    ) -> None:
        check_loopback(host)
        self.directory = directory
        self.opmon = opmon if opmon is not None else OpMonData(directory)
        """What ``getSecurityServerOperationalData`` / ``getSecurityServerHealthData`` answer."""
        self.host = host
        self.tls = tls
        self.require_client_cert = require_client_cert
        self.ca = ca or (CertificateAuthority("scd-monitor X-Road simulator CA") if tls else None)
        self.workdir = workdir
        self.list_central_services = list_central_services
        self.record = record
        self.requests: list[Request] = []
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
        await start_all([server, health])
        self._server, self._health_server = server, health

    async def stop(self) -> None:
        servers = [s for s in (self._server, self._health_server) if s is not None]
        self._server = self._health_server = None
        for server in servers:
            await server.stop()

    def _ssl_context(self) -> ssl.SSLContext:
        assert self.ca is not None
        pair = self.ca.issue(CERT_HOSTS)
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
        return base_url(scheme, self.host, server.port)

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
            self.requests.append(request)
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
            return json_response(200, {"member": _clients_json(clients)}, content_type=_JSON)
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
            f'{XML_DECLARATION}<ns2:centralServiceList xmlns:ns1="{ID_NS}" xmlns:ns2="{XROAD_NS}">'
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
        if not all(ID_PART.match(part) for part in (*provider, what)):
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
            return json_response(200, {"service": listed}, content_type=_JSON, headers=headers)
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
        _, service, _ = _find_service(sub, provider, codes[0])
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
            return json_response(200, document, content_type=_JSON, headers=headers)
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
        sub, service, service_id = _find_service(sub, provider, code)
        if not service.is_rest:
            raise _Problem(
                "Server.ServerProxy.InvalidServiceType",
                f"Service '{service_id}' is a SOAP service; call it with a SOAP message",
            )
        _check_allowed(sub, code, service_id)
        payload = {"status": "UP", "service": service_id, "method": request.method, "path": path}
        return json_response(200, payload, content_type=_JSON, headers=headers)

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
        if code in OPMON_SERVICES:
            return self._opmon_answer(request, soap, prefixes)
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
        sub, service, service_id = _find_service(sub, soap.provider, code, soap.service_version)
        if service.kind != "WSDL":
            raise _Problem(
                "Server.ServerProxy.InvalidServiceType",
                f"Service '{service_id}' is a {service.kind} service; call it over /r1",
            )
        _check_allowed(sub, code, service_id)
        name = prefixes.qname(soap.body_element.tag) + "Response"
        return _soap_response(request, soap, f"<{name}/>", prefixes)

    def _opmon_answer(self, request: Request, soap: _SoapRequest, prefixes: _Prefixes) -> Response:
        """Operational monitoring (PR-OPMON §2, §3), answered from :attr:`opmon`."""
        prefixes.by_ns[OPMON_NS] = "om"
        try:
            if soap.service_code == HEALTH_DATA:
                body = self.opmon.health_data_answer(soap.body_element)
                return _soap_response(request, soap, body, prefixes)
            body, attachment = self.opmon.operational_data_answer(soap.body_element)
        except OpMonFault as fault:
            raise _Problem(fault.code, fault.message) from None
        soap_part = _soap_response(request, soap, body, prefixes).body
        multipart, content_type = multipart_related(soap_part, attachment)
        return Response(200, multipart, content_type=content_type)

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
        sub, service, service_id = _find_service(sub, soap.provider, code, version)
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


def _find_service(
    sub: FakeSubsystem | None, provider: tuple[str, ...], code: str, version: str | None = None
) -> tuple[FakeSubsystem, FakeService, str]:
    """The provider's service ``code`` (``version`` when given) and the service's id."""
    service = None if sub is None else sub.find(code, version)
    service_id = "/".join((*provider, code))
    if service is None or sub is None:
        raise _Problem("Server.ServerProxy.UnknownService", f"Unknown service '{service_id}'")
    return sub, service, service_id


def _check_allowed(sub: FakeSubsystem, code: str, service_id: str) -> None:
    if not sub.may_use(code):
        raise _Problem("Server.ServerProxy.AccessDenied", f"Request is not allowed: '{service_id}'")


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
    if not all(ID_PART.match(p) for p in parts):
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
        ("X-Road-Request-Hash", b64(hashlib.sha512(inner).digest())),
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
    out = [f'{XML_DECLARATION}<ns2:clientList xmlns:ns1="{ID_NS}" xmlns:ns2="{XROAD_NS}">\n']
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
        if not ID_PART.match(value.strip()):
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
        root = parse_xml(request.body)
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
        f'<xroad:requestHash algorithmId="{HASH_URI["sha512"]}">'
        f"{b64(hashlib.sha512(request.body).digest())}</xroad:requestHash>"
    )
    envelope = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"<SOAP-ENV:Envelope {prefixes.declarations()}>"
        f"<SOAP-ENV:Header>{copied}{request_hash}</SOAP-ENV:Header>"
        f"<SOAP-ENV:Body>{body_xml}</SOAP-ENV:Body></SOAP-ENV:Envelope>\n"
    )
    return Response(200, envelope.encode("utf-8"), content_type=_XML)
