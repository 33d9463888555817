"""Operational monitoring (PR-OPMON): request builders checked against the protocol's
example requests, answer parsers on the protocol's example answers and on answers framed
as X-Road's own encoder writes them (fixtures/opmon/README.md), and a hostile suite."""

from __future__ import annotations

import gzip
import io
import json
import tracemalloc
import xml.etree.ElementTree as ET
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

# No stubs for defusedxml; the second code keeps this line quiet if they get installed.
from defusedxml.ElementTree import (  # type: ignore[import-untyped, unused-ignore]
    fromstring as defused_fromstring,
)

from scd_monitor.xroad import (
    ClientId,
    SecurityServerClient,
    SecurityServerId,
    ServiceId,
    XRoadError,
    XRoadProtocolError,
    build_health_data_request,
    build_operational_data_request,
    parse_health_data_response,
    parse_operational_data_response,
)
from scd_monitor.xroad.opmon import DEFAULT_OUTPUT_FIELDS, OUTPUT_FIELDS
from scd_simulator.rawhttp import Connection, Request, Response
from tests.xroad.data import serve, url

OPMON = Path(__file__).parent / "fixtures" / "opmon"
DOC_TYPE = (
    'multipart/related; type="text/xml"; charset=UTF-8; '
    "boundary=xroadfngEfgBlxyLszDaqXiFfDxVzvvlbhU"
)
SERVER_TYPE = (
    'multipart/related; type="text/xml"; charset=UTF-8; '
    "boundary=xroadQmZbKwTcRsPvNyLhJdGfXeUaWoIiSq"
)
EE_SERVER = SecurityServerId(ClientId("EE", "GOV", "00000001"), "00000001_1")
OM = "{http://x-road.eu/xsd/op-monitoring.xsd}"
XRD = "{http://x-road.eu/xsd/xroad.xsd}"
IDN = "{http://x-road.eu/xsd/identifiers}"


def fixture(name: str) -> bytes:
    return (OPMON / name).read_bytes()


def shape(element: ET.Element) -> tuple[Any, ...]:
    """An element as comparable data: tag, attributes, stripped text, children."""
    return (
        element.tag,
        dict(element.attrib),
        (element.text or "").strip(),
        [shape(child) for child in element],
    )


def parse(data: bytes) -> ET.Element:
    root: ET.Element = defused_fromstring(data, forbid_dtd=True)
    return root


def soap_part(
    count: str = "1", records: str = "cid:operational-monitoring-data.json.gz", extra: str = ""
) -> bytes:
    """The SOAP part of PR-OPMON C.2 with the body's values replaced."""
    soap = fixture("operational-data-response.xml")
    soap = soap.replace(
        b"<om:recordsCount>122</om:recordsCount>",
        f"<om:recordsCount>{count}</om:recordsCount>".encode(),
    )
    return soap.replace(
        b"<om:records>cid:operational-monitoring-data.json.gz</om:records>",
        f"<om:records>{records}</om:records>{extra}".encode(),
    )


def frame(
    soap: bytes,
    attachment: bytes | None,
    *,
    content_id: str = "<operational-monitoring-data.json.gz>",
    boundary: str = "xroadAbCdEfGhIjKlMnOpQrStUvWxYzAbCd",
) -> tuple[bytes, str]:
    """Parts framed as X-Road's MultipartOutputStream writes them."""
    parts = [f"--{boundary}\r\ncontent-type:text/xml; charset=UTF-8\r\n\r\n".encode() + soap]
    if attachment is not None:
        parts.append(
            f"--{boundary}\r\ncontent-type:application/gzip\r\n"
            f"content-transfer-encoding: binary\r\ncontent-id: {content_id}\r\n\r\n".encode()
            + attachment
        )
    body = b"\r\n".join(parts) + f"\r\n--{boundary}--\r\n".encode()
    return body, f'multipart/related; type="text/xml"; charset=UTF-8; boundary={boundary}'


def gz(data: bytes) -> bytes:
    return gzip.compress(data, mtime=0)


def records_json(*records: object) -> bytes:
    return json.dumps({"records": list(records)}).encode()


GOOD = json.loads(fixture("operational-data-records.json"))["records"][0]


def page_of(*records: object, count: int | None = None) -> Any:
    body, content_type = frame(
        soap_part(str(len(records) if count is None else count)), gz(records_json(*records))
    )
    return parse_operational_data_response(body, content_type)


# -- requests ----------------------------------------------------------------------------


