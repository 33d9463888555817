"""Standard Webhooks signing: the published test vector, the receiver's checks, key forms
and rotation, the catalog's header and secret rules. (Against a real receiver:
tests/faults/test_hostile_sinks.py.)"""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr, ValidationError

from scd_monitor.sinks.base import DeliveryPayload, HmacSecretRef, hmac_key, secret_problem
from scd_monitor.sinks.webhook import (
    WebhookSink,
    WebhookSinkConfig,
    check_signature,
    sign,
    webhook_id,
)

NOW = datetime(2026, 5, 4, 15, 0, tzinfo=UTC)
RAW = "clave-compartida-de-prueba"
NEW = "whsec_" + base64.b64encode(b"\x01" * 32).decode()
BODY = b'{"report_id": "SCD-2026-000001.1"}\n'


def payload() -> DeliveryPayload:
    return DeliveryPayload(
        idempotency_key="SCD-2026-000001.1.mintic",
        incident="SCD-2026-000001",
        report_id="SCD-2026-000001.1",
        event="opened",
        audience="authority",
        recipient=None,
        subject="s",
        body=BODY,
        text="t",
        html="h",
        attempt=3,
    )


def ref(value: str, **extra: Any) -> dict[str, Any]:
    return {"env": "UNUSED", **extra, "_value": value}


def sink(secret: str, *, previous: list[dict[str, Any]] | None = None, **extra: Any) -> WebhookSink:
    data: dict[str, Any] = {
        "id": "mintic",
        "kind": "webhook",
        "url": "http://127.0.0.1:9/x",
        "secret": {"env": "UNUSED"},
        "previous_secrets": [{k: v for k, v in p.items() if k != "_value"} for p in previous or []],
        **extra,
    }
    config = WebhookSinkConfig.model_validate(data)
    config = config.model_copy(
        update={
            "secret": config.secret.model_copy(update={"value": SecretStr(secret)}),
            "previous_secrets": [
                p.model_copy(update={"value": SecretStr(raw["_value"])})
                for p, raw in zip(config.previous_secrets, previous or [], strict=True)
            ],
        }
    )
    return WebhookSink(config)


