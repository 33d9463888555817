"""Load a catalog YAML file into :class:`Catalog`, with errors that name file, line and key.

The YAML is composed into nodes first so that every key and list item keeps its line;
pydantic's error locations are then mapped back onto those lines. Checks that need the
whole tree (timeout shorter than interval, referenced files exist, secrets resolve) run
after the models validate, and report the same way.

The file is hostile input as far as memory and time go (an operator's typo, or a file
someone else wrote): it is read with hard bounds, refused with a ``file:line`` error when
it crosses one, and never handed to a recursive algorithm deeper than :data:`MAX_DEPTH`:

- at most :data:`MAX_CATALOG_BYTES` of text;
- at most :data:`MAX_DEPTH` levels of nesting, as written and as aliases expand it;
- at most :data:`MAX_NODES` YAML values as written;
- aliases (``*name``) may add at most :data:`MAX_ALIAS_EXPANSION` values in all (an
  "alias bomb" of 9 levels of 9 aliases would add hundreds of millions), and never refer
  to the node that contains them.

Events come from libyaml when PyYAML has it (the scanner in C is 20 times faster than the
pure-Python one), and the nodes are composed here, so the bounds hold with either parser.
A caller that loads in a worker thread may pass ``cancelled``: loading then stops at the
next YAML value once it returns True (:class:`LoadCancelled`).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any, cast

import yaml
from pydantic import SecretStr, ValidationError

from scd_monitor.catalog.incidents import resolve_secrets, secret_problems
from scd_monitor.catalog.models import (
    CHECK_KINDS,
    Catalog,
    CheckSpec,
    HttpCheck,
    OidcCheck,
    ResolvedCheck,
    XRoadGlobalconfCheck,
    XRoadGlobalconfSource,
    XRoadMetaserviceCheck,
    XRoadSource,
)
from scd_monitor.config.types import SecretRef, TlsOptions
from scd_monitor.errors import ConfigError
from scd_monitor.sinks import SINK_KINDS

__all__ = [
    "MAX_ALIAS_EXPANSION",
    "MAX_CATALOG_BYTES",
    "MAX_DEPTH",
    "MAX_NODES",
    "LoadCancelled",
    "load_catalog",
    "parse_catalog",
]

Loc = tuple[str | int, ...]

MAX_CATALOG_BYTES = 8 * 1024 * 1024
"""Largest catalog file read (a catalog of 50,000 checks is about 3.5 MB)."""
MAX_DEPTH = 64
"""Deepest nesting of YAML collections (a catalog needs about 10)."""
MAX_NODES = 1_000_000
"""Most YAML values (scalars, lists, mappings, keys included) a catalog may hold as
written; 50,000 checks are about 360,000."""
MAX_ALIAS_EXPANSION = 10_000
"""Most values that aliases may add to the catalog, all aliases together."""
MAX_PROBLEMS = 50
"""Problems listed in one error; the rest are counted."""
MAX_PROBLEM_CHARS = 500
"""Longest problem line (an offending value is quoted, and may be long)."""


def _libyaml_parser() -> Callable[[bytes], Any] | None:
    """libyaml's event parser, when PyYAML was built with it."""
    try:
        from yaml import cyaml
    except ImportError:  # pragma: no cover - PyYAML built without libyaml
        return None
    parser: Callable[[bytes], Any] | None = getattr(cyaml, "CParser", None)
    return parser


_C_PARSER = _libyaml_parser()


class LoadCancelled(ConfigError):
    """Loading stopped because the caller's ``cancelled()`` said so (a daemon stopping)."""


class _Limit(Exception):
    """A bound crossed while composing; becomes one ``file:line`` problem."""

    def __init__(self, line: int, message: str) -> None:
        super().__init__(message)
        self.line = line
        self.message = message


class _Composer(yaml.composer.Composer, yaml.resolver.Resolver):
    """PyYAML's composer over a parser's events, with the bounds of this module.

    Aliases are composed as PyYAML does (the alias is the anchored node itself, shared),
    and each use is remembered so that :func:`_check_expansion` can weigh them.
    """

    def __init__(self, parser: Any, cancelled: Callable[[], bool] | None) -> None:
        yaml.composer.Composer.__init__(self)
        yaml.resolver.Resolver.__init__(self)
        # The parser's own methods, bound: PyYAML's composer calls them a million times
        # for a large catalog.
        self.check_event = parser.check_event
        self.peek_event = parser.peek_event
        self.get_event = parser.get_event
        self._cancelled = cancelled
        self.depth = 0
        self.nodes = 0
        self.aliases: list[tuple[str, int, yaml.Node]] = []

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node:
        if self._cancelled is not None and self._cancelled():
            raise LoadCancelled(["loading cancelled"])
        event = self.peek_event()
        line = _line_of(event.start_mark)
        if isinstance(event, yaml.AliasEvent):
            node = cast(yaml.Node, super().compose_node(parent, index))
            self.aliases.append((str(event.anchor), line, node))
            return node
        self.nodes += 1
        if self.nodes > MAX_NODES:
            raise _Limit(line, f"the catalog holds more than {MAX_NODES:,} YAML values")
        if self.depth >= MAX_DEPTH:
            raise _Limit(line, f"YAML nested deeper than {MAX_DEPTH} levels")
        self.depth += 1
        try:
            return cast(yaml.Node, super().compose_node(parent, index))
        finally:
            self.depth -= 1


