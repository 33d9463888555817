"""The monthly ANS export as one immutable value, built once and rendered in every format.

:func:`build_month_export` asks the SLA reporter for the month (and for each local day
of it), adds what the export needs beyond :class:`~scd_monitor.analysis.reporting.SlaReport` —
latency thresholds, the *rangos de medición* band, the error budget used, the incidents
and the daily figures — and the renderers only lay it out. So every format shows the
same figures, and they are the figures of ``scd-monitor sla --format json``: the JSON
export's ``services`` and ``providers`` entries *contain* the ``sla`` command's entries
unchanged.

**As of.** A closed month is evaluated as of its end (``as_of`` = the month's end,
whenever the export runs), so regenerating it from the same stored facts gives the
same bytes; a month still open is evaluated as of ``now`` and marked provisional.
Burn rates are therefore those of the month's last hours.

**Coverage.** In a closed month, a service measured below its catalog
``sla.min_coverage`` has no verdict (*Cobertura insuficiente*: no ``met``, no band) and
the month's ``status`` is ``insufficient_coverage``: :mod:`scd_monitor.exports.coverage`.

**Uso de la plataforma** (X-Road operational monitoring): when the source can read it
(``ExportSource.usage``), the month's use of the platform per provider member and
service, :mod:`scd_monitor.exports.usage`.

**Frozen months** (issue 14): a closed month's export is frozen once (the store's
``scd_frozen_months``): :func:`freeze_document` writes the whole
:class:`MonthExport` (of every provider) as canonical JSON, losslessly — every field of
every value the renderers read, with its type — and :func:`thaw_document` gives it back
equal, so rendering it gives the files a fresh computation gave when it was frozen, byte
for byte, whatever the store or the catalog hold later. One provider's export of a
frozen month is the frozen export cut to it (:meth:`MonthExport.for_provider`), as
:func:`build_month_export` would have cut it.

**Rangos de medición** (the colours): :mod:`scd_monitor.sla.bands`, the one definition the
board and the ``sla`` command use too, from each service's target and its catalog
``sla.amber_from`` (default ``2t − 1``), compared exactly on the stored durations.
"""

from __future__ import annotations

import dataclasses
import enum
import functools
import json
import math
import types
import typing
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from fractions import Fraction
from typing import Any, Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from scd_monitor.analysis.reporting import ProviderReport, ServiceReport, SlaReport
from scd_monitor.catalog.models import Catalog, Sla
from scd_monitor.errors import ConfigError, StoreError
from scd_monitor.exports.coverage import (
    INSUFFICIENT_COVERAGE,
    ReportStatus,
    Verdicts,
    coverage_sufficient,
)
from scd_monitor.exports.usage import UsageReader, UsageSection, usage_section
from scd_monitor.sla.bands import Band, BandBounds
from scd_monitor.sla.calendar import day_periods, month_period, parse_month
from scd_monitor.sla.engine import ProviderFigures, SlaFigures, provider_figures
from scd_monitor.sla.model import Period
from scd_monitor.timefmt import iso_utc

__all__ = [
    "EXPORT_VERSION",
    "FROZEN_DOCUMENT_VERSION",
    "INSUFFICIENT_COVERAGE",
    "PROVISIONAL_NOTE",
    "Band",
    "DayFigures",
    "ExportSource",
    "FrozenDocumentError",
    "FrozenFrom",
    "IncidentRef",
    "MonthExport",
    "ProviderExport",
    "ReportStatus",
    "Reporter",
    "ServiceExport",
    "band_of",
    "build_month_export",
    "compliance_label",
    "freeze_document",
    "thaw_document",
]

EXPORT_VERSION = 2
"""2: coverage decides whether a closed month has verdicts (``status``,
``insufficient_coverage``, ``coverage_sufficient``, ``min_coverage``; issue 11)."""
FROZEN_DOCUMENT_VERSION = 1
"""The layout of a frozen month's document (:func:`freeze_document`)."""
PROVISIONAL_NOTE = "Provisional: el mes aún no ha cerrado"
NO_INCIDENTS = "Sin incidentes registrados"

_ZERO = timedelta(0)
_US = timedelta(microseconds=1)


