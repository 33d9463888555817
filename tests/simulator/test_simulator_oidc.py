"""The simulator's fake OpenID Connect provider, exercised with real requests on 127.0.0.1:
discovery, JWKS, client_credentials tokens verified with joserfc, the error shapes, key
rotation, every fault through the control API, and the catalog check it emits."""

from __future__ import annotations

import base64
import hashlib
import ssl
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa
from joserfc import jws, jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet, RSAKey

from scd_monitor.errors import ConfigError
from scd_simulator.fleet import Simulator
from scd_simulator.oidc import OIDC_FAULTS, OidcProvider

OIDC = "and/autenticacion-digital/oidc"
PRIVATE_MEMBERS = {"d", "p", "q", "dp", "dq", "qi", "oth"}
FORM = {"Content-Type": "application/x-www-form-urlencoded"}


def client(sim: Simulator, *, timeout: float = 5.0) -> httpx.AsyncClient:
    context = ssl.create_default_context(cafile=str(sim.ca_file))
    return httpx.AsyncClient(verify=context, timeout=timeout, trust_env=False)


@pytest.fixture
async def sim(tmp_path: Path) -> AsyncIterator[Simulator]:
    simulator = Simulator(tmp_path)
    simulator.add_oidc_provider(OIDC)
    async with simulator:
        yield simulator


@pytest.fixture
def provider(sim: Simulator) -> OidcProvider:
    return sim.oidc_provider(OIDC)


@pytest.fixture
async def http(sim: Simulator) -> AsyncIterator[httpx.AsyncClient]:
    async with client(sim) as c:
        yield c


@pytest.fixture
async def control(sim: Simulator) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=sim.control_url, trust_env=False, timeout=5) as c:
        yield c


async def get_token(
    http: httpx.AsyncClient, p: OidcProvider, *, post: bool = False, **form: str
) -> httpx.Response:
    """A client_credentials request, client_secret_basic (or client_secret_post)."""
    data = {"grant_type": "client_credentials", **form}
    if post:
        data |= {"client_id": p.client_id, "client_secret": p.client_secret}
        return await http.post(f"{p.issuer}/token", data=data)
    return await http.post(f"{p.issuer}/token", data=data, auth=(p.client_id, p.client_secret))


async def access_token(http: httpx.AsyncClient, p: OidcProvider) -> str:
    response = await get_token(http, p)
    assert response.status_code == 200, response.text
    value = response.json()["access_token"]
    assert isinstance(value, str)
    return value


async def get_jwks(http: httpx.AsyncClient, p: OidcProvider) -> dict[str, Any]:
    response = await http.get(f"{p.issuer}/jwks")
    assert response.status_code == 200
    document = response.json()
    assert isinstance(document, dict)
    return document


def verify(token: str, jwks: dict[str, Any], p: OidcProvider) -> dict[str, Any]:
    """Verify as a relying party: the signature against the JWKS, then iss, aud, exp."""
    keys = KeySet.import_key_set(jwks)  # type: ignore[arg-type]  # a parsed JSON document
    claims = dict(jwt.decode(token, keys, algorithms=["RS256"]).claims)
    jwt.JWTClaimsRegistry(
        iss={"essential": True, "value": p.issuer},
        aud={"essential": True, "value": p.client_id},
        exp={"essential": True},
    ).validate(claims)
    return claims


def kid_of(token: str) -> str:
    """The token's header ``kid`` (read without verifying)."""
    kid = jws.extract_compact(token.encode()).headers()["kid"]
    assert isinstance(kid, str)
    return kid


def kids_of(jwks: dict[str, Any]) -> list[str]:
    return [k["kid"] for k in jwks["keys"]]


def leaf(jwk: dict[str, Any]) -> x509.Certificate:
    (der,) = jwk["x5c"]
    return x509.load_der_x509_certificate(base64.b64decode(der))


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


# -- discovery and JWKS ------------------------------------------------------------------


