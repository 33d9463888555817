"""Coverage decides whether a closed month has verdicts (issue 11).

A closed month in which a service's measurement coverage is below its catalog
``sla.min_coverage`` (default 0,9) exports that service as *Cobertura insuficiente*: no
``met``, no band, the availability only for information; the month's ``status`` is
``insufficient_coverage`` and every format says so. At the minimum exactly the verdict
stands; ``min_coverage: 0`` gives the behaviour from before (a never-observed month is
final, *Sin datos*).

October 2026 of tests/exports/history.py has coverage 0,992163… for alfa/autenticacion
(25 Oct 08:10:10 → 14:00 unknown), 1 for alfa/carpeta and beta/interop, 0 for
beta/sin-datos (never probed). The monitor never ran in August 2026.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from structlog.testing import capture_logs

from scd_monitor.analysis.reporting import SlaReporter
from scd_monitor.catalog import Catalog, parse_catalog
from scd_monitor.exports import (
    FORMATS,
    ExportResult,
    ExportSource,
    MonthlyExportJob,
    ReportStatus,
    build_month_export,
    export_month,
    read_manifest,
)
from scd_monitor.probes.base import Outcome, ProbeResult
from scd_monitor.runtime.tracker import StateTracker
from scd_monitor.sla.calendar import month_period
from scd_monitor.store import ResultRepository, Store
from tests.exports.conftest import NOW, FixedClock
from tests.exports.history import BOGOTA, CATALOG_YAML
from tests.exports.readers import pdf_pages, read_csv, read_json, read_xlsx, xlsx_table

SCHEMAS = Path(__file__).resolve().parents[2] / "schemas"
MONTH = 2_678_400
AUTH_COVERAGE = (MONTH - 20_990) / MONTH  # 0,992163… → "99,216 %"

Sources = Callable[[Catalog], ExportSource]


def with_min_coverage(values: Mapping[str, float], text: str = CATALOG_YAML) -> Catalog:
    """The catalog ``text`` with ``sla.min_coverage`` set per ``provider/service`` (``*``:
    every service)."""
    data = yaml.safe_load(text)
    for provider in data["providers"]:
        for service in provider["services"]:
            key = f"{provider['id']}/{service['id']}"
            value = values.get(key, values.get("*"))
            if value is not None:
                service.setdefault("sla", {})["min_coverage"] = value
    return parse_catalog(yaml.safe_dump(data, allow_unicode=True, sort_keys=False))


@pytest.fixture
def sources(history_url: str) -> Iterator[Sources]:
    """Export sources over the October history, one per catalog variant."""
    store = Store(history_url)
    yield lambda cat: ExportSource(SlaReporter(store, cat, FixedClock(NOW)), cat)
    store.dispose()


def _validate(name: str, document: dict[str, Any]) -> None:
    schema = json.loads((SCHEMAS / name).read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator(schema, format_checker=jsonschema.FormatChecker()).validate(
        document
    )


def _by_service(doc: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(s["provider"], s["service"]): s for s in doc["services"]}


# -- below the minimum: every format ---------------------------------------------------------


@pytest.fixture
def below(sources: Sources, tmp_path: Path) -> ExportResult:
    """October with alfa/autenticacion's minimum raised to 0,995 (its coverage is 0,992…):
    it was *Cumple*, now it has no verdict; beta/sin-datos has none either (coverage 0)."""
    cat = with_min_coverage({"alfa/autenticacion": 0.995})
    return export_month(sources(cat), month="2026-10", output_dir=tmp_path, now=NOW)


def test_below_the_minimum_the_json_and_the_manifest_withhold_the_verdict(
    below: ExportResult,
) -> None:
    doc = read_json(below.path("json"))
    _validate("sla-export.schema.json", doc)
    assert doc["provisional"] is False
    assert doc["status"] == "insufficient_coverage"
    assert doc["insufficient_coverage"] == [
        {
            "provider": "alfa",
            "service": "autenticacion",
            "coverage": AUTH_COVERAGE,
            "min_coverage": 0.995,
        },
        {"provider": "beta", "service": "sin-datos", "coverage": 0.0, "min_coverage": 0.9},
    ]
    services = _by_service(doc)
    auth = services[("alfa", "autenticacion")]
    assert auth["compliance"] == "Cobertura insuficiente"
    assert (auth["met"], auth["band"], auth["coverage_sufficient"]) == (None, None, False)
    assert auth["min_coverage"] == 0.995
    assert auth["coverage"] == AUTH_COVERAGE
    assert auth["availability"] == (2_646_610 - 9_600) / 2_646_610, "shown for information"
    carpeta = services[("alfa", "carpeta")]
    assert (carpeta["compliance"], carpeta["met"], carpeta["band"]) == ("No cumple", False, "amber")
    assert (carpeta["coverage_sufficient"], carpeta["min_coverage"]) == (True, 0.9)
    assert services[("beta", "sin-datos")]["compliance"] == "Cobertura insuficiente"

    providers = {p["provider"]: p for p in doc["providers"]}
    counts = ("met", "missed", "undetermined", "insufficient_coverage")
    assert [providers["alfa"][k] for k in counts] == [0, 1, 1, 1]
    assert [providers["beta"][k] for k in counts] == [0, 1, 1, 1]
    assert [doc["summary"][k] for k in counts] == [0, 2, 2, 2]

    manifest = read_manifest(below.directory)
    assert manifest is not None
    _validate("sla-export-manifest.schema.json", manifest)
    assert manifest["provisional"] is False
    assert manifest["status"] == "insufficient_coverage"
    assert manifest["insufficient_coverage"] == doc["insufficient_coverage"]
    assert below.status is ReportStatus.INSUFFICIENT_COVERAGE
    assert below.insufficient_coverage == (("alfa", "autenticacion"), ("beta", "sin-datos"))


def test_below_the_minimum_the_csv_has_no_verdict(below: ExportResult) -> None:
    rows = {(r["provider"], r["service"]): r for r in read_csv(below.path("csv"))}
    auth = rows[("alfa", "autenticacion")]
    assert auth["report_status"] == "FINAL", "the month is closed"
    assert auth["compliance"] == "Cobertura insuficiente"
    assert (auth["met"], auth["band"]) == ("", "")
    assert (auth["coverage_sufficient"], auth["min_coverage"]) == ("false", "0.995")
    assert auth["coverage"] == repr(AUTH_COVERAGE)
    assert float(auth["availability"]) > 0.996, "shown for information"
    carpeta = rows[("alfa", "carpeta")]
    assert (carpeta["compliance"], carpeta["met"], carpeta["coverage_sufficient"]) == (
        "No cumple", "false", "true",
    )  # fmt: skip


def test_below_the_minimum_the_xlsx_has_no_verdict(below: ExportResult) -> None:
    sheets = read_xlsx(below.path("xlsx"))
    services = {(s["Prestador"], s["Servicio"]): s for s in xlsx_table(sheets["Servicios"])}
    auth = services[("alfa", "autenticacion")]
    assert auth["Cumplimiento"] == "Cobertura insuficiente"
    assert auth["Rango"] == "Sin veredicto"
    assert auth["Cobertura de medición"] == AUTH_COVERAGE
    assert auth["Cobertura mínima"] == 0.995
    assert auth["Disponibilidad"] == (2_646_610 - 9_600) / 2_646_610
    assert services[("alfa", "carpeta")]["Rango"] == "Ámbar"

    summary = sheets["Resumen"]
    flat = [c for row in summary for c in row if c is not None]
    assert "Informe definitivo: el mes cerró." not in flat
    assert any(
        isinstance(c, str)
        and c.startswith("COBERTURA INSUFICIENTE — Mes cerrado, pero 2 servicios sin veredicto")
        for c in flat
    )
    header = next(r for r in summary if r[0] == "Prestador" and r[1] == "Nombre")
    alfa = dict(zip(header, next(r for r in summary if r[0] == "alfa"), strict=True))
    assert (alfa["Cumplen"], alfa["No cumplen"], alfa["Sin datos"]) == (0, 1, 0)
    assert alfa["Cobertura insuficiente"] == 1
    at = flat.index("Servicios con cobertura insuficiente (sin veredicto)")
    listed = flat[at + 7 :]
    assert listed[:4] == ["alfa", "autenticacion", AUTH_COVERAGE, 0.995]
    assert listed[6:10] == ["beta", "sin-datos", 0, 0.9]


@pytest.mark.usefixtures("pdftools")
def test_below_the_minimum_the_pdf_says_so_on_its_first_page(below: ExportResult) -> None:
    pages = pdf_pages(below.path("pdf"))
    cover = pages[0]
    assert "COBERTURA INSUFICIENTE" in cover
    assert "Mes cerrado con cobertura insuficiente: 2 servicios sin veredicto" in cover
    assert "Definitivo (mes cerrado)" not in cover
    assert "(alfa/autenticacion): cobertura 99,216 %, mínima 99,500 %" in cover
    assert "(beta/sin-datos): cobertura 0,000 %, mínima 90,000 %" in cover
    assert "0 cumplen, 2 no cumplen, 0 sin datos, 2 con cobertura insuficiente" in cover
    for page in pages[1:]:
        assert "COBERTURA INSUFICIENTE: 2 servicios sin veredicto" in page
    text = " ".join(pages)
    assert "Servicios con cobertura insuficiente" in text
    assert (
        "Disponibilidad medida 99,637 %, solo informativa: cobertura 99,216 %, menor que la "
        "mínima de 99,500 %"
    ) in text
    assert "Sin disponibilidad medida: cobertura 0,000 %, menor que la mínima de 90,000 %" in text
    assert "Cumple " not in text.replace("No cumple", ""), "no service has the verdict Cumple"


# -- at the minimum exactly -------------------------------------------------------------------

GAMMA_YAML = """\
version: "2026.10-cobertura"
timezone: America/Bogota
defaults: {interval: 10m, timeout: 10s}
providers:
  - id: gamma
    name: Prestador Gamma
    services:
      - id: justo
        name: Medido desde el 4 de octubre, 02:24
        type: otro
        checks:
          - {id: api, kind: tls, host: justo.gamma.example}
      - id: corto
        name: Medido desde el 4 de octubre, 02:24:01
        type: otro
        checks:
          - {id: api, kind: tls, host: corto.gamma.example}
