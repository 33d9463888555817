"""The directory as data: the differ, JSON round trip, partial reads, and its expansion
into catalog entries with stable identities."""

from __future__ import annotations

import random
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scd_monitor.catalog import parse_catalog
from scd_monitor.catalog.discovered import expand
from scd_monitor.catalog.models import Catalog, XRoadMetaserviceCheck
from scd_monitor.xroad.client import SecurityServerClient
from scd_monitor.xroad.directory import (
    ENTITY_KINDS,
    Change,
    Directory,
    DirectoryReader,
    DirectoryReadError,
    apply,
    diff,
)
from scd_monitor.xroad.errors import XRoadError
from scd_monitor.xroad.identifiers import ClientId, RefusedEntry, ServiceId
from scd_monitor.xroad.metaservices import ListedClient, ServiceEntry

NOW = datetime(2026, 11, 23, 15, 0, tzinfo=UTC)


def directory(
    members: Mapping[str, str] | None = None,
    subsystems: list[str] | None = None,
    services: Mapping[str, tuple[str, str]] | None = None,
    servers: Mapping[str, list[str]] | None = None,
) -> Directory:
    members = members if members is not None else {"CO/GOB/111": "Ministerio"}
    subsystems = subsystems if subsystems is not None else ["CO/GOB/111/CARPETA"]
    services = services if services is not None else {"CO/GOB/111/CARPETA/docs": ("REST", "REST")}
    return Directory.build(
        "co",
        "CO",
        NOW,
        {
            "member": {k: {"name": v} for k, v in members.items()},
            "subsystem": {k: {"name": None} for k in subsystems},
            "service": {
                k: {"protocol": p, "type": t, "endpoints": []} for k, (p, t) in services.items()
            },
            "security_server": {
                k: {"address": None, "clients": sorted(c)} for k, c in (servers or {}).items()
            },
        },
    )


# -- the differ ---------------------------------------------------------------------------


def test_appeared_disappeared_changed_per_kind() -> None:
    before = directory(
        members={"CO/GOB/111": "Ministerio", "CO/GOB/222": "Registraduría"},
        subsystems=["CO/GOB/111/CARPETA", "CO/GOB/222/AUTH"],
        services={
            "CO/GOB/111/CARPETA/docs": ("REST", "REST"),
            "CO/GOB/222/AUTH/login/v1": ("SOAP", "WSDL"),
        },
        servers={"CO/GOB/111/SS1": ["CO/GOB/111/CARPETA"]},
    )
    after = directory(
        members={"CO/GOB/111": "Ministerio TIC", "CO/PRIV/333": "Operador"},
        subsystems=["CO/GOB/111/CARPETA", "CO/PRIV/333/PAGOS"],
        services={
            "CO/GOB/111/CARPETA/docs": ("REST", "OPENAPI"),
            "CO/PRIV/333/PAGOS/pagar": ("REST", "REST"),
        },
        servers={"CO/GOB/111/SS1": ["CO/GOB/111/CARPETA", "CO/PRIV/333/PAGOS"]},
    )
    got = {(c.kind, c.change, c.subject) for c in diff(before, after)}
    assert got == {
        ("member", "changed", "CO/GOB/111"),
        ("member", "disappeared", "CO/GOB/222"),
        ("member", "appeared", "CO/PRIV/333"),
        ("subsystem", "disappeared", "CO/GOB/222/AUTH"),
        ("subsystem", "appeared", "CO/PRIV/333/PAGOS"),
        ("service", "changed", "CO/GOB/111/CARPETA/docs"),
        ("service", "disappeared", "CO/GOB/222/AUTH/login/v1"),
        ("service", "appeared", "CO/PRIV/333/PAGOS/pagar"),
        ("security_server", "changed", "CO/GOB/111/SS1"),
    }
    changed = next(c for c in diff(before, after) if c.subject == "CO/GOB/111")
    assert changed.before == {"name": "Ministerio"}
    assert changed.after == {"name": "Ministerio TIC"}
    assert diff(after, after) == []


