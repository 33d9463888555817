"""The daemon as a subprocess against the simulator, with a real webhook receiver (503
for its first seconds) and a real SMTP server: an outage opens one incident and sends the
opening report, the operator's note (``scd-monitor incidents note``) goes out in an
update, the recovery sends the resolution; every signature verifies and no key is
applied twice. Skipped until the catalog has its ``incidents:`` section (wiring)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from scd_monitor.catalog.models import Catalog
from scd_monitor.store import Store
from scd_simulator.certs import CertificateAuthority
from scd_simulator.fleet import Simulator
from tests.incidents.receivers import SECRET, SmtpServer, WebhookReceiver, free_port
from tests.incidents.schema import validate

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(
        "incidents" not in Catalog.model_fields, reason="the catalog has no 'incidents:' yet"
    ),
]

ROOT = Path(__file__).resolve().parents[2]
OIDC = "prestador-a/autenticacion/oidc"
WEBHOOK_DOWN_SECONDS = 3.0
NOTE = "Se reinició el proveedor de identidad."


def catalog_with_incidents(path: Path, *, webhook: str, smtp_port: int) -> None:
    data: dict[str, Any] = yaml.safe_load(path.read_text())
    data["providers"][0]["contact"] = "soporte@prestador-a.example"
    data["incidents"] = {
        "evaluate_every": "300ms",
        "resolve_after": "2s",
        "quiet_period": "1m",
        "sinks": [
            {"id": "mintic", "kind": "webhook", "url": webhook, "secret": {"env": "E2E_HMAC"}},
            {
                "id": "correo",
                "kind": "email",
                "host": "127.0.0.1",
                "port": smtp_port,
                "username": "monitor",
                "password": {"file": "smtp-password"},
                "sender": "monitor@scd.example",
                "tls": {"ca_file": "ca.crt"},
            },
            {"id": "archivo", "kind": "file", "directory": "reportes"},
        ],
        "routes": [
            {"audience": "authority", "sinks": ["mintic"]},
            {"audience": "provider", "sinks": ["correo"]},
            {"audience": "operations", "sinks": ["archivo"]},
        ],
        "outbox": {
            "interval": "200ms",
            "lease": "20s",
            "backoff": {"initial": "500ms", "max": "2s"},
        },
    }
    path.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True))


def incidents(db: Path) -> list[Any]:
    from scd_monitor.store.incidents import IncidentRepository

    store = Store(f"sqlite:///{db}")
    try:
        return IncidentRepository(store).list_incidents(open_only=False)
    except Exception:  # the schema may not exist yet
        return []
    finally:
        store.dispose()


async def until(what: str, proc: subprocess.Popen[bytes], check: Any, seconds: float) -> Any:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"daemon exited with {proc.returncode} while waiting for {what}")
        value = await asyncio.to_thread(check)
        if value:
            return value
        await asyncio.sleep(0.2)
    pytest.fail(f"timed out waiting for {what}")


async def test_outage_note_recovery_through_the_daemon(tmp_path: Path) -> None:
    ca = CertificateAuthority()
    cert, key = ca.issue(["127.0.0.1"]).write(tmp_path, "smtp")
    ca.write_cert(tmp_path / "ca.crt")
    (tmp_path / "smtp-password").write_text("s3creto-smtp\n")
    first_request: list[float] = []

    def failing(_n: int) -> bool:  # 503 for the first seconds after the first request
        first_request[:] = first_request or [time.monotonic()]
        return time.monotonic() < first_request[0] + WEBHOOK_DOWN_SECONDS

    receiver = WebhookReceiver(failing=failing)
    sim = Simulator(tmp_path / "sim")
    sim.add_endpoint(OIDC, kind="oidc")
    db = tmp_path / "e2e.db"
    port = free_port()
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT)]),
        "SCD_MONITOR_LOG_FORMAT": "json",
        "SCD_MONITOR_VANTAGE": "e2e",
        "SCD_MONITOR_STATE_INTERVAL": "500ms",
        "E2E_HMAC": SECRET,
    }
    log_path = tmp_path / "daemon.log"
    with SmtpServer(cert, key) as smtp:
        async with receiver, sim:
            catalog = sim.write_catalog(tmp_path / "catalog.yaml", interval="1s", timeout="500ms")
            catalog_with_incidents(catalog, webhook=receiver.url, smtp_port=smtp.port)
            common = ["--catalog", str(catalog), "--database-url", f"sqlite:///{db}"]
            run = [sys.executable, "-m", "scd_monitor", "run", "--listen", f"127.0.0.1:{port}"]
            note_cmd = [sys.executable, "-m", "scd_monitor", "incidents", "note"]
            with log_path.open("wb") as log_file:
                proc = subprocess.Popen(
                    [*run, *common],
                    env=env,
                    stdout=log_file,
                    stderr=subprocess.STDOUT,
                )
                try:
                    await asyncio.sleep(3)  # healthy for a few probes
                    sim.set_behaviour(OIDC, {"status": 503})
                    (incident,) = await until(
                        "the incident to open", proc, lambda: incidents(db), 30
                    )
                    note = await asyncio.to_thread(
                        subprocess.run,
                        [*note_cmd, incident.code, NOTE, "--author", "ana", *common],
                        env=env,
                        capture_output=True,
                        timeout=60,
                    )
                    assert note.returncode == 0, note.stderr.decode()
                    await asyncio.sleep(1)
                    sim.set_behaviour(OIDC, None)
                    await until(
                        "the resolution to reach the webhook",
                        proc,
                        lambda: (
                            any(
                                json.loads(b)["event"]["kind"] == "resolved"
                                for b in receiver.bodies.values()
                            )
                            and len(smtp.messages) >= 3
                        ),
                        60,
                    )
                    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
                        metrics = (await client.get("/metrics")).text
                finally:
                    proc.send_signal(signal.SIGTERM)
                    try:
                        code = await asyncio.to_thread(proc.wait, 30)
                    except subprocess.TimeoutExpired:
                        proc.kill()
                        raise
    log_text = log_path.read_text()
    assert code == 0, log_text[-3000:]

    (final,) = incidents(db)
    assert final.code == incident.code and final.status == "resolved"
    assert receiver.bad_signatures == 0 and receiver.conflicts == []
    docs = [json.loads(b) for b in receiver.bodies.values()]
    for d in docs:
        validate(d)
    kinds = sorted((d["event"]["sequence"], d["event"]["kind"], d["event"]["reason"]) for d in docs)
    assert [k[1:] for k in kinds] == [
        ("opened", "opened"),
        ("updated", "note"),
        ("resolved", "resolved"),
    ]
    assert all(k.startswith(f"{incident.code}.") for k in receiver.applied)
    assert receiver.requests > len(receiver.applied)  # the 503s were retried
    note_doc = next(d for d in docs if d["event"]["reason"] == "note")
    assert note_doc["actions"][0]["text"] == NOTE
    assert note_doc["evidence"] and note_doc["evidence"][0]["error_kind"] == "status"
    assert sorted(m["X-SCD-Event"] for m in smtp.messages) == ["opened", "resolved", "updated"]
    assert {tuple(e.rcpt_tos) for e in smtp.envelopes} == {("soporte@prestador-a.example",)}
    reports = sorted(p.name for p in (tmp_path / "reportes").iterdir())
    assert len(reports) == 3 and all(r.endswith(".archivo.json") for r in reports)
    assert 'scd_incident_delivery_attempts_total{outcome="delivered",sink="mintic"}' in metrics
    assert "scd_outbox_backlog" in metrics
    assert SECRET not in log_text and "s3creto-smtp" not in log_text


@pytest.mark.timeout(300)  # eleven daemon starts: ~90 s alone, more beside other tests
async def test_daemon_killed_during_delivery_ten_times(tmp_path: Path) -> None:
    """SIGKILL the daemon at random points while its outbox delivers, ten times, restart
    it each time: every report reaches the receiver, each key applied once, same bytes."""
    import random

    from sqlalchemy import select

    from scd_monitor.incidents.service import IncidentService
    from scd_monitor.store.tables import deliveries, incident_reports
    from tests.incidents.conftest import SettableClock, outage
    from tests.incidents.dispatcher_child import incidents_config

    rng = random.Random()
    receiver = WebhookReceiver(failing=lambda n: n < 4, delay=(0.02, 0.06))
    sim = Simulator(tmp_path / "sim")
    sim.add_endpoint(OIDC, kind="oidc")
    db = tmp_path / "kill.db"
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT)]),
        "SCD_MONITOR_LOG_FORMAT": "json",
        "SCD_TEST_SECRET": SECRET,
        # The outbox under kills is the subject: eleven starts without a probing process
        # each (probing is covered elsewhere) keep the test inside its time on a busy CI.
        "SCD_MONITOR_PROBE_PROCESSES": "0",
    }
    log_path = tmp_path / "daemon.log"
    async with receiver, sim:
        store = Store(f"sqlite:///{db}")
        store.create_schema()
        clock = SettableClock()
        seeded = IncidentService(store, incidents_config(receiver.url), clock=clock, holder="x")
        for i in range(40):
            seeded.evaluate(outage(clock.now(), provider=f"prestador-{i:02d}"))
            clock.advance(timedelta(seconds=1))
        catalog = sim.write_catalog(tmp_path / "catalog.yaml", interval="1s", timeout="500ms")
        data: dict[str, Any] = yaml.safe_load(catalog.read_text())
        section = incidents_config(receiver.url).model_dump(mode="json", exclude_defaults=True)
        data["incidents"] = {k: section[k] for k in ("resolve_after", "sinks", "routes", "outbox")}
        catalog.write_text(yaml.safe_dump(data, sort_keys=False))
        with store.engine.connect() as conn:
            keys = set(conn.execute(select(deliveries.c.idempotency_key)).scalars())
        assert len(keys) == 80

        run = [sys.executable, "-m", "scd_monitor", "run", "--catalog", str(catalog)]

        def start() -> subprocess.Popen[bytes]:
            listen = f"127.0.0.1:{free_port()}"
            with log_path.open("ab") as log_file:
                return subprocess.Popen(
                    [*run, "--listen", listen, "--database-url", f"sqlite:///{db}"],
                    env=env,
                    stdout=log_file,
                    stderr=subprocess.STDOUT,
                )

        mid_way = 0
        for _ in range(10):
            seen = receiver.requests
            proc = start()
            deadline = time.monotonic() + 30
            while receiver.requests == seen and time.monotonic() < deadline:
                await asyncio.sleep(0.005)
            await asyncio.sleep(rng.uniform(0.0, 0.3))
            if proc.poll() is None and len(receiver.applied) < len(keys):
                mid_way += 1
            proc.kill()
            await asyncio.to_thread(proc.wait)
        proc = start()
        try:
            deadline = time.monotonic() + 90
            while set(receiver.applied) != keys and time.monotonic() < deadline:
                await asyncio.sleep(0.2)
            # Deliveries a killed daemon made but could not settle are delivered again
            # (the receiver applies each key once) and settled by this one: wait for it.
            while time.monotonic() < deadline:
                with store.engine.connect() as conn:
                    waiting = set(conn.execute(select(deliveries.c.status)).scalars())
                if waiting == {"delivered"}:
                    break
                await asyncio.sleep(0.2)
        finally:
            proc.send_signal(signal.SIGTERM)
            await asyncio.to_thread(proc.wait, 30)
        with store.engine.connect() as conn:
            statuses = set(conn.execute(select(deliveries.c.status)).scalars())
            bodies = {
                r.idempotency_key: r.body.encode()
                for r in conn.execute(
                    select(deliveries.c.idempotency_key, incident_reports.c.body).join(
                        incident_reports, deliveries.c.report_id == incident_reports.c.id
                    )
                )
            }
        store.dispose()
    assert mid_way == 10
    assert set(receiver.applied) == keys, log_path.read_text()[-3000:]
    assert receiver.conflicts == [] and receiver.bad_signatures == 0
    assert all(receiver.bodies[k] == bodies[k] for k in keys)
    assert statuses == {"delivered"}
