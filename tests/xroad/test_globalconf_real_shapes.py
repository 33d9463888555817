"""Global configuration as real X-Road servers write it (issue 13), read as X-Road's own
configuration client reads it: the Content-Type line in the body of an
``application/octet-stream`` answer, ``instance='CO'`` in single quotes, a directory
without its closing delimiter, ``?version=`` with a fallback to older versions.

The fixtures (``fixtures/directory-*.mime``, provenance in ``fixtures/README.md``) are
signed with the key of ``fixtures/directory-signer.pem`` and list ``private-params-v3.xml``
and ``shared-params-v5.xml`` with their real SHA-512 digests, so each test below checks
the signature and the digests too: reading a real shape must not loosen either check.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from scd_monitor.catalog.models import XRoadGlobalconfCheck
from scd_monitor.probes import XRoadGlobalconfProbe
from scd_monitor.probes.base import ErrorKind
from scd_monitor.probes.xroad_globalconf import CONFIGURATION_VERSIONS, configuration_versions
from scd_monitor.xroad import ClientId, XRoadProtocolError
from scd_monitor.xroad.globalconf import (
    ConfigurationDirectory,
    parse_configuration_directory,
    parse_private_parameters,
    verify_directory_signature,
    verify_part,
)
from scd_monitor.xroad.mime import leading_headers, parse_header_value, split_multipart
from scd_simulator.confsource import DIRECTORY_SHAPES, DirectoryShape, FakeConfigurationSource
from scd_simulator.directory import XRoadDirectory
from scd_simulator.rawhttp import Connection, Request, Response
from tests.probes.probe_servers import resolved
from tests.xroad.data import directory_body, fixture, serve, url

OCTET_STREAM = "application/octet-stream"
SIGNER = fixture("directory-signer.pem")
FILES = {
    "private-params.xml": fixture("private-params-v3.xml"),
    "shared-params.xml": fixture("shared-params-v5.xml"),
}


def _strip_head(body: bytes) -> tuple[bytes, str]:
    """The body without the header block it starts with, and that block's Content-Type
    (to serve the same directory in PR-GCONF §2.3's shape: type in the HTTP header)."""
    found = leading_headers(body, what="test")
    assert found is not None
    headers, start = found
    (content_type,) = [value for name, value in headers if name.lower() == "content-type"]
    return body[start:], content_type


def _check_parts(directory: ConfigurationDirectory, expected: list[tuple[str, str]]) -> None:
    """Every part names instance CO and has the digest of the fixture file it lists."""
    assert [(p.content_identifier, p.instance) for p in directory.parts] == expected
    for part in directory.parts:
        verify_part(part, FILES[part.location.rsplit("/", 1)[-1]])
    verify_directory_signature(directory, [SIGNER])


# -- each real shape, whole ------------------------------------------------------------

BOTH = [("PRIVATE-PARAMETERS", "CO"), ("SHARED-PARAMETERS", "CO")]


@pytest.mark.parametrize(
    ("name", "version", "expected", "signed_end"),
    [
        # X-Road 7.3+ central server: CRLF, instance='CO', directory closed and ended.
        ("directory-central-server.mime", 3, BOTH, b"\r\n--y7iyKCnxEZLNDClPvlcQ--\r\n"),
        # Central servers up to 7.2: LF, instance='CO', a bare delimiter ends the directory.
        ("directory-legacy.mime", 2, BOTH, b"\n--dataBoundary1x2y3z"),
        # X-Road's own test-conf-simple.txt: no Version, no delimiter after the last part.
        ("directory-xroad-test-conf-simple.mime", None, BOTH, b"=="),
        # A configuration proxy: LF header block, CRLF parts, unquoted hash-algorithm-id.
        (
            "directory-confproxy.mime",
            3,
            [("SHARED-PARAMETERS", "CO")],
            b"\r\n--dUAvRmYPqLhKsNwZbTxc--\r\n",
        ),
    ],
)
def test_real_directory_served_as_octet_stream(
    name: str, version: int | None, expected: list[tuple[str, str]], signed_end: bytes
) -> None:
    body = fixture(name)
    assert body.startswith(b"Content-Type: multipart/related;")
    directory = parse_configuration_directory(body, OCTET_STREAM)
    assert directory.version == version
    assert directory.expires_at.replace(microsecond=0) == datetime(
        2030, 5, 20, 17, 42, 55, tzinfo=UTC
    )
    assert directory.signed_data.startswith(b"--")
    assert directory.signed_data.endswith(signed_end)
    _check_parts(directory, expected)
    # nginx may as well say nothing about the type, or the right thing: same reading.
    for http_type in (None, "text/plain", "multipart/related; boundary=ignored-by-x-road"):
        assert parse_configuration_directory(body, http_type).parts == directory.parts


def test_crlf_fixtures_kept_their_line_breaks() -> None:
    """A checkout that rewrites line breaks would make the CRLF shapes LF ones."""
    assert b"\r\n" in fixture("directory-central-server.mime")
    assert b"\r\n" not in fixture("directory-legacy.mime")


# -- each habit alone, in the shape PR-GCONF describes otherwise ------------------------


def test_single_quoted_instance_alone() -> None:
    """Type in the HTTP header, closed directory: only the quotes are real-server ones.
    The code before issue 13 read the instance as ``'CO'``."""
    body, content_type = _strip_head(fixture("directory-central-server.mime"))
    assert content_type.startswith("multipart/related")
    directory = parse_configuration_directory(body, content_type)
    _check_parts(directory, BOTH)
    assert directory.parts_of("SHARED-PARAMETERS", "CO")


def test_legacy_terminator_alone() -> None:
    """Type in the HTTP header, but the directory ends with a bare ``--boundary``:
    refused before issue 13 as truncated, accepted by X-Road's client (mime4j)."""
    body, content_type = _strip_head(fixture("directory-legacy.mime"))
    _check_parts(parse_configuration_directory(body, content_type), BOTH)


def test_content_type_line_in_the_body_alone() -> None:
    """The strict shape with its Content-Type moved from the HTTP header into the body."""
    good, _ = directory_body([("SHARED-PARAMETERS", "CO", "/p.xml", b"x")])
    body = b"Content-Type: multipart/related; charset=UTF-8; boundary=outer\r\n\r\n" + good
    directory = parse_configuration_directory(body, OCTET_STREAM)
    assert [(p.content_identifier, p.instance) for p in directory.parts] == [
        ("SHARED-PARAMETERS", "CO")
    ]


# -- what stays refused ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "content_type", "message"),
    [
        (
            directory_body([("SHARED-PARAMETERS", "CO", "/p.xml", b"x")])[0],
            OCTET_STREAM,
            r"Content-Type is application/octet-stream \(HTTP header\), expected multipart",
        ),
        (
            b"Content-Type: text/html\r\n\r\n<html>maintenance</html>",
            OCTET_STREAM,
            r"Content-Type is text/html \(first line of the body\)",
        ),
        (b"--outer\r\nX: y\r\n\r\n--outer--\r\n", None, "Content-Type is missing"),
        (
            # The outer multipart still has to be closed: a cut download is refused.
            fixture("directory-central-server.mime")[:-30],
            OCTET_STREAM,
            "without its closing boundary",
        ),
    ],
)
def test_still_refused(body: bytes, content_type: str | None, message: str) -> None:
    with pytest.raises(XRoadProtocolError, match=message):
        parse_configuration_directory(body, content_type)


