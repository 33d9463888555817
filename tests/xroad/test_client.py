"""The client against small local servers on 127.0.0.1 that answer with doc-shaped
fixtures; what the servers received is checked with a plain XML parser, not the client's."""

from __future__ import annotations

import asyncio
import hashlib
import re
import ssl
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, get_args

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from defusedxml.ElementTree import fromstring

from scd_monitor.config.types import TlsOptions
from scd_monitor.net.tls import ContextCache
from scd_monitor.probes.base import ErrorKind
from scd_monitor.xroad import (
    CentralServiceId,
    ClientId,
    HealthStatus,
    SecurityServerClient,
    ServiceId,
    XRoadError,
    XRoadProtocolError,
    XRoadStatusError,
    XRoadTransportError,
    check_health,
    fetch_globalconf,
)
from scd_monitor.xroad.errors import FailureKind
from scd_monitor.xroad.identifiers import RefusedEntry
from scd_simulator.certs import CertificateAuthority
from scd_simulator.rawhttp import Connection, HttpServer, Request, Response
from tests.xroad.data import (
    DIRECTORY_CONTENT_TYPE,
    directory_body,
    fixture,
    serve,
    shared_v2,
    signer_certificate,
    url,
)

MONITOR = ClientId("CO", "GOB", "8999990001", "MONITOREO")
PROVIDER = ClientId("CO", "GOB", "8999990002", "CARPETA")
SOAP_ENV = "{http://schemas.xmlsoap.org/soap/envelope/}"
XROAD = "{http://x-road.eu/xsd/xroad.xsd}"
ID = "{http://x-road.eu/xsd/identifiers}"
WSDL_TYPE = 'multipart/related; type="text/xml"; start="<rootpart>"; boundary="MIME_boundary"'

Handle = Callable[[Request], Awaitable[Response | None]]


class Recorder:
    """A handler that remembers every request and answers with ``handle``."""

    def __init__(self, handle: Handle) -> None:
        self.handle = handle
        self.requests: list[Request] = []

    async def __call__(self, request: Request, connection: Connection) -> Response | None:
        self.requests.append(request)
        return await self.handle(request)


def xml(body: bytes, status: int = 200) -> Response:
    return Response(status, body, content_type="text/xml; charset=utf-8")


def client(server_url: str, **options: Any) -> SecurityServerClient:
    return SecurityServerClient(server_url, client_id=MONITOR, timeout=2.0, **options)


def echo_id(request: Request, name: str) -> bytes:
    """The fixture ``name`` with the request's message id in it (a SOAP answer echoes it)."""
    root = fromstring(request.body)
    message_id = root.find(f"{SOAP_ENV}Header/{XROAD}id").text
    return fixture(name).replace(b"{MESSAGE_ID}", message_id.encode())


# -- listClients, listCentralServices --------------------------------------------------


async def test_list_clients_xml() -> None:
    async def handle(request: Request) -> Response:
        assert (request.method, request.path) == ("GET", "/listClients")
        return xml(fixture("listclients.xml"))

    recorder = Recorder(handle)
    async with serve(recorder) as server:
        clients = await client(url(server)).list_clients()
    assert [str(item.id) for item in clients] == [
        "CO/GOB/8999990001",
        "CO/GOB/8999990002",
        "CO/GOB/8999990002/CARPETA",
    ]
    assert clients[2].subsystem_name == "Carpeta Ciudadana"
    (request,) = recorder.requests
    assert request.query == "xRoadInstance=CO"
    assert request.headers["accept"] == "text/xml"


async def test_list_clients_json_of_another_instance() -> None:
    async def handle(request: Request) -> Response:
        return Response(200, fixture("listclients.json"), content_type="application/json")

    recorder = Recorder(handle)
    async with serve(recorder) as server:
        clients = await client(url(server) + "/").list_clients(json=True, instance="CO-QA")
    assert [item.name for item in clients][:1] == ["Agencia Nacional Digital"]
    (request,) = recorder.requests
    assert request.path == "/listClients"
    assert request.query == "xRoadInstance=CO-QA"
    assert request.headers["accept"] == "application/json"


async def test_list_central_services() -> None:
    recorder = Recorder(lambda request: _const(xml(fixture("listcentralservices.xml"))))
    async with serve(recorder) as server:
        services = await client(url(server)).list_central_services()
    assert services == [CentralServiceId("CO", "consultaCedula")]
    assert recorder.requests[0].path == "/listCentralServices"


