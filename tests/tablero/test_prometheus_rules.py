"""config/prometheus/: promtool checks the config and the rules and runs their unit tests.

The unit tests (config/prometheus/tests/*.test.yml) fire and resolve every alert on
synthetic series; the checks here make sure none is left out and that every alert
carries what the on-call person needs (severity, provider, service, a Spanish summary,
a runbook that exists).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
PROMETHEUS = ROOT / "config" / "prometheus"
ALERTS = PROMETHEUS / "rules" / "alerts.yml"
RECORDING = PROMETHEUS / "rules" / "recording.yml"
TESTS = sorted((PROMETHEUS / "tests").glob("*.test.yml"))
TABLERO = ROOT / "docs" / "tablero.md"
METRICS_DOC = ROOT / "docs" / "metrics.md"

SPANISH = re.compile(r"\b(de|del|la|el|los|las|en|por|que|un|una|y|no)\b", re.IGNORECASE)


@pytest.fixture(scope="module")
def promtool() -> str:
    found = shutil.which("promtool")
    if found is None:
        if os.environ.get("SCD_MONITOR_REQUIRE_PROMTOOL") == "1":
            pytest.fail("promtool is required (Debian package 'prometheus')")
        pytest.skip("promtool not installed")
    return found


def run(promtool: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [promtool, *args], cwd=PROMETHEUS, capture_output=True, text=True, check=False
    )


def alert_rules() -> list[dict[str, Any]]:
    data = yaml.safe_load(ALERTS.read_text(encoding="utf-8"))
    return [rule for group in data["groups"] for rule in group["rules"]]


def recording_rules() -> list[dict[str, Any]]:
    data = yaml.safe_load(RECORDING.read_text(encoding="utf-8"))
    return [rule for group in data["groups"] for rule in group["rules"]]


# -- promtool ---------------------------------------------------------------------------


def test_promtool_check_config(promtool: str) -> None:
    out = run(promtool, "check", "config", "prometheus.yml")
    assert out.returncode == 0, out.stdout + out.stderr


def test_promtool_check_rules(promtool: str) -> None:
    out = run(promtool, "check", "rules", "rules/recording.yml", "rules/alerts.yml")
    assert out.returncode == 0, out.stdout + out.stderr


def test_promtool_test_rules(promtool: str) -> None:
    assert TESTS, "no promtool unit tests found"
    out = run(promtool, "test", "rules", *(str(p.relative_to(PROMETHEUS)) for p in TESTS))
    assert out.returncode == 0, out.stdout + out.stderr
    assert out.stdout.count("SUCCESS") == len(TESTS), out.stdout


# -- coverage of the unit tests ------------------------------------------------------------


def test_every_alert_fires_and_resolves_in_the_unit_tests() -> None:
    names = {rule["alert"] for rule in alert_rules()}
    fired: dict[str, list[dict[str, str]]] = {}
    resolved: set[str] = set()
    severities: dict[str, set[str]] = {}
    for path in TESTS:
        for case in yaml.safe_load(path.read_text(encoding="utf-8"))["tests"]:
            first_fired: dict[str, int] = {}
            steps = sorted(case.get("alert_rule_test", []), key=lambda s: _minutes(s["eval_time"]))
            for step in steps:
                name, when = step["alertname"], _minutes(step["eval_time"])
                if step.get("exp_alerts"):
                    first_fired.setdefault(name, when)
                    for alert in step["exp_alerts"]:
                        fired.setdefault(name, []).append(alert["exp_labels"])
                        severities.setdefault(name, set()).add(alert["exp_labels"]["severity"])
                elif name in first_fired and when > first_fired[name]:
                    resolved.add(name)
    assert set(fired) == names, f"never fired in a test: {names - set(fired)}"
    assert resolved == names, f"never resolved in a test: {names - resolved}"
    for name, labels in fired.items():
        for exp in labels:
            assert {"severity", "provider", "service"} <= set(exp), (name, exp)
    # Both severities of the certificate and global configuration alerts are exercised.
    assert severities["ScdCertificadoPorVencer"] == {"warning", "critical"}
    assert severities["ScdXroadConfiguracionGlobalVencida"] == {"warning", "critical"}


def _minutes(value: str) -> int:
    number, unit = re.fullmatch(r"(\d+)([smh])", value).groups()  # type: ignore[union-attr]
    return int(number) * {"s": 1, "m": 60, "h": 3600}[unit] // 60


# -- what each alert carries -------------------------------------------------------------------


def test_alerts_carry_severity_summary_description_and_an_existing_runbook() -> None:
    headings = {
        re.sub(r"[^a-z0-9 -]", "", line.lstrip("#").strip().lower()).replace(" ", "-")
        for line in TABLERO.read_text(encoding="utf-8").splitlines()
        if line.startswith("#")
    }
    for rule in alert_rules():
        name = rule["alert"]
        assert name.startswith("Scd"), name
        assert rule["labels"]["severity"] in ("critical", "warning"), name
        annotations = rule["annotations"]
        assert SPANISH.search(annotations["summary"]), name
        assert SPANISH.search(annotations["description"]), name
        path, _, anchor = annotations["runbook_url"].partition("#")
        assert path == "docs/tablero.md", name
        assert anchor == name.lower() and anchor in headings, f"{name}: no runbook section"
        # provider and service: from the expression (by/on clauses keep them) or fixed.
        labels = rule["labels"]
        expr = rule["expr"]
        if "provider" not in labels:
            assert "provider" in expr and "service" in expr, name
        else:
            assert labels["provider"] == "scd-monitor", name
            assert "service" in labels, name


def test_multi_window_multi_burn_rate_pairs() -> None:
    """The factors and window pairs of the SLA alerts, from the service's own target."""
    rules = {rule["alert"]: rule["expr"] for rule in alert_rules()}
    pairs = {
        "ScdAnsQuemaRapida": [("1h", "5m", "14.4"), ("6h", "30m", "6")],
        "ScdAnsQuemaLenta": [("1d", "2h", "3"), ("3d", "6h", "1")],
    }
    for name, expected in pairs.items():
        expr = " ".join(rules[name].split())
        for long, short, factor in expected:
            assert f'window="{long}"}} > {factor}' in expr, (name, long)
            assert f'window="{short}"}} > {factor}' in expr, (name, short)
    # Long windows are the daemon's exact figures, 5m/30m/2h Prometheus' approximation.
    assert 'scd_sla_burn_rate:max{window="1h"}' in rules["ScdAnsQuemaRapida"]
    assert 'scd_sla_burn_rate:prom{window="5m"}' in rules["ScdAnsQuemaRapida"]


