"""Operational monitoring data of a fake security server (PR-OPMON), with its ground truth.

:class:`OpMonData` holds operational data records as X-Road's operational monitoring
daemon stores them (the JSON of PR-OPMON Annex B, one dict per record, fields absent
rather than ``null`` as X-Road's Jackson writer leaves them) and answers the two
operational monitoring services the way ``nordic-institute/X-Road`` does
(``src/service/op-monitor/op-monitor-core/src/main/java/org/niis/xroad/opmonitor/core/``):

``getSecurityServerOperationalData`` (``OperationalDataRequestHandler``,
``OperationalDataRecordManager``)
    ``recordsFrom`` or ``recordsTo`` negative, ``recordsTo < recordsFrom``,
    ``recordsFrom ≥ now − offset`` or an unknown ``outputField``: a
    ``Client.InvalidRequest`` fault with X-Road's message. ``recordsTo ≥ now − offset``
    is moved to ``now − offset − 1`` and ``nextRecordsFrom`` is ``now − offset``. Records
    are taken in ``monitoringDataTs`` order, at most :attr:`OpMonData.max_records_in_payload`;
    when the limit is reached, the records of the last second are replaced by *all* the
    records of that second, and if records are left after it (up to ``recordsTo``)
    ``nextRecordsFrom`` is that second + 1. ``searchCriteria/client`` keeps the records of
    that service provider; ``outputSpec`` projects the fields (``monitoringDataTs`` only
    when asked for). The answer is ``multipart/related`` as ``MultipartSoapMessageEncoder``
    writes it (:func:`multipart_related`): the SOAP part (``text/xml; charset=UTF-8``)
    and the gzipped JSON ``{"records": [...]}`` (``application/gzip``,
    ``content-transfer-encoding: binary``, ``content-id:
    <operational-monitoring-data.json.gz>``).
``getSecurityServerHealthData`` (``HealthDataRequestHandler``, ``HealthDataMetrics``)
    Per service with producer-side records since the monitoring started: the counts of
    the statistics period (records with ``now − period < monitoringDataTs ≤ now``), the
    ``responseOutTs`` of the last successful and unsuccessful request, the service type,
    and, when some request succeeded in the period, the duration (``responseOutTs −
    requestInTs``) and size statistics of the successful ones (sample standard
    deviation, 0 for one value, as the metrics library computes it).

Simplified against X-Road: every requester sees every record (as the server's owner or
the central monitoring client does: no filtering by the requesting client, no hiding
of ``securityServerInternalIp``); "now" is the injected clock's.
"""

from __future__ import annotations

import bisect
import gzip
import json
import math
import random
import string
import uuid
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final, Literal
from xml.sax.saxutils import escape

from scd_monitor.clock import Clock, SystemClock
from scd_simulator.directory import ID_NS, XRoadDirectory

__all__ = [
    "DEFAULT_MAX_RECORDS_IN_PAYLOAD",
    "DEFAULT_OFFSET_SECONDS",
    "DEFAULT_STATISTICS_PERIOD_SECONDS",
    "FAULTS",
    "HEALTH_DATA",
    "OPERATIONAL_DATA",
    "OPMON_NS",
    "OPMON_SERVICES",
    "OUTPUT_FIELDS",
    "RECORDS_CID",
    "OpMonData",
    "OpMonFault",
    "OperationalDataAnswer",
    "ServiceStatistics",
    "multipart_related",
]

OPMON_NS: Final = "http://x-road.eu/xsd/op-monitoring.xsd"
OPERATIONAL_DATA: Final = "getSecurityServerOperationalData"
HEALTH_DATA: Final = "getSecurityServerHealthData"
OPMON_SERVICES: Final = frozenset({OPERATIONAL_DATA, HEALTH_DATA})
RECORDS_CID: Final = "operational-monitoring-data.json.gz"
DEFAULT_MAX_RECORDS_IN_PAYLOAD: Final = 10_000
"""X-Road's ``op-monitor.max-records-in-payload`` default."""
DEFAULT_OFFSET_SECONDS: Final = 60
"""X-Road's ``op-monitor.records-available-timestamp-offset-seconds`` default."""
DEFAULT_STATISTICS_PERIOD_SECONDS: Final = 600
"""X-Road's ``op-monitor.health-statistics-period-seconds`` default."""