async def _const(response: Response | None) -> Response | None:
    return response


async def test_list_clients_fault_is_an_x_road_error() -> None:
    fault = fixture("soap-fault.xml").replace(
        b"Server.ServerProxy.ServiceFailed.InternalError", b"Server.ClientProxy.InvalidRequest"
    )
    async with serve(Recorder(lambda request: _const(xml(fault, 500)))) as server:
        with pytest.raises(XRoadError) as caught:
            await client(url(server)).list_clients()
    assert caught.value.side == "consumer"
    assert caught.value.http_status == 500


async def test_hostile_answer_is_a_protocol_error() -> None:
    laughs = (
        b'<!DOCTYPE x [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;">]><x>&b;</x>'
    )
    async with serve(Recorder(lambda request: _const(xml(laughs)))) as server:
        with pytest.raises(XRoadProtocolError, match="document type declaration"):
            await client(url(server)).list_clients()


# -- REST metaservices -----------------------------------------------------------------


@pytest.mark.parametrize("method", ["listMethods", "allowedMethods"])
async def test_rest_method_lists_send_the_client_header(method: str) -> None:
    name = "rest-listmethods.json" if method == "listMethods" else "rest-allowedmethods.json"
    recorder = Recorder(
        lambda request: _const(Response(200, fixture(name), content_type="application/json"))
    )
    async with serve(recorder) as server:
        ss = client(url(server))
        if method == "listMethods":
            entries = await ss.rest_list_methods(PROVIDER)
        else:
            entries = await ss.rest_allowed_methods(PROVIDER)
    assert entries[0].service == ServiceId(PROVIDER, "documentos")
    (request,) = recorder.requests
    assert (request.method, request.path) == ("GET", f"/r1/CO/GOB/8999990002/CARPETA/{method}")
    assert request.headers["x-road-client"] == "CO/GOB/8999990001/MONITOREO"
    assert request.headers["accept"] == "application/json"


async def test_rest_identifiers_are_percent_encoded() -> None:
    provider = ClientId("CO", "GOB", "8999990002", "Carpeta Ciudadana")
    recorder = Recorder(
        lambda request: _const(Response(200, b'{"service": []}', content_type="application/json"))
    )
    async with serve(recorder) as server:
        assert await client(url(server)).rest_list_methods(provider) == []
    assert recorder.requests[0].target == "/r1/CO/GOB/8999990002/Carpeta%20Ciudadana/listMethods"


async def test_get_openapi() -> None:
    recorder = Recorder(
        lambda request: _const(Response(200, fixture("openapi.yaml"), content_type="text/yaml"))
    )
    async with serve(recorder) as server:
        described = await client(url(server)).get_openapi(ServiceId(PROVIDER, "documentos"))
    assert (described.format, described.openapi_version) == ("yaml", "3.0.0")
    (request,) = recorder.requests
    assert request.path == "/r1/CO/GOB/8999990002/CARPETA/getOpenAPI"
    assert request.query == "serviceCode=documentos"
    assert request.headers["x-road-client"] == "CO/GOB/8999990001/MONITOREO"


@pytest.mark.parametrize(
    ("header", "name", "status", "side"),
    [
        ("Server.ServerProxy.DatabaseError", "rest-error-provider.json", 500, "provider"),
        ("Client.BadRequest", "rest-error-client.json", 400, "client"),
    ],
)
async def test_rest_x_road_error_header(header: str, name: str, status: int, side: str) -> None:
    response = Response(
        status,
        fixture(name),
        content_type="application/json;charset=utf-8",
        headers=(("X-Road-Error", header),),
    )
    async with serve(Recorder(lambda request: _const(response))) as server:
        with pytest.raises(XRoadError) as caught:
            await client(url(server)).rest_list_methods(PROVIDER)
    assert (caught.value.code, caught.value.side, caught.value.http_status) == (
        header,
        side,
        status,
    )


async def test_rest_error_without_x_road_error_is_a_status_error() -> None:
    response = Response(502, b"Bad gateway", content_type="text/plain")
    async with serve(Recorder(lambda request: _const(response))) as server:
        with pytest.raises(XRoadStatusError) as caught:
            await client(url(server)).rest_list_methods(PROVIDER)
    assert caught.value.status_code == 502
    assert caught.value.kind == "status"
    assert "Bad gateway" in caught.value.message


# -- SOAP metaservices -----------------------------------------------------------------


