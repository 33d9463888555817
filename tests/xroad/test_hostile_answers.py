"""Hostile answers to the X-Road library: identifiers are data, never paths; one bad entry
never hides the others; what a directory keeps is clean text."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from scd_monitor.xroad import ClientId, SecurityServerClient, ServiceId, XRoadProtocolError
from scd_monitor.xroad.directory import Directory, DirectoryEvent, DirectoryReader
from scd_monitor.xroad.errors import XRoadError
from scd_monitor.xroad.globalconf import parse_shared_parameters
from scd_monitor.xroad.identifiers import RefusedEntry
from scd_monitor.xroad.metaservices import (
    ListedClient,
    ServiceEntry,
    parse_list_clients_json,
    parse_list_clients_xml,
    parse_rest_error,
    parse_rest_method_list,
    parse_soap_method_list,
)
from scd_simulator.rawhttp import Connection, Request, Response
from tests.xroad.data import fixture, serve, url

MONITOR = ClientId("CO", "GOB", "1", "MONITOR")
NOW = datetime(2026, 3, 1, tzinfo=UTC)


def rest_service(code: str, **extra: Any) -> dict[str, Any]:
    return {
        "xroad_instance": "CO",
        "member_class": "GOB",
        "member_code": "2",
        "subsystem_code": "SUB",
        "service_code": code,
        **extra,
    }


REST_LIST = json.dumps(
    {
        "service": [
            rest_service("bueno"),
            rest_service("\ud800"),
            rest_service(".."),
            rest_service("a:b"),
            "not an object",
            rest_service("otro", endpoint_list=[{"method": "GET"}]),
            rest_service("ultimo"),
        ]
    }
).encode("ascii")


def test_a_method_list_keeps_the_good_entries_and_names_the_bad_ones() -> None:
    with pytest.raises(XRoadProtocolError, match="lone surrogate"):
        parse_rest_method_list(REST_LIST)  # strict, as a probe wants it
    refused: list[RefusedEntry] = []
    found = parse_rest_method_list(REST_LIST, refused=refused)
    assert [e.service.service_code for e in found] == ["bueno", "ultimo"]
    assert [r.subject for r in refused] == [
        "CO/GOB/2/SUB/\ufffd",
        "CO/GOB/2/SUB/..",
        "CO/GOB/2/SUB/a:b",
        "?",
        "CO/GOB/2/SUB/otro",
    ]
    assert "lone surrogate" in refused[0].reason
    assert "relative path segment" in refused[1].reason
    assert refused[3].where == "listMethods response, service #5"
    for entry in refused:
        (entry.subject + entry.reason + entry.where).encode("utf-8", "strict")


def test_client_lists_keep_the_good_entries() -> None:
    members = [
        {"id": {"xroad_instance": "CO", "member_class": "GOB", "member_code": code}}
        for code in ["1", "..", "x\x00", "2"]
    ]
    data = json.dumps({"member": members}).encode()
    refused: list[RefusedEntry] = []
    listed = parse_list_clients_json(data, refused=refused)
    assert [str(c.id) for c in listed] == ["CO/GOB/1", "CO/GOB/2"]
    assert [r.subject for r in refused] == ["CO/GOB/..", "CO/GOB/x\u2400"]

    def member(code: str) -> str:
        return (
            '<xroad:member><xroad:id id:objectType="MEMBER"><id:xRoadInstance>CO'
            f"</id:xRoadInstance><id:memberClass>GOB</id:memberClass><id:memberCode>{code}"
            "</id:memberCode></xroad:id></xroad:member>"
        )

    xml = (
        '<xroad:clientList xmlns:xroad="http://x-road.eu/xsd/xroad.xsd" '
        'xmlns:id="http://x-road.eu/xsd/identifiers">'
        + "".join(member(c) for c in ["1", "..", "a%2F", "2"])
        + "</xroad:clientList>"
    ).encode()
    refused = []
    listed = parse_list_clients_xml(xml, refused=refused)
    assert [str(c.id) for c in listed] == ["CO/GOB/1", "CO/GOB/2"]
    assert [r.subject for r in refused] == ["CO/GOB/..", "CO/GOB/a%2F"]
    with pytest.raises(XRoadProtocolError):
        parse_list_clients_xml(xml)


def test_a_soap_method_list_keeps_the_good_entries() -> None:
    def service(code: str) -> str:
        return (
            '<xroad:service id:objectType="SERVICE"><id:xRoadInstance>CO</id:xRoadInstance>'
            "<id:memberClass>GOB</id:memberClass><id:memberCode>2</id:memberCode>"
            f"<id:subsystemCode>SUB</id:subsystemCode><id:serviceCode>{code}</id:serviceCode>"
            "</xroad:service>"
        )

    envelope = (
        '<SOAP-ENV:Envelope xmlns:SOAP-ENV="http://schemas.xmlsoap.org/soap/envelope/" '
        'xmlns:xroad="http://x-road.eu/xsd/xroad.xsd" xmlns:id="http://x-road.eu/xsd/identifiers">'
        "<SOAP-ENV:Body><xroad:listMethodsResponse>"
        + "".join(service(c) for c in ["uno", "..", "a\\b", "dos"])
        + "</xroad:listMethodsResponse></SOAP-ENV:Body></SOAP-ENV:Envelope>"
    ).encode()
    refused: list[RefusedEntry] = []
    found = parse_soap_method_list(envelope, refused=refused)
    assert [s.service_code for s in found] == ["uno", "dos"]
    assert len(refused) == 2


def test_shared_parameters_keep_the_good_members_when_lenient() -> None:
    data = fixture("shared-params-v5.xml").replace(
        b"<subsystemCode>AUTENTICACION</subsystemCode>", b"<subsystemCode>..</subsystemCode>"
    )
    with pytest.raises(XRoadProtocolError, match="relative path segment"):
        parse_shared_parameters(data)
    refused: list[RefusedEntry] = []
    shared = parse_shared_parameters(data, refused=refused)
    (member,) = shared.members
    assert member.subsystems == ("CARPETA",)
    assert refused[0].subject == "CO/GOB/8999990002/.."
    # s2 (the refused subsystem) is a client of a security server: left out there too.
    assert {c.subsystem_code for s in shared.security_servers for c in s.clients} == {"CARPETA"}
    assert any("client s2" in r.subject for r in refused[1:])
    bad_member = fixture("shared-params-v5.xml").replace(
        b"<memberCode>8999990002</memberCode>", b"<memberCode>a:b</memberCode>"
    )
    refused = []
    shared = parse_shared_parameters(bad_member, refused=refused)
    assert shared.members == ()
    assert shared.security_servers == (), "their owner was refused"
    assert refused[0].subject == "CO/GOB/a:b"


def test_rest_faults_are_clean_text() -> None:
    body = json.dumps({"type": "Server.\ud800", "message": "\x00" * 5000, "detail": "\udfff"})
    fault = parse_rest_error("X", body.encode("ascii"), http_status=500)
    assert isinstance(fault, XRoadError)
    for text in (fault.code, fault.message, fault.detail or "", str(fault)):
        text.encode("utf-8", "strict")
        assert "\x00" not in text
    assert len(fault.message) <= 1000


async def test_identifiers_go_into_urls_part_by_part_percent_encoded() -> None:
    seen: list[str] = []

    async def handler(request: Request, _conn: Connection) -> Response:
        seen.append(request.target)
        return Response(200, b'{"service": []}', content_type="application/json")

    async with serve(handler) as server:
        client = SecurityServerClient(url(server, "/base"), client_id=MONITOR, timeout=2.0)
        provider = ClientId("CO", "GOB", "a b?#&=", "Registraduría ...")
        await client.rest_list_methods(provider)
        await client.get_openapi(ServiceId(provider, "svc?x=1"))
    assert seen[0] == "/base/r1/CO/GOB/a%20b%3F%23%26%3D/Registradur%C3%ADa%20.../listMethods"
    assert seen[1].startswith("/base/r1/CO/GOB/a%20b%3F%23%26%3D/Registradur%C3%ADa%20.../")
    assert seen[1].endswith("/getOpenAPI?serviceCode=svc%3Fx%3D1")


def test_a_stored_snapshot_is_checked_again_when_read() -> None:
    good = Directory.build(
        "co",
        "CO",
        NOW,
        {
            "member": {"CO/GOB/1": {"name": "Uno\x00"}, "CO/GOB/..": {"name": "x"}},
            "service": {
                "CO/GOB/1/SUB/ok": {"endpoints": ["GET /\ud800"]},
                "CO/GOB/1/SUB/\ud800": {},
            },
        },
    )
    read = Directory.from_json(json.loads(json.dumps(good.to_json())))
    assert set(read.members) == {"CO/GOB/1"}
    assert read.members["CO/GOB/1"]["name"] == "Uno\u2400"
    assert read.services["CO/GOB/1/SUB/ok"]["endpoints"] == ["GET /\ufffd"]
    assert {s for s, _ in read.refused} == {"CO/GOB/..", "CO/GOB/1/SUB/\ufffd"}
    again = Directory.from_json(read.to_json())
    assert again.refused == read.refused and again.same_entities(read)


def test_events_are_clean_text() -> None:
    event = DirectoryEvent(NOW, "co", "service", "appeared", "CO/\ud800", {"a\x00": ["\udfff"]})
    assert event.subject == "CO/\ufffd"
    assert event.details == {"a\u2400": ["\ufffd"]}


class HostileClient(SecurityServerClient):
    """listClients lists a good and a bad subsystem; listMethods of one subsystem crashes
    with an error no check foresaw; the other lists a bad entry among good ones."""

    def __init__(self) -> None:
        super().__init__("http://127.0.0.1:9", client_id=MONITOR)

    async def list_clients(
        self,
        json: bool = False,
        *,
        instance: str | None = None,
        refused: list[RefusedEntry] | None = None,
    ) -> list[ListedClient]:
        assert refused is not None, "the reader reads leniently"
        refused.append(RefusedEntry("CO/GOB/3/..", "relative path segment", "listClients"))
        return [
            ListedClient(ClientId("CO", "GOB", "1", "A"), name="Uno\r\nBcc: x"),
            ListedClient(ClientId("CO", "GOB", "2", "B"), name="Dos"),
        ]

    async def rest_list_methods(
        self, provider: ClientId, *, refused: list[RefusedEntry] | None = None
    ) -> list[ServiceEntry]:
        if provider.member_code == "2":
            raise RuntimeError("a bug")
        return parse_rest_method_list(
            json.dumps(
                {
                    "service": [
                        rest_service("x") | {"member_code": "1", "subsystem_code": "A"},
                        rest_service("\ud800") | {"member_code": "1", "subsystem_code": "A"},
                    ]
                }
            ).encode(),
            refused=refused,
        )

    async def soap_list_methods(
        self,
        provider: ClientId,
        *,
        user_id: str | None = None,
        refused: list[RefusedEntry] | None = None,
    ) -> list[ServiceId]:
        return []


async def test_the_reader_keeps_what_it_can_and_names_what_it_refused() -> None:
    reader = DirectoryReader(source="co", instance="CO", security_server=HostileClient())
    directory = await reader.read()
    assert set(directory.services) == {"CO/GOB/1/A/x"}
    assert directory.partial == ("CO/GOB/2/B",), "the crashing subsystem alone"
    assert {s for s, _ in directory.refused} == {"CO/GOB/3/..", "CO/GOB/1/A/\ufffd"}
    assert directory.members["CO/GOB/1"]["name"] == "Uno Bcc: x"
