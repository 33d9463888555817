"""Safe XML parsing for answers from X-Road servers, and namespace helpers.

What comes from a security server or a configuration source is untrusted input. Every
document goes through :func:`parse_xml`, which

* refuses input larger than ``max_bytes`` (10 MiB by default) **before** parsing it;
* parses with ``defusedxml`` with document type declarations forbidden: no DTD, so no
  entity expansion (billion laughs, quadratic blowup) and no external entity or DTD
  (file or network access). X-Road messages and configuration never carry a DTD;
* bounds the depth of nesting and the number of elements while parsing (the tree
  builder counts as expat reports elements), so a deeply nested or element-dense
  document fails early instead of building a huge tree;
* turns every failure into one :class:`XRoadProtocolError` whose message says what was
  being parsed and what is wrong with it.

``defusedxml`` ships no type information; it is loaded through ``importlib`` so the rest
of this module stays fully typed without a stub package.
"""

from __future__ import annotations

import importlib
import xml.etree.ElementTree as ET  # the Element type, ParseError; parsing is defusedxml's
from collections.abc import Iterator
from typing import Any, Final

from scd_monitor.xroad.errors import XRoadProtocolError

__all__ = [
    "DEFAULT_MAX_BYTES",
    "DEFAULT_MAX_DEPTH",
    "DEFAULT_MAX_ELEMENTS",
    "NS_ID",
    "NS_SOAP_ENV",
    "NS_XROAD",
    "Element",
    "child",
    "child_text",
    "children",
    "local_name",
    "namespace",
    "parse_xml",
    "qname",
    "text_of",
]

Element = ET.Element

NS_XROAD: Final = "http://x-road.eu/xsd/xroad.xsd"
"""Messages, metaservice answers, global configuration (PR-MESS Annex B, PR-GCONF)."""
NS_ID: Final = "http://x-road.eu/xsd/identifiers"
"""Identifier fields and the ``objectType`` attribute (PR-MESS §2.1)."""
NS_SOAP_ENV: Final = "http://schemas.xmlsoap.org/soap/envelope/"
"""SOAP 1.1, the only SOAP version of the X-Road message protocol (PR-MESS §1)."""

DEFAULT_MAX_BYTES: Final = 10 * 1024 * 1024
DEFAULT_MAX_DEPTH: Final = 64
"""X-Road documents nest a handful of levels (a SOAP envelope about 6)."""
DEFAULT_MAX_ELEMENTS: Final = 2_000_000
"""Far above a large instance's shared parameters, far below what exhausts memory."""

_defused: Any = importlib.import_module("defusedxml.ElementTree")
_defused_common: Any = importlib.import_module("defusedxml.common")


class _TooComplex(Exception):
    """Raised from inside the parser when a structural limit is passed."""


class _BoundedTreeBuilder(ET.TreeBuilder):
    """A tree builder that stops the parse past a nesting depth or an element count."""

    def __init__(self, *, max_depth: int, max_elements: int) -> None:
        super().__init__()
        self._max_depth = max_depth
        self._max_elements = max_elements
        self._depth = 0
        self._elements = 0

    def start(self, tag: str, attrs: dict[str, str], /) -> Element:
        self._depth += 1
        self._elements += 1
        if self._depth > self._max_depth:
            raise _TooComplex(f"elements nested deeper than {self._max_depth} levels")
        if self._elements > self._max_elements:
            raise _TooComplex(f"more than {self._max_elements} elements")
        return super().start(tag, attrs)

    def end(self, tag: str, /) -> Element:
        self._depth -= 1
        return super().end(tag)


def parse_xml(
    data: bytes,
    *,
    what: str = "XML document",
    max_bytes: int = DEFAULT_MAX_BYTES,
    max_depth: int = DEFAULT_MAX_DEPTH,
    max_elements: int = DEFAULT_MAX_ELEMENTS,
) -> Element:
    """Parse ``data`` into its root element, or raise :class:`XRoadProtocolError`.

    ``what`` names the document in error messages (``"listClients response"``).
    """
    if not isinstance(data, bytes | bytearray | memoryview):
        raise TypeError(f"parse_xml wants bytes, not {type(data).__name__}")
    size = len(data)
    if size > max_bytes:
        raise XRoadProtocolError(
            f"{what}: {size} bytes is over the limit of {max_bytes} bytes; refused without parsing",
            kind="too_large",
        )
    if size == 0:
        raise XRoadProtocolError(f"{what}: empty, expected an XML document")
    builder = _BoundedTreeBuilder(max_depth=max_depth, max_elements=max_elements)
    parser = _defused.DefusedXMLParser(
        target=builder, forbid_dtd=True, forbid_entities=True, forbid_external=True
    )
    try:
        parser.feed(bytes(data))
        root: Element = parser.close()
    except _defused_common.DTDForbidden:
        raise XRoadProtocolError(
            f"{what}: contains a document type declaration (DTD), which is refused: "
            "X-Road documents have none, and a DTD is how entity-expansion and "
            "external-entity attacks are made"
        ) from None
    except _defused_common.EntitiesForbidden:
        raise XRoadProtocolError(f"{what}: declares entities, which is refused") from None
    except _defused_common.ExternalReferenceForbidden:
        raise XRoadProtocolError(
            f"{what}: refers to an external resource, which is refused"
        ) from None
    except _defused_common.DefusedXmlException as exc:
        raise XRoadProtocolError(f"{what}: refused unsafe XML ({type(exc).__name__})") from None
    except _TooComplex as exc:
        raise XRoadProtocolError(f"{what}: too complex to parse: {exc}") from None
    except ET.ParseError as exc:
        raise XRoadProtocolError(f"{what}: not well-formed XML: {exc}") from None
    except (ValueError, LookupError, RecursionError) as exc:  # e.g. an unknown encoding
        raise XRoadProtocolError(f"{what}: cannot be parsed as XML: {exc}") from None
    return root


# -- namespace helpers -------------------------------------------------------------------


def qname(ns: str, local: str) -> str:
    """ElementTree's name for ``local`` in namespace ``ns``: ``{ns}local``."""
    return f"{{{ns}}}{local}" if ns else local


def local_name(tag: str) -> str:
    """``local`` from ``{ns}local`` (or ``local``)."""
    return tag.rpartition("}")[2]


def namespace(tag: str) -> str:
    """``ns`` from ``{ns}local``; ``""`` for a name in no namespace."""
    return tag[1:].partition("}")[0] if tag.startswith("{") else ""


def children(element: Element, local: str, ns: str | None = None) -> Iterator[Element]:
    """Child elements named ``local``; in namespace ``ns``, or in any when ``ns`` is None.

    Comments and processing instructions are never children (the tree builder drops them).
    """
    for item in element:
        tag = item.tag
        if not isinstance(tag, str) or local_name(tag) != local:
            continue
        if ns is None or namespace(tag) == ns:
            yield item


def child(element: Element, local: str, ns: str | None = None) -> Element | None:
    """The first child named ``local`` (see :func:`children`), or ``None``."""
    return next(children(element, local, ns), None)


def text_of(element: Element) -> str:
    """All the text inside ``element``, stripped of surrounding white space."""
    return "".join(element.itertext()).strip()


def child_text(element: Element, local: str, ns: str | None = None) -> str | None:
    """The stripped text of the first child named ``local``; ``None`` if there is none.

    An empty child gives ``""``: callers decide whether that is allowed.
    """
    found = child(element, local, ns)
    return None if found is None else text_of(found)
