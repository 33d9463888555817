"""One trust policy: the same TLS options mean the same thing to a probe, the X-Road
client and the sinks, because every one of them gets its context from ``net.tls``.

Real TLS servers on 127.0.0.1 with generated certificates; each scenario runs through
every client and expects the same verdict from all of them.
"""

from __future__ import annotations

import os
import ssl
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import certifi
import pytest

from scd_monitor.config.types import TlsOptions
from scd_monitor.errors import SinkError
from scd_monitor.net.tls import (
    HTTP_ALPN,
    MINIMUM_VERSION,
    ContextCache,
    build_context,
    httpx_extensions,
    server_name,
    tls_files,
    with_absolute_files,
)
from scd_monitor.probes.http import HttpProbe
from scd_monitor.probes.tls import TlsProbe
from scd_monitor.sinks.webhook import WebhookSink
from scd_monitor.xroad.client import HealthStatus, check_health
from scd_monitor.xroad.errors import XRoadTransportError
from scd_simulator.certs import CertificateAuthority, self_signed
from tests.incidents.receivers import SmtpServer
from tests.net.clients import email_sink, payload, sink_kind, webhook_sink
from tests.net.servers import https_server, server_context
from tests.probes.probe_servers import http_check, tls_check

Client = Callable[[int, dict[str, Any], ContextCache], Awaitable[str]]
"""Connect to 127.0.0.1:port with these TLS options; "ok" or the failure's kind."""


async def http_probe(port: int, tls: dict[str, Any], contexts: ContextCache) -> str:
    check = http_check(f"https://127.0.0.1:{port}/", timeout=5.0, tls=tls)
    outcome = await HttpProbe(contexts=contexts)(check)
    return "ok" if outcome.ok else str(outcome.error_kind)


async def tls_probe(port: int, tls: dict[str, Any], contexts: ContextCache) -> str:
    outcome = await TlsProbe(contexts=contexts)(tls_check(port, timeout=5.0, tls=tls))
    return "ok" if outcome.ok else str(outcome.error_kind)


async def xroad_client(port: int, tls: dict[str, Any], contexts: ContextCache) -> str:
    try:
        report = await check_health(
            f"https://127.0.0.1:{port}/",
            tls=TlsOptions.model_validate(tls),
            contexts=contexts,
            timeout=5.0,
        )
    except XRoadTransportError as exc:
        return exc.kind
    assert report.status is HealthStatus.HEALTHY
    return "ok"


async def webhook(port: int, tls: dict[str, Any], contexts: ContextCache) -> str:
    sink = WebhookSink(webhook_sink(f"https://127.0.0.1:{port}/x", tls), contexts=contexts)
    try:
        await sink.deliver(payload())
    except SinkError as exc:
        return sink_kind(exc)
    return "ok"


CLIENTS: dict[str, Client] = {
    "http_probe": http_probe,
    "tls_probe": tls_probe,
    "xroad_client": xroad_client,
    "webhook_sink": webhook,
}
clients = pytest.mark.parametrize("client", list(CLIENTS.values()), ids=list(CLIENTS))


@pytest.fixture(scope="module")
def ca() -> CertificateAuthority:
    return CertificateAuthority()


@pytest.fixture
def ca_file(ca: CertificateAuthority, tmp_path: Path) -> str:
    return str(ca.write_cert(tmp_path / "ca.crt"))


# -- the same verdict through every client ---------------------------------------------


@clients
async def test_the_ca_file_is_the_only_trust_anchor(
    client: Client, ca: CertificateAuthority, ca_file: str, tmp_path: Path
) -> None:
    context = server_context(ca.issue(["127.0.0.1"]), tmp_path)
    async with https_server(context) as server:
        untrusted = await client(server.port, {}, ContextCache())  # certifi's bundle only
        trusted = await client(server.port, {"ca_file": ca_file}, ContextCache())
    assert (untrusted, trusted) == ("tls", "ok")


@clients
async def test_without_verification_anything_is_accepted(client: Client, tmp_path: Path) -> None:
    context = server_context(self_signed(["127.0.0.1"]), tmp_path)
    async with https_server(context) as server:
        verified = await client(server.port, {}, ContextCache())
        unverified = await client(server.port, {"verify": False}, ContextCache())
    assert (verified, unverified) == ("tls", "ok")


@clients
async def test_mutual_tls(
    client: Client, ca: CertificateAuthority, ca_file: str, tmp_path: Path
) -> None:
    context = server_context(ca.issue(["127.0.0.1"]), tmp_path, client_ca=ca, tls12=True)
    cert, key = ca.issue(["monitor"], client=True).write(tmp_path, "client")
    async with https_server(context) as server:
        anonymous = await client(server.port, {"ca_file": ca_file}, ContextCache())
        with_cert = await client(
            server.port,
            {"ca_file": ca_file, "client_cert": str(cert), "client_key": str(key)},
            ContextCache(),
        )
        assert server.requests >= (0 if client is tls_probe else 1)
    assert (anonymous, with_cert) == ("tls", "ok")


