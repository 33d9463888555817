"""Hostile XML: every attack and every broken document is one clear XRoadProtocolError."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from scd_monitor.xroad import (
    XRoadProtocolError,
    parse_list_clients_xml,
    parse_shared_parameters,
    parse_soap_method_list,
    parse_xml,
)
from scd_monitor.xroad import xml as xroad_xml

BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<ns2:clientList xmlns:ns2="http://x-road.eu/xsd/xroad.xsd"><ns2:member>&lol9;</ns2:member></ns2:clientList>
"""

EXTERNAL_ENTITY = b"""<?xml version="1.0"?>
<!DOCTYPE clientList [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<ns2:clientList xmlns:ns2="http://x-road.eu/xsd/xroad.xsd"><ns2:member>&xxe;</ns2:member></ns2:clientList>
"""

EXTERNAL_DTD = b"""<?xml version="1.0"?>
<!DOCTYPE clientList SYSTEM "http://127.0.0.1:9/evil.dtd">
<ns2:clientList xmlns:ns2="http://x-road.eu/xsd/xroad.xsd"/>
"""

PARAMETER_ENTITY = b"""<?xml version="1.0"?>
<!DOCTYPE r [<!ENTITY % remote SYSTEM "http://127.0.0.1:9/x.dtd"> %remote;]>
<r/>
"""

DEEP = b"<a>" * 50_000 + b"</a>" * 50_000
TRUNCATED = (
    b'<?xml version="1.0"?><ns2:clientList xmlns:ns2="http://x-road.eu/xsd/xroad.xsd"><ns2:mem'
)
GARBAGE = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR not xml at all"
UNDEFINED_ENTITY = b"<clientList>&nbsp;</clientList>"
UNBOUND_PREFIX = b"<wsdl:definitions/>"

Parser = Callable[[bytes], object]
PARSERS: dict[str, Parser] = {
    "parse_xml": parse_xml,
    "listClients": parse_list_clients_xml,
    "shared parameters": parse_shared_parameters,
    "listMethods": parse_soap_method_list,
}


@pytest.mark.parametrize("parser", PARSERS.values(), ids=PARSERS.keys())
@pytest.mark.parametrize(
    ("document", "expected"),
    [
        (BILLION_LAUGHS, "document type declaration"),
        (EXTERNAL_ENTITY, "document type declaration"),
        (EXTERNAL_DTD, "document type declaration"),
        (PARAMETER_ENTITY, "document type declaration"),
        (DEEP, "nested deeper than 64 levels"),
        (TRUNCATED, "not well-formed XML: unclosed token"),
        (GARBAGE, "not well-formed XML"),
        (UNDEFINED_ENTITY, "undefined entity"),
        (UNBOUND_PREFIX, "unbound prefix"),
        (b"", "empty"),
        (b'<?xml version="1.0" encoding="x-klingon"?><a/>', "cannot be parsed as XML"),
    ],
    ids=[
        "billion-laughs",
        "external-entity",
        "external-dtd",
        "parameter-entity",
        "deep",
        "truncated",
        "garbage",
        "undefined-entity",
        "unbound-prefix",
        "empty",
        "unknown-encoding",
    ],
)
def test_hostile_or_broken_xml_is_a_protocol_error(
    parser: Parser, document: bytes, expected: str
) -> None:
    with pytest.raises(XRoadProtocolError) as caught:
        parser(document)
    assert expected in caught.value.message
    assert caught.value.kind == "protocol"
    assert caught.value.__cause__ is None  # the foreign exception is not chained


def test_the_message_names_the_document() -> None:
    with pytest.raises(XRoadProtocolError) as caught:
        parse_list_clients_xml(EXTERNAL_ENTITY)
    assert caught.value.message.startswith("listClients response: contains a document type")


def test_a_huge_document_is_refused_before_parsing(monkeypatch: pytest.MonkeyPatch) -> None:
    class Exploding:
        def DefusedXMLParser(self, *args: object, **kwargs: object) -> object:
            raise AssertionError("the parser must not be created for an oversized document")

    monkeypatch.setattr(xroad_xml, "_defused", Exploding())
    huge = b"<a>" + b"x" * (10 * 1024 * 1024) + b"</a>"
    with pytest.raises(XRoadProtocolError) as caught:
        parse_xml(huge, what="listClients response")
    assert caught.value.kind == "too_large"
    assert caught.value.message == (
        f"listClients response: {len(huge)} bytes is over the limit of 10485760 bytes; "
        "refused without parsing"
    )
    with pytest.raises(XRoadProtocolError, match="refused without parsing"):
        parse_shared_parameters(huge)


def test_limits_are_configurable() -> None:
    document = b"<a><b/><b/><b/></a>"
    assert parse_xml(document).tag == "a"
    with pytest.raises(XRoadProtocolError, match="over the limit of 10 bytes"):
        parse_xml(document, max_bytes=10)
    with pytest.raises(XRoadProtocolError, match="more than 3 elements"):
        parse_xml(document, max_elements=3)
    with pytest.raises(XRoadProtocolError, match="deeper than 1 levels"):
        parse_xml(document, max_depth=1)


def test_ordinary_documents_parse() -> None:
    document = '\ufeff<?xml version="1.0" encoding="UTF-8"?><a xmlns="urn:x"><!-- c --><b>ñ</b></a>'
    root = parse_xml(document.encode())
    assert root.tag == "{urn:x}a"
    assert [item.text for item in root] == ["ñ"]
    latin = '<?xml version="1.0" encoding="ISO-8859-1"?><a>ñ</a>'.encode("latin-1")
    assert parse_xml(latin).text == "ñ"
