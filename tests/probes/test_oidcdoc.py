"""The OIDC document judge (:mod:`scd_monitor.probes.oidcdoc`): documents in the shapes
providers publish, real keys and tokens made with ``cryptography`` and ``joserfc``, and
hostile bytes, each ending as a result or an :class:`OidcProblem` of the right kind."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import warnings
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from joserfc import jwt
from joserfc.jwk import ECKey, OKPKey, RSAKey

from scd_monitor.probes.base import ErrorKind
from scd_monitor.probes.oidcdoc import (
    PROBLEM_MESSAGE_LIMIT,
    Discovery,
    Jwks,
    OidcProblem,
    judge_endpoint,
    parse_discovery,
    parse_jwks,
    verify_token,
)

NOW = datetime(2025, 6, 2, 12, 0, tzinfo=UTC)
ISSUER = "https://idp.example.gov.co/realms/scd"

# -- reference documents, from the specifications -----------------------------------------

# OpenID Connect Discovery 1.0 §4.2, the example response.
DISCOVERY_SPEC_EXAMPLE: dict[str, Any] = {
    "issuer": "https://server.example.com",
    "authorization_endpoint": "https://server.example.com/connect/authorize",
    "token_endpoint": "https://server.example.com/connect/token",
    "token_endpoint_auth_methods_supported": ["client_secret_basic", "private_key_jwt"],
    "token_endpoint_auth_signing_alg_values_supported": ["RS256", "ES256"],
    "userinfo_endpoint": "https://server.example.com/connect/userinfo",
    "check_session_iframe": "https://server.example.com/connect/check_session",
    "end_session_endpoint": "https://server.example.com/connect/end_session",
    "jwks_uri": "https://server.example.com/jwks.json",
    "registration_endpoint": "https://server.example.com/connect/register",
    "scopes_supported": ["openid", "profile", "email", "address", "phone", "offline_access"],
    "response_types_supported": ["code", "code id_token", "id_token", "id_token token"],
    "acr_values_supported": ["urn:mace:incommon:iap:silver", "urn:mace:incommon:iap:bronze"],
    "subject_types_supported": ["public", "pairwise"],
    "userinfo_signing_alg_values_supported": ["RS256", "ES256", "HS256"],
    "userinfo_encryption_alg_values_supported": ["RSA-OAEP-256", "A128KW"],
    "userinfo_encryption_enc_values_supported": ["A128CBC-HS256", "A128GCM"],
    "id_token_signing_alg_values_supported": ["RS256", "ES256", "HS256"],
    "id_token_encryption_alg_values_supported": ["RSA-OAEP-256", "A128KW"],
    "id_token_encryption_enc_values_supported": ["A128CBC-HS256", "A128GCM"],
    "request_object_signing_alg_values_supported": ["none", "RS256", "ES256"],
    "display_values_supported": ["page", "popup"],
    "claim_types_supported": ["normal", "distributed"],
    "claims_supported": [
        "sub",
        "iss",
        "auth_time",
        "acr",
        "name",
        "given_name",
        "family_name",
        "nickname",
        "profile",
        "picture",
        "website",
        "email",
        "email_verified",
        "locale",
        "zoneinfo",
        "http://example.info/claims/groups",
    ],
    "claims_parameter_supported": True,
    "service_documentation": "http://server.example.com/connect/service_documentation.html",
    "ui_locales_supported": ["en-US", "en-GB", "en-CA", "fr-FR", "fr-CA"],
}

# RFC 7517 Appendix A.1: example public keys (an EC P-256 encryption key, an RSA key).
RFC7517_A1_EC = {
    "kty": "EC",
    "crv": "P-256",
    "x": "MKBCTNIcKUSDii11ySs3526iDZ8AiTo7Tu6KPAqv7D4",
    "y": "4Etl6SRW2YiLUrN5vfvVHuhp7x8PxltmWWlbbM4IFyM",
    "use": "enc",
    "kid": "1",
}
RFC7517_A1_RSA = {
    "kty": "RSA",
    "n": "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc"
    "_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQ"
    "R0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bF"
    "TWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw",
    "e": "AQAB",
    "alg": "RS256",
    "kid": "2011-04-29",
}
RFC7517_A1 = {"keys": [RFC7517_A1_EC, RFC7517_A1_RSA]}
# RFC 7638 §3.1: the thumbprint of the A.1 RSA key.
RFC7638_THUMBPRINT = "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"

# RFC 7517 Appendix A.2: the same keys with their private members.
RFC7517_A2 = {
    "keys": [
        {**RFC7517_A1_EC, "d": "870MB6gfuTJ4HtUnUvYMyJpr5eUZNP4Bk43bVdj3eAE"},
        {
            **RFC7517_A1_RSA,
            "d": "X4cTteJY_gn4FYPsXB8rdXix5vwsg1FLN5E3EaG6RJoVH-HLLKD9M7dx5oo7GURknchnrRweUkC7"
            "hT5fJLM0WbFAKNLWY2vv7B6NqXSzUvxT0_YSfqijwp3RTzlBaCxWp4doFk5N2o8Gy_nHNKroADIkJ46p"
            "RUohsXywbReAdYaMwFs9tv8d_cPVY3i07a3t8MN6TNwm0dSawm9v47UiCl3Sk5ZiG7xojPLu4sbg1U2j"
            "x4IBTNBznbJSzFHK66jT8bgkuqsk0GjskDJk19Z4qwjwbsnn4j2WBii3RL-Us2lGVkY8fkFzme1z0HbI"
            "kfz0Y6mqnOYtqc0X4jfcKoAC8Q",
            "p": "83i-7IvMGXoMXCskv73TKr8637FiO7Z27zv8oj6pbWUQyLPQBQxtPVnwD20R-60eTDmD2ujnMt5P"
            "oqMrm8RfmNhVWDtjjMmCMjOpSXicFHj7XOuVIYQyqVWlWEh6dN36GVZYk93N8Bc9vY41xy8B9RzzOGVQ"
            "zXvNEvn7O0nVbfs",
            "q": "3dfOR9cuYq-0S-mkFLzgItgMEfFzB2q3hWehMuG0oCuqnb3vobLyumqjb37qSjnPzmVDG4RLGPi_"
            "7MqKgTNX-aDZNb-z7D32dNBDU_-VjCGUv4NWzG19eGn9j7C39GvhpQhUTyF1YZdA-KV7TnRCMDYlH1tI"
            "JHrJXiTKpcPXwl0",
            "dp": "G4sPXkc6Ya9y8oJW9_ILj4xuppu0lzi_H7VTkS8xj5SdX3coE0oimYwxIi2emTAue0UOa5dpgFGy"
            "BJ4c8tQ2VF402XRugKDTP8akYhFo5tAA77Qe_NmtuYZc3C3m3I24G2GvR5sSDxUyAN2zq8Lfn9EUms6r"
            "Y3Ob8YeiKkTiBj0",
            "dq": "s9lAH9fggBsoFR8Oac2R_E2gw282rT2kGOAhvIllETE1efrA6huUUvMfBcMpn8lqeW6hXjmpmr5B"
            "P_c3WLt8oCYwcNEo7Rt2I6hxT8qx6QIBWMB0B0lXAKKC1Fbc5UVIr_sSgK5rqsJhLwPCvCQ0FGhMg-L-"
            "TQcA2E4lmLqlLEk",
            "qi": "GyM_p6JrXySiz1toFgKbWV-JdI3jQ4ypu9rbMWx3rQJBfmt0FoYzgUIZEVFEcOqwemRN81zoDAaa"
            "-Bk0KWNGDjJHZDdDmFhW3AN7lI-puxk_mHZGJ11rxyR8O55XLSe3SPmRfKwZI6yU24ZxvQKFYItdldUK"
            "GzO6Ia6zTKhAVRU",
        },
    ]
}

# RFC 7517 Appendix A.3: symmetric keys.
RFC7517_A3 = {
    "keys": [
        {"kty": "oct", "alg": "A128KW", "k": "GawgguFyGrWKav7AX4VKUg"},
        {
            "kty": "oct",
            "k": "AyM32w-8O0TGsGDYX0MlWy-9XQP-xrryrP7gkXKfY5WhoLxmT3fzfVr7LXqgDDFSfowWBY-u6bSH5f9"
            "kBZ_n7Q",
            "kid": "HMAC key used in JWS A.1 example",
        },
    ]
}

# RFC 7515 Appendix A.2 (RS256) and A.3 (ES256): the public keys and the signed JWS of
# the claims {"iss":"joe","exp":1300819380,"http://example.com/is_root":true}.
RFC7515_PAYLOAD = (
    "eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ"
)
RFC7515_A2_KEY = {
    "kty": "RSA",
    "n": "ofgWCuLjybRlzo0tZWJjNiuSfb4p4fAkd_wWJcyQoTbji9k0l8W26mPddxHmfHQp-Vaw-4qPCJrcS2mJPMEz"
    "P1Pt0Bm4d4QlL-yRT-SFd2lZS-pCgNMsD1W_YpRPEwOWvG6b32690r2jZ47soMZo9wGzjb_7OMg0LOL-bSf63kp"
    "aSHSXndS5z5rexMdbBYUsLA9e-KXBdQOS-UTo7WTBEMa2R2CapHg665xsmtdVMTBQY4uDZlxvb3qCo5ZwKh9kG4L"
    "T6_I5IhlJH7aGhyxXFvUK-DWNmoudF8NAco9_h9iaGNj8q2ethFkMLs91kzk2PAcDTW9gb54h4FRWyuXpoQ",
    "e": "AQAB",
}
RFC7515_A2_TOKEN = (
    "eyJhbGciOiJSUzI1NiJ9."
    + RFC7515_PAYLOAD
    + ".cC4hiUPoj9Eetdgtv3hF80EGrhuB__dzERat0XF9g2VtQgr9PJbu3XOiZj5RZmh7AAuHIm4Bh-0Qc_lF5YKt_O8"
    "W2Fp5jujGbds9uJdbF9CUAr7t1dnZcAcQjbKBYNX4BAynRFdiuB--f_nZLgrnbyTyWzO75vRK5h6xBArLIARNPvkS"
    "jtQBMHlb1L07Qe7K0GarZRmB_eSN9383LcOLn6_dO--xi12jzDwusC-eOkHWEsqtFZESc6BfI7noOPqvhJ1phCnvW"
    "h6IeYI2w9QOYEUipUTI8np6LbgGY9Fs98rqVt5AXLIhWkWywlVmtVrBp0igcN_IoypGlUPQGe77Rw"
)
RFC7515_A3_KEY = {
    "kty": "EC",
    "crv": "P-256",
    "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
    "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0",
}
RFC7515_A3_TOKEN = (
    "eyJhbGciOiJFUzI1NiJ9."
    + RFC7515_PAYLOAD
    + ".DtEhU3ljbEg8L38VWAfUAqOyKAM6-Xx-F4GawxaepmXFCgfTjDxw5djxLa8ISlSApmWQxfKTUJqPP3-Kg6NU1Q"
)
RFC7515_NOW = datetime(2011, 3, 22, 18, 0, tzinfo=UTC)  # before the claims' exp

# -- documents in the shapes real providers publish (written from their public docs) ------


def keycloak_discovery(issuer: str = ISSUER) -> dict[str, Any]:
    """A Keycloak realm's discovery document (Keycloak 24-26 shape, abridged)."""
    oidc = f"{issuer}/protocol/openid-connect"
    algs = ["PS384", "RS384", "EdDSA", "ES384", "HS256", "HS512", "ES256", "RS256", "HS384"]
    algs += ["ES512", "PS256", "PS512", "RS512"]
    return {
        "issuer": issuer,
        "authorization_endpoint": f"{oidc}/auth",
        "token_endpoint": f"{oidc}/token",
        "introspection_endpoint": f"{oidc}/token/introspect",
        "userinfo_endpoint": f"{oidc}/userinfo",
        "end_session_endpoint": f"{oidc}/logout",
        "frontchannel_logout_session_supported": True,
        "frontchannel_logout_supported": True,
        "jwks_uri": f"{oidc}/certs",
        "check_session_iframe": f"{oidc}/login-status-iframe.html",
        "grant_types_supported": [
            "authorization_code",
            "implicit",
            "refresh_token",
            "password",
            "client_credentials",
            "urn:openid:params:grant-type:ciba",
            "urn:ietf:params:oauth:grant-type:device_code",
        ],
        "acr_values_supported": ["0", "1", "loa:1", "loa:2"],
        "response_types_supported": [
            "code",
            "none",
            "id_token",
            "token",
            "id_token token",
            "code id_token",
            "code token",
            "code id_token token",
        ],
        "subject_types_supported": ["public", "pairwise"],
        "id_token_signing_alg_values_supported": algs,
        "id_token_encryption_alg_values_supported": ["RSA-OAEP", "RSA-OAEP-256", "RSA1_5"],
        "userinfo_signing_alg_values_supported": [*algs, "none"],
        "request_object_signing_alg_values_supported": [*algs, "none"],
        "response_modes_supported": [
            "query",
            "fragment",
            "form_post",
            "query.jwt",
            "fragment.jwt",
            "form_post.jwt",
            "jwt",
        ],
        "registration_endpoint": f"{issuer}/clients-registrations/openid-connect",
        "token_endpoint_auth_methods_supported": [
            "private_key_jwt",
            "client_secret_basic",
            "client_secret_post",
            "tls_client_auth",
            "client_secret_jwt",
        ],
        "claims_supported": ["aud", "sub", "iss", "auth_time", "name", "preferred_username"],
        "claim_types_supported": ["normal"],
        "claims_parameter_supported": True,
        "scopes_supported": [
            "openid",
            "co_scope",
            "web-origins",
            "roles",
            "phone",
            "offline_access",
            "address",
            "basic",
            "profile",
            "email",
            "acr",
            "organization",
        ],
        "request_parameter_supported": True,
        "request_uri_parameter_supported": True,
        "require_request_uri_registration": True,
        "code_challenge_methods_supported": ["plain", "S256"],
        "tls_client_certificate_bound_access_tokens": True,
        "revocation_endpoint": f"{oidc}/revoke",
        "backchannel_logout_supported": True,
        "backchannel_logout_session_supported": True,
        "device_authorization_endpoint": f"{oidc}/auth/device",
        "backchannel_token_delivery_modes_supported": ["poll", "ping"],
        "backchannel_authentication_endpoint": f"{oidc}/ext/ciba/auth",
        "require_pushed_authorization_requests": False,
        "pushed_authorization_request_endpoint": f"{oidc}/ext/par/request",
        "mtls_endpoint_aliases": {"token_endpoint": f"{oidc}/token"},
        "authorization_response_iss_parameter_supported": True,
    }


