"""The daemon's periodic jobs (state tracking, month-to-date SLA, pruning, the monthly
export) on an APScheduler of their own, apart from the probes' scheduler.

Each job runs at most once at a time (a run due while the last one is going is
coalesced), its failures are logged once when they start and once when they end, and a
job that raises never stops the others.
"""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta

import structlog
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.interval import IntervalTrigger

from scd_monitor.clock import Clock
from scd_monitor.errors import ScdMonitorError

log = structlog.get_logger("scd_monitor.jobs")


@dataclass(frozen=True, slots=True)
class PeriodicJob:
    """``run`` every ``every``; the first run ``first_after`` after the start (default:
    one period). ``name`` is the job's id in logs (``state``, ``sla``, ``prune`` …)."""

    name: str
    every: timedelta
    run: Callable[[], Awaitable[None]]
    first_after: timedelta | None = None


@dataclass
class _Health:
    failing: bool = False
    runs: int = 0
    failures: int = 0
    last_error: str | None = field(default=None)


class PeriodicJobs:
    """Runs a fixed set of :class:`PeriodicJob` on the event loop."""

    def __init__(
        self, jobs: Sequence[PeriodicJob], *, clock: Clock, rng: random.Random | None = None
    ) -> None:
        self._jobs = {job.name: job for job in jobs}
        if len(self._jobs) != len(jobs):
            raise ValueError("periodic job names must be unique")
        self._clock = clock
        self._rng = rng or random.Random()
        self._health = {name: _Health() for name in self._jobs}
        self._scheduler = AsyncIOScheduler(
            timezone="UTC",
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": None},
        )

    def start(self) -> None:
        """Schedule every job. Must be called with the event loop running."""
        now = self._clock.now()
        for job in self._jobs.values():
            first = job.first_after if job.first_after is not None else job.every
            self._scheduler.add_job(
                self._run,
                trigger=IntervalTrigger(
                    seconds=job.every.total_seconds(), start_date=now + first, timezone="UTC"
                ),
                args=[job.name],
                id=job.name,
                name=job.name,
            )
        self._scheduler.start()

    def shutdown(self) -> None:
        """Stop scheduling; a run in progress finishes on its own (or is cancelled with
        the loop)."""
        if self._scheduler.running:
            self._scheduler.shutdown(wait=False)

    def run_soon(self, name: str) -> None:
        """Bring the next run of ``name`` forward to now (no-op before :meth:`start`)."""
        if self._scheduler.running:
            self._scheduler.modify_job(name, next_run_time=self._clock.now())

    def runs(self, name: str) -> int:
        """How many runs of ``name`` finished (with or without success)."""
        return self._health[name].runs

    async def run_now(self, name: str) -> bool:
        """Run ``name`` once now (also used at shutdown); True when it succeeded."""
        return await self._run(name)

    async def _run(self, name: str) -> bool:
        job, health = self._jobs[name], self._health[name]
        error: str | None
        try:
            await job.run()
        except ScdMonitorError as exc:
            ok, error = False, str(exc)
        except Exception as exc:  # a bug in one job must not stop the others
            log.exception("job.crashed", job=name)
            ok, error = False, f"{type(exc).__name__}: {exc}"
        else:
            ok, error = True, None
        health.runs += 1
        if ok:
            if health.failing:
                log.info("job.recovered", job=name, failures=health.failures)
            health.failing = False
            health.failures = 0
            return True
        health.failures += 1
        health.last_error = error
        if not health.failing:
            log.error("job.failed", job=name, error=error)
        health.failing = True
        return False
