"""Simulator scenarios: which fake endpoints exist and how each behaves over time.

A scenario is YAML (see :class:`Scenario` and ``config/simulator.example.yaml``), parsed
into validated models; behaviours are :class:`Behaviour` values.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any, Literal, get_args

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    PlainValidator,
    ValidationError,
    field_validator,
    model_validator,
)

from scd_monitor.config.durations import format_duration, parse_duration
from scd_monitor.config.types import SLUG_PATTERN
from scd_monitor.errors import ConfigError

__all__ = [
    "TLS_MODES",
    "At",
    "Behaviour",
    "BehaviourSpec",
    "EndpointKind",
    "EndpointSpec",
    "ListenerSpec",
    "Outage",
    "Phase",
    "Scenario",
    "TlsMode",
    "format_behaviour",
    "load_scenario",
    "parse_behaviour",
    "parse_scenario",
]

TlsMode = Literal["none", "valid", "expired", "self_signed"]
TLS_MODES: tuple[TlsMode, ...] = get_args(TlsMode)
EndpointKind = Literal["oidc", "carpeta", "xroad_health", "generic"]
Mode = Literal["healthy", "status", "hang", "reset", "bad_json", "garbage"]

_WORDS = ("healthy", "hang", "reset", "bad_json", "garbage")
_MAPPING_KEYS = ("status", "body", "slow")
_ENDPOINT_ID = rf"^{SLUG_PATTERN[1:-1]}/{SLUG_PATTERN[1:-1]}/{SLUG_PATTERN[1:-1]}$"


@dataclass(frozen=True, slots=True)
class Behaviour:
    """What an endpoint does with a request.

    ``mode`` ``healthy`` and ``status`` answer after ``delay``; the other modes act
    at once: ``hang`` never answers, ``reset`` aborts the TCP connection, ``bad_json``
    sends a truncated JSON body, ``garbage`` sends bytes that are not HTTP.
    """

    mode: Mode = "healthy"
    status: int | None = None
    body: str | None = None
    delay: timedelta = timedelta(0)

    @classmethod
    def healthy(cls) -> Behaviour:
        return cls()

    @classmethod
    def http_status(cls, status: int, body: str | None = None) -> Behaviour:
        spec: dict[str, object] = {"status": status}
        if body is not None:
            spec["body"] = body
        return parse_behaviour(spec)

    @classmethod
    def slow(cls, delay: timedelta | str | float) -> Behaviour:
        return cls(delay=parse_duration(delay))

    def to_spec(self) -> str | dict[str, Any]:
        """The YAML/JSON form this behaviour was (or could have been) written in."""
        return format_behaviour(self)


def parse_behaviour(value: object) -> Behaviour:
    """A :class:`Behaviour` from its YAML/JSON form; ``ValueError`` with a readable message."""
    if isinstance(value, Behaviour):
        return value
    if isinstance(value, str):
        if value in _WORDS:
            return Behaviour(mode=value)  # type: ignore[arg-type]  # checked against _WORDS
        raise ValueError(
            f"unknown behaviour {value!r}; expected one of {', '.join(_WORDS)}, "
            "or a mapping with 'status' (and 'body') and/or 'slow'"
        )
    if not isinstance(value, dict):
        raise ValueError(
            "a behaviour is a word (healthy, hang, reset, bad_json, garbage) "
            "or a mapping such as {status: 503} or {slow: 2s}"
        )
    unknown = [k for k in value if k not in _MAPPING_KEYS]
    if unknown:
        raise ValueError(
            f"unknown key(s) {', '.join(repr(k) for k in unknown)} in behaviour; "
            "expected 'status', 'body', 'slow'"
        )
    if "status" not in value and "slow" not in value:
        raise ValueError("a behaviour mapping needs 'status' and/or 'slow'")
    delay = timedelta(0)
    if "slow" in value:
        delay = parse_duration(value["slow"])
    if "status" not in value:
        if "body" in value:
            raise ValueError("'body' needs 'status'")
        return Behaviour(delay=delay)
    status = value["status"]
    if isinstance(status, bool) or not isinstance(status, int) or not 200 <= status <= 599:
        raise ValueError(f"'status' must be an HTTP status code from 200 to 599, got {status!r}")
    body = value.get("body")
    if body is not None and not isinstance(body, str):
        raise ValueError("'body' must be a string")
    return Behaviour(mode="status", status=status, body=body, delay=delay)


def format_behaviour(behaviour: Behaviour) -> str | dict[str, Any]:
    """The inverse of :func:`parse_behaviour`."""
    if behaviour.mode == "healthy" and not behaviour.delay:
        return "healthy"
    if behaviour.mode not in ("healthy", "status"):
        return behaviour.mode
    out: dict[str, Any] = {}
    if behaviour.status is not None:
        out["status"] = behaviour.status
    if behaviour.body is not None:
        out["body"] = behaviour.body
    if behaviour.delay:
        out["slow"] = format_duration(behaviour.delay)
    return out


BehaviourSpec = Annotated[
    Behaviour, PlainValidator(parse_behaviour), PlainSerializer(format_behaviour)
]
"""A behaviour field in a pydantic model: parsed from and serialised to its YAML form."""


def _parse_at(value: object) -> timedelta | datetime:
    if isinstance(value, datetime):
        instant = value
    elif isinstance(value, date):
        raise ValueError(f"'at' {value.isoformat()!r} is a date; give an instant with a time")
    else:
        try:
            return parse_duration(value)
        except ValueError:
            if not isinstance(value, str):
                raise
        try:
            instant = datetime.fromisoformat(value.strip())
        except ValueError:
            raise ValueError(
                f"invalid time {value!r}: use an offset from the start such as '90s' or "
                "an ISO-8601 instant such as '2030-01-01T08:00:00-05:00'"
            ) from None
    if instant.tzinfo is None:
        raise ValueError(f"instant {value!s} needs a UTC offset, e.g. '-05:00' or 'Z'")
    return instant


def _format_at(value: timedelta | datetime) -> str:
    return format_duration(value) if isinstance(value, timedelta) else value.isoformat()


At = Annotated[timedelta | datetime, PlainValidator(_parse_at), PlainSerializer(_format_at)]
"""When a phase starts: an offset from the simulator's start, or an aware instant."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Phase(_Strict):
    """From ``at`` on (until a later phase starts) the endpoint behaves like this."""

    at: At
    behaviour: BehaviourSpec


