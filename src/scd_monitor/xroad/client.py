"""An async client for a security server's metaservices, its health check, and
configuration sources.

Every call is one bounded HTTP exchange with a fresh connection (``httpx``, environment
proxies ignored, redirects not followed, no compression asked for), so a probe measures
the target every time. TLS contexts, including client certificates for mutual TLS,
come from a shared :class:`~scd_monitor.net.tls.ContextCache` (the monitor's one trust
policy), and failures are classified by :func:`scd_monitor.net.errors.classify`.

What can go wrong, and what is raised (see :mod:`scd_monitor.xroad.errors`):

* no answer — :class:`XRoadTransportError` with ``kind`` ``dns``, ``connect``, ``tls``,
  ``timeout``, ``protocol`` (connection cut mid-answer) or ``internal`` (e.g. the client
  certificate file cannot be read);
* an X-Road fault — :class:`XRoadError` (SOAP Fault; REST ``X-Road-Error``);
* anything else unexpected — :class:`XRoadProtocolError` (``too_large`` past
  ``max_bytes``, which is checked on ``Content-Length`` and while reading) or its
  :class:`XRoadStatusError` for an HTTP status without a fault.

URLs (relative to ``base_url``, the security server's client-side address):
``GET listClients?xRoadInstance=…`` and ``GET listCentralServices?xRoadInstance=…``
(PR-META §2; PR-META before 2.12, §3); ``GET r1/{provider}/listMethods``,
``…/allowedMethods`` and ``…/getOpenAPI?serviceCode=…`` with ``X-Road-Client``
(PR-MREST §4, §5; PR-REST §4.1–4.3); SOAP ``POST`` of the envelope to ``base_url``
with ``Content-Type: text/xml; charset=utf-8`` (PR-MESS, PR-META §3, §4; the operational
monitoring services of PR-OPMON §2, §3). Identifiers
are data, never paths: each part goes into the URL percent-encoded on its own
(:meth:`~scd_monitor.xroad.identifiers.ClientId.encoded`), so no ``/`` or ``..`` from a
directory can leave the security server's base path.

The health check is a separate port of the security server: ``200`` healthy, ``500``
unhealthy (the body says which check failed), ``503`` in maintenance mode.
"""

from __future__ import annotations

import asyncio
import dataclasses
import enum
import ssl
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import parse_qsl, urlencode, urljoin, urlsplit, urlunsplit

import httpx

from scd_monitor import __version__
from scd_monitor.config.types import TlsOptions
from scd_monitor.net.errors import NetErrorKind, classify
from scd_monitor.net.tls import ContextCache, httpx_extensions
from scd_monitor.sanitize import clean_text
from scd_monitor.xroad.errors import (
    FailureKind,
    XRoadFailure,
    XRoadProtocolError,
    XRoadStatusError,
    XRoadTransportError,
)
from scd_monitor.xroad.globalconf import (
    PRIVATE_PARAMETERS,
    SHARED_PARAMETERS,
    GlobalConf,
    parse_configuration_directory,
    parse_private_parameters,
    parse_shared_parameters,
    verify_directory_signature,
    verify_part,
)
from scd_monitor.xroad.identifiers import CentralServiceId, ClientId, RefusedEntry, ServiceId
from scd_monitor.xroad.metaservices import (
    ListedClient,
    MethodList,
    OpenApiDescription,
    ServiceEntry,
    build_get_wsdl_request,
    build_method_list_request,
    parse_get_wsdl_response,
    parse_list_central_services,
    parse_list_clients_json,
    parse_list_clients_xml,
    parse_openapi,
    parse_rest_error,
    parse_rest_method_list,
    parse_soap_envelope,
    parse_soap_fault,
    parse_soap_method_list,
)
from scd_monitor.xroad.opmon import (
    DEFAULT_MAX_RECORDS_BYTES,
    DEFAULT_OUTPUT_FIELDS,
    HEALTH_DATA,
    OPERATIONAL_DATA,
    HealthData,
    OperationalDataPage,
    SecurityServerId,
    build_health_data_request,
    build_operational_data_request,
    parse_health_data_response,
    parse_operational_data_response,
)
from scd_monitor.xroad.xml import DEFAULT_MAX_BYTES