keys = st.sampled_from([f"CO/GOB/{n}" for n in range(8)])
attrs = st.fixed_dictionaries({"name": st.sampled_from(["a", "b", None])})
entity_sets = st.fixed_dictionaries(
    {kind: st.dictionaries(keys, attrs, max_size=6) for kind in ENTITY_KINDS}
)


@settings(max_examples=200, deadline=None)
@given(entity_sets, entity_sets)
def test_applying_the_diff_gives_the_other_directory(
    a: dict[str, dict[str, Any]], b: dict[str, dict[str, Any]]
) -> None:
    da = Directory.build("s", "CO", NOW, a)
    db = Directory.build("s", "CO", NOW, b)
    changes = diff(da, db)
    assert apply(da.entities, changes) == {k: dict(b[k]) for k in ENTITY_KINDS}
    assert apply(db.entities, diff(db, da)) == {k: dict(a[k]) for k in ENTITY_KINDS}
    for kind in ENTITY_KINDS:
        mine = [c for c in changes if c.kind == kind]
        assert {c.subject for c in mine if c.change == "appeared"} == set(b[kind]) - set(a[kind])
        assert {c.subject for c in mine if c.change == "disappeared"} == set(a[kind]) - set(b[kind])


def test_apply_refuses_changes_that_do_not_fit() -> None:
    d = directory()
    with pytest.raises(ValueError, match="cannot appear again"):
        apply(d.entities, [Change("member", "appeared", "CO/GOB/111", after={"name": "x"})])
    with pytest.raises(ValueError, match="not there"):
        apply(d.entities, [Change("member", "disappeared", "CO/GOB/999")])


def test_json_round_trip() -> None:
    d = directory(servers={"CO/GOB/111/SS1": ["CO/GOB/111/CARPETA"]})
    back = Directory.from_json(d.to_json())
    assert back == d or back.to_json() == d.to_json()
    assert back.same_entities(d)
    assert d.counts() == {"members": 1, "subsystems": 1, "services": 1, "security_servers": 1}
    assert d.counts_by_class()[("service", "GOB")] == 1


# -- reading: partial listings --------------------------------------------------------------


class StubClient(SecurityServerClient):
    """A security server whose listMethods fails for some subsystems."""

    def __init__(self, clients: list[str], services: dict[str, list[str]], broken: set[str]):
        super().__init__("http://127.0.0.1:9", client_id=ClientId.parse("CO/GOB/1/MONITOR"))
        self.clients = clients
        self.services = services
        self.broken = broken

    async def list_clients(
        self,
        json: bool = False,
        *,
        instance: str | None = None,
        refused: list[RefusedEntry] | None = None,
    ) -> list[ListedClient]:
        out = []
        for c in self.clients:
            client = ClientId.parse(c)
            out.append(ListedClient(client.member, name="M"))
            out.append(ListedClient(client, name="M"))
        return out

    async def rest_list_methods(
        self, provider: ClientId, *, refused: list[RefusedEntry] | None = None
    ) -> list[ServiceEntry]:
        if str(provider) in self.broken:
            raise XRoadError("Server.ServerProxy.ServiceFailed", "down")
        return [ServiceEntry(ServiceId(provider, s)) for s in self.services[str(provider)]]

    async def soap_list_methods(
        self,
        provider: ClientId,
        *,
        user_id: str | None = None,
        refused: list[RefusedEntry] | None = None,
    ) -> list[ServiceId]:
        return []