OUTPUT_FIELDS: Final[tuple[str, ...]] = (
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
)
"""The fields of X-Road's ``OperationalDataRecord``, in declaration order (the JSON order)."""
_OUTPUT_FIELD_SET: Final = frozenset(OUTPUT_FIELDS)

FAULTS: Final[tuple[tuple[str, str, int | None, float], ...]] = (
    ("Server.ServerProxy.ServiceFailed.HttpError", "Server responded with HTTP 503", 503, 0.35),
    ("Server.ClientProxy.NetworkError", "Unable to connect to any target host", None, 0.25),
    ("Client.InternalError", "Invalid request: malformed message body", 400, 0.15),
    ("Server.ServerProxy.ServiceFailed.Timeout", "Read timed out", None, 0.15),
    ("Server.ServerProxy.AccessDenied", "Request is not allowed", None, 0.10),
)
"""What generated failures carry: fault code, fault string, REST status code, weight."""

Side = Literal["Client", "Producer"]
_INVALID_REQUEST = "Client.InvalidRequest"
_SERVICE_TYPES = {"WSDL": "WSDL", "REST": "REST", "OPENAPI": "OPENAPI3"}


class OpMonFault(Exception):
    """A fault the operational monitoring daemon answers with (``Client.InvalidRequest``)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


@dataclass(frozen=True, slots=True)
class OperationalDataAnswer:
    """What a ``getSecurityServerOperationalData`` query found."""

    records: list[dict[str, Any]]
    next_records_from: int | None
    records_to: int
    """The end of the period actually searched (moved back when it was not committed)."""


@dataclass(frozen=True, slots=True)
class ServiceStatistics:
    """One ``serviceEvents`` entry of the health data."""

    service: tuple[tuple[str, str], ...]
    """The identifier's ``(field, value)`` pairs (``xRoadInstance``, …, ``serviceCode``)."""
    successful: int
    unsuccessful: int
    last_successful_ms: int | None
    last_unsuccessful_ms: int | None
    service_type: str | None
    durations: tuple[int, ...]
    request_sizes: tuple[int, ...]
    response_sizes: tuple[int, ...]

    @property
    def service_id(self) -> str:
        return _service_text(self.service)


def _seconds(value: int | datetime) -> int:
    return int(value.timestamp()) if isinstance(value, datetime) else int(value)


def _split(identifier: str, counts: tuple[int, ...], what: str) -> list[str]:
    parts = identifier.split("/")
    if len(parts) not in counts or not all(parts):
        raise ValueError(f"{what} {identifier!r}: expected {' or '.join(map(str, counts))} parts")
    return parts


def _service_key(record: Mapping[str, Any]) -> tuple[tuple[str, str], ...] | None:
    """The service identifier of a record as ``(field, value)`` pairs, ``None`` when it
    names none."""
    pairs = []
    for name, key in (
        ("xRoadInstance", "serviceXRoadInstance"),
        ("memberClass", "serviceMemberClass"),
        ("memberCode", "serviceMemberCode"),
        ("subsystemCode", "serviceSubsystemCode"),
        ("serviceCode", "serviceCode"),
        ("serviceVersion", "serviceVersion"),
    ):
        value = record.get(key)
        if isinstance(value, str):
            pairs.append((name, value))
        elif name not in ("subsystemCode", "serviceVersion"):
            return None
    return tuple(pairs)


def _service_text(key: tuple[tuple[str, str], ...] | None) -> str:
    return "/".join(value for _, value in key) if key is not None else "?"


def _provider_matches(record: Mapping[str, Any], provider: Sequence[str]) -> bool:
    """X-Road's ``getMemberCriterion(serviceProvider, false)``: instance, class and code
    equal, and the subsystem equal (a member matches only member-level services)."""
    subsystem = provider[3] if len(provider) > 3 else None
    return (
        record.get("serviceXRoadInstance") == provider[0]
        and record.get("serviceMemberClass") == provider[1]
        and record.get("serviceMemberCode") == provider[2]
        and record.get("serviceSubsystemCode") == subsystem
    )


