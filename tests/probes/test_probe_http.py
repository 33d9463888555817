"""The http probe against real local servers that behave and misbehave on purpose."""

from __future__ import annotations

import asyncio
import gzip
import json
import ssl
import time
import zlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from scd_monitor.catalog.models import ResolvedCheck
from scd_monitor.net.tls import ContextCache
from scd_monitor.probes.base import PHASES, ErrorKind, Outcome
from scd_monitor.probes.http import HttpProbe
from scd_simulator.certs import CertificateAuthority, KeyPair, self_signed
from tests.probes.probe_servers import (
    blocking_tls_server,
    break_dns,
    close_silently,
    drip,
    endless,
    garbage,
    hang,
    http_check,
    reset,
    respond,
    respond_gzip,
    respond_json,
    routes,
    serve,
    serve_raw,
    server_context,
    tls_check,
    truncated,
    unused_port,
    wait_for_eof,
)

TIMEOUT = 0.5
DOC = {"issuer": "https://idp.gov.co", "keys": [{"kid": "k1", "use": "sig"}], "n": 3, "on": True}


@pytest.fixture
def probe() -> HttpProbe:
    return HttpProbe()


async def timed(probe: HttpProbe, check: ResolvedCheck) -> tuple[Outcome, float]:
    started = time.perf_counter()
    outcome = await probe(check)
    return outcome, time.perf_counter() - started


def assert_phases_sane(outcome: Outcome, duration: float) -> None:
    assert set(outcome.phases) <= set(PHASES)
    assert all(value >= 0 for value in outcome.phases.values())
    head = sum(outcome.phases.get(name, 0.0) for name in ("connect", "tls", "first_byte"))
    assert head <= duration


# --- plain HTTP -------------------------------------------------------------------------


async def test_healthy_json_is_ok_with_phases(probe: HttpProbe) -> None:
    async with serve(respond_json(DOC)) as server:
        outcome, duration = await timed(probe, http_check(server.url()))
    assert outcome.ok, outcome
    assert outcome.error_kind is None
    assert outcome.status_code == 200
    assert {"connect", "first_byte", "transfer"} <= set(outcome.phases)
    assert "tls" not in outcome.phases
    assert_phases_sane(outcome, duration)
    assert outcome.details["http_version"] == "HTTP/1.1"
    assert outcome.details["bytes_read"] == len(json.dumps(DOC))
    assert outcome.cert_not_after is None


async def test_unexpected_status_is_status(probe: HttpProbe) -> None:
    async with serve(respond(503, b"down")) as server:
        outcome = await probe(http_check(server.url()))
    assert outcome.error_kind is ErrorKind.STATUS
    assert outcome.status_code == 503
    assert outcome.message == "status 503, expected 200"


async def test_expected_status_set_accepts_other_codes(probe: HttpProbe) -> None:
    async with serve(respond(401)) as server:
        outcome = await probe(http_check(server.url(), expect_status=[200, 401]))
    assert outcome.ok


async def test_method_and_body_are_sent(probe: HttpProbe) -> None:
    async with serve(respond(201)) as server:
        check = http_check(
            server.url("/token"),
            method="POST",
            body='{"grant_type":"client_credentials"}',
            headers={"Content-Type": "application/json"},
            expect_status=[201],
        )
        outcome = await probe(check)
    assert outcome.ok, outcome
    [request] = server.requests
    assert (request.method, request.target) == ("POST", "/token")
    assert request.body == b'{"grant_type":"client_credentials"}'
    assert request.headers["content-type"] == "application/json"
    assert request.headers["user-agent"].startswith("scd-monitor/")


async def test_head_request(probe: HttpProbe) -> None:
    async with serve(respond(200, headers={"Content-Length": "1234"})) as server:
        outcome = await probe(http_check(server.url(), method="HEAD"))
    assert outcome.ok, outcome
    assert server.requests[0].method == "HEAD"


