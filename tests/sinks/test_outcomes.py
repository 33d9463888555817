"""Transient or permanent, against real servers on 127.0.0.1: every SMTP reply class and
webhook status of the classification table (docs/incidents.md, "Destinos"), and what a
hostile receiver can put in an error message."""

from __future__ import annotations

import asyncio
import unicodedata
from pathlib import Path

import pytest

from scd_monitor.errors import SinkError
from scd_monitor.sinks.base import DeliveryPayload
from scd_simulator.certs import CertificateAuthority
from scd_simulator.rawhttp import Connection, HttpServer, Request, Response
from tests.incidents.test_sinks import email_sink, payload, webhook
from tests.sinks.servers import Greeter, ScriptedSmtp, plain_email_sink


def printable(text: str) -> bool:
    return not any(unicodedata.category(c) in ("Cc", "Cs") for c in text)


async def outcome(sink: object, item: DeliveryPayload | None = None) -> SinkError | None:
    try:
        await sink.deliver(item or payload())  # type: ignore[attr-defined]
    except SinkError as exc:
        assert printable(str(exc)), repr(str(exc))
        return exc
    return None


# -- e-mail ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("script", "permanent"),
    [
        ({"rcpt": lambda _a: "550 5.1.1 no such user"}, True),
        ({"rcpt": lambda _a: "450 4.2.1 mailbox busy"}, False),
        ({"mail": "553 5.7.1 sender not allowed"}, True),
        ({"mail": "451 4.3.0 try later"}, False),
        ({"data": "554 5.6.0 message refused"}, True),
        ({"data": "452 4.3.1 insufficient storage"}, False),
    ],
)
async def test_smtp_replies(script: dict[str, object], permanent: bool) -> None:
    with ScriptedSmtp(**script) as smtp:  # type: ignore[arg-type]
        error = await outcome(plain_email_sink(smtp.port))
    assert error is not None and error.permanent is permanent
    assert not smtp.messages


@pytest.mark.parametrize(("code", "permanent"), [(550, True), (451, False)])
async def test_some_recipients_refused(code: int, permanent: bool) -> None:
    refuse = "nadie@mintic.example"
    with ScriptedSmtp(rcpt=lambda a: f"{code} refused" if a == refuse else None) as smtp:
        sink = plain_email_sink(smtp.port, to=["incidentes@mintic.example", refuse])
        error = await outcome(sink)
    assert error is not None and error.permanent is permanent
    assert "accepted for some recipients" in str(error) and refuse in str(error)
    assert smtp.envelopes == [("monitor@scd.example", ["incidentes@mintic.example"])]


@pytest.mark.parametrize(
    ("greeting", "permanent"), [(b"421 busy\r\n", False), (b"554 no\r\n", True)]
)
async def test_greetings(greeting: bytes, permanent: bool) -> None:
    async with Greeter(greeting) as server:
        error = await outcome(plain_email_sink(server.port))
    assert error is not None and error.permanent is permanent


@pytest.mark.parametrize(
    ("auth", "permanent"),
    [("454 4.7.0 Temporary authentication failure", False), ("535 5.7.8 bad credentials", True)],
)
async def test_authentication_failures(tmp_path: Path, auth: str, permanent: bool) -> None:
    ca = CertificateAuthority()
    cert, key = ca.issue(["127.0.0.1"]).write(tmp_path, "smtp")
    with ScriptedSmtp(cert=cert, key=key, auth=auth) as smtp:
        error = await outcome(email_sink(smtp.port, ca.write_cert(tmp_path / "ca.crt")))
    assert error is not None and error.permanent is permanent
    assert "authentication refused" in str(error) and "s3creto" not in str(error)


async def test_a_hostile_reply_is_cleaned_and_bounded() -> None:
    reply = "550 5.1.1 " + "no\x00such\x1b[2J\x7fuser " * 100
    with ScriptedSmtp(rcpt=lambda _a: reply) as smtp:
        error = await outcome(plain_email_sink(smtp.port))
    assert error is not None and error.permanent
    assert "\x00" not in str(error) and "\x1b" not in str(error) and len(str(error)) < 600