class OpMonData:
    """The operational data store of one fake security server (see the module docstring).

    ``directory`` supplies the services and clients :meth:`generate` draws from (default:
    a small fixed set). ``clock`` is "now" for the offset and the health statistics;
    ``started_at`` is the monitoring startup time (default: the clock's now at creation).
    """

    def __init__(
        self,
        directory: XRoadDirectory | None = None,
        *,
        max_records_in_payload: int = DEFAULT_MAX_RECORDS_IN_PAYLOAD,
        offset_seconds: int = DEFAULT_OFFSET_SECONDS,
        statistics_period_seconds: int = DEFAULT_STATISTICS_PERIOD_SECONDS,
        clock: Clock | None = None,
        started_at: datetime | None = None,
    ) -> None:
        if max_records_in_payload < 1:
            raise ValueError("max_records_in_payload must be >= 1")
        if offset_seconds < 0 or statistics_period_seconds < 1:
            raise ValueError("offset_seconds must be >= 0 and the statistics period >= 1")
        self.directory = directory
        self.max_records_in_payload = max_records_in_payload
        self.offset_seconds = offset_seconds
        self.statistics_period_seconds = statistics_period_seconds
        self.clock: Clock = clock or SystemClock()
        self.started_at = started_at or self.clock.now()
        self.queries = 0
        """``getSecurityServerOperationalData`` requests answered (faults included)."""
        self._ts: list[int] = []
        self._records: list[dict[str, Any]] = []

    def __len__(self) -> int:
        return len(self._records)

    def __bool__(self) -> bool:
        return True  # an empty store is still a store (``opmon or default`` must not drop it)

    def describe(self) -> dict[str, Any]:
        return {
            "records": len(self),
            "max_records_in_payload": self.max_records_in_payload,
            "offset_seconds": self.offset_seconds,
            "statistics_period_seconds": self.statistics_period_seconds,
        }

    # -- filling -------------------------------------------------------------------------

    def add_raw(self, monitoring_data_ts: int, record: Mapping[str, Any]) -> dict[str, Any]:
        """Store ``record`` exactly as given (any JSON, also hostile), ordered by
        ``monitoring_data_ts``."""
        stored = dict(record)
        index = bisect.bisect_right(self._ts, monitoring_data_ts)
        self._ts.insert(index, monitoring_data_ts)
        self._records.insert(index, stored)
        return stored

    def add(
        self,
        monitoring_data_ts: int | datetime,
        *,
        client: str,
        service: str,
        side: Side = "Producer",
        succeeded: bool = True,
        fault_code: str | None = None,
        fault_string: str | None = None,
        response_out_ts: int | None = None,
        duration_ms: int = 100,
        request_size: int | None = 1000,
        response_size: int | None = 1000,
        status_code: int | None = None,
        service_type: str = "REST",
        message_id: str | None = None,
        **extra: Any,
    ) -> dict[str, Any]:
        """Store one record of a request from ``client`` (``INSTANCE/CLASS/MEMBER[/SUB]``)
        to ``service`` (``INSTANCE/CLASS/MEMBER/SUB/CODE[/VERSION]``); ``extra`` adds or
        replaces JSON fields (``None`` removes one). Returns the stored record."""
        ts = _seconds(monitoring_data_ts)
        out = response_out_ts if response_out_ts is not None else ts * 1000
        record = self._record(
            ts,
            side=side,
            client=_split(client, (3, 4), "client"),
            service=_split(service, (5, 6), "service"),
            succeeded=succeeded,
            fault=(fault_code, fault_string) if fault_code is not None else None,
            response_out_ts=out,
            duration_ms=duration_ms,
            sizes=(request_size, response_size),
            status_code=status_code,
            service_type=service_type,
            message_id=message_id or str(uuid.uuid4()),
            x_request_id=str(uuid.uuid4()),
        )
        for key, value in extra.items():
            if value is None:
                record.pop(key, None)
            else:
                record[key] = value
        return self.add_raw(ts, record)

    def _record(
        self,
        ts: int,
        *,
        side: Side,
        client: Sequence[str],
        service: Sequence[str],
        succeeded: bool,
        fault: tuple[str, str | None] | None,
        response_out_ts: int,
        duration_ms: int,
        sizes: tuple[int | None, int | None],
        status_code: int | None,
        service_type: str,
        message_id: str,
        x_request_id: str,
    ) -> dict[str, Any]:
        """A record with X-Road's fields in declaration order; ``None`` values left out."""
        request_in = response_out_ts - duration_ms
        rest = service_type != "WSDL"
        values: dict[str, Any] = {
            "monitoringDataTs": ts,
            "securityServerInternalIp": "10.20.0.10",
            "securityServerType": side,
            "requestInTs": request_in,
            "requestOutTs": request_in + min(5, duration_ms),
            "responseInTs": response_out_ts - min(3, duration_ms),
            "responseOutTs": response_out_ts,
            "clientXRoadInstance": client[0],
            "clientMemberClass": client[1],
            "clientMemberCode": client[2],
            "clientSubsystemCode": client[3] if len(client) > 3 else None,
            "serviceXRoadInstance": service[0],
            "serviceMemberClass": service[1],
            "serviceMemberCode": service[2],
            "serviceSubsystemCode": service[3],
            "serviceCode": service[4],
            "restMethod": "GET" if rest else None,
            "restPath": f"/{service[4]}" if rest else None,
            "xRoadVersion": "7.6.2",
            "serviceVersion": service[5] if len(service) > 5 else None,
            "messageId": message_id,
            "messageProtocolVersion": None if rest else "4.0",
            "clientSecurityServerAddress": f"ss-{client[2]}.{client[0].lower()}.invalid",
            "serviceSecurityServerAddress": f"ss-{service[2]}.{service[0].lower()}.invalid",
            "requestSize": sizes[0],
            "responseSize": sizes[1],
            "requestAttachmentCount": None if rest else 0,
            "responseAttachmentCount": None if rest else 0,
            "succeeded": succeeded,
            "faultCode": fault[0] if fault else None,
            "faultString": fault[1] if fault else None,
            "xRequestId": x_request_id,
            "statusCode": status_code,
            "serviceType": service_type,
        }
        return {key: value for key, value in values.items() if value is not None}

    def generate(
        self,
        n: int,
        start: int | datetime,
        end: int | datetime,
        seed: int = 0,
        *,
        failure_rate: float = 0.1,
    ) -> list[dict[str, Any]]:
        """Add ``n`` records with ``monitoringDataTs`` drawn in ``[start, end]`` (Unix seconds
        or datetimes) from a ``random.Random(seed)``: the same arguments give the same
        records. Services and clients come from the directory; both sides (``Client`` and
        ``Producer``); about ``failure_rate`` of them failed, with the codes of
        :data:`FAULTS`; durations log-normal (median about 90 ms), sizes of a few KiB."""
        first, last = _seconds(start), _seconds(end)
        if n < 0 or last < first or first < 0:
            raise ValueError("need n >= 0 and 0 <= start <= end")
        rng = random.Random(seed)
        services, clients = self._population()
        weights = [weight for *_, weight in FAULTS]
        made: list[tuple[int, dict[str, Any]]] = []
        for _ in range(n):
            ts = rng.randint(first, last)
            service, kind = services[rng.randrange(len(services))]
            client = clients[rng.randrange(len(clients))]
            side: Side = "Producer" if rng.random() < 0.5 else "Client"
            succeeded = rng.random() >= failure_rate
            duration = min(60_000, int(rng.lognormvariate(4.5, 0.8)) + 1)
            service_type = _SERVICE_TYPES[kind]
            fault: tuple[str, str | None] | None = None
            status: int | None = 200 if kind != "WSDL" else None
            if not succeeded:
                code, text, rest_status, _ = rng.choices(FAULTS, weights)[0]
                fault = (code, text)
                status = rest_status if kind != "WSDL" else None
            record = self._record(
                ts,
                side=side,
                client=client,
                service=service,
                succeeded=succeeded,
                fault=fault,
                response_out_ts=ts * 1000 - rng.randint(0, 4999),
                duration_ms=duration,
                sizes=(
                    rng.randint(300, 6000),
                    rng.randint(200, 60_000) if succeeded else rng.randint(300, 900),
                ),
                status_code=status,
                service_type=service_type,
                message_id=str(uuid.UUID(int=rng.getrandbits(128), version=4)),
                x_request_id=str(uuid.UUID(int=rng.getrandbits(128), version=4)),
            )
            made.append((ts, record))
        self._extend(made)
        return [record for _, record in made]

    def _extend(self, items: Iterable[tuple[int, dict[str, Any]]]) -> None:
        merged = sorted(
            [*zip(self._ts, self._records, strict=True), *items], key=lambda item: item[0]
        )
        self._ts = [ts for ts, _ in merged]
        self._records = [record for _, record in merged]

    def _population(self) -> tuple[list[tuple[list[str], str]], list[list[str]]]:
        """``(service parts, kind)`` and client parts to draw from."""
        services: list[tuple[list[str], str]] = []
        clients: list[list[str]] = []
        if self.directory is not None:
            for sub in self.directory.subsystems:
                clients.append(sub.id.split("/"))
                for service in sub.services:
                    parts = [*sub.id.split("/"), service.code]
                    if service.version is not None:
                        parts.append(service.version)
                    services.append((parts, service.kind))
        if not services:
            services = [
                (["CO", "GOB", "899999001", "CARPETA", "consultarDocumentos"], "REST"),
                (["CO", "GOB", "899999001", "CARPETA", "notificar", "v1"], "WSDL"),
                (["CO", "GOB", "899999002", "AUTENTICACION", "validarToken"], "OPENAPI"),
            ]
        if not clients:
            clients = [
                ["CO", "GOB", "899999003", "MONITOREO"],
                ["CO", "GOB", "899999004", "PORTAL"],
            ]
        return services, clients

    # -- ground truth ----------------------------------------------------------------------

    def records(
        self, records_from: int | None = None, records_to: int | None = None
    ) -> list[dict[str, Any]]:
        """The stored records (copies) with ``records_from ≤ monitoringDataTs ≤ records_to``."""
        low = 0 if records_from is None else bisect.bisect_left(self._ts, records_from)
        high = len(self._ts) if records_to is None else bisect.bisect_right(self._ts, records_to)
        return [dict(record) for record in self._records[low:high]]

    def _select(
        self,
        records_from: int | None,
        records_to: int | None,
        *,
        service: str | None = None,
        client: str | None = None,
        side: Side | None = None,
        succeeded: bool | None = None,
        fault_code: str | None = None,
    ) -> Iterable[dict[str, Any]]:
        low = 0 if records_from is None else bisect.bisect_left(self._ts, records_from)
        high = len(self._ts) if records_to is None else bisect.bisect_right(self._ts, records_to)
        for record in self._records[low:high]:
            if side is not None and record.get("securityServerType") != side:
                continue
            if succeeded is not None and record.get("succeeded") is not succeeded:
                continue
            if fault_code is not None and record.get("faultCode") != fault_code:
                continue
            if service is not None and _service_text(_service_key(record)) != service:
                continue
            if client is not None and _client_id(record) != client:
                continue
            yield record

    def count(
        self,
        records_from: int | None = None,
        records_to: int | None = None,
        *,
        service: str | None = None,
        client: str | None = None,
        side: Side | None = None,
        succeeded: bool | None = None,
        fault_code: str | None = None,
    ) -> int:
        """How many records match (every argument narrows; ``service`` and ``client`` as
        ``/``-joined identifiers)."""
        return sum(
            1
            for _ in self._select(
                records_from,
                records_to,
                service=service,
                client=client,
                side=side,
                succeeded=succeeded,
                fault_code=fault_code,
            )
        )

    def totals_by_service(
        self,
        records_from: int | None = None,
        records_to: int | None = None,
        *,
        side: Side | None = None,
    ) -> dict[str, dict[str, int]]:
        """Per service id: ``{"succeeded": n, "failed": m}``."""
        totals: dict[str, dict[str, int]] = {}
        for record in self._select(records_from, records_to, side=side):
            key = _service_text(_service_key(record))
            entry = totals.setdefault(key, {"succeeded": 0, "failed": 0})
            entry["succeeded" if record.get("succeeded") is True else "failed"] += 1
        return totals

    def totals_by_result(
        self,
        records_from: int | None = None,
        records_to: int | None = None,
        *,
        side: Side | None = None,
    ) -> dict[str, int]:
        """``{"succeeded": n, <fault code>: m, …}`` (a failure without a code counts as
        ``"failed"``)."""
        totals: Counter[str] = Counter()
        for record in self._select(records_from, records_to, side=side):
            if record.get("succeeded") is True:
                totals["succeeded"] += 1
            else:
                totals[str(record.get("faultCode") or "failed")] += 1
        return dict(totals)

    # -- getSecurityServerOperationalData ----------------------------------------------

    def now_seconds(self) -> int:
        return int(self.clock.now().timestamp())

    def query(
        self,
        records_from: int,
        records_to: int,
        *,
        provider: Sequence[str] | None = None,
        output_fields: Iterable[str] = (),
    ) -> OperationalDataAnswer:
        """X-Road's answer to a query (see the module docstring); raises :class:`OpMonFault`."""
        self.queries += 1
        available = self.now_seconds() - self.offset_seconds
        _check_timestamps(records_from, records_to, available)
        fields = set(output_fields)
        for name in sorted(fields):
            if name not in _OUTPUT_FIELD_SET:
                raise OpMonFault(
                    _INVALID_REQUEST, f"Unknown output field in search criteria: {name}"
                )
        next_records_from: int | None = None
        if records_to >= available:
            records_to = available - 1
            next_records_from = available

        def matching(low: int, high: int) -> Iterable[dict[str, Any]]:
            start = bisect.bisect_left(self._ts, low)
            stop = bisect.bisect_right(self._ts, high)
            for record in self._records[start:stop]:
                if provider is None or _provider_matches(record, provider):
                    yield record

        limit = self.max_records_in_payload
        page: list[dict[str, Any]] = []
        last = 0
        for record in matching(records_from, records_to):
            page.append(record)
            if len(page) == limit:
                break
        if len(page) == limit:
            last = self._ts_of(page[-1])
            page = [r for r in page if self._ts_of(r) != last]
            page.extend(matching(last, last))
            if last < records_to and next(iter(matching(last + 1, records_to)), None) is not None:
                next_records_from = last + 1
        return OperationalDataAnswer(
            records=[_project(record, fields) for record in page],
            next_records_from=next_records_from,
            records_to=records_to,
        )

    def _ts_of(self, record: dict[str, Any]) -> int:
        value = record.get("monitoringDataTs")
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        # A raw record without its own timestamp: find it by identity.
        index = next(i for i, stored in enumerate(self._records) if stored is record)
        return self._ts[index]

    def operational_data_answer(self, body: ET.Element) -> tuple[str, bytes]:
        """The SOAP body (``om:`` prefix) and the gzipped JSON attachment answering the
        request body ``body``; raises :class:`OpMonFault`."""
        criteria = _child(body, "searchCriteria")
        if criteria is None:
            raise OpMonFault(_INVALID_REQUEST, "Missing searchCriteria in the request")
        records_from = _long(_child(criteria, "recordsFrom"), "recordsFrom")
        records_to = _long(_child(criteria, "recordsTo"), "recordsTo")
        provider_element = _child(criteria, "client")
        provider = None if provider_element is None else _client_parts(provider_element)
        spec = _child(body, "outputSpec")
        fields = (
            []
            if spec is None
            else [(e.text or "").strip() for e in spec if e.tag == f"{{{OPMON_NS}}}outputField"]
        )
        answer = self.query(records_from, records_to, provider=provider, output_fields=fields)
        payload = json.dumps({"records": answer.records}, ensure_ascii=False, separators=(",", ":"))
        # Raw UTF-8 as Jackson writes it; a lone surrogate (a hostile raw record) becomes
        # its JSON escape "\udXXX" instead of failing the encoding.
        attachment = gzip.compress(payload.encode("utf-8", "backslashreplace"), mtime=0)
        next_xml = (
            ""
            if answer.next_records_from is None
            else f"<om:nextRecordsFrom>{answer.next_records_from}</om:nextRecordsFrom>"
        )
        xml = (
            f"<om:{OPERATIONAL_DATA}Response>"
            f"<om:recordsCount>{len(answer.records)}</om:recordsCount>"
            f"<om:records>cid:{RECORDS_CID}</om:records>{next_xml}"
            f"</om:{OPERATIONAL_DATA}Response>"
        )
        return xml, attachment

    # -- getSecurityServerHealthData -----------------------------------------------------

    def health(self, *, provider: Sequence[str] | None = None) -> list[ServiceStatistics]:
        """The health data's per-service statistics (see the module docstring)."""
        now = self.now_seconds()
        startup = int(self.started_at.timestamp())
        window_start = now - self.statistics_period_seconds
        grouped: dict[tuple[tuple[str, str], ...], list[dict[str, Any]]] = {}
        for ts, record in zip(self._ts, self._records, strict=True):
            if not startup <= ts <= now or record.get("securityServerType") != "Producer":
                continue
            key = _service_key(record)
            if key is None or not isinstance(record.get("succeeded"), bool):
                continue
            if provider is not None and not _provider_matches(record, provider):
                continue
            grouped.setdefault(key, []).append({**record, "monitoringDataTs": ts})
        stats = []
        for key, records in grouped.items():
            recent = [r for r in records if r["monitoringDataTs"] > window_start]
            good = [r for r in recent if r["succeeded"]]
            last_good = [r for r in records if r["succeeded"]]
            last_bad = [r for r in records if not r["succeeded"]]
            stats.append(
                ServiceStatistics(
                    service=key,
                    successful=len(good),
                    unsuccessful=len(recent) - len(good),
                    last_successful_ms=last_good[-1].get("responseOutTs") if last_good else None,
                    last_unsuccessful_ms=last_bad[-1].get("responseOutTs") if last_bad else None,
                    service_type=records[-1].get("serviceType"),
                    durations=tuple(
                        r["responseOutTs"] - r["requestInTs"]
                        for r in good
                        if isinstance(r.get("responseOutTs"), int)
                        and isinstance(r.get("requestInTs"), int)
                    ),
                    request_sizes=tuple(
                        r["requestSize"] for r in good if isinstance(r.get("requestSize"), int)
                    ),
                    response_sizes=tuple(
                        r["responseSize"] for r in good if isinstance(r.get("responseSize"), int)
                    ),
                )
            )
        return stats

    def health_data_answer(self, body: ET.Element) -> str:
        """The SOAP body (``om:`` prefix) answering a health data request body ``body``."""
        criteria = _child(body, "filterCriteria")
        client = None if criteria is None else _child(criteria, "client")
        provider = None if client is None else _client_parts(client)
        events = "".join(_service_events(s) for s in self.health(provider=provider))
        startup_ms = int(self.started_at.timestamp() * 1000)
        return (
            f"<om:{HEALTH_DATA}Response>"
            f"<om:monitoringStartupTimestamp>{startup_ms}</om:monitoringStartupTimestamp>"
            f"<om:statisticsPeriodSeconds>{self.statistics_period_seconds}"
            "</om:statisticsPeriodSeconds>"
            f"<om:servicesEvents>{events}</om:servicesEvents>"
            f"</om:{HEALTH_DATA}Response>"
        )


