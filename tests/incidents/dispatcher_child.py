"""A dispatcher process for the crash test: ``python -m tests.incidents.dispatcher_child
DATABASE_URL WEBHOOK_URL``. Prints ``ready``, then delivers until the outbox is empty
(exit 0) or it is killed."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

from scd_monitor.catalog.incidents import IncidentsConfig, OutboxConfig, resolve_secrets
from scd_monitor.clock import SystemClock
from scd_monitor.incidents.outbox import OutboxDispatcher
from scd_monitor.logs import configure_logging
from scd_monitor.sinks import build_sinks
from scd_monitor.store import Store
from scd_monitor.store.outbox import OutboxRepository
from tests.incidents.receivers import SECRET

OUTBOX = {
    "lease": "1s",
    "batch": 4,
    "concurrency": 2,
    "backoff": {"initial": "100ms", "max": "500ms", "jitter": 0.5},
}


def incidents_config(url: str) -> IncidentsConfig:
    return IncidentsConfig.model_validate(
        {
            "resolve_after": "1h",
            "sinks": [
                {
                    "id": "mintic",
                    "kind": "webhook",
                    "url": url,
                    "secret": {"env": "SCD_TEST_SECRET"},
                },
                {"id": "ops", "kind": "webhook", "url": url, "secret": {"env": "SCD_TEST_SECRET"}},
            ],
            "routes": [
                {"audience": "authority", "sinks": ["mintic"]},
                {"audience": "operations", "sinks": ["ops"]},
            ],
            "outbox": OUTBOX,
        }
    )


async def main(database_url: str, webhook_url: str) -> int:
    configure_logging("json", "warning", stream=sys.stderr)
    os.environ["SCD_TEST_SECRET"] = SECRET
    config = resolve_secrets(incidents_config(webhook_url), Path())
    store = Store(database_url)
    clock = SystemClock()
    repo = OutboxRepository(store)
    dispatcher = OutboxDispatcher(
        repo, build_sinks(config.sinks), clock, config=OutboxConfig.model_validate(OUTBOX)
    )
    print("ready", flush=True)
    while repo.stats(clock.now()).backlog:
        await dispatcher.run_once()
        await asyncio.sleep(0.01)
    store.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main(sys.argv[1], sys.argv[2])))
