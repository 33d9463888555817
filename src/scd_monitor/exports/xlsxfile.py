"""The XLSX export: sheets ``Resumen``, ``Servicios``, ``Interrupciones``, ``Diario``,
``Incidentes`` (and ``Uso de la plataforma`` when the export has the use of the X-Road
platform, :mod:`scd_monitor.exports.usage`), with number formats and the *rangos de
medición* as conditional colours.

Written with XlsxWriter in memory: the archive members carry XlsxWriter's fixed
1980-01-01 timestamp and the document properties carry ``as_of`` as their creation
date, so the same export gives the same bytes. Times are local times of the catalog's
zone (Excel has no time zones; the headers name the zone); durations are Excel
durations (days) shown as ``[h]:mm:ss``; ratios are numbers shown as percentages.

The colours are Excel conditional formats over the cells (green: availability ≥ target;
amber: ≥ the amber bound, column ``Rango ámbar desde``; red: below;
docs/rangos-de-medicion.md), so they follow the numbers; the ``Rango`` column holds the
band computed exactly by the export (Excel compares floats: at an exact tie the colour
may differ from it by one float step, the column is the verdict). In a closed month, a service whose
coverage is below its minimum (``Cobertura mínima``) has no verdict: its availability,
compliance and band cells take the *cobertura insuficiente* colour instead (a rule
before the bands', also on the numbers), its compliance reads ``Cobertura insuficiente``
and its band ``Sin veredicto``; the ``Resumen`` sheet says so in a banner and lists
those services.
"""

from __future__ import annotations

import io
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import xlsxwriter  # type: ignore[import-untyped]  # XlsxWriter ships no type information

from scd_monitor import __version__, l10n
from scd_monitor.analysis.usage import FAULT_SIDES
from scd_monitor.exports import es_co
from scd_monitor.exports.coverage import INSUFFICIENT_COVERAGE, Verdicts
from scd_monitor.exports.model import (
    NO_INCIDENTS,
    PROVISIONAL_NOTE,
    Band,
    MonthExport,
)
from scd_monitor.exports.usage import (
    FAULT_SIDE_LABELS,
    NO_USAGE,
    USAGE_TITLE,
    UsageFigures,
)
from scd_monitor.sla.engine import ProviderFigures

__all__ = ["BAND_COLOURS", "render_xlsx"]

BAND_COLOURS: dict[Band | None, tuple[str, str]] = {
    Band.GREEN: ("#C6EFCE", "#006100"),
    Band.AMBER: ("#FFEB9C", "#9C5700"),
    Band.RED: ("#FFC7CE", "#9C0006"),
    None: ("#E7E6E6", "#3A3838"),
}
"""Band → (fill, font) colours, Excel's own good / neutral / bad styles."""

INSUFFICIENT_COLOURS: tuple[str, str] = ("#E4DFEC", "#3F3151")
"""(fill, font) of a service without a verdict for lack of measurement."""
NO_VERDICT = "Sin veredicto"
"""The ``Rango`` of a service whose coverage withheld the verdict."""

BAND_LABELS: dict[Band | None, str] = {
    Band.GREEN: "Verde",
    Band.AMBER: "Ámbar",
    Band.RED: "Rojo",
    None: "Sin datos",
}

_PCT = "0.000%"
_DUR = "[h]:mm:ss"
_DATETIME = "dd/mm/yyyy hh:mm:ss"


def _days(value: timedelta | None) -> float | None:
    return None if value is None else value / timedelta(days=1)


def _local(value: datetime, tz: ZoneInfo) -> datetime:
    return value.astimezone(tz).replace(tzinfo=None)


