"""The catalog's regular expressions, matched in time linear in the text (RE2).

An operator's pattern meets a target's body: with a backtracking engine (Python's
``re``) a pattern such as ``^(\\w+\\s?)*$`` takes exponential time on a short hostile
body (17.6 s on 28 bytes) and, being synchronous, blocks the event loop and every other
check with it. RE2 (``google-re2``) never backtracks: matching is linear in the text
whatever the pattern, and compiling is bounded in memory (``max_mem``).

Every catalog pattern (``body_regex``, ``body_not_regex``, a JSON assertion's
``matches``) is compiled by :func:`compile_pattern` when the catalog is loaded, so a
pattern RE2 cannot take is a catalog error with its file and line, and matched by
:func:`search` (compiled patterns are cached).

RE2 syntax (https://github.com/google/re2/wiki/Syntax) is Python's for everyday
patterns, with these differences: no backreferences (``\\1``, ``(?P=name)``), no
lookaround (``(?=``, ``(?!``, ``(?<=``), no possessive or atomic groups, ``\\z`` rather
than ``\\Z``, repetition counts up to 1000; ``\\w``, ``\\d``, ``\\s`` and ``\\b`` are
ASCII (use ``\\pL``, ``\\pN`` or ``[\\p{L}\\p{N}_]`` for letters and digits of any script).

``google-re2`` ships no type information: it is loaded through ``importlib`` so this
module stays fully typed, like :mod:`scd_monitor.xroad.xml` does for ``defusedxml``.
"""

from __future__ import annotations

import functools
import importlib
import re
from typing import Any, Final, Protocol

__all__ = ["MAX_PROGRAM_BYTES", "CompiledPattern", "compile_pattern", "search"]

MAX_PROGRAM_BYTES: Final = 8 * 1024 * 1024
"""Memory RE2 may use for one compiled pattern (its default); more is a catalog error."""

_re2: Any = importlib.import_module("re2")
_SURROGATES: Final = re.compile("[\ud800-\udfff]")


class CompiledPattern(Protocol):
    """The one method of a compiled RE2 pattern this package uses."""

    def search(self, text: str) -> object | None: ...


def _options() -> Any:
    options = _re2.Options()
    options.max_mem = MAX_PROGRAM_BYTES
    options.log_errors = False  # the error is raised (and reported with file:line) instead
    options.never_capture = True  # only "does it match?" is asked: the DFA can answer it
    return options


_OPTIONS: Final = _options()


@functools.lru_cache(maxsize=4096)
def compile_pattern(pattern: str) -> CompiledPattern:
    """``pattern`` compiled by RE2; ``ValueError`` naming the pattern and the reason
    when RE2 cannot take it (syntax it lacks, or too large a program)."""
    try:
        compiled: CompiledPattern = _re2.compile(pattern, _OPTIONS)
    except _re2.error as exc:
        reason = exc.args[0] if exc.args else "cannot compile"
        if isinstance(reason, bytes):
            reason = reason.decode("utf-8", "replace")
        raise ValueError(
            f"invalid regular expression {pattern!r}: {reason} (patterns are RE2: "
            "no backreferences or lookaround)"
        ) from None
    except (TypeError, UnicodeError) as exc:
        raise ValueError(f"invalid regular expression {pattern!r}: {exc}") from None
    return compiled


def search(pattern: str, text: str) -> bool:
    """Whether ``pattern`` matches anywhere in ``text``, in time linear in ``text``.

    Lone surrogates in ``text`` (``json.loads`` makes them of ``"\\ud800"``) are matched
    as U+FFFD: RE2 works on UTF-8, which cannot carry them.
    """
    compiled = compile_pattern(pattern)
    try:
        return compiled.search(text) is not None
    except UnicodeEncodeError:
        return compiled.search(_SURROGATES.sub("\ufffd", text)) is not None
