"""The three X-Road probes against the fake security server and configuration source."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from scd_monitor.catalog.models import (
    ResolvedCheck,
    XRoadGlobalconfCheck,
    XRoadHealthCheck,
    XRoadMetaserviceCheck,
)
from scd_monitor.clock import SystemClock
from scd_monitor.probes import XRoadGlobalconfProbe, XRoadHealthProbe, XRoadMetaserviceProbe
from scd_monitor.probes.base import ErrorKind, Outcome
from scd_monitor.runtime.scheduling import run_probe
from scd_monitor.sla.derive import DerivePolicy, derive_spans
from scd_monitor.sla.model import State
from scd_simulator.confsource import FakeConfigurationSource
from scd_simulator.directory import FakeService, XRoadDirectory
from scd_simulator.securityserver import FakeSecurityServer
from tests.probes.probe_servers import resolved, unused_port

MONITOR = "CO/GOB/8999999999/MONITOR"
CARPETA = "CO/GOB/899999001/CARPETA"
AUTH = "CO/GOB/899999002/AUTENTICACION"


def directory() -> XRoadDirectory:
    d = XRoadDirectory()
    d.add_subsystem(
        "GOB",
        "899999001",
        "CARPETA",
        name="Ministerio TIC",
        services=[
            FakeService("documentos", kind="OPENAPI", endpoints=(("GET", "/documentos"),)),
            FakeService("health"),
            FakeService("radicar", version="v1", kind="WSDL"),
        ],
        allowed={"documentos", "radicar"},
    )
    d.add_subsystem("GOB", "899999002", "AUTENTICACION", name="Registraduría")
    d.add_subsystem("GOB", "8999999999", "MONITOR", name="scd-monitor")
    d.add_security_server("CO/GOB/899999001", "ss1", clients=[CARPETA, AUTH])
    return d


@pytest.fixture
def fake() -> XRoadDirectory:
    return directory()


@pytest.fixture
async def ss(fake: XRoadDirectory) -> AsyncIterator[FakeSecurityServer]:
    async with FakeSecurityServer(fake) as server:
        yield server


@pytest.fixture
async def cs(fake: XRoadDirectory) -> AsyncIterator[FakeConfigurationSource]:
    async with FakeConfigurationSource(fake) as source:
        yield source


def health_check(url: str, *, timeout: float = 1.0) -> ResolvedCheck:
    spec = XRoadHealthCheck.model_validate({"id": "health", "kind": "xroad_health", "url": url})
    return resolved(spec, timeout=timeout)


def meta_check(url: str, metaservice: str, *, timeout: float = 2.0, **fields: Any) -> ResolvedCheck:
    spec = XRoadMetaserviceCheck.model_validate(
        {
            "id": "meta",
            "kind": "xroad_metaservice",
            "security_server": {"url": url, "client": fields.pop("client", MONITOR)},
            "metaservice": metaservice,
            **fields,
        }
    )
    return resolved(spec, timeout=timeout)


def conf_check(url: str, *, timeout: float = 3.0, **fields: Any) -> ResolvedCheck:
    spec = XRoadGlobalconfCheck.model_validate(
        {"id": "globalconf", "kind": "xroad_globalconf", "url": url, **fields}
    )
    return resolved(spec, timeout=timeout)


async def health(url: str) -> Outcome:
    return await XRoadHealthProbe()(health_check(url))


async def meta(url: str, metaservice: str, **fields: Any) -> Outcome:
    return await XRoadMetaserviceProbe()(meta_check(url, metaservice, **fields))


async def conf(url: str, **fields: Any) -> Outcome:
    return await XRoadGlobalconfProbe()(conf_check(url, **fields))


# -- xroad_health -----------------------------------------------------------------------


async def test_health_200_is_ok(ss: FakeSecurityServer) -> None:
    outcome = await health(ss.health_url)
    assert outcome.ok
    assert outcome.status_code == 200
    assert outcome.details["xroad_health"] == "healthy"


async def test_health_500_fails_with_the_body_as_evidence(ss: FakeSecurityServer) -> None:
    ss.set_health(500)
    outcome = await health(ss.health_url)
    assert not outcome.ok
    assert outcome.error_kind is ErrorKind.STATUS
    assert outcome.status_code == 500
    assert "unhealthy" in (outcome.message or "")
    assert "Health check failed" in (outcome.message or "")
    assert "maintenance" not in outcome.details


async def test_health_503_is_maintenance_not_downtime(ss: FakeSecurityServer) -> None:
    ss.set_health(503)
    check = health_check(ss.health_url)
    probe = XRoadHealthProbe()
    results = [await run_probe(probe, check, vantage="v", clock=SystemClock()) for _ in range(4)]
    assert all(r.error_kind is ErrorKind.STATUS and r.outcome.status_code == 503 for r in results)
    assert all(r.outcome.details["maintenance"] is True for r in results)
    assert "maintenance mode" in (results[0].outcome.message or "")
    policy = DerivePolicy(latency_threshold=timedelta(seconds=2), staleness=timedelta(seconds=30))
    assert {s.state for s in derive_spans(results, policy)} == {State.MAINTENANCE}


async def test_health_other_status_and_no_answer(ss: FakeSecurityServer) -> None:
    ss.set_health(404)
    outcome = await health(ss.health_url)
    assert outcome.error_kind is ErrorKind.STATUS
    assert outcome.status_code == 404
    refused = await health(f"http://127.0.0.1:{unused_port()}/")
    assert refused.error_kind is ErrorKind.CONNECT


# -- xroad_metaservice ------------------------------------------------------------------


async def test_list_clients_with_expected_subsystems(ss: FakeSecurityServer) -> None:
    outcome = await meta(ss.url, "list_clients", expect_clients=[CARPETA, AUTH], min_entries=4)
    assert outcome.ok, outcome.message
    assert outcome.details["entries"] == 6  # three members, three subsystems
    missing = await meta(ss.url, "list_clients", expect_clients=["CO/GOB/1/NADA", CARPETA])
    assert missing.error_kind is ErrorKind.ASSERTION
    assert "CO/GOB/1/NADA" in (missing.message or "")
    assert missing.details["missing"] == 1


async def test_rest_and_soap_list_methods_list_the_services(ss: FakeSecurityServer) -> None:
    rest = await meta(
        ss.url,
        "rest_list_methods",
        provider=CARPETA,
        expect_services=["documentos", f"{CARPETA}/health"],
    )
    assert rest.ok, rest.message
    assert rest.details["entries"] == 2
    soap = await meta(
        ss.url, "soap_list_methods", provider=CARPETA, expect_services=[f"{CARPETA}/radicar/v1"]
    )
    assert soap.ok, soap.message
    wrong_version = await meta(
        ss.url, "soap_list_methods", provider=CARPETA, expect_services=[f"{CARPETA}/radicar/v2"]
    )
    assert wrong_version.error_kind is ErrorKind.ASSERTION
    assert "radicar/v2" in (wrong_version.message or "")


async def test_a_removed_service_fails_the_assertion(
    ss: FakeSecurityServer, fake: XRoadDirectory
) -> None:
    fake.remove_service(CARPETA, "documentos")
    outcome = await meta(
        ss.url, "rest_list_methods", provider=CARPETA, expect_services=["documentos"]
    )
    assert outcome.error_kind is ErrorKind.ASSERTION
    assert "documentos" in (outcome.message or "")


async def test_allowed_methods_and_min_entries(ss: FakeSecurityServer) -> None:
    allowed = await meta(
        ss.url, "rest_allowed_methods", provider=CARPETA, expect_services=["health"]
    )
    assert allowed.error_kind is ErrorKind.ASSERTION  # "health" is listed, not allowed
    empty = await meta(ss.url, "rest_list_methods", provider=AUTH, min_entries=1)
    assert empty.error_kind is ErrorKind.ASSERTION
    assert "at least 1" in (empty.message or "")


async def test_descriptions(ss: FakeSecurityServer) -> None:
    openapi = await meta(ss.url, "rest_get_openapi", service=f"{CARPETA}/documentos")
    assert openapi.ok, openapi.message
    assert int(openapi.details["bytes"]) > 0
    wsdl = await meta(ss.url, "soap_get_wsdl", service=f"{CARPETA}/radicar/v1")
    assert wsdl.ok, wsdl.message
    not_openapi = await meta(ss.url, "rest_get_openapi", service=f"{CARPETA}/health")
    assert not_openapi.error_kind is ErrorKind.STATUS
    assert not_openapi.details["xroad_error_code"] == "Server.ServerProxy.InvalidServiceType"
    assert not_openapi.details["xroad_fault_side"] == "provider"


@pytest.mark.parametrize(
    ("code", "side"),
    [
        ("Server.ServerProxy.ServiceFailed", "provider"),
        ("Server.ClientProxy.NetworkError", "consumer"),
    ],
)
@pytest.mark.parametrize("metaservice", ["rest_list_methods", "soap_list_methods"])
async def test_faults_carry_their_code_and_side(
    ss: FakeSecurityServer, code: str, side: str, metaservice: str
) -> None:
    ss.set_fault(code)
    outcome = await meta(ss.url, metaservice, provider=CARPETA)
    assert outcome.error_kind is ErrorKind.STATUS
    assert outcome.details["xroad_error_code"] == code
    assert outcome.details["xroad_fault_side"] == side
    assert outcome.details["xroad_metaservice"] == metaservice
    assert code in (outcome.message or "")


async def test_an_unknown_monitor_client_is_a_consumer_side_fault(ss: FakeSecurityServer) -> None:
    outcome = await meta(ss.url, "list_clients", client="CO/GOB/1/DESCONOCIDO")
    # listClients does not check the client; a REST call does.
    assert outcome.ok
    rest = await meta(ss.url, "rest_list_methods", provider=CARPETA, client="CO/GOB/1/DESCONOCIDO")
    assert rest.details["xroad_error_code"] == "Server.ClientProxy.UnknownMember"
    assert rest.details["xroad_fault_side"] == "consumer"


async def test_transport_errors_keep_their_kind(ss: FakeSecurityServer) -> None:
    refused = await meta(f"http://127.0.0.1:{unused_port()}", "list_clients")
    assert refused.error_kind is ErrorKind.CONNECT
    ss.set_delay(2.0, only=["listMethods"])
    probe = XRoadMetaserviceProbe()
    slow = await probe(meta_check(ss.url, "rest_list_methods", provider=CARPETA, timeout=0.3))
    assert slow.error_kind is ErrorKind.TIMEOUT


async def test_mutual_tls_with_the_members_certificate(
    fake: XRoadDirectory, tmp_path: Path
) -> None:
    async with FakeSecurityServer(fake, tls=True, workdir=tmp_path) as server:
        cert, key = server.issue_client_certificate().write(tmp_path, "monitor")
        ca = tmp_path / "xroad-ca.crt"
        tls = {"ca_file": str(ca), "client_cert": str(cert), "client_key": str(key)}
        spec = XRoadMetaserviceCheck.model_validate(
            {
                "id": "m",
                "kind": "xroad_metaservice",
                "security_server": {"url": server.url, "client": MONITOR, "tls": tls},
                "metaservice": "soap_list_methods",
                "provider": CARPETA,
            }
        )
        outcome = await XRoadMetaserviceProbe()(resolved(spec, timeout=3.0))
        assert outcome.ok, outcome.message
        without = await meta(server.url, "soap_list_methods", provider=CARPETA)
        assert not without.ok
        assert without.error_kind in (ErrorKind.TLS, ErrorKind.CONNECT, ErrorKind.PROTOCOL)


# -- xroad_globalconf -------------------------------------------------------------------


async def test_globalconf_ok_with_expiry_and_counts(
    cs: FakeConfigurationSource, tmp_path: Path
) -> None:
    anchor = cs.write_anchor(tmp_path / "anchor.xml")
    outcome = await conf(
        cs.internal_url,
        anchor=str(anchor),
        expect_members=[CARPETA, "CO/GOB/899999002"],
        expect_security_servers=["CO/GOB/899999001/ss1"],
        min_members=3,
    )
    assert outcome.ok, outcome.message
    expires = datetime.fromisoformat(str(outcome.details["globalconf_expires_at"]))
    assert expires > datetime.now(UTC) + timedelta(minutes=5)
    assert outcome.details["members"] == 3
    assert outcome.details["subsystems"] == 3
    assert outcome.details["security_servers"] == 1
    assert outcome.details["signature_verified"] is True


async def test_globalconf_expired_or_expiring(
    cs: FakeConfigurationSource, fake: XRoadDirectory
) -> None:
    fake.set_expiry(datetime.now(UTC) - timedelta(minutes=3))
    expired = await conf(cs.internal_url)
    assert expired.error_kind is ErrorKind.ASSERTION
    assert "expired" in (expired.message or "")
    assert "globalconf_expires_at" in expired.details
    fake.set_expiry(datetime.now(UTC) + timedelta(seconds=30))
    expiring = await conf(cs.internal_url, min_validity="2m")
    assert expiring.error_kind is ErrorKind.ASSERTION
    assert "min_validity" in (expiring.message or "")
    assert (await conf(cs.internal_url, min_validity="10s")).ok


async def test_globalconf_assertions_and_failures(
    cs: FakeConfigurationSource, tmp_path: Path
) -> None:
    missing = await conf(cs.internal_url, expect_members=["CO/GOB/123/NADA"])
    assert missing.error_kind is ErrorKind.ASSERTION
    assert "CO/GOB/123/NADA" in (missing.message or "")
    anchor = cs.write_anchor(tmp_path / "anchor.xml")
    cs.set_tamper("signature")
    tampered = await conf(cs.internal_url, anchor=str(anchor))
    assert tampered.error_kind is ErrorKind.PROTOCOL
    cs.set_tamper(None)
    cs.set_status(500)
    failed = await conf(cs.internal_url)
    assert failed.error_kind is ErrorKind.STATUS
    assert failed.status_code == 500
    cs.set_status(None)
    no_file = await conf(cs.internal_url, verification_cert=str(tmp_path / "gone.pem"))
    assert no_file.error_kind is ErrorKind.INTERNAL
