"""X-Road operational monitoring (PR-OPMON, ``doc/OperationalMonitoring/Protocols/
pr-opmon_x-road_operational_monitoring_protocol_Y-1096-2.md`` in ``nordic-institute/X-Road``).

Two services of a security server, called as regular X-Road SOAP services through the
monitor's own security server, with the target server's owner as the service provider
and the target server in the ``securityServer`` header:

* ``getSecurityServerHealthData``: per service, successful and unsuccessful request
  counts over the last statistics period, last success / failure times, request
  duration and message size statistics (:class:`HealthData`);
* ``getSecurityServerOperationalData``: the operational data records of a time period
  (whole seconds, ``recordsFrom`` ≤ ``monitoringDataTs`` ≤ ``recordsTo``), as a gzipped
  JSON attachment of a ``multipart/related`` answer (swaRef), with ``nextRecordsFrom``
  when the answer was cut (a page always ends at a whole second: X-Road adds every record
  of the last second it sends) or ``recordsTo`` was moved back to what the server has
  committed (:class:`OperationalDataPage`).

This module holds the data model, the request builders and the answer parsers; the
network side is :meth:`scd_monitor.xroad.client.SecurityServerClient.health_data` and
:meth:`~scd_monitor.xroad.client.SecurityServerClient.operational_data`. One malformed
record or service entry never stops the others: it is left out and counted.
"""

from __future__ import annotations

import json
import math
import re
import uuid
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final, Literal
from urllib.parse import unquote
from xml.sax.saxutils import escape

from scd_monitor.sanitize import clean_text
from scd_monitor.xroad.errors import XRoadProtocolError
from scd_monitor.xroad.identifiers import (
    ClientId,
    RefusedEntry,
    ServiceId,
    raw_subject,
    validate_part,
)
from scd_monitor.xroad.metaservices import (
    _CLIENT_FIELDS,
    _XML_SERVICE_FIELDS,
    PROTOCOL_VERSION,
    _check_answer,
    _identifier,
    _service_fields,
    _service_from_xml,
    _xml_subject,
    parse_soap_envelope,
)
from scd_monitor.xroad.mime import MimePart, leading_headers, parse_header_value, split_multipart
from scd_monitor.xroad.xml import (
    DEFAULT_MAX_BYTES,
    NS_ID,
    NS_SOAP_ENV,
    NS_XROAD,
    Element,
    child,
    child_text,
    children,
    local_name,
)

__all__ = [
    "DEFAULT_MAX_RECORDS_BYTES",
    "DEFAULT_OUTPUT_FIELDS",
    "HEALTH_DATA",
    "NS_OPMON",
    "OPERATIONAL_DATA",
    "OUTPUT_FIELDS",
    "RECORDS_CID",
    "HealthData",
    "OperationalDataPage",
    "OperationalRecord",
    "SecurityServerId",
    "ServiceHealth",
    "build_health_data_request",
    "build_operational_data_request",
    "parse_health_data_response",
    "parse_operational_data_response",
]

NS_OPMON: Final = "http://x-road.eu/xsd/op-monitoring.xsd"
"""The operational monitoring messages (PR-OPMON Annex A); written with the prefix ``om``
as in the protocol's examples and X-Road's own test requests."""
OPERATIONAL_DATA: Final = "getSecurityServerOperationalData"
HEALTH_DATA: Final = "getSecurityServerHealthData"
RECORDS_CID: Final = "operational-monitoring-data.json.gz"
"""The Content-ID X-Road gives the records attachment (``OperationalDataRequestHandler.CID``)."""

OUTPUT_FIELDS: Final[frozenset[str]] = frozenset(
    {
        "monitoringDataTs",
        "securityServerInternalIp",
        "securityServerType",
        "requestInTs",
        "requestOutTs",
        "responseInTs",
        "responseOutTs",
        "clientXRoadInstance",
        "clientMemberClass",
        "clientMemberCode",
        "clientSubsystemCode",
        "serviceXRoadInstance",
        "serviceMemberClass",
        "serviceMemberCode",
        "serviceSubsystemCode",
        "serviceCode",
        "restMethod",
        "restPath",
        "xRoadVersion",
        "serviceVersion",
        "representedPartyClass",
        "representedPartyCode",
        "messageId",
        "messageUserId",
        "messageIssue",
        "messageProtocolVersion",
        "clientSecurityServerAddress",
        "serviceSecurityServerAddress",
        "requestSize",
        "responseSize",
        "requestMimeSize",
        "requestAttachmentCount",
        "responseMimeSize",
        "responseAttachmentCount",
        "succeeded",
        "faultCode",
        "faultString",
        "xRequestId",
        "statusCode",
        "serviceType",
    }
)
"""Every field a server accepts in ``outputSpec`` (X-Road's ``OperationalDataRecord``
fields, ``OperationalDataOutputSpecFields.OUTPUT_FIELDS``); any other is refused with a
``Client.InvalidRequest`` fault."""

