"""The file-drop sink: reports written atomically into a directory.

Each format (``json``, ``txt``, ``html``; JSON last) goes to ``<idempotency key>.<ext>``:
written to a hidden temporary file in the same directory, flushed to disk, then
hard-linked to its final name, which never replaces an existing file (a rename where
the file system has no hard links). An existing file means an earlier attempt already
delivered it: the key is unique per (incident, event, sink) and its content fixed.
Whoever reads the directory sees whole files or none.

Configuration: :class:`FileSinkConfig` (``kind: file``).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field

from scd_monitor.errors import SinkError
from scd_monitor.sinks.base import DeliveryPayload, SinkConfigBase

__all__ = ["FileFormat", "FileSink", "FileSinkConfig", "atomic_write"]

FileFormat = Literal["json", "txt", "html"]
_JSON_ONLY: tuple[FileFormat, ...] = ("json",)


class FileSinkConfig(SinkConfigBase):
    """Reports written atomically into ``directory`` (named by the idempotency key)."""

    kind: Literal["file"]
    directory: Path
    formats: Annotated[list[FileFormat], Field(min_length=1)] = Field(
        default_factory=lambda: list(_JSON_ONLY)
    )

    def resolve(self, base_dir: Path) -> FileSinkConfig:
        return self.model_copy(update={"directory": (base_dir / self.directory).resolve()})


_ORDER = {"txt": 0, "html": 1, "json": 2}


def atomic_write(directory: Path, name: str, data: bytes) -> bool:
    """Write ``directory/name`` atomically unless it exists; True if written now."""
    final = directory / name
    if final.exists():
        return False
    tmp = directory / f".{name}.{secrets.token_hex(6)}.tmp"
    try:
        with tmp.open("xb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        try:
            os.link(tmp, final)
        except FileExistsError:
            return False
        except OSError:  # no hard links here (some network or FAT file systems)
            tmp.replace(final)
    finally:
        tmp.unlink(missing_ok=True)
    _fsync_dir(directory)
    return True


def _fsync_dir(directory: Path) -> None:
    with contextlib.suppress(OSError):  # not every platform or file system allows it
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


class FileSink:
    """Drop each report into one directory."""

    def __init__(self, config: FileSinkConfig) -> None:
        self._config = config

    @property
    def name(self) -> str:
        return self._config.id

    async def deliver(self, payload: DeliveryPayload) -> None:
        await asyncio.to_thread(self._write, payload)

    def _write(self, payload: DeliveryPayload) -> None:
        directory = self._config.directory
        contents = {
            "json": payload.body,
            "txt": payload.text.encode("utf-8"),
            "html": payload.html.encode("utf-8"),
        }
        try:
            directory.mkdir(parents=True, exist_ok=True)
            for fmt in sorted(self._config.formats, key=_ORDER.__getitem__):
                atomic_write(directory, f"{payload.idempotency_key}.{fmt}", contents[fmt])
        except PermissionError as exc:
            raise SinkError(f"cannot write into {directory}: {exc}", permanent=True) from exc
        except OSError as exc:
            raise SinkError(f"writing into {directory} failed: {exc}", permanent=False) from exc