async def test_each_run_uses_a_fresh_connection(probe: HttpProbe) -> None:
    async with serve(respond(200, b"ok", {"Connection": "keep-alive"})) as server:
        first = await probe(http_check(server.url()))
        second = await probe(http_check(server.url()))
    assert first.ok and second.ok
    assert server.connections == 2
    assert "connect" in second.phases


# --- network failures -------------------------------------------------------------------


async def test_hang_is_timeout_within_the_check_timeout(probe: HttpProbe) -> None:
    async with serve(hang) as server:
        outcome, duration = await timed(probe, http_check(server.url(), timeout=TIMEOUT))
    assert outcome.error_kind is ErrorKind.TIMEOUT
    assert "response headers" in (outcome.message or "")
    assert TIMEOUT * 0.9 <= duration < TIMEOUT + 0.3


async def test_dripping_body_is_bounded_by_the_check_timeout(probe: HttpProbe) -> None:
    # Every single read succeeds, so only the overall deadline can stop this one.
    async with serve(drip) as server:
        outcome, duration = await timed(probe, http_check(server.url(), timeout=TIMEOUT))
    assert outcome.error_kind is ErrorKind.TIMEOUT
    assert outcome.status_code == 200
    assert "reading the body" in (outcome.message or "")
    assert TIMEOUT * 0.9 <= duration < TIMEOUT + 0.3


async def test_reset_after_the_request_is_connect(probe: HttpProbe) -> None:
    # Decision: ECONNRESET means the transport broke, wherever it happens: CONNECT.
    async with serve(reset) as server:
        outcome = await probe(http_check(server.url()))
    assert outcome.error_kind is ErrorKind.CONNECT
    assert "reset" in (outcome.message or "")


async def test_orderly_close_without_response_is_protocol(probe: HttpProbe) -> None:
    async with serve(close_silently) as server:
        outcome = await probe(http_check(server.url()))
    assert outcome.error_kind is ErrorKind.PROTOCOL
    assert "closed" in (outcome.message or "") or "disconnected" in (outcome.message or "")


async def test_truncated_body_is_protocol(probe: HttpProbe) -> None:
    async with serve(truncated) as server:
        outcome = await probe(http_check(server.url()))
    assert outcome.error_kind is ErrorKind.PROTOCOL
    assert outcome.status_code == 200


async def test_garbage_instead_of_http_is_protocol(probe: HttpProbe) -> None:
    async with serve(garbage) as server:
        outcome = await probe(http_check(server.url()))
    assert outcome.error_kind is ErrorKind.PROTOCOL
    assert "malformed" in (outcome.message or "")


async def test_refused_is_connect(probe: HttpProbe) -> None:
    outcome = await probe(http_check(f"http://127.0.0.1:{unused_port()}/"))
    assert outcome.error_kind is ErrorKind.CONNECT
    assert outcome.message == "connection refused"


async def test_name_resolution_failure_is_dns(
    probe: HttpProbe, monkeypatch: pytest.MonkeyPatch
) -> None:
    break_dns(monkeypatch)
    outcome = await probe(http_check("http://does-not-exist.invalid/"))
    assert outcome.error_kind is ErrorKind.DNS
    assert "name resolution failed" in (outcome.message or "")


# --- body size --------------------------------------------------------------------------


async def test_declared_length_over_limit_is_too_large_without_reading(probe: HttpProbe) -> None:
    async with serve(respond(200, b"x" * 5000)) as server:
        outcome = await probe(http_check(server.url(), max_body_bytes=1000))
    assert outcome.error_kind is ErrorKind.TOO_LARGE
    assert outcome.details["bytes_read"] == 0


async def test_endless_body_is_too_large_and_reading_stops(probe: HttpProbe) -> None:
    async with serve(endless) as server:
        outcome, duration = await timed(probe, http_check(server.url(), max_body_bytes=50_000))
    assert outcome.error_kind is ErrorKind.TOO_LARGE
    bytes_read = outcome.details["bytes_read"]
    assert isinstance(bytes_read, int)
    assert 50_000 < bytes_read <= 50_000 + 65_536  # at most one read past the limit
    assert duration < TIMEOUT


