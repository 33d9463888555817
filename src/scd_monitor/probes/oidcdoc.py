"""The documents of an OpenID Connect provider, judged: pure functions over fetched bytes.

The ``oidc`` probe (:mod:`scd_monitor.probes.oidc`) fetches; this module judges what came
back, with no I/O, so every rule can be tested on bytes alone:

* :func:`parse_discovery`: ``/.well-known/openid-configuration`` (OIDC Discovery 1.0 §3,
  §4.3) → :class:`Discovery`;
* :func:`parse_jwks`: the document at ``jwks_uri`` (RFC 7517) → :class:`Jwks`, which keeps
  the ``joserfc`` key set of its signing keys;
* :func:`verify_token`: a JWS compact token (RFC 7515, RFC 7519) verified with ``joserfc``
  against a :class:`Jwks`, then its ``iss``, ``aud``, ``exp``, ``nbf`` and ``iat``;
* :func:`judge_endpoint`: the answer of an endpoint contacted without credentials,
  judged as "alive, not necessarily authorised".

Everything a provider can send ends as :class:`OidcProblem` (or a result); nothing else
escapes for any bytes or any JSON value (a property test holds this). Arguments the probe
itself gets wrong (an unknown step name) raise ``ValueError``: the probe's bug, reported
as ``internal`` by the runner.

**Error kinds.** The rule, the same in every step:

* ``too_large``: a document over its byte limit (:data:`MAX_DOCUMENT_BYTES` by default),
  a JWKS with more than ``max_keys`` keys.
* ``protocol``: the bytes are not what the format says they must be: not UTF-8, not
  JSON, nested deeper than :data:`MAX_DEPTH`, a string holding NUL or a lone surrogate,
  a member repeated in one object, not a JSON object where one is required, a member of
  the wrong JSON type (a number where a string or an array of strings is expected), a
  value that cannot be decoded (invalid base64url or base64, a certificate that is not
  DER, numbers that make no key); a token that is not a JWS compact serialization at all.
* ``assertion``: well-formed, but against a rule the monitor checks: a required member
  missing (or ``null``), an ``issuer`` other than the configured one, an endpoint that is
  not an absolute ``https`` URL, expected values missing, an unsupported ``kty`` or
  ``crv``, a private or symmetric key published, an RSA key under 2048 bits, an ``x5c``
  certificate expired or for another key, no key able to verify an advertised
  algorithm; every failure of a token that is a JWS (algorithm, key, signature, claims).
* ``status``: an endpoint answering a status that a live server does not give
  (:func:`judge_endpoint`).

**Messages** name the step's subject (the field, the key by index and ``kid``, the
claim), never a token or its parts, and are cleaned and bounded
(:func:`~scd_monitor.sanitize.clean_text`, :data:`PROBLEM_MESSAGE_LIMIT` characters;
each quoted value :data:`SHOWN_LIMIT`).

**Choices worth knowing.**

* A member whose value is ``null`` counts as absent (some servers write optional
  members that way).
* ``kty`` values other than ``RSA``, ``EC`` and ``OKP`` fail the JWKS (an ``oct`` key is a
  published secret); RFC 7517 §5 would let a client ignore keys of unknown types.
* Algorithms in ``signing_algs`` that need no key in the JWKS are skipped by
  :func:`parse_jwks`: ``HS256``/``HS384``/``HS512`` use the client secret (OIDC Core
  §10.1) and ``none`` has no signature.
* ``x5c``: every certificate must be standard base64 (not base64url) DER and parse; the
  leaf's public key must equal the JWK's (compared as DER SubjectPublicKeyInfo, which is
  cheap); the leaf must not have expired at ``now``. Chains are not validated (no trust
  anchor is configured for them).
* RSA: modulus of 2048 to 16384 bits, public exponent of at most 256 bits (FIPS 186-5
  bounds it by 2**256; a huge exponent would make every verification slow).
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final, Literal
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from joserfc import jws
from joserfc.errors import BadSignatureError, JoseError, UnsupportedAlgorithmError
from joserfc.jwa import JWSAlgModel
from joserfc.jwk import JWKRegistry, Key, KeySet
from joserfc.util import urlsafe_b64decode

from scd_monitor.probes.base import ErrorKind
from scd_monitor.sanitize import clean_text

__all__ = [
    "MAX_DEPTH",
    "MAX_DOCUMENT_BYTES",
    "MAX_TOKEN_BYTES",
    "Discovery",
    "Jwks",
    "KeyInfo",
    "OidcProblem",
    "judge_endpoint",
    "parse_discovery",
    "parse_jwks",
    "verify_token",
]

MAX_DOCUMENT_BYTES: Final = 1_048_576
"""Bytes a discovery document or a JWKS may have by default (more → ``too_large``)."""
MAX_DEPTH: Final = 32
"""Nesting levels of JSON containers a document may have (deeper → ``protocol``)."""
MAX_TOKEN_BYTES: Final = 65_536
"""Characters a token may have (more → ``protocol``: no real token comes near it)."""
PROBLEM_MESSAGE_LIMIT: Final = 500
"""Characters an :class:`OidcProblem` message keeps (the probe prefixes the step)."""
SHOWN_LIMIT: Final = 80
"""Characters kept of one value quoted in a message."""

_MIN_RSA_BITS: Final = 2048
_MAX_RSA_BITS: Final = 16_384
_MAX_EXPONENT_BITS: Final = 256
_ERROR_BODY_BYTES: Final = 65_536
"""Bytes of an endpoint's error answer that are parsed as an OAuth error object."""
_SEGMENT_BYTES: Final = 49_152
"""Decoded bytes a token's header or payload may have (within :data:`MAX_TOKEN_BYTES`)."""