DEFAULT_OUTPUT_FIELDS: Final[tuple[str, ...]] = (
    "monitoringDataTs",
    "securityServerType",
    "requestInTs",
    "responseOutTs",
    "clientXRoadInstance",
    "clientMemberClass",
    "clientMemberCode",
    "clientSubsystemCode",
    "serviceXRoadInstance",
    "serviceMemberClass",
    "serviceMemberCode",
    "serviceSubsystemCode",
    "serviceCode",
    "serviceVersion",
    "messageId",
    "requestSize",
    "responseSize",
    "succeeded",
    "faultCode",
    "statusCode",
    "serviceType",
)
"""The fields :class:`OperationalRecord` reads: asking only for them keeps the payload
small (no fault strings, addresses, user ids). An empty ``output_fields`` asks for all."""

DEFAULT_MAX_RECORDS_BYTES: Final = 64 * 1024 * 1024
"""Decompressed JSON read of one records attachment by default (a page of 10,000 records
with the default fields is a few MiB)."""

_FAULT_CODE_LIMIT: Final = 200
_TEXT_LIMIT: Final = 255
"""``maxLength`` of the string fields of the payload schema (PR-OPMON Annex B)."""
_INT_MAX: Final = 2**31 - 1
_LONG_MAX: Final = 2**63 - 1
_INTEGER = re.compile(r"^[+-]?[0-9]{1,19}$")
_DECIMAL = re.compile(
    r"^[+-]?(?:[0-9]{1,30}(?:\.[0-9]{0,30})?|\.[0-9]{1,30})(?:[eE][+-]?[0-9]{1,3})?$"
)
_BAD_TEXT = re.compile("[\x00\ud800-\udfff]")
_GZIP_MAGIC = b"\x1f\x8b"
_CHUNK = 64 * 1024

RecordSide = Literal["Client", "Producer"]
"""``securityServerType``: the record was written by the client's security server
(``Client``) or by the service provider's (``Producer``)."""


@dataclass(frozen=True, slots=True)
class SecurityServerId:
    """A security server: its owner and server code (``SERVER:CO/GOB/899999/ss1``)."""

    owner: ClientId
    server_code: str

    def __post_init__(self) -> None:
        if self.owner.subsystem_code is not None:
            raise ValueError("a security server's owner is a member, not a subsystem")
        validate_part(self.server_code, "server code")

    @classmethod
    def parse(cls, text: str) -> SecurityServerId:
        """``[SERVER:]INSTANCE/CLASS/MEMBER/SERVERCODE``; ``ValueError`` otherwise."""
        body = text.removeprefix("SERVER:")
        parts = body.split("/")
        if len(parts) != 4:
            raise ValueError(
                f"security server identifier must be INSTANCE/CLASS/MEMBER/SERVER, not {text!r}"
            )
        return cls(ClientId(*parts[:3]), parts[3])

    @property
    def parts(self) -> list[str]:
        return [*self.owner.parts, self.server_code]

    def __str__(self) -> str:
        return "/".join(self.parts)


@dataclass(frozen=True, slots=True)
class OperationalRecord:
    """One operational data record (PR-OPMON Annex B), the fields the monitor uses.

    Times are as sent: ``monitoring_data_ts`` in seconds, the others in milliseconds
    (Unix epoch). ``client`` or ``service`` is ``None`` when the record does not name it
    (a request refused before it was resolved). ``fault_code`` is cleaned text, bounded.
    """

    monitoring_data_ts: int
    side: RecordSide
    succeeded: bool
    client: ClientId | None = None
    service: ServiceId | None = None
    request_in_ts: int | None = None
    response_out_ts: int | None = None
    fault_code: str | None = None
    request_size: int | None = None
    response_size: int | None = None
    status_code: int | None = None
    service_type: str | None = None
    message_id: str | None = None

    @property
    def duration_ms(self) -> int | None:
        """``responseOutTs − requestInTs`` (how X-Road's health data measures a request),
        ``None`` when either is missing or the difference is negative."""
        if self.request_in_ts is None or self.response_out_ts is None:
            return None
        duration = self.response_out_ts - self.request_in_ts
        return duration if duration >= 0 else None