async def test_a_subsystem_whose_listing_fails_keeps_its_previous_services() -> None:
    clients = ["CO/GOB/1/A", "CO/GOB/2/B"]
    stub = StubClient(clients, {"CO/GOB/1/A": ["x"], "CO/GOB/2/B": ["y", "z"]}, set())
    reader = DirectoryReader(source="co", instance="CO", security_server=stub)
    first = await reader.read()
    assert set(first.services) == {"CO/GOB/1/A/x", "CO/GOB/2/B/y", "CO/GOB/2/B/z"}
    stub.services["CO/GOB/1/A"] = []
    stub.broken = {"CO/GOB/2/B"}
    second = await reader.read(first)
    assert second.partial == ("CO/GOB/2/B",)
    assert set(second.services) == {"CO/GOB/2/B/y", "CO/GOB/2/B/z"}  # A's x really left
    stub.broken = set(clients)
    with pytest.raises(DirectoryReadError, match="all 2 subsystems"):
        await reader.read(second)
    stub.clients = []
    stub.broken = set()
    with pytest.raises(DirectoryReadError, match="empty"):
        await reader.read(second)


# -- expansion into the catalog -------------------------------------------------------------

CATALOG = """
providers:
  - id: gov-co
    name: GOV.CO
    services: [{id: portal, type: otro, checks: [{id: tls, kind: tls, host: www.gov.co}]}]
xroad:
  - id: co
    instance: CO
    security_server: {url: "http://127.0.0.1:4000", client: CO/GOB/8999999999/MONITOR}
    globalconf: {url: "http://127.0.0.1:4001/internalconf"}
    health_url: "http://127.0.0.1:4002/"
    provider: {id: interoperabilidad, name: Plataforma de Interoperabilidad}
    template:
      sla: {availability_target: 0.99, latency_threshold: 3s}
      interval: 1m
      subsystem_checks: [{id: metadatos, kind: xroad_metaservice, metaservice: soap_list_methods}]
      service_checks:
        - {id: listado, kind: xroad_metaservice}
        - {id: descripcion, kind: xroad_metaservice, metaservice: description}
"""


def catalog(text: str = CATALOG) -> Catalog:
    return parse_catalog(text)


def sample() -> Directory:
    return directory(
        members={"CO/GOB/111": "Ministerio TIC", "co/gob/222": "minúsculas"},
        subsystems=["CO/GOB/111/CARPETA", "co/gob/222/portal"],
        services={
            "CO/GOB/111/CARPETA/docs": ("REST", "OPENAPI"),
            "CO/GOB/111/CARPETA/health": ("REST", "REST"),
            "CO/GOB/111/CARPETA/radicar/v1": ("SOAP", "WSDL"),
            "co/gob/222/portal/inicio": ("REST", "REST"),
        },
    )


def test_the_platform_service_exists_before_any_directory() -> None:
    expanded = expand(catalog(), {}).catalog
    ids = [c.id for c in expanded.resolved_checks()]
    assert ids == [
        "gov-co/portal/tls",
        "interoperabilidad/co/health",
        "interoperabilidad/co/globalconf",
        "interoperabilidad/co/list-clients",
    ]
    kinds = {c.check: c.kind for c in expanded.resolved_checks()}
    assert kinds["health"] == "xroad_health"
    assert kinds["globalconf"] == "xroad_globalconf"


def test_discovered_entries_have_stable_slug_identities() -> None:
    expanded = expand(catalog(), {"co": sample()}).catalog
    ids = {c.id for c in expanded.resolved_checks()}
    member = ClientId.parse("CO/GOB/111")
    carpeta = member.subsystem("CARPETA")
    docs = ServiceId(carpeta, "docs")
    radicar = ServiceId(carpeta, "radicar", "v1")
    # The slugs are the identity in the store, the metrics and the SLA: pinned here, so a
    # change of the slug scheme (which would orphan every stored history) fails a test.
    assert member.slug() == "co-gob-111--e2cab526ff"
    assert carpeta.slug() == "co-gob-111-carpeta--b6e50e4e3e"
    assert ClientId.parse("co/gob/222/portal").slug() == "co-gob-222-portal"
    assert ServiceId.parse("co/gob/222/portal/inicio").slug() == "co-gob-222-portal-inicio"
    assert f"{member.slug()}/{carpeta.slug()}/metadatos" in ids
    assert f"{member.slug()}/{docs.slug()}/listado" in ids
    assert f"{member.slug()}/{docs.slug()}/descripcion" in ids
    assert f"{member.slug()}/{radicar.slug()}/descripcion" in ids
    assert f"{member.slug()}/{ServiceId(carpeta, 'health').slug()}/descripcion" not in ids
    assert "co-gob-222/co-gob-222-portal-inicio/listado" in ids
    provider = expanded.provider(member.slug())
    assert provider is not None
    assert provider.name == "Ministerio TIC"
    service = expanded.service(member.slug(), docs.slug())
    assert service is not None
    assert service.name == "CO/GOB/111/CARPETA/docs"
    assert service.type == "interoperabilidad"
    assert service.sla.availability_target == 0.99


