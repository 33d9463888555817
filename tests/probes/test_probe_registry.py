"""The probe registry agrees with the catalog's check kinds."""

from __future__ import annotations

import inspect

from scd_monitor.catalog.models import (
    CHECK_KINDS,
    OidcCheck,
    XRoadGlobalconfCheck,
    XRoadHealthCheck,
    XRoadMetaserviceCheck,
)
from scd_monitor.probes import (
    HttpProbe,
    OidcProbe,
    Outcome,
    Probe,
    TlsProbe,
    XRoadGlobalconfProbe,
    XRoadHealthProbe,
    XRoadMetaserviceProbe,
    build_probes,
)
from scd_monitor.probes.base import ErrorKind
from tests.probes.probe_servers import http_check, resolved, tls_check, unused_port


def test_registry_keys_are_the_catalog_kinds() -> None:
    assert set(build_probes()) == set(CHECK_KINDS)
    assert len(build_probes()) == len(CHECK_KINDS)


def test_registry_values_implement_the_protocol() -> None:
    probes: dict[str, Probe] = build_probes()  # mypy checks the protocol here
    assert isinstance(probes["http"], HttpProbe)
    assert isinstance(probes["tls"], TlsProbe)
    assert isinstance(probes["xroad_health"], XRoadHealthProbe)
    assert isinstance(probes["xroad_metaservice"], XRoadMetaserviceProbe)
    assert isinstance(probes["xroad_globalconf"], XRoadGlobalconfProbe)
    assert isinstance(probes["oidc"], OidcProbe)
    for probe in probes.values():
        assert callable(probe)
        assert inspect.iscoroutinefunction(type(probe).__call__)
        assert list(inspect.signature(probe).parameters) == ["check"]


def test_each_build_has_its_own_probes() -> None:
    assert build_probes()["http"] is not build_probes()["http"]


async def test_every_probe_answers_its_kind_with_an_outcome() -> None:
    port = unused_port()
    url = f"http://127.0.0.1:{port}/"
    checks = {
        "http": http_check(url),
        "tls": tls_check(port),
        "xroad_health": resolved(
            XRoadHealthCheck.model_validate({"id": "h", "kind": "xroad_health", "url": url})
        ),
        "xroad_metaservice": resolved(
            XRoadMetaserviceCheck.model_validate(
                {
                    "id": "m",
                    "kind": "xroad_metaservice",
                    "security_server": {"url": url, "client": "CO/GOB/1/MONITOR"},
                    "metaservice": "list_clients",
                }
            )
        ),
        "xroad_globalconf": resolved(
            XRoadGlobalconfCheck.model_validate(
                {"id": "g", "kind": "xroad_globalconf", "url": url + "internalconf"}
            )
        ),
        "oidc": resolved(
            OidcCheck.model_validate({"id": "o", "kind": "oidc", "issuer": url.rstrip("/")})
        ),
    }
    assert set(checks) == set(CHECK_KINDS)
    for kind, probe in build_probes().items():
        outcome = await probe(checks[kind])
        assert isinstance(outcome, Outcome)
        assert outcome.error_kind is ErrorKind.CONNECT
