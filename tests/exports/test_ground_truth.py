"""October 2026 exported in every format against figures computed by hand.

The history is described in tests/exports/history.py. The month is 31 days =
2 678 400 s. By hand:

alfa/autenticacion (target 0,995):
  maintenance   = 2 h (12 Oct window) + 1 h (19 Oct window)        = 10 800 s
  unknown       = 25 Oct 08:10:10 → 14:00                          = 20 990 s
  eligible      = 2 678 400 − 10 800 − 20 990                      = 2 646 610 s
  charged       = 7 200 (5 Oct) + 0 (12 Oct, inside) + 2 400 (19 Oct, after the window)
                                                                    = 9 600 s
  availability  = (2 646 610 − 9 600) / 2 646 610 = 0,996372… → "99,637 %", Cumple, green
  coverage      = (2 678 400 − 20 990) / 2 678 400 = 0,992163… → "99,216 %"
  outages       = 3, of which 2 charged; MTTR = 9 600 / 2 = 4 800 s = 1 h 20 min;
                  MTBF = (2 646 610 − 9 600) / 2 = 1 318 505 s = 15 d 6 h 15 min 5 s
  latency       = 4 464 probes in the month − 25 failed − 36 missing = 4 403 successes,
                  144 of them (7 Oct) slower than 1 s → 4 259 / 4 403 within it; p95 in
                  the bucket holding 0,3 s (upper bound 0,324007 s)
  error budget  = 0,005 × 2 646 610 = 13 233,05 s; used 9 600 / 13 233,05 = 72,545 6… %
alfa/carpeta (target 0,999): charged 3 600 s; availability 2 674 800 / 2 678 400 =
  0,998655… → "99,866 %", No cumple; ≥ 2 × 0,999 − 1 = 0,998 → amber; budget 2 678,4 s,
  used 134,408 6… %; 4 458 successes (6 failures), all within 2 s.
beta/interop (target 0,99): charged 57 600 s; availability 2 620 800 / 2 678 400 =
  0,978494… → "97,849 %" < 0,98 → red; budget 26 784 s; 4 368 successes (96 failures).
beta/sin-datos: never probed: unknown 2 678 400 s, coverage 0, no availability; the
  month is closed and 0 is below the default minimum coverage 0,9: Cobertura insuficiente
  (no verdict), and the month's status is insufficient_coverage. Every other service has
  coverage ≥ 0,9 and its verdict.
Daily: autenticacion 5 Oct = 1 − 7 200 / 86 400 = 11/12; 19 Oct = 1 − 2 400 / 82 800 (23 h
  eligible) = 0,971… (red against 0,995); 12 Oct = 1 (22 h eligible, nothing charged);
  interop 30 Oct = 1 − 7 200 / 86 400, 31 Oct = 1 − 50 400 / 86 400.
All providers: eligible 8 003 410 s, charged 70 800 s → 7 932 610 / 8 003 410.
"""

from __future__ import annotations

from collections.abc import Iterator
from fractions import Fraction
from typing import Any

import openpyxl
import pytest

from scd_monitor.analysis.reporting import SlaReporter
from scd_monitor.exports import ExportResult, ExportSource, export_month
from scd_monitor.sla.latency import BOUNDS_SECONDS, LatencyHistogram
from scd_monitor.store import Store
from tests.exports.conftest import INCIDENTS, NOW, FixedClock
from tests.exports.history import catalog
from tests.exports.readers import (
    pdf_pages,
    read_csv,
    read_json,
    read_xlsx,
    seconds,
    xlsx_table,
)

MONTH = 2_678_400