async def test_discovery_document_is_a_real_providers(
    sim: Simulator, provider: OidcProvider, http: httpx.AsyncClient
) -> None:
    issuer = provider.issuer
    assert issuer == f"{sim.listener_urls['valid']}/{OIDC}"
    assert issuer.startswith("https://127.0.0.1:")
    assert not issuer.endswith("/")
    response = await http.get(f"{issuer}/.well-known/openid-configuration")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    doc = response.json()
    assert doc["issuer"] == issuer
    assert doc["authorization_endpoint"] == f"{issuer}/authorize"
    assert doc["token_endpoint"] == f"{issuer}/token"
    assert doc["userinfo_endpoint"] == f"{issuer}/userinfo"
    assert doc["end_session_endpoint"] == f"{issuer}/logout"
    assert doc["jwks_uri"] == f"{issuer}/jwks"
    assert doc["response_types_supported"] == ["code"]
    assert doc["subject_types_supported"] == ["public"]
    assert doc["id_token_signing_alg_values_supported"] == ["RS256"]
    assert {"openid", "co_scope"} <= set(doc["scopes_supported"])
    assert doc["acr_values_supported"] == ["loa:1", "loa:2"]
    assert doc["code_challenge_methods_supported"] == ["S256", "plain"]
    assert doc["grant_types_supported"] == [
        "authorization_code",
        "refresh_token",
        "client_credentials",
    ]
    assert doc["token_endpoint_auth_methods_supported"] == [
        "client_secret_basic",
        "client_secret_post",
    ]
    assert {"sub", "iss", "aud", "acr"} <= set(doc["claims_supported"])
    assert provider.hits["discovery"] == 1
    # Only the issuer's own paths are the provider's; the plain listener does not serve it.
    assert (await http.get(f"{issuer}x/.well-known/openid-configuration")).status_code == 404
    unknown = await http.get(f"{issuer}/protocol/openid-connect/certs")
    assert unknown.status_code == 404
    assert provider.hits["other"] == 1
    async with httpx.AsyncClient(trust_env=False) as plain:
        other = await plain.get(f"{sim.listener_urls['none']}/{OIDC}/jwks")
    assert other.status_code == 404


async def test_jwks_publishes_public_rsa_keys_with_x5c(
    provider: OidcProvider, http: httpx.AsyncClient
) -> None:
    response = await http.get(f"{provider.issuer}/jwks")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    jwks = response.json()
    (key,) = jwks["keys"]
    assert key["kid"] == provider.signing_kid == provider.kids[0]
    assert (key["kty"], key["use"], key["alg"]) == ("RSA", "sig", "RS256")
    assert not PRIVATE_MEMBERS & set(key)
    parsed = KeySet.import_key_set(jwks)
    (imported,) = parsed.keys
    assert isinstance(imported, RSAKey)
    assert not imported.is_private
    assert imported.public_key.key_size == 2048
    cert = leaf(key)
    assert cert.issuer == cert.subject  # self-signed, one certificate per key
    public = cert.public_key()
    assert isinstance(public, rsa.RSAPublicKey)
    assert public.public_numbers() == imported.public_key.public_numbers()
    der = base64.b64decode(key["x5c"][0])
    assert key["x5t#S256"] == b64url(hashlib.sha256(der).digest())
    assert cert.not_valid_after_utc > datetime.now(UTC)
    assert provider.hits["jwks"] == 1


async def test_providers_do_not_share_keys(tmp_path: Path) -> None:
    sim = Simulator(tmp_path)
    a = sim.add_oidc_provider("a/auth/oidc")
    b = sim.add_oidc_provider("b/auth/oidc", tls="none")
    a.rotate()
    async with sim:
        assert a.issuer.startswith("https://") and b.issuer.startswith("http://")
        assert len(set(a.kids) | set(b.kids)) == 3
        assert b.secret_env == "SCD_SIM_OIDC_SECRET_2" != a.secret_env
        assert a.client_secret != b.client_secret
        async with httpx.AsyncClient(trust_env=False) as plain:
            jwks = (await plain.get(f"{b.issuer}/jwks")).json()
    assert kids_of(jwks) == b.kids


