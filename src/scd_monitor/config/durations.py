"""Durations as people write them in catalogs: ``30s``, ``1m30s``, ``500ms``, ``2h``, ``1d``."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated

from pydantic import BeforeValidator, PlainSerializer

_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}
_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w)")

MAX_DURATION = timedelta(days=3650)
"""Longest duration accepted anywhere (ten years): beyond it a value is a typo, and
``timedelta`` itself overflows not far above (``5000000000000m``)."""
_MAX_SECONDS = MAX_DURATION.total_seconds()


def parse_duration(value: object) -> timedelta:
    """Turn ``"1m30s"``, ``90``, ``90.0`` or a ``timedelta`` into a ``timedelta``.

    Raises ``ValueError`` with a message fit for a catalog error otherwise.
    """
    if isinstance(value, timedelta):
        if abs(value) > MAX_DURATION:
            raise ValueError(_too_long(value))
        return value
    if isinstance(value, bool):
        raise ValueError("expected a duration such as '30s', '1m30s' or '2h'")
    if isinstance(value, float) and value != value:
        raise ValueError("invalid duration nan: use a number and a unit, e.g. '30s'")
    if isinstance(value, int | float):
        if abs(value) > _MAX_SECONDS:  # also ±inf and 10**400, before float() overflows
            raise ValueError(_too_long(value))
        return timedelta(seconds=float(value))
    if not isinstance(value, str):
        raise ValueError("expected a duration such as '30s', '1m30s' or '2h'")
    text = value.strip()
    pos = 0
    total = 0.0
    for match in _PART.finditer(text):
        if match.start() != pos:
            break
        total += float(match.group(1)) * _UNITS[match.group(2)]
        pos = match.end()
    if pos != len(text) or not text:
        raise ValueError(
            f"invalid duration {_short(value)}: use a number and a unit (ms, s, m, h, d, w), "
            "e.g. '30s'"
        )
    if total > _MAX_SECONDS:  # also inf, from a number of 400 digits
        raise ValueError(_too_long(value))
    return timedelta(seconds=total)


def _too_long(value: object) -> str:
    return f"duration {_short(value)} is too long: at most {MAX_DURATION.days} days ('3650d')"


def _short(value: object) -> str:
    """``repr`` of an offending value, cut to a readable length."""
    if isinstance(value, int) and abs(value) >= 10**30:
        digits = int(abs(value).bit_length() * 0.30103) + 1
        return f"{str(value)[:12]}… (about {digits} digits)" if digits < 4000 else "(huge)"
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "…"


def format_duration(value: timedelta) -> str:
    """The inverse of :func:`parse_duration` for whole milliseconds, e.g. ``1m30s``."""
    ms = round(value.total_seconds() * 1000)
    if ms == 0:
        return "0s"
    out = []
    for unit, size in (("d", 86_400_000), ("h", 3_600_000), ("m", 60_000), ("s", 1000)):
        n, ms = divmod(ms, size)
        if n:
            out.append(f"{n}{unit}")
    if ms:
        out.append(f"{ms}ms")
    return "".join(out)


Duration = Annotated[
    timedelta,
    BeforeValidator(parse_duration),
    PlainSerializer(format_duration, return_type=str),
]
