"""A hostile X-Road directory (issue 12): one bad source or entry never stops the others.

Two ``xroad`` sources in one catalog: ``sim``, the simulator's healthy fake X-Road, and
``hostil``, a security server on 127.0.0.1 (behind a base path) whose answers mix good
entries with a service code holding a lone surrogate and identifiers made of ``..``.
Whatever ``hostil`` lists, ``sim``'s discovered checks come into force and are probed,
stored and tracked, and so are ``hostil``'s good entries; each bad entry is refused with
a directory event and a log line, and no request leaves the security server's base path.
After a restart (with the hostile server gone, and a snapshot poisoned by an older
release in the store) the discovered checks of both sources run again at once.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from structlog.testing import capture_logs

from scd_monitor.store import DirectoryRepository, Store
from scd_monitor.xroad.directory import Directory
from scd_monitor.xroad.identifiers import ClientId, ServiceId
from scd_simulator.directory import FakeService, XRoadDirectory
from scd_simulator.fleet import Simulator
from scd_simulator.rawhttp import Connection, HttpServer, Request, Response
from tests.faults.harness import assert_keeps_working, probes_logged, running_daemon
from tests.store.fixtures.databases import private_postgres_database

BASE = "/ss"
GOOD = "CO/GOB/555/BUENO"
SIM_SUBSYSTEM = "CO/GOB/899999001/CARPETA"
FAST = {"state_interval": timedelta(seconds=1), "sla_interval": timedelta(seconds=1)}


def check_id(member: str, service: ClientId | ServiceId, template: str) -> str:
    return f"{ClientId.parse(member).slug()}/{service.slug()}/{template}"


SIM_CHECKS = {
    check_id("CO/GOB/899999001", ClientId.parse(SIM_SUBSYSTEM), "metadatos"),
    check_id("CO/GOB/899999001", ServiceId.parse(f"{SIM_SUBSYSTEM}/documentos"), "listado"),
}
HOSTILE_GOOD_CHECKS = {
    check_id("CO/GOB/555", ClientId.parse(GOOD), "metadatos"),
    check_id("CO/GOB/555", ServiceId.parse(f"{GOOD}/consulta"), "listado"),
}


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/directory.db"
        return
    postgres_url: str = request.getfixturevalue("postgres_url")
    with private_postgres_database(postgres_url) as url:
        yield url


def _client_xml(instance: str, member_class: str, member_code: str, subsystem: str) -> str:
    return (
        '<xroad:member><xroad:id id:objectType="SUBSYSTEM">'
        f"<id:xRoadInstance>{instance}</id:xRoadInstance>"
        f"<id:memberClass>{member_class}</id:memberClass>"
        f"<id:memberCode>{member_code}</id:memberCode>"
        f"<id:subsystemCode>{subsystem}</id:subsystemCode>"
        "</xroad:id><xroad:name>Hostil &#13;&#10;Bcc: x@example.org</xroad:name></xroad:member>"
    )


LIST_CLIENTS = (
    '<?xml version="1.0" encoding="UTF-8"?>'
    '<xroad:clientList xmlns:xroad="http://x-road.eu/xsd/xroad.xsd" '
    'xmlns:id="http://x-road.eu/xsd/identifiers">'
    + _client_xml("CO", "GOB", "555", "BUENO")
    + _client_xml("CO", "GOB", "555", "..")  # /r1/CO/GOB/555/../listMethods
    + _client_xml("CO", "..", "..", "..")  # /ss/r1/CO/../../../listMethods: out of /ss
    + "</xroad:clientList>"
).encode()


def _service(code: str) -> dict[str, Any]:
    instance, member_class, member_code, subsystem = GOOD.split("/")
    return {
        "object_type": "SERVICE",
        "xroad_instance": instance,
        "member_class": member_class,
        "member_code": member_code,
        "subsystem_code": subsystem,
        "service_code": code,
        "service_type": "REST",
        "endpoint_list": [{"method": "GET", "path": "/\x00\u2028"}],
    }


# Escaped as JSON does it (ensure_ascii): "\ud800" arrives as six ASCII characters.
LIST_METHODS = json.dumps(
    {"service": [_service("consulta"), _service("\ud800"), _service("..")]}
).encode("ascii")
CLEAN_LIST_CLIENTS = LIST_CLIENTS.split(b"<xroad:member>")[0] + (
    _client_xml("CO", "GOB", "555", "BUENO").encode() + b"</xroad:clientList>"
)
CLEAN_LIST_METHODS = json.dumps({"service": [_service("consulta")]}).encode("ascii")
SOAP_EMPTY = (
    b'<SOAP-ENV:Envelope xmlns:SOAP-ENV="http://schemas.xmlsoap.org/soap/envelope/">'
    b'<SOAP-ENV:Body><xroad:listMethodsResponse xmlns:xroad="http://x-road.eu/xsd/xroad.xsd"/>'
    b"</SOAP-ENV:Body></SOAP-ENV:Envelope>"
)


@dataclass
class HostileSecurityServer:
    """Answers listClients, REST and SOAP listMethods under :data:`BASE`; records paths.
    ``clean``: only the good entries."""

    paths: list[str] = field(default_factory=list)
    clean: bool = False

    async def handle(self, request: Request, _conn: Connection) -> Response:
        self.paths.append(request.path)
        if request.method == "POST" and request.path == f"{BASE}/":
            return Response(200, SOAP_EMPTY, content_type="text/xml; charset=utf-8")
        if request.path == f"{BASE}/listClients":
            body = CLEAN_LIST_CLIENTS if self.clean else LIST_CLIENTS
            return Response(200, body, content_type="text/xml; charset=utf-8")
        if request.path == f"{BASE}/r1/{GOOD}/listMethods":
            body = CLEAN_LIST_METHODS if self.clean else LIST_METHODS
            return Response(200, body, content_type="application/json")
        return Response(404, b"not here")


@pytest.fixture
async def hostile() -> AsyncIterator[tuple[HostileSecurityServer, str]]:
    server = HostileSecurityServer()
    async with HttpServer(server.handle, "127.0.0.1", 0) as http:
        yield server, f"http://127.0.0.1:{http.port}{BASE}"


@pytest.fixture
async def simulator(tmp_path: Path) -> AsyncIterator[Simulator]:
    directory = XRoadDirectory(member_classes={"GOB": "Entidades públicas"})
    directory.add_subsystem(
        "GOB", "899999001", "CARPETA", name="MinTIC", services=[FakeService("documentos")]
    )
    async with Simulator(tmp_path / "sim", xroad=directory) as sim:
        yield sim


def write_catalog(sim: Simulator, path: Path, hostile_url: str) -> Path:
    sim.write_catalog(path, interval="1s", timeout="500ms", xroad_interval="10m")
    catalog = yaml.safe_load(path.read_text(encoding="utf-8"))
    catalog["xroad"][0]["timeout"] = "5s"
    source = json.loads(json.dumps(catalog["xroad"][0]))  # the same template, another server
    source.update(
        id="hostil",
        name="X-Road hostil",
        provider={"id": "hostil-plataforma", "name": "Plataforma hostil"},
        security_server={"url": hostile_url, "client": "CO/GOB/8999999999/MONITOR"},
        timeout="2s",
    )
    for key in ("globalconf", "health_url"):
        source.pop(key, None)
    catalog["xroad"].append(source)
    path.write_text(yaml.safe_dump(catalog, sort_keys=False, allow_unicode=True), "utf-8")
    return path


def refused_events(url: str) -> dict[str, str]:
    store = Store(url)
    try:
        events = DirectoryRepository(store).events(source="hostil")
    finally:
        store.dispose()
    return {e.subject: str(e.details.get("reason")) for e in events if e.change == "entry_refused"}


async def test_a_hostile_source_never_keeps_the_other_from_coming_into_force(
    tmp_path: Path,
    database: str,
    simulator: Simulator,
    hostile: tuple[HostileSecurityServer, str],
) -> None:
    server, url = hostile
    catalog = write_catalog(simulator, tmp_path / "catalog.yaml", url)
    wanted = SIM_CHECKS | HOSTILE_GOOD_CHECKS
    with capture_logs() as logs:
        async with running_daemon(catalog, tmp_path, database, **FAST) as running:
            await assert_keeps_working(running, wanted, rounds=2, within=20)
    refused = refused_events(database)
    assert set(refused) == {
        f"{GOOD}/\ufffd",
        f"{GOOD}/..",
        "CO/GOB/555/..",
        "CO/../../..",
    }, refused
    assert "lone surrogate" in refused[f"{GOOD}/\ufffd"]
    assert "relative path segment" in refused["CO/../../.."]
    logged = {e["subject"] for e in logs if e["event"] == "directory.entry_refused"}
    assert logged == set(refused)
    # Identifiers are data, never paths: nothing was asked outside the base path, and
    # nothing but the good subsystem's listMethods (and the SOAP endpoint, listClients).
    assert server.paths, "the hostile source was read"
    assert all(p.startswith(f"{BASE}/") for p in server.paths), server.paths
    assert set(server.paths) <= {f"{BASE}/", f"{BASE}/listClients", f"{BASE}/r1/{GOOD}/listMethods"}
    # What the directory keeps is clean text (a name with CR LF is one line).
    store = Store(database)
    try:
        stored = DirectoryRepository(store).latest()["hostil"].directory
    finally:
        store.dispose()
    assert stored.members["CO/GOB/555"]["name"] == "Hostil Bcc: x@example.org"
    (endpoint,) = stored.services[f"{GOOD}/consulta"]["endpoints"]
    assert endpoint == "GET /\u2400\u2028"


async def test_after_a_restart_discovered_checks_run_at_once_despite_a_poisoned_snapshot(
    tmp_path: Path, simulator: Simulator, hostile: tuple[HostileSecurityServer, str]
) -> None:
    server, url = hostile
    server.clean = True  # the first run sees a clean directory: the poison comes from storage
    catalog = write_catalog(simulator, tmp_path / "catalog.yaml", url)
    database = f"sqlite:///{tmp_path}/restart.db"
    wanted = SIM_CHECKS | HOSTILE_GOOD_CHECKS
    async with running_daemon(catalog, tmp_path, database, **FAST) as running:
        await assert_keeps_working(running, wanted, rounds=1, within=20)
    stored_before = running.stored_counts()

    # What an older release stored: keys a directory must never hold.
    store = Store(database)
    repo = DirectoryRepository(store)
    good = repo.latest()["hostil"].directory
    services = dict(good.services)
    services[f"{GOOD}/\ud800"] = {"protocol": "REST", "type": "REST", "endpoints": []}
    services[f"{GOOD}/.."] = {"protocol": "REST", "type": "REST", "endpoints": []}
    poisoned = Directory.build(
        good.source,
        good.instance,
        good.fetched_at,
        {"member": good.members, "subsystem": good.subsystems, "service": services},
    )
    repo.save("hostil", directory=poisoned)
    store.dispose()

    # The hostile security server is gone now: its source cannot be read at all.
    write_catalog(simulator, catalog, "http://127.0.0.1:9/ss")
    async with running_daemon(catalog, tmp_path, database, **FAST) as running:
        await assert_keeps_working(
            running, wanted, rounds=2, within=20, stored_before=stored_before
        )
        checks = {c.id for c in running.daemon.effective.resolved_checks()}
        logged = probes_logged(running)
        kept = running.daemon.watcher.directories()["hostil"]
    assert wanted <= checks
    assert all(logged.get(c, 0) >= 2 for c in wanted)
    # The poisoned keys were set aside when the snapshot was loaded, the rest kept.
    assert {subject for subject, _ in kept.refused} == {f"{GOOD}/\ufffd", f"{GOOD}/.."}
    assert set(kept.services) == {f"{GOOD}/consulta"}