async def test_compression_bomb_is_too_large(probe: HttpProbe) -> None:
    async with serve(respond_gzip(b"\0" * 20_000_000)) as server:
        outcome = await probe(http_check(server.url(), max_body_bytes=100_000))
    assert outcome.error_kind is ErrorKind.TOO_LARGE


async def test_gzip_body_is_decoded_for_assertions(probe: HttpProbe) -> None:
    async with serve(respond_gzip(b'{"status": "UP"}')) as server:
        check = http_check(server.url(), body_regex='"status": "UP"', json=[{"path": "status"}])
        outcome = await probe(check)
    assert outcome.ok, outcome


@pytest.mark.parametrize(
    ("encoding", "payload"),
    [
        ("deflate", zlib.compress(b"service UP")),
        ("deflate", zlib.compress(b"service UP")[2:-4]),  # raw deflate, no zlib wrapper
        ("gzip", gzip.compress(b"service UP", mtime=0)),
        ("identity", b"service UP"),
    ],
)
async def test_content_encodings(probe: HttpProbe, encoding: str, payload: bytes) -> None:
    async with serve(respond(200, payload, {"Content-Encoding": encoding})) as server:
        outcome = await probe(http_check(server.url(), body_regex="UP$"))
    assert outcome.ok, outcome
    assert outcome.details["bytes_read"] == len(payload)


async def test_undecodable_bodies_are_protocol_when_judged(probe: HttpProbe) -> None:
    app = routes(
        {
            "/br": respond(200, b"\x0b\x02\x80UP\x03", {"Content-Encoding": "br"}),
            "/bad-gzip": respond(200, b"not gzip at all", {"Content-Encoding": "gzip"}),
        }
    )
    async with serve(app) as server:
        br_unjudged = await probe(http_check(server.url("/br")))
        br_judged = await probe(http_check(server.url("/br"), body_regex="UP"))
        bad_gzip = await probe(http_check(server.url("/bad-gzip"), body_regex="UP"))
    assert br_unjudged.ok  # nothing to judge: the bytes arrived, that is enough
    assert br_judged.error_kind is ErrorKind.PROTOCOL
    assert "'br'" in (br_judged.message or "")
    assert bad_gzip.error_kind is ErrorKind.PROTOCOL


# --- body and JSON assertions -----------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "kind"),
    [
        ({"body_regex": r"issuer"}, None),
        ({"body_regex": r"^maintenance"}, ErrorKind.ASSERTION),
        ({"body_not_regex": r"error"}, None),
        ({"body_not_regex": r"idp\.gov"}, ErrorKind.ASSERTION),
    ],
)
async def test_body_regexes(probe: HttpProbe, fields: dict[str, Any], kind: ErrorKind) -> None:
    async with serve(respond_json(DOC)) as server:
        outcome = await probe(http_check(server.url(), **fields))
    assert outcome.error_kind is kind, outcome
    assert outcome.ok is (kind is None)


@pytest.mark.parametrize(
    ("assertion", "problem"),
    [
        ({"path": "issuer"}, None),
        ({"path": "keys.0.kid"}, None),
        ({"path": "keys.0.kid", "equals": "k1"}, None),
        ({"path": "n", "equals": 3}, None),
        ({"path": "n", "equals": 3.0}, None),
        ({"path": "on", "equals": True}, None),
        ({"path": "issuer", "matches": r"^https://.*\.gov\.co$"}, None),
        ({"path": "n", "matches": r"^\d$"}, None),
        ({"path": "absent", "exists": False}, None),
        ({"path": "keys.1.kid"}, "JSON field 'keys.1.kid' is missing"),
        ({"path": "issuer.x"}, "JSON field 'issuer.x' is missing"),
        (
            {"path": "keys.0.kid", "equals": "k2"},
            'JSON field \'keys.0.kid\' is "k1", expected "k2"',
        ),
        ({"path": "n", "equals": "3"}, "JSON field 'n' is 3, expected \"3\""),
        ({"path": "on", "equals": 1}, "JSON field 'on' is true, expected 1"),
        ({"path": "issuer", "matches": r"^http://"}, "does not match /^http:///"),
        ({"path": "issuer", "exists": False}, "JSON field 'issuer' is present, expected it absent"),
    ],
)
async def test_json_assertions(
    probe: HttpProbe, assertion: dict[str, Any], problem: str | None
) -> None:
    async with serve(respond_json(DOC)) as server:
        outcome = await probe(http_check(server.url(), json=[assertion]))
    if problem is None:
        assert outcome.ok, outcome
    else:
        assert outcome.error_kind is ErrorKind.ASSERTION
        assert problem in (outcome.message or "")