if TYPE_CHECKING:
    from scd_monitor.clock import Clock

__all__ = [
    "CONFIGURATION_VERSIONS",
    "HealthReport",
    "HealthStatus",
    "SecurityServerClient",
    "check_health",
    "configuration_versions",
    "fetch_globalconf",
    "fetch_newest_globalconf",
]

CONFIGURATION_VERSIONS: tuple[int, ...] = (6, 5, 4, 3, 2)
"""The versions asked for, newest first: X-Road's ``CURRENT_GLOBAL_CONFIGURATION_VERSION``
down to its ``MINIMUM_SUPPORTED_GLOBAL_CONFIGURATION_VERSION``; the parser reads the
shared parameters of all of them."""

_T = TypeVar("_T")
_USER_AGENT = f"scd-monitor/{__version__}"
_PLAIN = TlsOptions(verify=False)
_MAX_HEALTH_BODY = 64 * 1024
_SHOWN = 300
_KINDS: dict[NetErrorKind, FailureKind] = {
    NetErrorKind.DNS: "dns",
    NetErrorKind.CONNECT: "connect",
    NetErrorKind.TLS: "tls",
    NetErrorKind.TIMEOUT: "timeout",
    NetErrorKind.PROTOCOL: "protocol",
    NetErrorKind.INTERNAL: "internal",
}


class HealthStatus(enum.StrEnum):
    """What a security server's health check said."""

    HEALTHY = "healthy"
    """HTTP 200."""
    UNHEALTHY = "unhealthy"
    """HTTP 500: one of the server's own checks failed (the body says which)."""
    MAINTENANCE = "maintenance"
    """HTTP 503: the server is in maintenance mode."""
    UNEXPECTED = "unexpected"
    """Any other status."""


_HEALTH_BY_STATUS = {
    200: HealthStatus.HEALTHY,
    500: HealthStatus.UNHEALTHY,
    503: HealthStatus.MAINTENANCE,
}


@dataclass(frozen=True, slots=True)
class HealthReport:
    """A health check answer: the verdict, the status code and the (shortened) body."""

    status: HealthStatus
    status_code: int
    message: str


@dataclass(frozen=True, slots=True)
class _Answer:
    status: int
    headers: httpx.Headers
    body: bytes

    @property
    def content_type(self) -> str | None:
        value = self.headers.get("content-type")
        return value if isinstance(value, str) else None

    def shown(self) -> str:
        """The start of the body for a message: white space collapsed, cleaned."""
        text = self.body[:_SHOWN].decode("utf-8", "replace")
        return clean_text(" ".join(text.split()))


