"""Just enough MIME for X-Road: multipart bodies split byte-exactly, header parameters.

The configuration directory is signed over "the body of the first MIME part"
(PR-GCONF §2.3), so parts are cut from the raw bytes exactly as RFC 2046 §5.1.1 says
(the line break before a boundary delimiter belongs to the delimiter), not re-encoded
by a MIME library. Line breaks may be CRLF (the standard) or bare LF (what the protocol
documents show); both are accepted.

Two habits of real X-Road servers are accepted where the caller asks for them, because
X-Road's own configuration client (Apache mime4j, ``ConfigurationParser``) accepts them:
parameter values in single quotes (``instance='CO'``, written by every central server;
``single_quotes=True``) and a multipart that ends without its closing delimiter
(``--boundary`` alone at the end, or nothing, as central servers up to 7.2 wrote the
configuration directory; ``unclosed=True``).
"""

from __future__ import annotations

import base64
import binascii
import quopri
import re
from dataclasses import dataclass

from scd_monitor.xroad.errors import XRoadProtocolError

__all__ = [
    "HeaderValue",
    "MimePart",
    "content_type_of",
    "leading_headers",
    "parse_header_value",
    "split_multipart",
]

_BOUNDARY_CHARS = re.compile(r"^[0-9A-Za-z'()+_,\-./:=? ]{1,70}$")
_FIELD_LINE = re.compile(rb"^(?!--)[!-9;-~]+:")
"""A header field line (RFC 5322 §2.2: printable name without a colon), never a
``--boundary`` delimiter."""


@dataclass(frozen=True, slots=True)
class HeaderValue:
    """A structured header: ``value; name=param; …`` with the value lower-cased only
    where the caller asks for it."""

    value: str
    params: dict[str, str]


def parse_header_value(raw: str, *, single_quotes: bool = False) -> HeaderValue:
    """Split ``text/xml; charset="utf-8"`` into the value and its parameters.

    The value is kept as sent (a base64 hash may end in ``=``); parameter names are
    lower-cased and quoted parameter values unquoted (RFC 2045 §5.1). With
    ``single_quotes``, a value in single quotes (``instance='CO'``) is unquoted too, as
    X-Road's configuration client does with the ``instance`` parameter.
    """
    segments = _segments(raw)
    value = segments[0].strip() if segments else ""
    params: dict[str, str] = {}
    for segment in segments[1:]:
        name, sep, param = segment.partition("=")
        name = name.strip().lower()
        if not sep or not name:
            continue
        param = param.strip()
        if len(param) >= 2 and param[0] == param[-1] == '"':
            param = re.sub(r"\\(.)", r"\1", param[1:-1])
        elif single_quotes and len(param) >= 2 and param[0] == param[-1] == "'":
            param = param[1:-1]
        params.setdefault(name, param)
    return HeaderValue(value=value, params=params)


def _segments(raw: str) -> list[str]:
    """``raw`` split at the semicolons that are not inside a quoted string."""
    segments: list[str] = []
    current: list[str] = []
    quoted = escaped = False
    for char in raw:
        if escaped:
            escaped = False
        elif quoted and char == "\\":
            escaped = True
        elif char == '"':
            quoted = not quoted
        elif char == ";" and not quoted:
            segments.append("".join(current))
            current = []
            continue
        current.append(char)
    segments.append("".join(current))
    return segments


def content_type_of(raw: str | None) -> HeaderValue:
    """The media type (lower-cased) and parameters of a Content-Type header value."""
    if not raw:
        return HeaderValue(value="", params={})
    parsed = parse_header_value(raw)
    return HeaderValue(value=parsed.value.lower(), params=parsed.params)


@dataclass(frozen=True, slots=True)
class MimePart:
    """One part of a multipart body: its headers and its raw (still encoded) body."""

    headers: tuple[tuple[str, str], ...]
    """``(name, value)`` in order, names as sent; see :meth:`header`."""
    body: bytes

    def header(self, name: str) -> str | None:
        """The first header named ``name`` (case-insensitively), or ``None``."""
        wanted = name.lower()
        for key, value in self.headers:
            if key.lower() == wanted:
                return value
        return None

    @property
    def content_type(self) -> HeaderValue:
        return content_type_of(self.header("content-type"))

    def decoded(self, what: str) -> bytes:
        """The body with its Content-Transfer-Encoding undone."""
        encoding = (self.header("content-transfer-encoding") or "").strip().lower()
        if encoding in ("", "7bit", "8bit", "binary"):
            return self.body
        if encoding == "base64":
            try:
                return base64.b64decode(b"".join(self.body.split()), validate=True)
            except (binascii.Error, ValueError) as exc:
                raise XRoadProtocolError(f"{what}: invalid base64 body: {exc}") from None
        if encoding == "quoted-printable":
            return quopri.decodestring(self.body)
        raise XRoadProtocolError(f"{what}: unsupported Content-Transfer-Encoding {encoding!r}")


