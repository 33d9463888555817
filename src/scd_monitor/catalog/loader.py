"""Load a catalog YAML file into :class:`Catalog`, with errors that name file, line and key.

The YAML is composed into nodes first so that every key and list item keeps its line;
pydantic's error locations are then mapped back onto those lines. Checks that need the
whole tree (timeout shorter than interval, referenced files exist, secrets resolve) run
after the models validate, and report the same way.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

import yaml
from pydantic import SecretStr, ValidationError

from scd_monitor.catalog.incidents import resolve_secrets, secret_problems
from scd_monitor.catalog.models import (
    CHECK_KINDS,
    Catalog,
    CheckSpec,
    HttpCheck,
    ResolvedCheck,
    XRoadGlobalconfCheck,
    XRoadGlobalconfSource,
    XRoadMetaserviceCheck,
    XRoadSource,
)
from scd_monitor.config.types import SecretRef, TlsOptions
from scd_monitor.errors import ConfigError
from scd_monitor.sinks import SINK_KINDS

Loc = tuple[str | int, ...]


class _Marks:
    """Line numbers (1-based) of every key and list item, by path."""

    def __init__(self) -> None:
        self.lines: dict[Loc, int] = {}

    def line_for(self, data: Any, loc: Sequence[str | int]) -> tuple[Loc, int | None]:
        """The deepest path of ``loc`` present in ``data`` and its line.

        Pydantic adds union tags (``http``) to locations; they are not in the data and
        are skipped.
        """
        path: list[str | int] = []
        node = data
        for part in loc:
            if isinstance(node, Mapping):
                if part in node:
                    node = node[part]
                    path.append(part)
                elif (*path, part) in self.lines:
                    # A key that is missing, or a union tag: keep the key for the message.
                    path.append(part)
            elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
                node = node[part]
                path.append(part)
        return tuple(path), self.line_of(tuple(path))

    def line_of(self, path: Loc) -> int | None:
        """The line of ``path``, or of its nearest recorded parent."""
        while path and path not in self.lines:
            path = path[:-1]
        return self.lines.get(path)


class _Builder:
    """Turns a composed YAML node tree into plain Python values, recording marks."""

    def __init__(self, filename: str) -> None:
        self.filename = filename
        self.marks = _Marks()
        self.problems: list[str] = []
        self._constructor = yaml.constructor.SafeConstructor()

    def build(self, node: yaml.Node, path: Loc = ()) -> Any:
        self.marks.lines.setdefault(path, node.start_mark.line + 1)
        if isinstance(node, yaml.MappingNode):
            out: dict[Any, Any] = {}
            for key_node, value_node in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":
                    self.problems.append(
                        f"{self.filename}:{key_node.start_mark.line + 1}: "
                        f"{_fmt(path) or '<root>'}: YAML merge keys ('<<') are not supported"
                    )
                    continue
                key = self._constructor.construct_object(key_node, deep=True)
                if not isinstance(key, str | int):
                    key = str(key)
                if key in out:
                    self.problems.append(
                        f"{self.filename}:{key_node.start_mark.line + 1}: "
                        f"{_fmt((*path, key))}: duplicate key {key!r}"
                    )
                    continue
                self.marks.lines[(*path, key)] = key_node.start_mark.line + 1
                out[key] = self.build(value_node, (*path, key))
            return out
        if isinstance(node, yaml.SequenceNode):
            return [self.build(item, (*path, i)) for i, item in enumerate(node.value)]
        return self._constructor.construct_object(node, deep=True)


def _fmt(loc: Sequence[str | int]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def load_catalog(path: str | os.PathLike[str]) -> Catalog:
    """Read, parse and validate a catalog file. Raises :class:`ConfigError`."""
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError([f"{file}: cannot read catalog: {exc.strerror or exc}"]) from None
    except UnicodeDecodeError as exc:
        raise ConfigError([f"{file}: catalog is not UTF-8 text: {exc.reason}"]) from None
    return parse_catalog(text, filename=str(file), base_dir=file.parent)


def parse_catalog(
    text: str, *, filename: str = "<catalog>", base_dir: Path | None = None
) -> Catalog:
    """Validate catalog YAML text. Relative file paths resolve against ``base_dir``."""
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{filename}:{mark.line + 1}" if mark is not None else filename
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError([f"{where}: invalid YAML: {problem}"]) from None
    if root is None:
        raise ConfigError([f"{filename}:1: the catalog is empty"])
    builder = _Builder(filename)
    data = builder.build(root)
    if builder.problems:
        raise ConfigError(builder.problems)
    if not isinstance(data, dict):
        raise ConfigError([f"{filename}:1: the catalog must be a mapping with 'providers'"])
    try:
        catalog = Catalog.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_pydantic_problems(exc, data, builder.marks, filename)) from None
    problems = _semantic_problems(catalog, data, builder.marks, filename, base_dir or Path())
    if problems:
        raise ConfigError(problems)
    return _resolve_files(catalog, base_dir or Path())


_KINDS = ", ".join(repr(kind) for kind in CHECK_KINDS)
_SINK_KINDS = ", ".join(repr(kind) for kind in SINK_KINDS)


def _pydantic_problems(exc: ValidationError, data: Any, marks: _Marks, filename: str) -> list[str]:
    problems = []
    for err in exc.errors(include_url=False):
        loc = err["loc"]
        path, line = marks.line_for(data, loc)
        msg = err["msg"]
        if err["type"] == "extra_forbidden":
            msg = f"unknown key {loc[-1]!r}"
        elif err["type"] == "missing":
            path = (*path, loc[-1]) if path[-1:] != (loc[-1],) else path
            msg = f"missing required key {loc[-1]!r}"
        elif err["type"] == "union_tag_invalid":
            what, kinds = ("sink", _SINK_KINDS) if loc[:1] == ("incidents",) else ("check", _KINDS)
            msg = f"unknown {what} kind; expected one of {kinds}"
            path = (*path, "kind") if "kind" in _at(data, path) else path
        elif err["type"] == "union_tag_not_found":
            kinds = _SINK_KINDS if loc[:1] == ("incidents",) else _KINDS
            msg = f"missing required key 'kind' (one of {kinds})"
        msg = msg.removeprefix("Value error, ")
        line = marks.line_of(path) or line
        where = f"{filename}:{line}" if line is not None else filename
        problems.append(f"{where}: {_fmt(path) or '<root>'}: {msg}")
    return problems


def _at(data: Any, path: Loc) -> Any:
    node = data
    for part in path:
        node = node[part]
    return node if isinstance(node, Mapping) else {}


def _semantic_problems(
    catalog: Catalog, data: Any, marks: _Marks, filename: str, base_dir: Path
) -> list[str]:
    problems: list[str] = []

    def report(loc: Loc, msg: str) -> None:
        _path, line = marks.line_for(data, loc)
        where = f"{filename}:{line}" if line is not None else filename
        problems.append(f"{where}: {_fmt(loc)}: {msg}")

    resolved = catalog.resolved_checks(include_disabled=True)
    canaries = [c for c in resolved if c.canary]
    checks = iter(c for c in resolved if not c.canary)
    defaults: tuple[Loc, Any] = (("defaults",), catalog.defaults)
    # Each check with the chain it inherits interval and timeout through, nearest first.
    located: list[tuple[Loc, ResolvedCheck, list[tuple[Loc, Any]]]] = [
        (("monitor", "canaries", i), c, [(("monitor", "canaries", i), c.spec), defaults])
        for i, c in enumerate(canaries)
    ]
    for p, provider in enumerate(catalog.providers):
        for s, service in enumerate(provider.services):
            for c in range(len(service.checks)):
                at_check: Loc = ("providers", p, "services", s, "checks", c)
                resolved_check = next(checks)
                chain = [
                    (at_check, resolved_check.spec),
                    (("providers", p, "services", s), service),
                    (("providers", p), provider),
                    defaults,
                ]
                located.append((at_check, resolved_check, chain))
    blamed: set[Loc] = set()
    for here, check, chain in located:
        spec = check.spec
        if check.timeout >= check.interval:
            # Blame the nearer of the two settings, where it is written (the check's own
            # line, or its service's, provider's or the defaults' once for all).
            t_at = next(i for i, (_, o) in enumerate(chain) if o.timeout is not None)
            i_at = next(i for i, (_, o) in enumerate(chain) if o.interval is not None)
            key, at = ("timeout", t_at) if t_at <= i_at else ("interval", i_at)
            loc = (*chain[at][0], key)
            if loc not in blamed:
                blamed.add(loc)
                report(
                    loc,
                    f"timeout ({check.timeout.total_seconds():g}s) must be shorter "
                    f"than interval ({check.interval.total_seconds():g}s)",
                )
        if check.interval.total_seconds() < 1:
            report((*here, "interval"), "interval must be at least 1s")
        if check.timeout.total_seconds() <= 0:
            report((*here, "timeout"), "timeout must be positive")
        for where, path in _files_of(spec):
            if not (base_dir / path).is_file():
                report((*here, *where), f"file not found: {base_dir / path}")
        if isinstance(spec, HttpCheck):
            for name, ref in spec.secret_headers.items():
                err = _secret_problem(ref, base_dir)
                if err:
                    report((*here, "secret_headers", name), err)
            overlap = {k.lower() for k in spec.headers} & {k.lower() for k in spec.secret_headers}
            if overlap:
                report(
                    (*here, "secret_headers"),
                    f"header(s) {sorted(overlap)} also set in 'headers'",
                )
    for loc, msg in secret_problems(catalog.incidents, base_dir):
        report(loc, msg)
    static = {p.id: i for i, p in enumerate(catalog.providers)}
    for i, source in enumerate(catalog.xroad):
        if source.provider.id in static:
            report(
                ("providers", static[source.provider.id], "id"),
                f"provider id {source.provider.id!r} is also the provider of xroad source "
                f"{source.id!r}; give the discovered platform a provider of its own",
            )
        if source.timeout >= source.interval:
            report(
                ("xroad", i, "timeout"),
                f"timeout ({source.timeout.total_seconds():g}s) must be shorter "
                f"than interval ({source.interval.total_seconds():g}s)",
            )
        for where, path in _source_files(source):
            if not (base_dir / path).is_file():
                report(("xroad", i, *where), f"file not found: {base_dir / path}")
        template = source.template
        here = ("xroad", i, "template")
        templated: list[tuple[Loc, timedelta | None, timedelta | None]] = [
            (here, None, None)  # the platform checks take the template's own terms
        ]
        for group in ("subsystem_checks", "service_checks"):
            for j, item in enumerate(getattr(template, group)):
                templated.append(((*here, group, j), item.interval, item.timeout))
        for loc, own_interval, own_timeout in templated:
            interval = own_interval or template.interval or catalog.defaults.interval
            timeout = own_timeout or template.timeout or catalog.defaults.timeout
            if timeout >= interval:
                key = "timeout" if (own_timeout or template.timeout) else "interval"
                report(
                    (*loc, key),
                    f"timeout ({timeout.total_seconds():g}s) must be shorter "
                    f"than interval ({interval.total_seconds():g}s)",
                )
            elif interval.total_seconds() < 1:
                report((*loc, "interval"), "interval must be at least 1s")
    return problems


def _tls_files(tls: TlsOptions, where: Loc) -> list[tuple[Loc, Path]]:
    return [
        ((*where, field), value)
        for field in ("ca_file", "client_cert", "client_key")
        if (value := getattr(tls, field)) is not None
    ]


def _files_of(spec: CheckSpec) -> list[tuple[Loc, Path]]:
    """Every file a check names, with where it is named (relative to the check)."""
    if isinstance(spec, XRoadMetaserviceCheck):
        return _tls_files(spec.security_server.tls, ("security_server", "tls"))
    files = _tls_files(spec.tls, ("tls",))
    if isinstance(spec, XRoadGlobalconfCheck):
        files += [((f,), v) for f in ("verification_cert", "anchor") if (v := getattr(spec, f))]
    return files


def _source_files(source: XRoadSource) -> list[tuple[Loc, Path]]:
    files: list[tuple[Loc, Path]] = []
    if source.globalconf is not None:
        conf = source.globalconf
        files += _tls_files(conf.tls, ("globalconf", "tls"))
        for field in ("verification_cert", "anchor"):
            value = getattr(conf, field)
            if value is not None:
                files.append((("globalconf", field), value))
    if source.security_server is not None:
        files += _tls_files(source.security_server.tls, ("security_server", "tls"))
    return files


def _secret_problem(ref: SecretRef, base_dir: Path) -> str | None:
    if ref.env is not None and ref.env not in os.environ:
        return f"environment variable {ref.env!r} is not set"
    if ref.file is not None and not (base_dir / ref.file).is_file():
        return f"secret file not found: {base_dir / ref.file}"
    return None


def _resolve_files(catalog: Catalog, base_dir: Path) -> Catalog:
    """Make file paths absolute and read secrets, returning a new immutable catalog."""

    def tls(opts: TlsOptions) -> TlsOptions:
        update = {
            f: (base_dir / v).resolve()
            for f in ("ca_file", "client_cert", "client_key")
            if (v := getattr(opts, f)) is not None
        }
        return opts.model_copy(update=update) if update else opts

    def secret(ref: SecretRef) -> SecretRef:
        if ref.env is not None:
            raw = os.environ[ref.env]
        else:
            assert ref.file is not None
            raw = (base_dir / ref.file).read_text(encoding="utf-8").strip()
        return ref.model_copy(update={"value": SecretStr(raw)})

    def path(value: Path | None) -> Path | None:
        return None if value is None else (base_dir / value).resolve()

    def check(spec: CheckSpec) -> CheckSpec:
        update: dict[str, Any] = {}
        if isinstance(spec, XRoadMetaserviceCheck):
            ss = spec.security_server
            update["security_server"] = ss.model_copy(update={"tls": tls(ss.tls)})
        else:
            update["tls"] = tls(spec.tls)
        if isinstance(spec, HttpCheck) and spec.secret_headers:
            update["secret_headers"] = {k: secret(v) for k, v in spec.secret_headers.items()}
        if isinstance(spec, XRoadGlobalconfCheck):
            update["verification_cert"] = path(spec.verification_cert)
            update["anchor"] = path(spec.anchor)
        return spec.model_copy(update=update)

    def conf(source: XRoadGlobalconfSource) -> XRoadGlobalconfSource:
        return source.model_copy(
            update={
                "tls": tls(source.tls),
                "verification_cert": path(source.verification_cert),
                "anchor": path(source.anchor),
            }
        )

    def xroad(source: XRoadSource) -> XRoadSource:
        update: dict[str, Any] = {}
        if source.globalconf is not None:
            update["globalconf"] = conf(source.globalconf)
        if source.security_server is not None:
            ss = source.security_server
            update["security_server"] = ss.model_copy(update={"tls": tls(ss.tls)})
        return source.model_copy(update=update)

    providers = [
        p.model_copy(
            update={
                "services": [
                    s.model_copy(update={"checks": [check(c) for c in s.checks]})
                    for s in p.services
                ]
            }
        )
        for p in catalog.providers
    ]
    monitor = catalog.monitor.model_copy(
        update={"canaries": [check(c) for c in catalog.monitor.canaries]}
    )
    sources = [xroad(s) for s in catalog.xroad]
    incidents = resolve_secrets(catalog.incidents, base_dir)
    return catalog.model_copy(
        update={
            "providers": providers,
            "monitor": monitor,
            "xroad": sources,
            "incidents": incidents,
        }
    )
