"""The catalog in force (runtime.catalogs): reloads off the event loop, refused files keep
the catalog in force, a stopping daemon never waits on a reload."""

from __future__ import annotations

import asyncio
import gc
import threading
import time
from collections.abc import Sequence
from pathlib import Path

import pytest
import structlog

from scd_monitor.catalog import Catalog, ResolvedCheck, load_catalog
from scd_monitor.clock import SystemClock
from scd_monitor.runtime import catalogs as catalogs_module
from scd_monitor.runtime.catalogs import CatalogInForce, in_thread
from scd_monitor.runtime.discovery import DirectoryWatcher
from scd_monitor.store import Store
from tests.faults.harness import alias_bomb, huge_catalog

GOOD = """
defaults: {interval: 1m, timeout: 10s}
providers:
  - id: p
    name: P
    services:
      - id: s
        type: otro
        checks:
          - {id: a, kind: tls, host: a.example}
"""


class Followed:
    def __init__(self) -> None:
        self.calls: list[tuple[Catalog, int]] = []

    async def __call__(self, effective: Catalog, checks: Sequence[ResolvedCheck]) -> None:
        self.calls.append((effective, len(checks)))


def in_force(tmp_path: Path, text: str = GOOD) -> tuple[CatalogInForce, Path, Followed]:
    path = tmp_path / "catalog.yaml"
    path.write_text(text, encoding="utf-8")
    follow = Followed()
    catalogs = CatalogInForce(
        path,
        load_catalog(path),
        watcher=DirectoryWatcher(store=None, clock=SystemClock()),
        store=Store(f"sqlite:///{tmp_path}/unused.db"),
        clock=SystemClock(),
        follow=follow,
    )
    return catalogs, path, follow


async def test_a_bad_file_keeps_the_catalog_in_force_says_why_and_is_counted(
    tmp_path: Path,
) -> None:
    catalogs, path, follow = in_force(tmp_path)
    before = catalogs.file
    path.write_text(GOOD + "bogus: 1\n", encoding="utf-8")
    with structlog.testing.capture_logs() as logs:
        assert await catalogs.reload() is None
    assert catalogs.file is before and not follow.calls
    assert (catalogs.reload_failures_total, catalogs.last_reload_ok) == (1, False)
    (failed,) = [e for e in logs if e["event"] == "catalog.reload_failed"]
    assert failed["problems"] == [f"{path}:11: bogus: unknown key 'bogus'"]

    path.write_text(GOOD.replace("a.example", "b.example"), encoding="utf-8")
    reloaded = await catalogs.reload()
    assert reloaded is not None and catalogs.file is reloaded
    assert catalogs.last_reload_ok and catalogs.reload_failures_total == 1
    (effective, n), = follow.calls  # fmt: skip
    assert n == 1 and effective is catalogs.effective
    assert catalogs.checks()[0].target == "b.example:443"


async def test_a_bug_met_while_loading_is_a_refused_reload(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    catalogs, _path, _follow = in_force(tmp_path)

    def crash(*_args: object, **_kwargs: object) -> Catalog:
        raise KeyError("a path nothing foresaw")

    monkeypatch.setattr(catalogs_module, "load_catalog", crash)
    with structlog.testing.capture_logs() as logs:
        assert await catalogs.reload() is None
    assert catalogs.reload_failures_total == 1
    assert [e["event"] for e in logs] == ["catalog.reload_crashed", "catalog.reload_failed"]
    assert "KeyError" in logs[1]["problems"][0]


async def test_the_event_loop_keeps_running_while_a_large_file_is_parsed(
    tmp_path: Path,
) -> None:
    catalogs, path, _follow = in_force(tmp_path)
    path.write_text(huge_catalog(20_000, error=True)[0], encoding="utf-8")
    loop = asyncio.get_running_loop()
    reload = asyncio.create_task(catalogs.reload())
    gaps, last = [], loop.time()
    while not reload.done():
        await asyncio.sleep(0.005)
        gaps.append(loop.time() - last)
        last = loop.time()
    assert await reload is None
    assert len(gaps) > 10, "the reload took a while, and the loop ran meanwhile"
    assert max(gaps) < 0.5, f"the event loop stalled {max(gaps):.2f} s"
    assert gc.isenabled(), "the collector paused for the load runs again"


async def test_an_alias_bomb_is_refused_at_once(tmp_path: Path) -> None:
    catalogs, path, _follow = in_force(tmp_path)
    path.write_text(alias_bomb(), encoding="utf-8")
    started = time.perf_counter()
    assert await catalogs.reload() is None
    assert time.perf_counter() - started < 1.0


async def test_closing_stops_a_reload_in_progress(tmp_path: Path) -> None:
    catalogs, path, _follow = in_force(tmp_path)
    path.write_text(huge_catalog(50_000, error=False)[0], encoding="utf-8")
    reload = asyncio.create_task(catalogs.reload())
    await asyncio.sleep(0.3)
    assert _reload_threads() == 1
    started = time.perf_counter()
    await catalogs.close()
    assert await asyncio.wait_for(reload, 10) is None
    assert catalogs.reload_failures_total == 0, "a cancelled reload is not a refused file"
    async with asyncio.timeout(10):
        while _reload_threads():
            await asyncio.sleep(0.05)
    assert time.perf_counter() - started < 5


def _reload_threads() -> int:
    return sum(1 for t in threading.enumerate() if t.name == "catalog-reload")


async def test_in_thread_hands_back_results_and_errors() -> None:
    assert await in_thread(lambda: 42, name="t") == 42
    with pytest.raises(ZeroDivisionError):
        await in_thread(lambda: 1 / 0, name="t")


async def test_an_expansion_that_fails_keeps_the_effective_catalog_and_says_why(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    catalogs, _path, follow = in_force(tmp_path)
    effective = catalogs.effective

    def crash(*_args: object) -> object:
        raise UnicodeEncodeError("utf-8", "\ud800", 0, 1, "surrogates not allowed")

    monkeypatch.setattr(catalogs_module, "_expanded", crash)
    with structlog.testing.capture_logs() as logs:
        catalogs.discovery_changed()
        async with asyncio.timeout(5):
            while catalogs.rebuild_error is None:
                await asyncio.sleep(0.01)
    assert catalogs.effective is effective and not follow.calls
    assert "UnicodeEncodeError" in catalogs.rebuild_error
    assert any(e["event"] == "catalog.expand_failed" for e in logs)
    monkeypatch.undo()
    catalogs.discovery_changed()
    async with asyncio.timeout(5):
        while catalogs.rebuild_error is not None or not follow.calls:
            await asyncio.sleep(0.01)
