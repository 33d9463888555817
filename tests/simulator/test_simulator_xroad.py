"""The fake X-Road (security server metaservices, configuration source) over real HTTP.

Answers are checked with the stdlib against the shapes of the X-Road protocol documents
(PR-META, PR-MREST, PR-REST, PR-MESS, PR-GCONF), not with the project's own X-Road client.
"""

from __future__ import annotations

import asyncio
import base64
import email
import email.policy
import hashlib
import json
import ssl
import time
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from email.message import Message
from pathlib import Path

import httpx
import pytest
import yaml
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

# No stubs for defusedxml; the second code keeps this line quiet if they get installed.
from defusedxml.ElementTree import (  # type: ignore[import-untyped, unused-ignore]
    fromstring as defused_fromstring,
)

from scd_simulator.cli import run_xroad_simulator
from scd_simulator.confsource import DIRECTORY_SHAPES, DirectoryShape, FakeConfigurationSource
from scd_simulator.directory import FakeService, XRoadDirectory
from scd_simulator.securityserver import FakeSecurityServer

SHARED_PARAMS_SAMPLE = Path(__file__).parent / "xroad_sim_fixtures" / "shared-params-v2.xml"

XRD = "{http://x-road.eu/xsd/xroad.xsd}"
IDN = "{http://x-road.eu/xsd/identifiers}"
SOAP = "{http://schemas.xmlsoap.org/soap/envelope/}"
SHA512_URI = "http://www.w3.org/2001/04/xmlenc#sha512"

CARPETA = "CO/GOB/899999001/CARPETA"
AUTH = "CO/GOB/899999002/AUTENTICACION"
MONITOR = "CO/GOB/899999003/MONITOREO"


def parse_xml(data: bytes | str) -> ET.Element:
    """Parse an answer like a careful client would: no DTDs, no entities."""
    root: ET.Element = defused_fromstring(data, forbid_dtd=True)
    return root


def small_directory() -> XRoadDirectory:
    directory = XRoadDirectory()
    directory.add_subsystem(
        "GOB",
        "899999001",
        "CARPETA",
        name="Ministerio TIC",
        subsystem_name="Carpeta Ciudadana",
        services=[
            FakeService("documentos", kind="OPENAPI", endpoints=(("GET", "/documentos"),)),
            FakeService("health"),
            FakeService("radicar", version="v1", kind="WSDL"),
            FakeService("consultarRadicado", version="v1", kind="WSDL"),
        ],
        allowed={"documentos", "radicar"},
    )
    directory.add_subsystem("GOB", "899999002", "AUTENTICACION", name="Registraduría")
    directory.add_subsystem("GOB", "899999003", "MONITOREO", name="Monitor SCD")
    directory.add_security_server("CO/GOB/899999001", "ss1", clients=[CARPETA, AUTH, MONITOR])
    return directory


@pytest.fixture
def directory() -> XRoadDirectory:
    return small_directory()


@pytest.fixture
async def ss(directory: XRoadDirectory) -> AsyncIterator[FakeSecurityServer]:
    async with FakeSecurityServer(directory) as server:
        yield server


@pytest.fixture(scope="module")
def signing_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture
async def cs(
    directory: XRoadDirectory, signing_key: rsa.RSAPrivateKey
) -> AsyncIterator[FakeConfigurationSource]:
    async with FakeConfigurationSource(directory, signing_key=signing_key) as source:
        yield source


def http(base_url: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=base_url, timeout=5.0, trust_env=False)


def soap_envelope(
    service_code: str,
    *,
    provider: str = CARPETA,
    client: str = MONITOR,
    body: str | None = None,
    protocol: str = "4.0",
    service_version: str | None = None,
) -> bytes:
    """A request shaped like PR-META C.2 / PR-MESS E.1."""
    inst, cls, member, sub = client.split("/")
    p_inst, p_cls, p_member, p_sub = provider.split("/")
    version = f"<id:serviceVersion>{service_version}</id:serviceVersion>" if service_version else ""
    return f"""<?xml version="1.0" encoding="utf-8"?>
<SOAP-ENV:Envelope xmlns:SOAP-ENV="http://schemas.xmlsoap.org/soap/envelope/"
        xmlns:xroad="http://x-road.eu/xsd/xroad.xsd" xmlns:id="http://x-road.eu/xsd/identifiers">
    <SOAP-ENV:Header>
        <xroad:client id:objectType="SUBSYSTEM">
            <id:xRoadInstance>{inst}</id:xRoadInstance><id:memberClass>{cls}</id:memberClass>
            <id:memberCode>{member}</id:memberCode><id:subsystemCode>{sub}</id:subsystemCode>
        </xroad:client>
        <xroad:service id:objectType="SERVICE">
            <id:xRoadInstance>{p_inst}</id:xRoadInstance><id:memberClass>{p_cls}</id:memberClass>
            <id:memberCode>{p_member}</id:memberCode><id:subsystemCode>{p_sub}</id:subsystemCode>
            <id:serviceCode>{service_code}</id:serviceCode>{version}
        </xroad:service>
        <xroad:userId>CO1234567890</xroad:userId>
        <xroad:id>411d6755661409fed365ad8135f8210be07613da</xroad:id>
        <xroad:protocolVersion>{protocol}</xroad:protocolVersion>
    </SOAP-ENV:Header>
    <SOAP-ENV:Body>{body if body is not None else f"<xroad:{service_code}/>"}</SOAP-ENV:Body>
</SOAP-ENV:Envelope>""".encode()