"""
OCTOBER = datetime(2026, 10, 1, tzinfo=BOGOTA)
TENTH = timedelta(seconds=MONTH // 10)  # 3 d 2 h 24 min
FIRST_PROBE = {
    "gamma/justo/api": OCTOBER + TENTH,
    "gamma/corto/api": OCTOBER + TENTH + timedelta(seconds=1),
}
LAST = datetime(2026, 11, 1, 2, 0, tzinfo=BOGOTA)


@pytest.fixture(scope="module")
def gamma_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Two services probed successfully every 10 min from 10 % of October on (``justo``)
    and from one second later (``corto``): coverage exactly 0,9, and 0,9 − 1/2 678 400."""
    url = f"sqlite:///{tmp_path_factory.mktemp('gamma')}/gamma.db"
    store = Store(url)
    store.create_schema()
    results = []
    for check, first in FIRST_PROBE.items():
        t = first
        while t < LAST:
            results.append(
                ProbeResult(
                    check_id=check,
                    kind="tls",
                    vantage="v1",
                    started_at=t.astimezone(UTC),
                    duration=0.3,
                    outcome=Outcome(ok=True, error_kind=None),
                )
            )
            t += timedelta(minutes=10)
    ResultRepository(store).write(results)
    tracker = StateTracker(store, vantage="v1", clock=FixedClock(LAST + timedelta(minutes=1)))
    tracker.set_catalog(parse_catalog(GAMMA_YAML))
    tracker.run_until_idle()
    store.dispose()
    yield url


