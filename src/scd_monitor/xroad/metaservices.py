"""X-Road metaservices: request builders and parsers for what security servers answer.

Shapes follow the protocol documents of ``nordic-institute/X-Road`` (``doc/Protocols``):

* PR-META (service metadata protocol) §2 and Annex C.1 — ``listClients`` in XML and, with
  ``Accept: application/json``, JSON; ``listCentralServices`` (§3 and C.2 of the versions
  before 2.12, which removed central services; still answered by X-Road 6 and 7.0–7.2);
  §3, C.2–C.5 — SOAP ``listMethods`` / ``allowedMethods``; §4, C.6–C.8 — ``getWsdl``,
  whose WSDL comes as a SOAP attachment (``multipart/related``).
* PR-MREST (service metadata protocol for REST) §4, §5, Annex B — REST ``listMethods``,
  ``allowedMethods`` (JSON) and ``getOpenAPI`` (YAML or JSON text).
* PR-MESS (message protocol 4.0) §2.1, §2.2, Annex E — the SOAP header (``client``,
  ``service``, ``id``, ``userId``, ``issue``, ``protocolVersion``); §2.5, Annex D.1 — faults.
* PR-REST (message protocol for REST) §4.3, §4.6 — the ``X-Road-Error`` header and the
  JSON error body (``type``, ``message``, ``detail``).

Parsers are strict about structure (a missing identifier field is an error that names
the entry) and lenient about what the documents disagree on: the REST method list is
read under ``service`` (the examples) or ``member`` (the OpenAPI annex), with
``snake_case`` or ``camelCase`` keys; element namespaces inside a SOAP body are not
checked, only the SOAP 1.1 envelope's.

The list parsers take ``refused``: without it one bad entry (an invalid identifier, a
malformed entry) fails the whole answer, as a probe wants; with a list, the bad entry is
appended to it as a :class:`~scd_monitor.xroad.identifiers.RefusedEntry` and the rest is
kept, as directory discovery wants (one hostile entry never hides the others).
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal
from xml.sax.saxutils import escape, quoteattr

from scd_monitor.xroad.errors import XRoadError, XRoadProtocolError
from scd_monitor.xroad.identifiers import (
    CentralServiceId,
    ClientId,
    RefusedEntry,
    ServiceId,
    raw_subject,
)
from scd_monitor.xroad.mime import content_type_of, split_multipart
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
    namespace,
    parse_xml,
    text_of,
)

__all__ = [
    "PROTOCOL_VERSION",
    "ListedClient",
    "OpenApiDescription",
    "RestEndpoint",
    "ServiceEntry",
    "SoapHeader",
    "build_get_wsdl_request",
    "build_method_list_request",
    "build_soap_request",
    "parse_get_wsdl_response",
    "parse_list_central_services",
    "parse_list_clients_json",
    "parse_list_clients_xml",
    "parse_openapi",
    "parse_rest_error",
    "parse_rest_method_list",
    "parse_soap_envelope",
    "parse_soap_fault",
    "parse_soap_header",
    "parse_soap_method_list",
]

PROTOCOL_VERSION = "4.0"
"""The X-Road message protocol version sent in every SOAP request (PR-MESS §2.2)."""

MethodList = Literal["listMethods", "allowedMethods"]


# -- values ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ListedClient:
    """One entry of ``listClients``: a member or a subsystem, with its names."""

    id: ClientId
    name: str | None = None
    subsystem_name: str | None = None


@dataclass(frozen=True, slots=True)
class RestEndpoint:
    """One endpoint of a REST service: an HTTP method and a path (``*`` wildcards)."""

    method: str
    path: str


@dataclass(frozen=True, slots=True)
class ServiceEntry:
    """One service in a REST ``listMethods`` / ``allowedMethods`` answer.

    ``service_type`` is what the server says (``REST``, ``OPENAPI``, ``WSDL``), when it does.
    """

    service: ServiceId
    service_type: str | None = None
    endpoints: tuple[RestEndpoint, ...] = ()


@dataclass(frozen=True, slots=True)
class OpenApiDescription:
    """A ``getOpenAPI`` answer, read only lightly: the text, its size and its version."""

    text: str
    size: int
    """Bytes received."""
    content_type: str
    format: Literal["json", "yaml"]
    openapi_version: str | None
    """The ``openapi`` (or ``swagger``) field when it could be found, e.g. ``3.0.0``."""


@dataclass(frozen=True, slots=True)
class SoapHeader:
    """The X-Road fields of a SOAP header (PR-MESS §2.2); missing fields are ``None``."""

    client: ClientId | None
    service: ServiceId | None
    message_id: str | None
    user_id: str | None
    issue: str | None
    protocol_version: str | None
    request_hash: str | None
    request_hash_algorithm: str | None


# -- SOAP requests ---------------------------------------------------------------------


def build_soap_request(
    *,
    client: ClientId,
    service: ServiceId,
    body_element: str,
    body_fields: Sequence[tuple[str, str]] = (),
    message_id: str | None = None,
    user_id: str | None = None,
    issue: str | None = None,
) -> tuple[bytes, str]:
    """A SOAP 1.1 request with the X-Road header, and the message id it carries.

    The body is one wrapper element ``body_element`` in the X-Road namespace holding
    the text fields ``body_fields`` (document/literal wrapped, PR-MESS §2.3); every value
    is escaped. The id is a new UUID unless ``message_id`` is given.
    """
    message_id = message_id or str(uuid.uuid4())
    _check_name(body_element)
    header = [
        _identifier("xroad:client", client.object_type, client.parts, _CLIENT_FIELDS),
        _identifier("xroad:service", "SERVICE", service.parts, _service_fields(service)),
        f"<xroad:id>{escape(message_id)}</xroad:id>",
    ]
    if user_id is not None:
        header.append(f"<xroad:userId>{escape(user_id)}</xroad:userId>")
    if issue is not None:
        header.append(f"<xroad:issue>{escape(issue)}</xroad:issue>")
    header.append(f"<xroad:protocolVersion>{PROTOCOL_VERSION}</xroad:protocolVersion>")
    fields = []
    for name, value in body_fields:
        _check_name(name)
        fields.append(f"<xroad:{name}>{escape(value)}</xroad:{name}>")
    body = (
        f"<xroad:{body_element}>{''.join(fields)}</xroad:{body_element}>"
        if fields
        else f"<xroad:{body_element}/>"
    )
    envelope = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<SOAP-ENV:Envelope xmlns:SOAP-ENV="{NS_SOAP_ENV}" '
        f'xmlns:xroad="{NS_XROAD}" xmlns:id="{NS_ID}">'
        f"<SOAP-ENV:Header>{''.join(header)}</SOAP-ENV:Header>"
        f"<SOAP-ENV:Body>{body}</SOAP-ENV:Body>"
        "</SOAP-ENV:Envelope>\n"
    )
    return envelope.encode("utf-8"), message_id


def build_method_list_request(
    client: ClientId,
    provider: ClientId,
    *,
    method: MethodList = "listMethods",
    message_id: str | None = None,
    user_id: str | None = None,
) -> tuple[bytes, str]:
    """A SOAP ``listMethods`` or ``allowedMethods`` request to ``provider`` (PR-META §3)."""
    return build_soap_request(
        client=client,
        service=ServiceId(provider, method),
        body_element=method,
        message_id=message_id,
        user_id=user_id,
    )


def build_get_wsdl_request(
    client: ClientId,
    service: ServiceId,
    *,
    message_id: str | None = None,
    user_id: str | None = None,
) -> tuple[bytes, str]:
    """A SOAP ``getWsdl`` request for ``service``'s description (PR-META §4)."""
    fields = [("serviceCode", service.service_code)]
    if service.service_version is not None:
        fields.append(("serviceVersion", service.service_version))
    return build_soap_request(
        client=client,
        service=ServiceId(service.client, "getWsdl"),
        body_element="getWsdl",
        body_fields=fields,
        message_id=message_id,
        user_id=user_id,
    )