@dataclass(frozen=True, slots=True)
class OperationalDataPage:
    """One ``getSecurityServerOperationalData`` answer.

    ``records_count`` is what the SOAP body said; ``records`` what could be read of the
    attachment (``refused`` lists the records left out, so ``len(records) +
    len(refused) == records_count`` for an honest server). ``next_records_from`` is the
    ``recordsFrom`` of the next query, ``None`` when the period asked for is complete.
    """

    records: tuple[OperationalRecord, ...]
    records_count: int
    next_records_from: int | None = None
    refused: tuple[RefusedEntry, ...] = ()


@dataclass(frozen=True, slots=True)
class ServiceHealth:
    """One ``serviceEvents`` entry of the health data: statistics of the last period
    (durations in milliseconds, sizes in bytes; ``None`` when not sent)."""

    service: ServiceId
    successful_count: int
    unsuccessful_count: int
    last_successful: datetime | None = None
    last_unsuccessful: datetime | None = None
    service_type: str | None = None
    request_min_duration_ms: float | None = None
    request_average_duration_ms: float | None = None
    request_max_duration_ms: float | None = None
    request_duration_std_dev_ms: float | None = None
    request_average_size: float | None = None
    request_max_size: float | None = None
    response_average_size: float | None = None
    response_max_size: float | None = None
    request_min_size: float | None = None
    request_size_std_dev: float | None = None
    response_min_size: float | None = None
    response_size_std_dev: float | None = None


@dataclass(frozen=True, slots=True)
class HealthData:
    """One ``getSecurityServerHealthData`` answer."""

    monitoring_startup: datetime
    statistics_period_seconds: int
    services: tuple[ServiceHealth, ...]
    refused: tuple[RefusedEntry, ...] = ()


# -- requests (PR-OPMON §2, §3, Annex C.1, C.3) ----------------------------------------


def _envelope(
    client: ClientId,
    server: SecurityServerId,
    service_code: str,
    body: str,
    message_id: str | None,
) -> bytes:
    """A SOAP request to the owner of ``server`` for ``service_code``, with the
    ``securityServer`` header naming ``server`` (PR-OPMON §2: "MUST be used in case the
    sender of the request is the owner of target security server")."""
    service = ServiceId(server.owner, service_code)
    header = [
        _identifier("xroad:client", client.object_type, client.parts, _CLIENT_FIELDS),
        _identifier("xroad:service", "SERVICE", service.parts, _service_fields(service)),
        _identifier("xroad:securityServer", "SERVER", server.parts, _SERVER_FIELDS),
        f"<xroad:id>{escape(message_id or str(uuid.uuid4()))}</xroad:id>",
        f"<xroad:protocolVersion>{PROTOCOL_VERSION}</xroad:protocolVersion>",
    ]
    envelope = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<SOAP-ENV:Envelope xmlns:SOAP-ENV="{NS_SOAP_ENV}" xmlns:xroad="{NS_XROAD}" '
        f'xmlns:om="{NS_OPMON}" xmlns:id="{NS_ID}">'
        f"<SOAP-ENV:Header>{''.join(header)}</SOAP-ENV:Header>"
        f"<SOAP-ENV:Body>{body}</SOAP-ENV:Body>"
        "</SOAP-ENV:Envelope>\n"
    )
    return envelope.encode("utf-8")


_SERVER_FIELDS = ("xRoadInstance", "memberClass", "memberCode", "serverCode")


def _filter_client(tag: str, client: ClientId | None) -> str:
    if client is None:
        return ""
    return _identifier(tag, client.object_type, client.parts, _CLIENT_FIELDS)


def build_health_data_request(
    client: ClientId,
    server: SecurityServerId,
    *,
    filter_client: ClientId | None = None,
    message_id: str | None = None,
) -> bytes:
    """A ``getSecurityServerHealthData`` request (PR-OPMON §3, C.3) from ``client`` to
    ``server``; ``filter_client`` keeps only the services of that provider. The message id
    is a new UUID unless given (pass one to check the answer's echo)."""
    criteria = ""
    if filter_client is not None:
        criteria = (
            f"<om:filterCriteria>{_filter_client('om:client', filter_client)}</om:filterCriteria>"
        )
    body = f"<om:{HEALTH_DATA}>{criteria}</om:{HEALTH_DATA}>"
    return _envelope(client, server, HEALTH_DATA, body, message_id)


