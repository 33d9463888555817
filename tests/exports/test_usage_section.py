"""*Uso de la plataforma de interoperabilidad* in the monthly export: the use of X-Road
counted from operational monitoring buckets, written through ``UsageRepository`` into a
copy of October's SQLite store, read back from every format.

October 2026 (Bogotá) is [2026-10-01T05:00Z, 2026-11-01T05:00Z). In it:

- member ``CO/GOB/8999990001`` (the catalog provider *Ministerio de Prueba*, whose id is
  the member's slug):
  - ``…/CARPETA/documentos/v1``: 10 requests between two monitored security servers,
    so recorded twice (``Producer`` by ss1, ``Client`` by ss2): counted once, from the
    provider's records: 4 succeed, 6 fail (``Server.ServerProxy.ServiceFailed``), each
    150 ms (p95 ≈ 200 ms, the bucket's upper bound);
  - ``…/CARPETA/consultar``: 1 200 requests seen only by the client's server (ss2), all
    succeed in 30 ms (p95 ≈ 50 ms);
  - member total: 1 210 requests, 1 204 succeed: 99,504 %.
- member ``CO/COM/900123456`` (not in the catalog): ``…/RUES/consulta``, 3 requests by
  its provider's server (ss1), all succeed.
- Records on either side of the month (30 Sep 23:59 local, 1 Nov 00:00 local) are not
  October's.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path

import jsonschema
import pytest

from scd_monitor import l10n
from scd_monitor.analysis.reporting import SlaReporter
from scd_monitor.analysis.usage import percentile
from scd_monitor.catalog import Catalog, parse_catalog
from scd_monitor.exports import (
    FORMATS,
    ExportSource,
    build_month_export,
    read_manifest,
    store_usage,
    verify_export,
    write_export,
)
from scd_monitor.exports.usage import NO_USAGE, USAGE_TITLE
from scd_monitor.store import Store, UsageRepository
from scd_monitor.store.usage import DURATION_BUCKETS_MS
from scd_monitor.xroad.identifiers import ClientId, ServiceId
from scd_monitor.xroad.opmon import OperationalRecord
from tests.exports.conftest import NOW, FixedClock
from tests.exports.history import CATALOG_YAML
from tests.exports.readers import pdf_pages, read_csv, read_json, read_xlsx, xlsx_table

ROOT = Path(__file__).resolve().parents[2]
MEMBER = "CO/GOB/8999990001"
OTHER = "CO/COM/900123456"
DOCUMENTOS = f"{MEMBER}/CARPETA/documentos/v1"
CONSULTAR = f"{MEMBER}/CARPETA/consultar"
RUES = f"{OTHER}/RUES/consulta"
CLIENT = "CO/COM/111222333/PORTAL"
SS_PROVIDER = "CO/GOB/8999990001/ss1"
SS_CLIENT = "CO/COM/111222333/ss2"

OCT_START = int(datetime(2026, 10, 1, 5, 0, tzinfo=UTC).timestamp())
OCT_END = int(datetime(2026, 11, 1, 5, 0, tzinfo=UTC).timestamp())
MID = int(datetime(2026, 10, 15, 17, 7, tzinfo=UTC).timestamp())

PROVIDER_ID = ClientId.parse(MEMBER).slug()
CATALOG_WITH_MEMBER = (
    CATALOG_YAML
    + f"""\
  - id: {PROVIDER_ID}
    name: Ministerio de Prueba
    services:
      - id: {ServiceId.parse(DOCUMENTOS).slug()}
        name: {DOCUMENTOS}
        type: interoperabilidad
        checks:
          - {{id: api, kind: tls, host: documentos.example}}
