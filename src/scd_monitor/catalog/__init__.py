"""The catalog of providers, services and checks: models and loading."""

from __future__ import annotations

from scd_monitor.catalog.loader import load_catalog, parse_catalog
from scd_monitor.catalog.models import (
    CHECK_KINDS,
    Catalog,
    HttpCheck,
    JsonAssertion,
    Provider,
    ResolvedCheck,
    Service,
    Sla,
    TlsCheck,
)

__all__ = [
    "CHECK_KINDS",
    "Catalog",
    "HttpCheck",
    "JsonAssertion",
    "Provider",
    "ResolvedCheck",
    "Service",
    "Sla",
    "TlsCheck",
    "load_catalog",
    "parse_catalog",
]
