"""APScheduler 3 wiring: one interval job per check, jittered start, bounded concurrency.

- Each check is one job with an :class:`IntervalTrigger` whose start is spread at random
  over the first interval, so a thousand checks with the same interval do not fire in
  the same second.
- A check never overlaps itself: a run due while the previous one is still going is
  skipped and counted (``scd_scheduler_skipped_runs_total``). Each skip is logged at
  ``debug``; at ``warning``, one ``scheduler.runs_skipped`` line at most every
  :data:`SKIP_WARNING_EVERY` says how many runs were skipped since the last one (an
  overloaded daemon skips hundreds a second: one line each would be a log storm that
  costs the CPU it lacks).
- A semaphore bounds the probes in flight across all checks. Scheduling lag is the
  time from the run's scheduled instant to the moment its probe actually starts.
- Misfires (a run later than its grace time) are logged and counted, then coalesced.
- :meth:`ProbeScheduler.stop` stops scheduling and waits (bounded) for in-flight probes.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import structlog
from apscheduler.events import (
    EVENT_JOB_ERROR,
    EVENT_JOB_MISSED,
    EVENT_JOB_SUBMITTED,
    JobEvent,
    JobExecutionEvent,
    JobSubmissionEvent,
)
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.interval import IntervalTrigger

from scd_monitor.catalog.models import ResolvedCheck
from scd_monitor.clock import Clock
from scd_monitor.probes.base import ErrorKind, Outcome, Probe, ProbeResult

log = structlog.get_logger("scd_monitor.scheduler")

SKIP_WARNING_EVERY = timedelta(seconds=10)
"""At most one ``scheduler.runs_skipped`` warning per this period."""
_SKIP_SAMPLE = 5

# A probe that overstays its own timeout by this much is cut off by the runner.
_SAFETY_MARGIN = 2.0


@dataclass(frozen=True, slots=True)
class SchedulerObserver:
    """Callbacks through which the scheduler reports its own health (metrics)."""

    lag: Callable[[float], None] = lambda _s: None
    misfire: Callable[[str], None] = lambda _job: None
    skipped: Callable[[str], None] = lambda _job: None
    in_flight: Callable[[int], None] = lambda _n: None


async def run_probe(
    probe: Probe,
    check: ResolvedCheck,
    *,
    vantage: str,
    clock: Clock,
    scheduled_at: datetime | None = None,
) -> ProbeResult:
    """Run one probe once, bounded by its timeout; never raises for target behaviour."""
    started_at = clock.now()
    t0 = clock.monotonic()
    try:
        async with asyncio.timeout(check.timeout.total_seconds() + _SAFETY_MARGIN):
            outcome = await probe(check)
    except TimeoutError:
        outcome = Outcome.failure(
            ErrorKind.TIMEOUT,
            f"probe did not finish within its timeout ({check.timeout.total_seconds():g}s)",
        )
    except Exception as exc:
        log.exception("probe.crashed", check=check.id, kind=check.kind)
        outcome = Outcome.failure(ErrorKind.INTERNAL, f"{type(exc).__name__}: {exc}")
    return ProbeResult(
        check_id=check.id,
        kind=check.kind,
        vantage=vantage,
        started_at=started_at,
        duration=max(0.0, clock.monotonic() - t0),
        outcome=outcome,
        scheduled_at=scheduled_at,
    )


class ProbeScheduler:
    """Runs every check of the catalog on its interval."""

    def __init__(
        self,
        *,
        probes: Mapping[str, Probe],
        on_result: Callable[[ResolvedCheck, ProbeResult], None],
        vantage: str,
        clock: Clock,
        max_concurrency: int,
        observer: SchedulerObserver | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self._probes = probes
        self._on_result = on_result
        self._vantage = vantage
        self._clock = clock
        self._semaphore = asyncio.Semaphore(max_concurrency)
        self._observer = observer or SchedulerObserver()
        self._rng = rng or random.Random()
        self._scheduled_at: dict[str, datetime] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._running: set[str] = set()
        self._checks: dict[str, ResolvedCheck] = {}
        self._scheduler = AsyncIOScheduler(
            timezone="UTC",
            job_defaults={"coalesce": True, "max_instances": 1},
        )
        self._scheduler.add_listener(self._on_submitted, EVENT_JOB_SUBMITTED)
        self._scheduler.add_listener(self._on_missed, EVENT_JOB_MISSED)
        self._scheduler.add_listener(self._on_error, EVENT_JOB_ERROR)
        self._stopping = False
        self._skips = 0
        self._skipped_sample: list[str] = []
        self._skip_warned_at: float | None = None

    @property
    def in_flight(self) -> int:
        return len(self._tasks)

    @property
    def job_count(self) -> int:
        return len(self._checks)

    def start(self, checks: Sequence[ResolvedCheck]) -> None:
        """Schedule ``checks`` and start. Must be called with the event loop running."""
        self._scheduler.start()
        self.set_checks(checks)

    def set_checks(self, checks: Sequence[ResolvedCheck]) -> None:
        """Replace the scheduled checks: new ones added, changed ones rescheduled."""
        for _ in self._changes(checks):
            pass

    async def update_checks(self, checks: Sequence[ResolvedCheck], *, chunk: int = 100) -> None:
        """:meth:`set_checks`, handing the event loop back every ``chunk`` changes: adding
        a job costs about 0.1 ms, so a catalog of 50,000 checks would otherwise hold the
        loop for seconds. The caller runs one update at a time."""
        for n, _ in enumerate(self._changes(checks), 1):
            if n % chunk == 0:
                await asyncio.sleep(0)

    def _changes(self, checks: Sequence[ResolvedCheck]) -> Iterator[str]:
        """Apply the difference between the scheduled checks and ``checks``, one job at a
        time (yielding each id)."""
        wanted = {c.id: c for c in checks}
        for gone in [ident for ident in self._checks if ident not in wanted]:
            if gone in self._checks:
                self._scheduler.remove_job(gone)
                del self._checks[gone]
                yield gone
        now = self._clock.now()
        for ident, check in wanted.items():
            if self._checks.get(ident) == check:
                continue
            interval = check.interval.total_seconds()
            first = now + timedelta(seconds=self._rng.uniform(0, interval))
            self._scheduler.add_job(
                self._fire,
                trigger=IntervalTrigger(seconds=interval, start_date=first, timezone="UTC"),
                args=[ident],
                id=ident,
                name=ident,
                replace_existing=True,
                misfire_grace_time=max(1, int(interval / 2)),
            )
            self._checks[ident] = check
            yield ident

    async def stop(self, grace: float) -> int:
        """Stop scheduling; wait up to ``grace`` seconds for in-flight probes.

        Returns the number of probes that were still running and got cancelled.
        """
        self._stopping = True
        if self._scheduler.running:
            self._scheduler.shutdown(wait=False)
        pending = set(self._tasks)
        if pending:
            log.info("scheduler.draining", in_flight=len(pending), grace_s=grace)
            _done, still = await asyncio.wait(pending, timeout=grace)
            for task in still:
                task.cancel()
            if still:
                await asyncio.gather(*still, return_exceptions=True)
            return len(still)
        return 0

    async def _fire(self, ident: str) -> None:
        """The APScheduler job: start the run as a task of our own and return at once.

        The run is not APScheduler's task, so a shutdown does not cancel it and
        :meth:`stop` can let it finish; overlap is prevented here, not by the executor.
        """
        if self._stopping:
            return
        if ident in self._running:
            log.debug("scheduler.run_skipped", check=ident, reason="previous run still going")
            self._observer.skipped(ident)
            self._scheduled_at.pop(ident, None)
            self._warn_skipped(ident)
            return
        self._running.add(ident)
        task = asyncio.get_running_loop().create_task(self._run(ident), name=f"probe:{ident}")
        self._tasks.add(task)
        self._observer.in_flight(len(self._tasks))
        task.add_done_callback(lambda t: self._done(ident, t))

    def _warn_skipped(self, ident: str) -> None:
        """One warning for the first skip, then at most one per SKIP_WARNING_EVERY."""
        self._skips += 1
        if len(self._skipped_sample) < _SKIP_SAMPLE:
            self._skipped_sample.append(ident)
        now = self._clock.monotonic()
        last = self._skip_warned_at
        if last is not None and now - last < SKIP_WARNING_EVERY.total_seconds():
            return
        log.warning(
            "scheduler.runs_skipped",
            skipped=self._skips,
            since_s=round(now - last, 1) if last is not None else None,
            checks_sample=list(self._skipped_sample),
            reason="previous run still going",
            hint="a run longer than its interval, or more checks than this process can "
            "probe (docs/escalado.md)",
        )
        self._skips = 0
        self._skipped_sample.clear()
        self._skip_warned_at = now

    def _done(self, ident: str, task: asyncio.Task[None]) -> None:
        self._running.discard(ident)
        self._tasks.discard(task)
        self._observer.in_flight(len(self._tasks))
        if not task.cancelled() and task.exception() is not None:
            log.error("scheduler.run_failed", check=ident, error=repr(task.exception()))

    async def _run(self, ident: str) -> None:
        """One probe of one check, results handed on."""
        check = self._checks.get(ident)
        if check is None:
            return
        async with self._semaphore:
            scheduled = self._scheduled_at.pop(ident, None)
            probe = self._probes[check.kind]
            result = await run_probe(
                probe, check, vantage=self._vantage, clock=self._clock, scheduled_at=scheduled
            )
        if result.lag is not None:
            self._observer.lag(result.lag)
        self._on_result(check, result)

    def _on_submitted(self, event: JobSubmissionEvent) -> None:
        if event.scheduled_run_times:
            self._scheduled_at[event.job_id] = event.scheduled_run_times[-1]

    def _on_missed(self, event: JobEvent) -> None:
        run_time: Any = getattr(event, "scheduled_run_time", None)
        log.warning(
            "scheduler.misfire",
            check=event.job_id,
            scheduled=run_time.isoformat() if run_time else None,
        )
        self._observer.misfire(event.job_id)

    def _on_error(self, event: JobExecutionEvent) -> None:
        log.error("scheduler.job_failed", check=event.job_id, error=repr(event.exception))
