"""Identifiers: text forms round-trip, invalid parts are refused, slugs are stable ids."""

from __future__ import annotations

import re
from urllib.parse import unquote

import pytest
from hypothesis import given
from hypothesis import strategies as st

from scd_monitor.config.types import SLUG_PATTERN
from scd_monitor.xroad import ClientId, ServiceId
from scd_monitor.xroad.identifiers import segment

# Any text X-Road allows (no control characters, no "/", "\\", "%", ":", ";", U+200B,
# U+FEFF, not "." or ".."), like real codes and worse.
FORBIDDEN = "/\\%:;\u200b\ufeff"
part = st.text(
    alphabet=st.characters(blacklist_categories=("Cc", "Cs"), blacklist_characters=FORBIDDEN),
    min_size=1,
    max_size=40,
).filter(lambda p: p not in (".", ".."))
simple = st.text(alphabet="ABCabc019-_. ", min_size=1, max_size=6).filter(
    lambda p: p not in (".", "..")
)
parts = st.one_of(part, simple)
clients = st.builds(ClientId, parts, parts, parts, st.none() | parts)
subsystems = st.builds(ClientId, parts, parts, parts, parts)
services = st.builds(ServiceId, subsystems, parts, st.none() | parts)
slug = re.compile(SLUG_PATTERN)


def test_parse_and_format_the_documented_forms() -> None:
    member = ClientId.parse("CO/GOB/8999990001")
    assert member == ClientId("CO", "GOB", "8999990001")
    assert member.object_type == "MEMBER"
    subsystem = ClientId.parse("CO/GOB/8999990001/CARPETA")
    assert subsystem.subsystem_code == "CARPETA"
    assert subsystem.object_type == "SUBSYSTEM"
    assert subsystem.member == member
    assert str(subsystem) == "CO/GOB/8999990001/CARPETA"
    service = ServiceId.parse("CO-QA/GOB/8999990001/CARPETA/consultarDocumentos/v1")
    assert service.client == ClientId("CO-QA", "GOB", "8999990001", "CARPETA")
    assert service.service_code == "consultarDocumentos"
    assert service.service_version == "v1"
    assert str(service.without_version()) == "CO-QA/GOB/8999990001/CARPETA/consultarDocumentos"


@pytest.mark.parametrize(
    "text",
    ["CO/GOB", "CO/GOB/1/SUB/extra", "CO//1", "/GOB/1", "CO/GOB/", "CO/GOB/1/", "", "CO/GOB/1\n"],
)
def test_invalid_client_text_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match=r"client identifier|empty|control"):
        ClientId.parse(text)


@pytest.mark.parametrize(
    "text", ["CO/GOB/1/SUB", "CO/GOB/1/SUB/svc/v1/x", "CO/GOB/1/SUB//v1", "CO/GOB/1//svc"]
)
def test_invalid_service_text_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match=r"service identifier|empty"):
        ServiceId.parse(text)


def test_parts_with_a_slash_or_control_character_are_refused() -> None:
    with pytest.raises(ValueError, match="contains '/'"):
        ClientId("CO", "GOB", "1/2")
    with pytest.raises(ValueError, match="control character"):
        ClientId("CO", "GOB", "1\r\nX-Injected: yes")
    with pytest.raises(ValueError, match="empty"):
        ServiceId(ClientId("CO", "GOB", "1", "S"), "")
    with pytest.raises(ValueError, match="contains '/'"):
        ServiceId(ClientId("CO", "GOB", "1", "S"), "svc", "v/1")