GOOGLE_DISCOVERY: dict[str, Any] = {
    "issuer": "https://accounts.google.com",
    "authorization_endpoint": "https://accounts.google.com/o/oauth2/v2/auth",
    "device_authorization_endpoint": "https://oauth2.googleapis.com/device/code",
    "token_endpoint": "https://oauth2.googleapis.com/token",
    "userinfo_endpoint": "https://openidconnect.googleapis.com/v1/userinfo",
    "revocation_endpoint": "https://oauth2.googleapis.com/revoke",
    "jwks_uri": "https://www.googleapis.com/oauth2/v3/certs",
    "response_types_supported": [
        "code",
        "token",
        "id_token",
        "code token",
        "code id_token",
        "token id_token",
        "code token id_token",
        "none",
    ],
    "subject_types_supported": ["public"],
    "id_token_signing_alg_values_supported": ["RS256"],
    "scopes_supported": ["openid", "email", "profile"],
    "token_endpoint_auth_methods_supported": ["client_secret_post", "client_secret_basic"],
    "claims_supported": ["aud", "email", "email_verified", "exp", "iat", "iss", "sub"],
    "code_challenge_methods_supported": ["plain", "S256"],
    "grant_types_supported": [
        "authorization_code",
        "refresh_token",
        "urn:ietf:params:oauth:grant-type:device_code",
        "urn:ietf:params:oauth:grant-type:jwt-bearer",
    ],
}

AZURE_TENANT = "9188040d-6c67-4c5b-b112-36a304b66dad"