"""
)


def p95_of(ms: int) -> float:
    """The export's p95 of durations all equal to ``ms``: the analysis' approximation
    (within the histogram bucket that holds ``ms``)."""
    hist = [0] * (len(DURATION_BUCKETS_MS) + 1)
    hist[next(i for i, b in enumerate(DURATION_BUCKETS_MS) if ms <= b)] = 10
    value = percentile(hist, 0.95)
    assert value is not None
    return value


P95_DOCUMENTOS = p95_of(150)  # in (100, 200] ms
P95_CONSULTAR = p95_of(30)  # in (20, 50] ms


def record(
    service: str,
    side: str,
    *,
    ok: bool,
    at: int = MID,
    ms: int = 150,
    fault: str | None = None,
) -> OperationalRecord:
    start = at * 1000
    return OperationalRecord(
        monitoring_data_ts=at,
        side=side,  # type: ignore[arg-type]  # "Client" | "Producer"
        succeeded=ok,
        client=ClientId.parse(CLIENT),
        service=ServiceId.parse(service),
        request_in_ts=start,
        response_out_ts=start + ms,
        fault_code=None if ok else (fault or "Server.ServerProxy.ServiceFailed"),
        request_size=100,
        response_size=200,
    )


def write_usage(url: str, pages: Mapping[str, Sequence[OperationalRecord]]) -> None:
    """Count ``pages`` (security server → its records) into the store at ``url``, as
    the collector does: a cursor, then one page per server."""
    store = Store(url)
    try:
        repo = UsageRepository(store)
        for server, records in pages.items():
            first = min(r.monitoring_data_ts for r in records)
            last = max(r.monitoring_data_ts for r in records)
            assert repo.set_cursor("xroad-co", server, first)
            assert repo.apply_page("xroad-co", server, records, records_from=first,
                                   next_from=last + 1)  # fmt: skip
    finally:
        store.dispose()


def copy_database(source_url: str, target: Path) -> str:
    """A copy of the SQLite database at ``source_url`` (the session's October, which
    other tests read unchanged), by SQLite's backup."""
    src = sqlite3.connect(source_url.removeprefix("sqlite:///"))
    dst = sqlite3.connect(target)
    try:
        src.backup(dst)
    finally:
        src.close()
        dst.close()
    return f"sqlite:///{target}"


def october_usage() -> dict[str, list[OperationalRecord]]:
    producer = [record(DOCUMENTOS, "Producer", ok=i < 4, at=MID + i) for i in range(10)]
    client = [record(DOCUMENTOS, "Client", ok=i < 4, at=MID + i, ms=170) for i in range(10)]
    client += [record(CONSULTAR, "Client", ok=True, at=MID + i, ms=30) for i in range(1200)]
    producer += [record(RUES, "Producer", ok=True, at=MID + 60 + i) for i in range(3)]
    # Not October's: the last second of September and the first of November (local).
    producer += [
        record(DOCUMENTOS, "Producer", ok=False, at=OCT_START - 1),
        record(DOCUMENTOS, "Producer", ok=False, at=OCT_END),
    ]
    return {SS_PROVIDER: producer, SS_CLIENT: client}


@pytest.fixture(scope="module")
def usage_url(history_url: str, tmp_path_factory: pytest.TempPathFactory) -> str:
    url = copy_database(history_url, tmp_path_factory.mktemp("usage") / "october.db")
    write_usage(url, october_usage())
    return url


def _source(url: str, cat: Catalog, *, usage: bool = True) -> Iterator[ExportSource]:
    store = Store(url)
    try:
        reader = store_usage(store) if usage else None
        yield ExportSource(SlaReporter(store, cat, FixedClock(NOW)), cat, usage=reader)
    finally:
        store.dispose()


@pytest.fixture
def with_usage(usage_url: str) -> Iterator[ExportSource]:
    yield from _source(usage_url, parse_catalog(CATALOG_WITH_MEMBER))


@pytest.fixture
def exported(with_usage: ExportSource, tmp_path: Path) -> Path:
    export = build_month_export(with_usage, month="2026-10", now=NOW)
    return write_export(export, formats=["csv", "json", "pdf", "xlsx"],
                        output_dir=tmp_path).directory  # fmt: skip


