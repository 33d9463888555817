"""End to end: the daemon (a subprocess, its probing process) against the simulator's fake
OIDC provider over TLS on 127.0.0.1.

A healthy provider passes every step and its monitoring token is verified; a key
rotation yields one ``appeared`` event, the retirement of the old key one
``disappeared`` event; each fault the simulator can switch on ends in its error kind at
its step, on ``/metrics``; a signing key removed while its token is valid is an early
removal (``scd_oidc_key_changes_total{early="true"}``). The client secret and the tokens
never appear in the log or the metrics.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from scd_monitor.store import ResultRepository, Store
from scd_simulator.fleet import Simulator

pytestmark = pytest.mark.e2e

CHECK = "and/autenticacion-digital/oidc"
PROVIDER, SERVICE, NAME = CHECK.split("/")
DEADLINE = 40.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def samples(text: str, name: str) -> list[dict[str, str]]:
    """Labels (plus ``value``) of the samples of ``name`` for the check."""
    out = []
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == name and s.labels.get("check") == NAME:
                out.append({**s.labels, "value": str(s.value)})
    return out


async def metrics_until(port: int, proc: subprocess.Popen[bytes], ok: Any, what: str) -> str:
    """Scrape until ``ok(text)`` (bounded)."""
    deadline = time.monotonic() + DEADLINE
    text = ""
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                pytest.fail(f"daemon exited early with {proc.returncode}")
            try:
                text = (await client.get("/metrics")).text
            except httpx.TransportError:
                await asyncio.sleep(0.2)
                continue
            if ok(text):
                return text
            await asyncio.sleep(0.3)
    pytest.fail(f"{what}: not seen in time; last scrape:\n{text[-3000:]}")


def failing_at(step: str, kind: str) -> Any:
    def ok(text: str) -> bool:
        steps = samples(text, "scd_oidc_failed_step")
        errors = samples(text, "scd_probe_error")
        return any(s["step"] == step for s in steps) and any(
            e["error_kind"] == kind for e in errors
        )

    return ok


def healthy(text: str) -> bool:
    return any(s["value"] == "1.0" for s in samples(text, "scd_probe_success"))


def key_events(db: Path) -> list[dict[str, Any]]:
    proc = subprocess.run(
        [sys.executable, "-m", "scd_monitor", "oidc-keys", "--changes", "--format", "json",
         "--database-url", f"sqlite:///{db}"],
        capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    events: list[dict[str, Any]] = json.loads(proc.stdout)
    return events


async def events_until(db: Path, ok: Any, what: str) -> list[dict[str, Any]]:
    deadline = time.monotonic() + DEADLINE
    events: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        events = await asyncio.to_thread(key_events, db)
        if ok(events):
            return events
        await asyncio.sleep(0.5)
    pytest.fail(f"{what}: key events not seen in time: {events}")


async def test_oidc_provider_steps_faults_and_key_rotation(tmp_path: Path) -> None:
    sim = Simulator(tmp_path / "sim")
    provider = sim.add_oidc_provider(CHECK, tls="valid")
    db = tmp_path / "oidc.db"
    port = free_port()
    log_path = tmp_path / "daemon.log"
    async with sim:
        catalog = sim.write_catalog(tmp_path / "catalog.yaml", interval="2s", timeout="1500ms")
        data: dict[str, Any] = yaml.safe_load(catalog.read_text(encoding="utf-8"))
        (check,) = [c for p in data["providers"] for s in p["services"] for c in s["checks"]]
        assert check["kind"] == "oidc"
        env = {
            **os.environ,
            "SCD_MONITOR_LOG_FORMAT": "json",
            "SCD_MONITOR_STATE_INTERVAL": "1s",
            "SCD_MONITOR_SPOOL_DIR": str(tmp_path / "spool"),
            "SCD_MONITOR_EXPORT_DIR": "",
            provider.secret_env: provider.client_secret,
        }
        command = [
            *(sys.executable, "-m", "scd_monitor", "run", "--catalog", str(catalog)),
            *("--listen", f"127.0.0.1:{port}", "--database-url", f"sqlite:///{db}"),
        ]
        with log_path.open("wb") as log_file:
            proc = subprocess.Popen(command, env=env, stdout=log_file, stderr=subprocess.STDOUT)
            try:
                # Healthy: every step passes, the token is verified, the keys are counted.
                text = await metrics_until(port, proc, healthy, "a healthy provider")
                (keys,) = samples(text, "scd_oidc_jwks_keys")
                assert float(keys["value"]) == len(provider.published_kids)
                phases = {s["phase"] for s in samples(text, "scd_probe_phase_duration_seconds")}
                assert {"discovery", "jwks", "token", "client_credentials"} <= phases
                first_kid = provider.signing_kid

                # A rotation: the new key appears (one event), the old one is retired later.
                provider.rotate()
                await events_until(
                    db, lambda ev: any(e["change"] == "appeared" for e in ev), "rotation"
                )
                await metrics_until(port, proc, healthy, "healthy after the rotation")
                provider.retire(first_kid)
                events = await events_until(
                    db, lambda ev: any(e["change"] == "disappeared" for e in ev), "retirement"
                )
                assert [(e["change"], e["kid"], e["early"]) for e in events] == [
                    ("appeared", provider.signing_kid, False),
                    ("disappeared", first_kid, False),
                ]

                # Each fault: its error kind at its step.
                for fault, step, kind, extra in (
                    ("issuer_mismatch", "discovery", "assertion", {}),
                    ("expired_x5c", "jwks", "assertion", {}),
                    ("token_500", "token", "status", {}),
                    ("slow_jwks", "jwks", "timeout", {"seconds": 2.5}),
                ):
                    provider.set_fault(fault, **extra)
                    await metrics_until(port, proc, failing_at(step, kind), fault)
                    provider.set_fault(None)
                    await metrics_until(port, proc, healthy, f"healthy after {fault}")

                # The signing key leaves the JWKS while tokens are signed by it: the token
                # no longer verifies, and the key's removal is early.
                signing = provider.signing_kid
                provider.set_fault("missing_key")
                text = await metrics_until(
                    port, proc, failing_at("client_credentials", "assertion"), "missing_key"
                )
                events = await events_until(
                    db, lambda ev: any(e["early"] for e in ev), "early removal"
                )
                early = [e for e in events if e["early"]]
                assert [(e["change"], e["kid"]) for e in early] == [("disappeared", signing)]
                text = await metrics_until(
                    port,
                    proc,
                    lambda t: any(
                        s.get("early") == "true" for s in samples(t, "scd_oidc_key_changes_total")
                    ),
                    "the early-removal counter",
                )
            finally:
                proc.send_signal(signal.SIGTERM)
                code = await asyncio.to_thread(proc.wait, 30)
    log_text = log_path.read_text()
    assert code == 0, log_text[-3000:]
    assert provider.client_secret not in log_text
    assert provider.client_secret not in text
    # The stored results carry the step of each failure and never a token or the secret.
    store = Store(f"sqlite:///{db}")
    try:
        stored = ResultRepository(store).read(check_id=CHECK)
    finally:
        store.dispose()
    steps = {r.outcome.details.get("step") for r in stored if not r.ok}
    assert {"discovery", "jwks", "token", "client_credentials"} <= steps
    for r in stored:
        assert provider.client_secret not in json.dumps(dict(r.outcome.details))
        assert "eyJ" not in (r.outcome.message or "")  # no JWS in a message
