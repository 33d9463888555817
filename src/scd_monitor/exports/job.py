"""The scheduled export and freeze: the previous month, once it closed, once.

The daemon asks :meth:`MonthlyExportJob.due` on its state-tracking tick and calls
:meth:`MonthlyExportJob.run` (in a worker thread: it reads the store and writes files)
when a month is due. Due means: it is the first day of a month in the catalog's time
zone, at least ``settle`` after midnight (so the state tracker has turned the month's
last results into spans), before ``catch_up`` after midnight (one day by default: a
daemon down on the whole 1st does not export later; ``scd-monitor export sla`` does),
and the export directory has no *completed* export of the previous month yet.

"Once" is read from the export directory, not from memory, so a restart does not redo
it: a completed export is a ``sla-YYYY-MM`` directory whose manifest says it is not
provisional, covers every provider and lists every format the job writes, each file
present with its listed size. A provisional export made on demand during the month
does not count, so the job replaces it with the final one. A closed month exported with
``status`` ``insufficient_coverage`` (some services measured below their minimum
coverage, so without a verdict) is complete too: exporting it again would give the same
files; the job logs a warning naming those services. After a failure the job is not
due again for ``retry_after``.

**Frozen months** (issue 14). :class:`MonthFreezeJob` freezes the previous month once it
closed: due from ``settle`` after the new month began in the catalog's zone (the state
tracker has then turned the month's last results into spans; no ``catch_up``: a daemon
down on the 1st freezes it when it is back) until the store holds the month frozen
(read from the store, so a restart or a second daemon does not freeze it again; two
freezing at once store it once). Freezing computes the month's export of every provider
as :func:`~scd_monitor.exports.model.build_month_export` does and stores it
(:func:`freeze_month`, reason ``closed``). From then on the month is never recomputed
implicitly: :class:`MonthlyExportJob` given ``months`` (and ``scd-monitor export sla``)
render the frozen figures. Only :func:`recompute_month` (``scd-monitor sla recompute``)
computes it again, with the operator's reason, keeping the earlier freeze in the
store's history. :func:`freeze_month` is also ``scd-monitor sla freeze``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import structlog

from scd_monitor import __version__
from scd_monitor.errors import ConfigError, ScdMonitorError, StoreError
from scd_monitor.exports.jsonfile import render_json
from scd_monitor.exports.model import (
    EXPORT_VERSION,
    FROZEN_DOCUMENT_VERSION,
    ExportSource,
    IncidentRef,
    build_month_export,
    freeze_document,
)
from scd_monitor.exports.writer import (
    FORMATS,
    ExportResult,
    export_month,
    export_name,
    parse_formats,
    read_manifest,
)
from scd_monitor.sla.calendar import month_of, month_period, parse_month
from scd_monitor.sla.model import Period
from scd_monitor.store.months import (
    CLOSED,
    FrozenMonth,
    FrozenMonthInfo,
    FrozenMonthRepository,
    NewFreeze,
    clean_reason,
)

__all__ = [
    "SETTLE",
    "MonthFreezeJob",
    "MonthlyExportJob",
    "closed_month",
    "completed_export",
    "freeze_month",
    "recompute_month",
]

log = structlog.get_logger("scd_monitor.exports")

IncidentSource = Callable[[Period], Sequence[IncidentRef]]
"""The incidents of a period (issue 6); the job asks it for the month it exports."""

SETTLE = timedelta(minutes=5)
"""How long after a month's end the state tracker is taken to have caught up past it."""


def closed_month(month: str, tz: ZoneInfo, now: datetime, *, settle: timedelta = SETTLE) -> str:
    """``month`` as ``YYYY-MM`` when it is closed at ``now``: its end in ``tz`` at least
    ``settle`` ago. :class:`ConfigError` for a malformed month or one not closed yet."""
    try:
        year, number = parse_month(month)
    except ValueError as exc:
        raise ConfigError([f"--month: {exc}"]) from None
    period = month_period(year, number, tz)
    name = f"{year:04d}-{number:02d}"
    if now < period.end:
        closes = period.end.astimezone(tz).isoformat(timespec="minutes")
        raise ConfigError([f"--month: {name} has not closed yet (it closes at {closes})"])
    if now < period.end + settle:
        ready = (period.end + settle).astimezone(tz).isoformat(timespec="minutes")
        raise ConfigError(
            [f"--month: {name} closed moments ago; the state tracker may still be catching up "
             f"(try again from {ready})"]
        )  # fmt: skip
    return name