def test_operational_data_request_is_annex_c1() -> None:
    built = build_operational_data_request(
        ClientId("EE", "GOV", "00000001", "System1"),
        EE_SERVER,
        1480512828,
        1480512832,
        output_fields=(),
        message_id="1KNtf07U6qIyOcJnkirRaE0hRe4bM7WF",
    )
    assert shape(parse(built)) == shape(parse(fixture("operational-data-request.xml")))
    assert b'xmlns:om="http://x-road.eu/xsd/op-monitoring.xsd"' in built


def test_health_data_request_is_annex_c3() -> None:
    built = build_health_data_request(
        ClientId("EE", "GOV", "00000000", "System1"),
        EE_SERVER,
        filter_client=ClientId("EE", "GOV", "00000001", "System2"),
        message_id="0PebOv6afaFEMVqPcwwtzIZCuRiRBu6T",
    )
    assert shape(parse(built)) == shape(parse(fixture("health-data-request.xml")))


def test_operational_data_request_asks_for_the_fields_it_reads_and_filters() -> None:
    provider = ClientId("CO", "GOB", "899999001", "CARPETA")
    built = parse(
        build_operational_data_request(
            ClientId("CO", "GOB", "8999999999", "MONITOR"),
            SecurityServerId.parse("SERVER:CO/GOB/8999999999/ss1"),
            0,
            99,
            filter_client=provider,
        )
    )
    body = built.find(f"*/{OM}getSecurityServerOperationalData")
    assert body is not None
    fields = [e.text for e in body.iter(f"{OM}outputField")]
    assert fields == list(DEFAULT_OUTPUT_FIELDS)
    assert set(fields) <= OUTPUT_FIELDS
    client = body.find(f"{OM}searchCriteria/{OM}client")
    assert client is not None
    assert client.get(f"{IDN}objectType") == "SUBSYSTEM"
    assert [e.text for e in client] == ["CO", "GOB", "899999001", "CARPETA"]
    service = built.find(f"*/{XRD}service")
    assert service is not None
    assert [e.text for e in service] == [
        "CO",
        "GOB",
        "8999999999",
        "getSecurityServerOperationalData",
    ]
    # Each request carries a new id unless one is given.
    one, two = (
        parse(build_health_data_request(ClientId("CO", "GOB", "1"), EE_SERVER)).findtext(
            f"*/{XRD}id"
        )
        for _ in range(2)
    )
    assert one and two and one != two


def test_request_builders_refuse_what_no_server_accepts() -> None:
    monitor = ClientId("CO", "GOB", "1")
    with pytest.raises(ValueError, match="unknown output field"):
        build_operational_data_request(monitor, EE_SERVER, 0, 1, output_fields=["nope"])
    with pytest.raises(TypeError):
        build_operational_data_request(monitor, EE_SERVER, 0, "1")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="server code"):
        SecurityServerId.parse("CO/GOB/1/a:b")


# -- the protocol's example answers ------------------------------------------------------


def test_health_data_annex_c4() -> None:
    health = parse_health_data_response(fixture("health-data-response.xml"))
    assert health.monitoring_startup == datetime(2016, 11, 30, 13, 35, 0, 441000, tzinfo=UTC)
    assert health.statistics_period_seconds == 600
    assert health.refused == ()
    (entry,) = health.services
    assert entry.service == ServiceId(
        ClientId("EE", "GOV", "00000001", "System2"), "xroadGetRandom", "v1"
    )
    assert (entry.successful_count, entry.unsuccessful_count) == (1, 0)
    assert entry.last_successful == datetime(2016, 11, 30, 13, 35, 1, 824000, tzinfo=UTC)
    assert entry.last_unsuccessful is None
    assert entry.service_type == "WSDL"
    assert entry.request_min_duration_ms == entry.request_max_duration_ms == 42.0
    assert entry.request_duration_std_dev_ms == 0.0
    assert (entry.request_min_size, entry.request_average_size) == (1629.0, 1629.0)
    assert (entry.response_max_size, entry.response_size_std_dev) == (1519.0, 0.0)


