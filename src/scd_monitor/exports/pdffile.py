"""The PDF export: a report in Spanish (es-CO) for people.

Pages: a cover (period, cut-off, versions, the *rangos de medición*, how to read the
figures, PROVISIONAL when the month is open), the general summary (per provider, per
service, and the daily availability of every service as a figure), then one section per
provider with each service's figures, its daily strip, its outages (charged or not and
why) and its incidents. Every page but the cover has a header (month, PROVISIONAL) and
a footer (versions, page n of N).

Written with fpdf2 and the PDF core font Helvetica (WinAnsi / cp1252, which has every
Spanish letter), so no font file is embedded or needed. The document's creation date is
``as_of`` and its file identifier is derived from the content, so the same export
gives the same bytes.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

from fpdf import FPDF
from fpdf.enums import Align, XPos, YPos
from fpdf.fonts import FontFace

from scd_monitor import __version__, l10n
from scd_monitor.exports import es_co
from scd_monitor.exports.model import (
    NO_INCIDENTS,
    PROVISIONAL_NOTE,
    Band,
    DayFigures,
    IncidentRef,
    MonthExport,
    ProviderExport,
    ServiceExport,
)
from scd_monitor.sla.engine import ProviderFigures

__all__ = ["render_pdf"]

_RGB = tuple[int, int, int]
_Cell = tuple[str, Band | bool | None]
"""A table cell: its text and the band to fill it with (``False``: no fill)."""

FILL: dict[Band | None, _RGB] = {
    Band.GREEN: (46, 160, 67),
    Band.AMBER: (240, 173, 0),
    Band.RED: (207, 34, 46),
    None: (190, 190, 190),
}
"""Band → fill colour of the daily cells and the compliance badges."""
PENDING: _RGB = (255, 255, 255)
ZEBRA: _RGB = (244, 246, 250)
NAVY: _RGB = (31, 56, 100)
LIGHT: _RGB = (232, 236, 243)
TEXT: _RGB = (33, 33, 33)
MUTED: _RGB = (110, 110, 110)
WARN: _RGB = (156, 0, 6)

BAND_TEXT: dict[Band | None, str] = {
    Band.GREEN: "Verde: cumple (disponibilidad igual o mayor que la meta).",
    Band.AMBER: (
        "Ámbar: no cumple, pero la disponibilidad es al menos meta - (1 - meta): "
        "excedió el presupuesto de error en menos de un presupuesto más."
    ),
    Band.RED: "Rojo: no cumple, por más de un presupuesto de error adicional.",
    None: "Gris: sin tiempo elegible (sin datos) en el periodo.",
}


def _fore(band: Band | None) -> _RGB:
    """Text colour on a band's fill: white on green and red, black on amber and grey."""
    return (255, 255, 255) if band in (Band.GREEN, Band.RED) else (0, 0, 0)


def _n(count: int, one: str, many: str) -> str:
    """``1 cumple``, ``2 cumplen``."""
    return f"{count} {one if count == 1 else many}"


_HEADINGS = FontFace(emphasis="BOLD", color=(255, 255, 255), fill_color=NAVY, size_pt=8)


