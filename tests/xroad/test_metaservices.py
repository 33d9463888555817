"""Metaservice parsers on answers shaped as the protocol documents' examples, and the
SOAP request builder."""

from __future__ import annotations

import base64

import pytest

from scd_monitor.xroad import (
    CentralServiceId,
    ClientId,
    ListedClient,
    RestEndpoint,
    ServiceId,
    XRoadError,
    XRoadProtocolError,
    build_get_wsdl_request,
    build_method_list_request,
    build_soap_request,
    fault_side,
    parse_get_wsdl_response,
    parse_list_central_services,
    parse_list_clients_json,
    parse_list_clients_xml,
    parse_openapi,
    parse_rest_error,
    parse_rest_method_list,
    parse_soap_fault,
    parse_soap_header,
    parse_soap_method_list,
    parse_xml,
)
from scd_monitor.xroad.metaservices import parse_soap_envelope
from scd_monitor.xroad.xml import NS_ID, NS_SOAP_ENV, NS_XROAD
from tests.xroad.data import fixture

MONITOR = ClientId("CO", "GOB", "8999990001", "MONITOREO")
PROVIDER = ClientId("CO", "GOB", "8999990002", "CARPETA")
WSDL_TYPE = 'multipart/related; type="text/xml"; start="<rootpart>"; boundary="MIME_boundary"'

EXPECTED_CLIENTS = [
    ListedClient(ClientId("CO", "GOB", "8999990001"), "Agencia Nacional Digital"),
    ListedClient(ClientId("CO", "GOB", "8999990002"), "Registraduría Nacional del Estado Civil"),
    ListedClient(PROVIDER, "Registraduría Nacional del Estado Civil", "Carpeta Ciudadana"),
]


def answer(name: str, message_id: str = "411d6755661409fed365ad8135f8210be07613da") -> bytes:
    return fixture(name).replace(b"{MESSAGE_ID}", message_id.encode())


# -- listClients, listCentralServices ---------------------------------------------------


def test_list_clients_xml_as_in_pr_meta_c1() -> None:
    assert parse_list_clients_xml(fixture("listclients.xml")) == EXPECTED_CLIENTS


def test_list_clients_json_as_in_pr_meta_c1() -> None:
    assert parse_list_clients_json(fixture("listclients.json")) == EXPECTED_CLIENTS


def test_list_clients_empty_list() -> None:
    empty = b'<ns2:clientList xmlns:ns2="http://x-road.eu/xsd/xroad.xsd"/>'
    assert parse_list_clients_xml(empty) == []
    assert parse_list_clients_json(b'{"member": []}') == []


@pytest.mark.parametrize(
    ("document", "message"),
    [
        (b"<clientList/>", "namespace ''"),
        (b'<x:other xmlns:x="http://x-road.eu/xsd/xroad.xsd"/>', "root element is <other>"),
        (
            b'<x:clientList xmlns:x="http://x-road.eu/xsd/xroad.xsd" '
            b'xmlns:i="http://x-road.eu/xsd/identifiers"><x:member><x:id i:objectType="MEMBER">'
            b"<i:xRoadInstance>CO</i:xRoadInstance><i:memberClass>GOB</i:memberClass>"
            b"</x:id></x:member></x:clientList>",
            "member #1: identifier has no memberCode",
        ),
        (
            b'<x:clientList xmlns:x="http://x-road.eu/xsd/xroad.xsd" '
            b'xmlns:i="http://x-road.eu/xsd/identifiers"><x:member><x:id i:objectType="SUBSYSTEM">'
            b"<i:xRoadInstance>CO</i:xRoadInstance><i:memberClass>GOB</i:memberClass>"
            b"<i:memberCode>1</i:memberCode></x:id></x:member></x:clientList>",
            "objectType SUBSYSTEM does not match identifier CO/GOB/1",
        ),
        (
            b'<x:clientList xmlns:x="http://x-road.eu/xsd/xroad.xsd" '
            b'xmlns:i="http://x-road.eu/xsd/identifiers"><x:member><x:id i:objectType="MEMBER">'
            b"<i:xRoadInstance>CO</i:xRoadInstance><i:memberClass>GOB</i:memberClass>"
            b"<i:memberCode>1/2</i:memberCode></x:id></x:member></x:clientList>",
            "contains '/'",
        ),
    ],
)
def test_list_clients_xml_errors_name_the_entry(document: bytes, message: str) -> None:
    with pytest.raises(XRoadProtocolError, match=message):
        parse_list_clients_xml(document)