async def post_soap(server: FakeSecurityServer, payload: bytes) -> httpx.Response:
    async with http(server.url) as client:
        return await client.post(
            "/", content=payload, headers={"Content-Type": "text/xml; charset=utf-8"}
        )


def fault_code(response: httpx.Response) -> str:
    root = parse_xml(response.content)
    fault = root.find(f"{SOAP}Body/{SOAP}Fault")
    assert fault is not None, response.text
    assert fault.findtext("faultstring")
    assert fault.find("detail/faultDetail") is not None
    return fault.findtext("faultcode") or ""


def service_codes(parent: ET.Element) -> list[str]:
    return [s.findtext(f"{IDN}serviceCode") or "" for s in parent.findall(f"{XRD}service")]


# -- listClients (PR-META §2, C.1) -----------------------------------------------------


async def test_list_clients_xml_has_the_pr_meta_shape(ss: FakeSecurityServer) -> None:
    async with http(ss.url) as client:
        response = await client.get("/listClients")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/xml")
    root = parse_xml(response.content)
    assert root.tag == f"{XRD}clientList"
    members = root.findall(f"{XRD}member")
    assert len(members) == 6  # three members, each with one subsystem
    kinds = [m.find(f"{XRD}id").get(f"{IDN}objectType") for m in members]  # type: ignore[union-attr]
    assert kinds == ["MEMBER", "SUBSYSTEM"] * 3
    carpeta = members[1]
    ident = carpeta.find(f"{XRD}id")
    assert ident is not None
    assert [child.tag for child in ident] == [
        f"{IDN}xRoadInstance",
        f"{IDN}memberClass",
        f"{IDN}memberCode",
        f"{IDN}subsystemCode",
    ]
    assert ident.findtext(f"{IDN}subsystemCode") == "CARPETA"
    assert carpeta.findtext(f"{XRD}name") == "Ministerio TIC"
    assert carpeta.findtext(f"{XRD}subsystemName") == "Carpeta Ciudadana"
    assert members[3].find(f"{XRD}subsystemName") is None


async def test_list_clients_json_on_accept(ss: FakeSecurityServer) -> None:
    async with http(ss.url) as client:
        response = await client.get("/listClients", headers={"Accept": "application/json"})
        other = await client.get(
            "/listClients",
            params={"xRoadInstance": "CO-QA"},
            headers={"Accept": "application/json"},
        )
    assert response.headers["content-type"].startswith("application/json")
    members = response.json()["member"]
    assert members[0] == {
        "id": {
            "member_class": "GOB",
            "member_code": "899999001",
            "object_type": "MEMBER",
            "xroad_instance": "CO",
        },
        "name": "Ministerio TIC",
    }
    assert members[1]["id"]["subsystem_code"] == "CARPETA"
    assert members[1]["id"]["object_type"] == "SUBSYSTEM"
    assert members[1]["subsystem_name"] == "Carpeta Ciudadana"
    assert other.json() == {"member": []}


async def test_list_central_services_removed_or_served(directory: XRoadDirectory) -> None:
    directory.central_services = ["consultaCentral"]
    async with FakeSecurityServer(directory) as modern, http(modern.url) as client:
        assert (await client.get("/listCentralServices")).status_code == 404
    serving = FakeSecurityServer(directory, list_central_services="serve")
    async with serving as legacy, http(legacy.url) as client:
        response = await client.get("/listCentralServices")
    root = parse_xml(response.content)
    assert root.tag == f"{XRD}centralServiceList"
    (central,) = root.findall(f"{XRD}centralService")
    assert central.get(f"{IDN}objectType") == "CENTRALSERVICE"
    assert central.findtext(f"{IDN}serviceCode") == "consultaCentral"


# -- REST metaservices (PR-MREST, PR-REST) ---------------------------------------------


async def test_rest_list_methods_lists_rest_and_openapi_services(ss: FakeSecurityServer) -> None:
    async with http(ss.url) as client:
        response = await client.get(
            f"/r1/{CARPETA}/listMethods", headers={"X-Road-Client": MONITOR, "X-Road-Id": "abc"}
        )
    assert response.status_code == 200
    assert "x-road-error" not in response.headers
    assert response.headers["x-road-client"] == MONITOR
    assert response.headers["x-road-service"] == f"{CARPETA}/listMethods"
    assert response.headers["x-road-id"] == "abc"
    assert base64.b64decode(response.headers["x-road-request-hash"])
    services = response.json()["service"]
    assert [(s["service_code"], s["service_type"]) for s in services] == [
        ("documentos", "OPENAPI"),
        ("health", "REST"),
    ]
    assert services[0] == {
        "member_class": "GOB",
        "member_code": "899999001",
        "object_type": "SERVICE",
        "service_code": "documentos",
        "service_type": "OPENAPI",
        "subsystem_code": "CARPETA",
        "xroad_instance": "CO",
        "endpoint_list": [{"method": "GET", "path": "/documentos"}],
    }
    assert services[1]["endpoint_list"] == [{"method": "*", "path": "**"}]