class _Fetcher:
    """One bounded HTTP exchange per call, errors translated."""

    def __init__(
        self, *, tls: TlsOptions | None, contexts: ContextCache | None, max_bytes: int
    ) -> None:
        self.tls = tls or TlsOptions()
        self.contexts = contexts if contexts is not None else ContextCache()
        self.max_bytes = max_bytes

    async def request(
        self,
        method: str,
        url: str,
        *,
        timeout: float,  # noqa: ASYNC109 -- bounds the exchange (asyncio) and each httpx phase
        what: str,
        headers: Mapping[str, str] | None = None,
        content: bytes | None = None,
        max_bytes: int | None = None,
        truncate: bool = False,
    ) -> _Answer:
        """``truncate``: past ``max_bytes``, keep the start and stop reading instead of
        failing (for answers judged by their status)."""
        limit = self.max_bytes if max_bytes is None else max_bytes
        https = urlsplit(url).scheme == "https"
        verify: ssl.SSLContext
        extensions: dict[str, Any] = {}
        if not https:
            # Plain HTTP never speaks TLS here (redirects are not followed), but httpx
            # builds a verifying context (loading the CA bundle, ~20 ms of CPU) for every
            # client given none: give it the cached non-verifying one instead.
            verify = self.contexts.get(_PLAIN, verify=False)
        else:
            try:  # before any I/O: an unreadable file is the monitor's problem
                verify = self.contexts.get(self.tls)
            except (OSError, ssl.SSLError) as exc:
                raise XRoadTransportError(
                    "internal", f"{what}: cannot load the TLS files: {exc}"
                ) from exc
            extensions = httpx_extensions(self.tls)
        sent = {"User-Agent": _USER_AGENT, "Accept-Encoding": "identity", **(headers or {})}
        try:
            async with (
                asyncio.timeout(timeout),
                httpx.AsyncClient(
                    verify=verify,
                    trust_env=False,
                    follow_redirects=False,
                    timeout=httpx.Timeout(timeout),
                ) as client,
                client.stream(
                    method, url, headers=sent, content=content, extensions=extensions
                ) as response,
            ):
                body = await _read(response, limit, what, truncate=truncate)
                return _Answer(status=response.status_code, headers=response.headers, body=body)
        except XRoadFailure:
            raise
        except TimeoutError as exc:
            raise XRoadTransportError(
                "timeout", f"{what}: no complete answer within {timeout:.2f} s"
            ) from exc
        except (httpx.HTTPError, httpx.InvalidURL, OSError, ValueError) as exc:
            raise _transport_error(exc, what, timeout) from exc


async def _read(response: httpx.Response, limit: int, what: str, *, truncate: bool) -> bytes:
    declared = response.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit and not truncate:
        raise XRoadProtocolError(
            f"{what}: Content-Length {int(declared)} is over the limit of {limit} bytes; not read",
            kind="too_large",
        )
    encoding = response.headers.get("content-encoding", "identity").strip().lower()
    if encoding not in ("", "identity"):
        raise XRoadProtocolError(f"{what}: unexpected Content-Encoding {encoding!r}")
    body = bytearray()
    async for chunk in response.aiter_raw():
        body += chunk
        if len(body) > limit:
            if truncate:
                return bytes(body[:limit])
            raise XRoadProtocolError(
                f"{what}: answer is over the limit of {limit} bytes; stopped reading",
                kind="too_large",
            )
    return bytes(body)


def _transport_error(exc: BaseException, what: str, timeout: float) -> XRoadTransportError:
    if isinstance(exc, httpx.TimeoutException):
        return XRoadTransportError("timeout", f"{what}: no complete answer within {timeout:.2f} s")
    failure = classify(exc)
    return XRoadTransportError(_KINDS[failure.kind], f"{what}: {failure.message}")


def _check_base_url(url: str, what: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"{what} must be an http(s) URL with a host, not {url!r}")
    return url


def _raise_for_error(answer: _Answer, what: str) -> None:
    """Raise the X-Road fault or the unexpected status of a non-SOAP answer."""
    fault = parse_rest_error(
        answer.headers.get("x-road-error"), answer.body, http_status=answer.status
    )
    if fault is not None:
        raise fault
    if 200 <= answer.status < 300:
        return
    _raise_soap_fault(answer, what)
    raise XRoadStatusError(answer.status, f"{what}: HTTP {answer.status}: {answer.shown()}")


def _raise_soap_fault(answer: _Answer, what: str) -> None:
    """Raise the SOAP fault an error answer carries, if it is one (X-Road answers a bad
    metaservice request with a fault)."""
    if not answer.body.lstrip().startswith(b"<"):
        return
    try:
        envelope = parse_soap_envelope(answer.body, what=what)
    except XRoadProtocolError:
        return
    fault = parse_soap_fault(envelope, http_status=answer.status)
    if fault is not None:
        raise fault


