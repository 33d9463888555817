"""Pre-rendered text exposition: cached byte chunks per (family, key), joined per family.

``/metrics`` at tens of thousands of checks cannot be rebuilt object by object at every
scrape (issue 14). Instead each key (a check, a service) has one small block of text per
metric family, rendered by its collector only when that key's inputs change, and a
scrape joins the blocks family by family, in the keys' order, under each family's
``# HELP`` / ``# TYPE`` (the text format wants a family's samples contiguous).

The joined text is cached too, per family and *segment* of :data:`SEGMENT` keys, with
its deflate-compressed form: a gzipped scrape only compresses the segments that changed,
and the body is one gzip member made of independently compressed, byte-aligned deflate
pieces (each ended by a sync flush) and one final empty block; the CRC-32 is taken over
the text at scrape time.

The format is exactly prometheus_client's ``generate_latest`` (text 0.0.4): labels in
name order, values by ``floatToGoString``, the same escaping of label values and help
text; ``tests/web/test_exposition.py`` compares both sample for sample.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Callable, Hashable, Iterable, Sequence
from typing import cast

from prometheus_client.utils import floatToGoString

__all__ = [
    "GZIP_LEVEL",
    "SEGMENT",
    "Chunk",
    "FamilyTable",
    "esc",
    "fmt",
    "gzip_chunks",
    "header",
    "join_text",
    "scalar",
]

GZIP_LEVEL = 6
SEGMENT = 256
"""Keys per cached segment: small enough that a change re-joins and recompresses little,
large enough that compression works on kilobytes and a scrape joins few pieces."""

_GZIP_HEADER = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"
"""Magic, deflate, no flags, mtime 0, no extra flags, OS unknown: as ``gzip.compress(...,
mtime=0)`` writes it."""
_FINAL_BLOCK = b"\x03\x00"
"""An empty final block (fixed Huffman): ends the deflate stream."""

_go_float = cast("Callable[[float], str]", floatToGoString)


def fmt(value: float) -> str:
    """A sample value as ``generate_latest`` writes it (``floatToGoString``: ``1.0``,
    ``1.7935344e+09``, ``+Inf``), without its extra steps for the common case."""
    s = repr(value)
    dot = s.find(".")
    if dot < 0:  # an int, inf, nan, 1e+16: the library's own way
        return _go_float(value)
    if dot > 6 and value > 0:  # Go switches to exponents sooner than Python
        mantissa = f"{s[0]}.{s[1:dot]}{s[dot + 1 :]}".rstrip("0.")
        return f"{mantissa}e+{dot - 1:02d}"
    return s


def esc(value: str) -> str:
    """A label value escaped for the text format (backslash, newline, double quote)."""
    if "\\" in value or "\n" in value or '"' in value:
        return value.replace("\\", r"\\").replace("\n", r"\n").replace('"', r"\"")
    return value


def header(name: str, doc: str, kind: str) -> bytes:
    """``# HELP`` and ``# TYPE`` of one family (``name`` as exposed: ``_total``, ``_info``
    included; ``kind`` as the text format says it: counter, gauge …)."""
    help_text = doc.replace("\\", r"\\").replace("\n", r"\n")
    return f"# HELP {name} {help_text}\n# TYPE {name} {kind}\n".encode()


def scalar(name: str, doc: str, kind: str, value: float) -> bytes:
    """A family of one unlabelled sample."""
    return header(name, doc, kind) + f"{name} {fmt(value)}\n".encode()


class Chunk:
    """A piece of the exposition, with its compressed form once asked for.

    ``cached``: the chunk outlives the scrape (held by a :class:`FamilyTable` or a
    collector), so its compressed form is worth keeping; transient chunks next to each
    other are compressed together.
    """

    __slots__ = ("_deflated", "cached", "data")

    def __init__(self, data: bytes, *, cached: bool = False) -> None:
        self.data = data
        self.cached = cached
        self._deflated: bytes | None = None

    def deflated(self) -> bytes:
        """Raw deflate of :attr:`data`, sync-flushed: non-final and byte-aligned, so such
        pieces concatenate into one stream."""
        out = self._deflated
        if out is None:
            out = _deflate(self.data)
            if self.cached:
                self._deflated = out
        return out


def _deflate(data: bytes) -> bytes:
    compressor = zlib.compressobj(GZIP_LEVEL, zlib.DEFLATED, -zlib.MAX_WBITS)
    return compressor.compress(data) + compressor.flush(zlib.Z_SYNC_FLUSH)


def join_text(chunks: Iterable[Chunk]) -> bytes:
    return b"".join([c.data for c in chunks])


def gzip_chunks(chunks: Iterable[Chunk]) -> bytes:
    """One gzip member holding the text of ``chunks``; cached chunks are compressed once
    and reused, runs of transient ones compressed together."""
    parts = [_GZIP_HEADER]
    crc = 0
    size = 0
    pending: list[bytes] = []
    for chunk in chunks:
        data = chunk.data
        if not data:
            continue
        crc = zlib.crc32(data, crc)
        size += len(data)
        if chunk.cached:
            if pending:
                parts.append(_deflate(b"".join(pending)))
                pending = []
            parts.append(chunk.deflated())
        else:
            pending.append(data)
    if pending:
        parts.append(_deflate(b"".join(pending)))
    parts.append(_FINAL_BLOCK)
    parts.append(struct.pack("<II", crc, size & 0xFFFFFFFF))
    return b"".join(parts)


class FamilyTable:
    """One cached byte block per (family, key); joined per family in the keys' order.

    :meth:`sync` sets the keys and their order (a new order drops every segment: a
    catalog change); :meth:`put` replaces one key's blocks (one ``bytes`` per family, empty
    when the key has no sample there) and marks only the segments whose text changed;
    :meth:`chunks` gives each family's header and its segments' text, re-joining only
    the segments marked. Not thread-safe: its collector serialises the calls.
    """

    def __init__(self, headers: Sequence[bytes], *, segment: int = SEGMENT) -> None:
        self._headers = [Chunk(h, cached=True) for h in headers]
        self._segment = segment
        self._keys: tuple[Hashable, ...] = ()
        self._blocks: dict[Hashable, tuple[bytes, ...]] = {}
        self._segment_of: dict[Hashable, int] = {}
        self._joined: list[list[Chunk | None]] = [[] for _ in headers]
        self._empty = (b"",) * len(headers)

    @property
    def keys(self) -> tuple[Hashable, ...]:
        return self._keys

    def block(self, key: Hashable) -> tuple[bytes, ...] | None:
        """The blocks cached for ``key`` (for tests: a block reused is the same object)."""
        return self._blocks.get(key)

    def sync(self, keys: Sequence[Hashable]) -> bool:
        """Make ``keys`` the keys, in this order; True when they changed (everything
        cached is dropped then, except the blocks of keys that stay)."""
        keys = tuple(keys)
        if keys == self._keys:
            return False
        blocks = self._blocks
        self._blocks = {k: blocks[k] for k in keys if k in blocks}
        self._keys = keys
        size = self._segment
        self._segment_of = {k: i // size for i, k in enumerate(keys)}
        count = (len(keys) + size - 1) // size
        self._joined = [[None] * count for _ in self._headers]
        return True

    def put(self, key: Hashable, blocks: tuple[bytes, ...]) -> tuple[bytes, ...]:
        """Set ``key``'s blocks; returns the blocks kept (the old tuple when the text is
        the same, so an unchanged key stays the same object)."""
        old = self._blocks.get(key)
        if old == blocks and old is not None:
            return old
        segment = self._segment_of[key]
        for i, joined in enumerate(self._joined):
            if old is None or old[i] != blocks[i]:
                joined[segment] = None
        self._blocks[key] = blocks
        return blocks

    def chunks(self) -> list[Chunk]:
        out: list[Chunk] = []
        keys = self._keys
        size = self._segment
        blocks = self._blocks
        empty = self._empty
        for family, (head, joined) in enumerate(zip(self._headers, self._joined, strict=True)):
            out.append(head)
            for segment, chunk in enumerate(joined):
                if chunk is None:
                    members = keys[segment * size : (segment + 1) * size]
                    text = b"".join([blocks.get(k, empty)[family] for k in members])
                    chunk = joined[segment] = Chunk(text, cached=True)
                if chunk.data:
                    out.append(chunk)
        return out