async def test_rest_allowed_methods_honours_allowed(
    ss: FakeSecurityServer, directory: XRoadDirectory
) -> None:
    async with http(ss.url) as client:
        headers = {"X-Road-Client": MONITOR}
        allowed = (await client.get(f"/r1/{CARPETA}/allowedMethods", headers=headers)).json()
        directory.set_allowed(CARPETA, None)
        everything = (await client.get(f"/r1/{CARPETA}/allowedMethods", headers=headers)).json()
        empty = (await client.get(f"/r1/{AUTH}/listMethods", headers=headers)).json()
    assert [s["service_code"] for s in allowed["service"]] == ["documentos"]
    assert [s["service_code"] for s in everything["service"]] == ["documentos", "health"]
    assert empty == {"service": []}


@pytest.mark.parametrize(
    ("client_header", "provider", "status", "code"),
    [
        (None, CARPETA, 400, "Client.BadRequest"),
        ("CO/GOB", CARPETA, 400, "Client.BadRequest"),
        ("CO/GOB/899999003/MONI TOREO", CARPETA, 400, "Client.BadRequest"),
        ("CO/GOB/000/NADIE", CARPETA, 500, "Server.ClientProxy.UnknownMember"),
        (MONITOR, "CO/GOB/000/NADIE", 500, "Server.ClientProxy.UnknownMember"),
    ],
)
async def test_rest_x_road_errors(
    ss: FakeSecurityServer, client_header: str | None, provider: str, status: int, code: str
) -> None:
    headers = {} if client_header is None else {"X-Road-Client": client_header}
    async with http(ss.url) as client:
        response = await client.get(f"/r1/{provider}/listMethods", headers=headers)
    assert response.status_code == status
    assert response.headers["x-road-error"] == code
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert body["type"] == code
    assert body["message"]
    assert body["detail"]


async def test_get_openapi(ss: FakeSecurityServer) -> None:
    headers = {"X-Road-Client": MONITOR}
    async with http(ss.url) as client:
        yaml_answer = await client.get(
            f"/r1/{CARPETA}/getOpenAPI", params={"serviceCode": "documentos"}, headers=headers
        )
        json_answer = await client.get(
            f"/r1/{CARPETA}/getOpenAPI",
            params={"serviceCode": "documentos"},
            headers={**headers, "Accept": "application/json"},
        )
        unknown = await client.get(
            f"/r1/{CARPETA}/getOpenAPI", params={"serviceCode": "nada"}, headers=headers
        )
        not_openapi = await client.get(
            f"/r1/{CARPETA}/getOpenAPI", params={"serviceCode": "radicar"}, headers=headers
        )
        missing = await client.get(f"/r1/{CARPETA}/getOpenAPI", headers=headers)
    assert yaml_answer.status_code == 200
    assert yaml_answer.headers["content-type"].startswith("text/yaml")
    document = yaml.safe_load(yaml_answer.text)
    assert document["openapi"].startswith("3.")
    assert list(document["paths"]) == ["/documentos"]
    assert json_answer.json() == document
    assert unknown.headers["x-road-error"] == "Server.ServerProxy.UnknownService"
    assert not_openapi.headers["x-road-error"] == "Server.ServerProxy.InvalidServiceType"
    assert missing.status_code == 400
    assert missing.headers["x-road-error"] == "Client.BadRequest"


async def test_rest_service_call_checks_access(ss: FakeSecurityServer) -> None:
    headers = {"X-Road-Client": MONITOR}
    async with http(ss.url) as client:
        ok = await client.get(f"/r1/{CARPETA}/documentos/documentos/42", headers=headers)
        denied = await client.get(f"/r1/{CARPETA}/health", headers=headers)
        soap_only = await client.get(f"/r1/{CARPETA}/radicar", headers=headers)
    assert ok.status_code == 200
    assert ok.json()["path"] == "/documentos/42"
    assert denied.headers["x-road-error"] == "Server.ServerProxy.AccessDenied"
    assert soap_only.headers["x-road-error"] == "Server.ServerProxy.InvalidServiceType"


# -- SOAP metaservices (PR-META §3–4, PR-MESS) ----------------------------------------


async def test_soap_list_methods_echoes_the_header(ss: FakeSecurityServer) -> None:
    request = soap_envelope("listMethods")
    response = await post_soap(ss, request)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/xml")
    root = parse_xml(response.content)
    header = root.find(f"{SOAP}Header")
    assert header is not None
    request_header = parse_xml(request).find(f"{SOAP}Header")
    assert request_header is not None
    # PR-MESS §2.2: the same fields, same order, same values; then the request hash.
    assert [c.tag for c in header] == [c.tag for c in request_header] + [f"{XRD}requestHash"]
    for sent, echoed in zip(request_header, header, strict=False):
        assert sent.attrib == echoed.attrib
        assert (sent.text or "").strip() == (echoed.text or "").strip()
        assert [(c.tag, c.attrib, c.text) for c in sent] == [
            (c.tag, c.attrib, c.text) for c in echoed
        ]
    request_hash = header.find(f"{XRD}requestHash")
    assert request_hash is not None
    assert request_hash.get("algorithmId") == SHA512_URI
    assert base64.b64decode(request_hash.text or "") == hashlib.sha512(request).digest()
    result = root.find(f"{SOAP}Body/{XRD}listMethodsResponse")
    assert result is not None
    assert service_codes(result) == ["radicar", "consultarRadicado"]  # WSDL services only
    first = result.find(f"{XRD}service")
    assert first is not None
    assert first.get(f"{IDN}objectType") == "SERVICE"
    assert first.findtext(f"{IDN}subsystemCode") == "CARPETA"
    assert first.findtext(f"{IDN}serviceVersion") == "v1"


