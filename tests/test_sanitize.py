"""Sanitising outside text: valid UTF-8, no NUL, bounded, idempotent, whatever comes in."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scd_monitor.sanitize import KEY_LIMIT, clean_text, clean_value

# Every code point, lone surrogates and controls included.
any_text = st.text(
    alphabet=st.characters(min_codepoint=0, max_codepoint=0x10FFFF, blacklist_categories=())
)
hostile_text = st.one_of(
    any_text,
    st.lists(
        st.sampled_from(["\ud800", "\udfff", "\x00", "\r\n", "\x1b[2J", "\x9b", "é", "a"])
    ).map("".join),
)
limits = st.one_of(st.none(), st.integers(min_value=0, max_value=300))


def assert_safe(text: str, limit: int | None) -> None:
    text.encode("utf-8", "strict")
    assert "\x00" not in text
    assert not any(ord(c) < 0x20 and c not in "\t\n" for c in text)
    assert not any(0x7F <= ord(c) <= 0x9F for c in text)
    if limit is not None:
        assert len(text) <= max(limit, 32)


@given(hostile_text, limits)
def test_text_is_safe_bounded_and_idempotent(value: str, limit: int | None) -> None:
    once = clean_text(value, limit=limit)
    assert_safe(once, limit)
    assert clean_text(once, limit=limit) == once


@given(st.binary(), limits)
def test_bytes_are_safe_bounded_and_idempotent(value: bytes, limit: int | None) -> None:
    once = clean_text(value, limit=limit)
    assert_safe(once, limit)
    assert clean_text(once, limit=limit) == once


@given(st.text(alphabet=st.characters(blacklist_categories=("Cs", "Cc"))))
def test_clean_text_is_kept_as_it_is(value: str) -> None:
    assert clean_text(value, limit=None) is value


def test_the_rules_replace_and_mark() -> None:
    assert clean_text('{"issuer": "\ud800"}') == '{"issuer": "\ufffd"}'
    assert clean_text("a\x00b\rc\x1bd\x7fe\tf\ng") == "a\u2400b\u240dc\u241bd\u2421e\tf\ng"
    assert clean_text("csi\x9b") == "csi\ufffd"
    assert clean_text("\ud83d\ude00") == "\U0001f600", "a pair in two code points is joined"
    assert clean_text(b"ok \xff\xfe \xe2\x82") == "ok \ufffd\ufffd \ufffd\ufffd"
    assert clean_text(b"nul\x00") == "nul\u2400"


def test_long_text_keeps_its_start_and_says_how_much_is_left_out() -> None:
    out = clean_text("x" * 5000, limit=100)
    assert len(out) <= 100
    assert out.startswith("x" * 80)
    kept = out.index("…")
    assert out.endswith(f"…[+{5000 - kept} chars]")
    huge = clean_text(b"y" * 10_000_000, limit=50)
    assert len(huge) <= 50 and huge.endswith(" bytes]")
    assert huge == clean_text(huge, limit=50)


def test_huge_input_is_fast() -> None:
    import time

    started = time.perf_counter()
    clean_text("\ud800" * 2_000_000, limit=1000)
    clean_text(b"\x00" * 50_000_000, limit=1000)
    clean_text("a" * 50_000_000)
    assert time.perf_counter() - started < 2


json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(),
    hostile_text,
    st.binary(max_size=20),
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=6),
        st.dictionaries(hostile_text, inner, max_size=6),
        st.tuples(inner, inner),
    ),
    max_leaves=60,
)


def walk(value: Any, depth: int = 1) -> tuple[int, int]:
    """(values, deepest container level) of a cleaned value; checks every text on the way."""
    if isinstance(value, str):
        assert_safe(value, 1000)
        return 1, 0
    if isinstance(value, dict):
        counts = [walk(v, depth + 1) for v in value.values()]
        for key in value:
            assert isinstance(key, str)
            assert_safe(key, KEY_LIMIT)
    elif isinstance(value, list):
        counts = [walk(v, depth + 1) for v in value]
    else:
        assert value is None or isinstance(value, bool | int | float)
        if isinstance(value, float):
            assert math.isfinite(value)
        if isinstance(value, int) and not isinstance(value, bool):
            assert -(2**63) <= value < 2**63
        return 1, 0
    return 1 + sum(c for c, _ in counts), max([depth, *(d for _, d in counts)])


@settings(max_examples=300)
@given(json_values, st.integers(min_value=1, max_value=5), st.integers(min_value=1, max_value=30))
def test_values_are_safe_bounded_and_idempotent(value: Any, depth: int, items: int) -> None:
    once = clean_value(value, max_depth=depth, max_items=items)
    values, deepest = walk(once)
    assert deepest <= depth
    # Each container may end in one marker beyond the budget.
    assert values <= items + depth + 1
    json.dumps(once, allow_nan=False).encode("utf-8", "strict")
    assert clean_value(once, max_depth=depth, max_items=items) == once


def test_deep_and_wide_values_are_cut_with_markers() -> None:
    deep: Any = "end"
    for _ in range(100_000):
        deep = [deep]
    out = clean_value({"deep": deep}, max_depth=4)
    assert out == {"deep": [[["…[+1 levels]"]]]}
    wide = clean_value({f"k{i}": i for i in range(5000)}, max_items=10)
    assert isinstance(wide, dict)
    assert len(wide) == 10 and wide["…"] == "…[+4991 items]"
    assert clean_value(wide, max_items=10) == wide


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (float("nan"), "nan"),
        (float("inf"), "inf"),
        (10**30, "<100-bit integer>"),
        ({1: b"\x00"}, {"1": "\u2400"}),
        ({"s": frozenset({3})}, {"s": [3]}),
        (object, "<class 'object'>"),
    ],
)
def test_other_values_become_json(value: Any, expected: Any) -> None:
    assert clean_value(value) == expected