# -- tokens ------------------------------------------------------------------------------


@pytest.mark.parametrize("post", [False, True], ids=["client_secret_basic", "client_secret_post"])
async def test_client_credentials_token_verifies_against_the_jwks(
    provider: OidcProvider, http: httpx.AsyncClient, post: bool
) -> None:
    before = int(time.time())
    response = await get_token(http, provider, post=post)
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 300
    assert body["scope"] == "co_scope"
    token = body["access_token"]
    assert kid_of(token) == provider.signing_kid
    claims = verify(token, await get_jwks(http, provider), provider)
    assert claims["iss"] == provider.issuer
    assert claims["aud"] == provider.client_id
    assert claims["azp"] == provider.client_id
    assert claims["scope"] == "co_scope"
    assert isinstance(claims["sub"], str) and claims["sub"]
    assert isinstance(claims["jti"], str) and claims["jti"]
    assert claims["exp"] - claims["iat"] == 300
    assert before <= claims["iat"] <= int(time.time())
    again = await access_token(http, provider)
    assert verify(again, await get_jwks(http, provider), provider)["jti"] != claims["jti"]
    assert provider.tokens_issued == 2
    assert provider.hits["token"] == 2


async def test_a_token_is_refused_by_another_providers_keys(tmp_path: Path) -> None:
    sim = Simulator(tmp_path)
    a = sim.add_oidc_provider("a/auth/oidc")
    b = sim.add_oidc_provider("b/auth/oidc")
    async with sim, client(sim) as http:
        token = await access_token(http, a)
        with pytest.raises(JoseError):
            verify(token, await get_jwks(http, b), a)


async def test_scopes_and_userinfo(provider: OidcProvider, http: httpx.AsyncClient) -> None:
    granted = await get_token(http, provider, scope="openid co_scope")
    assert granted.json()["scope"] == "openid co_scope"
    with_openid = granted.json()["access_token"]
    info = await http.get(
        f"{provider.issuer}/userinfo", headers={"Authorization": f"Bearer {with_openid}"}
    )
    assert info.status_code == 200
    assert (
        info.json()["sub"] == verify(with_openid, await get_jwks(http, provider), provider)["sub"]
    )
    without = await access_token(http, provider)
    refused = await http.get(
        f"{provider.issuer}/userinfo", headers={"Authorization": f"Bearer {without}"}
    )
    assert refused.status_code == 403
    assert 'error="insufficient_scope"' in refused.headers["www-authenticate"]
    bad_scope = await get_token(http, provider, scope="openid admin")
    assert bad_scope.status_code == 400
    assert bad_scope.json()["error"] == "invalid_scope"


