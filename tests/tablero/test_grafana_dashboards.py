"""The Grafana boards: files Grafana loads, stable UIDs, ${datasource} everywhere, Spanish.

Every PromQL expression is also checked by promtool (syntax) and, in
tests/e2e/test_prometheus_e2e.py, against a real Prometheus fed by a real daemon.
The helpers here (``load_dashboards``, ``panels``, ``substitute`` …) are shared with it.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml

from scd_monitor.sla.bands import Band

ROOT = Path(__file__).resolve().parents[2]
GRAFANA = ROOT / "grafana"
DASHBOARDS = GRAFANA / "dashboards"
RECORDING_RULES = ROOT / "config" / "prometheus" / "rules" / "recording.yml"

# The UIDs are part of the public surface: links and bookmarks use them. Never change one.
EXPECTED = {
    "tablero-control-scd.json": ("scd-tablero-control", "Tablero de control SCD"),
    "prestador-servicio.json": ("scd-prestador-servicio", "Prestador / servicio"),
    "operacion-monitor.json": ("scd-operacion-monitor", "Operación del monitor"),
    "interoperabilidad-xroad.json": ("scd-interoperabilidad-xroad", "Interoperabilidad (X-Road)"),
    "uso-plataforma.json": ("scd-uso-plataforma", "Uso de la plataforma (X-Road)"),
}
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}

# Grafana's own variables, and what the end-to-end test puts in their place.
BUILTINS = {
    "__rate_interval": "1m",
    "__interval": "2s",
    "__range": "5m",
    "__range_s": "300",
}
VARIABLE = re.compile(r"\$\{(\w+)(?::\w+)?\}|\$(\w+)")

# Words that give away an English title or description (the boards are for a Spanish-
# speaking operations team; metric names and PromQL inside descriptions are fine).
ENGLISH = re.compile(
    r"\b(the|and|of|per|by|with|availability|latency|budget|burn|coverage|outage|outages|"
    r"state|status|service|services|provider|providers|errors|probes?|rate|"
    r"certificates?|expiry|days|now|month|scheduling|lag|store|write|pending)\b",
    re.IGNORECASE,
)
SPANISH = re.compile(r"\b(de|del|la|el|los|las|en|por|que|un|una|y)\b", re.IGNORECASE)

# -- helpers shared with the end-to-end test ----------------------------------------------


def load_dashboards() -> dict[str, dict[str, Any]]:
    """{file name: dashboard JSON} for every board under grafana/dashboards/."""
    return {
        path.name: json.loads(path.read_text(encoding="utf-8"))
        for path in sorted(DASHBOARDS.glob("*.json"))
    }


def panels(dashboard: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
    """Every panel, including those nested in rows."""
    for panel in dashboard.get("panels", []):
        yield panel
        yield from panel.get("panels", [])


def query_panels(dashboard: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
    """Every panel that queries data (rows excluded)."""
    return (p for p in panels(dashboard) if p.get("type") != "row")


def variables(dashboard: Mapping[str, Any]) -> list[dict[str, Any]]:
    return list(dashboard.get("templating", {}).get("list", []))


def variable_query(variable: Mapping[str, Any]) -> str:
    query = variable.get("query")
    return str(query.get("query") if isinstance(query, Mapping) else query)


def expressions(dashboard: Mapping[str, Any]) -> Iterator[tuple[str, str, str]]:
    """(panel title, refId, expr) for every query of every panel."""
    for panel in query_panels(dashboard):
        for target in panel.get("targets", []):
            yield panel["title"], target.get("refId", "?"), target.get("expr", "")


def substitute(expr: str, values: Mapping[str, str]) -> str:
    """``expr`` with Grafana's variables replaced by ``values`` (then BUILTINS)."""

    def replace(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2)
        if name in values:
            return values[name]
        if name in BUILTINS:
            return BUILTINS[name]
        raise KeyError(f"unknown variable ${name} in {expr!r}")

    return VARIABLE.sub(replace, expr)


def recording_rule_names() -> set[str]:
    data = yaml.safe_load(RECORDING_RULES.read_text(encoding="utf-8"))
    return {rule["record"] for group in data["groups"] for rule in group["rules"]}


def promtool() -> str | None:
    found = shutil.which("promtool")
    if found is None:
        if os.environ.get("SCD_MONITOR_REQUIRE_PROMTOOL") == "1":
            pytest.fail("promtool is required (Debian package 'prometheus')")
        pytest.skip("promtool not installed")
    return found


# -- the provisioning layout --------------------------------------------------------------


