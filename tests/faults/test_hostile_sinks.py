"""Issue 12, items 7 and 10: hostile names in e-mail headers, refusals that will never
succeed, and replayable webhooks — against real servers on 127.0.0.1 (aiosmtpd, an HTTP
receiver that verifies Standard Webhooks signatures), through the daemon's own outbox
(IncidentService → scd_deliveries in SQLite → OutboxDispatcher → the real sinks).

Each test fails on the code before the fix:

- (a) a provider name with a line break made the e-mail sink raise ``ValueError`` while
  building the message; the dispatcher took it for a transient failure and retried it for
  ever (never mailed). A name that looks like an RFC 2047 encoded word injected a header.
- (b) a refusal that can never succeed (a data error in a sink) was retried for ever. (A
  550 for the recipient was already permanent: that part is a guard.)
- (c) the webhook had no ``webhook-id``/``-timestamp``/``-signature``: nothing a receiver
  following Standard Webhooks could verify, and a captured request verified for ever.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import httpx
import pytest

from scd_monitor.catalog.incidents import BackoffConfig, OutboxConfig, resolve_secrets
from scd_monitor.incidents.observe import Observations
from scd_monitor.incidents.outbox import OutboxDispatcher
from scd_monitor.incidents.report import subject_of
from scd_monitor.incidents.service import IncidentService
from scd_monitor.sinks import build_sinks
from scd_monitor.sinks.base import DeliveryPayload
from scd_monitor.sinks.email import SUBJECT_MAX, header_text
from scd_monitor.sinks.text import clean_text
from scd_monitor.store import Store
from scd_monitor.store.outbox import DeliveryRow, OutboxRepository
from scd_simulator.rawhttp import Connection, HttpServer, Request, Response
from tests.incidents.conftest import Recorder, SettableClock, config, outage
from tests.sinks.servers import ScriptedSmtp, plain_email_sink

OUTBOX = OutboxConfig(
    lease=timedelta(seconds=60),
    backoff=BackoffConfig(initial=timedelta(seconds=1), max=timedelta(seconds=4), jitter=0.0),
)
HOSTILE = (
    "Prestador\nBcc: intruso@atacante.example\r\nX-Falso: 1\x00 "
    "=?utf-8?q?=0D=0ABcc:_intruso@atacante.example?= " + "Ñandú " * 1700  # > 10 kB
)
OLD_KEY = "clave-anterior-de-prueba-0123456789"
NEW_KEY = "whsec_" + base64.b64encode(bytes(range(32))).decode()


@pytest.fixture
def clock() -> SettableClock:
    return SettableClock()


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = Store(f"sqlite:///{tmp_path}/faults.db")
    s.create_schema()
    yield s
    s.dispose()


def hostile_outage(clock: SettableClock, name: str, **kw: Any) -> Observations:
    obs = outage(clock.now(), **kw)
    svc = replace(obs.services[0], provider_name=name, service_name=name)
    return replace(obs, services=(svc,))


def wire(
    store: Store,
    clock: SettableClock,
    tmp_path: Path,
    *,
    sinks: list[dict[str, Any]],
    routes: list[dict[str, Any]],
) -> tuple[IncidentService, OutboxDispatcher]:
    """The daemon's incident graph over ``store``: the service and the dispatcher, with
    the catalog's sinks built as the daemon builds them (secrets read)."""
    cfg = resolve_secrets(config(sinks=sinks, routes=routes, resolve_after="1h"), tmp_path)
    service = IncidentService(store, cfg, clock=clock, holder="faults")
    dispatcher = OutboxDispatcher(store, build_sinks(cfg.sinks), clock, config=OUTBOX)
    return service, dispatcher


def rows(store: Store) -> dict[str, DeliveryRow]:
    return {r.idempotency_key: r for r in OutboxRepository(store).deliveries()}


# -- (a) hostile names, through a real SMTP server -------------------------------------


def email_sink_config(port: int, **extra: Any) -> dict[str, Any]:
    return {
        "id": "correo",
        "kind": "email",
        "host": "127.0.0.1",
        "port": port,
        "security": "none",
        "sender": "monitor@scd.example",
        "to": ["incidentes@mintic.example"],
        "timeout": "5s",
        **extra,
    }


