"""A fake X-Road configuration source on loopback: the signed global configuration.

Serves an :class:`~scd_simulator.directory.XRoadDirectory` as a central server does
(PR-GCONF): signed directories, their parts, and the anchor clients verify them with.
By default the directory is written byte for byte as a real central server writes it,
not as PR-GCONF §2.3 describes it (see :data:`DirectoryShape`).
"""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Literal
from urllib.parse import parse_qs
from xml.sax.saxutils import escape

import structlog
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from scd_simulator.certs import self_signed_certificate
from scd_simulator.directory import (
    CONFIGURATION_VERSIONS,
    HASH_URI,
    XML_DECLARATION,
    XROAD_NS,
    HashAlgorithm,
    XRoadDirectory,
    b64,
)
from scd_simulator.net import Lifecycle, base_url, check_loopback
from scd_simulator.rawhttp import Connection, HttpServer, Request, Response

__all__ = ["DIRECTORY_SHAPES", "DirectoryShape", "FakeConfigurationSource"]

log = structlog.get_logger()

DirectoryShape = Literal["central-server", "legacy", "strict"]
"""How the signed directory is written:

* ``central-server`` (the default) — X-Road 7.3 and later (``DirectoryContentBuilder``,
  ``DirectoryContentSigner``, ``MultipartMessage`` in X-Road's ``globalconf-generator``):
  the whole MIME entity is written to a file and nginx serves it as
  ``application/octet-stream``, so ``Content-Type: multipart/related; …`` is the first
  line of the body; CRLF line breaks; ``Content-identifier: …; instance='CO'`` in single
  quotes; no ``Content-file-name``; the directory closed with ``--boundary--``.
* ``legacy`` — central servers up to X-Road 7.2 (the Ruby ``DirectoryContentBuilder``
  and ``SignedDirectoryDistributor`` of ``center-service``): the same, with bare LF line
  breaks and the directory ending with a bare ``--boundary`` (no closing delimiter).
* ``strict`` — PR-GCONF §2.3 as written: ``multipart/related`` in the HTTP header, the
  body starting with the delimiter, ``instance="CO"`` in double quotes, a
  ``Content-file-name`` per part, every multipart closed.
"""

DIRECTORY_SHAPES: tuple[DirectoryShape, ...] = ("central-server", "legacy", "strict")

_SIGNATURE_URI: dict[HashAlgorithm, str] = {
    "sha256": "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256",
    "sha512": "http://www.w3.org/2001/04/xmldsig-more#rsa-sha512",
}


def _digest(algorithm: HashAlgorithm, data: bytes) -> bytes:
    return hashlib.new(algorithm, data).digest()


def _hash(algorithm: HashAlgorithm) -> hashes.HashAlgorithm:
    return hashes.SHA512() if algorithm == "sha512" else hashes.SHA256()


def _iso(instant: datetime) -> str:
    return instant.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True, slots=True)
class _Snapshot:
    revision: int
    version: int
    stamp: str
    files: dict[str, bytes]
    """``private-params.xml``, ``shared-params.xml`` → their bytes."""


