"""Configuration types shared by the catalog, the settings and the sinks.

The bottom floor of the package: it imports nothing of the application.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated
from urllib.parse import urlsplit

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, SecretStr, model_validator

SLUG_PATTERN = r"^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$"
Slug = Annotated[str, Field(pattern=SLUG_PATTERN)]


class StrictModel(BaseModel):
    """Base of every catalog model: unknown keys are errors; values are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class SecretRef(StrictModel):
    """A secret read from the environment or from a file, never written in the catalog.

    After loading, ``value`` holds it as a ``SecretStr`` (never printed).
    """

    env: str | None = None
    file: Path | None = None
    value: SecretStr | None = Field(default=None, exclude=True)

    @model_validator(mode="after")
    def _one_source(self) -> SecretRef:
        if (self.env is None) == (self.file is None):
            raise ValueError("give exactly one of 'env' or 'file'")
        return self


class TlsOptions(StrictModel):
    """How a check speaks TLS to its target."""

    verify: bool = True
    ca_file: Path | None = None
    client_cert: Path | None = None
    client_key: Path | None = None
    server_name: str | None = None

    @model_validator(mode="after")
    def _key_needs_cert(self) -> TlsOptions:
        if self.client_key is not None and self.client_cert is None:
            raise ValueError("'client_key' needs 'client_cert'")
        return self


def _http_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"expected an http:// or https:// URL with a host, got {value!r}")
    return value


HttpUrlText = Annotated[str, AfterValidator(_http_url)]


def _one_line(value: str) -> str:
    for ch in value:
        code = ord(ch)
        if code < 0x20 or 0x7F <= code <= 0x9F or 0xD800 <= code <= 0xDFFF:
            raise ValueError(
                f"must be one line of text: control character U+{code:04X} at position "
                f"{value.index(ch) + 1}"
            )
    return value


Label = Annotated[str, AfterValidator(_one_line)]
"""A name or reason people read on boards, reports and mail headers: one line of text
(no control characters, NUL, lone surrogates or line breaks)."""
