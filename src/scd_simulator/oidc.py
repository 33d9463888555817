"""A fake OpenID Connect provider: discovery, JWKS, token, userinfo, authorize, logout.

Shaped like a Keycloak realm as a relying party sees it (OIDC Discovery 1.0, RFC 7517,
RFC 6749 §4.4 and §5, RFC 6750 §3, RFC 7636, OIDC RP-Initiated Logout 1.0), served by the
:class:`~scd_simulator.fleet.Simulator` under its issuer path. No user ever logs in: the
only grant that succeeds is ``client_credentials`` of its one confidential client.

Signing keys are RSA 2048 (``RS256``), each published with a self-signed ``x5c``
certificate; :meth:`OidcProvider.rotate` and :meth:`OidcProvider.retire` change them the
way real rotations do, and :meth:`OidcProvider.set_fault` breaks the provider in the ways
a relying party notices (see :data:`OIDC_FAULTS`). JOSE is ``joserfc``; keys and
certificates are ``cryptography``.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hmac
import html
import re
import secrets
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, ClassVar, Literal, get_args
from urllib.parse import parse_qs, unquote_plus, urlencode

import structlog
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet, RSAKey

from scd_monitor.clock import Clock, SystemClock
from scd_simulator.rawhttp import Request, Response, json_response
from scd_simulator.scenario import TlsMode

__all__ = [
    "ACR_VALUES",
    "OIDC_FAULTS",
    "SCOPES",
    "SECRET_ENV",
    "TOKEN_LIFETIME_SECONDS",
    "KeySource",
    "OidcFault",
    "OidcProvider",
]

log = structlog.get_logger()

OidcFault = Literal["issuer_mismatch", "missing_key", "expired_x5c", "token_500", "slow_jwks"]
"""What can go wrong, one at a time:

* ``issuer_mismatch``: the discovery document's ``issuer`` has a trailing slash;
* ``missing_key``: the JWKS leaves out the key the tokens are signed with (a stand-in key
  is published if nothing else would be), while tokens are still signed by it;