class Reporter(Protocol):
    """What the export needs of :class:`~scd_monitor.analysis.reporting.SlaReporter`."""

    def report(
        self,
        period: Period,
        *,
        provider: str | None = None,
        service: str | None = None,
        now: datetime | None = None,
    ) -> SlaReport:
        """Figures per service and per provider over ``period`` as of ``now``."""
        ...


@dataclass(frozen=True, slots=True)
class ExportSource:
    """Where an export reads from: the reporter and the catalog it reports on.

    ``catalog`` must be the *effective* catalog (with the services discovered on
    X-Road), the same one the reporter was built with: the export reads the time zone,
    the catalog version and each service's latency threshold from it.

    ``usage`` reads the use of the X-Road platform over ``[start, end)`` (from the
    store's operational monitoring buckets): with it the export has its *Uso de la
    plataforma* section (saying there is no data when it returns ``None`` or nothing);
    without it (``None``) the export has no such section.
    """

    reporter: Reporter
    catalog: Catalog
    usage: UsageReader | None = None


@dataclass(frozen=True, slots=True)
class IncidentRef:
    """An incident as the export shows it (issue 6 keeps the incidents themselves).

    ``service`` is ``None`` for an incident about the whole provider; ``resolved_at``
    is ``None`` while it is open.
    """

    id: str
    provider: str
    service: str | None
    severity: str
    opened_at: datetime
    resolved_at: datetime | None = None

    def __post_init__(self) -> None:
        for value in (self.opened_at, self.resolved_at):
            if value is not None and value.tzinfo is None:
                raise ValueError(f"incident {self.id}: times must be timezone-aware")

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "provider": self.provider,
            "service": self.service,
            "severity": self.severity,
            "opened_at": iso_utc(self.opened_at),
            "resolved_at": None if self.resolved_at is None else iso_utc(self.resolved_at),
        }


def band_of(
    eligible: timedelta, charged: timedelta, target: float, amber_from: float | None = None
) -> Band | None:
    """The band of ``(eligible − charged) / eligible`` (:mod:`scd_monitor.sla.bands`)."""
    return BandBounds.of(target, amber_from).band(eligible, charged)


def compliance_label(met: bool | None) -> str:
    """``Cumple``, ``No cumple`` or ``Sin datos`` (no eligible time)."""
    if met is None:
        return "Sin datos"
    return "Cumple" if met else "No cumple"


@dataclass(frozen=True, slots=True)
class DayFigures:
    """A service's figures over one local day (cut to ``as_of``)."""

    day: date
    period: Period
    """The evaluated part of the day: empty (``start == end``) when ``pending``."""
    pending: bool
    """The day had not begun at ``as_of`` (a provisional month's later days)."""
    target: float
    availability: float | None
    met: bool | None
    eligible: timedelta
    charged_downtime: timedelta
    excluded_maintenance: timedelta
    unknown: timedelta
    coverage: float | None
    outage_count: int
    amber_from: float | None = None
    """The service's catalog ``sla.amber_from`` (``None``: the default bound)."""

    @property
    def band(self) -> Band | None:
        return band_of(self.eligible, self.charged_downtime, self.target, self.amber_from)

    @classmethod
    def of(cls, day: date, figures: SlaFigures, *, amber_from: float | None = None) -> DayFigures:
        return cls(
            day=day,
            period=figures.period,
            pending=False,
            target=figures.target,
            availability=figures.availability,
            met=figures.met,
            eligible=figures.eligible,
            charged_downtime=figures.charged_downtime,
            excluded_maintenance=figures.excluded_maintenance,
            unknown=figures.unknown,
            coverage=figures.coverage,
            outage_count=figures.outage_count,
            amber_from=amber_from,
        )

    @classmethod
    def not_yet(
        cls, day: date, start: datetime, target: float, *, amber_from: float | None = None
    ) -> DayFigures:
        return cls(
            day=day,
            period=Period(start, start),
            pending=True,
            target=target,
            availability=None,
            met=None,
            eligible=_ZERO,
            charged_downtime=_ZERO,
            excluded_maintenance=_ZERO,
            unknown=_ZERO,
            coverage=None,
            outage_count=0,
            amber_from=amber_from,
        )

    def to_json(self) -> dict[str, Any]:
        band = self.band
        return {
            "date": self.day.isoformat(),
            "start": iso_utc(self.period.start),
            "end": iso_utc(self.period.end),
            "pending": self.pending,
            "availability": self.availability,
            "met": self.met,
            "band": None if band is None else band.value,
            "eligible_seconds": _secs(self.eligible),
            "charged_downtime_seconds": _secs(self.charged_downtime),
            "excluded_maintenance_seconds": _secs(self.excluded_maintenance),
            "unknown_seconds": _secs(self.unknown),
            "coverage": self.coverage,
            "outage_count": self.outage_count,
        }


