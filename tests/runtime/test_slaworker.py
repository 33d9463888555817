"""The SLA worker process: it computes from the catalog in force (never the file), and a
worker that dies is replaced at the next round."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from scd_monitor.catalog import parse_catalog
from scd_monitor.catalog.discovered import expand
from scd_monitor.clock import SystemClock
from scd_monitor.errors import StoreError
from scd_monitor.runtime.slaworker import MonthToDate
from scd_monitor.store import Store

CATALOG = expand(
    parse_catalog(
        """
providers:
  - id: p
    name: P
    services:
      - id: s
        type: otro
        checks: [{id: a, kind: tls, host: a.example}]
"""
    ),
    {},
).catalog


async def test_a_dead_worker_is_replaced_at_the_next_round(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/sla.db"
    store = Store(url)
    store.create_schema()
    sla = MonthToDate(
        store=store, database_url=url, catalog=lambda: CATALOG, clock=SystemClock(), worker=True
    )
    sla.start()
    try:
        report = await sla.compute()  # from the catalog given, no file anywhere
        assert [(s.provider, s.service) for s in report.services] == [("p", "s")]
        pool = sla._pool
        assert pool is not None
        for pid in list(getattr(pool, "_processes", None) or {}):
            os.kill(pid, signal.SIGKILL)
        with pytest.raises(StoreError, match="the SLA worker process failed"):
            await sla.compute()
        again = await sla.compute()  # a new worker process
        assert [(s.provider, s.service) for s in again.services] == [("p", "s")]
        assert sla._pool is not None and sla._pool is not pool
    finally:
        sla.close()
        store.dispose()


_PARENT = """
import multiprocessing, os, sys, time
from concurrent.futures import ProcessPoolExecutor
from scd_monitor.runtime.slaworker import watch_parent

if __name__ == "__main__":
    pool = ProcessPoolExecutor(
        max_workers=1,
        mp_context=multiprocessing.get_context("spawn"),
        initializer=watch_parent,
        initargs=(os.getpid(), 0.1),
    )
    print(pool.submit(os.getpid).result(), flush=True)
    time.sleep(60)
"""


def test_the_worker_dies_with_a_daemon_killed_by_sigkill(tmp_path: Path) -> None:
    """A daemon killed with -9 left its SLA worker process running for ever (an orphan
    per crash); the worker now watches its parent and exits."""
    import subprocess
    import sys
    import time

    script = tmp_path / "parent.py"
    script.write_text(_PARENT)
    parent = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True)
    assert parent.stdout is not None
    worker = int(parent.stdout.readline())
    os.kill(worker, 0)  # alive
    parent.send_signal(signal.SIGKILL)
    parent.wait(10)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            os.kill(worker, 0)
        except ProcessLookupError:
            return
        time.sleep(0.05)
    os.kill(worker, signal.SIGKILL)
    raise AssertionError("the worker outlived its daemon")
