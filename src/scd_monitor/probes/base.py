"""What every probe returns, and the one protocol every probe kind implements.

A probe makes **one** attempt against its target and never retries: debouncing is the
state tracker's job. Everything a target can do wrong (refuse, hang, lie, send garbage)
comes back as an :class:`Outcome` with an :class:`ErrorKind`; a probe raises only on
its own bugs, and the runner turns those into ``ErrorKind.INTERNAL``.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from scd_monitor.catalog.models import ResolvedCheck
from scd_monitor.sanitize import clean_text, clean_value


class ErrorKind(enum.StrEnum):
    """Why a probe failed. A closed set: dashboards and rules may rely on it."""

    DNS = "dns"
    """The target's name did not resolve."""
    CONNECT = "connect"
    """The TCP connection was refused, reset or unreachable."""
    TIMEOUT = "timeout"
    """The probe's timeout passed before the answer was complete."""
    TLS = "tls"
    """The TLS handshake failed or the certificate was not trusted or is expired."""
    STATUS = "status"
    """The HTTP status is not one of the expected ones."""
    ASSERTION = "assertion"
    """The body or a JSON field did not match what the catalog expects."""
    TOO_LARGE = "too_large"
    """The body is larger than ``max_body_bytes``."""
    PROTOCOL = "protocol"
    """The target broke the protocol (malformed HTTP, invalid JSON, bad redirect)."""
    INTERNAL = "internal"
    """The probe itself failed: a bug or a resource problem of the monitor, not the target."""


PHASES: tuple[str, ...] = ("dns", "connect", "tls", "first_byte", "transfer")
"""Names of the timing phases a probe may report, in order."""

MESSAGE_LIMIT = 1000
"""Characters an outcome's message keeps (what the store keeps of it)."""
DETAIL_LIMIT = 500
"""Characters a text value of an outcome's details keeps."""
MAX_DETAILS = 64
"""Values an outcome's details keep."""


@dataclass(frozen=True, slots=True)
class Outcome:
    """What a probe found, before the runner adds identity and timing."""

    ok: bool
    error_kind: ErrorKind | None = None
    message: str | None = None
    status_code: int | None = None
    phases: Mapping[str, float] = field(default_factory=dict)
    """Seconds spent in each phase of :data:`PHASES` that the probe measured."""
    cert_not_after: datetime | None = None
    """Expiry (UTC) of the peer's leaf certificate, when a TLS handshake got that far."""
    chain_not_after: datetime | None = None
    """Earliest expiry (UTC) in the certificate chain the peer sent."""
    details: Mapping[str, str | int | float | bool] = field(default_factory=dict)
    """Small, secret-free evidence (e.g. bytes read, TLS version, redirect target)."""

    def __post_init__(self) -> None:
        # The one place every probe's message and details pass: text from the target
        # (a body, a JSON value, a fault string) is made valid, NUL-free and bounded
        # here, so no probe kind can forget it and no store, log or metric meets poison.
        if self.message is not None:
            object.__setattr__(self, "message", clean_text(self.message, limit=MESSAGE_LIMIT))
        if self.details:
            details = clean_value(self.details, limit=DETAIL_LIMIT, max_items=MAX_DETAILS)
            object.__setattr__(self, "details", details)

    @classmethod
    def failure(cls, kind: ErrorKind, message: str, **extra: object) -> Outcome:
        return cls(ok=False, error_kind=kind, message=message, **extra)  # type: ignore[arg-type]


@dataclass(frozen=True, slots=True)
class ProbeResult:
    """One run of one check from one vantage: the fact the store keeps."""

    check_id: str
    kind: str
    vantage: str
    started_at: datetime
    duration: float
    """Wall-clock seconds from the start of the attempt to its end."""
    outcome: Outcome
    scheduled_at: datetime | None = None
    """When the scheduler meant this run to start (``None`` for one-off runs)."""

    @property
    def lag(self) -> float | None:
        """Seconds between the scheduled and the actual start."""
        if self.scheduled_at is None:
            return None
        return max(0.0, (self.started_at - self.scheduled_at).total_seconds())

    @property
    def ok(self) -> bool:
        return self.outcome.ok

    @property
    def error_kind(self) -> ErrorKind | None:
        return self.outcome.error_kind


class Probe(Protocol):
    """One probe kind (``http``, ``tls`` …). Implementations live in ``probes/<kind>.py``."""

    async def __call__(self, check: ResolvedCheck) -> Outcome:
        """Make one attempt against ``check``'s target within ``check.timeout``.

        Must not raise for anything the target does; must return within the timeout
        (the runner enforces it as well, as a safety net).
        """
        ...