class SecurityServerClient:
    """Metaservices of one security server, called as information system ``client_id``.

    ``base_url`` is the security server's address for information systems
    (``https://ss.example.gov.co``); with ``https`` the ``tls`` options apply (CA file,
    client certificate and key for mutual TLS, server name). ``timeout`` bounds each
    call as a whole, ``max_bytes`` each answer.
    """

    def __init__(
        self,
        base_url: str,
        *,
        client_id: ClientId,
        tls: TlsOptions | None = None,
        contexts: ContextCache | None = None,
        timeout: float = 10.0,
        max_bytes: int = DEFAULT_MAX_BYTES,
    ) -> None:
        self.base_url = _check_base_url(base_url, "security server URL").rstrip("/")
        self.client_id = client_id
        self.timeout = timeout
        self.max_bytes = max_bytes
        self._fetcher = _Fetcher(tls=tls, contexts=contexts, max_bytes=max_bytes)

    def __repr__(self) -> str:
        return f"SecurityServerClient({self.base_url!r}, client_id={str(self.client_id)!r})"

    async def _get(self, path: str, what: str, headers: Mapping[str, str]) -> _Answer:
        return await self._fetcher.request(
            "GET", f"{self.base_url}/{path}", timeout=self.timeout, what=what, headers=headers
        )

    # -- listClients, listCentralServices (PR-META §2) --------------------------------

    async def list_clients(
        self,
        json: bool = False,
        *,
        instance: str | None = None,
        refused: list[RefusedEntry] | None = None,
    ) -> list[ListedClient]:
        """Members and subsystems of ``instance`` (default: the client's own), as XML
        or, with ``json``, as JSON (``Accept: application/json``). With ``refused``,
        invalid entries are left out and listed there instead of failing the answer."""
        what = "listClients"
        query = urlencode({"xRoadInstance": instance or self.client_id.instance})
        accept = "application/json" if json else "text/xml"
        answer = await self._get(f"listClients?{query}", what, {"Accept": accept})
        _raise_for_error(answer, what)
        if json:
            return parse_list_clients_json(answer.body, max_bytes=self.max_bytes, refused=refused)
        return parse_list_clients_xml(answer.body, max_bytes=self.max_bytes, refused=refused)

    async def list_central_services(self, *, instance: str | None = None) -> list[CentralServiceId]:
        """Central services of ``instance`` (X-Road 6 to 7.2; always XML)."""
        what = "listCentralServices"
        query = urlencode({"xRoadInstance": instance or self.client_id.instance})
        answer = await self._get(f"listCentralServices?{query}", what, {"Accept": "text/xml"})
        _raise_for_error(answer, what)
        return parse_list_central_services(answer.body, max_bytes=self.max_bytes)

    # -- REST metaservices (PR-MREST) -------------------------------------------------

    def _rest_headers(self, accept: str) -> dict[str, str]:
        return {"X-Road-Client": self.client_id.encoded(), "Accept": accept}

    async def _rest_method_list(
        self, provider: ClientId, method: MethodList, refused: list[RefusedEntry] | None
    ) -> list[ServiceEntry]:
        what = f"REST {method} of {provider}"
        answer = await self._get(
            f"r1/{provider.encoded()}/{method}", what, self._rest_headers("application/json")
        )
        _raise_for_error(answer, what)
        return parse_rest_method_list(
            answer.body, what=f"{method} response", max_bytes=self.max_bytes, refused=refused
        )

    async def rest_list_methods(
        self, provider: ClientId, *, refused: list[RefusedEntry] | None = None
    ) -> list[ServiceEntry]:
        """REST services (with endpoints) that ``provider`` offers (``refused``: see
        :meth:`list_clients`)."""
        return await self._rest_method_list(provider, "listMethods", refused)

    async def rest_allowed_methods(
        self, provider: ClientId, *, refused: list[RefusedEntry] | None = None
    ) -> list[ServiceEntry]:
        """REST services of ``provider`` this client may call."""
        return await self._rest_method_list(provider, "allowedMethods", refused)

    async def get_openapi(self, service: ServiceId) -> OpenApiDescription:
        """The OpenAPI description of the REST service ``service``."""
        what = f"getOpenAPI of {service}"
        query = urlencode({"serviceCode": service.service_code})
        answer = await self._get(
            f"r1/{service.client.encoded()}/getOpenAPI?{query}",
            what,
            self._rest_headers("application/json, application/yaml, text/yaml, */*;q=0.5"),
        )
        _raise_for_error(answer, what)
        return parse_openapi(answer.body, answer.content_type, max_bytes=self.max_bytes)

    # -- SOAP metaservices (PR-META §3, §4) -------------------------------------------

    async def _soap(self, envelope: bytes, what: str) -> _Answer:
        return await self._fetcher.request(
            "POST",
            f"{self.base_url}/",
            timeout=self.timeout,
            what=what,
            headers={"Content-Type": "text/xml; charset=utf-8", "SOAPAction": '""'},
            content=envelope,
        )

    async def _soap_method_list(
        self,
        provider: ClientId,
        method: MethodList,
        user_id: str | None,
        refused: list[RefusedEntry] | None = None,
    ) -> list[ServiceId]:
        what = f"SOAP {method} of {provider}"
        envelope, message_id = build_method_list_request(
            self.client_id, provider, method=method, user_id=user_id
        )
        answer = await self._soap(envelope, what)
        try:
            return parse_soap_method_list(
                answer.body,
                method=method,
                message_id=message_id,
                http_status=answer.status,
                max_bytes=self.max_bytes,
                refused=refused,
            )
        except XRoadStatusError:
            raise
        except XRoadProtocolError as exc:
            if answer.status != 200:
                raise XRoadStatusError(
                    answer.status, f"{what}: HTTP {answer.status}: {answer.shown()}"
                ) from exc
            raise

    async def soap_list_methods(
        self,
        provider: ClientId,
        *,
        user_id: str | None = None,
        refused: list[RefusedEntry] | None = None,
    ) -> list[ServiceId]:
        """SOAP services that ``provider`` offers (``refused``: see :meth:`list_clients`)."""
        return await self._soap_method_list(provider, "listMethods", user_id, refused)

    async def soap_allowed_methods(
        self, provider: ClientId, *, user_id: str | None = None
    ) -> list[ServiceId]:
        """SOAP services of ``provider`` this client may call."""
        return await self._soap_method_list(provider, "allowedMethods", user_id)

    async def get_wsdl(self, service: ServiceId, *, user_id: str | None = None) -> bytes:
        """The WSDL of the SOAP service ``service`` (the SOAP attachment, as bytes)."""
        what = f"getWsdl of {service}"
        envelope, message_id = build_get_wsdl_request(self.client_id, service, user_id=user_id)
        answer = await self._soap(envelope, what)
        try:
            return parse_get_wsdl_response(
                answer.body,
                answer.content_type,
                message_id=message_id,
                http_status=answer.status,
                max_bytes=self.max_bytes,
            )
        except XRoadStatusError:
            raise
        except XRoadProtocolError as exc:
            if answer.status != 200:
                raise XRoadStatusError(
                    answer.status, f"{what}: HTTP {answer.status}: {answer.shown()}"
                ) from exc
            raise

    # -- operational monitoring (PR-OPMON) --------------------------------------------

    async def _soap_parsed(self, envelope: bytes, what: str, parse: Callable[[_Answer], _T]) -> _T:
        """POST ``envelope``, parse the answer; an unparseable answer with an HTTP error
        status is reported as that status."""
        answer = await self._soap(envelope, what)
        try:
            return parse(answer)
        except XRoadStatusError:
            raise
        except XRoadProtocolError as exc:
            if answer.status != 200 and exc.kind != "too_large":
                raise XRoadStatusError(
                    answer.status, f"{what}: HTTP {answer.status}: {answer.shown()}"
                ) from exc
            raise

    async def health_data(
        self, server: SecurityServerId, *, filter_client: ClientId | None = None
    ) -> HealthData:
        """``getSecurityServerHealthData`` of ``server`` (PR-OPMON §3): per service, the
        request counts and statistics of the last period; ``filter_client`` keeps the
        services of that provider only. The request goes to the server's owner, with
        ``server`` in the ``securityServer`` header, through this client's security server."""
        what = f"{HEALTH_DATA} of {server}"
        message_id = str(uuid.uuid4())
        envelope = build_health_data_request(
            self.client_id, server, filter_client=filter_client, message_id=message_id
        )
        return await self._soap_parsed(
            envelope,
            what,
            lambda answer: parse_health_data_response(
                answer.body,
                max_bytes=self.max_bytes,
                message_id=message_id,
                http_status=answer.status,
            ),
        )

    async def operational_data(
        self,
        server: SecurityServerId,
        records_from: int,
        records_to: int,
        *,
        filter_client: ClientId | None = None,
        output_fields: Sequence[str] = DEFAULT_OUTPUT_FIELDS,
        max_records_bytes: int = DEFAULT_MAX_RECORDS_BYTES,
    ) -> OperationalDataPage:
        """One page of ``getSecurityServerOperationalData`` of ``server`` (PR-OPMON §2):
        the records with ``records_from`` ≤ ``monitoringDataTs`` ≤ ``records_to`` (Unix
        seconds) the server has committed, at most its page size plus the rest of the last
        second. Ask again from ``next_records_from`` while it is set; the server refuses
        (``Client.InvalidRequest``) a ``records_from`` it has not committed yet.

        ``filter_client`` keeps the records of that service provider. The answer is
        bounded by ``max_bytes``, its decompressed records by ``max_records_bytes``. A
        record outside the period asked for is moved to ``refused``; a
        ``nextRecordsFrom`` that does not move past ``records_from`` (a server that would
        make a caller loop forever) is an :class:`XRoadProtocolError`.
        """
        what = f"{OPERATIONAL_DATA} of {server}"
        message_id = str(uuid.uuid4())
        envelope = build_operational_data_request(
            self.client_id,
            server,
            records_from,
            records_to,
            filter_client=filter_client,
            output_fields=output_fields,
            message_id=message_id,
        )
        page = await self._soap_parsed(
            envelope,
            what,
            lambda answer: parse_operational_data_response(
                answer.body,
                answer.content_type,
                max_bytes=self.max_bytes,
                max_records_bytes=max_records_bytes,
                message_id=message_id,
                http_status=answer.status,
            ),
        )
        return _within_period(page, records_from, records_to, what)

    # -- health -----------------------------------------------------------------------

    async def health(self, url: str) -> HealthReport:
        """Ask the health check at ``url`` (the security server's health check port),
        with this client's TLS options and timeout."""
        return await _health(self._fetcher, url, self.timeout)