def test_operational_data_annex_c2_as_printed() -> None:
    """The doc's multipart (bare LF, lower-case headers without a space), its C.2.1
    payload gzipped in place of "(binary data)"."""
    page = parse_operational_data_response(fixture("operational-data-response-doc.mime"), DOC_TYPE)
    assert page.records_count == 122  # what the example says; its payload holds one
    assert page.next_records_from is None
    assert page.refused == ()
    (record,) = page.records
    assert record.monitoring_data_ts == 1477633845
    assert record.side == "Client"
    assert record.succeeded is True
    assert record.client == ClientId("EE", "GOV", "00000001", "subsystem1")
    assert record.service == ServiceId(
        ClientId("EE", "GOV", "00000000", "subsystem1"), "xroadGetRandom", "v1"
    )
    assert (record.request_in_ts, record.response_out_ts) == (1477633844973, 1477633845243)
    assert record.duration_ms == 270
    assert (record.request_size, record.response_size) == (1629, 1518)
    assert record.service_type == "WSDL"
    assert record.message_id == "1TzYPstxXyYPtNsos4TNEAPykJh50aJz"
    assert record.fault_code is None and record.status_code is None


def test_operational_data_as_the_server_encoder_frames_it() -> None:
    page = parse_operational_data_response(
        fixture("operational-data-response-server.mime"), SERVER_TYPE
    )
    assert (page.records_count, len(page.records), page.next_records_from) == (1, 1, 1477633846)


def test_tolerated_framings() -> None:
    soap, attachment = soap_part(), gz(records_json(GOOD))
    # Quoted boundary, percent-encoded cid (RFC 2392), Content-ID without brackets.
    body, _ = frame(
        soap_part(records="cid:operational%2Dmonitoring-data.json.gz"),
        attachment,
        content_id="operational-monitoring-data.json.gz",
        boundary="b1",
    )
    page = parse_operational_data_response(body, 'multipart/related; boundary="b1"')
    assert len(page.records) == 1
    # The MIME header block at the start of the body (as PR-OPMON C.2 prints the message),
    # served as an opaque file.
    body, content_type = frame(soap, attachment, boundary="b2")
    entity = f"Content-Type: {content_type}\r\n\r\n".encode() + body
    page = parse_operational_data_response(entity, "application/octet-stream")
    assert len(page.records) == 1
    # The attachment first, the SOAP part named by ``start``, base64 transfer encoding.
    import base64

    b64 = base64.encodebytes(attachment)
    reordered = (
        b"--b3\r\nContent-Type: application/gzip\r\nContent-Transfer-Encoding: base64\r\n"
        b"Content-ID: <operational-monitoring-data.json.gz>\r\n\r\n" + b64 + b"\r\n"
        b"--b3\r\nContent-Type: text/xml\r\nContent-ID: <soap>\r\n\r\n" + soap + b"\r\n--b3--\r\n"
    )
    page = parse_operational_data_response(
        reordered, 'multipart/related; type="text/xml"; start="<soap>"; boundary=b3'
    )
    assert len(page.records) == 1


# -- hostile answers ---------------------------------------------------------------------


def test_a_gzip_bomb_is_refused_without_exhausting_memory() -> None:
    buffer = io.BytesIO()
    chunk = b"\x00" * (1 << 20)
    with gzip.GzipFile(fileobj=buffer, mode="wb", mtime=0, compresslevel=9) as out:
        out.write(b'{"records": [')
        for _ in range(200):  # 200 MiB of zeros in ~200 KiB
            out.write(chunk)
    bomb = buffer.getvalue()
    assert len(bomb) < 1 << 20
    body, content_type = frame(soap_part(), bomb)
    tracemalloc.start()
    try:
        with pytest.raises(XRoadProtocolError, match="more than 4194304 bytes") as caught:
            parse_operational_data_response(body, content_type, max_records_bytes=4 << 20)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert caught.value.kind == "too_large"
    assert peak < 32 << 20


@pytest.mark.parametrize(
    ("attachment", "message"),
    [
        (gz(b"{not json"), "not valid JSON"),
        (gz(b'{"records": {}}'), "is not"),
        (gz(b"[1, 2]"), "is not"),
        (gz(b'{"records": [' * 100_000), "not valid JSON"),
        (b'{"records": []}', "not gzip data"),
        (gz(records_json(GOOD))[:-12], "truncated"),
        (gz(records_json(GOOD)) + b"trailing", "data after the gzip stream"),
        (b"\x1f\x8b" + b"\xff" * 40, "not valid gzip"),
        (gz(b'{"records": ["\xff\xfe"]}'), "not valid JSON"),
    ],
)
def test_a_bad_attachment_is_a_protocol_error(attachment: bytes, message: str) -> None:
    body, content_type = frame(soap_part(), attachment)
    with pytest.raises(XRoadProtocolError, match=message):
        parse_operational_data_response(body, content_type)