def test_expansion_is_deterministic_whatever_the_order() -> None:
    base = sample()
    shuffled_entities: dict[str, dict[str, Any]] = {}
    rng = random.Random(7)
    for kind in ENTITY_KINDS:
        items = list(base.of(kind).items())
        rng.shuffle(items)
        shuffled_entities[kind] = dict(items)
    shuffled = Directory.build("co", "CO", NOW, shuffled_entities)
    first = expand(catalog(), {"co": base}).catalog.resolved_checks()
    again = expand(catalog(), {"co": shuffled}).catalog.resolved_checks()
    assert [c.id for c in first] == [c.id for c in again]
    assert first == again


def test_service_checks_follow_the_protocol() -> None:
    checks = {c.id: c.spec for c in expand(catalog(), {"co": sample()}).catalog.resolved_checks()}
    by_service = {
        (spec.provider or spec.service, spec.metaservice, tuple(spec.expect_services))
        for spec in checks.values()
        if isinstance(spec, XRoadMetaserviceCheck) and spec.metaservice != "list_clients"
    }
    carpeta = "CO/GOB/111/CARPETA"
    assert (carpeta, "rest_list_methods", (f"{carpeta}/docs",)) in by_service
    assert (carpeta, "soap_list_methods", (f"{carpeta}/radicar/v1",)) in by_service
    assert (f"{carpeta}/docs", "rest_get_openapi", ()) in by_service
    assert (f"{carpeta}/radicar/v1", "soap_get_wsdl", ()) in by_service
    assert (carpeta, "soap_list_methods", ()) in by_service  # the subsystem check


def test_a_removed_service_removes_exactly_its_checks() -> None:
    before = {c.id for c in expand(catalog(), {"co": sample()}).catalog.resolved_checks()}
    smaller = sample().to_json()
    del smaller["entities"]["service"]["CO/GOB/111/CARPETA/docs"]
    after = {
        c.id
        for c in expand(catalog(), {"co": Directory.from_json(smaller)}).catalog.resolved_checks()
    }
    docs = ServiceId.parse("CO/GOB/111/CARPETA/docs").slug()
    assert before - after == {
        f"co-gob-111--e2cab526ff/{docs}/listado",
        f"co-gob-111--e2cab526ff/{docs}/descripcion",
    }
    assert after <= before


def test_members_under_the_platform_provider_and_taken_ids() -> None:
    text = CATALOG.replace(
        "provider: {id: interoperabilidad, name: Plataforma de Interoperabilidad}",
        "provider: {id: interoperabilidad, name: Plataforma, members_as_providers: false}",
    )
    expanded = expand(catalog(text), {"co": sample()}).catalog
    assert {p.id for p in expanded.providers} == {"gov-co", "interoperabilidad"}
    platform = expanded.provider("interoperabilidad")
    assert platform is not None
    assert "co-gob-222-portal-inicio" in {s.id for s in platform.services}
    # A catalog provider whose id is a member's slug keeps it; the member is skipped.
    clash = CATALOG.replace("id: gov-co", "id: co-gob-222")
    result = expand(catalog(clash), {"co": sample()})
    assert any("co-gob-222" in p and "taken" in p for p in result.problems)
    static = result.catalog.provider("co-gob-222")
    assert static is not None
    assert [s.id for s in static.services] == ["portal"]
