"""Whether this vantage can trust its own view now: the one rule behind the board's
``scd_vantage_trusted`` and incident detection's ``monitor_fault``.

Three causes, any one suffices (README, "SLA definition"):

- ``canaries``: a configured canary check is DOWN;
- ``mass_failure``: ``monitor.mass_failure.min_providers`` providers or more, and at
  least ``min_ratio`` of those with fresh data, have a check DOWN;
- ``network_path``: the built-in self-check, needing no configuration
  (:func:`scd_monitor.sla.timeline.vantage_blind`): nothing answers, and destinations on
  ``monitor.network_path.min_hosts`` distinct hosts or more fail to resolve or to
  connect at once.

The SLA maths applies the same rules over time (:mod:`scd_monitor.sla.timeline`); this
module reads them at one instant, from the checks' current states and the error kind
of their last results.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from scd_monitor.catalog.models import MonitorSelf
from scd_monitor.sla.model import State
from scd_monitor.sla.timeline import is_mass_failure, vantage_blind

__all__ = ["CheckNow", "SelfCheck", "self_check"]


@dataclass(frozen=True, slots=True)
class CheckNow:
    """One check as the self-check reads it now."""

    check_id: str
    provider: str
    host: str
    state: State
    error_kind: str | None = None
    """The error kind of the check's last result, when it failed."""
    canary: bool = False


@dataclass(frozen=True, slots=True)
class SelfCheck:
    """The verdict, with what each cause found."""

    canaries_down: tuple[str, ...] = ()
    """Check ids of the canaries that are DOWN."""
    mass_failure: tuple[int, int] | None = None
    """(providers with a check down, providers with fresh data), when a mass failure."""
    blind_hosts: tuple[str, ...] | None = None
    """The hosts failing with a network-path error, when the network path is blind."""

    @property
    def causes(self) -> tuple[str, ...]:
        out = []
        if self.canaries_down:
            out.append("canaries")
        if self.mass_failure is not None:
            out.append("mass_failure")
        if self.blind_hosts is not None:
            out.append("network_path")
        return tuple(out)

    @property
    def trusted(self) -> bool:
        return not self.causes


def self_check(checks: Iterable[CheckNow], monitor: MonitorSelf) -> SelfCheck:
    """The vantage's self-check over its checks' current states."""
    items = list(checks)
    canaries = tuple(sorted(c.check_id for c in items if c.canary and c.state is State.DOWN))
    watched = [c for c in items if not c.canary]

    fresh = {c.provider for c in watched if c.state is not State.UNKNOWN}
    down = {c.provider for c in watched if c.state is State.DOWN}
    mass = monitor.mass_failure
    mass_failure = None
    if is_mass_failure(
        len(down), len(fresh), min_ratio=mass.min_ratio, min_providers=mass.min_providers
    ):
        mass_failure = (len(down), len(fresh))

    path = monitor.network_path
    blind_hosts = None
    if path.enabled and vantage_blind(
        [(c.host, c.state, c.error_kind) for c in watched],
        min_hosts=path.min_hosts,
        error_kinds=path.error_kinds,
    ):
        blind_hosts = tuple(
            sorted(
                {
                    c.host
                    for c in watched
                    if c.state is State.DOWN and c.error_kind in path.error_kinds
                }
            )
        )
    return SelfCheck(canaries_down=canaries, mass_failure=mass_failure, blind_hosts=blind_hosts)