def azure_discovery(tenant: str = AZURE_TENANT) -> dict[str, Any]:
    """Microsoft Entra ID (Azure AD) v2.0; the ``common`` endpoint publishes the issuer
    with a ``{tenantid}`` placeholder."""
    base = f"https://login.microsoftonline.com/{tenant}"
    issuer_tenant = "{tenantid}" if tenant == "common" else tenant
    return {
        "token_endpoint": f"{base}/oauth2/v2.0/token",
        "token_endpoint_auth_methods_supported": [
            "client_secret_post",
            "private_key_jwt",
            "client_secret_basic",
        ],
        "jwks_uri": f"{base}/discovery/v2.0/keys",
        "response_modes_supported": ["query", "fragment", "form_post"],
        "subject_types_supported": ["pairwise"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
        "scopes_supported": ["openid", "profile", "email", "offline_access"],
        "issuer": f"https://login.microsoftonline.com/{issuer_tenant}/v2.0",
        "request_uri_parameter_supported": False,
        "userinfo_endpoint": "https://graph.microsoft.com/oidc/userinfo",
        "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
        "device_authorization_endpoint": f"{base}/oauth2/v2.0/devicecode",
        "http_logout_supported": True,
        "frontchannel_logout_supported": True,
        "end_session_endpoint": f"{base}/oauth2/v2.0/logout",
        "claims_supported": ["sub", "iss", "aud", "exp", "iat", "auth_time", "acr", "tid"],
        "kerberos_endpoint": f"{base}/kerberos",
        "tenant_region_scope": "SA",
        "cloud_instance_name": "microsoftonline.com",
        "cloud_graph_host_name": "graph.windows.net",
        "msgraph_host": "graph.microsoft.com",
        "rbac_url": "https://pas.windows.net",
    }


# -- helpers -------------------------------------------------------------------------------


def dump(value: object) -> bytes:
    return json.dumps(value).encode()


def problem_of(call: Callable[[], object]) -> OidcProblem:
    """The :class:`OidcProblem` ``call`` raises, checked to be clean and bounded."""
    with pytest.raises(OidcProblem) as caught:
        call()
    problem = caught.value
    assert len(problem.message) <= PROBLEM_MESSAGE_LIMIT
    problem.message.encode("utf-8", "strict")
    assert "\x00" not in problem.message
    return problem


def rsa_jwk(key: RSAKey | ECKey | OKPKey, **extra: Any) -> dict[str, Any]:
    """The public JWK of ``key`` with ``extra`` members."""
    return {**key.as_dict(private=False), **extra}


def certificate(
    private_key: Any, *, not_after: datetime, not_before: datetime | None = None
) -> str:
    """A self-signed certificate for ``private_key``, as an ``x5c`` entry."""
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "idp.example.gov.co")])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(private_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before or not_after - timedelta(days=365))
        .not_valid_after(not_after)
        .sign(private_key, hashes.SHA256())
    )
    return base64.b64encode(cert.public_bytes(serialization.Encoding.DER)).decode()


@pytest.fixture(scope="module")
def rsa_key() -> RSAKey:
    return RSAKey.generate_key(2048, parameters={"kid": "rsa-1", "use": "sig", "alg": "RS256"})


@pytest.fixture(scope="module")
def ec_key() -> ECKey:
    return ECKey.generate_key("P-256", parameters={"kid": "ec-1", "use": "sig", "alg": "ES256"})


@pytest.fixture(scope="module")
def enc_key() -> RSAKey:
    return RSAKey.generate_key(2048, parameters={"kid": "enc-1", "use": "enc", "alg": "RSA-OAEP"})


@pytest.fixture(scope="module")
def jwks(rsa_key: RSAKey, ec_key: ECKey, enc_key: RSAKey) -> Jwks:
    body = dump({"keys": [rsa_jwk(enc_key), rsa_jwk(rsa_key), rsa_jwk(ec_key)]})
    return parse_jwks(body, signing_algs=["RS256", "ES256"], now=NOW)


def claims(**overrides: Any) -> dict[str, Any]:
    """Claims of a Keycloak client_credentials access token, issued a minute before NOW."""
    issued = int(NOW.timestamp()) - 60
    base: dict[str, Any] = {
        "exp": issued + 300,
        "iat": issued,
        "jti": "4c5d8e1f-0b0a-4f57-9a43-6e1f5d1b2c3d",
        "iss": ISSUER,
        "aud": ["scd-monitor", "account"],
        "sub": "0f3b1c2d-service-account",
        "typ": "Bearer",
        "azp": "scd-monitor",
        "scope": "openid co_scope",
        "clientId": "scd-monitor",
    }
    base.update(overrides)
    return {name: value for name, value in base.items() if value is not None}


def sign(key: Any, alg: str, payload: dict[str, Any], **header: Any) -> str:
    kid = key.kid if "kid" not in header else header.pop("kid")
    head = {"alg": alg, **({"kid": kid} if kid is not None else {}), **header}
    return jwt.encode(head, payload, key, algorithms=[alg])


# -- discovery -----------------------------------------------------------------------------


def test_the_spec_example_parses_with_the_spec_defaults() -> None:
    found = parse_discovery(dump(DISCOVERY_SPEC_EXAMPLE), issuer="https://server.example.com")
    assert found == Discovery(
        issuer="https://server.example.com",
        authorization_endpoint="https://server.example.com/connect/authorize",
        token_endpoint="https://server.example.com/connect/token",
        userinfo_endpoint="https://server.example.com/connect/userinfo",
        end_session_endpoint="https://server.example.com/connect/end_session",
        jwks_uri="https://server.example.com/jwks.json",
        signing_algs=("RS256", "ES256", "HS256"),
        scopes_supported=("openid", "profile", "email", "address", "phone", "offline_access"),
        acr_values_supported=("urn:mace:incommon:iap:silver", "urn:mace:incommon:iap:bronze"),
        grant_types_supported=("authorization_code", "implicit"),  # absent: the default
        code_challenge_methods_supported=(),
        token_endpoint_auth_methods_supported=("client_secret_basic", "private_key_jwt"),
    )


def test_a_keycloak_realm_meets_the_catalog_expectations() -> None:
    document = keycloak_discovery()
    document["id_token_signing_alg_values_supported"].append("none")
    found = parse_discovery(
        dump(document),
        issuer=ISSUER,
        required={
            "scopes_supported": ["openid", "co_scope"],
            "acr_values_supported": ["loa:1", "loa:2"],
            "code_challenge_methods_supported": ["S256"],
            "grant_types_supported": ["client_credentials"],
            "response_modes_supported": ["form_post"],  # any array member can be required
        },
    )
    assert found.jwks_uri == f"{ISSUER}/protocol/openid-connect/certs"
    assert found.end_session_endpoint == f"{ISSUER}/protocol/openid-connect/logout"
    assert "none" not in found.signing_algs and found.signing_algs[:2] == ("PS384", "RS384")
    assert "client_credentials" in found.grant_types_supported


def test_missing_expected_values_are_named_field_by_field() -> None:
    document = keycloak_discovery()
    document["acr_values_supported"] = ["loa:1"]
    del document["code_challenge_methods_supported"]
    problem = problem_of(
        lambda: parse_discovery(
            dump(document),
            issuer=ISSUER,
            required={
                "scopes_supported": ["openid"],
                "acr_values_supported": ["loa:1", "loa:2"],
                "code_challenge_methods_supported": ["S256"],
            },
        )
    )
    assert problem.kind is ErrorKind.ASSERTION and problem.step == "discovery"
    assert problem.message == (
        "acr_values_supported lacks 'loa:2'; code_challenge_methods_supported lacks 'S256' "
        "(the document does not publish it)"
    )


def test_an_absent_grant_types_member_means_the_spec_default() -> None:
    document = dict(DISCOVERY_SPEC_EXAMPLE)
    ok = parse_discovery(
        dump(document),
        issuer="https://server.example.com",
        required={"grant_types_supported": ["implicit"]},
    )
    assert ok.grant_types_supported == ("authorization_code", "implicit")
    problem = problem_of(
        lambda: parse_discovery(
            dump(document),
            issuer="https://server.example.com",
            required={"grant_types_supported": ["client_credentials"]},
        )
    )
    assert problem.kind is ErrorKind.ASSERTION
    assert "grant_types_supported lacks 'client_credentials'" in problem.message


def test_google_and_azure_documents_parse() -> None:
    google = parse_discovery(dump(GOOGLE_DISCOVERY), issuer="https://accounts.google.com")
    assert google.end_session_endpoint is None and google.acr_values_supported == ()
    assert google.signing_algs == ("RS256",)
    issuer = f"https://login.microsoftonline.com/{AZURE_TENANT}/v2.0"
    azure = parse_discovery(dump(azure_discovery()), issuer=issuer)
    assert azure.userinfo_endpoint == "https://graph.microsoft.com/oidc/userinfo"
    assert azure.grant_types_supported == ("authorization_code", "implicit")


def test_the_azure_common_endpoint_publishes_a_placeholder_issuer() -> None:
    configured = f"https://login.microsoftonline.com/{AZURE_TENANT}/v2.0"
    problem = problem_of(
        lambda: parse_discovery(dump(azure_discovery("common")), issuer=configured)
    )
    assert problem.kind is ErrorKind.ASSERTION
    assert problem.message == (
        "issuer is 'https://login.microsoftonline.com/{tenantid}/v2.0', expected exactly "
        f"'{configured}' (OIDC Discovery 1.0 §4.3)"
    )