def build_operational_data_request(
    client: ClientId,
    server: SecurityServerId,
    records_from: int,
    records_to: int,
    *,
    filter_client: ClientId | None = None,
    output_fields: Sequence[str] = DEFAULT_OUTPUT_FIELDS,
    message_id: str | None = None,
) -> bytes:
    """A ``getSecurityServerOperationalData`` request (PR-OPMON §2, C.1): the records with
    ``records_from`` ≤ ``monitoringDataTs`` ≤ ``records_to`` (Unix seconds), of the
    service provider ``filter_client`` only when given, with ``output_fields`` (empty:
    every field). The numbers are sent as given: the server judges them (a negative or
    reversed period is its ``Client.InvalidRequest`` fault)."""
    for value in (records_from, records_to):
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError(f"records_from and records_to must be int, not {value!r}")
    unknown = sorted(set(output_fields) - OUTPUT_FIELDS)
    if unknown:
        raise ValueError(f"unknown output field(s) {unknown}; see OUTPUT_FIELDS")
    criteria = (
        "<om:searchCriteria>"
        f"<om:recordsFrom>{records_from}</om:recordsFrom>"
        f"<om:recordsTo>{records_to}</om:recordsTo>"
        f"{_filter_client('om:client', filter_client)}"
        "</om:searchCriteria>"
    )
    spec = ""
    if output_fields:
        fields = "".join(f"<om:outputField>{name}</om:outputField>" for name in output_fields)
        spec = f"<om:outputSpec>{fields}</om:outputSpec>"
    body = f"<om:{OPERATIONAL_DATA}>{criteria}{spec}</om:{OPERATIONAL_DATA}>"
    return _envelope(client, server, OPERATIONAL_DATA, body, message_id)


# -- numbers and times -----------------------------------------------------------------


def _xml_int(text: str | None, what: str, *, maximum: int = _LONG_MAX) -> int:
    """An ``xs:int``/``xs:long`` element's text: digits only, 0 ≤ value ≤ ``maximum``."""
    if text is None:
        raise XRoadProtocolError(f"{what} is missing")
    if not _INTEGER.match(text):
        raise XRoadProtocolError(f"{what} is not an integer: {text[:40]!r}")
    value = int(text)
    if not 0 <= value <= maximum:
        raise XRoadProtocolError(f"{what} {value} is out of range (0 to {maximum})")
    return value


def _xml_number(text: str | None, what: str) -> float | None:
    """An optional ``xs:long``/``xs:double`` statistic: a finite number ≥ 0, or ``None``."""
    if text is None:
        return None
    if not _DECIMAL.match(text):
        raise XRoadProtocolError(f"{what} is not a finite number: {text[:40]!r}")
    value = float(text)
    if not math.isfinite(value) or value < 0:
        raise XRoadProtocolError(f"{what} is out of range: {text[:40]!r}")
    return value


def _millis(value: int, what: str) -> datetime:
    """Unix milliseconds as an aware UTC datetime."""
    try:
        return datetime.fromtimestamp(value / 1000, UTC)
    except (OverflowError, OSError, ValueError):
        raise XRoadProtocolError(f"{what} {value} is not a representable time") from None


def _optional_millis(element: Element, name: str, where: str) -> datetime | None:
    text = child_text(element, name)
    if text is None:
        return None
    return _millis(_xml_int(text, f"{where}: {name}"), f"{where}: {name}")


# -- getSecurityServerHealthData answer (PR-OPMON §3, C.4) -----------------------------


def _response_wrapper(body: Element, name: str, what: str) -> Element:
    wrapper = child(body, name)
    if wrapper is None:
        found = [local_name(item.tag) for item in body if isinstance(item.tag, str)]
        raise XRoadProtocolError(f"{what}: body has no <{name}> (found {found or 'nothing'})")
    return wrapper