def _within_period(
    page: OperationalDataPage, records_from: int, records_to: int, what: str
) -> OperationalDataPage:
    """``page`` with the records outside ``[records_from, records_to]`` refused, and its
    ``nextRecordsFrom`` checked to move forward."""
    if page.next_records_from is not None and page.next_records_from <= records_from:
        raise XRoadProtocolError(
            f"{what}: nextRecordsFrom {page.next_records_from} does not move past "
            f"recordsFrom {records_from}"
        )
    outside = [r for r in page.records if not records_from <= r.monitoring_data_ts <= records_to]
    if not outside:
        return page
    refused = [
        RefusedEntry(
            str(r.service) if r.service is not None else "?",
            f"monitoringDataTs {r.monitoring_data_ts} is outside the period asked for "
            f"({records_from} to {records_to})",
            what,
        )
        for r in outside
    ]
    return dataclasses.replace(
        page,
        records=tuple(
            r for r in page.records if records_from <= r.monitoring_data_ts <= records_to
        ),
        refused=(*page.refused, *refused),
    )


async def check_health(
    url: str,
    *,
    tls: TlsOptions | None = None,
    contexts: ContextCache | None = None,
    timeout: float = 10.0,  # noqa: ASYNC109 -- passed on to the bounded exchange
) -> HealthReport:
    """A security server's health check: ``200`` healthy, ``500`` unhealthy, ``503``
    maintenance, anything else unexpected. Raises only when no answer came."""
    fetcher = _Fetcher(tls=tls, contexts=contexts, max_bytes=_MAX_HEALTH_BODY)
    return await _health(fetcher, url, timeout)


