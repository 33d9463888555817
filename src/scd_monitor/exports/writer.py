"""Writing an export: render, then publish a directory atomically with its manifest.

An export of month ``M`` (optionally of one provider ``P``) is the directory
``<output_dir>/sla-M`` (``sla-M-P``) holding ``sla-M.csv``, ``.json``, ``.pdf``,
``.xlsx`` (those asked for; with the CSV, ``sla-M-uso.csv`` when the export has the use
of the X-Road platform: :data:`COMPANIONS`) and ``manifest.json``: the files with their size and
SHA-256, the month, whether it is provisional, its ``status`` (``provisional``,
``final`` or ``insufficient_coverage``) with the services whose coverage withheld a
verdict (``insufficient_coverage``: provider, service, coverage, minimum), ``as_of``,
the catalog and software versions, ``report_sha256`` (the SHA-256 of the JSON
document, which identifies the figures) and ``frozen``: ``null``, or, for an export read
from a frozen month (:func:`export_month` with ``months``; issue 14), when, by whom and
why it was frozen, its revision, the frozen document's SHA-256 and the software and
catalog versions that computed it. The manifest holds no wall-clock time but the
freeze's: the same data gives the same manifest.

Publishing: every file is written and fsynced in a fresh temporary directory beside the
final one (``.sla-M.<random>.tmp``), the manifest last; the temporary directory is
fsynced and renamed into place, then the parent directory is fsynced. A directory named
``sla-M`` therefore always holds a complete export. Replacing an existing export moves
the old one aside (``.sla-M.<random>.old``) just before the rename and deletes it after:
readers see the old export or the new one, and for an instant neither. Exporting only
some formats keeps the existing export's other files when they were made from the same
figures (same ``report_sha256``) and drops them otherwise, so a manifest never lists a
file made from other data. One writer per export directory at a time.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from scd_monitor import __version__
from scd_monitor.errors import ConfigError, ScdMonitorError
from scd_monitor.exports.coverage import ReportStatus
from scd_monitor.exports.csvfile import render_csv, render_usage_csv
from scd_monitor.exports.jsonfile import render_json
from scd_monitor.exports.model import (
    EXPORT_VERSION,
    ExportSource,
    FrozenFrom,
    IncidentRef,
    MonthExport,
    build_month_export,
    thaw_document,
)
from scd_monitor.exports.pdffile import render_pdf
from scd_monitor.exports.xlsxfile import render_xlsx
from scd_monitor.sla.calendar import parse_month
from scd_monitor.store.months import FrozenMonth, FrozenMonthRepository
from scd_monitor.timefmt import iso_utc

__all__ = [
    "COMPANIONS",
    "FORMATS",
    "MANIFEST",
    "RENDERERS",
    "ExportError",
    "ExportResult",
    "ExportedFile",
    "export_month",
    "export_name",
    "frozen_export",
    "frozen_from",
    "parse_formats",
    "read_manifest",
    "verify_export",
    "write_export",
]

Renderer = Callable[[MonthExport], bytes]

RENDERERS: dict[str, Renderer] = {
    "csv": render_csv,
    "json": render_json,
    "pdf": render_pdf,
    "xlsx": render_xlsx,
}
"""Format → renderer; the keys are the ``--format`` values and the file extensions."""

Companion = Callable[[MonthExport], bytes | None]

COMPANIONS: dict[str, tuple[tuple[str, Companion], ...]] = {
    "csv": (("uso", render_usage_csv),),
}
"""Format → further files of that format, written with it: (part, renderer); the file is
``<export name>-<part>.<format>``, none when the renderer gives ``None``. The CSV holds
one table per file, so the use of the X-Road platform is a file of its own."""

FORMATS: tuple[str, ...] = tuple(sorted(RENDERERS))
MANIFEST = "manifest.json"
MANIFEST_VERSION = 3
"""2: ``status`` and ``insufficient_coverage`` (issue 11); 3: ``frozen`` (issue 14)."""
_STALE = 3600.0
"""Seconds after which a leftover temporary directory (a crashed writer's) is removed."""


class ExportError(ScdMonitorError):
    """An export could not be written (the file system refused)."""


@dataclass(frozen=True, slots=True)
class ExportedFile:
    name: str
    format: str
    size: int
    sha256: str

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "format": self.format, "size": self.size, "sha256": self.sha256}


