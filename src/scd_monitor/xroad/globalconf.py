"""X-Road global configuration: the signed directory, its parts, shared parameters.

Follows PR-GCONF (X-Road: Protocol for Downloading Configuration):

* §2.3 — the download is ``multipart/related`` with exactly two parts: the directory
  (itself ``multipart/mixed``) and its signature (``Signature-algorithm-id``,
  ``Verification-certificate-hash; hash-algorithm-id=…``, base64 body), signed over
  the body of the first part.
* §2.4 — the directory's first entry is header-only with ``Expire-date`` (ISO 8601,
  UTC) and, optionally, ``Version``; every other entry names a file by
  ``Content-location`` (relative to the directory's URL), carries the base64 digest
  of that file and says how it was made (``Hash-algorithm-id``), and may say what it is
  (``Content-identifier: SHARED-PARAMETERS; instance="CO"``) and a file name.
* §2.5 — content identifiers; §2.6 — verify the signature with the anchor's certificate,
  then every downloaded file against its digest; §2.7 — versions.
* §2.2, Annex A.1, E — the configuration anchor (``downloadURL``, ``verificationCert``).
* Annex B — shared parameters, versions 2 to 6 (6 is X-Road's current version; its
  schema is in X-Road's ``globalconf-core`` resources, not yet in PR-GCONF). What this
  module reads is the same in all of them: ``instanceIdentifier``, ``member`` (class,
  code, name, ``subsystem`` with ``id``), ``securityServer`` (``owner`` and ``client``
  are IDREFs to member and subsystem ``id`` attributes), ``centralService``. Version 3
  adds ``source`` (signing key rotation) and ``acmeServer``; version 4 ACME profile ids;
  version 5 an optional ``subsystemName`` and an optional ``inMaintenanceMode`` (with an
  optional ``message``) on a security server; version 6 ``costType`` on OCSP responders
  and TSAs and a CA's ``defaultCsrFormat``. Elements this module does not read are
  ignored.
* Annex C — private parameters, versions 2 and 3 (the same elements): federated
  instances' anchors, the management service, the time-stamping interval.

Real servers do not write the directory exactly as §2.3 describes it; it is read as
X-Road's own client reads it (see :func:`parse_configuration_directory`).

Signature verification (:func:`verify_directory_signature`) is done only when the caller
gives the anchor's verification certificates. It follows §2.3 as written (the signed
bytes are the raw body of the first MIME part, RFC 2046 delimiting) and supports the
RSA (PKCS #1 v1.5 and PSS) and ECDSA algorithm identifiers of XML-DSig. It has been
checked against directories this project signs itself, **not yet against one produced by
a real central server**; until it has, treat a signature failure as a finding to check,
not as proof of tampering. The per-file digests (§2.6 step 4) are always verified.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from scd_monitor.xroad.errors import XRoadProtocolError
from scd_monitor.xroad.identifiers import (
    ClientId,
    RefusedEntry,
    ServiceId,
    raw_subject,
    validate_part,
)
from scd_monitor.xroad.mime import (
    HeaderValue,
    MimePart,
    content_type_of,
    leading_headers,
    parse_header_value,
    split_multipart,
)
from scd_monitor.xroad.xml import (
    DEFAULT_MAX_BYTES,
    NS_XROAD,
    Element,
    child,
    child_text,
    children,
    local_name,
    namespace,
    parse_xml,
)

__all__ = [
    "HASH_ALGORITHMS",
    "PRIVATE_PARAMETERS",
    "SHARED_PARAMETERS",
    "AnchorSource",
    "CentralService",
    "ConfigurationAnchor",
    "ConfigurationDirectory",
    "DirectoryPart",
    "DirectorySignature",
    "GlobalConf",
    "ManagementService",
    "Member",
    "PrivateParameters",
    "SecurityServer",
    "SharedParameters",
    "digest",
    "parse_configuration_anchor",
    "parse_configuration_directory",
    "parse_private_parameters",
    "parse_shared_parameters",
    "verify_directory_signature",
    "verify_part",
]

SHARED_PARAMETERS = "SHARED-PARAMETERS"
PRIVATE_PARAMETERS = "PRIVATE-PARAMETERS"

HASH_ALGORITHMS: dict[str, str] = {
    "http://www.w3.org/2000/09/xmldsig#sha1": "sha1",
    "http://www.w3.org/2001/04/xmldsig-more#sha224": "sha224",
    "http://www.w3.org/2001/04/xmlenc#sha256": "sha256",
    "http://www.w3.org/2001/04/xmldsig-more#sha384": "sha384",
    "http://www.w3.org/2001/04/xmlenc#sha384": "sha384",
    "http://www.w3.org/2001/04/xmlenc#sha512": "sha512",
}
"""XML-DSig digest identifiers (PR-GCONF §2.4 → [XMLDSIG] §6.2) → hashlib names."""

_HASHES: dict[str, type[hashes.HashAlgorithm]] = {
    "sha1": hashes.SHA1,
    "sha224": hashes.SHA224,
    "sha256": hashes.SHA256,
    "sha384": hashes.SHA384,
    "sha512": hashes.SHA512,
}
_MORE = "http://www.w3.org/2001/04/xmldsig-more#"
_MGF1 = "http://www.w3.org/2007/05/xmldsig-more#"
_SIGNATURE_ALGORITHMS: dict[str, tuple[str, str]] = {
    "http://www.w3.org/2000/09/xmldsig#rsa-sha1": ("rsa", "sha1"),
    **{f"{_MORE}rsa-{name}": ("rsa", name) for name in ("sha224", "sha256", "sha384", "sha512")},
    **{f"{_MGF1}{name}-rsa-MGF1": ("rsa-pss", name) for name in ("sha256", "sha384", "sha512")},
    **{f"{_MORE}ecdsa-{name}": ("ecdsa", name) for name in ("sha256", "sha384", "sha512")},
}
"""XML-DSig signature identifiers (PR-GCONF §2.3 → [XMLDSIG] §6.4) this module checks."""


# -- the directory ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DirectoryPart:
    """One file the directory lists, and the digest the file must have."""

    location: str
    """``Content-location`` as sent; relative to the directory's URL."""
    hash_algorithm: str
    """``Hash-algorithm-id``, an XML-DSig digest URI."""
    digest: bytes
    content_identifier: str | None = None
    """``SHARED-PARAMETERS``, ``PRIVATE-PARAMETERS``, or an installation's own."""
    instance: str | None = None
    """The ``instance`` parameter of ``Content-identifier``."""
    file_name: str | None = None