EXPECTED: dict[tuple[str, str], dict[str, Any]] = {
    ("alfa", "autenticacion"): {
        "target": 0.995,
        "eligible_seconds": 2_646_610,
        "charged_downtime_seconds": 9_600,
        "excluded_maintenance_seconds": 10_800,
        "unknown_seconds": 20_990,
        "availability": float(Fraction(2_637_010, 2_646_610)),
        "coverage": float(Fraction(2_657_410, MONTH)),
        "met": True,
        "compliance": "Cumple",
        "coverage_sufficient": True,
        "min_coverage": 0.9,
        "band": "green",
        "outage_count": 2,
        "outages_total": 3,
        "mttr_seconds": 4_800,
        "mtbf_seconds": 1_318_505,
        "latency_threshold_seconds": 1,
        "samples": 4_403,
        "latency_compliance": float(Fraction(4_259, 4_403)),
        "budget_seconds": 13_233.05,
        "used": 9_600 / 13_233.05,
        "pdf": [
            "99,637 %",
            "99,216 %",
            "2 h 40 min",
            "3 h",
            "5 h 49 min 50 s",
            "1 h 20 min",
            "15 d 6 h 15 min 5 s",
            "96,730 %",
            "72,546 %",
        ],
    },
    ("alfa", "carpeta"): {
        "target": 0.999,
        "eligible_seconds": MONTH,
        "charged_downtime_seconds": 3_600,
        "excluded_maintenance_seconds": 0,
        "unknown_seconds": 0,
        "availability": float(Fraction(2_674_800, MONTH)),
        "coverage": 1.0,
        "met": False,
        "compliance": "No cumple",
        "coverage_sufficient": True,
        "min_coverage": 0.9,
        "band": "amber",
        "outage_count": 1,
        "outages_total": 1,
        "mttr_seconds": 3_600,
        "mtbf_seconds": 2_674_800,
        "latency_threshold_seconds": 2,
        "samples": 4_458,
        "latency_compliance": 1.0,
        "budget_seconds": 2_678.4,
        "used": 3_600 / 2_678.4,
        "pdf": ["99,866 %", "134,409 %"],
    },
    ("beta", "interop"): {
        "target": 0.99,
        "eligible_seconds": MONTH,
        "charged_downtime_seconds": 57_600,
        "excluded_maintenance_seconds": 0,
        "unknown_seconds": 0,
        "availability": float(Fraction(2_620_800, MONTH)),
        "coverage": 1.0,
        "met": False,
        "compliance": "No cumple",
        "coverage_sufficient": True,
        "min_coverage": 0.9,
        "band": "red",
        "outage_count": 1,
        "outages_total": 1,
        "mttr_seconds": 57_600,
        "mtbf_seconds": 2_620_800,
        "latency_threshold_seconds": 2,
        "samples": 4_368,
        "latency_compliance": 1.0,
        "budget_seconds": 26_784,
        "used": 57_600 / 26_784,
        "pdf": ["97,849 %", "16 h"],
    },
    ("beta", "sin-datos"): {
        "target": 0.995,
        "eligible_seconds": 0,
        "charged_downtime_seconds": 0,
        "excluded_maintenance_seconds": 0,
        "unknown_seconds": MONTH,
        "availability": None,
        "coverage": 0.0,
        "met": None,
        "compliance": "Cobertura insuficiente",
        "coverage_sufficient": False,
        "min_coverage": 0.9,
        "band": None,
        "outage_count": 0,
        "outages_total": 0,
        "mttr_seconds": None,
        "mtbf_seconds": None,
        "latency_threshold_seconds": 2,
        "samples": 0,
        "latency_compliance": None,
        "budget_seconds": 0,
        "used": None,
        "pdf": ["Cobertura insuficiente", "31 d"],
    },
}
P95 = BOUNDS_SECONDS[LatencyHistogram.bucket_of(0.3)]  # 0.324007 s

# Outages of alfa/autenticacion, in UTC (Bogotá + 5 h): (start, end, duration, charged, excluded)
OUTAGES = [
    ("2026-10-05T15:00:00Z", "2026-10-05T17:00:00Z", 7_200, 7_200, {}),
    ("2026-10-12T07:30:00Z", "2026-10-12T08:30:00Z", 3_600, 0,
     {"actualización de plataforma": 3_600}),
    ("2026-10-19T07:30:00Z", "2026-10-19T08:40:00Z", 4_200, 2_400,
     {"cambio de certificados": 1_800}),
]  # fmt: skip


@pytest.fixture(scope="module")
def october(history_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ExportResult]:
    store = Store(history_url)
    cat = catalog()
    source = ExportSource(SlaReporter(store, cat, FixedClock(NOW)), cat)
    yield export_month(
        source,
        month="2026-10",
        output_dir=tmp_path_factory.mktemp("exports"),
        now=NOW,
        incidents=INCIDENTS,
    )
    store.dispose()


