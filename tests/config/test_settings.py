"""Settings: defaults, environment, *_FILE secrets, settings file, precedence, errors."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from scd_monitor.config.settings import DEFAULT_DATABASE_URL, load_settings, parse_listen
from scd_monitor.errors import ConfigError


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for key in list(os.environ):
        if key.startswith("SCD_MONITOR_"):
            monkeypatch.delenv(key)


def test_defaults() -> None:
    s = load_settings()
    assert s.database_url.get_secret_value() == DEFAULT_DATABASE_URL
    assert s.listen_address == ("127.0.0.1", 9464)
    assert s.catalog == Path("config/catalog.example.yaml")
    assert s.vantage == "local"
    assert s.log_format == "auto"


def test_environment_and_secret_files(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    secret = tmp_path / "db-url"
    secret.write_text("postgresql+psycopg://scd:pw@127.0.0.1/scd\n")
    monkeypatch.setenv("SCD_MONITOR_DATABASE_URL_FILE", str(secret))
    monkeypatch.setenv("SCD_MONITOR_LISTEN", "[::1]:9500")
    monkeypatch.setenv("SCD_MONITOR_VANTAGE", "bogota-1")
    monkeypatch.setenv("SCD_MONITOR_SHUTDOWN_GRACE", "30s")
    monkeypatch.setenv("SCD_MONITOR_LOG_FORMAT", "json")
    s = load_settings()
    assert s.database_url.get_secret_value() == "postgresql+psycopg://scd:pw@127.0.0.1/scd"
    assert "pw" not in repr(s)
    assert s.listen_address == ("::1", 9500)
    assert s.vantage == "bogota-1"
    assert s.shutdown_grace == timedelta(seconds=30)
    assert s.log_format == "json"


def test_precedence_cli_over_env_over_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    settings_file = tmp_path / "settings.yaml"
    settings_file.write_text("vantage: from-file\nmax_concurrency: 12\nlisten: 127.0.0.1:1000\n")
    monkeypatch.setenv("SCD_MONITOR_LISTEN", "127.0.0.1:2000")
    s = load_settings(settings_file=settings_file)
    assert (s.vantage, s.max_concurrency, s.listen) == ("from-file", 12, "127.0.0.1:2000")
    s = load_settings(settings_file=settings_file, listen="127.0.0.1:3000", catalog="x.yaml")
    assert s.listen == "127.0.0.1:3000"
    assert s.catalog == Path("x.yaml")


def test_settings_file_from_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    settings_file = tmp_path / "settings.yaml"
    settings_file.write_text("vantage: medellin\n")
    monkeypatch.setenv("SCD_MONITOR_SETTINGS_FILE", str(settings_file))
    assert load_settings().vantage == "medellin"


@pytest.mark.parametrize(
    ("env", "value", "message"),
    [
        ("SCD_MONITOR_LISTEN", "9464", "expected host:port"),
        ("SCD_MONITOR_VANTAGE", "Bogotá 1", "String should match pattern"),
        ("SCD_MONITOR_LOG_FORMAT", "xml", "Input should be"),
        ("SCD_MONITOR_MAX_CONCURRENCY", "0", "greater than or equal to 1"),
        ("SCD_MONITOR_SHUTDOWN_GRACE", "soon", "invalid duration"),
    ],
)
def test_invalid_settings_name_the_variable(
    monkeypatch: pytest.MonkeyPatch, env: str, value: str, message: str
) -> None:
    monkeypatch.setenv(env, value)
    with pytest.raises(ConfigError) as info:
        load_settings()
    (problem,) = info.value.problems
    assert env in problem
    assert message in problem


def test_unknown_key_in_settings_file(tmp_path: Path) -> None:
    settings_file = tmp_path / "settings.yaml"
    settings_file.write_text("vantaje: typo\n")
    with pytest.raises(ConfigError, match="vantaje"):
        load_settings(settings_file=settings_file)


def test_unreadable_secret_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("SCD_MONITOR_DATABASE_URL_FILE", str(tmp_path / "missing"))
    with pytest.raises(ConfigError, match="SCD_MONITOR_DATABASE_URL_FILE"):
        load_settings()


def test_parse_listen() -> None:
    assert parse_listen("[::1]:80") == ("::1", 80)
    assert parse_listen("localhost:9464") == ("localhost", 9464)
    with pytest.raises(ValueError, match="host:port"):
        parse_listen("127.0.0.1:99999")


def test_a_bad_flag_is_blamed_on_the_flag_not_the_environment() -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(listen="nonsense")
    assert info.value.problems == [
        "--listen: expected host:port (e.g. 127.0.0.1:9464), got 'nonsense'"
    ]


def test_a_bad_environment_variable_is_blamed_on_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SCD_MONITOR_LISTEN", "nonsense")
    with pytest.raises(ConfigError) as info:
        load_settings()
    assert info.value.problems[0].startswith("setting 'listen' (SCD_MONITOR_LISTEN): expected")


def test_a_bad_value_in_the_settings_file_is_blamed_on_the_file(tmp_path: Path) -> None:
    settings_file = tmp_path / "settings.yaml"
    settings_file.write_text("listen: nonsense\n")
    with pytest.raises(ConfigError) as info:
        load_settings(settings_file=settings_file)
    assert info.value.problems[0].startswith(f"{settings_file}: listen: expected")


def test_an_empty_export_dir_disables_the_job(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SCD_MONITOR_EXPORT_DIR", "")
    assert load_settings().export_dir is None
    monkeypatch.setenv("SCD_MONITOR_EXPORT_DIR", "/exports")
    assert load_settings().export_dir == Path("/exports")


def test_a_config_error_keeps_its_problems_across_processes() -> None:
    """The SLA worker runs in another process: its ConfigError arrives with its lines
    (pickling used to turn them into a list of characters)."""
    import pickle

    problems = ["catalog.yaml:3: providers: required", "catalog.yaml:9: interval: too large"]
    assert pickle.loads(pickle.dumps(ConfigError(problems))).problems == problems  # noqa: S301


def test_shard_defaults_to_everything_and_reads_i_of_n(monkeypatch: pytest.MonkeyPatch) -> None:
    s = load_settings()
    assert (s.shard, s.shard_index, s.shard_count) == ("0/1", 0, 1)
    monkeypatch.setenv("SCD_MONITOR_SHARD", " 2 / 3 ")
    s = load_settings()
    assert (s.shard, s.shard_index, s.shard_count) == ("2/3", 2, 3)


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("3/3", "the shard i must be below the number of replicas n (0 … 2)"),
        ("0/0", "the number of replicas n must be at least 1"),
        ("1", "expected i/n"),
        ("-1/2", "expected i/n"),
        ("a/b", "expected i/n"),
    ],
)
def test_a_bad_shard_is_refused_clearly(
    monkeypatch: pytest.MonkeyPatch, value: str, problem: str
) -> None:
    monkeypatch.setenv("SCD_MONITOR_SHARD", value)
    with pytest.raises(ConfigError) as exc:
        load_settings()
    (line,) = exc.value.problems
    assert line.startswith("setting 'shard' (SCD_MONITOR_SHARD): ")
    assert problem in line