def _new_freeze(
    source: ExportSource,
    *,
    month: str,
    now: datetime,
    incidents: IncidentSource | None,
    by: str,
    reason: str,
) -> NewFreeze:
    """Compute ``month`` (closed) as the export does and make the row that freezes it."""
    period = month_period(*parse_month(month), source.catalog.tz)
    export = build_month_export(
        source,
        month=month,
        now=now,
        incidents=() if incidents is None else incidents(period),
    )
    return NewFreeze(
        month=month,
        timezone=export.timezone,
        frozen_at=now,
        frozen_by=by,
        reason=reason,
        software_version=__version__,
        catalog_version=export.catalog_version,
        export_version=EXPORT_VERSION,
        document_version=FROZEN_DOCUMENT_VERSION,
        document=freeze_document(export),
        report_sha256=hashlib.sha256(render_json(export)).hexdigest(),
    )


def freeze_month(
    source: ExportSource,
    months: FrozenMonthRepository,
    *,
    month: str,
    now: datetime,
    incidents: IncidentSource | None = None,
    by: str = "daemon",
    settle: timedelta = SETTLE,
) -> tuple[FrozenMonth, bool]:
    """Freeze the closed ``month`` (reason ``closed``) unless it is frozen already.

    Returns the frozen month and whether this call froze it; a month frozen before is
    left as it is, not computed. :class:`ConfigError` for a month not closed yet.
    """
    month = closed_month(month, source.catalog.tz, now, settle=settle)
    existing = months.get(month)
    if existing is not None:
        return existing, False
    new = _new_freeze(source, month=month, now=now, incidents=incidents, by=by, reason=CLOSED)
    return months.freeze(new)


def recompute_month(
    source: ExportSource,
    months: FrozenMonthRepository,
    *,
    month: str,
    now: datetime,
    reason: str,
    by: str,
    incidents: IncidentSource | None = None,
    settle: timedelta = SETTLE,
) -> tuple[FrozenMonthInfo, FrozenMonth]:
    """Compute the frozen ``month`` again from the store and freeze the result as its
    next revision, the previous one kept in the history, with ``reason`` and ``by``.

    :class:`ConfigError` without a reason, for a month not closed or not frozen.
    Returns the superseded revision and the new one.
    """
    try:
        reason = clean_reason(reason)
    except ValueError:
        raise ConfigError(["--reason: say why the month is recomputed (it is recorded)"]) from None
    if reason == CLOSED:
        raise ConfigError([f"--reason: {CLOSED!r} is the automatic freeze's; say why"])
    month = closed_month(month, source.catalog.tz, now, settle=settle)
    current = months.info(month)
    if current is None:
        raise ConfigError([f"--month: {month} is not frozen; freeze it (`scd-monitor sla freeze`)"])
    new = _new_freeze(source, month=month, now=now, incidents=incidents, by=by, reason=reason)
    return months.recompute(new, expected_revision=current.revision)


def completed_export(directory: Path, month: str, formats: Sequence[str] = FORMATS) -> bool:
    """Whether ``directory`` holds the final, all-providers export of ``month`` with
    every one of ``formats`` (sizes checked, not hashes: see ``verify_export``)."""
    manifest = read_manifest(directory)
    if manifest is None:
        return False
    if (
        manifest.get("month") != month
        or manifest.get("provisional") is not False
        or manifest.get("provider") is not None
    ):
        return False
    listed: dict[object, list[dict[str, Any]]] = {}
    for entry in manifest["files"]:
        if isinstance(entry, dict) and isinstance(entry.get("name"), str):
            listed.setdefault(entry.get("format"), []).append(entry)
    for fmt in formats:
        entries = listed.get(fmt)
        if not entries:
            return False
        for entry in entries:  # a format's companion files too (``sla-M-uso.csv``)
            try:
                size = (directory / entry["name"]).stat().st_size
            except OSError:
                return False
            if size != entry.get("size"):
                return False
    return True


