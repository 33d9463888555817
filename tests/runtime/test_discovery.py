"""Directory discovery at run time: baseline, change events, the last good directory kept
through failures and restarts, metrics."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import structlog.testing
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from scd_monitor.catalog import Catalog, load_catalog
from scd_monitor.catalog.discovered import expand
from scd_monitor.cli import main
from scd_monitor.clock import SystemClock
from scd_monitor.runtime.discovery import DirectoryWatcher
from scd_monitor.store import DirectoryRepository, Store
from scd_monitor.web.metrics import DirectoryCollector
from scd_monitor.xroad.directory import Directory
from scd_simulator.directory import FakeService, XRoadDirectory
from scd_simulator.fleet import Simulator

CARPETA = "CO/GOB/899999001/CARPETA"


def fake_directory() -> XRoadDirectory:
    d = XRoadDirectory(member_classes={"GOB": "Entidades públicas", "PRIV": "Privados"})
    d.add_subsystem(
        "GOB",
        "899999001",
        "CARPETA",
        name="Ministerio TIC",
        services=[
            FakeService("documentos", kind="OPENAPI"),
            FakeService("radicar", version="v1", kind="WSDL"),
        ],
    )
    d.add_subsystem(
        "PRIV", "900000001", "PAGOS", name="Operador de pagos", services=[FakeService("pagar")]
    )
    d.add_security_server("CO/GOB/899999001", "ss1", clients=[CARPETA])
    return d


class World:
    def __init__(self, sim: Simulator, path: Path, store: Store, url: str) -> None:
        self.sim = sim
        self.path = path
        self.catalog: Catalog = load_catalog(path)
        self.store = store
        self.url = url
        self.changes = 0

    @property
    def directory(self) -> XRoadDirectory:
        assert self.sim.xroad is not None
        return self.sim.xroad

    def watcher(self) -> DirectoryWatcher:
        def changed() -> None:
            self.changes += 1

        watcher = DirectoryWatcher(store=self.store, clock=SystemClock(), on_change=changed)
        watcher.set_sources(self.catalog.xroad)
        return watcher

    def check_ids(self, watcher: DirectoryWatcher) -> set[str]:
        return {c.id for c in expand(self.catalog, watcher.directories()).catalog.resolved_checks()}

    def events(self) -> list[tuple[str, str, str]]:
        return [(e.kind, e.change, e.subject) for e in DirectoryRepository(self.store).events()]


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
    sim = Simulator(tmp_path / "sim", xroad=fake_directory())
    async with sim:
        path = sim.write_catalog(tmp_path / "catalog.yaml", interval="30s", timeout="2s")
        url = f"sqlite:///{tmp_path}/store.db"
        store = Store(url)
        store.create_schema()
        yield World(sim, path, store, url)
        store.dispose()


async def test_first_read_is_a_baseline_then_changes_are_events(world: World) -> None:
    watcher = world.watcher()
    await watcher.load()
    assert await watcher.refresh("sim")
    assert world.events() == [("directory", "baseline", "CO")]
    (baseline,) = DirectoryRepository(world.store).events()
    assert baseline.details["services"] == 3
    assert baseline.details["subsystems"] == 3  # with the monitor's own
    assert world.changes == 1
    ids = world.check_ids(watcher)
    assert len([i for i in ids if i.endswith("/listado")]) == 3

    world.directory.remove_service(CARPETA, "documentos")
    world.directory.add_subsystem("PRIV", "900000002", "FACTURAS", name="Facturador")
    world.directory.add_member("GOB", "899999001", "MinTIC")
    assert await watcher.refresh("sim")
    new = world.events()[1:]
    assert ("service", "disappeared", f"{CARPETA}/documentos") in new
    assert ("subsystem", "appeared", "CO/PRIV/900000002/FACTURAS") in new
    assert ("member", "appeared", "CO/PRIV/900000002") in new
    assert ("member", "changed", "CO/GOB/899999001") in new
    assert world.changes == 2
    assert not any(
        i.startswith("co-gob-899999001") and "documentos" in i for i in world.check_ids(watcher)
    )

    assert await watcher.refresh("sim")
    assert len(world.events()) == 1 + len(new), "nothing new, nothing recorded"
    assert world.changes == 2


async def test_a_failed_read_keeps_the_last_good_directory(world: World) -> None:
    watcher = world.watcher()
    await watcher.load()
    assert await watcher.refresh("sim")
    good = world.check_ids(watcher)
    xroad = world.sim.xroad_simulator
    xroad.configuration_source.set_status(500)
    assert not await watcher.refresh("sim")
    assert not await watcher.refresh("sim")
    assert world.check_ids(watcher) == good
    status = watcher.statuses()["sim"]
    assert status.failures_total == 2
    assert "500" in (status.last_error or "")
    failures = [e for e in DirectoryRepository(world.store).events() if e.change == "fetch_failed"]
    assert len(failures) == 1, "one event when the source starts failing, not one per read"
    assert "HTTP 500" in failures[0].details["error"]
    xroad.configuration_source.set_status(None)
    xroad.security_server.set_fault("Server.ClientProxy.NetworkError", only=["listMethods"])
    assert not await watcher.refresh("sim"), "every subsystem failing is a failed read"
    assert world.check_ids(watcher) == good
    xroad.security_server.set_fault(None)
    assert await watcher.refresh("sim")
    assert world.events()[-1] == ("directory", "fetch_recovered", "CO")
    assert world.check_ids(watcher) == good
    assert (
        DirectoryRepository(world.store)
        .latest()["sim"]
        .directory.same_entities(watcher.directories()["sim"])
    )


async def test_a_restart_does_not_announce_again(world: World) -> None:
    first = world.watcher()
    await first.load()
    assert await first.refresh("sim")
    before = world.check_ids(first)

    world.sim.xroad_simulator.configuration_source.set_status(503)
    second = world.watcher()  # a new daemon on the same store
    await second.load()
    assert world.check_ids(second) == before, "checks run from the stored directory at once"
    assert not await second.refresh("sim")
    assert world.check_ids(second) == before
    world.sim.xroad_simulator.configuration_source.set_status(None)
    assert await second.refresh("sim")
    changes = [e for e in world.events() if e[0] not in ("directory",)]
    assert changes == [], "no appeared/disappeared after a restart"
    world.directory.remove_service(CARPETA, "radicar")
    assert await second.refresh("sim")
    assert world.events()[-1] == ("service", "disappeared", f"{CARPETA}/radicar/v1")
    assert [e[1] for e in world.events()].count("baseline") == 1


async def test_globalconf_expiry_events(world: World) -> None:
    watcher = world.watcher()
    await watcher.load()
    assert await watcher.refresh("sim")
    world.directory.set_expiry(datetime.now(UTC) + timedelta(seconds=20))
    assert await watcher.refresh("sim")
    world.directory.set_expiry(datetime.now(UTC) - timedelta(seconds=5))
    assert await watcher.refresh("sim")
    world.directory.set_expiry(None)
    assert await watcher.refresh("sim")
    assert [e[1] for e in world.events() if e[0] == "globalconf"] == [
        "expiring",
        "expired",
        "renewed",
    ]


async def test_metrics_agree_with_the_directory(world: World) -> None:
    watcher = world.watcher()
    await watcher.load()
    assert await watcher.refresh("sim")
    world.sim.xroad_simulator.configuration_source.set_status(500)
    assert not await watcher.refresh("sim")
    registry = CollectorRegistry(auto_describe=False)
    registry.register(DirectoryCollector(watcher.statuses))
    samples: dict[str, dict[tuple[Any, ...], float]] = {}
    for family in text_string_to_metric_families(generate_latest(registry).decode()):
        for s in family.samples:
            samples.setdefault(s.name, {})[tuple(sorted(s.labels.items()))] = s.value

    def by_class(name: str) -> dict[str, float]:
        return {dict(k)["member_class"]: v for k, v in samples[name].items()}

    fake = world.directory
    members = {c: sum(1 for m in fake.members if m.member_class == c) for c in ("GOB", "PRIV")}
    subs = {c: sum(1 for s in fake.subsystems if s.member_class == c) for c in ("GOB", "PRIV")}
    services = {
        c: sum(len(s.services) for s in fake.subsystems if s.member_class == c)
        for c in ("GOB", "PRIV")
    }
    assert by_class("scd_xroad_directory_members") == members
    assert by_class("scd_xroad_directory_subsystems") == subs
    assert by_class("scd_xroad_directory_services") == services
    assert by_class("scd_xroad_directory_security_servers") == {"GOB": 1}
    assert samples["scd_xroad_directory_fetch_failures_total"] == {(("source", "sim"),): 1.0}
    changes = samples["scd_xroad_directory_changes_total"]
    assert changes[(("change", "baseline"), ("kind", "directory"), ("source", "sim"))] == 1.0
    assert changes[(("change", "fetch_failed"), ("kind", "directory"), ("source", "sim"))] == 1.0
    expiry = samples["scd_xroad_globalconf_expiry_timestamp_seconds"]
    assert list(expiry) == [(("instance", "CO"), ("source", "sim"))]
    last = samples["scd_xroad_directory_last_success_timestamp_seconds"][(("source", "sim"),)]
    assert abs(last - datetime.now(UTC).timestamp()) < 30


async def test_the_directory_command(
    world: World, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("scd_monitor.cli.app.configure_logging", lambda *_a, **_k: None)
    watcher = world.watcher()
    await watcher.load()
    assert await watcher.refresh("sim")
    world.directory.remove_service(CARPETA, "documentos")
    world.directory.add_member("GOB", "899999001", "MinTIC")
    assert await watcher.refresh("sim")
    common = ["--database-url", world.url, "--catalog", str(world.path)]
    capsys.readouterr()  # the watcher's log lines

    assert main(["directory", *common]) == 0
    table = capsys.readouterr().out
    assert "source sim: instance CO" in table
    assert "3 members, 3 subsystems, 2 services, 1 security servers" in table
    assert f"{CARPETA}/radicar/v1" in table
    assert f"{CARPETA}/documentos" not in table

    assert main(["directory", "--changes", *common]) == 0
    changes = capsys.readouterr().out
    assert "baseline" in changes
    assert f"disappeared  {CARPETA}/documentos" in changes
    assert "name: Ministerio TIC → MinTIC" in changes

    assert main(["directory", "--changes", "--since", "1h", "--format", "json", *common]) == 0
    events = json.loads(capsys.readouterr().out)
    assert [e["change"] for e in events] == ["baseline", "changed", "disappeared"]
    future = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    assert main(["directory", "--changes", "--since", future, "--format", "json", *common]) == 0
    assert json.loads(capsys.readouterr().out) == []
    assert main(["directory", "--since", "1h", *common]) == 2


async def test_promtool_accepts_the_directory_metrics(world: World) -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        if os.environ.get("SCD_MONITOR_REQUIRE_PROMTOOL") == "1":
            pytest.fail("promtool is required (Debian package 'prometheus')")
        pytest.skip("promtool not installed")
    watcher = world.watcher()
    await watcher.load()
    assert await watcher.refresh("sim")
    registry = CollectorRegistry(auto_describe=False)
    registry.register(DirectoryCollector(watcher.statuses))
    text = generate_latest(registry).decode()
    proc = await asyncio.to_thread(
        subprocess.run,
        [promtool, "check", "metrics"],
        input=text,
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.strip() == "" and proc.stderr.strip() == "", proc.stdout + proc.stderr


# -- one bad entry or source never stops the others (issue 12) --------------------------


class ScriptedReader:
    """Stands in for the network reader: answers what the test says, or raises."""

    requests = 1

    def __init__(self, answer: Directory | Exception) -> None:
        self.answer = answer

    async def read(self, previous: Directory | None = None) -> Directory:
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer


def directory_with(refused: tuple[tuple[str, str], ...], **services: Any) -> Directory:
    return Directory.build(
        "sim",
        "CO",
        datetime.now(UTC),
        {
            "member": {"CO/GOB/899999001": {"name": "MinTIC"}},
            "subsystem": {CARPETA: {"name": None}},
            "service": {f"{CARPETA}/{code}": attrs for code, attrs in services.items()},
        },
        refused=refused,
    )


async def test_refused_entries_are_an_event_and_a_log_line_once_and_the_rest_applies(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    rest = {"protocol": "REST", "type": "REST", "endpoints": []}
    bad = ((f"{CARPETA}/\ufffd", "service code '\\ud800' is not valid Unicode"),)
    reader = ScriptedReader(directory_with(bad, documentos=rest))
    monkeypatch.setattr("scd_monitor.runtime.discovery.reader_for", lambda *_a, **_k: reader)
    watcher = world.watcher()
    await watcher.load()
    with structlog.testing.capture_logs() as logs:
        assert await watcher.refresh("sim")
        assert await watcher.refresh("sim")  # the same refusal again: nothing new
    refused = [e for e in world.events() if e[1] == "entry_refused"]
    assert refused == [("directory", "entry_refused", f"{CARPETA}/\ufffd")]
    assert [e["subject"] for e in logs if e["event"] == "directory.entry_refused"] == [
        f"{CARPETA}/\ufffd"
    ]
    assert any(i.endswith("/listado") and "documentos" in i for i in world.check_ids(watcher))


async def test_a_read_that_crashes_is_a_failed_read_and_the_last_good_one_stays(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    watcher = world.watcher()
    await watcher.load()
    assert await watcher.refresh("sim")
    good = world.check_ids(watcher)
    reader = ScriptedReader(UnicodeEncodeError("utf-8", "\ud800", 0, 1, "surrogates not allowed"))
    monkeypatch.setattr("scd_monitor.runtime.discovery.reader_for", lambda *_a, **_k: reader)
    assert not await watcher.refresh("sim")
    assert world.check_ids(watcher) == good
    status = watcher.statuses()["sim"]
    assert status.failures_total == 1
    assert "UnicodeEncodeError" in (status.last_error or "")
    assert world.events()[-1] == ("directory", "fetch_failed", "CO")


def test_expansion_leaves_out_bad_entries_and_keeps_the_rest(world: World) -> None:
    rest = {"protocol": "REST", "type": "REST", "endpoints": []}
    # A directory as an older release may have stored it: keys no reader lets in now.
    poisoned = Directory.build(
        "sim",
        "CO",
        datetime.now(UTC),
        {
            "member": {"CO/GOB/899999001": {"name": "Min\nTIC\x00"}},
            "subsystem": {CARPETA: {}, "CO/GOB/899999001/..": {}},
            "service": {f"{CARPETA}/documentos": rest, f"{CARPETA}/\ud800": rest},
        },
    )
    expansion = expand(world.catalog, {"sim": poisoned})
    ids = {c.id for c in expansion.catalog.resolved_checks()}
    assert any("documentos" in i for i in ids)
    assert len([i for i in ids if i.endswith("/metadatos")]) == 1
    assert len(expansion.problems) == 2
    assert all("left out" in p for p in expansion.problems)
    for problem in expansion.problems:
        problem.encode("utf-8", "strict")
    names = {p.name for p in expansion.catalog.providers}
    assert "Min TIC\u2400" in names
