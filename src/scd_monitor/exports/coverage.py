"""Whether a closed month was measured enough to give a compliance verdict (issue 11).

A service's *coverage* is the SLA engine's (:attr:`~scd_monitor.sla.engine.SlaFigures.coverage`):
the share of the evaluated period whose state is known, ``(period − unknown) / period``
(measured, or excluded by an allowed maintenance window). A **closed** month in which a
service's coverage is below its catalog minimum (``sla.min_coverage``, default 0,9) gets
no verdict for that service: it is *cobertura insuficiente* — ``met`` is ``None``, it
has no *rango de medición*, its compliance reads ``Cobertura insuficiente`` and its
availability is shown only for information. A service never observed during the month
has coverage 0 and is therefore *cobertura insuficiente* too (never *Sin datos*, which
stays for a month whose time was all allowed maintenance). Coverage is compared with
the minimum exactly, on the stored durations: a month exactly at the minimum gets its
verdict, and ``min_coverage: 0`` never withholds one (the behaviour before issue 11).

A month still open (provisional) is not judged by coverage: its figures are
month-to-date and carry no final verdict anyway.

The month's status (the JSON document's and the manifest's ``status``) is
``provisional`` (still open), ``final`` (closed, every service measured enough) or
``insufficient_coverage`` (closed, but at least one service has no verdict; the others'
verdicts are final).
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta
from fractions import Fraction
from typing import Any

from scd_monitor.sla.engine import SlaFigures

__all__ = [
    "INSUFFICIENT_COVERAGE",
    "ReportStatus",
    "Verdicts",
    "coverage_sufficient",
]

INSUFFICIENT_COVERAGE = "Cobertura insuficiente"
"""The compliance of a service without a verdict for lack of measurement."""

_ZERO = timedelta(0)
_US = timedelta(microseconds=1)


class ReportStatus(enum.StrEnum):
    """The status of a monthly export as a whole (see the module docstring)."""

    PROVISIONAL = "provisional"
    FINAL = "final"
    INSUFFICIENT_COVERAGE = "insufficient_coverage"


def coverage_sufficient(figures: SlaFigures, min_coverage: float) -> bool | None:
    """Whether ``figures`` (a month's) were measured enough for a verdict.

    ``None`` while the period is still open (``figures.partial``): coverage decides
    nothing before the month closes. Otherwise ``(period − unknown) / period ≥
    min_coverage``, compared exactly (``min_coverage`` read as the decimal it prints
    as); an empty period has no measurement, so it is not sufficient.
    """
    if figures.partial:
        return None
    evaluated = figures.period.duration
    if evaluated <= _ZERO:
        return False
    measured = Fraction((evaluated - figures.unknown) // _US, evaluated // _US)
    return measured >= Fraction(repr(float(min_coverage)))


@dataclass(frozen=True, slots=True)
class Verdicts:
    """Services counted by their export verdict.

    ``met`` + ``missed`` + ``no_data`` + ``insufficient_coverage`` = all the services.
    ``undetermined`` (no verdict) = ``no_data`` + ``insufficient_coverage``, so the
    export's ``met``/``missed``/``undetermined`` add up to the services as the SLA
    engine's do; they differ from the engine's only by the services whose verdict the
    coverage withheld.
    """

    met: int
    missed: int
    no_data: int
    """No verdict because there was no eligible time (*Sin datos*)."""
    insufficient_coverage: int

    @property
    def undetermined(self) -> int:
        return self.no_data + self.insufficient_coverage

    @property
    def services(self) -> int:
        return self.met + self.missed + self.undetermined

    @classmethod
    def of(cls, verdicts: Iterable[tuple[bool | None, bool | None]]) -> Verdicts:
        """From each service's (export ``met``, ``coverage_sufficient``)."""
        met = missed = no_data = insufficient = 0
        for verdict, sufficient in verdicts:
            if sufficient is False:
                insufficient += 1
            elif verdict is True:
                met += 1
            elif verdict is False:
                missed += 1
            else:
                no_data += 1
        return cls(met, missed, no_data, insufficient)

    def apply(self, entry: dict[str, Any]) -> dict[str, Any]:
        """``entry`` (a provider's or the summary's JSON, with the engine's counts) with
        the counts of this export's verdicts and ``insufficient_coverage`` after them."""
        out: dict[str, Any] = {}
        for key, value in entry.items():
            if key == "met":
                out[key] = self.met
            elif key == "missed":
                out[key] = self.missed
            elif key == "undetermined":
                out[key] = self.undetermined
                out["insufficient_coverage"] = self.insufficient_coverage
            else:
                out[key] = value
        return out
