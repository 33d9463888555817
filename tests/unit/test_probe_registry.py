"""The probe registry agrees with the catalog's check kinds."""

from __future__ import annotations

import inspect

from scd_monitor.catalog.models import CHECK_KINDS
from scd_monitor.probes import HttpProbe, Outcome, Probe, TlsProbe, build_probes
from scd_monitor.probes.base import ErrorKind
from tests.unit.probe_servers import http_check, tls_check, unused_port


def test_registry_keys_are_the_catalog_kinds() -> None:
    assert set(build_probes()) == set(CHECK_KINDS)
    assert len(build_probes()) == len(CHECK_KINDS)


def test_registry_values_implement_the_protocol() -> None:
    probes: dict[str, Probe] = build_probes()  # mypy checks the protocol here
    assert isinstance(probes["http"], HttpProbe)
    assert isinstance(probes["tls"], TlsProbe)
    for probe in probes.values():
        assert callable(probe)
        assert inspect.iscoroutinefunction(type(probe).__call__)
        assert list(inspect.signature(probe).parameters) == ["check"]


def test_each_build_has_its_own_probes() -> None:
    assert build_probes()["http"] is not build_probes()["http"]


async def test_every_probe_answers_its_kind_with_an_outcome() -> None:
    port = unused_port()
    checks = {"http": http_check(f"http://127.0.0.1:{port}/"), "tls": tls_check(port)}
    assert set(checks) == set(CHECK_KINDS)
    for kind, probe in build_probes().items():
        outcome = await probe(checks[kind])
        assert isinstance(outcome, Outcome)
        assert outcome.error_kind is ErrorKind.CONNECT
