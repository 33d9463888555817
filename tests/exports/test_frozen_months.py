"""Closed months, frozen (issue 14): once October is frozen, its exports are lookups that
give the bytes of the export made before the freeze, after every result, span, rollup
and usage bucket is gone and the catalog changed; a recomputation needs a reason and
keeps the earlier freeze; an open month is not frozen; the daemon's job freezes the
closed month once. On SQLite and PostgreSQL."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import jsonschema
import pytest
from sqlalchemy import text

from scd_monitor.analysis.reporting import SlaReporter
from scd_monitor.catalog import parse_catalog
from scd_monitor.errors import ConfigError
from scd_monitor.exports import (
    ExportResult,
    ExportSource,
    IncidentRef,
    MonthFreezeJob,
    MonthlyExportJob,
    build_month_export,
    export_month,
    freeze_document,
    freeze_month,
    read_manifest,
    recompute_month,
    store_usage,
    thaw_document,
)
from scd_monitor.exports.writer import RENDERERS
from scd_monitor.sla.model import Period
from scd_monitor.store import FrozenMonthRepository, Store
from tests.exports.conftest import INCIDENTS, NOW, FixedClock
from tests.exports.history import BOGOTA, CATALOG_YAML, build_store
from tests.exports.test_usage_section import (
    CATALOG_WITH_MEMBER,
    copy_database,
    october_usage,
    usage_url,
    write_usage,
)

__all__ = ["usage_url"]  # a fixture

ROOT = Path(__file__).resolve().parents[2]
FIRST = datetime(2026, 11, 1, 0, 0, tzinfo=BOGOTA)  # October's end
PRUNED = ("scd_probe_results", "scd_check_spans", "scd_check_machines", "scd_latency_hourly",
          "scd_tracker_cursors", "scd_xroad_usage", "scd_xroad_usage_cursors")  # fmt: skip
CHANGED_CATALOG = CATALOG_YAML.replace('version: "2026.10-prueba"', 'version: "2026.12-otro"')
CHANGED_CATALOG = CHANGED_CATALOG.replace("availability_target: 0.995", "availability_target: 0.9")
assert CHANGED_CATALOG.count("2026.12-otro") == 1 and "0.9," in CHANGED_CATALOG


@pytest.fixture(params=["sqlite", "postgresql"])
def october_url(request: pytest.FixtureRequest, usage_url: str, tmp_path: Path) -> Iterator[str]:
    """A store of October's history with usage buckets, private to the test."""
    if request.param == "sqlite":
        yield copy_database(usage_url, tmp_path / "october.db")
        return
    url = str(request.getfixturevalue("postgres_schema_url"))
    build_store(url).dispose()
    write_usage(url, october_usage())
    yield url


@pytest.fixture
def store(october_url: str) -> Iterator[Store]:
    s = Store(october_url)
    yield s
    s.dispose()


def source_of(store: Store, yaml: str = CATALOG_WITH_MEMBER) -> ExportSource:
    cat = parse_catalog(yaml)
    return ExportSource(SlaReporter(store, cat, FixedClock(NOW)), cat, usage=store_usage(store))


def incidents(_period: Period) -> Sequence[IncidentRef]:
    return INCIDENTS


def prune_everything(store: Store) -> None:
    with store.engine.begin() as conn:
        for table in PRUNED:
            conn.execute(text(f"DELETE FROM {table}"))  # noqa: S608 - our table names


def files_of(result: ExportResult) -> dict[str, bytes]:
    """The export's files but the manifest, by name."""
    return {f.name: (result.directory / f.name).read_bytes() for f in result.files}


def manifest_schema() -> jsonschema.Draft202012Validator:
    schema = json.loads((ROOT / "schemas" / "sla-export-manifest.schema.json").read_text())
    return jsonschema.Draft202012Validator(schema)