@pytest.mark.parametrize("published", [ISSUER + "/", ISSUER.upper(), ISSUER.replace("s:", ":")])
def test_the_issuer_is_compared_character_for_character(published: str) -> None:
    document = {**keycloak_discovery(), "issuer": published}
    problem = problem_of(lambda: parse_discovery(dump(document), issuer=ISSUER))
    assert problem.kind is ErrorKind.ASSERTION
    assert published[:40] in problem.message and ISSUER in problem.message


def test_an_issuer_of_thousands_of_characters_is_quoted_short() -> None:
    document = {**keycloak_discovery(), "issuer": "https://evil.example/" + "x" * 100_000}
    problem = problem_of(lambda: parse_discovery(dump(document), issuer=ISSUER))
    assert problem.kind is ErrorKind.ASSERTION and len(problem.message) < 300


@pytest.mark.parametrize(
    "field",
    [
        "issuer",
        "authorization_endpoint",
        "jwks_uri",
        "response_types_supported",
        "subject_types_supported",
        "id_token_signing_alg_values_supported",
    ],
)
@pytest.mark.parametrize("how", ["absent", "null"])
def test_each_required_field_is_required(field: str, how: str) -> None:
    document = keycloak_discovery()
    if how == "absent":
        del document[field]
    else:
        document[field] = None
    problem = problem_of(lambda: parse_discovery(dump(document), issuer=ISSUER))
    assert problem.kind is ErrorKind.ASSERTION
    assert problem.message == (
        f"the discovery document lacks the required {field} (OIDC Discovery 1.0 §3)"
    )


def test_token_endpoint_is_required_unless_the_flow_is_implicit_only() -> None:
    document = keycloak_discovery()
    del document["token_endpoint"]
    problem = problem_of(lambda: parse_discovery(dump(document), issuer=ISSUER))
    assert problem.kind is ErrorKind.ASSERTION
    assert problem.message.startswith("the discovery document lacks token_endpoint")
    document["response_types_supported"] = ["id_token", "id_token token"]
    assert parse_discovery(dump(document), issuer=ISSUER).token_endpoint is None


@pytest.mark.parametrize(
    ("field", "value", "expected"),
    [
        ("issuer", 42, "issuer is a number, expected a string"),
        ("jwks_uri", ["https://x"], "jwks_uri is an array, expected a string"),
        ("scopes_supported", "openid", "scopes_supported is a string, expected an array of"),
        ("response_types_supported", ["code", 1], "is an array holding a number"),
        ("userinfo_endpoint", {"url": "https://x"}, "userinfo_endpoint is an object"),
        ("grant_types_supported", True, "grant_types_supported is a boolean"),
    ],
)
def test_ill_typed_fields_are_protocol_errors(field: str, value: object, expected: str) -> None:
    document = {**keycloak_discovery(), field: value}
    problem = problem_of(lambda: parse_discovery(dump(document), issuer=ISSUER))
    assert problem.kind is ErrorKind.PROTOCOL
    assert expected in problem.message


def test_optional_members_written_as_null_count_as_absent() -> None:
    document = {**keycloak_discovery(), "end_session_endpoint": None, "scopes_supported": None}
    found = parse_discovery(dump(document), issuer=ISSUER)
    assert found.end_session_endpoint is None and found.scopes_supported == ()


@pytest.mark.parametrize(
    "field",
    [
        "response_types_supported",
        "subject_types_supported",
        "id_token_signing_alg_values_supported",
    ],
)
def test_required_arrays_must_not_be_empty(field: str) -> None:
    document = {**keycloak_discovery(), field: []}
    problem = problem_of(lambda: parse_discovery(dump(document), issuer=ISSUER))
    assert problem.kind is ErrorKind.ASSERTION and problem.message == f"{field} is empty"


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("http://idp.example.gov.co/token", "is not an absolute https URL"),
        ("/protocol/openid-connect/token", "is not an absolute https URL"),
        ("javascript:alert(1)", "is not an absolute https URL"),
        ("https:///token", "has no host"),
        ("https://idp.example.gov.co/token#frag", "has a fragment"),
        ("https://idp.example.gov.co/to ken", "has whitespace or control characters"),
        ("https://idp.example.gov.co:99999/token", "is not a valid URL"),
        ("https://[::1/token", "is not a valid URL"),
    ],
)
def test_endpoints_must_be_absolute_https_urls(url: str, why: str) -> None:
    document = {**keycloak_discovery(), "token_endpoint": url}
    problem = problem_of(lambda: parse_discovery(dump(document), issuer=ISSUER))
    assert problem.kind is ErrorKind.ASSERTION
    assert problem.message.startswith("token_endpoint '") and problem.message.endswith(why)


def test_an_http_issuer_allows_http_endpoints() -> None:
    issuer = "http://127.0.0.1:8080/realms/test"
    found = parse_discovery(dump(keycloak_discovery(issuer)), issuer=issuer)
    assert found.token_endpoint == f"{issuer}/protocol/openid-connect/token"
    document = {**keycloak_discovery(issuer), "jwks_uri": "ftp://127.0.0.1/certs"}
    problem = problem_of(lambda: parse_discovery(dump(document), issuer=issuer))
    assert problem.kind is ErrorKind.ASSERTION
    assert problem.message.endswith("is not an absolute http(s) URL")


def test_a_member_repeated_in_an_object_is_refused() -> None:
    # Parsers disagree on which "issuer" wins: the monitor must not pick one silently.
    body = dump(keycloak_discovery())[:-1] + b', "issuer": "https://evil.example"}'
    problem = problem_of(lambda: parse_discovery(body, issuer=ISSUER))
    assert problem.kind is ErrorKind.PROTOCOL
    assert problem.message == "the discovery document repeats the member 'issuer' in an object"


# -- JWKS ----------------------------------------------------------------------------------


def test_rfc7517_a1_public_keys_parse() -> None:
    found = parse_jwks(dump(RFC7517_A1), signing_algs=["RS256"], now=NOW)
    assert found.kids == ("1", "2011-04-29")
    assert [(k.kid, k.kty, k.alg, k.use) for k in found.keys] == [
        ("1", "EC", None, "enc"),
        ("2011-04-29", "RSA", "RS256", None),
    ]
    assert found.keys[1].thumbprint == RFC7638_THUMBPRINT
    assert found.x5c_not_after is None
    # Only the RSA key signs: the EC key is for encryption.
    assert [key.kid for key in found.key_set.keys] == ["2011-04-29"]


def test_rfc7517_a1_has_no_signing_key_for_es256() -> None:
    problem = problem_of(
        lambda: parse_jwks(dump(RFC7517_A1), signing_algs=["RS256", "ES256"], now=NOW)
    )
    assert problem.kind is ErrorKind.ASSERTION and problem.step == "jwks"
    assert problem.message == "no signing key for ES256"


def test_a_key_without_kid_is_known_by_its_rfc7638_thumbprint() -> None:
    key = {name: value for name, value in RFC7517_A1_RSA.items() if name != "kid"}
    found = parse_jwks(dump({"keys": [key]}), signing_algs=["RS256"], now=NOW)
    assert found.kids == (RFC7638_THUMBPRINT,)
    assert found.keys[0].kid is None


@pytest.mark.parametrize("index", [0, 1])
def test_rfc7517_a2_private_keys_are_refused(index: int) -> None:
    body = dump({"keys": [RFC7517_A2["keys"][index]]})
    problem = problem_of(lambda: parse_jwks(body, signing_algs=[], now=NOW))
    assert problem.kind is ErrorKind.ASSERTION
    kid = RFC7517_A2["keys"][index]["kid"]
    assert problem.message.startswith(f"key 0 (kid '{kid}') publishes private key material (d")
    assert "must never publish private keys" in problem.message
    assert RFC7517_A2["keys"][index]["d"][:10] not in problem.message  # never the secret


def test_rfc7517_a3_symmetric_keys_are_refused() -> None:
    problem = problem_of(lambda: parse_jwks(dump(RFC7517_A3), signing_algs=[], now=NOW))
    assert problem.kind is ErrorKind.ASSERTION
    assert problem.message.startswith("key 0 publishes private key material (k)")
    without_k = {"keys": [{"kty": "oct", "kid": "h"}]}
    problem = problem_of(lambda: parse_jwks(dump(without_k), signing_algs=[], now=NOW))
    assert "publishes a symmetric key" in problem.message