Step = Literal["discovery", "jwks", "token"]


class OidcProblem(Exception):
    """A document that fails the check.

    ``kind`` is the :class:`~scd_monitor.probes.base.ErrorKind` (see the module docstring
    for the rule), ``step`` where it failed (``"discovery"``, ``"jwks"``, ``"token"`` or an
    endpoint's step), ``message`` what is wrong: clean, bounded, secret-free.
    """

    kind: ErrorKind
    step: str
    message: str

    def __init__(self, kind: ErrorKind, step: str, message: str) -> None:
        self.kind = kind
        self.step = step
        self.message = clean_text(message, limit=PROBLEM_MESSAGE_LIMIT)
        super().__init__(f"{step}: {self.message}")


# -- JSON from outside ---------------------------------------------------------------------


class _RepeatedMember(ValueError):
    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.name = name


_BAD_CHARS: Final = re.compile("[\x00\ud800-\udfff]")


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """``object_pairs_hook``: a member repeated in one object is refused (parsers
    disagree on which value wins, so the monitor would judge another document than a
    relying party)."""
    result = dict(pairs)
    if len(result) != len(pairs):
        seen: set[str] = set()
        for name, _value in pairs:
            if name in seen:
                raise _RepeatedMember(name)
            seen.add(name)
    return result


def _no_constant(name: str) -> object:
    raise ValueError(f"{name} is not JSON")


def _load_json(body: bytes, step: str, *, what: str, limit: int) -> object:
    """``body`` as a JSON value, or :class:`OidcProblem` (``too_large``, ``protocol``)."""
    if len(body) > limit:
        raise OidcProblem(
            ErrorKind.TOO_LARGE, step, f"{what} has {len(body)} bytes, more than {limit}"
        )
    if not body.strip():
        raise OidcProblem(ErrorKind.PROTOCOL, step, f"{what} is empty")
    try:
        text = bytes(body).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise OidcProblem(
            ErrorKind.PROTOCOL, step, f"{what} is not valid UTF-8 (byte {exc.start})"
        ) from None
    try:
        value: object = json.loads(text, object_pairs_hook=_object, parse_constant=_no_constant)
    except RecursionError:
        raise OidcProblem(
            ErrorKind.PROTOCOL, step, f"{what} nests deeper than {MAX_DEPTH} levels"
        ) from None
    except _RepeatedMember as exc:
        raise OidcProblem(
            ErrorKind.PROTOCOL, step, f"{what} repeats the member {_quote(exc.name)} in an object"
        ) from None
    except ValueError as exc:
        raise OidcProblem(
            ErrorKind.PROTOCOL, step, f"{what} is not valid JSON: {_short(str(exc))}"
        ) from None
    _check_tree(value, step, what)
    return value


def _check_tree(value: object, step: str, what: str) -> None:
    """Depth within :data:`MAX_DEPTH`; no NUL or lone surrogate in any string or name.
    Iterative: the value may be as deep as the JSON parser went."""
    stack: list[tuple[object, int]] = [(value, 0)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, str):
            _check_chars(node, step, what)
        elif isinstance(node, dict | list):
            if depth >= MAX_DEPTH:
                raise OidcProblem(
                    ErrorKind.PROTOCOL, step, f"{what} nests deeper than {MAX_DEPTH} levels"
                )
            if isinstance(node, dict):
                for name, item in node.items():
                    _check_chars(name, step, what)
                    stack.append((item, depth + 1))
            else:
                stack.extend((item, depth + 1) for item in node)


def _check_chars(text: str, step: str, what: str) -> None:
    found = _BAD_CHARS.search(text)
    if found is None:
        return
    char = found.group()
    if char == "\x00":
        raise OidcProblem(ErrorKind.PROTOCOL, step, f"{what} has a NUL character in a string")
    raise OidcProblem(
        ErrorKind.PROTOCOL,
        step,
        f"{what} has a lone surrogate (\\u{ord(char):04x}) in a string: not Unicode text",
    )


def _short(text: str) -> str:
    return clean_text(text, limit=SHOWN_LIMIT)


def _quote(text: str) -> str:
    return f"'{_short(text)}'"


def _kind_of(value: object) -> str:
    """A JSON value's type, for messages (never its content)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"


def _quote_all(values: Sequence[str]) -> str:
    return ", ".join(_quote(value) for value in values)


# -- discovery -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Discovery:
    """What the probe uses of a provider's discovery document (OIDC Discovery 1.0 §3)."""

    issuer: str
    authorization_endpoint: str
    token_endpoint: str | None
    userinfo_endpoint: str | None
    end_session_endpoint: str | None
    jwks_uri: str
    signing_algs: tuple[str, ...]
    """``id_token_signing_alg_values_supported`` without ``none``, in published order."""
    scopes_supported: tuple[str, ...]
    acr_values_supported: tuple[str, ...]
    grant_types_supported: tuple[str, ...]
    """As published; when absent, the default of the spec: authorization_code, implicit."""
    code_challenge_methods_supported: tuple[str, ...]
    token_endpoint_auth_methods_supported: tuple[str, ...]
    """As published; when absent, the default of the spec: client_secret_basic."""