_CLIENT_FIELDS = ("xRoadInstance", "memberClass", "memberCode", "subsystemCode")
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]*$")


def _check_name(name: str) -> None:
    if not _NAME.match(name):
        raise ValueError(f"not an XML element name: {name!r}")


def _service_fields(service: ServiceId) -> tuple[str, ...]:
    fields = ["xRoadInstance", "memberClass", "memberCode"]
    if service.client.subsystem_code is not None:
        fields.append("subsystemCode")
    fields.append("serviceCode")
    if service.service_version is not None:
        fields.append("serviceVersion")
    return tuple(fields)


def _identifier(tag: str, object_type: str, parts: list[str], fields: Sequence[str]) -> str:
    pairs = zip(fields[: len(parts)], parts, strict=True)
    inner = "".join(f"<id:{name}>{escape(value)}</id:{name}>" for name, value in pairs)
    return f"<{tag} id:objectType={quoteattr(object_type)}>{inner}</{tag}>"


# -- identifiers in XML ----------------------------------------------------------------

_OBJECT_TYPE = f"{{{NS_ID}}}objectType"


def _object_type(element: Element) -> str | None:
    return element.get(_OBJECT_TYPE) or element.get("objectType")


def _required(element: Element, field: str, what: str) -> str:
    value = child_text(element, field)
    if not value:
        raise XRoadProtocolError(f"{what}: identifier has no {field}")
    return value


