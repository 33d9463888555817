"""Pre-rendered /metrics (issue 14): the same series as the old collectors, sample for
sample; cached blocks reused while their inputs stay; gzip; promtool."""

from __future__ import annotations

import dataclasses
import gzip
import math
import random
import shutil
import subprocess
from collections.abc import Iterator, Mapping
from datetime import datetime, timedelta
from types import MappingProxyType

import pytest
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client import CollectorRegistry
from prometheus_client.exposition import generate_latest
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.utils import floatToGoString

from scd_monitor.analysis.views import CheckCounters, CheckStatus, Snapshot
from scd_monitor.catalog import parse_catalog
from scd_monitor.catalog.models import Catalog, ResolvedCheck
from scd_monitor.probes.base import ErrorKind, Outcome, ProbeResult
from scd_monitor.sanitize import clean_text
from scd_monitor.sla.model import State
from scd_monitor.web import Readiness, WebEndpoints, make_app
from scd_monitor.web.exposition import Chunk, gzip_chunks, join_text
from scd_monitor.web.exposition import fmt as exposition_fmt
from scd_monitor.web.metrics import DaemonMetrics, SnapshotCollector, StateCollector
from tests.conftest import utc
from tests.web.legacy_metrics import LegacySnapshotCollector, LegacyStateCollector
from tests.web.test_metrics import STATUS
from tests.web.test_state_metrics import report

CATALOG = parse_catalog(
    """
providers:
  - id: p
    name: 'P "comillas" \\ barra, ñandú €'
    services:
      - id: any
        name: Servicio «único»
        type: otro
        checks:
          - {id: a, kind: tls, host: a.example}
          - {id: b, kind: http, url: 'https://b.example/ruta?x="1"'}
          - {id: extra, kind: tls, host: c.example, critical: false}
      - id: all
        type: otro
        rule: all
        maintenance:
          - {cron: "0 3 * * sun", duration: 1h, reason: semanal}
        checks:
          - {id: a, kind: tls, host: a.example}
          - {id: b, kind: tls, host: b.example}
  - id: q
    name: Q
    services:
      - id: quorum
        type: otro
        rule: {quorum: 2}
        checks:
          - {id: x, kind: tls, host: x.example}
          - {id: y, kind: tls, host: y.example}
          - {id: z, kind: tls, host: z.example}
      - id: idp
        type: autenticacion_digital
        checks:
          - {id: oidc, kind: oidc, issuer: "https://idp.example"}
"""
)
NOW = utc(2026, 11, 10, 12, 0, 0)
VANTAGE = 'bo"go\\tá\nñ'
"""A vantage needing every escape (it reaches every per-check series)."""
SURROGATE = clean_text("nombre \ud800 partido")
"""Text that had a lone surrogate, as the sanitiser leaves it."""


class Clock:
    def __init__(self, at: datetime) -> None:
        self.at = at

    def now(self) -> datetime:
        return self.at

    def monotonic(self) -> float:
        return 0.0


def odd_checks(catalog: Catalog) -> tuple[ResolvedCheck, ...]:
    """The catalog's checks, plus checks whose every label needs escaping (ids the
    catalog would refuse, but the text format must survive whatever reaches it)."""
    checks = catalog.resolved_checks()
    base = checks[-1]
    odd = [
        dataclasses.replace(
            base,
            provider='pr"ov\\ee\ndor',
            service="sérvice ✓",
            check='ch"k',
            provider_name=SURROGATE,
        ),
        dataclasses.replace(base, provider="p2", service="s\\2", check="c\n2", kind='k"'),
    ]
    return (*checks, *odd)


def result(
    check: ResolvedCheck, *, ok: bool, at: datetime, kind: ErrorKind | None = None
) -> ProbeResult:
    outcome = (
        Outcome(
            ok=True,
            status_code=200,
            phases={"connect": 0.01, "tls": 0.05, 'fi"rst\\byte': 0.125, "transfer": 1e-7},
            cert_not_after=at + timedelta(days=40),
        )
        if ok
        else Outcome(ok=False, error_kind=kind or ErrorKind.TIMEOUT, status_code=None)
    )
    if check.kind == "oidc":  # the OIDC series: keys, x5c expiry, the failed step
        details: dict[str, str | int | float | bool] = {
            "jwks_keys": 2,
            "jwks_kids": "k1,k2",
            "x5c_not_after": (at + timedelta(days=90)).isoformat(),
        }
        if not ok:
            details["step"] = 'jw"ks'
        outcome = dataclasses.replace(outcome, details=details)
    return ProbeResult(check.id, check.kind, VANTAGE, at, 0.3 if ok else 10.0, outcome)