* ``expired_x5c``: the signing key's ``x5c`` certificate expired yesterday;
* ``token_500``: the token endpoint answers every POST with a 500 HTML error page;
* ``slow_jwks``: the JWKS answers after ``seconds`` (default :data:`SLOW_JWKS_SECONDS`).
"""
OIDC_FAULTS: tuple[OidcFault, ...] = get_args(OidcFault)
SLOW_JWKS_SECONDS = 5.0
TOKEN_LIFETIME_SECONDS = 300
SCOPES = ("openid", "co_scope", "profile", "email", "offline_access")
"""``scopes_supported``; the client may ask for any of them."""
DEFAULT_SCOPE = "co_scope"
"""The scope a ``client_credentials`` token gets when the request names none."""
ACR_VALUES = ("loa:1", "loa:2")
SECRET_ENV = "SCD_SIM_OIDC_SECRET"  # noqa: S105  # a variable's name, not a secret
"""The environment variable a catalog names for the client secret, by default."""
ROUTES = ("discovery", "jwks", "authorize", "token", "userinfo", "logout", "other")
"""Keys of :attr:`OidcProvider.hits`."""

_ALG = "RS256"
_JSON = "application/json"
_HTML = "text/html; charset=utf-8"
_FORM = "application/x-www-form-urlencoded"
_SUBPATHS = {
    "/.well-known/openid-configuration": "discovery",
    "/jwks": "jwks",
    "/authorize": "authorize",
    "/token": "token",
    "/userinfo": "userinfo",
    "/logout": "logout",
}
_GRANTS = ("authorization_code", "refresh_token", "client_credentials")
_PKCE_METHODS = ("S256", "plain")
_PKCE_VERIFIER = re.compile(r"^[A-Za-z0-9._~-]{43,128}$")  # RFC 7636 §4.1, §4.2
_ENV_NAME = re.compile(r"^[A-Z_][A-Z0-9_]*$")
_NO_STORE = (("Cache-Control", "no-store"), ("Pragma", "no-cache"))


class KeySource:
    """Hands out RSA 2048 private keys, each at most once per source.

    Keys are generated on first need (a few tens of milliseconds each) and kept in a
    process-wide cache, so the next source (another simulator, the next test) reuses
    them instead of generating more: the providers of one simulator, which share a
    source, never share a key.
    """

    _generated: ClassVar[list[rsa.RSAPrivateKey]] = []

    def __init__(self) -> None:
        self._next = 0

    def __call__(self) -> rsa.RSAPrivateKey:
        index, self._next = self._next, self._next + 1
        while len(self._generated) <= index:
            self._generated.append(rsa.generate_private_key(public_exponent=65537, key_size=2048))
        return self._generated[index]


@dataclass(slots=True)
class _SigningKey:
    """One RSA key with its JWK (``kid``, ``use``, ``alg``) and ``x5c`` certificates."""

    kid: str
    jwk: RSAKey
    cert: x509.Certificate
    expired_cert: x509.Certificate | None = None

    @classmethod
    def create(cls, private: rsa.RSAPrivateKey, common_name: str, now: datetime) -> _SigningKey:
        kid = RSAKey.import_key(private).thumbprint()  # RFC 7638, as many providers do
        jwk = RSAKey.import_key(private, parameters={"kid": kid, "use": "sig", "alg": _ALG})
        cert = _certificate(
            private, common_name, now - timedelta(days=1), now + timedelta(days=3650)
        )
        return cls(kid, jwk, cert)

    def expired(self, now: datetime) -> x509.Certificate:
        """The same key's certificate, expired yesterday (made once)."""
        if self.expired_cert is None:
            private = self.jwk.private_key
            assert private is not None
            common_name = self.cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value
            self.expired_cert = _certificate(
                private, str(common_name), now - timedelta(days=366), now - timedelta(days=1)
            )
        return self.expired_cert

    def public(self, cert: x509.Certificate) -> dict[str, Any]:
        """The public JWK, as a JWKS publishes it (never a private member)."""
        der = cert.public_bytes(serialization.Encoding.DER)
        return dict(
            self.jwk.as_dict(
                private=False,
                x5c=[base64.b64encode(der).decode("ascii")],  # RFC 7517 §4.7: standard base64
                **{
                    "x5t": _b64url(cert.fingerprint(hashes.SHA1())),  # noqa: S303  # RFC 7517 §4.8
                    "x5t#S256": _b64url(cert.fingerprint(hashes.SHA256())),
                },
            )
        )