def test_generated_keys_cover_their_algorithms(
    rsa_key: RSAKey, ec_key: ECKey, enc_key: RSAKey, jwks: Jwks
) -> None:
    assert jwks.kids == ("ec-1", "enc-1", "rsa-1")
    assert sorted(key.kid for key in jwks.key_set.keys) == ["ec-1", "rsa-1"]
    body = dump({"keys": [rsa_jwk(enc_key), rsa_jwk(rsa_key)]})
    problem = problem_of(lambda: parse_jwks(body, signing_algs=["RS256", "ES256"], now=NOW))
    assert problem.message == "no signing key for ES256"


def test_hmac_algorithms_need_no_key_in_the_jwks(rsa_key: RSAKey) -> None:
    body = dump({"keys": [rsa_jwk(rsa_key)]})
    found = parse_jwks(body, signing_algs=["RS256", "HS256", "HS512"], now=NOW)
    assert found.kids == ("rsa-1",)


def test_a_keycloak_realm_advertises_more_algorithms_than_its_default_keys(
    rsa_key: RSAKey, enc_key: RSAKey
) -> None:
    # Keycloak lists every algorithm it supports in the discovery document, while a realm
    # has only an RS256 signing key (and an RSA-OAEP encryption key) by default: with the
    # whole list, the JWKS check names every algorithm without a key.
    algs = parse_discovery(dump(keycloak_discovery()), issuer=ISSUER).signing_algs
    body = dump({"keys": [rsa_jwk(enc_key), rsa_jwk(rsa_key)]})
    problem = problem_of(lambda: parse_jwks(body, signing_algs=algs, now=NOW))
    assert problem.kind is ErrorKind.ASSERTION
    assert problem.message == (
        "no signing key for PS384, RS384, EdDSA, ES384, ES256, ES512, PS256, PS512, RS512"
    )
    assert parse_jwks(body, signing_algs=["RS256"], now=NOW).kids == ("enc-1", "rsa-1")


@pytest.mark.parametrize(
    ("extra", "alg"),
    [
        ({"use": "enc"}, "RS256"),
        ({"alg": "RS512"}, "RS256"),
        ({"key_ops": ["encrypt"]}, "RS256"),
        ({}, "ES256"),
        ({}, "EdDSA"),
        ({}, "XYZ"),
    ],
)
def test_a_key_that_cannot_verify_the_algorithm_does_not_count(
    rsa_key: RSAKey, extra: dict[str, Any], alg: str
) -> None:
    key = {k: v for k, v in rsa_jwk(rsa_key).items() if k not in ("use", "alg")} | extra
    problem = problem_of(lambda: parse_jwks(dump({"keys": [key]}), signing_algs=[alg], now=NOW))
    assert problem.message == f"no signing key for {alg}"


def test_curves_select_the_ecdsa_algorithm() -> None:
    p384 = ECKey.generate_key("P-384", parameters={"kid": "p384"})
    ed = OKPKey.generate_key("Ed25519", parameters={"kid": "ed"})
    body = dump({"keys": [rsa_jwk(p384), rsa_jwk(ed)]})
    assert parse_jwks(body, signing_algs=["ES384", "EdDSA", "Ed25519"], now=NOW).kids == (
        "ed",
        "p384",
    )
    problem = problem_of(lambda: parse_jwks(body, signing_algs=["ES256", "ES512"], now=NOW))
    assert problem.message == "no signing key for ES256, ES512"