@pytest.mark.parametrize("name", ["directory-legacy.mime", "directory-central-server.mime"])
def test_signature_and_digests_as_strict_as_before(name: str) -> None:
    body = fixture(name)
    altered = body.replace(b"/shared-params.xml", b"/shared-params.xmL")
    directory = parse_configuration_directory(altered, OCTET_STREAM)
    with pytest.raises(XRoadProtocolError, match="does not verify"):
        verify_directory_signature(directory, [SIGNER])
    part = parse_configuration_directory(body, OCTET_STREAM).parts_of("SHARED-PARAMETERS")[0]
    with pytest.raises(XRoadProtocolError, match="does not match"):
        verify_part(part, FILES["shared-params.xml"] + b" ")


# -- the MIME pieces -------------------------------------------------------------------


def test_header_parameters_in_single_quotes_only_where_asked() -> None:
    value = "SHARED-PARAMETERS; instance='CO'"
    assert parse_header_value(value, single_quotes=True).params == {"instance": "CO"}
    assert parse_header_value(value).params == {"instance": "'CO'"}
    assert parse_header_value('X; instance="CO"', single_quotes=True).params == {"instance": "CO"}


@pytest.mark.parametrize(
    ("body", "bodies"),
    [
        (b"--b\r\n\r\none\r\n--b\r\n\r\ntwo\r\n--b--\r\n", [b"one", b"two"]),
        (b"--b\n\none\n--b\n\ntwo\n--b", [b"one", b"two"]),  # X-Road <= 7.2
        (b"--b\n\none\n--b\n\ntwo\n--b\n", [b"one", b"two"]),
        (b"--b\n\none\n--b\n\ntwo", [b"one", b"two"]),  # mime4j: the end ends the part
    ],
)
def test_unclosed_multipart(body: bytes, bodies: list[bytes]) -> None:
    assert [p.body for p in split_multipart(body, "b", what="t", unclosed=True)] == bodies
    if not body.rstrip().endswith(b"--b--"):
        with pytest.raises(XRoadProtocolError, match="without its closing boundary"):
            split_multipart(body, "b", what="t")


