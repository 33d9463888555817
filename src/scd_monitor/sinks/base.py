"""The one protocol every sink implements, and what it is given to deliver.

A sink delivers one report to one receiver, once per call, and says how it went only
by returning (delivered) or raising :class:`~scd_monitor.errors.SinkError` with
``permanent`` set (the receiver refused it for good: 4xx, bad address, bad
credentials) or not (try again later: 5xx, timeouts, connection errors). It never
retries by itself: retries, backoff and the record of attempts are the outbox's
(:mod:`scd_monitor.sinks.outbox`). Every payload carries an idempotency key, the same
on every attempt, so that a receiver can drop a report it already has.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Protocol

from scd_monitor.errors import SinkError

__all__ = ["DeliveryPayload", "RetryLater", "Sink", "SinkError"]


@dataclass(frozen=True, slots=True)
class DeliveryPayload:
    """One report for one sink: the same bytes on every attempt."""

    idempotency_key: str
    """``SCD-YYYY-NNNNNN.<event seq>.<sink id>``: unique per (incident, event, sink)."""
    incident: str
    report_id: str
    event: str
    """``opened``, ``updated`` or ``resolved``."""
    audience: str
    recipient: str | None
    """The provider's contact for the provider audience; otherwise the sink's own."""
    subject: str
    body: bytes
    """The report's JSON document (UTF-8)."""
    text: str
    html: str
    attempt: int
    """1 on the first attempt."""


class RetryLater(SinkError):
    """A transient failure with the receiver's own idea of when to retry
    (``Retry-After``); the outbox waits at least that long."""

    def __init__(self, message: str, *, retry_after: timedelta) -> None:
        super().__init__(message, permanent=False)
        self.retry_after = retry_after


class Sink(Protocol):
    """Where reports go: a webhook, a mailbox, a directory."""

    @property
    def name(self) -> str:
        """The sink's id in the catalog (``incidents.sinks[].id``)."""
        ...

    async def deliver(self, payload: DeliveryPayload) -> None:
        """Deliver ``payload`` once; return when the receiver has it.

        Raises :class:`SinkError` (``permanent=True`` when retrying cannot help). Must
        not hang: every network operation is bounded by the sink's timeout.
        """
        ...
