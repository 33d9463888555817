"""How instants and durations are written for machines and operators (not for reports).

- :func:`iso_utc`: an instant as UTC ISO-8601 with ``Z``, ``2026-12-03T14:42:52Z`` (with
  ``.123456`` when it has microseconds): the form of every instant in the JSON documents,
  the exports' manifests and the messages that quote one.
- :func:`hms`: a duration on a clock, ``1h02m03s`` (whole seconds, hours not folded into
  days): the operator's tables (``scd-monitor sla``).

Spanish wording for people (``2 h 5 min``, ``3 de diciembre de 2026``) is
:mod:`scd_monitor.l10n`; the catalog's own notation (``1m30s``, ``2d``) is
:func:`scd_monitor.config.durations.format_duration`.

Imports nothing of the application: every layer may use it.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

__all__ = ["hms", "iso_utc"]


def iso_utc(value: datetime) -> str:
    """``datetime(2026, 12, 3, 9, 42, 52, tzinfo=Bogotá)`` → ``"2026-12-03T14:42:52Z"``.

    Raises ``ValueError`` for a naive datetime: its instant is unknown.
    """
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"naive datetime {value.isoformat()}: give a timezone-aware one")
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def hms(value: timedelta) -> str:
    """``timedelta(hours=1, minutes=2, seconds=3.9)`` → ``"1h02m03s"``.

    Whole seconds (the fraction is dropped, toward zero); a negative duration gets a
    leading ``-`` (``"-0h01m05s"``); ``timedelta(days=2)`` → ``"48h00m00s"``.
    """
    seconds = int(value.total_seconds())
    sign = "-" if seconds < 0 else ""
    hours, rest = divmod(abs(seconds), 3600)
    minutes, secs = divmod(rest, 60)
    return f"{sign}{hours}h{minutes:02d}m{secs:02d}s"