_REQUIRED_FIELDS: Final = (
    "issuer",
    "authorization_endpoint",
    "jwks_uri",
    "response_types_supported",
    "subject_types_supported",
    "id_token_signing_alg_values_supported",
)
_DEFAULTS: Final[Mapping[str, tuple[str, ...]]] = {
    "grant_types_supported": ("authorization_code", "implicit"),
    "token_endpoint_auth_methods_supported": ("client_secret_basic",),
    "response_modes_supported": ("query", "fragment"),
}
"""List members the spec gives a default when absent (OIDC Discovery 1.0 §3)."""
_ENDPOINTS: Final = (
    "authorization_endpoint",
    "token_endpoint",
    "userinfo_endpoint",
    "end_session_endpoint",
    "jwks_uri",
)


class _Document:
    """Typed reads of a JSON object's members, failing as the module rule says."""

    def __init__(self, members: dict[str, Any], step: str, what: str) -> None:
        self.members = members
        self.step = step
        self.what = what

    def string(self, name: str) -> str | None:
        value = self.members.get(name)
        if value is None or isinstance(value, str):
            return value
        raise OidcProblem(
            ErrorKind.PROTOCOL,
            self.step,
            f"{self.what}: {name} is {_kind_of(value)}, expected a string",
        )

    def strings(self, name: str) -> tuple[str, ...] | None:
        value = self.members.get(name)
        if value is None:
            return None
        if isinstance(value, list) and all(isinstance(item, str) for item in value):
            return tuple(value)
        detail = (
            f"an array holding {_kind_of(next(i for i in value if not isinstance(i, str)))}"
            if isinstance(value, list)
            else _kind_of(value)
        )
        raise OidcProblem(
            ErrorKind.PROTOCOL,
            self.step,
            f"{self.what}: {name} is {detail}, expected an array of strings",
        )


def parse_discovery(
    body: bytes,
    *,
    issuer: str,
    required: Mapping[str, Sequence[str]] = {},  # read only, never mutated
    max_bytes: int = MAX_DOCUMENT_BYTES,
) -> Discovery:
    """Judge a discovery document (the bytes of ``/.well-known/openid-configuration``).

    Checks, in order: a UTF-8 JSON object within ``max_bytes`` and :data:`MAX_DEPTH`;
    ``issuer`` equal to the configured ``issuer`` character for character (OIDC
    Discovery 1.0 §3, §4.3); the members §3 requires (``token_endpoint`` too, unless
    ``response_types_supported`` has only implicit types, i.e. none with ``code``),
    with the right JSON types and the required arrays not empty; every endpoint an
    absolute URL with a host, no fragment, no whitespace, and ``https`` (``http`` only
    when the configured issuer is ``http``); and for each ``required`` member
    (field name → values) every value listed in the document's array (absent arrays
    take the spec's default, see :data:`_DEFAULTS`, or are empty).

    Raises :class:`OidcProblem` (step ``discovery``) for a document that fails.
    """
    step = "discovery"
    what = "the discovery document"
    document = _load_json(body, step, what=what, limit=max_bytes)
    if not isinstance(document, dict):
        raise OidcProblem(
            ErrorKind.PROTOCOL, step, f"{what} is {_kind_of(document)}, not a JSON object"
        )
    fields = _Document(document, step, what)
    published = fields.string("issuer")
    if published is not None and published != issuer:
        raise OidcProblem(
            ErrorKind.ASSERTION,
            step,
            f"issuer is {_quote(published)}, expected exactly {_quote(issuer)} "
            "(OIDC Discovery 1.0 §4.3)",
        )
    missing = [name for name in _REQUIRED_FIELDS if document.get(name) is None]
    if missing:
        raise OidcProblem(
            ErrorKind.ASSERTION,
            step,
            f"{what} lacks the required {', '.join(missing)} (OIDC Discovery 1.0 §3)",
        )

    urls = {name: fields.string(name) for name in _ENDPOINTS}
    response_types = fields.strings("response_types_supported") or ()
    subject_types = fields.strings("subject_types_supported") or ()
    algs = fields.strings("id_token_signing_alg_values_supported") or ()
    for name, values in (
        ("response_types_supported", response_types),
        ("subject_types_supported", subject_types),
        ("id_token_signing_alg_values_supported", algs),
    ):
        if not values:
            raise OidcProblem(ErrorKind.ASSERTION, step, f"{name} is empty")
    implicit_only = all("code" not in kind.split() for kind in response_types)
    if urls["token_endpoint"] is None and not implicit_only:
        raise OidcProblem(
            ErrorKind.ASSERTION,
            step,
            f"{what} lacks token_endpoint, required unless only the implicit flow is "
            f"supported (response_types_supported: {_quote_all(response_types)})",
        )
    allow_http = urlsplit(issuer).scheme.lower() == "http"
    for name, url in urls.items():
        if url is not None:
            _check_url(name, url, allow_http=allow_http, step=step)

    lists = {
        name: fields.strings(name)
        for name in (
            "scopes_supported",
            "acr_values_supported",
            "grant_types_supported",
            "code_challenge_methods_supported",
            "token_endpoint_auth_methods_supported",
        )
    }
    shortfalls: list[str] = []
    for name, wanted in required.items():
        values = (wanted,) if isinstance(wanted, str) else tuple(wanted)
        present = lists[name] if name in lists else fields.strings(name)
        if present is None:
            present = _DEFAULTS.get(name, ())
        absent = [value for value in values if value not in present]
        if absent:
            how = "" if name in document else " (the document does not publish it)"
            shortfalls.append(f"{name} lacks {_quote_all(absent)}{how}")
    if shortfalls:
        raise OidcProblem(ErrorKind.ASSERTION, step, "; ".join(shortfalls))

    authorization = urls["authorization_endpoint"]
    jwks_uri = urls["jwks_uri"]
    assert published is not None and authorization is not None and jwks_uri is not None
    return Discovery(
        issuer=published,
        authorization_endpoint=authorization,
        token_endpoint=urls["token_endpoint"],
        userinfo_endpoint=urls["userinfo_endpoint"],
        end_session_endpoint=urls["end_session_endpoint"],
        jwks_uri=jwks_uri,
        signing_algs=tuple(dict.fromkeys(alg for alg in algs if alg != "none")),
        scopes_supported=lists["scopes_supported"] or (),
        acr_values_supported=lists["acr_values_supported"] or (),
        grant_types_supported=(
            lists["grant_types_supported"] or _DEFAULTS["grant_types_supported"]
        ),
        code_challenge_methods_supported=lists["code_challenge_methods_supported"] or (),
        token_endpoint_auth_methods_supported=(
            lists["token_endpoint_auth_methods_supported"]
            or _DEFAULTS["token_endpoint_auth_methods_supported"]
        ),
    )