async def test_invalid_json_is_protocol(probe: HttpProbe) -> None:
    async with serve(respond(200, b"<html>oops</html>")) as server:
        outcome = await probe(http_check(server.url(), json=[{"path": "issuer"}]))
    assert outcome.error_kind is ErrorKind.PROTOCOL
    assert "not valid JSON" in (outcome.message or "")


async def test_invalid_json_without_json_assertions_is_fine(probe: HttpProbe) -> None:
    async with serve(respond(200, b"<html>ok</html>")) as server:
        outcome = await probe(http_check(server.url()))
    assert outcome.ok


# --- redirects --------------------------------------------------------------------------


def redirecting(location: str, status: int = 302) -> Any:
    return respond(status, headers={"Location": location})


async def test_redirect_followed(probe: HttpProbe) -> None:
    app = routes({"/a": redirecting("/b"), "/b": respond_json(DOC)})
    async with serve(app) as server:
        check = http_check(server.url("/a"), follow_redirects=True, json=[{"path": "issuer"}])
        outcome, duration = await timed(probe, check)
    assert outcome.ok, outcome
    assert [r.target for r in server.requests] == ["/a", "/b"]
    assert outcome.details["redirects"] == 1
    assert_phases_sane(outcome, duration)


async def test_redirect_not_followed_is_judged_by_status(probe: HttpProbe) -> None:
    app = routes({"/a": redirecting("/b?code=s3cr3t#frag")})
    async with serve(app) as server:
        outcome = await probe(http_check(server.url("/a")))
        accepted = await probe(http_check(server.url("/a"), expect_status=[302]))
    assert outcome.error_kind is ErrorKind.STATUS
    assert outcome.status_code == 302
    assert outcome.details["redirect_location"] == "/b"  # no query: it may hold a code
    assert accepted.ok
    assert [r.target for r in server.requests] == ["/a", "/a"]


async def test_too_many_redirects_is_protocol(probe: HttpProbe) -> None:
    app = routes({"/a": redirecting("/b"), "/b": redirecting("/a")})
    async with serve(app) as server:
        outcome = await probe(http_check(server.url("/a"), follow_redirects=True, max_redirects=3))
    assert outcome.error_kind is ErrorKind.PROTOCOL
    assert outcome.message == "too many redirects (more than 3)"
    assert len(server.requests) == 4


async def test_cross_origin_redirect_drops_secret_headers(probe: HttpProbe) -> None:
    async with serve(respond(200)) as other, serve(redirecting(other.url("/landing"))) as first:
        check = http_check(
            first.url(),
            follow_redirects=True,
            headers={"X-Plain": "visible"},
            secret_headers={"X-Api-Key": {"env": "KEY", "value": "s3cr3t-value"}},
        )
        outcome = await probe(check)
    assert outcome.ok, outcome
    assert first.requests[0].headers["x-api-key"] == "s3cr3t-value"
    assert "x-api-key" not in other.requests[0].headers
    assert other.requests[0].headers["x-plain"] == "visible"


# --- secrets ----------------------------------------------------------------------------

SECRET = "Bearer sk_live_9f8e7d6c5b4a"


@pytest.mark.parametrize("status", [200, 500])
async def test_secret_header_is_sent_but_never_reported(probe: HttpProbe, status: int) -> None:
    async with serve(respond(status, SECRET.encode())) as server:  # even if echoed back
        check = http_check(
            server.url(),
            secret_headers={"Authorization": {"env": "TOKEN", "value": SECRET}},
            body_not_regex="never",
        )
        outcome = await probe(check)
    assert server.requests[0].headers["authorization"] == SECRET
    assert outcome.ok is (status == 200)
    assert SECRET not in repr(outcome)
    assert "sk_live" not in repr(outcome)