def test_two_gzip_members_are_one_payload() -> None:
    payload = records_json(GOOD, GOOD)
    body, content_type = frame(soap_part("2"), gz(payload[:20]) + gz(payload[20:]))
    assert len(parse_operational_data_response(body, content_type).records) == 2


def test_bad_records_are_refused_and_the_good_ones_kept() -> None:
    def bad(**changes: object) -> dict[str, Any]:
        record = dict(GOOD)
        for key, value in changes.items():
            if value is None:
                record.pop(key)
            else:
                record[key] = value
        return record

    long_fault = "Server.ServerProxy.ServiceFailed\x1b[31m" + "X" * 5000
    hostile = (
        b'{"records": ['
        + json.dumps(GOOD).encode()
        + b', {"monitoringDataTs": 1477633845, "securityServerType": "Producer",'
        b' "succeeded": true, "serviceXRoadInstance": "EE", "serviceMemberClass": "GOV",'
        b' "serviceMemberCode": "1", "serviceCode": "a\\ud800b"}'
        + b', {"monitoringDataTs": 1477633845, "securityServerType": "Producer",'
        b' "succeeded": true, "messageId": "id\\u0000x"}'
        + b', {"monitoringDataTs": 123456789012345678901234567890, "securityServerType": "Client",'
        b' "succeeded": true}'
        + b', {"monitoringDataTs": NaN, "securityServerType": "Client", "succeeded": true}'
        + b", "
        + b", ".join(
            json.dumps(r).encode()
            for r in (
                bad(succeeded="true"),
                bad(requestInTs="1477633844973"),
                bad(monitoringDataTs=1477633845.5),
                bad(monitoringDataTs=-1),
                bad(monitoringDataTs=None),
                bad(securityServerType="Server"),
                bad(serviceCode="x" * 300),
                bad(clientMemberCode="a/b"),
                bad(clientMemberCode=None),
                bad(messageId="m" * 1000),
                bad(requestSize=True),
                42,
                bad(faultCode=long_fault, succeeded=False),
                bad(
                    clientXRoadInstance=None,
                    clientMemberClass=None,
                    clientMemberCode=None,
                    clientSubsystemCode=None,
                ),
            )
        )
        + b"]}"
    )
    body, content_type = frame(soap_part("19"), gz(hostile))
    page = parse_operational_data_response(body, content_type)
    assert page.records_count == 19
    assert len(page.records) == 3
    assert len(page.records) + len(page.refused) == page.records_count
    first, faulty, anonymous = page.records
    assert first.service is not None and first.service.service_code == "xroadGetRandom"
    assert faulty.succeeded is False
    assert faulty.fault_code is not None
    assert faulty.fault_code.startswith("Server.ServerProxy.ServiceFailed\u241b[31m")
    assert len(faulty.fault_code) <= 200
    assert anonymous.client is None and anonymous.service is not None
    where = [entry.where.rsplit("#", 1)[1] for entry in page.refused]
    assert where == [str(n) for n in range(2, 18)]
    reasons = " | ".join(entry.reason for entry in page.refused)
    for expected in (
        "serviceCode contains a lone surrogate",
        "messageId contains NUL",
        "monitoringDataTs is not an integer (unreadable number)",
        "succeeded is not a boolean (str)",
        "requestInTs is not an integer (str)",
        "monitoringDataTs is not an integer (float)",
        "monitoringDataTs -1 is out of range",
        "monitoringDataTs is missing",
        "expected Client or Producer",
        "longer than 255 characters",
        "contains '/'",
        "client identifier is incomplete",
        "messageId is longer than 255",
        "requestSize is not an integer (bool)",
        "not an object",
    ):
        assert expected in reasons
    # Every refused subject and reason is clean text: no surrogate, no NUL.
    for entry in page.refused:
        assert "\x00" not in entry.subject + entry.reason
        entry.subject.encode("utf-8")