@dataclass(frozen=True, slots=True)
class ServiceExport:
    """One service of the export: its month figures and what the export adds."""

    report: ServiceReport
    latency_threshold: timedelta | None
    """``None`` only if the service left the catalog between reporting and export."""
    incidents: tuple[IncidentRef, ...]
    days: tuple[DayFigures, ...]
    amber_from: float | None = None
    """The service's catalog ``sla.amber_from`` (``None``: the default bound)."""
    min_coverage: float | None = None
    """The service's catalog ``sla.min_coverage`` (``None``: coverage decides nothing)."""

    @property
    def figures(self) -> SlaFigures:
        return self.report.figures

    @property
    def coverage_sufficient(self) -> bool | None:
        """``False``: a closed month measured below ``min_coverage``, so no verdict
        (:mod:`scd_monitor.exports.coverage`); ``None`` while the month is open."""
        if self.min_coverage is None:
            return None
        return coverage_sufficient(self.report.figures, self.min_coverage)

    @property
    def met(self) -> bool | None:
        """The verdict: the engine's ``met``, withheld (``None``) without enough coverage."""
        return None if self.coverage_sufficient is False else self.report.figures.met

    @property
    def bounds(self) -> BandBounds:
        """The service's band bounds (:mod:`scd_monitor.sla.bands`)."""
        return BandBounds.of(self.report.figures.target, self.amber_from)

    @property
    def band(self) -> Band | None:
        if self.coverage_sufficient is False:
            return None  # no verdict, no rango
        f = self.report.figures
        return self.bounds.band(f.eligible, f.charged_downtime)

    @property
    def compliance(self) -> str:
        if self.coverage_sufficient is False:
            return INSUFFICIENT_COVERAGE
        return compliance_label(self.report.figures.met)

    @property
    def error_budget_used(self) -> float | None:
        """consumed / budget of the month (> 1 when overspent), computed exactly."""
        f = self.report.figures
        budget = f.error_budget
        if budget is None:
            return None
        allowance = _micros(budget.eligible) * (1 - Fraction(repr(float(f.target))))
        if allowance <= 0:
            return None
        return float(_micros(budget.consumed) / allowance)

    def to_json(self) -> dict[str, Any]:
        band = self.band
        return {
            **self.report.to_json(),
            "met": self.met,
            "latency_threshold_seconds": _secs(self.latency_threshold),
            "compliance": self.compliance,
            "coverage_sufficient": self.coverage_sufficient,
            "min_coverage": self.min_coverage,
            "band": None if band is None else band.value,
            "error_budget_used_ratio": self.error_budget_used,
            "incidents": [i.to_json() for i in self.incidents],
            "daily": [d.to_json() for d in self.days],
        }


@dataclass(frozen=True, slots=True)
class ProviderExport:
    report: ProviderReport
    services: tuple[ServiceExport, ...]
    incidents: tuple[IncidentRef, ...]
    """Incidents about the provider as a whole (or about a service not in the export)."""

    @property
    def figures(self) -> ProviderFigures:
        return self.report.figures

    @property
    def verdicts(self) -> Verdicts:
        return Verdicts.of((s.met, s.coverage_sufficient) for s in self.services)

    def to_json(self) -> dict[str, Any]:
        return {
            **self.verdicts.apply(self.report.to_json()),
            "incidents": [i.to_json() for i in self.incidents],
        }


class FrozenDocumentError(StoreError):
    """A frozen month's document this release cannot read back (damaged, or written by a
    release whose values had another shape)."""