@pytest.mark.parametrize(
    "body", [b"--outer\r\nContent-Type: x\r\n\r\n", b"This is MIME\r\n\r\n--outer", b"A: b"]
)
def test_no_leading_headers(body: bytes) -> None:
    assert leading_headers(body, what="t") is None


# -- private parameters ----------------------------------------------------------------


def test_private_parameters_v3() -> None:
    private = parse_private_parameters(FILES["private-params.xml"])
    assert private.instance == "CO"
    (anchor,) = private.federated_anchors
    assert anchor.instance == "CO-QA"
    assert anchor.sources[0].download_url == "http://cs.qa.example.gov.co/externalconf"
    assert anchor.sources[0].verification_certs == (b"bar\n",)
    service = private.management_service
    assert service is not None
    assert service.auth_cert_reg_service_address.startswith("https://cs.example.gov.co:4001/")
    assert service.provider == ClientId("CO", "GOB", "8999990001", "MANAGEMENT")
    assert private.timestamping_interval == timedelta(seconds=60)
    with pytest.raises(XRoadProtocolError, match="expected <conf>"):
        parse_private_parameters(b"<conf/>")


# -- the simulator serves every shape, and the probe reads each ------------------------


def _directory() -> XRoadDirectory:
    d = XRoadDirectory()
    d.add_subsystem("GOB", "899999001", "CARPETA", name="Ministerio TIC")
    d.add_security_server("CO/GOB/899999001", "ss1", clients=["CO/GOB/899999001/CARPETA"])
    return d


def _check(url: str, **fields: Any) -> Any:
    spec = XRoadGlobalconfCheck.model_validate(
        {"id": "globalconf", "kind": "xroad_globalconf", "url": url, **fields}
    )
    return resolved(spec, timeout=5.0)


def _versions_asked(source: FakeConfigurationSource) -> list[str]:
    return [r.query for r in source.requests if r.path == "/internalconf"]


@pytest.mark.parametrize("shape", DIRECTORY_SHAPES)
async def test_probe_reads_every_shape_the_simulator_serves(shape: DirectoryShape) -> None:
    async with FakeConfigurationSource(_directory(), shape=shape) as cs:
        anchor = cs.anchor()
        outcome = await XRoadGlobalconfProbe()(
            _check(cs.internal_url, expect_members=["CO/GOB/899999001/CARPETA"])
        )
        assert outcome.ok, outcome.message
        assert outcome.details["globalconf_version"] == 3  # the newest the source has
        assert _versions_asked(cs) == ["version=6", "version=5", "version=4", "version=3"]
    assert b"<instanceIdentifier>CO</instanceIdentifier>" in anchor