def _client_from_xml(element: Element, what: str) -> ClientId:
    client = _client_from_xml_fields(element, what)
    object_type = _object_type(element)
    if object_type is not None and object_type != client.object_type:
        raise XRoadProtocolError(
            f"{what}: objectType {object_type} does not match identifier {client}"
        )
    return client


def _service_from_xml(element: Element, what: str) -> ServiceId:
    object_type = _object_type(element)
    if object_type is not None and object_type != "SERVICE":
        raise XRoadProtocolError(f"{what}: objectType is {object_type}, expected SERVICE")
    provider = _client_from_xml_fields(element, what)
    try:
        return ServiceId(
            provider,
            _required(element, "serviceCode", what),
            child_text(element, "serviceVersion") or None,
        )
    except ValueError as exc:
        raise XRoadProtocolError(f"{what}: invalid service identifier: {exc}") from None


def _client_from_xml_fields(element: Element, what: str) -> ClientId:
    """The member or subsystem named by an identifier element's fields."""
    try:
        return ClientId(
            _required(element, "xRoadInstance", what),
            _required(element, "memberClass", what),
            _required(element, "memberCode", what),
            child_text(element, "subsystemCode") or None,
        )
    except ValueError as exc:
        raise XRoadProtocolError(f"{what}: invalid identifier: {exc}") from None


_XML_CLIENT_FIELDS = ("xRoadInstance", "memberClass", "memberCode", "subsystemCode")
_XML_SERVICE_FIELDS = (*_XML_CLIENT_FIELDS, "serviceCode", "serviceVersion")
_JSON_CLIENT_FIELDS = (
    ("xroad_instance", "xRoadInstance"),
    ("member_class", "memberClass"),
    ("member_code", "memberCode"),
    ("subsystem_code", "subsystemCode"),
)
_JSON_SERVICE_FIELDS = (
    *_JSON_CLIENT_FIELDS,
    ("service_code", "serviceCode"),
    ("service_version", "serviceVersion"),
)


def _xml_subject(element: Element | None, fields: Sequence[str]) -> str:
    if element is None:
        return "?"
    return raw_subject([child_text(element, name) or None for name in fields])


def _json_subject(entry: object, fields: Sequence[tuple[str, str]]) -> str:
    if not isinstance(entry, dict):
        return "?"
    values: list[object] = []
    for names in fields:
        values.append(next((entry[n] for n in names if entry.get(n) is not None), None))
    return raw_subject(values)


def _refuse(
    refused: list[RefusedEntry] | None, exc: XRoadProtocolError, subject: str, where: str
) -> None:
    """Keep the entry's error for the caller (lenient mode), or raise it (strict)."""
    if refused is None:
        raise exc
    refused.append(RefusedEntry(subject, exc.message.removeprefix(f"{where}: "), where))


# -- listClients, listCentralServices --------------------------------------------------


def _root(data: bytes, local: str, what: str, max_bytes: int) -> Element:
    root = parse_xml(data, what=what, max_bytes=max_bytes)
    if local_name(root.tag) != local:
        raise XRoadProtocolError(
            f"{what}: root element is <{local_name(root.tag)}>, expected <{local}>"
        )
    if namespace(root.tag) != NS_XROAD:
        raise XRoadProtocolError(
            f"{what}: <{local}> is in namespace {namespace(root.tag)!r}, expected {NS_XROAD!r}"
        )
    return root