def test_a_weak_rsa_key_is_refused() -> None:
    # A 1024-bit key is what this test is about (S505).
    weak = rsa.generate_private_key(public_exponent=65537, key_size=1024)  # noqa: S505
    numbers = weak.public_key().public_numbers()

    def b64(number: int) -> str:
        raw = number.to_bytes((number.bit_length() + 7) // 8, "big")
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    body = dump({"keys": [{"kty": "RSA", "kid": "old", "n": b64(numbers.n), "e": b64(numbers.e)}]})
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the judge must not make joserfc warn
        problem = problem_of(lambda: parse_jwks(body, signing_algs=["RS256"], now=NOW))
    assert problem.kind is ErrorKind.ASSERTION
    assert problem.message == "key 0 (kid 'old') is a weak RSA key: 1024 bits, fewer than 2048"


def test_an_x5c_certificate_gives_the_expiry() -> None:
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    other = ec.generate_private_key(ec.SECP256R1())
    soon, later = NOW + timedelta(days=20), NOW + timedelta(days=200)
    keys = [
        rsa_jwk(
            RSAKey.import_key(private.public_key()),
            kid="a",
            x5c=[certificate(private, not_after=later)],
        ),
        rsa_jwk(
            ECKey.import_key(other.public_key()), kid="b", x5c=[certificate(other, not_after=soon)]
        ),
    ]
    found = parse_jwks(dump({"keys": keys}), signing_algs=["RS256", "ES256"], now=NOW)
    assert found.keys[0].x5c_not_after == later.replace(microsecond=0)
    assert found.x5c_not_after == soon.replace(microsecond=0)


def test_an_expired_x5c_certificate_is_refused() -> None:
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    expired = datetime(2025, 5, 1, tzinfo=UTC)
    key = rsa_jwk(
        RSAKey.import_key(private.public_key()),
        kid="2024-signing",
        x5c=[certificate(private, not_after=expired)],
    )
    problem = problem_of(lambda: parse_jwks(dump({"keys": [key]}), signing_algs=["RS256"], now=NOW))
    assert problem.kind is ErrorKind.ASSERTION
    assert problem.message == (
        "x5c certificate of key '2024-signing' expired on 2025-05-01T00:00:00+00:00"
    )


def test_an_x5c_certificate_for_another_key_is_refused() -> None:
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    key = rsa_jwk(
        RSAKey.import_key(private.public_key()),
        kid="k",
        x5c=[certificate(stranger, not_after=NOW + timedelta(days=9))],
    )
    problem = problem_of(lambda: parse_jwks(dump({"keys": [key]}), signing_algs=["RS256"], now=NOW))
    assert problem.kind is ErrorKind.ASSERTION
    assert "x5c certificate for another public key" in problem.message


@pytest.mark.parametrize(
    ("x5c", "kind", "expected"),
    [
        (["not base64!"], ErrorKind.PROTOCOL, "x5c[0] that is not base64"),
        (["AAAA"], ErrorKind.PROTOCOL, "x5c[0] that is not a DER certificate"),
        ([], ErrorKind.ASSERTION, "has an empty x5c"),
        ("MIIB", ErrorKind.PROTOCOL, "x5c is a string, expected an array of strings"),
    ],
)
def test_malformed_x5c_is_refused(
    rsa_key: RSAKey, x5c: object, kind: ErrorKind, expected: str
) -> None:
    key = rsa_jwk(rsa_key, x5c=x5c)
    problem = problem_of(lambda: parse_jwks(dump({"keys": [key]}), signing_algs=["RS256"], now=NOW))
    assert problem.kind is kind and expected in problem.message


def test_x5c_in_base64url_is_refused() -> None:
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    cert = certificate(private, not_after=NOW + timedelta(days=9))
    url_safe = base64.urlsafe_b64encode(base64.b64decode(cert)).decode().rstrip("=")
    assert url_safe != cert  # a DER certificate of this size has + or / in base64
    key = rsa_jwk(RSAKey.import_key(private.public_key()), kid="k", x5c=[url_safe])
    problem = problem_of(lambda: parse_jwks(dump({"keys": [key]}), signing_algs=["RS256"], now=NOW))
    assert problem.kind is ErrorKind.PROTOCOL and "not base64url" in problem.message


def test_an_azure_shaped_jwks_parses() -> None:
    # Entra ID publishes RSA keys with use, kid, x5t, x5c and an extra "issuer", no alg.
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public = RSAKey.import_key(private.public_key()).as_dict()
    key = {
        "kty": "RSA",
        "use": "sig",
        "kid": "CNv0OI3RwqlHFEVnaoMAshCH2XE",
        "x5t": "CNv0OI3RwqlHFEVnaoMAshCH2XE",
        "n": public["n"],
        "e": public["e"],
        "x5c": [certificate(private, not_after=NOW + timedelta(days=700))],
        "issuer": "https://login.microsoftonline.com/{tenantid}/v2.0",
    }
    found = parse_jwks(dump({"keys": [key]}), signing_algs=["RS256"], now=NOW)
    assert found.kids == ("CNv0OI3RwqlHFEVnaoMAshCH2XE",) and found.keys[0].alg is None


@pytest.mark.parametrize(
    ("key", "kind", "expected"),
    [
        ({**RFC7517_A1_RSA, "n": "0vx7ag+ebGcQ"}, ErrorKind.PROTOCOL, "n is not valid base64url"),
        ({**RFC7517_A1_RSA, "n": "é" * 10}, ErrorKind.PROTOCOL, "n is not valid base64url"),
        ({**RFC7517_A1_RSA, "e": ""}, ErrorKind.PROTOCOL, "e is not valid base64url"),
        ({**RFC7517_A1_RSA, "e": "AAE"}, ErrorKind.PROTOCOL, "is not a valid RSA key"),
        ({**RFC7517_A1_RSA, "e": None}, ErrorKind.ASSERTION, "(RSA) lacks e"),
        ({**RFC7517_A1_RSA, "n": 12345}, ErrorKind.PROTOCOL, "n is a number, expected a string"),
        ({**RFC7517_A1_RSA, "kty": "AKP"}, ErrorKind.ASSERTION, "has an unsupported kty 'AKP'"),
        ({**RFC7517_A1_RSA, "kty": 7}, ErrorKind.PROTOCOL, "kty is a number, expected a string"),
        ({**RFC7517_A1_RSA, "kty": None}, ErrorKind.ASSERTION, "has no kty"),
        ({**RFC7517_A1_RSA, "kid": 3}, ErrorKind.PROTOCOL, "kid is a number, expected a string"),
        ({**RFC7517_A1_RSA, "use": ["sig"]}, ErrorKind.PROTOCOL, "use is an array"),
        ({**RFC7517_A1_RSA, "key_ops": "verify"}, ErrorKind.PROTOCOL, "key_ops is a string"),
        ({**RFC7517_A1_EC, "crv": "P-192"}, ErrorKind.ASSERTION, "unsupported EC crv 'P-192'"),
        ({**RFC7517_A1_EC, "y": RFC7517_A1_EC["x"]}, ErrorKind.PROTOCOL, "not a valid EC key"),
        ({"kty": "OKP", "crv": "Ed25519", "x": "AAAA"}, ErrorKind.PROTOCOL, "not a valid OKP key"),
        (["kty", "RSA"], ErrorKind.PROTOCOL, "key 1 is an array, not a JSON object"),
        ("RSA", ErrorKind.PROTOCOL, "key 1 is a string, not a JSON object"),
    ],
)
def test_a_bad_key_fails_the_jwks_and_is_named(
    rsa_key: RSAKey, key: object, kind: ErrorKind, expected: str
) -> None:
    body = dump({"keys": [rsa_jwk(rsa_key), key]})
    problem = problem_of(lambda: parse_jwks(body, signing_algs=["RS256"], now=NOW))
    assert problem.kind is kind and problem.step == "jwks"
    assert expected in problem.message
    if isinstance(key, dict) and isinstance(key.get("kid"), str):
        assert problem.message.startswith(f"key 1 (kid '{key['kid']}')")


def test_an_rsa_exponent_too_large_is_refused() -> None:
    e = base64.urlsafe_b64encode(b"\x01" * 64).decode().rstrip("=")
    body = dump({"keys": [{**RFC7517_A1_RSA, "e": e}]})
    problem = problem_of(lambda: parse_jwks(body, signing_algs=["RS256"], now=NOW))
    assert problem.kind is ErrorKind.ASSERTION
    assert "public exponent of more than 256 bits" in problem.message


@pytest.mark.parametrize(
    ("document", "kind", "expected"),
    [
        ({"keys": {"kty": "RSA"}}, ErrorKind.PROTOCOL, "keys is an object, expected an array"),
        ({"keys": "[]"}, ErrorKind.PROTOCOL, "keys is a string, expected an array"),
        ({"keys": []}, ErrorKind.ASSERTION, "the JWKS has no keys"),
        ({"kid": "x"}, ErrorKind.ASSERTION, "the JWKS has no keys member"),
        ([RFC7517_A1_RSA], ErrorKind.PROTOCOL, "the JWKS is an array, not a JSON object"),
    ],
)
def test_a_jwks_must_be_an_object_with_a_keys_array(
    document: object, kind: ErrorKind, expected: str
) -> None:
    problem = problem_of(lambda: parse_jwks(dump(document), signing_algs=["RS256"], now=NOW))
    assert problem.kind is kind and expected in problem.message


def test_too_many_keys_is_too_large(rsa_key: RSAKey) -> None:
    body = dump({"keys": [rsa_jwk(rsa_key, kid=f"k{i}") for i in range(101)]})
    assert len(body) < 1_048_576
    problem = problem_of(lambda: parse_jwks(body, signing_algs=["RS256"], now=NOW))
    assert problem.kind is ErrorKind.TOO_LARGE
    assert problem.message == "the JWKS has 101 keys, more than 100"
    assert len(parse_jwks(body, signing_algs=["RS256"], now=NOW, max_keys=101).kids) == 101


# -- hostile bytes, both documents ---------------------------------------------------------


def _deep(levels: int) -> bytes:
    return b'{"keys":' + b"[" * levels + b"]" * levels + b"}"


HOSTILE: list[tuple[str, bytes, ErrorKind, str]] = [
    ("empty", b"", ErrorKind.PROTOCOL, "is empty"),
    ("blank", b" \n\t ", ErrorKind.PROTOCOL, "is empty"),
    ("null", b"null", ErrorKind.PROTOCOL, "is null, not a JSON object"),
    ("a number", b"42", ErrorKind.PROTOCOL, "is a number, not a JSON object"),
    ("a string", b'"keys"', ErrorKind.PROTOCOL, "is a string, not a JSON object"),
    ("10,000 deep", _deep(10_000), ErrorKind.PROTOCOL, "nests deeper than 32 levels"),
    ("40 deep", _deep(40), ErrorKind.PROTOCOL, "nests deeper than 32 levels"),
    ("a NUL byte", b'{"issuer": "a\x00b"}', ErrorKind.PROTOCOL, "is not valid JSON"),
    ("NUL bytes only", b"\x00" * 64, ErrorKind.PROTOCOL, "is not valid JSON"),
    ("escaped NUL", b'{"issuer": "a\\u0000b"}', ErrorKind.PROTOCOL, "has a NUL character"),
    ("NUL in a name", b'{"a\\u0000": 1}', ErrorKind.PROTOCOL, "has a NUL character"),
    ("lone surrogate", b'{"issuer": "\\ud800"}', ErrorKind.PROTOCOL, "lone surrogate (\\ud800)"),
    ("lone low", b'{"x": ["\\udfff"]}', ErrorKind.PROTOCOL, "lone surrogate (\\udfff)"),
    ("invalid UTF-8", b'{"issuer": "\xff\xfe"}', ErrorKind.PROTOCOL, "not valid UTF-8 (byte 12)"),
    ("UTF-16", '{"keys": []}'.encode("utf-16"), ErrorKind.PROTOCOL, "not valid UTF-8"),
    ("UTF-8 BOM", b'\xef\xbb\xbf{"keys": []}', ErrorKind.PROTOCOL, "is not valid JSON"),
    ("NaN", b'{"keys": NaN}', ErrorKind.PROTOCOL, "is not valid JSON: NaN is not JSON"),
    ("5000 digits", b'{"n": ' + b"9" * 5000 + b"}", ErrorKind.PROTOCOL, "is not valid JSON"),
    ("truncated", b'{"keys": [', ErrorKind.PROTOCOL, "is not valid JSON"),
    ("trailing data", b'{"keys": []} {}', ErrorKind.PROTOCOL, "is not valid JSON"),
    ("2 MiB", b'{"keys": [' + b" " * 2 * 1_048_576 + b"]}", ErrorKind.TOO_LARGE, "more than"),
]


@pytest.mark.parametrize(
    ("body", "kind", "expected"),
    [case[1:] for case in HOSTILE],
    ids=[case[0] for case in HOSTILE],
)
@pytest.mark.parametrize("document", ["discovery", "jwks"])
def test_hostile_bytes_end_as_a_problem_of_the_right_kind(
    document: str, body: bytes, kind: ErrorKind, expected: str
) -> None:
    call: Callable[[], object]
    if document == "discovery":
        call = lambda: parse_discovery(body, issuer=ISSUER)  # noqa: E731 - one line each
    else:
        call = lambda: parse_jwks(body, signing_algs=["RS256"], now=NOW)  # noqa: E731
    problem = problem_of(call)
    assert problem.step == document
    assert problem.kind is kind and expected in problem.message


def test_the_byte_limit_can_follow_the_check(rsa_key: RSAKey) -> None:
    body = dump({"keys": [rsa_jwk(rsa_key)], "padding": "x" * 1_100_000})
    problem = problem_of(lambda: parse_jwks(body, signing_algs=["RS256"], now=NOW))
    assert problem.kind is ErrorKind.TOO_LARGE
    found = parse_jwks(body, signing_algs=["RS256"], now=NOW, max_bytes=2 * 1_048_576)
    assert found.kids == ("rsa-1",)


# -- tokens --------------------------------------------------------------------------------


def test_an_rs256_token_verifies(rsa_key: RSAKey, jwks: Jwks) -> None:
    token = sign(rsa_key, "RS256", claims())
    found = verify_token(token, jwks, issuer=ISSUER, audience="scd-monitor", now=NOW)
    assert found["azp"] == "scd-monitor" and found["iss"] == ISSUER


def test_an_es256_token_verifies(ec_key: ECKey, jwks: Jwks) -> None:
    token = sign(ec_key, "ES256", claims(aud="scd-monitor"))
    found = verify_token(token, jwks, issuer=ISSUER, audience="scd-monitor", now=NOW)
    assert found["aud"] == "scd-monitor"


def test_an_eddsa_token_verifies_without_warnings() -> None:
    key = OKPKey.generate_key("Ed25519", parameters={"kid": "ed"})
    found = parse_jwks(dump({"keys": [rsa_jwk(key)]}), signing_algs=["EdDSA"], now=NOW)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # joserfc warns when it signs with EdDSA
        token = sign(key, "EdDSA", claims())
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert verify_token(token, found, issuer=ISSUER, audience=None, now=NOW)["iss"] == ISSUER


@pytest.mark.parametrize(
    ("key", "token"),
    [(RFC7515_A2_KEY, RFC7515_A2_TOKEN), (RFC7515_A3_KEY, RFC7515_A3_TOKEN)],
    ids=["rfc7515-a2-rs256", "rfc7515-a3-es256"],
)
def test_the_rfc7515_examples_verify(key: dict[str, str], token: str) -> None:
    # The header has no kid: every signing key of the algorithm's type is tried, the
    # RFC 7517 A.1 RSA key first (it fails the RS256 signature, the next one verifies).
    keys = [RFC7517_A1_EC, RFC7517_A1_RSA, key]
    found = parse_jwks(dump({"keys": keys}), signing_algs=[], now=RFC7515_NOW)
    assert len(found.key_set.keys) == 2
    claims_ = verify_token(token, found, issuer="joe", audience=None, now=RFC7515_NOW)
    assert claims_ == {"iss": "joe", "exp": 1300819380, "http://example.com/is_root": True}
    problem = problem_of(lambda: verify_token(token, found, issuer="joe", audience=None, now=NOW))
    assert problem.message == "the token expired at 2011-03-22T18:43:00+00:00"


def token_problem(token: str, jwks: Jwks, **options: Any) -> OidcProblem:
    arguments: dict[str, Any] = {"issuer": ISSUER, "audience": "scd-monitor", "now": NOW}
    problem = problem_of(lambda: verify_token(token, jwks, **(arguments | options)))
    assert problem.step == "token"
    for part in token.split(".")[:3]:
        assert len(part) < 12 or part not in problem.message  # the token never shows
    return problem


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"exp": int(NOW.timestamp()) - 61}, "the token expired at 2025-06-02T11:58:59+00:00"),
        ({"exp": None}, "the token has no exp"),
        ({"exp": "tomorrow"}, "the token's exp is a string, not a NumericDate"),
        ({"exp": True}, "the token's exp is a boolean, not a NumericDate"),
        ({"iss": ISSUER + "/"}, f"the token's iss is '{ISSUER}/', expected exactly '{ISSUER}'"),
        ({"iss": None}, f"the token has no iss, expected '{ISSUER}'"),
        ({"iss": ["x"]}, "the token's iss is an array, expected exactly"),
        ({"aud": "account"}, "the token's aud ('account') does not contain 'scd-monitor'"),
        ({"aud": None}, "the token has no aud, expected 'scd-monitor'"),
        ({"aud": [1]}, "the token's aud is an array, not a string or strings"),
        ({"nbf": int(NOW.timestamp()) + 120}, "the token is not valid before 2025-06-02T12:02"),
        ({"iat": int(NOW.timestamp()) + 120}, "the token was issued in the future"),
        ({"exp": 10**30}, None),  # far future: valid
        ({"iat": 10**30}, "the token was issued in the future, at a time beyond the calendar"),
    ],
)
def test_claims_are_checked(
    rsa_key: RSAKey, jwks: Jwks, overrides: dict[str, Any], expected: str | None
) -> None:
    token = sign(rsa_key, "RS256", claims(**overrides))
    if expected is None:
        assert verify_token(token, jwks, issuer=ISSUER, audience="scd-monitor", now=NOW)
        return
    problem = token_problem(token, jwks)
    assert problem.kind is ErrorKind.ASSERTION
    assert problem.message.startswith(expected)


