"""Replicas of one vantage sharing its checks: ``SCD_MONITOR_SHARD=i/n``.

A check belongs to shard ``i`` of ``n`` when the stable hash of its identity (the check
id, ``provider/service/check``) modulo ``n`` is ``i``; the hash is the last 8 bytes of
the identity's MD5 digest read as a big-endian unsigned integer, exactly as Prometheus'
``hashmod`` relabelling computes it. The hash never depends on the process (Python's
``hash()`` of a string is salted per process), the catalog's order or the other checks,
so every replica started with the same ``n`` agrees on who probes what, a check stays in
its shard across restarts and reloads, and the shards of one ``n`` are disjoint and
cover every check.

Shard 0 is the vantage's *primary*: besides its share of the probes it does the work
done once per vantage (state tracking of every check of the vantage, the month-to-date
SLA, incidents and their outbox, operational monitoring, pruning, the monthly export,
storing the X-Road directories). ``docs/escalado.md`` says what runs where and why.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass

from scd_monitor.catalog.models import ResolvedCheck

__all__ = ["Shard", "shard_of", "worker_of"]


def _hashmod(identity: str) -> int:
    digest = hashlib.md5(identity.encode("utf-8"), usedforsecurity=False).digest()
    return int.from_bytes(digest[8:], "big")


def shard_of(identity: str, count: int) -> int:
    """The shard (``0 … count-1``) of a check identity: Prometheus' ``hashmod``."""
    if count < 1:
        raise ValueError(f"the number of shards must be at least 1, got {count}")
    return _hashmod(identity) % count


def worker_of(identity: str, shards: int, workers: int) -> int:
    """The probing process (``0 … workers-1``) of a check within its replica's share.

    The same hash as :func:`shard_of`, divided by the number of replicas first: taken
    modulo ``workers`` directly it would be correlated with the shard (with 2 replicas
    and 2 processes, every check of replica 0 has an even hash and would fall in process
    0). Stable like the shard: a check keeps its process across restarts and reloads."""
    if shards < 1 or workers < 1:
        raise ValueError(f"shards and workers must be at least 1, got {shards} and {workers}")
    return (_hashmod(identity) // shards) % workers


@dataclass(frozen=True, slots=True)
class Shard:
    """Shard ``index`` of ``count``; ``Shard(0, 1)`` (the default) owns every check."""

    index: int = 0
    count: int = 1

    def __post_init__(self) -> None:
        if self.count < 1 or not 0 <= self.index < self.count:
            raise ValueError(
                f"a shard is i/n with n ≥ 1 and 0 ≤ i < n, got {self.index}/{self.count}"
            )

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"

    @property
    def sharded(self) -> bool:
        """More than one replica shares the vantage's checks."""
        return self.count > 1

    @property
    def primary(self) -> bool:
        """Shard 0: the replica that also does the vantage's once-only work."""
        return self.index == 0

    def owns(self, check: ResolvedCheck | str) -> bool:
        """Whether this replica probes ``check`` (a check or its id)."""
        if self.count == 1:
            return True
        ident = check if isinstance(check, str) else check.id
        return shard_of(ident, self.count) == self.index

    def select(self, checks: Iterable[ResolvedCheck]) -> list[ResolvedCheck]:
        """This replica's share of ``checks``, in their order."""
        if self.count == 1:
            return list(checks)
        return [check for check in checks if self.owns(check)]

    def split(self, checks: Iterable[ResolvedCheck], workers: int) -> list[list[ResolvedCheck]]:
        """This replica's ``checks`` (already its share) dealt to ``workers`` probing
        processes by :func:`worker_of`, in their order."""
        parts: list[list[ResolvedCheck]] = [[] for _ in range(workers)]
        if workers == 1:
            parts[0].extend(checks)
            return parts
        for check in checks:
            parts[worker_of(check.id, self.count, workers)].append(check)
        return parts