def test_encoded_form_percent_encodes_each_part() -> None:
    client = ClientId("CO", "GOB", "Registraduría", "sub sistema")
    assert client.encoded() == "CO/GOB/Registradur%C3%ADa/sub%20sistema"
    assert ClientId("CO", "GOB", "a?b#c&d=e", "...").encoded() == (
        "CO/GOB/a%3Fb%23c%26d%3De/%2E%2E%2E"
    )


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("..", "relative path segment"),
        (".", "relative path segment"),
        ("\ud800", "lone surrogate"),
        ("svc\udfffx", "lone surrogate"),
        ("a\\b", "X-Road does not allow"),
        ("50%", "X-Road does not allow"),
        ("a:b", "X-Road does not allow"),
        ("a;b", "X-Road does not allow"),
        ("zero\u200bwidth", "X-Road does not allow"),
        ("\ufeffbom", "X-Road does not allow"),
        ("nul\x00", "control character"),
        ("csi\x9b", "control character"),
        ("del\x7f", "control character"),
        ("x" * 256, "longer than 255"),
    ],
)
def test_parts_x_road_does_not_allow_are_refused(value: str, reason: str) -> None:
    with pytest.raises(ValueError, match=reason) as caught:
        ClientId("CO", "GOB", "1", value)
    str(caught.value).encode("utf-8", "strict")  # the message itself is valid text
    with pytest.raises(ValueError, match=reason):
        ServiceId(ClientId("CO", "GOB", "1", "SUB"), value)


def test_allowed_parts_stay_allowed() -> None:
    for value in ["CARPETA", "SUBSYSTEM_1", "v1.0", "a b", "...", "Registraduría", "x" * 255]:
        assert ClientId("CO", "GOB", "1", value).subsystem_code == value


@given(parts)
def test_a_part_is_always_one_path_segment(value: str) -> None:
    encoded = segment(value)
    assert "/" not in encoded
    assert encoded not in (".", "..")
    assert unquote(encoded) == value


@given(clients)
def test_client_text_round_trips(client: ClientId) -> None:
    assert ClientId.parse(str(client)) == client


@given(services)
def test_service_text_round_trips(service: ServiceId) -> None:
    assert ServiceId.parse(str(service)) == service


@given(clients)
def test_client_slug_is_catalog_safe_and_stable(client: ClientId) -> None:
    value = client.slug()
    assert len(value) <= 63
    assert slug.match(value), value
    assert ClientId.parse(str(client)).slug() == value


@given(services)
def test_service_slug_is_catalog_safe_and_stable(service: ServiceId) -> None:
    value = service.slug()
    assert len(value) <= 63
    assert slug.match(value), value
    assert ServiceId.parse(str(service)).slug() == value


@given(clients, clients)
def test_different_clients_have_different_slugs(a: ClientId, b: ClientId) -> None:
    if a != b:
        assert a.slug() != b.slug()


@given(services, services)
def test_different_services_have_different_slugs(a: ServiceId, b: ServiceId) -> None:
    if a != b:
        assert a.slug() != b.slug()


def test_slugs_readable_when_possible_hashed_when_altered() -> None:
    plain = ClientId("co", "gob", "8999990001", "carpeta")
    assert plain.slug() == "co-gob-8999990001-carpeta"
    altered = ClientId("CO", "GOB", "8999990001", "CARPETA")
    assert re.fullmatch(r"co-gob-8999990001-carpeta--[0-9a-f]{10}", altered.slug())
    # Known stable value: a slug is a catalog id and must never change between releases.
    assert altered.slug() == ClientId.parse("CO/GOB/8999990001/CARPETA").slug()


def test_slug_collision_candidates_differ() -> None:
    candidates = [
        ClientId("CO", "GOB", "1", "A"),
        ClientId("co", "gob", "1", "a"),
        ClientId("CO", "GOB", "1", "a"),
        ClientId("CO", "GOB", "1-a"),
        ClientId("CO", "GOB-1", "a"),
        ClientId("co", "gob", "1-a"),
        ClientId("co", "gob", "1", "a-b"),
        ClientId("co", "gob", "1", "a_b"),
        ClientId("co", "gob", "1", "a.b"),
        ClientId("co", "gob", "1", "x" * 80),
        ClientId("co", "gob", "1", "x" * 79 + "y"),
        ClientId("co", "gob", "1"),
    ]
    slugs = [client.slug() for client in candidates]
    assert len(set(slugs)) == len(slugs), slugs
    assert all(len(value) <= 63 and slug.match(value) for value in slugs)


def test_long_identifier_is_truncated_with_a_hash() -> None:
    long = ServiceId(ClientId("co", "gob", "1" * 40, "carpeta"), "consultar" * 5)
    value = long.slug()
    assert len(value) <= 63
    assert re.search(r"--[0-9a-f]{10}$", value)
    assert value.startswith("co-gob-1111")
