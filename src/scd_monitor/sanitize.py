"""Text from outside, made safe to keep: valid, NUL-free Unicode of bounded length.

Targets, directories and X-Road faults send text the monitor quotes: bodies in error
messages, JSON values, fault codes and strings, member and subsystem names, TLS subject
fields. Before any of it reaches a store, a metric, a log line, a header or a file it
goes through :func:`clean_text` (one string) or :func:`clean_value` (a JSON-like value:
dicts, lists, scalars). The rules, each chosen so that the result is still *evidence*
(replaced and marked, never dropped):

* **Undecodable bytes and lone surrogates** become U+FFFD (REPLACEMENT CHARACTER). A
  surrogate pair that made it into a ``str`` as two code points is joined into the
  character it stands for. (A lone surrogate is what ``json.loads`` makes of
  ``"\\ud800"``; no UTF-8 encoder, database or terminal takes it.)
* **NUL and the other C0 controls** (but tab and line feed) and DEL become their visible
  pictures, U+2400–U+241F and U+2421 (``\\x00`` → ``␀``, ``\\r`` → ``␍``): PostgreSQL
  refuses NUL in text, a CR or LF ends a header, an ESC drives a terminal. C1 controls
  (U+0080–U+009F, e.g. the single-character CSI) become U+FFFD.
* **Length** is bounded: a text longer than ``limit`` characters keeps its beginning and
  ends with ``…[+N chars]`` (``N`` the characters left out), the whole within ``limit``.
  Bytes are decoded as UTF-8 first (at most ``4 × limit`` of them are read).

Both functions are **idempotent** (cleaning clean text changes nothing), never raise for
any input, and keep clean text as it is (the same object, cheaply checked first).
:func:`clean_value` also bounds depth and size: past ``max_depth`` levels a container is
replaced by a marker, and past ``max_items`` values in all a container ends with one.
The property tests (``tests/test_sanitize.py``) hold these promises over arbitrary bytes,
strings and nested values.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Final, TypeGuard

__all__ = [
    "DEFAULT_LIMIT",
    "KEY_LIMIT",
    "MAX_DEPTH",
    "MAX_ITEMS",
    "clean_text",
    "clean_value",
]

DEFAULT_LIMIT: Final = 1000
"""Characters kept of one text by default (a probe message, a fault string, a name)."""
KEY_LIMIT: Final = 200
"""Characters kept of a key in :func:`clean_value`."""
MAX_DEPTH: Final = 8
"""Nesting levels :func:`clean_value` keeps."""
MAX_ITEMS: Final = 1000
"""Values (scalars and containers, at every level together) :func:`clean_value` keeps."""
_MIN_LIMIT: Final = 32
"""Below this a truncation marker would not fit: smaller limits are raised to it."""

_BAD: Final = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff]")
_SURROGATE: Final = re.compile("[\ud800-\udfff]")
_CONTROLS: Final = {
    **{code: 0x2400 + code for code in range(0x20) if code not in (0x09, 0x0A)},
    0x7F: 0x2421,
    **dict.fromkeys(range(0x80, 0xA0), 0xFFFD),
}

JsonValue = str | int | float | bool | None | list["JsonValue"] | dict[str, "JsonValue"]


def clean_text(value: str | bytes | bytearray, *, limit: int | None = DEFAULT_LIMIT) -> str:
    """``value`` as valid, NUL-free Unicode of at most ``limit`` characters (see the
    module docstring for the rules). ``limit=None``: no truncation (for text that is
    matched, not kept)."""
    if isinstance(value, bytes | bytearray):
        return _clean_bytes(bytes(value), limit)
    text = value if isinstance(value, str) else str(value)
    if limit is None:
        return _clean_chars(text)
    limit = max(limit, _MIN_LIMIT)
    if len(text) <= limit:
        return _clean_chars(text)
    keep = limit - len(f"…[+{len(text)} chars]")
    return f"{_clean_chars(text[:keep])}…[+{len(text) - keep} chars]"


def _clean_bytes(data: bytes, limit: int | None) -> str:
    """UTF-8 bytes as clean text; past ``4 × limit`` bytes only the start is decoded and
    the marker counts the bytes left out."""
    if limit is None:
        return _clean_chars(data.decode("utf-8", "surrogateescape"))
    limit = max(limit, _MIN_LIMIT)
    cap = 4 * limit + 4
    if len(data) <= cap:
        return clean_text(data.decode("utf-8", "surrogateescape"), limit=limit)
    keep = limit - len(f"…[+{len(data)} bytes]")
    start = data[:cap].decode("utf-8", "surrogateescape")[:keep]
    used = len(start.encode("utf-8", "surrogateescape"))
    return f"{_clean_chars(start)}…[+{len(data) - used} bytes]"


def _clean_chars(text: str) -> str:
    if _BAD.search(text) is None:
        return text
    if _SURROGATE.search(text) is not None:
        # UTF-16 round trip: a pair stored as two code points becomes its character,
        # a lone surrogate (or an undecodable byte, escaped) becomes U+FFFD.
        text = text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")
    return text.translate(_CONTROLS)


def clean_value(
    value: object,
    *,
    limit: int = DEFAULT_LIMIT,
    max_depth: int = MAX_DEPTH,
    max_items: int = MAX_ITEMS,
) -> JsonValue:
    """A JSON-like value with every text cleaned by :func:`clean_text` (keys with
    :data:`KEY_LIMIT`), within ``max_depth`` levels of containers and ``max_items``
    values in all.

    Mappings become dicts (keys as text), lists, tuples and sets lists; ``None``,
    booleans, integers and finite floats stay; a non-finite float becomes its text
    (``"nan"``: JSON has none), an integer beyond 64 bits its size; anything else
    becomes its ``str``. A container nested
    too deep becomes ``"…[+1 levels]"``; a container cut short ends with one
    ``"…[+N items]"`` (a dict under the key ``"…"``).
    """
    return _Cleaner(limit, max(max_depth, 1), max(max_items, 1)).clean(value, 1)


class _Cleaner:
    """One pass of :func:`clean_value`: the budget of values left is shared by all levels.

    Idempotence: a second pass visits the same values in the same order, so it runs out
    of budget at the same place at the latest; a container's closing marker (its last
    item) costs nothing, so the second pass keeps it instead of writing a new one.
    """

    __slots__ = ("budget", "limit", "max_depth")

    def __init__(self, limit: int, max_depth: int, budget: int) -> None:
        self.limit = limit
        self.max_depth = max_depth
        self.budget = budget

    def clean(self, value: object, level: int) -> JsonValue:
        self.budget -= 1
        if value is None or isinstance(value, bool):
            return value
        if isinstance(value, int):
            return (
                value
                if -_INT_BOUND <= value < _INT_BOUND
                else f"<{value.bit_length()}-bit integer>"
            )
        if isinstance(value, float):
            return value if math.isfinite(value) else str(value)
        if isinstance(value, str | bytes | bytearray):
            return clean_text(value, limit=self.limit)
        if isinstance(value, Mapping):
            if level >= self.max_depth + 1:
                return _TOO_DEEP
            return self._mapping(value, level)
        if isinstance(value, list | tuple | set | frozenset):
            if level >= self.max_depth + 1:
                return _TOO_DEEP
            return self._sequence(list(value), level)
        return clean_text(str(value), limit=self.limit)

    def _mapping(self, value: Mapping[object, object], level: int) -> dict[str, JsonValue]:
        out: dict[str, JsonValue] = {}
        items = list(value.items())
        for index, (key, item) in enumerate(items):
            if index == len(items) - 1 and key == "…" and _is_cut_marker(item):
                out["…"] = item
                break
            if self.budget <= 0:
                out["…"] = f"…[+{len(items) - index} items]"
                break
            name = key if isinstance(key, str) else str(key)
            out[clean_text(name, limit=KEY_LIMIT)] = self.clean(item, level + 1)
        return out

    def _sequence(self, items: list[object], level: int) -> list[JsonValue]:
        out: list[JsonValue] = []
        for index, item in enumerate(items):
            if index == len(items) - 1 and _is_cut_marker(item):
                out.append(item)
                break
            if self.budget <= 0:
                out.append(f"…[+{len(items) - index} items]")
                break
            out.append(self.clean(item, level + 1))
        return out


_TOO_DEEP: Final = "…[+1 levels]"
_INT_BOUND: Final = 2**63
_CUT: Final = re.compile(r"…\[\+[1-9][0-9]{0,18} items\]")


def _is_cut_marker(value: object) -> TypeGuard[str]:
    return isinstance(value, str) and _CUT.fullmatch(value) is not None