def test_the_json_export_has_the_hand_computed_figures(october: ExportResult) -> None:
    doc = read_json(october.path("json"))
    assert doc["month"] == "2026-10"
    assert doc["provisional"] is False and doc["provisional_note"] is None
    assert doc["period"] == {"start": "2026-10-01T05:00:00Z", "end": "2026-11-01T05:00:00Z"}
    assert doc["as_of"] == "2026-11-01T05:00:00Z", "a closed month is as of its end"
    assert doc["status"] == "insufficient_coverage"
    assert doc["insufficient_coverage"] == [
        {"provider": "beta", "service": "sin-datos", "coverage": 0.0, "min_coverage": 0.9}
    ]
    services = {(s["provider"], s["service"]): s for s in doc["services"]}
    assert list(services) == list(EXPECTED)
    for key, want in EXPECTED.items():
        got = services[key]
        for field in (
            "target", "eligible_seconds", "charged_downtime_seconds",
            "excluded_maintenance_seconds", "unknown_seconds", "availability", "coverage",
            "met", "compliance", "coverage_sufficient", "min_coverage", "band", "outage_count",
            "outages_total", "mttr_seconds", "mtbf_seconds", "latency_threshold_seconds",
        ):  # fmt: skip
            assert got[field] == want[field], (key, field)
        assert got["latency"]["samples"] == want["samples"], key
        assert got["latency"]["compliance"] == want["latency_compliance"], key
        assert got["latency"]["p95_seconds"] == (P95 if want["samples"] else None), key
        assert got["error_budget"]["budget_seconds"] == pytest.approx(want["budget_seconds"])
        if want["used"] is None:
            assert got["error_budget_used_ratio"] is None
        else:
            assert got["error_budget_used_ratio"] == pytest.approx(want["used"], rel=1e-12)
        assert got["period"]["partial"] is False

    auth = services[("alfa", "autenticacion")]
    assert [
        (o["start"], o["end"], o["duration_seconds"], o["charged_seconds"], o["excluded_seconds"])
        for o in auth["outages"]
    ] == OUTAGES
    assert [i["id"] for i in auth["incidents"]] == ["SCD-2026-000123"]
    assert services[("alfa", "carpeta")]["incidents"] == [], "September's incident is not October's"
    providers = {p["provider"]: p for p in doc["providers"]}
    assert [i["id"] for i in providers["beta"]["incidents"]] == ["SCD-2026-000130"]
    assert providers["alfa"]["incidents"] == []
    assert [i["id"] for i in doc["incidents"]] == ["SCD-2026-000123", "SCD-2026-000130"]

    alfa = providers["alfa"]
    assert (alfa["eligible_seconds"], alfa["charged_downtime_seconds"]) == (5_325_010, 13_200)
    assert (providers["alfa"]["met"], providers["alfa"]["missed"]) == (1, 1)
    assert (providers["beta"]["missed"], providers["beta"]["undetermined"]) == (1, 1)
    assert (
        providers["alfa"]["insufficient_coverage"],
        providers["beta"]["insufficient_coverage"],
    ) == (0, 1)
    summary = doc["summary"]
    assert summary["services"] == 4
    assert summary["eligible_seconds"] == 8_003_410
    assert summary["charged_downtime_seconds"] == 70_800
    assert summary["availability"] == float(Fraction(7_932_610, 8_003_410))
    assert summary["coverage"] == float(Fraction(4 * MONTH - 20_990 - MONTH, 4 * MONTH))
    assert (summary["met"], summary["missed"], summary["undetermined"]) == (1, 2, 1)
    assert summary["insufficient_coverage"] == 1


def test_daily_figures(october: ExportResult) -> None:
    doc = read_json(october.path("json"))
    services = {(s["provider"], s["service"]): s for s in doc["services"]}
    for s in doc["services"]:
        assert [d["date"] for d in s["daily"]] == [f"2026-10-{d:02d}" for d in range(1, 32)]
        assert not any(d["pending"] for d in s["daily"])
        # Days add up to the month.
        for field in (
            "charged_downtime_seconds",
            "excluded_maintenance_seconds",
            "unknown_seconds",
        ):
            assert sum(d[field] for d in s["daily"]) == s[field], (s["service"], field)
    auth = {d["date"][-2:]: d for d in services[("alfa", "autenticacion")]["daily"]}
    assert auth["05"]["availability"] == float(Fraction(11, 12))
    assert auth["05"]["band"] == "red"
    assert auth["12"]["availability"] == 1.0
    assert auth["12"]["excluded_maintenance_seconds"] == 7_200
    assert auth["19"]["availability"] == float(Fraction(82_800 - 2_400, 82_800))
    assert auth["25"]["unknown_seconds"] == 20_990
    assert auth["25"]["coverage"] == float(Fraction(86_400 - 20_990, 86_400))
    assert auth["04"] == {**auth["04"], "availability": 1.0, "band": "green"}
    interop = {d["date"][-2:]: d for d in services[("beta", "interop")]["daily"]}
    assert interop["30"]["charged_downtime_seconds"] == 7_200
    assert interop["31"]["availability"] == float(Fraction(86_400 - 50_400, 86_400))
    empty = services[("beta", "sin-datos")]["daily"]
    assert all(d["availability"] is None and d["band"] is None for d in empty)
    # Bogotá days: 1 Oct 00:00 local is 05:00 UTC.
    assert auth["01"]["start"] == "2026-10-01T05:00:00Z"
    assert auth["01"]["end"] == "2026-10-02T05:00:00Z"