async def test_secret_quoted_by_an_error_is_scrubbed(probe: HttpProbe) -> None:
    bad = "tok\nen-sk_live_123"  # illegal in a header: h11's error message quotes it
    async with serve(respond(200)) as server:
        check = http_check(server.url(), secret_headers={"X-Key": {"env": "K", "value": bad}})
        outcome = await probe(check)
    assert outcome.error_kind is ErrorKind.INTERNAL  # our configuration, not the target
    assert "[secret]" in (outcome.message or "")
    assert "sk_live_123" not in repr(outcome)


async def test_unloaded_secret_is_internal(probe: HttpProbe) -> None:
    check = http_check("http://127.0.0.1:9/", secret_headers={"X-Key": {"env": "K"}})
    outcome = await probe(check)
    assert outcome.error_kind is ErrorKind.INTERNAL
    assert "X-Key" in (outcome.message or "")


async def test_wrong_check_kind_is_internal(probe: HttpProbe) -> None:
    outcome = await probe(tls_check(443))
    assert outcome.error_kind is ErrorKind.INTERNAL
    assert (outcome.message or "").startswith("TypeError:")


# --- TLS --------------------------------------------------------------------------------


@dataclass
class Pki:
    ca: CertificateAuthority
    ca_file: Path
    directory: Path

    def context(self, pair: KeyPair, **kwargs: Any) -> Any:
        return server_context(pair, self.directory, **kwargs)


@pytest.fixture(scope="module")
def ca() -> CertificateAuthority:
    return CertificateAuthority()


@pytest.fixture
def pki(ca: CertificateAuthority, tmp_path: Path) -> Pki:
    return Pki(ca=ca, ca_file=ca.write_cert(tmp_path / "ca.crt"), directory=tmp_path)


def seconds(moment: datetime) -> datetime:
    return moment.replace(microsecond=0)


async def test_https_with_a_trusted_certificate(probe: HttpProbe, pki: Pki) -> None:
    pair = pki.ca.issue(["127.0.0.1"])
    async with serve(respond_json(DOC), ssl_context=pki.context(pair)) as server:
        check = http_check(server.url(scheme="https"), tls={"ca_file": pki.ca_file})
        outcome, duration = await timed(probe, check)
    assert outcome.ok, outcome
    assert outcome.cert_not_after == seconds(pair.not_after)
    assert outcome.chain_not_after == seconds(pair.not_after)  # the CA lives longer
    assert {"connect", "tls", "first_byte", "transfer"} <= set(outcome.phases)
    assert_phases_sane(outcome, duration)
    assert str(outcome.details["tls_version"]).startswith("TLSv1.")


async def test_chain_expiry_is_the_earliest_certificate_sent(probe: HttpProbe, pki: Pki) -> None:
    pair = pki.ca.issue(["127.0.0.1"])
    soon = datetime.now(UTC) + timedelta(days=5)
    extra = self_signed(["old-intermediate"], not_after=soon).cert_pem
    context = pki.context(pair, extra_chain=extra)
    async with serve(respond(200), ssl_context=context) as server:
        check = http_check(server.url(scheme="https"), tls={"ca_file": pki.ca_file})
        outcome = await probe(check)
    assert outcome.ok, outcome
    assert outcome.cert_not_after == seconds(pair.not_after)
    assert outcome.chain_not_after == seconds(soon)


async def test_expired_certificate_is_tls_and_still_reports_expiry(
    probe: HttpProbe, pki: Pki
) -> None:
    now = datetime.now(UTC)
    pair = pki.ca.issue(
        ["127.0.0.1"], not_before=now - timedelta(days=30), not_after=now - timedelta(days=2)
    )
    async with serve(respond(200), ssl_context=pki.context(pair)) as server:
        check = http_check(server.url(scheme="https"), tls={"ca_file": pki.ca_file})
        outcome = await probe(check)
    assert outcome.error_kind is ErrorKind.TLS
    assert "certificate has expired" in (outcome.message or "")
    assert outcome.cert_not_after == seconds(pair.not_after)
    assert server.requests == []


