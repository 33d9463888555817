"""The daemon's incident loops, ready to wire: evaluate every ``evaluate_every``, deliver
the outbox every ``outbox.interval``, keep the metrics snapshot fresh.

::

    runner = build_runner(catalog.incidents, store, clock, timezone=catalog.timezone,
                          vantage=settings.vantage, observe=daemon.observations)
    metrics.add_collector(IncidentCollector(runner.snapshot))
    task = loop.create_task(runner.run(stop))        # until stop is set
    runner.configure(new_catalog.incidents, timezone=new_catalog.timezone)   # on reload
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Mapping
from typing import Any

import structlog

from scd_monitor.catalog.incidents import IncidentsConfig
from scd_monitor.clock import Clock
from scd_monitor.errors import StoreError
from scd_monitor.incidents.metrics import IncidentMetricsSnapshot
from scd_monitor.incidents.observe import Observations
from scd_monitor.incidents.outbox import OutboxDispatcher
from scd_monitor.incidents.service import IncidentService
from scd_monitor.sinks import build_sinks
from scd_monitor.sinks.base import Sink
from scd_monitor.store import Store
from scd_monitor.store.outbox import OutboxStats

__all__ = ["IncidentRunner", "build_runner"]

log = structlog.get_logger("scd_monitor.incidents")


class IncidentRunner:
    """Runs the incident service and the outbox dispatcher side by side."""

    def __init__(
        self,
        service: IncidentService,
        dispatcher: OutboxDispatcher,
        *,
        observe: Callable[[], Observations | None],
        sinks: Mapping[str, Sink],
        clock: Clock,
    ) -> None:
        self.service = service
        self.dispatcher = dispatcher
        self._observe = observe
        self._sink_names = tuple(sorted(sinks))
        self._clock = clock
        self._stats: OutboxStats | None = None

    def snapshot(self) -> IncidentMetricsSnapshot:
        """For :class:`~scd_monitor.incidents.metrics.IncidentCollector` (any thread)."""
        last = self.service.last_evaluation
        return IncidentMetricsSnapshot(
            stats=self._stats,
            outcomes=dict(self.dispatcher.outcomes),
            sinks=self._sink_names,
            evaluations_total=self.service.evaluations_total,
            last_evaluation_timestamp=last.timestamp() if last is not None else None,
        )

    def configure(self, config: IncidentsConfig, *, timezone: str | None = None) -> None:
        """A reloaded catalog's section (secrets already read): new rules, routes, sinks."""
        sinks = build_sinks(config.sinks)
        self.service.configure(config, timezone=timezone)
        self.dispatcher.configure(sinks, config.outbox)
        self._sink_names = tuple(sorted(sinks))

    async def run(self, stop: asyncio.Event) -> None:
        """Until ``stop`` is set (both loops finish their current round first)."""
        await asyncio.gather(self._evaluate(stop), self.dispatcher.run(stop))

    async def evaluate_once(self) -> list[Any]:
        """One evaluation now (also refreshes the metrics snapshot); ``[]`` when the
        observations are not ready (``observe`` returned None)."""
        observations = self._observe()
        if observations is None:
            return []
        events = await asyncio.to_thread(self.service.evaluate, observations)
        self._stats = await asyncio.to_thread(self.service.stats)
        return events

    async def _evaluate(self, stop: asyncio.Event) -> None:
        failing = False
        while not stop.is_set():
            try:
                await self.evaluate_once()
                if failing:
                    log.info("incidents.recovered")
                failing = False
            except StoreError as exc:  # nothing was stored; the next round decides again
                if not failing:
                    log.error("incidents.evaluation_failed", error=str(exc))
                failing = True
            every = self.service.config.evaluate_every.total_seconds()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), every)


def build_runner(
    config: IncidentsConfig,
    store: Store,
    clock: Clock,
    *,
    timezone: str,
    vantage: str,
    observe: Callable[[], Observations | None],
    names: Callable[[str, str], Mapping[str, Any]] | None = None,
) -> IncidentRunner:
    """The runner for ``config`` (the catalog's ``incidents`` section, secrets read)."""
    sinks = build_sinks(config.sinks)
    service = IncidentService(
        store, config, clock=clock, timezone=timezone, holder=vantage, names=names
    )
    dispatcher = OutboxDispatcher(service.outbox, sinks, clock, config=config.outbox)
    return IncidentRunner(service, dispatcher, observe=observe, sinks=sinks, clock=clock)