def _text(element: Any, path: str) -> str | None:
    found = element.find(path)
    return None if found is None else found.text


@pytest.mark.parametrize("method", ["listMethods", "allowedMethods"])
async def test_soap_method_list_request_has_the_x_road_header(method: str) -> None:
    name = f"soap-{method.lower()}-response.xml"

    async def handle(request: Request) -> Response:
        return xml(echo_id(request, name))

    recorder = Recorder(handle)
    async with serve(recorder) as server:
        ss = client(url(server))
        if method == "listMethods":
            services = await ss.soap_list_methods(PROVIDER, user_id="CO1234567890")
        else:
            services = await ss.soap_allowed_methods(PROVIDER, user_id="CO1234567890")
    assert ServiceId(PROVIDER, "consultarDocumentos", "v1") in services

    (request,) = recorder.requests
    assert (request.method, request.path) == ("POST", "/")
    assert request.headers["content-type"] == "text/xml; charset=utf-8"
    root = fromstring(request.body)
    assert root.tag == f"{SOAP_ENV}Envelope"
    header = root.find(f"{SOAP_ENV}Header")
    client_element = header.find(f"{XROAD}client")
    assert client_element.get(f"{ID}objectType") == "SUBSYSTEM"
    assert [(item.tag, item.text) for item in client_element] == [
        (f"{ID}xRoadInstance", "CO"),
        (f"{ID}memberClass", "GOB"),
        (f"{ID}memberCode", "8999990001"),
        (f"{ID}subsystemCode", "MONITOREO"),
    ]
    service_element = header.find(f"{XROAD}service")
    assert service_element.get(f"{ID}objectType") == "SERVICE"
    assert [(item.tag, item.text) for item in service_element] == [
        (f"{ID}xRoadInstance", "CO"),
        (f"{ID}memberClass", "GOB"),
        (f"{ID}memberCode", "8999990002"),
        (f"{ID}subsystemCode", "CARPETA"),
        (f"{ID}serviceCode", method),
    ]
    assert uuid.UUID(_text(header, f"{XROAD}id") or "")
    assert _text(header, f"{XROAD}protocolVersion") == "4.0"
    assert _text(header, f"{XROAD}userId") == "CO1234567890"
    body = root.find(f"{SOAP_ENV}Body")
    assert [item.tag for item in body] == [f"{XROAD}{method}"]
    assert len(body[0]) == 0


async def test_soap_fault_is_an_x_road_error_with_its_side() -> None:
    async with serve(Recorder(lambda request: _const(xml(fixture("soap-fault.xml"), 500)))) as s:
        with pytest.raises(XRoadError) as caught:
            await client(url(s)).soap_list_methods(PROVIDER)
    error = caught.value
    assert error.code == "Server.ServerProxy.ServiceFailed.InternalError"
    assert error.side == "provider"
    assert error.detail == "6d8f0c2a-47a1-4e55-9c8b-0f1d2e3a4b5c"
    assert error.http_status == 500


async def test_soap_non_envelope_error_page_is_a_status_error() -> None:
    page = Response(503, b"<html><body>down</body></html>", content_type="text/html")
    async with serve(Recorder(lambda request: _const(page))) as server:
        with pytest.raises(XRoadStatusError) as caught:
            await client(url(server)).soap_list_methods(PROVIDER)
    assert caught.value.status_code == 503


async def test_get_wsdl() -> None:
    async def handle(request: Request) -> Response:
        root = fromstring(request.body)
        wrapper = root.find(f"{SOAP_ENV}Body/{XROAD}getWsdl")
        assert [(item.tag, item.text) for item in wrapper] == [
            (f"{XROAD}serviceCode", "consultarDocumentos"),
            (f"{XROAD}serviceVersion", "v1"),
        ]
        service = root.find(f"{SOAP_ENV}Header/{XROAD}service/{ID}serviceCode")
        assert service.text == "getWsdl"
        return Response(200, echo_id(request, "getwsdl-response.mime"), content_type=WSDL_TYPE)

    async with serve(Recorder(handle)) as server:
        wsdl = await client(url(server)).get_wsdl(ServiceId(PROVIDER, "consultarDocumentos", "v1"))
    assert fromstring(wsdl).get("name") == "carpetaService"