def assert_only_our_headers(message: EmailMessage) -> None:
    assert sorted(message.keys()) == sorted(
        [
            "Subject",
            "From",
            "To",
            "Date",
            "Message-ID",
            "X-SCD-Idempotency-Key",
            "X-SCD-Incident",
            "X-SCD-Report",
            "X-SCD-Event",
            "X-SCD-Audience",
            "Content-Language",
            "MIME-Version",
            "Content-Type",
        ]
    )
    assert not message.defects


async def test_a_hostile_member_name_is_mailed_once_with_valid_headers(
    store: Store, clock: SettableClock, tmp_path: Path
) -> None:
    with ScriptedSmtp() as smtp:
        service, dispatcher = wire(
            store,
            clock,
            tmp_path,
            sinks=[email_sink_config(smtp.port)],
            routes=[{"audience": "authority", "sinks": ["correo"]}],
        )
        service.evaluate(hostile_outage(clock, HOSTILE))
        stats = await dispatcher.run_once()
    assert (stats.claimed, stats.delivered) == (1, 1), rows(store)
    ((key, row),) = rows(store).items()
    assert (row.status, row.attempts) == ("delivered", 1)
    ((_sender, recipients),) = smtp.envelopes
    assert recipients == ["incidentes@mintic.example"]  # no Bcc smuggled in
    (message,) = smtp.messages
    assert_only_our_headers(message)
    assert smtp.raw[0].isascii()
    subject = message["Subject"]
    assert "\n" not in subject and "\x00" not in subject and len(subject) <= SUBJECT_MAX
    assert subject.startswith("[SCD] SCD-2026-000001 · Apertura") and subject.endswith(" chars]")
    assert "Prestador Bcc: intruso@atacante.example␍ X-Falso: 1␀ = ?utf-8?q?" in subject
    document = json.loads(_attachment(message))
    assert subject == header_text(f"[SCD] {subject_of(document)}", limit=SUBJECT_MAX)
    text = message.get_body(preferencelist=("plain",))
    assert text is not None and "Ñandú Ñandú" in text.get_content()
    assert dispatcher.outcomes[("correo", "delivered")] == 1
    assert message["Message-ID"] == f"<{key}@scd-monitor>"


def _attachment(message: EmailMessage) -> bytes:
    (part,) = list(message.iter_attachments())
    content = part.get_content()
    assert isinstance(content, bytes)
    return content


async def test_lone_surrogates_nul_and_10_kb_reach_the_mailbox_cleaned() -> None:
    """The sink alone: text the store could not even hold today (lone surrogates) must
    still make a valid message, never an exception."""
    name = "Prestador \udfff\ud800\x00\r\n" + "x" * 10_240  # not a pair: two lone ones
    payload = DeliveryPayload(
        idempotency_key="SCD-2026-000001.1.correo",
        incident="SCD-2026-000001",
        report_id="SCD-2026-000001.1",
        event="opened",
        audience="authority",
        recipient=None,
        subject=f"SCD-2026-000001 · Apertura · {name} / {name}",
        body=b"{}",
        text=f"Prestador: {name}\n",
        html=f"<p>{name}</p>",
        attempt=1,
    )
    with ScriptedSmtp() as smtp:
        await plain_email_sink(smtp.port).deliver(payload)
    (message,) = smtp.messages
    assert_only_our_headers(message)
    assert message["Subject"] == header_text(f"[SCD] {payload.subject}", limit=SUBJECT_MAX)
    assert "Prestador \ufffd\ufffd␀␍ xxx" in message["Subject"]
    text = message.get_body(preferencelist=("plain",))
    assert text is not None
    assert text.get_content().replace("\r\n", "\n") == clean_text(payload.text)


# -- (b) a refusal that will never succeed --------------------------------------------


