"""Each sink against a real local receiver: webhook (HttpServer), e-mail (aiosmtpd with
STARTTLS and AUTH), file drop."""

from __future__ import annotations

import asyncio
import json
import os
import time
from datetime import timedelta
from pathlib import Path

import pytest

from scd_monitor.errors import SinkError
from scd_monitor.sinks import EmailSinkConfig, FileSinkConfig, WebhookSinkConfig, build_sinks
from scd_monitor.sinks.base import DeliveryPayload, RetryLater
from scd_monitor.sinks.email import EmailSink
from scd_monitor.sinks.file import FileSink
from scd_monitor.sinks.webhook import WebhookSink, legacy_signature, sign
from scd_simulator.certs import CertificateAuthority
from scd_simulator.rawhttp import Connection, HttpServer, Request, Response
from tests.incidents.receivers import SECRET, SmtpServer, WebhookReceiver, free_port

SMTP_PASSWORD = "s3creto-smtp"
BODY = json.dumps({"report_id": "SCD-2026-000001.1", "texto": "Caída del servicio"}).encode()


def payload(**overrides: object) -> DeliveryPayload:
    values: dict[str, object] = {
        "idempotency_key": "SCD-2026-000001.1.sink",
        "incident": "SCD-2026-000001",
        "report_id": "SCD-2026-000001.1",
        "event": "opened",
        "audience": "authority",
        "recipient": None,
        "subject": "SCD-2026-000001 · Apertura · Crítica",
        "body": BODY,
        "text": "Reporte de incidente — Apertura\n",
        "html": "<p>Reporte de incidente — Apertura</p>\n",
        "attempt": 1,
    }
    values.update(overrides)
    return DeliveryPayload(**values)  # type: ignore[arg-type]


def webhook(url: str, **extra: object) -> WebhookSink:
    os.environ["TEST_SCD_WEBHOOK_SECRET"] = SECRET
    from scd_monitor.catalog.incidents import resolve_secrets
    from tests.incidents.conftest import config

    cfg = config(
        sinks=[
            {
                "id": "mintic",
                "kind": "webhook",
                "url": url,
                "secret": {"env": "TEST_SCD_WEBHOOK_SECRET"},
                **extra,
            }
        ],
        routes=[{"audience": "authority", "sinks": ["mintic"]}],
    )
    resolved = resolve_secrets(cfg, Path())
    sink = resolved.sinks[0]
    assert isinstance(sink, WebhookSinkConfig)
    return WebhookSink(sink)


# -- webhook ------------------------------------------------------------------------


async def test_webhook_signs_the_exact_body_and_sends_the_key() -> None:
    async with WebhookReceiver() as receiver:
        await webhook(receiver.url).deliver(payload())
    key = "SCD-2026-000001.1.sink"
    assert receiver.bodies[key] == BODY and receiver.bad_signatures == 0
    headers = receiver.headers[key]
    assert headers["webhook-id"] == "SCD-2026-000001_1_sink"
    timestamp = int(headers["webhook-timestamp"])
    assert abs(timestamp - time.time()) < 60
    assert headers["webhook-signature"] == sign(
        SECRET.encode(), "SCD-2026-000001_1_sink", timestamp, BODY
    )
    assert headers["idempotency-key"] == key
    assert headers["x-scd-signature"] == legacy_signature(SECRET.encode(), BODY)  # deprecated
    assert headers["x-scd-event"] == "opened" and headers["x-scd-attempt"] == "1"
    assert headers["content-type"].startswith("application/json")


@pytest.mark.parametrize(
    ("status", "permanent", "retry_after"),
    [
        (500, False, None),
        (503, False, None),
        (404, True, None),
        (401, True, None),
        (301, True, None),
        (429, False, "7"),
        (408, False, None),
    ],
)
async def test_webhook_statuses(status: int, permanent: bool, retry_after: str | None) -> None:
    async def handler(_r: Request, _c: Connection) -> Response:
        headers = (("Retry-After", retry_after),) if retry_after else ()
        return Response(status, b"nope", headers=headers)

    async with HttpServer(handler, "127.0.0.1", 0) as server:
        with pytest.raises(SinkError) as caught:
            await webhook(f"http://127.0.0.1:{server.port}/x").deliver(payload())
    assert caught.value.permanent is permanent
    assert f"HTTP {status}" in str(caught.value)
    if retry_after:
        assert isinstance(caught.value, RetryLater)
        assert caught.value.retry_after == timedelta(seconds=7)