@pytest.mark.parametrize(
    ("soap", "attachment", "message"),
    [
        (soap_part(), None, "attachment .* is missing"),
        (
            soap_part(records="cid:other.json.gz"),
            gz(records_json()),
            "no attachment has Content-ID",
        ),
        (soap_part(records="operational-monitoring-data.json.gz"), gz(records_json()), "cid:"),
        (soap_part(records=""), gz(records_json()), "reference\\) is missing"),
        (soap_part(count="99999999999999999999"), gz(records_json()), "recordsCount is not"),
        (soap_part(count="2147483648"), gz(records_json()), "recordsCount 2147483648 is out"),
        (soap_part(count="-1"), gz(records_json()), "recordsCount -1 is out"),
        (soap_part(count="1e3"), gz(records_json()), "recordsCount is not an integer"),
        (
            soap_part(extra="<om:nextRecordsFrom>soon</om:nextRecordsFrom>"),
            gz(records_json()),
            "nextRecordsFrom is not",
        ),
        (
            soap_part().replace(b"getSecurityServerOperationalDataResponse", b"somethingElse"),
            gz(records_json()),
            "has no <getSecurityServerOperationalDataResponse>",
        ),
    ],
)
def test_a_bad_soap_part_is_a_protocol_error(
    soap: bytes, attachment: bytes | None, message: str
) -> None:
    body, content_type = frame(soap, attachment)
    with pytest.raises(XRoadProtocolError, match=message):
        parse_operational_data_response(body, content_type)


def test_framing_errors() -> None:
    body, content_type = frame(soap_part(), gz(records_json(GOOD)))
    with pytest.raises(XRoadProtocolError, match="closing boundary"):
        parse_operational_data_response(body[:-40], content_type)
    with pytest.raises(XRoadProtocolError, match="without a boundary"):
        parse_operational_data_response(body, "multipart/related")
    with pytest.raises(XRoadProtocolError, match="no multipart boundary"):
        parse_operational_data_response(body, "multipart/related; boundary=other")
    with pytest.raises(XRoadProtocolError, match="over the limit") as caught:
        parse_operational_data_response(body, content_type, max_bytes=100)
    assert caught.value.kind == "too_large"
    with pytest.raises(XRoadProtocolError, match="message id"):
        parse_operational_data_response(body, content_type, message_id="another-id")


def test_a_fault_is_raised_as_an_x_road_error() -> None:
    fault = fixture("soap-fault-invalid-request.xml")
    with pytest.raises(XRoadError) as caught:
        parse_operational_data_response(fault, "text/xml; charset=UTF-8", http_status=500)
    assert caught.value.code == "Client.InvalidRequest"
    assert caught.value.side == "client"
    assert "Records not available from 1924995955 yet" in caught.value.message
    assert caught.value.http_status == 500
    # A fault inside the SOAP part of a multipart answer, and in the health data.
    body, content_type = frame(fault, None)
    with pytest.raises(XRoadError, match=r"Client\.InvalidRequest"):
        parse_operational_data_response(body, content_type)
    with pytest.raises(XRoadError, match=r"Client\.InvalidRequest"):
        parse_health_data_response(fault)
    # A plain SOAP answer that is no fault has no records.
    with pytest.raises(XRoadProtocolError, match="no records attachment"):
        parse_operational_data_response(soap_part(), "text/xml")


def _health(events: str, startup: str = "1480512900441") -> bytes:
    doc = fixture("health-data-response.xml")
    start = doc.index(b"<om:servicesEvents>") + len(b"<om:servicesEvents>")
    end = doc.index(b"</om:servicesEvents>")
    doc = doc[:start] + events.encode() + doc[end:]
    return doc.replace(b"1480512900441", startup.encode())


def _event(code: str = "xroadGetRandom", stats: str = "", **fields: str) -> str:
    extra = "".join(f"<om:{name}>{value}</om:{name}>" for name, value in fields.items())
    return (
        '<om:serviceEvents><om:service id:objectType="SERVICE">'
        "<id:xRoadInstance>EE</id:xRoadInstance><id:memberClass>GOV</id:memberClass>"
        f"<id:memberCode>00000001</id:memberCode><id:serviceCode>{code}</id:serviceCode>"
        f"</om:service>{extra}<om:lastPeriodStatistics>"
        "<om:successfulRequestCount>3</om:successfulRequestCount>"
        f"<om:unsuccessfulRequestCount>1</om:unsuccessfulRequestCount>{stats}"
        "</om:lastPeriodStatistics></om:serviceEvents>"
    )


