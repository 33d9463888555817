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

**Rangos de medición** (the colours), for availability ``a`` and target ``t``, compared
exactly on the stored durations: green ``a ≥ t`` (meets the ANS); amber
``t − (1 − t) ≤ a < t`` (misses it by less than one more error budget); red below; no
band without eligible time.
"""

from __future__ import annotations

import enum
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from fractions import Fraction
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from scd_monitor.analysis.reporting import ProviderReport, ServiceReport, SlaReport
from scd_monitor.catalog.models import Catalog
from scd_monitor.errors import ConfigError
from scd_monitor.sla.calendar import day_periods, month_period, parse_month
from scd_monitor.sla.engine import ProviderFigures, SlaFigures, provider_figures
from scd_monitor.sla.model import Period
from scd_monitor.timefmt import iso_utc

__all__ = [
    "EXPORT_VERSION",
    "PROVISIONAL_NOTE",
    "Band",
    "DayFigures",
    "ExportSource",
    "IncidentRef",
    "MonthExport",
    "ProviderExport",
    "Reporter",
    "ServiceExport",
    "band_of",
    "build_month_export",
    "compliance_label",
]

EXPORT_VERSION = 1
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
    """

    reporter: Reporter
    catalog: Catalog


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


class Band(enum.StrEnum):
    """A *rango de medición* (see the module docstring)."""

    GREEN = "green"
    AMBER = "amber"
    RED = "red"


def band_of(eligible: timedelta, charged: timedelta, target: float) -> Band | None:
    """The band of ``(eligible − charged) / eligible`` against ``target``, exactly."""
    if eligible <= _ZERO:
        return None
    ratio = Fraction(_micros(eligible - charged), _micros(eligible))
    exact = Fraction(repr(float(target)))
    if ratio >= exact:
        return Band.GREEN
    if ratio >= 2 * exact - 1:
        return Band.AMBER
    return Band.RED


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

    @property
    def band(self) -> Band | None:
        return band_of(self.eligible, self.charged_downtime, self.target)

    @classmethod
    def of(cls, day: date, figures: SlaFigures) -> DayFigures:
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
        )

    @classmethod
    def not_yet(cls, day: date, start: datetime, target: float) -> DayFigures:
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

    @property
    def figures(self) -> SlaFigures:
        return self.report.figures

    @property
    def band(self) -> Band | None:
        f = self.report.figures
        return band_of(f.eligible, f.charged_downtime, f.target)

    @property
    def compliance(self) -> str:
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
            "latency_threshold_seconds": _secs(self.latency_threshold),
            "compliance": self.compliance,
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

    def to_json(self) -> dict[str, Any]:
        return {**self.report.to_json(), "incidents": [i.to_json() for i in self.incidents]}


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

    def to_json(self) -> dict[str, Any]:
        """The JSON export (``schemas/sla-export.schema.json``): stable key order.

        The report's own keys come first and mean what they mean in ``scd-monitor sla
        --format json``; each ``services``/``providers`` entry holds that command's
        entry unchanged plus the keys the export adds.
        """
        base = self.report.to_json()
        return {
            "export_version": EXPORT_VERSION,
            **{k: v for k, v in base.items() if k not in ("services", "providers")},
            "month": self.month,
            "provisional": self.provisional,
            "provisional_note": PROVISIONAL_NOTE if self.provisional else None,
            "provider_filter": self.provider_filter,
            "summary": self.summary.to_json(),
            "services": [s.to_json() for s in self.services],
            "providers": [p.to_json() for p in self.providers],
            "incidents": [i.to_json() for i in self.incidents],
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
    daily = _daily(source.reporter, days, tz, provider=provider, as_of=as_of)
    month_incidents = _month_incidents(incidents, period, provider)

    by_service: dict[tuple[str, str | None], list[IncidentRef]] = defaultdict(list)
    for incident in month_incidents:
        by_service[(incident.provider, incident.service)].append(incident)
    known = {(s.provider, s.service) for s in report.services}
    services_of: dict[str, list[ServiceExport]] = defaultdict(list)
    for s in report.services:
        spec = catalog.service(s.provider, s.service)
        services_of[s.provider].append(
            ServiceExport(
                report=s,
                latency_threshold=None if spec is None else spec.sla.latency_threshold,
                incidents=tuple(by_service.get((s.provider, s.service), ())),
                days=tuple(
                    daily.get((s.provider, s.service))
                    or [
                        DayFigures.not_yet(d.start.astimezone(tz).date(), d.start, s.figures.target)
                        for d in days
                    ]
                ),
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
    )


def _daily(
    reporter: Reporter,
    days: Iterable[Period],
    tz: ZoneInfo,
    *,
    provider: str | None,
    as_of: datetime,
) -> Mapping[tuple[str, str], list[DayFigures]]:
    """Per service, its figures for each local day: one report per day begun by ``as_of``.

    Each call loads the month's spans again (the reporter's loading is not public);
    see ``docs/exports.md`` for the one-load alternative this could become.
    """
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
            out[(s.provider, s.service)].append(DayFigures.of(local_day, s.figures))
    for key, target in targets.items():
        for day in pending:
            out[key].append(DayFigures.not_yet(day.start.astimezone(tz).date(), day.start, target))
    return out


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