def split_multipart(
    body: bytes, boundary: str, *, what: str, unclosed: bool = False
) -> list[MimePart]:
    """The parts of a multipart ``body`` delimited by ``boundary`` (RFC 2046 §5.1.1).

    The preamble and epilogue are ignored. A body without the closing delimiter
    (``--boundary--``) is refused as truncated, unless ``unclosed``: then, as mime4j
    reads it, the last part ends with the body, and a delimiter with nothing but white
    space after it ends the multipart (the ``--boundary`` that central servers up to
    X-Road 7.2 end their configuration directory with). Use ``unclosed`` only for a
    multipart nested in one that was closed, so a cut download is still noticed.
    """
    if not _BOUNDARY_CHARS.match(boundary) or boundary.endswith(" "):
        raise XRoadProtocolError(f"{what}: invalid multipart boundary {boundary!r}")
    delimiter = re.compile(
        rb"(?:\A|\r?\n)--" + re.escape(boundary.encode("ascii")) + rb"(--)?[ \t]*(?:\r?\n|\Z)"
    )
    parts: list[MimePart] = []
    start: int | None = None
    closed = False
    for match in delimiter.finditer(body):
        if start is not None:
            parts.append(_part(body[start : match.start()], what))
        if match.group(1):
            closed = True
            break
        start = match.end()
    if start is None:
        raise XRoadProtocolError(f"{what}: no multipart boundary {boundary!r} in the body")
    if not closed:
        if not unclosed:
            raise XRoadProtocolError(
                f"{what}: multipart body ends without its closing boundary (truncated?)"
            )
        if body[start:].strip():
            parts.append(_part(body[start:], what))
    return parts


def leading_headers(body: bytes, *, what: str) -> tuple[tuple[tuple[str, str], ...], int] | None:
    """The header block a body starts with, and where the rest of the body begins.

    X-Road's configuration sources write the whole MIME entity, headers included, and
    serve it as a file (``Content-Type: multipart/related; boundary=…`` as the first
    line of the body); X-Road's client parses it as such. ``None`` when the body does
    not start with a header line (a ``--boundary`` line or any other text) or the
    block does not end with an empty line.
    """
    first = body[:1000].split(b"\n", 1)[0]
    if not _FIELD_LINE.match(first):
        return None
    ends = [
        (index, size)
        for size, sep in ((4, b"\r\n\r\n"), (2, b"\n\n"), (3, b"\n\r\n"))
        if (index := body.find(sep)) >= 0
    ]
    if not ends:
        return None
    index, size = min(ends)
    return _headers(body[:index], what), index + size


def _part(raw: bytes, what: str) -> MimePart:
    """Headers up to the first empty line, the rest is the body (none: headers only)."""
    if raw.startswith((b"\r\n", b"\n")):
        head, body = b"", raw[2:] if raw.startswith(b"\r\n") else raw[1:]
    else:
        ends = [
            (index, size)
            for size, sep in ((4, b"\r\n\r\n"), (2, b"\n\n"))
            if (index := raw.find(sep)) >= 0
        ]
        if ends:
            index, size = min(ends)
            head, body = raw[:index], raw[index + size :]
        else:
            head, body = raw, b""
    return MimePart(headers=_headers(head, what), body=body)


def _headers(head: bytes, what: str) -> tuple[tuple[str, str], ...]:
    lines: list[str] = []
    for line in head.decode("latin-1").replace("\r\n", "\n").split("\n"):
        if line[:1] in (" ", "\t") and lines:
            lines[-1] += " " + line.strip()  # a folded header continues (RFC 5322 §2.2.3)
        elif line.strip():
            lines.append(line)
    headers: list[tuple[str, str]] = []
    for line in lines:
        name, sep, value = line.partition(":")
        if not sep or not name.strip() or name != name.strip():
            raise XRoadProtocolError(f"{what}: malformed MIME header line {line[:80]!r}")
        headers.append((name, value.strip()))
    return tuple(headers)