def test_bad_service_events_are_refused_and_the_good_ones_kept() -> None:
    events = "".join(
        [
            _event("good", lastUnsuccessfulRequestTimestamp="1480512901000"),
            _event("a;b"),
            _event("counts").replace(
                "<om:successfulRequestCount>3<", "<om:successfulRequestCount>x<"
            ),
            _event("nan", "<om:requestAverageDuration>NaN</om:requestAverageDuration>"),
            _event("neg", "<om:requestMaxSize>-5</om:requestMaxSize>"),
            _event("far", lastSuccessfulRequestTimestamp="9" * 18),
            "<om:serviceEvents><om:serviceType>REST</om:serviceType></om:serviceEvents>",
            _event("memberlevel", serviceType="REST"),
        ]
    )
    health = parse_health_data_response(_health(events))
    assert [s.service.service_code for s in health.services] == ["good", "memberlevel"]
    good = health.services[0]
    assert good.service.client == ClientId("EE", "GOV", "00000001")
    assert (good.successful_count, good.unsuccessful_count) == (3, 1)
    assert good.last_unsuccessful == datetime(2016, 11, 30, 13, 35, 1, tzinfo=UTC)
    assert good.request_average_duration_ms is None
    assert health.services[1].service_type == "REST"
    assert [r.where.rsplit("#", 1)[1] for r in health.refused] == ["2", "3", "4", "5", "6", "7"]
    reasons = [r.reason for r in health.refused]
    assert "';'" in reasons[0]
    assert "successfulRequestCount is not an integer" in reasons[1]
    assert "requestAverageDuration is not a finite number" in reasons[2]
    assert "requestMaxSize is out of range" in reasons[3]
    assert "not a representable time" in reasons[4]
    assert "has no <service>" in reasons[5]


@pytest.mark.parametrize(
    ("document", "message"),
    [
        (_health("", startup=""), "monitoringStartupTimestamp is not an integer"),
        (_health("", startup="99999999999999999"), "not a representable time"),
        (
            _health("").replace(
                b"<om:statisticsPeriodSeconds>600", b"<om:statisticsPeriodSeconds>6e2"
            ),
            "statisticsPeriodSeconds is not an integer",
        ),
        (b"<a/>", "not a SOAP 1.1 envelope"),
        (b'<!DOCTYPE a [<!ENTITY x "y">]><a/>', "DTD"),
    ],
)
def test_a_bad_health_answer_is_a_protocol_error(document: bytes, message: str) -> None:
    with pytest.raises(XRoadProtocolError, match=message):
        parse_health_data_response(document)


# -- the client over HTTP ----------------------------------------------------------------


async def test_client_posts_the_request_and_checks_the_page() -> None:
    """What goes over the wire, and what the client refuses on top of the parser."""
    seen: list[Request] = []
    answers: list[tuple[int, int | None]] = []

    async def handle(request: Request, connection: Connection) -> Response:
        seen.append(request)
        sent = parse(request.body)
        message_id = sent.findtext(f"*/{XRD}id") or ""
        ts, following = answers.pop(0)
        extra = "" if following is None else f"<om:nextRecordsFrom>{following}</om:nextRecordsFrom>"
        soap = soap_part(extra=extra).replace(
            b"1KNtf07U6qIyOcJnkirRaE0hRe4bM7WF", message_id.encode()
        )
        body, content_type = frame(soap, gz(records_json(dict(GOOD, monitoringDataTs=ts))))
        return Response(200, body, content_type=content_type)

    monitor = ClientId("EE", "GOV", "00000000", "System1")
    async with serve(handle) as server:
        client = SecurityServerClient(url(server), client_id=monitor, timeout=5.0)
        answers.append((1477633845, 1477633846))
        page = await client.operational_data(EE_SERVER, 1477633800, 1477633900)
        assert len(page.records) == 1 and page.next_records_from == 1477633846
        request = seen[-1]
        assert (request.method, request.path) == ("POST", "/")
        assert request.headers["content-type"] == "text/xml; charset=utf-8"
        sent = parse(request.body)
        security_server = sent.find(f"*/{XRD}securityServer")
        assert security_server is not None
        assert security_server.get(f"{IDN}objectType") == "SERVER"
        assert [e.text for e in security_server] == ["EE", "GOV", "00000001", "00000001_1"]
        assert sent.findtext(f".//{OM}recordsFrom") == "1477633800"
        # A record outside the period asked for is refused, not kept.
        answers.append((1477633845, None))
        page = await client.operational_data(EE_SERVER, 1477633850, 1477633900)
        assert page.records == ()
        assert "outside the period" in page.refused[0].reason
        # A nextRecordsFrom that does not move forward would make a caller loop.
        answers.append((1477633845, 1477633845))
        with pytest.raises(XRoadProtocolError, match="does not move past"):
            await client.operational_data(EE_SERVER, 1477633845, 1477633900)