def parse_health_data_response(
    body: bytes,
    *,
    max_bytes: int = DEFAULT_MAX_BYTES,
    message_id: str | None = None,
    http_status: int | None = None,
) -> HealthData:
    """A ``getSecurityServerHealthDataResponse`` (PR-OPMON §3, C.4).

    Raises the answer's SOAP fault as :class:`~scd_monitor.xroad.errors.XRoadError`, and
    :class:`XRoadProtocolError` for an answer without the startup time or the period. A
    malformed ``serviceEvents`` entry (an invalid service identifier, a count that is not
    a number) is left out and listed in :attr:`HealthData.refused`. With ``message_id``,
    an answer echoing another id is refused.
    """
    what = f"{HEALTH_DATA} response"
    envelope = parse_soap_envelope(body, what=what, max_bytes=max_bytes)
    soap_body = _check_answer(envelope, what, message_id=message_id, http_status=http_status)
    wrapper = _response_wrapper(soap_body, f"{HEALTH_DATA}Response", what)
    startup_ms = _xml_int(
        child_text(wrapper, "monitoringStartupTimestamp"), f"{what}: monitoringStartupTimestamp"
    )
    period = _xml_int(
        child_text(wrapper, "statisticsPeriodSeconds"),
        f"{what}: statisticsPeriodSeconds",
        maximum=_INT_MAX,
    )
    services: list[ServiceHealth] = []
    refused: list[RefusedEntry] = []
    events = child(wrapper, "servicesEvents")
    entries = [] if events is None else list(children(events, "serviceEvents"))
    for index, entry in enumerate(entries):
        where = f"{what}, serviceEvents #{index + 1}"
        try:
            services.append(_service_health(entry, where))
        except XRoadProtocolError as exc:
            subject = _xml_subject(child(entry, "service"), _XML_SERVICE_FIELDS)
            refused.append(RefusedEntry(subject, exc.message.removeprefix(f"{where}: "), where))
    return HealthData(
        monitoring_startup=_millis(startup_ms, f"{what}: monitoringStartupTimestamp"),
        statistics_period_seconds=period,
        services=tuple(services),
        refused=tuple(refused),
    )


_STATISTICS = (
    ("requestMinDuration", "request_min_duration_ms"),
    ("requestAverageDuration", "request_average_duration_ms"),
    ("requestMaxDuration", "request_max_duration_ms"),
    ("requestDurationStdDev", "request_duration_std_dev_ms"),
    ("requestMinSize", "request_min_size"),
    ("requestAverageSize", "request_average_size"),
    ("requestMaxSize", "request_max_size"),
    ("requestSizeStdDev", "request_size_std_dev"),
    ("responseMinSize", "response_min_size"),
    ("responseAverageSize", "response_average_size"),
    ("responseMaxSize", "response_max_size"),
    ("responseSizeStdDev", "response_size_std_dev"),
)


def _service_health(entry: Element, where: str) -> ServiceHealth:
    service_element = child(entry, "service")
    if service_element is None:
        raise XRoadProtocolError(f"{where}: has no <service>")
    service = _service_from_xml(service_element, where)
    statistics = child(entry, "lastPeriodStatistics")
    successful = unsuccessful = 0
    numbers: dict[str, float | None] = {}
    if statistics is not None:
        successful = _xml_int(
            child_text(statistics, "successfulRequestCount"),
            f"{where}: successfulRequestCount",
            maximum=_INT_MAX,
        )
        unsuccessful = _xml_int(
            child_text(statistics, "unsuccessfulRequestCount"),
            f"{where}: unsuccessfulRequestCount",
            maximum=_INT_MAX,
        )
        for name, attribute in _STATISTICS:
            numbers[attribute] = _xml_number(child_text(statistics, name), f"{where}: {name}")
    service_type = child_text(entry, "serviceType")
    return ServiceHealth(
        service=service,
        successful_count=successful,
        unsuccessful_count=unsuccessful,
        last_successful=_optional_millis(entry, "lastSuccessfulRequestTimestamp", where),
        last_unsuccessful=_optional_millis(entry, "lastUnsuccessfulRequestTimestamp", where),
        service_type=clean_text(service_type, limit=_TEXT_LIMIT) if service_type else None,
        **numbers,
    )


# -- getSecurityServerOperationalData answer (PR-OPMON §2, C.2, Annex B) ---------------