class OidcProvider:
    """One fake OpenID Connect provider; the :class:`~scd_simulator.fleet.Simulator` makes
    them (:meth:`~scd_simulator.fleet.Simulator.add_oidc_provider`) and routes to them.

    Its issuer is the URL of ``path`` on the listener of its TLS mode, known once the
    simulator has started. Its one client (``client_id``, ``client_secret``) authenticates
    with ``client_secret_basic`` or ``client_secret_post``; ``redirect_uris`` (none by
    default) are where ``/authorize`` and ``/logout`` may send a browser back to.
    """

    def __init__(
        self,
        provider_id: str,
        *,
        tls: TlsMode = "valid",
        client_id: str = "scd-monitor",
        client_secret: str | None = None,
        secret_env: str = SECRET_ENV,
        redirect_uris: Sequence[str] = (),
        audience: Sequence[str] = (),
        clock: Clock | None = None,
        keys: Callable[[], rsa.RSAPrivateKey] | None = None,
    ) -> None:
        """``audience``: more ``aud`` values for the tokens (default: ``aud`` is just the
        client id; with more it is a list starting with it). ``keys`` gives each new
        signing key (default: a :class:`KeySource` of the provider's own)."""
        if not client_id or not client_id.isprintable() or ":" in client_id:
            raise ValueError(f"invalid client_id {client_id!r}")
        if not _ENV_NAME.match(secret_env):
            raise ValueError(f"secret_env {secret_env!r} is not an environment variable name")
        self.id = provider_id
        self.path = "/" + provider_id
        self.tls: TlsMode = tls
        self.client_id = client_id
        self.client_secret = client_secret or secrets.token_urlsafe(32)
        """The client's secret: the catalog names :attr:`secret_env` instead."""
        self.secret_env = secret_env
        self.redirect_uris = tuple(redirect_uris)
        self.audience = (client_id, *[a for a in audience if a != client_id])
        self.hits: dict[str, int] = dict.fromkeys(ROUTES, 0)
        self.tokens_issued = 0
        self._clock = clock or SystemClock()
        self._new_key = keys or KeySource()
        self._keys: list[_SigningKey] = []  # oldest first; the last one signs
        self._standin: _SigningKey | None = None
        self._fault: OidcFault | None = None
        self._fault_seconds: float | None = None
        self._issuer: str | None = None
        self._service_account = str(uuid.uuid4())

    # -- identity ----------------------------------------------------------------------

    def bind(self, base_url: str) -> None:
        """Set the listener's base URL (``https://127.0.0.1:PORT``): the issuer follows."""
        self._issuer = base_url + self.path

    @property
    def issuer(self) -> str:
        """``{listener}/{id}``, no trailing slash (the simulator must have started)."""
        if self._issuer is None:
            raise RuntimeError(
                f"the OIDC provider {self.id!r} has no URL yet (start the simulator)"
            )
        return self._issuer

    # -- keys --------------------------------------------------------------------------

    @property
    def kids(self) -> list[str]:
        """The ``kid`` of every key the provider holds, oldest first (faults aside)."""
        return [k.kid for k in self._current_keys()]

    @property
    def signing_kid(self) -> str:
        """The key the next token is signed with."""
        return self._current_keys()[-1].kid

    @property
    def published_kids(self) -> list[str]:
        """The ``kid`` of every key the JWKS publishes right now (faults included)."""
        return [k.kid for k, _ in self._published()]

    def rotate(self, *, retire_previous: bool = False) -> str:
        """Add a signing key: the next tokens are signed by it. The previous keys stay in
        the JWKS (tokens they signed still verify) unless ``retire_previous``. Return the
        new ``kid``."""
        previous = list(self._current_keys())
        key = self._make_key()
        self._keys = [key] if retire_previous else [*previous, key]
        log.info(
            "simulator.oidc_rotated",
            provider=self.id,
            kid=key.kid,
            retired=[k.kid for k in previous] if retire_previous else [],
        )
        return key.kid

    def retire(self, kid: str) -> None:
        """Remove a key from the JWKS. Retiring the signing key makes the newest remaining
        one sign; the last key cannot be retired (``ValueError``). ``KeyError`` for a kid
        the provider does not hold."""
        keys = self._current_keys()
        if kid not in [k.kid for k in keys]:
            raise KeyError(f"the OIDC provider {self.id!r} holds no key {kid!r}")
        if len(keys) == 1:
            raise ValueError("cannot retire the provider's only key (rotate first)")
        self._keys = [k for k in keys if k.kid != kid]
        log.info("simulator.oidc_key_retired", provider=self.id, kid=kid)

    def _make_key(self) -> _SigningKey:
        return _SigningKey.create(self._new_key(), self.id, self._clock.now())

    def _current_keys(self) -> list[_SigningKey]:
        if not self._keys:  # the first key is made on first need
            self._keys.append(self._make_key())
        return self._keys

    def _published(self) -> list[tuple[_SigningKey, x509.Certificate]]:
        keys = self._current_keys()
        signing = keys[-1]
        if self._fault == "missing_key":
            others = keys[:-1]
            if not others:
                if self._standin is None:
                    self._standin = self._make_key()
                others = [self._standin]
            return [(k, k.cert) for k in others]
        if self._fault == "expired_x5c":
            now = self._clock.now()
            return [(k, signing.expired(now) if k is signing else k.cert) for k in keys]
        return [(k, k.cert) for k in keys]

    # -- faults ------------------------------------------------------------------------

    @property
    def fault(self) -> OidcFault | None:
        return self._fault

    @property
    def fault_seconds(self) -> float | None:
        """The ``slow_jwks`` delay (``None`` for the other faults)."""
        return self._fault_seconds

    def set_fault(self, fault: str | None, *, seconds: float | None = None) -> None:
        """Switch a fault on (one of :data:`OIDC_FAULTS`; ``seconds``: the ``slow_jwks``
        delay), or off with ``None``. ``ValueError`` for an unknown fault or a bad delay."""
        if fault is None:
            if seconds is not None:
                raise ValueError("'seconds' goes with the slow_jwks fault")
            self._fault = self._fault_seconds = None
            log.info("simulator.oidc_fault_set", provider=self.id, fault=None)
            return
        if fault not in OIDC_FAULTS:
            raise ValueError(f"unknown OIDC fault {fault!r}; expected one of {OIDC_FAULTS}")
        if seconds is not None and fault != "slow_jwks":
            raise ValueError("'seconds' goes with the slow_jwks fault only")
        if fault == "slow_jwks":
            seconds = SLOW_JWKS_SECONDS if seconds is None else float(seconds)
            if not 0 <= seconds <= 3600:
                raise ValueError(f"slow_jwks seconds must be within 0..3600, got {seconds}")
        self._fault = fault
        self._fault_seconds = seconds
        log.info("simulator.oidc_fault_set", provider=self.id, fault=fault, seconds=seconds)

    # -- documents ---------------------------------------------------------------------

    def discovery(self) -> dict[str, Any]:
        """The discovery document (OIDC Discovery 1.0 §3), as Keycloak lays it out."""
        issuer = self.issuer
        return {
            "issuer": issuer + "/" if self._fault == "issuer_mismatch" else issuer,
            "authorization_endpoint": f"{issuer}/authorize",
            "token_endpoint": f"{issuer}/token",
            "userinfo_endpoint": f"{issuer}/userinfo",
            "end_session_endpoint": f"{issuer}/logout",
            "frontchannel_logout_session_supported": True,
            "frontchannel_logout_supported": True,
            "jwks_uri": f"{issuer}/jwks",
            "grant_types_supported": list(_GRANTS),
            "acr_values_supported": list(ACR_VALUES),
            "response_types_supported": ["code"],
            "response_modes_supported": ["query", "fragment", "form_post"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": [_ALG],
            "userinfo_signing_alg_values_supported": [_ALG, "none"],
            "code_challenge_methods_supported": list(_PKCE_METHODS),
            "token_endpoint_auth_methods_supported": [
                "client_secret_basic",
                "client_secret_post",
            ],
            "claims_supported": [
                "aud",
                "sub",
                "iss",
                "auth_time",
                "name",
                "given_name",
                "family_name",
                "preferred_username",
                "email",
                "acr",
            ],
            "claim_types_supported": ["normal"],
            "claims_parameter_supported": False,
            "scopes_supported": list(SCOPES),
            "request_parameter_supported": False,
            "request_uri_parameter_supported": False,
            "authorization_response_iss_parameter_supported": True,
            "backchannel_logout_supported": False,
            "ui_locales_supported": ["es", "en"],
        }

    def jwks(self) -> dict[str, Any]:
        """``{"keys": [...]}``: the public keys the JWKS publishes right now."""
        return {"keys": [key.public(cert) for key, cert in self._published()]}

    def issue_token(self, scope: str = DEFAULT_SCOPE) -> str:
        """A ``client_credentials`` access token for the client, signed by the signing key."""
        key = self._current_keys()[-1]
        now = int(self._clock.now().timestamp())
        claims = {
            "exp": now + TOKEN_LIFETIME_SECONDS,
            "iat": now,
            "jti": str(uuid.uuid4()),
            "iss": self.issuer,
            "aud": self.audience[0] if len(self.audience) == 1 else list(self.audience),
            "sub": self._service_account,
            "typ": "Bearer",
            "azp": self.client_id,
            "acr": "1",
            "scope": scope,
            "client_id": self.client_id,
            "preferred_username": f"service-account-{self.client_id}",
        }
        header = {"alg": _ALG, "kid": key.kid, "typ": "JWT"}
        self.tokens_issued += 1
        return jwt.encode(header, claims, key.jwk, algorithms=[_ALG])

    def describe(self) -> dict[str, Any]:
        """The provider as the control API shows it (never the secret or a token)."""
        return {
            "id": self.id,
            "issuer": self._issuer,
            "tls": self.tls,
            "client_id": self.client_id,
            "secret_env": self.secret_env,
            "kids": self.kids,
            "signing_kid": self.signing_kid,
            "published_kids": self.published_kids,
            "fault": self._fault,
            "fault_seconds": self._fault_seconds,
            "hits": dict(self.hits),
            "tokens_issued": self.tokens_issued,
        }

    # -- serving -----------------------------------------------------------------------

    async def handle(self, request: Request, subpath: str) -> Response:
        """Answer a request for ``{issuer}{subpath}``."""
        route = _SUBPATHS.get(subpath, "other")
        self.hits[route] += 1
        method = request.method
        if route == "other":
            return json_response(404, {"error": "Unable to find matching target resource"})
        if route in ("discovery", "jwks"):
            if method not in ("GET", "HEAD"):
                return _not_allowed("GET, HEAD")
            if route == "discovery":
                return json_response(200, self.discovery())
            if self._fault == "slow_jwks" and self._fault_seconds:
                await asyncio.sleep(self._fault_seconds)
            return json_response(200, self.jwks())
        if route == "token":
            return self._token(request) if method == "POST" else _not_allowed("POST")
        if method not in ("GET", "HEAD", "POST"):
            return _not_allowed("GET, HEAD, POST")
        params = _params(request)
        if params is None:
            return _html(400, "Invalid Request", "Invalid parameters.")
        if route == "authorize":
            return self._authorize(params)
        if route == "userinfo":
            return self._userinfo(request, params)
        return self._logout(params)

    def _token(self, request: Request) -> Response:
        """The token endpoint: RFC 6749 §4.4 with §5.1/§5.2 answers, in Keycloak's order."""
        if self._fault == "token_500":
            return _html(500, "Internal Server Error", "An unexpected error has occurred.")
        content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if request.body and content_type != _FORM:
            return _oauth_error(400, "invalid_request", f"Content-Type must be {_FORM}")
        form = _form(request.body)
        if form is None:
            return _oauth_error(400, "invalid_request", "Malformed form body")
        duplicated = sorted(k for k, v in form.items() if len(v) > 1)
        if duplicated:
            return _oauth_error(400, "invalid_request", f"duplicated parameter: {duplicated[0]}")
        params = {k: v[0] for k, v in form.items()}
        grant = params.get("grant_type", "")
        if not grant:
            return _oauth_error(400, "invalid_request", "Missing form parameter: grant_type")
        if grant not in _GRANTS:
            return _oauth_error(400, "unsupported_grant_type", "Unsupported grant_type")
        problem = self._authenticate(request, params)
        if problem is not None:
            return problem
        if grant == "authorization_code":
            return _oauth_error(400, "invalid_grant", "Code not valid")
        if grant == "refresh_token":
            return _oauth_error(400, "invalid_grant", "Invalid refresh token")
        requested = params.get("scope", "").split()
        unknown = [s for s in requested if s not in SCOPES]
        if unknown:
            return _oauth_error(400, "invalid_scope", f"Invalid scopes: {' '.join(unknown)}")
        scope = " ".join(dict.fromkeys(requested)) or DEFAULT_SCOPE
        token = self.issue_token(scope)
        return json_response(
            200,
            {
                "access_token": token,
                "expires_in": TOKEN_LIFETIME_SECONDS,
                "refresh_expires_in": 0,
                "token_type": "Bearer",
                "not-before-policy": 0,
                "scope": scope,
            },
            headers=_NO_STORE,
        )

    def _authenticate(self, request: Request, params: Mapping[str, str]) -> Response | None:
        """``None`` if the client authenticated (one method, RFC 6749 §2.3), else the error."""
        authorization = request.headers.get("authorization", "")
        scheme, _, credentials = authorization.partition(" ")
        basic: tuple[str, str] | None = None
        if scheme.lower() == "basic":
            try:
                decoded = base64.b64decode(credentials.strip(), validate=True).decode("utf-8")
            except (binascii.Error, UnicodeDecodeError):
                return self._invalid_client("Invalid client credentials")
            user, sep, password = decoded.partition(":")
            if not sep:
                return self._invalid_client("Invalid client credentials")
            # RFC 6749 §2.3.1: both are form-urlencoded before Basic encodes them.
            basic = (unquote_plus(user), unquote_plus(password))
        if basic is not None and "client_secret" in params:
            return _oauth_error(400, "invalid_request", "Use only one client authentication method")
        if basic is not None:
            client_id, secret = basic
            if params.get("client_id", client_id) != client_id:
                return _oauth_error(
                    400, "invalid_request", "client_id does not match the authenticated client"
                )
        else:
            client_id, secret = params.get("client_id", ""), params.get("client_secret", "")
        if not client_id:
            return self._invalid_client("Invalid client or Invalid client credentials")
        known = hmac.compare_digest(client_id.encode(), self.client_id.encode())
        right = hmac.compare_digest(secret.encode(), self.client_secret.encode())
        if not (known and right):
            return self._invalid_client("Invalid client or Invalid client credentials")
        return None

    def _invalid_client(self, description: str) -> Response:
        """RFC 6749 §5.2: 401 with the challenge of the scheme the server supports."""
        return _oauth_error(
            401,
            "invalid_client",
            description,
            challenge=f'Basic realm="{self._realm()}"',
        )

    def _userinfo(self, request: Request, params: Mapping[str, str]) -> Response:
        """RFC 6750: a Bearer token (header, or form body on POST), else a 401 challenge."""
        realm = self._realm()
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        token = token.strip() if scheme.lower() == "bearer" else params.get("access_token", "")
        if not token:
            return _bearer_error(401, realm, "invalid_token", "Token not provided")
        claims = self._verify(token, check_exp=True)
        if claims is None:
            return _bearer_error(401, realm, "invalid_token", "Token verification failed")
        if "openid" not in str(claims.get("scope", "")).split():
            return _bearer_error(403, realm, "insufficient_scope", "Missing openid scope")
        return json_response(
            200,
            {
                "sub": claims.get("sub"),
                "email_verified": False,
                "preferred_username": claims.get("preferred_username"),
            },
            headers=_NO_STORE,
        )

    def _authorize(self, params: Mapping[str, str]) -> Response:
        """The authorization endpoint: errors before a login page; no login ever happens.

        Without a trustworthy ``redirect_uri`` the user sees a 400 error page (RFC 6749
        §4.1.2.1); after that errors go back to the client in a 302, and so does
        ``login_required`` for ``prompt=none`` (OIDC Core §3.1.2.6). A valid request ends
        at a login page that logs nobody in.
        """
        client_id = params.get("client_id", "")
        redirect_uri = params.get("redirect_uri", "")
        if not client_id:
            return _html(400, "Invalid Request", "Missing parameter: client_id")
        if client_id != self.client_id:
            return _html(400, "Invalid Request", "Client not found.")
        if redirect_uri not in self.redirect_uris:
            return _html(400, "Invalid Request", "Invalid parameter: redirect_uri")
        state = params.get("state")
        method = params.get("code_challenge_method")
        challenge = params.get("code_challenge")
        error: tuple[str, str] | None = None
        if not params.get("response_type"):
            error = ("invalid_request", "Missing parameter: response_type")
        elif params["response_type"] != "code":
            error = ("unsupported_response_type", "Client is not allowed to initiate browser login")
        elif method is not None and method not in _PKCE_METHODS:
            error = ("invalid_request", "Invalid parameter: code_challenge_method")
        elif method is not None and challenge is None:
            error = ("invalid_request", "Missing parameter: code_challenge")
        elif challenge is not None and not _PKCE_VERIFIER.match(challenge):
            error = ("invalid_request", "Invalid parameter: code_challenge")
        elif params.get("prompt") == "none":
            error = ("login_required", "The user is not logged in")
        if error is None:
            return _html(200, "Sign in to your account", "Sign-in is not simulated.")
        answer = {"error": error[0], "error_description": error[1]}
        if state is not None:
            answer["state"] = state
        answer["iss"] = self.issuer  # RFC 9207
        return _redirect(redirect_uri, answer)

    def _logout(self, params: Mapping[str, str]) -> Response:
        """RP-Initiated Logout 1.0: a confirmation page, or back to a registered URI."""
        hint = params.get("id_token_hint")
        back = params.get("post_logout_redirect_uri")
        if hint is not None and self._verify(hint, check_exp=False) is None:
            return _html(400, "Invalid Request", "Invalid parameter: id_token_hint")
        if back is not None:
            if hint is None and params.get("client_id") != self.client_id:
                return _html(
                    400,
                    "Invalid Request",
                    "Either the parameter client_id or the parameter id_token_hint is required "
                    "when post_logout_redirect_uri is used.",
                )
            if back not in self.redirect_uris:
                return _html(400, "Invalid Request", "Invalid redirect uri")
            state = params.get("state")
            return _redirect(back, {"state": state} if state is not None else {})
        if hint is not None:
            return _html(200, "Logging out", "You are logged out.")
        return _html(200, "Logging out", "Do you want to log out?")

    def _verify(self, token: str, *, check_exp: bool) -> dict[str, Any] | None:
        """The token's claims if one of the provider's keys signed it for its issuer (and,
        with ``check_exp``, it has not expired)."""
        keys = KeySet([k.jwk for k in self._current_keys()])
        try:
            claims = dict(jwt.decode(token, keys, algorithms=[_ALG]).claims)
            checked = dict(claims)
            if not check_exp:  # RP-Initiated Logout 1.0 §2: an expired hint is fine
                checked.pop("exp", None)
            options: dict[str, jwt.ClaimsOption] = {
                "iss": {"essential": True, "value": self.issuer}
            }
            if check_exp:
                options["exp"] = {"essential": True}
            now = int(self._clock.now().timestamp())
            jwt.JWTClaimsRegistry(now=now, leeway=0, **options).validate(checked)
        except (JoseError, ValueError):
            return None
        return claims

    def _realm(self) -> str:
        return self.id.rsplit("/", 1)[-1]


# -- helpers -------------------------------------------------------------------------------


def _certificate(
    key: rsa.RSAPrivateKey, common_name: str, not_before: datetime, not_after: datetime
) -> x509.Certificate:
    """A self-signed certificate of ``key``, as providers put in ``x5c``."""
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .sign(key, hashes.SHA256())
    )


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _form(body: bytes) -> dict[str, list[str]] | None:
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return None
    return parse_qs(text, keep_blank_values=True)