async def test_token_endpoint_error_shapes(provider: OidcProvider, http: httpx.AsyncClient) -> None:
    url = f"{provider.issuer}/token"
    empty = await http.post(url, content=b"", headers=FORM)
    assert empty.status_code == 400
    assert empty.headers["content-type"] == "application/json"
    assert empty.json() == {
        "error": "invalid_request",
        "error_description": "Missing form parameter: grant_type",
    }
    unknown = await http.post(url, data={"grant_type": "password"})
    assert unknown.status_code == 400
    assert unknown.json()["error"] == "unsupported_grant_type"

    bad_basic = await http.post(
        url, data={"grant_type": "client_credentials"}, auth=(provider.client_id, "wrong")
    )
    assert bad_basic.status_code == 401
    assert bad_basic.json()["error"] == "invalid_client"
    assert "error_description" in bad_basic.json()
    assert bad_basic.headers["www-authenticate"].startswith('Basic realm="')
    bad_post = await http.post(
        url,
        data={
            "grant_type": "client_credentials",
            "client_id": provider.client_id,
            "client_secret": provider.client_secret + "x",
        },
    )
    assert bad_post.status_code == 401
    assert bad_post.json()["error"] == "invalid_client"
    unknown_client = await http.post(
        url, data={"grant_type": "client_credentials"}, auth=("someone", provider.client_secret)
    )
    assert unknown_client.status_code == 401
    anonymous = await http.post(url, data={"grant_type": "client_credentials"})
    assert anonymous.status_code == 401
    assert anonymous.json()["error"] == "invalid_client"

    both = await http.post(
        url,
        data={"grant_type": "client_credentials", "client_secret": provider.client_secret},
        auth=(provider.client_id, provider.client_secret),
    )
    assert both.status_code == 400
    assert both.json()["error"] == "invalid_request"
    code = await get_token(http, provider, grant_type="authorization_code", code="x")
    assert code.status_code == 400
    assert code.json()["error"] == "invalid_grant"
    twice = await http.post(
        url,
        content=b"grant_type=client_credentials&grant_type=client_credentials",
        headers=FORM,
        auth=(provider.client_id, provider.client_secret),
    )
    assert twice.status_code == 400
    assert "duplicated" in twice.json()["error_description"]
    json_body = await http.post(url, json={"grant_type": "client_credentials"})
    assert json_body.status_code == 400
    get = await http.get(url)
    assert get.status_code == 405
    assert get.headers["allow"] == "POST"
    assert provider.tokens_issued == 0


async def test_userinfo_authorize_and_logout_without_a_login(
    provider: OidcProvider, http: httpx.AsyncClient
) -> None:
    issuer = provider.issuer
    info = await http.get(f"{issuer}/userinfo")
    assert info.status_code == 401
    challenge = info.headers["www-authenticate"]
    assert challenge.startswith("Bearer ")
    assert 'error="invalid_token"' in challenge
    assert info.json()["error"] == "invalid_token"
    forged = await http.get(f"{issuer}/userinfo", headers={"Authorization": "Bearer a.b.c"})
    assert forged.status_code == 401

    authorize = await http.get(f"{issuer}/authorize")
    assert authorize.status_code == 400
    assert authorize.headers["content-type"].startswith("text/html")
    assert "client_id" in authorize.text
    pkce = await http.get(
        f"{issuer}/authorize",
        params={
            "client_id": provider.client_id,
            "redirect_uri": "https://rp.example/cb",
            "response_type": "code",
            "scope": "openid",
            "code_challenge": b64url(hashlib.sha256(b"v" * 43).digest()),
            "code_challenge_method": "S256",
        },
    )
    assert pkce.status_code == 400  # the monitoring client registers no redirect URI
    assert "redirect_uri" in pkce.text

    logout = await http.get(f"{issuer}/logout")
    assert logout.status_code == 200
    assert logout.headers["content-type"].startswith("text/html")
    bad_hint = await http.get(f"{issuer}/logout", params={"id_token_hint": "not-a-token"})
    assert bad_hint.status_code == 400
    assert "id_token_hint" in bad_hint.text
    good_hint = await http.get(
        f"{issuer}/logout", params={"id_token_hint": await access_token(http, provider)}
    )
    assert good_hint.status_code == 200
    assert provider.hits["authorize"] == 2
    assert provider.hits["logout"] == 3
    assert provider.hits["userinfo"] == 2


