"""The provider simulator, exercised with real requests on 127.0.0.1."""

from __future__ import annotations

import asyncio
import json
import ssl
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from cryptography import x509

from scd_monitor.catalog import HttpCheck, load_catalog
from scd_monitor.errors import ConfigError
from scd_simulator.cli import run_simulator
from scd_simulator.fleet import Simulator
from scd_simulator.scenario import (
    Behaviour,
    format_behaviour,
    load_scenario,
    parse_behaviour,
    parse_scenario,
)

EXAMPLE = Path(__file__).resolve().parents[2] / "config" / "simulator.example.yaml"

OIDC = "prestador-a/autenticacion/oidc"
CARPETA = "prestador-a/carpeta/health"
GENERIC = "prestador-b/generico/ping"
XROAD = "prestador-b/interoperabilidad/health"


def client(sim: Simulator, *, timeout: float = 2.0) -> httpx.AsyncClient:
    context = ssl.create_default_context(cafile=str(sim.ca_file))
    return httpx.AsyncClient(verify=context, timeout=timeout, trust_env=False)


@pytest.fixture
async def sim(tmp_path: Path) -> AsyncIterator[Simulator]:
    simulator = Simulator(tmp_path)
    simulator.add_endpoint(OIDC, kind="oidc", tls="valid")
    simulator.add_endpoint(CARPETA, kind="carpeta")
    simulator.add_endpoint(GENERIC)
    simulator.add_endpoint(XROAD, kind="xroad_health")
    for name in ("status", "slow", "hang", "reset", "bad-json", "garbage", "scripted"):
        simulator.add_endpoint(f"prestador-c/comportamiento/{name}", kind="carpeta")
    async with simulator:
        yield simulator


def ep(name: str) -> str:
    return f"prestador-c/comportamiento/{name}"


# -- behaviours -------------------------------------------------------------------------


async def test_healthy_bodies_suit_the_kind(sim: Simulator) -> None:
    async with client(sim) as http:
        oidc = await http.get(sim.url(OIDC))
        carpeta = await http.get(sim.url(CARPETA))
        generic = await http.get(sim.url(GENERIC))
        xroad = await http.get(sim.url(XROAD))
    assert sim.url(OIDC).startswith("https://127.0.0.1:")
    assert oidc.status_code == 200
    doc = oidc.json()
    assert doc["issuer"] == sim.url(OIDC)
    for key in ("authorization_endpoint", "token_endpoint", "jwks_uri"):
        assert doc[key].startswith(sim.url(OIDC) + "/")
    assert carpeta.json() == {"status": "UP"}
    assert generic.status_code == 200
    assert generic.headers["content-type"].startswith("text/plain")
    assert xroad.status_code == 200
    assert sim.hits(OIDC) == 1
    assert sim.hits(CARPETA) == 1


async def test_status_with_body(sim: Simulator) -> None:
    sim.set_behaviour(ep("status"), {"status": 503, "body": '{"error": "mantenimiento"}'})
    sim.set_behaviour(GENERIC, {"status": 500})
    async with client(sim) as http:
        with_body = await http.get(sim.url(ep("status")))
        plain = await http.get(sim.url(GENERIC))
    assert with_body.status_code == 503
    assert with_body.json() == {"error": "mantenimiento"}
    assert plain.status_code == 500
    assert plain.text == "500 Internal Server Error\n"


async def test_slow_answers_after_the_delay(sim: Simulator) -> None:
    sim.set_behaviour(ep("slow"), {"slow": "300ms"})
    async with client(sim) as http:
        started = time.monotonic()
        response = await http.get(sim.url(ep("slow")))
        elapsed = time.monotonic() - started
    assert response.status_code == 200
    assert response.json() == {"status": "UP"}
    assert elapsed >= 0.3