def parse_list_clients_xml(
    data: bytes,
    *,
    max_bytes: int = DEFAULT_MAX_BYTES,
    refused: list[RefusedEntry] | None = None,
) -> list[ListedClient]:
    """A ``clientList`` document (PR-META §2, Annex A, C.1)."""
    what = "listClients response"
    root = _root(data, "clientList", what, max_bytes)
    found: list[ListedClient] = []
    for index, member in enumerate(children(root, "member")):
        where = f"{what}, member #{index + 1}"
        id_element = child(member, "id")
        try:
            if id_element is None:
                raise XRoadProtocolError(f"{where}: has no <id>")
            found.append(
                ListedClient(
                    id=_client_from_xml(id_element, where),
                    name=child_text(member, "name"),
                    subsystem_name=child_text(member, "subsystemName"),
                )
            )
        except XRoadProtocolError as exc:
            _refuse(refused, exc, _xml_subject(id_element, _XML_CLIENT_FIELDS), where)
    return found


def parse_list_clients_json(
    data: bytes,
    *,
    max_bytes: int = DEFAULT_MAX_BYTES,
    refused: list[RefusedEntry] | None = None,
) -> list[ListedClient]:
    """The JSON ``listClients`` answer (PR-META Annex B OpenAPI, C.1 JSON)."""
    what = "listClients JSON response"
    document = _json(data, what, max_bytes)
    members = _list_field(document, ("member",), what)
    found: list[ListedClient] = []
    for index, member in enumerate(members):
        where = f"{what}, member #{index + 1}"
        identifier = member.get("id") if isinstance(member, dict) else None
        try:
            found.append(_listed_client_json(member, identifier, where))
        except XRoadProtocolError as exc:
            _refuse(refused, exc, _json_subject(identifier, _JSON_CLIENT_FIELDS), where)
    return found


def _listed_client_json(member: object, identifier: object, where: str) -> ListedClient:
    if not isinstance(member, dict):
        raise XRoadProtocolError(f"{where}: not an object")
    if not isinstance(identifier, dict):
        raise XRoadProtocolError(f'{where}: has no "id" object')
    object_type = _str_field(identifier, ("object_type", "objectType"), where)
    client = _client_from_json(identifier, where)
    if object_type is not None and object_type != client.object_type:
        raise XRoadProtocolError(
            f"{where}: object_type {object_type} does not match identifier {client}"
        )
    return ListedClient(
        id=client,
        name=_str_field(member, ("name",), where),
        subsystem_name=_str_field(member, ("subsystem_name", "subsystemName"), where),
    )


def parse_list_central_services(
    data: bytes, *, max_bytes: int = DEFAULT_MAX_BYTES
) -> list[CentralServiceId]:
    """A ``centralServiceList`` document (PR-META before 2.12, §3 and C.2)."""
    what = "listCentralServices response"
    root = _root(data, "centralServiceList", what, max_bytes)
    found: list[CentralServiceId] = []
    for index, element in enumerate(children(root, "centralService")):
        where = f"{what}, centralService #{index + 1}"
        object_type = _object_type(element)
        if object_type is not None and object_type != "CENTRALSERVICE":
            raise XRoadProtocolError(f"{where}: objectType is {object_type}")
        try:
            found.append(
                CentralServiceId(
                    _required(element, "xRoadInstance", where),
                    _required(element, "serviceCode", where),
                )
            )
        except ValueError as exc:
            raise XRoadProtocolError(f"{where}: invalid identifier: {exc}") from None
    return found


# -- JSON helpers ----------------------------------------------------------------------


def _json(data: bytes, what: str, max_bytes: int) -> Any:
    if len(data) > max_bytes:
        raise XRoadProtocolError(
            f"{what}: {len(data)} bytes is over the limit of {max_bytes} bytes",
            kind="too_large",
        )
    try:
        return json.loads(data)
    except (ValueError, RecursionError) as exc:  # JSONDecodeError, bad UTF-8, deep nesting
        raise XRoadProtocolError(f"{what}: not valid JSON: {exc}") from None


def _list_field(document: Any, names: Iterable[str], what: str) -> list[Any]:
    if not isinstance(document, dict):
        raise XRoadProtocolError(f"{what}: expected a JSON object")
    for name in names:
        if name in document:
            value = document[name]
            if value is None:
                return []
            if not isinstance(value, list):
                raise XRoadProtocolError(f'{what}: "{name}" is not a list')
            return value
    return []