class FakeConfigurationSource(Lifecycle):
    """A central server's configuration source (PR-GCONF §2.3–2.7) over a directory.

    Each change of the directory (its :attr:`~XRoadDirectory.revision`) publishes new
    parts under a new ``/V{version}/{stamp}/`` path; the last ``keep`` stay downloadable,
    so a client fetching parts of a directory it just read always gets matching bytes.
    The directory is signed with an RSA key (``rsa-sha512`` or ``rsa-sha256``, following
    ``hash_algorithm``) whose certificate is :attr:`verification_cert_der`.

    It serves ``GET /internalconf`` (private and shared parameters) and ``GET
    /externalconf`` (shared parameters only, what federated instances download),
    ``?version=2`` or ``3`` (``default_version`` without the parameter), ``404`` for any
    other version and for versions below ``min_version`` (a central server whose
    minimum global configuration version is raised stops generating the older ones;
    without the parameter it then answers ``404`` too, when ``default_version`` is below
    the minimum). The answer is
    ``multipart/related`` (written in the ``shape`` asked for, :data:`DirectoryShape`):
    the directory (``multipart/mixed``: a header-only entry with
    ``Expire-date`` and ``Version``, then one entry per part with ``Content-location`` and
    the base64 digest of the part named by ``Hash-algorithm-id``) and its RSA signature
    over the directory's bytes, with ``Signature-algorithm-id`` and
    ``Verification-certificate-hash``. The verification certificate and a configuration
    anchor (Annex E) are exposed for clients to verify with. Simplified against real
    X-Road: the shared parameters carry no approved CAs or TSAs; private parameters carry
    no federated anchors.
    """

    def __init__(
        self,
        directory: XRoadDirectory,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        hash_algorithm: HashAlgorithm = "sha512",
        default_version: int = 2,
        min_version: int = 2,
        shape: DirectoryShape = "central-server",
        keep: int = 5,
        signing_key: rsa.RSAPrivateKey | None = None,
    ) -> None:
        check_loopback(host)
        if default_version not in CONFIGURATION_VERSIONS:
            raise ValueError(f"default_version must be one of {CONFIGURATION_VERSIONS}")
        if min_version not in CONFIGURATION_VERSIONS:
            raise ValueError(f"min_version must be one of {CONFIGURATION_VERSIONS}")
        if shape not in DIRECTORY_SHAPES:
            raise ValueError(f"shape must be one of {DIRECTORY_SHAPES}")
        if hash_algorithm not in HASH_URI:
            raise ValueError(f"hash_algorithm must be one of {tuple(HASH_URI)}")
        self.directory = directory
        self.host = host
        self.hash_algorithm: HashAlgorithm = hash_algorithm
        self.default_version = default_version
        self.min_version = min_version
        self.shape: DirectoryShape = shape
        self.keep = max(1, keep)
        self.requests: list[Request] = []
        self._port = port
        self._key = signing_key or rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self._cert = self_signed_certificate(
            self._key,
            f"{directory.instance} configuration signing",
            not_after=datetime.now(UTC) + timedelta(days=3650),
        )
        self._snapshots: dict[int, list[_Snapshot]] = {}
        self._files: dict[str, bytes] = {}
        self._seq = 0
        self._status: int | None = None
        self._delay = 0.0
        self._tamper: Literal["hash", "signature"] | None = None
        self._server: HttpServer | None = None

    # -- running -----------------------------------------------------------------------

    async def start(self) -> None:
        if self._server is not None:
            raise RuntimeError("configuration source already started")
        server = HttpServer(
            self._handle, self.host, self._port, server_header="scd-monitor-xroad-simulator"
        )
        await server.start()
        self._server = server

    async def stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            await server.stop()

    # -- inspecting and steering -------------------------------------------------------

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("the configuration source is not running (start it first)")
        return base_url("http", self.host, self._server.port)

    @property
    def internal_url(self) -> str:
        """The signed directory with private and shared parameters."""
        return self.url + "/internalconf"

    @property
    def external_url(self) -> str:
        """The signed directory with the shared parameters only (for federation)."""
        return self.url + "/externalconf"

    @property
    def verification_cert(self) -> x509.Certificate:
        return self._cert

    @property
    def verification_cert_der(self) -> bytes:
        return self._cert.public_bytes(serialization.Encoding.DER)

    @property
    def verification_cert_pem(self) -> bytes:
        return self._cert.public_bytes(serialization.Encoding.PEM)

    def anchor(self, which: Literal["internal", "external"] = "internal") -> bytes:
        """A configuration anchor for this source (PR-GCONF §2.2, Annex E)."""
        url = self.internal_url if which == "internal" else self.external_url
        return (
            f'{XML_DECLARATION}<tns:configurationAnchor xmlns:tns="{XROAD_NS}">\n'
            f"    <generatedAt>{_iso(self.directory.clock.now())}</generatedAt>\n"
            f"    <instanceIdentifier>{escape(self.directory.instance)}</instanceIdentifier>\n"
            f"    <source>\n        <downloadURL>{escape(url)}</downloadURL>\n"
            f"        <verificationCert>{b64(self.verification_cert_der)}</verificationCert>\n"
            "    </source>\n</tns:configurationAnchor>\n"
        ).encode()

    def write_anchor(self, path: Path, which: Literal["internal", "external"] = "internal") -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(self.anchor(which))
        return path

    def set_status(self, status: int | None) -> None:
        """Answer every request with this HTTP status (e.g. 503); ``None`` serves normally."""
        if status is not None and not 200 <= status <= 599:
            raise ValueError(f"not an HTTP status: {status}")
        self._status = status
        log.info("simulator.xroad_conf_status_set", status=status)

    def set_shape(self, shape: DirectoryShape) -> None:
        """Write the signed directory in this shape from the next request on."""
        if shape not in DIRECTORY_SHAPES:
            raise ValueError(f"shape must be one of {DIRECTORY_SHAPES}")
        self.shape = shape

    def set_delay(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("the delay must be >= 0")
        self._delay = seconds

    def set_tamper(self, what: Literal["hash", "signature"] | None) -> None:
        """Serve a wrong part hash or a broken signature, for clients that must notice."""
        if what not in (None, "hash", "signature"):
            raise ValueError("tamper with 'hash', 'signature' or None")
        self._tamper = what

    def shared_parameters(self, version: int | None = None) -> bytes:
        """The shared-parameters bytes a download would reference now."""
        return self._snapshot(version or self.default_version).files["shared-params.xml"]

    # -- serving -----------------------------------------------------------------------

    async def _handle(self, request: Request, conn: Connection) -> Response:
        self.requests.append(request)
        if self._delay:
            await asyncio.sleep(self._delay)
        if self._status is not None:
            return Response(self._status, f"simulated status {self._status}\n".encode())
        if request.method not in ("GET", "HEAD"):
            return Response(405, b"use GET\n", headers=(("Allow", "GET, HEAD"),))
        if request.path in ("/internalconf", "/externalconf"):
            values = parse_qs(request.query).get("version", [str(self.default_version)])
            try:
                version = int(values[-1])
            except ValueError:
                version = -1
            if version not in CONFIGURATION_VERSIONS or version < self.min_version:
                return Response(
                    404, f"configuration version {values[-1]} is not available\n".encode()
                )
            return self._signed_directory(version, internal=request.path == "/internalconf")
        body = self._files.get(request.path)
        if body is None:
            return Response(404, b"no such configuration file\n")
        return Response(200, body, content_type="application/octet-stream")

    def _snapshot(self, version: int) -> _Snapshot:
        snapshots = self._snapshots.setdefault(version, [])
        if snapshots and snapshots[-1].revision == self.directory.revision:
            return snapshots[-1]
        self._seq += 1
        now = self.directory.clock.now().astimezone(UTC)
        stamp = f"{now:%Y%m%d%H%M%S}{self._seq:06d}"
        address = self.url.split("://", 1)[1] if self._server is not None else self.host
        files = {
            "private-params.xml": self.directory.private_parameters(),
            "shared-params.xml": self.directory.shared_parameters(
                version=version,
                source_address=address,
                verification_cert=self.verification_cert_der,
            ),
        }
        snapshot = _Snapshot(self.directory.revision, version, stamp, files)
        snapshots.append(snapshot)
        for name, data in files.items():
            self._files[f"/V{version}/{stamp}/{name}"] = data
        while len(snapshots) > self.keep:
            old = snapshots.pop(0)
            for name in old.files:
                self._files.pop(f"/V{version}/{old.stamp}/{name}", None)
        return snapshot

    def _signed_directory(self, version: int, *, internal: bool) -> Response:
        snapshot = self._snapshot(version)
        algorithm = self.hash_algorithm
        shape = self.shape
        nl = "\n" if shape == "legacy" else "\r\n"
        quote = '"' if shape == "strict" else "'"
        now = self.directory.clock.now()
        inner = f"inner{uuid.uuid4().hex}"
        envelope = f"envelope{uuid.uuid4().hex}"
        lines = [f"--{inner}", f"Expire-date: {_iso(self.directory.expiry(now))}"]
        lines += [f"Version: {version}", ""]
        parts = [("PRIVATE-PARAMETERS", "private-params.xml")] if internal else []
        parts.append(("SHARED-PARAMETERS", "shared-params.xml"))
        for identifier, name in parts:
            data = snapshot.files[name]
            digest = _digest(algorithm, b"tampered" + data if self._tamper == "hash" else data)
            lines += [
                f"--{inner}",
                "Content-type: application/octet-stream",
                "Content-transfer-encoding: base64",
                f"Content-identifier: {identifier}; "
                f"instance={quote}{self.directory.instance}{quote}",
                f"Content-location: /V{version}/{snapshot.stamp}/{name}",
            ]
            if shape == "strict":
                lines.append(f"Content-file-name: {name}")
            lines += [f"Hash-algorithm-id: {HASH_URI[algorithm]}", "", b64(digest)]
        # X-Road 7.3+ closes the directory and ends the line; up to 7.2 a bare delimiter.
        lines += [f"--{inner}"] if shape == "legacy" else [f"--{inner}--"]
        if shape == "central-server":
            lines.append("")
        signed = nl.join(lines).encode("ascii")
        signature = self._key.sign(signed, padding.PKCS1v15(), _hash(algorithm))
        if self._tamper == "signature":
            signature = bytes([signature[0] ^ 0xFF]) + signature[1:]
        cert_hash = b64(_digest(algorithm, self.verification_cert_der))
        content_type = f"multipart/related; charset=UTF-8; boundary={envelope}"
        head = [] if shape == "strict" else [f"Content-Type: {content_type}", ""]
        opening = [
            *head,
            f"--{envelope}",
            f"Content-Type: multipart/mixed; charset=UTF-8; boundary={inner}",
            "",
            "",
        ]
        closing = [
            "",
            f"--{envelope}",
            "Content-Type: application/octet-stream",
            "Content-Transfer-Encoding: base64",
            f"Signature-Algorithm-Id: {_SIGNATURE_URI[algorithm]}",
            f"Verification-certificate-hash: {cert_hash}; "
            f'hash-algorithm-id="{HASH_URI[algorithm]}"',
            "",
            b64(signature),
            f"--{envelope}--",
            "",
        ]
        body = nl.join(opening).encode("ascii") + signed + nl.join(closing).encode("ascii")
        if shape == "strict":
            return Response(200, body, content_type=content_type)
        return Response(200, body, content_type="application/octet-stream")
