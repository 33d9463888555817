"""The debounce and freshness rules of each check, from the catalog."""

from __future__ import annotations

from datetime import timedelta

from scd_monitor.catalog.models import Catalog, ResolvedCheck
from scd_monitor.sla.derive import DerivePolicy

DEFAULT_POLICY = DerivePolicy(
    failures_to_open=3,
    successes_to_close=1,
    latency_threshold=timedelta(seconds=2),
    staleness=timedelta(seconds=70),
)


def derive_policy(catalog: Catalog, check: ResolvedCheck) -> DerivePolicy:
    """The debounce and freshness rules of one check, from the catalog."""
    service = catalog.service(check.provider, check.service)
    failures = catalog.defaults.failures_to_open
    successes = catalog.defaults.successes_to_close
    if service is not None:
        failures = service.failures_to_open or failures
        successes = service.successes_to_close or successes
    return DerivePolicy(
        failures_to_open=failures,
        successes_to_close=successes,
        latency_threshold=check.sla.latency_threshold,
        staleness=staleness_of(check),
    )


def staleness_of(check: ResolvedCheck) -> timedelta:
    """How long one observation stays fresh: one missed run is tolerated, two are not."""
    return 2 * check.interval + check.timeout
