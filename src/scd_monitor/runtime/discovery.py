"""X-Road directory discovery at run time: one loop per source, the last good directory kept.

For every enabled ``xroad`` source of the catalog, :class:`DirectoryWatcher` reads the
directory (:class:`~scd_monitor.xroad.directory.DirectoryReader`) right away and then
every ``interval``, and keeps the **last good** one:

* A read that fails (the configuration source answers 500, our security server is down,
  the directory comes back empty…) changes nothing: the last good directory, and so the
  discovered checks, stay. The failure is logged (``directory.fetch_failed``), counted
  (``scd_xroad_directory_fetch_failures_total``) and, when a source starts failing,
  stored as an event (``directory`` / ``fetch_failed``; ``fetch_recovered`` when it reads
  again).
* A read that succeeds is compared with the last good directory; what appeared,
  disappeared or changed is stored as events, and the new directory as the source's
  snapshot, in one transaction (``scd_directory_events``, ``scd_directory_snapshots``).
  The very first directory of a source is one ``baseline`` event with the counts, not
  thousands of ``appeared``.
* On start the watcher loads the stored snapshots first, so the discovered checks run at
  once even if the first read fails, and a restart diffs against what was stored: nothing
  is announced twice.
* The global configuration's expiry is watched: ``globalconf`` events ``expiring``
  (less than the source's ``min_validity`` left), ``expired`` and ``renewed``, on change.
* One bad entry never stops the others: an entry the reader refused (an identifier X-Road
  does not allow, a malformed entry) is left out, the rest of the directory applies, and
  the refusal is logged (``directory.entry_refused``) and stored as an event
  (``directory`` / ``entry_refused``, subject the entry as sent) when it is new. A read
  that fails in an unforeseen way (a bug) is a failed read like any other: logged with
  its traceback, counted, the last good directory kept; the other sources go on.

When the discovered entities change, ``on_change`` is called: the daemon then rebuilds
its catalog (:func:`~scd_monitor.catalog.discovered.expand`). :meth:`statuses` is an
immutable view for the metrics collector, safe to read from another thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType

import structlog

from scd_monitor.analysis.views import SourceStatus
from scd_monitor.catalog.models import XRoadSource
from scd_monitor.clock import Clock
from scd_monitor.errors import StoreError
from scd_monitor.net.tls import ContextCache
from scd_monitor.probes.xroad_globalconf import verification_material
from scd_monitor.store import DirectoryRepository, Store
from scd_monitor.xroad.client import SecurityServerClient
from scd_monitor.xroad.directory import (
    Directory,
    DirectoryEvent,
    DirectoryReader,
    DirectoryReadError,
    diff,
)
from scd_monitor.xroad.errors import XRoadFailure
from scd_monitor.xroad.identifiers import ClientId

__all__ = ["DirectoryWatcher", "SourceStatus", "reader_for"]

log = structlog.get_logger("scd_monitor.runtime.discovery")

_STORE_RETRY_SECONDS = 5.0


@dataclass
class _State:
    source: XRoadSource
    directory: Directory | None = None
    last_success: datetime | None = None
    last_error: str | None = None
    last_duration: float | None = None
    failing: bool = False
    failures_total: int = 0
    changes_total: Counter[tuple[str, str]] = field(default_factory=Counter)
    globalconf_state: str | None = None
    unsaved: Directory | None = None
    pending: list[DirectoryEvent] = field(default_factory=list)
    task: asyncio.Task[None] | None = None


def reader_for(
    source: XRoadSource,
    *,
    contexts: ContextCache | None = None,
    clock: Clock | None = None,
) -> DirectoryReader:
    """The reader of one catalog source. Raises ``OSError`` or an ``XRoadFailure`` when
    the verification certificate or anchor cannot be read."""
    timeout = source.timeout.total_seconds()
    ss = source.security_server
    client = (
        SecurityServerClient(
            ss.url,
            client_id=ClientId.parse(ss.client),
            tls=ss.tls,
            contexts=contexts,
            timeout=timeout,
        )
        if ss is not None
        else None
    )
    conf = source.globalconf
    certs = None
    if conf is not None:
        certs, _instance = verification_material(conf.verification_cert, conf.anchor)
    return DirectoryReader(
        source=source.id,
        instance=source.instance,
        security_server=client,
        globalconf_url=conf.url if conf is not None else None,
        globalconf_tls=conf.tls if conf is not None else None,
        verification_certs=certs,
        contexts=contexts,
        timeout=timeout,
        concurrency=source.concurrency,
        clock=clock,
    )


class DirectoryWatcher:
    """Reads every source's directory on its schedule and keeps the last good ones."""

    def __init__(
        self,
        *,
        store: Store | None,
        clock: Clock,
        on_change: Callable[[], None] = lambda: None,
        contexts: ContextCache | None = None,
    ) -> None:
        self._repo = DirectoryRepository(store) if store is not None else None
        self._clock = clock
        self.on_change = on_change
        """Called (on the event loop) when a source's discovered entities change."""
        self._contexts = contexts if contexts is not None else ContextCache()
        self._states: dict[str, _State] = {}
        self._stored: dict[str, tuple[Directory, datetime]] = {}
        self._running = False
        self._statuses: Mapping[str, SourceStatus] = MappingProxyType({})

    # -- views ----------------------------------------------------------------------------

    def directories(self) -> dict[str, Directory]:
        """The last good directory of every watched source that has one."""
        return {
            ident: state.directory
            for ident, state in self._states.items()
            if state.directory is not None
        }

    def statuses(self) -> Mapping[str, SourceStatus]:
        """An immutable view per source (safe to read from any thread)."""
        return self._statuses

    def _publish(self) -> None:
        self._statuses = MappingProxyType(
            {
                ident: SourceStatus(
                    source=ident,
                    instance=state.source.instance,
                    directory=state.directory,
                    last_success=state.last_success,
                    failures_total=state.failures_total,
                    changes_total=MappingProxyType(dict(state.changes_total)),
                    last_error=state.last_error,
                    last_duration_seconds=state.last_duration,
                )
                for ident, state in self._states.items()
            }
        )

    # -- life cycle -----------------------------------------------------------------------

    def set_sources(self, sources: Sequence[XRoadSource]) -> bool:
        """Watch these sources (the enabled ones): new ones added, changed ones restarted
        with their last good directory kept, removed ones dropped. Returns whether the
        set of directories changed (the caller rebuilds its catalog then)."""
        wanted = {s.id: s for s in sources if s.enabled}
        changed = False
        for ident in list(self._states):
            state = self._states[ident]
            if ident not in wanted or wanted[ident].instance != state.source.instance:
                self._cancel(state)
                del self._states[ident]
                changed = changed or state.directory is not None
        for ident, source in wanted.items():
            current = self._states.get(ident)
            if current is None:
                fresh = _State(source)
                stored = self._stored.get(ident)
                if stored is not None and stored[0].instance == source.instance:
                    fresh.directory, fresh.last_success = stored
                    changed = True
                self._states[ident] = fresh
                self._start(fresh)
            elif current.source != source:
                self._cancel(current)
                current.source = source
                self._start(current)
        self._publish()
        return changed

    async def load(self) -> None:
        """Load the stored last good directories (retried until the store answers)."""
        if self._repo is None:
            return
        delay = _STORE_RETRY_SECONDS
        while True:
            try:
                stored = await asyncio.to_thread(self._repo.latest)
                break
            except StoreError as exc:
                log.error("directory.load_failed", error=str(exc), retry_in_s=delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 60.0)
        self._stored = {k: (v.directory, v.last_success_at) for k, v in stored.items()}
        loaded = 0
        for ident, state in self._states.items():
            found = self._stored.get(ident)
            if (
                found is not None
                and state.directory is None
                and found[0].instance == state.source.instance
            ):
                state.directory, state.last_success = found
                loaded += 1
        if stored:
            log.info("directory.loaded", sources=sorted(stored), watched=loaded)
        self._publish()

    def start(self) -> None:
        """Start the read loops (the event loop must be running)."""
        self._running = True
        for state in self._states.values():
            self._start(state)

    async def stop(self) -> None:
        self._running = False
        tasks = [s.task for s in self._states.values() if s.task is not None]
        for state in self._states.values():
            self._cancel(state)
        await asyncio.gather(*tasks, return_exceptions=True)

    def _start(self, state: _State) -> None:
        if self._running and state.task is None:
            state.task = asyncio.get_running_loop().create_task(
                self._loop(state.source.id), name=f"directory:{state.source.id}"
            )

    @staticmethod
    def _cancel(state: _State) -> None:
        if state.task is not None:
            state.task.cancel()
            state.task = None

    async def _loop(self, ident: str) -> None:
        while True:
            state = self._states.get(ident)
            if state is None:
                return
            try:
                await self.refresh(ident)
            except asyncio.CancelledError:
                raise
            except Exception:  # a bug must not end discovery for good
                log.exception("directory.refresh_crashed", source=ident)
            await asyncio.sleep(state.source.interval.total_seconds())

    # -- one read -------------------------------------------------------------------------

    async def refresh(self, ident: str) -> bool:
        """Read one source's directory now; returns whether the read succeeded."""
        state = self._states[ident]
        source = state.source
        previous = state.directory
        started = time.monotonic()
        try:
            reader = reader_for(source, contexts=self._contexts, clock=self._clock)
            async with asyncio.timeout(source.interval.total_seconds()):
                directory = await reader.read(previous)
        except (DirectoryReadError, XRoadFailure, OSError, TimeoutError) as exc:
            # XRoadFailure, OSError: the verification certificate or anchor is unreadable.
            error = (
                f"read took longer than the interval ({source.interval.total_seconds():g}s)"
                if isinstance(exc, TimeoutError)
                else str(exc)
            )
            state.last_duration = time.monotonic() - started
            await self._failed(state, error)
            return False
        except Exception as exc:  # a bug, or input no check foresaw: this source's read fails
            log.exception("directory.read_crashed", source=source.id)
            state.last_duration = time.monotonic() - started
            await self._failed(state, f"{type(exc).__name__}: {exc}")
            return False
        state.last_duration = time.monotonic() - started
        await self._succeeded(state, previous, directory, requests=reader.requests)
        return True

    async def _failed(self, state: _State, error: str) -> None:
        source = state.source
        now = self._clock.now()
        state.failures_total += 1
        state.last_error = error
        log.error(
            "directory.fetch_failed",
            source=source.id,
            instance=source.instance,
            error=error,
            kept_last_good=state.directory is not None,
            failures=state.failures_total,
        )
        if not state.failing:
            state.failing = True
            self._record(
                state,
                DirectoryEvent(
                    now,
                    source.id,
                    "directory",
                    "fetch_failed",
                    source.instance,
                    {
                        "error": error[:1000],
                        "kept_directory_of": state.last_success.isoformat()
                        if state.last_success
                        else None,
                    },
                ),
            )
        self._publish()
        await self._persist(state, None)

    async def _succeeded(
        self, state: _State, previous: Directory | None, directory: Directory, *, requests: int
    ) -> None:
        source = state.source
        now = self._clock.now()
        events: list[DirectoryEvent] = []
        if previous is None:
            details: dict[str, object] = dict(directory.counts())
            if directory.globalconf_expires_at is not None:
                details["globalconf_expires_at"] = directory.globalconf_expires_at.isoformat()
            events.append(
                DirectoryEvent(now, source.id, "directory", "baseline", source.instance, details)
            )
        else:
            for change in diff(previous, directory):
                change_details: dict[str, object] = {}
                if change.before is not None:
                    change_details["before"] = dict(change.before)
                if change.after is not None:
                    change_details["after"] = dict(change.after)
                events.append(
                    DirectoryEvent(
                        now, source.id, change.kind, change.change, change.subject, change_details
                    )
                )
        if state.failing:
            events.append(
                DirectoryEvent(
                    now,
                    source.id,
                    "directory",
                    "fetch_recovered",
                    source.instance,
                    {"failures": state.failures_total},
                )
            )
        events.extend(self._refused_events(state, previous, directory, now))
        events.extend(self._globalconf_events(state, directory, now))
        changed = previous is None or not previous.same_entities(directory)
        state.directory = directory
        state.last_success = now
        state.failing = False
        state.last_error = None
        for event in events:
            self._record(state, event)
        counts = directory.counts()
        log.info(
            "directory.fetched",
            source=source.id,
            instance=source.instance,
            changes=len(events),
            requests=requests,
            partial=len(directory.partial),
            refused=len(directory.refused),
            duration_s=round(state.last_duration or 0.0, 3),
            **counts,
        )
        if directory.partial:
            log.warning(
                "directory.partial",
                source=source.id,
                subsystems=list(directory.partial[:20]),
                count=len(directory.partial),
                hint="their services could not be listed; the last known ones are kept",
            )
        self._publish()
        if changed:
            self.on_change()
        await self._persist(state, directory)

    def _refused_events(
        self, state: _State, previous: Directory | None, directory: Directory, now: datetime
    ) -> list[DirectoryEvent]:
        """An event and a log line per entry refused now that was not refused before."""
        known = {subject for subject, _ in previous.refused} if previous is not None else set()
        events = []
        for subject, reason in directory.refused:
            if subject in known:
                continue
            log.warning(
                "directory.entry_refused",
                source=state.source.id,
                subject=subject,
                reason=reason,
                hint="left out; the rest of the directory applies",
            )
            events.append(
                DirectoryEvent(
                    now, state.source.id, "directory", "entry_refused", subject, {"reason": reason}
                )
            )
        return events

    def _globalconf_events(
        self, state: _State, directory: Directory, now: datetime
    ) -> list[DirectoryEvent]:
        expires = directory.globalconf_expires_at
        conf = state.source.globalconf
        if expires is None or conf is None:
            return []
        remaining = expires - now
        if remaining.total_seconds() <= 0:
            status = "expired"
        elif remaining < conf.min_validity:
            status = "expiring"
        else:
            status = "ok"
        before, state.globalconf_state = state.globalconf_state, status
        if status == before or (before is None and status == "ok"):
            return []
        change = "renewed" if status == "ok" else status
        details = {
            "expires_at": expires.isoformat(),
            "remaining_seconds": round(remaining.total_seconds(), 3),
        }
        log.warning("directory.globalconf", source=state.source.id, change=change, **details)
        return [
            DirectoryEvent(now, state.source.id, "globalconf", change, directory.instance, details)
        ]

    def _record(self, state: _State, event: DirectoryEvent) -> None:
        state.pending.append(event)
        state.changes_total[(event.kind, event.change)] += 1
        if event.kind not in ("directory", "globalconf"):
            log.info(
                "directory.change",
                source=event.source,
                kind=event.kind,
                change=event.change,
                subject=event.subject,
            )

    async def _persist(self, state: _State, directory: Directory | None) -> None:
        """Store the new last good directory and the pending events, in one transaction;
        on a store error keep both for the next attempt."""
        if directory is not None:
            state.unsaved = directory
        if self._repo is None or (state.unsaved is None and not state.pending):
            state.pending.clear()
            state.unsaved = None
            return
        events = list(state.pending)
        unsaved = state.unsaved
        try:
            await asyncio.to_thread(
                self._repo.save,
                state.source.id,
                directory=unsaved,
                last_success_at=state.last_success if unsaved is not None else None,
                events=events,
            )
        except StoreError as exc:
            log.error(
                "directory.save_failed",
                source=state.source.id,
                error=str(exc),
                pending_events=len(events),
            )
            return
        del state.pending[: len(events)]
        if state.unsaved is unsaved:
            state.unsaved = None

    async def close(self) -> None:
        """Stop, then try once more to store what is pending."""
        await self.stop()
        for state in self._states.values():
            with contextlib.suppress(Exception):
                await self._persist(state, None)