async def test_authorize_and_logout_with_a_registered_redirect(tmp_path: Path) -> None:
    sim = Simulator(tmp_path)
    back = "https://rp.example/callback"
    p = sim.add_oidc_provider(OIDC, redirect_uris=[back])
    challenge = b64url(hashlib.sha256(b"v" * 43).digest())
    base = {"client_id": p.client_id, "redirect_uri": back, "response_type": "code"}
    async with sim, client(sim) as http:
        url = f"{p.issuer}/authorize"
        page = await http.get(url, params={**base, "code_challenge": challenge})
        assert page.status_code == 200
        assert page.headers["content-type"].startswith("text/html")
        silent = await http.get(url, params={**base, "prompt": "none", "state": "s1"})
        assert silent.status_code == 302
        location = urlsplit(silent.headers["location"])
        assert f"{location.scheme}://{location.netloc}{location.path}" == back
        query = parse_qs(location.query)
        assert query["error"] == ["login_required"]
        assert query["state"] == ["s1"]
        assert query["iss"] == [p.issuer]
        bad_method = await http.get(
            url, params={**base, "code_challenge": challenge, "code_challenge_method": "S512"}
        )
        assert bad_method.status_code == 302
        assert parse_qs(urlsplit(bad_method.headers["location"]).query)["error"] == [
            "invalid_request"
        ]
        implicit = await http.get(url, params={**base, "response_type": "token"})
        assert "unsupported_response_type" in implicit.headers["location"]

        hint = await access_token(http, p)
        out = await http.get(
            f"{p.issuer}/logout",
            params={"id_token_hint": hint, "post_logout_redirect_uri": back, "state": "z"},
        )
        assert out.status_code == 302
        assert out.headers["location"] == f"{back}?state=z"
        elsewhere = await http.get(
            f"{p.issuer}/logout",
            params={"id_token_hint": hint, "post_logout_redirect_uri": "https://evil.example/"},
        )
        assert elsewhere.status_code == 400


# -- keys and rotation -------------------------------------------------------------------


async def test_rotation_overlaps_then_retires(
    provider: OidcProvider, http: httpx.AsyncClient
) -> None:
    first = provider.signing_kid
    old_token = await access_token(http, provider)
    assert kid_of(old_token) == first

    second = provider.rotate()
    assert second != first
    assert provider.signing_kid == second
    assert provider.kids == [first, second]
    jwks = await get_jwks(http, provider)
    assert kids_of(jwks) == [first, second]
    new_token = await access_token(http, provider)
    assert kid_of(new_token) == second
    verify(new_token, jwks, provider)
    verify(old_token, jwks, provider)  # the overlap: tokens already issued still verify

    provider.retire(first)
    jwks = await get_jwks(http, provider)
    assert kids_of(jwks) == [second]
    verify(new_token, jwks, provider)
    with pytest.raises(JoseError):
        verify(old_token, jwks, provider)

    third = provider.rotate(retire_previous=True)
    assert provider.kids == [third]
    assert kids_of(await get_jwks(http, provider)) == [third]
    with pytest.raises(KeyError):
        provider.retire(first)
    with pytest.raises(ValueError, match="only key"):
        provider.retire(third)


async def test_retiring_the_signing_key_falls_back_to_the_newest_left(
    provider: OidcProvider, http: httpx.AsyncClient
) -> None:
    first = provider.signing_kid
    second = provider.rotate()
    provider.retire(second)
    assert provider.signing_kid == first
    assert kid_of(await access_token(http, provider)) == first


# -- the control API and faults ----------------------------------------------------------