# -- health ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (200, HealthStatus.HEALTHY),
        (500, HealthStatus.UNHEALTHY),
        (503, HealthStatus.MAINTENANCE),
        (404, HealthStatus.UNEXPECTED),
    ],
)
async def test_health(status: int, expected: HealthStatus) -> None:
    body = b"Fetching health check response timed out for: Authentication key OCSP status"
    async with serve(Recorder(lambda request: _const(Response(status, body)))) as server:
        report = await client(url(server)).health(url(server, "/"))
        standalone = await check_health(url(server, "/"), timeout=2.0)
    assert report.status is expected
    assert report.status_code == status
    assert report.message.startswith("Fetching health check response")
    assert standalone == report


async def test_health_of_a_closed_port_is_a_connect_error() -> None:
    async with serve(Recorder(lambda request: _const(Response(200)))) as server:
        closed = url(server, "/")
    with pytest.raises(XRoadTransportError) as caught:
        await check_health(closed, timeout=2.0)
    assert caught.value.kind == "connect"


async def test_health_body_is_truncated_not_refused() -> None:
    async with serve(Recorder(lambda request: _const(Response(200, b"x" * 200_000)))) as server:
        report = await check_health(url(server), timeout=2.0)
    assert report.status is HealthStatus.HEALTHY


# -- limits and failures ---------------------------------------------------------------


async def test_timeout_is_a_transport_error() -> None:
    async def hang(request: Request) -> Response:
        await asyncio.sleep(30)
        return Response(200)

    async with serve(Recorder(hang)) as server:
        ss = SecurityServerClient(url(server), client_id=MONITOR, timeout=0.3)
        with pytest.raises(XRoadTransportError) as caught:
            await ss.list_clients()
    assert caught.value.kind == "timeout"
    assert "listClients" in caught.value.message


async def test_answer_over_the_limit_is_refused_on_content_length() -> None:
    big = fixture("listclients.xml") * 10
    async with serve(Recorder(lambda request: _const(xml(big)))) as server:
        ss = client(url(server), max_bytes=1000)
        with pytest.raises(XRoadProtocolError) as caught:
            await ss.list_clients()
    assert caught.value.kind == "too_large"
    assert f"Content-Length {len(big)} is over the limit of 1000 bytes" in caught.value.message


async def test_answer_over_the_limit_without_content_length_stops_reading() -> None:
    async def flood(request: Request, connection: Connection) -> None:
        connection.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/xml\r\nConnection: close\r\n\r\n")
        for _ in range(100):
            connection.write(b"<a>" * 1000)
            await asyncio.sleep(0)
        connection.close()

    async with serve(flood) as server:
        with pytest.raises(XRoadProtocolError) as caught:
            await client(url(server), max_bytes=10_000).list_clients()
    assert caught.value.kind == "too_large"
    assert "stopped reading" in caught.value.message


async def test_connection_cut_mid_answer() -> None:
    async def cut(request: Request, connection: Connection) -> None:
        connection.write(b"HTTP/1.1 200 OK\r\nContent-Length: 5000\r\n\r\n<ns2:clientList")
        connection.close()

    async with serve(cut) as server:
        with pytest.raises(XRoadTransportError) as caught:
            await client(url(server)).list_clients()
    assert caught.value.kind == "protocol"


def test_failure_kinds_are_error_kinds() -> None:
    assert {ErrorKind(kind) for kind in get_args(FailureKind)} <= set(ErrorKind)


def test_base_url_must_be_http() -> None:
    with pytest.raises(ValueError, match="http"):
        SecurityServerClient("ftp://ss", client_id=MONITOR)


# -- TLS -------------------------------------------------------------------------------


async def test_mutual_tls(tmp_path: Path) -> None:
    ca = CertificateAuthority()
    server_pair = ca.issue(["127.0.0.1"])
    client_pair = ca.issue(["monitor"], client=True)
    cert, key = server_pair.write(tmp_path, "server")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    context.verify_mode = ssl.CERT_REQUIRED
    context.load_verify_locations(cadata=ca.cert_pem.decode())
    client_cert, client_key = client_pair.write(tmp_path, "client")
    ca_file = ca.write_cert(tmp_path / "ca.pem")

    recorder = Recorder(lambda request: _const(xml(fixture("listclients.xml"))))
    async with HttpServer(recorder, "127.0.0.1", 0, ssl_context=context) as server:
        base = f"https://127.0.0.1:{server.port}"
        tls = TlsOptions(ca_file=ca_file, client_cert=client_cert, client_key=client_key)
        contexts = ContextCache()
        ss = SecurityServerClient(base, client_id=MONITOR, tls=tls, contexts=contexts, timeout=5)
        assert len(await ss.list_clients()) == 3
        assert len(contexts) == 1

        untrusting = SecurityServerClient(base, client_id=MONITOR, timeout=5)  # certifi only
        with pytest.raises(XRoadTransportError) as caught:
            await untrusting.list_clients()
        assert caught.value.kind == "tls"

        missing = TlsOptions(ca_file=ca_file, client_cert=tmp_path / "nope.pem")
        broken = SecurityServerClient(base, client_id=MONITOR, tls=missing, timeout=5)
        with pytest.raises(XRoadTransportError) as caught:
            await broken.list_clients()
        assert caught.value.kind == "internal"