def test_a_frozen_month_is_exported_byte_for_byte_after_pruning_and_a_catalog_change(
    store: Store, tmp_path: Path
) -> None:
    source = source_of(store)
    before = export_month(source, month="2026-10", output_dir=tmp_path / "before", now=NOW,
                          incidents=INCIDENTS)  # fmt: skip
    before_alfa = export_month(source, month="2026-10", output_dir=tmp_path / "before",
                               now=NOW, incidents=INCIDENTS, provider="alfa")  # fmt: skip
    assert "sla-2026-10-uso.csv" in files_of(before), "the usage section is frozen too"
    months = FrozenMonthRepository(store)
    frozen, froze = freeze_month(source, months, month="2026-10", now=NOW, incidents=incidents)
    assert froze
    assert (frozen.info.revision, frozen.info.reason, frozen.info.frozen_by) == (
        1,
        "closed",
        "daemon",
    )
    assert frozen.info.report_sha256 == before.report_sha256
    assert frozen.info.catalog_version == "2026.10-prueba"
    assert frozen.info.sha256 == hashlib.sha256(frozen.document.encode()).hexdigest()

    prune_everything(store)
    changed = source_of(store, CHANGED_CATALOG)
    later = NOW + timedelta(days=400)
    recomputed = export_month(changed, month="2026-10", output_dir=tmp_path / "fresh", now=later)
    assert recomputed.report_sha256 != before.report_sha256, "a recomputation would differ"

    after = export_month(changed, month="2026-10", output_dir=tmp_path / "after", now=later,
                         months=months)  # fmt: skip
    assert files_of(after) == files_of(before)
    assert after.report_sha256 == before.report_sha256
    after_alfa = export_month(changed, month="2026-10", output_dir=tmp_path / "after",
                              now=later, provider="alfa", months=months)  # fmt: skip
    assert files_of(after_alfa) == files_of(before_alfa)

    manifest = read_manifest(after.directory)
    assert manifest is not None
    manifest_schema().validate(manifest)
    assert manifest["frozen"] == {
        "frozen_at": "2026-11-23T12:00:00Z",
        "frozen_by": "daemon",
        "reason": "closed",
        "revision": 1,
        "sha256": frozen.info.sha256,
        "software_version": frozen.info.software_version,
        "catalog_version": "2026.10-prueba",
    }
    assert manifest["catalog_version"] == "2026.10-prueba", "the frozen figures' catalog"
    plain = read_manifest(before.directory)
    assert plain is not None and plain["frozen"] is None
    manifest_schema().validate(plain)
    assert {k: v for k, v in manifest.items() if k != "frozen"} == {
        k: v for k, v in plain.items() if k != "frozen"
    }


def test_the_frozen_document_gives_back_an_equal_export(store: Store) -> None:
    export = build_month_export(source_of(store), month="2026-10", now=NOW, incidents=INCIDENTS)
    assert export.usage is not None and export.usage.has_data
    document = freeze_document(export)
    assert freeze_document(thaw_document(document)) == document
    assert thaw_document(document) == export
    with pytest.raises(ValueError, match="every provider"):
        freeze_document(thaw_document(document, provider="alfa"))
    with pytest.raises(ConfigError, match="gamma"):
        thaw_document(document, provider="gamma")
    provisional = build_month_export(source_of(store), month="2026-11", now=NOW)
    with pytest.raises(ValueError, match="not closed"):
        freeze_document(provisional)


def test_recompute_needs_a_reason_and_keeps_the_earlier_freeze(
    store: Store, tmp_path: Path
) -> None:
    months = FrozenMonthRepository(store)
    with pytest.raises(ConfigError, match="not frozen"):
        recompute_month(source_of(store), months, month="2026-10", now=NOW, reason="x", by="op")
    first, _ = freeze_month(source_of(store), months, month="2026-10", now=NOW)
    # The catalog changes (a new target): an export still shows the frozen figures…
    changed = source_of(store, CHANGED_CATALOG)
    assert freeze_month(changed, months, month="2026-10", now=NOW)[1] is False
    kept = export_month(changed, month="2026-10", output_dir=tmp_path / "a", now=NOW,
                        formats=["json"], months=months)  # fmt: skip
    assert kept.report_sha256 == first.info.report_sha256
    # … until an operator recomputes it, saying why.
    for reason in ("", "   ", "closed"):
        with pytest.raises(ConfigError, match="--reason"):
            recompute_month(changed, months, month="2026-10", now=NOW, reason=reason, by="op")
    later = NOW + timedelta(days=1)
    previous, new = recompute_month(changed, months, month="2026-10", now=later,
                                    reason="Meta corregida en el catálogo (oficio 123)",
                                    by="ana@monitor")  # fmt: skip
    assert previous == first.info
    assert (new.info.revision, new.info.reason, new.info.frozen_by) == (
        2, "Meta corregida en el catálogo (oficio 123)", "ana@monitor"
    )  # fmt: skip
    assert new.info.frozen_at == later and new.info.catalog_version == "2026.12-otro"
    assert new.info.report_sha256 != first.info.report_sha256
    [old] = months.history("2026-10")
    assert (old.revision, old.reason, old.superseded_at, old.superseded_by) == (
        1, "closed", later, "ana@monitor"
    )  # fmt: skip
    historical = months.historical("2026-10", 1)
    assert historical is not None and historical.document == first.document
    exported = export_month(changed, month="2026-10", output_dir=tmp_path / "b", now=NOW,
                            formats=["json"], months=months)  # fmt: skip
    assert exported.report_sha256 == new.info.report_sha256
    assert exported.frozen is not None and exported.frozen.revision == 2


