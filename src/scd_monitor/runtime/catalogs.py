"""The catalog in force: the file's plus what the X-Road directory sources discovered.

:class:`CatalogInForce` rebuilds the effective catalog when the file is reloaded or a
directory changes (expansion runs off the event loop), tells its follower (the daemon
puts it into the tracker, pipeline and scheduler), and records the checks in the store,
one sync at a time with the newest list winning.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import structlog

from scd_monitor.catalog import Catalog, ResolvedCheck, load_catalog
from scd_monitor.catalog.discovered import expand
from scd_monitor.clock import Clock
from scd_monitor.errors import ConfigError, StoreError
from scd_monitor.runtime.discovery import DirectoryWatcher
from scd_monitor.store import CheckRepository, Store

log = structlog.get_logger("scd_monitor.runtime.catalogs")

_SYNC_RETRY_SECONDS = 5.0


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
        follow: Callable[[Catalog], None],
    ) -> None:
        self.path = path
        self.file = catalog
        self.effective = expand(catalog, {}).catalog  # platform checks; directories later
        self.loaded_at = time.time()
        self._watcher = watcher
        self._checks = CheckRepository(store)
        self._clock = clock
        self._follow = follow
        self._store_ready = False
        self._sync_wanted: Sequence[ResolvedCheck] | None = None
        self._sync_task: asyncio.Task[None] | None = None
        self._rebuild_wanted = False
        self._rebuild_task: asyncio.Task[None] | None = None

    def checks(self) -> list[ResolvedCheck]:
        """The checks in force: the catalog file's and the discovered ones."""
        return self.effective.resolved_checks()

    def store_ready(self) -> None:
        """The schema exists: syncs may start (the caller recorded the current checks)."""
        self._store_ready = True
        if self._sync_wanted is not None:
            self._start_sync()

    def reload(self) -> Catalog | None:
        """Load the file again; on any error keep the old catalog, say why, return None."""
        try:
            catalog = load_catalog(self.path)
        except ConfigError as exc:
            log.error("catalog.reload_failed", path=str(self.path), problems=exc.problems)
            return None
        self.file = catalog
        self.loaded_at = time.time()
        self._watcher.set_sources(catalog.xroad)
        expansion = expand(catalog, self._watcher.directories())
        for problem in expansion.problems:
            log.warning("catalog.discovery_problem", problem=problem)
        self._use(expansion.catalog, "catalog reloaded")
        log.info("catalog.reloaded", path=str(self.path), checks=len(self.checks()))
        return catalog

    def discovery_changed(self) -> None:
        """A directory changed: rebuild the effective catalog (off the event loop)."""
        self._rebuild_wanted = True
        if self._rebuild_task is None or self._rebuild_task.done():
            self._rebuild_task = asyncio.get_running_loop().create_task(self._rebuild())

    async def close(self) -> None:
        tasks = [t for t in (self._rebuild_task, self._sync_task) if t is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _rebuild(self) -> None:
        while self._rebuild_wanted:
            self._rebuild_wanted = False
            catalog = self.file
            expansion = await asyncio.to_thread(expand, catalog, self._watcher.directories())
            if catalog is not self.file:
                continue  # reloaded meanwhile: reload() expanded the new one
            for problem in expansion.problems:
                log.warning("catalog.discovery_problem", problem=problem)
            self._use(expansion.catalog, "directory changed")

    def _use(self, effective: Catalog, why: str) -> None:
        self.effective = effective
        self._follow(effective)
        self._sync_wanted = effective.resolved_checks()
        if self._store_ready:
            self._start_sync()
        log.info(
            "catalog.in_force",
            why=why,
            checks=len(self._sync_wanted),
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
