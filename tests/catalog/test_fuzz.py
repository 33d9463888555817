"""Catalog fuzzing (issue 12): whatever the file holds, ``scd-monitor validate`` exits 0 or
2, never with a traceback; every error names ``file:line`` (never a character position);
each run ends in well under 5 s and without eating memory.

Two sources of inputs: hypothesis mutations of ``config/catalog.example.yaml`` (lines
deleted, duplicated, swapped, re-indented; values replaced by hostile ones; characters
and raw bytes inserted), and hand-made inputs that broke the loader before: a duration
that overflows, 100,000 ``[``, a 3,000-deep list, an alias bomb, control characters,
invalid UTF-8, tags, giant numbers … The time bound here is a hang guard with a generous
margin, not a benchmark.
"""

from __future__ import annotations

import contextlib
import io
import re
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scd_monitor.catalog import loader
from scd_monitor.cli.app import main

ROOT = Path(__file__).parents[2]
EXAMPLE = (ROOT / "config" / "catalog.example.yaml").read_text(encoding="utf-8")
LINES = EXAMPLE.splitlines()
BOUND_SECONDS = 5.0


def validate(path: Path) -> tuple[int, str, float]:
    """``scd-monitor validate path`` in this process: exit code, standard error, seconds."""
    out, err = io.StringIO(), io.StringIO()
    started = time.perf_counter()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(["validate", str(path)])
    return code, err.getvalue(), time.perf_counter() - started


def assert_well_behaved(path: Path, code: int, stderr: str, seconds: float) -> None:
    assert code in (0, 2), (code, stderr[-2000:])
    assert "Traceback" not in stderr, stderr[-2000:]
    assert seconds < BOUND_SECONDS, f"validate took {seconds:.1f} s"
    lines = stderr.splitlines()
    if code == 2:
        assert lines, "an invalid catalog says why"
    where = re.compile(rf"^error: {re.escape(str(path))}:\d+: \S")
    for line in lines:
        assert where.match(line), f"no file:line in {line!r}"
        assert "position" not in line.split(": ", 2)[-1] or "line" in line, line


# -- hypothesis: mutations of the example catalog ---------------------------------------------

HOSTILE_VALUES = [
    "5000000000000m", "9" * 400, "-" + "9" * 400, ".inf", "-.inf", ".nan", "1e999",
    "0x" + "f" * 300, "'" + "x" * 5000 + "'", "!!python/object:os.system x", "!foo bar",
    "!!binary AAAA", "!!timestamp 2026-02-30", "2026-02-30", "*nope", "&a", "[" * 200,
    "{" * 200, "]", "}", "~", "null", "yes", "''", '"\\x00"', '"\\ud800"', "|", ">-",
    "- x", "? x", "@x", "`x", "%YAML 1.1", "!!int abc", "!!float x", "[*a, &a b]",
    "0o777777777777777777777777", "1:2:3:4:5:6", "12:60:99", "-1s", "0s", "0.0001ms",
    "1" + "0" * 25 + "w", "999999999d", "'\U0001f4a9'", "\u202e", "\ufeff",
]  # fmt: skip
HOSTILE_LINES = [
    "<<: *base", "base: &base {a: 1}", "---", "...", "\t- x", "  ", "%TAG ! tag:x,2026:",
    "? [a, b]", ": value", "key: &x [*x]", "a: &a [1]\nb: *a\nc: *a", "# ok", "\x00",
    "\x07bell: 1", "\x85", "\u2028", "providers: " + "[" * 300, "x: " + "{a: " * 300,
    "- " * 300 + "x", "!!set {a, b}", "!!omap [a: 1]",
]  # fmt: skip
SYNTAX = "\x00\t\n\r\x1b:-[]{}&*!|>'\"%@`#"
TEXT = st.text(
    alphabet=st.characters(exclude_categories=["Cs"]) | st.sampled_from(SYNTAX), max_size=40
)


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    lines = list(LINES)
    for _ in range(draw(st.integers(1, 4))):
        if not lines:
            lines = [""]
        i = draw(st.integers(0, len(lines) - 1))
        action = draw(st.sampled_from([
            "delete", "duplicate", "swap", "indent", "dedent", "value", "line", "text",
        ]))  # fmt: skip
        if action == "delete":
            del lines[i]
        elif action == "duplicate":
            lines.insert(i, lines[i])
        elif action == "swap":
            j = draw(st.integers(0, len(lines) - 1))
            lines[i], lines[j] = lines[j], lines[i]
        elif action == "indent":
            lines[i] = " " * draw(st.integers(1, 4)) + lines[i]
        elif action == "dedent":
            lines[i] = lines[i].lstrip()
        elif action == "value":
            key, sep, _ = lines[i].partition(": ")
            value = draw(st.sampled_from(HOSTILE_VALUES) | TEXT)
            lines[i] = f"{key}: {value}" if sep else f"{lines[i]} {value}"
        elif action == "line":
            lines.insert(i, draw(st.sampled_from(HOSTILE_LINES)))
        else:
            at = draw(st.integers(0, len(lines[i])))
            lines[i] = lines[i][:at] + draw(TEXT) + lines[i][at:]
    data = "\n".join(lines).encode("utf-8")
    if draw(st.integers(0, 4)) == 0 and data:  # raw bytes too: invalid UTF-8, NULs, a BOM
        at = draw(st.integers(0, len(data)))
        data = data[:at] + draw(st.binary(min_size=1, max_size=6)) + data[at:]
    return data


@settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(mutated())
def test_mutations_of_the_example_exit_0_or_2_with_file_and_line(data: bytes) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "catalog.yaml"
        path.write_bytes(data)
        assert_well_behaved(path, *validate(path))


# -- hand-made hostile inputs ------------------------------------------------------------------


def _alias_bomb(levels: int = 9, width: int = 9) -> str:
    out = ["a0: &a0 [" + ", ".join(["x"] * width) + "]"]
    for i in range(1, levels):
        out.append(f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * width) + "]")
    return "\n".join([*out, f"providers: *a{levels - 1}"]) + "\n"


def _example(old: str, new: str) -> str:
    assert old in EXAMPLE
    return EXAMPLE.replace(old, new, 1)


HAND_MADE: dict[str, Callable[[], str | bytes]] = {
    "duration-overflow": lambda: _example("interval: 30s", "interval: 5000000000000m"),
    "duration-inf": lambda: _example("interval: 30s", "interval: .inf"),
    "duration-nan": lambda: _example("interval: 30s", "interval: .nan"),
    "duration-400-digits": lambda: _example("interval: 30s", "interval: " + "9" * 400),
    "duration-huge-negative": lambda: _example("timeout: 10s", "timeout: -" + "9" * 30),
    "int-5000-digits": lambda: _example("min_days_valid: 14", "min_days_valid: " + "9" * 5000),
    "100000-brackets": lambda: "providers: " + "[" * 100_000,
    "100000-braces": lambda: "providers: " + "{a: " * 100_000,
    "3000-deep-block-list": lambda: "providers:\n" + "".join(" " * i + "-\n" for i in range(3000)),
    "3000-deep-flow-list": lambda: "providers: " + "[" * 3000 + "]" * 3000 + "\n",
    "3000-deep-mapping": lambda: "".join(" " * i + "k:\n" for i in range(3000)),
    "alias-bomb-9x9": _alias_bomb,
    "alias-to-itself": lambda: "providers: &a [*a]\n",
    "undefined-alias": lambda: "providers: *nope\n",
    "duplicate-anchor": lambda: "a: &x 1\nb: &x 2\nproviders: []\n",
    "nul-byte": lambda: _example("name: Corporación", "name: Corpo\x00ración"),
    "control-character": lambda: _example("timezone:", "\x07timezone:"),
    "escape-character": lambda: _example("timezone:", "\x1btimezone:"),
    "invalid-utf8": lambda: EXAMPLE.encode().replace(b"Corporaci\xc3\xb3n", b"Corporaci\xf3n"),
    "lone-surrogate-bytes": lambda: EXAMPLE.encode().replace(b"soporte", b"\xed\xa0\x80"),
    "bom-mid-file": lambda: _example("timezone:", "\ufefftimezone:"),
    "bad-date": lambda: _example('version: "2026-11-23"', "version: 2026-02-30"),
    "python-tag": lambda: _example('version: "2026-11-23"', "version: !!python/object:os.system x"),
    "unknown-tag": lambda: _example('version: "2026-11-23"', "version: !mine x"),
    "complex-key": lambda: "? [a, b]\n: 1\nproviders: []\n",
    "merge-key": lambda: "base: &b {id: p}\nproviders:\n  - <<: *b\n",
    "two-documents": lambda: EXAMPLE + "\n---\nproviders: []\n",
    "tabs": lambda: EXAMPLE.replace("  ", "\t"),
    "only-comments": lambda: "# nothing\n# here\n",
    "empty": lambda: "",
    "a-list": lambda: "- a\n- b\n",
    "a-scalar": lambda: "just text\n",
    "many-problems": lambda: "providers: []\n" + "".join(f"bogus{i}: {i}\n" for i in range(500)),
    "megabyte-value": lambda: _example("name: Corporación", "name: " + "x" * 1_000_000),
    "over-the-size-limit": lambda: "# " + "x" * (loader.MAX_CATALOG_BYTES + 10) + "\n",
}  # fmt: skip