class Outage(_Strict):
    """Shortcut for three phases: normal, ``behaviour`` from ``from`` to ``to``, normal."""

    model_config = ConfigDict(populate_by_name=True)

    start: At = Field(alias="from")
    to: At
    behaviour: BehaviourSpec = Behaviour(mode="status", status=503)

    @model_validator(mode="after")
    def _ordered(self) -> Outage:
        start, to = self.start, self.to
        if (isinstance(start, timedelta) and isinstance(to, timedelta) and to <= start) or (
            isinstance(start, datetime) and isinstance(to, datetime) and to <= start
        ):
            raise ValueError("'to' must be later than 'from'")
        return self


class ListenerSpec(_Strict):
    """One listening socket; every endpoint with this TLS mode is served on it."""

    port: Annotated[int, Field(ge=0, le=65535)] = 0


class EndpointSpec(_Strict):
    """One fake endpoint, identified as ``provider/service/check``."""

    id: Annotated[str, Field(pattern=_ENDPOINT_ID)]
    path: str
    kind: EndpointKind = "generic"
    tls: TlsMode = "none"
    behaviour: BehaviourSpec | None = None
    timeline: Annotated[list[Phase], Field(min_length=1)] | None = None
    outage: Outage | None = None

    @model_validator(mode="before")
    @classmethod
    def _default_path(cls, data: Any) -> Any:
        if isinstance(data, dict) and "path" not in data and isinstance(data.get("id"), str):
            return {**data, "path": "/" + data["id"]}
        return data

    @field_validator("path")
    @classmethod
    def _valid_path(cls, value: str) -> str:
        if not value.startswith("/") or any(c.isspace() or c in "?#" for c in value):
            raise ValueError(f"path must start with '/' and hold no spaces, '?' or '#': {value!r}")
        if value == "/_sim" or value.startswith("/_sim/"):
            raise ValueError("paths under /_sim/ are reserved for the control API")
        return value

    @model_validator(mode="after")
    def _one_script(self) -> EndpointSpec:
        if self.timeline is not None and (self.behaviour is not None or self.outage is not None):
            raise ValueError("give either 'timeline' or 'behaviour'/'outage', not both")
        return self

    def phases(self) -> list[Phase]:
        """The endpoint's script as phases (``behaviour`` and ``outage`` expanded)."""
        if self.timeline is not None:
            return list(self.timeline)
        base = self.behaviour or Behaviour()
        phases = [Phase(at=timedelta(0), behaviour=base)]
        if self.outage is not None:
            phases.append(Phase(at=self.outage.start, behaviour=self.outage.behaviour))
            phases.append(Phase(at=self.outage.to, behaviour=base))
        return phases