async def test_hang_times_the_client_out(sim: Simulator) -> None:
    sim.set_behaviour(ep("hang"), "hang")
    async with client(sim, timeout=0.3) as http:
        with pytest.raises(httpx.ReadTimeout):
            await http.get(sim.url(ep("hang")))
    assert sim.hits(ep("hang")) == 1


async def test_reset_aborts_the_connection(sim: Simulator) -> None:
    sim.set_behaviour(ep("reset"), "reset")
    async with client(sim) as http:
        with pytest.raises((httpx.ReadError, httpx.RemoteProtocolError, httpx.ConnectError)):
            await http.get(sim.url(ep("reset")))


async def test_reset_on_tls_listener(sim: Simulator) -> None:
    sim.set_behaviour(OIDC, "reset")
    async with client(sim) as http:
        with pytest.raises((httpx.ReadError, httpx.RemoteProtocolError, httpx.ConnectError)):
            await http.get(sim.url(OIDC))


async def test_bad_json_fails_to_parse(sim: Simulator) -> None:
    sim.set_behaviour(ep("bad-json"), "bad_json")
    async with client(sim) as http:
        response = await http.get(sim.url(ep("bad-json")))
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    with pytest.raises(json.JSONDecodeError):
        response.json()


async def test_garbage_is_not_http(sim: Simulator) -> None:
    sim.set_behaviour(ep("garbage"), "garbage")
    async with client(sim) as http:
        with pytest.raises(httpx.RemoteProtocolError):
            await http.get(sim.url(ep("garbage")))


# -- timelines and runtime changes -----------------------------------------------------


async def test_timeline_switches_at_offsets(tmp_path: Path) -> None:
    sim = Simulator(tmp_path)
    sim.add_endpoint(
        "p/s/timeline",
        timeline=[
            {"at": "0s", "behaviour": "healthy"},
            {"at": "300ms", "behaviour": {"status": 503}},
            {"at": "600ms", "behaviour": "healthy"},
        ],
    )
    sim.add_endpoint("p/s/outage", outage={"from": "300ms", "to": "600ms"})
    async with sim, client(sim) as http:
        assert (await http.get(sim.url("p/s/timeline"))).status_code == 200
        assert (await http.get(sim.url("p/s/outage"))).status_code == 200
        await asyncio.sleep(0.35)
        assert (await http.get(sim.url("p/s/timeline"))).status_code == 503
        assert (await http.get(sim.url("p/s/outage"))).status_code == 503
        await asyncio.sleep(0.3)
        assert (await http.get(sim.url("p/s/timeline"))).status_code == 200
        assert (await http.get(sim.url("p/s/outage"))).status_code == 200


async def test_timeline_with_instants(tmp_path: Path) -> None:
    now = datetime.now(UTC)
    sim = Simulator(tmp_path)
    sim.add_endpoint("p/s/past", timeline=[{"at": now - timedelta(hours=1), "behaviour": "hang"}])
    sim.add_endpoint(
        "p/s/future",
        timeline=[{"at": (now + timedelta(hours=1)).isoformat(), "behaviour": "reset"}],
    )
    async with sim:
        assert sim.behaviour("p/s/past") == Behaviour(mode="hang")
        assert sim.behaviour("p/s/future") == Behaviour()  # healthy before the first phase


async def test_set_behaviour_and_back_to_the_timeline(sim: Simulator) -> None:
    target = ep("scripted")
    async with client(sim) as http:
        assert (await http.get(sim.url(target))).status_code == 200
        sim.set_behaviour(target, Behaviour.http_status(502))
        assert (await http.get(sim.url(target))).status_code == 502
        sim.set_behaviour(target, None)
        assert (await http.get(sim.url(target))).status_code == 200
    assert sim.hits(target) == 3
    with pytest.raises(KeyError):
        sim.set_behaviour("no/such/endpoint", "hang")
    with pytest.raises(ValueError, match="unknown behaviour"):
        sim.set_behaviour(target, "hnag")