def _params(request: Request) -> dict[str, str] | None:
    """Query parameters, and form parameters of a form POST (the last of duplicates)."""
    merged = parse_qs(request.query, keep_blank_values=True)
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if request.method == "POST" and content_type == _FORM:
        form = _form(request.body)
        if form is None:
            return None
        merged.update(form)
    return {k: v[-1] for k, v in merged.items()}


def _oauth_error(
    status: int, error: str, description: str, *, challenge: str | None = None
) -> Response:
    """RFC 6749 §5.2: a JSON error body, never cached."""
    headers = _NO_STORE + ((("WWW-Authenticate", challenge),) if challenge else ())
    return json_response(
        status, {"error": error, "error_description": description}, headers=headers
    )


def _bearer_error(status: int, realm: str, error: str, description: str) -> Response:
    """RFC 6750 §3: the challenge names the error; the body repeats it."""
    challenge = f'Bearer realm="{realm}", error="{error}", error_description="{description}"'
    return json_response(
        status,
        {"error": error, "error_description": description},
        headers=(("WWW-Authenticate", challenge), *_NO_STORE),
    )


def _html(status: int, title: str, message: str) -> Response:
    """A small page such as a provider's error page or login form."""
    body = (
        '<!DOCTYPE html>\n<html lang="es">\n<head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title></head>\n"
        f'<body><h1 id="kc-page-title">{html.escape(title)}</h1>\n'
        f'<p class="instruction">{html.escape(message)}</p></body>\n</html>\n'
    )
    return Response(
        status,
        body.encode("utf-8"),
        content_type=_HTML,
        headers=(
            ("Cache-Control", "no-store, must-revalidate, max-age=0"),
            ("X-Content-Type-Options", "nosniff"),
            ("Referrer-Policy", "no-referrer"),
        ),
    )


def _redirect(uri: str, params: Mapping[str, str]) -> Response:
    separator = "&" if "?" in uri else "?"
    location = uri + (separator + urlencode(params) if params else "")
    return Response(302, b"", headers=(("Location", location),))


def _not_allowed(allow: str) -> Response:
    return json_response(
        405,
        {"error": "invalid_request", "error_description": "HTTP method not allowed"},
        headers=(("Allow", allow),),
    )
