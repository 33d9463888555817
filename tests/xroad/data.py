"""Test data for the X-Road tests: fixture files, the shared samples, small local servers.

A plain module (not a conftest): ``from tests.xroad.data import …``.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from scd_simulator.rawhttp import Handler, HttpServer

FIXTURES = Path(__file__).parent / "fixtures"

SHA512 = "http://www.w3.org/2001/04/xmlenc#sha512"
RSA_SHA512 = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha512"


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def shared_v2() -> bytes:
    """The real version 2 shared-parameters sample (``fixtures/shared-params-v2.xml``, a
    copy of the shared sample from nordic-institute/X-Road-Metrics' test resources, MIT;
    see fixtures/README.md), so CI never skips the tests that read it."""
    return fixture("shared-params-v2.xml")


def b64_digest(content: bytes) -> str:
    return base64.b64encode(hashlib.sha512(content).digest()).decode()


def directory_body(
    entries: list[tuple[str, str, str, bytes]],
    *,
    expire_date: str = "2030-01-01T00:00:00Z",
    version: str | None = "2",
    signature: bytes = b"\x00" * 64,
    signature_algorithm: str = RSA_SHA512,
    cert_hash: bytes | None = None,
    newline: str = "\r\n",
) -> tuple[bytes, bytes]:
    """A signed directory shaped as PR-GCONF Annex A.2, and the bytes it signs.

    ``entries``: ``(content identifier, instance, location, file content)``; each gets the
    SHA-512 of its content. Returns ``(body, signed data)``.
    """
    lines = ["--inner", f"Expire-date: {expire_date}"]
    if version is not None:
        lines.append(f"Version: {version}")
    lines.append("")
    for identifier, instance, location, content in entries:
        lines += [
            "--inner",
            "Content-type: application/octet-stream",
            "Content-transfer-encoding: base64",
            f'Content-identifier: {identifier}; instance="{instance}"',
            f"Content-location: {location}",
            f"Hash-algorithm-id: {SHA512}",
            "",
            b64_digest(content),
        ]
    lines.append("--inner--")
    signed = newline.join(lines).encode()
    outer = ["--outer", "Content-Type: multipart/mixed; charset=UTF-8; boundary=inner", ""]
    tail = [
        "--outer",
        "Content-type: application/octet-stream",
        "Content-transfer-encoding: base64",
        f"Signature-algorithm-id: {signature_algorithm}",
    ]
    if cert_hash is not None:
        tail += [
            f"Verification-certificate-hash: {base64.b64encode(cert_hash).decode()};",
            f'    hash-algorithm-id="{SHA512}"',
        ]
    tail += ["", base64.b64encode(signature).decode(), "--outer--", ""]
    body = (
        (newline.join(outer) + newline).encode() + signed + (newline + newline.join(tail)).encode()
    )
    return body, signed


DIRECTORY_CONTENT_TYPE = "multipart/related; charset=UTF-8; boundary=outer"


@asynccontextmanager
async def serve(handler: Handler) -> AsyncIterator[HttpServer]:
    """``handler`` on ``127.0.0.1`` at a free port."""
    async with HttpServer(handler, "127.0.0.1", 0, idle_timeout=5.0) as server:
        yield server


def url(server: HttpServer, path: str = "") -> str:
    return f"http://127.0.0.1:{server.port}{path}"


def signer_certificate(key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey) -> x509.Certificate:
    """A self-signed certificate for ``key``: a configuration source's verification cert."""
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "configuration signer")])
    now = datetime.now(UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=30))
        .sign(key, hashes.SHA256())
    )