@dataclass(frozen=True, slots=True)
class DirectorySignature:
    """The second part of the signed configuration (PR-GCONF §2.3)."""

    algorithm: str
    value: bytes
    cert_hash: bytes | None
    cert_hash_algorithm: str | None


@dataclass(frozen=True, slots=True)
class ConfigurationDirectory:
    """A parsed signed directory: validity, version, the files it lists, the signature."""

    expires_at: datetime
    version: int | None
    parts: tuple[DirectoryPart, ...]
    signed_data: bytes
    """The raw body of the first MIME part: what the signature covers."""
    signature: DirectorySignature

    def parts_of(self, content_identifier: str, instance: str | None = None) -> list[DirectoryPart]:
        """The parts with this content identifier (and instance, when given)."""
        return [
            part
            for part in self.parts
            if part.content_identifier == content_identifier
            and (instance is None or part.instance == instance)
        ]


def parse_configuration_directory(
    body: bytes, content_type: str | None, *, max_bytes: int = DEFAULT_MAX_BYTES
) -> ConfigurationDirectory:
    """Parse a downloaded signed configuration directory (PR-GCONF §2.3, §2.4, A.2).

    Read as X-Road's own configuration client reads it (``ConfigurationParser``, Apache
    mime4j), so that what real central servers and configuration proxies serve is read:

    * the media type and boundary come from the header block the body starts with when
      there is one (``Content-Type: multipart/related; …`` as the first line: servers
      write the whole MIME entity to a file that nginx serves as
      ``application/octet-stream``), else from the HTTP ``content_type`` (the shape
      PR-GCONF §2.3 describes);
    * part header parameters may be in double or single quotes (``instance='CO'``);
    * the directory (the inner multipart) may end without its closing delimiter, with a
      bare ``--boundary`` (central servers up to X-Road 7.2) or with nothing (X-Road's
      own test directories). The outer multipart must be closed, so a cut download is
      still refused; the signature covers the inner one.
    """
    what = "configuration directory"
    if len(body) > max_bytes:
        raise XRoadProtocolError(
            f"{what}: {len(body)} bytes is over the limit of {max_bytes} bytes",
            kind="too_large",
        )
    outer, where, start = _envelope_type(body, content_type, what)
    if outer.value != "multipart/related":
        raise XRoadProtocolError(
            f"{what}: Content-Type is {outer.value or 'missing'!s} ({where}), "
            "expected multipart/related"
        )
    boundary = outer.params.get("boundary")
    if not boundary:
        raise XRoadProtocolError(f"{what}: multipart/related without a boundary ({where})")
    envelope = split_multipart(body[start:], boundary, what=what)
    if len(envelope) != 2:
        raise XRoadProtocolError(
            f"{what}: signed configuration has {len(envelope)} parts, expected 2 "
            "(the directory and its signature)"
        )
    directory_part, signature_part = envelope
    inner = directory_part.content_type
    if inner.value != "multipart/mixed" or not inner.params.get("boundary"):
        raise XRoadProtocolError(
            f"{what}: first part is {inner.value or 'untyped'}, expected multipart/mixed "
            "with a boundary"
        )
    entries = split_multipart(
        directory_part.body, inner.params["boundary"], what=what, unclosed=True
    )
    if not entries:
        raise XRoadProtocolError(f"{what}: the directory is empty")
    expires_at, version = _directory_header(entries[0], what)
    parts = tuple(
        _directory_entry(entry, f"{what}, entry #{index + 2}")
        for index, entry in enumerate(entries[1:])
    )
    return ConfigurationDirectory(
        expires_at=expires_at,
        version=version,
        parts=parts,
        signed_data=directory_part.body,
        signature=_signature(signature_part, what),
    )


