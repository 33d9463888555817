"""One "service state now" for the board (``scd_service_state``) and incident detection.

During an allowed maintenance window a service whose critical check is DOWN reads
``maintenance`` on ``/metrics`` and opens no incident; outside it, it reads ``down`` and
an incident opens. Then the function itself: rules any / all / quorum, non-critical
checks, unknown checks, windows (one-off, recurring, rejected for late notice).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry
from prometheus_client.exposition import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from scd_monitor.analysis.servicestate import service_state
from scd_monitor.analysis.views import CheckStatus
from scd_monitor.catalog import Catalog, parse_catalog
from scd_monitor.catalog.models import ResolvedCheck, Service
from scd_monitor.incidents.detect import detect
from scd_monitor.incidents.observe import observe
from scd_monitor.incidents.service import IncidentService
from scd_monitor.sla.model import State
from scd_monitor.store import Store
from scd_monitor.web.metrics import StateCollector
from tests.conftest import utc
from tests.incidents.conftest import SettableClock, config

CATALOG = parse_catalog(
    """
providers:
  - id: p
    name: Prestador P
    services:
      - id: auth
        name: Autenticación P
        type: autenticacion_digital
        maintenance:
          - {start: "2026-11-10T06:00:00-05:00", end: "2026-11-10T08:00:00-05:00", reason: Parche}
          - {cron: "0 2 * * sun", duration: 2h, reason: Semanal}
        checks:
          - {id: oidc, kind: tls, host: idp.p.example}
          - {id: extra, kind: tls, host: extra.p.example, critical: false}
"""
)
OIDC = "p/auth/oidc"
IN_WINDOW = utc(2026, 11, 10, 12, 0, 0)  # 07:00 in Bogotá: inside «Parche»
ON_SUNDAY = utc(2026, 11, 15, 8, 0, 0)  # Sunday 03:00 in Bogotá: inside «Semanal»
OUTSIDE = utc(2026, 11, 10, 14, 0, 0)  # 09:00 in Bogotá: no window


def down_states(now: datetime) -> dict[str, CheckStatus]:
    return {
        OIDC: CheckStatus(State.DOWN, now - timedelta(minutes=5), now),
        "p/auth/extra": CheckStatus(State.UP, None, now),
    }


def board_state(now: datetime, states: dict[str, CheckStatus]) -> dict[str, float]:
    """``scd_service_state`` of p/auth by state, as ``/metrics`` renders it."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(
        StateCollector(
            checks=lambda: CATALOG.resolved_checks(),
            catalog=lambda: CATALOG,
            states=lambda: states,
            sla=lambda: None,
            vantage="bogota",
            clock=SettableClock(now),
        )
    )
    text = generate_latest(registry).decode()
    return {
        s.labels["state"]: s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == "scd_service_state" and s.labels["service"] == "auth"
    }


@pytest.mark.parametrize("now", [IN_WINDOW, ON_SUNDAY], ids=["one-off", "recurring"])
def test_in_a_maintenance_window_the_board_says_maintenance_and_no_incident_opens(
    now: datetime, store: Store
) -> None:
    states = down_states(now)
    board = board_state(now, states)
    assert board["maintenance"] == 1.0 and board["down"] == 0.0

    obs = observe(CATALOG, states, now=now, vantage="bogota")
    (seen,) = obs.services
    assert seen.state is State.MAINTENANCE
    assert detect(obs, config()) == {}
    incidents = IncidentService(store, config(), clock=SettableClock(now), holder="bogota")
    assert incidents.evaluate(obs) == []
    assert incidents.list() == []


def test_outside_the_windows_the_board_says_down_and_an_incident_opens(store: Store) -> None:
    states = down_states(OUTSIDE)
    board = board_state(OUTSIDE, states)
    assert board["down"] == 1.0 and board["maintenance"] == 0.0

    obs = observe(CATALOG, states, now=OUTSIDE, vantage="bogota")
    (seen,) = obs.services
    assert seen.state is State.DOWN
    (signal,) = detect(obs, config())[("p", "auth")]
    assert signal.kind.value == "outage"
    incidents = IncidentService(store, config(), clock=SettableClock(OUTSIDE), holder="bogota")
    assert [e.kind for e in incidents.evaluate(obs)] == ["opened"]
    assert len(incidents.list()) == 1


def test_board_and_detection_agree_at_every_hour_of_the_window_day() -> None:
    for hour in range(24):
        now = utc(2026, 11, 10, hour, 30, 0)
        states = down_states(now)
        board = board_state(now, states)
        (seen,) = observe(CATALOG, states, now=now, vantage="bogota").services
        assert board[seen.state.value] == 1.0, hour
        assert sum(board.values()) == 1.0


# --- the function itself ---------------------------------------------------------------

NOW = utc(2026, 11, 10, 15, 0, 0)