async def test_self_signed_fails_verification_unless_verify_is_off(
    probe: HttpProbe, pki: Pki
) -> None:
    pair = self_signed(["127.0.0.1"])
    async with serve(respond(200), ssl_context=pki.context(pair)) as server:
        verified = await probe(http_check(server.url(scheme="https")))
        unverified = await probe(http_check(server.url(scheme="https"), tls={"verify": False}))
    assert verified.error_kind is ErrorKind.TLS
    assert "self-signed" in (verified.message or "") or "self signed" in (verified.message or "")
    assert verified.cert_not_after == seconds(pair.not_after)
    assert unverified.ok, unverified
    assert unverified.cert_not_after == seconds(pair.not_after)


async def test_certificate_read_after_a_verify_failure_stays_within_the_timeout(
    probe: HttpProbe, pki: Pki
) -> None:
    # First connection: an untrusted certificate. Second (the read-only handshake): silence.
    context = pki.context(self_signed(["127.0.0.1"]))
    seen = 0

    async def first_tls_then_silence(reader: asyncio.StreamReader, writer: Any) -> None:
        nonlocal seen
        seen += 1
        if seen == 1:
            await writer.start_tls(context)
        await reader.read()

    async with serve_raw(first_tls_then_silence) as server:
        outcome, duration = await timed(
            probe, http_check(server.url(scheme="https"), timeout=TIMEOUT)
        )
    assert outcome.error_kind is ErrorKind.TLS
    assert outcome.cert_not_after is None
    assert seen == 2
    assert duration < TIMEOUT + 0.3


async def test_server_name_override(probe: HttpProbe, pki: Pki) -> None:
    pair = pki.ca.issue(["api.example.gov.co"])
    async with serve(respond(200), ssl_context=pki.context(pair)) as server:
        url = server.url(scheme="https")
        mismatch = await probe(http_check(url, tls={"ca_file": pki.ca_file}))
        named = await probe(
            http_check(url, tls={"ca_file": pki.ca_file, "server_name": "api.example.gov.co"})
        )
    assert mismatch.error_kind is ErrorKind.TLS
    assert "mismatch" in (mismatch.message or "").lower()
    assert mismatch.cert_not_after == seconds(pair.not_after)
    assert named.ok, named


async def test_silent_tls_server_is_a_timeout_in_the_handshake(probe: HttpProbe) -> None:
    async with serve_raw(wait_for_eof) as server:  # accepts TCP, never speaks TLS
        outcome, duration = await timed(
            probe, http_check(server.url(scheme="https"), timeout=TIMEOUT)
        )
    assert outcome.error_kind is ErrorKind.TIMEOUT
    assert outcome.message == "timed out after 0.50 s in the TLS handshake"
    assert TIMEOUT * 0.9 <= duration < TIMEOUT + 0.3


async def test_plain_http_to_a_tls_port_is_protocol(probe: HttpProbe, pki: Pki) -> None:
    pair = pki.ca.issue(["127.0.0.1"])
    async with serve(respond(200), ssl_context=pki.context(pair)) as server:
        outcome = await probe(http_check(server.url()))
    assert outcome.error_kind in (ErrorKind.PROTOCOL, ErrorKind.CONNECT)


