"""The *rangos de medición*: the one definition of a service's availability bands.

For a service with ANS target ``t`` and amber lower bound ``m`` (the catalog's
``sla.amber_from``; by default ``max(0, 2t − 1)``, one more error budget below the
target), an availability ``a`` = (eligible − charged) / eligible falls in:

- green (code 2, ``#2EA043``) *Cumple*: ``a ≥ t``;
- amber (code 1, ``#F0AD00``) *Incumplimiento leve*: ``m ≤ a < t``;
- red (code 0, ``#CF222E``) *Incumplimiento grave*: ``a < m``;

and in no band without eligible time (*Sin datos*). Whatever shows a band takes it from
here: the monthly export, the ``sla`` command, the board (through the bounds the daemon
exports and the recording rule ``provider_service:scd_sla_band:code``).
``docs/rangos-de-medicion.md`` is the operators' version of this list.

**Exact.** The comparison is done on exact fractions: the availability from the stored
durations in microseconds, each bound read as the decimal it prints as
(``Fraction(repr(float(x)))``: ``0.995`` is 199/200), so the default ``2t − 1`` is exact
too (``2 × 0.7 − 1`` is 2/5, not the float ``0.3999999999999999``).

**Prometheus.** The board compares floats: the daemon exports each bound as the float
nearest to it (:attr:`BandBounds.green_ratio`, :attr:`BandBounds.amber_ratio`) and the
availability as :meth:`BandBounds.comparable_ratio`, the float nearest to it except
within one float step of a bound, where it is moved to the side of the bound the exact
value lies on. So PromQL's ``>=`` between those floats gives the exact band.

Pure: no I/O, no catalog import (the catalog reaches into sinks and X-Road); callers
pass the terms, or anything shaped like the catalog's ``Sla`` (:class:`SlaTerms`).
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass
from datetime import timedelta
from fractions import Fraction
from typing import Protocol

__all__ = [
    "NO_BAND_COLOUR",
    "NO_BAND_LABEL",
    "Band",
    "BandBounds",
    "SlaTerms",
    "band_of",
]

_ZERO = timedelta(0)
_US = timedelta(microseconds=1)

NO_BAND_LABEL = "Sin datos"
"""What the board and the reports say when there is no band (no eligible time)."""
NO_BAND_COLOUR = "#BEBEBE"


class Band(enum.StrEnum):
    """A *rango de medición*. The value is the JSON and label value (``green`` …)."""

    GREEN = "green"
    AMBER = "amber"
    RED = "red"

    @property
    def code(self) -> int:
        """The number of the recording rule ``provider_service:scd_sla_band:code``."""
        return _CODE[self]

    @property
    def label(self) -> str:
        """Its name for operators (es-CO), as the boards show it."""
        return _LABEL[self]

    @property
    def colour_name(self) -> str:
        """Its colour's name (es-CO), as the spreadsheet's ``Rango`` column shows it."""
        return _COLOUR_NAME[self]

    @property
    def colour(self) -> str:
        """Its colour as ``#RRGGBB``: the boards' value mappings and the PDF's fills."""
        return _COLOUR[self]

    @classmethod
    def of_code(cls, code: int) -> Band:
        """The band whose :attr:`code` is ``code``."""
        for band in cls:
            if band.code == code:
                return band
        raise ValueError(f"no band has code {code!r}")


_CODE = {Band.RED: 0, Band.AMBER: 1, Band.GREEN: 2}
_LABEL = {
    Band.GREEN: "Cumple",
    Band.AMBER: "Incumplimiento leve",
    Band.RED: "Incumplimiento grave",
}
_COLOUR_NAME = {Band.GREEN: "Verde", Band.AMBER: "Ámbar", Band.RED: "Rojo"}
_COLOUR = {Band.GREEN: "#2EA043", Band.AMBER: "#F0AD00", Band.RED: "#CF222E"}


class SlaTerms(Protocol):
    """What the bands need of a service's ANS (the catalog's ``Sla`` has it)."""

    @property
    def availability_target(self) -> float: ...

    @property
    def amber_from(self) -> float | None: ...