_URL_UNSAFE: Final = re.compile(r"[\x00-\x20\x7f]")


def _check_url(name: str, url: str, *, allow_http: bool, step: str) -> None:
    schemes = ("https", "http") if allow_http else ("https",)
    expected = "an absolute http(s) URL" if allow_http else "an absolute https URL"
    problem: str | None = None
    if _URL_UNSAFE.search(url):
        problem = "has whitespace or control characters"
    else:
        try:
            parts = urlsplit(url)
            host = parts.hostname
            _ = parts.port  # raises for a port that is not a number in range
        except ValueError:
            problem = "is not a valid URL"
        else:
            if parts.scheme.lower() not in schemes:
                problem = f"is not {expected}"
            elif not host:
                problem = "has no host"
            elif parts.fragment or url.endswith("#"):
                problem = "has a fragment"
    if problem is not None:
        raise OidcProblem(ErrorKind.ASSERTION, step, f"{name} {_quote(url)} {problem}")


# -- JWKS ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class KeyInfo:
    """One key of a JWKS, as published (RFC 7517 §4)."""

    kid: str | None
    kty: str
    alg: str | None
    use: str | None
    x5c_not_after: datetime | None
    """Expiry (UTC) of the ``x5c`` leaf certificate, when the key has one."""
    thumbprint: str = ""
    """The key's RFC 7638 SHA-256 thumbprint (computed by ``joserfc``)."""

    @property
    def key_id(self) -> str:
        """``kid``, or the thumbprint for a key published without one."""
        return self.kid if self.kid is not None else self.thumbprint


@dataclass(frozen=True, slots=True)
class Jwks:
    """A provider's JWKS, judged by :func:`parse_jwks`."""

    keys: tuple[KeyInfo, ...]
    """Every key, in published order."""
    key_set: Any
    """The ``joserfc`` :class:`~joserfc.jwk.KeySet` of the keys usable for signatures
    (``use`` absent or ``sig``, ``key_ops`` absent or with ``verify``), for
    :func:`verify_token`. A key without ``kid`` gets its thumbprint as ``kid`` there."""

    @property
    def kids(self) -> tuple[str, ...]:
        """The key ids, sorted, each once; a key without ``kid`` counts with its RFC 7638
        thumbprint (stable: the same key material gives the same id)."""
        return tuple(sorted({key.key_id for key in self.keys}))

    @property
    def x5c_not_after(self) -> datetime | None:
        """The earliest ``x5c`` leaf expiry among the keys (``None``: no ``x5c``)."""
        return min((k.x5c_not_after for k in self.keys if k.x5c_not_after), default=None)


_KEY_MEMBERS: Final[Mapping[str, tuple[str, ...]]] = {
    "RSA": ("n", "e"),
    "EC": ("crv", "x", "y"),
    "OKP": ("crv", "x"),
}
_CURVES: Final[Mapping[str, frozenset[str]]] = {
    "EC": frozenset({"P-256", "P-384", "P-521", "secp256k1"}),
    "OKP": frozenset({"Ed25519", "Ed448", "X25519", "X448"}),
}
_PRIVATE_MEMBERS: Final = ("d", "p", "q", "dp", "dq", "qi", "oth", "k")
"""Members that hold private or secret key material (RFC 7518 §6.2.2, §6.3.2, §6.4)."""
_OPTIONAL_STRINGS: Final = ("use", "alg", "x5u", "x5t", "x5t#S256")

_ALG_KEYS: Final[Mapping[str, tuple[str, frozenset[str] | None]]] = {
    **{f"{family}{bits}": ("RSA", None) for family in ("RS", "PS") for bits in (256, 384, 512)},
    "ES256": ("EC", frozenset({"P-256"})),
    "ES384": ("EC", frozenset({"P-384"})),
    "ES512": ("EC", frozenset({"P-521"})),
    "ES256K": ("EC", frozenset({"secp256k1"})),
    "EdDSA": ("OKP", frozenset({"Ed25519", "Ed448"})),
    "Ed25519": ("OKP", frozenset({"Ed25519"})),
    "Ed448": ("OKP", frozenset({"Ed448"})),
}
"""The asymmetric JWS algorithms (RFC 7518 §3, RFC 8037, RFC 8812, RFC 9864) and the keys
that verify them: the only algorithms :func:`verify_token` accepts."""
_KEYLESS_ALGS: Final = frozenset({"HS256", "HS384", "HS512", "none"})
"""Algorithms that need no key of the JWKS (HMAC uses the client secret)."""


