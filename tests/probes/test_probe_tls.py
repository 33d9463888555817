"""The tls probe: a handshake against local TLS servers with chosen certificates."""

from __future__ import annotations

import asyncio
import os
import ssl
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from scd_monitor.catalog.models import ResolvedCheck
from scd_monitor.config.types import TlsOptions
from scd_monitor.net.tls import ContextCache
from scd_monitor.probes.base import PHASES, ErrorKind, Outcome
from scd_monitor.probes.tls import TlsProbe
from scd_simulator.certs import CertificateAuthority, KeyPair, self_signed
from tests.probes.probe_servers import (
    blocking_tls_server,
    break_dns,
    http_check,
    serve_raw,
    server_context,
    tls_check,
    unused_port,
    wait_for_eof,
)

TIMEOUT = 0.5


class FixedClock:
    def __init__(self, now: datetime) -> None:
        self._now = now

    def now(self) -> datetime:
        return self._now

    def monotonic(self) -> float:
        return time.monotonic()


@pytest.fixture
def probe() -> TlsProbe:
    return TlsProbe()


@pytest.fixture(scope="module")
def ca() -> CertificateAuthority:
    return CertificateAuthority()


@pytest.fixture
def ca_file(ca: CertificateAuthority, tmp_path: Path) -> Path:
    return ca.write_cert(tmp_path / "ca.crt")


def seconds(moment: datetime) -> datetime:
    return moment.replace(microsecond=0)


async def run(
    probe: TlsProbe, pair: KeyPair, directory: Path, **fields: Any
) -> tuple[Outcome, float]:
    """Serve ``pair`` on a fresh port and probe it once."""
    async with serve_raw(wait_for_eof, ssl_context=server_context(pair, directory)) as server:
        check: ResolvedCheck = tls_check(server.port, **fields)
        started = time.perf_counter()
        outcome = await probe(check)
        return outcome, time.perf_counter() - started


async def test_trusted_certificate_is_ok(
    probe: TlsProbe, ca: CertificateAuthority, ca_file: Path, tmp_path: Path
) -> None:
    pair = ca.issue(["127.0.0.1"])
    outcome, duration = await run(probe, pair, tmp_path, tls={"ca_file": ca_file})
    assert outcome.ok, outcome
    assert outcome.cert_not_after == seconds(pair.not_after)
    assert outcome.chain_not_after == seconds(pair.not_after)
    assert set(outcome.phases) == {"dns", "connect", "tls"} <= set(PHASES)
    assert all(v >= 0 for v in outcome.phases.values())
    assert sum(outcome.phases.values()) <= duration
    assert str(outcome.details["tls_version"]).startswith("TLSv1.")
    assert outcome.details["chain_length"] == 2  # leaf + CA, as the server sends them


async def test_chain_expiry_is_the_earliest_certificate_sent(
    probe: TlsProbe, ca: CertificateAuthority, ca_file: Path, tmp_path: Path
) -> None:
    pair = ca.issue(["127.0.0.1"])
    soon = datetime.now(UTC) + timedelta(days=20)
    extra = self_signed(["old-intermediate"], not_after=soon).cert_pem
    context = server_context(pair, tmp_path, extra_chain=extra)
    async with serve_raw(wait_for_eof, ssl_context=context) as server:
        outcome = await probe(tls_check(server.port, tls={"ca_file": ca_file}, min_days_valid=14))
    assert outcome.ok, outcome
    assert outcome.cert_not_after == seconds(pair.not_after)
    assert outcome.chain_not_after == seconds(soon)


