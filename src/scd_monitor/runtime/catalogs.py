"""The catalog in force: the file's plus what the X-Road directory sources discovered.

:class:`CatalogInForce` rebuilds the effective catalog when the file is reloaded or a
directory changes (expansion runs off the event loop), tells its follower (the daemon
puts it into the tracker, pipeline and scheduler, one change at a time), and records the
checks in the store, one sync at a time with the newest list winning (only with
``records``: of the replicas of a vantage, shard 0 alone records them, so a replica whose
directory reads lag never marks discovered checks retired).

A reload (SIGHUP) reads, parses and validates the file in a thread of its own, within
the loader's bounds (size, nesting, aliases: :mod:`scd_monitor.catalog.loader`), so a
huge or hostile file never blocks the event loop or exhausts memory. The new catalog
replaces the old in one assignment once it is complete; a file that fails to load leaves
the catalog in force untouched, is logged (``catalog.reload_failed``, with the problems)
and counted. Nothing else reads the file after the start: the state tracker and the SLA
worker use the catalog in force, so a file broken on disk stops nothing. Reloads run one
at a time; a SIGHUP during a reload asks for one more after it. :meth:`close` stops a
reload in progress at its next YAML value, so SIGTERM is never held up by one.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import threading
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from pathlib import Path
from typing import TypeVar

import structlog

from scd_monitor.catalog import Catalog, ResolvedCheck, load_catalog
from scd_monitor.catalog.discovered import expand
from scd_monitor.catalog.loader import LoadCancelled
from scd_monitor.clock import Clock
from scd_monitor.errors import ConfigError, StoreError
from scd_monitor.runtime.discovery import DirectoryWatcher
from scd_monitor.runtime.jobs import describe
from scd_monitor.store import CheckRepository, Store
from scd_monitor.xroad.directory import Directory

log = structlog.get_logger("scd_monitor.runtime.catalogs")

_SYNC_RETRY_SECONDS = 5.0

T = TypeVar("T")


def in_thread(work: Callable[[], T], *, name: str) -> asyncio.Future[T]:
    """Run ``work`` in a daemon thread of its own; its result as a future of this loop.

    Unlike ``asyncio.to_thread`` the thread is not the loop's default executor, which
    ``asyncio.run`` waits for at exit: a daemon stopping never waits on it.
    """
    loop = asyncio.get_running_loop()
    future: asyncio.Future[T] = loop.create_future()

    def succeeded(result: T) -> None:
        if not future.done():  # not cancelled meanwhile
            future.set_result(result)

    def failed(error: BaseException) -> None:
        if not future.done():
            future.set_exception(error)

    def target() -> None:
        # No local of this frame may keep the exception: its traceback holds the frame,
        # and the cycle would keep everything the work allocated until a full collection.
        try:
            result = work()
        except BaseException as exc:  # handed to the awaiting coroutine, whatever it is
            with contextlib.suppress(RuntimeError):  # the loop is closed: nobody waits
                loop.call_soon_threadsafe(failed, exc)
            return
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(succeeded, result)

    threading.Thread(target=target, name=name, daemon=True).start()
    return future


class CatalogInForce:
    """Owns the file catalog and the effective one; ``follow`` is told of every change."""

    def __init__(
        self,
        path: Path,
        catalog: Catalog,
        *,
        watcher: DirectoryWatcher,
        store: Store,
        clock: Clock,
        follow: Callable[[Catalog, Sequence[ResolvedCheck]], Awaitable[None]],
        records: bool = True,
    ) -> None:
        self.path = path
        self.file = catalog
        self.effective = expand(catalog, {}).catalog  # platform checks; directories later
        self.loaded_at = time.time()
        self.reload_failures_total = 0
        self.last_reload_ok = True
        self.rebuild_error: str | None = None
        """Why the discovered checks could not come into force (None: they did)."""
        self._watcher = watcher
        self._checks = CheckRepository(store)
        self._clock = clock
        self._follow = follow
        self._records = records
        self._store_ready = False
        self._sync_wanted: Sequence[ResolvedCheck] | None = None
        self._sync_task: asyncio.Task[None] | None = None
        self._rebuild_wanted = False
        self._rebuild_task: asyncio.Task[None] | None = None
        self._reload_lock = asyncio.Lock()
        self._use_lock = asyncio.Lock()
        self._closing = threading.Event()

    def checks(self) -> list[ResolvedCheck]:
        """The checks in force: the catalog file's and the discovered ones."""
        return self.effective.resolved_checks()

    def store_ready(self) -> None:
        """The schema exists: syncs may start (the caller recorded the current checks)."""
        self._store_ready = self._records
        if self._store_ready and self._sync_wanted is not None:
            self._start_sync()

    async def reload(self) -> Catalog | None:
        """Load the file again off the event loop; on any error keep the catalog in force,
        say why, count it and return None."""
        async with self._reload_lock:
            if self._closing.is_set():
                return None
            started = time.monotonic()
            try:
                catalog = await in_thread(self._load, name="catalog-reload")
            except LoadCancelled:
                return None
            except ConfigError as exc:
                self._refused(exc.problems, started)
                return None
            except Exception as exc:  # a bug met by this file: refused like a bad file
                log.exception("catalog.reload_crashed", path=str(self.path))
                problem = f"{self.path}:1: the catalog cannot be loaded: {describe(exc)}"
                self._refused([problem], started)
                return None
            self._watcher.set_sources(catalog.xroad)
            expanded = await self._expand(catalog)
            why = "catalog reloaded"
            if expanded is None:  # the file's own checks at least, with no discovered ones
                expanded = await asyncio.to_thread(_expanded, catalog, {})
                why = "catalog reloaded (without discovery)"
            async with self._use_lock:
                self.file = catalog
                self.loaded_at = time.time()
                self.last_reload_ok = True
                await self._use(*expanded, why)
            log.info(
                "catalog.reloaded",
                path=str(self.path),
                checks=len(self.checks()),
                seconds=round(time.monotonic() - started, 3),
            )
            return catalog

    def _refused(self, problems: Sequence[str], started: float) -> None:
        self.reload_failures_total += 1
        self.last_reload_ok = False
        log.error(
            "catalog.reload_failed",
            path=str(self.path),
            problems=list(problems),
            kept="the catalog in force",
            seconds=round(time.monotonic() - started, 3),
        )

    def _load(self) -> Catalog:
        """The file's catalog (in the reload thread), the cyclic garbage collector paused
        meanwhile: its full passes over a large half-built node tree hold the interpreter
        lock for up to two seconds each (measured on 50,000 checks), which would starve
        the event loop. What the load allocates is freed by reference counting, and the
        loader's bounds cap it."""
        was_enabled = gc.isenabled()
        gc.disable()
        try:
            return load_catalog(self.path, cancelled=self._closing.is_set)
        except ConfigError as exc:
            # Raised afresh below, so the half-built tree its traceback holds is freed here,
            # in this thread, not on the event loop.
            error = type(exc)(exc.problems)
        finally:
            if was_enabled:
                gc.enable()
        raise error

    def discovery_changed(self) -> None:
        """A directory changed: rebuild the effective catalog (off the event loop)."""
        self._rebuild_wanted = True
        if self._rebuild_task is None or self._rebuild_task.done():
            self._rebuild_task = asyncio.get_running_loop().create_task(self._rebuild())

    async def close(self) -> None:
        """Stop a reload in progress (at its next YAML value), rebuilds and syncs."""
        self._closing.set()
        tasks = [t for t in (self._rebuild_task, self._sync_task) if t is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _rebuild(self) -> None:
        while self._rebuild_wanted:
            self._rebuild_wanted = False
            catalog = self.file
            expanded = await self._expand(catalog)
            if expanded is None:
                continue
            async with self._use_lock:
                if catalog is not self.file:
                    continue  # reloaded meanwhile: reload() expanded the new one
                await self._use(*expanded, "directory changed")

    async def _expand(
        self, catalog: Catalog
    ) -> tuple[Catalog, Sequence[ResolvedCheck], Sequence[str]] | None:
        """The catalog with what the directories hold and its checks (worked out off the
        event loop); None (and :attr:`rebuild_error` set) when expansion itself failed."""
        try:
            expanded = await asyncio.to_thread(_expanded, catalog, self._watcher.directories())
        except Exception as exc:  # the catalog in force stays; the supervisor shows it
            self.rebuild_error = describe(exc)
            log.exception("catalog.expand_failed", error=self.rebuild_error)
            return None
        self.rebuild_error = None
        return expanded

    async def _use(
        self,
        effective: Catalog,
        checks: Sequence[ResolvedCheck],
        problems: Sequence[str],
        why: str,
    ) -> None:
        """Put ``effective`` in force (the caller holds ``_use_lock``)."""
        for problem in problems:
            log.warning("catalog.discovery_problem", problem=problem)
        self.effective = effective
        await self._follow(effective, checks)
        self._sync_wanted = checks
        if self._store_ready:
            self._start_sync()
        log.info(
            "catalog.in_force",
            why=why,
            checks=len(checks),
            discovered_providers=len(effective.providers) - len(self.file.providers),
        )

    def _start_sync(self) -> None:
        if self._sync_task is None or self._sync_task.done():
            self._sync_task = asyncio.get_running_loop().create_task(self._sync_loop())

    async def _sync_loop(self) -> None:
        while self._sync_wanted is not None:
            checks, self._sync_wanted = self._sync_wanted, None
            try:
                await asyncio.to_thread(self._checks.sync, checks, self._clock.now())
            except StoreError as exc:
                log.error("store.sync_failed", error=str(exc), retry_in_s=_SYNC_RETRY_SECONDS)
                if self._sync_wanted is None:
                    self._sync_wanted = checks
                await asyncio.sleep(_SYNC_RETRY_SECONDS)


def _expanded(
    catalog: Catalog, directories: Mapping[str, Directory]
) -> tuple[Catalog, Sequence[ResolvedCheck], Sequence[str]]:
    """The effective catalog, its checks and the expansion's problems (in a thread: for
    tens of thousands of checks this takes a good part of a second)."""
    expansion = expand(catalog, directories)
    return expansion.catalog, expansion.catalog.resolved_checks(), expansion.problems