def _str_field(mapping: Mapping[str, Any], names: Iterable[str], what: str) -> str | None:
    for name in names:
        value = mapping.get(name)
        if value is None:
            continue
        if not isinstance(value, str):
            raise XRoadProtocolError(f'{what}: "{name}" is not a string')
        return value
    return None


def _required_json(mapping: Mapping[str, Any], names: tuple[str, ...], what: str) -> str:
    value = _str_field(mapping, names, what)
    if not value:
        raise XRoadProtocolError(f"{what}: identifier has no {names[0]}")
    return value


def _client_from_json(mapping: Mapping[str, Any], what: str) -> ClientId:
    try:
        return ClientId(
            _required_json(mapping, ("xroad_instance", "xRoadInstance"), what),
            _required_json(mapping, ("member_class", "memberClass"), what),
            _required_json(mapping, ("member_code", "memberCode"), what),
            _str_field(mapping, ("subsystem_code", "subsystemCode"), what) or None,
        )
    except ValueError as exc:
        raise XRoadProtocolError(f"{what}: invalid identifier: {exc}") from None


# -- REST metaservices -----------------------------------------------------------------


def parse_rest_method_list(
    data: bytes,
    *,
    what: str = "listMethods response",
    max_bytes: int = DEFAULT_MAX_BYTES,
    refused: list[RefusedEntry] | None = None,
) -> list[ServiceEntry]:
    """A REST ``listMethods`` / ``allowedMethods`` answer (PR-MREST §4, B.1, B.2)."""
    document = _json(data, what, max_bytes)
    services = _list_field(document, ("service", "member"), what)
    found: list[ServiceEntry] = []
    for index, entry in enumerate(services):
        where = f"{what}, service #{index + 1}"
        try:
            found.append(_service_entry_json(entry, where))
        except XRoadProtocolError as exc:
            _refuse(refused, exc, _json_subject(entry, _JSON_SERVICE_FIELDS), where)
    return found


def _service_entry_json(entry: object, where: str) -> ServiceEntry:
    if not isinstance(entry, dict):
        raise XRoadProtocolError(f"{where}: not an object")
    object_type = _str_field(entry, ("object_type",), where)
    nested = entry.get("objectType")
    if object_type is None and isinstance(nested, dict):
        object_type = _str_field(nested, ("object_type",), where)
    elif object_type is None and isinstance(nested, str):
        object_type = nested
    if object_type is not None and object_type != "SERVICE":
        raise XRoadProtocolError(f"{where}: object_type is {object_type}, expected SERVICE")
    provider = _client_from_json(entry, where)
    try:
        service = ServiceId(
            provider,
            _required_json(entry, ("service_code", "serviceCode"), where),
            _str_field(entry, ("service_version", "serviceVersion"), where) or None,
        )
    except ValueError as exc:
        raise XRoadProtocolError(f"{where}: invalid service identifier: {exc}") from None
    return ServiceEntry(
        service=service,
        service_type=_str_field(entry, ("service_type", "serviceType"), where),
        endpoints=_endpoints(entry, where),
    )


def _endpoints(entry: Mapping[str, Any], what: str) -> tuple[RestEndpoint, ...]:
    raw = entry.get("endpoint_list", entry.get("endpointList"))
    if isinstance(raw, dict):
        raw = raw.get("member")
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise XRoadProtocolError(f"{what}: endpoint_list is not a list")
    endpoints = []
    for item in raw:
        if not isinstance(item, dict):
            raise XRoadProtocolError(f"{what}: an endpoint is not an object")
        method = _str_field(item, ("method",), what)
        path = _str_field(item, ("path",), what)
        if not method or not path:
            raise XRoadProtocolError(f"{what}: an endpoint lacks its method or path")
        endpoints.append(RestEndpoint(method=method, path=path))
    return tuple(endpoints)


_OPENAPI_YAML = re.compile(r"""^(openapi|swagger)\s*:\s*["']?([0-9][0-9A-Za-z.\-]*)""", re.M)