def _fits(alg: str, kty: str, crv: str | None, key_alg: str | None) -> bool:
    """Whether a signing key of type ``kty`` (curve ``crv``, ``alg`` member ``key_alg``)
    can verify ``alg``."""
    wanted = _ALG_KEYS.get(alg)
    if wanted is None or (key_alg is not None and key_alg != alg):
        return False
    family, curves = wanted
    return kty == family and (curves is None or crv in curves)


@dataclass(frozen=True, slots=True)
class _Parsed:
    info: KeyInfo
    key: Key
    signing: bool
    crv: str | None


def parse_jwks(
    body: bytes,
    *,
    signing_algs: Sequence[str],
    now: datetime,
    max_keys: int = 100,
    max_bytes: int = MAX_DOCUMENT_BYTES,
) -> Jwks:
    """Judge a JWKS (the bytes at ``jwks_uri``).

    Every key must parse (RFC 7517, RFC 7518 §6, RFC 8037): a JSON object with a
    supported ``kty`` (``RSA``, ``EC``, ``OKP``), its members present, of the right
    types and valid base64url, no private member (``d`` …) and no symmetric key (a
    provider must never publish either), an RSA modulus of at least 2048 bits, an
    ``x5c`` (when present) of standard base64 DER certificates whose leaf holds the same
    public key and has not expired at ``now``. One bad key fails the whole JWKS; the
    message names it by index and ``kid``. More than ``max_keys`` keys → ``too_large``;
    no keys at all → ``assertion``.

    Then, for each of ``signing_algs`` (the discovery document's, without ``none``), at
    least one key must be able to verify it: the key type (and curve) of the algorithm,
    ``use`` absent or ``sig``, ``key_ops`` absent or with ``verify``, ``alg`` absent or
    equal. HMAC algorithms are skipped (they use the client secret). Otherwise
    ``assertion``: "no signing key for RS256".

    ``now`` without a time zone is taken as UTC. Raises :class:`OidcProblem` (step
    ``jwks``).
    """
    step = "jwks"
    what = "the JWKS"
    at = now if now.tzinfo is not None else now.replace(tzinfo=UTC)
    document = _load_json(body, step, what=what, limit=max_bytes)
    if not isinstance(document, dict):
        raise OidcProblem(
            ErrorKind.PROTOCOL, step, f"{what} is {_kind_of(document)}, not a JSON object"
        )
    keys = document.get("keys")
    if keys is None:
        raise OidcProblem(ErrorKind.ASSERTION, step, f"{what} has no keys member (RFC 7517 §5)")
    if not isinstance(keys, list):
        raise OidcProblem(
            ErrorKind.PROTOCOL, step, f"{what}: keys is {_kind_of(keys)}, expected an array"
        )
    if len(keys) > max_keys:
        raise OidcProblem(
            ErrorKind.TOO_LARGE, step, f"{what} has {len(keys)} keys, more than {max_keys}"
        )
    if not keys:
        raise OidcProblem(ErrorKind.ASSERTION, step, f"{what} has no keys")
    parsed = [_parse_key(index, raw, at, step) for index, raw in enumerate(keys)]

    uncovered = [
        alg
        for alg in dict.fromkeys(signing_algs)
        if alg not in _KEYLESS_ALGS
        and not any(p.signing and _fits(alg, p.info.kty, p.crv, p.info.alg) for p in parsed)
    ]
    if uncovered:
        raise OidcProblem(
            ErrorKind.ASSERTION, step, f"no signing key for {', '.join(map(_short, uncovered))}"
        )
    return Jwks(
        keys=tuple(p.info for p in parsed),
        key_set=KeySet([p.key for p in parsed if p.signing]),
    )


