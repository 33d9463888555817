"""OIDC key rotations: stored ``oidc`` results → key events, through the state tracker,
on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import timedelta

import pytest
import structlog

from scd_monitor.catalog import parse_catalog
from scd_monitor.clock import FixedClock
from scd_monitor.probes.base import ErrorKind, Outcome, ProbeResult
from scd_monitor.runtime.daemon import key_removals
from scd_monitor.runtime.tracker import StateTracker
from scd_monitor.store import ResultRepository, Store
from scd_monitor.store.oidckeys import OidcKeyRepository, observation_of
from tests.conftest import utc

CATALOG = parse_catalog(
    """
defaults: {interval: 1m, timeout: 10s}
providers:
  - id: and
    name: AND
    services:
      - id: ad
        type: autenticacion_digital
        checks:
          - {id: oidc, kind: oidc, issuer: "https://idp.example"}
"""
)
CHECK = "and/ad/oidc"
T0 = utc(2026, 12, 6, 10, 0, 0)


def result(minute: int, kids: str | None, *, token_kid: str | None = None) -> ProbeResult:
    details: dict[str, str | int | float | bool] = {}
    if kids is not None:
        details["jwks_kids"] = kids
        details["jwks_keys"] = len([k for k in kids.split(",") if k])
    if token_kid is not None:
        details["token_kid"] = token_kid
        expires = T0 + timedelta(minutes=minute + 5)  # a 5-minute token
        details["token_expires_at"] = expires.isoformat()
    ok = kids is not None
    return ProbeResult(
        check_id=CHECK,
        kind="oidc",
        vantage="v1",
        started_at=T0 + timedelta(minutes=minute),
        duration=0.1,
        outcome=Outcome(
            ok=ok,
            error_kind=None if ok else ErrorKind.TIMEOUT,
            details=details if ok else {"step": "jwks"},
        ),
    )


def track(store: Store, results: list[ProbeResult]) -> StateTracker:
    ResultRepository(store).write(results)
    tracker = StateTracker(store, vantage="v1", clock=FixedClock(T0 + timedelta(hours=1)))
    tracker.set_catalog(CATALOG)
    tracker.run_until_idle()
    return tracker


def test_a_rotation_is_one_appeared_then_one_disappeared(store: Store) -> None:
    history = [
        result(0, "k1", token_kid="k1"),  # baseline: no event
        result(1, "k1", token_kid="k1"),
        result(2, None),  # the probe failed before the JWKS: nothing said about keys
        result(3, "k1,k2", token_kid="k2"),  # k2 published, now signing
        result(4, "k1,k2", token_kid="k2"),
        result(15, "k2", token_kid="k2"),  # k1 retired long after its last token expired
    ]
    with structlog.testing.capture_logs() as logs:
        track(store, history)
    events = OidcKeyRepository(store).events()
    assert [(e.change, e.kid, e.early, e.at) for e in events] == [
        ("appeared", "k2", False, T0 + timedelta(minutes=3)),
        ("disappeared", "k1", False, T0 + timedelta(minutes=15)),
    ]
    assert events[0].details["kids_before"] == ["k1"]
    assert events[0].details["kids_after"] == ["k1", "k2"]
    changed = [e for e in logs if e["event"] == "oidc.key_changed"]
    assert [(e["change"], e["kid"], e["log_level"]) for e in changed] == [
        ("appeared", "k2", "info"),
        ("disappeared", "k1", "info"),
    ]
    (state,) = OidcKeyRepository(store).current().values()
    assert state.kids == ("k2",) and state.token_kid == "k2"


def test_a_signing_key_removed_while_its_token_is_valid_is_early(store: Store) -> None:
    history = [
        result(0, "k1", token_kid="k1"),
        result(1, "k2"),  # k1 gone one minute after a 5-minute token signed by it
    ]
    with structlog.testing.capture_logs() as logs:
        track(store, history)
    events = OidcKeyRepository(store).events()
    gone = [e for e in events if e.change == "disappeared"]
    assert [(e.kid, e.early) for e in gone] == [("k1", True)]
    assert gone[0].details["token_valid_until"] == (T0 + timedelta(minutes=5)).isoformat()
    warned = [e for e in logs if e["event"] == "oidc.key_changed" and e["early"]]
    assert warned and warned[0]["log_level"] == "warning"


def test_early_removals_reach_incident_detection(store: Store) -> None:
    tracker = track(store, [result(0, "k1", token_kid="k1"), result(1, "k2")])
    (event,) = tracker.early_key_removals()
    (removal,) = key_removals([event])
    assert (removal.check_id, removal.kid) == (CHECK, "k1")
    assert removal.at == T0 + timedelta(minutes=1)
    assert removal.token_valid_until == T0 + timedelta(minutes=5)
    # A new tracker (a restart) finds the recent early removal in the store.
    again = StateTracker(store, vantage="v1", clock=FixedClock(T0 + timedelta(hours=1)))
    again.set_catalog(CATALOG)
    ResultRepository(store).write([result(2, "k2")])
    again.run_until_idle()
    assert [(e.kid, e.early) for e in again.early_key_removals()] == [("k1", True)]


def test_events_survive_a_restart_without_repeating(store: Store) -> None:
    track(store, [result(0, "k1"), result(1, "k1,k2")])
    # A new tracker (a restart) reads the stored key set: the same keys are no event.
    track(store, [result(2, "k1,k2"), result(3, "k2")])
    events = OidcKeyRepository(store).events()
    assert [(e.change, e.kid) for e in events] == [("appeared", "k2"), ("disappeared", "k1")]


def test_a_truncated_key_list_is_never_diffed() -> None:
    assert observation_of(CHECK, T0, {"jwks_kids": "a,b,c…"}) is None
    assert observation_of(CHECK, T0, {"step": "discovery"}) is None
    seen = observation_of(CHECK, T0, {"jwks_kids": "b,a", "token_expires_at": "not a time"})
    assert seen is not None and seen.kids == ("a", "b") and seen.token_valid_until is None


def test_the_cli_lists_the_keys_and_their_changes(tmp_path: object) -> None:
    url = f"sqlite:///{tmp_path}/keys.db"
    store = Store(url)
    store.create_schema()
    try:
        track(store, [result(0, "k1"), result(1, "k1,k2"), result(2, "k2")])
    finally:
        store.dispose()
    base = [sys.executable, "-m", "scd_monitor", "oidc-keys", "--database-url", url]
    changes = subprocess.run(
        [*base, "--changes", "--format", "json"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    document = json.loads(changes.stdout)
    assert [(e["change"], e["kid"], e["check"]) for e in document] == [
        ("appeared", "k2", CHECK),
        ("disappeared", "k1", CHECK),
    ]
    table = subprocess.run(base, capture_output=True, text=True, timeout=60, check=True)
    assert CHECK in table.stdout and "k2" in table.stdout and "k1" not in table.stdout


@pytest.mark.parametrize("kids", ["", "k1", "k1,k2,k3"])
def test_observations_keep_the_sorted_kids(kids: str) -> None:
    seen = observation_of(CHECK, T0, {"jwks_kids": kids})
    assert seen is not None
    assert seen.kids == tuple(sorted(k for k in kids.split(",") if k))