def test_the_csv_export_has_the_same_figures(october: ExportResult) -> None:
    rows = read_csv(october.path("csv"))
    assert [(r["provider"], r["service"]) for r in rows] == list(EXPECTED)
    for row in rows:
        want = EXPECTED[(row["provider"], row["service"])]
        assert row["month"] == "2026-10"
        assert row["report_status"] == "FINAL"
        assert row["as_of"] == "2026-11-01T05:00:00Z"
        assert row["compliance"] == want["compliance"]
        assert row["band"] == (want["band"] or "")
        assert row["met"] == {True: "true", False: "false", None: ""}[want["met"]]
        assert row["coverage_sufficient"] == str(want["coverage_sufficient"]).lower()
        assert row["min_coverage"] == "0.9"
        for field in ("availability", "coverage", "target"):
            assert row[field] == ("" if want[field] is None else repr(want[field])), field
        for field in ("eligible_seconds", "charged_downtime_seconds", "unknown_seconds"):
            assert float(row[field]) == want[field]
        assert int(row["outage_count"]) == want["outage_count"]
        assert int(row["latency_samples"]) == want["samples"]
        assert float(row["error_budget_seconds"]) == pytest.approx(want["budget_seconds"])
    auth = rows[0]
    assert auth["service_name"] == "Autenticación Digital"
    assert (auth["incident_count"], auth["incidents"]) == ("1", "SCD-2026-000123")
    assert (auth["mttr_seconds"], auth["mtbf_seconds"]) == ("4800", "1318505")
    assert rows[3]["availability"] == "" and rows[3]["mttr_seconds"] == ""