@pytest.mark.parametrize("name", sorted(HAND_MADE))
def test_hand_made_hostile_inputs_are_refused_with_file_and_line(name: str, tmp_path: Path) -> None:
    data = HAND_MADE[name]()
    path = tmp_path / f"{name}.yaml"
    if isinstance(data, bytes):
        path.write_bytes(data)
    else:
        path.write_text(data, encoding="utf-8")
    code, stderr, seconds = validate(path)
    assert_well_behaved(path, code, stderr, seconds)
    assert code == (0 if name in VALID else 2), stderr


VALID = {"megabyte-value"}
"""Hostile in size only: a provider name of a million characters is still a name."""


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("duration-overflow", "is too long: at most 3650 days"),
        ("100000-brackets", "invalid YAML"),
        ("3000-deep-block-list", "nested deeper than 64 levels"),
        ("alias-bomb-9x9", "YAML aliases would add"),
        ("alias-to-itself", "refers to a node containing it"),
        ("nul-byte", "character '\\x00' is not allowed"),
        ("invalid-utf8", "not UTF-8 text"),
        ("many-problems", "more problems from here on"),
        ("over-the-size-limit", "larger than 8 MiB"),
    ],
)
def test_the_errors_say_what_is_wrong(name: str, message: str, tmp_path: Path) -> None:
    data = HAND_MADE[name]()
    path = tmp_path / "catalog.yaml"
    path.write_bytes(data if isinstance(data, bytes) else data.encode("utf-8"))
    _code, stderr, _seconds = validate(path)
    assert message in stderr, stderr[:2000]
    assert len(stderr.splitlines()) <= loader.MAX_PROBLEMS + 1


@pytest.mark.parametrize("name", ["alias-bomb-9x9", "100000-brackets", "duration-overflow"])
def test_the_real_command_exits_2_quickly_with_bounded_memory(name: str, tmp_path: Path) -> None:
    data = HAND_MADE[name]()
    path = tmp_path / "catalog.yaml"
    path.write_bytes(data if isinstance(data, bytes) else data.encode("utf-8"))
    started = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "scd_monitor", "validate", str(path)],
        capture_output=True,
        text=True,
        timeout=60,  # a hang guard
        check=False,
    )
    seconds = time.perf_counter() - started
    peak_mib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    assert proc.returncode == 2, proc.stderr
    assert_well_behaved(path, 2, proc.stderr, seconds)
    assert peak_mib < 400, f"a child of this test grew to {peak_mib:.0f} MiB"


@pytest.mark.parametrize("libyaml", [True, False], ids=["libyaml", "pure-python"])
def test_the_bounds_hold_with_either_yaml_parser(
    libyaml: bool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if not libyaml:
        monkeypatch.setattr(loader, "_C_PARSER", None)
    elif loader._C_PARSER is None:
        pytest.skip("PyYAML without libyaml")
    for name in ("alias-bomb-9x9", "3000-deep-block-list", "100000-brackets", "nul-byte"):
        data = HAND_MADE[name]()
        path = tmp_path / f"{name}.yaml"
        path.write_bytes(data if isinstance(data, bytes) else data.encode("utf-8"))
        code, stderr, seconds = validate(path)
        assert_well_behaved(path, code, stderr, seconds)
        assert code == 2
    path = tmp_path / "example.yaml"
    path.write_text(EXAMPLE, encoding="utf-8")
    assert validate(path)[0] == 0
