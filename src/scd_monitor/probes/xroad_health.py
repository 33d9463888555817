"""The ``xroad_health`` probe: a security server's health check.

One GET of the health check URL (the security server's ``proxy.health-check-port``):

* ``200`` → ok;
* ``503`` → the server is in maintenance mode: a failed outcome (``status``) with
  ``details["maintenance"] = True``, which the state tracker counts as MAINTENANCE
  (excluded from the SLA), not as downtime;
* ``500`` → unhealthy: ``status``, the message quotes the body (which of the server's
  own checks failed);
* any other status → ``status``;
* no answer → the transport error's kind (``dns``, ``connect``, ``timeout`` …).
"""

from __future__ import annotations

from scd_monitor.catalog.models import ResolvedCheck, XRoadHealthCheck
from scd_monitor.net.tls import ContextCache
from scd_monitor.probes.base import ErrorKind, Outcome
from scd_monitor.probes.xroadinfo import failure_outcome
from scd_monitor.xroad.client import HealthStatus, check_health
from scd_monitor.xroad.errors import XRoadFailure

__all__ = ["XRoadHealthProbe"]


class XRoadHealthProbe:
    """Implements :class:`~scd_monitor.probes.base.Probe` for ``kind: xroad_health``."""

    def __init__(self, *, contexts: ContextCache | None = None) -> None:
        self._contexts = contexts if contexts is not None else ContextCache()

    async def __call__(self, check: ResolvedCheck) -> Outcome:
        try:
            spec = check.spec
            if not isinstance(spec, XRoadHealthCheck):
                raise TypeError(f"the xroad_health probe cannot run a {spec.kind!r} check")
            try:
                report = await check_health(
                    spec.url,
                    tls=spec.tls,
                    contexts=self._contexts,
                    timeout=check.timeout.total_seconds(),
                )
            except XRoadFailure as exc:
                return failure_outcome(exc)
        except Exception as exc:  # the probe's own failure, never the target's
            return Outcome.failure(ErrorKind.INTERNAL, f"{type(exc).__name__}: {exc}")
        code = report.status_code
        details: dict[str, str | int | float | bool] = {"xroad_health": report.status.value}
        evidence = f": {report.message}" if report.message else ""
        if report.status is HealthStatus.HEALTHY:
            return Outcome(ok=True, status_code=code, details=details)
        if report.status is HealthStatus.MAINTENANCE:
            details["maintenance"] = True
            return Outcome.failure(
                ErrorKind.STATUS,
                f"status {code}: security server in maintenance mode{evidence}",
                status_code=code,
                details=details,
            )
        if report.status is HealthStatus.UNHEALTHY:
            return Outcome.failure(
                ErrorKind.STATUS,
                f"status {code}: security server unhealthy{evidence}",
                status_code=code,
                details=details,
            )
        return Outcome.failure(
            ErrorKind.STATUS,
            f"status {code}: not a health check answer (200, 500 or 503){evidence}",
            status_code=code,
            details=details,
        )
