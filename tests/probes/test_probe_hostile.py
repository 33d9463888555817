"""Hostile answers, probe by probe: whatever a target sends, the outcome is clean text
(valid, NUL-free, bounded) and the judging is quick (RE2, linear in the body)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from scd_monitor.catalog import load_catalog
from scd_monitor.catalog.models import HttpCheck, XRoadHealthCheck, XRoadMetaserviceCheck
from scd_monitor.errors import ConfigError
from scd_monitor.patterns import compile_pattern, search
from scd_monitor.probes.base import MESSAGE_LIMIT, ErrorKind, Outcome
from scd_monitor.probes.http import HttpProbe
from scd_monitor.probes.xroad_health import XRoadHealthProbe
from scd_monitor.probes.xroad_metaservice import XRoadMetaserviceProbe
from tests.probes.probe_servers import http_check, resolved, respond, serve

SURROGATE_JSON = b'{"issuer": "\\ud800", "n": "\\udfff\\u0000"}'


def assert_clean(outcome: Outcome) -> None:
    for text in [
        outcome.message or "",
        *map(str, outcome.details),
        *map(str, outcome.details.values()),
    ]:
        text.encode("utf-8", "strict")
        assert "\x00" not in text


def test_outcome_cleans_whatever_a_probe_puts_in_it() -> None:
    outcome = Outcome.failure(
        ErrorKind.STATUS,
        "body: \ud800\x00" + "x" * 5000,
        details={"evidence\x00": "\udfff", "n": 3, "big": 10**40, "nan": float("nan")},
    )
    assert_clean(outcome)
    assert outcome.message is not None
    assert outcome.message.startswith("body: \ufffd\u2400")
    assert len(outcome.message) <= MESSAGE_LIMIT and outcome.message.endswith(" chars]")
    assert outcome.details == {
        "evidence\u2400": "\ufffd",
        "n": 3,
        "big": "<133-bit integer>",
        "nan": "nan",
    }
    # The store reads outcomes back through the same constructor: nothing changes twice.
    again = Outcome.failure(ErrorKind.STATUS, outcome.message, details=dict(outcome.details))
    assert again == outcome


@pytest.mark.parametrize(
    "assertion",
    [
        {"path": "issuer", "equals": "https://idp.gov.co"},
        {"path": "issuer", "matches": "^https://"},
        {"path": "n", "matches": "x"},
    ],
)
async def test_a_lone_surrogate_in_json_is_quoted_clean(assertion: dict[str, Any]) -> None:
    async with serve(respond(200, SURROGATE_JSON)) as server:
        outcome = await HttpProbe()(http_check(server.url(), json=[assertion]))
    assert outcome.error_kind is ErrorKind.ASSERTION
    assert_clean(outcome)
    assert "\ufffd" in (outcome.message or "")


async def test_a_surrogate_matches_as_the_replacement_character() -> None:
    assert search("^\ufffd$", "\ud800")
    async with serve(respond(200, SURROGATE_JSON)) as server:
        check = http_check(server.url(), json=[{"path": "issuer", "matches": "^.$"}])
        outcome = await HttpProbe()(check)
    assert outcome.ok, outcome


async def test_a_catastrophic_pattern_is_linear_time() -> None:
    body = b"a" * 40 + b"!"  # hours with a backtracking engine
    async with serve(respond(200, body)) as server:
        started = time.perf_counter()
        outcome = await HttpProbe()(http_check(server.url(), body_regex=r"^(\w+\s?)*$"))
        elapsed = time.perf_counter() - started
    assert outcome.error_kind is ErrorKind.ASSERTION
    assert elapsed < 0.5


async def test_a_large_body_is_judged_off_the_event_loop_quickly() -> None:
    body = (b"word " * 200_000) + b"!"  # 1 MB, the default max_body_bytes
    async with serve(respond(200, body)) as server:
        check = http_check(server.url(), body_regex=r"^(\w+\s?)*$", max_body_bytes=2_000_000)
        started = time.perf_counter()
        outcome = await HttpProbe()(check)
        elapsed = time.perf_counter() - started
    assert outcome.error_kind is ErrorKind.ASSERTION
    assert elapsed < 1.0


@pytest.mark.parametrize(
    ("pattern", "reason"),
    [
        ("(unclosed", r"missing \)"),
        (r"(a)\1", "invalid escape sequence"),
        ("foo(?=bar)", "invalid perl operator"),
        ("a{1001}", "invalid repetition size"),
    ],
)
def test_patterns_re2_cannot_take_are_refused(pattern: str, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        compile_pattern(pattern)
    with pytest.raises(ValueError, match="invalid regular expression"):
        HttpCheck.model_validate(
            {"id": "c", "kind": "http", "url": "http://a/", "body_regex": pattern}
        )


def test_a_pattern_re2_cannot_take_is_a_catalog_error_with_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "catalog.yaml"
    path.write_text(
        "providers:\n"
        "  - id: p\n"
        "    name: P\n"
        "    services:\n"
        "      - id: s\n"
        "        type: otro\n"
        "        checks:\n"
        "          - id: c\n"
        "            kind: http\n"
        "            url: https://a.example/\n"
        "            json: [{path: issuer, matches: '^(?!http:)'}]\n",
        encoding="utf-8",
    )
    with pytest.raises(ConfigError) as caught:
        load_catalog(path)
    (problem,) = caught.value.problems
    assert problem.startswith(f"{path}:11:"), problem
    assert "invalid regular expression" in problem and "RE2" in problem


async def test_a_nul_in_a_health_check_body_is_shown_not_kept() -> None:
    async with serve(respond(500, b"db: down\x00\x1b[31m \xff")) as server:
        spec = XRoadHealthCheck.model_validate(
            {"id": "h", "kind": "xroad_health", "url": server.url()}
        )
        outcome = await XRoadHealthProbe()(resolved(spec, timeout=2.0))
    assert outcome.error_kind is ErrorKind.STATUS
    assert_clean(outcome)
    assert "db: down\u2400\u241b[31m \ufffd" in (outcome.message or "")


async def test_a_surrogate_and_nul_in_a_rest_fault_are_cleaned() -> None:
    fault = json.dumps(
        {"type": "Server.\ud800\u0000", "message": "m\ud800", "detail": "d\u0000" * 1000}
    ).encode("ascii")
    async with serve(respond(500, fault, {"X-Road-Error": "Server.ServerProxy.X"})) as server:
        spec = XRoadMetaserviceCheck.model_validate(
            {
                "id": "m",
                "kind": "xroad_metaservice",
                "security_server": {"url": server.url(), "client": "CO/GOB/1/MONITOR"},
                "metaservice": "rest_list_methods",
                "provider": "CO/GOB/2/SUB",
            }
        )
        outcome = await XRoadMetaserviceProbe()(resolved(spec, timeout=2.0))
    assert outcome.error_kind is ErrorKind.STATUS
    assert_clean(outcome)
    assert outcome.details["xroad_error_code"] == "Server.\ufffd\u2400"
    assert "m\ufffd" in (outcome.message or "")
    assert len(str(outcome.details["xroad_fault_detail"])) <= 500
