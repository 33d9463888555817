"""The use of the X-Road platform in the monthly export (*Uso de la plataforma de
interoperabilidad*): per provider member, and per service of it, the requests the
monitored security servers recorded in the month, how many succeeded, the approximate
p95 duration and the failures by side.

The figures are :func:`scd_monitor.analysis.usage.summarize`'s over the month's 15-minute
buckets (the month of the catalog's zone starts and ends on a bucket boundary, so they
are exact). **Counting.** A request between two monitored security servers is recorded
by both (the client's server writes a ``Client`` record, the provider's a ``Producer``
one); per service the provider's records count when there are any, otherwise the
client's, so no request is counted twice.

A member is shown by its catalog provider's name when the catalog has a provider whose
id is the member's slug (discovered with ``members_as_providers``), else by its X-Road
identifier.

The section exists when the export's source can read usage (``ExportSource.usage``).
With no data for the month (no operational monitoring configured, or nothing collected
yet) it holds no provider: the XLSX sheet and the PDF section say :data:`NO_USAGE` in one
line, while the JSON has no ``usage`` key and there is no usage CSV, so that the machine
files (and ``report_sha256``) are those of an export made before the section existed. A
source that cannot read usage at all (no reader) gives an export without the section.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from scd_monitor.analysis.usage import (
    FAULT_SIDES,
    ProviderUsage,
    ServiceUsage,
    UsageReport,
    summarize,
)
from scd_monitor.catalog.models import Catalog
from scd_monitor.sla.model import Period
from scd_monitor.store import Store, UsageRepository
from scd_monitor.timefmt import iso_utc
from scd_monitor.xroad.identifiers import ClientId

__all__ = [
    "FAULT_SIDE_LABELS",
    "NO_USAGE",
    "USAGE_TITLE",
    "ProviderUsageExport",
    "ServiceUsageExport",
    "UsageFigures",
    "UsageReader",
    "UsageSection",
    "store_usage",
    "usage_section",
]

UsageReader = Callable[[datetime, datetime], UsageReport | None]
"""The usage of ``[start, end)``, or ``None`` when there is none to read."""

USAGE_TITLE = "Uso de la plataforma de interoperabilidad"
NO_USAGE = "Sin datos de monitoreo operacional para el periodo"

FAULT_SIDE_LABELS: Mapping[str, str] = {
    "consumer": "consumidor",
    "provider": "proveedor",
    "client": "cliente",
    "unknown": "desconocido",
}


@dataclass(frozen=True, slots=True)
class UsageFigures:
    """Requests, their outcome and duration: a service's or a provider member's."""

    requests: int
    successes: int
    failures: int
    success_ratio: float | None
    """successes / requests; ``None`` without requests."""
    p95_ms: float | None
    """Approximate (the upper bound of the histogram bucket that holds it); ``inf``
    beyond the last bound; ``None`` without measured durations."""
    faults: tuple[int, ...]
    """Failures by the side their fault code blames, in
    :data:`~scd_monitor.analysis.usage.FAULT_SIDES` order."""

    @classmethod
    def of(cls, usage: ServiceUsage | ProviderUsage) -> UsageFigures:
        by_side = usage.faults_by_side
        return cls(
            requests=usage.requests,
            successes=usage.successes,
            failures=usage.failures,
            success_ratio=usage.success_ratio,
            p95_ms=usage.p95_ms,
            faults=tuple(int(by_side.get(side, 0)) for side in FAULT_SIDES),
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "successes": self.successes,
            "failures": self.failures,
            "success_ratio": self.success_ratio,
            "p95_ms": _number(self.p95_ms),
            "failures_by_side": dict(zip(FAULT_SIDES, self.faults, strict=True)),
        }


@dataclass(frozen=True, slots=True)
class ServiceUsageExport:
    service: str
    """The X-Road service identifier (``INSTANCE/CLASS/MEMBER/SUBSYSTEM/CODE[/VERSION]``)."""
    figures: UsageFigures
    top_faults: tuple[tuple[str, int], ...]
    """The most frequent fault codes, with their counts."""
    counted_side: str = "Producer"
    """Whose records are counted: ``Producer`` (the provider's security server) when
    there are any, else ``Client``."""

    def to_json(self) -> dict[str, Any]:
        return {
            "service": self.service,
            "counted_side": self.counted_side,
            **self.figures.to_json(),
            "top_fault_codes": [{"code": c, "count": n} for c, n in self.top_faults],
        }


@dataclass(frozen=True, slots=True)
class ProviderUsageExport:
    member: str
    """The provider member's X-Road identifier (``INSTANCE/CLASS/MEMBER``)."""
    provider: str | None
    """The catalog provider the member is (its slug), ``None`` when it is none."""
    name: str
    """The catalog provider's name, else the member identifier."""
    figures: UsageFigures
    services: tuple[ServiceUsageExport, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "provider_member": self.member,
            "provider": self.provider,
            "provider_name": self.name,
            **self.figures.to_json(),
            "services": [s.to_json() for s in self.services],
        }


@dataclass(frozen=True, slots=True)
class UsageSection:
    """The export's *Uso de la plataforma* (module docstring)."""

    period: Period
    providers: tuple[ProviderUsageExport, ...]

    @property
    def has_data(self) -> bool:
        return bool(self.providers)

    def to_json(self) -> dict[str, Any] | None:
        """The JSON export's ``usage`` (``None`` without data: the export then has no
        ``usage`` key)."""
        if not self.has_data:
            return None
        return {
            "period": {"start": iso_utc(self.period.start), "end": iso_utc(self.period.end)},
            "counting": "provider_records_else_client_records",
            "providers": [p.to_json() for p in self.providers],
        }


def store_usage(store: Store) -> UsageReader:
    """The usage reader of ``store``: its buckets of ``[start, end)`` summed
    (:meth:`~scd_monitor.store.UsageRepository.totals`) and summarized; ``None`` when it
    holds none for the period (no operational monitoring configured, or none yet)."""
    repository = UsageRepository(store)

    def read(start: datetime, end: datetime) -> UsageReport | None:
        buckets = repository.totals(start, end)
        if not buckets:
            return None
        return summarize(buckets, start, end)

    return read


def usage_section(
    reader: UsageReader, period: Period, catalog: Catalog, *, provider: str | None = None
) -> UsageSection:
    """The section over ``period`` (the month, cut at ``as_of``); of the members that
    are catalog provider ``provider`` only, when given."""
    report = reader(period.start, period.end)
    names = {p.id: p.name for p in catalog.providers}
    providers: list[ProviderUsageExport] = []
    for usage in () if report is None else report.providers:
        if usage.requests <= 0:
            continue
        ident = _slug(usage.provider_member)
        name = names.get(ident) if ident is not None else None
        if name is None:
            ident = None
        if provider is not None and ident != provider:
            continue
        providers.append(
            ProviderUsageExport(
                member=usage.provider_member,
                provider=ident,
                name=usage.provider_member if name is None else name,
                figures=UsageFigures.of(usage),
                services=tuple(_service(s) for s in usage.services if s.requests > 0),
            )
        )
    return UsageSection(period, tuple(providers))


def _service(usage: ServiceUsage) -> ServiceUsageExport:
    return ServiceUsageExport(
        service=usage.service,
        figures=UsageFigures.of(usage),
        top_faults=_top_faults(usage.top_faults),
        counted_side=usage.counted_side,
    )


def _top_faults(faults: Sequence[tuple[str, int]]) -> tuple[tuple[str, int], ...]:
    return tuple((str(code), int(count)) for code, count in faults)


def _slug(member: str) -> str | None:
    """The catalog id a discovered member gets (``ClientId.slug()``), ``None`` for a
    text that is not a member identifier."""
    try:
        client = ClientId.parse(member)
    except ValueError:
        return None
    return client.member.slug() if client.subsystem_code is None else None


def _number(value: float | None) -> float | str | None:
    """As the SLA JSON writes a p95: ``"+Inf"`` beyond the last bound."""
    if value is None:
        return None
    if value == float("inf"):
        return "+Inf"
    return value
