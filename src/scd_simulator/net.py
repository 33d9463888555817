"""What every simulated server shares: loopback-only binding, URLs, start and stop.

Nothing here imports the rest of the package, so every module may import it.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from typing import Self

from scd_monitor.errors import ConfigError

__all__ = [
    "CERT_HOSTS",
    "LOOPBACK_HOSTS",
    "Lifecycle",
    "base_url",
    "check_loopback",
    "start_all",
    "stop_on",
]

LOOPBACK_HOSTS = ("127.0.0.1", "::1")
CERT_HOSTS = ["127.0.0.1", "::1", "localhost"]
"""The names a simulated server's certificate is issued for."""


def check_loopback(host: str) -> None:
    """Refuse to bind anything but loopback: the simulator is for tests and demos."""
    if host not in LOOPBACK_HOSTS:
        raise ConfigError(
            [f"refusing to listen on {host!r}: the simulator binds only 127.0.0.1 or ::1"]
        )


def base_url(scheme: str, host: str, port: int) -> str:
    """``scheme://host:port`` with an IPv6 host in brackets (no trailing slash)."""
    netloc = f"[{host}]" if ":" in host else host
    return f"{scheme}://{netloc}:{port}"


class Lifecycle(ABC):
    """Something that starts and stops; ``async with`` does both."""

    @abstractmethod
    async def start(self) -> None: ...

    @abstractmethod
    async def stop(self) -> None: ...

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()


@contextlib.contextmanager
def stop_on(stop: asyncio.Event) -> Iterator[None]:
    """Within the block, SIGINT and SIGTERM set ``stop`` (where the running loop allows)."""
    loop = asyncio.get_running_loop()
    installed: list[signal.Signals] = []
    for signum in (signal.SIGINT, signal.SIGTERM):
        # Not available off the main thread or on Windows; `stop` still works there.
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(signum, stop.set)
            installed.append(signum)
    try:
        yield
    finally:
        for signum in installed:
            loop.remove_signal_handler(signum)


async def start_all(parts: Sequence[Lifecycle]) -> None:
    """Start ``parts`` in order; if one fails, stop those already started and re-raise."""
    started: list[Lifecycle] = []
    try:
        for part in parts:
            await part.start()
            started.append(part)
    except BaseException:
        for part in reversed(started):
            await part.stop()
        raise