def parse_openapi(
    data: bytes, content_type: str | None, *, max_bytes: int = DEFAULT_MAX_BYTES
) -> OpenApiDescription:
    """A ``getOpenAPI`` answer (PR-MREST §5, B.3): text, size and the declared version.

    JSON is decoded to find ``openapi``/``swagger``; YAML is only searched for a
    top-level ``openapi:`` line (no YAML parser runs on untrusted input here).
    """
    what = "getOpenAPI response"
    if len(data) > max_bytes:
        raise XRoadProtocolError(
            f"{what}: {len(data)} bytes is over the limit of {max_bytes} bytes",
            kind="too_large",
        )
    media = content_type_of(content_type)
    charset = media.params.get("charset") or "utf-8"
    try:
        text = data.decode(charset)
    except (LookupError, UnicodeDecodeError) as exc:
        raise XRoadProtocolError(f"{what}: cannot decode the text as {charset}: {exc}") from None
    if not text.strip():
        raise XRoadProtocolError(f"{what}: empty service description")
    version: str | None = None
    if media.value.endswith("json") or text.lstrip().startswith("{"):
        document = _json(data, what, max_bytes)
        if isinstance(document, dict):
            found = document.get("openapi", document.get("swagger"))
            version = str(found) if isinstance(found, str | int | float) else None
        return OpenApiDescription(text, len(data), media.value, "json", version)
    match = _OPENAPI_YAML.search(text)
    version = match.group(2) if match else None
    return OpenApiDescription(text, len(data), media.value, "yaml", version)


def parse_rest_error(
    header: str | None,
    body: bytes,
    *,
    http_status: int | None = None,
) -> XRoadError | None:
    """The X-Road fault of a REST answer, from ``X-Road-Error`` and the JSON body.

    ``None`` when the header is absent: then any error came from the provider's
    information system, not from X-Road (PR-REST §4.6, example 5).
    """
    if header is None:
        return None
    code = header.strip()
    message = ""
    detail: str | None = None
    try:
        document = json.loads(body) if body.strip() else None
    except (ValueError, RecursionError):
        document = None
        message = body[:200].decode("utf-8", "replace").strip()
    if isinstance(document, dict):
        if isinstance(document.get("type"), str) and document["type"].strip():
            code = document["type"].strip()
        if isinstance(document.get("message"), str):
            message = document["message"]
        if isinstance(document.get("detail"), str):
            detail = document["detail"]
    return XRoadError(code or "unknown", message, detail=detail, http_status=http_status)


# -- SOAP answers ----------------------------------------------------------------------


def parse_soap_envelope(data: bytes, *, what: str, max_bytes: int = DEFAULT_MAX_BYTES) -> Element:
    """Parse a SOAP 1.1 envelope; its root element."""
    root = parse_xml(data, what=what, max_bytes=max_bytes)
    if root.tag != f"{{{NS_SOAP_ENV}}}Envelope":
        raise XRoadProtocolError(f"{what}: not a SOAP 1.1 envelope (root element is {root.tag!r})")
    return root


def _soap_body(envelope: Element, what: str) -> Element:
    body = child(envelope, "Body", NS_SOAP_ENV)
    if body is None:
        raise XRoadProtocolError(f"{what}: SOAP envelope has no Body")
    return body


def parse_soap_fault(envelope: Element, *, http_status: int | None = None) -> XRoadError | None:
    """The SOAP Fault in ``envelope``'s body as an :class:`XRoadError`, or ``None``.

    ``faultcode`` may carry a namespace prefix (``SOAP-ENV:Server``); it is dropped.
    ``detail`` is the text inside ``<detail>`` (X-Road puts an error id in
    ``faultDetail``, PR-MESS Annex D.1).
    """
    body = child(envelope, "Body", NS_SOAP_ENV)
    fault = None if body is None else child(body, "Fault", NS_SOAP_ENV)
    if fault is None:
        return None
    code = child_text(fault, "faultcode") or "unknown"
    code = code.rpartition(":")[2] or code
    message = child_text(fault, "faultstring") or ""
    detail_element = child(fault, "detail")
    detail = text_of(detail_element) if detail_element is not None else None
    return XRoadError(code, message, detail=detail or None, http_status=http_status)


def parse_soap_header(envelope: Element, *, what: str = "SOAP message") -> SoapHeader:
    """The X-Road header fields of ``envelope`` (PR-MESS §2.2)."""
    header = child(envelope, "Header", NS_SOAP_ENV)
    if header is None:
        return SoapHeader(None, None, None, None, None, None, None, None)
    client_element = child(header, "client")
    service_element = child(header, "service")
    hash_element = child(header, "requestHash")
    return SoapHeader(
        client=None if client_element is None else _client_from_xml(client_element, what),
        service=None if service_element is None else _service_from_xml(service_element, what),
        message_id=child_text(header, "id"),
        user_id=child_text(header, "userId"),
        issue=child_text(header, "issue"),
        protocol_version=child_text(header, "protocolVersion"),
        request_hash=None if hash_element is None else "".join(text_of(hash_element).split()),
        request_hash_algorithm=None if hash_element is None else hash_element.get("algorithmId"),
    )