def catalog(rule: Any, *, critical: int = 3, extra: int = 0, maintenance: str = "") -> Catalog:
    checks = "\n".join(
        f"          - {{id: c{i}, kind: tls, host: c{i}.example}}" for i in range(critical)
    )
    extras = "\n".join(
        f"          - {{id: x{i}, kind: tls, host: x{i}.example, critical: false}}"
        for i in range(extra)
    )
    rule_text = rule if isinstance(rule, str) else f"{{quorum: {rule}}}"
    return parse_catalog(
        f"""
providers:
  - id: p
    name: P
    services:
      - id: s
        type: otro
        rule: {rule_text}
{maintenance}
        checks:
{checks}
{extras}
"""
    )


def state_of(cat: Catalog, states: dict[str, State], now: datetime = NOW) -> State:
    service = cat.service("p", "s")
    assert service is not None
    members: list[tuple[ResolvedCheck, State]] = [
        (c, states.get(c.check, State.UNKNOWN)) for c in cat.resolved_checks() if not c.canary
    ]
    return service_state(service, members, now=now, tz=cat.tz, vantage="v")


ANY, ALL = catalog("any"), catalog("all")
QUORUM = catalog(2)


def test_rule_any_all_quorum() -> None:
    one_down = {"c0": State.DOWN, "c1": State.UP, "c2": State.UP}
    two_down = {"c0": State.DOWN, "c1": State.DOWN, "c2": State.UP}
    all_down = dict.fromkeys(("c0", "c1", "c2"), State.DOWN)
    assert state_of(ANY, one_down) is State.DOWN
    assert state_of(ALL, one_down) is not State.DOWN
    assert state_of(ALL, all_down) is State.DOWN
    assert state_of(QUORUM, one_down) is not State.DOWN
    assert state_of(QUORUM, two_down) is State.DOWN
    everything_up = dict.fromkeys(("c0", "c1", "c2"), State.UP)
    for cat in (ANY, ALL, QUORUM):
        assert state_of(cat, everything_up) is State.UP


def test_unknown_checks() -> None:
    assert state_of(ANY, {}) is State.UNKNOWN
    # what is known and down is down under "any"; unknown does not hide it
    assert state_of(ANY, {"c0": State.DOWN}) is State.DOWN
    # under "all", one known-up check and the others unknown: not down
    assert state_of(ALL, {"c0": State.UP}) is not State.DOWN


def test_a_non_critical_check_only_degrades() -> None:
    cat = catalog("any", critical=1, extra=1)
    assert state_of(cat, {"c0": State.UP, "x0": State.DOWN}) is State.DEGRADED
    assert state_of(cat, {"c0": State.DOWN, "x0": State.UP}) is State.DOWN


def test_only_allowed_windows_make_maintenance() -> None:
    window = """        maintenance_notice: 48h
        maintenance:
          - {start: "2026-11-10T09:00:00-05:00", end: "2026-11-10T11:00:00-05:00", reason: a,
             announced_at: "2026-11-01T00:00:00-05:00"}
          - {start: "2026-11-11T09:00:00-05:00", end: "2026-11-11T11:00:00-05:00", reason: late,
             announced_at: "2026-11-10T12:00:00-05:00"}"""
    cat = catalog("any", maintenance=window)
    down = {"c0": State.DOWN}
    assert state_of(cat, down, NOW) is State.MAINTENANCE  # 10:00 Bogotá, announced
    assert state_of(cat, down, NOW + timedelta(days=1)) is State.DOWN  # announced late
    # "now" is the second ending at now: 11:00:00 is still the window's last second
    assert state_of(cat, down, NOW + timedelta(hours=1)) is State.MAINTENANCE
    assert state_of(cat, down, NOW + timedelta(hours=1, seconds=1)) is State.DOWN
    assert state_of(cat, {}, NOW) is State.MAINTENANCE  # nothing known, still maintenance


STATES = st.sampled_from([State.UP, State.DOWN, State.DEGRADED, State.UNKNOWN])


@given(st.lists(STATES, min_size=3, max_size=3), st.integers(1, 3))
def test_rules_against_a_count_of_down_checks(states: list[State], quorum: int) -> None:
    by_check = {f"c{i}": s for i, s in enumerate(states)}
    down = states.count(State.DOWN)
    known = [s for s in states if s is not State.UNKNOWN]
    results = {
        "any": state_of(ANY, by_check),
        "all": state_of(ALL, by_check),
        "quorum": state_of(catalog(quorum), by_check),
    }
    for name, result in results.items():
        if not known:
            assert result is State.UNKNOWN, name
        assert result is not State.MAINTENANCE, name  # no window in these catalogs
    assert (results["any"] is State.DOWN) == (down >= 1)
    assert (results["quorum"] is State.DOWN) == (down >= quorum)
    if down == 3:
        assert results["all"] is State.DOWN
    if State.UP in states or State.DEGRADED in states:
        assert results["all"] is not State.DOWN


def test_the_service_argument_is_what_the_collector_uses() -> None:
    service = CATALOG.service("p", "auth")
    assert isinstance(service, Service)
    members = [(c, State.DOWN) for c in CATALOG.resolved_checks() if c.service == "auth"]
    assert service_state(service, members, now=IN_WINDOW, tz=CATALOG.tz, vantage="v") is (
        State.MAINTENANCE
    )
    assert service_state(service, members, now=OUTSIDE, tz=CATALOG.tz, vantage="v") is State.DOWN