async def test_soap_allowed_methods_honours_allowed(ss: FakeSecurityServer) -> None:
    response = await post_soap(ss, soap_envelope("allowedMethods"))
    result = parse_xml(response.content).find(f"{SOAP}Body/{XRD}allowedMethodsResponse")
    assert result is not None
    assert service_codes(result) == ["radicar"]


async def test_soap_get_wsdl_answers_with_an_attachment(ss: FakeSecurityServer) -> None:
    body = (
        "<xroad:getWsdl><xroad:serviceCode>radicar</xroad:serviceCode>"
        "<xroad:serviceVersion>v1</xroad:serviceVersion></xroad:getWsdl>"
    )
    response = await post_soap(ss, soap_envelope("getWsdl", body=body))
    assert response.status_code == 200
    content_type = response.headers["content-type"]
    assert content_type.startswith("multipart/related")
    message = email.message_from_bytes(
        f"Content-Type: {content_type}\r\n\r\n".encode() + response.content,
        policy=email.policy.HTTP,
    )
    parts = message.get_payload()
    assert isinstance(parts, list)
    soap_part, wsdl_part = parts
    assert isinstance(soap_part, Message)
    assert isinstance(wsdl_part, Message)
    assert soap_part["Content-ID"] == "<rootpart>"
    soap_bytes, wsdl_bytes = soap_part.get_payload(decode=True), wsdl_part.get_payload(decode=True)
    assert isinstance(soap_bytes, bytes)
    assert isinstance(wsdl_bytes, bytes)
    soap_root = parse_xml(soap_bytes)
    result = soap_root.find(f"{SOAP}Body/{XRD}getWsdlResponse")
    assert result is not None
    assert result.findtext(f"{XRD}serviceCode") == "radicar"
    wsdl = parse_xml(wsdl_bytes)
    assert wsdl.tag == "{http://schemas.xmlsoap.org/wsdl/}definitions"
    address = wsdl.find(".//{http://schemas.xmlsoap.org/wsdl/soap/}address")
    assert address is not None
    assert address.get("location") == "http://example.org/xroad-endpoint"


@pytest.mark.parametrize(
    ("payload", "code"),
    [
        (soap_envelope("noExiste"), "Server.ServerProxy.UnknownService"),
        (soap_envelope("listMethods", provider="CO/GOB/000/X"), "Server.ClientProxy.UnknownMember"),
        (soap_envelope("listMethods", client="CO/GOB/000/X"), "Server.ClientProxy.UnknownMember"),
        (soap_envelope("listMethods", body="<xroad:allowedMethods/>"), "Client.InvalidBody"),
        (soap_envelope("listMethods", protocol="3.1"), "Client.InvalidProtocolVersion"),
        (
            soap_envelope(
                "getWsdl",
                body="<xroad:getWsdl><xroad:serviceCode>health</xroad:serviceCode></xroad:getWsdl>",
            ),
            "Server.ServerProxy.InvalidServiceType",
        ),
        (soap_envelope("health"), "Server.ServerProxy.InvalidServiceType"),
        (soap_envelope("consultarRadicado"), "Server.ServerProxy.AccessDenied"),
        (b"this is not xml", "Client.InvalidSoap"),
        (b"<a/>", "Client.InvalidSoap"),
        (
            b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa">]>'
            b'<e:Envelope xmlns:e="http://schemas.xmlsoap.org/soap/envelope/">&a;</e:Envelope>',
            "Client.InvalidSoap",
        ),
        (
            b'<e:Envelope xmlns:e="http://schemas.xmlsoap.org/soap/envelope/"><e:Header/>'
            b"</e:Envelope>",
            "Server.ClientProxy.ServiceFailed.MissingBody",
        ),
        (
            b'<e:Envelope xmlns:e="http://schemas.xmlsoap.org/soap/envelope/"><e:Header/>'
            b"<e:Body><listMethods/></e:Body></e:Envelope>",
            "Client.MissingHeaderField",
        ),
    ],
)
async def test_soap_faults(ss: FakeSecurityServer, payload: bytes, code: str) -> None:
    response = await post_soap(ss, payload)
    assert response.status_code == 500
    assert fault_code(response) == code


async def test_soap_call_of_a_known_wsdl_service(ss: FakeSecurityServer) -> None:
    response = await post_soap(ss, soap_envelope("radicar", service_version="v1"))
    assert response.status_code == 200
    body = parse_xml(response.content).find(f"{SOAP}Body")
    assert body is not None
    assert [child.tag for child in body] == [f"{XRD}radicarResponse"]


