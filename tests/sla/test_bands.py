"""The rangos de medición: hand-picked bounds and properties (monotone, exact, floats)."""

from __future__ import annotations

import math
from datetime import timedelta
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from scd_monitor.catalog.models import Sla
from scd_monitor.sla.bands import Band, BandBounds, band_of

US = timedelta(microseconds=1)
DAY = timedelta(days=1)
MONTH_US = 31 * 86_400 * 1_000_000

ORDER = {Band.RED: 0, Band.AMBER: 1, Band.GREEN: 2}

# Targets as an ANS writes them (a few decimals) and as floats can be (any in (0, 1]).
written_targets = st.sampled_from(
    [0.5, 0.7, 0.9, 0.95, 0.98, 0.99, 0.995, 0.999, 0.9995, 0.99995, 0.9999999, 1.0]
)
targets = st.one_of(
    written_targets,
    st.floats(min_value=1e-6, max_value=1.0, allow_nan=False, exclude_min=False),
)


@st.composite
def terms(draw: st.DrawFn) -> tuple[float, float | None]:
    """A target and an ``amber_from`` the catalog accepts (``None``: the default)."""
    target = draw(targets)
    if draw(st.booleans()):
        return target, None
    amber = draw(st.floats(min_value=0.0, max_value=target, exclude_max=True))
    return target, amber


@st.composite
def durations(draw: st.DrawFn) -> tuple[timedelta, timedelta]:
    """(eligible, charged) in whole microseconds, charged ≤ eligible."""
    eligible = draw(st.integers(min_value=1, max_value=MONTH_US))
    charged = draw(st.integers(min_value=0, max_value=eligible))
    return eligible * US, charged * US


