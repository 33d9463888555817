"""The daemon's background work, supervised: state tracking, month-to-date SLA, X-Road
discovery, incident evaluation, the outbox, pruning and the monthly export. Each is a
:class:`PeriodicJob` on an APScheduler of its own, apart from the probes' scheduler.

One supervisor for all of them, so that each fails the same way:

- a round runs at most once at a time (a run due while the last one is going is
  coalesced);
- a round that raises is logged with its error and its cause (``component.failed`` when
  the component starts failing, with the traceback when the error is not one of ours),
  counted (``restarts_total``: every failed round is retried), marks the component down,
  and is retried after a backoff: the interval (at most :data:`FIRST_RETRY`) doubled at
  each consecutive failure, up to :data:`BACKOFF_CAP` or the interval, whichever is
  longer. The first good round logs ``component.recovered`` and the usual schedule
  resumes;
- a round that runs longer than ``stalled_after`` marks the component down as stalled
  (it is not cancelled: a worker thread cannot be);
- a component may have several independent units (discovery: one per X-Road source), each
  its own job: one unit failing never delays the others;
- nothing one job does stops another.

:meth:`PeriodicJobs.statuses` (on the event loop) is an immutable view per component for
``scd_component_up`` and ``/readyz``; the daemon publishes it for the metrics thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from types import MappingProxyType

import structlog
from apscheduler.jobstores.base import JobLookupError
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.interval import IntervalTrigger

from scd_monitor.clock import Clock
from scd_monitor.errors import ScdMonitorError
from scd_monitor.web.metrics import ComponentStatus

__all__ = [
    "BACKOFF_CAP",
    "FIRST_RETRY",
    "ComponentStatus",
    "PeriodicJob",
    "PeriodicJobs",
    "backoff",
    "describe",
]

log = structlog.get_logger("scd_monitor.jobs")

FIRST_RETRY = timedelta(seconds=5)
"""A failed round is retried this soon (or after its interval, when shorter): a directory
read every 10 minutes that crashed is tried again in seconds, not minutes."""
BACKOFF_CAP = timedelta(minutes=1)
"""Longest wait before retrying a failed round (unless the interval itself is longer)."""
_MIN_STALL = timedelta(minutes=5)
_MAX_ERROR_CHARS = 500


@dataclass(frozen=True, slots=True)
class PeriodicJob:
    """``run`` every ``every``; the first run ``first_after`` after the start (default:
    one period). ``name`` is the component (``tracker``, ``sla``, ``discovery`` …) in logs
    and metrics; ``unit`` tells apart independent jobs of one component (a discovery
    source). ``run`` returning True asks for another round at once (a full batch)."""

    name: str
    every: timedelta
    run: Callable[[], Awaitable[object]]
    first_after: timedelta | None = None
    unit: str | None = None
    stalled_after: timedelta | None = None
    """Default: ten intervals, at least five minutes."""

    @property
    def ident(self) -> str:
        return self.name if self.unit is None else f"{self.name}:{self.unit}"


@dataclass
class _Health:
    failing: bool = False
    runs: int = 0
    failures: int = 0
    """Consecutive failed rounds (0 when the last one succeeded)."""
    restarts_total: int = 0
    last_error: str | None = None
    failing_since: datetime | None = None
    last_success: datetime | None = None
    running_since: float | None = None
    task: asyncio.Task[object] | None = field(default=None, repr=False)


def backoff(every: timedelta, failures: int, *, cap: timedelta = BACKOFF_CAP) -> timedelta:
    """The wait before retrying after ``failures`` consecutive failed rounds: the interval
    or :data:`FIRST_RETRY`, whichever is shorter, doubled per further failure, up to
    ``cap`` (or the interval, when that is longer)."""
    first = min(every, FIRST_RETRY)
    limit = max(every, cap)
    return min(first * (1 << min(max(failures, 1) - 1, 30)), limit)


def describe(exc: BaseException) -> str:
    """``Type: message``, with the chain of causes, on one bounded line."""
    parts: list[str] = []
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen and len(parts) < 4:
        seen.add(id(current))
        text = " ".join(str(current).split())
        parts.append(f"{type(current).__name__}: {text}" if text else type(current).__name__)
        current = current.__cause__ or current.__context__
    line = " <- caused by ".join(parts)
    return line if len(line) <= _MAX_ERROR_CHARS else line[: _MAX_ERROR_CHARS - 1] + "…"


class PeriodicJobs:
    """Runs and supervises a set of :class:`PeriodicJob` on the event loop."""

    def __init__(
        self, jobs: Sequence[PeriodicJob], *, clock: Clock, rng: random.Random | None = None
    ) -> None:
        self._jobs: dict[str, PeriodicJob] = {}
        for job in jobs:
            if job.ident in self._jobs:
                raise ValueError("periodic job names must be unique")
            self._jobs[job.ident] = job
        self._clock = clock
        self._rng = rng or random.Random()
        self._health = {ident: _Health() for ident in self._jobs}
        self._components = {job.name for job in jobs}
        self._pending: set[asyncio.Task[None]] = set()
        self._scheduler = AsyncIOScheduler(
            timezone="UTC",
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": None},
        )

    # -- life cycle ----------------------------------------------------------------------

    def start(self) -> None:
        """Schedule every job. Must be called with the event loop running."""
        for job in self._jobs.values():
            self._schedule(job)
        self._scheduler.start()

    def shutdown(self) -> None:
        """Stop scheduling; a round in progress finishes on its own (or is cancelled with
        the loop)."""
        if self._scheduler.running:
            self._scheduler.shutdown(wait=False)

    async def stop(self, grace: float) -> int:
        """Stop scheduling and give the rounds in progress ``grace`` seconds to finish;
        returns how many were cancelled after it."""
        if self._scheduler.running:
            self._scheduler.pause()  # no new rounds; shutting down would cancel the running
        running = {h.task for h in self._health.values() if h.task is not None}
        late: set[asyncio.Task[object]] = set()
        if running:
            _done, late = await asyncio.wait(running, timeout=grace)
            for task in late:
                task.cancel()
            await asyncio.gather(*late, return_exceptions=True)
        self.shutdown()
        return len(late)

    # -- the set of jobs -----------------------------------------------------------------

    def set_units(self, name: str, jobs: Sequence[PeriodicJob]) -> None:
        """Make ``jobs`` the units of component ``name``: new ones added, changed ones
        rescheduled, the others removed (with their health)."""
        wanted = {job.ident: job for job in jobs}
        if any(job.name != name or job.unit is None for job in jobs):
            raise ValueError(f"units of {name!r} must be named {name!r} and have a unit")
        self._components.add(name)
        for ident in [i for i, j in self._jobs.items() if j.name == name and i not in wanted]:
            del self._jobs[ident]
            del self._health[ident]
            self._remove(ident)
        for ident, job in wanted.items():
            old = self._jobs.get(ident)
            self._jobs[ident] = job
            self._health.setdefault(ident, _Health())
            if old is None or old.every != job.every:
                if old is not None:
                    self._remove(ident)
                if self._scheduler.running:
                    self._schedule(job)

    def reschedule(self, ident: str, every: timedelta) -> None:
        """Run ``ident`` every ``every`` from now on (e.g. a reloaded catalog's interval)."""
        job = self._jobs[ident]
        if job.every == every:
            return
        new = PeriodicJob(job.name, every, job.run, job.first_after, job.unit, job.stalled_after)
        self._jobs[ident] = new
        if self._scheduler.running:
            self._remove(ident)
            self._schedule(new, first_after=every)

    def idents(self, name: str) -> list[str]:
        """The job idents of component ``name``."""
        return [ident for ident, job in self._jobs.items() if job.name == name]

    def _schedule(self, job: PeriodicJob, *, first_after: timedelta | None = None) -> None:
        first = first_after if first_after is not None else job.first_after
        start = self._now() + (first if first is not None else job.every)
        self._scheduler.add_job(
            self._run,
            trigger=IntervalTrigger(
                seconds=job.every.total_seconds(), start_date=start, timezone="UTC"
            ),
            args=[job.ident],
            id=job.ident,
            name=job.ident,
            replace_existing=True,
            next_run_time=start,  # the trigger alone would skip a start already past
        )

    def _remove(self, ident: str) -> None:
        if self._scheduler.running:
            with contextlib.suppress(JobLookupError):  # never scheduled, or already gone
                self._scheduler.remove_job(ident)

    def _next_run(self, ident: str, when: datetime) -> None:
        if self._scheduler.running and ident in self._jobs:
            with contextlib.suppress(JobLookupError):  # removed meanwhile (a reload)
                self._scheduler.modify_job(ident, next_run_time=when)

    def _now(self) -> datetime:
        return self._clock.now()

    # -- running -------------------------------------------------------------------------

    def run_soon(self, ident: str) -> None:
        """Bring the next run of ``ident`` forward to now (no-op before :meth:`start`)."""
        self._next_run(ident, self._now())

    def _again(self, ident: str) -> None:
        """Another round of ``ident`` at once, as soon as this one has ended (a round due
        while one is running would be skipped)."""
        current = asyncio.current_task()

        async def after() -> None:
            if current is not None:
                await asyncio.wait({current})
            self._next_run(ident, self._now())

        task = asyncio.get_running_loop().create_task(after())
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    def runs(self, ident: str) -> int:
        """How many runs of ``ident`` finished (with or without success)."""
        return self._health[ident].runs

    async def run_now(self, ident: str) -> bool:
        """Run ``ident`` once now (also used at shutdown); True when it succeeded."""
        return await self._run(ident)

    async def _run(self, ident: str) -> bool:
        job, health = self._jobs.get(ident), self._health.get(ident)
        if job is None or health is None:
            return False  # removed (a source left the catalog) while this run was due
        health.running_since = time.monotonic()
        health.task = asyncio.current_task()
        again: object = None
        error: str | None = None
        try:
            again = await job.run()
        except ScdMonitorError as exc:
            error = describe(exc)
        except Exception as exc:  # a bug in one job must not stop the others
            log.exception("component.crashed", component=job.name, unit=job.unit)
            error = describe(exc)
        finally:
            health.running_since = None
            health.task = None
        health.runs += 1
        if error is None:
            health.last_success = self._now()
            if health.failing:
                log.info(
                    "component.recovered",
                    component=job.name,
                    unit=job.unit,
                    failures=health.failures,
                    down_s=round((self._now() - health.failing_since).total_seconds(), 1)
                    if health.failing_since is not None
                    else None,
                )
            health.failing = False
            health.failures = 0
            health.failing_since = None
            if again is True:
                self._again(ident)
            return True
        health.failures += 1
        health.restarts_total += 1
        health.last_error = error
        delay = backoff(job.every, health.failures) * self._rng.uniform(0.9, 1.1)
        if not health.failing:
            health.failing_since = self._now()
            log.error(
                "component.failed",
                component=job.name,
                unit=job.unit,
                error=error,
                retry_in_s=round(delay.total_seconds(), 1),
            )
        health.failing = True
        self._next_run(ident, self._now() + delay)
        return False

    # -- views ---------------------------------------------------------------------------

    def statuses(self) -> Mapping[str, ComponentStatus]:
        """One status per component (its units together): down when any unit is failing
        or stalled."""
        now = time.monotonic()
        out: dict[str, ComponentStatus] = {}
        for name in sorted(self._components):
            units = [
                (job, self._health[ident])
                for ident, job in self._jobs.items()
                if job.name == name and ident in self._health
            ]
            problems = []
            for job, h in units:
                where = name if job.unit is None else f"{name} ({job.unit})"
                if h.failing:
                    since = h.failing_since.isoformat() if h.failing_since else "?"
                    problems.append(
                        f"{where}: failing since {since} ({h.failures} rounds): {h.last_error}"
                    )
                stall = job.stalled_after or max(job.every * 10, _MIN_STALL)
                if h.running_since is not None and now - h.running_since > stall.total_seconds():
                    problems.append(
                        f"{where}: one round running for {now - h.running_since:.0f} s (stalled)"
                    )
            successes = [h.last_success for _, h in units]
            last = (
                min(s for s in successes if s is not None)
                if units and all(s is not None for s in successes)
                else None
            )
            out[name] = ComponentStatus(
                component=name,
                up=not problems,
                restarts_total=sum(h.restarts_total for _, h in units),
                last_success_timestamp=last.timestamp() if last is not None else None,
                problem="; ".join(problems) if problems else None,
            )
        return MappingProxyType(out)
