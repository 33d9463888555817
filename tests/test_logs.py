"""Logging: JSON lines, and no secret ever reaches them."""

from __future__ import annotations

import io
import json
import logging

import structlog
from pydantic import SecretStr

from scd_monitor.logs import REDACTED, configure_logging, redact_text


def test_json_lines_with_secrets_redacted() -> None:
    stream = io.StringIO()
    configure_logging("json", "info", stream=stream)
    try:
        log = structlog.get_logger("test")
        log.info(
            "probe.finished",
            check="p/s/c",
            token="abc123",
            headers={"Authorization": "Bearer xyz", "Accept": "application/json"},
            database="postgresql+psycopg://scd:hunter2@db.example/scd",
            password=SecretStr("s3cret"),
        )
        logging.getLogger("apscheduler.scheduler").warning("stdlib %s", "message")
    finally:
        configure_logging("console", "info")
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    event = lines[0]
    assert event["event"] == "probe.finished"
    assert event["check"] == "p/s/c"
    assert event["token"] == REDACTED
    assert event["headers"] == {"Authorization": REDACTED, "Accept": "application/json"}
    assert event["database"] == f"postgresql+psycopg://scd:{REDACTED}@db.example/scd"
    assert event["password"] == REDACTED
    assert lines[1]["event"] == "stdlib message"
    text = stream.getvalue()
    for secret in ("abc123", "xyz", "hunter2", "s3cret"):
        assert secret not in text


def test_redact_text_leaves_urls_without_passwords() -> None:
    assert redact_text("https://a.example/path?q=1") == "https://a.example/path?q=1"
    assert redact_text("see smtp://u:p4ss@mail:587 now") == f"see smtp://u:{REDACTED}@mail:587 now"
