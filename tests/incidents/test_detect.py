"""Detection: observations in, signals out (examples per rule)."""

from __future__ import annotations

from datetime import timedelta

from scd_monitor.catalog.incident_kinds import Severity, SignalKind
from scd_monitor.catalog.models import MonitorSelf, NetworkPath
from scd_monitor.incidents.detect import default_severity, detect, unobservable
from scd_monitor.incidents.model import MONITOR_PROVIDER
from scd_monitor.incidents.observe import (
    CheckObservation,
    DirectoryObservation,
    KeyRemoval,
    Observations,
)
from scd_monitor.sla.model import State
from scd_monitor.xroad.directory import DirectoryEvent
from tests.incidents.conftest import T0, check, config, outage, service
from tests.incidents.figures import figures

KEY = ("prestador-a", "autenticacion")


def kinds(found: dict, key: tuple[str, str] = KEY) -> list[tuple[str, str]]:  # type: ignore[type-arg]
    return sorted((s.kind.value, s.key) for s in found.get(key, []))


def test_confirmed_outage_is_one_signal_per_service_with_its_start() -> None:
    obs = outage(T0, since=T0 - timedelta(minutes=3))
    found = detect(obs, config())
    (signal,) = found[KEY]
    assert signal.kind is SignalKind.OUTAGE
    assert signal.since == T0 - timedelta(minutes=3)
    assert signal.severity is Severity.CRITICAL  # autenticación digital
    assert signal.error_kinds == ("timeout",)
    assert "1 de 1" in signal.summary


def test_severity_follows_the_service_type_and_rule_overrides() -> None:
    assert default_severity(SignalKind.OUTAGE, "carpeta_ciudadana") is Severity.HIGH
    cfg = config(
        overrides=[{"provider": "prestador-a", "rules": {"outage": {"severity": "medium"}}}]
    )
    (signal,) = detect(outage(T0), cfg)[KEY]
    assert signal.severity is Severity.MEDIUM


def test_up_unknown_and_maintenance_give_nothing() -> None:
    for state in (State.UP, State.UNKNOWN, State.MAINTENANCE):
        obs = Observations(at=T0, vantage="v", services=(service(state),))
        assert detect(obs, config()) == {}
        assert unobservable(obs) == ({KEY} if state is State.UNKNOWN else set())


def test_degradation_carries_its_duration() -> None:
    slow = check("oidc", State.DEGRADED)
    obs = Observations(at=T0, vantage="v", services=(service(State.DEGRADED, [slow]),))
    (signal,) = detect(obs, config())[KEY]
    assert signal.kind is SignalKind.DEGRADATION and signal.after == timedelta(minutes=10)
    cfg = config(rules={"degradation": {"enabled": False}})
    assert detect(obs, cfg) == {}


def test_sla_burn_rate_and_availability_below_target() -> None:
    sla = figures(T0, availability=0.99, burn={timedelta(hours=1): 20.0})
    obs = Observations(at=T0, vantage="v", services=(service(State.UP, sla=sla),))
    assert kinds(detect(obs, config())) == [
        ("sla_at_risk", "sla_availability:2026-05"),
        ("sla_at_risk", "sla_burn:1h"),
    ]
    by_key = {s.key: s for s in detect(obs, config())[KEY]}
    assert by_key["sla_availability:2026-05"].severity is Severity.HIGH
    assert by_key["sla_burn:1h"].severity is Severity.MEDIUM
    calm = figures(T0)
    obs = Observations(at=T0, vantage="v", services=(service(State.UP, sla=calm),))
    assert detect(obs, config()) == {}


def test_certificates_expiring_and_expired() -> None:
    soon = check("cert", cert_not_after=T0 + timedelta(days=3))
    gone = check("tls2", cert_not_after=T0 - timedelta(hours=1))
    fine = check("tls3", cert_not_after=T0 + timedelta(days=60))
    obs = Observations(at=T0, vantage="v", services=(service(State.UP, [soon, gone, fine]),))
    assert kinds(detect(obs, config())) == [
        ("cert_expired", "cert:prestador-a/autenticacion/tls2"),
        ("cert_expiring", "cert:prestador-a/autenticacion/cert"),
    ]


def test_an_early_key_removal_is_a_signal_while_it_is_recent() -> None:
    oidc = check("oidc")
    removal = KeyRemoval(
        "prestador-a/autenticacion/oidc",
        "k1",
        T0 - timedelta(minutes=10),
        T0 + timedelta(minutes=2),
    )
    other = KeyRemoval("otro/servicio/oidc", "k9", T0 - timedelta(minutes=1))
    old = KeyRemoval("prestador-a/autenticacion/oidc", "k0", T0 - timedelta(hours=2))
    obs = Observations(
        at=T0,
        vantage="v",
        services=(service(State.UP, [oidc]),),
        oidc_key_removals=(removal, other, old),
    )
    found = detect(obs, config())
    assert kinds(found) == [("oidc_key_removed", "oidc_key:prestador-a/autenticacion/oidc:k1")]
    (signal,) = found[KEY]
    assert signal.severity is Severity.HIGH
    assert "k1" in signal.summary and "seguía vigente hasta" in signal.summary
    assert signal.details["token_valid_until"] == "2026-11-02T10:02:00Z" or signal.details[
        "token_valid_until"
    ].startswith((T0 + timedelta(minutes=2)).strftime("%Y-%m-%dT%H:%M"))
    later = Observations(
        at=T0 + timedelta(hours=1),
        vantage="v",
        services=(service(State.UP, [oidc]),),
        oidc_key_removals=(removal,),
    )
    assert KEY not in detect(later, config())  # older than the rule's `lasts` (1 h)