def _parse_key(index: int, raw: object, now: datetime, step: str) -> _Parsed:
    kid_value = raw.get("kid") if isinstance(raw, dict) else None
    label = f"key {index}"
    if isinstance(kid_value, str):
        label += f" (kid {_quote(kid_value)})"

    def fail(kind: ErrorKind, message: str) -> OidcProblem:
        return OidcProblem(kind, step, f"{label} {message}")

    if not isinstance(raw, dict):
        raise fail(ErrorKind.PROTOCOL, f"is {_kind_of(raw)}, not a JSON object")
    members = _Document(raw, step, label)
    kid = members.string("kid")
    kty = members.string("kty")
    if kty is None:
        raise fail(ErrorKind.ASSERTION, "has no kty (RFC 7517 §4.1)")
    secret = [name for name in _PRIVATE_MEMBERS if name in raw]
    if secret or kty == "oct":
        what = f"private key material ({', '.join(secret)})" if secret else "a symmetric key"
        raise fail(
            ErrorKind.ASSERTION,
            f"publishes {what}: a provider must never publish private keys",
        )
    if kty not in _KEY_MEMBERS:
        raise fail(ErrorKind.ASSERTION, f"has an unsupported kty {_quote(kty)}")
    optional = {name: members.string(name) for name in _OPTIONAL_STRINGS}
    key_ops = members.strings("key_ops")
    chain = members.strings("x5c")

    values: dict[str, str] = {}
    absent: list[str] = []
    for name in _KEY_MEMBERS[kty]:
        value = members.string(name)
        if value is None:
            absent.append(name)
        else:
            values[name] = value
    if absent:
        raise fail(ErrorKind.ASSERTION, f"({kty}) lacks {', '.join(absent)}")
    crv = values.get("crv")
    if crv is not None and crv not in _CURVES[kty]:
        raise fail(ErrorKind.ASSERTION, f"has an unsupported {kty} crv {_quote(crv)}")
    decoded: dict[str, bytes] = {}
    for name, value in values.items():
        if name == "crv":
            continue
        try:
            data = urlsafe_b64decode(value.encode("ascii"))
        except ValueError:  # binascii.Error and UnicodeEncodeError are ValueErrors
            data = b""
        if not data:
            raise fail(ErrorKind.PROTOCOL, f"({kty}): {name} is not valid base64url")
        decoded[name] = data
    if kty == "RSA":
        bits = int.from_bytes(decoded["n"], "big").bit_length()
        if bits < _MIN_RSA_BITS:
            raise fail(
                ErrorKind.ASSERTION, f"is a weak RSA key: {bits} bits, fewer than {_MIN_RSA_BITS}"
            )
        if bits > _MAX_RSA_BITS:
            raise fail(
                ErrorKind.ASSERTION, f"has an RSA modulus of {bits} bits, more than {_MAX_RSA_BITS}"
            )
        if int.from_bytes(decoded["e"], "big").bit_length() > _MAX_EXPONENT_BITS:
            raise fail(
                ErrorKind.ASSERTION,
                f"has an RSA public exponent of more than {_MAX_EXPONENT_BITS} bits",
            )

    # joserfc builds the key from the members it needs; what it would refuse that RFC 7517
    # allows (a "use" of another value) is judged here instead.
    data_for_jose: dict[str, Any] = {"kty": kty, **values}
    if kid is not None:
        data_for_jose["kid"] = kid
    if optional["alg"] is not None:
        data_for_jose["alg"] = optional["alg"]
    if optional["use"] in ("sig", "enc"):
        data_for_jose["use"] = optional["use"]
    try:
        key = JWKRegistry.import_key(data_for_jose)
        thumbprint = key.thumbprint()
    except (JoseError, ValueError, TypeError, KeyError, OverflowError, UnsupportedAlgorithm) as e:
        raise fail(ErrorKind.PROTOCOL, f"is not a valid {kty} key: {_short(str(e))}") from None

    not_after = None
    if chain is not None:
        name = kid if kid is not None else thumbprint
        not_after = _check_chain(chain, key, name, fail, now=now, step=step)
    use = optional["use"]
    signing = (use is None or use == "sig") and (key_ops is None or "verify" in key_ops)
    info = KeyInfo(
        kid=kid,
        kty=kty,
        alg=optional["alg"],
        use=use,
        x5c_not_after=not_after,
        thumbprint=thumbprint,
    )
    return _Parsed(info=info, key=key, signing=signing, crv=crv)


def _check_chain(
    chain: tuple[str, ...],
    key: Key,
    name: str,
    fail: Callable[[ErrorKind, str], OidcProblem],
    *,
    now: datetime,
    step: str,
) -> datetime:
    """The ``x5c`` leaf's expiry, once every certificate parsed and the leaf matched."""
    if not chain:
        raise fail(ErrorKind.ASSERTION, "has an empty x5c")
    certificates: list[x509.Certificate] = []
    for position, entry in enumerate(chain):
        try:
            der = base64.b64decode(entry, validate=True)
        except (binascii.Error, ValueError):
            der = b""
        if not der:
            raise fail(
                ErrorKind.PROTOCOL,
                f"has an x5c[{position}] that is not base64 (RFC 7517 §4.7: standard "
                "base64, not base64url)",
            )
        try:
            certificates.append(x509.load_der_x509_certificate(der))
        except ValueError:
            raise fail(
                ErrorKind.PROTOCOL, f"has an x5c[{position}] that is not a DER certificate"
            ) from None
    leaf = certificates[0]
    try:
        not_after = leaf.not_valid_after_utc
        leaf_key = leaf.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    except (ValueError, UnsupportedAlgorithm):
        raise fail(ErrorKind.PROTOCOL, "has an x5c certificate that cannot be read") from None
    public = key.public_key
    if isinstance(public, bytes):  # an oct key: refused before, never here
        raise fail(ErrorKind.ASSERTION, "is a symmetric key with an x5c")
    if leaf_key != public.public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo):
        raise fail(
            ErrorKind.ASSERTION,
            "has an x5c certificate for another public key than its own (RFC 7517 §4.7)",
        )
    if not_after < now:
        raise OidcProblem(
            ErrorKind.ASSERTION,
            step,
            f"x5c certificate of key {_quote(name)} expired on {not_after.isoformat()}",
        )
    return not_after


# -- tokens --------------------------------------------------------------------------------