@pytest.mark.parametrize(
    ("document", "message"),
    [
        (b"[1, 2]", "expected a JSON object"),
        (b'{"member": {}}', '"member" is not a list'),
        (b'{"member": [{"name": "x"}]}', 'member #1: has no "id" object'),
        (b'{"member": [{"id": {"xroad_instance": "CO"}}]}', "identifier has no member_class"),
        (b"{not json", "not valid JSON"),
        (b"[" * 100_000 + b"]" * 100_000, "not valid JSON"),
    ],
)
def test_list_clients_json_errors(document: bytes, message: str) -> None:
    with pytest.raises(XRoadProtocolError, match=message):
        parse_list_clients_json(document)


def test_list_central_services_as_in_pr_meta_c2() -> None:
    assert parse_list_central_services(fixture("listcentralservices.xml")) == [
        CentralServiceId("CO", "consultaCedula")
    ]


# -- REST metaservices -------------------------------------------------------------------


def test_rest_list_methods_as_in_pr_mrest_b1() -> None:
    entries = parse_rest_method_list(fixture("rest-listmethods.json"))
    assert [str(entry.service) for entry in entries] == [
        "CO/GOB/8999990002/CARPETA/documentos",
        "CO/GOB/8999990002/CARPETA/notificaciones",
    ]
    assert [entry.service_type for entry in entries] == ["OPENAPI", "REST"]
    assert entries[0].endpoints == (
        RestEndpoint("GET", "/documentos"),
        RestEndpoint("POST", "/documentos"),
        RestEndpoint("GET", "/documentos/*"),
    )


def test_rest_allowed_methods_as_in_pr_mrest_b2() -> None:
    entries = parse_rest_method_list(fixture("rest-allowedmethods.json"))
    assert [entry.service for entry in entries] == [ServiceId(PROVIDER, "documentos")]


def test_rest_method_list_in_the_openapi_annex_shape() -> None:
    # PR-MREST Annex A describes "member" and camelCase keys; the examples do not.
    document = b"""{"member": [{"objectType": {"object_type": "SERVICE"}, "serviceType": "WSDL",
        "xRoadInstance": "CO", "memberClass": "GOB", "memberCode": "8999990002",
        "subsystemCode": "CARPETA", "serviceCode": "consultar", "serviceVersion": "v2",
        "endpointList": {"member": [{"method": "*", "path": "**"}]}}]}"""
    (entry,) = parse_rest_method_list(document)
    assert entry.service == ServiceId(PROVIDER, "consultar", "v2")
    assert entry.service_type == "WSDL"
    assert entry.endpoints == (RestEndpoint("*", "**"),)


def test_rest_method_list_refuses_other_object_types() -> None:
    document = b"""{"service": [{"object_type": "MEMBER", "xroad_instance": "CO",
        "member_class": "GOB", "member_code": "1", "service_code": "x"}]}"""
    with pytest.raises(XRoadProtocolError, match="object_type is MEMBER, expected SERVICE"):
        parse_rest_method_list(document)


def test_openapi_yaml_as_in_pr_mrest_b3() -> None:
    body = fixture("openapi.yaml")
    described = parse_openapi(body, "text/yaml; charset=utf-8")
    assert described.format == "yaml"
    assert described.openapi_version == "3.0.0"
    assert described.size == len(body)
    assert "Documentos de Carpeta Ciudadana" in described.text


def test_openapi_json() -> None:
    described = parse_openapi(b'{"openapi": "3.1.0", "info": {}}', "application/json")
    assert (described.format, described.openapi_version) == ("json", "3.1.0")
    with pytest.raises(XRoadProtocolError, match="empty service description"):
        parse_openapi(b"  \n", "text/yaml")
    with pytest.raises(XRoadProtocolError, match="not valid JSON"):
        parse_openapi(b"{broken", "application/json")


def test_rest_errors_as_in_pr_rest_4_6() -> None:
    provider = parse_rest_error(
        "Server.ServerProxy.DatabaseError", fixture("rest-error-provider.json"), http_status=500
    )
    assert provider is not None
    assert (provider.code, provider.side, provider.http_status) == (
        "Server.ServerProxy.DatabaseError",
        "provider",
        500,
    )
    assert provider.message == "Error accessing database (serverconf)"
    assert provider.detail == "3c4d0f08-440f-417f-b935-bc801e103d51"
    client = parse_rest_error("Client.BadRequest", fixture("rest-error-client.json"))
    assert client is not None
    assert client.side == "client"
    not_json = parse_rest_error("Server.ClientProxy.OutdatedGlobalConf", b"<html>oops</html>")
    assert not_json is not None
    assert (not_json.side, not_json.message) == ("consumer", "<html>oops</html>")
    assert parse_rest_error(None, fixture("rest-error-provider.json")) is None