async def test_webhook_timeouts_and_refused_connections_are_transient() -> None:
    async def slow(_r: Request, _c: Connection) -> Response:
        await asyncio.sleep(5)
        return Response(200)

    async with HttpServer(slow, "127.0.0.1", 0) as server:
        with pytest.raises(SinkError) as caught:
            await webhook(f"http://127.0.0.1:{server.port}/x", timeout="300ms").deliver(payload())
    assert not caught.value.permanent and "no answer" in str(caught.value)
    with pytest.raises(SinkError) as refused:
        await webhook(f"http://127.0.0.1:{free_port()}/x?token=abc").deliver(payload())
    assert not refused.value.permanent
    assert "abc" not in str(refused.value)


async def test_webhook_over_https_with_the_catalog_ca(tmp_path: Path) -> None:
    import ssl

    ca = CertificateAuthority()
    cert, key = ca.issue(["127.0.0.1"]).write(tmp_path, "server")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    receiver = WebhookReceiver()
    async with HttpServer(receiver.handle, "127.0.0.1", 0, ssl_context=context) as server:
        url = f"https://127.0.0.1:{server.port}/x"
        with pytest.raises(SinkError) as untrusted:
            await webhook(url).deliver(payload())
        assert not untrusted.value.permanent
        ca_file = ca.write_cert(tmp_path / "ca.crt")
        await webhook(url, tls={"ca_file": str(ca_file)}).deliver(payload())
    assert list(receiver.applied) == ["SCD-2026-000001.1.sink"]


# -- e-mail ---------------------------------------------------------------------------


@pytest.fixture
def tls_files(tmp_path: Path) -> tuple[Path, Path, Path]:
    ca = CertificateAuthority()
    cert, key = ca.issue(["127.0.0.1"]).write(tmp_path, "smtp")
    return cert, key, ca.write_cert(tmp_path / "ca.crt")


def email_sink(port: int, ca: Path, *, password: str = SMTP_PASSWORD, **extra: object) -> EmailSink:
    from pydantic import SecretStr

    data: dict[str, object] = {
        "id": "correo",
        "kind": "email",
        "host": "127.0.0.1",
        "port": port,
        "username": "monitor",
        "password": {"env": "UNUSED"},
        "sender": "monitor@scd.example",
        "to": ["incidentes@mintic.example"],
        "tls": {"ca_file": str(ca)},
        "timeout": "5s",
    }
    data.update(extra)
    cfg = EmailSinkConfig.model_validate(data)
    if cfg.password is not None:
        cfg = cfg.model_copy(
            update={"password": cfg.password.model_copy(update={"value": SecretStr(password)})}
        )
    return EmailSink(cfg)


@pytest.mark.parametrize("mechanism", ["PLAIN", "LOGIN"])
async def test_email_with_starttls_auth_text_html_and_json(
    tls_files: tuple[Path, Path, Path], mechanism: str
) -> None:
    cert, key, ca = tls_files
    other = ("LOGIN",) if mechanism == "PLAIN" else ("PLAIN",)
    with SmtpServer(cert, key, exclude=other) as smtp:
        await email_sink(smtp.port, ca).deliver(payload())
    assert smtp.auth_mechanisms == [mechanism]
    (message,) = smtp.messages
    assert message["Message-ID"] == "<SCD-2026-000001.1.sink@scd-monitor>"
    assert message["X-SCD-Idempotency-Key"] == "SCD-2026-000001.1.sink"
    assert message["To"] == "incidentes@mintic.example"
    assert message["Subject"].startswith("[SCD] SCD-2026-000001")
    text = message.get_body(preferencelist=("plain",))
    html = message.get_body(preferencelist=("html",))
    assert text is not None and "Apertura" in text.get_content()
    assert html is not None and "<p>" in html.get_content()
    (attachment,) = list(message.iter_attachments())
    assert attachment.get_content_type() == "application/json"
    assert attachment.get_filename() == "SCD-2026-000001.1.json"
    assert attachment.get_content() == BODY


