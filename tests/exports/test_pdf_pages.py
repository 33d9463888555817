"""The PDF rendered to PNG pages (pdftoppm) and read back (pdftotext): the expected pages,
text and figure."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from PIL import Image

from scd_monitor.exports import ExportSource, export_month
from scd_monitor.exports.model import Band
from scd_monitor.exports.pdffile import FILL
from tests.exports.conftest import INCIDENTS, NOW
from tests.exports.readers import pdf_pages

pytestmark = pytest.mark.usefixtures("pdftools")


def render(pdf: Path, out: Path, dpi: int = 50) -> list[Path]:
    subprocess.run(
        ["pdftoppm", "-r", str(dpi), "-png", str(pdf), str(out / "page")],
        check=True,
        capture_output=True,
        timeout=120,
    )
    return sorted(out.glob("page-*.png"))


def colour_count(png: Path, rgb: tuple[int, int, int]) -> int:
    with Image.open(png) as image:
        data = image.convert("RGB").tobytes()
    pixels = zip(data[0::3], data[1::3], data[2::3], strict=True)
    return sum(1 for p in pixels if all(abs(a - b) <= 6 for a, b in zip(p, rgb, strict=True)))


def test_pages_text_and_figures(source: ExportSource, tmp_path: Path) -> None:
    result = export_month(
        source, month="2026-10", formats=["pdf"], output_dir=tmp_path / "x", now=NOW,
        incidents=INCIDENTS,
    )  # fmt: skip
    pages = pdf_pages(result.path("pdf"))
    pngs = render(result.path("pdf"), tmp_path)
    assert len(pngs) == len(pages) == 4
    for png in pngs:
        with Image.open(png) as image:
            width, height = image.size
        # A4 portrait at 50 dpi (Poppler versions round the edge differently).
        assert abs(width - 413) <= 1 and abs(height - 585) <= 1, (width, height)

    cover, summary, alfa, beta = pages
    assert cover.startswith("SERVICIOS CIUDADANOS DIGITALES Informe de cumplimiento")
    assert "Rangos de medición" in cover and "Cómo leer este informe" in cover
    assert "Página 1 de 4" in cover
    assert "Resumen general" in summary and "Disponibilidad diaria (figura)" in summary
    assert "Todos los prestadores" in summary
    assert "Prestador Alfa S.A.S. (alfa)" in alfa
    assert "Autenticación Digital (alfa/autenticacion)" in alfa
    assert "Carpeta Ciudadana (alfa/carpeta)" in alfa
    assert "Operador Beta (beta)" in beta
    assert "Interoperabilidad X-Road (beta/interop)" in beta
    assert "Servicio sin medición (beta/sin-datos)" in beta
    for i, page in enumerate(pages[1:], start=2):
        assert "Cumplimiento ANS - octubre de 2026" in page
        assert f"Página {i} de 4" in page

    # The summary's figure: 4 services × 31 days, every band present (the 4th is grey).
    for band in (Band.GREEN, Band.AMBER, Band.RED, None):
        assert colour_count(pngs[1], FILL[band]) > 40, band
    # Each service's daily strip: mostly green.
    assert colour_count(pngs[2], FILL[Band.GREEN]) > 1500
