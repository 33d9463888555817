"""Crash safety of the outbox: a dispatcher process killed with SIGKILL at random points
while delivering, ten times, then left to finish: every report reaches the webhook
receiver, which applies each (incident, event, sink) once and never sees one key with
two contents."""

from __future__ import annotations

import asyncio
import os
import random
import sys
from datetime import timedelta
from pathlib import Path

from sqlalchemy import select

from scd_monitor.incidents.service import IncidentService
from scd_monitor.store import Store
from scd_monitor.store.tables import deliveries, incident_reports
from tests.incidents.conftest import SettableClock, outage
from tests.incidents.dispatcher_child import incidents_config
from tests.incidents.receivers import WebhookReceiver

ROOT = Path(__file__).resolve().parents[2]
KILLS = 10


async def start_child(url: str, webhook: str, log: Path) -> asyncio.subprocess.Process:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.incidents.dispatcher_child",
        url,
        webhook,
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=log.open("ab"),
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert proc.stdout is not None
    line = await asyncio.wait_for(proc.stdout.readline(), 30)
    assert line.strip() == b"ready", line
    return proc


async def test_sigkill_during_delivery_loses_and_doubles_nothing(
    store: Store, store_url: str, tmp_path: Path
) -> None:
    rng = random.Random()
    receiver = WebhookReceiver(failing=lambda n: n < 6, delay=(0.02, 0.06))
    async with receiver:
        clock = SettableClock()
        service = IncidentService(store, incidents_config(receiver.url), clock=clock, holder="v")
        for i in range(20):
            events = service.evaluate(outage(clock.now(), provider=f"prestador-{i:02d}"))
            (opened,) = [e for e in events if e.kind == "opened"]
            clock.advance(timedelta(seconds=1))
            service.note(opened.incident, f"Acción tomada número {i}")
        with store.engine.connect() as conn:
            keys = set(conn.execute(select(deliveries.c.idempotency_key)).scalars())
            bodies = {
                r.idempotency_key: r.body.encode()
                for r in conn.execute(
                    select(deliveries.c.idempotency_key, incident_reports.c.body).join(
                        incident_reports, deliveries.c.report_id == incident_reports.c.id
                    )
                )
            }
        assert len(keys) == 80

        log = tmp_path / "children.log"
        mid_way = 0
        for _ in range(KILLS):
            seen = receiver.requests
            proc = await start_child(store_url, receiver.url, log)
            while receiver.requests == seen and proc.returncode is None:
                await asyncio.sleep(0.005)  # until this process is delivering …
            await asyncio.sleep(rng.uniform(0.0, 0.5))  # … then at a random point
            if proc.returncode is None and len(receiver.applied) < len(keys):
                mid_way += 1
            proc.kill()  # SIGKILL: no cleanup, claims left in flight
            await proc.wait()
        proc = await start_child(store_url, receiver.url, log)
        assert await asyncio.wait_for(proc.wait(), 120) == 0, log.read_text()

    print(
        f"{len(keys)} deliveries, {KILLS} kills mid-delivery, {receiver.requests} requests, "
        f"{receiver.duplicates} redeliveries dropped by key"
    )
    assert mid_way == KILLS
    assert receiver.bad_signatures == 0
    assert receiver.conflicts == []
    assert set(receiver.applied) == keys  # every report delivered …
    assert all(receiver.bodies[k] == bodies[k] for k in keys)  # … with the stored content
    assert receiver.duplicates >= 1  # redeliveries happened, and were dropped by key
    with store.engine.connect() as conn:
        statuses = set(conn.execute(select(deliveries.c.status)).scalars())
    assert statuses == {"delivered"}
