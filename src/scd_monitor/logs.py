"""structlog set-up: one JSON object per line when not on a terminal, no secrets ever.

Standard-library loggers (APScheduler, SQLAlchemy) go through the same renderer, so the
whole daemon speaks one format.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import MutableMapping
from typing import Any, TextIO, overload

import structlog
from pydantic import SecretStr

_SECRET_KEYS = re.compile(r"(pass(word)?|secret|token|authorization|api[_-]?key|cookie)", re.I)
_URL_PASSWORD = re.compile(r"(?P<scheme>[a-z][a-z0-9+.-]*://)(?P<user>[^:/@\s]+):[^@/\s]+@", re.I)
_QUERY_SECRET = re.compile(
    r"(?P<k>[?&;](?:[\w.-]*(?:token|key|secret|pass(?:word)?|sig(?:nature)?|auth|code)[\w.-]*)=)"
    r"[^&;#\s\"']+",
    re.I,
)
_BEARER = re.compile(r"\b(Bearer|Basic)\s+[A-Za-z0-9._~+/=-]+", re.I)

REDACTED = "**********"


def redact_text(text: str) -> str:
    """Hide the password of any ``scheme://user:password@host`` in ``text``."""
    return _URL_PASSWORD.sub(rf"\g<scheme>\g<user>:{REDACTED}@", text)


@overload
def redact_evidence(text: str) -> str: ...
@overload
def redact_evidence(text: None) -> None: ...
def redact_evidence(text: str | None) -> str | None:
    """Passwords in URLs, secret-looking query parameters, bearer tokens: masked.

    For text that leaves the monitor (incident reports, sink errors quoting a URL).
    """
    if text is None:
        return None
    text = redact_text(text)
    text = _QUERY_SECRET.sub(lambda m: m.group("k") + REDACTED, text)
    return _BEARER.sub(lambda m: f"{m.group(1)} {REDACTED}", text)


def _redact(value: Any, key: str = "") -> Any:
    if isinstance(value, SecretStr):
        return REDACTED
    if key and _SECRET_KEYS.search(key) and value not in (None, "", False):
        return REDACTED
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, dict):
        return {k: _redact(v, str(k)) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_redact(v) for v in value]
    return value


def redact_processor(
    _logger: Any, _method: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """A structlog processor: secret-looking keys, ``SecretStr`` and URL passwords masked.

    ``phases`` (a probe's timings: step names such as ``token`` or ``authorization`` →
    seconds it measured itself) is left as it is."""
    for key, value in list(event_dict.items()):
        if key == "phases" and _only_numbers(value):
            continue
        event_dict[key] = _redact(value, key)
    return event_dict


def _only_numbers(value: Any) -> bool:
    return isinstance(value, dict) and all(
        isinstance(v, int | float) and not isinstance(v, bool) for v in value.values()
    )


def configure_logging(fmt: str = "auto", level: str = "info", stream: TextIO | None = None) -> None:
    """Configure structlog and the standard library's root logger once, at start-up."""
    stream = stream or sys.stderr
    use_json = fmt == "json" or (fmt == "auto" and not stream.isatty())
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        redact_processor,
    ]
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if use_json
        else structlog.dev.ConsoleRenderer(colors=stream.isatty())
    )
    structlog.configure(
        processors=[
            *shared,
            structlog.processors.format_exc_info,
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[*shared, structlog.stdlib.ExtraAdder()],
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            renderer,
        ],
    )
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # Third-party chatter stays at warning; our own events are structlog's.
    for noisy in ("alembic", "apscheduler", "httpx", "httpcore", "sqlalchemy", "asyncio"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