@dataclass(frozen=True, slots=True)
class BandBounds:
    """A service's band bounds, exact: green from :attr:`green`, amber from :attr:`amber`.

    Build it with :meth:`of` or :meth:`for_sla`; ``0 ≤ amber ≤ green ≤ 1``.
    """

    green: Fraction
    """The ANS target: the lowest availability that is green."""
    amber: Fraction
    """The lowest availability that is amber; below it is red."""

    def __post_init__(self) -> None:
        if not 0 < self.green <= 1:
            raise ValueError(f"target must be within (0, 1], got {float(self.green)}")
        if not 0 <= self.amber <= self.green:
            raise ValueError(
                f"amber bound {float(self.amber)} must be within [0, {float(self.green)}]"
            )

    @classmethod
    def of(cls, target: float, amber_from: float | None = None) -> BandBounds:
        """The bounds for ``target`` and the catalog's ``amber_from`` (``None``: default).

        The default amber bound is ``max(0, 2·target − 1)``. An ``amber_from`` at or
        above the target (the catalog refuses one; a report computed before a reload
        may meet one) leaves the amber band empty: the bound is cut to the target.
        """
        green = _exact(target)
        amber = max(Fraction(0), 2 * green - 1) if amber_from is None else _exact(amber_from)
        return cls(green=green, amber=min(amber, green))

    @classmethod
    def for_sla(cls, sla: SlaTerms) -> BandBounds:
        """The bounds of a catalog ``Sla``."""
        return cls.of(sla.availability_target, sla.amber_from)

    @property
    def green_ratio(self) -> float:
        """:attr:`green` as the nearest float (the target as the catalog wrote it)."""
        return float(self.green)

    @property
    def amber_ratio(self) -> float:
        """:attr:`amber` as the nearest float (what the daemon exports)."""
        return float(self.amber)

    def lower(self, band: Band) -> Fraction:
        """The lowest availability in ``band`` (0 for red)."""
        if band is Band.GREEN:
            return self.green
        if band is Band.AMBER:
            return self.amber
        return Fraction(0)

    def band_of_ratio(self, availability: Fraction) -> Band:
        """The band of an exact availability."""
        if availability >= self.green:
            return Band.GREEN
        if availability >= self.amber:
            return Band.AMBER
        return Band.RED

    def band(self, eligible: timedelta, charged: timedelta) -> Band | None:
        """The band of ``(eligible − charged) / eligible``; ``None`` without eligible time."""
        ratio = _availability(eligible, charged)
        return None if ratio is None else self.band_of_ratio(ratio)

    def comparable_ratio(self, eligible: timedelta, charged: timedelta) -> float | None:
        """The availability as a float that compares with :attr:`green_ratio` and
        :attr:`amber_ratio` as the exact value compares with the exact bounds.

        That is ``float(availability)`` (correctly rounded, as the SLA figures have it)
        except when rounding would carry it onto a bound it is below: then it is the
        float just below that bound, one float step (about 1e-16) from the exact value.
        Rounding never carries a value below a bound it reaches, so nothing else moves.
        ``None`` without eligible time.
        """
        ratio = _availability(eligible, charged)
        if ratio is None:
            return None
        value = float(ratio)
        for bound in (self.amber, self.green):
            edge = float(bound)
            if ratio < bound and value >= edge:
                value = math.nextafter(edge, -math.inf)
        return value


def band_of(
    eligible: timedelta, charged: timedelta, target: float, amber_from: float | None = None
) -> Band | None:
    """The band of ``(eligible − charged) / eligible`` for ``target`` and ``amber_from``."""
    return BandBounds.of(target, amber_from).band(eligible, charged)


def _exact(value: float) -> Fraction:
    return Fraction(repr(float(value)))


def _availability(eligible: timedelta, charged: timedelta) -> Fraction | None:
    if eligible <= _ZERO:
        return None
    return Fraction((eligible - charged) // _US, eligible // _US)