@dataclass(frozen=True, slots=True)
class FrozenFrom:
    """Where an export of a frozen month came from: the freeze (the manifest's ``frozen``)."""

    frozen_at: datetime
    frozen_by: str
    reason: str
    """``closed`` (the automatic freeze of a month that ended) or the operator's reason
    for a recomputation."""
    revision: int
    sha256: str
    """SHA-256 of the frozen document."""
    software_version: str
    """The software that computed the frozen figures."""
    catalog_version: str | None

    def to_json(self) -> dict[str, Any]:
        return {
            "frozen_at": iso_utc(self.frozen_at),
            "frozen_by": self.frozen_by,
            "reason": self.reason,
            "revision": self.revision,
            "sha256": self.sha256,
            "software_version": self.software_version,
            "catalog_version": self.catalog_version,
        }


@dataclass(frozen=True, slots=True)
class MonthExport:
    """Everything one monthly export shows, in every format."""

    month: str
    """``YYYY-MM``."""
    year: int
    month_number: int
    report: SlaReport
    provisional: bool
    provider_filter: str | None
    summary: ProviderFigures
    """All the exported services taken together."""
    providers: tuple[ProviderExport, ...]
    incidents: tuple[IncidentRef, ...]
    """Every incident of the month (of the filtered provider), by opening time."""
    days: tuple[Period, ...]
    """The month's local days (whole days, also those after ``as_of``)."""
    usage: UsageSection | None = None
    """The use of the X-Road platform in the month (cut at ``as_of``); ``None`` when the
    source could not read it (then no format has the section). Without data, the XLSX
    and the PDF say so in one line; the JSON and the CSV have nothing of it."""
    frozen: FrozenFrom | None = None
    """Set when the export was read from a frozen month (only the manifest shows it;
    the figures and every rendered file are those of the freeze)."""

    @property
    def as_of(self) -> datetime:
        return self.report.now

    @property
    def period(self) -> Period:
        return self.report.period

    @property
    def timezone(self) -> str:
        return self.report.timezone

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.report.timezone)

    @property
    def catalog_version(self) -> str | None:
        return self.report.catalog_version

    @property
    def services(self) -> tuple[ServiceExport, ...]:
        return tuple(s for p in self.providers for s in p.services)

    @property
    def verdicts(self) -> Verdicts:
        """All the exported services counted by verdict (``summary`` as the export says it)."""
        return Verdicts.of((s.met, s.coverage_sufficient) for s in self.services)

    @property
    def insufficient_coverage(self) -> tuple[ServiceExport, ...]:
        """The services without a verdict for lack of measurement (closed month only)."""
        return tuple(s for s in self.services if s.coverage_sufficient is False)

    @property
    def status(self) -> ReportStatus:
        if self.provisional:
            return ReportStatus.PROVISIONAL
        if self.insufficient_coverage:
            return ReportStatus.INSUFFICIENT_COVERAGE
        return ReportStatus.FINAL

    def insufficient_coverage_json(self) -> list[dict[str, Any]]:
        """``insufficient_coverage`` of the JSON document and the manifest."""
        return [
            {
                "provider": s.report.provider,
                "service": s.report.service,
                "coverage": s.figures.coverage,
                "min_coverage": s.min_coverage,
            }
            for s in self.insufficient_coverage
        ]

    def for_provider(self, provider: str | None) -> MonthExport:
        """This (all-providers) export cut to ``provider``, as :func:`build_month_export`
        cuts it: that provider's services, incidents and use of the platform, the
        summary taken over its services. ``None``: this export unchanged."""
        if provider is None:
            return self
        if self.provider_filter is not None:
            raise ValueError("only an export of every provider can be cut to one")
        report = dataclasses.replace(
            self.report,
            services=tuple(s for s in self.report.services if s.provider == provider),
            providers=tuple(p for p in self.report.providers if p.provider == provider),
        )
        return dataclasses.replace(
            self,
            report=report,
            provider_filter=provider,
            summary=provider_figures([s.figures for s in report.services]),
            providers=tuple(p for p in self.providers if p.report.provider == provider),
            incidents=tuple(i for i in self.incidents if i.provider == provider),
            usage=(
                None
                if self.usage is None
                else UsageSection(
                    self.usage.period,
                    tuple(p for p in self.usage.providers if p.provider == provider),
                )
            ),
        )

    def to_json(self) -> dict[str, Any]:
        """The JSON export (``schemas/sla-export.schema.json``): stable key order.

        The report's own keys come first and mean what they mean in ``scd-monitor sla
        --format json``; each ``services``/``providers`` entry holds that command's
        entry plus the keys the export adds, unchanged but for the verdicts a closed
        month's insufficient coverage withholds (a service's ``met``; a provider's and
        the summary's ``met``, ``missed``, ``undetermined``).
        """
        base = self.report.to_json()
        return {
            "export_version": EXPORT_VERSION,
            **{k: v for k, v in base.items() if k not in ("services", "providers")},
            "month": self.month,
            "provisional": self.provisional,
            "provisional_note": PROVISIONAL_NOTE if self.provisional else None,
            "status": self.status.value,
            "insufficient_coverage": self.insufficient_coverage_json(),
            "provider_filter": self.provider_filter,
            "summary": self.verdicts.apply(self.summary.to_json()),
            "services": [s.to_json() for s in self.services],
            "providers": [p.to_json() for p in self.providers],
            "incidents": [i.to_json() for i in self.incidents],
            # Only with data: a month without usage gives the document it gave before the
            # section existed (same bytes, same report_sha256; the schema has no ``usage``).
            **({"usage": self.usage.to_json()} if self.usage and self.usage.has_data else {}),
        }