async def test_a_550_recipient_fails_once_and_the_others_are_mailed(
    store: Store, clock: SettableClock, tmp_path: Path
) -> None:
    refused = "nadie@prestador-0.example"
    asked: list[str] = []

    def rcpt(address: str) -> str | None:
        asked.append(address)
        return "550 5.1.1 <nadie@prestador-0.example>: no such user" if address == refused else None

    with ScriptedSmtp(rcpt=rcpt) as smtp:
        service, dispatcher = wire(
            store,
            clock,
            tmp_path,
            sinks=[email_sink_config(smtp.port, id="prestadores", to=[])],
            routes=[{"audience": "provider", "sinks": ["prestadores"]}],
        )
        for i in range(3):
            contact = refused if i == 0 else f"soporte@prestador-{i}.example"
            service.evaluate(
                hostile_outage(clock, f"Prestador {i}", provider=f"p{i}", contact=contact)
            )
        first = await dispatcher.run_once()
        for _ in range(5):  # days go by: the refused one is never tried again by itself
            clock.advance(timedelta(days=1))
            assert (await dispatcher.run_once()).claimed == 0
    assert (first.claimed, first.delivered, first.failed, first.retried) == (3, 2, 1, 0)
    by_status = {r.status: r for r in rows(store).values() if r.status != "delivered"}
    failed = by_status["failed"]
    assert failed.attempts == 1 and failed.recipient == refused
    assert failed.last_error is not None and "550" in failed.last_error
    assert asked.count(refused) == 1
    assert sorted(r for _, rs in smtp.envelopes for r in rs) == [
        "soporte@prestador-1.example",
        "soporte@prestador-2.example",
    ]
    assert dispatcher.outcomes[("prestadores", "permanent_error")] == 1
    assert dispatcher.outcomes[("prestadores", "delivered")] == 2
    assert not dispatcher.outcomes[("prestadores", "transient_error")]
    stats = OutboxRepository(store).stats(clock.now())
    assert stats.by_sink_status == {("prestadores", "failed"): 1, ("prestadores", "delivered"): 2}
    assert stats.backlog == 0


async def test_a_payload_a_sink_cannot_handle_fails_once_not_for_ever(
    store: Store, clock: SettableClock, tmp_path: Path
) -> None:
    """A sink tripping on the payload itself (the old e-mail sink's ``ValueError: Header
    values may not contain linefeed…``) fails the same way on every attempt: permanent,
    kept, visible, re-queued by ``deliveries --retry``."""
    service, _ = wire(
        store,
        clock,
        tmp_path,
        sinks=[{"id": "fake", "kind": "file", "directory": str(tmp_path / "x")}],
        routes=[{"audience": "authority", "sinks": ["fake"]}],
    )
    service.evaluate(hostile_outage(clock, "Prestador\nBcc: x@y"))
    crash = ValueError("Header values may not contain linefeed or carriage return characters")
    sink = Recorder(fail=[crash, crash])
    dispatcher = OutboxDispatcher(store, {"fake": sink}, clock, config=OUTBOX)
    assert (await dispatcher.run_once()).failed == 1
    clock.advance(timedelta(hours=1))
    assert (await dispatcher.run_once()).claimed == 0
    (row,) = rows(store).values()
    assert (row.status, row.attempts) == ("failed", 1)
    assert dispatcher.outcomes[("fake", "permanent_error")] == 1
    assert await dispatcher.retry(row.id)  # the operator's --retry: one more attempt
    assert (await dispatcher.run_once()).failed == 1
    assert rows(store)[row.idempotency_key].attempts == 2


# -- (c) webhooks a receiver can verify, and cannot be replayed ------------------------


def standard_verify(
    keys: list[bytes], headers: Mapping[str, str], body: bytes, now: float
) -> str | None:
    """The Standard Webhooks receiver's check, written from the specification (not from
    the sink's code): id, timestamp within 5 minutes, one matching ``v1`` signature."""
    msg_id = headers.get("webhook-id")
    stamp = headers.get("webhook-timestamp")
    signature = headers.get("webhook-signature")
    if not (msg_id and stamp and signature):
        return "missing headers"
    try:
        ts = int(stamp)
    except ValueError:
        return "bad timestamp"
    if ts < now - 300:
        return "too old"
    if ts > now + 300:
        return "too new"
    signed = msg_id.encode() + b"." + stamp.encode() + b"." + body
    wanted = [hmac.new(k, signed, hashlib.sha256).digest() for k in keys]
    for versioned in signature.split(" "):
        version, _, value = versioned.partition(",")
        if version == "v1":
            given = base64.b64decode(value)
            if any(hmac.compare_digest(given, w) for w in wanted):
                return None
    return "no matching signature"


def key_bytes(secret: str) -> bytes:
    if secret.startswith("whsec_"):
        return base64.b64decode(secret[len("whsec_") :])
    return secret.encode()