class World:
    """Snapshots, states and SLA report as the daemon publishes them, step by step."""

    def __init__(self) -> None:
        self.catalog = CATALOG
        self.checks = odd_checks(CATALOG)
        self.latest: dict[str, ProbeResult] = {}
        self.runs: dict[str, int] = {}
        self.failures: dict[str, dict[str, int]] = {}
        self.states: Mapping[str, CheckStatus] = {}
        self.sla = None
        self.clock = Clock(NOW)
        self.snapshot = self.publish()

    def probe(self, check: ResolvedCheck, res: ProbeResult) -> None:
        self.latest[check.id] = res
        self.runs[check.id] = self.runs.get(check.id, 0) + 1
        if not res.outcome.ok and res.outcome.error_kind is not None:
            kinds = self.failures.setdefault(check.id, {})
            kinds[res.outcome.error_kind.value] = kinds.get(res.outcome.error_kind.value, 0) + 1

    def publish(self) -> Snapshot:
        ids = {c.id for c in self.checks}
        self.snapshot = Snapshot(
            checks=self.checks,
            latest=MappingProxyType({k: v for k, v in self.latest.items() if k in ids}),
            counters=MappingProxyType(
                {
                    k: CheckCounters(n, MappingProxyType(dict(self.failures.get(k, {}))))
                    for k, n in self.runs.items()
                    if k in ids
                }
            ),
            vantage=VANTAGE,
        )
        return self.snapshot

    def collectors(self, snapshot_cls: type, state_cls: type) -> list[object]:
        return [
            snapshot_cls(lambda: self.snapshot, lambda: STATUS),
            state_cls(
                checks=lambda: self.snapshot.checks,
                catalog=lambda: self.catalog,
                states=lambda: self.states,
                sla=lambda: self.sla,
                vantage=VANTAGE,
                clock=self.clock,
                latest=lambda: self.snapshot.latest,
            ),
        ]


def old_text(world: World) -> str:
    registry = CollectorRegistry(auto_describe=False)
    for c in world.collectors(LegacySnapshotCollector, LegacyStateCollector):
        registry.register(c)  # type: ignore[arg-type]
    return generate_latest(registry).decode()


def families(text: str) -> dict[str, tuple[str, str, list[tuple[str, tuple, float]]]]:
    out = {}
    for f in text_string_to_metric_families(text):
        assert f.name not in out, f"family {f.name} split in two"
        samples = [(s.name, tuple(sorted(s.labels.items())), s.value) for s in f.samples]
        out[f.name] = (f.type, f.documentation, samples)
    return out


def per_target(body: bytes) -> bytes:
    """The body without the process metrics, which change from one scrape to the next."""
    return body[body.index(b"# HELP scd_monitor_build_info") :]