def _client_id(record: Mapping[str, Any]) -> str:
    keys = ("clientXRoadInstance", "clientMemberClass", "clientMemberCode", "clientSubsystemCode")
    return "/".join(str(record[k]) for k in keys if record.get(k) is not None)


def _project(record: dict[str, Any], fields: set[str]) -> dict[str, Any]:
    """The record with ``fields`` only (all of them when empty), as X-Road projects."""
    if not fields:
        return record
    return {key: value for key, value in record.items() if key in fields}


def _check_timestamps(records_from: int, records_to: int, available: int) -> None:
    """``OperationalDataRequestHandler.checkTimestamps``, messages included."""
    if records_from < 0:
        raise OpMonFault(_INVALID_REQUEST, "Records from timestamp is a negative number")
    if records_to < 0:
        raise OpMonFault(_INVALID_REQUEST, "Records to timestamp is a negative number")
    if records_to < records_from:
        raise OpMonFault(
            _INVALID_REQUEST, "Records to timestamp is earlier than records from timestamp"
        )
    if records_from >= available:
        raise OpMonFault(_INVALID_REQUEST, f"Records not available from {records_from} yet")


def _child(element: ET.Element, local: str) -> ET.Element | None:
    return element.find(f"{{{OPMON_NS}}}{local}")