# -- steering ------------------------------------------------------------------------------


async def test_set_fault_makes_metaservices_fail(ss: FakeSecurityServer) -> None:
    code = "Server.ServerProxy.ServiceFailed"
    ss.set_fault(code, only=["listMethods", "listClients"])
    async with http(ss.url) as client:
        rest = await client.get(f"/r1/{CARPETA}/listMethods", headers={"X-Road-Client": MONITOR})
        allowed = await client.get(
            f"/r1/{CARPETA}/allowedMethods", headers={"X-Road-Client": MONITOR}
        )
        clients = await client.get("/listClients")
    soap = await post_soap(ss, soap_envelope("listMethods"))
    assert (rest.status_code, rest.headers["x-road-error"], rest.json()["type"]) == (
        500,
        code,
        code,
    )
    assert allowed.status_code == 200
    assert clients.status_code == 500
    assert clients.headers["x-road-error"] == code
    assert fault_code(clients) == code
    assert fault_code(soap) == code
    ss.set_fault(None)
    assert (await post_soap(ss, soap_envelope("listMethods"))).status_code == 200
    with pytest.raises(ValueError, match="unknown metaservice"):
        ss.set_fault(code, only=["listEverything"])  # type: ignore[list-item]


async def test_set_delay_slows_answers(ss: FakeSecurityServer) -> None:
    ss.set_delay(0.3, only=["listClients"])
    async with http(ss.url) as client:
        started = time.monotonic()
        await client.get("/listClients")
        slow = time.monotonic() - started
        started = time.monotonic()
        await client.get(f"/r1/{CARPETA}/listMethods", headers={"X-Road-Client": MONITOR})
        fast = time.monotonic() - started
    assert slow >= 0.3
    assert fast < 0.3


async def test_health_check_switches(ss: FakeSecurityServer) -> None:
    async with http(ss.health_url) as client:
        statuses = [(await client.get("/")).status_code]
        for status in (500, 503, 200):
            ss.set_health(status)
            statuses.append((await client.get("/")).status_code)
    assert statuses == [200, 500, 503, 200]
    assert ss.health_hits == 4
    assert ss.health_url != ss.url + "/"  # its own port, like proxy.health-check-port


async def test_directory_changes_show_in_the_next_answer(
    ss: FakeSecurityServer, directory: XRoadDirectory
) -> None:
    headers = {"X-Road-Client": MONITOR, "Accept": "application/json"}
    async with http(ss.url) as client:

        async def codes() -> list[str]:
            response = await client.get(f"/r1/{CARPETA}/listMethods", headers=headers)
            return [s["service_code"] for s in response.json()["service"]]

        before = await codes()
        directory.remove_service(CARPETA, "health")
        after_removal = await codes()
        directory.add_service(CARPETA, FakeService("nuevo", kind="REST"))
        after_add = await codes()
        directory.remove_subsystem(AUTH)
        clients = (await client.get("/listClients", headers=headers)).json()["member"]
        gone = await client.get(f"/r1/{AUTH}/listMethods", headers=headers)
    assert before == ["documentos", "health"]
    assert after_removal == ["documentos"]
    assert after_add == ["documentos", "nuevo"]
    assert len(clients) == 5  # the member stays, its subsystem is gone
    assert gone.headers["x-road-error"] == "Server.ClientProxy.UnknownMember"
    assert [r.path for r in ss.requests][:1] == [f"/r1/{CARPETA}/listMethods"]
    assert ss.requests[0].headers["x-road-client"] == MONITOR


def test_directory_validates_identifiers(directory: XRoadDirectory) -> None:
    with pytest.raises(ValueError, match="PR-REST"):
        directory.add_subsystem("GOB", "899 999", "X")
    with pytest.raises(ValueError, match="duplicate"):
        directory.add_subsystem("GOB", "899999001", "CARPETA")
    with pytest.raises(KeyError):
        directory.remove_service(CARPETA, "nada")
    with pytest.raises(ValueError, match="kind"):
        FakeService("x", kind="GRAPHQL")  # type: ignore[arg-type]


# -- the synthetic directory -----------------------------------------------------------------


async def test_synthetic_2000_by_10_builds_fast_and_serves_list_clients() -> None:
    started = time.monotonic()
    directory = XRoadDirectory.synthetic(2000, 10, seed=7)
    built = time.monotonic() - started
    assert built < 2.0
    assert len(directory.subsystems) == 2000
    assert sum(len(s.services) for s in directory.subsystems) == 20_000
    again = XRoadDirectory.synthetic(2000, 10, seed=7)
    assert [s.services for s in again.subsystems[:50]] == [
        s.services for s in directory.subsystems[:50]
    ]
    async with FakeSecurityServer(directory) as server, http(server.url) as client:
        as_json = await client.get("/listClients", headers={"Accept": "application/json"})
        as_xml = await client.get("/listClients")
        probe = directory.subsystems[1234]
        methods = await client.get(
            f"/r1/{probe.id}/listMethods", headers={"X-Road-Client": directory.subsystems[0].id}
        )
    assert len(as_json.json()["member"]) == 4000  # 2000 members + 2000 subsystems
    assert len(parse_xml(as_xml.content).findall(f"{XRD}member")) == 4000
    rest = [s for s in probe.services if s.kind != "WSDL"]
    assert len(methods.json()["service"]) == len(rest)