async def test_control_api_lists_rotates_and_retires(
    provider: OidcProvider, http: httpx.AsyncClient, control: httpx.AsyncClient
) -> None:
    await http.get(f"{provider.issuer}/.well-known/openid-configuration")
    listing = await control.get("oidc")
    assert listing.status_code == 200
    (row,) = listing.json()
    assert row["id"] == OIDC
    assert row["issuer"] == provider.issuer
    assert row["kids"] == provider.kids
    assert row["signing_kid"] == provider.signing_kid
    assert row["fault"] is None
    assert row["hits"]["discovery"] == 1
    assert row["hits"]["token"] == 0
    assert row["secret_env"] == provider.secret_env
    assert provider.client_secret not in listing.text
    one = await control.get(f"oidc/{OIDC}")
    assert one.json()["issuer"] == provider.issuer

    first = provider.signing_kid
    rotated = await control.post(f"oidc/{OIDC}/rotate", json={"retire_previous": False})
    assert rotated.status_code == 200
    assert rotated.json()["kids"][0] == first
    assert len(rotated.json()["kids"]) == 2
    second = rotated.json()["signing_kid"]
    assert second == provider.signing_kid != first
    retired = await control.delete(f"oidc/{OIDC}/keys/{first}")
    assert retired.status_code == 200
    assert retired.json()["kids"] == [second]
    again = await control.post(f"oidc/{OIDC}/rotate")  # no body: keep the previous key
    assert len(again.json()["kids"]) == 2
    replaced = await control.post(f"oidc/{OIDC}/rotate", json={"retire_previous": True})
    assert replaced.json()["kids"] == [provider.signing_kid]

    assert (await control.get("oidc/no/such/provider")).status_code == 404
    assert (await control.put("oidc/no/such/provider/fault", json=None)).status_code == 404
    assert (await control.delete(f"oidc/{OIDC}/keys/nope")).status_code == 404
    assert (await control.get(f"oidc/{OIDC}/fault")).status_code == 405
    assert (await control.put(f"oidc/{OIDC}/rotate", json={})).status_code == 405
    assert (await control.post("oidc", json={})).status_code == 405
    bad = await control.put(f"oidc/{OIDC}/fault", json={"fault": "meltdown"})
    assert bad.status_code == 400
    assert "unknown OIDC fault" in bad.json()["error"]
    typo = await control.put(f"oidc/{OIDC}/fault", json={"fault": "slow_jwks", "secs": 1})
    assert typo.status_code == 400
    assert (await control.put(f"oidc/{OIDC}/fault", content=b"{")).status_code == 400
    not_bool = await control.post(f"oidc/{OIDC}/rotate", json={"retire_previous": "yes"})
    assert not_bool.status_code == 400
    assert provider.fault is None


async def test_fault_issuer_mismatch(
    provider: OidcProvider, http: httpx.AsyncClient, control: httpx.AsyncClient
) -> None:
    url = f"{provider.issuer}/.well-known/openid-configuration"
    put = await control.put(f"oidc/{OIDC}/fault", json={"fault": "issuer_mismatch"})
    assert put.status_code == 200
    assert put.json()["fault"] == "issuer_mismatch"
    doc = (await http.get(url)).json()
    assert doc["issuer"] != provider.issuer
    assert doc["issuer"].rstrip("/") == provider.issuer
    # Tokens still carry the real issuer: a relying party sees the two disagree.
    token = await access_token(http, provider)
    assert verify(token, await get_jwks(http, provider), provider)["iss"] != doc["issuer"]
    assert (await control.put(f"oidc/{OIDC}/fault", json=None)).json()["fault"] is None
    assert (await http.get(url)).json()["issuer"] == provider.issuer


@pytest.mark.parametrize("rotated", [False, True], ids=["one-key", "after-rotation"])
async def test_fault_missing_key(
    provider: OidcProvider, http: httpx.AsyncClient, control: httpx.AsyncClient, rotated: bool
) -> None:
    if rotated:
        provider.rotate()
    signing = provider.signing_kid
    put = await control.put(f"oidc/{OIDC}/fault", json={"fault": "missing_key"})
    assert put.status_code == 200
    assert signing not in put.json()["published_kids"]
    token = await access_token(http, provider)
    assert kid_of(token) == signing  # still signed by the key the JWKS left out
    jwks = await get_jwks(http, provider)
    assert jwks["keys"]  # a parseable set, just without the signing key
    assert signing not in kids_of(jwks)
    KeySet.import_key_set(jwks)  # type: ignore[arg-type]
    with pytest.raises(JoseError):
        verify(token, jwks, provider)
    assert provider.kids[-1] == signing  # the provider itself still holds it
    await control.put(f"oidc/{OIDC}/fault", content=b"null")
    jwks = await get_jwks(http, provider)
    assert kids_of(jwks) == provider.kids
    verify(token, jwks, provider)