class _Registry(jws.JWSRegistry):
    """joserfc's JWS registry for one allowed algorithm, sized for real tokens (headers
    with ``x5c``, RSA keys up to 16384 bits), without joserfc's warning for ``EdDSA``
    (deprecated by RFC 9864, still what providers publish)."""

    max_header_length = 16_384
    max_payload_length = MAX_TOKEN_BYTES
    max_signature_length = 4096

    def get_alg(self, name: str) -> JWSAlgModel:
        if name not in self.algorithms or not self.allowed or name not in self.allowed:
            raise UnsupportedAlgorithmError(f"Algorithm of '{name}' is not allowed")
        return self.algorithms[name]


_SEGMENT: Final = re.compile(r"[A-Za-z0-9_-]+")


def verify_token(
    token: str,
    jwks: Jwks,
    *,
    issuer: str,
    audience: str | None,
    now: datetime,
    leeway: float = 60.0,
) -> Mapping[str, Any]:
    """Verify a JWS compact token (a JWT) and return its claims.

    Not a JWS compact serialization at all (not three base64url parts, header or
    payload not a JSON object, more than :data:`MAX_TOKEN_BYTES`) → ``protocol``.
    Otherwise every failure is ``assertion``: an ``alg`` other than the asymmetric ones
    (RS*, PS*, ES*, EdDSA; ``none`` and HS* are refused), a ``kid`` not in the JWKS
    (without ``kid`` every signing key of the algorithm's type is tried), a signature
    that ``joserfc`` does not verify, ``iss`` other than ``issuer``, ``aud`` without
    ``audience`` (when given), ``exp`` missing or not after ``now - leeway``, ``nbf`` or
    ``iat`` after ``now + leeway``. Messages never quote the token.
    """
    step = "token"

    def protocol(message: str) -> OidcProblem:
        return OidcProblem(ErrorKind.PROTOCOL, step, message)

    def assertion(message: str) -> OidcProblem:
        return OidcProblem(ErrorKind.ASSERTION, step, message)

    if not isinstance(token, str):
        raise protocol(f"the token is {type(token).__name__}, not text")
    if len(token) > MAX_TOKEN_BYTES:
        raise protocol(f"the token has {len(token)} characters, more than {MAX_TOKEN_BYTES}")
    if not token.isascii():
        raise protocol("the token is not a JWS compact serialization (non-ASCII characters)")
    parts = token.split(".")
    if len(parts) == 5:
        raise protocol("the token is a JWE (5 parts), not a signed JWT")
    # The signature may be empty: that is how alg "none" looks, refused below as assertion.
    if len(parts) != 3 or not all(_SEGMENT.fullmatch(part) for part in parts[:2]):
        raise protocol("the token is not a JWS compact serialization (3 base64url parts)")
    if parts[2] and not _SEGMENT.fullmatch(parts[2]):
        raise protocol("the token's signature is not valid base64url")
    header = _segment_json(parts[0], "header", protocol)
    claims = _segment_json(parts[1], "payload", protocol)

    alg = header.get("alg")
    if not isinstance(alg, str):
        raise protocol(f"the token's header has alg {_kind_of(alg)}, expected a string")
    if alg not in _ALG_KEYS:
        raise assertion(
            f"the token's alg {_quote(alg)} is not allowed (only RS*, PS*, ES* and EdDSA)"
        )
    if header.get("b64", True) is not True:
        raise protocol("the token has an unencoded payload (b64), not a JWT")
    kid = header.get("kid")
    if kid is not None and not isinstance(kid, str):
        raise protocol(f"the token's header has kid {_kind_of(kid)}, expected a string")

    signing: list[Key] = list(jwks.key_set.keys) if isinstance(jwks.key_set, KeySet) else []
    if kid is not None:
        candidates = [key for key in signing if key.kid == kid]
        if not candidates:
            if any(info.kid == kid for info in jwks.keys):
                raise assertion(
                    f"token signed by key {_quote(kid)}, which the JWKS does not publish "
                    "for signatures"
                )
            raise assertion(f"token signed by key {_quote(kid)}, not in the JWKS")
    else:
        candidates = signing
    usable = [key for key in candidates if _fits(alg, key.key_type, _crv(key), key.alg)]
    named = f"key {_quote(kid)}" if kid is not None else "any key of the JWKS"
    if not usable:
        raise assertion(f"the token's alg {alg} cannot be verified with {named}")
    registry = _Registry(algorithms=[alg], strict_check_header=False)
    for key in usable:
        try:
            jws.deserialize_compact(token, key, registry=registry)
        except BadSignatureError:
            continue
        except (JoseError, ValueError, TypeError, RecursionError) as exc:
            code = exc.error if isinstance(exc, JoseError) else type(exc).__name__
            raise assertion(f"the token does not verify ({_short(code)})") from None
        break
    else:
        raise assertion(f"the token's signature does not verify with {named}")

    _check_claims(claims, issuer=issuer, audience=audience, now=now, leeway=leeway, fail=assertion)
    return claims


def _crv(key: Key) -> str | None:
    crv = key.get("crv")
    return crv if isinstance(crv, str) else None


def _segment_json(segment: str, what: str, fail: Callable[[str], OidcProblem]) -> dict[str, Any]:
    try:
        data = urlsafe_b64decode(segment.encode("ascii"))
    except ValueError:
        raise fail(f"the token's {what} is not valid base64url") from None
    try:
        value = _load_json(data, "token", what=f"the token's {what}", limit=_SEGMENT_BYTES)
    except OidcProblem as problem:
        raise fail(problem.message) from None
    if not isinstance(value, dict):
        raise fail(f"the token's {what} is {_kind_of(value)}, not a JSON object")
    return value


