"""X-Road directories as catalog entries: the catalog the daemon runs is the file's plus these.

Pure: :func:`expand` takes the catalog read from the file and the last good directory of
each ``xroad`` source and returns the catalog with the discovered providers, services and
checks added. How discovered things map (stable ids, from the X-Road identifiers):

=====================  =====================================================================
source                 the source's ``provider`` gets a service ``<source id>`` (type
                       ``interoperabilidad``) with the platform's own checks: ``health``
                       (``xroad_health`` on ``health_url``; 503 is maintenance),
                       ``globalconf`` (``xroad_globalconf``), ``list-clients``
                       (``xroad_metaservice`` ``list_clients``, at least one entry). They
                       need no discovery, so they run even before the first read.
member                 a provider: id ``ClientId.slug()`` of the member
                       (``co-gob-8999990001``), name the member's name (with
                       ``members_as_providers: false``, everything goes to the source's
                       provider instead)
subsystem              a service (type ``interoperabilidad``): id ``ClientId.slug()``
                       (``co-gob-8999990001-carpeta``), name ``CO/GOB/8999990001/CARPETA``,
                       with one check per ``template.subsystem_checks`` entry (id = the
                       template's id), asked of that subsystem
service                a service: id ``ServiceId.slug()``
                       (``co-gob-8999990001-carpeta-documentos``), name its identifier, with
                       one check per ``template.service_checks`` entry: ``list_methods``
                       (the subsystem's REST or SOAP ``listMethods`` lists it),
                       ``allowed_methods``, ``description`` (``getOpenAPI`` / ``getWsdl``)
=====================  =====================================================================

So a check's identity is ``<member slug>/<subsystem or service slug>/<template id>``: the
same identifier always gives the same check (history, spans and SLA continue across
restarts and re-discoveries), and a service that leaves the directory retires exactly its
checks. Services and subsystems that would get no check are left out, and so are members
without any service. The SLA of a member (provider) aggregates its subsystems and services.

One bad source or entry never stops the others: a key that is not a valid identifier,
or an entry that cannot be turned into checks for any reason, is left out and named in
:attr:`Expansion.problems` (the daemon logs each); a source whose directory cannot be
expanded at all contributes its platform service only. The rest of the catalog applies.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from scd_monitor.catalog.models import (
    Catalog,
    CheckSpec,
    Provider,
    Service,
    ServiceCheckTemplate,
    SubsystemCheckTemplate,
    XRoadGlobalconfCheck,
    XRoadHealthCheck,
    XRoadMetaserviceCheck,
    XRoadSource,
)
from scd_monitor.config.types import TlsOptions
from scd_monitor.sanitize import clean_text
from scd_monitor.xroad.directory import Directory
from scd_monitor.xroad.identifiers import ClientId, ServiceId

__all__ = ["Expansion", "expand", "platform_service"]

_TYPE = "interoperabilidad"


@dataclass(frozen=True, slots=True)
class Expansion:
    """The catalog with what was discovered, and what could not be added (and why)."""

    catalog: Catalog
    problems: tuple[str, ...] = ()


def expand(catalog: Catalog, directories: Mapping[str, Directory]) -> Expansion:
    """``catalog`` plus the platform services of its enabled ``xroad`` sources and the
    providers, services and checks of their directories (``directories`` by source id;
    a source without one contributes only its platform service)."""
    if not catalog.xroad:
        return Expansion(catalog)
    taken = {p.id for p in catalog.providers}
    names: dict[str, tuple[str, str | None]] = {}
    services: dict[str, dict[str, Service]] = {}
    problems: list[str] = []

    def add(provider: str, name: str, contact: str | None, service: Service, what: str) -> None:
        if provider in taken:
            problems.append(f"{what}: provider id {provider!r} is taken by the catalog; skipped")
            return
        names.setdefault(provider, (name, contact))
        bucket = services.setdefault(provider, {})
        if service.id in bucket:
            problems.append(f"{what}: {provider}/{service.id} is already discovered; skipped")
            return
        bucket[service.id] = service

    for source in catalog.xroad:
        if not source.enabled:
            continue
        platform = source.provider
        add(
            platform.id,
            platform.name,
            platform.contact,
            platform_service(source),
            f"xroad source {source.id}",
        )
        directory = directories.get(source.id)
        if directory is None:
            continue
        try:
            found = _discovered(source, directory, problems)
        except Exception as exc:  # the source's directory only: the other sources go on
            problems.append(
                f"xroad source {source.id}: its directory cannot be expanded "
                f"({type(exc).__name__}: {exc}); only its platform checks apply"
            )
            continue
        for provider, name, service in found:
            contact = platform.contact if provider == platform.id else None
            add(provider, name, contact, service, f"xroad source {source.id}")

    discovered = [
        Provider.model_construct(
            id=provider,
            name=names[provider][0],
            contact=names[provider][1],
            interval=None,
            timeout=None,
            services=list(bucket.values()),
        )
        for provider, bucket in services.items()
    ]
    expanded = catalog.model_copy(update={"providers": [*catalog.providers, *discovered]})
    return Expansion(expanded, tuple(problems))


def platform_service(source: XRoadSource) -> Service:
    """The service ``<source id>`` of the source's provider: the platform's own checks."""
    checks: list[CheckSpec] = []
    ss = source.security_server
    if source.health_url is not None:
        checks.append(
            XRoadHealthCheck(
                id="health",
                name="Security server health check",
                kind="xroad_health",
                url=source.health_url,
                tls=ss.tls if ss is not None else TlsOptions(),
            )
        )
    if source.globalconf is not None:
        conf = source.globalconf
        checks.append(
            XRoadGlobalconfCheck(
                id="globalconf",
                name="Global configuration",
                kind="xroad_globalconf",
                url=conf.url,
                instance=source.instance,
                verification_cert=conf.verification_cert,
                anchor=conf.anchor,
                min_validity=conf.min_validity,
                tls=conf.tls,
            )
        )
    if ss is not None:
        checks.append(
            XRoadMetaserviceCheck(
                id="list-clients",
                name="listClients",
                kind="xroad_metaservice",
                security_server=ss,
                metaservice="list_clients",
                instance=source.instance,
                min_entries=1,
            )
        )
    return _service(
        source,
        source.id,
        source.name or f"X-Road {source.instance} ({source.id})",
        checks,
    )


def _discovered(
    source: XRoadSource, directory: Directory, problems: list[str]
) -> list[tuple[str, str, Service]]:
    """``(provider id, provider name, service)`` for every discovered service with checks;
    an entry that cannot be used is left out and named in ``problems``."""
    template = source.template
    if not template.subsystem_checks and not template.service_checks:
        return []
    what = f"xroad source {source.id}"
    platform = source.provider
    out: list[tuple[str, str, Service]] = []
    by_subsystem: dict[str, list[tuple[ServiceId, Mapping[str, Any]]]] = {}
    for key, attrs in directory.services.items():
        try:
            service_id = ServiceId.parse(key)
        except ValueError as exc:
            problems.append(f"{what}: service {clean_text(key, limit=200)} left out: {exc}")
            continue
        by_subsystem.setdefault(str(service_id.client), []).append((service_id, attrs))
    for key in directory.subsystems:
        try:
            subsystem = ClientId.parse(key)
            member_key = str(subsystem.member)
            member_name = (directory.members.get(member_key) or {}).get("name") or member_key
            if platform.members_as_providers:
                # A name is one line of clean text (it ends up in reports and e-mail headers).
                one_line = " ".join(str(member_name).split())
                provider, provider_name = subsystem.member.slug(), clean_text(one_line, limit=300)
            else:
                provider, provider_name = platform.id, platform.name
            checks = [_subsystem_check(source, t, subsystem) for t in template.subsystem_checks]
            if checks:
                service = _service(source, subsystem.slug(), key, checks, trusted=True)
                out.append((provider, provider_name, service))
        except Exception as exc:  # this subsystem (and its services) only
            problems.append(f"{what}: subsystem {clean_text(key, limit=200)} left out: {exc}")
            continue
        for service_id, attrs in by_subsystem.get(key, []):
            try:
                service_checks = [
                    check
                    for t in template.service_checks
                    if (check := _service_check(source, t, service_id, attrs)) is not None
                ]
                if service_checks:
                    service = _service(
                        source, service_id.slug(), str(service_id), service_checks, trusted=True
                    )
                    out.append((provider, provider_name, service))
            except Exception as exc:  # this service only
                problems.append(f"{what}: service {service_id} left out: {exc}")
    return out


def _service(
    source: XRoadSource,
    ident: str,
    name: str,
    checks: Sequence[CheckSpec],
    *,
    trusted: bool = False,
) -> Service:
    """A service of the template's terms. ``trusted``: built from validated parts only
    (identifiers parsed, template checked), so pydantic's validation is skipped: it
    would parse every identifier again, seconds for a directory of 20,000 services."""
    template = source.template
    values: dict[str, Any] = {
        "id": ident,
        "name": name,
        "type": _TYPE,
        "sla": template.sla,
        "interval": template.interval,
        "timeout": template.timeout,
        "checks": list(checks),
    }
    if not trusted:
        return Service(**values)
    # Every field given: model_construct computing defaults is slow (default factories).
    return Service.model_construct(
        **values,
        rule="any",
        vantage_quorum=1,
        failures_to_open=None,
        successes_to_close=None,
        maintenance=[],
        maintenance_notice=None,
    )


def _common(template: SubsystemCheckTemplate | ServiceCheckTemplate) -> dict[str, Any]:
    """Every field of an ``xroad_metaservice`` check but the ones the caller sets."""
    return {
        "id": template.id,
        "name": template.name,
        "critical": template.critical,
        "enabled": template.enabled,
        "interval": template.interval,
        "timeout": template.timeout,
        "kind": "xroad_metaservice",
        "instance": None,
        "provider": None,
        "service": None,
        "expect_clients": [],
        "expect_services": [],
        "min_entries": None,
    }


def _subsystem_check(
    source: XRoadSource, template: SubsystemCheckTemplate, subsystem: ClientId
) -> XRoadMetaserviceCheck:
    assert source.security_server is not None  # the source's validator makes sure
    values = _common(template)
    values.update(
        security_server=source.security_server,
        metaservice=template.metaservice,
        provider=str(subsystem),
        min_entries=template.min_entries,
    )
    return XRoadMetaserviceCheck.model_construct(**values)


def _service_check(
    source: XRoadSource,
    template: ServiceCheckTemplate,
    service: ServiceId,
    attrs: Mapping[str, Any],
) -> XRoadMetaserviceCheck | None:
    assert source.security_server is not None
    soap = attrs.get("protocol") == "SOAP"
    common = _common(template)
    common["security_server"] = source.security_server
    # Built without validation (see _service): the combinations below are the valid ones.
    if template.metaservice == "description":
        if soap:
            common.update(metaservice="soap_get_wsdl", service=str(service))
        elif attrs.get("type") == "OPENAPI":
            common.update(metaservice="rest_get_openapi", service=str(service))
        else:
            return None
    else:
        prefix = "soap" if soap else "rest"
        common.update(
            metaservice=f"{prefix}_{template.metaservice}",
            provider=str(service.client),
            expect_services=[str(service)],
        )
    return XRoadMetaserviceCheck.model_construct(**common)


class _StoredDirectory(Protocol):
    @property
    def directory(self) -> Directory: ...


class StoredDirectories(Protocol):
    """Where the last good directories are kept
    (:class:`scd_monitor.store.DirectoryRepository`)."""

    def latest(self) -> Mapping[str, _StoredDirectory]: ...


def effective_catalog(catalog: Catalog, stored: StoredDirectories | None) -> Catalog:
    """The catalog plus what its X-Road sources discovered (the last good directories in
    ``stored``; with none, only the sources' platform checks)."""
    if not catalog.xroad:
        return catalog
    directories = {}
    if stored is not None:
        directories = {k: v.directory for k, v in stored.latest().items()}
    return expand(catalog, directories).catalog