def steps(world: World) -> Iterator[str]:
    """Change the world step by step, publishing a snapshot after each; yields its name."""
    checks = {c.id: c for c in world.checks}
    world.publish()
    yield "nothing probed, no states, no SLA report"
    for i, check in enumerate(world.checks):
        world.probe(check, result(check, ok=i % 3 != 1, at=NOW, kind=ErrorKind.CONNECT))
    world.states = {c.id: CheckStatus(State.UP, None, NOW) for c in world.checks[:4]}
    world.publish()
    yield "every check probed, some states"
    a = checks["p/any/a"]
    world.probe(a, result(a, ok=False, at=NOW + timedelta(seconds=30), kind=ErrorKind.TLS))
    world.states = {
        **{c.id: CheckStatus(State.UP, None, NOW) for c in world.checks},
        "p/any/a": CheckStatus(State.DOWN, NOW - timedelta(minutes=5), NOW),
        "q/quorum/x": CheckStatus(State.DOWN, NOW - timedelta(minutes=1), NOW),
        "q/quorum/y": CheckStatus(State.DEGRADED, None, NOW),
    }
    world.sla = report()  # type: ignore[assignment]
    world.publish()
    yield "one check failing and down, states and the SLA report"
    world.checks = tuple(c for c in world.checks if c.id != "p/any/b")
    world.publish()
    yield "a check removed from the catalog"
    world.catalog = parse_catalog(CATALOG_RELOADED)
    world.checks = odd_checks(world.catalog)
    world.states = {**world.states, "p/all/b": CheckStatus(State.MAINTENANCE, None, NOW)}
    world.publish()
    yield "catalog reloaded: new check objects, one back with no result"
    world.clock.at = utc(2026, 11, 15, 8, 30, 0)  # a Sunday 03:30 in Bogota: the window
    world.publish()
    yield "the clock inside a maintenance window"


def run_all(world: World) -> None:
    for _ in steps(world):
        pass


CATALOG_RELOADED = """
providers:
  - id: p
    name: P renamed
    services:
      - id: any
        type: otro
        checks:
          - {id: a, kind: tls, host: a.example}
          - {id: b, kind: http, url: 'https://b.example/'}
          - {id: extra, kind: tls, host: c.example}
      - id: all
        type: otro
        rule: all
        maintenance:
          - {cron: "0 3 * * sun", duration: 1h, reason: semanal}
        checks:
          - {id: a, kind: tls, host: a.example}
          - {id: b, kind: tls, host: b.example}
"""


def test_same_series_as_the_old_collectors_at_every_step() -> None:
    world = World()
    metrics = DaemonMetrics(vantage=VANTAGE)
    for c in world.collectors(SnapshotCollector, StateCollector):
        metrics.add_collector(c)  # type: ignore[arg-type]
    seen = []
    for name in steps(world):  # the new collectors keep their caches from step to step
        new = metrics.render().decode()
        old = old_text(world)
        per_target = new[new.index("# HELP scd_check_info") :]  # after the daemon's health
        new_families, old_families = families(per_target), families(old)
        assert new_families.keys() == old_families.keys(), name
        for family, want in old_families.items():
            assert new_families[family] == want, f"{name}: {family}"
        assert per_target == old, f"{name}: not byte for byte"
        seen.append(name)
    assert len(seen) == 6


def test_escaping_and_odd_values_reach_the_text() -> None:
    world = World()
    run_all(world)
    metrics = DaemonMetrics(vantage=VANTAGE)
    for c in world.collectors(SnapshotCollector, StateCollector):
        metrics.add_collector(c)  # type: ignore[arg-type]
    text = metrics.render().decode()
    assert r'vantage="bo\"go\\tá\nñ"' in text
    assert r'provider="pr\"ov\\ee\ndor"' in text
    assert SURROGATE in text and "\ud800" not in text
    fams = families(text)
    info = {dict(s[1])["check"]: dict(s[1]) for s in fams["scd_check_info"][2]}
    assert info['ch"k']["provider_name"] == SURROGATE


def test_an_unchanged_check_keeps_its_cached_block_and_a_changed_one_is_rendered_again() -> None:
    world = World()
    run_all(world)
    snapshot_c, state_c = world.collectors(SnapshotCollector, StateCollector)
    assert isinstance(snapshot_c, SnapshotCollector) and isinstance(state_c, StateCollector)
    snapshot_c.expose()
    state_c.expose()
    a, b = world.checks[0], world.checks[1]
    blocks_a, blocks_b = snapshot_c.table.block(a.id), snapshot_c.table.block(b.id)
    states_a, states_b = state_c.table.block(a.id), state_c.table.block(b.id)
    chunks_before = snapshot_c.expose()

    world.probe(a, result(a, ok=True, at=NOW + timedelta(minutes=2)))
    world.states = {**world.states, a.id: CheckStatus(State.DOWN, NOW, NOW)}
    world.publish()
    chunks_after = snapshot_c.expose()
    state_c.expose()
    assert snapshot_c.table.block(b.id) is blocks_b, "unchanged check: its cached block"
    assert state_c.table.block(b.id) is states_b
    assert snapshot_c.table.block(a.id) != blocks_a, "new result: rendered again"
    assert state_c.table.block(a.id) != states_a, "new state: rendered again"
    # The check info did not change: that family's segment is the same cached chunk.
    assert chunks_after[1] is chunks_before[1]
    assert b"scd_check_info" in chunks_after[1].data


