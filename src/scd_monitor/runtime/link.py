"""The link between the daemon and a probing process (:mod:`.probing`, :mod:`.probeworker`).

Each message is a 4-byte big-endian length and a pickle. Kept apart, and light, so a
probing process imports only what it needs to start probing quickly.
"""

from __future__ import annotations

import asyncio
import pickle
import struct
from dataclasses import dataclass
from typing import Any

WORKER_MODULE = "scd_monitor.runtime.probeworker"
_HEADER = struct.Struct(">I")
MAX_FRAME = 256 * 1024 * 1024
"""The largest message either side accepts (the checks of a very large share)."""


class ProtocolError(Exception):
    """The other side of the link sent something that is not a message."""


def frame(message: object) -> bytes:
    """One message on the link: length and pickle."""
    body = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    if len(body) > MAX_FRAME:
        raise ProtocolError(f"message of {len(body)} bytes exceeds {MAX_FRAME}")
    return _HEADER.pack(len(body)) + body


async def read_frame(reader: asyncio.StreamReader) -> Any:
    """The next message, or None at the end of the stream."""
    try:
        header = await reader.readexactly(_HEADER.size)
    except asyncio.IncompleteReadError as exc:
        if exc.partial:
            raise ProtocolError("the stream ended inside a message header") from exc
        return None
    (size,) = _HEADER.unpack(header)
    if size > MAX_FRAME:
        raise ProtocolError(f"message of {size} bytes announced, limit {MAX_FRAME}")
    try:
        body = await reader.readexactly(size)
    except asyncio.IncompleteReadError as exc:
        raise ProtocolError("the stream ended inside a message") from exc
    return pickle.loads(body)  # noqa: S301 - our own child, over its private pipe


@dataclass(frozen=True, slots=True)
class WorkerConfig:
    """What a worker needs besides its checks (sent first, once per start)."""

    index: int
    count: int
    vantage: str
    max_concurrency: int
    log_format: str
    log_level: str
