"""Settings of one daemon: environment ``SCD_MONITOR_*``, an optional YAML settings file.

Precedence, highest first: explicit values (the CLI), environment variables,
``SCD_MONITOR_<NAME>_FILE`` (a secret read from a file, e.g. a Docker secret), the
settings file (``SCD_MONITOR_SETTINGS_FILE`` or ``--settings``), the defaults below.
"""

from __future__ import annotations

import os
import re
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import Field, SecretStr, field_validator
from pydantic.fields import FieldInfo
from pydantic_settings import (
    BaseSettings,
    InitSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from scd_monitor.config.durations import Duration
from scd_monitor.config.types import SLUG_PATTERN
from scd_monitor.errors import ConfigError

ENV_PREFIX = "SCD_MONITOR_"
DEFAULT_DATABASE_URL = "sqlite:///data/scd-monitor.db"


class Settings(BaseSettings):
    """Everything a daemon needs besides the catalog."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, extra="forbid", frozen=True, validate_default=True
    )

    database_url: SecretStr = SecretStr(DEFAULT_DATABASE_URL)
    """SQLAlchemy URL: ``sqlite:///path`` (default) or ``postgresql+psycopg://…``."""
    catalog: Path = Path("config/catalog.example.yaml")
    listen: str = "127.0.0.1:9464"
    """``host:port`` of the HTTP endpoints (``/metrics``, ``/healthz``, ``/readyz``)."""
    log_format: Literal["auto", "json", "console"] = "auto"
    """``auto``: JSON when standard error is not a terminal."""
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    vantage: str = Field(default="local", pattern=SLUG_PATTERN)
    """Where this daemon probes from; several vantages may share one database."""
    shard: str = "0/1"
    """``i/n``: this replica of the vantage probes the checks whose stable hash modulo
    ``n`` is ``i`` (Prometheus' ``hashmod``); shard 0 also does the vantage's once-only
    work (state tracking, SLA, incidents, export…). Default ``0/1``: every check."""
    probe_processes: Annotated[int, Field(ge=0, le=64)] | Literal["auto"] = "auto"
    """Processes that run this replica's probes, each a stable share of its checks
    (:func:`~scd_monitor.runtime.shard.worker_of`); the daemon's own process then only
    receives their results (store, states, SLA, incidents, ``/metrics``). ``0``: probe in
    the daemon's own event loop. ``auto``: one per usable core beyond the first, at most
    8; ``0`` on a single core."""
    max_concurrency: int = Field(default=256, ge=1, le=10_000)
    """At most this many probes in flight at once (per probing process)."""
    shutdown_grace: Duration = timedelta(seconds=15)
    """On SIGTERM, how long in-flight probes may take to finish."""
    store_batch_size: int = Field(default=500, ge=1)
    store_flush_interval: Duration = timedelta(milliseconds=500)
    store_buffer_limit: int = Field(default=200_000, ge=1000)
    """Results kept in memory while the database is unreachable."""
    state_interval: Duration = timedelta(seconds=5)
    """How often stored results are turned into state spans."""
    sla_interval: Duration = timedelta(seconds=60)
    """How often the month-to-date SLA metrics are recomputed from the store."""
    sla_worker: bool = True
    """Compute month-to-date SLA figures in a worker process (keeps the event loop free)."""
    export_dir: Path | None = Path("data/exports")
    """Where the monthly ANS export is written on the 1st; unset (empty) to disable."""
    results_retention: Duration = timedelta(days=40)
    """Raw probe results older than this are deleted once turned into spans (spans and
    latency rollups, which the SLA uses, are kept)."""
    usage_retention: Duration = timedelta(days=400)
    """X-Road use aggregates (15-minute buckets of operational data) older than this are
    deleted: long enough for last year's monthly export."""
    spool_dir: Path = Path("data/spool")
    """Where results the database could not take before a shutdown wait for the next start."""

    @field_validator("export_dir", mode="before")
    @classmethod
    def _empty_disables(cls, value: Any) -> Any:
        # `SCD_MONITOR_EXPORT_DIR=` (empty) disables the job; Path("") would be the
        # working directory.
        if value is None or (isinstance(value, str | Path) and not str(value).strip()):
            return None
        return value

    @field_validator("shard", mode="before")
    @classmethod
    def _shard(cls, value: Any) -> Any:
        if isinstance(value, str):
            index, count = parse_shard(value)
            return f"{index}/{count}"
        return value

    @property
    def probe_process_count(self) -> int:
        """:attr:`probe_processes` resolved: ``auto`` sized to the usable cores."""
        if self.probe_processes != "auto":
            return self.probe_processes
        return auto_probe_processes(usable_cores())

    @property
    def shard_index(self) -> int:
        return parse_shard(self.shard)[0]

    @property
    def shard_count(self) -> int:
        return parse_shard(self.shard)[1]

    @field_validator("listen")
    @classmethod
    def _host_port(cls, value: str) -> str:
        parse_listen(value)
        return value

    @property
    def listen_address(self) -> tuple[str, int]:
        return parse_listen(self.listen)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        settings_file = _settings_file(init_settings)
        sources: list[PydanticBaseSettingsSource] = [
            init_settings,
            env_settings,
            _SecretFileSource(settings_cls),
        ]
        if settings_file is not None:
            sources.append(_YamlFileSource(settings_cls, settings_file))
        return tuple(sources)


def _settings_file(init_settings: PydanticBaseSettingsSource) -> Path | None:
    explicit = None
    if isinstance(init_settings, InitSettingsSource):
        explicit = init_settings.init_kwargs.pop("settings_file", None)
    value = explicit or os.environ.get(f"{ENV_PREFIX}SETTINGS_FILE")
    return Path(value) if value else None


class _SecretFileSource(PydanticBaseSettingsSource):
    """``SCD_MONITOR_<NAME>_FILE=/path``: read a secret setting from a file."""

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        path = os.environ.get(f"{ENV_PREFIX}{field_name.upper()}_FILE")
        if not path:
            return None, field_name, False
        try:
            return Path(path).read_text(encoding="utf-8").strip(), field_name, False
        except OSError as exc:
            raise ConfigError(
                [f"{ENV_PREFIX}{field_name.upper()}_FILE: cannot read {path}: {exc.strerror}"]
            ) from None

    def __call__(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name, info in self.settings_cls.model_fields.items():
            if info.annotation is not SecretStr and "SecretStr" not in str(info.annotation):
                continue
            value, key, _ = self.get_field_value(info, name)
            if value is not None:
                out[key] = value
        return out


class _YamlFileSource(PydanticBaseSettingsSource):
    """A YAML mapping of setting names (without prefix) to values."""

    def __init__(self, settings_cls: type[BaseSettings], path: Path) -> None:
        super().__init__(settings_cls)
        self.path = path

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False  # pragma: no cover - __call__ does the work

    def __call__(self) -> dict[str, Any]:
        try:
            data = yaml.safe_load(self.path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise ConfigError([f"{self.path}: cannot read settings file: {exc.strerror}"]) from None
        except yaml.YAMLError as exc:
            raise ConfigError([f"{self.path}: invalid YAML: {exc}"]) from None
        if data is None:
            return {}
        if not isinstance(data, dict):
            raise ConfigError([f"{self.path}: the settings file must be a mapping"])
        return data


_LISTEN = re.compile(r"^(?:\[(?P<v6>[0-9a-fA-F:]+)\]|(?P<host>[^:\[\]]+)):(?P<port>\d{1,5})$")


def parse_listen(value: str) -> tuple[str, int]:
    """``"127.0.0.1:9464"`` → ``("127.0.0.1", 9464)``; ``"[::1]:9464"`` → ``("::1", 9464)``."""
    match = _LISTEN.match(value)
    if not match or not 0 <= int(match["port"]) <= 65535:
        raise ValueError(f"expected host:port (e.g. 127.0.0.1:9464), got {value!r}")
    return match["v6"] or match["host"], int(match["port"])


_SHARD = re.compile(r"^\s*(?P<i>\d{1,6})\s*/\s*(?P<n>\d{1,6})\s*$")


def usable_cores() -> int:
    """Cores this process may run on (its CPU affinity, e.g. a container's cpuset)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        return os.cpu_count() or 1


def auto_probe_processes(cores: int) -> int:
    """``probe_processes=auto``: one probing process per core beyond the first (that one
    is the daemon's: store, states, SLA, ``/metrics``), at most 8; none on one core."""
    return 0 if cores <= 1 else min(cores - 1, 8)


def parse_shard(value: str) -> tuple[int, int]:
    """``"1/3"`` → ``(1, 3)``: shard ``i`` of ``n`` replicas, ``n ≥ 1`` and ``0 ≤ i < n``."""
    match = _SHARD.match(value)
    if not match:
        raise ValueError(f"expected i/n, the shard i of n replicas (e.g. 0/3), got {value!r}")
    index, count = int(match["i"]), int(match["n"])
    if count < 1:
        raise ValueError(f"the number of replicas n must be at least 1, got {value!r}")
    if index >= count:
        raise ValueError(
            f"the shard i must be below the number of replicas n (0 … {count - 1}), got {value!r}"
        )
    return index, count


def load_settings(**overrides: Any) -> Settings:
    """Build settings, turning validation errors into a :class:`ConfigError`."""
    from pydantic import ValidationError

    clean = {k: v for k, v in overrides.items() if v is not None}
    try:
        return Settings(**clean)
    except ValidationError as exc:
        problems = []
        for err in exc.errors(include_url=False):
            name = ".".join(str(p) for p in err["loc"])
            msg = err["msg"].removeprefix("Value error, ")
            if err["type"] == "extra_forbidden":
                msg = "unknown setting"
            problems.append(f"{_source_of(name, clean)}: {msg}")
        raise ConfigError(problems) from None


def _source_of(name: str, flags: dict[str, Any]) -> str:
    """Where a bad setting came from, as the operator wrote it: the command-line flag,
    the environment variable, or the settings file (in that order of precedence)."""
    env = f"{ENV_PREFIX}{name.upper()}"
    if name in flags and name != "settings_file":
        return f"--{name.replace('_', '-')}"
    if env in os.environ or f"{env}_FILE" in os.environ:
        return f"setting {name!r} ({env})"
    settings_file = flags.get("settings_file") or os.environ.get(f"{ENV_PREFIX}SETTINGS_FILE")
    if settings_file:
        return f"{settings_file}: {name}"
    return f"setting {name!r} ({env})"