async def test_control_api(sim: Simulator) -> None:
    target = ep("scripted")
    async with client(sim) as http:
        listing = await http.get(sim.control_url + "endpoints")
        assert listing.status_code == 200
        rows = {row["id"]: row for row in listing.json()}
        assert rows[OIDC]["url"] == sim.url(OIDC)
        assert rows[target]["behaviour"] == "healthy"
        assert rows[target]["hits"] == 0

        put = await http.put(sim.control_url + f"endpoints/{target}", json={"status": 503})
        assert put.status_code == 200
        assert put.json()["behaviour"] == {"status": 503}
        assert (await http.get(sim.url(target))).status_code == 503
        assert sim.behaviour(target) == Behaviour(mode="status", status=503)

        one = await http.get(sim.control_url + f"endpoints/{target}")
        assert one.json()["hits"] == 1
        assert one.json()["overridden"] is True

        reverted = await http.put(sim.control_url + f"endpoints/{target}", content=b"null")
        assert reverted.json()["behaviour"] == "healthy"
        assert (await http.get(sim.url(target))).status_code == 200

        bad = await http.put(sim.control_url + f"endpoints/{target}", json="explode")
        assert bad.status_code == 400
        assert "unknown behaviour" in bad.json()["error"]
        not_json = await http.put(sim.control_url + f"endpoints/{target}", content=b"{")
        assert not_json.status_code == 400
        missing = await http.put(sim.control_url + "endpoints/no/such/one", json="hang")
        assert missing.status_code == 404
        wrong_method = await http.delete(sim.control_url + f"endpoints/{target}")
        assert wrong_method.status_code == 405


# -- TLS ---------------------------------------------------------------------------------


async def test_expired_and_self_signed_listeners(tmp_path: Path) -> None:
    sim = Simulator(tmp_path)
    sim.add_endpoint("p/s/expired", tls="expired")
    sim.add_endpoint("p/s/self-signed", tls="self_signed")
    async with sim, client(sim) as http:
        with pytest.raises(httpx.ConnectError, match="expired"):
            await http.get(sim.url("p/s/expired"))
        with pytest.raises(httpx.ConnectError, match="certificate verify failed"):
            await http.get(sim.url("p/s/self-signed"))

        port = int(sim.listener_urls["expired"].rsplit(":", 1)[1])
        unverified = ssl.create_default_context()
        unverified.check_hostname = False
        unverified.verify_mode = ssl.CERT_NONE
        _, writer = await asyncio.open_connection("127.0.0.1", port, ssl=unverified)
        der = writer.get_extra_info("ssl_object").getpeercert(binary_form=True)
        writer.close()
        cert = x509.load_der_x509_certificate(der)
        assert cert.not_valid_after_utc < datetime.now(UTC)


# -- the HTTP server itself ------------------------------------------------------------------


async def raw(sim: Simulator, data: bytes) -> bytes:
    port = int(sim.listener_urls["none"].rsplit(":", 1)[1])
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(data)
    await writer.drain()
    answer = await asyncio.wait_for(reader.read(), 2)
    writer.close()
    return answer


async def test_server_rejects_garbage_and_oversize(sim: Simulator) -> None:
    assert (await raw(sim, b"\x16\x03\x01garbage\r\n\r\n")).startswith(b"HTTP/1.1 400 ")
    assert (await raw(sim, b"GET / HTTP/9.9\r\n\r\n")).startswith(b"HTTP/1.1 400 ")
    assert (await raw(sim, b"GET / HTTP/1.1\r\nbad header\r\n\r\n")).startswith(b"HTTP/1.1 400 ")
    too_big = b"POST / HTTP/1.1\r\nContent-Length: 99999999\r\n\r\n"
    assert (await raw(sim, too_big)).startswith(b"HTTP/1.1 413 ")
    chunked = b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
    assert (await raw(sim, chunked)).startswith(b"HTTP/1.1 501 ")
    assert (await raw(sim, b"GET /" + b"a" * 20000)).startswith(b"HTTP/1.1 431 ")


