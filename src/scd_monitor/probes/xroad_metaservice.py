"""The ``xroad_metaservice`` probe: one metaservice call through a security server.

The call is made as the monitor's information system (``security_server.client``), with
the check's TLS options (mutual TLS with the member's certificate and key when the
security server asks for it), bounded by the check's timeout. Then the assertions:

* ``list_clients`` — every ``expect_clients`` entry is listed;
* ``list_central_services`` — every ``expect_services`` code is listed;
* method lists (``rest_list_methods``, ``rest_allowed_methods``, ``soap_list_methods``,
  ``soap_allowed_methods`` of ``provider``) — every ``expect_services`` entry is listed:
  a bare service code matches any version, a whole identifier without a version any
  version of it, one with a version only that version;
* ``min_entries`` — the answer lists at least that many entries;
* ``rest_get_openapi`` / ``soap_get_wsdl`` of ``service`` — a description came back
  (the client has already checked its shape).

A failing assertion is ``assertion``; X-Road faults, unexpected statuses, broken answers
and transport errors are mapped by :func:`~scd_monitor.probes.xroadinfo.failure_outcome`
(``details["xroad_error_code"]`` and ``details["xroad_fault_side"]`` for faults).
``details`` also carry ``xroad_metaservice`` and ``entries`` (or ``bytes``).
"""

from __future__ import annotations

from collections.abc import Iterable

from scd_monitor.catalog.models import ResolvedCheck, XRoadMetaserviceCheck
from scd_monitor.net.tls import ContextCache
from scd_monitor.probes.base import ErrorKind, Outcome
from scd_monitor.probes.xroadinfo import failure_outcome
from scd_monitor.xroad.client import SecurityServerClient
from scd_monitor.xroad.errors import XRoadFailure
from scd_monitor.xroad.identifiers import ClientId, ServiceId

__all__ = ["XRoadMetaserviceProbe", "service_listed"]

Details = dict[str, str | int | float | bool]
_SHOWN = 5


class XRoadMetaserviceProbe:
    """Implements :class:`~scd_monitor.probes.base.Probe` for ``kind: xroad_metaservice``."""

    def __init__(self, *, contexts: ContextCache | None = None) -> None:
        self._contexts = contexts if contexts is not None else ContextCache()

    async def __call__(self, check: ResolvedCheck) -> Outcome:
        try:
            spec = check.spec
            if not isinstance(spec, XRoadMetaserviceCheck):
                raise TypeError(f"the xroad_metaservice probe cannot run a {spec.kind!r} check")
            ss = spec.security_server
            client = SecurityServerClient(
                ss.url,
                client_id=ClientId.parse(ss.client),
                tls=ss.tls,
                contexts=self._contexts,
                timeout=check.timeout.total_seconds(),
            )
            details: Details = {"xroad_metaservice": spec.metaservice}
            try:
                return await _call(client, spec, details)
            except XRoadFailure as exc:
                return failure_outcome(exc, **details)
        except Exception as exc:  # the probe's own failure, never the target's
            return Outcome.failure(ErrorKind.INTERNAL, f"{type(exc).__name__}: {exc}")


async def _call(
    client: SecurityServerClient, spec: XRoadMetaserviceCheck, details: Details
) -> Outcome:
    ms = spec.metaservice
    if ms == "list_clients":
        clients = await client.list_clients(instance=spec.instance)
        listed = {str(c.id) for c in clients}
        missing = [c for c in spec.expect_clients if c not in listed]
        return _judge(spec, details, len(clients), missing, "client(s) not listed")
    if ms == "list_central_services":
        central = await client.list_central_services(instance=spec.instance)
        codes = {c.service_code for c in central}
        missing = [c for c in spec.expect_services if c not in codes]
        return _judge(spec, details, len(central), missing, "central service(s) not listed")
    if ms == "rest_get_openapi" or ms == "soap_get_wsdl":
        assert spec.service is not None  # the model's validator makes sure
        service = ServiceId.parse(spec.service)
        if ms == "rest_get_openapi":
            description = await client.get_openapi(service)
            details["bytes"] = description.size
            if description.openapi_version:
                details["openapi_version"] = description.openapi_version
        else:
            details["bytes"] = len(await client.get_wsdl(service))
        return Outcome(ok=True, details=details)
    assert spec.provider is not None  # the model's validator makes sure
    provider = ClientId.parse(spec.provider)
    if ms == "rest_list_methods":
        services = [e.service for e in await client.rest_list_methods(provider)]
    elif ms == "rest_allowed_methods":
        services = [e.service for e in await client.rest_allowed_methods(provider)]
    elif ms == "soap_list_methods":
        services = await client.soap_list_methods(provider)
    else:
        services = await client.soap_allowed_methods(provider)
    missing = [s for s in spec.expect_services if not service_listed(s, services)]
    return _judge(spec, details, len(services), missing, f"service(s) not in {ms} of {provider}")


def service_listed(expected: str, listed: Iterable[ServiceId]) -> bool:
    """Whether ``expected`` (a service code or a whole service identifier) is listed."""
    if "/" not in expected:
        return any(s.service_code == expected for s in listed)
    wanted = ServiceId.parse(expected)
    if wanted.service_version is None:
        return any(s.without_version() == wanted for s in listed)
    return any(s == wanted for s in listed)


def _judge(
    spec: XRoadMetaserviceCheck, details: Details, count: int, missing: list[str], what: str
) -> Outcome:
    details["entries"] = count
    if missing:
        shown = ", ".join(missing[:_SHOWN]) + (" …" if len(missing) > _SHOWN else "")
        details["missing"] = len(missing)
        return Outcome.failure(
            ErrorKind.ASSERTION, f"{what}: {shown} ({count} listed)", details=details
        )
    if spec.min_entries is not None and count < spec.min_entries:
        return Outcome.failure(
            ErrorKind.ASSERTION,
            f"{spec.metaservice} lists {count} entries, expected at least {spec.min_entries}",
            details=details,
        )
    return Outcome(ok=True, details=details)