def parse_operational_data_response(
    body: bytes,
    content_type: str | None,
    *,
    max_bytes: int = DEFAULT_MAX_BYTES,
    max_records_bytes: int = DEFAULT_MAX_RECORDS_BYTES,
    message_id: str | None = None,
    http_status: int | None = None,
) -> OperationalDataPage:
    """A ``getSecurityServerOperationalDataResponse`` (PR-OPMON §2, C.2): the SOAP part
    and the gzipped JSON records it references (swaRef ``cid:…``).

    Read as real servers write it (``MultipartSoapMessageEncoder``): ``multipart/related``
    with the boundary in the HTTP ``Content-Type`` (quoted or not) or in a header block the
    body starts with (the form PR-OPMON C.2 prints); CRLF or bare LF line breaks; part
    headers in any case (``content-type:text/xml``); the SOAP part is the one ``start``
    names, else the first; the attachment is the part whose Content-ID (angle brackets
    optional, percent-decoded) is the ``records`` reference. A plain ``text/xml`` answer
    can only be a fault (raised as :class:`~scd_monitor.xroad.errors.XRoadError`).

    The attachment is decompressed to at most ``max_records_bytes`` (past that:
    :class:`XRoadProtocolError` ``too_large``, so a gzip bomb costs no more memory than
    that) and must be ``{"records": [...]}``. Each record is read on its own: one with
    a wrong type, an invalid identifier, a lone surrogate or NUL, an over-long text or a
    missing ``monitoringDataTs``/``securityServerType``/``succeeded`` is listed in
    :attr:`OperationalDataPage.refused`, the others are kept.
    """
    what = f"{OPERATIONAL_DATA} response"
    if len(body) > max_bytes:
        raise XRoadProtocolError(
            f"{what}: {len(body)} bytes is over the limit of {max_bytes} bytes",
            kind="too_large",
        )
    media_value, params, start = _multipart_type(body, content_type, what)
    if not media_value.startswith("multipart/"):
        envelope = parse_soap_envelope(body, what=what, max_bytes=max_bytes)
        _check_answer(envelope, what, message_id=message_id, http_status=http_status)
        raise XRoadProtocolError(
            f"{what}: no records attachment (Content-Type {media_value or 'missing'}, "
            "expected multipart/related)"
        )
    boundary = params.get("boundary")
    if not boundary:
        raise XRoadProtocolError(f"{what}: multipart Content-Type without a boundary")
    parts = split_multipart(body[start:], boundary, what=what)
    if not parts:
        raise XRoadProtocolError(f"{what}: multipart body has no parts")
    root_index = _root_index(parts, params.get("start"))
    soap = parts[root_index].decoded(what)
    envelope = parse_soap_envelope(soap, what=what, max_bytes=max_bytes)
    soap_body = _check_answer(envelope, what, message_id=message_id, http_status=http_status)
    wrapper = _response_wrapper(soap_body, f"{OPERATIONAL_DATA}Response", what)
    records_count = _xml_int(
        child_text(wrapper, "recordsCount"), f"{what}: recordsCount", maximum=_INT_MAX
    )
    next_text = child_text(wrapper, "nextRecordsFrom")
    next_records_from = (
        None if next_text is None else _xml_int(next_text, f"{what}: nextRecordsFrom")
    )
    reference = child_text(wrapper, "records")
    if not reference:
        raise XRoadProtocolError(f"{what}: <records> (the attachment reference) is missing")
    attachment = _attachment(parts, root_index, reference, what)
    payload = _gunzip(attachment.decoded(f"{what} attachment"), max_records_bytes, what)
    records, refused = _records(payload, what)
    return OperationalDataPage(
        records=tuple(records),
        records_count=records_count,
        next_records_from=next_records_from,
        refused=tuple(refused),
    )


def _multipart_type(
    body: bytes, content_type: str | None, what: str
) -> tuple[str, dict[str, str], int]:
    """The media type and parameters, and where the multipart starts: the header block
    the body starts with when it has one naming a multipart type, else the HTTP header."""
    entity = leading_headers(body, what=what) if body[:2] != b"--" else None
    if entity is not None:
        headers, start = entity
        raw = next((value for name, value in headers if name.lower() == "content-type"), None)
        if raw is not None:
            parsed = parse_header_value(raw, single_quotes=True)
            if parsed.value.lower().startswith("multipart/"):
                return parsed.value.lower(), parsed.params, start
    parsed = parse_header_value(content_type or "", single_quotes=True)
    return parsed.value.lower(), parsed.params, 0