async def _health(fetcher: _Fetcher, url: str, seconds: float) -> HealthReport:
    _check_base_url(url, "health check URL")
    answer = await fetcher.request(
        "GET", url, timeout=seconds, what="health check", max_bytes=_MAX_HEALTH_BODY, truncate=True
    )
    status = _HEALTH_BY_STATUS.get(answer.status, HealthStatus.UNEXPECTED)
    return HealthReport(status=status, status_code=answer.status, message=answer.shown())


# -- global configuration (PR-GCONF) ---------------------------------------------------


def _with_version(url: str, version: int | None) -> str:
    if version is None:
        return url
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != "version"]
    query.append(("version", str(version)))
    return urlunsplit(parts._replace(query=urlencode(query)))


def _same_origin(a: str, b: str) -> bool:
    first, second = urlsplit(a), urlsplit(b)
    return (first.scheme, first.hostname, first.port) == (
        second.scheme,
        second.hostname,
        second.port,
    )


async def fetch_globalconf(
    source_url: str,
    *,
    instance: str | None = None,
    tls: TlsOptions | None = None,
    contexts: ContextCache | None = None,
    timeout: float = 10.0,  # noqa: ASYNC109 -- the whole download's budget, shared by its requests
    version: int | None = None,
    verification_certs: Sequence[bytes] | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
    clock: Clock | None = None,
    refused: list[RefusedEntry] | None = None,
) -> GlobalConf:
    """Download a configuration directory and the shared and private parameters it lists
    (private parameters are listed by an internal configuration, ``/internalconf``: the
    management service and the federated instances' anchors).

    ``source_url`` is the anchor's download URL (``version`` adds ``?version=N``,
    PR-GCONF §2.7). ``instance`` keeps only that instance's shared parameters (and
    fails if the directory lists none). Every shared-parameters file is checked
    against the directory's hash; the directory's signature is checked only with
    ``verification_certs`` (the anchor's, PEM or DER). Files are fetched only from
    the directory's own origin (scheme, host, port). ``timeout`` bounds the whole
    download; ``max_bytes`` each file. With ``refused``, members, subsystems and
    security servers with invalid identifiers are left out and listed there instead of
    failing the whole configuration (see :func:`parse_shared_parameters`).
    """
    _check_base_url(source_url, "configuration source URL")
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    fetcher = _Fetcher(tls=tls, contexts=contexts, max_bytes=max_bytes)

    def left() -> float:
        remaining = deadline - loop.time()
        if remaining <= 0:
            raise XRoadTransportError("timeout", f"global configuration: over {timeout:.2f} s")
        return remaining

    directory_url = _with_version(source_url, version)
    what = "configuration directory"
    answer = await fetcher.request("GET", directory_url, timeout=left(), what=what)
    if answer.status != 200:
        raise XRoadStatusError(answer.status, f"{what}: HTTP {answer.status}: {answer.shown()}")
    directory = parse_configuration_directory(answer.body, answer.content_type, max_bytes=max_bytes)
    if verification_certs is not None:
        verify_directory_signature(directory, verification_certs)
    parts = directory.parts_of(SHARED_PARAMETERS, instance)
    if not parts:
        scope = f" for instance {instance}" if instance else ""
        raise XRoadProtocolError(f"{what}: lists no {SHARED_PARAMETERS}{scope}")
    shared = []
    for part in parts:
        url = urljoin(directory_url, part.location)
        if not _same_origin(url, directory_url):
            raise XRoadProtocolError(
                f"{what}: {part.location} points to another origin ({url}); refused"
            )
        part_what = f"shared parameters {part.location}"
        file = await fetcher.request("GET", url, timeout=left(), what=part_what)
        if file.status != 200:
            raise XRoadStatusError(file.status, f"{part_what}: HTTP {file.status}: {file.shown()}")
        verify_part(part, file.body)
        parameters = parse_shared_parameters(file.body, max_bytes=max_bytes, refused=refused)
        if part.instance is not None and parameters.instance != part.instance:
            raise XRoadProtocolError(
                f"{part_what}: describes instance {parameters.instance}, "
                f"the directory says {part.instance}"
            )
        shared.append(parameters)
    private = []
    for part in directory.parts_of(PRIVATE_PARAMETERS, instance):
        url = urljoin(directory_url, part.location)
        if not _same_origin(url, directory_url):
            raise XRoadProtocolError(
                f"{what}: {part.location} points to another origin ({url}); refused"
            )
        part_what = f"private parameters {part.location}"
        file = await fetcher.request("GET", url, timeout=left(), what=part_what)
        if file.status != 200:
            raise XRoadStatusError(file.status, f"{part_what}: HTTP {file.status}: {file.shown()}")
        verify_part(part, file.body)  # as strict as for the shared parameters
        try:
            parameters_private = parse_private_parameters(file.body, max_bytes=max_bytes)
            if part.instance is not None and parameters_private.instance != part.instance:
                raise XRoadProtocolError(
                    f"describes instance {parameters_private.instance}, "
                    f"the directory says {part.instance}"
                )
        except XRoadProtocolError as exc:
            # The monitor reads the directory from the shared parameters: private ones it
            # cannot read are left out and said, not a failed configuration.
            if refused is not None:
                refused.append(RefusedEntry(part.location, str(exc), part_what))
            continue
        private.append(parameters_private)
    fetched_at = clock.now() if clock is not None else datetime.now(UTC)
    return GlobalConf(
        expires_at=directory.expires_at,
        version=directory.version,
        shared=tuple(shared),
        private=tuple(private),
        fetched_at=fetched_at,
        source_url=directory_url,
        directory=directory,
        signature_verified=verification_certs is not None,
    )