@dataclass
class StandardReceiver:
    """A webhook receiver as docs/incidents.md tells MinTIC to write one: verify, refuse
    old or new timestamps, apply each ``webhook-id`` once; then answer ``answer(n)`` for
    the n-th verified request (200 by default)."""

    keys: list[bytes]
    answer: Callable[[int], int] = lambda _n: 200
    skew: float = 0.0
    """Seconds added to the receiver's clock (to replay "later")."""
    verified: int = 0
    rejected: list[str] = field(default_factory=list)
    applied: list[str] = field(default_factory=list)
    duplicates: int = 0
    captured: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    server: HttpServer | None = None

    async def handle(self, request: Request, _conn: Connection) -> Response:
        self.captured.append((dict(request.headers), request.body))
        problem = standard_verify(self.keys, request.headers, request.body, time.time() + self.skew)
        if problem is not None:
            self.rejected.append(problem)
            return Response(401, problem.encode())
        status = self.answer(self.verified)
        self.verified += 1
        if status >= 300:
            return Response(status, b"no")
        msg_id = request.headers["webhook-id"]
        if msg_id in self.applied:
            self.duplicates += 1
        else:
            self.applied.append(msg_id)
        return Response(status)

    async def __aenter__(self) -> StandardReceiver:
        self.server = HttpServer(self.handle, "127.0.0.1", 0)
        await self.server.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.server is not None
        await self.server.stop()

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.port}/scd/incidentes"

    async def replay(self, headers: Mapping[str, str], body: bytes) -> int:
        """Send a captured request again, byte for byte (what an eavesdropper would do)."""
        skip = {"host", "content-length", "connection", "accept-encoding", "accept"}
        async with httpx.AsyncClient(timeout=5) as client:
            response = await client.post(
                self.url,
                content=body,
                headers={k: v for k, v in headers.items() if k not in skip},
            )
        return response.status_code


def webhook_config(sink_id: str, url: str, env: str, **extra: Any) -> dict[str, Any]:
    return {"id": sink_id, "kind": "webhook", "url": url, "secret": {"env": env}, **extra}