class _Book:
    """The workbook and its formats."""

    def __init__(self, buffer: io.BytesIO, export: MonthExport) -> None:
        self.export = export
        self.tz = export.tz
        self.wb = xlsxwriter.Workbook(buffer, {"in_memory": True})
        created = export.as_of.astimezone(ZoneInfo("UTC")).replace(tzinfo=None)
        self.wb.set_properties(
            {
                "title": f"Cumplimiento ANS {export.month}",
                "subject": "Acuerdos de Niveles de Servicio — Servicios Ciudadanos Digitales",
                "author": "scd-monitor",
                "company": "",
                "comments": _comments(export),
                "created": created,
            }
        )
        add = self.wb.add_format
        self.title = add({"bold": True, "font_size": 14})
        self.subtitle = add({"font_size": 11, "italic": True})
        self.warning = add({"bold": True, "font_color": "#9C0006", "bg_color": "#FFC7CE"})
        self.warning_wrap = add(
            {
                "bold": True,
                "font_color": "#9C0006",
                "bg_color": "#FFC7CE",
                "text_wrap": True,
                "valign": "vcenter",
            }
        )
        self.label = add({"bold": True})
        self.header = add(
            {"bold": True, "bg_color": "#1F3864", "font_color": "#FFFFFF", "text_wrap": True}
        )
        self.total = add({"bold": True, "top": 1})
        self.total_pct = add({"bold": True, "top": 1, "num_format": _PCT})
        self.total_dur = add({"bold": True, "top": 1, "num_format": _DUR})
        self.pct = add({"num_format": _PCT})
        self.dur = add({"num_format": _DUR})
        self.when = add({"num_format": _DATETIME})
        self.secs = add({"num_format": "0.000"})
        self.text = add({})
        self.day_header = add(
            {"bold": True, "bg_color": "#1F3864", "font_color": "#FFFFFF", "align": "center"}
        )
        self.day_cell = add({"num_format": "0.0%", "align": "center", "font_size": 8})
        self.no_data = add(
            {
                "bg_color": BAND_COLOURS[None][0],
                "font_color": BAND_COLOURS[None][1],
                "align": "center",
                "font_size": 8,
            }
        )
        self.bands = {
            band: add({"bg_color": fill, "font_color": font})
            for band, (fill, font) in BAND_COLOURS.items()
        }
        fill, font = INSUFFICIENT_COLOURS
        self.insufficient = add({"bg_color": fill, "font_color": font, "italic": True})

    def sheet(self, name: str, *, header_rows: int = 1) -> Any:
        """A worksheet printed on A4 landscape pages one page wide."""
        ws = self.wb.add_worksheet(name)
        ws.set_landscape()
        ws.set_paper(9)  # A4
        ws.fit_to_pages(1, 0)
        ws.set_margins(left=0.4, right=0.4, top=0.5, bottom=0.5)
        if header_rows:
            ws.repeat_rows(0, header_rows - 1)
        ws.set_footer("&L&8scd-monitor&C&8&A&R&8&P / &N")
        return ws

    def write(self, sheet: Any, row: int, col: int, value: Any, fmt: Any = None) -> None:
        if value is None:
            sheet.write_blank(row, col, None, fmt)
        elif isinstance(value, datetime):
            sheet.write_datetime(row, col, _local(value, self.tz), fmt or self.when)
        elif isinstance(value, timedelta):
            sheet.write_number(row, col, _days(value), fmt or self.dur)
        elif isinstance(value, bool):
            sheet.write_boolean(row, col, value, fmt)
        elif isinstance(value, int | float):
            sheet.write_number(row, col, value, fmt)
        else:
            sheet.write_string(row, col, str(value), fmt)

    def band_colours(self, sheet: Any, cells: str, value: str, target: str, amber: str) -> None:
        """Conditional colours on ``cells`` by the band of ``value`` against ``target``
        and the amber bound ``amber`` (relative references of the range's top-left cell;
        the bounds are :mod:`scd_monitor.sla.bands`', written in their own columns)."""
        rules = (
            (Band.GREEN, f"AND(ISNUMBER({value}),{value}>={target})"),
            (Band.AMBER, f"AND(ISNUMBER({value}),{value}<{target},{value}>={amber})"),
            (Band.RED, f"AND(ISNUMBER({value}),{value}<{amber})"),
        )
        for band, formula in rules:
            sheet.conditional_format(
                cells, {"type": "formula", "criteria": f"={formula}", "format": self.bands[band]}
            )

    def insufficient_colours(self, sheet: Any, cells: str, coverage: str, minimum: str) -> None:
        """The *cobertura insuficiente* colour on ``cells`` where ``coverage`` is below
        ``minimum``; added before :meth:`band_colours`, it takes precedence (and stops
        the bands' rules)."""
        formula = f"AND(ISNUMBER({coverage}),ISNUMBER({minimum}),{coverage}<{minimum})"
        sheet.conditional_format(
            cells,
            {
                "type": "formula",
                "criteria": f"={formula}",
                "format": self.insufficient,
                "stop_if_true": True,
            },
        )


