"""The outbox dispatcher: stored deliveries → sinks, at least once, never lost.

:meth:`OutboxDispatcher.run_once` claims due deliveries (a conditional ``UPDATE`` per
row sets a lease, see :class:`~scd_monitor.store.outbox.OutboxRepository`), delivers
them concurrently (at most ``concurrency``), and settles each one as soon as its sink
answers: ``delivered``; back to ``pending`` after a capped exponential backoff with
jitter (transient failure); ``failed`` for a permanent failure or after
``max_attempts`` (kept and shown, re-queued by :meth:`retry`). A dispatcher killed
mid-delivery leaves its claims ``in_flight`` until their lease ends; then any
dispatcher claims them again and delivers again (the same bytes, the same idempotency
key, for the receiver to drop the copy). Deliveries to sinks this dispatcher does not
have (removed from the catalog) stay pending, counted in the backlog.

Transient or permanent is the sink's call (:class:`~scd_monitor.errors.SinkError`'s
``permanent``: a refusal that will be the same on every attempt, e.g. a webhook's 400 or an
SMTP 550, is permanent). An exception a sink lets escape is a bug in it: a data error
(``ValueError``, ``TypeError``, ``LookupError``, ``ArithmeticError``; the payload is the
same bytes on every attempt, so it would fail again) is permanent, anything else
transient; either way it is logged with its traceback. Error texts are stored and logged
cleaned (:func:`~scd_monitor.sinks.text.clean_text`, the monitor's sanitiser: no NUL or
control character, no lone surrogate; a receiver's answer is outside text) and bounded.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

import structlog

from scd_monitor.catalog.incidents import BackoffConfig, OutboxConfig
from scd_monitor.clock import Clock
from scd_monitor.errors import SinkError, StoreError
from scd_monitor.incidents.report import subject_of
from scd_monitor.sinks.base import RetryLater, Sink
from scd_monitor.sinks.text import clean_text
from scd_monitor.store import Store
from scd_monitor.store.outbox import ClaimedDelivery, OutboxRepository

__all__ = ["DispatchStats", "OutboxDispatcher", "backoff_delay"]

log = structlog.get_logger("scd_monitor.outbox")

_MESSAGE_MAX = 2000
"""The longest error text logged (the store keeps as much)."""
_DATA_ERRORS = (ValueError, TypeError, LookupError, ArithmeticError)
"""What a sink's bug raises when the payload itself trips it: the same on every attempt."""


def backoff_delay(attempt: int, config: BackoffConfig, rng: random.Random) -> timedelta:
    """Delay after failed attempt ``attempt`` (1-based): ``min(max, initial ×
    multiplier^(attempt-1))`` less a random share of up to ``jitter`` of it."""
    base = config.initial.total_seconds() * config.multiplier ** max(0, attempt - 1)
    capped = min(config.max.total_seconds(), base)
    return timedelta(seconds=capped * (1.0 - config.jitter * rng.random()))


@dataclass(frozen=True, slots=True)
class DispatchStats:
    claimed: int = 0
    delivered: int = 0
    retried: int = 0
    failed: int = 0
    lost: int = 0
    """Settlements refused because the claim had expired and been taken over."""