@dataclass(frozen=True, slots=True)
class ExportResult:
    """What :func:`export_month` wrote."""

    directory: Path
    month: str
    provider: str | None
    provisional: bool
    as_of: datetime
    report_sha256: str
    files: tuple[ExportedFile, ...]
    """Every file the export directory holds now (also ones kept from before), by name."""
    status: ReportStatus = ReportStatus.FINAL
    """``provisional``, ``final`` or ``insufficient_coverage`` (as in the manifest)."""
    insufficient_coverage: tuple[tuple[str, str], ...] = ()
    """(provider, service) of each service without a verdict for lack of measurement."""
    frozen: FrozenFrom | None = None
    """The freeze the export was read from; ``None`` when it was computed."""

    @property
    def manifest(self) -> Path:
        return self.directory / MANIFEST

    def path(self, fmt: str, part: str | None = None) -> Path:
        """The file of format ``fmt`` (with ``part``: that companion file,
        :data:`COMPANIONS`); ``KeyError`` if the export has none."""
        stem = self.directory.name if part is None else f"{self.directory.name}-{part}"
        for f in self.files:
            if f.format == fmt and f.name == f"{stem}.{fmt}":
                return self.directory / f.name
        if part is None:  # a directory renamed by hand: its one file of the format
            for f in self.files:
                if f.format == fmt:
                    return self.directory / f.name
        raise KeyError(fmt if part is None else f"{part}.{fmt}")


def export_name(month: str, provider: str | None = None) -> str:
    """``sla-2026-10``, or ``sla-2026-10-<provider>`` for one provider's export."""
    return f"sla-{month}" if provider is None else f"sla-{month}-{provider}"


def export_month(
    source: ExportSource,
    *,
    month: str,
    formats: Iterable[str] = FORMATS,
    output_dir: Path,
    provider: str | None = None,
    now: datetime,
    incidents: Sequence[IncidentRef] = (),
    months: FrozenMonthRepository | None = None,
) -> ExportResult:
    """Export ``month`` (``YYYY-MM``, catalog time zone) into ``output_dir/sla-<month>``.

    A closed month is evaluated as of its end, an open one as of ``now`` (provisional).
    With ``months``, a frozen month is not evaluated at all: its frozen figures are
    rendered (:func:`frozen_export`; ``source`` and ``incidents`` are not read).
    Raises :class:`ConfigError` for a bad month, format or provider, and
    :class:`ExportError` when the files cannot be written; the store's
    :class:`~scd_monitor.errors.StoreError` passes through.
    """
    wanted = parse_formats(formats)
    export = None if months is None else frozen_export(months, month, provider=provider)
    if export is None:
        export = build_month_export(
            source, month=month, now=now, provider=provider, incidents=incidents
        )
    return write_export(export, formats=wanted, output_dir=output_dir)


def frozen_from(frozen: FrozenMonth) -> FrozenFrom:
    """What an export of ``frozen`` says of it (the manifest's ``frozen``)."""
    info = frozen.info
    return FrozenFrom(
        frozen_at=info.frozen_at,
        frozen_by=info.frozen_by,
        reason=info.reason,
        revision=info.revision,
        sha256=info.sha256,
        software_version=info.software_version,
        catalog_version=info.catalog_version,
    )


def frozen_export(
    months: FrozenMonthRepository, month: str, *, provider: str | None = None
) -> MonthExport | None:
    """The export of ``month`` read from its frozen figures (cut to ``provider``);
    ``None`` when the month is not frozen. A lookup: no span, rollup or catalog read."""
    try:
        year, number = parse_month(month)
    except ValueError as exc:
        raise ConfigError([f"--month: {exc}"]) from None
    frozen = months.get(f"{year:04d}-{number:02d}")
    if frozen is None:
        return None
    return thaw_document(frozen.document, provider=provider, frozen=frozen_from(frozen))


def write_export(export: MonthExport, *, formats: Iterable[str], output_dir: Path) -> ExportResult:
    """Render ``export`` in ``formats`` and publish it atomically (module docstring)."""
    wanted = parse_formats(formats)
    rendered = {fmt: RENDERERS[fmt](export) for fmt in wanted}
    document = rendered["json"] if "json" in rendered else render_json(export)
    digest = hashlib.sha256(document).hexdigest()
    name = export_name(export.month, export.provider_filter)
    final = output_dir / name
    contents: dict[str, tuple[str, bytes]] = {
        f"{name}.{fmt}": (fmt, data) for fmt, data in rendered.items()
    }
    for fmt in wanted:
        for part, companion in COMPANIONS.get(fmt, ()):
            extra = companion(export)
            if extra is not None:
                contents[f"{name}-{part}.{fmt}"] = (fmt, extra)
    try:
        output_dir.mkdir(parents=True, exist_ok=True)
        _remove_leftovers(output_dir, name)
        for entry, data in _reusable(final, digest, exclude=set(wanted)):
            contents.setdefault(entry["name"], (entry["format"], data))
    except OSError as exc:
        raise ExportError(f"preparing {final}: {exc}") from exc
    files = tuple(
        ExportedFile(n, fmt, len(data), hashlib.sha256(data).hexdigest())
        for n, (fmt, data) in sorted(contents.items())
    )
    manifest = _manifest(export, name, digest, files)
    try:
        tmp = Path(tempfile.mkdtemp(prefix=f".{name}.", suffix=".tmp", dir=output_dir))
    except OSError as exc:
        raise ExportError(f"creating a temporary directory in {output_dir}: {exc}") from exc
    try:
        for n, (_fmt, data) in contents.items():
            _write(tmp / n, data)
        _write(tmp / MANIFEST, manifest)
        tmp.chmod(0o755)
        _fsync_dir(tmp)
        _publish(tmp, final)
    except OSError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        raise ExportError(f"writing {final}: {exc}") from exc
    return ExportResult(
        directory=final,
        month=export.month,
        provider=export.provider_filter,
        provisional=export.provisional,
        as_of=export.as_of,
        report_sha256=digest,
        files=files,
        status=export.status,
        insufficient_coverage=tuple(
            (s.report.provider, s.report.service) for s in export.insufficient_coverage
        ),
        frozen=export.frozen,
    )