def _comments(export: MonthExport) -> str:
    if export.provisional:
        return PROVISIONAL_NOTE
    if export.insufficient_coverage:
        return f"Mes cerrado; {_insufficient_count(len(export.insufficient_coverage))}"
    return "Mes cerrado"


def _insufficient_count(n: int) -> str:
    """``1 servicio sin veredicto por cobertura insuficiente`` (``2 servicios …``)."""
    return f"{n} {'servicio' if n == 1 else 'servicios'} sin veredicto por cobertura insuficiente"


def render_xlsx(export: MonthExport) -> bytes:
    buffer = io.BytesIO()
    book = _Book(buffer, export)
    _summary(book)
    _services(book)
    _outages(book)
    _daily(book)
    _incidents(book)
    _usage(book)
    book.wb.close()
    return buffer.getvalue()


def _summary(book: _Book) -> None:
    e = book.export
    ws = book.sheet("Resumen", header_rows=0)
    ws.set_column(0, 0, 28)
    ws.set_column(1, 1, 30)
    ws.set_column(2, 12, 14)
    ws.write_string(0, 0, "Cumplimiento de los Acuerdos de Niveles de Servicio (ANS)", book.title)
    ws.write_string(
        1,
        0,
        f"Servicios Ciudadanos Digitales — {l10n.month_name(e.year, e.month_number)}",
        book.subtitle,
    )
    row = 2
    if e.provisional:
        ws.merge_range(row, 0, row, 6, f"PROVISIONAL — {PROVISIONAL_NOTE}", book.warning)
    elif e.insufficient_coverage:
        ws.set_row(row, 45)
        ws.merge_range(
            row,
            0,
            row,
            6,
            f"{INSUFFICIENT_COVERAGE.upper()} — Mes cerrado, pero "
            f"{_insufficient_count(len(e.insufficient_coverage))}: la medición cubrió menos "
            "de la cobertura mínima exigida (ver «Servicios con cobertura insuficiente»).",
            book.warning_wrap,
        )
    else:
        ws.write_string(row, 0, "Informe definitivo: el mes cerró.", book.text)
    last_day = (e.period.end - timedelta(microseconds=1)).astimezone(book.tz).date()
    meta = [
        (
            "Periodo",
            f"Del {l10n.long_date(e.period.start.astimezone(book.tz).date())} "
            f"al {l10n.long_date(last_day)}",
        ),
        ("Zona horaria", e.timezone),
        ("Datos con corte al", l10n.local_datetime(e.as_of, book.tz) + f" ({e.timezone})"),
        ("Versión del catálogo", e.catalog_version or l10n.DASH),
        ("Versión del software", f"scd-monitor {__version__}"),
    ]
    if e.provider_filter:
        meta.append(("Prestador", e.provider_filter))
    row = 4
    for label, value in meta:
        ws.write_string(row, 0, label, book.label)
        ws.write_string(row, 1, value, book.text)
        row += 1

    row += 1
    ws.write_string(row, 0, "Resumen por prestador", book.label)
    row += 1
    headers = [
        "Prestador",
        "Nombre",
        "Servicios",
        "Cumplen",
        "No cumplen",
        "Sin datos",
        "Cobertura insuficiente",
        "Disponibilidad",
        "Cobertura de medición",
        "Indisponibilidad descontada",
        "Mantenimiento excluido",
        "Sin medición (UNKNOWN)",
        "Interrupciones descontadas",
    ]
    ws.set_row(row, 30)
    for col, h in enumerate(headers):
        ws.write_string(row, col, h, book.header)
    row += 1

    def figures_row(
        r: int, ident: str, name: str, f: ProviderFigures, v: Verdicts, bold: bool
    ) -> None:
        text = book.total if bold else None
        pct = book.total_pct if bold else book.pct
        dur = book.total_dur if bold else book.dur
        values: list[tuple[Any, Any]] = [
            (ident, text),
            (name, text),
            (f.services, text),
            (v.met, text),
            (v.missed, text),
            (v.no_data, text),
            (v.insufficient_coverage, text),
            (f.availability, pct),
            (f.coverage, pct),
            (f.charged_downtime, dur),
            (f.excluded_maintenance, dur),
            (f.unknown, dur),
            (f.outage_count, text),
        ]
        for col, (value, fmt) in enumerate(values):
            book.write(ws, r, col, value, fmt)

    for p in e.providers:
        figures_row(row, p.report.provider, p.report.provider_name, p.figures, p.verdicts, False)
        row += 1
    figures_row(row, "Todos", "Todos los prestadores", e.summary, e.verdicts, True)
    row += 2

    if e.insufficient_coverage:
        ws.write_string(row, 0, "Servicios con cobertura insuficiente (sin veredicto)", book.label)
        row += 1
        ws.set_row(row, 30)
        for col, h in enumerate(
            (
                "Prestador",
                "Servicio",
                "Cobertura de medición",
                "Cobertura mínima",
                "Sin medición (UNKNOWN)",
                "Disponibilidad (solo informativa)",
            )
        ):
            ws.write_string(row, col, h, book.header)
        row += 1
        for s in e.insufficient_coverage:
            values: list[tuple[Any, Any]] = [
                (s.report.provider, None),
                (s.report.service, None),
                (s.figures.coverage, book.pct),
                (s.min_coverage, book.pct),
                (s.figures.unknown, book.dur),
                (s.figures.availability, book.pct),
            ]
            for col, (value, fmt) in enumerate(values):
                book.write(ws, row, col, value, fmt)
            row += 1
        row += 1

    ws.write_string(row, 0, "Rangos de medición (disponibilidad frente a la meta)", book.label)
    row += 1
    legend = [
        (Band.GREEN, "Verde, cumple: disponibilidad ≥ meta"),
        (
            Band.AMBER,
            "Ámbar, incumplimiento leve: ≥ el umbral ámbar del servicio (columna «Rango "
            "ámbar desde» de Servicios; por omisión 2 × meta − 1)",
        ),
        (Band.RED, "Rojo, incumplimiento grave: por debajo del umbral ámbar"),
        (None, "Gris: sin tiempo elegible (sin datos)"),
    ]
    for band, text in legend:
        ws.write_string(row, 0, BAND_LABELS[band], book.bands[band])
        ws.write_string(row, 1, text, book.text)
        row += 1
    ws.write_string(row, 0, INSUFFICIENT_COVERAGE, book.insufficient)
    ws.write_string(
        row,
        1,
        "Mes cerrado con una cobertura de medición menor que la mínima del servicio: sin "
        "veredicto ni rango; la disponibilidad se muestra solo como información",
        book.text,
    )
    ws.activate()