def _check_answer(
    envelope: Element, what: str, *, message_id: str | None, http_status: int | None
) -> Element:
    """Raise the fault if there is one; check the echoed id; return the body."""
    fault = parse_soap_fault(envelope, http_status=http_status)
    if fault is not None:
        raise fault
    if message_id is not None:
        echoed = parse_soap_header(envelope, what=what).message_id
        if echoed is not None and echoed != message_id:
            raise XRoadProtocolError(
                f"{what}: answer carries message id {echoed!r}, the request had {message_id!r}"
            )
    return _soap_body(envelope, what)


def parse_soap_method_list(
    data: bytes,
    *,
    method: MethodList = "listMethods",
    message_id: str | None = None,
    http_status: int | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
    refused: list[RefusedEntry] | None = None,
) -> list[ServiceId]:
    """A SOAP ``listMethodsResponse`` / ``allowedMethodsResponse`` (PR-META §3, C.3, C.5).

    Raises the answer's fault as :class:`XRoadError`.
    """
    what = f"{method} response"
    envelope = parse_soap_envelope(data, what=what, max_bytes=max_bytes)
    body = _check_answer(envelope, what, message_id=message_id, http_status=http_status)
    wrapper = child(body, f"{method}Response")
    if wrapper is None:
        found = [local_name(item.tag) for item in body if isinstance(item.tag, str)]
        raise XRoadProtocolError(
            f"{what}: body has no <{method}Response> (found {found or 'nothing'})"
        )
    services: list[ServiceId] = []
    for index, element in enumerate(children(wrapper, "service")):
        where = f"{what}, service #{index + 1}"
        try:
            services.append(_service_from_xml(element, where))
        except XRoadProtocolError as exc:
            _refuse(refused, exc, _xml_subject(element, _XML_SERVICE_FIELDS), where)
    return services


def parse_get_wsdl_response(
    data: bytes,
    content_type: str | None,
    *,
    message_id: str | None = None,
    http_status: int | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> bytes:
    """The WSDL carried by a ``getWsdl`` answer (PR-META §4, C.7, C.8).

    The answer is ``multipart/related``: the SOAP part (the one named by ``start``, else
    the first) and the WSDL as the attachment. A plain SOAP answer can only be a fault
    (raised as :class:`XRoadError`); anything else is a protocol error.
    """
    what = "getWsdl response"
    media = content_type_of(content_type)
    if not media.value.startswith("multipart/"):
        envelope = parse_soap_envelope(data, what=what, max_bytes=max_bytes)
        _check_answer(envelope, what, message_id=message_id, http_status=http_status)
        raise XRoadProtocolError(
            f"{what}: no WSDL attachment (Content-Type {media.value or 'missing'}, "
            "expected multipart/related)"
        )
    boundary = media.params.get("boundary")
    if not boundary:
        raise XRoadProtocolError(f"{what}: multipart Content-Type without a boundary")
    parts = split_multipart(data, boundary, what=what)
    if not parts:
        raise XRoadProtocolError(f"{what}: multipart body has no parts")
    start = media.params.get("start", "").strip().strip("<>")
    root_index = 0
    if start:
        for index, part in enumerate(parts):
            if (part.header("content-id") or "").strip().strip("<>") == start:
                root_index = index
                break
    soap = parts[root_index].decoded(what)
    envelope = parse_soap_envelope(soap, what=what, max_bytes=max_bytes)
    body = _check_answer(envelope, what, message_id=message_id, http_status=http_status)
    if child(body, "getWsdlResponse") is None:
        raise XRoadProtocolError(f"{what}: SOAP body has no <getWsdlResponse>")
    attachments = [part for index, part in enumerate(parts) if index != root_index]
    if not attachments:
        raise XRoadProtocolError(f"{what}: the WSDL attachment is missing")
    wsdl = attachments[0].decoded(f"{what} attachment")
    if not wsdl.strip():
        raise XRoadProtocolError(f"{what}: the WSDL attachment is empty")
    return wsdl