@pytest.mark.parametrize(
    "recipient",
    ["soporte@prestador.example\r\nRCPT TO:<x@y>", "a,b@c", "", "sin-arroba", "a@b@c", "x\x00@y"],
)
async def test_an_unusable_recipient_is_permanent_and_nothing_is_sent(recipient: str) -> None:
    with ScriptedSmtp() as smtp:
        sink = plain_email_sink(smtp.port, to=[])
        error = await outcome(sink, payload(audience="provider", recipient=recipient or None))
    assert error is not None and error.permanent
    assert not smtp.envelopes


@pytest.mark.parametrize("offered", [True, False])
async def test_a_non_ascii_address_needs_smtputf8(offered: bool) -> None:
    with ScriptedSmtp(smtputf8=offered) as smtp:
        error = await outcome(plain_email_sink(smtp.port, to=["soporte@ñandú.example"]))
    if offered:
        assert error is None and smtp.envelopes[0][1] == ["soporte@ñandú.example"]
    else:
        assert error is not None and error.permanent and "SMTPUTF8" in str(error)


async def test_a_refused_connection_is_transient() -> None:
    from tests.incidents.receivers import free_port

    error = await outcome(plain_email_sink(free_port()))
    assert error is not None and not error.permanent


# -- webhook --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "permanent"),
    [(400, True), (410, True), (422, True), (409, False), (425, False), (502, False)],
)
async def test_more_webhook_statuses(status: int, permanent: bool) -> None:
    async def handler(_r: Request, _c: Connection) -> Response:
        return Response(status, b"nope")

    async with HttpServer(handler, "127.0.0.1", 0) as server:
        error = await outcome(webhook(f"http://127.0.0.1:{server.port}/x"))
    assert error is not None and error.permanent is permanent


async def test_a_hostile_error_body_is_cleaned_and_bounded() -> None:
    body = (
        "token=abc \x00\x1b[31m\r\nX-Injected: 1 \ud800".encode("utf-8", "surrogatepass")
    ) * 9000

    async def handler(_r: Request, _c: Connection) -> Response:
        return Response(400, body, headers=(("Retry-After", "9" * 40),))

    async with HttpServer(handler, "127.0.0.1", 0) as server:
        error = await outcome(webhook(f"http://127.0.0.1:{server.port}/x"))
    assert error is not None and error.permanent
    text = str(error)
    assert len(text) < 400 and "\x00" not in text and "\r" not in text


async def test_a_2xx_answer_is_not_read_beyond_its_status() -> None:
    """A receiver that accepts and then streams for ever: delivered (not a timeout that
    would send the report again and again)."""

    async def endless(_r: Request, conn: Connection) -> None:
        conn.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
        while not conn.closed:
            await conn.send(b"400\r\n" + b"x" * 1024 + b"\r\n")
            await asyncio.sleep(0.01)

    async with HttpServer(endless, "127.0.0.1", 0) as server:
        error = await outcome(webhook(f"http://127.0.0.1:{server.port}/x", timeout="2s"))
    assert error is None


async def test_our_own_values_always_make_valid_headers() -> None:
    """Our own values go into headers as ASCII, whatever they hold."""
    async with HttpServer(lambda _r, _c: _ok(), "127.0.0.1", 0) as server:
        item = payload(incident="SCD-2026-000001\r\nX-Evil: 1", event="apertura ñ")
        error = await outcome(webhook(f"http://127.0.0.1:{server.port}/x"), item)
    assert error is None


async def _ok() -> Response:
    return Response(200)


@pytest.mark.parametrize(
    ("retry_after", "seconds"),
    [("9" * 40, 3600), ("7", 7), ("Wed, 21 Oct 2015 07:28:00 GMT", 0), ("mañana", None)],
)
async def test_a_hostile_retry_after_is_bounded(retry_after: str, seconds: int | None) -> None:
    from scd_monitor.sinks.base import RetryLater

    async def handler(_r: Request, _c: Connection) -> Response:
        value = retry_after.encode().decode("latin-1")  # UTF-8 bytes on the wire
        return Response(503, b"", headers=(("Retry-After", value),))

    async with HttpServer(handler, "127.0.0.1", 0) as server:
        error = await outcome(webhook(f"http://127.0.0.1:{server.port}/x"))
    assert error is not None and not error.permanent
    if seconds is None:
        assert not isinstance(error, RetryLater)
    else:
        assert isinstance(error, RetryLater) and error.retry_after.total_seconds() == seconds
