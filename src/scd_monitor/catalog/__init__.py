"""The catalog of providers, services and checks: models and loading."""

from __future__ import annotations

from scd_monitor.catalog.durations import Duration, format_duration, parse_duration
from scd_monitor.catalog.loader import load_catalog, parse_catalog
from scd_monitor.catalog.models import (
    CHECK_KINDS,
    Catalog,
    HttpCheck,
    JsonAssertion,
    Provider,
    ResolvedCheck,
    SecretRef,
    Service,
    Sla,
    TlsCheck,
    TlsOptions,
)

__all__ = [
    "CHECK_KINDS",
    "Catalog",
    "Duration",
    "HttpCheck",
    "JsonAssertion",
    "Provider",
    "ResolvedCheck",
    "SecretRef",
    "Service",
    "Sla",
    "TlsCheck",
    "TlsOptions",
    "format_duration",
    "load_catalog",
    "parse_catalog",
    "parse_duration",
]