_SERVICE_HEADERS = (
    "Prestador",
    "Nombre del prestador",
    "Servicio",
    "Nombre del servicio",
    "Tipo",
    "Meta ANS",
    "Disponibilidad",
    "Cumplimiento",
    "Rango",
    "Tiempo elegible",
    "Indisponibilidad descontada",
    "Mantenimiento excluido",
    "Sin medición (UNKNOWN)",
    "Cobertura de medición",
    "Cobertura mínima",
    "Interrupciones descontadas",
    "Interrupciones (total)",
    "MTTR",
    "MTBF",
    "Umbral de latencia (s)",
    "Cumplimiento de latencia",
    "Latencia p95 (s)",
    "Presupuesto de error",
    "Presupuesto consumido",
    "Presupuesto usado",
    "Incidentes",
    "Estado del informe",
    "Rango ámbar desde",
)


def _services(book: _Book) -> None:
    e = book.export
    ws = book.sheet("Servicios")
    ws.set_row(0, 45)
    for col, h in enumerate(_SERVICE_HEADERS):
        ws.write_string(0, col, h, book.header)
    ws.set_column(0, 4, 18)
    ws.set_column(5, len(_SERVICE_HEADERS) - 3, 14)
    ws.set_column(len(_SERVICE_HEADERS) - 3, len(_SERVICE_HEADERS) - 3, 40)
    ws.set_column(len(_SERVICE_HEADERS) - 2, len(_SERVICE_HEADERS) - 1, 16)
    ws.freeze_panes(1, 4)
    row = 1
    for s in e.services:
        r, f = s.report, s.figures
        budget = f.error_budget
        p95: Any = f.latency_p95
        if p95 is not None and p95 == float("inf"):
            p95 = "> 60"
        values: list[tuple[Any, Any]] = [
            (r.provider, None),
            (r.provider_name, None),
            (r.service, None),
            (r.service_name, None),
            (r.service_type, None),
            (f.target, book.pct),
            (f.availability, book.pct),
            (s.compliance, None),
            (NO_VERDICT if s.coverage_sufficient is False else BAND_LABELS[s.band], None),
            (f.eligible, None),
            (f.charged_downtime, None),
            (f.excluded_maintenance, None),
            (f.unknown, None),
            (f.coverage, book.pct),
            (s.min_coverage, book.pct),
            (f.outage_count, None),
            (f.outages_total, None),
            (f.mttr, None),
            (f.mtbf, None),
            (None if s.latency_threshold is None else s.latency_threshold.total_seconds(), None),
            (f.latency_compliance, book.pct),
            (p95, book.secs),
            (None if budget is None else budget.budget, None),
            (None if budget is None else budget.consumed, None),
            (s.error_budget_used, book.pct),
            (" ".join(i.id for i in s.incidents) or NO_INCIDENTS, None),
            ("PROVISIONAL" if e.provisional else "Definitivo", None),
            (s.bounds.amber_ratio, book.pct),
        ]
        for col, (value, fmt) in enumerate(values):
            book.write(ws, row, col, value, fmt)
        row += 1
    if row > 1:
        if not e.provisional:
            # A closed month: no verdict, so no band, below the minimum coverage (O).
            book.insufficient_colours(ws, f"G2:I{row}", "$N2", "$O2")
        # Availability (G) and compliance (H) coloured by availability against target (F).
        amber = xlsxwriter.utility.xl_rowcol_to_cell(1, len(_SERVICE_HEADERS) - 1, col_abs=True)
        book.band_colours(ws, f"G2:I{row}", "$G2", "$F2", amber)
        ws.autofilter(0, 0, row - 1, len(_SERVICE_HEADERS) - 1)
    if e.insufficient_coverage:
        ws.write_string(
            row + 1,
            0,
            f"{INSUFFICIENT_COVERAGE}: la cobertura de medición del mes quedó por debajo de "
            "la cobertura mínima del servicio; no hay veredicto de cumplimiento ni rango, y "
            "la disponibilidad se muestra solo como información.",
        )


