"""/metrics from snapshots: values, labels, removal, and promtool's lint."""

from __future__ import annotations

import os
import shutil
import subprocess
from datetime import timedelta

import pytest
from prometheus_client.parser import text_string_to_metric_families

from scd_monitor.catalog import parse_catalog
from scd_monitor.probes.base import ErrorKind, Outcome, ProbeResult
from scd_monitor.runtime.pipeline import ResultsPipeline
from scd_monitor.store.writer import WriterStats
from scd_monitor.web.metrics import (
    ComponentCollector,
    ComponentStatus,
    DaemonMetrics,
    DaemonStatus,
    SnapshotCollector,
)
from tests.conftest import utc

CATALOG = parse_catalog(
    """
providers:
  - id: prestador-a
    name: Prestador A S.A.S.
    services:
      - id: autenticacion
        type: autenticacion_digital
        sla: {availability_target: 0.995, latency_threshold: 2s}
        checks:
          - {id: oidc, kind: http, url: "https://a.example:8443/.well-known/openid-configuration"}
          - {id: cert, kind: tls, host: a.example}
"""
)
T0 = utc(2026, 11, 1, 12, 0, 0)
STATUS = DaemonStatus(
    writer=WriterStats(
        pending=3,
        written_total=10,
        batches_total=2,
        errors_total=1,
        dropped_total=0,
        last_success_monotonic=None,
        last_error=None,
        healthy=True,
    ),
    catalog_loaded_timestamp=T0.timestamp(),
    scheduled_jobs=2,
)


def rendered(
    pipeline: ResultsPipeline,
) -> tuple[str, dict[str, list[tuple[dict[str, str], float]]]]:
    metrics = DaemonMetrics(vantage="bogota")
    metrics.add_collector(SnapshotCollector(pipeline.snapshot, lambda: STATUS))
    text = metrics.render().decode()
    samples: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            samples.setdefault(s.name, []).append((s.labels, s.value))
    return text, samples


def feed(pipeline: ResultsPipeline) -> None:
    checks = {c.check: c for c in CATALOG.resolved_checks()}
    pipeline.submit(
        checks["oidc"],
        ProbeResult(
            check_id=checks["oidc"].id,
            kind="http",
            vantage="bogota",
            started_at=T0,
            duration=0.3,
            outcome=Outcome(
                ok=True,
                status_code=200,
                phases={"connect": 0.01, "tls": 0.05, "first_byte": 0.2},
                cert_not_after=T0 + timedelta(days=40),
            ),
        ),
    )
    for i in range(2):
        pipeline.submit(
            checks["cert"],
            ProbeResult(
                check_id=checks["cert"].id,
                kind="tls",
                vantage="bogota",
                started_at=T0 + timedelta(seconds=30 * i),
                duration=1.5,
                outcome=Outcome(ok=False, error_kind=ErrorKind.TLS, message="expired"),
            ),
        )


def test_values_and_labels_come_from_the_snapshot() -> None:
    pipeline = ResultsPipeline(vantage="bogota", sink=lambda _r: None)
    pipeline.set_checks(CATALOG.resolved_checks())
    feed(pipeline)
    _text, samples = rendered(pipeline)
    oidc = {
        "provider": "prestador-a",
        "service": "autenticacion",
        "check": "oidc",
        "kind": "http",
        "vantage": "bogota",
    }
    cert = {**oidc, "check": "cert", "kind": "tls"}
    assert (oidc, 1.0) in samples["scd_probe_success"]
    assert (cert, 0.0) in samples["scd_probe_success"]
    assert (oidc, 0.3) in samples["scd_probe_duration_seconds"]
    assert (oidc, T0.timestamp()) in samples["scd_probe_last_run_timestamp_seconds"]
    assert (oidc, 200.0) in samples["scd_probe_http_status_code"]
    assert ({**oidc, "phase": "tls"}, 0.05) in samples["scd_probe_phase_duration_seconds"]
    expiry = (T0 + timedelta(days=40)).timestamp()
    assert (oidc, expiry) in samples["scd_probe_cert_expiry_timestamp_seconds"]
    assert samples["scd_probe_error"] == [({**cert, "error_kind": "tls"}, 1.0)]
    assert ({**cert, "error_kind": "tls"}, 2.0) in samples["scd_probe_failures_total"]
    assert (cert, 2.0) in samples["scd_probes_total"]
    info = {labels["check"]: labels for labels, _ in samples["scd_check_info"]}
    assert info["oidc"]["target"] == "https://a.example:8443/.well-known/openid-configuration"
    assert info["oidc"]["provider_name"] == "Prestador A S.A.S."
    assert info["oidc"]["availability_target"] == "0.995"
    assert samples["scd_store_pending_results"] == [({}, 3.0)]
    assert ({"version": "0.1.0", "vantage": "bogota"}, 1.0) in samples["scd_monitor_build_info"]


def test_a_check_removed_from_the_catalog_leaves_metrics() -> None:
    pipeline = ResultsPipeline(vantage="bogota", sink=lambda _r: None)
    checks = CATALOG.resolved_checks()
    pipeline.set_checks(checks)
    feed(pipeline)
    pipeline.set_checks([c for c in checks if c.check == "oidc"])
    text, samples = rendered(pipeline)
    assert 'check="cert"' not in text
    assert len(samples["scd_probe_success"]) == 1


def test_promtool_check_metrics_passes() -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        if os.environ.get("SCD_MONITOR_REQUIRE_PROMTOOL") == "1":
            pytest.fail("promtool is required (Debian package 'prometheus')")
        pytest.skip("promtool not installed")
    pipeline = ResultsPipeline(vantage="bogota", sink=lambda _r: None)
    pipeline.set_checks(CATALOG.resolved_checks())
    feed(pipeline)
    text, _ = rendered(pipeline)
    proc = subprocess.run(
        [promtool, "check", "metrics"], input=text, capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.strip() == "" and proc.stderr.strip() == "", proc.stdout + proc.stderr


def test_components_and_catalog_reloads_are_exported() -> None:
    metrics = DaemonMetrics(vantage="bogota")
    status = DaemonStatus(
        writer=STATUS.writer,
        catalog_loaded_timestamp=T0.timestamp(),
        scheduled_jobs=2,
        catalog_reload_failures=3,
        catalog_last_reload_ok=False,
    )
    components = {
        "tracker": ComponentStatus("tracker", True, 0, T0.timestamp()),
        "sla": ComponentStatus("sla", False, 4, None, "sla: failing since …"),
    }
    pipeline = ResultsPipeline(vantage="bogota", sink=lambda _r: None)
    metrics.add_collector(SnapshotCollector(pipeline.snapshot, lambda: status))
    metrics.add_collector(ComponentCollector(lambda: components))
    text = metrics.render().decode()
    assert 'scd_component_up{component="tracker"} 1.0' in text
    assert 'scd_component_up{component="sla"} 0.0' in text
    assert 'scd_component_restarts_total{component="sla"} 4.0' in text
    assert 'scd_component_restarts_total{component="tracker"} 0.0' in text
    assert 'scd_component_last_success_timestamp_seconds{component="tracker"} 1.7935344e+09' in text
    assert 'scd_component_last_success_timestamp_seconds{component="sla"}' not in text
    assert "scd_catalog_reload_failures_total 3.0" in text
    assert "scd_catalog_last_reload_successful 0.0" in text