async def test_expired_certificate_fails_and_still_reports_expiry(
    probe: TlsProbe, ca: CertificateAuthority, ca_file: Path, tmp_path: Path
) -> None:
    now = datetime.now(UTC)
    pair = ca.issue(
        ["127.0.0.1"], not_before=now - timedelta(days=90), not_after=now - timedelta(days=3)
    )
    verified, _ = await run(probe, pair, tmp_path, tls={"ca_file": ca_file})
    unverified, _ = await run(probe, pair, tmp_path, tls={"verify": False})
    assert verified.error_kind is ErrorKind.TLS
    assert verified.message == "certificate verify failed: certificate has expired"
    assert verified.cert_not_after == seconds(pair.not_after)
    assert verified.chain_not_after == seconds(pair.not_after)
    # Without verification the handshake succeeds, and the probe judges expiry itself.
    assert unverified.error_kind is ErrorKind.TLS
    assert (unverified.message or "").startswith("certificate expired on ")
    assert unverified.cert_not_after == seconds(pair.not_after)


async def test_self_signed_fails_verification_but_passes_without(
    probe: TlsProbe, tmp_path: Path
) -> None:
    pair = self_signed(["127.0.0.1"])
    verified, _ = await run(probe, pair, tmp_path)
    unverified, _ = await run(probe, pair, tmp_path, tls={"verify": False})
    assert verified.error_kind is ErrorKind.TLS
    assert "self" in (verified.message or "")
    assert verified.cert_not_after == seconds(pair.not_after)
    assert unverified.ok, unverified
    assert unverified.cert_not_after == seconds(pair.not_after)
    assert unverified.details["chain_length"] == 1


async def test_certificate_read_after_a_verify_failure_stays_within_the_timeout(
    probe: TlsProbe, tmp_path: Path
) -> None:
    # First connection: an untrusted certificate. Second (the read-only handshake): silence.
    context = server_context(self_signed(["127.0.0.1"]), tmp_path)
    seen = 0

    async def first_tls_then_silence(reader: asyncio.StreamReader, writer: Any) -> None:
        nonlocal seen
        seen += 1
        if seen == 1:
            await writer.start_tls(context)
        await reader.read()

    async with serve_raw(first_tls_then_silence) as server:
        started = time.perf_counter()
        outcome = await probe(tls_check(server.port, timeout=TIMEOUT))
        duration = time.perf_counter() - started
    assert outcome.error_kind is ErrorKind.TLS  # the verdict, not the second try's timeout
    assert "self" in (outcome.message or "")
    assert outcome.cert_not_after is None
    assert seen == 2
    assert duration < TIMEOUT + 0.3


async def test_min_days_valid(
    probe: TlsProbe, ca: CertificateAuthority, ca_file: Path, tmp_path: Path
) -> None:
    pair = ca.issue(["127.0.0.1"], not_after=datetime.now(UTC) + timedelta(days=3, hours=1))
    short, _ = await run(probe, pair, tmp_path, tls={"ca_file": ca_file}, min_days_valid=14)
    enough, _ = await run(probe, pair, tmp_path, tls={"ca_file": ca_file}, min_days_valid=3)
    assert short.error_kind is ErrorKind.TLS
    assert short.message == "certificate expires in 3 days (minimum 14)"
    assert short.cert_not_after == seconds(pair.not_after)
    assert enough.ok, enough


async def test_expiry_is_judged_with_the_injected_clock(
    ca: CertificateAuthority, ca_file: Path, tmp_path: Path
) -> None:
    pair = ca.issue(["127.0.0.1"])
    later = TlsProbe(clock=FixedClock(pair.not_after - timedelta(days=1, hours=12)))
    outcome, _ = await run(later, pair, tmp_path, tls={"ca_file": ca_file}, min_days_valid=7)
    assert outcome.message == "certificate expires in 1 day (minimum 7)"


async def test_hostname_mismatch_and_server_name(
    probe: TlsProbe, ca: CertificateAuthority, ca_file: Path, tmp_path: Path
) -> None:
    pair = ca.issue(["pse.example.gov.co"])
    mismatch, _ = await run(probe, pair, tmp_path, tls={"ca_file": ca_file})
    named, _ = await run(
        probe, pair, tmp_path, tls={"ca_file": ca_file, "server_name": "pse.example.gov.co"}
    )
    assert mismatch.error_kind is ErrorKind.TLS
    assert "mismatch" in (mismatch.message or "").lower()
    assert mismatch.cert_not_after == seconds(pair.not_after)
    assert named.ok, named