def test_the_json_counts_each_request_once_per_provider_member(exported: Path) -> None:
    document = read_json(exported / "sla-2026-10.json")
    schema = json.loads((ROOT / "schemas" / "sla-export.schema.json").read_text("utf-8"))
    jsonschema.Draft202012Validator(schema).validate(document)  # `usage` is described
    usage = document["usage"]
    assert usage["period"] == {"start": "2026-10-01T05:00:00Z", "end": "2026-11-01T05:00:00Z"}
    members = {p["provider_member"]: p for p in usage["providers"]}
    assert set(members) == {MEMBER, OTHER}

    ministry = members[MEMBER]
    assert ministry["provider"] == PROVIDER_ID
    assert ministry["provider_name"] == "Ministerio de Prueba"
    assert (ministry["requests"], ministry["successes"], ministry["failures"]) == (1210, 1204, 6)
    assert ministry["success_ratio"] == pytest.approx(1204 / 1210)
    # ``Server.ServerProxy.*``: the provider's security server.
    assert ministry["failures_by_side"] == {"consumer": 0, "provider": 6, "client": 0,
                                            "unknown": 0}  # fmt: skip
    assert list(ministry["failures_by_side"]) == ["consumer", "provider", "client", "unknown"]

    services = {s["service"]: s for s in ministry["services"]}
    assert set(services) == {DOCUMENTOS, CONSULTAR}
    documentos = services[DOCUMENTOS]
    # The provider's records only: the client's copy of the same 10 is not added.
    assert (documentos["requests"], documentos["successes"], documentos["failures"]) == (10, 4, 6)
    assert documentos["success_ratio"] == pytest.approx(0.4)
    assert documentos["p95_ms"] == P95_DOCUMENTOS and 100 < P95_DOCUMENTOS <= 200
    assert documentos["counted_side"] == "Producer"
    assert documentos["top_fault_codes"] == [
        {"code": "Server.ServerProxy.ServiceFailed", "count": 6}
    ]
    consultar = services[CONSULTAR]  # seen by the client's server only: its records count
    assert (consultar["requests"], consultar["successes"], consultar["failures"]) == (1200, 1200, 0)
    assert consultar["p95_ms"] == P95_CONSULTAR and 20 < P95_CONSULTAR <= 50
    assert consultar["counted_side"] == "Client"

    rues = members[OTHER]
    assert rues["provider"] is None
    assert rues["provider_name"] == OTHER  # not a catalog provider: its member identifier
    assert (rues["requests"], rues["success_ratio"]) == (3, 1.0)


def test_the_xlsx_has_a_sheet_of_its_own(exported: Path) -> None:
    sheets = read_xlsx(exported / "sla-2026-10.xlsx")
    assert list(sheets) == [
        "Resumen", "Servicios", "Interrupciones", "Diario", "Incidentes", "Uso de la plataforma",
    ]  # fmt: skip
    rows = xlsx_table(sheets["Uso de la plataforma"])
    by_key = {(r["Miembro X-Road"], r["Servicio"]): r for r in rows}
    total = by_key[(MEMBER, "Total del prestador")]
    assert total["Prestador"] == "Ministerio de Prueba"
    assert (total["Solicitudes"], total["Exitosas"], total["Fallidas"]) == (1210, 1204, 6)
    assert total["Tasa de éxito"] == pytest.approx(1204 / 1210)
    documentos = by_key[(MEMBER, DOCUMENTOS)]
    assert (documentos["Solicitudes"], documentos["Fallidas"]) == (10, 6)
    assert documentos["Tasa de éxito"] == pytest.approx(0.4)
    assert documentos["Duración p95 aprox. (ms)"] == P95_DOCUMENTOS
    side_columns = [
        "Fallos del consumidor", "Fallos del proveedor", "Fallos del cliente",
        "Fallos de lado desconocido",
    ]  # fmt: skip
    assert [documentos[c] for c in side_columns] == [0, 6, 0, 0]
    assert documentos["Códigos de falla más frecuentes"] == "Server.ServerProxy.ServiceFailed (6)"
    assert by_key[(OTHER, "Total del prestador")]["Prestador"] == OTHER
    # The member's total comes first, then its services.
    assert next(r["Servicio"] for r in rows if r["Miembro X-Road"] == MEMBER) == (
        "Total del prestador"
    )


@pytest.mark.usefixtures("pdftools")
def test_the_pdf_has_the_section_in_spanish(exported: Path) -> None:
    pages = pdf_pages(exported / "sla-2026-10.pdf")
    (section,) = [p for p in pages if USAGE_TITLE in p]
    assert section is pages[-1]
    assert f"Ministerio de Prueba ({MEMBER})" in section
    assert "1.210" in section and "1.204" in section  # es-CO thousands
    assert "99,504 %" in section and "40,000 %" in section and "100,000 %" in section
    for p95 in (P95_DOCUMENTOS, P95_CONSULTAR):
        assert f"{l10n.number(p95, decimals=0)} ms" in section
    assert "Total del prestador" in section
    assert "los registros del proveedor cuando los hay" in section
    assert "Server.ServerProxy.ServiceFailed (6)" in section
    assert "PROVISIONAL" not in section