def test_rules_use_only_metrics_that_exist() -> None:
    documented = set(re.findall(r"`(scd_[a-z_]+)", METRICS_DOC.read_text(encoding="utf-8")))
    records = {rule["record"] for rule in recording_rules()}
    for rule in recording_rules() + alert_rules():
        expr = rule["expr"]
        for name in re.findall(r"(?<![\w:])(scd_[a-z_]+)(?![\w:])", expr):
            assert name in documented, f"{name} is not a metric the daemon exports"
        for name in re.findall(r"\b([a-z_]+:[a-z0-9_]+:[a-z0-9_]+)\b", expr):
            assert name in records, f"{name} is not a recording rule"


# -- the scrape configuration --------------------------------------------------------------


def test_scrape_config_and_compose_agree() -> None:
    config = yaml.safe_load((PROMETHEUS / "prometheus.yml").read_text(encoding="utf-8"))
    (job,) = config["scrape_configs"]
    assert job["job_name"] == "scd-monitor", "the alerts and boards select job=scd-monitor"
    assert job["honor_labels"] is True
    assert sorted(config["rule_files"]) == ["rules/alerts.yml", "rules/recording.yml"]
    targets = yaml.safe_load((PROMETHEUS / "targets" / "scd-monitor.yml").read_text())
    vantages = {t["labels"]["vantage"]: t["targets"] for t in targets}
    assert len(vantages) >= 2, "the example scrapes several vantages"

    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text(encoding="utf-8"))
    services = compose["services"]
    aliases = set(services["simulator"]["networks"]["default"]["aliases"])
    for vantage, hosts in vantages.items():
        (host,) = hosts
        name, port = host.split(":")
        assert name in aliases, host
        monitor = services[f"monitor-{vantage}"]
        assert monitor["environment"]["SCD_MONITOR_VANTAGE"] == vantage
        assert monitor["environment"]["SCD_MONITOR_LISTEN"] == f"0.0.0.0:{port}"
        assert monitor["network_mode"] == "service:simulator"
    assert "./config/prometheus:/etc/prometheus:ro" in services["prometheus"]["volumes"]
