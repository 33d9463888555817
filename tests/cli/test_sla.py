"""``scd-monitor sla`` and ``export sla`` as a shell user meets them: the month in the
catalog's time zone, no figures for a month to come, a closed pipe is not a crash, the
success inside X-Road beside the probes' availability."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.exports.test_usage_section import (
    DOCUMENTOS,
    MID,
    SS_PROVIDER,
    copy_database,
    record,
    write_usage,
)


def scd(*argv: str, stdout: int | None = subprocess.PIPE) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "scd_monitor", *argv],
        stdout=stdout,
        stderr=subprocess.PIPE,
        text=True,
        timeout=120,
        check=False,
    )


def test_the_table_header_shows_the_month_in_the_catalogs_time_zone(
    history_url: str, catalog_file: Path
) -> None:
    proc = scd("sla", "--month", "2026-10", "--catalog", str(catalog_file),
               "--database-url", history_url)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    first = proc.stdout.splitlines()[0]
    assert first.startswith("SLA 2026-10-01T00:00:00-05:00 .. 2026-11-01T00:00:00-05:00 ")
    assert "(time zone America/Bogota" in first


def test_a_month_to_come_is_refused_like_the_export_refuses_it(
    history_url: str, catalog_file: Path, tmp_path: Path
) -> None:
    now = datetime.now(UTC)
    future = f"{now.year + 1}-{now.month:02d}"
    sla = scd("sla", "--month", future, "--catalog", str(catalog_file),
              "--database-url", history_url)  # fmt: skip
    assert sla.returncode == 2
    assert sla.stdout == ""
    assert sla.stderr.strip() == f"error: --month: {future} has not begun yet"
    export = scd("export", "sla", "--month", future, "--output", str(tmp_path),
                 "--catalog", str(catalog_file), "--database-url", history_url)  # fmt: skip
    assert export.returncode == 2
    assert f"{future} has not begun yet" in export.stderr


@pytest.mark.parametrize(
    "argv",
    [
        ["sla", "--month", "2026-10", "--format", "json"],
        ["sla", "--month", "2026-10"],
        ["export", "sla", "--month", "2026-10", "--format", "csv"],
    ],
    ids=["sla-json", "sla-table", "export"],
)
def test_a_reader_that_went_away_is_no_traceback(
    argv: list[str], history_url: str, catalog_file: Path, tmp_path: Path
) -> None:
    read_end, write_end = os.pipe()
    os.close(read_end)  # `… | head -0`: the reader is gone before the first byte
    extra = ["--output", str(tmp_path / "out")] if argv[0] == "export" else []
    try:
        proc = scd(*argv, *extra, "--catalog", str(catalog_file), "--database-url",
                   history_url, stdout=write_end)  # fmt: skip
    finally:
        os.close(write_end)
    assert "Traceback" not in proc.stderr
    assert "Exception ignored" not in proc.stderr
    assert "BrokenPipeError" not in proc.stderr
    assert proc.returncode == 0
    if argv[0] == "export":
        assert (tmp_path / "out" / "sla-2026-10" / "manifest.json").is_file()


def test_the_band_by_the_one_definition_with_the_catalogs_amber_bound(
    history_url: str, catalog_file: Path, tmp_path: Path
) -> None:
    """``band`` (json, after ``met``) and ``BAND`` (table): carpeta's 99.866 % against
    99.9 % is amber by the default bound (99.8 %) and red with ``amber_from: 0.9987``."""
    default = scd("sla", "--month", "2026-10", "--format", "json", "--catalog",
                  str(catalog_file), "--database-url", history_url)  # fmt: skip
    assert default.returncode == 0, default.stderr
    services = json.loads(default.stdout)["services"]
    assert {s["service"]: s["band"] for s in services} == {
        "autenticacion": "green", "carpeta": "amber", "interop": "red", "sin-datos": None,
    }  # fmt: skip
    keys = list(services[0])
    assert keys[keys.index("met") + 1] == "band"

    text = catalog_file.read_text(encoding="utf-8")
    old = "sla: {availability_target: 0.999, latency_threshold: 2s}"
    assert old in text
    stricter = tmp_path / "catalog.yaml"
    stricter.write_text(
        text.replace(old, "sla: {availability_target: 0.999, amber_from: 0.9987}"),
        encoding="utf-8",
    )
    proc = scd("sla", "--month", "2026-10", "--format", "json", "--catalog", str(stricter),
               "--database-url", history_url)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    carpeta = next(s for s in json.loads(proc.stdout)["services"] if s["service"] == "carpeta")
    assert carpeta["band"] == "red"

    table = scd("sla", "--month", "2026-10", "--catalog", str(stricter),
                "--database-url", history_url)  # fmt: skip
    assert table.returncode == 0, table.stderr
    lines = table.stdout.splitlines()
    header = next(line for line in lines if line.startswith("SERVICE"))
    assert header.split()[:6] == ["SERVICE", "AVAIL", "XROAD-OK", "TARGET", "MET", "BAND"]
    rows = {
        line.split()[0]: line.split()[5] for line in lines if line.startswith(("alfa/", "beta/"))
    }
    assert rows == {
        "alfa/autenticacion": "Verde", "alfa/carpeta": "Rojo", "beta/interop": "Rojo",
        "beta/sin-datos": "-",
    }  # fmt: skip


# -- Éxito en X-Road beside the probes' availability ---------------------------------------

SUBSYSTEM = "CO/GOB/8999990001/AUTH"


@pytest.fixture
def xroad_traffic(history_url: str, catalog_file: Path, tmp_path: Path) -> tuple[str, Path]:
    """October with usage buckets, and a catalog in which ``alfa/carpeta`` is the X-Road
    service ``…/CARPETA/documentos/v1`` and ``alfa/autenticacion`` the subsystem
    ``…/AUTH`` (as discovered services are named): carpeta's probes succeed (99,866 %)
    but only 4 of its 10 requests do (40 %); AUTH's services: 3 of 4 (75 %)."""
    url = copy_database(history_url, tmp_path / "october.db")
    documentos = [record(DOCUMENTOS, "Producer", ok=i < 4, at=MID + i) for i in range(10)]
    auth = [
        *(record(f"{SUBSYSTEM}/login", "Producer", ok=True, at=MID + i) for i in range(3)),
        record(f"{SUBSYSTEM}/token/v2", "Producer", ok=False, at=MID + 5),
    ]
    write_usage(url, {SS_PROVIDER: [*documentos, *auth]})
    text = catalog_file.read_text(encoding="utf-8")
    for old, new in (("Carpeta Ciudadana", DOCUMENTOS), ("Autenticación Digital", SUBSYSTEM)):
        assert f"name: {old}" in text
        text = text.replace(f"name: {old}", f"name: {new}")
    catalog = tmp_path / "catalog.yaml"
    catalog.write_text(text, encoding="utf-8")
    return url, catalog