def test_exactly_at_the_minimum_the_month_gets_its_verdict(gamma_url: str) -> None:
    store = Store(gamma_url)
    try:
        cat = with_min_coverage({}, GAMMA_YAML)  # the default minimum, 0,9
        export = build_month_export(
            ExportSource(SlaReporter(store, cat, FixedClock(NOW)), cat), month="2026-10", now=NOW
        )
    finally:
        store.dispose()
    justo, corto = export.services
    assert justo.figures.unknown == TENTH and justo.figures.coverage == 0.9
    assert justo.min_coverage == 0.9
    assert justo.coverage_sufficient is True
    assert (justo.compliance, justo.met) == ("Cumple", True)
    assert justo.band is not None
    # One second less measured is below the minimum: compared exactly, not as rounded.
    assert corto.figures.unknown == TENTH + timedelta(seconds=1)
    assert corto.coverage_sufficient is False
    assert (corto.compliance, corto.met, corto.band) == ("Cobertura insuficiente", None, None)
    assert export.status is ReportStatus.INSUFFICIENT_COVERAGE
    assert [(s.report.service) for s in export.insufficient_coverage] == ["corto"]
    doc = export.to_json()
    assert doc["insufficient_coverage"] == [
        {
            "provider": "gamma",
            "service": "corto",
            "coverage": (MONTH - MONTH // 10 - 1) / MONTH,
            "min_coverage": 0.9,
        }
    ]


def test_a_month_measured_enough_everywhere_is_final(sources: Sources, tmp_path: Path) -> None:
    # 0,99216 ≤ 0,992163… (the float nearest AUTH_COVERAGE may lie above the exact figure).
    cat = with_min_coverage({"beta/sin-datos": 0, "alfa/autenticacion": 0.99216})
    result = export_month(sources(cat), month="2026-10", output_dir=tmp_path, now=NOW)
    manifest = read_manifest(result.directory)
    assert manifest is not None
    assert (manifest["status"], manifest["insufficient_coverage"]) == ("final", [])
    auth = _by_service(read_json(result.path("json")))[("alfa", "autenticacion")]
    assert (auth["compliance"], auth["coverage_sufficient"]) == ("Cumple", True)


# -- never observed ----------------------------------------------------------------------------


@pytest.mark.usefixtures("pdftools")
def test_a_never_observed_closed_month_is_cobertura_insuficiente(
    sources: Sources, tmp_path: Path
) -> None:
    """August 2026: the monitor never ran. Not a final report of "Sin datos"."""
    cat = with_min_coverage({})
    result = export_month(sources(cat), month="2026-08", output_dir=tmp_path, now=NOW)
    assert not result.provisional
    assert result.status is ReportStatus.INSUFFICIENT_COVERAGE
    manifest = read_manifest(result.directory)
    assert manifest is not None
    assert manifest["status"] == "insufficient_coverage"
    listed = manifest["insufficient_coverage"]
    assert [(s["provider"], s["service"], s["coverage"]) for s in listed] == [
        ("alfa", "autenticacion", 0.0),
        ("alfa", "carpeta", 0.0),
        ("beta", "interop", 0.0),
        ("beta", "sin-datos", 0.0),
    ]

    doc = read_json(result.path("json"))
    _validate("sla-export.schema.json", doc)
    for s in doc["services"]:
        assert (s["compliance"], s["met"], s["band"]) == ("Cobertura insuficiente", None, None)
        assert s["unknown_seconds"] == MONTH
    assert doc["summary"]["insufficient_coverage"] == 4
    assert {r["compliance"] for r in read_csv(result.path("csv"))} == {"Cobertura insuficiente"}
    services = xlsx_table(read_xlsx(result.path("xlsx"))["Servicios"])
    assert {s["Cumplimiento"] for s in services} == {"Cobertura insuficiente"}
    pages = pdf_pages(result.path("pdf"))
    assert "Mes cerrado con cobertura insuficiente: 4 servicios sin veredicto" in pages[0]
    assert "(beta/interop): cobertura 0,000 %, mínima 90,000 %" in pages[0]
    for page in pages[2:]:  # the providers' pages: every badge and compliance
        assert page.count("Cobertura insuficiente") == 4
        assert "Sin disponibilidad medida: cobertura 0,000 %" in page


def test_the_monthly_job_warns_about_the_services_without_a_verdict(
    sources: Sources, tmp_path: Path
) -> None:
    source = sources(with_min_coverage({}))
    job = MonthlyExportJob(lambda: source, output_dir=tmp_path)
    first = datetime(2026, 11, 1, 0, 10, tzinfo=BOGOTA)
    with capture_logs() as logs:
        result = job.run(first)
    assert result is not None and result.status is ReportStatus.INSUFFICIENT_COVERAGE
    warning = next(e for e in logs if e["event"] == "export.insufficient_coverage")
    assert (warning["log_level"], warning["services"]) == ("warning", ["beta/sin-datos"])
    assert job.due(first + timedelta(minutes=1)) is None, "complete: not exported again"


# -- min_coverage: 0, and open months -----------------------------------------------------------


@pytest.mark.usefixtures("pdftools")
def test_min_coverage_zero_restores_the_old_behaviour(sources: Sources, tmp_path: Path) -> None:
    source = sources(with_min_coverage({"*": 0}))
    august = export_month(source, month="2026-08", output_dir=tmp_path, now=NOW)
    assert august.status is ReportStatus.FINAL
    doc = read_json(august.path("json"))
    assert (doc["status"], doc["insufficient_coverage"]) == ("final", [])
    assert {(s["compliance"], s["met"]) for s in doc["services"]} == {("Sin datos", None)}
    assert {s["coverage_sufficient"] for s in doc["services"]} == {True}
    assert "Definitivo (mes cerrado)" in pdf_pages(august.path("pdf"))[0]

    october = export_month(source, month="2026-10", output_dir=tmp_path, now=NOW)
    assert october.status is ReportStatus.FINAL
    doc = read_json(october.path("json"))
    assert [s["compliance"] for s in doc["services"]] == [
        "Cumple", "No cumple", "No cumple", "Sin datos",
    ]  # fmt: skip
    # As before issue 11: the entries hold the sla command's figures and counts unchanged.
    sla = source.reporter.report(month_period(2026, 10, source.catalog.tz), now=october.as_of)
    for mine, theirs in zip(doc["services"], sla.to_json()["services"], strict=True):
        assert {k: mine[k] for k in theirs} == theirs
    for mine, theirs in zip(doc["providers"], sla.to_json()["providers"], strict=True):
        assert {k: mine[k] for k in theirs} == theirs
    sheets = read_xlsx(october.path("xlsx"))
    assert "Informe definitivo: el mes cerró." in [c for r in sheets["Resumen"] for c in r]
    manifest = read_manifest(october.directory)
    assert manifest is not None and manifest["status"] == "final"


@pytest.mark.usefixtures("pdftools")
def test_a_provisional_month_is_not_judged_by_coverage(sources: Sources, tmp_path: Path) -> None:
    cat = with_min_coverage({"alfa/autenticacion": 0.995})
    mid_october = datetime(2026, 10, 26, 12, 0, tzinfo=BOGOTA)  # after the 25th's gap
    result = export_month(sources(cat), month="2026-10", output_dir=tmp_path, now=mid_october)
    assert result.provisional and result.status is ReportStatus.PROVISIONAL
    doc = read_json(result.path("json"))
    assert (doc["status"], doc["insufficient_coverage"]) == ("provisional", [])
    services = _by_service(doc)
    auth = services[("alfa", "autenticacion")]
    assert auth["coverage"] < 0.995
    assert (auth["compliance"], auth["met"], auth["coverage_sufficient"]) == ("Cumple", True, None)
    assert services[("beta", "sin-datos")]["compliance"] == "Sin datos"
    assert doc["summary"]["insufficient_coverage"] == 0
    manifest = read_manifest(result.directory)
    assert manifest is not None and manifest["status"] == "provisional"
    pages = pdf_pages(result.path("pdf"))
    assert "COBERTURA INSUFICIENTE" not in " ".join(pages)
    assert [f.format for f in result.files] == list(FORMATS)
