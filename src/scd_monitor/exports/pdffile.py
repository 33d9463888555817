"""The PDF export: a report in Spanish (es-CO) for people.

Pages: a cover (period, cut-off, versions, the *rangos de medición*, how to read the
figures, PROVISIONAL when the month is open), the general summary (per provider, per
service, and the daily availability of every service as a figure), then one section per
provider with each service's figures, its daily strip, its outages (charged or not and
why) and its incidents; last, when the export has it, the use of the X-Road platform
(*Uso de la plataforma de interoperabilidad*, :mod:`scd_monitor.exports.usage`). Every
page but the cover has a header (month, PROVISIONAL) and
a footer (versions, page n of N).

A closed month in which some services were measured below their minimum coverage says
so on the cover (a box listing those services with their coverage and minimum) and in
every page's header; those services get a *Cobertura insuficiente* badge (no band), and
their availability is marked as only for information.

Written with fpdf2 and the PDF core font Helvetica (WinAnsi / cp1252, which has every
Spanish letter), so no font file is embedded or needed. The document's creation date is
``as_of`` and its file identifier is derived from the content, so the same export
gives the same bytes.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from datetime import timedelta

from fpdf import FPDF
from fpdf.enums import Align, XPos, YPos
from fpdf.fonts import FontFace

from scd_monitor import __version__, l10n
from scd_monitor.exports import es_co
from scd_monitor.exports.coverage import INSUFFICIENT_COVERAGE, Verdicts
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
from scd_monitor.exports.usage import (
    NO_USAGE,
    USAGE_TITLE,
    ProviderUsageExport,
    UsageFigures,
)
from scd_monitor.sla.bands import NO_BAND_COLOUR
from scd_monitor.sla.engine import ProviderFigures

__all__ = ["render_pdf"]

_RGB = tuple[int, int, int]


class _Mark(enum.Enum):
    """A fill that is not a band."""

    INSUFFICIENT = "insufficient"
    """No verdict: the month's measurement is below the service's minimum coverage."""


_Cell = tuple[str, Band | _Mark | bool | None]
"""A table cell: its text and the band (or mark) to fill it with (``False``: no fill)."""


def _rgb(hex_colour: str) -> _RGB:
    value = hex_colour.lstrip("#")
    return (int(value[0:2], 16), int(value[2:4], 16), int(value[4:6], 16))


FILL: dict[Band | None, _RGB] = {
    **{band: _rgb(band.colour) for band in Band},
    None: _rgb(NO_BAND_COLOUR),
}
"""Band → fill colour of the daily cells and the compliance badges (the colours of
:mod:`scd_monitor.sla.bands`, the same as the boards')."""
INSUFFICIENT_FILL: _RGB = (112, 48, 160)
"""Fill of the *cobertura insuficiente* badges and cells (white text)."""
PENDING: _RGB = (255, 255, 255)
ZEBRA: _RGB = (244, 246, 250)
NAVY: _RGB = (31, 56, 100)
LIGHT: _RGB = (232, 236, 243)
TEXT: _RGB = (33, 33, 33)
MUTED: _RGB = (110, 110, 110)
WARN: _RGB = (156, 0, 6)

BAND_TEXT: dict[Band | None, str] = {
    Band.GREEN: "Verde, cumple: disponibilidad igual o mayor que la meta.",
    Band.AMBER: (
        "Ámbar, incumplimiento leve: por debajo de la meta, pero no del umbral ámbar del "
        "servicio (por omisión meta - (1 - meta): un presupuesto de error por debajo)."
    ),
    Band.RED: "Rojo, incumplimiento grave: por debajo del umbral ámbar del servicio.",
    None: "Gris: sin tiempo elegible (sin datos) en el periodo.",
}
INSUFFICIENT_TEXT = (
    "Morado: cobertura insuficiente. En un mes cerrado, la medición cubrió menos que la "
    "cobertura mínima del servicio: sin veredicto de cumplimiento ni rango; la "
    "disponibilidad es solo informativa."
)
COVER_LIST = 6
"""How many services without a verdict the cover lists by name (the summary lists all)."""


def _fore(band: Band | None) -> _RGB:
    """Text colour on a band's fill: white on green and red, black on amber and grey."""
    return (255, 255, 255) if band in (Band.GREEN, Band.RED) else (0, 0, 0)


def _colours(mark: Band | _Mark | None) -> tuple[_RGB, _RGB]:
    """(fill, text) of a band or mark."""
    if isinstance(mark, _Mark):
        return INSUFFICIENT_FILL, (255, 255, 255)
    return FILL[mark], _fore(mark)


def _verdict(svc: ServiceExport) -> Band | _Mark | None:
    """What a service's compliance is coloured by: its band, or no verdict."""
    return _Mark.INSUFFICIENT if svc.coverage_sufficient is False else svc.band


def _insufficient(n: int) -> str:
    """``1 servicio sin veredicto`` / ``2 servicios sin veredicto``."""
    return f"{_n(n, 'servicio', 'servicios')} sin veredicto"


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
        elif e.insufficient_coverage:
            self.set_x(self.l_margin)
            self.set_font("Helvetica", "B", 9)
            self.set_text_color(*WARN)
            self.cell(
                0,
                5,
                f"COBERTURA INSUFICIENTE: {_insufficient(len(e.insufficient_coverage))}",
                align=Align.R,
            )
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

    def badge(self, band: Band | _Mark | None, text: str, *, w: float = 26, h: float = 6) -> None:
        fill, fore = _colours(band)
        self.set_fill_color(*fill)
        self.set_text_color(*fore)
        self.set_font("Helvetica", "B", 9)
        self.cell(max(w, self.get_string_width(text) + 6), h, text, align=Align.C, fill=True)
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
        self.set_fill_color(*INSUFFICIENT_FILL)
        self.rect(self.l_margin, self.get_y() + 0.8, 3.5, 3.5, style="F")
        self.set_x(self.l_margin + 5)
        self.multi_cell(self.width - 5, 4.5, INSUFFICIENT_TEXT, new_x=XPos.LMARGIN, new_y=YPos.NEXT)

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
                        colour, fore = _colours(band if isinstance(band, Band | _Mark) else None)
                        style = FontFace(emphasis="BOLD", color=fore, fill_color=colour)
                    r.cell(text, align=al, style=style)
        self.ln(2)


def render_pdf(export: MonthExport) -> bytes:
    pdf = _Pdf(export)
    _cover(pdf)
    _summary(pdf)
    for provider in export.providers:
        _provider(pdf, provider)
    _usage(pdf)
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
    elif e.insufficient_coverage:
        _insufficient_box(pdf)

    first = e.period.start.astimezone(tz).date()
    last = (e.period.end - timedelta(microseconds=1)).astimezone(tz).date()
    s = e.verdicts
    rows = [
        ("Periodo", f"Del {l10n.long_date(first)} al {l10n.long_date(last)}"),
        ("Zona horaria", e.timezone),
        (
            "Datos con corte al",
            l10n.long_datetime(e.as_of, tz),
        ),
        ("Estado del informe", _status(e)),
        ("Prestadores", str(len(e.providers))),
        ("Servicios evaluados", f"{s.services}: {_verdict_counts(e.verdicts)}"),
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

    # A long list of services without a verdict can push these off the cover: then they
    # start the next page whole rather than split.
    pdf.need(40)
    pdf.heading("Rangos de medición", 12)
    pdf.legend()
    pdf.ln(4)
    how_to_read = (
        "Disponibilidad = (tiempo elegible - indisponibilidad descontada) / tiempo elegible, "
        "donde el tiempo elegible es el periodo menos el mantenimiento permitido y el tiempo "
        "sin medición (UNKNOWN: sin datos frescos o con falla del propio monitor). Un "
        "servicio cumple cuando su disponibilidad es igual o mayor que su meta. La cobertura "
        "de medición es la parte del periodo cuyo estado se conoce. Una interrupción empieza "
        "en el primer sondeo fallido de la racha que la confirmó y termina en el primer "
        "sondeo exitoso; solo se descuenta la parte ocurrida en tiempo elegible. MTTR: "
        "duración media descontada de las interrupciones descontadas; MTBF: tiempo elegible "
        "sin indisponibilidad dividido por su número. El presupuesto de error del mes es "
        "(1 - meta) x tiempo elegible. En un mes cerrado, un servicio cuya cobertura de "
        "medición es menor que su cobertura mínima (del catálogo) no tiene veredicto: "
        "«Cobertura insuficiente», sin rango, y su disponibilidad es solo informativa. Los "
        "porcentajes se muestran redondeados; el cumplimiento y la cobertura suficiente se "
        "deciden con las cifras exactas. Horas en la zona horaria del catálogo."
    )
    pdf.set_font("Helvetica", "", 8.5)
    pdf.need(12 + _lines(pdf, pdf.width, how_to_read) * 8.5 * 0.48)
    pdf.heading("Cómo leer este informe", 12)
    pdf.paragraph(how_to_read, size=8.5)


def _status(e: MonthExport) -> str:
    if e.provisional:
        return "PROVISIONAL"
    if e.insufficient_coverage:
        return (
            f"Mes cerrado con cobertura insuficiente: {_insufficient(len(e.insufficient_coverage))}"
        )
    return "Definitivo (mes cerrado)"


def _verdict_counts(v: Verdicts) -> str:
    """``1 cumple, 2 no cumplen, 1 sin datos`` (``, 1 con cobertura insuficiente``)."""
    text = (
        f"{_n(v.met, 'cumple', 'cumplen')}, {_n(v.missed, 'no cumple', 'no cumplen')}, "
        f"{v.no_data} sin datos"
    )
    if v.insufficient_coverage:
        text += f", {v.insufficient_coverage} con cobertura insuficiente"
    return text


def _insufficient_box(pdf: _Pdf) -> None:
    """The cover's box: the month is closed, but these services have no verdict."""
    e = pdf.export
    services = e.insufficient_coverage
    intro = (
        f"Mes cerrado, pero la medición de {_n(len(services), 'servicio', 'servicios')} "
        "cubrió menos que la cobertura mínima exigida: no "
        f"{'tiene' if len(services) == 1 else 'tienen'} veredicto de cumplimiento (ni "
        "«Cumple» ni «No cumple») ni rango de medición, y su disponibilidad es solo "
        "informativa."
    )
    inner = pdf.width - 8
    pdf.set_font("Helvetica", "", 8.5)
    lines = []
    for s in services[:COVER_LIST]:
        # One line each: the names are cut to fit, the identifiers and figures are not.
        figures = (
            f" ({s.report.provider}/{s.report.service}): cobertura "
            f"{l10n.percent(s.figures.coverage)}, mínima {l10n.percent(s.min_coverage)}"
        )
        names = f"{s.report.provider_name} / {s.report.service_name or s.report.service}"
        room = inner - 5 - pdf.get_string_width(figures)
        lines.append(_fit(pdf, names, room) + figures if room > 20 else figures.lstrip())
    if len(services) > COVER_LIST:
        more = len(services) - COVER_LIST
        lines.append(
            f"... y {_n(more, 'servicio más', 'servicios más')}: ver «Servicios con "
            "cobertura insuficiente» en el resumen general."
        )
    list_lines = sum(_lines(pdf, inner - 4, line) for line in lines)
    pdf.set_font("Helvetica", "", 9.5)
    intro_lines = _lines(pdf, inner, intro)
    height = 2 + 7 + intro_lines * 5 + 1.5 + list_lines * 4.3 + 2.5
    y = pdf.get_y()
    pdf.set_fill_color(255, 235, 235)
    pdf.set_draw_color(*WARN)
    pdf.rect(pdf.l_margin, y, pdf.width, height, style="DF")
    pdf.set_xy(pdf.l_margin, y + 2)
    pdf.set_font("Helvetica", "B", 14)
    pdf.set_text_color(*WARN)
    pdf.cell(
        0, 7, INSUFFICIENT_COVERAGE.upper(), align=Align.C, new_x=XPos.LMARGIN, new_y=YPos.NEXT
    )
    pdf.set_font("Helvetica", "", 9.5)
    pdf.set_x(pdf.l_margin + 4)
    pdf.multi_cell(inner, 5, intro, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.ln(1.5)
    pdf.set_font("Helvetica", "", 8.5)
    for line in lines:
        pdf.set_x(pdf.l_margin + 4)
        pdf.cell(4, 4.3, "-")
        pdf.multi_cell(inner - 4, 4.3, line, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.set_text_color(*TEXT)
    pdf.set_y(y + height + 6)


def _lines(pdf: _Pdf, width: float, text: str) -> int:
    """How many lines ``text`` takes in a ``multi_cell`` of ``width`` (current font)."""
    out = pdf.multi_cell(width, 5, text, dry_run=True, output="LINES")
    assert isinstance(out, list)
    return len(out)


# -- summary ----------------------------------------------------------------------------


def _summary(pdf: _Pdf) -> None:
    e = pdf.export
    s = e.summary
    v = e.verdicts
    pdf.add_page()
    pdf.heading("Resumen general")
    insufficient = (
        f", {_n(v.insufficient_coverage, 'queda', 'quedan')} sin veredicto por cobertura "
        "insuficiente"
        if v.insufficient_coverage
        else ""
    )
    pdf.paragraph(
        f"En {l10n.month_name(e.year, e.month_number)} se evaluaron "
        f"{_n(s.services, 'servicio', 'servicios')} de "
        f"{_n(len(e.providers), 'prestador', 'prestadores')}: "
        f"{_n(v.met, 'cumple su meta', 'cumplen su meta')}, "
        f"{_n(v.missed, 'no la cumple', 'no la cumplen')}{insufficient} y "
        f"{_n(v.no_data, 'no tiene datos', 'no tienen datos')}. Disponibilidad conjunta: "
        f"{l10n.percent(s.availability)}; cobertura de medición: {l10n.percent(s.coverage)}."
    )
    pdf.heading("Por prestador", 11)
    rows: list[list[_Cell]] = []
    for p in e.providers:
        rows.append(_provider_row(p.report.provider_name, p.figures, p.verdicts))
    rows.append(_provider_row("Todos los prestadores", s, v))
    pdf.table_rows(
        ["Prestador", "Serv.", "Cumplen", "No cumplen", "Sin datos", "Cob. insuf.", "Disponib.",
         "Cobertura", "Descontado"],
        rows,
        [44, 10, 15, 17, 14, 16, 20, 19, 25],
        align=["LEFT", "RIGHT", "RIGHT", "RIGHT", "RIGHT", "RIGHT", "RIGHT", "RIGHT", "RIGHT"],
    )  # fmt: skip
    if e.insufficient_coverage:
        _insufficient_table(pdf)

    pdf.heading("Por servicio", 11)
    service_rows: list[list[_Cell]] = []
    for svc in e.services:
        r, f = svc.report, svc.figures
        informative = (
            " *" if svc.coverage_sufficient is False and f.availability is not None else ""
        )
        service_rows.append(
            [
                (r.provider_name, False),
                (r.service_name or r.service, False),
                (l10n.percent(f.target), False),
                (l10n.percent(f.availability) + informative, False),
                (svc.compliance, _verdict(svc)),
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
    if e.insufficient_coverage:
        _note(
            pdf,
            "* Disponibilidad solo informativa: la cobertura de medición del mes quedó por "
            "debajo de la cobertura mínima del servicio, que no tiene veredicto.",
        )

    _heatmap(pdf)


def _note(pdf: _Pdf, text: str) -> None:
    pdf.set_font("Helvetica", "I", 7)
    pdf.set_text_color(*MUTED)
    pdf.multi_cell(0, 3.5, text, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.set_text_color(*TEXT)
    pdf.ln(2)


def _insufficient_table(pdf: _Pdf) -> None:
    """Every service without a verdict for lack of measurement, with its coverage."""
    e = pdf.export
    pdf.heading("Servicios con cobertura insuficiente", 11)
    rows: list[list[_Cell]] = [
        [
            (s.report.provider_name, False),
            (s.report.service_name or s.report.service, False),
            (l10n.percent(s.figures.coverage), _Mark.INSUFFICIENT),
            (l10n.percent(s.min_coverage), False),
            (l10n.duration(s.figures.unknown), False),
            (l10n.percent(s.figures.availability), False),
        ]
        for s in e.insufficient_coverage
    ]
    pdf.table_rows(
        ["Prestador", "Servicio", "Cobertura", "Cobertura mínima", "Sin medición",
         "Disponib. (informativa)"],
        rows,
        [38, 42, 22, 24, 28, 26],
        align=["LEFT", "LEFT", "RIGHT", "RIGHT", "RIGHT", "RIGHT"],
    )  # fmt: skip
    _note(
        pdf,
        "Mes cerrado: estos servicios no tienen veredicto de cumplimiento (ni «Cumple» ni "
        "«No cumple») porque la medición cubrió menos que su cobertura mínima; sus demás "
        "cifras se muestran solo como información.",
    )


def _provider_row(name: str, f: ProviderFigures, v: Verdicts) -> list[_Cell]:
    return [
        (name, False),
        (str(f.services), False),
        (str(v.met), False),
        (str(v.missed), False),
        (str(v.no_data), False),
        (str(v.insufficient_coverage), False),
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
        f"{_n(f.services, 'servicio', 'servicios')}: {_verdict_counts(p.verdicts)}. "
        f"Disponibilidad conjunta {l10n.percent(f.availability)}, cobertura "
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
    pdf.badge(_verdict(svc), svc.compliance)
    insufficient = svc.coverage_sufficient is False
    pdf.set_font("Helvetica", "", 9)
    pdf.cell(0, 6, "  " + _headline(svc), new_x=XPos.LMARGIN, new_y=YPos.NEXT)
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
        (
            "Disponib. (informativa)" if insufficient else "Disponibilidad lograda",
            l10n.percent(f.availability),
        ),
        ("Cumplimiento", svc.compliance),
        ("Tiempo elegible", l10n.duration(f.eligible)),
        ("Indisponibilidad descontada", l10n.duration(f.charged_downtime)),
        ("Mantenimiento excluido", l10n.duration(f.excluded_maintenance)),
        ("Sin medición (UNKNOWN)", l10n.duration(f.unknown)),
        ("Cobertura de medición", l10n.percent(f.coverage)),
        ("Cobertura mínima", l10n.percent(svc.min_coverage)),
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


def _headline(svc: ServiceExport) -> str:
    """The line beside a service's badge."""
    f = svc.figures
    if svc.coverage_sufficient is not False:
        return (
            f"Disponibilidad {l10n.percent(f.availability)} frente a una meta de "
            f"{l10n.percent(f.target)} ({svc.report.service_type})"
        )
    shortfall = (
        f"cobertura {l10n.percent(f.coverage)}, menor que la mínima de "
        f"{l10n.percent(svc.min_coverage)}"
    )
    if f.availability is None:
        return f"Sin disponibilidad medida: {shortfall}"
    return f"Disponibilidad medida {l10n.percent(f.availability)}, solo informativa: {shortfall}"


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


# -- use of the X-Road platform ---------------------------------------------------------

USAGE_COUNTING = (
    "Una solicitud entre dos servidores de seguridad monitoreados la registran ambos: por "
    "servicio cuentan los registros del proveedor cuando los hay y, si no, los del "
    "cliente, de modo que ninguna se cuenta dos veces."
)
_USAGE_WIDTHS = [48, 18, 18, 16, 18, 18, 11, 11, 11, 11]


def _usage(pdf: _Pdf) -> None:
    """The section *Uso de la plataforma de interoperabilidad*, if the export has it."""
    e = pdf.export
    if e.usage is None:
        return
    pdf.add_page()
    pdf.heading(USAGE_TITLE)
    if not e.usage.has_data:
        pdf.paragraph(NO_USAGE + ".")
        return
    tz = e.tz
    period = e.usage.period
    pdf.paragraph(
        "Solicitudes registradas por los servidores de seguridad monitoreados (monitoreo "
        "operacional de X-Road) del "
        f"{l10n.local_datetime(period.start, tz, seconds=False)} al "
        f"{l10n.local_datetime(period.end, tz, seconds=False)} ({e.timezone}), por miembro "
        f"proveedor y por servicio. {USAGE_COUNTING} La duración p95 es aproximada: el "
        "límite superior del intervalo del histograma que la contiene. Fallos por lado: "
        "Cons. del consumidor, Prov. del proveedor, Cli. del cliente, Desc. de lado "
        "desconocido.",
        size=8.5,
    )
    for p in e.usage.providers:
        _usage_provider(pdf, p)


def _usage_provider(pdf: _Pdf, p: ProviderUsageExport) -> None:
    pdf.need(30)
    title = p.name if p.name == p.member else f"{p.name} ({p.member})"
    pdf.heading(title, 11)
    rows: list[list[_Cell]] = [_usage_row("Total del prestador", p.figures)]
    rows += [_usage_row(s.service, s.figures) for s in p.services]
    pdf.table_rows(
        ["Servicio", "Solicitudes", "Exitosas", "Fallidas", "Éxito", "p95 aprox.", "Cons.",
         "Prov.", "Cli.", "Desc."],
        rows,
        _USAGE_WIDTHS,
        align=["LEFT", *["RIGHT"] * (len(_USAGE_WIDTHS) - 1)],
        size=7,
    )  # fmt: skip
    faults = [
        f"{s.service}: " + "; ".join(f"{code} ({_count(n)})" for code, n in s.top_faults)
        for s in p.services
        if s.top_faults
    ]
    if faults:
        _note(pdf, "Códigos de falla más frecuentes. " + " | ".join(faults))


def _usage_row(label: str, f: UsageFigures) -> list[_Cell]:
    return [
        (label, False),
        (_count(f.requests), False),
        (_count(f.successes), False),
        (_count(f.failures), False),
        (l10n.percent(f.success_ratio), False),
        (_ms(f.p95_ms), False),
        *((_count(n), False) for n in f.faults),
    ]


def _count(n: int) -> str:
    """``12345`` → ``12.345``."""
    return l10n.number(n, decimals=0)


def _ms(value: float | None) -> str:
    """An approximate duration in milliseconds: ``1.000 ms``, ``> 60 s``, ``–``."""
    if value is None:
        return l10n.DASH
    if value == float("inf"):
        return "> 60 s"
    return f"{l10n.number(value, decimals=0)} ms"