def test_gzip_body_is_the_text_and_reuses_compressed_segments() -> None:
    world = World()
    run_all(world)
    snapshot_c, _ = world.collectors(SnapshotCollector, StateCollector)
    assert isinstance(snapshot_c, SnapshotCollector)
    chunks = [*snapshot_c.expose(), Chunk(b"# a transient piece\n"), Chunk(b"")]
    body = gzip_chunks(chunks)
    assert gzip.decompress(body) == join_text(chunks)
    cached = [c for c in chunks if c.cached and c.data]
    assert cached and all(c.deflated() is c.deflated() for c in cached)
    assert gzip_chunks(chunks) == body


def test_daemon_metrics_gzip_matches_text() -> None:
    world = World()
    run_all(world)
    metrics = DaemonMetrics(vantage=VANTAGE, registry=CollectorRegistry(auto_describe=False))
    for c in world.collectors(SnapshotCollector, StateCollector):
        metrics.add_collector(c)  # type: ignore[arg-type]
    assert per_target(gzip.decompress(metrics.render_gzip())) == per_target(metrics.render())


async def test_server_serves_the_cached_gzip_when_accepted() -> None:
    world = World()
    run_all(world)
    metrics = DaemonMetrics(vantage=VANTAGE, registry=CollectorRegistry(auto_describe=False))
    for c in world.collectors(SnapshotCollector, StateCollector):
        metrics.add_collector(c)  # type: ignore[arg-type]
    endpoints = WebEndpoints(
        render_metrics=metrics.render,
        render_metrics_gzip=metrics.render_gzip,
        before_render=lambda: None,
        readiness=lambda: Readiness(True),
    )
    async with TestClient(TestServer(make_app(endpoints.routes()))) as client:
        response = await client.get(
            "/metrics", headers={"Accept-Encoding": "gzip"}, auto_decompress=False
        )
        assert response.headers["Content-Encoding"] == "gzip"
        assert per_target(gzip.decompress(await response.read())) == per_target(metrics.render())
        plain = await client.get("/metrics", headers={"Accept-Encoding": "identity"})
        assert "Content-Encoding" not in plain.headers
        assert per_target(await plain.read()) == per_target(metrics.render())


def test_collect_parses_the_same_text_back() -> None:
    world = World()
    run_all(world)
    registry = CollectorRegistry(auto_describe=False)
    collectors = world.collectors(SnapshotCollector, StateCollector)
    for c in collectors:
        registry.register(c)  # type: ignore[arg-type]
    expected = b"".join(join_text(c.expose()) for c in collectors)  # type: ignore[attr-defined]
    assert generate_latest(registry) == expected


def test_fmt_is_float_to_go_string() -> None:
    rng = random.Random(14)
    values = [0.0, -0.0, 1.0, 200.0, 1e-7, 1e16, 1e22, 123456.7, 1234567.0, 1793534400.0]
    values += [math.inf, -math.inf, math.nan, -1234567.5, 5e-324, 1.7976931348623157e308]
    values += [rng.uniform(0, 2e9) for _ in range(2000)] + [rng.random() for _ in range(2000)]
    for v in values:
        assert exposition_fmt(v) == floatToGoString(v), v


def test_promtool_check_metrics_passes_on_the_pre_rendered_text() -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool not installed")
    world = World()
    run_all(world)
    metrics = DaemonMetrics(vantage=VANTAGE)
    for c in world.collectors(SnapshotCollector, StateCollector):
        metrics.add_collector(c)  # type: ignore[arg-type]
    text = metrics.render().decode()
    proc = subprocess.run(
        [promtool, "check", "metrics"], input=text, capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.strip() == "" and proc.stderr.strip() == "", proc.stdout + proc.stderr