class OutboxDispatcher:
    """Delivers the outbox through the configured sinks."""

    def __init__(
        self,
        store: Store | OutboxRepository,
        sinks: Mapping[str, Sink],
        clock: Clock,
        *,
        config: OutboxConfig | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self._repo = store if isinstance(store, OutboxRepository) else OutboxRepository(store)
        self._sinks = dict(sinks)
        self._clock = clock
        self._config = config or OutboxConfig()
        self._rng = rng or random.Random()
        self.outcomes: Counter[tuple[str, str]] = Counter()
        """(sink, ``delivered`` | ``transient_error`` | ``permanent_error``) → count since start."""

    def configure(self, sinks: Mapping[str, Sink], config: OutboxConfig) -> None:
        """New sinks and settings (a catalog reload); takes effect at the next round."""
        self._sinks = dict(sinks)
        self._config = config

    async def run_once(self) -> DispatchStats:
        """One round: claim what is due, deliver it, settle it."""
        config = self._config
        sinks = self._sinks
        claimed = await asyncio.to_thread(
            self._repo.claim,
            self._clock.now(),
            sinks=sinks.keys(),
            lease=config.lease,
            limit=config.batch,
            subject=subject_of,
        )
        if not claimed:
            return DispatchStats()
        semaphore = asyncio.Semaphore(config.concurrency)

        async def one(item: ClaimedDelivery) -> str:
            async with semaphore:
                return await self._deliver(item, sinks[item.sink], config)

        results = Counter(await asyncio.gather(*(one(c) for c in claimed)))
        return DispatchStats(
            claimed=len(claimed),
            delivered=results["delivered"],
            retried=results["retried"],
            failed=results["failed"],
            lost=results["lost"],
        )

    async def run(self, stop: asyncio.Event) -> None:
        """Rounds until ``stop`` is set: at once again after a full batch, otherwise
        after ``interval``. Store errors are logged and retried next round."""
        failing = False
        while not stop.is_set():
            try:
                stats = await self.run_once()
                if failing:
                    log.info("outbox.recovered")
                failing = False
            except StoreError as exc:
                if not failing:
                    log.error("outbox.store_failed", error=str(exc))
                failing = True
                stats = DispatchStats()
            if stats.claimed >= self._config.batch:
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self._config.interval.total_seconds())

    async def retry(self, delivery_id: int) -> bool:
        """Re-queue a failed (or waiting) delivery to go at the next round."""
        return await asyncio.to_thread(self._repo.retry, delivery_id, self._clock.now())

    async def _deliver(self, item: ClaimedDelivery, sink: Sink, config: OutboxConfig) -> str:
        payload = item.payload
        budget = config.lease.total_seconds() * 0.9
        error: SinkError | None = None
        try:
            await asyncio.wait_for(sink.deliver(payload), budget)
        except SinkError as exc:
            error = exc
        except TimeoutError:
            error = SinkError(f"no answer within the claim's lease ({budget:g}s)", permanent=False)
        except Exception as exc:  # a sink's own bug: logged, and kept as a visible failure
            log.exception("outbox.sink_crashed", sink=item.sink, key=payload.idempotency_key)
            error = SinkError(
                f"sink error: {type(exc).__name__}: {exc}",
                permanent=isinstance(exc, _DATA_ERRORS),
            )
        now = self._clock.now()
        if error is None:
            ok = await asyncio.to_thread(self._repo.settle_delivered, item.id, item.token, now)
            self.outcomes[(item.sink, "delivered")] += 1
            log.info(
                "outbox.delivered",
                sink=item.sink,
                key=payload.idempotency_key,
                attempt=payload.attempt,
                settled=ok,
            )
            return "delivered" if ok else "lost"
        permanent = error.permanent
        message = clean_text(error, limit=_MESSAGE_MAX)
        if (
            not permanent
            and config.max_attempts is not None
            and payload.attempt >= config.max_attempts
        ):
            permanent = True
            message = f"gave up after {payload.attempt} attempts: {message}"
        delay = backoff_delay(payload.attempt, config.backoff, self._rng)
        if isinstance(error, RetryLater):
            delay = max(delay, min(error.retry_after, config.backoff.max))
        next_at: datetime = now + delay
        ok = await asyncio.to_thread(
            self._repo.settle_failed,
            item.id,
            item.token,
            error=message,
            permanent=permanent,
            next_attempt_at=next_at,
        )
        self.outcomes[(item.sink, "permanent_error" if permanent else "transient_error")] += 1
        (log.error if permanent else log.warning)(
            "outbox.delivery_failed",
            sink=item.sink,
            key=payload.idempotency_key,
            attempt=payload.attempt,
            permanent=permanent,
            error=message,
            next_attempt_at=None if permanent else next_at.isoformat(),
            settled=ok,
        )
        if not ok:
            return "lost"
        return "failed" if permanent else "retried"