async def test_refused_is_connect(probe: TlsProbe) -> None:
    outcome = await probe(tls_check(unused_port()))
    assert outcome.error_kind is ErrorKind.CONNECT
    assert outcome.message == "connection refused"
    assert outcome.cert_not_after is None


async def test_name_resolution_failure_is_dns(
    probe: TlsProbe, monkeypatch: pytest.MonkeyPatch
) -> None:
    break_dns(monkeypatch)
    outcome = await probe(tls_check(443, host="does-not-exist.invalid"))
    assert outcome.error_kind is ErrorKind.DNS


async def test_silent_server_is_a_timeout_in_the_handshake(probe: TlsProbe) -> None:
    async with serve_raw(wait_for_eof) as server:  # accepts TCP, never speaks TLS
        started = time.perf_counter()
        outcome = await probe(tls_check(server.port, timeout=TIMEOUT))
        duration = time.perf_counter() - started
    assert outcome.error_kind is ErrorKind.TIMEOUT
    assert outcome.message == "timed out after 0.50 s in the TLS handshake"
    assert TIMEOUT * 0.9 <= duration < TIMEOUT + 0.3
    assert "connect" in outcome.phases and "tls" not in outcome.phases


async def test_plain_server_is_tls(probe: TlsProbe) -> None:
    async def plain_http(_reader: object, writer: Any) -> None:
        writer.write(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")

    async with serve_raw(plain_http) as server:
        outcome = await probe(tls_check(server.port))
    assert outcome.error_kind is ErrorKind.TLS
    assert "wrong version number" in (outcome.message or "")


async def test_mtls_server(
    probe: TlsProbe, ca: CertificateAuthority, ca_file: Path, tmp_path: Path
) -> None:
    cert, key = ca.issue(["monitor"], client=True).write(tmp_path, "client")
    context = server_context(ca.issue(["127.0.0.1"]), tmp_path, client_ca=ca)
    with blocking_tls_server(context) as port:
        with_cert = await probe(
            tls_check(port, tls={"ca_file": ca_file, "client_cert": cert, "client_key": key})
        )
        context.maximum_version = ssl.TLSVersion.TLSv1_2
        tls12_without = await probe(tls_check(port, tls={"ca_file": ca_file}))
    assert with_cert.ok, with_cert
    # Under TLS 1.2 the server rejects the missing certificate inside the handshake.
    # (Under TLS 1.3 it does so after our side finished: a handshake-only probe passes.)
    assert tls12_without.error_kind is ErrorKind.TLS
    assert "handshake failure" in (tls12_without.message or "")


async def test_bad_client_key_file_is_internal(probe: TlsProbe, tmp_path: Path) -> None:
    cert = tmp_path / "client.crt"
    cert.write_text("not a certificate")
    outcome = await probe(tls_check(unused_port(), tls={"client_cert": cert}))
    assert outcome.error_kind is ErrorKind.INTERNAL


async def test_wrong_check_kind_is_internal(probe: TlsProbe) -> None:
    outcome = await probe(http_check("http://127.0.0.1:9/"))
    assert outcome.error_kind is ErrorKind.INTERNAL


def test_context_cache_reuses_and_notices_rotation(
    ca: CertificateAuthority, tmp_path: Path
) -> None:
    ca_file = ca.write_cert(tmp_path / "ca.crt")
    cache = ContextCache(max_size=2)
    options = TlsOptions(ca_file=ca_file)
    first = cache.get(options)
    assert cache.get(TlsOptions(ca_file=ca_file, server_name="other")) is first
    assert cache.get(options, verify=False) is not first
    assert cache.get(options, verify=False).verify_mode == ssl.CERT_NONE
    assert first.verify_mode == ssl.CERT_REQUIRED and first.check_hostname
    CertificateAuthority().write_cert(ca_file)  # rotated
    stamp = ca_file.stat().st_mtime_ns + 1_000_000_000  # clock ticks can be coarse
    os.utime(ca_file, ns=(stamp, stamp))
    assert cache.get(options) is not first
    assert len(cache) == 2
