"""Global configuration: the signed directory, shared parameters (v2 real sample, v5),
the anchor, hashes and signatures."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from scd_monitor.xroad import (
    ClientId,
    GlobalConf,
    Member,
    SecurityServer,
    ServiceId,
    SharedParameters,
    XRoadProtocolError,
    parse_configuration_anchor,
    parse_configuration_directory,
    parse_shared_parameters,
    verify_directory_signature,
    verify_part,
)
from tests.xroad.data import (
    DIRECTORY_CONTENT_TYPE,
    directory_body,
    fixture,
    shared_v2,
    signer_certificate,
)

EXAMPLE_TYPE = "multipart/related; charset=UTF-8; boundary=envelopeboundary"


# -- the directory ---------------------------------------------------------------------


def test_directory_as_in_pr_gconf_a2() -> None:
    directory = parse_configuration_directory(fixture("directory-example.mime"), EXAMPLE_TYPE)
    assert directory.expires_at == datetime(2014, 5, 20, 17, 42, 55, tzinfo=UTC)
    assert directory.version == 2
    assert [(p.content_identifier, p.instance, p.location) for p in directory.parts] == [
        ("PRIVATE-PARAMETERS", "CO", "/private-parameters.xml"),
        ("SHARED-PARAMETERS", "CO", "/shared-parameters.xml"),
    ]
    assert directory.parts[1].digest == hashlib.sha512(b"shared-parameters example").digest()
    assert [p.location for p in directory.parts_of("SHARED-PARAMETERS", "CO")] == [
        "/shared-parameters.xml"
    ]
    assert directory.parts_of("SHARED-PARAMETERS", "CO-QA") == []
    signature = directory.signature
    assert signature.algorithm == "http://www.w3.org/2001/04/xmldsig-more#rsa-sha512"
    assert signature.cert_hash == hashlib.sha512(b"certificate example").digest()
    assert signature.cert_hash_algorithm == "http://www.w3.org/2001/04/xmlenc#sha512"
    assert directory.signed_data.startswith(b"--innerboundary\nExpire-date:")
    assert directory.signed_data.endswith(b"--innerboundary--")


@pytest.mark.parametrize("newline", ["\r\n", "\n"])
def test_directory_signed_data_is_the_raw_first_part_body(newline: str) -> None:
    body, signed = directory_body(
        [("SHARED-PARAMETERS", "CO", "/V2/shared-params.xml", b"x")], newline=newline
    )
    assert parse_configuration_directory(body, DIRECTORY_CONTENT_TYPE).signed_data == signed


def _replace(body: bytes, old: bytes, new: bytes) -> bytes:
    assert old in body
    return body.replace(old, new)


GOOD, _ = directory_body([("SHARED-PARAMETERS", "CO", "/V2/shared-params.xml", b"x")])


@pytest.mark.parametrize(
    ("body", "content_type", "message"),
    [
        (GOOD, "multipart/mixed; boundary=outer", "expected multipart/related"),
        (GOOD, None, "Content-Type is missing"),
        (GOOD, "multipart/related", "without a boundary"),
        (GOOD[:-30], DIRECTORY_CONTENT_TYPE, "without its closing boundary"),
        (
            _replace(GOOD, b"Expire-date: 2030-01-01T00:00:00Z", b"X-Other: 1"),
            DIRECTORY_CONTENT_TYPE,
            "first entry has no Expire-date",
        ),
        (
            _replace(GOOD, b"2030-01-01T00:00:00Z", b"next tuesday"),
            DIRECTORY_CONTENT_TYPE,
            "not an ISO 8601",
        ),
        (
            _replace(GOOD, b"Version: 2", b"Version: two"),
            DIRECTORY_CONTENT_TYPE,
            "Version 'two' is not an integer",
        ),
        (
            _replace(GOOD, b"xmlenc#sha512\r\n\r\n", b"xmlenc#md5\r\n\r\n"),
            DIRECTORY_CONTENT_TYPE,
            "unsupported Hash-algorithm-id",
        ),
        (
            _replace(GOOD, b"Content-location: /V2/shared-params.xml\r\n", b""),
            DIRECTORY_CONTENT_TYPE,
            "no Content-location",
        ),
        (
            _replace(GOOD, b"multipart/mixed;", b"text/plain;"),
            DIRECTORY_CONTENT_TYPE,
            "expected multipart/mixed",
        ),
        (
            _replace(GOOD, b"--outer--", b"--outer\r\n\r\nthird\r\n--outer--"),
            DIRECTORY_CONTENT_TYPE,
            "has 3 parts, expected 2",
        ),
        (
            _replace(GOOD, b"Signature-algorithm-id: ", b"X-Algorithm: "),
            DIRECTORY_CONTENT_TYPE,
            "no Signature-algorithm-id",
        ),
    ],
)
def test_broken_directories(body: bytes, content_type: str | None, message: str) -> None:
    with pytest.raises(XRoadProtocolError, match=message):
        parse_configuration_directory(body, content_type)


def test_digest_of_the_wrong_length_is_refused() -> None:
    short = base64.b64encode(b"\x01" * 20)  # PR-GCONF A.2's example digest is this long
    digest = base64.b64encode(hashlib.sha512(b"x").digest())
    body = _replace(GOOD, digest, short)
    with pytest.raises(XRoadProtocolError, match="is 20 bytes, sha512 digests are 64"):
        parse_configuration_directory(body, DIRECTORY_CONTENT_TYPE)


def test_verify_part() -> None:
    directory = parse_configuration_directory(GOOD, DIRECTORY_CONTENT_TYPE)
    (part,) = directory.parts
    verify_part(part, b"x")
    with pytest.raises(XRoadProtocolError, match="does not match the directory's sha512 hash"):
        verify_part(part, b"y")


# -- shared parameters -----------------------------------------------------------------


def test_shared_parameters_v2_real_sample() -> None:
    shared = parse_shared_parameters(shared_v2())
    dev = "DEV"
    assert shared == SharedParameters(
        instance=dev,
        members=(
            Member("ORG", "1234567-8", "TEST", ("MANAGEMENT", "TEST")),
            Member("ORG", "1111111-1", "TEST2", ("BLAH",)),
        ),
        security_servers=(
            SecurityServer(
                owner=ClientId(dev, "ORG", "1234567-8"),
                server_code="ss1",
                address="x-road-ss",
                clients=(
                    ClientId(dev, "ORG", "1234567-8", "MANAGEMENT"),
                    ClientId(dev, "ORG", "1234567-8", "TEST"),
                ),
            ),
            SecurityServer(
                owner=ClientId(dev, "ORG", "1111111-1"),
                server_code="ss2",
                address="x-road-ss-test",
                clients=(ClientId(dev, "ORG", "1111111-1", "BLAH"),),
            ),
        ),
    )
    assert [str(client) for client in shared.clients()] == [
        "DEV/ORG/1234567-8",
        "DEV/ORG/1111111-1",
        "DEV/ORG/1234567-8/MANAGEMENT",
        "DEV/ORG/1234567-8/TEST",
        "DEV/ORG/1111111-1/BLAH",
    ]


def test_shared_parameters_v5_additions() -> None:
    shared = parse_shared_parameters(fixture("shared-params-v5.xml"))
    assert shared.instance == "CO"
    (member,) = shared.members
    assert member.subsystems == ("CARPETA", "AUTENTICACION")
    assert member.subsystem_names == {"CARPETA": "Carpeta Ciudadana"}
    first, second = shared.security_servers
    assert (first.in_maintenance, first.maintenance_message) == (True, "Actualización programada")
    assert (second.in_maintenance, second.maintenance_message) == (False, None)
    assert second.clients == (ClientId("CO", "GOB", "8999990002", "CARPETA"),)
    (central,) = shared.central_services
    assert central.service_code == "consultaCedula"
    assert central.implementing_service == ServiceId(
        ClientId("CO", "GOB", "8999990002", "CARPETA"), "consultarCedula", "v2"
    )


SHARED_HEAD = (
    b'<c:conf xmlns:c="http://x-road.eu/xsd/xroad.xsd"><instanceIdentifier>CO</instanceIdentifier>'
)
MEMBER = (
    b'<member id="m"><memberClass><code>GOB</code><description>d</description></memberClass>'
    b'<memberCode>1</memberCode><name>n</name><subsystem id="s"><subsystemCode>S</subsystemCode>'
    b"</subsystem></member>"
)


@pytest.mark.parametrize(
    ("document", "message"),
    [
        (b"<conf/>", "expected <conf>"),
        (b'<c:conf xmlns:c="http://x-road.eu/xsd/xroad.xsd"/>', "no instanceIdentifier"),
        (
            SHARED_HEAD
            + MEMBER
            + b"<securityServer><owner>m</owner><serverCode>ss</serverCode>"
            + b"<client>nope</client></securityServer></c:conf>",
            r"securityServer #1 \(ss\): client: refers to unknown id 'nope'",
        ),
        (
            SHARED_HEAD + MEMBER + MEMBER + b"</c:conf>",
            "id 'm' is used twice",
        ),
        (
            SHARED_HEAD + b"<member><memberCode>1</memberCode></member></c:conf>",
            "member #1: no memberClass",
        ),
    ],
)
def test_broken_shared_parameters(document: bytes, message: str) -> None:
    with pytest.raises(XRoadProtocolError, match=message):
        parse_shared_parameters(document)


# -- the anchor ------------------------------------------------------------------------


def test_anchor_as_in_pr_gconf_a1() -> None:
    anchor = parse_configuration_anchor(fixture("anchor.xml"))
    assert anchor.instance == "CO"
    assert anchor.generated_at == datetime(2024, 5, 20, 16, 42, 55, tzinfo=UTC)
    (source,) = anchor.sources
    assert source.download_url == "http://10.10.10.10/internalconf"
    assert source.verification_certs == (b"default",)


# -- signatures ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def rsa_signer() -> tuple[rsa.RSAPrivateKey, x509.Certificate]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key, signer_certificate(key)


MORE = "http://www.w3.org/2001/04/xmldsig-more#"


def _signed_directory(
    sign: Callable[[bytes], bytes],
    cert: x509.Certificate,
    algorithm: str,
    *,
    with_hash: bool = True,
) -> bytes:
    der = cert.public_bytes(serialization.Encoding.DER)
    _, signed = directory_body([("SHARED-PARAMETERS", "CO", "/p.xml", b"x")])
    signature = sign(signed)
    body, _ = directory_body(
        [("SHARED-PARAMETERS", "CO", "/p.xml", b"x")],
        signature=signature,
        signature_algorithm=algorithm,
        cert_hash=hashlib.sha512(der).digest() if with_hash else None,
    )
    return body


def test_rsa_signature_verifies_and_detects_tampering(
    rsa_signer: tuple[rsa.RSAPrivateKey, x509.Certificate],
) -> None:
    key, cert = rsa_signer

    def sign(data: bytes) -> bytes:
        return key.sign(data, padding.PKCS1v15(), hashes.SHA512())

    body = _signed_directory(sign, cert, f"{MORE}rsa-sha512")
    pem = cert.public_bytes(serialization.Encoding.PEM)
    der = cert.public_bytes(serialization.Encoding.DER)
    directory = parse_configuration_directory(body, DIRECTORY_CONTENT_TYPE)
    verify_directory_signature(directory, [pem])
    verify_directory_signature(directory, [der])

    tampered = parse_configuration_directory(
        body.replace(b"/p.xml", b"/q.xml"), DIRECTORY_CONTENT_TYPE
    )
    with pytest.raises(XRoadProtocolError, match="does not verify"):
        verify_directory_signature(tampered, [pem])

    other_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    other = signer_certificate(other_key).public_bytes(serialization.Encoding.PEM)
    with pytest.raises(XRoadProtocolError, match="not among the anchor's"):
        verify_directory_signature(directory, [other])
    with pytest.raises(XRoadProtocolError, match="no verification certificate"):
        verify_directory_signature(directory, [])
    with pytest.raises(XRoadProtocolError, match="unreadable verification certificate"):
        verify_directory_signature(directory, [b"not a certificate"])


def test_rsa_pss_signature_without_certificate_hash(
    rsa_signer: tuple[rsa.RSAPrivateKey, x509.Certificate],
) -> None:
    key, cert = rsa_signer

    def sign(data: bytes) -> bytes:
        pss = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32)
        return key.sign(data, pss, hashes.SHA256())

    body = _signed_directory(
        sign, cert, "http://www.w3.org/2007/05/xmldsig-more#sha256-rsa-MGF1", with_hash=False
    )
    directory = parse_configuration_directory(body, DIRECTORY_CONTENT_TYPE)
    assert directory.signature.algorithm.endswith("#sha256-rsa-MGF1")
    other = signer_certificate(rsa.generate_private_key(public_exponent=65537, key_size=2048))
    pems = [item.public_bytes(serialization.Encoding.PEM) for item in (other, cert)]
    verify_directory_signature(directory, pems)


@pytest.mark.parametrize("raw", [True, False], ids=["xmldsig-r-s", "der"])
def test_ecdsa_signature_in_both_encodings(raw: bool) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    cert = signer_certificate(key)

    def sign(data: bytes) -> bytes:
        der = key.sign(data, ec.ECDSA(hashes.SHA256()))
        if not raw:
            return der
        r, s = decode_dss_signature(der)
        return r.to_bytes(32, "big") + s.to_bytes(32, "big")

    body = _signed_directory(sign, cert, f"{MORE}ecdsa-sha256")
    directory = parse_configuration_directory(body, DIRECTORY_CONTENT_TYPE)
    verify_directory_signature(directory, [cert.public_bytes(serialization.Encoding.DER)])


def test_unsupported_signature_algorithm(
    rsa_signer: tuple[rsa.RSAPrivateKey, x509.Certificate],
) -> None:
    _, cert = rsa_signer
    body = _signed_directory(
        lambda data: b"\x01" * 8, cert, "http://www.w3.org/2000/09/xmldsig#dsa-sha1"
    )
    directory = parse_configuration_directory(body, DIRECTORY_CONTENT_TYPE)
    with pytest.raises(XRoadProtocolError, match="unsupported algorithm"):
        verify_directory_signature(directory, [cert.public_bytes(serialization.Encoding.DER)])


# -- freshness -------------------------------------------------------------------------


def test_global_conf_freshness() -> None:
    expires = datetime(2030, 1, 1, tzinfo=UTC)
    conf = GlobalConf(expires_at=expires, version=2, shared=(), fetched_at=expires)
    assert conf.is_fresh(expires - timedelta(seconds=1))
    assert not conf.is_fresh(expires)
    assert conf.expires_in(expires - timedelta(minutes=5)) == timedelta(minutes=5)
    assert conf.expires_in(expires + timedelta(minutes=1)) == timedelta(minutes=-1)
