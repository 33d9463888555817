"""What the three X-Road probes share: turning the X-Road client's errors into outcomes.

The client (:mod:`scd_monitor.xroad.client`) raises one tree of errors; each becomes a
failed :class:`~scd_monitor.probes.base.Outcome`:

* :class:`~scd_monitor.xroad.errors.XRoadError` (an X-Road fault) → ``status``, with
  ``details["xroad_error_code"]`` (``Server.ServerProxy.ServiceFailed`` …),
  ``details["xroad_fault_side"]`` (``consumer`` for ``Server.ClientProxy.*``, i.e. the
  monitor's own security server; ``provider``; ``client``; ``unknown``) and the fault's
  detail (an error id) when it has one. A consumer-side fault is the monitor's side of
  the exchange: later rules can tell it from a provider's by the side.
* :class:`~scd_monitor.xroad.errors.XRoadStatusError` → ``status`` with the HTTP status;
* :class:`~scd_monitor.xroad.errors.XRoadTransportError` and
  :class:`~scd_monitor.xroad.errors.XRoadProtocolError` → the kind the error carries
  (``dns``, ``connect``, ``tls``, ``timeout``, ``protocol``, ``too_large``, ``internal``).
"""

from __future__ import annotations

from scd_monitor.probes.base import ErrorKind, Outcome
from scd_monitor.xroad.errors import XRoadError, XRoadFailure, XRoadStatusError

__all__ = ["failure_outcome"]

_MAX_DETAIL = 200


def failure_outcome(exc: XRoadFailure, **details: str | int | float | bool) -> Outcome:
    """The failed outcome for an error the X-Road client raised."""
    if isinstance(exc, XRoadError):
        details["xroad_error_code"] = exc.code
        details["xroad_fault_side"] = exc.side
        if exc.detail:
            details["xroad_fault_detail"] = exc.detail[:_MAX_DETAIL]
        return Outcome.failure(
            ErrorKind.STATUS, str(exc), status_code=exc.http_status, details=details
        )
    if isinstance(exc, XRoadStatusError):
        return Outcome.failure(
            ErrorKind.STATUS, exc.message, status_code=exc.status_code, details=details
        )
    kind = getattr(exc, "kind", "protocol")
    message = getattr(exc, "message", str(exc))
    return Outcome.failure(ErrorKind(kind), message, details=details)