# -- mTLS --------------------------------------------------------------------------------------


async def test_mtls_listener_requires_a_client_certificate(
    directory: XRoadDirectory, tmp_path: Path
) -> None:
    async with FakeSecurityServer(directory, tls=True, workdir=tmp_path) as server:
        assert server.ca is not None
        assert server.url.startswith("https://127.0.0.1:")
        no_cert = ssl.create_default_context(cadata=server.ca.cert_pem.decode())
        with pytest.raises(httpx.TransportError):
            async with httpx.AsyncClient(verify=no_cert, timeout=5.0, trust_env=False) as client:
                await client.get(server.url + "/listClients")
        cert, key = server.issue_client_certificate().write(tmp_path, "monitor")
        with_cert = ssl.create_default_context(cafile=str(tmp_path / "xroad-ca.crt"))
        with_cert.load_cert_chain(cert, key)
        async with httpx.AsyncClient(verify=with_cert, timeout=5.0, trust_env=False) as client:
            response = await client.get(server.url + "/listClients")
    assert response.status_code == 200


# -- the configuration source (PR-GCONF) -------------------------------------------------------


def split_multipart(body: bytes, boundary: str) -> list[bytes]:
    """Raw parts (headers + body) between ``--boundary`` delimiters (RFC 2046 §5.1.1),
    CRLF or (X-Road <= 7.2) LF; closed by ``--boundary--`` or, as central servers up to
    7.2 end the directory, by a bare ``--boundary`` at the very end."""
    nl = b"\r\n" if b"\r\n" in body else b"\n"
    opening = b"--" + boundary.encode()
    assert body.startswith(opening + nl)
    if nl + opening + b"--" in body:
        end = body.index(nl + opening + b"--")
    else:
        assert body.endswith(nl + opening)
        end = len(body) - len(nl + opening)
    return body[len(opening + nl) : end].split(nl + opening + nl)


def headers_and_body(part: bytes) -> tuple[Message, bytes]:
    nl = b"\r\n" if b"\r\n" in part else b"\n"
    head, _, body = part.partition(nl + nl)
    return email.message_from_bytes(head + nl + nl, policy=email.policy.HTTP), body


def boundary_of(content_type: str) -> str:
    message = email.message_from_string(f"Content-Type: {content_type}\n\n")
    boundary = message.get_param("boundary")
    assert isinstance(boundary, str)
    return boundary


def envelope_of(response: httpx.Response) -> tuple[str, bytes]:
    """The signed configuration's Content-Type and multipart body: from the HTTP header
    (the strict shape) or, as real central servers serve it (octet-stream), from the
    header block the body starts with."""
    content_type = response.headers["content-type"]
    if content_type.startswith("multipart/related"):
        assert response.content.startswith(b"--")
        return content_type, response.content
    assert content_type == "application/octet-stream"
    first, _, rest = response.content.partition(b"\n")
    assert first.startswith(b"Content-Type: multipart/related; ")
    head = email.message_from_bytes(first.rstrip(b"\r") + b"\n\n", policy=email.policy.HTTP)
    assert rest.startswith((b"\r\n", b"\n"))  # the empty line that ends the header block
    return str(head["Content-Type"]), rest.removeprefix(b"\r\n").removeprefix(b"\n")


async def fetch_directory(
    cs: FakeConfigurationSource, path: str = "/internalconf", **params: str
) -> tuple[httpx.Response, Message, list[tuple[Message, bytes]], bytes, Message, bytes]:
    async with http(cs.url) as client:
        response = await client.get(path, params=params)
    assert response.status_code == 200, response.text
    content_type, body = envelope_of(response)
    outer = split_multipart(body, boundary_of(content_type))
    assert len(outer) == 2  # PR-GCONF §2.3: the directory and its signature
    dir_headers, signed = headers_and_body(outer[0])
    sig_headers, sig_body = headers_and_body(outer[1])
    assert dir_headers.get_content_type() == "multipart/mixed"
    entries = [
        headers_and_body(p)
        for p in split_multipart(
            signed.removesuffix(b"\r\n"), boundary_of(dir_headers["Content-Type"])
        )
    ]
    return response, entries[0][0], entries[1:], signed, sig_headers, sig_body