def ratio(eligible: timedelta, charged: timedelta) -> Fraction:
    return Fraction((eligible - charged) // US, eligible // US)


# --- the definition -----------------------------------------------------------------------


def test_names_colours_and_codes() -> None:
    assert [(b.value, b.code, b.label, b.colour_name) for b in Band] == [
        ("green", 2, "Cumple", "Verde"),
        ("amber", 1, "Incumplimiento leve", "Ámbar"),
        ("red", 0, "Incumplimiento grave", "Rojo"),
    ]
    for band in Band:
        assert len(band.colour) == 7 and band.colour.startswith("#")
        int(band.colour[1:], 16)
        assert Band.of_code(band.code) is band
    with pytest.raises(ValueError, match="no band"):
        Band.of_code(3)


def test_default_amber_bound_is_two_targets_minus_one_exactly() -> None:
    assert BandBounds.of(0.995).amber == Fraction(99, 100)
    # 2 × 0.7 − 1 in floats is 0.3999999999999999; the bound is 2/5.
    assert BandBounds.of(0.7).amber == Fraction(2, 5)
    assert BandBounds.of(0.7).amber_ratio == 0.4
    assert BandBounds.of(0.5).amber == 0 and BandBounds.of(0.2).amber == 0
    assert BandBounds.of(1.0) == BandBounds(Fraction(1), Fraction(1))
    assert BandBounds.of(0.995, 0.97).amber == Fraction(97, 100)


def test_bounds_from_the_catalogs_sla() -> None:
    assert BandBounds.for_sla(Sla()) == BandBounds.of(0.995)
    sla = Sla(availability_target=0.98, amber_from=0.9)
    assert BandBounds.for_sla(sla) == BandBounds(Fraction(49, 50), Fraction(9, 10))
    # The catalog's float amber_lower is what the bound is, to the float.
    for target in (0.7, 0.98, 0.995, 0.9999999):
        sla = Sla(availability_target=target)
        assert BandBounds.for_sla(sla).amber_ratio == pytest.approx(sla.amber_lower, abs=1e-15)


def test_an_amber_bound_at_or_above_the_target_empties_the_amber_band() -> None:
    """The catalog refuses one; a report from before a reload may still meet one."""
    bounds = BandBounds.of(0.99, 0.995)
    assert bounds.amber == bounds.green == Fraction(99, 100)
    assert bounds.band(DAY, DAY * 0.01) is Band.GREEN
    assert bounds.band(DAY, DAY * 0.01 + US) is Band.RED


def test_exact_at_the_bounds() -> None:
    assert band_of(DAY, DAY * 0.005, 0.995) is Band.GREEN
    assert band_of(DAY, DAY * 0.005 + US, 0.995) is Band.AMBER
    assert band_of(DAY, DAY * 0.01, 0.995) is Band.AMBER
    assert band_of(DAY, DAY * 0.01 + US, 0.995) is Band.RED
    assert band_of(DAY, DAY * 0.03, 0.995, 0.97) is Band.AMBER
    assert band_of(DAY, DAY * 0.03 + US, 0.995, 0.97) is Band.RED
    assert band_of(DAY, timedelta(0), 1.0) is Band.GREEN
    assert band_of(DAY, US, 1.0) is Band.RED
    assert band_of(timedelta(0), timedelta(0), 0.995) is None
    assert BandBounds.of(0.995).comparable_ratio(timedelta(0), timedelta(0)) is None


def test_lower_bounds() -> None:
    bounds = BandBounds.of(0.98, 0.9)
    assert [bounds.lower(b) for b in Band] == [Fraction(49, 50), Fraction(9, 10), Fraction(0)]
    for band in Band:
        assert bounds.band_of_ratio(bounds.lower(band)) is band


# --- properties ---------------------------------------------------------------------------


@given(terms(), durations(), durations())
def test_bands_are_monotone_in_availability(
    term: tuple[float, float | None],
    one: tuple[timedelta, timedelta],
    other: tuple[timedelta, timedelta],
) -> None:
    bounds = BandBounds.of(*term)
    a, b = ratio(*one), ratio(*other)
    band_a, band_b = bounds.band(*one), bounds.band(*other)
    assert band_a is not None and band_b is not None
    if a <= b:
        assert ORDER[band_a] <= ORDER[band_b]


@given(terms(), durations())
def test_green_iff_the_target_is_met_and_red_iff_below_the_amber_bound(
    term: tuple[float, float | None], d: tuple[timedelta, timedelta]
) -> None:
    target, amber_from = term
    bounds = BandBounds.of(target, amber_from)
    a = ratio(*d)
    band = bounds.band(*d)
    exact_target = Fraction(repr(target))
    assert (band is Band.GREEN) == (a >= exact_target)
    amber = 2 * exact_target - 1 if amber_from is None else Fraction(repr(amber_from))
    assert (band is Band.RED) == (a < amber)
    assert bounds.lower(Band.RED) <= bounds.amber <= bounds.green == exact_target
    assert band_of(*d, target, amber_from) is band


@given(terms(), durations())
def test_the_float_availability_compares_with_the_float_bounds_as_the_exact_one(
    term: tuple[float, float | None], d: tuple[timedelta, timedelta]
) -> None:
    """What the board does in PromQL (``>=`` on the exported floats) gives the band."""
    bounds = BandBounds.of(*term)
    value = bounds.comparable_ratio(*d)
    assert value is not None
    if value >= bounds.green_ratio:
        seen = Band.GREEN
    elif value >= bounds.amber_ratio:
        seen = Band.AMBER
    else:
        seen = Band.RED
    if bounds.amber_ratio < bounds.green_ratio or bounds.amber == bounds.green:
        assert seen is bounds.band(*d)
    # At most one float step from the correctly rounded availability.
    nearest = float(ratio(*d))
    assert value in (nearest, math.nextafter(nearest, -math.inf))


@given(terms(), st.sampled_from([DAY, 30 * DAY, 31 * DAY - 7 * US]), st.integers(-3, 3))
def test_ties_and_their_neighbours(
    term: tuple[float, float | None], eligible: timedelta, offset: int
) -> None:
    """Availabilities on each bound (as near as whole microseconds get) and around it."""
    bounds = BandBounds.of(*term)
    micros = eligible // US
    for lower in (bounds.green, bounds.amber):
        up = math.ceil(lower * micros) + offset
        if not 0 <= up <= micros:
            continue
        charged = (micros - up) * US
        exact = bounds.band_of_ratio(Fraction(up, micros))
        assert bounds.band(eligible, charged) is exact
        value = bounds.comparable_ratio(eligible, charged)
        assert value is not None
        assert (value >= bounds.green_ratio) == (exact is Band.GREEN)
        if bounds.amber_ratio < bounds.green_ratio:
            assert (value < bounds.amber_ratio) == (exact is Band.RED)
