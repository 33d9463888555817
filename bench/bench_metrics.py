#!/usr/bin/env python3
"""``/metrics`` rendering benchmark: the per-check series at N checks, old way vs new way.

Builds a synthetic world in memory (no daemon, no database): a catalog of N checks (10
per service, 10 services per provider, one canary; a few services with maintenance), a
latest result for every check (phases, status codes, certificate expiry; 5 % failing),
counters, check states from the tracker, and a month-to-date SLA report for every
service. Then times one scrape's rendering:

* **old**: prometheus_client's ``generate_latest`` over the collectors as they were before
  issue 14 (``tests/web/legacy_metrics.py``, a verbatim copy), object by object;
* **new**: :meth:`DaemonMetrics.render` with the pre-rendered per-check blocks, in three
  situations: *cold* (first scrape: every block rendered), *warm* (nothing changed since
  the previous scrape) and *churn* (a share of the checks, ``--churn``, got a new result
  since the previous scrape and a few changed state: a 15 s scrape of 30 s checks sees
  half of them new).

Wall (``perf_counter``) and CPU (``process_time``) time of the render, size of the text,
and the same for the gzipped body as served to Prometheus (``Accept-Encoding: gzip``).
Median of ``--repeat`` runs. Keep it short on a shared machine: defaults N = 5,000 and
20,000, 3 repeats, about a minute in all.

    .venv/bin/python bench/bench_metrics.py
    .venv/bin/python bench/bench_metrics.py --n 20000 --churn 0.5 --repeat 5
"""

from __future__ import annotations

import argparse
import gzip
import random
import statistics
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import MappingProxyType
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from prometheus_client import CollectorRegistry  # noqa: E402
from prometheus_client.exposition import generate_latest  # noqa: E402
from tests.web.legacy_metrics import LegacySnapshotCollector, LegacyStateCollector  # noqa: E402

from scd_monitor.analysis.reporting import ServiceReport, SlaReport  # noqa: E402
from scd_monitor.analysis.views import CheckCounters, CheckStatus, Snapshot  # noqa: E402
from scd_monitor.catalog.models import Catalog, ResolvedCheck  # noqa: E402
from scd_monitor.clock import Clock  # noqa: E402
from scd_monitor.probes.base import ErrorKind, Outcome, ProbeResult  # noqa: E402
from scd_monitor.sla.engine import sla_figures  # noqa: E402
from scd_monitor.sla.model import Period, Span, State  # noqa: E402
from scd_monitor.sla.timeline import CheckTimeline, service_timeline  # noqa: E402
from scd_monitor.store.writer import WriterStats  # noqa: E402
from scd_monitor.web.metrics import (  # noqa: E402
    DaemonMetrics,
    DaemonStatus,
    SnapshotCollector,
    StateCollector,
)
from scd_monitor.web.server import GZIP_LEVEL  # noqa: E402

NOW = datetime(2026, 11, 20, 15, 0, 0, tzinfo=UTC)
VANTAGE = "bogota"
PHASES = ("connect", "tls", "first_byte", "transfer")


class FixedClock(Clock):
    def now(self) -> datetime:
        return NOW

    def monotonic(self) -> float:
        return time.monotonic()