def _content_id(part: MimePart) -> str:
    return (part.header("content-id") or "").strip().removeprefix("<").removesuffix(">").strip()


def _root_index(parts: list[MimePart], start: str | None) -> int:
    wanted = (start or "").strip().strip("<>")
    if wanted:
        for index, part in enumerate(parts):
            if _content_id(part) == wanted:
                return index
    return 0


def _attachment(parts: list[MimePart], root_index: int, reference: str, what: str) -> MimePart:
    """The part the swaRef ``cid:`` URL names (RFC 2392: percent-encoded Content-ID)."""
    if reference[:4].lower() != "cid:":
        raise XRoadProtocolError(
            f"{what}: <records> is {reference[:80]!r}, expected a cid: reference"
        )
    cid = reference[4:].strip()
    wanted = {cid, unquote(cid)}
    for index, part in enumerate(parts):
        if index != root_index and _content_id(part) in wanted:
            return part
    if len(parts) < 2:
        raise XRoadProtocolError(f"{what}: the records attachment ({reference}) is missing")
    found = [_content_id(part) or "none" for index, part in enumerate(parts) if index != root_index]
    raise XRoadProtocolError(
        f"{what}: no attachment has Content-ID <{cid}> (found {', '.join(found)[:200]})"
    )


def _gunzip(data: bytes, limit: int, what: str) -> bytes:
    """``data`` (one or more gzip members) decompressed, refused past ``limit`` bytes
    without ever holding more than ``limit`` + one chunk."""
    if data[:2] != _GZIP_MAGIC:
        raise XRoadProtocolError(f"{what}: the records attachment is not gzip data")
    out = bytearray()
    rest = data
    try:
        while True:
            inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
            pending = rest
            while pending and not inflater.eof:
                out += inflater.decompress(pending, _CHUNK)
                if len(out) > limit:
                    raise XRoadProtocolError(
                        f"{what}: the records attachment decompresses to more than "
                        f"{limit} bytes; refused",
                        kind="too_large",
                    )
                pending = inflater.unconsumed_tail
            if not inflater.eof:
                raise XRoadProtocolError(f"{what}: the records attachment is truncated gzip data")
            rest = inflater.unused_data
            if not rest.strip(b"\x00"):
                return bytes(out)
            if rest[:2] != _GZIP_MAGIC:
                raise XRoadProtocolError(f"{what}: data after the gzip stream of the attachment")
    except zlib.error as exc:
        raise XRoadProtocolError(
            f"{what}: the records attachment is not valid gzip: {exc}"
        ) from None