def _numeric_date(value: object) -> float | None:
    """A NumericDate (RFC 7519 §2) or ``None``: a finite number, not a boolean."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _when(seconds: float) -> str:
    try:
        return datetime.fromtimestamp(seconds, UTC).isoformat()
    except (OverflowError, OSError, ValueError):
        return "a time beyond the calendar"


def _check_claims(
    claims: dict[str, Any],
    *,
    issuer: str,
    audience: str | None,
    now: datetime,
    leeway: float,
    fail: Callable[[str], OidcProblem],
) -> None:
    at = (now if now.tzinfo is not None else now.replace(tzinfo=UTC)).timestamp()
    iss = claims.get("iss")
    if iss is None:
        raise fail(f"the token has no iss, expected {_quote(issuer)}")
    if iss != issuer:
        shown = _quote(iss) if isinstance(iss, str) else _kind_of(iss)
        raise fail(f"the token's iss is {shown}, expected exactly {_quote(issuer)}")
    if audience is not None:
        aud = claims.get("aud")
        if aud is None:
            raise fail(f"the token has no aud, expected {_quote(audience)}")
        audiences = [aud] if isinstance(aud, str) else aud
        if not isinstance(audiences, list) or not all(isinstance(a, str) for a in audiences):
            raise fail(f"the token's aud is {_kind_of(aud)}, not a string or strings")
        if audience not in audiences:
            raise fail(
                f"the token's aud ({_quote_all(audiences[:5])}) does not contain {_quote(audience)}"
            )
    if "exp" not in claims:
        raise fail("the token has no exp")
    for name in ("exp", "nbf", "iat"):
        if name not in claims:
            continue
        moment = _numeric_date(claims[name])
        if moment is None:
            raise fail(f"the token's {name} is {_kind_of(claims[name])}, not a NumericDate")
        if name == "exp" and moment <= at - leeway:
            raise fail(f"the token expired at {_when(moment)}")
        if name == "nbf" and moment > at + leeway:
            raise fail(f"the token is not valid before {_when(moment)}")
        if name == "iat" and moment > at + leeway:
            raise fail(f"the token was issued in the future, at {_when(moment)}")


# -- endpoints -----------------------------------------------------------------------------

_EXPECTED: Final[Mapping[str, str]] = {
    "authorization": "2xx, 3xx or 400 (an error page or a redirect)",
    "token": "400 or 401 with an OAuth error",
    "userinfo": "401 (or 400, 403) without a token",
    "end_session": "2xx, 3xx or 400",
}
"""What a live endpoint answers a request without credentials, by step."""


def _alive(step: str, status: int) -> bool:
    if step == "token":
        return status in (400, 401)
    if step == "userinfo":
        return 200 <= status < 300 or status in (400, 401, 403)
    return 200 <= status < 400 or status == 400  # authorization, end_session


_OAUTH_ERROR: Final = re.compile(r"[\x20\x21\x23-\x5b\x5d-\x7e]+")
"""The characters of an OAuth ``error`` code (RFC 6749 §5.2)."""


def judge_endpoint(step: str, status: int, content_type: str | None, body: bytes) -> None:
    """Judge an endpoint's answer to a request **without credentials**: alive, not
    necessarily authorised.

    * ``authorization`` (a GET without parameters): 2xx, 3xx or 400;
    * ``token`` (an empty form POST): 400 or 401 with an OAuth error object, a JSON
      object whose ``error`` is a string such as ``invalid_request``, ``invalid_client``
      or ``unsupported_grant_type`` (RFC 6749 §5.2); another body → ``assertion``;
    * ``userinfo`` (a GET without a token): 401, 400 or 403; a 2xx (answering without a
      token is suspicious, but the server is alive) passes as well;
    * ``end_session``: 2xx, 3xx or 400.

    A 5xx, or any other status, → ``status``. Returns ``None`` when alive; raises
    :class:`OidcProblem` with ``step`` otherwise, and ``ValueError`` for an unknown step.
    """
    expected = _EXPECTED.get(step)
    if expected is None:
        raise ValueError(f"unknown endpoint step {step!r}")
    if 500 <= status < 600:
        raise OidcProblem(ErrorKind.STATUS, step, f"status {status}: the server failed")
    if not _alive(step, status):
        raise OidcProblem(ErrorKind.STATUS, step, f"status {status}, expected {expected}")
    if step != "token":
        return
    shown_type = _quote(content_type) if content_type else "no content type"
    try:
        document = _load_json(body, step, what="the answer", limit=_ERROR_BODY_BYTES)
    except OidcProblem as problem:
        raise OidcProblem(
            ErrorKind.ASSERTION,
            step,
            f"status {status} without an OAuth error object (RFC 6749 §5.2): "
            f"{problem.message} ({shown_type})",
        ) from None
    error = document.get("error") if isinstance(document, dict) else None
    if not isinstance(error, str) or not _OAUTH_ERROR.fullmatch(error):
        if not isinstance(document, dict):
            what = f"the answer is {_kind_of(document)}"
        elif isinstance(error, str):
            what = f"error {_quote(error)} is not an OAuth error code"
        else:
            what = "no error" if error is None else f"error is {_kind_of(error)}"
        raise OidcProblem(
            ErrorKind.ASSERTION,
            step,
            f"status {status} without an OAuth error object (RFC 6749 §5.2): {what}",
        )
