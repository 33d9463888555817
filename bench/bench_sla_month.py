#!/usr/bin/env python3
"""SLA month report benchmark: ``SlaReporter.report`` over a month of simulated history.

For each database (SQLite file, PostgreSQL private schema) and each catalog size N:

1. write a catalog of N ``http`` checks laid out like the simulator's fleet (10 checks
   per service, 10 services per provider; URLs on 127.0.0.1, never contacted), plus one
   canary; some services have maintenance windows (one-off allowed, one-off rejected
   for late notice, weekly recurring);
2. write a month of history **straight into the store** with bulk inserts, in the
   shapes :class:`scd_monitor.runtime.tracker.StateTracker` writes: final state spans
   (``scd_check_spans``), one state machine snapshot per check and vantage
   (``scd_check_machines``, a real :class:`CheckStateMachine` fed a few results at the
   month's end) and hourly latency rollups (``scd_latency_hourly``);
3. run the month report ``--repeat`` times per database, interleaved across the
   databases (the machine's background load then hits them alike), each run in a
   fresh child process (so its peak RSS is the report's, not the generator's), timing
   wall and CPU time and the reporter's phases (``_timelines``: read spans + machines;
   ``_monitor_faults``; ``_latency``: read rollups; the rest: per-service timelines
   and figures);
4. cross-check the report against what was generated: per service, the charged
   downtime must equal (exactly, to the microsecond) the union of its critical checks'
   DOWN time minus the monitor faults (canary, and the mass-failure rule recomputed
   here as a sweep) minus the allowed maintenance windows, computed independently of
   ``scd_monitor.sla``; the latency sample counts must add up.

Everything runs against 127.0.0.1 only. See ``bench/README.md`` ("SLA month report").
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import math
import os
import platform
import pstats
import random
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, timedelta
from fractions import Fraction
from itertools import pairwise
from operator import add
from pathlib import Path
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

import yaml
from sqlalchemy import create_engine, insert, text

from scd_monitor.analysis.policy import derive_policy
from scd_monitor.analysis.reporting import SlaReporter
from scd_monitor.catalog import load_catalog
from scd_monitor.clock import Clock
from scd_monitor.probes.base import ErrorKind, Outcome, ProbeResult
from scd_monitor.sla.calendar import month_period, parse_month
from scd_monitor.sla.derive import CheckStateMachine, MachineSnapshot, Observation, Verdict
from scd_monitor.sla.latency import BOUNDS_SECONDS, N_BUCKETS
from scd_monitor.sla.model import Period, Span, State
from scd_monitor.store import Store
from scd_monitor.store.tables import check_machines, check_spans, latency_daily, latency_hourly

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
TZ = "America/Bogota"
INTERVAL = 30
"""Seconds between probes of a check (the catalog default)."""
PROBES_PER_HOUR = 3600 // INTERVAL
LATENCY_THRESHOLD = 2.0
"""Seconds; the catalog default ``sla.latency_threshold``."""
BATCH = 20_000
"""Rows per ``conn.execute(insert(table), rows)``."""
COMMIT_EVERY = 200_000
"""Rows per transaction."""
CHILD_TIMEOUT = 7200.0

CHECKS_PER_SERVICE = 10
SERVICES_PER_PROVIDER = 10
SERVICE_TYPES = ("autenticacion_digital", "carpeta_ciudadana", "interoperabilidad", "otro")
OUTAGE_ERRORS = (
    (ErrorKind.TIMEOUT, 40),
    (ErrorKind.CONNECT, 20),
    (ErrorKind.STATUS, 25),
    (ErrorKind.TLS, 5),
    (ErrorKind.DNS, 4),
    (ErrorKind.ASSERTION, 4),
    (ErrorKind.PROTOCOL, 2),
)
CANARY_ID = "scd-monitor/canaries/gateway"

T = TypeVar("T")
Interval = tuple[datetime, datetime]


class FixedClock:
    """A :class:`~scd_monitor.clock.Clock` stopped at one instant."""

    def __init__(self, at: datetime) -> None:
        self._at = at

    def now(self) -> datetime:
        return self._at

    def monotonic(self) -> float:
        return time.monotonic()


# -- interval helpers (deliberately independent of scd_monitor.sla.intervals) ----------


def union(intervals: Sequence[Interval]) -> list[Interval]:
    out: list[Interval] = []
    for start, end in sorted(intervals):
        if end <= start:
            continue
        if out and start <= out[-1][1]:
            if end > out[-1][1]:
                out[-1] = (out[-1][0], end)
        else:
            out.append((start, end))
    return out


def subtract(base: Sequence[Interval], cut: Sequence[Interval]) -> list[Interval]:
    out: list[Interval] = []
    holes = union(cut)
    for start, end in union(base):
        cursor = start
        for h_start, h_end in holes:
            if h_end <= cursor or h_start >= end:
                continue
            if h_start > cursor:
                out.append((cursor, h_start))
            cursor = max(cursor, h_end)
        if cursor < end:
            out.append((cursor, end))
    return out


def measure(intervals: Sequence[Interval]) -> timedelta:
    return sum((e - s for s, e in union(intervals)), timedelta(0))


def mass_failure(
    data: Sequence[Sequence[Interval]],
    down: Sequence[Sequence[Interval]],
    min_providers: int,
    min_ratio: float,
) -> list[Interval]:
    """Where >= min_providers providers, and >= min_ratio of those with data, are DOWN.

    A sweep over per-provider unions (each list disjoint), for the cross-check.
    """
    ratio = Fraction(str(min_ratio))
    deltas: dict[datetime, list[int]] = {}
    for lists, slot in ((data, 0), (down, 1)):
        for intervals in lists:
            for start, end in intervals:
                deltas.setdefault(start, [0, 0])[slot] += 1
                deltas.setdefault(end, [0, 0])[slot] -= 1
    out: list[Interval] = []
    fresh = failing = 0
    times = sorted(deltas)
    for here, after in pairwise(times):
        fresh += deltas[here][0]
        failing += deltas[here][1]
        if failing >= min_providers and failing >= ratio * fresh:
            out.append((here, after))
    return union(out)


# -- the generated world ----------------------------------------------------------------


@dataclass(slots=True)
class Window:
    start: datetime
    end: datetime
    reason: str
    allowed: bool
    recurring: bool = False
    forced_down: Interval | None = None
    """The outage every check of the service has around a one-off window."""


@dataclass(slots=True)
class ServicePlan:
    provider: str
    service: str
    index: int
    type: str
    windows: list[Window] = field(default_factory=list)
    recurring: bool = False
    notice: bool = False


@dataclass(slots=True)
class Event:
    start: datetime
    end: datetime
    state: State | None
    """``None`` for a gap (no span: UNKNOWN)."""
    reason: str | None


@dataclass(slots=True)
class GenStats:
    spans: int = 0
    machines: int = 0
    rollups: int = 0
    outages: int = 0
    degraded: int = 0
    gaps: int = 0
    observed_maintenance: int = 0
    forced_outages: int = 0
    pending_tails: int = 0
    down_seconds: float = 0.0
    mass_failure_seconds: float = 0.0
    segments: int = 0
    """Elementary segments of the month over all provider checks' spans, per vantage
    (summed): what ``mass_failure_spans`` evaluates, each over every check."""
    monitor_fault_seconds: float = 0.0
    latency_ok: int = 0
    latency_under: int = 0
    seconds: dict[str, float] = field(default_factory=dict)


def poisson(rng: random.Random, mean: float) -> int:
    limit, k, p = math.exp(-mean), 0, 1.0
    while True:
        p *= rng.random()
        if p <= limit:
            return k
        k += 1


def weighted(rng: random.Random, table: Sequence[tuple[T, int]]) -> T:
    return rng.choices([v for v, _ in table], weights=[w for _, w in table])[0]


def plan_services(n_checks: int, month: Period, seed: int) -> list[ServicePlan]:
    """The services of the fleet layout, with their maintenance windows."""
    tz = ZoneInfo(TZ)
    n_services = math.ceil(n_checks / CHECKS_PER_SERVICE)
    days = (month.end - month.start).days
    plans: list[ServicePlan] = []
    for si in range(n_services):
        provider_no, service_no = divmod(si, SERVICES_PER_PROVIDER)
        plan = ServicePlan(
            provider=f"flota-{provider_no + 1:04d}",
            service=f"servicio-{service_no + 1:02d}",
            index=si,
            type=SERVICE_TYPES[si % len(SERVICE_TYPES)],
        )
        rng = random.Random(f"{seed}:service:{si}")
        local_start = month.start.astimezone(tz)
        if si % 10 == 3 or si % 50 == 11:
            # A one-off night window (01:00-04:59 local, 1-3 h); the provider's outage
            # starts a minute into it and sometimes overruns it.
            day = local_start + timedelta(days=rng.randint(1, days - 3))
            start = day.replace(hour=rng.randint(1, 4), minute=rng.choice((0, 15, 30, 45)))
            start = start.astimezone(UTC)
            end = start + timedelta(hours=rng.randint(1, 3))
            allowed = si % 50 != 11
            overrun = timedelta(seconds=rng.choice((0, 0, 300, 900)))
            plan.notice = not allowed or si % 20 == 3
            plan.windows.append(
                Window(
                    start,
                    end,
                    "actualización programada" if allowed else "anuncio tardío",
                    allowed,
                    forced_down=(start + timedelta(minutes=1), end + overrun),
                )
            )
        if si % 25 == 7:
            plan.recurring = True
            plan.windows.extend(weekly_windows(month, tz))
        plans.append(plan)
    return plans


def weekly_windows(month: Period, tz: ZoneInfo) -> list[Window]:
    """Sundays 03:00 local for 1 h (the catalog's cron ``0 3 * * sun``), computed by hand."""
    out: list[Window] = []
    day: date = month.start.astimezone(tz).date()
    while True:
        local = datetime(day.year, day.month, day.day, 3, 0, tzinfo=tz)
        start = local.astimezone(UTC)
        if start >= month.end:
            return out
        if day.weekday() == 6:
            out.append(
                Window(start, start + timedelta(hours=1), "ventana semanal", True, recurring=True)
            )
        day += timedelta(days=1)


def write_catalog(path: Path, plans: Sequence[ServicePlan], n_checks: int) -> None:
    providers: dict[str, list[dict[str, Any]]] = {}
    remaining = n_checks
    for plan in plans:
        n = min(CHECKS_PER_SERVICE, remaining)
        remaining -= n
        checks = []
        for ci in range(n):
            check: dict[str, Any] = {
                "id": f"check-{ci + 1:02d}",
                "kind": "http",
                "url": f"http://127.0.0.1:9/{plan.provider}/{plan.service}/check-{ci + 1:02d}",
            }
            if ci == CHECKS_PER_SERVICE - 1:
                check["critical"] = False
            checks.append(check)
        service: dict[str, Any] = {"id": plan.service, "type": plan.type, "checks": checks}
        maintenance: list[dict[str, Any]] = []
        for w in plan.windows:
            if w.recurring:
                continue
            lead = timedelta(days=7) if w.allowed else timedelta(hours=2)
            maintenance.append(
                {
                    "start": w.start.isoformat(),
                    "end": w.end.isoformat(),
                    "reason": w.reason,
                    "announced_at": (w.start - lead).isoformat(),
                }
            )
        if plan.recurring:
            # "sun", not "0": APScheduler 3 (which expands the catalog's cron) numbers
            # the days of the week from Monday = 0, unlike crontab (Sunday = 0).
            maintenance.append(
                {"cron": "0 3 * * sun", "duration": "1h", "reason": "ventana semanal"}
            )
        if maintenance:
            service["maintenance"] = maintenance
        if plan.notice:
            service["maintenance_notice"] = "48h"
        providers.setdefault(plan.provider, []).append(service)
    catalog = {
        "version": f"bench-sla-month-{n_checks}",
        "timezone": TZ,
        "defaults": {"interval": f"{INTERVAL}s", "timeout": "10s"},
        "monitor": {
            "canaries": [{"id": "gateway", "kind": "http", "url": "http://127.0.0.1:9/canary"}]
        },
        "providers": [
            {"id": p, "name": f"Prestador {p}", "services": services}
            for p, services in providers.items()
        ],
    }
    dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
    path.write_text(
        yaml.dump(catalog, Dumper=dumper, sort_keys=False, allow_unicode=True), encoding="utf-8"
    )


def place(
    rng: random.Random,
    events: list[Event],
    month: Period,
    duration: timedelta,
    state: State | None,
    reason: str | None,
) -> bool:
    """Add an event at a random start that keeps 2 min of UP from every other one."""
    margin = timedelta(minutes=2)
    lo = month.start + timedelta(minutes=10)
    hi = month.end - timedelta(minutes=30) - duration
    span = int((hi - lo).total_seconds())
    for _ in range(50):
        start = lo + timedelta(seconds=rng.randrange(span))
        end = start + duration
        if all(end + margin <= e.start or start >= e.end + margin for e in events):
            events.append(Event(start, end, state, reason))
            return True
    return False


def provider_events(
    rng: random.Random, plan: ServicePlan, month: Period, canary: bool, stats: GenStats
) -> list[Event]:
    """What happens to the target, seen alike from every vantage."""
    events: list[Event] = []
    if canary:
        place(rng, events, month, timedelta(minutes=5), State.DOWN, ErrorKind.CONNECT.value)
        return events
    for w in plan.windows:
        if w.forced_down is not None:
            events.append(Event(*w.forced_down, State.DOWN, ErrorKind.STATUS.value))
            stats.forced_outages += 1
    for _ in range(poisson(rng, 3.0)):
        duration = timedelta(seconds=rng.randint(60, 3600))
        error = weighted(rng, OUTAGE_ERRORS).value
        stats.outages += place(rng, events, month, duration, State.DOWN, error)
    for _ in range(poisson(rng, 2.0)):
        duration = timedelta(seconds=rng.randint(60, 1800))
        stats.degraded += place(rng, events, month, duration, State.DEGRADED, "slow")
    if plan.type == "interoperabilidad":
        for _ in range(poisson(rng, 1.0)):
            duration = timedelta(seconds=rng.randint(300, 1800))
            stats.observed_maintenance += place(
                rng, events, month, duration, State.MAINTENANCE, "maintenance"
            )
    return events


def with_gaps(
    rng: random.Random, shared: Sequence[Event], month: Period, canary: bool, stats: GenStats
) -> list[Event]:
    """One vantage's view: the shared events plus its own gaps (no data: UNKNOWN)."""
    events = list(shared)
    for _ in range(1 if canary else poisson(rng, 2.0)):
        duration = timedelta(seconds=rng.randint(90, 900))
        stats.gaps += place(rng, events, month, duration, None, None)
    return sorted(events, key=lambda e: e.start)


def machine_snapshot(
    check_id: str,
    policy_source: Any,
    last_start: datetime,
    month: Period,
    rng: random.Random,
    vantage: str,
    stats: GenStats,
) -> dict[str, Any]:
    """A real machine, seeded at the month's end of a long UP stretch, fed 2 results."""
    t0 = month.end - timedelta(seconds=65 + rng.randrange(INTERVAL))
    seed = MachineSnapshot(
        current=Span(last_start, t0, State.UP) if last_start < t0 else None,
        tail=(Observation(at=t0, verdict=Verdict.OK, state=State.UP),),
        last_observation_at=t0,
        last_state=State.UP,
    )
    machine = CheckStateMachine(policy_source, seed)
    pending = rng.random() < 0.02
    stats.pending_tails += pending
    for k in (1, 2):
        failing = pending and k == 2
        outcome = (
            Outcome(ok=False, error_kind=ErrorKind.TIMEOUT, message="timed out")
            if failing
            else Outcome(ok=True, status_code=200)
        )
        done = machine.feed(
            ProbeResult(
                check_id=check_id,
                kind="http",
                vantage=vantage,
                started_at=t0 + timedelta(seconds=INTERVAL * k),
                duration=10.0 if failing else 0.2,
                outcome=outcome,
            )
        )
        assert not done, "the seeded UP stretch must stay open"
    return machine.snapshot().to_json()


FAST_BUCKETS = range(18, 40)
"""Buckets a fast probe may land in (base ± its spread): 19.8 ms .. 1.44 s."""
SLOW_BUCKETS = (43, 44)
"""Where slow (DEGRADED) probes land: 3.04 s and 3.66 s, above the 2 s threshold."""
assert BOUNDS_SECONDS[FAST_BUCKETS[-1]] <= LATENCY_THRESHOLD < BOUNDS_SECONDS[SLOW_BUCKETS[0] - 1]


def histogram(rng: random.Random, base: int, fast: int, slow: int) -> list[int]:
    counts = [0] * N_BUCKETS
    b = base + rng.choice((-1, 0, 0, 0, 1))
    c1, c2, c3 = fast * 15 // 100, fast * 25 // 100, fast * 10 // 100
    counts[b - 1] += c1
    counts[b + 1] += c2
    counts[b + 2] += c3
    counts[b] += fast - c1 - c2 - c3
    if slow:
        s1 = slow // 2
        counts[43] += s1
        counts[44] += slow - s1
    return counts


def rollup_rows(
    check_id: str,
    vantage: str,
    spans: Sequence[Span],
    month: Period,
    rng: random.Random,
    base: int,
    max_hours: int,
    stats: GenStats,
) -> Iterator[dict[str, Any]]:
    """Hourly rollups: ok probes in UP and DEGRADED time, slow ones in DEGRADED time."""
    hour = month.start
    i = 0
    n = 0
    while hour < month.end and n < max_hours:
        nxt = hour + timedelta(hours=1)
        up = slow = 0.0
        while i < len(spans) and spans[i].end <= hour:
            i += 1
        j = i
        while j < len(spans) and spans[j].start < nxt:
            s = spans[j]
            overlap = (min(s.end, nxt) - max(s.start, hour)).total_seconds()
            if s.state is State.UP:
                up += overlap
            elif s.state is State.DEGRADED:
                slow += overlap
            j += 1
        n_slow = round(PROBES_PER_HOUR * slow / 3600)
        ok = round(PROBES_PER_HOUR * (up + slow) / 3600)
        n_slow = min(n_slow, ok)
        if ok:
            stats.latency_ok += ok
            stats.latency_under += ok - n_slow
            yield {
                "check_id": check_id,
                "vantage": vantage,
                "hour": hour,
                "ok_count": ok,
                "under_threshold_count": ok - n_slow,
                "histogram": histogram(rng, base, ok - n_slow, n_slow),
            }
        hour = nxt
        n += 1


@dataclass(slots=True)
class Expected:
    """Per service, the charged downtime in µs; totals of the latency rollups."""

    charged_us: dict[str, int]
    latency_ok: int
    latency_under: int
    services: int
    providers: int
    rejected_windows: int


class BulkWriter:
    """Batches rows per table; commits every ``COMMIT_EVERY`` rows."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._pending: dict[str, list[dict[str, Any]]] = {}
        self._tables = {
            t.name: t for t in (check_spans, check_machines, latency_hourly, latency_daily)
        }
        self._conn = store.engine.connect()
        self._tx = self._conn.begin()
        self._since_commit = 0
        self.rows: dict[str, int] = dict.fromkeys(self._tables, 0)

    def add(self, table: str, row: dict[str, Any]) -> None:
        rows = self._pending.setdefault(table, [])
        rows.append(row)
        if len(rows) >= BATCH:
            self._flush(table)

    def _flush(self, table: str) -> None:
        rows = self._pending.pop(table, [])
        if not rows:
            return
        self._conn.execute(insert(self._tables[table]), rows)
        self.rows[table] += len(rows)
        self._since_commit += len(rows)
        if self._since_commit >= COMMIT_EVERY:
            self._tx.commit()
            self._tx = self._conn.begin()
            self._since_commit = 0

    def close(self) -> None:
        for table in list(self._pending):
            self._flush(table)
        self._tx.commit()
        self._conn.close()


def generate(
    store: Store,
    catalog_path: Path,
    n_checks: int,
    month: Period,
    vantages: Sequence[str],
    rollup_hours: int,
    seed: int,
) -> tuple[GenStats, Expected]:
    """Write the catalog and the month's history; return what the report must find."""
    stats = GenStats()
    t0 = time.perf_counter()
    plans = plan_services(n_checks, month, seed)
    write_catalog(catalog_path, plans, n_checks)
    catalog = load_catalog(catalog_path)
    stats.seconds["catalog"] = time.perf_counter() - t0
    by_id = {c.id: c for c in catalog.resolved_checks()}
    plan_of = {(p.provider, p.service): p for p in plans}

    t0 = time.perf_counter()
    writer = BulkWriter(store)
    down: dict[tuple[str, str], list[Interval]] = {}  # (service key, vantage) → DOWN
    faults: dict[str, list[Interval]] = {}  # vantage → canary faults
    # (vantage, provider) → where any of its checks is DOWN / has data: for mass failure.
    provider_down: dict[tuple[str, str], list[Interval]] = {}
    provider_data: dict[tuple[str, str], list[Interval]] = {}
    boundaries: dict[str, set[datetime]] = {}  # vantage → every span boundary
    for check in catalog.resolved_checks():
        plan = plan_of.get((check.provider, check.service), plans[0])
        policy = derive_policy(catalog, check)
        shared = provider_events(
            random.Random(f"{seed}:{check.id}"), plan, month, check.canary, stats
        )
        for vantage in vantages:
            rng = random.Random(f"{seed}:{check.id}:{vantage}")
            events = with_gaps(rng, shared, month, check.canary, stats)
            spans: list[Span] = []
            cursor = month.start
            for e in events:
                if e.start > cursor:
                    spans.append(Span(cursor, e.start, State.UP))
                if e.state is not None:
                    spans.append(Span(e.start, e.end, e.state, e.reason))
                    if e.state is State.DOWN:
                        stats.down_seconds += (e.end - e.start).total_seconds()
                        if check.canary:
                            faults.setdefault(vantage, []).append((e.start, e.end))
                        else:
                            pkey = (vantage, check.provider)
                            provider_down.setdefault(pkey, []).append((e.start, e.end))
                        if check.critical and not check.canary:
                            key = (f"{check.provider}/{check.service}", vantage)
                            down.setdefault(key, []).append((e.start, e.end))
                elif check.canary:
                    faults.setdefault(vantage, []).append((e.start, e.end))
                cursor = e.end
            for s in spans:
                writer.add(
                    check_spans.name,
                    {
                        "check_id": check.id,
                        "vantage": vantage,
                        "state": s.state.value,
                        "reason": s.reason,
                        "start": s.start,
                        "end": s.end,
                    },
                )
            snapshot = machine_snapshot(check.id, policy, cursor, month, rng, vantage, stats)
            writer.add(
                check_machines.name,
                {
                    "check_id": check.id,
                    "vantage": vantage,
                    "snapshot": snapshot,
                    "updated_at": month.end,
                },
            )
            if check.canary:
                continue
            full = [*spans, Span(cursor, month.end, State.UP)]
            provider_data.setdefault((vantage, check.provider), []).extend(
                (s.start, s.end) for s in full
            )
            cuts = boundaries.setdefault(vantage, set())
            cuts.update(t for s in full for t in (s.start, s.end))
            base = 20 + rng.randrange(17)  # typical latency 42 ms .. 823 ms
            days: dict[datetime, dict[str, Any]] = {}
            for row in rollup_rows(check.id, vantage, full, month, rng, base, rollup_hours, stats):
                writer.add(latency_hourly.name, row)
                # As the tracker does: every hour also summed into its UTC day.
                day = row["hour"].astimezone(UTC).replace(hour=0)
                acc = days.get(day)
                if acc is None:
                    days[day] = {**row, "day": day, "histogram": list(row["histogram"])}
                    del days[day]["hour"]
                    continue
                acc["ok_count"] += row["ok_count"]
                acc["under_threshold_count"] += row["under_threshold_count"]
                acc["histogram"] = list(map(add, acc["histogram"], row["histogram"]))
            for daily_row in days.values():
                writer.add(latency_daily.name, daily_row)
    writer.close()
    stats.spans = writer.rows[check_spans.name]
    stats.machines = writer.rows[check_machines.name]
    stats.rollups = writer.rows[latency_hourly.name]
    stats.seconds["write"] = time.perf_counter() - t0

    settings = catalog.monitor.mass_failure
    t0 = time.perf_counter()
    for vantage in vantages:
        mass = mass_failure(
            [union(v) for (vv, _), v in provider_data.items() if vv == vantage],
            [union(v) for (vv, _), v in provider_down.items() if vv == vantage],
            settings.min_providers,
            settings.min_ratio,
        )
        stats.mass_failure_seconds += measure(mass).total_seconds()
        faults[vantage] = union([*faults.get(vantage, []), *mass])
    stats.segments = sum(len(b) - 1 for b in boundaries.values())
    stats.monitor_fault_seconds = sum(measure(f).total_seconds() for f in faults.values())
    # The same mass-failure rule as the reporter's, as a sweep over per-provider unions.
    stats.seconds["cross_check_mass_failure"] = time.perf_counter() - t0

    charged: dict[str, int] = {}
    for plan in plans:
        service_id = f"{plan.provider}/{plan.service}"
        effective: list[Interval] = []
        for vantage in vantages:
            own = down.get((service_id, vantage), [])
            effective += subtract(own, faults.get(vantage, []))
        allowed = [(w.start, w.end) for w in plan.windows if w.allowed]
        clipped = [
            (max(s, month.start), min(e, month.end))
            for s, e in subtract(effective, allowed)
            if s < month.end and e > month.start
        ]
        charged[service_id] = measure(clipped) // timedelta(microseconds=1)
    expected = Expected(
        charged_us=charged,
        latency_ok=stats.latency_ok,
        latency_under=stats.latency_under,
        services=len(plans),
        providers=len({p.provider for p in plans}),
        rejected_windows=sum(1 for p in plans for w in p.windows if not w.allowed),
    )
    assert len(by_id) == n_checks + 1
    return stats, expected


# -- databases ----------------------------------------------------------------------------


@contextmanager
def database(kind: str, workdir: Path, *, keep_schema: str | None = None) -> Iterator[str]:
    """The store's URL: a file in ``workdir``, or a private PostgreSQL schema, dropped
    afterwards unless it is ``keep_schema`` (``--data``: kept for later runs)."""
    if kind == "sqlite":
        yield f"sqlite:///{workdir}/store.db"
        return
    schema = keep_schema or f"bench_sla_{uuid.uuid4().hex[:10]}"
    engine = create_engine(PG_URL)
    with engine.begin() as conn:
        conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield pg_url(schema)
    finally:
        if keep_schema is None:
            with engine.begin() as conn:
                conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        engine.dispose()


def pg_url(schema: str) -> str:
    return f"{PG_URL}?options=-csearch_path%3D{schema}"


def pg_schema_exists(schema: str) -> bool:
    engine = create_engine(PG_URL)
    try:
        with engine.connect() as conn:
            found = conn.execute(
                text("SELECT 1 FROM information_schema.schemata WHERE schema_name = :s"),
                {"s": schema},
            ).first()
        return found is not None
    finally:
        engine.dispose()


TABLES = ("scd_check_spans", "scd_check_machines", "scd_latency_hourly", "scd_latency_daily")


def settle_and_size(store: Store, kind: str, workdir: Path) -> dict[str, Any]:
    """Checkpoint (SQLite) or VACUUM ANALYZE (PostgreSQL), then the data's size."""
    out: dict[str, Any] = {}
    t0 = time.perf_counter()
    if kind == "sqlite":
        with store.engine.connect() as conn:
            conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        out["file_bytes"] = (workdir / "store.db").stat().st_size
        wal = workdir / "store.db-wal"
        out["wal_bytes"] = wal.stat().st_size if wal.exists() else 0
    else:
        with store.engine.connect() as conn:
            conn = conn.execution_options(isolation_level="AUTOCOMMIT")
            for table in TABLES:
                conn.exec_driver_sql(f"VACUUM (ANALYZE) {table}")
            out["tables"] = {
                table: {
                    "total_bytes": conn.exec_driver_sql(
                        f"SELECT pg_total_relation_size('{table}')"
                    ).scalar(),
                    "heap_bytes": conn.exec_driver_sql(
                        f"SELECT pg_relation_size('{table}')"
                    ).scalar(),
                }
                for table in TABLES
            }
            out["total_bytes"] = sum(t["total_bytes"] for t in out["tables"].values())
    out["settle_seconds"] = time.perf_counter() - t0
    return out


# -- the measured report (child process) --------------------------------------------------


def timed(acc: dict[str, float], name: str, fn: Callable[..., T]) -> Callable[..., T]:
    def wrapper(*args: Any, **kwargs: Any) -> T:
        t0 = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            acc[name] = acc.get(name, 0.0) + time.perf_counter() - t0

    return wrapper


def rss_marks() -> dict[str, int]:
    """Peak RSS so far, KiB: ``ru_maxrss`` and ``VmHWM``.

    ``ru_maxrss`` is the process maximum, but Linux carries it over ``execve`` from the
    forked parent (here: the generator, ~140 MiB), so a small child's figure is the
    parent's. ``VmHWM`` belongs to the exec'd image only: that is the report's peak.
    """
    out = {"ru_maxrss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            out["vm_hwm"] = int(line.split()[1])
    return out


def child(spec: dict[str, Any]) -> dict[str, Any]:
    """One month report, measured; runs in its own process."""
    rss_start = rss_marks()
    t0 = time.perf_counter()
    catalog = load_catalog(spec["catalog"])
    catalog_seconds = time.perf_counter() - t0
    year, month_no = parse_month(spec["month"])
    period = month_period(year, month_no, catalog.tz)
    now = datetime.fromisoformat(spec["now"])
    clock: Clock = FixedClock(now)
    store = Store(spec["url"])
    reporter = SlaReporter(store, catalog, clock)
    phases: dict[str, float] = {}
    for name in ("_timelines", "_monitor_faults", "_latency"):
        setattr(reporter, name, timed(phases, name, getattr(reporter, name)))
    rss_before = rss_marks()
    profiler = cProfile.Profile() if spec.get("profile") else None
    wall0, cpu0 = time.perf_counter(), time.process_time()
    if profiler is not None:
        profiler.enable()
    report = reporter.report(period, now=now)
    if profiler is not None:
        profiler.disable()
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    rss_after = rss_marks()
    t0 = time.perf_counter()
    body = json.dumps(report.to_json(), ensure_ascii=False)
    json_seconds = time.perf_counter() - t0
    store.dispose()
    phases["rest"] = wall - sum(phases.values())
    out: dict[str, Any] = {
        "wall_seconds": wall,
        "cpu_seconds": cpu,
        "phases_seconds": phases,
        "catalog_load_seconds": catalog_seconds,
        "to_json_seconds": json_seconds,
        "report_json_bytes": len(body.encode()),
        "rss_kib": {"start": rss_start, "before_report": rss_before, "after": rss_after},
        "services": len(report.services),
        "providers": len(report.providers),
        "charged_us": {
            f"{s.provider}/{s.service}": s.figures.charged_downtime // timedelta(microseconds=1)
            for s in report.services
        },
        "latency_ok": sum(s.figures.latency_samples for s in report.services),
        "rejected_windows": sum(len(s.rejected_windows) for s in report.services),
        "outages_total": sum(s.figures.outages_total for s in report.services),
        "outages_charged": sum(s.figures.outage_count for s in report.services),
        "excluded_maintenance_seconds": sum(
            s.figures.excluded_maintenance.total_seconds() for s in report.services
        ),
        "unknown_seconds": sum(s.figures.unknown.total_seconds() for s in report.services),
        "availability_min": min(
            (s.figures.availability for s in report.services if s.figures.availability),
            default=None,
        ),
        "services_met": sum(1 for s in report.services if s.figures.met),
        "latency_compliance_min": min(
            (
                s.figures.latency_compliance
                for s in report.services
                if s.figures.latency_compliance is not None
            ),
            default=None,
        ),
    }
    if profiler is not None:
        text_out = io.StringIO()
        stats = pstats.Stats(profiler, stream=text_out)
        stats.sort_stats("tottime").print_stats(25)
        stats.sort_stats("cumulative").print_stats(30)
        Path(spec["profile"]).write_text(text_out.getvalue(), encoding="utf-8")
    return out


def run_child(spec: dict[str, Any]) -> dict[str, Any]:
    proc = subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), "--child", json.dumps(spec)],
        capture_output=True,
        text=True,
        timeout=CHILD_TIMEOUT,
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"report child failed ({proc.returncode}):\n{proc.stderr[-4000:]}")
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def cross_check(expected: Expected, got: dict[str, Any]) -> dict[str, Any]:
    mismatches = [
        {"service": k, "expected_s": v / 1e6, "report_s": got["charged_us"].get(k, 0) / 1e6}
        for k, v in expected.charged_us.items()
        if got["charged_us"].get(k) != v
    ]
    return {
        "ok": not mismatches
        and got["latency_ok"] == expected.latency_ok
        and got["services"] == expected.services
        and got["providers"] == expected.providers
        and got["rejected_windows"] == expected.rejected_windows,
        "charged_expected_seconds": sum(expected.charged_us.values()) / 1e6,
        "charged_report_seconds": sum(got["charged_us"].values()) / 1e6,
        "services_mismatched": len(mismatches),
        "first_mismatches": mismatches[:5],
        "latency_ok_expected": expected.latency_ok,
        "latency_ok_report": got["latency_ok"],
        "services": [expected.services, got["services"]],
        "providers": [expected.providers, got["providers"]],
        "rejected_windows": [expected.rejected_windows, got["rejected_windows"]],
    }


