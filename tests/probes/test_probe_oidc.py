"""The ``oidc`` probe against real servers on 127.0.0.1: the simulator's fake provider
(discovery, JWKS, endpoints, client_credentials tokens, faults) and hand-made hostile
ones (not JSON, huge, hanging, refused)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from scd_monitor.catalog.models import OidcCheck, ResolvedCheck
from scd_monitor.probes import build_probes
from scd_monitor.probes.base import ErrorKind, Outcome
from scd_monitor.probes.oidc import OidcProbe
from scd_simulator.fleet import Simulator
from scd_simulator.oidc import OidcProvider
from tests.probes.probe_servers import (
    hang,
    resolved,
    respond,
    respond_json,
    routes,
    serve,
    unused_port,
)

PROVIDER_ID = "and/autenticacion-digital/oidc"


def oidc_check(issuer: str, *, timeout: float = 3.0, **fields: Any) -> ResolvedCheck:
    spec = OidcCheck.model_validate({"id": "oidc", "kind": "oidc", "issuer": issuer, **fields})
    return resolved(spec, timeout=timeout)


def with_secret(check: ResolvedCheck, secret: str) -> ResolvedCheck:
    """The check as the catalog loader leaves it: the client secret's value read."""
    spec = check.spec
    assert isinstance(spec, OidcCheck) and spec.client is not None
    ref = spec.client.client_secret.model_copy(update={"value": SecretStr(secret)})
    client = spec.client.model_copy(update={"client_secret": ref})
    return resolved(
        spec.model_copy(update={"client": client}), timeout=check.timeout.total_seconds()
    )


@pytest.fixture
async def provider(tmp_path: Path) -> AsyncIterator[tuple[Simulator, OidcProvider]]:
    sim = Simulator(tmp_path / "sim")
    idp = sim.add_oidc_provider(PROVIDER_ID, tls="valid")
    async with sim:
        yield sim, idp


def provider_check(sim: Simulator, idp: OidcProvider, **fields: Any) -> ResolvedCheck:
    base: dict[str, Any] = {
        "tls": {"ca_file": str(sim.ca_file)},
        "client": {
            "client_id": idp.client_id,
            "client_secret": {"env": idp.secret_env},
            **fields.pop("client", {}),
        },
        "expect": {
            "scopes_supported": ["openid", "co_scope"],
            "acr_values_supported": ["loa:1", "loa:2"],
        },
    }
    return with_secret(oidc_check(idp.issuer, **{**base, **fields}), idp.client_secret)


def step(outcome: Outcome) -> object:
    return outcome.details.get("step")


def test_the_registry_runs_oidc_checks() -> None:
    assert isinstance(build_probes()["oidc"], OidcProbe)


async def test_a_healthy_provider_passes_every_step_and_its_token_verifies(
    provider: tuple[Simulator, OidcProvider],
) -> None:
    sim, idp = provider
    outcome = await OidcProbe()(provider_check(sim, idp))
    assert outcome.ok, outcome.message
    assert set(outcome.phases) >= {
        "discovery",
        "jwks",
        "authorization",
        "token",
        "userinfo",
        "client_credentials",
    }
    assert outcome.details["jwks_kids"] == ",".join(sorted(idp.published_kids))
    assert outcome.details["jwks_keys"] == len(idp.published_kids)
    assert outcome.details["token_kid"] == idp.signing_kid
    assert "token_expires_at" in outcome.details
    assert outcome.cert_not_after is not None  # the TLS certificate of the endpoints
    assert "x5c_not_after" in outcome.details


async def test_client_secret_post_works_too(provider: tuple[Simulator, OidcProvider]) -> None:
    sim, idp = provider
    check = provider_check(sim, idp, client={"auth_method": "client_secret_post"})
    outcome = await OidcProbe()(check)
    assert outcome.ok, outcome.message


async def test_without_a_client_no_token_is_requested(
    provider: tuple[Simulator, OidcProvider],
) -> None:
    sim, idp = provider
    check = oidc_check(idp.issuer, tls={"ca_file": str(sim.ca_file)})
    outcome = await OidcProbe()(check)
    assert outcome.ok, outcome.message
    assert "client_credentials" not in outcome.phases
    assert "token_kid" not in outcome.details


async def test_a_wrong_secret_fails_at_the_token_and_is_never_shown(
    provider: tuple[Simulator, OidcProvider],
) -> None:
    sim, idp = provider
    wrong = "n0t-the-s3cret-" + "x" * 12
    check = with_secret(provider_check(sim, idp), wrong)
    outcome = await OidcProbe()(check)
    assert not outcome.ok
    assert (outcome.error_kind, step(outcome)) == (ErrorKind.STATUS, "client_credentials")
    assert "401" in (outcome.message or "")
    assert wrong not in json.dumps([outcome.message, dict(outcome.details)])


@pytest.mark.parametrize(
    ("fault", "kind", "where"),
    [
        ("issuer_mismatch", ErrorKind.ASSERTION, "discovery"),
        ("missing_key", ErrorKind.ASSERTION, "client_credentials"),
        ("expired_x5c", ErrorKind.ASSERTION, "jwks"),
        ("token_500", ErrorKind.STATUS, "token"),
    ],
)
async def test_each_fault_ends_at_its_step(
    provider: tuple[Simulator, OidcProvider], fault: str, kind: ErrorKind, where: str
) -> None:
    sim, idp = provider
    idp.set_fault(fault)
    outcome = await OidcProbe()(provider_check(sim, idp))
    assert not outcome.ok
    assert (outcome.error_kind, step(outcome)) == (kind, where), outcome.message
    assert (outcome.message or "").startswith(f"{where}: ")
    assert idp.client_secret not in (outcome.message or "")