def build_month_export(
    source: ExportSource,
    *,
    month: str,
    now: datetime,
    provider: str | None = None,
    incidents: Sequence[IncidentRef] = (),
) -> MonthExport:
    """The export of ``month`` (``YYYY-MM`` in the catalog's zone) as of ``now``.

    Raises :class:`ConfigError` for a malformed month, a month that has not begun at
    ``now`` or an unknown ``provider``.
    """
    catalog = source.catalog
    tz = catalog.tz
    try:
        year, number = parse_month(month)
    except ValueError as exc:
        raise ConfigError([f"--month: {exc}"]) from None
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    period = month_period(year, number, tz)
    if now <= period.start:
        raise ConfigError([f"--month: {month} has not begun yet"])
    if provider is not None and not any(p.id == provider for p in catalog.providers):
        raise ConfigError([f"--provider: no provider {provider!r} in the catalog"])
    as_of = min(now.astimezone(UTC), period.end)
    report = source.reporter.report(period, provider=provider, now=as_of)
    days = tuple(day_periods(period, tz))
    daily = _daily(source.reporter, days, catalog, provider=provider, as_of=as_of)
    month_incidents = _month_incidents(incidents, period, provider)

    by_service: dict[tuple[str, str | None], list[IncidentRef]] = defaultdict(list)
    for incident in month_incidents:
        by_service[(incident.provider, incident.service)].append(incident)
    known = {(s.provider, s.service) for s in report.services}
    services_of: dict[str, list[ServiceExport]] = defaultdict(list)
    for s in report.services:
        spec = catalog.service(s.provider, s.service)
        amber_from = None if spec is None else spec.sla.amber_from
        services_of[s.provider].append(
            ServiceExport(
                report=s,
                latency_threshold=None if spec is None else spec.sla.latency_threshold,
                incidents=tuple(by_service.get((s.provider, s.service), ())),
                days=tuple(
                    daily.get((s.provider, s.service))
                    or [
                        DayFigures.not_yet(
                            d.start.astimezone(tz).date(),
                            d.start,
                            s.figures.target,
                            amber_from=amber_from,
                        )
                        for d in days
                    ]
                ),
                amber_from=amber_from,
                min_coverage=(spec.sla if spec is not None else Sla()).min_coverage,
            )
        )
    providers = tuple(
        ProviderExport(
            report=p,
            services=tuple(services_of[p.provider]),
            incidents=tuple(
                i
                for i in month_incidents
                if i.provider == p.provider and (i.provider, i.service) not in known
            ),
        )
        for p in report.providers
    )
    return MonthExport(
        month=f"{year:04d}-{number:02d}",
        year=year,
        month_number=number,
        report=report,
        provisional=as_of < period.end,
        provider_filter=provider,
        summary=provider_figures([s.figures for s in report.services]),
        providers=providers,
        incidents=month_incidents,
        days=days,
        usage=(
            None
            if source.usage is None
            else usage_section(
                source.usage, Period(period.start, as_of), catalog, provider=provider
            )
        ),
    )


