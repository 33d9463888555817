"""Outside text made safe: clean_text and the e-mail header rules, property-tested with
arbitrary strings (lone surrogates, controls, line breaks, look-alike encoded words)."""

from __future__ import annotations

import unicodedata
from email import message_from_bytes, policy

from hypothesis import given, settings
from hypothesis import strategies as st

from scd_monitor.sinks.base import DeliveryPayload
from scd_monitor.sinks.email import (
    SUBJECT_MAX,
    EmailSinkConfig,
    build_envelope,
    build_message,
    header_text,
)
from scd_monitor.sinks.text import MARK, clean_text

# Arbitrary code points, surrogates included, weighted towards the troublesome ones.
pieces = st.one_of(
    st.characters(codec=None, categories=None),
    st.sampled_from(
        [
            *["\n", "\r", "\r\n", "\x00", "\t", "\x1b", "\x7f", "\x85", "\u2028", "\u202e"],
            *["\ud800", "\udfff", "=?", "?=", "=?utf-8?q?=0D=0ABcc:_x@y?=", "ñ", "€", " "],
        ]
    ),
)
hostile = st.lists(pieces, max_size=120).map("".join)


def is_safe(text: str, *, one_line: bool) -> bool:
    allowed = "" if one_line else "\n\t"
    return not any(
        (unicodedata.category(ch) in ("Cc", "Cs") and ch not in allowed)
        or ch in "\u2028\u2029\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
        for ch in text
    )


@given(hostile, st.booleans(), st.none() | st.integers(min_value=32, max_value=300))
def test_clean_text_is_safe_bounded_encodable_and_stable(
    value: str, one_line: bool, limit: int | None
) -> None:
    out = clean_text(value, limit=limit, one_line=one_line)
    assert is_safe(out, one_line=one_line)
    out.encode("utf-8")  # never a lone surrogate
    if limit is not None:
        assert len(out) <= limit
    if one_line:
        assert out == out.strip() and "  " not in out
    assert clean_text(out, limit=limit, one_line=one_line) == out


def test_clean_text_replaces_and_marks() -> None:
    assert clean_text("Pres\ntador\r\nBcc: x\x00y", one_line=True) == "Pres tador␍ Bcc: x␀y"
    assert clean_text("a\r\nb\u2028c\x1b[2J\u202e", one_line=False) == f"a␍\nb\nc␛[2J{MARK}"
    assert clean_text("A\ud800B") == f"A{MARK}B"
    assert clean_text("x" * 50, limit=40) == "x" * 28 + "…[+22 chars]"
    assert clean_text(ValueError("boom\n")) == "boom\n"


@given(hostile)
def test_header_text_never_looks_like_an_encoded_word(value: str) -> None:
    out = header_text(value, limit=300)
    assert "=?" not in out and "\n" not in out and "\r" not in out and len(out) <= 300


CONFIG = EmailSinkConfig.model_validate(
    {
        "id": "correo",
        "kind": "email",
        "host": "127.0.0.1",
        "security": "none",
        "sender": "monitor@scd.example",
        "to": ["incidentes@mintic.example"],
    }
)


def payload(name: str) -> DeliveryPayload:
    return DeliveryPayload(
        idempotency_key="SCD-2026-000001.1.correo",
        incident="SCD-2026-000001",
        report_id="SCD-2026-000001.1",
        event="opened",
        audience="authority",
        recipient=None,
        subject=f"SCD-2026-000001 · Apertura · {name} / {name}",
        body=b"{}",
        text=f"Prestador: {name}\n",
        html=f"<p>Prestador: {name}</p>\n",
        attempt=1,
    )


@settings(max_examples=150, deadline=None)
@given(hostile)
def test_any_name_makes_a_valid_7bit_message_that_decodes_back(name: str) -> None:
    """Whatever the names, the message is built, is 7-bit ASCII with lines of at most 998
    octets, has exactly our headers, and its subject decodes back to the cleaned one."""
    envelope = build_envelope(CONFIG, payload(name))
    assert envelope.data.isascii() and not envelope.international
    head = envelope.data.split(b"\r\n\r\n", 1)[0].split(b"\r\n")
    assert all(len(line) <= (76 if b"=?utf-8?" in line else 998) for line in head)
    assert all(len(line) <= 998 for line in envelope.data.split(b"\r\n"))
    assert b"\n" not in envelope.data.replace(b"\r\n", b"")
    parsed = message_from_bytes(envelope.data, policy=policy.default)
    assert not parsed.defects
    expected = header_text(f"[SCD] {payload(name).subject}", limit=SUBJECT_MAX)
    assert parsed["Subject"] == expected
    assert sorted(parsed.keys()) == sorted(build_message(CONFIG, payload("x")).keys())
    text = parsed.get_body(preferencelist=("plain",))
    assert text is not None
    assert text.get_content().replace("\r\n", "\n") == clean_text(payload(name).text)