def _long(element: ET.Element | None, name: str) -> int:
    text = None if element is None else (element.text or "").strip()
    if not text:
        raise OpMonFault(_INVALID_REQUEST, f"Missing {name} in the search criteria")
    try:
        value = int(text)
    except ValueError:
        raise OpMonFault(_INVALID_REQUEST, f"{name}: '{text[:40]}' is not a valid long") from None
    if not -(2**63) <= value < 2**63:
        raise OpMonFault(_INVALID_REQUEST, f"{name}: '{text[:40]}' is not a valid long")
    return value


def _client_parts(element: ET.Element) -> tuple[str, ...]:
    names = ("xRoadInstance", "memberClass", "memberCode", "subsystemCode")
    parts = [(element.findtext(f"{{{ID_NS}}}{name}") or "").strip() for name in names]
    if not all(parts[:3]):
        raise OpMonFault(_INVALID_REQUEST, "Incomplete client identifier in the request")
    return tuple(parts[:3]) + ((parts[3],) if parts[3] else ())


def _stats(values: Sequence[int]) -> tuple[int, float, int, float]:
    """Min, mean, max and the sample standard deviation (0 for one value)."""
    mean = sum(values) / len(values)
    if len(values) <= 1:
        return values[0], mean, values[0], 0.0
    variance = sum((v - mean) ** 2 for v in values) / (len(values) - 1)
    return min(values), mean, max(values), math.sqrt(variance)


