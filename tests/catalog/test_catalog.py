"""Catalog loading: the invalid corpus (one file per rule) and inheritance."""

from __future__ import annotations

import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest

from scd_monitor.catalog import HttpCheck, load_catalog, parse_catalog
from scd_monitor.config.durations import parse_duration
from scd_monitor.errors import ConfigError

INVALID = sorted((Path(__file__).parent / "invalid").glob("*.yaml"))
ROOT = Path(__file__).parents[2]


def expected_message(path: Path) -> str:
    first = path.read_text(encoding="utf-8").splitlines()[0]
    assert first.startswith("# expect: "), f"{path.name} lacks its '# expect:' line"
    return first.removeprefix("# expect: ")


@pytest.mark.parametrize("path", INVALID, ids=[p.stem for p in INVALID])
def test_invalid_catalog_is_rejected_with_its_message(path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_catalog(path)
    expected = expected_message(path)
    assert any(expected in problem for problem in info.value.problems), info.value.problems
    assert all(problem.startswith(str(path)) for problem in info.value.problems)


def test_the_corpus_covers_many_rules() -> None:
    assert len(INVALID) >= 20


@pytest.mark.parametrize("path", INVALID[:3], ids=[p.stem for p in INVALID[:3]])
def test_validate_command_exits_non_zero_with_the_message(path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "scd_monitor", "validate", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 2
    assert expected_message(path) in proc.stderr


def test_example_catalog_is_valid_and_validate_says_ok() -> None:
    path = ROOT / "config" / "catalog.example.yaml"
    catalog = load_catalog(path)
    kinds = {c.kind for c in catalog.resolved_checks()}
    assert {"http", "tls"} <= kinds
    types = {s.type for p in catalog.providers for s in p.services}
    assert {"autenticacion_digital", "carpeta_ciudadana", "interoperabilidad"} <= types
    proc = subprocess.run(
        [sys.executable, "-m", "scd_monitor", "validate", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert "OK" in proc.stdout


def test_interval_and_timeout_inherit_downwards() -> None:
    catalog = parse_catalog(
        """
defaults: {interval: 1m, timeout: 20s}
providers:
  - id: p
    name: P
    timeout: 15s
    services:
      - id: s
        type: otro
        interval: 2m
        checks:
          - {id: a, kind: tls, host: a.example}
          - {id: b, kind: tls, host: b.example, timeout: 3s, interval: 10s}
  - id: q
    name: Q
    services:
      - id: s
        type: otro
        checks: [{id: c, kind: tls, host: c.example}]
"""
    )
    got = {c.id: (c.interval, c.timeout) for c in catalog.resolved_checks()}
    assert got == {
        "p/s/a": (timedelta(minutes=2), timedelta(seconds=15)),
        "p/s/b": (timedelta(seconds=10), timedelta(seconds=3)),
        "q/s/c": (timedelta(minutes=1), timedelta(seconds=20)),
    }


def test_disabled_checks_are_not_scheduled_but_still_validated() -> None:
    catalog = parse_catalog(
        """
providers:
  - id: p
    name: P
    services:
      - id: s
        type: otro
        checks:
          - {id: a, kind: tls, host: a.example, enabled: false}
          - {id: b, kind: tls, host: b.example}
"""
    )
    assert [c.id for c in catalog.resolved_checks()] == ["p/s/b"]
    assert len(catalog.resolved_checks(include_disabled=True)) == 2


def test_relative_files_resolve_against_the_catalog_and_secrets_are_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "certs").mkdir()
    (tmp_path / "certs" / "ca.pem").write_text("not parsed here")
    (tmp_path / "token").write_text("file-secret\n")
    monkeypatch.setenv("SCD_TEST_TOKEN", "env-secret")
    path = tmp_path / "catalog.yaml"
    path.write_text(
        """
providers:
  - id: p
    name: P
    services:
      - id: s
        type: otro
        checks:
          - id: a
            kind: http
            url: https://a.example/
            tls: {ca_file: certs/ca.pem}
            secret_headers:
              Authorization: {env: SCD_TEST_TOKEN}
              X-Api-Key: {file: token}
"""
    )
    (check,) = load_catalog(path).resolved_checks()
    spec = check.spec
    assert isinstance(spec, HttpCheck)
    assert spec.tls.ca_file == (tmp_path / "certs" / "ca.pem").resolve()
    values = {k: v.value for k, v in spec.secret_headers.items()}
    assert values["Authorization"] is not None
    assert values["Authorization"].get_secret_value() == "env-secret"
    assert values["X-Api-Key"] is not None
    assert values["X-Api-Key"].get_secret_value() == "file-secret"
    assert "env-secret" not in repr(check)
    assert "file-secret" not in repr(check)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("30s", 30), ("1m30s", 90), ("500ms", 0.5), ("2h", 7200), ("1d", 86400), (15, 15)],
)
def test_durations(text: str | int, seconds: float) -> None:
    assert parse_duration(text).total_seconds() == seconds


@pytest.mark.parametrize("text", ["", "30", "30 s", "s30", "1x", "-5s", True])
def test_bad_durations(text: str | bool) -> None:
    with pytest.raises(ValueError, match="duration"):
        parse_duration(text)


def test_a_timeout_set_in_defaults_is_blamed_once_at_the_defaults_line() -> None:
    path = Path(__file__).parent / "invalid" / "defaults-timeout-not-below-interval.yaml"
    with pytest.raises(ConfigError) as info:
        load_catalog(path)
    assert info.value.problems == [f"{path.parent}/{expected_message(path)}"]