async def test_configuration_directory_is_signed_and_hashes_match(
    cs: FakeConfigurationSource, directory: XRoadDirectory
) -> None:
    _, expiry_entry, entries, signed, sig_headers, signature = await fetch_directory(cs)
    # The header-only entry (PR-GCONF §2.4).
    expire = datetime.strptime(expiry_entry["Expire-date"], "%Y-%m-%dT%H:%M:%SZ").replace(
        tzinfo=UTC
    )
    assert timedelta(minutes=9) < expire - datetime.now(UTC) <= timedelta(minutes=10)
    assert expiry_entry["Version"] == "2"
    identifiers = [h["Content-identifier"] for h, _ in entries]
    # Single quotes, as real central servers write them (DirectoryContentBuilder).
    assert identifiers == ["PRIVATE-PARAMETERS; instance='CO'", "SHARED-PARAMETERS; instance='CO'"]
    async with http(cs.url) as client:
        for headers, body in entries:
            assert headers["Content-type"] == "application/octet-stream"
            assert headers["Content-transfer-encoding"] == "base64"
            assert headers["Hash-algorithm-id"] == SHA512_URI
            part = await client.get(headers["Content-location"])
            assert part.status_code == 200
            assert base64.b64decode(body) == hashlib.sha512(part.content).digest()
            shared = part.content
    root = parse_xml(shared)
    assert root.tag == f"{XRD}conf"
    assert root.findtext("instanceIdentifier") == "CO"
    assert [m.findtext("memberCode") for m in root.findall("member")] == [
        "899999001",
        "899999002",
        "899999003",
    ]
    # The signature over the directory's bytes (PR-GCONF §2.3), checked with the anchor's cert.
    assert sig_headers["Signature-algorithm-id"] == (
        "http://www.w3.org/2001/04/xmldsig-more#rsa-sha512"
    )
    anchor = parse_xml(cs.anchor())
    assert anchor.tag == f"{XRD}configurationAnchor"
    assert anchor.findtext("source/downloadURL") == cs.internal_url
    cert = x509.load_der_x509_certificate(
        base64.b64decode(anchor.findtext("source/verificationCert") or "")
    )
    cert_hash, _, param = sig_headers["Verification-certificate-hash"].partition(";")
    assert param.strip() == f'hash-algorithm-id="{SHA512_URI}"'
    der = cert.public_bytes(serialization.Encoding.DER)
    assert der == cs.verification_cert_der
    assert base64.b64decode(cert_hash) == hashlib.sha512(der).digest()
    public_key = cert.public_key()
    assert isinstance(public_key, rsa.RSAPublicKey)
    public_key.verify(base64.b64decode(signature), signed, padding.PKCS1v15(), hashes.SHA512())
    # A change publishes new parts; the old ones stay downloadable for a while.
    old_location = entries[1][0]["Content-location"]
    directory.remove_subsystem(AUTH)
    _, _, new_entries, *_ = await fetch_directory(cs)
    assert new_entries[1][0]["Content-location"] != old_location
    async with http(cs.url) as client:
        assert (await client.get(old_location)).content == shared


async def test_externalconf_versions_and_expiry(
    cs: FakeConfigurationSource, directory: XRoadDirectory
) -> None:
    _, expiry_entry, entries, *_ = await fetch_directory(cs, "/externalconf", version="3")
    assert expiry_entry["Version"] == "3"
    assert [h["Content-identifier"] for h, _ in entries] == ["SHARED-PARAMETERS; instance='CO'"]
    async with http(cs.url) as client:
        shared = (await client.get(entries[0][0]["Content-location"])).content
        missing = await client.get("/internalconf", params={"version": "9"})
    source = parse_xml(shared).find("source")
    assert source is not None  # version 3 names the configuration source
    assert source.findtext("internalVerificationCert")
    assert missing.status_code == 404  # PR-GCONF §2.7
    past = datetime(2020, 1, 1, tzinfo=UTC)
    directory.set_expiry(past)
    _, expiry_entry, *_ = await fetch_directory(cs)
    assert expiry_entry["Expire-date"] == "2020-01-01T00:00:00Z"


async def test_configuration_source_failures(cs: FakeConfigurationSource) -> None:
    cs.set_tamper("hash")
    _, _, entries, signed, _, signature = await fetch_directory(cs)
    async with http(cs.url) as client:
        part = await client.get(entries[0][0]["Content-location"])
    assert base64.b64decode(entries[0][1]) != hashlib.sha512(part.content).digest()
    cs.set_tamper("signature")
    _, _, _, signed, _, signature = await fetch_directory(cs)
    key = cs.verification_cert.public_key()
    assert isinstance(key, rsa.RSAPublicKey)
    with pytest.raises(InvalidSignature):
        key.verify(base64.b64decode(signature), signed, padding.PKCS1v15(), hashes.SHA512())
    cs.set_tamper(None)
    cs.set_status(503)
    async with http(cs.url) as client:
        assert (await client.get("/internalconf")).status_code == 503