@pytest.mark.parametrize(
    ("code", "side"),
    [
        ("Server.ClientProxy.ServiceFailed", "consumer"),
        ("server.clientproxy.OutdatedGlobalConf", "consumer"),
        ("SERVER.CLIENTPROXY", "consumer"),
        ("Server.ServerProxy.DatabaseError", "provider"),
        ("server.serverproxy.servicefailed.x", "provider"),
        ("Client.BadRequest", "client"),
        ("Client", "client"),
        ("Server.ClientProxyX.Foo", "unknown"),
        ("Server.Other", "unknown"),
        ("InternalError", "unknown"),
        ("", "unknown"),
    ],
)
def test_fault_side(code: str, side: str) -> None:
    assert fault_side(code) == side


# -- SOAP ------------------------------------------------------------------------------


def test_soap_request_has_the_x_road_header() -> None:
    envelope, message_id = build_method_list_request(MONITOR, PROVIDER, method="allowedMethods")
    root = parse_soap_envelope(envelope, what="request")
    header = parse_soap_header(root)
    assert header.client == MONITOR
    assert header.service == ServiceId(PROVIDER, "allowedMethods")
    assert header.message_id == message_id
    assert header.protocol_version == "4.0"
    assert header.user_id is None
    body = root.find(f"{{{NS_SOAP_ENV}}}Body")
    assert body is not None
    assert [item.tag for item in body] == [f"{{{NS_XROAD}}}allowedMethods"]
    client = root.find(f"{{{NS_SOAP_ENV}}}Header/{{{NS_XROAD}}}client")
    assert client is not None
    assert client.get(f"{{{NS_ID}}}objectType") == "SUBSYSTEM"


def test_soap_request_escapes_and_orders_fields() -> None:
    member = ClientId("CO", "GOB", "A&B<1>")
    envelope, message_id = build_soap_request(
        client=member,
        service=ServiceId(PROVIDER, "svc", "v1"),
        body_element="svc",
        body_fields=[("campo", "x</campo><inyectado/>")],
        message_id="id-1",
        user_id="CO1234567890",
        issue="radicado 7",
    )
    assert message_id == "id-1"
    root = parse_xml(envelope)
    header = parse_soap_header(root)
    assert header.client == member
    assert header.service == ServiceId(PROVIDER, "svc", "v1")
    assert (header.user_id, header.issue) == ("CO1234567890", "radicado 7")
    fields = root.find(f"{{{NS_SOAP_ENV}}}Header")
    assert fields is not None
    assert [item.tag.rpartition("}")[2] for item in fields] == [
        "client",
        "service",
        "id",
        "userId",
        "issue",
        "protocolVersion",
    ]
    wrapper = root.find(f"{{{NS_SOAP_ENV}}}Body/{{{NS_XROAD}}}svc")
    assert wrapper is not None
    assert [(item.tag, item.text) for item in wrapper] == [
        (f"{{{NS_XROAD}}}campo", "x</campo><inyectado/>")
    ]
    with pytest.raises(ValueError, match="not an XML element name"):
        build_soap_request(client=member, service=ServiceId(PROVIDER, "x"), body_element="a b")


def test_each_request_gets_a_fresh_uuid() -> None:
    _, first = build_method_list_request(MONITOR, PROVIDER)
    _, second = build_method_list_request(MONITOR, PROVIDER)
    assert first != second
    assert len(first) == 36


def test_get_wsdl_request_names_the_service() -> None:
    envelope, _ = build_get_wsdl_request(MONITOR, ServiceId(PROVIDER, "consultar", "v1"))
    root = parse_xml(envelope)
    assert parse_soap_header(root).service == ServiceId(PROVIDER, "getWsdl")
    wrapper = root.find(f"{{{NS_SOAP_ENV}}}Body/{{{NS_XROAD}}}getWsdl")
    assert wrapper is not None
    assert [(item.tag.rpartition("}")[2], item.text) for item in wrapper] == [
        ("serviceCode", "consultar"),
        ("serviceVersion", "v1"),
    ]


def test_soap_list_methods_as_in_pr_meta_c3() -> None:
    services = parse_soap_method_list(answer("soap-listmethods-response.xml"))
    assert services == [
        ServiceId(PROVIDER, "consultarDocumentos", "v1"),
        ServiceId(PROVIDER, "radicarDocumento"),
    ]