# -- ?version= and the fallback to older versions (PR-GCONF §2.7) -----------------------


def test_versions_asked_for() -> None:
    assert CONFIGURATION_VERSIONS == (6, 5, 4, 3, 2)  # X-Road's CURRENT down to MINIMUM
    assert configuration_versions("http://cs/internalconf") == CONFIGURATION_VERSIONS
    assert configuration_versions("http://cs/internalconf?version=3") == (None,)


async def test_source_whose_minimum_is_above_the_default() -> None:
    """Issue 13 §4: without ``?version=`` such a source answers 404; the probe walks down
    from X-Road's current version as X-Road's client does and finds version 3."""
    async with FakeConfigurationSource(_directory(), min_version=3) as cs:
        outcome = await XRoadGlobalconfProbe()(_check(cs.internal_url))
        assert outcome.ok, outcome.message
        assert outcome.details["globalconf_version"] == 3
        assert _versions_asked(cs) == ["version=6", "version=5", "version=4", "version=3"]
        # What the probe did before issue 13: no version, so the source's default (2).
        async with httpx.AsyncClient(trust_env=False) as client:
            assert (await client.get(cs.internal_url)).status_code == 404
        cs.requests.clear()
        fixed = await XRoadGlobalconfProbe()(_check(cs.internal_url + "?version=2"))
        assert fixed.error_kind is ErrorKind.STATUS
        assert fixed.status_code == 404
        assert _versions_asked(cs) == ["version=2"]  # a version in the URL is kept as is


async def test_only_a_missing_directory_moves_to_an_older_version() -> None:
    """A 500 is not "version not available": X-Road's client takes that version (and
    fails); so does the probe, with one request."""
    async with FakeConfigurationSource(_directory()) as cs:
        cs.set_status(500)
        outcome = await XRoadGlobalconfProbe()(_check(cs.internal_url))
        assert (outcome.error_kind, outcome.status_code) == (ErrorKind.STATUS, 500)
        assert _versions_asked(cs) == ["version=6"]
        cs.set_status(404)
        cs.requests.clear()
        outcome = await XRoadGlobalconfProbe()(_check(cs.internal_url))
        assert (outcome.error_kind, outcome.status_code) == (ErrorKind.STATUS, 404)
        assert _versions_asked(cs) == [f"version={v}" for v in CONFIGURATION_VERSIONS]


async def test_a_missing_part_is_not_a_missing_version() -> None:
    """Version 5 exists but a file it lists answers 404: no fallback to version 4."""
    good, _ = directory_body(
        [("SHARED-PARAMETERS", "CO", "/gone.xml", b"x")], expire_date="2099-01-01T00:00:00Z"
    )
    asked: list[str] = []

    async def handler(request: Request, conn: Connection) -> Response:
        asked.append(request.target)
        if request.path == "/internalconf" and request.query == "version=5":
            return Response(
                200, good, content_type="multipart/related; charset=UTF-8; boundary=outer"
            )
        return Response(404, b"not found\n")

    async with serve(handler) as server:
        outcome = await XRoadGlobalconfProbe()(_check(url(server, "/internalconf")))
    assert (outcome.error_kind, outcome.status_code) == (ErrorKind.STATUS, 404)
    assert "/gone.xml" in (outcome.message or "")
    assert asked == ["/internalconf?version=6", "/internalconf?version=5", "/gone.xml"]


async def test_discovery_finds_the_version_the_source_serves_too() -> None:
    """Issue 13 §4 for discovery: the directory reader asks for versions as the probe does
    (one search, in the X-Road client), so a source whose minimum is 3 is read."""
    from scd_monitor.xroad.directory import DirectoryReader

    async with FakeConfigurationSource(_directory(), min_version=3) as cs:
        reader = DirectoryReader(source="co", instance="CO", globalconf_url=cs.internal_url)
        directory = await reader.read()
        assert directory.to_json()["globalconf"]["version"] == 3
        assert _versions_asked(cs)[:4] == ["version=6", "version=5", "version=4", "version=3"]