@clients
async def test_server_name_is_sent_and_checked(
    client: Client, ca: CertificateAuthority, ca_file: str, tmp_path: Path
) -> None:
    context = server_context(ca.issue(["scd.example"]), tmp_path)
    async with https_server(context) as server:
        by_address = await client(server.port, {"ca_file": ca_file}, ContextCache())
        named = await client(
            server.port, {"ca_file": ca_file, "server_name": "scd.example"}, ContextCache()
        )
    assert (by_address, named) == ("tls", "ok")
    # No SNI for an IP address; the configured name otherwise.
    assert server.server_names[0] is None
    assert server.server_names[-1] == "scd.example"


async def test_every_client_shares_one_context_per_options(
    ca: CertificateAuthority, ca_file: str, tmp_path: Path
) -> None:
    context = server_context(ca.issue(["127.0.0.1"]), tmp_path)
    contexts = ContextCache()
    async with https_server(context) as server:
        for client in CLIENTS.values():
            assert await client(server.port, {"ca_file": ca_file}, contexts) == "ok"
    assert len(contexts) == 1


# -- e-mail: the same policy, without ALPN --------------------------------------------


async def test_email_starttls_follows_the_same_policy(
    ca: CertificateAuthority, ca_file: str, tmp_path: Path
) -> None:
    cert, key = ca.issue(["smtp.scd.example"]).write(tmp_path, "smtp")
    with SmtpServer(cert, key) as smtp:
        outcomes = []
        for tls in (
            {},
            {"ca_file": ca_file},
            {"ca_file": ca_file, "server_name": "smtp.scd.example"},
            {"verify": False},
        ):
            try:
                await email_sink(smtp.port, tls).deliver(payload())
                outcomes.append("ok")
            except SinkError as exc:
                outcomes.append(sink_kind(exc))
    assert outcomes == ["tls", "tls", "ok", "ok"]
    assert len(smtp.messages) == 2


# -- the builder and the cache ---------------------------------------------------------


def test_policy_of_a_verifying_context(ca_file: str) -> None:
    context = build_context(TlsOptions(ca_file=Path(ca_file)))
    assert context.minimum_version is MINIMUM_VERSION is ssl.TLSVersion.TLSv1_2
    assert context.verify_mode is ssl.CERT_REQUIRED and context.check_hostname
    (anchor,) = context.get_ca_certs()
    assert ("commonName", "scd-monitor test CA") in [rdn[0] for rdn in anchor["subject"]]


def test_default_trust_is_certifi_not_the_host_store() -> None:
    context = build_context(TlsOptions())
    reference = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    reference.load_verify_locations(cafile=certifi.where())
    assert context.cert_store_stats() == reference.cert_store_stats()


def test_a_non_verifying_context_ignores_the_ca_file(ca_file: str) -> None:
    context = build_context(TlsOptions(ca_file=Path(ca_file)), verify=False)
    assert context.verify_mode is ssl.CERT_NONE and not context.check_hostname
    assert context.get_ca_certs() == []
    assert context.minimum_version is MINIMUM_VERSION


def test_unusable_files_raise_before_any_io(tmp_path: Path) -> None:
    with pytest.raises(OSError):
        build_context(TlsOptions(ca_file=tmp_path / "missing.pem"))
    (tmp_path / "junk.pem").write_text("not a certificate")
    with pytest.raises(ssl.SSLError):
        ContextCache().get(TlsOptions(client_cert=tmp_path / "junk.pem"))


def test_cache_reuses_rebuilds_and_evicts(ca: CertificateAuthority, tmp_path: Path) -> None:
    ca_path = ca.write_cert(tmp_path / "ca.crt")
    cache = ContextCache(max_size=3)
    options = TlsOptions(ca_file=ca_path, server_name="a.example")
    first = cache.get(options)
    assert cache.get(options.model_copy(update={"server_name": "b.example"})) is first
    assert cache.get(options, alpn=()) is not first  # SMTP: no ALPN, its own context
    assert cache.get(options, verify=False) is not first
    assert len(cache) == 3
    # A rotated CA file (new content) is a new context.
    other = CertificateAuthority("another CA")
    ca_path.write_bytes(other.cert_pem + b"\n")
    os.utime(ca_path, ns=(0, 1))
    rotated = cache.get(options)
    assert rotated is not first and len(cache) == 3  # the oldest was evicted
    assert cache.get(options) is rotated


def test_tls_files_and_absolute_paths(tmp_path: Path) -> None:
    options = TlsOptions(ca_file=Path("ca.pem"), client_cert=Path("c.pem"))
    assert tls_files(options) == [("ca_file", Path("ca.pem")), ("client_cert", Path("c.pem"))]
    absolute = with_absolute_files(options, tmp_path)
    assert absolute.ca_file == tmp_path.resolve() / "ca.pem"
    assert absolute.client_cert == tmp_path.resolve() / "c.pem"
    assert with_absolute_files(TlsOptions(), tmp_path) == TlsOptions()
    assert server_name(options, "h") == "h"
    assert server_name(TlsOptions(server_name="n"), "h") == "n"
    assert httpx_extensions(TlsOptions(server_name="n")) == {"sni_hostname": "n"}
    assert httpx_extensions(options) == {}
    assert HTTP_ALPN == ("http/1.1",)