class _Pdf(FPDF):
    """A4 portrait, 15 mm margins, Helvetica; header and footer from the export."""

    def __init__(self, export: MonthExport) -> None:
        super().__init__(orientation="portrait", unit="mm", format="A4")
        self.export = export
        self.core_fonts_encoding = "cp1252"
        self.set_margins(15, 18, 15)
        self.set_auto_page_break(auto=True, margin=16)
        self.alias_nb_pages()
        self.set_creation_date(export.as_of)
        self.set_title(f"Cumplimiento ANS {export.month}")
        self.set_subject("Acuerdos de Niveles de Servicio - Servicios Ciudadanos Digitales")
        self.set_author("scd-monitor")
        self.set_creator(f"scd-monitor {__version__}")
        self.set_lang("es-CO")
        self.set_text_color(*TEXT)

    def normalize_text(self, text: str) -> str:
        # Names from the catalog or X-Road may hold characters outside cp1252: show "?"
        # for those rather than failing the whole report.
        return super().normalize_text(text.encode("cp1252", "replace").decode("cp1252"))

    def header(self) -> None:
        if self.page_no() == 1:
            return
        e = self.export
        self.set_y(8)
        self.set_font("Helvetica", "", 8)
        self.set_text_color(*MUTED)
        self.cell(
            0, 5, f"Cumplimiento ANS - {l10n.month_name(e.year, e.month_number)}", align=Align.L
        )
        if e.provisional:
            self.set_x(self.l_margin)
            self.set_font("Helvetica", "B", 9)
            self.set_text_color(*WARN)
            self.cell(0, 5, "PROVISIONAL: el mes aún no ha cerrado", align=Align.R)
        self.set_text_color(*TEXT)
        self.set_draw_color(*LIGHT)
        self.line(self.l_margin, 14, self.w - self.r_margin, 14)
        self.set_y(self.t_margin)

    def footer(self) -> None:
        e = self.export
        self.set_y(-12)
        self.set_font("Helvetica", "", 7)
        self.set_text_color(*MUTED)
        catalog = e.catalog_version or "sin versión"
        self.cell(0, 5, f"scd-monitor {__version__} - catálogo {catalog}", align=Align.L)
        self.set_x(self.l_margin)
        self.cell(0, 5, f"Página {self.page_no()} de {{nb}}", align=Align.R)
        self.set_text_color(*TEXT)

    # -- building blocks -------------------------------------------------------------

    @property
    def width(self) -> float:
        return self.w - self.l_margin - self.r_margin

    def heading(self, text: str, size: float = 14) -> None:
        self.set_font("Helvetica", "B", size)
        self.set_text_color(*NAVY)
        self.multi_cell(0, size * 0.5, text, align=Align.L, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        self.set_text_color(*TEXT)
        self.ln(1.5)

    def paragraph(self, text: str, size: float = 9, style: str = "") -> None:
        self.set_font("Helvetica", style, size)
        self.multi_cell(0, size * 0.48, text, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        self.ln(1)

    def need(self, height: float) -> None:
        """Start a new page unless ``height`` mm fit on this one."""
        if self.get_y() + height > self.page_break_trigger:
            self.add_page()

    def badge(self, band: Band | None, text: str, *, w: float = 26, h: float = 6) -> None:
        self.set_fill_color(*FILL[band])
        self.set_text_color(*_fore(band))
        self.set_font("Helvetica", "B", 9)
        self.cell(w, h, text, align=Align.C, fill=True)
        self.set_text_color(*TEXT)

    def legend(self) -> None:
        self.set_font("Helvetica", "", 8)
        for band in (Band.GREEN, Band.AMBER, Band.RED, None):
            self.set_fill_color(*FILL[band])
            y = self.get_y()
            self.rect(self.l_margin, y + 0.8, 3.5, 3.5, style="F")
            self.set_x(self.l_margin + 5)
            self.multi_cell(
                self.width - 5, 4.5, BAND_TEXT[band], new_x=XPos.LMARGIN, new_y=YPos.NEXT
            )

    def table_rows(
        self,
        header: Sequence[str],
        rows: Sequence[Sequence[_Cell]],
        widths: Sequence[float],
        *,
        align: Sequence[str] | None = None,
        size: float = 8,
    ) -> None:
        """A table; a cell is (text, band to fill it with, or False for no fill)."""
        self.set_font("Helvetica", "", size)
        self.set_fill_color(255, 255, 255)  # the table fills body cells with the current one
        aligns = align or ["LEFT"] * len(header)
        with self.table(
            cell_fill_color=ZEBRA,
            cell_fill_mode="ROWS",
            col_widths=widths,
            width=sum(widths),
            align="LEFT",
            headings_style=_HEADINGS,
            line_height=size * 0.5,
            padding=(0.8, 1.2, 0.8, 1.2),
            text_align="LEFT",
            borders_layout="HORIZONTAL_LINES",
        ) as table:
            head = table.row()
            for text in header:
                head.cell(text)
            for row in rows:
                r = table.row()
                for (text, band), al in zip(row, aligns, strict=True):
                    style = None
                    if band is not False:
                        colour = FILL[band if isinstance(band, Band) else None]
                        fore = _fore(band if isinstance(band, Band) else None)
                        style = FontFace(emphasis="BOLD", color=fore, fill_color=colour)
                    r.cell(text, align=al, style=style)
        self.ln(2)


def render_pdf(export: MonthExport) -> bytes:
    pdf = _Pdf(export)
    _cover(pdf)
    _summary(pdf)
    for provider in export.providers:
        _provider(pdf, provider)
    return bytes(pdf.output())


# -- cover ------------------------------------------------------------------------------


def _cover(pdf: _Pdf) -> None:
    e = pdf.export
    tz = e.tz
    pdf.add_page()
    pdf.set_fill_color(*NAVY)
    pdf.rect(0, 0, pdf.w, 12, style="F")
    pdf.set_y(30)
    pdf.set_font("Helvetica", "B", 11)
    pdf.set_text_color(*MUTED)
    pdf.cell(0, 6, "SERVICIOS CIUDADANOS DIGITALES", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.ln(3)
    pdf.set_text_color(*NAVY)
    pdf.set_font("Helvetica", "B", 22)
    pdf.multi_cell(
        0,
        10,
        "Informe de cumplimiento de los Acuerdos de Niveles de Servicio (ANS)",
        align=Align.L,
        new_x=XPos.LMARGIN,
        new_y=YPos.NEXT,
    )
    pdf.ln(2)
    pdf.set_font("Helvetica", "", 18)
    month = l10n.month_name(e.year, e.month_number)
    pdf.cell(0, 9, month[:1].upper() + month[1:], new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.set_text_color(*TEXT)
    if e.provider_filter:
        names = [p.report.provider_name for p in e.providers] or [e.provider_filter]
        pdf.set_font("Helvetica", "", 12)
        pdf.cell(
            0,
            7,
            f"Prestador: {names[0]} ({e.provider_filter})",
            new_x=XPos.LMARGIN,
            new_y=YPos.NEXT,
        )
    pdf.ln(6)

    if e.provisional:
        y = pdf.get_y()
        pdf.set_fill_color(255, 235, 235)
        pdf.set_draw_color(*WARN)
        pdf.rect(pdf.l_margin, y, pdf.width, 18, style="DF")
        pdf.set_xy(pdf.l_margin, y + 2)
        pdf.set_font("Helvetica", "B", 16)
        pdf.set_text_color(*WARN)
        pdf.cell(0, 7, "PROVISIONAL", align=Align.C, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        pdf.set_font("Helvetica", "", 10)
        pdf.cell(
            0,
            6,
            f"{PROVISIONAL_NOTE}: cifras con corte al "
            f"{l10n.local_datetime(e.as_of, tz, seconds=False)}.",
            align=Align.C,
            new_x=XPos.LMARGIN,
            new_y=YPos.NEXT,
        )
        pdf.set_text_color(*TEXT)
        pdf.set_y(y + 24)

    first = e.period.start.astimezone(tz).date()
    last = (e.period.end - timedelta(microseconds=1)).astimezone(tz).date()
    s = e.summary
    rows = [
        ("Periodo", f"Del {l10n.long_date(first)} al {l10n.long_date(last)}"),
        ("Zona horaria", e.timezone),
        (
            "Datos con corte al",
            l10n.long_datetime(e.as_of, tz),
        ),
        ("Estado del informe", "PROVISIONAL" if e.provisional else "Definitivo (mes cerrado)"),
        ("Prestadores", str(len(e.providers))),
        (
            "Servicios evaluados",
            f"{s.services}: {_n(s.met, 'cumple', 'cumplen')}, "
            f"{_n(s.missed, 'no cumple', 'no cumplen')}, {s.undetermined} sin datos",
        ),
        ("Versión del catálogo", e.catalog_version or l10n.DASH),
        ("Generado por", f"scd-monitor {__version__}"),
    ]
    pdf.set_font("Helvetica", "", 10)
    for label, value in rows:
        pdf.set_font("Helvetica", "B", 10)
        pdf.cell(48, 6.5, label)
        pdf.set_font("Helvetica", "", 10)
        pdf.multi_cell(0, 6.5, value, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.ln(6)

    pdf.heading("Rangos de medición", 12)
    pdf.legend()
    pdf.ln(4)
    pdf.heading("Cómo leer este informe", 12)
    pdf.paragraph(
        "Disponibilidad = (tiempo elegible - indisponibilidad descontada) / tiempo elegible, "
        "donde el tiempo elegible es el periodo menos el mantenimiento permitido y el tiempo "
        "sin medición (UNKNOWN: sin datos frescos o con falla del propio monitor). Un "
        "servicio cumple cuando su disponibilidad es igual o mayor que su meta. La cobertura "
        "de medición es la parte del periodo cuyo estado se conoce. Una interrupción empieza "
        "en el primer sondeo fallido de la racha que la confirmó y termina en el primer "
        "sondeo exitoso; solo se descuenta la parte ocurrida en tiempo elegible. MTTR: "
        "duración media descontada de las interrupciones descontadas; MTBF: tiempo elegible "
        "sin indisponibilidad dividido por su número. El presupuesto de error del mes es "
        "(1 - meta) x tiempo elegible. Los porcentajes se muestran redondeados; el "
        "cumplimiento se decide con las cifras exactas. Horas en la zona horaria del "
        "catálogo.",
        size=8.5,
    )


# -- summary ----------------------------------------------------------------------------


def _summary(pdf: _Pdf) -> None:
    e = pdf.export
    s = e.summary
    pdf.add_page()
    pdf.heading("Resumen general")
    pdf.paragraph(
        f"En {l10n.month_name(e.year, e.month_number)} se evaluaron "
        f"{_n(s.services, 'servicio', 'servicios')} de "
        f"{_n(len(e.providers), 'prestador', 'prestadores')}: "
        f"{_n(s.met, 'cumple su meta', 'cumplen su meta')}, "
        f"{_n(s.missed, 'no la cumple', 'no la cumplen')} y "
        f"{_n(s.undetermined, 'no tiene datos', 'no tienen datos')}. Disponibilidad conjunta: "
        f"{l10n.percent(s.availability)}; cobertura de medición: {l10n.percent(s.coverage)}."
    )
    pdf.heading("Por prestador", 11)
    rows: list[list[_Cell]] = []
    for p in e.providers:
        rows.append(_provider_row(p.report.provider_name, p.figures.services, p.figures))
    rows.append(_provider_row("Todos los prestadores", s.services, s))
    pdf.table_rows(
        ["Prestador", "Serv.", "Cumplen", "No cumplen", "Sin datos", "Disponib.", "Cobertura",
         "Descontado"],
        rows,
        [50, 12, 16, 18, 16, 22, 20, 26],
        align=["LEFT", "RIGHT", "RIGHT", "RIGHT", "RIGHT", "RIGHT", "RIGHT", "RIGHT"],
    )  # fmt: skip

    pdf.heading("Por servicio", 11)
    service_rows: list[list[_Cell]] = []
    for svc in e.services:
        r, f = svc.report, svc.figures
        service_rows.append(
            [
                (r.provider_name, False),
                (r.service_name or r.service, False),
                (l10n.percent(f.target), False),
                (l10n.percent(f.availability), False),
                (svc.compliance, svc.band),
                (l10n.percent(f.coverage), False),
                (str(f.outage_count), False),
                (l10n.duration(f.charged_downtime), False),
            ]
        )
    pdf.table_rows(
        ["Prestador", "Servicio", "Meta", "Disponib.", "Cumplimiento", "Cobertura", "Interr.",
         "Descontado"],
        service_rows,
        [34, 36, 16, 20, 22, 18, 12, 22],
        align=["LEFT", "LEFT", "RIGHT", "RIGHT", "CENTER", "RIGHT", "RIGHT", "RIGHT"],
    )  # fmt: skip

    _heatmap(pdf)


def _provider_row(name: str, services: int, f: ProviderFigures) -> list[_Cell]:
    return [
        (name, False),
        (str(services), False),
        (str(f.met), False),
        (str(f.missed), False),
        (str(f.undetermined), False),
        (l10n.percent(f.availability), False),
        (l10n.percent(f.coverage), False),
        (l10n.duration(f.charged_downtime), False),
    ]


def _heatmap(pdf: _Pdf) -> None:
    """Figure: one row per service, one cell per local day, coloured by its band."""
    e = pdf.export
    label_w = 52.0
    n = max(len(e.days), 1)
    cell = (pdf.width - label_w) / n
    row_h = 5.0
    pdf.need(24 + row_h * min(len(e.services), 6))
    pdf.heading("Disponibilidad diaria (figura)", 11)

    def day_numbers() -> None:
        pdf.set_font("Helvetica", "", 6)
        y = pdf.get_y()
        for i, day in enumerate(e.days):
            pdf.set_xy(pdf.l_margin + label_w + i * cell, y)
            pdf.cell(cell, 4, str(day.start.astimezone(e.tz).day), align=Align.C)
        pdf.set_xy(pdf.l_margin, y + 4.5)

    day_numbers()
    for svc in e.services:
        if pdf.get_y() + row_h > pdf.page_break_trigger:
            pdf.add_page()
            day_numbers()
        y = pdf.get_y()
        pdf.set_font("Helvetica", "", 7)
        label = f"{svc.report.provider} / {svc.report.service}"
        pdf.set_xy(pdf.l_margin, y)
        pdf.cell(label_w - 1, row_h, _fit(pdf, label, label_w - 2))
        _strip(pdf, svc.days, pdf.l_margin + label_w, y, cell, row_h - 1)
        pdf.set_xy(pdf.l_margin, y + row_h)
    pdf.ln(2)
    pdf.set_font("Helvetica", "I", 7)
    pdf.set_text_color(*MUTED)
    pdf.multi_cell(
        0,
        3.5,
        f"Cada celda es un día local ({e.timezone}) coloreado por su rango de medición "
        "frente a la meta del servicio; en blanco, días aún no transcurridos.",
        new_x=XPos.LMARGIN,
        new_y=YPos.NEXT,
    )
    pdf.set_text_color(*TEXT)


def _strip(pdf: _Pdf, days: Sequence[DayFigures], x: float, y: float, w: float, h: float) -> None:
    pdf.set_draw_color(255, 255, 255)
    pdf.set_line_width(0.3)
    for i, d in enumerate(days):
        pdf.set_fill_color(*(PENDING if d.pending else FILL[d.band]))
        pdf.rect(x + i * w, y, w, h, style="DF" if not d.pending else "D")
        if d.pending:
            pdf.set_draw_color(220, 220, 220)
            pdf.rect(x + i * w + 0.2, y + 0.2, w - 0.4, h - 0.4, style="D")
            pdf.set_draw_color(255, 255, 255)
    pdf.set_draw_color(0, 0, 0)
    pdf.set_line_width(0.2)


def _fit(pdf: _Pdf, text: str, width: float) -> str:
    if pdf.get_string_width(text) <= width:
        return text
    while text and pdf.get_string_width(text + "...") > width:
        text = text[:-1]
    return text + "..."


# -- per provider -----------------------------------------------------------------------


def _provider(pdf: _Pdf, p: ProviderExport) -> None:
    pdf.add_page()
    r, f = p.report, p.figures
    pdf.heading(f"{r.provider_name} ({r.provider})", 16)
    pdf.paragraph(
        f"{_n(f.services, 'servicio', 'servicios')}: {_n(f.met, 'cumple', 'cumplen')}, "
        f"{_n(f.missed, 'no cumple', 'no cumplen')}, {f.undetermined} sin "
        f"datos. Disponibilidad conjunta {l10n.percent(f.availability)}, cobertura "
        f"{l10n.percent(f.coverage)}; indisponibilidad descontada "
        f"{l10n.duration(f.charged_downtime)}, mantenimiento excluido "
        f"{l10n.duration(f.excluded_maintenance)}, sin medición {l10n.duration(f.unknown)}; "
        f"{_n(f.outage_count, 'interrupción descontada', 'interrupciones descontadas')}."
    )
    if p.incidents:
        pdf.heading("Incidentes del prestador", 10)
        _incident_list(pdf, p.incidents)
    for i, svc in enumerate(p.services):
        if i:
            pdf.need(95)
        _service(pdf, svc)


def _service(pdf: _Pdf, svc: ServiceExport) -> None:
    e = pdf.export
    r, f = svc.report, svc.figures
    pdf.ln(2)
    pdf.set_draw_color(*NAVY)
    pdf.line(pdf.l_margin, pdf.get_y(), pdf.w - pdf.r_margin, pdf.get_y())
    pdf.ln(2)
    pdf.heading(f"{r.service_name or r.service} ({r.provider}/{r.service})", 12)
    pdf.badge(svc.band, svc.compliance)
    pdf.set_font("Helvetica", "", 9)
    pdf.cell(
        0,
        6,
        f"  Disponibilidad {l10n.percent(f.availability)} frente a una meta de "
        f"{l10n.percent(f.target)} ({r.service_type})",
        new_x=XPos.LMARGIN,
        new_y=YPos.NEXT,
    )
    pdf.ln(2)

    budget = f.error_budget
    if f.latency_compliance is None:
        latency = "sin respuestas exitosas medidas"
    else:
        threshold = (
            l10n.duration(svc.latency_threshold) if svc.latency_threshold is not None else "?"
        )
        latency = (
            f"{l10n.percent(f.latency_compliance)} en hasta {threshold}; "
            f"p95 {l10n.seconds(f.latency_p95)}"
        )
    pairs = [
        ("Meta ANS", l10n.percent(f.target)),
        ("Disponibilidad lograda", l10n.percent(f.availability)),
        ("Cumplimiento", svc.compliance),
        ("Tiempo elegible", l10n.duration(f.eligible)),
        ("Indisponibilidad descontada", l10n.duration(f.charged_downtime)),
        ("Mantenimiento excluido", l10n.duration(f.excluded_maintenance)),
        ("Sin medición (UNKNOWN)", l10n.duration(f.unknown)),
        ("Cobertura de medición", l10n.percent(f.coverage)),
        (
            "Interrupciones",
            f"{_n(f.outage_count, 'descontada', 'descontadas')} de {f.outages_total}",
        ),
        ("MTTR", l10n.duration(f.mttr)),
        ("MTBF", l10n.duration(f.mtbf)),
        ("Latencia", latency),
        ("Presupuesto de error", l10n.duration(None if budget is None else budget.budget)),
        ("Presupuesto usado", l10n.percent(svc.error_budget_used)),
        ("Incidentes", str(len(svc.incidents))),
    ]
    half = (len(pairs) + 1) // 2
    left, right = pairs[:half], pairs[half:]
    col = pdf.width / 2
    y0 = pdf.get_y()
    for column, items in enumerate((left, right)):
        pdf.set_xy(pdf.l_margin + column * col, y0)
        for label, value in items:
            pdf.set_x(pdf.l_margin + column * col)
            pdf.set_font("Helvetica", "B", 8)
            pdf.cell(40, 4.6, label)
            pdf.set_font("Helvetica", "", 8)
            pdf.cell(col - 41, 4.6, _fit(pdf, value, col - 42), new_x=XPos.LEFT, new_y=YPos.NEXT)
    pdf.set_xy(pdf.l_margin, y0 + half * 4.6 + 3)

    # The daily strip: a figure of the month, one cell per local day.
    pdf.set_font("Helvetica", "B", 8)
    pdf.cell(0, 4, f"Disponibilidad diaria ({e.timezone})", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    n = max(len(svc.days), 1)
    w = pdf.width / n
    y = pdf.get_y() + 1
    _strip(pdf, svc.days, pdf.l_margin, y, w, 7)
    pdf.set_font("Helvetica", "", 5.5)
    for i, d in enumerate(svc.days):
        pdf.set_xy(pdf.l_margin + i * w, y + 7.3)
        pdf.cell(w, 2.8, str(d.day.day), align=Align.C)
        if not d.pending and d.availability is not None and d.band is not Band.GREEN:
            pdf.set_xy(pdf.l_margin + i * w, y + 10)
            pdf.cell(w, 2.8, l10n.percent(d.availability, decimals=0).replace(" %", "%"),
                     align=Align.C)  # fmt: skip
    pdf.set_xy(pdf.l_margin, y + 14)

    pdf.set_font("Helvetica", "B", 9)
    pdf.cell(0, 5, "Interrupciones del mes", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    if not f.outages:
        pdf.paragraph("Sin interrupciones en el mes.", size=8)
    else:
        tz = e.tz
        rows: list[list[_Cell]] = []
        for o in f.outages:
            rows.append(
                [
                    (l10n.local_datetime(o.start, tz), False),
                    ("en curso" if o.end is None else l10n.local_datetime(o.end, tz), False),
                    (l10n.duration(o.duration), False),
                    (l10n.duration(o.charged), False),
                    (es_co.outage_charged(o), False),
                    (es_co.outage_why(o), False),
                ]
            )
        pdf.table_rows(
            ["Inicio", "Fin", "Duración", "Descontado", "Se descuenta", "Por qué"],
            rows,
            [26, 26, 18, 19, 21, 70],
            size=7,
        )
    pdf.set_font("Helvetica", "B", 9)
    pdf.cell(0, 5, "Incidentes del mes", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    _incident_list(pdf, svc.incidents)


def _incident_list(pdf: _Pdf, incidents: Sequence[IncidentRef]) -> None:
    if not incidents:
        pdf.paragraph(NO_INCIDENTS + ".", size=8)
        return
    tz = pdf.export.tz
    rows: list[list[_Cell]] = []
    for i in incidents:
        rows.append(
            [
                (i.id, False),
                (i.service or "(todo el prestador)", False),
                (i.severity, False),
                (l10n.local_datetime(i.opened_at, tz, seconds=False), False),
                (
                    "abierto"
                    if i.resolved_at is None
                    else l10n.local_datetime(i.resolved_at, tz, seconds=False),
                    False,
                ),
            ]
        )
    pdf.table_rows(
        ["Identificador", "Servicio", "Severidad", "Apertura", "Resolución"],
        rows,
        [40, 40, 25, 37, 38],
        size=7.5,
    )