@pytest.mark.parametrize("shape", DIRECTORY_SHAPES)
async def test_directory_shapes(
    directory: XRoadDirectory, signing_key: rsa.RSAPrivateKey, shape: DirectoryShape
) -> None:
    """``central-server`` (the default, X-Road 7.3+), ``legacy`` (up to 7.2) and
    ``strict`` (PR-GCONF §2.3 as written), each signed over the directory's bytes."""
    async with FakeConfigurationSource(directory, signing_key=signing_key, shape=shape) as cs:
        response, _, entries, signed, _, signature = await fetch_directory(cs)
    body = response.content
    identifiers = [h["Content-identifier"] for h, _ in entries]
    inner = signed.split(b"\n", 1)[0].rstrip(b"\r").decode()  # "--inner…"
    if shape == "strict":
        assert response.headers["content-type"].startswith("multipart/related; ")
        assert body.startswith(b"--envelope")
        assert identifiers == [
            'PRIVATE-PARAMETERS; instance="CO"',
            'SHARED-PARAMETERS; instance="CO"',
        ]
        assert all(h["Content-file-name"] for h, _ in entries)
        assert signed.endswith(f"\r\n{inner}--".encode())
    else:
        assert response.headers["content-type"] == "application/octet-stream"
        assert body.startswith(b"Content-Type: multipart/related; charset=UTF-8; boundary=")
        assert identifiers == [
            "PRIVATE-PARAMETERS; instance='CO'",
            "SHARED-PARAMETERS; instance='CO'",
        ]
        assert not any(h["Content-file-name"] for h, _ in entries)
    if shape == "legacy":
        assert b"\r" not in body
        assert signed.endswith(f"\n{inner}".encode())  # no closing delimiter
    else:
        assert body.count(b"\n") == body.count(b"\r\n")
    if shape == "central-server":
        assert signed.endswith(f"\r\n{inner}--\r\n".encode())
    signing_key.public_key().verify(
        base64.b64decode(signature), signed, padding.PKCS1v15(), hashes.SHA512()
    )


async def test_minimum_version_above_the_default(directory: XRoadDirectory) -> None:
    """A central server whose minimum configuration version is 3 serves no version 2,
    also not as the default for a client that asks for no version."""
    async with FakeConfigurationSource(directory, min_version=3) as cs, http(cs.url) as client:
        assert (await client.get("/internalconf")).status_code == 404
        assert (await client.get("/internalconf?version=2")).status_code == 404
        assert (await client.get("/internalconf?version=3")).status_code == 200
        assert (await client.get("/externalconf?version=4")).status_code == 404
    with pytest.raises(ValueError, match="min_version"):
        FakeConfigurationSource(directory, min_version=7)
    with pytest.raises(ValueError, match="shape"):
        FakeConfigurationSource(directory, shape="nginx")  # type: ignore[arg-type]


async def test_sha256_configuration(
    directory: XRoadDirectory, signing_key: rsa.RSAPrivateKey
) -> None:
    async with FakeConfigurationSource(
        directory, hash_algorithm="sha256", signing_key=signing_key
    ) as cs:
        _, _, entries, signed, sig_headers, signature = await fetch_directory(cs)
        async with http(cs.url) as client:
            part = await client.get(entries[1][0]["Content-location"])
    assert entries[1][0]["Hash-algorithm-id"] == "http://www.w3.org/2001/04/xmlenc#sha256"
    assert base64.b64decode(entries[1][1]) == hashlib.sha256(part.content).digest()
    assert sig_headers["Signature-algorithm-id"].endswith("#rsa-sha256")
    signing_key.public_key().verify(
        base64.b64decode(signature), signed, padding.PKCS1v15(), hashes.SHA256()
    )


def test_shared_parameters_round_trip_the_real_sample() -> None:
    sample = SHARED_PARAMS_SAMPLE.read_bytes()
    directory = XRoadDirectory.from_shared_parameters(sample)
    assert directory.instance == "DEV"
    assert [s.id for s in directory.subsystems] == [
        "DEV/ORG/1234567-8/MANAGEMENT",
        "DEV/ORG/1234567-8/TEST",
        "DEV/ORG/1111111-1/BLAH",
    ]
    generated = parse_xml(directory.shared_parameters())
    original = parse_xml(sample)
    assert generated.tag == original.tag

    def shape(root: ET.Element) -> list[tuple[str, ...]]:
        return [
            (
                m.findtext("memberClass/code") or "",
                m.findtext("memberCode") or "",
                m.findtext("name") or "",
                *(s.findtext("subsystemCode") or "" for s in m.findall("subsystem")),
            )
            for m in root.findall("member")
        ]

    assert shape(generated) == shape(original)
    servers = [
        (s.findtext("serverCode"), s.findtext("address"), len(s.findall("client")))
        for s in generated.findall("securityServer")
    ]
    assert servers == [("ss1", "x-road-ss", 2), ("ss2", "x-road-ss-test", 1)]
    # Top-level order of Annex B, version 2.
    order = ["instanceIdentifier", "member", "securityServer", "globalGroup", "globalSettings"]
    seen = [child.tag for child in generated]
    assert sorted(set(seen), key=seen.index) == order


# -- the runner --------------------------------------------------------------------------------


async def test_run_xroad_simulator_reports_ready_and_stops(tmp_path: Path) -> None:
    stop = asyncio.Event()
    ready: list[dict[str, object]] = []

    def on_ready(info: dict[str, object]) -> None:
        ready.append(info)
        stop.set()

    await asyncio.wait_for(
        run_xroad_simulator(small_directory(), workdir=tmp_path, stop=stop, on_ready=on_ready),
        timeout=5,
    )
    (info,) = ready
    assert str(info["security_server"]).startswith("http://127.0.0.1:")
    assert str(info["internalconf"]).endswith("/internalconf")
    anchor = parse_xml(await asyncio.to_thread(Path(str(info["anchor"])).read_bytes))
    assert anchor.findtext("instanceIdentifier") == "CO"
    assert json.dumps(info)