async def test_a_slow_jwks_is_a_timeout_at_the_jwks(
    provider: tuple[Simulator, OidcProvider],
) -> None:
    sim, idp = provider
    idp.set_fault("slow_jwks", seconds=2.0)
    outcome = await OidcProbe()(provider_check(sim, idp, timeout=1.0))
    assert (outcome.error_kind, step(outcome)) == (ErrorKind.TIMEOUT, "jwks")
    assert 0.9 <= outcome.phases["jwks"] < 2.0


async def test_missing_expectations_are_assertions(
    provider: tuple[Simulator, OidcProvider],
) -> None:
    sim, idp = provider
    check = provider_check(sim, idp, expect={"acr_values_supported": ["loa:3"]})
    outcome = await OidcProbe()(check)
    assert (outcome.error_kind, step(outcome)) == (ErrorKind.ASSERTION, "discovery")
    assert "loa:3" in (outcome.message or "")


# -- hostile servers -------------------------------------------------------------------


async def test_a_discovery_that_is_not_json_is_protocol() -> None:
    app = respond(200, b"<html>hello</html>", {"Content-Type": "text/html"})
    async with serve(app) as server:
        outcome = await OidcProbe()(oidc_check(server.url("/idp").rstrip("/")))
    assert (outcome.error_kind, step(outcome)) == (ErrorKind.PROTOCOL, "discovery")


async def test_a_huge_discovery_is_too_large_without_reading_it_all() -> None:
    body = b'{"issuer": "' + b"x" * 3_000_000 + b'"}'
    async with serve(respond(200, body, {"Content-Type": "application/json"})) as server:
        outcome = await OidcProbe()(oidc_check(server.url("/idp").rstrip("/")))
    assert (outcome.error_kind, step(outcome)) == (ErrorKind.TOO_LARGE, "discovery")


async def test_a_hanging_discovery_is_a_timeout() -> None:
    async with serve(hang) as server:
        outcome = await OidcProbe()(oidc_check(server.url("/idp").rstrip("/"), timeout=0.5))
    assert (outcome.error_kind, step(outcome)) == (ErrorKind.TIMEOUT, "discovery")


async def test_a_refused_port_is_connect() -> None:
    outcome = await OidcProbe()(oidc_check(f"http://127.0.0.1:{unused_port()}/idp"))
    assert (outcome.error_kind, step(outcome)) == (ErrorKind.CONNECT, "discovery")


async def test_discovery_404_is_status() -> None:
    async with serve(respond(404)) as server:
        outcome = await OidcProbe()(oidc_check(server.url("/idp").rstrip("/")))
    assert (outcome.error_kind, step(outcome)) == (ErrorKind.STATUS, "discovery")
    assert outcome.status_code == 404


async def test_a_hostile_jwks_is_a_clear_failure_not_a_crash() -> None:
    issuer_holder: dict[str, str] = {}

    async def discovery(request: Any, conn: Any) -> Any:
        issuer = issuer_holder["issuer"]
        return await respond_json(
            {
                "issuer": issuer,
                "authorization_endpoint": f"{issuer}/authorize",
                "token_endpoint": f"{issuer}/token",
                "jwks_uri": f"{issuer}/jwks",
                "response_types_supported": ["code"],
                "subject_types_supported": ["public"],
                "id_token_signing_alg_values_supported": ["RS256"],
                "code_challenge_methods_supported": ["S256"],
            }
        )(request, conn)

    hostile = {"keys": [{"kty": "RSA", "n": "%%%not-base64url%%%", "e": "AQAB", "kid": "k\x00"}]}
    app = routes(
        {
            "/idp/.well-known/openid-configuration": discovery,
            "/idp/jwks": respond_json(hostile),
        }
    )
    async with serve(app) as server:
        issuer_holder["issuer"] = server.url("/idp").rstrip("/")
        outcome = await OidcProbe()(oidc_check(issuer_holder["issuer"]))
    assert not outcome.ok
    assert step(outcome) == "jwks"
    assert outcome.error_kind in (ErrorKind.PROTOCOL, ErrorKind.ASSERTION)
    assert "\x00" not in (outcome.message or "")


async def test_signing_algs_narrow_what_the_jwks_must_cover(
    provider: tuple[Simulator, OidcProvider],
) -> None:
    """Keycloak advertises every algorithm it supports, not only those it has keys for:
    ``signing_algs`` names the ones to require, each of which must be advertised."""
    sim, idp = provider
    outcome = await OidcProbe()(provider_check(sim, idp, signing_algs=["RS256"]))
    assert outcome.ok, outcome.message
    outcome = await OidcProbe()(provider_check(sim, idp, signing_algs=["ES256"]))
    assert (outcome.error_kind, step(outcome)) == (ErrorKind.ASSERTION, "discovery")
    assert "ES256" in (outcome.message or "")