def test_the_leeway_absorbs_clock_skew(rsa_key: RSAKey, jwks: Jwks) -> None:
    at = int(NOW.timestamp())
    token = sign(rsa_key, "RS256", claims(exp=at - 30, iat=at + 30, nbf=at + 30))
    assert verify_token(token, jwks, issuer=ISSUER, audience="scd-monitor", now=NOW)
    problem = token_problem(token, jwks, leeway=10.0)
    assert problem.message.startswith("the token expired")


def test_without_an_audience_aud_is_not_checked(rsa_key: RSAKey, jwks: Jwks) -> None:
    token = sign(rsa_key, "RS256", claims(aud=None))
    assert "aud" not in verify_token(token, jwks, issuer=ISSUER, audience=None, now=NOW)


def test_a_kid_not_in_the_jwks_is_named(jwks: Jwks) -> None:
    rotated = RSAKey.generate_key(2048, parameters={"kid": "rsa-2"})
    problem = token_problem(sign(rotated, "RS256", claims()), jwks)
    assert problem.kind is ErrorKind.ASSERTION
    assert problem.message == "token signed by key 'rsa-2', not in the JWKS"


def test_a_kid_of_an_encryption_key_is_refused(jwks: Jwks) -> None:
    impostor = RSAKey.generate_key(2048, parameters={"kid": "enc-1"})
    problem = token_problem(sign(impostor, "RS256", claims()), jwks)
    assert problem.message == (
        "token signed by key 'enc-1', which the JWKS does not publish for signatures"
    )


def test_a_key_replaced_under_the_same_kid_fails_the_signature(jwks: Jwks) -> None:
    impostor = RSAKey.generate_key(2048, parameters={"kid": "rsa-1"})
    problem = token_problem(sign(impostor, "RS256", claims()), jwks)
    assert problem.kind is ErrorKind.ASSERTION
    assert problem.message == "the token's signature does not verify with key 'rsa-1'"


def test_a_tampered_token_fails(rsa_key: RSAKey, jwks: Jwks) -> None:
    token = sign(rsa_key, "RS256", claims())
    head, payload, signature = token.split(".")
    flipped = ("A" if signature[10] != "A" else "B").join((signature[:10], signature[11:]))
    forged = base64.urlsafe_b64encode(json.dumps(claims(sub="admin")).encode()).decode()
    for bad in (f"{head}.{payload}.{flipped}", f"{head}.{forged.rstrip('=')}.{signature}"):
        problem = token_problem(bad, jwks)
        assert problem.kind is ErrorKind.ASSERTION
        assert problem.message == "the token's signature does not verify with key 'rsa-1'"