def test_the_csv_is_a_file_of_its_own_and_the_manifest_covers_it(exported: Path) -> None:
    manifest = read_manifest(exported)
    assert manifest is not None
    names = [f["name"] for f in manifest["files"]]
    assert names == [
        "sla-2026-10-uso.csv", "sla-2026-10.csv", "sla-2026-10.json", "sla-2026-10.pdf",
        "sla-2026-10.xlsx",
    ]  # fmt: skip
    assert verify_export(exported) == []
    json_bytes = (exported / "sla-2026-10.json").read_bytes()
    assert manifest["report_sha256"] == hashlib.sha256(json_bytes).hexdigest()

    rows = read_csv(exported / "sla-2026-10-uso.csv")
    groups: dict[str, set[str]] = {}
    for r in rows:  # each member's row, then its services' rows
        if r["level"] == "provider":
            assert r["service"] == "" and r["provider_member"] not in groups
            groups[r["provider_member"]] = set()
        else:
            assert r["level"] == "service" and r["provider_member"] == list(groups)[-1]
            groups[r["provider_member"]].add(r["service"])
    assert groups == {MEMBER: {CONSULTAR, DOCUMENTOS}, OTHER: {RUES}}
    documentos = next(r for r in rows if r["service"] == DOCUMENTOS)
    assert documentos["requests"] == "10" and documentos["success_ratio"] == "0.4"
    assert documentos["top_fault_codes"] == "Server.ServerProxy.ServiceFailed=6"
    assert documentos["report_status"] == "FINAL" and documentos["month"] == "2026-10"
    # The main CSV is as before.
    assert "requests" not in read_csv(exported / "sla-2026-10.csv")[0]

    # Altering the usage file is caught by the manifest.
    (exported / "sla-2026-10-uso.csv").write_bytes(b"tampered\r\n")
    assert verify_export(exported) == [
        f"{exported / 'sla-2026-10-uso.csv'}: does not match manifest.json"
    ]


def test_the_digest_covers_the_usage(usage_url: str, history_url: str, tmp_path: Path) -> None:
    """Other usage, the same SLA figures: another report_sha256."""
    cat = parse_catalog(CATALOG_WITH_MEMBER)
    other_url = copy_database(history_url, tmp_path / "other.db")
    write_usage(other_url, {SS_PROVIDER: [record(RUES, "Producer", ok=False, at=MID)]})
    digests = []
    for n, url in enumerate((usage_url, other_url)):
        for source in _source(url, cat):
            export = build_month_export(source, month="2026-10", now=NOW)
            result = write_export(export, formats=["json"], output_dir=tmp_path / str(n))
            digests.append(result.report_sha256)
    assert digests[0] != digests[1]


def test_a_month_without_usage_data_says_so_in_one_line(
    history_url: str, tmp_path: Path, pdftools: None
) -> None:
    """The XLSX and the PDF say so; the machine files are those of an export without
    the section (same bytes, so the same report_sha256)."""
    cat = parse_catalog(CATALOG_YAML)
    for source in _source(history_url, cat):  # the store has no usage buckets
        export = build_month_export(source, month="2026-10", now=NOW)
        out = write_export(export, formats=FORMATS, output_dir=tmp_path / "read")
    sheet = read_xlsx(out.path("xlsx"))["Uso de la plataforma"]
    assert sheet[1][0] == NO_USAGE
    assert len([r for r in sheet if any(c is not None for c in r)]) == 2  # header + the line
    pages = pdf_pages(out.path("pdf"))
    assert f"{USAGE_TITLE} {NO_USAGE}." in pages[-1]
    assert "usage" not in read_json(out.path("json"))
    assert [f.name for f in out.files] == [f"sla-2026-10.{fmt}" for fmt in FORMATS]
    assert verify_export(out.directory) == []

    for source in _source(history_url, cat, usage=False):
        export = build_month_export(source, month="2026-10", now=NOW)
        before = write_export(export, formats=FORMATS, output_dir=tmp_path / "none")
    assert before.report_sha256 == out.report_sha256
    assert before.path("csv").read_bytes() == out.path("csv").read_bytes()


def test_a_source_without_a_usage_reader_exports_as_before(
    history_url: str, tmp_path: Path
) -> None:
    cat = parse_catalog(CATALOG_YAML)
    for source in _source(history_url, cat, usage=False):
        export = build_month_export(source, month="2026-10", now=NOW)
        out = write_export(export, formats=["csv", "json", "xlsx"], output_dir=tmp_path)
    assert "usage" not in read_json(out.path("json"))
    assert "Uso de la plataforma" not in read_xlsx(out.path("xlsx"))
    assert [f.name for f in out.files] == ["sla-2026-10.csv", "sla-2026-10.json",
                                           "sla-2026-10.xlsx"]  # fmt: skip
    with pytest.raises(KeyError):
        out.path("csv", "uso")