def test_provisioning_layout_points_grafana_at_the_boards() -> None:
    datasources = list((GRAFANA / "provisioning" / "datasources").glob("*.yml"))
    providers = list((GRAFANA / "provisioning" / "dashboards").glob("*.yml"))
    assert datasources and providers
    sources = [
        ds
        for path in datasources
        for ds in yaml.safe_load(path.read_text(encoding="utf-8"))["datasources"]
    ]
    assert [ds["type"] for ds in sources] == ["prometheus"]
    assert sources[0]["uid"] and sources[0]["url"].startswith("http")
    (provider,) = [p for path in providers for p in yaml.safe_load(path.read_text())["providers"]]
    assert provider["type"] == "file"
    assert provider["folder"] == "SCD"
    board_path = provider["options"]["path"]

    # docker-compose.yml mounts exactly these directories where Grafana looks for them.
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text(encoding="utf-8"))
    mounts = compose["services"]["grafana"]["volumes"]
    assert "./grafana/provisioning:/etc/grafana/provisioning:ro" in mounts
    assert f"./grafana/dashboards:{board_path}:ro" in mounts
    environment = compose["services"]["grafana"]["environment"]
    home = environment["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert home == f"{board_path}/tablero-control-scd.json"


def test_the_five_boards_with_stable_unique_uids_and_spanish_titles() -> None:
    boards = load_dashboards()
    assert set(boards) == set(EXPECTED)
    uids = [board["uid"] for board in boards.values()]
    assert len(set(uids)) == len(uids)
    for name, board in boards.items():
        uid, title = EXPECTED[name]
        assert board["uid"] == uid
        assert re.fullmatch(r"[a-z0-9-]{1,40}", uid)
        assert board["title"] == title
        assert board["id"] is None, "provisioned boards carry no database id"
        assert board["description"] and SPANISH.search(board["description"])
        assert "scd" in board["tags"]
        assert board["timezone"] == "America/Bogota", "SLA months are Bogotá months"


def test_xroad_board_selects_xroad_checks_and_describes_them() -> None:
    """Board 3 reads the X-Road checks by kind and names them with scd_check_info."""
    board = load_dashboards()["interoperabilidad-xroad.json"]
    assert {v["name"] for v in variables(board)} >= {"datasource", "instancia", "vantage"}
    exprs = [expr for _, _, expr in expressions(board)]
    joined = " ".join(exprs)
    for metric in (
        "scd_xroad_directory_members",
        "scd_xroad_directory_subsystems",
        "scd_xroad_directory_services",
        "scd_xroad_directory_security_servers",
        "scd_xroad_directory_changes_total",
        "scd_xroad_globalconf_expiry_timestamp_seconds",
        "scd_xroad_directory_fetch_failures_total",
        "scd_xroad_directory_last_success_timestamp_seconds",
        "scd_probe_success",
        "scd_check_state",
    ):
        assert metric in joined, metric
    for expr in exprs:
        if "scd_probe_success" in expr or "scd_check_state" in expr:
            assert 'kind=~"xroad_.*"' in expr and "scd_check_info" in expr, expr


def test_usage_board_reads_the_operational_monitoring_series() -> None:
    """Board 5 reads every use series of X-Road's operational monitoring (records and
    health data), filters by source, and adds the daemons' counters up: the cursor of a
    security server is shared, so each record is counted by one daemon only."""
    board = load_dashboards()["uso-plataforma.json"]
    by_name = {v["name"]: v for v in variables(board)}
    assert set(by_name) == {"datasource", "source", "provider_member", "service"}
    for name in ("source", "provider_member", "service"):
        assert by_name[name]["includeAll"] and by_name[name]["allValue"] == ".*", name
    exprs = [expr for _, _, expr in expressions(board)]
    joined = " ".join(exprs)
    for metric in (
        "xroad_service:scd_xroad_service_requests:rate15m",
        "xroad_service:scd_xroad_service_requests:rate1h",
        "xroad_service:scd_xroad_service_success:ratio_rate1h",
        "xroad_provider:scd_xroad_service_request_duration_seconds:p95_1h",
        "scd_xroad_service_requests_total",
        "scd_xroad_client_requests_total",
        "scd_xroad_service_faults_total",
        "scd_xroad_service_request_duration_seconds_bucket",
        "scd_xroad_opmon_records_total",
        "scd_xroad_opmon_refused_records_total",
        "scd_xroad_opmon_up",
        "scd_xroad_opmon_cursor_timestamp_seconds",
        "scd_xroad_opmon_last_success_timestamp_seconds",
        "scd_xroad_health_requests",
        "scd_xroad_health_statistics_period_seconds",
        "scd_xroad_health_request_duration_seconds",
        "scd_xroad_health_last_request_timestamp_seconds",
        "scd_xroad_health_monitoring_startup_timestamp_seconds",
    ):
        assert metric in joined, metric
    for expr in exprs:
        assert 'source=~"$source"' in expr, expr
        # counters are added up over daemons, never the highest of them
        if "_total" in expr or "_bucket" in expr:
            assert not re.search(r"\bmax\b", expr), expr
    links = [link.get("url", "") for link in board["links"]]
    assert "/d/scd-interoperabilidad-xroad/" in " ".join(links)


def test_datasource_is_the_variable_everywhere() -> None:
    for name, board in load_dashboards().items():
        (ds_var,) = [v for v in variables(board) if v["type"] == "datasource"]
        assert ds_var["name"] == "datasource", name
        assert ds_var["query"] == "prometheus", name
        for variable in variables(board):
            if variable["type"] == "query":
                assert variable["datasource"] == DATASOURCE, (name, variable["name"])
        for panel in query_panels(board):
            assert panel["datasource"] == DATASOURCE, (name, panel["title"])
            for target in panel["targets"]:
                assert target["datasource"] == DATASOURCE, (name, panel["title"])
        # No data source UID typed anywhere else in the file either.
        text = json.dumps(board)
        for uid in re.findall(r'"uid": "([^"]*)"', text):
            assert uid in ("${datasource}", board["uid"]), (name, uid)


def test_every_panel_has_spanish_title_description_and_queries() -> None:
    for name, board in load_dashboards().items():
        ids = [p["id"] for p in panels(board)]
        assert len(set(ids)) == len(ids), name
        for panel in query_panels(board):
            title, description = panel["title"], panel.get("description", "")
            assert title and not ENGLISH.search(title), (name, title)
            assert description and SPANISH.search(description), (name, title)
            targets = panel.get("targets", [])
            assert targets, (name, title)
            ref_ids = [t["refId"] for t in targets]
            assert len(set(ref_ids)) == len(ref_ids), (name, title)
            for target in targets:
                assert target["expr"].strip(), (name, title)


def test_panels_fit_the_grid_without_overlapping() -> None:
    for name, board in load_dashboards().items():
        taken: dict[tuple[int, int], str] = {}
        for panel in panels(board):
            pos = panel["gridPos"]
            assert pos["x"] >= 0 and pos["x"] + pos["w"] <= 24, (name, panel["title"])
            for x in range(pos["x"], pos["x"] + pos["w"]):
                for y in range(pos["y"], pos["y"] + pos["h"]):
                    assert (x, y) not in taken, (name, panel["title"], taken.get((x, y)))
                    taken[(x, y)] = panel["title"]


def test_expressions_use_only_defined_variables_and_existing_rules() -> None:
    records = recording_rule_names()
    for name, board in load_dashboards().items():
        defined = {v["name"]: ".*" for v in variables(board)}
        queries = list(expressions(board))
        queries += [
            (v["name"], "var", variable_query(v)) for v in variables(board) if v["type"] == "query"
        ]
        for title, ref, expr in queries:
            substitute(expr, defined)  # raises on an unknown variable
            for used in re.findall(r"\b[a-z_]+:[a-z0-9_]+:[a-z0-9_]+\b", expr):
                assert used in records, (name, title, ref, used)


def test_rangos_de_medicion_are_coloured_by_the_band_series_not_typed_numbers() -> None:
    """Band and state panels colour by value mappings of the recorded codes, with the
    names and colours of the one definition (scd_monitor.sla.bands)."""
    band = {str(b.code): (b.label, b.colour) for b in Band}
    seen_band = 0
    for board in load_dashboards().values():
        for panel in query_panels(board):
            exprs = " ".join(t["expr"] for t in panel["targets"])
            if "scd_sla_band:code" not in exprs:
                continue
            mapping_sets = [panel["fieldConfig"]["defaults"].get("mappings", [])]
            mapping_sets += [
                prop["value"]
                for override in panel["fieldConfig"].get("overrides", [])
                for prop in override["properties"]
                if prop["id"] == "mappings"
            ]
            found = [
                {key: (v["text"], v["color"]) for key, v in mapping["options"].items()}
                for mappings in mapping_sets
                for mapping in mappings
            ]
            assert band in found, panel["title"]
            seen_band += 1
    assert seen_band >= 3  # the main board's tiles and table, and the service board


def test_detail_link_points_at_the_service_board() -> None:
    boards = load_dashboards()
    uids = {board["uid"] for board in boards.values()}
    text = json.dumps(boards["tablero-control-scd.json"])
    linked = set(re.findall(r"/d/([a-z0-9-]+)/", text))
    assert linked and linked <= uids


def test_every_expression_parses(tmp_path: Path) -> None:
    """promtool parses each query (as a recording rule) with variables substituted."""
    tool = promtool()
    rules = []
    for name, board in load_dashboards().items():
        defined = {v["name"]: "x" for v in variables(board)}
        for i, (_, _, expr) in enumerate(expressions(board)):
            rules.append(
                {
                    "record": f"check:{name.split('.')[0].replace('-', '_')}:{i}",
                    "expr": substitute(expr, defined),
                }
            )
    path = tmp_path / "board-queries.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "boards", "rules": rules}]}))
    out = subprocess.run(
        [str(tool), "check", "rules", str(path)], capture_output=True, text=True, check=False
    )
    assert out.returncode == 0, out.stdout + out.stderr