def _outages(book: _Book) -> None:
    e = book.export
    ws = book.sheet("Interrupciones")
    headers = (
        "Prestador",
        "Servicio",
        f"Inicio ({e.timezone})",
        f"Fin ({e.timezone})",
        "Duración",
        "Tiempo descontado",
        "Descontada",
        "Por qué",
        "Causa observada",
    )
    ws.set_row(0, 30)
    for col, h in enumerate(headers):
        ws.write_string(0, col, h, book.header)
    ws.set_column(0, 1, 18)
    ws.set_column(2, 3, 20)
    ws.set_column(4, 6, 12)
    ws.set_column(7, 8, 60)
    ws.freeze_panes(1, 2)
    row = 1
    for s in e.services:
        for o in s.figures.outages:
            values: list[Any] = [
                s.report.provider,
                s.report.service,
                o.start,
                "en curso" if o.end is None else o.end,
                o.duration,
                o.charged,
                es_co.outage_charged(o),
                es_co.outage_why(o),
                o.reason,
            ]
            for col, value in enumerate(values):
                book.write(ws, row, col, value)
            row += 1
    if row == 1:
        ws.write_string(1, 0, "Sin interrupciones en el mes")
    else:
        ws.autofilter(0, 0, row - 1, len(headers) - 1)