def read_manifest(directory: Path) -> dict[str, Any] | None:
    """The manifest of the export in ``directory``, or ``None`` if there is none (or it
    cannot be read: an export without a readable manifest is not an export)."""
    try:
        data = json.loads((directory / MANIFEST).read_bytes())
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or not isinstance(data.get("files"), list):
        return None
    return data


def verify_export(directory: Path) -> list[str]:
    """Problems with the export in ``directory`` (missing or altered files); ``[]`` if
    every file its manifest lists is there with the listed size and SHA-256."""
    manifest = read_manifest(directory)
    if manifest is None:
        return [f"{directory}: no readable {MANIFEST}"]
    problems = []
    for entry in manifest["files"]:
        path = directory / str(entry.get("name"))
        try:
            data = path.read_bytes()
        except OSError as exc:
            problems.append(f"{path}: {exc.strerror or exc}")
            continue
        if len(data) != entry.get("size") or hashlib.sha256(data).hexdigest() != entry.get(
            "sha256"
        ):
            problems.append(f"{path}: does not match {MANIFEST}")
    return problems


# -- internals --------------------------------------------------------------------------


def parse_formats(formats: Iterable[str]) -> tuple[str, ...]:
    wanted = tuple(sorted(set(formats)))
    unknown = [f for f in wanted if f not in RENDERERS]
    if unknown or not wanted:
        choices = "|".join(FORMATS)
        what = ", ".join(repr(f) for f in unknown) or "none"
        raise ConfigError([f"--format: expected {choices}, got {what}"])
    return wanted


def _manifest(export: MonthExport, name: str, digest: str, files: Sequence[ExportedFile]) -> bytes:
    body = {
        "manifest_version": MANIFEST_VERSION,
        "export_version": EXPORT_VERSION,
        "name": name,
        "month": export.month,
        "provider": export.provider_filter,
        "provisional": export.provisional,
        "status": export.status.value,
        "insufficient_coverage": export.insufficient_coverage_json(),
        "period": {"start": iso_utc(export.period.start), "end": iso_utc(export.period.end)},
        "as_of": iso_utc(export.as_of),
        "timezone": export.timezone,
        "catalog_version": export.catalog_version,
        "software_version": __version__,
        "report_sha256": digest,
        "frozen": None if export.frozen is None else export.frozen.to_json(),
        "files": [f.to_json() for f in files],
    }
    return (json.dumps(body, indent=2, ensure_ascii=False) + "\n").encode("utf-8")


def _reusable(
    final: Path, digest: str, *, exclude: set[str]
) -> list[tuple[Mapping[str, Any], bytes]]:
    """Files of the existing export made from the same figures, in other formats."""
    manifest = read_manifest(final)
    if manifest is None or manifest.get("report_sha256") != digest:
        return []
    kept = []
    for entry in manifest["files"]:
        fmt, name = entry.get("format"), entry.get("name")
        if fmt in exclude or fmt not in RENDERERS or not isinstance(name, str) or "/" in name:
            continue
        try:
            data = (final / name).read_bytes()
        except FileNotFoundError:
            continue
        if hashlib.sha256(data).hexdigest() == entry.get("sha256"):
            kept.append((entry, data))
    return kept


def _write(path: Path, data: bytes) -> None:
    with path.open("xb") as out:
        out.write(data)
        out.flush()
        os.fsync(out.fileno())


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _publish(tmp: Path, final: Path) -> None:
    parent = final.parent
    if not final.exists():
        tmp.rename(final)
        _fsync_dir(parent)
        return
    old = Path(tempfile.mkdtemp(prefix=f".{final.name}.", suffix=".old", dir=parent))
    final.rename(old / final.name)
    try:
        tmp.rename(final)
    except OSError:
        (old / final.name).rename(final)
        raise
    _fsync_dir(parent)
    shutil.rmtree(old, ignore_errors=True)


def _remove_leftovers(output_dir: Path, name: str) -> None:
    """Remove temporary directories a crashed writer of ``name`` left (older than 1 h)."""
    cutoff = time.time() - _STALE
    for path in output_dir.glob(f".{name}.*"):
        if path.suffix in (".tmp", ".old") and path.is_dir() and path.stat().st_mtime < cutoff:
            shutil.rmtree(path, ignore_errors=True)
