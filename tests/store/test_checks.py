"""Checks in the store (:class:`CheckRepository`), on SQLite and PostgreSQL alike."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from scd_monitor.catalog import parse_catalog
from scd_monitor.catalog.models import ResolvedCheck, Sla, TlsCheck
from scd_monitor.store import CheckRepository, Store
from tests.conftest import utc

T0 = datetime(2026, 11, 23, 15, 0, tzinfo=UTC)

CATALOG = """
providers:
  - id: prestador-a
    name: Prestador A
    services:
      - id: autenticacion
        type: autenticacion_digital
        checks:
          - {id: oidc, kind: http, url: "https://a.example/.well-known/openid-configuration"}
          - {id: cert, kind: tls, host: a.example}
  - id: prestador-b
    name: Prestador B
    services:
      - id: carpeta
        type: carpeta_ciudadana
        checks:
          - {id: health, kind: http, url: "https://b.example/health", interval: 1m, timeout: 5s}
"""


@pytest.fixture
def repo(store: Store) -> CheckRepository:
    return CheckRepository(store)


def test_sync_adds_updates_retires_and_revives(repo: CheckRepository) -> None:
    catalog = parse_catalog(CATALOG)
    checks = catalog.resolved_checks()
    t1, t2, t3 = utc(2026, 11, 1, 0, 0, 0), utc(2026, 11, 2, 0, 0, 0), utc(2026, 11, 3, 0, 0, 0)
    repo.sync(checks, t1)
    rows = {r.id: r for r in repo.list()}
    assert set(rows) == {
        "prestador-a/autenticacion/oidc",
        "prestador-a/autenticacion/cert",
        "prestador-b/carpeta/health",
    }
    health = rows["prestador-b/carpeta/health"]
    assert (health.interval_seconds, health.timeout_seconds) == (60.0, 5.0)
    assert rows["prestador-a/autenticacion/cert"].target == "a.example:443"

    repo.sync(checks[:2], t2)  # prestador-b left the catalog: retired, history kept
    rows = {r.id: r for r in repo.list()}
    assert rows["prestador-b/carpeta/health"].retired_at == t2
    assert rows["prestador-a/autenticacion/oidc"].retired_at is None
    assert rows["prestador-a/autenticacion/oidc"].first_seen == t1
    assert [r.id for r in repo.list(include_retired=False)] == [
        "prestador-a/autenticacion/cert",
        "prestador-a/autenticacion/oidc",
    ]

    repo.sync(checks, t3)  # it came back
    rows = {r.id: r for r in repo.list()}
    assert rows["prestador-b/carpeta/health"].retired_at is None
    assert rows["prestador-b/carpeta/health"].first_seen == t1
    assert rows["prestador-b/carpeta/health"].last_seen == t3


def test_sync_writes_only_what_changed_and_retires(repo: CheckRepository) -> None:
    def check(name: str, interval: int = 30) -> ResolvedCheck:
        spec = TlsCheck(id=name, kind="tls", host="a.example")
        return ResolvedCheck(
            provider="p",
            service="s",
            check=name,
            kind="tls",
            interval=timedelta(seconds=interval),
            timeout=timedelta(seconds=5),
            critical=True,
            spec=spec,
            service_type="otro",
            provider_name="P",
            sla=Sla(),
        )

    repo.sync([check("a"), check("b")], T0)
    repo.sync([check("a", 60)], T0 + timedelta(minutes=1))
    rows = {r.id: r for r in repo.list()}
    assert rows["p/s/a"].interval_seconds == 60
    assert rows["p/s/a"].last_seen == T0 + timedelta(minutes=1)
    assert rows["p/s/a"].first_seen == T0
    assert rows["p/s/b"].retired_at == T0 + timedelta(minutes=1)
    assert rows["p/s/b"].last_seen == T0
    repo.sync([check("a", 60), check("b")], T0 + timedelta(minutes=2))
    rows = {r.id: r for r in repo.list()}
    assert rows["p/s/b"].retired_at is None
    assert rows["p/s/b"].last_seen == T0 + timedelta(minutes=2)