def _envelope_type(
    body: bytes, content_type: str | None, what: str
) -> tuple[HeaderValue, str, int]:
    """The signed configuration's media type, where it was read, and where the
    multipart starts in ``body``: the body's own header block first (as X-Road's client
    reads it), else the HTTP header."""
    entity = leading_headers(body, what=what)
    if entity is not None:
        headers, start = entity
        raw = next((value for name, value in headers if name.lower() == "content-type"), None)
        if raw is not None:
            return content_type_of(raw), "first line of the body", start
    if content_type:
        return content_type_of(content_type), "HTTP header", 0
    return content_type_of(None), "neither in the HTTP header nor in the body", 0


def _directory_header(entry: MimePart, what: str) -> tuple[datetime, int | None]:
    raw_expiry = entry.header("expire-date")
    if raw_expiry is None:
        raise XRoadProtocolError(f"{what}: the first entry has no Expire-date header")
    expires_at = _parse_instant(raw_expiry, f"{what}: Expire-date")
    raw_version = entry.header("version")
    version: int | None = None
    if raw_version is not None:
        if not raw_version.strip().isdigit():
            raise XRoadProtocolError(f"{what}: Version {raw_version!r} is not an integer")
        version = int(raw_version)
    return expires_at, version


def _parse_instant(raw: str, what: str) -> datetime:
    text = raw.strip()
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise XRoadProtocolError(f"{what} {raw!r} is not an ISO 8601 date and time") from None
    if parsed.tzinfo is None:  # the protocol says UTC
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def _directory_entry(entry: MimePart, what: str) -> DirectoryPart:
    location = entry.header("content-location")
    algorithm = entry.header("hash-algorithm-id")
    if not location:
        raise XRoadProtocolError(f"{what}: no Content-location")
    if not algorithm:
        raise XRoadProtocolError(f"{what}: no Hash-algorithm-id")
    algorithm = algorithm.strip()
    if algorithm not in HASH_ALGORITHMS:
        raise XRoadProtocolError(f"{what}: unsupported Hash-algorithm-id {algorithm!r}")
    encoding = (entry.header("content-transfer-encoding") or "base64").strip().lower()
    if encoding != "base64":
        raise XRoadProtocolError(f"{what}: Content-transfer-encoding is {encoding}, not base64")
    value = _b64(entry.body, f"{what}: digest")
    expected = hashlib.new(HASH_ALGORITHMS[algorithm]).digest_size
    if len(value) != expected:
        raise XRoadProtocolError(
            f"{what}: digest of {location} is {len(value)} bytes, "
            f"{HASH_ALGORITHMS[algorithm]} digests are {expected}"
        )
    identifier = entry.header("content-identifier")
    parsed = parse_header_value(identifier, single_quotes=True) if identifier else None
    return DirectoryPart(
        location=location.strip(),
        hash_algorithm=algorithm,
        digest=value,
        content_identifier=parsed.value if parsed else None,
        instance=parsed.params.get("instance") if parsed else None,
        file_name=(entry.header("content-file-name") or "").strip() or None,
    )