async def test_https_to_a_plain_port_is_tls(probe: HttpProbe) -> None:
    async def plain_http(_reader: Any, writer: Any) -> None:
        writer.write(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
        await writer.drain()

    async with serve_raw(plain_http) as server:
        outcome = await probe(http_check(server.url(scheme="https")))
    assert outcome.error_kind is ErrorKind.TLS
    assert "wrong version number" in (outcome.message or "")


@pytest.fixture
def client_files(pki: Pki) -> dict[str, Path]:
    cert, key = pki.ca.issue(["monitor"], client=True).write(pki.directory, "client")
    return {"client_cert": cert, "client_key": key}


async def test_mtls_without_client_certificate_is_tls(probe: HttpProbe, pki: Pki) -> None:
    # Under TLS 1.3 our side of the handshake ends before the server checks for a client
    # certificate; the server then sends an alert and closes, and the alert usually loses
    # the race against the TCP reset. The probe reports both the same way: TLS.
    context = pki.context(pki.ca.issue(["127.0.0.1"]), client_ca=pki.ca)
    async with serve(respond(200), ssl_context=context) as server:
        check = http_check(server.url(scheme="https"), tls={"ca_file": pki.ca_file})
        outcome = await probe(check)
    assert outcome.error_kind is ErrorKind.TLS, outcome
    assert "client certificate" in (outcome.message or "")
    assert outcome.cert_not_after is not None  # read when our side of the handshake ended
    assert server.requests == []


async def test_mtls_rejection_is_tls_whoever_wins_the_race(probe: HttpProbe, pki: Pki) -> None:
    # A blocking OpenSSL server in a thread: sometimes the alert arrives, mostly the reset.
    context = pki.context(pki.ca.issue(["127.0.0.1"]), client_ca=pki.ca)
    with blocking_tls_server(context) as port:
        check = http_check(f"https://127.0.0.1:{port}/", tls={"ca_file": pki.ca_file})
        outcomes = [await probe(check) for _ in range(10)]
    assert {o.error_kind for o in outcomes} == {ErrorKind.TLS}
    assert all("certificate" in (o.message or "") for o in outcomes)


async def test_mtls_under_tls12_fails_in_the_handshake(probe: HttpProbe, pki: Pki) -> None:
    context = pki.context(pki.ca.issue(["127.0.0.1"]), client_ca=pki.ca)
    context.maximum_version = ssl.TLSVersion.TLSv1_2
    async with serve(respond(200), ssl_context=context) as server:  # closes, no alert
        check = http_check(server.url(scheme="https"), tls={"ca_file": pki.ca_file})
        closed = await probe(check)
    with blocking_tls_server(context) as port:  # sends the alert, as OpenSSL servers do
        check = http_check(f"https://127.0.0.1:{port}/", tls={"ca_file": pki.ca_file})
        alerted = await probe(check)
    assert closed.error_kind is ErrorKind.TLS, closed
    assert "closed" in (closed.message or "")
    assert alerted.error_kind is ErrorKind.TLS, alerted
    assert "handshake failure" in (alerted.message or "")


async def test_mtls_with_an_untrusted_client_certificate_is_tls(probe: HttpProbe, pki: Pki) -> None:
    stranger = CertificateAuthority("some other CA").issue(["monitor"], client=True)
    cert, key = stranger.write(pki.directory, "stranger")
    context = pki.context(pki.ca.issue(["127.0.0.1"]), client_ca=pki.ca)
    async with serve(respond(200), ssl_context=context) as server:
        check = http_check(
            server.url(scheme="https"),
            tls={"ca_file": pki.ca_file, "client_cert": cert, "client_key": key},
        )
        outcome = await probe(check)
    assert outcome.error_kind is ErrorKind.TLS, outcome


async def test_mtls_with_client_certificate_is_ok(
    probe: HttpProbe, pki: Pki, client_files: dict[str, Path]
) -> None:
    context = pki.context(pki.ca.issue(["127.0.0.1"]), client_ca=pki.ca)
    async with serve(respond(200), ssl_context=context) as server:
        check = http_check(server.url(scheme="https"), tls={"ca_file": pki.ca_file, **client_files})
        outcome = await probe(check)
    assert outcome.ok, outcome


async def test_contexts_are_built_once_and_shared(pki: Pki) -> None:
    contexts = ContextCache()
    probe = HttpProbe(contexts=contexts)
    pair = pki.ca.issue(["127.0.0.1"])
    async with serve(respond(200), ssl_context=pki.context(pair)) as server:
        check = http_check(server.url(scheme="https"), tls={"ca_file": pki.ca_file})
        for _ in range(3):
            assert (await probe(check)).ok
    assert len(contexts) == 1