# -- global configuration --------------------------------------------------------------


class ConfigurationSource:
    """Serves a directory at ``/internalconf`` and the files it lists."""

    def __init__(self, files: dict[str, bytes], listed: list[tuple[str, str, str, bytes]]):
        self.files = files
        self.body, self.signed = directory_body(listed, expire_date="2030-01-01T00:00:00Z")
        self.requests: list[Request] = []

    async def __call__(self, request: Request, connection: Connection) -> Response:
        self.requests.append(request)
        if request.path == "/internalconf":
            return Response(200, self.body, content_type=DIRECTORY_CONTENT_TYPE)
        if request.path in self.files:
            return Response(200, self.files[request.path], content_type="application/octet-stream")
        return Response(404, b"not found")


class FixedClock:
    def __init__(self, now: datetime) -> None:
        self._now = now

    def now(self) -> datetime:
        return self._now

    def monotonic(self) -> float:
        return 0.0


def _source(private: bytes | None = None, **overrides: bytes) -> ConfigurationSource:
    v2 = shared_v2()
    v5 = fixture("shared-params-v5.xml")
    private = fixture("private-params-xroad-ee.xml") if private is None else private
    files = {
        "/V2/20300101/private-params.xml": private,
        "/V2/20300101/shared-params.xml": v2,
        "/V2/20300101/shared-params-co.xml": v5,
    }
    files.update({f"/V2/20300101/{name}": body for name, body in overrides.items()})
    return ConfigurationSource(
        files,
        [
            ("PRIVATE-PARAMETERS", "EE", "/V2/20300101/private-params.xml", private),
            ("SHARED-PARAMETERS", "DEV", "/V2/20300101/shared-params.xml", v2),
            ("SHARED-PARAMETERS", "CO", "V2/20300101/shared-params-co.xml", v5),
        ],
    )


async def test_fetch_globalconf() -> None:
    source = _source()
    now = datetime(2029, 12, 31, 23, 0, tzinfo=UTC)
    async with serve(source) as server:
        conf = await fetch_globalconf(
            url(server, "/internalconf"), timeout=5.0, version=2, clock=FixedClock(now)
        )
    assert conf.expires_at == datetime(2030, 1, 1, tzinfo=UTC)
    assert conf.version == 2
    assert conf.fetched_at == now
    assert conf.is_fresh(now)
    assert conf.expires_in(now) == timedelta(hours=1)
    assert not conf.signature_verified
    assert [shared.instance for shared in conf.shared] == ["DEV", "CO"]
    dev = conf.instance("DEV")
    assert dev is not None
    assert [server.server_code for server in dev.security_servers] == ["ss1", "ss2"]
    # The private parameters of an internal configuration (X-Road's own test data).
    private = conf.private_of("EE")
    assert private is not None and private.management_service is not None
    assert private.management_service.auth_cert_reg_service_address == "http://mgmt.com:1234"
    assert [a.instance for a in private.federated_anchors] == ["bar"]
    paths = [(request.path, request.query) for request in source.requests]
    assert paths == [
        ("/internalconf", "version=2"),
        ("/V2/20300101/shared-params.xml", ""),
        ("/V2/20300101/shared-params-co.xml", ""),  # relative location, resolved
        ("/V2/20300101/private-params.xml", ""),
    ]


async def test_private_parameters_that_cannot_be_read_are_left_out_and_said() -> None:
    refused: list[RefusedEntry] = []
    async with serve(_source(private=b"<private/>")) as server:
        conf = await fetch_globalconf(url(server, "/internalconf"), timeout=5.0, refused=refused)
    assert [shared.instance for shared in conf.shared] == ["DEV", "CO"]
    assert conf.private == ()
    assert [(r.subject, r.where) for r in refused] == [
        ("/V2/20300101/private-params.xml", "private parameters /V2/20300101/private-params.xml")
    ]