def _daily(book: _Book) -> None:
    e = book.export
    ws = book.sheet("Diario")
    ws.write_string(0, 0, "Prestador", book.header)
    ws.write_string(0, 1, "Servicio", book.header)
    ws.write_string(0, 2, "Meta", book.header)
    ws.set_column(0, 1, 18)
    ws.set_column(2, 2, 8)
    first_col = 3
    for i, day in enumerate(e.days):
        ws.write_number(0, first_col + i, day.start.astimezone(book.tz).day, book.day_header)
    ws.set_column(first_col, first_col + len(e.days) - 1, 6)
    amber_col = first_col + len(e.days)
    ws.write_string(0, amber_col, "Rango ámbar desde", book.header)
    ws.set_column(amber_col, amber_col, 10)
    ws.freeze_panes(1, first_col)
    row = 1
    for s in e.services:
        ws.write_string(row, 0, s.report.provider)
        ws.write_string(row, 1, s.report.service)
        ws.write_number(row, 2, s.figures.target, book.pct)
        ws.write_number(row, amber_col, s.bounds.amber_ratio, book.pct)
        for i, d in enumerate(s.days):
            col = first_col + i
            if d.pending:
                ws.write_blank(row, col, None)
            elif d.availability is None:
                ws.write_string(row, col, "s/d", book.no_data)
            else:
                ws.write_number(row, col, d.availability, book.day_cell)
        row += 1
    if row > 1 and e.days:
        start = xlsxwriter.utility.xl_rowcol_to_cell(1, first_col)
        end = xlsxwriter.utility.xl_rowcol_to_cell(row - 1, first_col + len(e.days) - 1)
        value = xlsxwriter.utility.xl_rowcol_to_cell(1, first_col, row_abs=False, col_abs=False)
        amber = xlsxwriter.utility.xl_rowcol_to_cell(1, amber_col, col_abs=True)
        book.band_colours(ws, f"{start}:{end}", value, "$C2", amber)
    note = row + 1
    ws.write_string(
        note,
        0,
        f"Disponibilidad de cada día local ({e.timezone}); s/d: sin tiempo elegible; "
        "en blanco: el día aún no había comenzado.",
    )


def _incidents(book: _Book) -> None:
    e = book.export
    ws = book.sheet("Incidentes")
    headers = (
        "Identificador",
        "Prestador",
        "Servicio",
        "Severidad",
        f"Apertura ({e.timezone})",
        f"Resolución ({e.timezone})",
    )
    for col, h in enumerate(headers):
        ws.write_string(0, col, h, book.header)
    ws.set_column(0, 0, 20)
    ws.set_column(1, 3, 18)
    ws.set_column(4, 5, 20)
    if not e.incidents:
        ws.write_string(1, 0, NO_INCIDENTS)
        return
    for row, i in enumerate(e.incidents, start=1):
        values: list[Any] = [
            i.id,
            i.provider,
            i.service or "(todo el prestador)",
            i.severity,
            i.opened_at,
            "abierto" if i.resolved_at is None else i.resolved_at,
        ]
        for col, value in enumerate(values):
            book.write(ws, row, col, value)