def catalog(n: int) -> Catalog:
    """N checks: 10 per service, 10 services per provider, http and tls mixed."""
    providers: list[dict[str, Any]] = []
    services_needed = (n + 9) // 10
    made = 0
    for p in range((services_needed + 9) // 10):
        services = []
        for s in range(10):
            if made >= n:
                break
            checks = []
            for c in range(min(10, n - made)):
                host = f"s{p:04d}-{s}.example.gov.co"
                if c % 3 == 2:
                    checks.append({"id": f"tls-{c}", "kind": "tls", "host": host})
                else:
                    checks.append(
                        {"id": f"http-{c}", "kind": "http", "url": f"https://{host}/api/{c}"}
                    )
                made += 1
            service: dict[str, Any] = {
                "id": f"servicio-{s:02d}",
                "name": f"Servicio {s} de «Prestador {p}»",
                "type": "otro",
                "checks": checks,
            }
            if s == 0 and p % 10 == 0:
                service["maintenance"] = [
                    {"cron": "0 3 * * sun", "duration": "1h", "reason": "ventana semanal"}
                ]
            services.append(service)
        if services:
            providers.append(
                {"id": f"prestador-{p:04d}", "name": f"Prestador {p} S.A.S.", "services": services}
            )
    return Catalog.model_validate(
        {
            "monitor": {"canaries": [{"id": "canary", "kind": "tls", "host": "canary.example"}]},
            "providers": providers,
        }
    )


def result(check: ResolvedCheck, rng: random.Random, at: datetime) -> ProbeResult:
    if rng.random() < 0.05:
        kind = rng.choice([ErrorKind.TIMEOUT, ErrorKind.CONNECT, ErrorKind.STATUS])
        outcome = Outcome(
            ok=False,
            error_kind=kind,
            status_code=503 if kind is ErrorKind.STATUS else None,
            phases={"connect": rng.random() / 10},
        )
    else:
        phases = {p: rng.random() / 10 for p in PHASES[: 4 if check.kind == "http" else 2]}
        outcome = Outcome(
            ok=True,
            status_code=200 if check.kind == "http" else None,
            phases=phases,
            cert_not_after=NOW + timedelta(days=rng.randint(5, 400)),
        )
    return ProbeResult(
        check_id=check.id,
        kind=check.kind,
        vantage=VANTAGE,
        started_at=at - timedelta(seconds=rng.random() * 30),
        duration=rng.random() * 2,
        outcome=outcome,
    )


def sla_report(cat: Catalog) -> SlaReport:
    period = Period(datetime(2026, 11, 1, 5, 0, 0, tzinfo=UTC), NOW)
    spans = [
        Span(period.start, NOW - timedelta(minutes=36), State.UP),
        Span(NOW - timedelta(minutes=36), NOW, State.DOWN, "timeout"),
    ]
    timeline = service_timeline(
        [CheckTimeline("x", "p", VANTAGE, True, spans)],
        rule="any",
        vantage_quorum=1,
        period=period,
        maintenance=[],
        monitor_faults={},
    )
    figures = sla_figures(
        timeline,
        period=period,
        now=NOW,
        target=0.995,
        latency=None,
        month_period=Period(period.start, datetime(2026, 12, 1, 5, 0, 0, tzinfo=UTC)),
    )
    services = tuple(
        ServiceReport(p.id, p.name, s.id, s.name, s.type, figures, ())
        for p in cat.providers
        for s in p.services
    )
    return SlaReport(period, NOW, "America/Bogota", None, services, ())


@dataclass
class World:
    catalog: Catalog
    checks: tuple[ResolvedCheck, ...]
    latest: dict[str, ProbeResult]
    runs: dict[str, int]
    failures: dict[str, dict[str, int]]
    states: dict[str, CheckStatus]
    report: SlaReport
    rng: random.Random
    snapshot: Snapshot | None = None
    tracked: Mapping[str, CheckStatus] = field(default_factory=dict)

    def publish(self) -> Snapshot:
        """What ResultsPipeline.snapshot() builds (new mappings, same result objects) and
        the tracker's latest round (not timed: both are made before the render)."""
        self.track()
        self.snapshot = Snapshot(
            checks=self.checks,
            latest=MappingProxyType(dict(self.latest)),
            counters=MappingProxyType(
                {
                    cid: CheckCounters(n, MappingProxyType(dict(self.failures.get(cid, {}))))
                    for cid, n in self.runs.items()
                }
            ),
            vantage=VANTAGE,
        )
        return self.snapshot

    def track(self) -> None:
        """What StateTracker publishes every round: new CheckStatus objects."""
        self.tracked = MappingProxyType({k: replace(v) for k, v in self.states.items()})

    def current(self) -> Mapping[str, CheckStatus]:
        return self.tracked

    def probe(self, share: float) -> None:
        """A new result for ``share`` of the checks; 1 % of those change state."""
        rng = self.rng
        for check in rng.sample(self.checks, int(len(self.checks) * share)):
            r = result(check, rng, NOW)
            self.latest[check.id] = r
            self.runs[check.id] = self.runs.get(check.id, 0) + 1
            if not r.outcome.ok and r.outcome.error_kind is not None:
                f = self.failures.setdefault(check.id, {})
                f[r.outcome.error_kind.value] = f.get(r.outcome.error_kind.value, 0) + 1
            if rng.random() < 0.01:
                state = rng.choice([State.UP, State.DOWN, State.DEGRADED])
                since = NOW - timedelta(minutes=3) if state is State.DOWN else None
                self.states[check.id] = CheckStatus(state, since, NOW)


def world(n: int, seed: int = 14) -> World:
    rng = random.Random(seed)
    cat = catalog(n)
    checks = tuple(cat.resolved_checks())
    w = World(cat, checks, {}, {}, {}, {}, sla_report(cat), rng)
    for check in checks[:-3]:  # the last three never probed yet
        w.states[check.id] = CheckStatus(State.UP, None, NOW)
    w.probe(1.0)
    for check in checks[:-3]:
        if check.id not in w.latest:
            w.latest[check.id] = result(check, rng, NOW)
            w.runs[check.id] = 1
    for check in checks[-3:]:
        w.latest.pop(check.id, None)
        w.runs.pop(check.id, None)
        w.failures.pop(check.id, None)
    return w


STATUS = DaemonStatus(
    writer=WriterStats(
        pending=0,
        written_total=1,
        batches_total=1,
        errors_total=0,
        dropped_total=0,
        last_success_monotonic=None,
        last_error=None,
        healthy=True,
    ),
    catalog_loaded_timestamp=NOW.timestamp(),
    scheduled_jobs=1,
)


def collectors(w: World, snapshot_cls: Any, state_cls: Any) -> list[Any]:
    def snap() -> Snapshot:
        assert w.snapshot is not None
        return w.snapshot

    return [
        snapshot_cls(snap, lambda: STATUS),
        state_cls(
            checks=lambda: snap().checks,
            catalog=lambda: w.catalog,
            states=w.current,
            sla=lambda: w.report,
            vantage=VANTAGE,
            clock=FixedClock(),
            latest=lambda: snap().latest,
        ),
    ]


def old_renderer(w: World) -> Callable[[], bytes]:
    registry = CollectorRegistry(auto_describe=False)
    for c in collectors(w, LegacySnapshotCollector, LegacyStateCollector):
        registry.register(c)
    return lambda: generate_latest(registry)


def new_metrics(w: World) -> DaemonMetrics:
    metrics = DaemonMetrics(vantage=VANTAGE, registry=CollectorRegistry(auto_describe=False))
    for c in collectors(w, SnapshotCollector, StateCollector):
        metrics.add_collector(c)
    return metrics


def timed(fn: Callable[[], bytes]) -> tuple[float, float, bytes]:
    w0, c0 = time.perf_counter(), time.process_time()
    out = fn()
    return time.perf_counter() - w0, time.process_time() - c0, out


def figures(samples: list[tuple[float, float, bytes]]) -> dict[str, float]:
    return {
        "wall_ms": statistics.median(s[0] for s in samples) * 1000,
        "cpu_ms": statistics.median(s[1] for s in samples) * 1000,
        "mib": len(samples[-1][2]) / 2**20,
    }


def run(n: int, repeat: int, churn: float) -> list[tuple[str, dict[str, float]]]:
    rows: list[tuple[str, dict[str, float]]] = []
    w = world(n)
    w.publish()
    old = old_renderer(w)
    plain: list[tuple[float, float, bytes]] = []
    zipped: list[tuple[float, float, bytes]] = []
    for _ in range(repeat):
        plain.append(timed(old))
        zipped.append(timed(lambda: gzip.compress(old(), compresslevel=GZIP_LEVEL, mtime=0)))
    rows.append(("old", figures(plain)))
    rows.append(("old, gzip", figures(zipped)))
    reference = plain[-1][2]

    for name, gz in (("", False), (", gzip", True)):
        cold: list[tuple[float, float, bytes]] = []
        warm: list[tuple[float, float, bytes]] = []
        churned: list[tuple[float, float, bytes]] = []
        for _ in range(repeat):
            w.publish()
            metrics = new_metrics(w)
            render = (lambda m=metrics: m.render_gzip()) if gz else metrics.render
            cold.append(timed(render))
            w.publish()
            warm.append(timed(render))
            w.probe(churn)
            w.publish()
            churned.append(timed(render))
        rows.append((f"new cold{name}", figures(cold)))
        rows.append((f"new warm{name}", figures(warm)))
        rows.append((f"new churn {churn:.0%}{name}", figures(churned)))
        if not gz:
            assert _families(cold[0][2]) == _families(reference), "new != old"
        else:
            gzip.decompress(churned[-1][2])  # a valid gzip body
    return rows


def _families(body: bytes) -> bytes:
    """The per-check families of a body (the daemon's own health varies)."""
    return body[body.index(b"# HELP scd_check_info") :]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, nargs="+", default=[5000, 20000])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--churn", type=float, default=0.5)
    parser.add_argument("--old", action=argparse.BooleanOptionalAction, default=True)
    args = parser.parse_args()
    for n in args.n:
        print(f"N = {n:,} checks")
        print(f"  {'':24} {'wall ms':>9} {'CPU ms':>9} {'MiB':>8}")
        for name, f in run(n, args.repeat, args.churn):
            print(f"  {name:24} {f['wall_ms']:9.1f} {f['cpu_ms']:9.1f} {f['mib']:8.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
