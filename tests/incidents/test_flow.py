"""End to end without the daemon: an outage seen by the incident service, reports
delivered by the outbox to a real webhook receiver (503 for its first minutes) and a real
SMTP server (STARTTLS + AUTH) and a file drop; the operator's note in the update; the
recovery's resolution. Every signature verified, no key applied twice."""

from __future__ import annotations

import json
import os
from datetime import timedelta
from pathlib import Path

from scd_monitor.catalog.incidents import IncidentsConfig, resolve_secrets
from scd_monitor.incidents.outbox import OutboxDispatcher
from scd_monitor.incidents.service import IncidentService
from scd_monitor.sinks import build_sinks
from scd_monitor.store import Store
from scd_simulator.certs import CertificateAuthority
from tests.incidents.conftest import T0, SettableClock, healthy, outage
from tests.incidents.receivers import SECRET, SmtpServer, WebhookReceiver
from tests.incidents.schema import validate


async def test_outage_note_recovery_reach_every_receiver(
    store: Store, tmp_path: Path, clock: SettableClock
) -> None:
    ca = CertificateAuthority()
    cert, key = ca.issue(["127.0.0.1"]).write(tmp_path, "smtp")
    ca.write_cert(tmp_path / "ca.crt")
    (tmp_path / "smtp-password").write_text("s3creto-smtp\n")
    os.environ["SCD_TEST_WEBHOOK_SECRET"] = SECRET
    down_until = T0 + timedelta(minutes=3)
    receiver = WebhookReceiver(failing=lambda _n: clock.now() < down_until)
    with SmtpServer(cert, key) as smtp:
        async with receiver:
            config = IncidentsConfig.model_validate(
                {
                    "resolve_after": "2m",
                    "sinks": [
                        {
                            "id": "mintic",
                            "kind": "webhook",
                            "url": receiver.url,
                            "secret": {"env": "SCD_TEST_WEBHOOK_SECRET"},
                        },
                        {
                            "id": "correo-prestador",
                            "kind": "email",
                            "host": "127.0.0.1",
                            "port": smtp.port,
                            "username": "monitor",
                            "password": {"file": "smtp-password"},
                            "sender": "monitor@scd.example",
                            "tls": {"ca_file": "ca.crt"},
                        },
                        {"id": "operaciones", "kind": "file", "directory": "reportes"},
                    ],
                    "routes": [
                        {"audience": "authority", "sinks": ["mintic"], "min_severity": "high"},
                        {"audience": "provider", "sinks": ["correo-prestador"]},
                        {"audience": "operations", "sinks": ["operaciones"]},
                    ],
                    "outbox": {"backoff": {"initial": "30s", "max": "2m"}},
                }
            )
            config = resolve_secrets(config, tmp_path)
            service = IncidentService(store, config, clock=clock, holder="bogota")
            dispatcher = OutboxDispatcher(
                store, build_sinks(config.sinks), clock, config=config.outbox
            )

            async def tick(minutes: float, obs_down: bool) -> None:
                obs = outage(clock.now()) if obs_down else healthy(clock.now())
                service.evaluate(obs)
                await dispatcher.run_once()
                clock.advance(timedelta(minutes=minutes))

            for _ in range(3):
                await tick(1, True)  # the outage; the webhook answers 503 meanwhile
            (incident,) = service.list()
            service.note(incident.code, "Se reinició el servidor de autenticación del prestador.")
            for _ in range(2):
                await tick(1, True)
            for _ in range(4):
                await tick(1, False)  # recovery, confirmed after 2 min
            for _ in range(6):
                await tick(1, False)  # let the outbox drain

    code = incident.code
    expected = {f"{code}.{n}.mintic" for n in (1, 2, 4)}  # opened, note, resolved (seq 3: cleared)
    assert set(receiver.applied) == expected
    assert receiver.bad_signatures == 0 and receiver.conflicts == []
    docs = {k: json.loads(v) for k, v in receiver.bodies.items()}
    for doc in docs.values():
        validate(doc)
    assert docs[f"{code}.1.mintic"]["event"]["kind"] == "opened"
    update = docs[f"{code}.2.mintic"]
    assert update["event"]["reason"] == "note"
    assert update["actions"][0]["text"].startswith("Se reinició el servidor")
    resolution = docs[f"{code}.4.mintic"]
    assert resolution["event"]["kind"] == "resolved" and resolution["incident"]["end"]
    assert resolution["actions"] == update["actions"]

    assert sorted(m["X-SCD-Event"] for m in smtp.messages) == ["opened", "resolved", "updated"]
    assert {tuple(e.rcpt_tos) for e in smtp.envelopes} == {("soporte@prestador-a.example",)}
    assert smtp.auth_mechanisms and all(m in ("PLAIN", "LOGIN") for m in smtp.auth_mechanisms)
    for message in smtp.messages:
        (attachment,) = list(message.iter_attachments())
        validate(json.loads(attachment.get_content()))
        assert "Prestador A" in message.get_body(preferencelist=("plain",)).get_content()

    files = sorted(p.name for p in (tmp_path / "reportes").iterdir())
    assert files == [f"{code}.{n}.operaciones.json" for n in (1, 2, 4)]
    assert service.stats().backlog == 0
    deliveries = service.show(code).deliveries
    assert {d.status for d in deliveries} == {"delivered"}
    assert max(d.attempts for d in deliveries if d.sink == "mintic") > 1  # the 503s
