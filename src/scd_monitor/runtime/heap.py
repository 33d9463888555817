"""The daemon's heap: long-lived objects kept out of the cyclic collector's full passes.

A daemon with thousands of checks holds hundreds of thousands of long-lived objects (the
catalog, the state machines, the pre-rendered metrics). Every full (generation 2) pass of
Python's cyclic collector walks all of them: at 5,000 checks ~140 ms each, 22 of them in
a two-minute benchmark run, on the event loop (``bench/README.md``). After the
start, and then every :data:`SETTLE_EVERY`, :func:`settle` collects once and *freezes*
what survived (:func:`gc.freeze`): later passes only walk objects made since. Frozen
objects are still freed by reference counting; only cycles among them wait for the next
settle, which unfreezes, collects everything once, and freezes again.
"""

from __future__ import annotations

import gc
import time
from datetime import timedelta

import structlog

log = structlog.get_logger("scd_monitor.runtime.heap")

SETTLE_EVERY = timedelta(minutes=10)


def settle() -> None:
    """Collect everything once, then freeze the survivors (see the module docstring)."""
    started = time.perf_counter()
    gc.unfreeze()
    freed = gc.collect()
    gc.freeze()
    log.debug(
        "heap.settled",
        freed=freed,
        frozen=gc.get_freeze_count(),
        seconds=round(time.perf_counter() - started, 3),
    )
