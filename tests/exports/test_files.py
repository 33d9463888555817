"""The export directory: manifest, hashes, byte-identical regeneration, atomic publishing,
the JSON Schemas."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import jsonschema
import pytest

from scd_monitor.errors import ConfigError
from scd_monitor.exports import (
    FORMATS,
    ExportError,
    ExportSource,
    export_month,
    read_manifest,
    verify_export,
)
from scd_monitor.exports import writer as writer_module
from tests.exports.conftest import INCIDENTS, NOW
from tests.exports.readers import read_json

SCHEMAS = Path(__file__).resolve().parents[2] / "schemas"


def _validator(name: str) -> jsonschema.Draft202012Validator:
    schema = json.loads((SCHEMAS / name).read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema, format_checker=jsonschema.FormatChecker())


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_the_directory_holds_the_files_and_a_manifest_with_their_hashes(
    source: ExportSource, tmp_path: Path
) -> None:
    result = export_month(source, month="2026-10", output_dir=tmp_path, now=NOW)
    assert result.directory == tmp_path / "sla-2026-10"
    assert sorted(p.name for p in result.directory.iterdir()) == [
        "manifest.json", "sla-2026-10.csv", "sla-2026-10.json", "sla-2026-10.pdf",
        "sla-2026-10.xlsx",
    ]  # fmt: skip
    assert [p.name for p in tmp_path.iterdir()] == ["sla-2026-10"], "no temporary left behind"
    manifest = read_manifest(result.directory)
    assert manifest is not None
    _validator("sla-export-manifest.schema.json").validate(manifest)
    assert manifest["month"] == "2026-10" and manifest["provisional"] is False
    assert manifest["catalog_version"] == "2026.10-prueba"
    assert manifest["software_version"] == "0.1.0"
    assert manifest["as_of"] == "2026-11-01T05:00:00Z"
    assert [f["format"] for f in manifest["files"]] == sorted(FORMATS)
    for entry in manifest["files"]:
        path = result.directory / entry["name"]
        assert entry["sha256"] == _sha(path)
        assert entry["size"] == path.stat().st_size
    assert manifest["report_sha256"] == _sha(result.path("json"))
    assert verify_export(result.directory) == []


def test_the_json_export_matches_its_schema(source: ExportSource, tmp_path: Path) -> None:
    validator = _validator("sla-export.schema.json")
    closed = export_month(
        source, month="2026-10", output_dir=tmp_path, now=NOW, incidents=INCIDENTS
    )
    validator.validate(read_json(closed.path("json")))
    open_month = export_month(
        source, month="2026-11", formats=["json"], output_dir=tmp_path, now=NOW
    )
    validator.validate(read_json(open_month.path("json")))
    one = export_month(
        source, month="2026-10", formats=["json"], output_dir=tmp_path, now=NOW, provider="beta"
    )
    doc = read_json(one.path("json"))
    validator.validate(doc)
    assert one.directory.name == "sla-2026-10-beta"
    assert doc["provider_filter"] == "beta"
    assert {s["provider"] for s in doc["services"]} == {"beta"}
    assert [i["id"] for i in doc["incidents"]] == []


def test_regenerating_gives_byte_identical_files(source: ExportSource, tmp_path: Path) -> None:
    first = export_month(
        source, month="2026-10", output_dir=tmp_path / "a", now=NOW, incidents=INCIDENTS
    )
    # Later, into another directory: the month is closed, so nothing depends on "now".
    later = NOW.replace(year=2027)
    second = export_month(
        source, month="2026-10", output_dir=tmp_path / "b", now=later, incidents=INCIDENTS
    )
    for fmt in FORMATS:
        assert _sha(first.path(fmt)) == _sha(second.path(fmt)), fmt
    assert (first.manifest.read_bytes()) == second.manifest.read_bytes()
    assert first.files == second.files


def test_a_provisional_export_is_reproducible_for_the_same_now(
    source: ExportSource, tmp_path: Path
) -> None:
    a = export_month(source, month="2026-11", output_dir=tmp_path / "a", now=NOW)
    b = export_month(source, month="2026-11", output_dir=tmp_path / "b", now=NOW)
    assert a.provisional and b.provisional
    assert a.files == b.files


def test_regenerating_in_place_replaces_the_export(source: ExportSource, tmp_path: Path) -> None:
    old = export_month(source, month="2026-10", output_dir=tmp_path, now=NOW)
    new = export_month(source, month="2026-10", output_dir=tmp_path, now=NOW, incidents=INCIDENTS)
    assert new.directory == old.directory
    assert new.report_sha256 != old.report_sha256, "the incidents are part of the figures"
    assert verify_export(new.directory) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sla-2026-10"]


def test_exporting_some_formats_keeps_the_others_only_if_they_show_the_same_figures(
    source: ExportSource, tmp_path: Path
) -> None:
    export_month(source, month="2026-10", formats=["pdf", "xlsx"], output_dir=tmp_path, now=NOW)
    again = export_month(source, month="2026-10", formats=["csv"], output_dir=tmp_path, now=NOW)
    assert [f.format for f in again.files] == ["csv", "pdf", "xlsx"]
    assert verify_export(again.directory) == []
    changed = export_month(
        source, month="2026-10", formats=["csv"], output_dir=tmp_path, now=NOW, incidents=INCIDENTS
    )
    assert [f.format for f in changed.files] == ["csv"], "stale PDF/XLSX are dropped"
    assert sorted(p.name for p in changed.directory.iterdir()) == [
        "manifest.json", "sla-2026-10.csv",
    ]  # fmt: skip


def test_a_failed_export_leaves_the_previous_one_intact(
    source: ExportSource, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = export_month(source, month="2026-10", output_dir=tmp_path, now=NOW)
    listing = {p.name: p.read_bytes() for p in before.directory.iterdir()}

    real_write = writer_module._write

    def failing_write(path: Path, data: bytes) -> None:
        if path.name == "manifest.json":
            raise OSError(28, "No space left on device")
        real_write(path, data)

    monkeypatch.setattr(writer_module, "_write", failing_write)
    with pytest.raises(ExportError, match="No space left"):
        export_month(source, month="2026-10", output_dir=tmp_path, now=NOW, incidents=INCIDENTS)
    assert {p.name: p.read_bytes() for p in before.directory.iterdir()} == listing
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sla-2026-10"], "temporary removed"


def test_leftovers_of_a_crashed_writer_are_removed(source: ExportSource, tmp_path: Path) -> None:
    stale = tmp_path / ".sla-2026-10.abc123.tmp"
    stale.mkdir()
    (stale / "sla-2026-10.csv").write_text("half")
    os.utime(stale, (0, 0))
    fresh = tmp_path / ".sla-2026-10.def456.tmp"  # maybe another writer's, still working
    fresh.mkdir()
    export_month(source, month="2026-10", formats=["csv"], output_dir=tmp_path, now=NOW)
    assert not stale.exists()
    assert fresh.exists()


def test_verify_export_finds_altered_and_missing_files(
    source: ExportSource, tmp_path: Path
) -> None:
    result = export_month(
        source, month="2026-10", formats=["csv", "json"], output_dir=tmp_path, now=NOW
    )
    result.path("csv").write_bytes(result.path("csv").read_bytes() + b"x")
    result.path("json").unlink()
    problems = verify_export(result.directory)
    assert len(problems) == 2
    assert any("does not match" in p for p in problems)
    assert verify_export(tmp_path / "nothing") == [
        f"{tmp_path / 'nothing'}: no readable manifest.json"
    ]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"month": "2026-13"}, "--month: expected a month as YYYY-MM"),
        ({"month": "2026-12"}, "--month: 2026-12 has not begun yet"),
        ({"month": "2026-10", "provider": "gamma"}, "--provider: no provider 'gamma'"),
        ({"month": "2026-10", "formats": ["docx"]}, "--format: expected csv|json|pdf|xlsx"),
    ],
)
def test_bad_requests_are_configuration_errors(
    source: ExportSource, tmp_path: Path, kwargs: dict[str, object], message: str
) -> None:
    with pytest.raises(ConfigError) as info:
        export_month(source, output_dir=tmp_path, now=NOW, **kwargs)  # type: ignore[arg-type]
    assert info.value.problems[0].startswith(message)
    assert not (tmp_path / "sla-2026-10").exists()


def test_an_unwritable_output_directory_is_an_export_error(
    source: ExportSource, tmp_path: Path
) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(ExportError):
        export_month(source, month="2026-10", formats=["csv"], output_dir=blocker, now=NOW)