def test_the_xlsx_export_has_the_same_figures(october: ExportResult) -> None:
    sheets = read_xlsx(october.path("xlsx"))
    assert list(sheets) == ["Resumen", "Servicios", "Interrupciones", "Diario", "Incidentes"]
    services = xlsx_table(sheets["Servicios"])
    assert [(s["Prestador"], s["Servicio"]) for s in services] == list(EXPECTED)
    for s in services:
        want = EXPECTED[(s["Prestador"], s["Servicio"])]
        assert s["Meta ANS"] == want["target"]
        assert s["Disponibilidad"] == want["availability"]
        assert s["Cumplimiento"] == want["compliance"]
        assert s["Rango"] == (
            {"green": "Verde", "amber": "Ámbar", "red": "Rojo", None: "Sin datos"}[want["band"]]
            if want["coverage_sufficient"]
            else "Sin veredicto"
        )
        assert s["Cobertura mínima"] == want["min_coverage"]
        assert seconds(s["Tiempo elegible"]) == pytest.approx(want["eligible_seconds"], abs=1e-3)
        assert seconds(s["Indisponibilidad descontada"]) == pytest.approx(
            want["charged_downtime_seconds"], abs=1e-3
        )
        assert seconds(s["Sin medición (UNKNOWN)"]) == pytest.approx(
            want["unknown_seconds"], abs=1e-3
        )
        assert s["Cobertura de medición"] == want["coverage"]
        assert s["Interrupciones descontadas"] == want["outage_count"]
        assert s["Cumplimiento de latencia"] == want["latency_compliance"]
        assert s["Estado del informe"] == "Definitivo"
        assert s["Rango ámbar desde"] == pytest.approx(2 * s["Meta ANS"] - 1)
    assert services[0]["Incidentes"] == "SCD-2026-000123"
    assert services[1]["Incidentes"] == "Sin incidentes registrados"

    outages = xlsx_table(sheets["Interrupciones"])
    assert len(outages) == 5
    third = outages[2]
    assert (third["Prestador"], third["Servicio"], third["Descontada"]) == (
        "alfa", "autenticacion", "Parcial",
    )  # fmt: skip
    assert third["Inicio (America/Bogota)"].isoformat() == "2026-10-19T02:30:00"
    assert third["Fin (America/Bogota)"].isoformat() == "2026-10-19T03:40:00"
    assert seconds(third["Tiempo descontado"]) == pytest.approx(2_400, abs=1e-3)
    assert "cambio de certificados" in third["Por qué"]

    daily = sheets["Diario"]
    assert daily[0][3:] == (*range(1, 32), "Rango ámbar desde")
    auth = daily[1]
    assert auth[:3] == ("alfa", "autenticacion", 0.995)
    assert auth[3 + 4] == float(Fraction(11, 12)), "5 October"
    assert daily[4][3:-1] == ("s/d",) * 31
    # Each service's amber bound, from the one definition (default 2t − 1).
    assert auth[-1] == pytest.approx(0.99)

    # The rangos de medición as conditional colours on availability (and on the days).
    book = openpyxl.load_workbook(october.path("xlsx"))
    rules = {
        name: [(str(r.sqref), rule.formula[0]) for r in book[name].conditional_formatting
               for rule in r.rules]
        for name in ("Servicios", "Diario")
    }  # fmt: skip
    assert rules["Servicios"] == [
        ("G2:I5", "AND(ISNUMBER($N2),ISNUMBER($O2),$N2<$O2)"),  # cobertura insuficiente
        ("G2:I5", "AND(ISNUMBER($G2),$G2>=$F2)"),
        ("G2:I5", "AND(ISNUMBER($G2),$G2<$F2,$G2>=$AB2)"),
        ("G2:I5", "AND(ISNUMBER($G2),$G2<$AB2)"),
    ]
    assert [r for r, _ in rules["Diario"]] == ["D2:AH5"] * 3
    assert rules["Diario"][2][1] == "AND(ISNUMBER(D2),D2<$AI2)"

    summary = sheets["Resumen"]
    flat = [c for row in summary for c in row if c is not None]
    assert "Informe definitivo: el mes cerró." not in flat
    assert any(
        isinstance(c, str) and c.startswith("COBERTURA INSUFICIENTE — Mes cerrado, pero 1 servicio")
        for c in flat
    )
    assert "Todos los prestadores" in flat
    at = flat.index("Servicios con cobertura insuficiente (sin veredicto)")
    assert flat[at + 7 : at + 11] == ["beta", "sin-datos", 0.0, 0.9]
    incidents = xlsx_table(sheets["Incidentes"])
    assert [i["Identificador"] for i in incidents] == ["SCD-2026-000123", "SCD-2026-000130"]


@pytest.mark.usefixtures("pdftools")
def test_the_pdf_export_shows_the_same_figures_in_spanish(october: ExportResult) -> None:
    pages = pdf_pages(october.path("pdf"))
    text = " ".join(pages)
    cover = pages[0]
    assert "Informe de cumplimiento de los Acuerdos de Niveles de Servicio (ANS)" in cover
    assert "Octubre de 2026" in cover
    assert "Del 1 de octubre de 2026 al 31 de octubre de 2026" in cover
    assert "1 de noviembre de 2026, 00:00" in cover
    assert "Definitivo (mes cerrado)" not in cover
    assert "Mes cerrado con cobertura insuficiente: 1 servicio sin veredicto" in cover
    assert "COBERTURA INSUFICIENTE" in cover
    assert "(beta/sin-datos): cobertura 0,000 %, mínima 90,000 %" in cover
    assert "PROVISIONAL" not in text
    for want in EXPECTED.values():
        for fragment in want["pdf"]:
            assert fragment in text, fragment
    assert "Cumple" in text and "No cumple" in text
    # Outages with their charge and why.
    assert "19/10/2026 02:30:00" in text and "19/10/2026 03:40:00" in text
    assert "Parcial" in text
    assert "mantenimiento «cambio de certificados»" in text
    assert "1 h en mantenimiento «actualización de plataforma»" in text
    # Incidents, and the wording when there are none.
    assert "SCD-2026-000123" in text and "SCD-2026-000130" in text
    assert "SCD-2026-000099" not in text
    assert "Sin incidentes registrados" in text