async def test_fault_expired_x5c(
    provider: OidcProvider, http: httpx.AsyncClient, control: httpx.AsyncClient
) -> None:
    old = provider.signing_kid
    provider.rotate()
    signing = provider.signing_kid
    put = await control.put(f"oidc/{OIDC}/fault", json={"fault": "expired_x5c"})
    assert put.status_code == 200
    jwks = await get_jwks(http, provider)
    keys = {k["kid"]: k for k in jwks["keys"]}
    assert set(keys) == {old, signing}
    now = datetime.now(UTC)
    expired = leaf(keys[signing])
    assert expired.not_valid_after_utc < now
    assert expired.not_valid_before_utc < expired.not_valid_after_utc
    der = base64.b64decode(keys[signing]["x5c"][0])
    assert keys[signing]["x5t#S256"] == b64url(hashlib.sha256(der).digest())
    public = expired.public_key()
    assert isinstance(public, rsa.RSAPublicKey)
    assert b64url(public.public_numbers().n.to_bytes(256, "big")) == keys[signing]["n"]
    assert leaf(keys[old]).not_valid_after_utc > now  # only the signing key's
    await control.put(f"oidc/{OIDC}/fault", json=None)
    healed = {k["kid"]: k for k in (await get_jwks(http, provider))["keys"]}
    assert leaf(healed[signing]).not_valid_after_utc > now


async def test_fault_token_500(
    provider: OidcProvider, http: httpx.AsyncClient, control: httpx.AsyncClient
) -> None:
    put = await control.put(f"oidc/{OIDC}/fault", json={"fault": "token_500"})
    assert put.status_code == 200
    failed = await get_token(http, provider)
    assert failed.status_code == 500
    assert failed.headers["content-type"].startswith("text/html")
    empty = await http.post(f"{provider.issuer}/token", content=b"", headers=FORM)
    assert empty.status_code == 500
    discovery = await http.get(f"{provider.issuer}/.well-known/openid-configuration")
    assert discovery.status_code == 200
    await control.put(f"oidc/{OIDC}/fault", json=None)
    assert (await get_token(http, provider)).status_code == 200


async def test_fault_slow_jwks(
    sim: Simulator, provider: OidcProvider, http: httpx.AsyncClient, control: httpx.AsyncClient
) -> None:
    put = await control.put(f"oidc/{OIDC}/fault", json={"fault": "slow_jwks", "seconds": 0.5})
    assert put.status_code == 200
    assert put.json()["fault_seconds"] == 0.5
    started = time.monotonic()
    discovery = await http.get(f"{provider.issuer}/.well-known/openid-configuration")
    assert discovery.status_code == 200
    assert time.monotonic() - started < 0.5  # only the JWKS is slow
    started = time.monotonic()
    jwks = await get_jwks(http, provider)
    assert time.monotonic() - started >= 0.5
    assert kids_of(jwks) == provider.kids
    async with client(sim, timeout=0.2) as impatient:
        with pytest.raises(httpx.ReadTimeout):
            await impatient.get(f"{provider.issuer}/jwks")
    await control.put(f"oidc/{OIDC}/fault", json=None)
    started = time.monotonic()
    await get_jwks(http, provider)
    assert time.monotonic() - started < 0.5


def test_set_fault_validates(tmp_path: Path) -> None:
    p = Simulator(tmp_path).add_oidc_provider(OIDC)
    with pytest.raises(ValueError, match="unknown OIDC fault"):
        p.set_fault("meltdown")
    with pytest.raises(ValueError, match="slow_jwks"):
        p.set_fault("token_500", seconds=1)
    with pytest.raises(ValueError, match="within"):
        p.set_fault("slow_jwks", seconds=-1)
    p.set_fault("slow_jwks")
    assert (p.fault, p.fault_seconds) == ("slow_jwks", 5.0)
    for fault in OIDC_FAULTS:
        p.set_fault(fault)
        assert p.fault == fault
    p.set_fault(None)
    assert (p.fault, p.fault_seconds) == (None, None)