def _daily(
    reporter: Reporter,
    days: Iterable[Period],
    catalog: Catalog,
    *,
    provider: str | None,
    as_of: datetime,
) -> Mapping[tuple[str, str], list[DayFigures]]:
    """Per service, its figures for each local day: one report per day begun by ``as_of``.

    Each call loads the month's spans again (the reporter's loading is not public);
    see ``docs/exports.md`` for the one-load alternative this could become.
    """
    tz = catalog.tz
    out: dict[tuple[str, str], list[DayFigures]] = defaultdict(list)
    pending: list[Period] = []
    targets: dict[tuple[str, str], float] = {}
    for day in days:
        if day.start >= as_of:
            pending.append(day)
            continue
        report = reporter.report(day, provider=provider, now=as_of)
        local_day = day.start.astimezone(tz).date()
        for s in report.services:
            targets[(s.provider, s.service)] = s.figures.target
            amber_from = _amber_from(catalog, s.provider, s.service)
            out[(s.provider, s.service)].append(
                DayFigures.of(local_day, s.figures, amber_from=amber_from)
            )
    for key, target in targets.items():
        amber_from = _amber_from(catalog, *key)
        for day in pending:
            out[key].append(
                DayFigures.not_yet(
                    day.start.astimezone(tz).date(), day.start, target, amber_from=amber_from
                )
            )
    return out


def _amber_from(catalog: Catalog, provider: str, service: str) -> float | None:
    """The service's ``sla.amber_from`` (``None``: the default, or not in the catalog)."""
    spec = catalog.service(provider, service)
    return None if spec is None else spec.sla.amber_from


def _month_incidents(
    incidents: Iterable[IncidentRef], period: Period, provider: str | None
) -> tuple[IncidentRef, ...]:
    """The incidents open at some time during ``period``, by opening time and id."""
    chosen = [
        i
        for i in incidents
        if (provider is None or i.provider == provider)
        and i.opened_at < period.end
        and (i.resolved_at is None or i.resolved_at > period.start)
    ]
    return tuple(sorted(chosen, key=lambda i: (i.opened_at, i.id)))


def _micros(value: timedelta) -> int:
    return value // _US


def _secs(value: timedelta | None) -> int | float | None:
    """Seconds as in the SLA JSON: whole seconds are integers, others floats."""
    if value is None:
        return None
    micros = _micros(value)
    if micros % 1_000_000 == 0:
        return micros // 1_000_000
    return micros / 1_000_000


# -- frozen months ----------------------------------------------------------------------


def freeze_document(export: MonthExport) -> str:
    """The canonical JSON of a closed month's export of every provider, from which
    :func:`thaw_document` gives back an equal :class:`MonthExport`.

    Lossless: every dataclass field (declaration order), durations in microseconds,
    instants with their offset and zone (``…-05:00[America/Bogota]``; UTC bare), dates
    ISO, floats as Python prints them (``"inf"``/``"nan"`` as strings), enums by value,
    mappings as ``[key, value]`` pairs in their order. Compact, UTF-8, no NaN tokens:
    the same export always gives the same text. ``export.frozen`` is not part of it.
    """
    if export.provisional:
        raise ValueError(f"{export.month} has not closed: only a closed month is frozen")
    if export.provider_filter is not None:
        raise ValueError("only an export of every provider is frozen")
    body = {
        "document_version": FROZEN_DOCUMENT_VERSION,
        "export_version": EXPORT_VERSION,
        "month": export.month,
        "export": _encode(dataclasses.replace(export, frozen=None)),
    }
    return json.dumps(body, ensure_ascii=False, separators=(",", ":"), allow_nan=False)


def thaw_document(
    document: str, *, provider: str | None = None, frozen: FrozenFrom | None = None
) -> MonthExport:
    """The :class:`MonthExport` frozen in ``document`` (cut to ``provider``, when given),
    carrying ``frozen``. :class:`FrozenDocumentError` when it cannot be read back;
    :class:`ConfigError` for a ``provider`` the frozen month does not have."""
    try:
        body = json.loads(document)
        if not isinstance(body, dict) or body.get("document_version") != FROZEN_DOCUMENT_VERSION:
            version = body.get("document_version") if isinstance(body, dict) else None
            raise ValueError(f"document version {version!r}, expected {FROZEN_DOCUMENT_VERSION}")
        export = _decode(MonthExport, body["export"])
    except (ValueError, TypeError, KeyError) as exc:
        raise FrozenDocumentError(f"a frozen month's document cannot be read: {exc}") from exc
    assert isinstance(export, MonthExport)
    if provider is not None and not any(p.provider == provider for p in export.report.providers):
        raise ConfigError([f"--provider: no provider {provider!r} in the frozen {export.month}"])
    return dataclasses.replace(export.for_provider(provider), frozen=frozen)