async def test_tampered_private_parameters_fail_like_shared_ones() -> None:
    source = _source()
    source.files["/V2/20300101/private-params.xml"] = fixture(
        "private-params-xroad-ee.xml"
    ).replace(b"mgmt.com", b"evil.example")
    async with serve(source) as server:
        with pytest.raises(XRoadProtocolError, match="does not match the directory's"):
            await fetch_globalconf(url(server, "/internalconf"), timeout=5.0)


async def test_fetch_globalconf_of_one_instance() -> None:
    async with serve(_source()) as server:
        conf = await fetch_globalconf(url(server, "/internalconf"), instance="CO", timeout=5.0)
        assert [shared.instance for shared in conf.shared] == ["CO"]
        with pytest.raises(XRoadProtocolError, match="lists no SHARED-PARAMETERS for instance X"):
            await fetch_globalconf(url(server, "/internalconf"), instance="X", timeout=5.0)


async def test_fetch_globalconf_detects_a_tampered_file() -> None:
    tampered = shared_v2().replace(b"x-road-ss-test", b"evil.example")
    async with serve(_source(**{"shared-params.xml": tampered})) as server:
        with pytest.raises(XRoadProtocolError, match="does not match the directory's sha512"):
            await fetch_globalconf(url(server, "/internalconf"), timeout=5.0)


async def test_fetch_globalconf_missing_file_and_missing_directory() -> None:
    source = _source()
    del source.files["/V2/20300101/shared-params.xml"]
    async with serve(source) as server:
        with pytest.raises(XRoadStatusError) as caught:
            await fetch_globalconf(url(server, "/internalconf"), timeout=5.0)
        assert caught.value.status_code == 404
        with pytest.raises(XRoadStatusError, match="configuration directory: HTTP 404"):
            await fetch_globalconf(url(server, "/other"), timeout=5.0)


async def test_fetch_globalconf_refuses_another_origin() -> None:
    source = ConfigurationSource(
        {}, [("SHARED-PARAMETERS", "CO", "http://169.254.169.254/latest/meta-data", b"x")]
    )
    async with serve(source) as server:
        with pytest.raises(XRoadProtocolError, match="points to another origin"):
            await fetch_globalconf(url(server, "/internalconf"), timeout=5.0)
    assert [request.path for request in source.requests] == ["/internalconf"]


async def test_fetch_globalconf_verifies_the_signature() -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    cert = signer_certificate(key)
    der = cert.public_bytes(serialization.Encoding.DER)
    source = _source(private=b"<private/>")
    signature = key.sign(source.signed, padding.PKCS1v15(), hashes.SHA512())
    v2 = shared_v2()
    v5 = fixture("shared-params-v5.xml")
    source.body, _ = directory_body(
        [
            ("PRIVATE-PARAMETERS", "EE", "/V2/20300101/private-params.xml", b"<private/>"),
            ("SHARED-PARAMETERS", "DEV", "/V2/20300101/shared-params.xml", v2),
            ("SHARED-PARAMETERS", "CO", "V2/20300101/shared-params-co.xml", v5),
        ],
        signature=signature,
        cert_hash=hashlib.sha512(der).digest(),
    )
    async with serve(source) as server:
        conf = await fetch_globalconf(
            url(server, "/internalconf"), timeout=5.0, verification_certs=[der]
        )
        assert conf.signature_verified
        other = signer_certificate(rsa.generate_private_key(public_exponent=65537, key_size=2048))
        with pytest.raises(XRoadProtocolError, match="not among the anchor's"):
            await fetch_globalconf(
                url(server, "/internalconf"),
                timeout=5.0,
                verification_certs=[other.public_bytes(serialization.Encoding.DER)],
            )


async def test_fetch_globalconf_timeout_bounds_the_whole_download() -> None:
    source = _source()

    async def slow(request: Request, connection: Connection) -> Response:
        if request.path != "/internalconf":
            await asyncio.sleep(30)
        return await source(request, connection)

    async with serve(slow) as server:
        with pytest.raises(XRoadTransportError) as caught:
            await fetch_globalconf(url(server, "/internalconf"), timeout=0.5)
    assert caught.value.kind == "timeout"
    assert re.search(r"shared parameters .*within", caught.value.message)
