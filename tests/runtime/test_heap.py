"""The heap settle: garbage cycles collected, survivors frozen out of later passes."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest

from scd_monitor.runtime.heap import settle


class _Node:
    def __init__(self) -> None:
        self.other: _Node | None = None


@pytest.fixture
def thawed() -> Iterator[None]:
    yield
    gc.unfreeze()


def test_settle_collects_cycles_and_freezes_the_survivors(thawed: None) -> None:
    gc.unfreeze()
    a, b = _Node(), _Node()
    a.other, b.other = b, a  # a cycle: reference counting alone never frees it
    dead = weakref.ref(a)
    del a, b
    kept = [_Node() for _ in range(1000)]
    settle()
    assert dead() is None
    frozen = gc.get_freeze_count()
    assert frozen >= len(kept)
    # A cycle made after the settle is frozen only by the next one, which frees it
    # once it is garbage.
    c, d = _Node(), _Node()
    c.other, d.other = d, c
    later = weakref.ref(c)
    settle()
    del c, d
    gc.collect()
    assert later() is not None  # frozen: the passes between settles do not see it
    settle()
    assert later() is None