class _Unreadable:
    """A JSON number or constant that is not a usable value: an integer of more than 19
    digits (parsing it could take quadratic time), ``NaN``, ``Infinity``."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "<unreadable number>"


_UNREADABLE = _Unreadable()


def _json_int(text: str) -> int | _Unreadable:
    return int(text) if len(text) <= 20 else _UNREADABLE


def _json_constant(text: str) -> _Unreadable:
    return _UNREADABLE


def _records(payload: bytes, what: str) -> tuple[list[OperationalRecord], list[RefusedEntry]]:
    try:
        document = json.loads(payload, parse_int=_json_int, parse_constant=_json_constant)
    except (ValueError, RecursionError) as exc:  # JSONDecodeError, bad UTF-8, deep nesting
        raise XRoadProtocolError(
            f"{what}: the records attachment is not valid JSON: {exc}"
        ) from None
    if not isinstance(document, dict) or not isinstance(document.get("records"), list):
        raise XRoadProtocolError(f'{what}: the records attachment is not {{"records": [...]}}')
    records: list[OperationalRecord] = []
    refused: list[RefusedEntry] = []
    for index, entry in enumerate(document["records"]):
        where = f"{what}, record #{index + 1}"
        try:
            records.append(_record(entry, where))
        except XRoadProtocolError as exc:
            refused.append(
                RefusedEntry(_record_subject(entry), exc.message.removeprefix(f"{where}: "), where)
            )
    return records, refused


_CLIENT_KEYS = (
    "clientXRoadInstance",
    "clientMemberClass",
    "clientMemberCode",
    "clientSubsystemCode",
)
_SERVICE_KEYS = (
    "serviceXRoadInstance",
    "serviceMemberClass",
    "serviceMemberCode",
    "serviceSubsystemCode",
    "serviceCode",
    "serviceVersion",
)


def _record_subject(entry: object) -> str:
    if not isinstance(entry, dict):
        return "?"
    return raw_subject([entry.get(key) for key in _SERVICE_KEYS])


def _int_field(
    entry: Mapping[str, Any], key: str, where: str, *, required: bool = False
) -> int | None:
    value = entry.get(key)
    if value is None:
        if required:
            raise XRoadProtocolError(f"{where}: {key} is missing")
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise XRoadProtocolError(f"{where}: {key} is not an integer ({_kind(value)})")
    if not 0 <= value <= _LONG_MAX:
        raise XRoadProtocolError(f"{where}: {key} {value} is out of range")
    return value


def _text_field(entry: Mapping[str, Any], key: str, where: str) -> str | None:
    value = entry.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise XRoadProtocolError(f"{where}: {key} is not a string ({_kind(value)})")
    bad = _BAD_TEXT.search(value)
    if bad is not None:
        problem = "NUL" if bad.group() == "\x00" else "a lone surrogate"
        raise XRoadProtocolError(f"{where}: {key} contains {problem}")
    return value


def _kind(value: object) -> str:
    return "unreadable number" if isinstance(value, _Unreadable) else type(value).__name__


def _id_parts(entry: Mapping[str, Any], keys: Sequence[str], where: str) -> list[str | None]:
    return [_text_field(entry, key, where) for key in keys]


def _record(entry: object, where: str) -> OperationalRecord:
    if not isinstance(entry, dict):
        raise XRoadProtocolError(f"{where}: not an object")
    ts = _int_field(entry, "monitoringDataTs", where, required=True)
    assert ts is not None
    side = entry.get("securityServerType")
    if side not in ("Client", "Producer"):
        shown = side[:40] if isinstance(side, str) else _kind(side)
        raise XRoadProtocolError(
            f"{where}: securityServerType is {shown!r}, expected Client or Producer"
        )
    succeeded = entry.get("succeeded")
    if not isinstance(succeeded, bool):
        raise XRoadProtocolError(f"{where}: succeeded is not a boolean ({_kind(succeeded)})")
    fault_code = _text_field(entry, "faultCode", where)
    message_id = _text_field(entry, "messageId", where)
    service_type = _text_field(entry, "serviceType", where)
    for key, value in (("messageId", message_id), ("serviceType", service_type)):
        if value is not None and len(value) > _TEXT_LIMIT:
            raise XRoadProtocolError(f"{where}: {key} is longer than {_TEXT_LIMIT} characters")
    return OperationalRecord(
        monitoring_data_ts=ts,
        side=side,
        succeeded=succeeded,
        client=_record_client(entry, where),
        service=_record_service(entry, where),
        request_in_ts=_int_field(entry, "requestInTs", where),
        response_out_ts=_int_field(entry, "responseOutTs", where),
        fault_code=None if fault_code is None else clean_text(fault_code, limit=_FAULT_CODE_LIMIT),
        request_size=_int_field(entry, "requestSize", where),
        response_size=_int_field(entry, "responseSize", where),
        status_code=_int_field(entry, "statusCode", where),
        service_type=None if service_type is None else clean_text(service_type),
        message_id=None if message_id is None else clean_text(message_id),
    )


def _record_client(entry: Mapping[str, Any], where: str) -> ClientId | None:
    instance, member_class, member_code, subsystem = _id_parts(entry, _CLIENT_KEYS, where)
    if instance is None and member_class is None and member_code is None and subsystem is None:
        return None
    if instance is None or member_class is None or member_code is None:
        raise XRoadProtocolError(f"{where}: the client identifier is incomplete")
    try:
        return ClientId(instance, member_class, member_code, subsystem)
    except ValueError as exc:
        raise XRoadProtocolError(f"{where}: invalid client identifier: {exc}") from None


def _record_service(entry: Mapping[str, Any], where: str) -> ServiceId | None:
    parts = _id_parts(entry, _SERVICE_KEYS, where)
    if all(part is None for part in parts):
        return None
    instance, member_class, member_code, subsystem, code, version = parts
    if instance is None or member_class is None or member_code is None or code is None:
        raise XRoadProtocolError(f"{where}: the service identifier is incomplete")
    try:
        provider = ClientId(instance, member_class, member_code, subsystem)
        return ServiceId(provider, code, version)
    except ValueError as exc:
        raise XRoadProtocolError(f"{where}: invalid service identifier: {exc}") from None
