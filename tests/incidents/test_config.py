"""The ``incidents:`` configuration: defaults, overrides, validation, secrets, routing."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
import yaml
from pydantic import ValidationError

from scd_monitor.catalog.incident_kinds import Severity, SignalKind
from scd_monitor.catalog.incidents import IncidentsConfig, resolve_secrets, secret_problems
from scd_monitor.incidents.routing import plan_deliveries
from scd_monitor.sinks import WebhookSinkConfig

DOC_EXAMPLE = Path(__file__).resolve().parents[2] / "docs" / "incidents.md"


def example_from_docs() -> dict:  # type: ignore[type-arg]
    """The first ```yaml block of docs/incidents.md, under its ``incidents:`` key."""
    text = DOC_EXAMPLE.read_text(encoding="utf-8")
    block = text.split("```yaml\n", 1)[1].split("```", 1)[0]
    return yaml.safe_load(block)["incidents"]  # type: ignore[no-any-return]


def test_the_documented_example_is_valid() -> None:
    config = IncidentsConfig.model_validate(example_from_docs())
    assert {s.id for s in config.sinks} == {
        "mintic-webhook",
        "mintic-correo",
        "prestadores",
        "operaciones",
    }


def test_defaults() -> None:
    config = IncidentsConfig()
    assert config.resolve_after == timedelta(minutes=5)
    assert config.quiet_period == timedelta(minutes=30)
    assert config.rules.degradation.after == timedelta(minutes=10)
    assert [b.above for b in config.rules.sla_at_risk.burn_rates] == [14.4, 6.0]
    assert config.outbox.max_attempts is None


def test_overrides_change_only_what_they_name() -> None:
    config = IncidentsConfig.model_validate(
        {
            "rules": {"degradation": {"after": "15m"}},
            "overrides": [
                {"provider": "prestador-a", "rules": {"outage": {"severity": "high"}}},
                {
                    "provider": "prestador-a",
                    "service": "carpeta",
                    "rules": {"degradation": {"enabled": False}},
                    "resolve_after": "1m",
                },
            ],
        }
    )
    other = config.policy("prestador-b", "x")
    assert other.rules.outage.severity is None and other.rules.degradation.after == timedelta(
        minutes=15
    )
    provider_wide = config.policy("prestador-a", "autenticacion")
    assert provider_wide.rules.outage.severity is Severity.HIGH
    assert provider_wide.rules.degradation.enabled
    one = config.policy("prestador-a", "carpeta")
    assert one.rules.outage.severity is Severity.HIGH
    assert not one.rules.degradation.enabled
    assert one.rules.degradation.after == timedelta(minutes=15)
    assert one.resolve_after == timedelta(minutes=1)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"routes": [{"audience": "authority", "sinks": ["nope"]}]}, "unknown sink 'nope'"),
        ({"rules": {"outage": {"afterr": "1m"}}}, "Extra inputs are not permitted"),
        (
            {"rules": {"sla_at_risk": {"burn_rates": [{"window": "2h", "above": 3}]}}},
            "1h, 6h, 1d or 3d",
        ),
        (
            {
                "sinks": [{"id": "f", "kind": "file", "directory": "x"}],
                "routes": [
                    {"audience": "authority", "sinks": ["f"]},
                    {"audience": "operations", "sinks": ["f"]},
                ],
            },
            "several audiences",
        ),
        (
            {
                "sinks": [{"id": "m", "kind": "email", "host": "h", "sender": "a@b.c"}],
                "routes": [{"audience": "authority", "sinks": ["m"]}],
            },
            "'to' is required",
        ),
        (
            {"sinks": [{"id": "w", "kind": "webhook", "url": "ftp://x", "secret": {"env": "S"}}]},
            "http:// or https://",
        ),
        ({"sinks": [{"id": "w", "kind": "webhook", "url": "https://x"}]}, "secret"),
        ({"evaluate_every": "0s"}, "must be positive"),
    ],
)
def test_invalid_configurations(data: dict, message: str) -> None:  # type: ignore[type-arg]
    with pytest.raises(ValidationError, match=message):
        IncidentsConfig.model_validate(data)


def test_secrets_from_env_and_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "clave").write_text("desde-archivo\n")
    config = IncidentsConfig.model_validate(
        {
            "sinks": [
                {
                    "id": "a",
                    "kind": "webhook",
                    "url": "https://a.example",
                    "secret": {"env": "SCD_T_A"},
                },
                {
                    "id": "b",
                    "kind": "webhook",
                    "url": "https://b.example",
                    "secret": {"file": "clave"},
                },
                {
                    "id": "c",
                    "kind": "webhook",
                    "url": "https://c.example",
                    "secret": {"file": "falta"},
                },
            ]
        }
    )
    problems = secret_problems(config, tmp_path)
    assert problems == [
        (("incidents", "sinks", 0, "secret"), "environment variable 'SCD_T_A' is not set"),
        (("incidents", "sinks", 2, "secret"), f"secret file not found: {tmp_path / 'falta'}"),
    ]
    monkeypatch.setenv("SCD_T_A", "desde-entorno")
    partial = config.model_copy(update={"sinks": config.sinks[:2]})
    resolved = resolve_secrets(partial, tmp_path)
    values = []
    for sink in resolved.sinks:
        assert isinstance(sink, WebhookSinkConfig) and sink.secret.value is not None
        values.append(sink.secret.value.get_secret_value())
    assert values == ["desde-entorno", "desde-archivo"]
    assert "desde" not in repr(resolved) and "desde" not in resolved.model_dump_json()


def test_monitor_faults_never_go_to_the_authority_or_providers() -> None:
    config = IncidentsConfig.model_validate(
        {
            "sinks": [
                {"id": "m", "kind": "file", "directory": "m"},
                {"id": "p", "kind": "file", "directory": "p"},
                {"id": "o", "kind": "file", "directory": "o"},
            ],
            "routes": [
                {"audience": "authority", "sinks": ["m"]},
                {"audience": "provider", "sinks": ["p"]},
                {"audience": "operations", "sinks": ["o"]},
            ],
        }
    )
    planned = plan_deliveries(
        config,
        event_kind="opened",
        incident_type=SignalKind.MONITOR_FAULT,
        severity=Severity.CRITICAL,
        provider="scd-monitor",
        provider_contact=None,
    )
    assert [(p.sink, p.audience) for p in planned] == [("o", "operations")]