def _line_of(mark: Any) -> int:
    return int(getattr(mark, "line", 0)) + 1 if mark is not None else 1


def _check_expansion(root: yaml.Node, composer: _Composer) -> None:
    """Refuse aliases that nest deeper than :data:`MAX_DEPTH`, refer to a node that
    contains them, or add more than :data:`MAX_ALIAS_EXPANSION` values in all.

    Sizes are computed once per distinct node (the graph is shared), so an alias bomb
    is weighed in microseconds, not expanded.
    """
    if not composer.aliases:
        return
    sizes: dict[int, tuple[int, int]] = {}  # id(node) -> (values, height)
    active: set[int] = set()

    def measure(node: yaml.Node, depth: int) -> int:
        key = id(node)
        known = sizes.get(key)
        if known is not None:
            size, height = known
            if depth + height > MAX_DEPTH:
                raise _Limit(
                    _line_of(node.start_mark),
                    f"YAML aliases nest deeper than {MAX_DEPTH} levels",
                )
            return size
        if key in active:
            raise _Limit(_line_of(node.start_mark), "a YAML alias refers to a node containing it")
        if depth > MAX_DEPTH:
            raise _Limit(
                _line_of(node.start_mark), f"YAML aliases nest deeper than {MAX_DEPTH} levels"
            )
        active.add(key)
        size, height = 1, 0
        children: list[yaml.Node] = []
        if isinstance(node, yaml.SequenceNode):
            children = list(node.value)
        elif isinstance(node, yaml.MappingNode):
            children = [part for pair in node.value for part in pair]
        for child in children:
            size += measure(child, depth + 1)
            height = max(height, sizes[id(child)][1] + 1)
        active.discard(key)
        sizes[key] = (size, height)
        return size

    total = measure(root, 0)
    added = total - composer.nodes
    if added > MAX_ALIAS_EXPANSION:
        anchor, line, node = max(composer.aliases, key=lambda a: sizes[id(a[2])][0])
        raise _Limit(
            line,
            f"YAML aliases would add {added:,} values (at most {MAX_ALIAS_EXPANSION:,}); "
            f"alias *{anchor} alone stands for {sizes[id(node)][0]:,}",
        )


def _compose(text: str, filename: str, cancelled: Callable[[], bool] | None) -> yaml.Node | None:
    """The node tree of ``text`` within the bounds, or a :class:`ConfigError`."""
    data: str | bytes = text
    if _C_PARSER is not None:
        try:
            data = text.encode("utf-8")
        except UnicodeEncodeError as exc:  # a lone surrogate (only from parse_catalog)
            line = text.count("\n", 0, exc.start) + 1
            raise ConfigError(
                [f"{filename}:{line}: invalid YAML: character {text[exc.start]!r} is not allowed"]
            ) from None
    parser: Any = None
    try:
        parser = _C_PARSER(data) if isinstance(data, bytes) and _C_PARSER else yaml.SafeLoader(data)
        composer = _Composer(parser, cancelled)
        root: yaml.Node | None = composer.get_single_node()
        if root is not None:
            _check_expansion(root, composer)
        return root
    except _Limit as exc:
        raise ConfigError([f"{filename}:{exc.line}: {exc.message}; refused"]) from None
    except yaml.reader.ReaderError as exc:
        line, char = _reader_position(data, exc.position)
        raise ConfigError(
            [f"{filename}:{line}: invalid YAML: character {char!r} is not allowed ({exc.reason})"]
        ) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        problem = getattr(exc, "problem", None) or getattr(exc, "context", None) or "unreadable"
        raise ConfigError([f"{filename}:{_line_of(mark)}: invalid YAML: {problem}"]) from None
    finally:
        dispose = getattr(parser, "dispose", None)
        if dispose is not None:
            dispose()