USAGE_SHEET = "Uso de la plataforma"
PROVIDER_TOTAL = "Total del prestador"
"""The ``Servicio`` of a provider member's row in ``Uso de la plataforma``."""
_USAGE_HEADERS = (
    "Prestador",
    "Miembro X-Road",
    "Servicio",
    "Solicitudes",
    "Exitosas",
    "Fallidas",
    "Tasa de éxito",
    "Duración p95 aprox. (ms)",
    *(f"Fallos del {FAULT_SIDE_LABELS[side]}" for side in FAULT_SIDES[:3]),
    "Fallos de lado desconocido",
    "Códigos de falla más frecuentes",
)


def _usage(book: _Book) -> None:
    """``Uso de la plataforma``: a row per provider member (its total), then one per
    service of it; only when the export has the section."""
    e = book.export
    if e.usage is None:
        return
    ws = book.sheet(USAGE_SHEET)
    ws.set_row(0, 30)
    for col, h in enumerate(_USAGE_HEADERS):
        ws.write_string(0, col, h, book.header)
    ws.set_column(0, 1, 28)
    ws.set_column(2, 2, 48)
    ws.set_column(3, len(_USAGE_HEADERS) - 2, 13)
    ws.set_column(len(_USAGE_HEADERS) - 1, len(_USAGE_HEADERS) - 1, 50)
    ws.freeze_panes(1, 3)
    if not e.usage.has_data:
        ws.write_string(1, 0, NO_USAGE)
        return

    def figures(row: int, f: UsageFigures, bold: bool) -> None:
        text = book.total if bold else None
        p95: Any = f.p95_ms
        if p95 is not None and p95 == float("inf"):
            p95 = "> 60000"
        values: list[tuple[Any, Any]] = [
            (f.requests, text),
            (f.successes, text),
            (f.failures, text),
            (f.success_ratio, book.total_pct if bold else book.pct),
            (p95, text),
            *((n, text) for n in f.faults),
        ]
        for col, (value, fmt) in enumerate(values, start=3):
            book.write(ws, row, col, value, fmt)

    row = 1
    for p in e.usage.providers:
        book.write(ws, row, 0, p.name, book.total)
        book.write(ws, row, 1, p.member, book.total)
        book.write(ws, row, 2, PROVIDER_TOTAL, book.total)
        figures(row, p.figures, True)
        row += 1
        for s in p.services:
            book.write(ws, row, 0, p.name)
            book.write(ws, row, 1, p.member)
            book.write(ws, row, 2, s.service)
            figures(row, s.figures, False)
            codes = "; ".join(f"{code} ({count})" for code, count in s.top_faults)
            book.write(ws, row, len(_USAGE_HEADERS) - 1, codes or None)
            row += 1
    ws.autofilter(0, 0, row - 1, len(_USAGE_HEADERS) - 1)
    period = e.usage.period
    ws.write_string(
        row + 1,
        0,
        f"{USAGE_TITLE}: solicitudes registradas por los servidores de seguridad "
        f"monitoreados del {l10n.local_datetime(period.start, book.tz, seconds=False)} al "
        f"{l10n.local_datetime(period.end, book.tz, seconds=False)} ({e.timezone}).",
    )
    ws.write_string(
        row + 2,
        0,
        "Una solicitud entre dos servidores de seguridad monitoreados la registran ambos: "
        "por servicio cuentan los registros del proveedor cuando los hay y, si no, los del "
        "cliente. La duración p95 es aproximada (límite superior del intervalo del "
        "histograma que la contiene).",
    )