def test_the_table_shows_xroad_success_beside_the_probes_availability(
    xroad_traffic: tuple[str, Path],
) -> None:
    url, catalog = xroad_traffic
    proc = scd("sla", "--month", "2026-10", "--catalog", str(catalog), "--database-url", url)
    assert proc.returncode == 0, proc.stderr
    rows = {
        line.split()[0]: line.split()[1:3]
        for line in proc.stdout.splitlines()
        if line.startswith(("alfa/", "beta/"))
    }
    # The probes say up; the real traffic fails.
    assert rows["alfa/carpeta"] == ["99.866%", "40.000%"]
    assert rows["alfa/autenticacion"][1] == "75.000%"  # the subsystem's services together
    assert rows["beta/interop"][1] == "-"  # no X-Road service: no figure
    assert "XROAD-OK: Éxito en X-Road" in proc.stdout


def test_the_json_shows_xroad_success_beside_the_services(
    xroad_traffic: tuple[str, Path],
) -> None:
    url, catalog = xroad_traffic
    proc = scd("sla", "--month", "2026-10", "--format", "json", "--catalog", str(catalog),
               "--database-url", url)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    services = {s["service"]: s for s in doc["services"]}
    assert services["carpeta"]["availability"] > 0.998
    assert "xroad_success" not in services["carpeta"]  # the export's entries stay as they are
    xroad = {x["service"]: x for x in doc["xroad_success"]}
    assert [(x["provider"], x["service"]) for x in doc["xroad_success"]] == [
        (s["provider"], s["service"]) for s in doc["services"]
    ]
    assert xroad["carpeta"] == {
        "provider": "alfa", "service": "carpeta", "xroad_service": DOCUMENTOS,
        "requests": 10, "successes": 4, "success_ratio": 0.4,
    }  # fmt: skip
    assert xroad["autenticacion"]["xroad_service"] == SUBSYSTEM
    assert xroad["autenticacion"]["success_ratio"] == 0.75
    assert xroad["interop"]["success_ratio"] is None


def test_without_usage_data_every_service_shows_no_xroad_figure(
    history_url: str, catalog_file: Path
) -> None:
    proc = scd("sla", "--month", "2026-10", "--format", "json", "--catalog",
               str(catalog_file), "--database-url", history_url)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert len(doc["xroad_success"]) == len(doc["services"]) == 4
    assert {x["success_ratio"] for x in doc["xroad_success"]} == {None}


def test_the_export_command_reads_the_usage_from_the_store(
    xroad_traffic: tuple[str, Path], tmp_path: Path
) -> None:
    url, catalog = xroad_traffic
    out = tmp_path / "out"
    proc = scd("export", "sla", "--month", "2026-10", "--format", "json", "--format", "csv",
               "--output", str(out), "--catalog", str(catalog), "--database-url", url)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    doc = json.loads((out / "sla-2026-10" / "sla-2026-10.json").read_text(encoding="utf-8"))
    (member,) = doc["usage"]["providers"]
    assert member["provider_member"] == "CO/GOB/8999990001"
    assert member["requests"] == 14 and member["successes"] == 7
    assert (out / "sla-2026-10" / "sla-2026-10-uso.csv").is_file()
    assert "sla-2026-10-uso.csv" in proc.stdout
