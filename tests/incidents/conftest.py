"""Fixtures of the incident tests: a settable clock, observations, configurations."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from scd_monitor.catalog.incidents import IncidentsConfig
from scd_monitor.incidents.observe import CheckObservation, Observations, ServiceObservation
from scd_monitor.sla.model import State

T0 = datetime(2026, 5, 4, 15, 0, tzinfo=UTC)


@dataclass
class SettableClock:
    at: datetime = T0
    mono: float = 0.0

    def now(self) -> datetime:
        return self.at

    def monotonic(self) -> float:
        return self.mono

    def advance(self, delta: timedelta) -> datetime:
        self.at += delta
        self.mono += delta.total_seconds()
        return self.at


@pytest.fixture
def clock() -> SettableClock:
    return SettableClock()


def check(
    name: str,
    state: State = State.UP,
    *,
    provider: str = "prestador-a",
    service: str = "autenticacion",
    since: datetime | None = None,
    critical: bool = True,
    error_kind: str | None = None,
    cert_not_after: datetime | None = None,
) -> CheckObservation:
    return CheckObservation(
        check_id=f"{provider}/{service}/{name}",
        check=name,
        critical=critical,
        state=state,
        since=since,
        error_kind=error_kind,
        cert_not_after=cert_not_after,
    )


def service(
    state: State = State.UP,
    checks: Sequence[CheckObservation] | None = None,
    *,
    provider: str = "prestador-a",
    name: str = "autenticacion",
    service_type: str = "autenticacion_digital",
    contact: str | None = "soporte@prestador-a.example",
    sla: Any = None,
) -> ServiceObservation:
    return ServiceObservation(
        provider=provider,
        service=name,
        service_type=service_type,
        state=state,
        checks=tuple(checks or [check("oidc", state, provider=provider, service=name)]),
        sla=sla,
        provider_name="Prestador A",
        service_name="Autenticación Digital A",
        provider_contact=contact,
    )


def outage(at: datetime, *, since: datetime | None = None, **kw: Any) -> Observations:
    """One service down (its critical check confirmed down since ``since``)."""
    start = since or at - timedelta(minutes=2)
    down = check("oidc", State.DOWN, since=start, error_kind="timeout")
    return Observations(at=at, vantage="bogota", services=(service(State.DOWN, [down], **kw),))


def healthy(at: datetime, **kw: Any) -> Observations:
    return Observations(at=at, vantage="bogota", services=(service(State.UP, **kw),))


@dataclass
class Recorder:
    """A fake sink that records what it is given and fails as told."""

    name: str = "fake"
    fail: list[Exception] = field(default_factory=list)
    received: list[Any] = field(default_factory=list)

    async def deliver(self, payload: Any) -> None:
        if self.fail:
            raise self.fail.pop(0)
        self.received.append(payload)


def config(**overrides: Any) -> IncidentsConfig:
    data: dict[str, Any] = {
        "resolve_after": "0s",
        "quiet_period": "10m",
        "sinks": [{"id": "fake", "kind": "file", "directory": "/nonexistent"}],
        "routes": [{"audience": "authority", "sinks": ["fake"]}],
    }
    data.update(overrides)
    return IncidentsConfig.model_validate(data)
