"""The ``oidc`` probe: an OpenID Connect provider seen as a relying party sees it.

A provider of Autenticación Digital can answer 200 on its home page while every relying
party fails: an issuer that no longer matches, a JWKS that lost its signing key, a token
endpoint that errors. One run walks the steps a relying party depends on, in order, and
stops at the first that fails; the outcome names it (``details["step"]``, and the message
starts with it):

1. ``discovery``: ``GET {issuer}/.well-known/openid-configuration`` answers 200 with a
   JSON document whose ``issuer`` equals the configured one exactly, with the fields
   OIDC Discovery 1.0 §3 requires and the values the check expects
   (:func:`~scd_monitor.probes.oidcdoc.parse_discovery`);
2. ``jwks``: ``GET jwks_uri``: every key parses, a signing key exists for each advertised
   ``id_token_signing_alg_values_supported``, no ``x5c`` certificate has expired
   (:func:`~scd_monitor.probes.oidcdoc.parse_jwks`);
3. ``authorization``, ``token``, ``userinfo``, ``end_session`` (those the check lists and
   the document advertises): each answers as a live server does to a request without
   credentials: alive, not necessarily authorised (the token endpoint's OAuth error
   JSON for an empty grant, RFC 6749 §5.2; a 401 challenge from userinfo …;
   :func:`~scd_monitor.probes.oidcdoc.judge_endpoint`);
4. ``client_credentials`` (only with a monitoring ``client``): a token request with the
   client's credentials; the token's signature is verified against the JWKS with
   ``joserfc`` and its ``iss``, ``aud`` and ``exp`` are checked. Never a user's login,
   never personal data.

Timings: each step's seconds are the outcome's phases (``scd_probe_phase_duration_seconds``
with ``phase`` = the step). Certificates: the earliest leaf and chain expiry among the TLS
connections of the run are the outcome's ``cert_not_after`` / ``chain_not_after``.

Outcome ``details``: ``step`` (where it failed), ``jwks_keys`` (how many), ``jwks_kids``
(the key ids, sorted, comma-separated: the state tracker turns their changes into key
rotation events, :mod:`scd_monitor.store.oidckeys`), ``x5c_not_after`` (earliest ``x5c``
expiry, ISO 8601), ``token_kid`` (the key that signed the monitoring token) and
``token_expires_at`` (its ``exp``).

Error kinds: transport failures as in the ``http`` probe (``dns``, ``connect``,
``timeout``, ``tls``, ``protocol``); a step answering an unexpected status → ``status``;
a document or token that breaks the rules → ``assertion``; malformed → ``protocol``;
larger than ``max_document_bytes`` → ``too_large``. Secrets (the client secret, the token
obtained) never appear in a message or a detail.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import dataclasses
import json
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

import httpx

from scd_monitor import __version__
from scd_monitor.catalog.models import OidcCheck, ResolvedCheck
from scd_monitor.net.backend import probe_transport
from scd_monitor.net.errors import classify, classify_cause
from scd_monitor.net.tls import ContextCache, httpx_extensions
from scd_monitor.probes.base import DETAIL_LIMIT, ErrorKind, Outcome
from scd_monitor.probes.http import scrub_secrets
from scd_monitor.probes.oidcdoc import (
    Discovery,
    Jwks,
    OidcProblem,
    judge_endpoint,
    parse_discovery,
    parse_jwks,
    verify_token,
)
from scd_monitor.probes.tlsinfo import PeerCertificates, error_kind, read_peer

__all__ = ["OidcProbe"]

_USER_AGENT = f"scd-monitor/{__version__}"
_TOKEN_STEP = "client_credentials"  # noqa: S105 - a step's name, not a password


class OidcProbe:
    """Implements :class:`~scd_monitor.probes.base.Probe` for ``kind: oidc`` checks."""

    def __init__(
        self,
        *,
        contexts: ContextCache | None = None,
        now: Callable[[], datetime] | None = None,
    ) -> None:
        self._contexts = contexts if contexts is not None else ContextCache()
        self._now = now or (lambda: datetime.now(UTC))

    async def __call__(self, check: ResolvedCheck) -> Outcome:
        attempt: _Attempt | None = None
        secrets: list[str] = []
        try:
            spec = check.spec
            if not isinstance(spec, OidcCheck):
                raise TypeError(f"the oidc probe cannot run a {spec.kind!r} check")
            if spec.client is not None and spec.client.client_secret.value is not None:
                secrets.append(spec.client.client_secret.value.get_secret_value())
            attempt = _Attempt(spec, self._contexts, check.timeout.total_seconds(), self._now())
            outcome = await attempt.run()
        except Exception as exc:  # the probe's own failure, never the target's
            outcome = Outcome.failure(ErrorKind.INTERNAL, f"{type(exc).__name__}: {exc}")
        if attempt is not None:
            secrets += attempt.tokens
        return scrub_secrets(outcome, [s for s in secrets if s])


class _Attempt:
    """One run of one ``oidc`` check."""

    def __init__(self, spec: OidcCheck, contexts: ContextCache, timeout: float, now: datetime):
        self.spec = spec
        self.contexts = contexts
        self.timeout = timeout
        self.now = now
        self.step = "discovery"
        self.phases: dict[str, float] = {}
        self.details: dict[str, str | int | float | bool] = {}
        self.status_code: int | None = None
        self.peers: list[PeerCertificates] = []
        self.tokens: list[str] = []
        """Tokens obtained in this run: scrubbed from the outcome like the secret."""

    async def run(self) -> Outcome:
        spec = self.spec
        context = self.contexts.get(spec.tls)  # before any I/O: a bad file is INTERNAL
        deadline = asyncio.get_running_loop().time() + self.timeout
        client = httpx.AsyncClient(
            transport=probe_transport(context),
            trust_env=False,
            follow_redirects=False,
            timeout=httpx.Timeout(self.timeout),
            headers={"User-Agent": _USER_AGENT, "Accept": "application/json"},
        )
        try:
            async with asyncio.timeout_at(deadline), client:
                await self._steps(client)
        except OidcProblem as problem:
            return self._fail(problem.kind, problem.message, step=problem.step)
        except TimeoutError:
            return self._fail(
                ErrorKind.TIMEOUT, f"timed out after {self.timeout:.2f} s", step=self.step
            )
        except (httpx.HTTPError, OSError) as exc:
            kind, message = _classify(exc)
            return self._fail(kind, message, step=self.step)
        return self._outcome(ok=True)

    async def _steps(self, client: httpx.AsyncClient) -> None:
        spec = self.spec
        with self._timed("discovery"):
            body = await self._fetch(client, "GET", spec.discovery_url, expect=(200,))
            discovery = parse_discovery(
                body,
                issuer=spec.issuer,
                required=spec.expect.required(),
                max_bytes=spec.max_document_bytes,
            )
            algs = _signing_algs(spec, discovery)
        with self._timed("jwks"):
            body = await self._fetch(client, "GET", discovery.jwks_uri, expect=(200,))
            jwks = parse_jwks(
                body, signing_algs=algs, now=self.now, max_bytes=spec.max_document_bytes
            )
        self._note_jwks(jwks)
        for endpoint in spec.endpoints:
            url = _endpoint_url(discovery, endpoint)
            if url is None:
                if endpoint in ("authorization", "token") and (
                    endpoint == "authorization" or spec.client is not None
                ):
                    raise OidcProblem(
                        ErrorKind.ASSERTION,
                        endpoint,
                        f"the discovery document advertises no {endpoint}_endpoint",
                    )
                continue
            with self._timed(endpoint):
                await self._alive(client, endpoint, url)
        if spec.client is not None:
            with self._timed(_TOKEN_STEP):
                await self._client_credentials(client, discovery, jwks)

    async def _alive(self, client: httpx.AsyncClient, step: str, url: str) -> None:
        """The endpoint answers a request without credentials as a live server does."""
        if step == "token":
            # An empty grant: a live server answers with an OAuth error (RFC 6749 §5.2).
            request = client.build_request(
                "POST",
                url,
                content=b"",
                headers={"Content-Type": "application/x-www-form-urlencoded"},
                extensions=self._extensions(),
            )
        else:
            request = client.build_request("GET", url, extensions=self._extensions())
        status, content_type, body = await self._send(client, request)
        judge_endpoint(step, status, content_type, body)

    async def _client_credentials(
        self, client: httpx.AsyncClient, discovery: Discovery, jwks: Jwks
    ) -> None:
        spec = self.spec
        creds = spec.client
        assert creds is not None
        if discovery.token_endpoint is None:
            raise OidcProblem(
                ErrorKind.ASSERTION, _TOKEN_STEP, "the discovery document has no token_endpoint"
            )
        secret = creds.client_secret.value
        if secret is None:
            raise ValueError("the client secret has no value: the catalog loader did not load it")
        form = {"grant_type": "client_credentials"}
        if creds.scope:
            form["scope"] = creds.scope
        auth: httpx.BasicAuth | None = None
        if creds.auth_method == "client_secret_post":
            form["client_id"] = creds.client_id
            form["client_secret"] = secret.get_secret_value()
        else:
            auth = httpx.BasicAuth(creds.client_id, secret.get_secret_value())
        request = client.build_request(
            "POST", discovery.token_endpoint, data=form, extensions=self._extensions()
        )
        if auth is not None:
            request = next(auth.auth_flow(request))
        status, _content_type, body = await self._send(client, request)
        if status != 200:
            raise OidcProblem(
                ErrorKind.STATUS,
                _TOKEN_STEP,
                f"status {status} to a client_credentials request, expected 200"
                + _oauth_error(body),
            )
        token = _access_token(body)
        self.tokens.append(token)
        try:
            claims = verify_token(
                token,
                jwks,
                issuer=spec.issuer,
                audience=creds.audience or creds.client_id,
                now=self.now,
            )
        except OidcProblem as problem:  # the token's verification is this step's
            raise OidcProblem(problem.kind, _TOKEN_STEP, problem.message) from None
        exp = claims.get("exp")  # checked; of the claims only the expiry is reported
        if isinstance(exp, int | float) and not isinstance(exp, bool):
            with contextlib.suppress(OverflowError, OSError, ValueError):
                self.details["token_expires_at"] = datetime.fromtimestamp(exp, UTC).isoformat()
        kid = _header_kid(token)
        if kid is not None:
            self.details["token_kid"] = kid

    # -- HTTP ------------------------------------------------------------------------------

    def _extensions(self) -> dict[str, Any]:
        return {"trace": self._trace, **httpx_extensions(self.spec.tls)}

    async def _fetch(
        self, client: httpx.AsyncClient, method: str, url: str, *, expect: tuple[int, ...]
    ) -> bytes:
        request = client.build_request(method, url, extensions=self._extensions())
        status, _content_type, body = await self._send(client, request)
        if status not in expect:
            wanted = ", ".join(str(code) for code in expect)
            raise OidcProblem(ErrorKind.STATUS, self.step, f"status {status}, expected {wanted}")
        return body

    async def _send(
        self, client: httpx.AsyncClient, request: httpx.Request
    ) -> tuple[int, str | None, bytes]:
        """Send; read the body up to ``max_document_bytes``; (status, content type, body)."""
        limit = self.spec.max_document_bytes
        response = await client.send(request, stream=True)
        try:
            self.status_code = response.status_code
            declared = response.headers.get("content-length", "")
            if declared.isdigit() and int(declared) > limit:
                raise OidcProblem(
                    ErrorKind.TOO_LARGE,
                    self.step,
                    f"Content-Length {int(declared)} exceeds max_document_bytes ({limit})",
                )
            body = bytearray()
            async for chunk in response.aiter_bytes():
                body += chunk
                if len(body) > limit:
                    raise OidcProblem(
                        ErrorKind.TOO_LARGE,
                        self.step,
                        f"answer exceeds max_document_bytes ({limit})",
                    )
            return response.status_code, response.headers.get("content-type"), bytes(body)
        finally:
            await response.aclose()

    async def _trace(self, name: str, info: Mapping[str, Any]) -> None:
        if name == "connection.start_tls.complete":
            stream = info.get("return_value")
            ssl_object = stream.get_extra_info("ssl_object") if stream is not None else None
            if ssl_object is not None:
                peer = read_peer(ssl_object)
                if peer is not None:
                    self.peers.append(peer)

    # -- the outcome -----------------------------------------------------------------------

    def _timed(self, step: str) -> _Step:
        self.step = step
        return _Step(self.phases, step)

    def _note_jwks(self, jwks: Jwks) -> None:
        self.details["jwks_keys"] = len(jwks.keys)
        kids = ",".join(jwks.kids)
        if len(kids) > DETAIL_LIMIT:  # a detail keeps DETAIL_LIMIT characters: say so
            kids = kids[: DETAIL_LIMIT - 1] + "…"
        self.details["jwks_kids"] = kids
        if jwks.x5c_not_after is not None:
            self.details["x5c_not_after"] = jwks.x5c_not_after.isoformat()

    def _fail(self, kind: ErrorKind, message: str, *, step: str) -> Outcome:
        self.details["step"] = step
        text = message if message.startswith(f"{step}:") else f"{step}: {message}"
        return dataclasses.replace(self._outcome(ok=False), error_kind=kind, message=text)

    def _outcome(self, *, ok: bool) -> Outcome:
        leaf = min((p.not_after for p in self.peers), default=None)
        chain = min((p.chain_not_after for p in self.peers), default=None)
        versions = {p.tls_version for p in self.peers if p.tls_version}
        details = dict(self.details)
        if versions:
            details["tls_version"] = ",".join(sorted(versions))
        return Outcome(
            ok=ok,
            status_code=self.status_code,
            phases=dict(self.phases),
            cert_not_after=leaf,
            chain_not_after=chain,
            details=details,
        )


class _Step:
    """Times one step into the phases (also when it fails)."""

    def __init__(self, phases: dict[str, float], name: str) -> None:
        self._phases = phases
        self._name = name
        self._started = 0.0

    def __enter__(self) -> None:
        self._started = time.perf_counter()

    def __exit__(self, *_exc: object) -> None:
        self._phases[self._name] = time.perf_counter() - self._started


def _signing_algs(spec: OidcCheck, discovery: Discovery) -> tuple[str, ...]:
    """The algorithms the JWKS must have a signing key for (``signing_algs``)."""
    if spec.signing_algs == "advertised":
        return discovery.signing_algs
    missing = [alg for alg in spec.signing_algs if alg not in discovery.signing_algs]
    if missing:
        raise OidcProblem(
            ErrorKind.ASSERTION,
            "discovery",
            "id_token_signing_alg_values_supported lacks " + ", ".join(missing),
        )
    return tuple(spec.signing_algs)


def _endpoint_url(discovery: Discovery, endpoint: str) -> str | None:
    return {
        "authorization": discovery.authorization_endpoint,
        "token": discovery.token_endpoint,
        "userinfo": discovery.userinfo_endpoint,
        "end_session": discovery.end_session_endpoint,
    }.get(endpoint)


def _header_kid(token: str) -> str | None:
    """The ``kid`` of a token's protected header (called once its signature verified)."""
    head = token.split(".", 1)[0]
    try:
        header = json.loads(base64.urlsafe_b64decode(head + "=" * (-len(head) % 4)))
    except (ValueError, RecursionError):
        return None
    kid = header.get("kid") if isinstance(header, dict) else None
    return kid if isinstance(kid, str) else None