def test_an_open_month_is_not_frozen(store: Store) -> None:
    months = FrozenMonthRepository(store)
    source = source_of(store)
    with pytest.raises(ConfigError, match="2026-11 has not closed yet"):
        freeze_month(source, months, month="2026-11", now=NOW)
    with pytest.raises(ConfigError, match="has not closed yet"):
        freeze_month(source, months, month="2026-10", now=FIRST - timedelta(seconds=1))
    with pytest.raises(ConfigError, match="catching up"):
        freeze_month(source, months, month="2026-10", now=FIRST + timedelta(minutes=2))
    with pytest.raises(ConfigError, match="YYYY-MM"):
        freeze_month(source, months, month="2026-13", now=NOW)
    assert months.months() == []


class Refusing:
    """A reporter that must not be asked: the month is frozen."""

    def report(self, *args: object, **kwargs: object) -> object:
        raise AssertionError("a frozen month was recomputed")


def test_the_daemon_job_freezes_the_closed_month_once(store: Store, tmp_path: Path) -> None:
    source = source_of(store)
    months = FrozenMonthRepository(store)
    job = MonthFreezeJob(lambda: source, months, incidents=incidents)
    assert job.due(FIRST - timedelta(minutes=1)) == "2026-09", "last month is September then"
    assert job.due(FIRST + timedelta(minutes=2)) is None, "the tracker may be catching up"
    at = FIRST + timedelta(minutes=5)
    assert job.due(at) == "2026-10"
    frozen = job.run(at)
    assert frozen is not None and frozen.info.frozen_at == at and frozen.info.revision == 1
    assert job.due(at + timedelta(minutes=10)) is None
    assert job.run(at + timedelta(minutes=10)) is None
    # Another process (a restart, a second daemon) reads it from the store: not again.
    refusing = ExportSource(Refusing(), source.catalog)  # type: ignore[arg-type]
    other = MonthFreezeJob(lambda: refusing, months)
    assert other.due(at + timedelta(days=3)) is None, "no catch-up limit, but frozen"
    assert other.run(at + timedelta(days=3)) is None
    assert [(m.month, m.revision) for m in months.months()] == [("2026-10", 1)]

    # The export job given the months renders the frozen month, without computing it.
    prune_everything(store)
    export_job = MonthlyExportJob(lambda: refusing, output_dir=tmp_path, months=months)
    result = export_job.run(FIRST + timedelta(minutes=10))
    assert result is not None and result.frozen is not None
    assert result.report_sha256 == frozen.info.report_sha256
    direct = export_month(source, month="2026-10", output_dir=tmp_path / "direct", now=NOW,
                          incidents=INCIDENTS, months=months)  # fmt: skip
    assert files_of(result) == files_of(direct)


def test_the_export_job_freezes_a_month_the_freeze_job_missed(store: Store, tmp_path: Path) -> None:
    months = FrozenMonthRepository(store)
    source = source_of(store)
    job = MonthlyExportJob(lambda: source, output_dir=tmp_path, months=months,
                           incidents=incidents)  # fmt: skip
    at = FIRST + timedelta(minutes=30)
    result = job.run(at)
    assert result is not None and result.frozen is not None
    info = months.info("2026-10")
    assert info is not None and info.frozen_at == at
    assert result.frozen.sha256 == info.sha256
    manifest = read_manifest(result.directory)
    assert manifest is not None
    manifest_schema().validate(manifest)
    assert b"SCD-2026-000123" in result.path("csv").read_bytes()


def test_instants_keep_their_zone_in_the_document(store: Store) -> None:
    """An instant in Bogotá time comes back in Bogotá time (not only the same instant)."""
    export = build_month_export(source_of(store), month="2026-10", now=NOW)
    local_end = export.report.now.astimezone(BOGOTA)
    moved = dataclasses.replace(export, report=dataclasses.replace(export.report, now=local_end))
    again = thaw_document(freeze_document(moved))
    assert again == moved
    assert again.report.now.tzinfo == BOGOTA
    assert again.report.period.start.tzinfo is UTC
    for fmt, render in RENDERERS.items():
        assert render(again) == render(moved), fmt