async def test_server_keep_alive_body_and_close(sim: Simulator) -> None:
    path = sim.url(GENERIC).split(":", 2)[2].split("/", 1)[1]
    two = (
        f"POST /{path} HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello"
        f"HEAD /{path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    ).encode()
    answer = await raw(sim, two)
    assert answer.count(b"HTTP/1.1 200 OK") == 2
    assert answer.endswith(b"Connection: close\r\n\r\n")  # HEAD: no body
    assert sim.hits(GENERIC) == 2
    assert (await raw(sim, b"GET /nowhere HTTP/1.0\r\n\r\n")).startswith(b"HTTP/1.1 404 ")


async def test_keep_alive_with_httpx(sim: Simulator) -> None:
    async with client(sim) as http:
        for _ in range(3):
            assert (await http.get(sim.url(OIDC))).status_code == 200
    assert sim.hits(OIDC) == 3


# -- the catalog ---------------------------------------------------------------------------


async def test_write_catalog_loads(sim: Simulator, tmp_path: Path) -> None:
    path = sim.write_catalog(tmp_path / "out" / "catalog.yaml", interval="30s", timeout="10s")
    catalog = load_catalog(path)
    checks = {c.id: c for c in catalog.resolved_checks()}
    assert set(checks) == set(sim.endpoint_ids)
    oidc = checks[OIDC]
    assert isinstance(oidc.spec, HttpCheck)
    assert oidc.spec.url == sim.url(OIDC)
    assert oidc.spec.tls.ca_file == sim.ca_file.resolve()
    assert [a.path for a in oidc.spec.json_assertions] == ["issuer"]
    assert oidc.service_type == "autenticacion_digital"
    assert oidc.interval == timedelta(seconds=30)
    assert oidc.timeout == timedelta(seconds=10)
    carpeta = checks[CARPETA]
    assert isinstance(carpeta.spec, HttpCheck)
    assert carpeta.spec.tls.ca_file is None
    assert carpeta.spec.expect_status == [200]
    with pytest.raises(ValueError, match="shorter than interval"):
        sim.write_catalog(tmp_path / "bad.yaml", interval="10s", timeout="10s")


async def test_fleet(tmp_path: Path) -> None:
    sim = Simulator.fleet(250, workdir=tmp_path, tls="valid")
    async with sim:
        catalog = load_catalog(sim.write_catalog(tmp_path / "catalog.yaml"))
        ids = sim.endpoint_ids
        async with client(sim) as http:
            responses = await asyncio.gather(*(http.get(sim.url(i)) for i in ids[:40]))
    assert len(ids) == len(set(ids)) == 250
    assert ids[0] == "flota-0001/servicio-01/check-01"
    assert ids[-1] == "flota-0003/servicio-05/check-10"
    assert len(catalog.providers) == 3
    assert [len(s.checks) for s in catalog.providers[0].services] == [10] * 10
    assert {s.type for s in catalog.providers[0].services} == {
        "autenticacion_digital",
        "carpeta_ciudadana",
        "interoperabilidad",
        "otro",
    }
    assert all(r.status_code == 200 for r in responses)


# -- scenarios -------------------------------------------------------------------------------


def test_example_scenario_is_valid() -> None:
    scenario = load_scenario(EXAMPLE)
    ids = [e.id for e in scenario.endpoints]
    assert "prestador-a/autenticacion/oidc" in ids
    outage = scenario.endpoints[0].phases()
    assert [p.at for p in outage] == [timedelta(0), timedelta(minutes=2), timedelta(minutes=4)]
    assert {e.tls for e in scenario.endpoints} == {"none", "valid", "expired", "self_signed"}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "endpoints:\n  - id: a/b/c\n    bogus: 1\n",
            "<s>:3: endpoints[0].bogus: unknown key 'bogus'",
        ),
        (
            "endpoints:\n  - id: a/b/c\n    behaviour: hnag\n",
            "<s>:3: endpoints[0].behaviour: unknown behaviour 'hnag'",
        ),
        (
            "endpoints:\n  - id: a/b/c\n    behaviour: {stauts: 503}\n",
            "unknown key(s) 'stauts' in behaviour",
        ),
        ("endpoints:\n  - id: a/b/c\n    behaviour: {status: 99}\n", "from 200 to 599"),
        ("endpoints:\n  - id: a/b\n", "endpoints[0].id: String should match pattern"),
        ("endpoints:\n  - id: a/b/c\n    tls: maybe\n", "endpoints[0].tls: Input should be"),
        (
            "endpoints:\n  - id: a/b/c\n    outage: {from: 4m, to: 2m}\n",
            "'to' must be later than 'from'",
        ),
        (
            "endpoints:\n  - id: a/b/c\n    timeline:\n      - {at: soon, behaviour: hang}\n",
            "<s>:4: endpoints[0].timeline[0].at: invalid time 'soon'",
        ),
        (
            "endpoints:\n  - id: a/b/c\n    timeline:\n"
            "      - {at: 2030-01-01T08:00:00, behaviour: hang}\n",
            "needs a UTC offset",
        ),
        (
            "endpoints:\n  - id: a/b/c\n    behaviour: hang\n"
            "    timeline: [{at: 0s, behaviour: hang}]\n",
            "either 'timeline' or 'behaviour'",
        ),
        ("endpoints:\n  - id: a/b/c\n  - id: a/b/c\n", "duplicate endpoint id 'a/b/c'"),
        ("endpoints:\n  - id: a/b/c\n    path: /_sim/x\n", "reserved for the control API"),
        ("listeners:\n  plain: {port: 80}\n", "listeners.plain"),
        ("endpoints: [\n", "invalid YAML"),
    ],
)
def test_scenario_validation_errors(text: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_scenario(text, filename="<s>")
    assert message in str(info.value)


def test_behaviour_round_trip() -> None:
    for spec in ("healthy", "hang", "reset", "bad_json", "garbage", {"slow": "2s"}):
        assert format_behaviour(parse_behaviour(spec)) == spec
    both = {"status": 504, "body": "tarde", "slow": "1m30s"}
    assert format_behaviour(parse_behaviour(both)) == both


# -- host check and the CLI entry point --------------------------------------------------------


async def test_non_loopback_host_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"only 127\.0\.0\.1 or ::1"):
        Simulator(tmp_path, host="0.0.0.0")  # noqa: S104  # the point: it must be refused
    with pytest.raises(ConfigError, match=r"only 127\.0\.0\.1 or ::1"):
        await run_simulator(None, workdir=tmp_path, catalog_out=None, host="192.168.1.10")


async def test_run_simulator_prints_ready_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    stop = asyncio.Event()
    task = asyncio.create_task(
        run_simulator(
            EXAMPLE,
            workdir=tmp_path,
            catalog_out=tmp_path / "catalog.yaml",
            fleet=5,
            fleet_tls="self_signed",
            stop=stop,
        )
    )
    for _ in range(200):
        await asyncio.sleep(0.01)
        out = capsys.readouterr().out
        if out:
            break
    ready = json.loads(out)
    assert ready["event"] == "simulator.ready"
    assert set(ready["listeners"]) == {"none", "valid", "expired", "self_signed"}
    assert ready["control"] == ready["listeners"]["none"] + "/_sim/"
    assert ready["endpoints"] == 11
    catalog = load_catalog(ready["catalog"])
    assert len(catalog.resolved_checks()) == 11
    async with httpx.AsyncClient(trust_env=False) as http:
        listing = await http.get(ready["control"] + "endpoints")
        health = await http.get(ready["listeners"]["none"] + "/health")
    assert len(listing.json()) == 11
    assert health.text == "OK\n"
    stop.set()
    await asyncio.wait_for(task, 2)