def test_soap_allowed_methods_as_in_pr_meta_c5() -> None:
    services = parse_soap_method_list(
        answer("soap-allowedmethods-response.xml"), method="allowedMethods"
    )
    assert services == [ServiceId(PROVIDER, "consultarDocumentos", "v1")]


def test_soap_answer_must_echo_the_request_id() -> None:
    body = answer("soap-listmethods-response.xml", "other-id")
    with pytest.raises(XRoadProtocolError, match="message id 'other-id'"):
        parse_soap_method_list(body, message_id="my-id")
    assert parse_soap_method_list(body, message_id="other-id")


def test_soap_answer_of_the_wrong_method() -> None:
    with pytest.raises(XRoadProtocolError, match="no <allowedMethodsResponse>"):
        parse_soap_method_list(answer("soap-listmethods-response.xml"), method="allowedMethods")


def test_soap_fault_as_in_pr_mess_d1() -> None:
    root = parse_xml(fixture("soap-fault.xml"))
    fault = parse_soap_fault(root, http_status=500)
    assert fault is not None
    assert fault.code == "Server.ServerProxy.ServiceFailed.InternalError"
    assert fault.side == "provider"
    assert fault.message == "Service provider did not answer: connection refused"
    assert fault.detail == "6d8f0c2a-47a1-4e55-9c8b-0f1d2e3a4b5c"
    assert fault.http_status == 500
    assert "provider side" in str(fault)
    with pytest.raises(XRoadError) as caught:
        parse_soap_method_list(fixture("soap-fault.xml"))
    assert caught.value.side == "provider"


def test_soap_fault_code_with_a_namespace_prefix() -> None:
    document = (
        b'<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body><s:Fault>'
        b"<faultcode>s:Server.ClientProxy.ServiceFailed</faultcode>"
        b"<faultstring>x</faultstring></s:Fault></s:Body></s:Envelope>"
    )
    fault = parse_soap_fault(parse_xml(document))
    assert fault is not None
    assert (fault.code, fault.side, fault.detail) == (
        "Server.ClientProxy.ServiceFailed",
        "consumer",
        None,
    )


def test_soap_12_and_non_soap_documents_are_refused() -> None:
    soap12 = b'<e:Envelope xmlns:e="http://www.w3.org/2003/05/soap-envelope"><e:Body/></e:Envelope>'
    with pytest.raises(XRoadProtocolError, match=r"not a SOAP 1\.1 envelope"):
        parse_soap_method_list(soap12)
    with pytest.raises(XRoadProtocolError, match=r"not a SOAP 1\.1 envelope"):
        parse_soap_method_list(fixture("listclients.xml"))


def test_get_wsdl_as_in_pr_meta_c7_c8() -> None:
    wsdl = parse_get_wsdl_response(answer("getwsdl-response.mime"), WSDL_TYPE)
    root = parse_xml(wsdl)
    assert root.tag == "{http://schemas.xmlsoap.org/wsdl/}definitions"
    assert root.get("name") == "carpetaService"


def test_get_wsdl_with_crlf_and_a_base64_attachment() -> None:
    text = answer("getwsdl-response.mime").decode()
    soap, _, rest = text.rpartition("--MIME_boundary\nContent-Type: text/xml; charset=UTF-8\n")
    wsdl = b"<definitions>encoded</definitions>"
    crlf = (
        soap
        + "--MIME_boundary\nContent-Type: text/xml\nContent-Transfer-Encoding: base64\n\n"
        + base64.encodebytes(wsdl).decode()
        + "--MIME_boundary--\n"
    ).replace("\n", "\r\n")
    assert rest  # the fixture has the attachment part that was replaced
    assert parse_get_wsdl_response(crlf.encode(), WSDL_TYPE) == wsdl


def test_get_wsdl_fault_and_missing_attachment() -> None:
    with pytest.raises(XRoadError, match="ServiceFailed"):
        parse_get_wsdl_response(fixture("soap-fault.xml"), "text/xml; charset=utf-8")
    soap_only = answer("soap-listmethods-response.xml")
    with pytest.raises(XRoadProtocolError, match="no WSDL attachment"):
        parse_get_wsdl_response(soap_only, "text/xml")
    truncated = answer("getwsdl-response.mime")[:-20]
    with pytest.raises(XRoadProtocolError, match="without its closing boundary"):
        parse_get_wsdl_response(truncated, WSDL_TYPE)
    with pytest.raises(XRoadProtocolError, match="without a boundary"):
        parse_get_wsdl_response(answer("getwsdl-response.mime"), "multipart/related")