def test_add_oidc_provider_validates(tmp_path: Path) -> None:
    sim = Simulator(tmp_path)
    p = sim.add_oidc_provider(OIDC)
    with pytest.raises(RuntimeError, match="start the simulator"):
        _ = p.issuer
    with pytest.raises(ValueError, match="duplicate"):
        sim.add_oidc_provider(OIDC)
    with pytest.raises(ValueError, match="duplicate"):
        sim.add_endpoint(OIDC, tls="valid")
    with pytest.raises(ValueError, match="under an OIDC provider"):
        sim.add_endpoint("x/y/z", tls="valid", path=f"/{OIDC}/jwks")
    sim.add_endpoint("x/y/z", tls="none", path=f"/{OIDC}/jwks")  # another listener: fine
    with pytest.raises(ValueError):
        sim.add_oidc_provider("Not A Slug")
    with pytest.raises(ValueError, match="another provider's"):
        sim.add_oidc_provider("b/auth/oidc", secret_env=p.secret_env)
    with pytest.raises(ValueError, match="environment variable"):
        sim.add_oidc_provider("b/auth/oidc", secret_env="not-a-name")
    with pytest.raises(ConfigError):
        Simulator(tmp_path / "x", host="0.0.0.0").add_oidc_provider(OIDC)  # noqa: S104


# -- the catalog -------------------------------------------------------------------------


async def test_write_catalog_emits_the_oidc_check(tmp_path: Path) -> None:
    sim = Simulator(tmp_path)
    p = sim.add_oidc_provider(OIDC)
    plain = sim.add_oidc_provider("and/autenticacion-digital/oidc-interno", tls="none")
    sim.add_endpoint("and/carpeta/health", kind="carpeta")
    async with sim:
        path = sim.write_catalog(tmp_path / "catalog.yaml", interval="1s", timeout="500ms")
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    (provider_entry,) = data["providers"]
    services = {s["id"]: s for s in provider_entry["services"]}
    auth = services["autenticacion-digital"]
    assert auth["type"] == "autenticacion_digital"
    checks = {c["id"]: c for c in auth["checks"]}
    assert checks["oidc"] == {
        "id": "oidc",
        "kind": "oidc",
        "issuer": p.issuer,
        "client": {"client_id": "scd-monitor", "client_secret": {"env": "SCD_SIM_OIDC_SECRET"}},
        "expect": {
            "scopes_supported": ["openid", "co_scope"],
            "acr_values_supported": ["loa:1", "loa:2"],
            "code_challenge_methods_supported": ["S256"],
            "grant_types_supported": ["client_credentials"],
        },
        "tls": {"ca_file": str(sim.ca_file.resolve())},
    }
    assert p.secret_env == "SCD_SIM_OIDC_SECRET"
    internal = checks["oidc-interno"]
    assert internal["issuer"] == plain.issuer
    assert internal["issuer"].startswith("http://")
    assert "tls" not in internal
    assert internal["client"]["client_secret"] == {"env": plain.secret_env}
    assert services["carpeta"]["checks"][0]["kind"] == "http"
    assert p.client_secret not in path.read_text(encoding="utf-8")


async def test_write_catalog_with_only_a_provider(tmp_path: Path) -> None:
    sim = Simulator(tmp_path)
    sim.add_oidc_provider(OIDC)
    async with sim:
        path = sim.write_catalog(tmp_path / "catalog.yaml")
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    kinds = [c["kind"] for p in data["providers"] for s in p["services"] for c in s["checks"]]
    assert kinds == ["oidc"]