class Scenario(_Strict):
    """A whole scenario file.

    A scenario is YAML (see ``config/simulator.example.yaml``)::

        listeners:                      # optional: fixed ports per TLS mode (default 0 = any)
          none: {port: 8080}
        endpoints:
          - id: prestador-a/autenticacion/oidc    # provider/service/check, each a slug
            kind: oidc                  # oidc | carpeta | xroad_health | generic
            tls: valid                  # none | valid | expired | self_signed
            behaviour: healthy          # one behaviour for ever ...
            outage: {from: 2m, to: 4m, behaviour: {status: 503}}   # ... with one outage
          - id: prestador-b/interoperabilidad/health
            kind: xroad_health
            timeline:                   # ... or phases; the latest one whose 'at' has passed
              - {at: 0s, behaviour: healthy}
              - {at: 90s, behaviour: {slow: 5s}}
              - {at: "2030-01-01T08:00:00-05:00", behaviour: reset}

    Behaviours: ``healthy``, ``hang``, ``reset``, ``bad_json``, ``garbage`` as words, or a
    mapping ``{status: 503, body: "..."}``, ``{slow: 2s}`` (then healthy) or both
    ``{slow: 2s, status: 504}``. Offsets count from the simulator's start; instants need
    a UTC offset. Before the first phase an endpoint is healthy.
    """

    listeners: dict[TlsMode, ListenerSpec] = Field(default_factory=dict)
    endpoints: list[EndpointSpec] = Field(default_factory=list)

    @field_validator("endpoints")
    @classmethod
    def _unique(cls, value: list[EndpointSpec]) -> list[EndpointSpec]:
        ids: set[str] = set()
        routes: set[tuple[str, str]] = set()
        for endpoint in value:
            if endpoint.id in ids:
                raise ValueError(f"duplicate endpoint id {endpoint.id!r}")
            if (endpoint.tls, endpoint.path) in routes:
                raise ValueError(
                    f"duplicate path {endpoint.path!r} on the {endpoint.tls!r} listener"
                )
            ids.add(endpoint.id)
            routes.add((endpoint.tls, endpoint.path))
        return value

    @field_validator("listeners")
    @classmethod
    def _distinct_ports(cls, value: dict[TlsMode, ListenerSpec]) -> dict[TlsMode, ListenerSpec]:
        ports = [spec.port for spec in value.values() if spec.port]
        if len(ports) != len(set(ports)):
            raise ValueError("two listeners share a fixed port")
        return value


# -- loading ---------------------------------------------------------------------------

Loc = tuple[str | int, ...]


def _lines(node: yaml.Node, path: Loc, out: dict[Loc, int]) -> None:
    out.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            key = key_node.value
            out[(*path, key)] = key_node.start_mark.line + 1
            _lines(value_node, (*path, key), out)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _lines(item, (*path, i), out)


def _fmt(loc: Loc) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def parse_scenario(text: str, *, filename: str = "<scenario>") -> Scenario:
    """Validate scenario YAML text; :class:`ConfigError` names file, line and key."""
    try:
        loader = yaml.SafeLoader(text)
        try:
            node = loader.get_single_node()
            data = loader.construct_document(node) if node is not None else None
        finally:
            loader.dispose()
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{filename}:{mark.line + 1}" if mark is not None else filename
        raise ConfigError(
            [f"{where}: invalid YAML: {getattr(exc, 'problem', None) or exc}"]
        ) from None
    if node is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError([f"{filename}:1: a scenario is a mapping with 'endpoints'"])
    lines: dict[Loc, int] = {}
    if node is not None:
        _lines(node, (), lines)
    try:
        return Scenario.model_validate(data)
    except ValidationError as exc:
        problems = []
        for err in exc.errors(include_url=False):
            loc: Loc = tuple(p for p in err["loc"] if p != "[key]")
            key = loc
            while key and key not in lines:
                key = key[:-1]
            line = lines.get(key)
            msg = err["msg"].removeprefix("Value error, ")
            if err["type"] == "extra_forbidden":
                msg = f"unknown key {loc[-1]!r}"
            elif err["type"] == "missing":
                msg = f"missing required key {loc[-1]!r}"
            where = f"{filename}:{line}" if line is not None else filename
            problems.append(f"{where}: {_fmt(loc) or '<root>'}: {msg}")
        raise ConfigError(problems) from None


def load_scenario(path: Path) -> Scenario:
    """Read and validate a scenario file. Raises :class:`ConfigError`."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError([f"{path}: cannot read scenario: {exc}"]) from None
    return parse_scenario(text, filename=str(path))
