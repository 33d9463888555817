"""One classifier: real network failures on 127.0.0.1, classified by ``net.errors``, and
the same kind through a probe, the X-Road client and the sinks."""

from __future__ import annotations

import errno
import socket
import ssl
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, get_args

import httpx
import pytest

from scd_monitor.config.types import TlsOptions
from scd_monitor.errors import SinkError
from scd_monitor.net.errors import (
    NetErrorKind,
    NetFailure,
    classify,
    classify_cause,
    describe_ssl_error,
    is_verify_failure,
)
from scd_monitor.net.tls import build_context
from scd_monitor.probes.base import ErrorKind
from scd_monitor.probes.http import HttpProbe
from scd_monitor.probes.tls import TlsProbe
from scd_monitor.probes.tlsinfo import error_kind
from scd_monitor.sinks.webhook import WebhookSink
from scd_monitor.xroad.client import check_health
from scd_monitor.xroad.errors import FailureKind, XRoadTransportError
from scd_simulator.certs import CertificateAuthority, self_signed
from tests.net.clients import email_sink, payload, sink_kind, webhook_sink
from tests.net.servers import (
    break_dns,
    https_server,
    server_context,
    silent_listener,
    unused_port,
)
from tests.probes.probe_servers import http_check, tls_check


async def failure_of(
    url: str, *, verify: ssl.SSLContext | bool = True, seconds: float = 5.0
) -> Any:
    """What a bare httpx GET of ``url`` raises."""
    async with httpx.AsyncClient(verify=verify, trust_env=False, timeout=seconds) as client:
        with pytest.raises(httpx.HTTPError) as caught:
            await client.get(url)
    return caught.value


async def through_every_client(
    host: str,
    port: int,
    *,
    scheme: str = "http",
    seconds: float = 2.0,
    tls: dict[str, Any] | None = None,
) -> dict[str, str]:
    """The failure kind each client reports for the same target."""
    tls = tls or {}
    url = f"{scheme}://{host}:{port}/x"
    kinds: dict[str, str] = {}
    outcome = await HttpProbe()(http_check(url, timeout=seconds, tls=tls))
    kinds["http_probe"] = str(outcome.error_kind)
    if scheme == "https":
        outcome = await TlsProbe()(tls_check(port, host=host, timeout=seconds, tls=tls))
        kinds["tls_probe"] = str(outcome.error_kind)
    with pytest.raises(XRoadTransportError) as xroad:
        await check_health(url, tls=TlsOptions.model_validate(tls), timeout=seconds)
    kinds["xroad_client"] = xroad.value.kind
    sink = webhook_sink(url, tls, timeout=f"{seconds}s")
    with pytest.raises(SinkError) as webhook:
        await WebhookSink(sink).deliver(payload())
    if "no answer within" in str(webhook.value):  # the sink's own words for a timeout
        assert not webhook.value.permanent
        kinds["webhook_sink"] = "timeout"
    else:
        kinds["webhook_sink"] = sink_kind(webhook.value)
    return kinds


# -- real failures ---------------------------------------------------------------------


async def test_refused_port() -> None:
    port = unused_port()
    exc = await failure_of(f"http://127.0.0.1:{port}/")
    assert classify(exc) == NetFailure(NetErrorKind.CONNECT, "connection refused")
    with pytest.raises(OSError) as raw:
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
    assert classify(raw.value) == NetFailure(NetErrorKind.CONNECT, "connection refused")
    assert set((await through_every_client("127.0.0.1", port)).values()) == {"connect"}
    with pytest.raises(SinkError) as email:
        await email_sink(port, {}).deliver(payload())
    assert sink_kind(email.value) == "connect"


async def test_unresolvable_name(monkeypatch: pytest.MonkeyPatch) -> None:
    break_dns(monkeypatch)
    host = "servicio-que-no-existe.invalid"
    failure = classify(await failure_of(f"http://{host}/"))
    assert failure.kind is NetErrorKind.DNS and failure.transient
    assert failure.message == "name resolution failed: Name or service not known"
    assert set((await through_every_client(host, 80)).values()) == {"dns"}
    tls_outcome = await TlsProbe()(tls_check(443, host=host))
    assert tls_outcome.error_kind is ErrorKind.DNS
    with pytest.raises(SinkError) as email:
        await email_sink(25, {}, host=host).deliver(payload())
    assert sink_kind(email.value) == "dns"