def _service_events(stats: ServiceStatistics) -> str:
    identifier = "".join(f"<id:{name}>{escape(value)}</id:{name}>" for name, value in stats.service)
    out = [f'<om:serviceEvents><om:service id:objectType="SERVICE">{identifier}</om:service>']
    if stats.last_successful_ms is not None:
        out.append(
            f"<om:lastSuccessfulRequestTimestamp>{stats.last_successful_ms}"
            "</om:lastSuccessfulRequestTimestamp>"
        )
    if stats.last_unsuccessful_ms is not None:
        out.append(
            f"<om:lastUnsuccessfulRequestTimestamp>{stats.last_unsuccessful_ms}"
            "</om:lastUnsuccessfulRequestTimestamp>"
        )
    if stats.service_type is not None:
        out.append(f"<om:serviceType>{escape(str(stats.service_type))}</om:serviceType>")
    out.append(
        "<om:lastPeriodStatistics>"
        f"<om:successfulRequestCount>{stats.successful}</om:successfulRequestCount>"
        f"<om:unsuccessfulRequestCount>{stats.unsuccessful}</om:unsuccessfulRequestCount>"
    )
    if stats.successful:
        for stem, unit, values in (
            ("request", "Duration", stats.durations),
            ("request", "Size", stats.request_sizes),
            ("response", "Size", stats.response_sizes),
        ):
            if not values:
                continue
            low, mean, high, std = _stats(values)
            out.append(
                f"<om:{stem}Min{unit}>{low}</om:{stem}Min{unit}>"
                f"<om:{stem}Average{unit}>{mean!r}</om:{stem}Average{unit}>"
                f"<om:{stem}Max{unit}>{high}</om:{stem}Max{unit}>"
                f"<om:{stem}{unit}StdDev>{std!r}</om:{stem}{unit}StdDev>"
            )
    out.append("</om:lastPeriodStatistics></om:serviceEvents>")
    return "".join(out)


_BOUNDARY_CHARS = string.ascii_letters


def multipart_related(
    soap_part: bytes,
    attachment: bytes,
    *,
    content_id: str = RECORDS_CID,
    boundary: str | None = None,
) -> tuple[bytes, str]:
    """The SOAP part and one attachment framed as X-Road's ``MultipartSoapMessageEncoder``
    (``MultipartOutputStream``) writes them, and the ``Content-Type`` to send them with."""
    boundary = boundary or "xroad" + "".join(random.choices(_BOUNDARY_CHARS, k=30))
    dashes = f"--{boundary}".encode("ascii")
    body = b"".join(
        [
            dashes,
            b"\r\ncontent-type:text/xml; charset=UTF-8\r\n\r\n",
            soap_part,
            b"\r\n",
            dashes,
            b"\r\ncontent-type:application/gzip\r\ncontent-transfer-encoding: binary\r\n",
            f"content-id: <{content_id}>\r\n\r\n".encode("ascii"),
            attachment,
            b"\r\n",
            dashes,
            b"--\r\n",
        ]
    )
    content_type = f'multipart/related; type="text/xml"; charset=UTF-8; boundary={boundary}'
    return body, content_type