async def test_a_delivery_verifies_once_and_a_replay_is_refused(
    store: Store, clock: SettableClock, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TEST_FAULTS_WH_KEY", NEW_KEY)
    async with StandardReceiver([key_bytes(NEW_KEY)]) as receiver:
        service, dispatcher = wire(
            store,
            clock,
            tmp_path,
            sinks=[webhook_config("mintic", receiver.url, "TEST_FAULTS_WH_KEY")],
            routes=[{"audience": "authority", "sinks": ["mintic"]}],
        )
        service.evaluate(hostile_outage(clock, "Prestador A"))
        assert (await dispatcher.run_once()).delivered == 1
        assert receiver.rejected == [] and receiver.verified == 1
        ((headers, body),) = receiver.captured
        assert headers["webhook-id"] == "SCD-2026-000001_1_mintic"
        assert headers["idempotency-key"] == "SCD-2026-000001.1.mintic"

        # Replayed at once: it verifies, and the receiver drops it by its id.
        assert await receiver.replay(headers, body) == 200
        assert receiver.applied == ["SCD-2026-000001_1_mintic"] and receiver.duplicates == 1

        # Replayed after the tolerance: refused, whatever the receiver remembers.
        receiver.skew = 301
        assert await receiver.replay(headers, body) == 401
        assert receiver.rejected[-1] == "too old"
        receiver.skew = 0

        # A fresh timestamp on a captured signature: refused.
        fresh = {**headers, "webhook-timestamp": str(int(time.time()))}
        if fresh["webhook-timestamp"] == headers["webhook-timestamp"]:
            fresh["webhook-timestamp"] = str(int(time.time()) + 1)
        assert await receiver.replay(fresh, body) == 401
        assert receiver.rejected[-1] == "no matching signature"

        # Another body, or another id, under a captured signature: refused.
        assert await receiver.replay(headers, body.replace(b"Prestador A", b"Prestador B")) == 401
        other = {**headers, "webhook-id": "SCD-2026-000002_1_mintic"}
        assert await receiver.replay(other, body) == 401
        assert receiver.applied == ["SCD-2026-000001_1_mintic"]


async def test_during_a_rotation_old_and_new_keys_both_verify(
    store: Store, clock: SettableClock, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TEST_FAULTS_WH_NEW", NEW_KEY)
    monkeypatch.setenv("TEST_FAULTS_WH_OLD", OLD_KEY)
    async with (
        StandardReceiver([key_bytes(OLD_KEY)]) as still_old,
        StandardReceiver([key_bytes(NEW_KEY)]) as already_new,
        StandardReceiver([key_bytes(OLD_KEY)]) as too_late,
    ):
        rotating = {
            "previous_secrets": [{"env": "TEST_FAULTS_WH_OLD", "until": "2999-01-01T00:00:00Z"}]
        }
        expired = {
            "previous_secrets": [{"env": "TEST_FAULTS_WH_OLD", "until": "2001-01-01T00:00:00Z"}]
        }
        service, dispatcher = wire(
            store,
            clock,
            tmp_path,
            sinks=[
                webhook_config("a", still_old.url, "TEST_FAULTS_WH_NEW", **rotating),
                webhook_config("b", already_new.url, "TEST_FAULTS_WH_NEW", **rotating),
                webhook_config("c", too_late.url, "TEST_FAULTS_WH_NEW", **expired),
            ],
            routes=[{"audience": "authority", "sinks": ["a", "b", "c"]}],
        )
        service.evaluate(hostile_outage(clock, "Prestador A"))
        stats = await dispatcher.run_once()
    assert (stats.delivered, stats.failed) == (2, 1)
    assert still_old.verified == 1 and already_new.verified == 1
    for receiver in (still_old, already_new):
        ((headers, _),) = receiver.captured
        assert len(headers["webhook-signature"].split(" ")) == 2
    assert too_late.rejected == ["no matching signature"]  # 401: a permanent failure
    failed = rows(store)["SCD-2026-000001.1.c"]
    assert (failed.status, failed.attempts) == ("failed", 1) and "HTTP 401" in (
        failed.last_error or ""
    )
    for receiver in (still_old, already_new, too_late):
        for headers, _ in receiver.captured:
            assert OLD_KEY not in str(headers) and NEW_KEY not in str(headers)


async def test_a_400_fails_after_one_attempt_and_a_503_is_retried(
    store: Store, clock: SettableClock, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TEST_FAULTS_WH_KEY", NEW_KEY)
    keys = [key_bytes(NEW_KEY)]
    async with (
        StandardReceiver(keys, answer=lambda _n: 400) as refusing,
        StandardReceiver(keys, answer=lambda n: 503 if n < 2 else 200) as busy,
    ):
        service, dispatcher = wire(
            store,
            clock,
            tmp_path,
            sinks=[
                webhook_config("refusing", refusing.url, "TEST_FAULTS_WH_KEY"),
                webhook_config("busy", busy.url, "TEST_FAULTS_WH_KEY"),
            ],
            routes=[{"audience": "authority", "sinks": ["refusing", "busy"]}],
        )
        service.evaluate(hostile_outage(clock, "Prestador A"))
        first = await dispatcher.run_once()
        assert (first.failed, first.retried) == (1, 1)
        for _ in range(4):
            clock.advance(timedelta(seconds=5))
            await dispatcher.run_once()
    assert refusing.verified == 1 and not refusing.rejected  # a verified request, refused
    refused = rows(store)["SCD-2026-000001.1.refusing"]
    assert (refused.status, refused.attempts) == ("failed", 1)
    assert refused.last_error is not None and "HTTP 400" in refused.last_error
    delivered = rows(store)["SCD-2026-000001.1.busy"]
    assert (delivered.status, delivered.attempts) == ("delivered", 3)
    assert busy.verified == 3 and not busy.rejected and busy.applied == ["SCD-2026-000001_1_busy"]
    ids = {h["webhook-id"] for h, _ in busy.captured}
    assert ids == {"SCD-2026-000001_1_busy"}  # the same id on every attempt
    assert dispatcher.outcomes[("refusing", "permanent_error")] == 1
    assert dispatcher.outcomes[("busy", "transient_error")] == 2
    assert dispatcher.outcomes[("busy", "delivered")] == 1


def test_no_secret_in_an_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A bad key is reported by where it is, never by what it is."""
    from scd_monitor.catalog.incidents import secret_problems

    monkeypatch.setenv("TEST_FAULTS_WH_BAD", "whsec_" + "secreto!" * 4)
    cfg = config(
        sinks=[webhook_config("w", "http://127.0.0.1:9/x", "TEST_FAULTS_WH_BAD")],
        routes=[{"audience": "authority", "sinks": ["w"]}],
    )
    problems = secret_problems(cfg, tmp_path)
    assert problems and all("secreto" not in p for _, p in problems)