def configuration_versions(url: str) -> tuple[int | None, ...]:
    """The versions to ask for, in order; ``(None,)`` when ``url`` already names one."""
    if any(name == "version" for name, _ in parse_qsl(urlsplit(url).query)):
        return (None,)
    return CONFIGURATION_VERSIONS


async def fetch_newest_globalconf(
    source_url: str,
    *,
    timeout: float = 10.0,  # noqa: ASYNC109 -- the whole search's budget
    **options: Any,
) -> GlobalConf:
    """:func:`fetch_globalconf` in the newest version the source serves, chosen as X-Road's
    own configuration client chooses it (``LocationVersionResolver``, PR-GCONF §2.7): a
    ``version`` already in ``source_url`` is used as it is; otherwise ``?version=6`` is
    asked first and each ``404`` for the directory moves down one version, to ``2``, whose
    answer is taken whatever it is. Any other failure is not a reason to try an older
    version. ``timeout`` bounds the whole search; ``options`` go to
    :func:`fetch_globalconf`."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    versions = configuration_versions(source_url)
    for index, version in enumerate(versions):
        remaining = deadline - loop.time()
        if remaining <= 0:
            raise XRoadTransportError(
                "timeout", f"global configuration: over {timeout:.2f} s (version {version})"
            )
        try:
            return await fetch_globalconf(source_url, timeout=remaining, version=version, **options)
        except XRoadStatusError as exc:
            if index == len(versions) - 1 or not _version_missing(exc):
                raise
    raise AssertionError("unreachable: the last version's failure is raised")


def _version_missing(exc: XRoadStatusError) -> bool:
    """A ``404`` for the directory itself (PR-GCONF §2.7: "version not available"), not
    for a file it lists: :func:`fetch_globalconf` names the directory in its message."""
    return exc.status_code == 404 and exc.message.startswith("configuration directory")