async def test_timeout_against_a_listener_that_never_answers() -> None:
    with silent_listener() as port:
        exc = await failure_of(f"http://127.0.0.1:{port}/", seconds=0.3)
        assert isinstance(exc, httpx.ReadTimeout)
        assert classify(exc) == NetFailure(NetErrorKind.TIMEOUT, "timed out")
        with (
            socket.create_connection(("127.0.0.1", port), timeout=0.2) as raw,
            pytest.raises(OSError) as caught,
        ):
            raw.recv(1)
        assert classify(caught.value).kind is NetErrorKind.TIMEOUT
        kinds = await through_every_client("127.0.0.1", port, seconds=0.3)
        kinds |= {"tls_probe": str((await TlsProbe()(tls_check(port, timeout=0.3))).error_kind)}
        with pytest.raises(SinkError) as email:
            await email_sink(port, {}, timeout="300ms").deliver(payload())
    assert set(kinds.values()) == {"timeout"}, kinds
    assert sink_kind(email.value) == "timeout"  # smtplib: "Connection unexpectedly closed"


async def test_bad_certificates(tmp_path: Path) -> None:
    ca = CertificateAuthority()
    now = datetime.now(UTC)
    expired = ca.issue(
        ["127.0.0.1"], not_before=now - timedelta(days=30), not_after=now - timedelta(days=1)
    )
    ca_file = str(ca.write_cert(tmp_path / "ca.crt"))
    verifying = build_context(TlsOptions(ca_file=Path(ca_file)))
    for pair, reason in (
        (self_signed(["127.0.0.1"]), "self-signed certificate"),
        (expired, "certificate has expired"),
    ):
        async with https_server(server_context(pair, tmp_path)) as server:
            exc = await failure_of(server.url(), verify=verifying)
            assert is_verify_failure(exc)
            assert classify(exc) == NetFailure(
                NetErrorKind.TLS, f"certificate verify failed: {reason}"
            )
            kinds = await through_every_client(
                "127.0.0.1", server.port, scheme="https", tls={"ca_file": ca_file}
            )
        assert set(kinds.values()) == {"tls"}, kinds


# -- the rules, on constructed exceptions ----------------------------------------------


def test_the_chain_is_walked_outermost_first() -> None:
    try:
        try:
            raise ConnectionResetError(errno.ECONNRESET, "reset")
        except OSError as inner:
            raise httpx.ReadError("read failed") from inner
    except httpx.ReadError as exc:
        outer = exc
    assert classify(outer) == NetFailure(NetErrorKind.CONNECT, "connection reset by peer")
    group = ExceptionGroup("many", [ValueError("x"), socket.gaierror(-2, "Name unknown")])
    assert classify_cause(group) == NetFailure(
        NetErrorKind.DNS, "name resolution failed: Name unknown"
    )
    assert classify_cause(ValueError("nothing network")) is None


def test_the_monitor_out_of_resources_is_internal_and_transient() -> None:
    failure = classify(OSError(errno.EMFILE, "Too many open files"))
    assert failure.kind is NetErrorKind.INTERNAL and failure.transient
    assert failure.message == "monitor out of resources: Too many open files"


def test_httpx_classes() -> None:
    assert classify(httpx.ConnectError("")) == NetFailure(NetErrorKind.CONNECT, "connection failed")
    assert classify(httpx.ReadError("")).message == (
        "connection closed in the middle of the exchange"
    )
    closed = classify(httpx.RemoteProtocolError("Server disconnected without sending a response."))
    assert closed.kind is NetErrorKind.PROTOCOL
    assert closed.message.startswith("connection closed in the middle of the response")
    malformed = classify(httpx.RemoteProtocolError("illegal status line"))
    assert malformed.message == "malformed HTTP response: illegal status line"
    assert classify(httpx.DecodingError("bad gzip")).kind is NetErrorKind.PROTOCOL
    assert classify(httpx.PoolTimeout("pool")) == NetFailure(NetErrorKind.TIMEOUT, "timed out")
    for unsendable in (
        httpx.LocalProtocolError("Illegal header value"),
        httpx.UnsupportedProtocol("ftp"),
        httpx.InvalidURL("bad"),
        ValueError("bad"),
    ):
        failure = classify(unsendable)
        assert failure.kind is NetErrorKind.INTERNAL and not failure.transient, unsendable
        assert failure.message.startswith("cannot send the request: ")
    other = classify(OSError("something else"))
    assert other.kind is NetErrorKind.CONNECT and other.transient
    assert not classify(RuntimeError("a bug")).transient


def test_ssl_error_words() -> None:
    assert describe_ssl_error(ssl.SSLEOFError()) == "TLS connection closed by the peer"
    error = ssl.SSLError(1, "[SSL: TLSV1_ALERT_UNKNOWN_CA] tlsv1 alert unknown ca")
    error.reason = "TLSV1_ALERT_UNKNOWN_CA"
    assert describe_ssl_error(error) == "TLS error: tlsv1 alert unknown ca"


def test_every_kind_is_a_probe_kind_and_an_xroad_kind() -> None:
    for kind in NetErrorKind:
        assert error_kind(kind) is ErrorKind(kind.value)
        assert kind.value in get_args(FailureKind)