def test_the_standard_webhooks_test_vector() -> None:
    """The vector of the reference implementation's own tests."""
    key = hmac_key("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
    body = b'{"test": 2432232314}'
    signature = sign(key, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body)
    assert signature == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def test_key_forms() -> None:
    assert hmac_key("abc") == b"abc"
    assert hmac_key("whsec_AQID") == b"\x01\x02\x03"
    assert hmac_key("whsec_AQI") == b"\x01\x02"  # padding optional
    for bad in ("", "whsec_", "whsec_***", "whsec_QQ=x"):
        with pytest.raises(ValueError) as caught:
            hmac_key(bad)
        assert "***" not in str(caught.value)


def test_secret_problems_name_no_secret(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEST_WH_BAD", "whsec_!!not-base64!!")
    monkeypatch.setenv("TEST_WH_OK", NEW)
    bad = secret_problem(HmacSecretRef(env="TEST_WH_BAD"), tmp_path)
    assert bad is not None and "base64" in bad and "not-base64" not in bad
    assert secret_problem(HmacSecretRef(env="TEST_WH_OK"), tmp_path) is None
    (tmp_path / "k").write_text("\n")
    empty = secret_problem(HmacSecretRef(file=Path("k")), tmp_path)
    assert empty is not None and "empty" in empty


def test_headers_sign_id_timestamp_and_body_and_verify() -> None:
    headers = sink(RAW).headers(payload(), NOW)
    assert headers["webhook-id"] == webhook_id("SCD-2026-000001.1.mintic")
    assert headers["webhook-id"] == "SCD-2026-000001_1_mintic"
    assert headers["webhook-timestamp"] == str(int(NOW.timestamp()))
    assert headers["Idempotency-Key"] == "SCD-2026-000001.1.mintic"
    assert (
        headers["webhook-signature"].startswith("v1,") and " " not in headers["webhook-signature"]
    )
    keys = [RAW.encode()]
    assert check_signature(keys, headers, BODY, now=NOW) is None
    assert check_signature(keys, headers, BODY, now=NOW + timedelta(minutes=4, seconds=59)) is None
    later = NOW + timedelta(minutes=5, seconds=1)
    assert check_signature(keys, headers, BODY, now=later) == "timestamp too old"
    earlier = NOW - timedelta(minutes=5, seconds=1)
    assert check_signature(keys, headers, BODY, now=earlier) == "timestamp too new"
    assert check_signature(keys, headers, BODY + b" ", now=NOW) == "no matching signature"
    assert check_signature([b"other"], headers, BODY, now=NOW) == "no matching signature"
    moved = {**headers, "webhook-timestamp": str(int(NOW.timestamp()) + 1)}
    assert check_signature(keys, moved, BODY, now=NOW) == "no matching signature"
    other_id = {**headers, "webhook-id": "SCD-2026-000002_1_mintic"}
    assert check_signature(keys, other_id, BODY, now=NOW) == "no matching signature"
    for broken in ("", "12a", "１２３", "9" * 40, "9" * 12, "-1"):
        assert check_signature(keys, {**headers, "webhook-timestamp": broken}, BODY, now=NOW)
    unknown = {**headers, "webhook-signature": "v1a,xyz v2,abc " + headers["webhook-signature"]}
    assert check_signature(keys, unknown, BODY, now=NOW) is None


def test_whsec_keys_are_decoded() -> None:
    headers = sink(NEW).headers(payload(), NOW)
    assert check_signature([b"\x01" * 32], headers, BODY, now=NOW) is None
    assert check_signature([NEW.encode()], headers, BODY, now=NOW) is not None


def test_rotation_signs_with_every_valid_key() -> None:
    rotating = sink(
        NEW,
        previous=[ref(RAW, until=(NOW + timedelta(days=1)).isoformat()), ref("sin-fecha")],
    )
    headers = rotating.headers(payload(), NOW)
    signatures = headers["webhook-signature"].split(" ")
    assert len(signatures) == 3 and all(s.startswith("v1,") for s in signatures)
    for key in (b"\x01" * 32, RAW.encode(), b"sin-fecha"):  # old and new receivers verify
        assert check_signature([key], headers, BODY, now=NOW) is None
    after = rotating.headers(payload(), NOW + timedelta(days=2))
    assert len(after["webhook-signature"].split(" ")) == 2  # the dated key has expired
    assert check_signature([RAW.encode()], after, BODY, now=NOW + timedelta(days=2)) is not None


def test_legacy_signature_can_be_turned_off() -> None:
    assert "X-SCD-Signature" in sink(RAW).headers(payload(), NOW)
    assert "X-SCD-Signature" not in sink(RAW, legacy_signature=False).headers(payload(), NOW)


def test_secrets_stay_out_of_reprs_and_dumps() -> None:
    webhook = sink(NEW, previous=[ref(RAW)])
    config = webhook._config
    dumped = str(config.model_dump()) + repr(config)
    assert RAW not in dumped and NEW not in dumped


@pytest.mark.parametrize(
    ("headers", "message"),
    [
        ({"X-Entidad": "línea"}, "printable ASCII"),
        ({"X-Entidad": "a\r\nX-Otro: b"}, "printable ASCII"),
        ({"X-Entidad": "a\x00"}, "printable ASCII"),
        ({"X Entidad": "a"}, "not a valid HTTP header name"),
        ({"webhook-id": "x"}, "set by the sink"),
        ({"Content-Type": "text/plain"}, "set by the sink"),
        ({"x-scd-signature": "x"}, "set by the sink"),
        ({"Idempotency-Key": "x"}, "set by the sink"),
    ],
)
def test_catalog_headers_are_checked_at_load(headers: dict[str, str], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        WebhookSinkConfig.model_validate(
            {
                "id": "w",
                "kind": "webhook",
                "url": "http://h/x",
                "secret": {"env": "S"},
                "headers": headers,
            }
        )


def test_rotation_until_must_be_aware() -> None:
    with pytest.raises(ValidationError):
        WebhookSinkConfig.model_validate(
            {
                "id": "w",
                "kind": "webhook",
                "url": "http://h/x",
                "secret": {"env": "S"},
                "previous_secrets": [{"env": "P", "until": "2026-07-01T00:00:00"}],
            }
        )


def test_an_unread_previous_secret_is_refused() -> None:
    config = WebhookSinkConfig.model_validate(
        {
            "id": "w",
            "kind": "webhook",
            "url": "http://h/x",
            "secret": {"env": "S"},
            "previous_secrets": [{"env": "P"}],
        }
    )
    config = config.model_copy(
        update={"secret": config.secret.model_copy(update={"value": SecretStr("k")})}
    )
    with pytest.raises(ValueError, match="has not been read"):
        WebhookSink(config)


def test_the_catalog_loader_reports_a_bad_key_with_its_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from scd_monitor.catalog.incidents import IncidentsConfig, secret_problems

    monkeypatch.setenv("TEST_WH_SECRET_BAD", "whsec_%%%")
    config = IncidentsConfig.model_validate(
        {
            "sinks": [
                {
                    "id": "w",
                    "kind": "webhook",
                    "url": "http://h/x",
                    "secret": {"env": "TEST_WH_SECRET_BAD"},
                }
            ],
            "routes": [{"audience": "authority", "sinks": ["w"]}],
        }
    )
    ((loc, problem),) = secret_problems(config, tmp_path)
    assert loc == ("incidents", "sinks", 0, "secret") and "base64" in problem


def test_the_receiver_in_the_operators_doc_verifies_our_requests() -> None:
    """docs/incidents.md shows receivers how to verify: its snippet must agree with us."""
    import re

    doc = (Path(__file__).parents[2] / "docs" / "incidents.md").read_text(encoding="utf-8")
    found = re.search(r"```python\n(import base64, hashlib.*?)```", doc, re.S)
    assert found is not None
    namespace: dict[str, Any] = {}
    exec(found.group(1), namespace)  # noqa: S102 - our own documentation, run as a test
    verify, key_of = namespace["verificar"], namespace["clave"]
    now = datetime.now(UTC)
    for secret in (NEW, RAW):
        headers = sink(secret).headers(payload(), now)
        assert verify([key_of(secret)], headers, BODY)
        assert not verify([key_of(secret)], headers, BODY + b"x")
        assert not verify([b"otra"], headers, BODY)
        old = sink(secret).headers(payload(), now - timedelta(minutes=6))
        assert not verify([key_of(secret)], old, BODY)


@pytest.mark.parametrize(
    ("sink_yaml", "expected"),
    [
        (
            '      headers: {"X-Entidad": "Tecnologías"}\n',
            "catalog.yaml:7: incidents.sinks[0].headers.X-Entidad: ",
        ),
        (
            "      headers: {webhook-id: x}\n",
            "catalog.yaml:7: incidents.sinks[0].headers.webhook-id",
        ),
        (
            "      previous_secrets: [{file: bad.key}]\n",
            "catalog.yaml:7: incidents.sinks[0].previous_secrets: not a usable HMAC key: "
            "not valid base64 after 'whsec_'",
        ),
    ],
)
def test_the_catalog_names_file_and_line(tmp_path: Path, sink_yaml: str, expected: str) -> None:
    from scd_monitor.catalog.loader import load_catalog
    from scd_monitor.errors import ConfigError

    (tmp_path / "good.key").write_text(NEW + "\n")
    (tmp_path / "bad.key").write_text("whsec_no es base64\n")
    (tmp_path / "catalog.yaml").write_text(
        "incidents:\n"
        "  sinks:\n"
        "    - id: mintic\n"
        "      kind: webhook\n"
        "      url: https://receptor.example/scd\n"
        "      secret: {file: good.key}\n" + sink_yaml + "providers:\n"
        "  - id: p\n"
        "    name: P\n"
        "    services: [{id: s, type: otro, checks: [{id: c, kind: tls, host: a.example}]}]\n",
        encoding="utf-8",
    )
    with pytest.raises(ConfigError) as caught:
        load_catalog(tmp_path / "catalog.yaml")
    assert any(expected in line for line in caught.value.problems), caught.value.problems
    assert "no es base64" not in str(caught.value)