def _encode(value: Any) -> Any:
    if value is None or isinstance(value, bool | int):
        return value
    if isinstance(value, enum.Enum):
        return _encode(value.value)
    if isinstance(value, str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else repr(value)
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise TypeError("a naive datetime cannot be frozen")
        text = value.isoformat()
        if isinstance(value.tzinfo, ZoneInfo):
            return f"{text}[{value.tzinfo.key}]"
        return text
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, timedelta):
        return value // _US
    if isinstance(value, Fraction):
        return f"{value.numerator}/{value.denominator}"
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _encode(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        return [[_encode(k), _encode(v)] for k, v in value.items()]
    if isinstance(value, tuple | list):
        return [_encode(v) for v in value]
    raise TypeError(f"cannot freeze a {type(value).__name__}")


@functools.cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _decode(tp: Any, data: Any) -> Any:
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if tp is Any:
        return data
    if tp is type(None):
        if data is not None:
            raise ValueError(f"expected null, got {data!r}")
        return None
    if origin is typing.Union or origin is types.UnionType:
        if data is None and type(None) in args:
            return None
        arms = [a for a in args if a is not type(None)]
        if len(arms) != 1:
            raise TypeError(f"cannot thaw the union {tp}")
        return _decode(arms[0], data)
    if origin is typing.Literal:
        if data not in args:
            raise ValueError(f"{data!r} is not one of {args}")
        return data
    if origin is tuple:
        _expect(data, list)
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_decode(args[0], v) for v in data)
        if len(args) != len(data):
            raise ValueError(f"expected {len(args)} values, got {len(data)}")
        return tuple(_decode(a, v) for a, v in zip(args, data, strict=True))
    if origin is list:
        _expect(data, list)
        return [_decode(args[0], v) for v in data]
    if origin in (dict, Mapping):
        _expect(data, list)
        return {_decode(args[0], k): _decode(args[1], v) for k, v in data}
    if origin is not None:
        raise TypeError(f"cannot thaw a {tp}")
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return tp(data)
    if tp is bool:
        return _expect(data, bool)
    if tp is int:
        if isinstance(data, bool):
            raise ValueError(f"expected an integer, got {data!r}")
        return _expect(data, int)
    if tp is float:
        if isinstance(data, str):
            return float(data)  # inf, -inf, nan
        if isinstance(data, bool):
            raise ValueError(f"expected a number, got {data!r}")
        return _expect(data, (int, float))  # as frozen: an int stays an int
    if tp is str:
        return _expect(data, str)
    if tp is datetime:
        return _datetime(_expect(data, str))
    if tp is date:
        return date.fromisoformat(_expect(data, str))
    if tp is timedelta:
        return timedelta(microseconds=_expect(data, int))
    if tp is Fraction:
        return Fraction(_expect(data, str))
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        _expect(data, dict)
        hints = _hints(tp)
        names = {f.name for f in dataclasses.fields(tp)}
        unknown = set(data) - names
        if unknown:
            raise ValueError(f"{tp.__name__} has no field {sorted(unknown)}")
        values = {k: _decode(hints[k], v) for k, v in data.items()}
        return tp(**values)
    raise TypeError(f"cannot thaw a {tp}")


def _expect(data: Any, kind: type | tuple[type, ...]) -> Any:
    if not isinstance(data, kind):
        raise ValueError(f"expected {kind}, got {type(data).__name__}")
    return data


def _datetime(text: str) -> datetime:
    zone: str | None = None
    if text.endswith("]") and "[" in text:
        text, _, rest = text.partition("[")
        zone = rest[:-1]
    value = datetime.fromisoformat(text)
    if value.tzinfo is None:
        raise ValueError(f"a frozen instant without offset: {text!r}")
    if zone is None:
        offset = value.utcoffset()
        return value.astimezone(UTC) if offset == timedelta(0) else value
    try:
        return value.astimezone(ZoneInfo(zone))
    except ZoneInfoNotFoundError as exc:
        raise ValueError(f"unknown time zone {zone!r}") from exc