def test_canaries_down_are_a_monitor_fault_and_silence_outages() -> None:
    canary = check("internet", State.DOWN, provider=MONITOR_PROVIDER, service="canaries")
    obs = outage(T0)
    obs = Observations(at=T0, vantage="bogota", services=obs.services, canaries=(canary,))
    found = detect(obs, config())
    assert KEY not in found
    assert unobservable(obs) == {KEY}  # its open incident is held, not cleared
    (signal,) = found[(MONITOR_PROVIDER, "monitor")]
    assert signal.kind is SignalKind.MONITOR_FAULT and signal.key == "canaries"


def test_mass_failure_is_a_monitor_fault() -> None:
    down = [
        service(
            State.DOWN,
            [check("h", State.DOWN, provider=f"p{i}", service="s", since=T0)],
            provider=f"p{i}",
            name="s",
        )
        for i in range(3)
    ]
    up = service(State.UP, [check("h", provider="p9", service="s")], provider="p9", name="s")
    services = (*down, up)
    obs = Observations(at=T0, vantage="v", services=services)
    found = detect(obs, config())
    assert list(found) == [(MONITOR_PROVIDER, "monitor")]
    assert found[(MONITOR_PROVIDER, "monitor")][0].key == "mass_failure"


def test_a_blind_network_path_is_a_monitor_fault_with_two_providers() -> None:
    """Issue 11: no canaries, two providers only (below mass_failure.min_providers): every
    destination failing by DNS or connection at once is the monitor's own fault."""
    from dataclasses import replace

    def down(provider: str, name: str, kind: str) -> CheckObservation:
        c = check(name, State.DOWN, provider=provider, service="s", since=T0, error_kind=kind)
        return replace(c, host=f"{name}.{provider}.example")

    services = (
        service(State.DOWN, [down("p1", "web", "dns")], provider="p1", name="s"),
        service(State.DOWN, [down("p2", "api", "connect")], provider="p2", name="s"),
    )
    obs = Observations(at=T0, vantage="bogota", services=services)
    found = detect(obs, config())
    assert list(found) == [(MONITOR_PROVIDER, "monitor")]
    (signal,) = found[(MONITOR_PROVIDER, "monitor")]
    assert signal.key == "network_path" and signal.since == T0
    assert signal.details["hosts"] == ["api.p2.example", "web.p1.example"]
    assert "bogota" in signal.summary and "no se imputan" in signal.summary
    assert unobservable(obs) == {("p1", "s"), ("p2", "s")}
    # The same failures with one destination still answering: the providers' outages.
    answering = replace(check("ok", provider="p3", service="s"), host="ok.p3.example")
    obs = Observations(
        at=T0,
        vantage="bogota",
        services=(*services, service(State.UP, [answering], provider="p3", name="s")),
    )
    found = detect(obs, config())
    assert (MONITOR_PROVIDER, "monitor") not in found
    assert {("p1", "s"), ("p2", "s")} <= set(found)
    # Switched off in the catalog: outages again.
    off = Observations(
        at=T0,
        vantage="bogota",
        services=services,
        monitor=MonitorSelf(network_path=NetworkPath(enabled=False)),
    )
    assert (MONITOR_PROVIDER, "monitor") not in detect(off, config())


def test_directory_vanished_stale_and_expired() -> None:
    source = DirectoryObservation(
        source="co-test",
        provider="plataforma",
        service="co-test",
        instance="CO-TEST",
        interval=timedelta(minutes=10),
        last_success_at=T0 - timedelta(hours=1),
        globalconf_expires_at=T0 - timedelta(minutes=1),
    )
    events = (
        DirectoryEvent(
            T0 - timedelta(hours=2), "co-test", "subsystem", "disappeared", "CO/GOB/1/A"
        ),
        DirectoryEvent(
            T0 - timedelta(hours=2), "co-test", "service", "disappeared", "CO/GOB/1/B/x"
        ),
        DirectoryEvent(T0 - timedelta(hours=1), "co-test", "service", "appeared", "CO/GOB/1/B/x"),
        DirectoryEvent(
            T0 - timedelta(days=3), "co-test", "subsystem", "disappeared", "CO/GOB/1/OLD"
        ),
        DirectoryEvent(T0 - timedelta(hours=1), "other", "subsystem", "disappeared", "CO/GOB/2/Z"),
    )
    obs = Observations(at=T0, vantage="v", directories=(source,), directory_events=events)
    found = detect(obs, config())
    signals = {s.key: s for s in found[("plataforma", "co-test")]}
    assert set(signals) == {"directory_vanished", "globalconf", "directory_stale"}
    assert signals["directory_vanished"].details["vanished"] == [
        {"kind": "subsystem", "subject": "CO/GOB/1/A"}
    ]
    assert signals["globalconf"].severity is Severity.CRITICAL
    assert signals["directory_stale"].severity is Severity.HIGH