def _access_token(body: bytes) -> str:
    try:
        document = json.loads(body)
    except (ValueError, RecursionError) as exc:
        raise OidcProblem(
            ErrorKind.PROTOCOL, _TOKEN_STEP, "the token response is not JSON"
        ) from exc
    if not isinstance(document, dict):
        raise OidcProblem(ErrorKind.PROTOCOL, _TOKEN_STEP, "the token response is not an object")
    token = document.get("access_token")
    if not isinstance(token, str) or not token:
        raise OidcProblem(
            ErrorKind.ASSERTION, _TOKEN_STEP, "the token response has no access_token"
        )
    token_type = document.get("token_type")
    if not isinstance(token_type, str) or token_type.lower() != "bearer":
        raise OidcProblem(
            ErrorKind.ASSERTION,
            _TOKEN_STEP,
            "the token response's token_type is not Bearer (RFC 6749 §5.1, RFC 6750)",
        )
    return token


def _oauth_error(body: bytes) -> str:
    """`` (error 'invalid_client')`` for an OAuth error body (RFC 6749 §5.2), else ''."""
    try:
        document = json.loads(body[:4096])
    except (ValueError, RecursionError):
        return ""
    error = document.get("error") if isinstance(document, dict) else None
    return f" (error {error[:80]!r})" if isinstance(error, str) else ""


def _classify(exc: Exception) -> tuple[ErrorKind, str]:
    if isinstance(exc, httpx.TimeoutException):
        return ErrorKind.TIMEOUT, "timed out"
    known = classify_cause(exc)
    if known is not None:
        return error_kind(known.kind), known.message
    failure = classify(exc)
    return error_kind(failure.kind), failure.message