async def test_email_to_the_provider_contact(tls_files: tuple[Path, Path, Path]) -> None:
    cert, key, ca = tls_files
    with SmtpServer(cert, key) as smtp:
        sink = email_sink(smtp.port, ca, to=[])
        await sink.deliver(payload(audience="provider", recipient="soporte@prestador.example"))
    assert smtp.envelopes[0].rcpt_tos == ["soporte@prestador.example"]


async def test_email_failures(
    tls_files: tuple[Path, Path, Path], caplog: pytest.LogCaptureFixture
) -> None:
    cert, key, ca = tls_files
    with SmtpServer(cert, key) as smtp:
        with pytest.raises(SinkError) as bad:
            await email_sink(smtp.port, ca, password="wrong-password").deliver(payload())
        assert bad.value.permanent and "authentication refused" in str(bad.value)
        assert "wrong-password" not in str(bad.value) and "wrong-password" not in caplog.text
    with SmtpServer(cert, key, starttls=False) as plain:
        with pytest.raises(SinkError) as no_tls:
            await email_sink(plain.port, ca).deliver(payload())
        assert no_tls.value.permanent and "STARTTLS" in str(no_tls.value)
    with pytest.raises(SinkError) as refused:
        await email_sink(free_port(), ca).deliver(payload())
    assert not refused.value.permanent


def test_email_refuses_credentials_without_tls() -> None:
    with pytest.raises(ValueError, match="never sent without TLS"):
        EmailSinkConfig.model_validate(
            {
                "id": "x",
                "kind": "email",
                "host": "h",
                "security": "none",
                "username": "u",
                "password": {"env": "P"},
                "sender": "a@b.c",
            }
        )


# -- file drop ----------------------------------------------------------------------


async def test_file_sink_writes_atomically_and_never_twice(tmp_path: Path) -> None:
    out = tmp_path / "reportes"
    sink = FileSink(
        FileSinkConfig.model_validate(
            {
                "id": "archivo",
                "kind": "file",
                "directory": str(out),
                "formats": ["json", "html", "txt"],
            }
        )
    )
    await sink.deliver(payload())
    names = sorted(p.name for p in out.iterdir())
    assert names == [f"SCD-2026-000001.1.sink.{e}" for e in ("html", "json", "txt")]
    assert (out / "SCD-2026-000001.1.sink.json").read_bytes() == BODY
    (out / "SCD-2026-000001.1.sink.json").write_bytes(b"the first copy")
    await sink.deliver(payload(body=b"{}"))  # a retry after a crash: already there
    assert (out / "SCD-2026-000001.1.sink.json").read_bytes() == b"the first copy"
    assert not [p for p in out.iterdir() if p.name.startswith(".")]


async def test_file_sink_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    sink = FileSink(FileSinkConfig(id="a", kind="file", directory=blocker / "sub"))
    with pytest.raises(SinkError) as transient:
        await sink.deliver(payload())
    assert not transient.value.permanent

    def denied(*_a: object, **_k: object) -> None:
        raise PermissionError("denied")

    monkeypatch.setattr(Path, "mkdir", denied)
    sink = FileSink(FileSinkConfig(id="a", kind="file", directory=tmp_path / "locked"))
    with pytest.raises(SinkError) as caught:
        await sink.deliver(payload())
    assert caught.value.permanent


def test_build_sinks_covers_every_kind(tmp_path: Path) -> None:
    from typing import get_args

    from scd_monitor.sinks import SINK_KINDS, SinkConfig

    union = get_args(get_args(SinkConfig)[0])
    assert sorted(m.model_fields["kind"].annotation.__args__[0] for m in union) == sorted(
        SINK_KINDS
    )
    built = build_sinks([FileSinkConfig(id="f", kind="file", directory=tmp_path)])
    assert list(built) == ["f"] and built["f"].name == "f"