def _reader_position(data: str | bytes, position: int) -> tuple[int, str]:
    """Line (1-based) and character at ``position`` (a byte offset from libyaml, a
    character index from PyYAML's own reader)."""
    if isinstance(data, bytes):
        line = data.count(b"\n", 0, position) + 1
        char = data[position : position + 4].decode("utf-8", "replace")[:1]
    else:
        line = data.count("\n", 0, position) + 1
        char = data[position : position + 1]
    return line, char


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
                line = key_node.start_mark.line + 1
                if key_node.tag == "tag:yaml.org,2002:merge":
                    self._problem(line, path, "YAML merge keys ('<<') are not supported")
                    continue
                if not isinstance(key_node, yaml.ScalarNode):
                    self._problem(line, path, "a key must be plain text, not a list or mapping")
                    continue
                key = self._scalar(key_node, path)
                if not isinstance(key, str | int):
                    key = str(key)
                if key in out:
                    self._problem(line, (*path, key), f"duplicate key {key!r}")
                    continue
                self.marks.lines[(*path, key)] = line
                out[key] = self.build(value_node, (*path, key))
            return out
        if isinstance(node, yaml.SequenceNode):
            return [self.build(item, (*path, i)) for i, item in enumerate(node.value)]
        return self._scalar(node, path)

    def _scalar(self, node: yaml.Node, path: Loc) -> Any:
        """The value of a scalar; a problem (and None) when its tag cannot make one
        (``!!int abc``, a 30 February, an unknown ``!tag``, 5,000 digits)."""
        try:
            return self._constructor.construct_object(node, deep=True)
        except (yaml.YAMLError, ValueError, OverflowError, TypeError) as exc:
            problem = getattr(exc, "problem", None) or str(exc)
            if "integer string conversion" in problem:  # the interpreter's 4,300-digit cap
                problem = "a number of more than 4,300 digits"
            self._problem(node.start_mark.line + 1, path, f"invalid value: {problem}")
            return None

    def _problem(self, line: int, path: Loc, message: str) -> None:
        self.problems.append(f"{self.filename}:{line}: {_fmt(path) or '<root>'}: {message}")


def _fmt(loc: Sequence[str | int]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def load_catalog(
    path: str | os.PathLike[str], *, cancelled: Callable[[], bool] | None = None
) -> Catalog:
    """Read, parse and validate a catalog file. Raises :class:`ConfigError` (and its
    :class:`LoadCancelled` once ``cancelled()`` is true)."""
    file = Path(path)
    try:
        with file.open("rb") as stream:
            raw = stream.read(MAX_CATALOG_BYTES + 1)
    except OSError as exc:
        raise ConfigError([f"{file}: cannot read catalog: {exc.strerror or exc}"]) from None
    if len(raw) > MAX_CATALOG_BYTES:
        raise ConfigError([_too_large(str(file))])
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise ConfigError([f"{file}:{line}: catalog is not UTF-8 text: {exc.reason}"]) from None
    return parse_catalog(text, filename=str(file), base_dir=file.parent, cancelled=cancelled)


def parse_catalog(
    text: str,
    *,
    filename: str = "<catalog>",
    base_dir: Path | None = None,
    cancelled: Callable[[], bool] | None = None,
) -> Catalog:
    """Validate catalog YAML text. Relative file paths resolve against ``base_dir``."""
    try:
        return _parse(text, filename, base_dir or Path(), cancelled)
    except LoadCancelled:
        raise
    except ConfigError as exc:
        raise ConfigError(_bounded(exc.problems)) from None
    except RecursionError:  # a bound above should have refused it first
        raise ConfigError([f"{filename}:1: the catalog nests too deeply; refused"]) from None
    except MemoryError:
        raise ConfigError([f"{filename}:1: the catalog is too large to load; refused"]) from None


def _too_large(filename: str) -> str:
    return f"{filename}:1: the catalog is larger than {MAX_CATALOG_BYTES >> 20} MiB; refused"


def _bounded(problems: Sequence[str]) -> list[str]:
    """One line per problem, each of bounded length, at most :data:`MAX_PROBLEMS`."""
    out = []
    for problem in problems[:MAX_PROBLEMS]:
        line = " ".join(problem.split())
        if len(line) > MAX_PROBLEM_CHARS:
            line = line[: MAX_PROBLEM_CHARS - 1] + "…"
        out.append(line)
    if len(problems) > MAX_PROBLEMS:
        where = problems[MAX_PROBLEMS].split(": ", 1)[0]
        out.append(f"{where}: … and {len(problems) - MAX_PROBLEMS:,} more problems from here on")
    return out


def _parse(
    text: str, filename: str, base_dir: Path, cancelled: Callable[[], bool] | None
) -> Catalog:
    if len(text) > MAX_CATALOG_BYTES:
        raise ConfigError([_too_large(filename)])
    root = _compose(text, filename, cancelled)
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
    if cancelled is not None and cancelled():
        raise LoadCancelled(["loading cancelled"])
    problems = _semantic_problems(catalog, data, builder.marks, filename, base_dir)
    if problems:
        raise ConfigError(problems)
    return _resolve_files(catalog, base_dir)


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
        if isinstance(spec, OidcCheck) and spec.client is not None:
            err = _secret_problem(spec.client.client_secret, base_dir)
            if err:
                report((*here, "client", "client_secret"), err)
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
        if isinstance(spec, OidcCheck) and spec.client is not None:
            client = spec.client
            update["client"] = client.model_copy(
                update={"client_secret": secret(client.client_secret)}
            )
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