def _signature(part: MimePart, what: str) -> DirectorySignature:
    algorithm = (part.header("signature-algorithm-id") or "").strip()
    if not algorithm:
        raise XRoadProtocolError(f"{what}: signature part has no Signature-algorithm-id")
    cert_hash: bytes | None = None
    cert_hash_algorithm: str | None = None
    raw_hash = part.header("verification-certificate-hash")
    if raw_hash:
        parsed = parse_header_value(raw_hash, single_quotes=True)
        cert_hash = _b64(parsed.value.encode("ascii", "replace"), f"{what}: certificate hash")
        cert_hash_algorithm = parsed.params.get("hash-algorithm-id")
    return DirectorySignature(
        algorithm=algorithm,
        value=_b64(part.body, f"{what}: signature"),
        cert_hash=cert_hash,
        cert_hash_algorithm=cert_hash_algorithm,
    )


def _b64(raw: bytes, what: str) -> bytes:
    try:
        value = base64.b64decode(b"".join(raw.split()), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise XRoadProtocolError(f"{what} is not valid base64: {exc}") from None
    if not value:
        raise XRoadProtocolError(f"{what} is empty")
    return value


def digest(algorithm: str, content: bytes) -> bytes:
    """``content``'s digest by an XML-DSig digest URI; protocol error if unknown."""
    name = HASH_ALGORITHMS.get(algorithm)
    if name is None:
        raise XRoadProtocolError(f"unsupported hash algorithm {algorithm!r}")
    return hashlib.new(name, content).digest()


def verify_part(part: DirectoryPart, content: bytes) -> None:
    """Raise :class:`XRoadProtocolError` unless ``content`` has the digest the directory
    lists for ``part`` (PR-GCONF §2.6, step 4.2)."""
    if digest(part.hash_algorithm, content) != part.digest:
        raise XRoadProtocolError(
            f"configuration part {part.location}: content does not match the directory's "
            f"{HASH_ALGORITHMS[part.hash_algorithm]} hash (changed, tampered with or "
            "truncated)"
        )


def verify_directory_signature(
    directory: ConfigurationDirectory, verification_certs: Sequence[bytes]
) -> None:
    """Check the directory's signature with one of ``verification_certs`` (PEM or DER).

    The certificate used is the one matching ``Verification-certificate-hash`` when the
    signature names one; otherwise each certificate is tried. Raises
    :class:`XRoadProtocolError` when none verifies. See the module docstring for what
    has and has not been checked against real central servers.
    """
    what = "configuration directory signature"
    signature = directory.signature
    scheme = _SIGNATURE_ALGORITHMS.get(signature.algorithm)
    if scheme is None:
        raise XRoadProtocolError(f"{what}: unsupported algorithm {signature.algorithm!r}")
    certs = [_load_cert(raw, what) for raw in verification_certs]
    if not certs:
        raise XRoadProtocolError(f"{what}: no verification certificate to check it with")
    if signature.cert_hash is not None:
        algorithm = signature.cert_hash_algorithm or ""
        if algorithm not in HASH_ALGORITHMS:
            raise XRoadProtocolError(f"{what}: unsupported certificate hash {algorithm!r}")
        certs = [cert for cert in certs if _cert_digest(algorithm, cert) == signature.cert_hash]
        if not certs:
            raise XRoadProtocolError(
                f"{what}: signed with a certificate that is not among the anchor's"
            )
    for cert in certs:
        if _verifies(cert, scheme, signature.value, directory.signed_data):
            return
    raise XRoadProtocolError(f"{what}: does not verify (the directory may have been altered)")


def _cert_digest(algorithm: str, cert: x509.Certificate) -> bytes:
    return digest(algorithm, cert.public_bytes(serialization.Encoding.DER))


def _load_cert(raw: bytes, what: str) -> x509.Certificate:
    try:
        if raw.lstrip().startswith(b"-----BEGIN"):
            return x509.load_pem_x509_certificate(raw)
        return x509.load_der_x509_certificate(raw)
    except ValueError as exc:
        raise XRoadProtocolError(f"{what}: unreadable verification certificate: {exc}") from None


def _verifies(cert: x509.Certificate, scheme: tuple[str, str], value: bytes, data: bytes) -> bool:
    kind, hash_name = scheme
    algorithm = _HASHES[hash_name]()
    key = cert.public_key()
    try:
        if kind in ("rsa", "rsa-pss") and isinstance(key, rsa.RSAPublicKey):
            pad: padding.AsymmetricPadding = (
                padding.PKCS1v15()
                if kind == "rsa"
                else padding.PSS(mgf=padding.MGF1(algorithm), salt_length=algorithm.digest_size)
            )
            key.verify(value, data, pad, algorithm)
            return True
        if kind == "ecdsa" and isinstance(key, ec.EllipticCurvePublicKey):
            size = (key.curve.key_size + 7) // 8
            if len(value) == 2 * size:  # XML-DSig's r || s, not DER
                r = int.from_bytes(value[:size], "big")
                s = int.from_bytes(value[size:], "big")
                value = encode_dss_signature(r, s)
            key.verify(value, data, ec.ECDSA(algorithm))
            return True
    except (InvalidSignature, UnsupportedAlgorithm, ValueError):
        return False
    return False


# -- the anchor ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AnchorSource:
    download_url: str
    verification_certs: tuple[bytes, ...]
    """DER certificates (decoded from the anchor's base64)."""


@dataclass(frozen=True, slots=True)
class ConfigurationAnchor:
    """Where to download an instance's configuration and how to check it (§2.2)."""

    instance: str
    generated_at: datetime | None
    sources: tuple[AnchorSource, ...]


def parse_configuration_anchor(
    data: bytes, *, max_bytes: int = DEFAULT_MAX_BYTES
) -> ConfigurationAnchor:
    """A ``configurationAnchor`` file (PR-GCONF §2.2, A.1, Annex E).

    The download address is read from ``downloadURL`` (the schema's name) or
    ``downloadURI`` (the example's).
    """
    what = "configuration anchor"
    root = parse_xml(data, what=what, max_bytes=max_bytes)
    if local_name(root.tag) != "configurationAnchor":
        raise XRoadProtocolError(f"{what}: root element is <{local_name(root.tag)}>")
    return _anchor(root, what)


def _anchor(root: Element, what: str) -> ConfigurationAnchor:
    """An anchor element: the anchor file's root or a private parameters'
    ``configurationAnchor`` (the same ``ConfigurationAnchorType``)."""
    instance = child_text(root, "instanceIdentifier")
    if not instance:
        raise XRoadProtocolError(f"{what}: no instanceIdentifier")
    raw_generated = child_text(root, "generatedAt")
    generated = _parse_instant(raw_generated, f"{what}: generatedAt") if raw_generated else None
    sources = []
    for index, element in enumerate(children(root, "source")):
        where = f"{what}, source #{index + 1}"
        url = child_text(element, "downloadURL") or child_text(element, "downloadURI")
        if not url:
            raise XRoadProtocolError(f"{where}: no downloadURL")
        certs = tuple(
            _b64(cert.text.encode("ascii", "replace") if cert.text else b"", f"{where}: cert")
            for cert in children(element, "verificationCert")
        )
        sources.append(AnchorSource(download_url=url, verification_certs=certs))
    if not sources:
        raise XRoadProtocolError(f"{what}: no source")
    return ConfigurationAnchor(instance=instance, generated_at=generated, sources=tuple(sources))


# -- private parameters ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ManagementService:
    """Where security servers send management requests (private parameters)."""

    auth_cert_reg_service_address: str
    provider: ClientId | None
    """``managementRequestServiceProviderId``: the subsystem that serves them."""


@dataclass(frozen=True, slots=True)
class PrivateParameters:
    """An instance's private parameters (PR-GCONF Annex C, versions 2 and 3)."""

    instance: str
    federated_anchors: tuple[ConfigurationAnchor, ...]
    """``configurationAnchor``: the federated instances and where their
    configuration is downloaded."""
    management_service: ManagementService | None
    timestamping_interval: timedelta | None


def parse_private_parameters(
    data: bytes, *, max_bytes: int = DEFAULT_MAX_BYTES
) -> PrivateParameters:
    """A private-parameters file, version 2 or 3 (PR-GCONF Annex C; the two differ
    only in their schema's name). Elements this module does not read are ignored."""
    what = "private parameters"
    root = parse_xml(data, what=what, max_bytes=max_bytes)
    if local_name(root.tag) != "conf" or namespace(root.tag) != NS_XROAD:
        raise XRoadProtocolError(
            f"{what}: root element is {root.tag!r}, expected <conf> in {NS_XROAD!r}"
        )
    instance = child_text(root, "instanceIdentifier")
    if not instance:
        raise XRoadProtocolError(f"{what}: no instanceIdentifier")
    try:
        validate_part(instance, "instanceIdentifier")
    except ValueError as exc:
        raise XRoadProtocolError(f"{what}: {exc}") from None
    anchors = tuple(
        _anchor(element, f"{what}, configurationAnchor #{index + 1}")
        for index, element in enumerate(children(root, "configurationAnchor"))
    )
    service: ManagementService | None = None
    element = child(root, "managementService")
    if element is not None:
        where = f"{what}, managementService"
        provider: ClientId | None = None
        provider_element = child(element, "managementRequestServiceProviderId")
        if provider_element is not None:
            try:
                provider = ClientId(
                    _text(provider_element, "xRoadInstance", where),
                    _text(provider_element, "memberClass", where),
                    _text(provider_element, "memberCode", where),
                    child_text(provider_element, "subsystemCode") or None,
                )
            except ValueError as exc:
                raise XRoadProtocolError(f"{where}: invalid provider: {exc}") from None
        service = ManagementService(
            auth_cert_reg_service_address=child_text(element, "authCertRegServiceAddress") or "",
            provider=provider,
        )
    interval: timedelta | None = None
    raw_interval = child_text(root, "timeStampingIntervalSeconds")
    if raw_interval:
        if not raw_interval.isdigit():
            raise XRoadProtocolError(
                f"{what}: timeStampingIntervalSeconds {raw_interval!r} is not an integer"
            )
        interval = timedelta(seconds=int(raw_interval))
    return PrivateParameters(
        instance=instance,
        federated_anchors=anchors,
        management_service=service,
        timestamping_interval=interval,
    )


# -- shared parameters -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Member:
    """An X-Road member of an instance, with the codes of its subsystems."""

    member_class: str
    member_code: str
    name: str
    subsystems: tuple[str, ...] = ()
    subsystem_names: dict[str, str] = field(default_factory=dict, compare=False)
    """Subsystem code → name, where the configuration gives one (version 5)."""

    def client_id(self, instance: str, subsystem: str | None = None) -> ClientId:
        return ClientId(instance, self.member_class, self.member_code, subsystem)


@dataclass(frozen=True, slots=True)
class SecurityServer:
    """A registered security server, its owner and its registered clients."""

    owner: ClientId
    server_code: str
    address: str | None
    clients: tuple[ClientId, ...] = ()
    in_maintenance: bool = False
    """Version 5: the server is marked as in maintenance mode."""
    maintenance_message: str | None = None


@dataclass(frozen=True, slots=True)
class CentralService:
    service_code: str
    implementing_service: ServiceId | None


@dataclass(frozen=True, slots=True)
class SharedParameters:
    """What one instance's shared parameters say about its members and servers."""

    instance: str
    members: tuple[Member, ...]
    security_servers: tuple[SecurityServer, ...]
    central_services: tuple[CentralService, ...] = ()

    def clients(self) -> list[ClientId]:
        """Every member and subsystem, members first, in document order."""
        found = [member.client_id(self.instance) for member in self.members]
        for member in self.members:
            found.extend(member.client_id(self.instance, code) for code in member.subsystems)
        return found


def parse_shared_parameters(
    data: bytes,
    *,
    max_bytes: int = DEFAULT_MAX_BYTES,
    refused: list[RefusedEntry] | None = None,
) -> SharedParameters:
    """A shared-parameters file, version 2 to 5 (PR-GCONF Annex B).

    Without ``refused`` any invalid entry fails the file. With a list, a member with an
    invalid identifier (and its subsystems), an invalid subsystem, a security server
    whose owner was refused or is unknown, and a central service with an invalid
    implementing service are left out and appended to it; a security server keeps the
    clients that could be resolved. The instance identifier must be valid in any case.
    """
    what = "shared parameters"
    root = parse_xml(data, what=what, max_bytes=max_bytes)
    if local_name(root.tag) != "conf" or namespace(root.tag) != NS_XROAD:
        raise XRoadProtocolError(
            f"{what}: root element is {root.tag!r}, expected <conf> in {NS_XROAD!r}"
        )
    instance = child_text(root, "instanceIdentifier")
    if not instance:
        raise XRoadProtocolError(f"{what}: no instanceIdentifier")
    try:
        validate_part(instance, "instanceIdentifier")
    except ValueError as exc:
        raise XRoadProtocolError(f"{what}: {exc}") from None
    by_ref: dict[str, ClientId] = {}
    members: list[Member] = []
    for index, element in enumerate(children(root, "member")):
        where = f"{what}, member #{index + 1}"
        try:
            members.append(_member(element, instance, by_ref, where, refused))
        except XRoadProtocolError as exc:
            _refuse(refused, exc, _member_subject(element, instance), where)
    servers: list[SecurityServer] = []
    for index, element in enumerate(children(root, "securityServer")):
        where = f"{what}, securityServer #{index + 1}"
        try:
            servers.append(_security_server(element, by_ref, where, refused))
        except XRoadProtocolError as exc:
            subject = raw_subject([child_text(element, "owner"), child_text(element, "serverCode")])
            _refuse(refused, exc, subject, where)
    central: list[CentralService] = []
    for index, element in enumerate(children(root, "centralService")):
        where = f"{what}, centralService #{index + 1}"
        try:
            central.append(_central_service(element, where))
        except XRoadProtocolError as exc:
            _refuse(
                refused, exc, raw_subject([instance, child_text(element, "serviceCode")]), where
            )
    return SharedParameters(
        instance=instance,
        members=tuple(members),
        security_servers=tuple(servers),
        central_services=tuple(central),
    )


def _refuse(
    refused: list[RefusedEntry] | None, exc: XRoadProtocolError, subject: str, where: str
) -> None:
    """Keep the entry's error for the caller (lenient mode), or raise it (strict)."""
    if refused is None:
        raise exc
    refused.append(RefusedEntry(subject, exc.message.removeprefix(where).lstrip(": "), where))


def _member_subject(element: Element, instance: str) -> str:
    member_class = child(element, "memberClass")
    return raw_subject(
        [
            instance,
            child_text(member_class, "code") if member_class is not None else None,
            child_text(element, "memberCode"),
        ]
    )


def _text(element: Element, name: str, what: str) -> str:
    value = child_text(element, name)
    if not value:
        raise XRoadProtocolError(f"{what}: no {name}")
    return value


def _register(by_ref: dict[str, ClientId], element: Element, client: ClientId, what: str) -> None:
    ref = element.get("id")
    if ref is None:
        return
    if ref in by_ref:
        raise XRoadProtocolError(f"{what}: id {ref!r} is used twice")
    by_ref[ref] = client


def _member(
    element: Element,
    instance: str,
    by_ref: dict[str, ClientId],
    what: str,
    refused: list[RefusedEntry] | None = None,
) -> Member:
    member_class_element = child(element, "memberClass")
    if member_class_element is None:
        raise XRoadProtocolError(f"{what}: no memberClass")
    member_class = _text(member_class_element, "code", f"{what}, memberClass")
    member_code = _text(element, "memberCode", what)
    where = f"{what} ({member_class}/{member_code})"
    try:
        client = ClientId(instance, member_class, member_code)
    except ValueError as exc:
        raise XRoadProtocolError(f"{where}: invalid identifier: {exc}") from None
    _register(by_ref, element, client, where)
    codes: list[str] = []
    names: dict[str, str] = {}
    for subsystem in children(element, "subsystem"):
        try:
            code = _text(subsystem, "subsystemCode", f"{where}, subsystem")
            try:
                subsystem_id = client.subsystem(code)
            except ValueError as exc:
                raise XRoadProtocolError(f"{where}: invalid subsystem: {exc}") from None
        except XRoadProtocolError as exc:
            subject = raw_subject([str(client), child_text(subsystem, "subsystemCode")])
            _refuse(refused, exc, subject, where)
            continue
        _register(by_ref, subsystem, subsystem_id, where)
        codes.append(code)
        name = child_text(subsystem, "subsystemName")
        if name:
            names[code] = name
    return Member(
        member_class=member_class,
        member_code=member_code,
        name=child_text(element, "name") or "",
        subsystems=tuple(codes),
        subsystem_names=names,
    )


def _resolve(by_ref: dict[str, ClientId], ref: str | None, what: str) -> ClientId:
    if not ref:
        raise XRoadProtocolError(f"{what}: empty reference")
    found = by_ref.get(ref)
    if found is None:
        raise XRoadProtocolError(f"{what}: refers to unknown id {ref!r}")
    return found


def _security_server(
    element: Element,
    by_ref: dict[str, ClientId],
    what: str,
    refused: list[RefusedEntry] | None = None,
) -> SecurityServer:
    code = _text(element, "serverCode", what)
    where = f"{what} ({code})"
    try:
        validate_part(code, "server code")
    except ValueError as exc:
        raise XRoadProtocolError(f"{where}: invalid identifier: {exc}") from None
    owner = _resolve(by_ref, child_text(element, "owner"), f"{where}: owner")
    resolved: list[ClientId] = []
    for ref in children(element, "client"):
        text = (ref.text or "").strip()
        try:
            resolved.append(_resolve(by_ref, text, f"{where}: client"))
        except XRoadProtocolError as exc:
            _refuse(refused, exc, f"{owner}/{code}: client {text}", where)
    clients = tuple(resolved)
    maintenance = child(element, "inMaintenanceMode")
    in_maintenance = False
    message: str | None = None
    if maintenance is not None:
        own_text = (maintenance.text or "").strip().lower()
        in_maintenance = own_text != "false"
        message = child_text(maintenance, "message") or None
    return SecurityServer(
        owner=owner,
        server_code=code,
        address=child_text(element, "address") or None,
        clients=clients,
        in_maintenance=in_maintenance,
        maintenance_message=message,
    )


def _central_service(element: Element, what: str) -> CentralService:
    code = _text(element, "serviceCode", what)
    implementing = child(element, "implementingService")
    service: ServiceId | None = None
    if implementing is not None:
        try:
            provider = ClientId(
                _text(implementing, "xRoadInstance", what),
                _text(implementing, "memberClass", what),
                _text(implementing, "memberCode", what),
                child_text(implementing, "subsystemCode") or None,
            )
            service = ServiceId(
                provider,
                _text(implementing, "serviceCode", what),
                child_text(implementing, "serviceVersion") or None,
            )
        except ValueError as exc:
            raise XRoadProtocolError(f"{what}: invalid implementing service: {exc}") from None
    return CentralService(service_code=code, implementing_service=service)


# -- the whole -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class GlobalConf:
    """A downloaded global configuration: its validity and the shared parameters in it."""

    expires_at: datetime
    version: int | None
    shared: tuple[SharedParameters, ...]
    fetched_at: datetime
    source_url: str = ""
    private: tuple[PrivateParameters, ...] = ()
    """The private parameters the directory lists (an internal configuration's), each
    checked against the directory's hash like the shared ones."""
    directory: ConfigurationDirectory | None = None
    signature_verified: bool = False
    """Whether the directory's signature was checked (only with anchor certificates)."""

    def is_fresh(self, now: datetime) -> bool:
        """Whether the directory is still valid at ``now`` (PR-GCONF §2.4)."""
        return now < self.expires_at

    def expires_in(self, now: datetime) -> timedelta:
        """Time left until expiry at ``now``; negative once expired."""
        return self.expires_at - now

    def instance(self, code: str) -> SharedParameters | None:
        return next((shared for shared in self.shared if shared.instance == code), None)

    def private_of(self, code: str) -> PrivateParameters | None:
        return next((private for private in self.private if private.instance == code), None)