def _unsigned(header: dict[str, Any], payload: dict[str, Any], signature: str = "") -> str:
    def part(value: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")

    return f"{part(header)}.{part(payload)}.{signature}"


@pytest.mark.parametrize("signature", ["", "c2lnbmF0dXJl"])
def test_alg_none_is_refused(jwks: Jwks, signature: str) -> None:
    token = _unsigned({"alg": "none", "kid": "rsa-1"}, claims(), signature)
    problem = token_problem(token, jwks)
    assert problem.kind is ErrorKind.ASSERTION
    assert problem.message == (
        "the token's alg 'none' is not allowed (only RS*, PS*, ES* and EdDSA)"
    )


def test_hmac_with_the_public_key_as_secret_is_refused(rsa_key: RSAKey, jwks: Jwks) -> None:
    # The classic algorithm confusion: HS256 keyed with the RSA public key's PEM. joserfc
    # refuses to sign that, so the forgery is made with the standard library.
    unsigned = _unsigned({"alg": "HS256", "kid": "rsa-1"}, claims())[:-1]
    mac = hmac.new(rsa_key.as_pem(private=False), unsigned.encode(), hashlib.sha256).digest()
    token = unsigned + "." + base64.urlsafe_b64encode(mac).decode().rstrip("=")
    problem = token_problem(token, jwks)
    assert problem.kind is ErrorKind.ASSERTION and "alg 'HS256' is not allowed" in problem.message


def test_an_algorithm_the_named_key_cannot_verify_is_refused(ec_key: ECKey, jwks: Jwks) -> None:
    token = sign(ec_key, "ES256", claims(), kid="rsa-1")
    problem = token_problem(token, jwks)
    assert problem.message == "the token's alg ES256 cannot be verified with key 'rsa-1'"


def test_unknown_critical_header_parameters_are_refused(rsa_key: RSAKey, jwks: Jwks) -> None:
    # joserfc will not sign such a header: it is built by hand (the signature is stale).
    head = (
        base64.urlsafe_b64encode(
            json.dumps(
                {"alg": "RS256", "kid": "rsa-1", "crit": ["x-custom"], "x-custom": 1}
            ).encode()
        )
        .decode()
        .rstrip("=")
    )
    _, payload, signature = sign(rsa_key, "RS256", claims()).split(".")
    token = f"{head}.{payload}.{signature}"
    problem = token_problem(token, jwks)
    assert problem.kind is ErrorKind.ASSERTION
    assert problem.message == "the token does not verify (unsupported_header)"


@pytest.mark.parametrize(
    ("token", "expected"),
    [
        ("", "not a JWS compact serialization"),
        ("garbage", "not a JWS compact serialization"),
        ("a.b", "not a JWS compact serialization"),
        ("a.b.c.d.e", "the token is a JWE (5 parts), not a signed JWT"),
        ("a b.c d.e f", "not a JWS compact serialization"),
        ("ey.ey.sig+/=", "the token's signature is not valid base64url"),
        ("AAAA.AAAA.AAAA", "the token's header is not valid JSON"),
        ("a.b.c", "the token's header is not valid base64url"),
        ("ñ.ñ.ñ", "non-ASCII characters"),
        ("W10.e30.c2ln", "the token's header is an array, not a JSON object"),
        ("e30.e30.c2ln", "the token's header has alg null, expected a string"),
        ("eyJhbGciOiJSUzI1NiJ9.W10.c2ln", "the token's payload is an array, not a JSON object"),
        ('{"alg":"RS256"}.e30.c2ln', "not a JWS compact serialization"),
        ("x" * 70_000, "the token has 70000 characters, more than 65536"),
    ],
)
def test_what_is_not_a_jws_is_a_protocol_error(jwks: Jwks, token: str, expected: str) -> None:
    problem = token_problem(token, jwks)
    assert problem.kind is ErrorKind.PROTOCOL and expected in problem.message


def test_a_payload_that_is_not_a_claims_object_is_a_protocol_error(jwks: Jwks) -> None:
    head = _unsigned({"alg": "RS256", "kid": "rsa-1"}, {}).split(".")[0]
    array = base64.urlsafe_b64encode(b"[1, 2]").decode().rstrip("=")
    deep = base64.urlsafe_b64encode(b"[" * 5000 + b"]" * 5000).decode().rstrip("=")
    for payload, expected in ((array, "payload is an array"), (deep, "nests deeper than 32")):
        problem = token_problem(f"{head}.{payload}.c2ln", jwks)
        assert problem.kind is ErrorKind.PROTOCOL and expected in problem.message


# -- endpoints without credentials ---------------------------------------------------------

KEYCLOAK_TOKEN_ERROR = (
    b'{"error":"invalid_request","error_description":"Missing form parameter: grant_type"}'
)


@pytest.mark.parametrize(
    ("status", "body"),
    [
        (400, KEYCLOAK_TOKEN_ERROR),
        (401, b'{"error":"invalid_client","error_description":"Invalid client credentials"}'),
        (400, b'{"error":"unsupported_grant_type"}'),
    ],
)
def test_a_token_endpoint_answering_an_oauth_error_is_alive(status: int, body: bytes) -> None:
    assert judge_endpoint("token", status, "application/json", body) is None


@pytest.mark.parametrize(
    ("status", "body", "kind", "expected"),
    [
        (400, b"<html>Bad Request</html>", ErrorKind.ASSERTION, "without an OAuth error object"),
        (400, b'{"message": "bad"}', ErrorKind.ASSERTION, "no error"),
        (401, b'{"error": 401}', ErrorKind.ASSERTION, "error is a number"),
        (400, b'{"error": "bad\\"quote"}', ErrorKind.ASSERTION, "is not an OAuth error code"),
        (400, b'["invalid_request"]', ErrorKind.ASSERTION, "the answer is an array"),
        (400, b"", ErrorKind.ASSERTION, "the answer is empty"),
        (200, b'{"access_token": "x"}', ErrorKind.STATUS, "status 200, expected 400 or 401"),
        (405, b"", ErrorKind.STATUS, "status 405, expected 400 or 401"),
        (500, b'{"error": "server_error"}', ErrorKind.STATUS, "status 500: the server failed"),
    ],
)
def test_a_token_endpoint_that_is_not_alive(
    status: int, body: bytes, kind: ErrorKind, expected: str
) -> None:
    problem = problem_of(lambda: judge_endpoint("token", status, "text/html", body))
    assert problem.kind is kind and problem.step == "token"
    assert expected in problem.message


@pytest.mark.parametrize(
    ("step", "alive", "dead"),
    [
        ("authorization", [200, 302, 303, 400], [401, 404, 500, 503]),
        ("userinfo", [401, 400, 403, 200], [302, 404, 500]),
        ("end_session", [200, 302, 400], [404, 502]),
    ],
)
def test_endpoints_without_credentials(step: str, alive: list[int], dead: list[int]) -> None:
    for status in alive:
        assert judge_endpoint(step, status, "text/html", b"<html>login</html>") is None
    for status in dead:
        problem = problem_of(lambda: judge_endpoint(step, status, None, b""))  # noqa: B023
        assert problem.kind is ErrorKind.STATUS and problem.step == step
        assert problem.message.startswith(f"status {status}")


def test_an_unknown_step_is_the_callers_bug() -> None:
    with pytest.raises(ValueError, match="unknown endpoint step"):
        judge_endpoint("introspection", 200, None, b"")


# -- properties: nothing but OidcProblem ever escapes --------------------------------------

JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=40)
    | st.sampled_from(["RSA", "EC", "OKP", "oct", "P-256", "AQAB", "sig", "RS256", ISSUER]),
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=10), children, max_size=5)
    ),
    max_leaves=30,
)
JWK_MEMBERS = st.sampled_from(
    ["kty", "kid", "use", "alg", "n", "e", "crv", "x", "y", "d", "x5c", "key_ops", "k"]
)
DISCOVERY_MEMBERS = st.sampled_from(
    [
        "issuer",
        "authorization_endpoint",
        "token_endpoint",
        "jwks_uri",
        "userinfo_endpoint",
        "response_types_supported",
        "subject_types_supported",
        "scopes_supported",
        "id_token_signing_alg_values_supported",
        "grant_types_supported",
    ]
)


def _judge_all(body: bytes) -> None:
    for call in (
        lambda: parse_discovery(body, issuer=ISSUER, required={"scopes_supported": ["openid"]}),
        lambda: parse_jwks(body, signing_algs=["RS256", "ES256"], now=NOW),
    ):
        try:
            result = call()
        except OidcProblem as problem:
            assert problem.kind in (ErrorKind.PROTOCOL, ErrorKind.ASSERTION, ErrorKind.TOO_LARGE)
            assert len(problem.message) <= PROBLEM_MESSAGE_LIMIT
            problem.message.encode("utf-8", "strict")
        else:
            assert result is not None


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=300))
def test_arbitrary_bytes_only_ever_give_a_problem(body: bytes) -> None:
    _judge_all(body)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.one_of(
        JSON_VALUES,
        st.dictionaries(DISCOVERY_MEMBERS, JSON_VALUES, max_size=10),
        st.fixed_dictionaries(
            {"keys": st.lists(st.dictionaries(JWK_MEMBERS, JSON_VALUES, max_size=8), max_size=4)}
        ),
    )
)
def test_arbitrary_json_only_ever_gives_a_problem(value: object) -> None:
    _judge_all(json.dumps(value).encode())


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=200) | st.from_regex(r"[A-Za-z0-9_-]{0,40}(\.[A-Za-z0-9_-]{0,40}){2}"))
def test_arbitrary_tokens_only_ever_give_a_problem(token: str) -> None:
    key = {"keys": [RFC7515_A3_KEY]}
    found = parse_jwks(dump(key), signing_algs=["ES256"], now=NOW)
    with pytest.raises(OidcProblem) as caught:
        verify_token(token, found, issuer="joe", audience=None, now=NOW)
    assert caught.value.kind in (ErrorKind.PROTOCOL, ErrorKind.ASSERTION)
