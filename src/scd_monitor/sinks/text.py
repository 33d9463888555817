"""Text from outside made safe for a header, a message body or an error line.

Names and subjects reach the sinks from outside (provider and service names from an
X-Road directory, a receiver's answer). :func:`clean_text` is the monitor's one sanitiser
(:func:`scd_monitor.sanitize.clean_text`: lone surrogates → U+FFFD, NUL and the other
controls → their visible pictures such as ``␀`` and ``␍``, C1 controls → U+FFFD; replace
and mark, never drop) plus what a sink needs on top, and it never raises:

* a bidirectional embedding, override or isolate control (U+202A–U+202E,
  U+2066–U+2069, the "Trojan Source" characters) becomes U+FFFD;
* with ``one_line``, line feeds, tabs and U+2028/U+2029 become spaces, runs of spaces
  collapse into one and the ends are stripped (without it, U+2028/U+2029 become ``\\n``);
* past ``limit`` characters the text is cut, with the sanitiser's ``…[+N chars]`` mark.

What it does not do is the encoding a protocol needs (RFC 2047 words in a mail header,
ASCII in an HTTP header): the sinks do that, on text already clean.
"""

from __future__ import annotations

import re

from scd_monitor import sanitize

__all__ = ["MARK", "clean_text"]

MARK = "\ufffd"
"""What stands in for a character that cannot be kept (U+FFFD REPLACEMENT CHARACTER)."""

_BIDI = re.compile("[\u202a-\u202e\u2066-\u2069]")
_SEPARATORS = re.compile("[\u2028\u2029]")
_ONE_LINE = re.compile("[\n\t\u2028\u2029 ]+")


def clean_text(value: object, *, limit: int | None = None, one_line: bool = False) -> str:
    """``value`` (``str()`` of it if not text) as safe text; see the module docstring."""
    raw = value if isinstance(value, str | bytes | bytearray) else str(value)
    text = _BIDI.sub(MARK, sanitize.clean_text(raw, limit=None))
    text = _ONE_LINE.sub(" ", text).strip() if one_line else _SEPARATORS.sub("\n", text)
    if limit is not None and len(text) > limit:
        text = sanitize.clean_text(text, limit=limit)
        if one_line:
            text = text.strip()
    return text