class MonthlyExportJob:
    """Writes the previous month's export on the first day of each month, once."""

    def __init__(
        self,
        source: Callable[[], ExportSource],
        *,
        output_dir: Path,
        formats: Sequence[str] = FORMATS,
        settle: timedelta = timedelta(minutes=5),
        catch_up: timedelta = timedelta(days=1),
        retry_after: timedelta = timedelta(minutes=15),
        incidents: IncidentSource | None = None,
        months: FrozenMonthRepository | None = None,
    ) -> None:
        """``source`` is called for every check and run, so a reloaded catalog is used.

        With ``months``, the month is frozen first when it is not yet (as
        :class:`MonthFreezeJob` does) and the export renders the frozen figures."""
        if not timedelta(0) <= settle < catch_up:
            raise ValueError("expected 0 <= settle < catch_up")
        self._source = source
        self._output_dir = output_dir
        self._formats = parse_formats(formats)
        self._settle = settle
        self._catch_up = catch_up
        self._retry_after = retry_after
        self._incidents = incidents
        self._months = months
        self._done: str | None = None
        self._failed: tuple[str, datetime] | None = None

    @property
    def output_dir(self) -> Path:
        return self._output_dir

    def due(self, now: datetime) -> str | None:
        """The month (``YYYY-MM``) to export now, or ``None``."""
        tz = self._source().catalog.tz
        this_month = month_of(now, tz)
        since = now - this_month.start
        if not self._settle <= since < self._catch_up:
            return None
        previous = month_of(this_month.start - timedelta(microseconds=1), tz)
        local = previous.start.astimezone(tz)
        month = f"{local.year:04d}-{local.month:02d}"
        if self._done == month:
            return None
        if self._failed is not None:
            failed_month, at = self._failed
            if failed_month == month and now < at + self._retry_after:
                return None
        if completed_export(self._output_dir / export_name(month), month, self._formats):
            self._done = month
            return None
        return month

    def run(self, now: datetime) -> ExportResult | None:
        """Write the due export, if any; log it. Errors are logged and raised again."""
        month = self.due(now)
        if month is None:
            return None
        source = self._source()
        try:
            incidents: Sequence[IncidentRef] = ()
            if self._months is not None:
                frozen, froze = freeze_month(
                    source,
                    self._months,
                    month=month,
                    now=now,
                    incidents=self._incidents,
                    settle=self._settle,
                )
                if froze:
                    _log_frozen(frozen)
            elif self._incidents is not None:
                incidents = self._incidents(month_period(*parse_month(month), source.catalog.tz))
            result = export_month(
                source,
                month=month,
                formats=self._formats,
                output_dir=self._output_dir,
                now=now,
                incidents=incidents,
                months=self._months,
            )
        except ScdMonitorError as exc:
            self._failed = (month, now)
            log.error("export.failed", month=month, error=str(exc))
            raise
        self._done = month
        self._failed = None
        log.info(
            "export.written",
            month=month,
            directory=str(result.directory),
            files=[f.name for f in result.files],
            provisional=result.provisional,
            status=result.status.value,
            frozen=result.frozen is not None,
        )
        if result.insufficient_coverage:
            log.warning(
                "export.insufficient_coverage",
                month=month,
                services=[f"{p}/{s}" for p, s in result.insufficient_coverage],
            )
        return result


class MonthFreezeJob:
    """Freezes the previous month once it closed, once (module docstring)."""

    def __init__(
        self,
        source: Callable[[], ExportSource],
        months: FrozenMonthRepository,
        *,
        settle: timedelta = SETTLE,
        retry_after: timedelta = timedelta(minutes=15),
        incidents: IncidentSource | None = None,
        by: str = "daemon",
    ) -> None:
        """``source`` is called for every check and run, so a reloaded catalog is used."""
        if settle < timedelta(0):
            raise ValueError("expected settle >= 0")
        self._source = source
        self._months = months
        self._settle = settle
        self._retry_after = retry_after
        self._incidents = incidents
        self._by = by
        self._done: str | None = None
        self._failed: tuple[str, datetime] | None = None

    def due(self, now: datetime) -> str | None:
        """The month (``YYYY-MM``) to freeze now, or ``None``."""
        tz = self._source().catalog.tz
        this_month = month_of(now, tz)
        if now - this_month.start < self._settle:
            return None
        previous = month_of(this_month.start - timedelta(microseconds=1), tz)
        local = previous.start.astimezone(tz)
        month = f"{local.year:04d}-{local.month:02d}"
        if self._done == month:
            return None
        if self._failed is not None:
            failed_month, at = self._failed
            if failed_month == month and now < at + self._retry_after:
                return None
        try:
            frozen = self._months.info(month) is not None
        except StoreError:
            return month  # run says what failed, and retries later
        if frozen:
            self._done = month
            return None
        return month

    def run(self, now: datetime) -> FrozenMonth | None:
        """Freeze the due month, if any; the month frozen by this call, else ``None``.
        Errors are logged and raised again."""
        month = self.due(now)
        if month is None:
            return None
        try:
            frozen, froze = freeze_month(
                self._source(),
                self._months,
                month=month,
                now=now,
                incidents=self._incidents,
                by=self._by,
                settle=self._settle,
            )
        except ScdMonitorError as exc:
            self._failed = (month, now)
            log.error("month.freeze_failed", month=month, error=str(exc))
            raise
        self._done = month
        self._failed = None
        if not froze:
            return None
        _log_frozen(frozen)
        return frozen


def _log_frozen(frozen: FrozenMonth) -> None:
    info = frozen.info
    log.info(
        "month.frozen",
        month=info.month,
        revision=info.revision,
        reason=info.reason,
        sha256=info.sha256,
        report_sha256=info.report_sha256,
    )