# -- driver -------------------------------------------------------------------------------


@dataclass(slots=True)
class Prepared:
    """One database loaded with one size's history, ready to be reported on."""

    kind: str
    spec: dict[str, Any]
    gen: GenStats
    expected: Expected
    rows: dict[str, int]
    size: dict[str, Any]
    runs: list[dict[str, Any]] = field(default_factory=list)


def prepare(args: argparse.Namespace, kind: str, n_checks: int, stack: ExitStack) -> Prepared:
    year, month_no = parse_month(args.month)
    month = month_period(year, month_no, ZoneInfo(TZ))
    now = month.end + timedelta(minutes=1)
    vantages = [f"vantage-{i + 1}" for i in range(args.vantages)]
    hours = int((month.end - month.start).total_seconds() // 3600)
    rollup_hours = hours if args.rollup_hours is None else min(args.rollup_hours, hours)
    keep_schema: str | None = None
    if args.data is not None:
        # A kept data set: reused when a previous run with the same parameters saved it.
        key = f"{kind}-{n_checks}-{args.month}-v{args.vantages}-h{rollup_hours}-s{args.seed}-d"
        workdir = (args.data / key).resolve()
        keep_schema = "bench_sla_keep_" + key.replace("-", "_").lower()
        saved = load_prepared(workdir / "prepared.json", kind, keep_schema)
        if saved is not None:
            print(f"[{kind} N={n_checks}] reusing {workdir}", file=sys.stderr, flush=True)
            return saved
        shutil.rmtree(workdir, ignore_errors=True)
        workdir.mkdir(parents=True)
    else:
        workdir = Path(tempfile.mkdtemp(prefix="bench-sla-"))
        if not args.keep:
            stack.callback(shutil.rmtree, workdir, ignore_errors=True)
    print(f"[{kind} N={n_checks}] generating (workdir {workdir}) …", file=sys.stderr, flush=True)
    url = stack.enter_context(database(kind, workdir, keep_schema=keep_schema))
    store = Store(url)
    store.create_schema()
    catalog_path = workdir / "catalog.yaml"
    gen, expected = generate(
        store, catalog_path, n_checks, month, vantages, rollup_hours, args.seed
    )
    size = settle_and_size(store, kind, workdir)
    store.dispose()
    rows = {
        "scd_check_spans": gen.spans,
        "scd_check_machines": gen.machines,
        "scd_latency_hourly": gen.rollups,
    }
    print(
        f"[{kind} N={n_checks}] wrote {rows} in {gen.seconds['write']:.1f}s",
        file=sys.stderr,
        flush=True,
    )
    spec = {
        "url": url,
        "catalog": str(catalog_path),
        "month": args.month,
        "now": now.isoformat(),
        "vantages": len(vantages),
        "rollup_hours": rollup_hours,
    }
    prepared = Prepared(kind, spec, gen, expected, rows, size)
    if args.data is not None:
        save_prepared(workdir / "prepared.json", prepared)
    return prepared


def save_prepared(path: Path, p: Prepared) -> None:
    """What a later ``--data`` run needs to reuse the data set without generating it."""
    body = {
        "kind": p.kind,
        "spec": p.spec,
        "gen": asdict(p.gen),
        "expected": asdict(p.expected),
        "rows": p.rows,
        "size": p.size,
    }
    path.write_text(json.dumps(body, indent=1) + "\n", encoding="utf-8")


def load_prepared(path: Path, kind: str, schema: str) -> Prepared | None:
    """The saved data set at ``path``, or ``None`` (not there, or its schema is gone)."""
    if not path.is_file():
        return None
    body = json.loads(path.read_text(encoding="utf-8"))
    if kind == "postgresql" and not pg_schema_exists(schema):
        return None
    if kind == "sqlite" and not (path.parent / "store.db").is_file():
        return None
    return Prepared(
        body["kind"],
        body["spec"],
        GenStats(**body["gen"]),
        Expected(**body["expected"]),
        body["rows"],
        body["size"],
    )


def bench_size(args: argparse.Namespace, n_checks: int, out: Path) -> list[dict[str, Any]]:
    """Load every database, then run the reports interleaved (db1, db2, db1, db2 …).

    Interleaving spreads the machine's background load over the databases alike.
    """
    with ExitStack() as stack:
        prepared = [prepare(args, kind, n_checks, stack) for kind in args.db]
        for i in range(args.repeat):
            for p in prepared:
                load = os.getloadavg()[0]
                r = run_child(p.spec)
                r["loadavg_1m_before"] = load
                p.runs.append(r)
                print(
                    f"[{p.kind} N={n_checks}] run {i + 1}: wall {r['wall_seconds']:.2f}s "
                    f"cpu {r['cpu_seconds']:.2f}s phases "
                    + " ".join(f"{k}={v:.2f}" for k, v in r["phases_seconds"].items())
                    + f" peak RSS {r['rss_kib']['after']['vm_hwm'] / 1024:.0f} MiB"
                    + f" (load {load:.2f})",
                    file=sys.stderr,
                    flush=True,
                )
        profiles: dict[str, str] = {}
        if args.profile:
            for p in prepared:
                path = out.with_name(f"{out.stem}-profile-{p.kind}-{n_checks}.txt")
                run_child({**p.spec, "profile": str(path)})
                profiles[p.kind] = str(path)
    return [summarize(p, n_checks, profiles.get(p.kind)) for p in prepared]


def summarize(p: Prepared, n_checks: int, profile: str | None) -> dict[str, Any]:
    runs, gen = p.runs, p.gen
    check = cross_check(p.expected, runs[0])
    consistent = all(r["charged_us"] == runs[0]["charged_us"] for r in runs)

    def med(get: Callable[[dict[str, Any]], float]) -> float:
        return statistics.median(get(r) for r in runs)

    summary = {
        "db": p.kind,
        "checks": n_checks,
        "vantages": p.spec["vantages"],
        "rollup_hours_per_check": p.spec["rollup_hours"],
        "rows": p.rows,
        "size": p.size,
        "generate": {
            "seconds": gen.seconds,
            "rows_per_second": sum(p.rows.values()) / gen.seconds["write"],
            "outages": gen.outages,
            "forced_outages": gen.forced_outages,
            "degraded": gen.degraded,
            "gaps": gen.gaps,
            "observed_maintenance": gen.observed_maintenance,
            "pending_tails": gen.pending_tails,
            "down_seconds": gen.down_seconds,
            "mass_failure_seconds": gen.mass_failure_seconds,
            "segments": gen.segments,
            "segment_check_cells": gen.segments * n_checks,
            "monitor_fault_seconds": gen.monitor_fault_seconds,
        },
        "median": {
            "wall_seconds": med(lambda r: r["wall_seconds"]),
            "cpu_seconds": med(lambda r: r["cpu_seconds"]),
            "phases_seconds": {
                k: statistics.median(r["phases_seconds"][k] for r in runs)
                for k in runs[0]["phases_seconds"]
            },
            "peak_rss_mib": med(lambda r: r["rss_kib"]["after"]["vm_hwm"] / 1024),
            "peak_rss_before_report_mib": med(
                lambda r: r["rss_kib"]["before_report"]["vm_hwm"] / 1024
            ),
            "ru_maxrss_mib": med(lambda r: r["rss_kib"]["after"]["ru_maxrss"] / 1024),
            "catalog_load_seconds": med(lambda r: r["catalog_load_seconds"]),
            "to_json_seconds": med(lambda r: r["to_json_seconds"]),
        },
        "runs": [{k: v for k, v in r.items() if k != "charged_us"} for r in runs],
        "cross_check": check,
        "runs_agree": consistent,
        "profile": profile,
    }
    status = "OK" if check["ok"] and consistent else "MISMATCH"
    print(
        f"[{p.kind} N={n_checks}] cross-check {status}: charged "
        f"{check['charged_report_seconds']:.0f}s vs generated "
        f"{check['charged_expected_seconds']:.0f}s",
        file=sys.stderr,
        flush=True,
    )
    return summary


def machine_info() -> dict[str, Any]:
    info: dict[str, Any] = {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
    }
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                info["cpu"] = line.split(":", 1)[1].strip()
                break
        mem = Path("/proc/meminfo").read_text().splitlines()[0].split()[1]
        info["mem_gib"] = round(int(mem) / 1024 / 1024, 1)
    except OSError:
        pass
    try:
        import sqlalchemy

        info["sqlalchemy"] = sqlalchemy.__version__
        info["sqlite"] = __import__("sqlite3").sqlite_version
    except ImportError:
        pass
    return info


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("--checks", type=int, nargs="+", default=[5000], help="catalog sizes")
    p.add_argument("--month", default="2026-10", help="YYYY-MM (America/Bogota)")
    p.add_argument(
        "--db", nargs="+", choices=("sqlite", "postgresql"), default=["sqlite", "postgresql"]
    )
    p.add_argument("--repeat", type=int, default=3, help="report runs per database and size")
    p.add_argument("--vantages", type=int, default=1)
    p.add_argument(
        "--rollup-hours",
        type=int,
        default=None,
        help="latency rollup hours per check (default: every hour of the month; 0: none)",
    )
    p.add_argument("--seed", type=int, default=20261001)
    p.add_argument("--profile", action="store_true", help="one more run under cProfile")
    p.add_argument("--keep", action="store_true", help="keep the SQLite file and catalog")
    p.add_argument(
        "--data",
        type=Path,
        help="keep the generated data sets here (SQLite file, catalog, expected figures; "
        "PostgreSQL schema bench_sla_keep_*) and reuse them on later runs with the same "
        "--checks/--month/--vantages/--rollup-hours/--seed",
    )
    p.add_argument("--out", type=Path, help="JSON results (default: bench/results/…)")
    p.add_argument("--child", help=argparse.SUPPRESS)
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.child:
        print(json.dumps(child(json.loads(args.child))))
        return 0
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    out = (args.out or RESULTS / f"bench-sla-month-{stamp}.json").resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    results: list[dict[str, Any]] = []
    report: dict[str, Any] = {
        "benchmark": "sla-month",
        "started": stamp,
        "argv": sys.argv[1:],
        "machine": machine_info(),
        "results": results,
    }
    for n in args.checks:
        results.extend(bench_size(args, n, out))
        out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    ratios = []
    for n in args.checks:
        by_db = {r["db"]: r for r in results if r["checks"] == n}
        if {"sqlite", "postgresql"} <= set(by_db):
            s, pg = by_db["sqlite"]["median"], by_db["postgresql"]["median"]
            ratios.append(
                {
                    "checks": n,
                    "wall_pg_over_sqlite": pg["wall_seconds"] / s["wall_seconds"],
                    "cpu_pg_over_sqlite": pg["cpu_seconds"] / s["cpu_seconds"],
                    "phases_pg_over_sqlite": {
                        k: pg["phases_seconds"][k] / s["phases_seconds"][k]
                        for k in s["phases_seconds"]
                        if s["phases_seconds"][k] > 0
                    },
                }
            )
    report["ratios"] = ratios
    out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(f"results: {out}", file=sys.stderr)
    for r in results:
        m = r["median"]
        print(
            f"{r['db']:>10} N={r['checks']:>5}: wall {m['wall_seconds']:.2f}s "
            f"cpu {m['cpu_seconds']:.2f}s peak RSS {m['peak_rss_mib']:.0f} MiB "
            f"cross-check {'OK' if r['cross_check']['ok'] and r['runs_agree'] else 'MISMATCH'}"
        )
    return 0 if all(r["cross_check"]["ok"] and r["runs_agree"] for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
