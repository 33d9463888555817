#!/usr/bin/env python3
"""Render the main Grafana board ("Tablero de control SCD") from real data to a PNG.

Grafana cannot run here, so this draws the board's own panels with matplotlib: it reads
grafana/dashboards/tablero-control-scd.json and, for every panel, runs the panel's PromQL
(the same expressions, ``$prestador`` = all) against a Prometheus, then draws it where
the panel's gridPos puts it, with the panel's value mappings, thresholds and units.

By default it brings up its own stack on 127.0.0.1, all real: the provider simulator
(a scenario with an outage, a degraded service, a service down against a very strict
target), the daemon probing it every 2 s into SQLite, and /usr/bin/prometheus with
config/prometheus/ (2 s scrape and evaluation); it lets them run ``--duration`` seconds
and draws the board. With ``--prometheus URL`` it only draws, from that Prometheus.

    .venv/bin/pip install matplotlib
    .venv/bin/python scripts/render_board.py                  # ~3 minutes
    .venv/bin/python scripts/render_board.py --prometheus http://127.0.0.1:9090
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import yaml

ROOT = Path(__file__).resolve().parents[1]
BOARD = ROOT / "grafana" / "dashboards" / "tablero-control-scd.json"
PROMETHEUS_DIR = ROOT / "config" / "prometheus"
DEFAULT_OUT = ROOT / "docs" / "img" / "tablero.png"

# Grafana's dark theme, near enough.
BACKGROUND, PANEL, TEXT, MUTED, GRID = "#111217", "#181b1f", "#ccccdc", "#8e8e9e", "#2c3235"
COLORS = {
    "green": "#73BF69",
    "red": "#F2495C",
    "orange": "#FF9830",
    "yellow": "#FADE2A",
    "blue": "#5794F2",
    "text": TEXT,
}
PALETTE = [
    "#73BF69",
    "#F2CC0C",
    "#8AB8FF",
    "#FF780A",
    "#F2495C",
    "#5794F2",
    "#B877D9",
    "#705DA0",
    "#37872D",
    "#FADE2A",
    "#447EBC",
    "#C4162A",
]

# -- the scenario of the picture ----------------------------------------------------------
# Fictitious providers. Each service shows one thing the board is for.
SCENARIO = {
    "endpoints": [
        # healthy, 99.5 %: Cumple, Arriba
        {"id": "andino/autenticacion/oidc", "kind": "oidc", "tls": "valid"},
        # 503 from 40 s to 80 s, 99.5 %: far below target in a short run: Incumplimiento grave
        {
            "id": "andino/carpeta/health",
            "kind": "carpeta",
            "tls": "valid",
            "outage": {"from": "40s", "to": "80s", "behaviour": {"status": 503}},
        },
        # answers in 0.8 s, latency threshold 0.5 s: Degradado (still up)
        {"id": "caribe/autenticacion/oidc", "kind": "oidc", "behaviour": {"slow": "800ms"}},
        # hangs from 30 s on, 99.999 % (26 s of budget a month): Incumplimiento grave, Caído
        {
            "id": "caribe/carpeta/health",
            "kind": "carpeta",
            "timeline": [{"at": "0s", "behaviour": "healthy"}, {"at": "30s", "behaviour": "hang"}],
        },
        {"id": "pacifico/interoperabilidad/xroad", "kind": "xroad_health"},
        {"id": "pacifico/portal/home", "kind": "generic", "tls": "valid"},
    ]
}
NAMES = {
    "andino": "Prestador Andino (simulado)",
    "caribe": "Prestador Caribe (simulado)",
    "pacifico": "Prestador Pacífico (simulado)",
}
SERVICES = {
    "autenticacion": "Autenticación Digital",
    "carpeta": "Carpeta Ciudadana",
    "interoperabilidad": "Interoperabilidad",
    "portal": "Portal",
}
SLA = {
    ("andino", "autenticacion"): {"availability_target": 0.995, "latency_threshold": "2s"},
    ("andino", "carpeta"): {"availability_target": 0.995, "latency_threshold": "2s"},
    ("caribe", "autenticacion"): {"availability_target": 0.99, "latency_threshold": "500ms"},
    ("caribe", "carpeta"): {"availability_target": 0.99999, "latency_threshold": "2s"},
    ("pacifico", "interoperabilidad"): {"availability_target": 0.995, "latency_threshold": "2s"},
    ("pacifico", "portal"): {"availability_target": 0.98, "latency_threshold": "3s"},
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def process(args: Sequence[str], log: Path, **kwargs: Any) -> Iterator[subprocess.Popen[bytes]]:
    """A subprocess stopped with SIGTERM (then SIGKILL) when the block ends."""
    with log.open("wb") as out:
        # Our own commands: this interpreter, the simulator, the daemon, prometheus.
        proc = subprocess.Popen(list(args), stdout=out, stderr=subprocess.STDOUT, **kwargs)  # noqa: S603
        try:
            yield proc
        finally:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(20)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(5)


@contextlib.contextmanager
def stack(workdir: Path) -> Iterator[str]:
    """Simulator, daemon and Prometheus on 127.0.0.1; yields Prometheus' URL."""
    prometheus = shutil.which("prometheus") or "/usr/bin/prometheus"
    scenario = workdir / "scenario.yaml"
    scenario.write_text(yaml.safe_dump(SCENARIO, sort_keys=False, allow_unicode=True))
    catalog = workdir / "catalog.yaml"
    ready = workdir / "simulator.ready"
    python = sys.executable
    with contextlib.ExitStack() as stop:
        sim_args = [
            python,
            "-m",
            "scd_simulator",
            str(scenario),
            "--workdir",
            str(workdir / "sim"),
            "--catalog-out",
            str(catalog),
        ]
        stop.enter_context(process(sim_args, ready))
        wait_until(
            lambda: ready.exists() and "simulator.ready" in ready.read_text(),
            30,
            "the simulator",
            ready,
        )
        dress_catalog(catalog)

        daemon_port, prometheus_port = free_port(), free_port()
        env = {
            **os.environ,
            "SCD_MONITOR_VANTAGE": "bogota",
            "SCD_MONITOR_LOG_FORMAT": "json",
            "SCD_MONITOR_STATE_INTERVAL": "1s",
            "SCD_MONITOR_SLA_INTERVAL": "5s",
        }
        daemon_args = [
            python,
            "-m",
            "scd_monitor",
            "run",
            "--catalog",
            str(catalog),
            "--listen",
            f"127.0.0.1:{daemon_port}",
            "--database-url",
            f"sqlite:///{workdir / 'scd.db'}",
        ]
        stop.enter_context(process(daemon_args, workdir / "daemon.log", env=env))

        config = prometheus_config(workdir, daemon_port)
        prom_args = [
            prometheus,
            f"--config.file={config}",
            f"--storage.tsdb.path={workdir / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{prometheus_port}",
        ]
        stop.enter_context(process(prom_args, workdir / "prometheus.log"))
        url = f"http://127.0.0.1:{prometheus_port}"
        wait_until(lambda: _ready(url), 30, "prometheus", workdir / "prometheus.log")
        yield url


def _ready(url: str) -> bool:
    try:
        return httpx.get(f"{url}/-/ready", timeout=2).status_code == 200
    except httpx.TransportError:
        return False


def wait_until(condition: Any, seconds: float, what: str, log: Path) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
            raise SystemExit(f"timed out waiting for {what}; {log.name} ends with:\n{tail}")
        time.sleep(0.3)


def dress_catalog(path: Path) -> None:
    """Names, SLA terms and a 2 s interval for the catalog the simulator wrote."""
    catalog = yaml.safe_load(path.read_text())
    catalog["defaults"] = {"interval": "2s", "timeout": "1500ms"}
    for provider in catalog["providers"]:
        provider["name"] = NAMES[provider["id"]]
        for service in provider["services"]:
            service["name"] = SERVICES[service["id"]]
            service["sla"] = SLA[(provider["id"], service["id"])]
    path.write_text(yaml.safe_dump(catalog, sort_keys=False, allow_unicode=True))


def prometheus_config(workdir: Path, daemon_port: int) -> Path:
    """The shipped prometheus.yml with 2 s intervals and the local daemon as target."""
    config = yaml.safe_load((PROMETHEUS_DIR / "prometheus.yml").read_text())
    config["global"].update(scrape_interval="2s", evaluation_interval="2s")
    config["rule_files"] = [str(PROMETHEUS_DIR / f) for f in config["rule_files"]]
    (job,) = config["scrape_configs"]
    job.update(scrape_interval="2s", scrape_timeout="2s")
    del job["file_sd_configs"]
    job["static_configs"] = [
        {"targets": [f"127.0.0.1:{daemon_port}"], "labels": {"vantage": "bogota"}}
    ]
    path = workdir / "prometheus.yml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


# -- querying -------------------------------------------------------------------------------


class Prometheus:
    def __init__(self, url: str, variables: Mapping[str, str]) -> None:
        self.client = httpx.Client(base_url=url, timeout=10)
        self.variables = variables

    def expr(self, target: Mapping[str, Any]) -> str:
        def replace(match: re.Match[str]) -> str:
            name = match.group(1) or match.group(2)
            return self.variables[name]

        return re.sub(r"\$\{(\w+)(?::\w+)?\}|\$(\w+)", replace, target["expr"])

    def instant(self, target: Mapping[str, Any]) -> list[dict[str, Any]]:
        body = self.client.get("/api/v1/query", params={"query": self.expr(target)}).json()
        result: list[dict[str, Any]] = body["data"]["result"]
        return result

    def range(self, target: Mapping[str, Any], start: float, end: float) -> list[dict[str, Any]]:
        step = max(2.0, (end - start) / 300)
        params: dict[str, str | float] = {
            "query": self.expr(target),
            "start": start,
            "end": end,
            "step": step,
        }
        body = self.client.get("/api/v1/query_range", params=params).json()
        result: list[dict[str, Any]] = body["data"]["result"]
        return result


def legend(fmt: str, labels: Mapping[str, str]) -> str:
    return re.sub(r"\{\{\s*(\w+)\s*\}\}", lambda m: labels.get(m.group(1), ""), fmt)


# -- field config: units, mappings, thresholds ------------------------------------------------


def fmt_value(value: float, unit: str, decimals: int | None) -> str:
    if math.isnan(value):
        return "NaN"
    if unit == "percentunit":
        return f"{value * 100:.{1 if decimals is None else decimals}f} %"
    if unit.startswith("suffix:"):
        return f"{value:.{1 if decimals is None else decimals}f}{unit[7:]}"
    if unit == "s":
        return human_seconds(value)
    return f"{value:.{0 if decimals is None else decimals}f}"


def human_seconds(value: float) -> str:
    if value < 60:
        return f"{value:.1f} s"
    if value < 3600:
        return f"{value / 60:.1f} min"
    return f"{value / 3600:.1f} h"


def mapping_for(value: float, mappings: Sequence[Mapping[str, Any]]) -> tuple[str, str] | None:
    for mapping in mappings:
        if mapping.get("type") == "value":
            key = f"{value:g}" if not math.isnan(value) else "NaN"
            hit = mapping["options"].get(key)
            if hit:
                return hit["text"], color(hit["color"])
    return None


def threshold_color(value: float, thresholds: Mapping[str, Any]) -> str:
    chosen = thresholds["steps"][0]["color"]
    for step in thresholds["steps"][1:]:
        if value >= step["value"]:
            chosen = step["color"]
    return color(chosen)


def color(name: str) -> str:
    return COLORS.get(name, name)


def field_config(panel: Mapping[str, Any], name: str | None = None) -> dict[str, Any]:
    """The panel's defaults with the overrides for field ``name`` applied."""
    config = dict(panel["fieldConfig"]["defaults"])
    for override in panel["fieldConfig"].get("overrides", []):
        if name is not None and override["matcher"]["options"] == name:
            for prop in override["properties"]:
                key = prop["id"].removeprefix("custom.")
                config[key] = prop["value"]
    return config


# -- drawing --------------------------------------------------------------------------------


def draw_board(prom: Prometheus, out: Path, *, started: float | None, note: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    board = json.loads(BOARD.read_text(encoding="utf-8"))
    panels = board["panels"]
    rows = max(p["gridPos"]["y"] + p["gridPos"]["h"] for p in panels)
    col_in, row_in, header_in = 0.78, 0.42, 1.3  # inches per grid column / row, header
    fig_w, fig_h = 24 * col_in, rows * row_in + header_in
    fig = plt.figure(figsize=(fig_w, fig_h), facecolor=BACKGROUND)
    fig.text(
        0.25 / fig_w,
        1 - 0.3 / fig_h,
        board["title"],
        color=TEXT,
        fontsize=20,
        fontweight="bold",
        va="top",
    )
    fig.text(0.25 / fig_w, 1 - 0.75 / fig_h, note, color=MUTED, fontsize=9.5, va="top")

    def rect(x: float, top: float, w: float, h: float) -> tuple[float, float, float, float]:
        """Figure fractions from inches (x from the left, top from the top)."""
        return (x / fig_w, 1 - (top + h) / fig_h, w / fig_w, h / fig_h)

    now = time.time()
    for panel in panels:
        g = panel["gridPos"]
        gap = 0.06
        x, top = g["x"] * col_in + gap, header_in + g["y"] * row_in + gap
        w, h = g["w"] * col_in - 2 * gap, g["h"] * row_in - 2 * gap
        box = fig.add_axes(rect(x, top, w, h))
        _blank(box)
        box.set_facecolor(PANEL)
        for spine in box.spines.values():
            spine.set_color(GRID)
        box.text(
            0.12 / w,
            1 - 0.2 / h,
            panel["title"],
            color=TEXT,
            fontsize=11,
            fontweight="bold",
            va="center",
            transform=box.transAxes,
        )
        title_in = 0.4
        kind = panel["type"]
        if kind == "timeseries":
            legend_w = w * 0.36
            ax = fig.add_axes(
                rect(x + 0.75, top + title_in, w - 0.9 - legend_w, h - title_in - 0.4)
            )
            start = started if started is not None else now - 3600
            draw_timeseries(ax, panel, prom, start, now)
        else:
            ax = fig.add_axes(rect(x + 0.1, top + title_in, w - 0.2, h - title_in - 0.1))
            ax.set_facecolor(PANEL)
            for spine in ax.spines.values():
                spine.set_visible(False)
            if kind == "stat":
                draw_stat(ax, panel, prom)
            elif kind == "table":
                draw_table(ax, panel, prom)
            elif kind == "bargauge":
                draw_bargauge(ax, panel, prom)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=100, facecolor=BACKGROUND)
    plt.close(fig)


def _blank(ax: Any) -> None:
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)


def draw_stat(ax: Any, panel: Mapping[str, Any], prom: Prometheus) -> None:
    _blank(ax)
    config = field_config(panel)
    series = sorted(
        (
            (legend(t["legendFormat"], r["metric"]), float(r["value"][1]))
            for t in panel["targets"]
            for r in prom.instant(t)
        ),
    )
    if not series:
        ax.text(0.5, 0.5, config.get("noValue", "Sin datos"), ha="center", color=MUTED)
        return
    n = len(series)
    gap = 0.01
    w = (1 - gap * (n + 1)) / n
    for i, (name, value) in enumerate(series):
        mapped = mapping_for(value, config.get("mappings", []))
        text, fill = mapped or (fmt_value(value, config["unit"], config.get("decimals")), PANEL)
        x = gap + i * (w + gap)
        ink = readable_on(fill)
        ax.add_patch(plt_rect((x, 0.06), w, 0.84, fill))
        ax.text(x + w / 2, 0.66, name, ha="center", va="center", fontsize=8.5, color=ink, wrap=True)
        ax.text(
            x + w / 2,
            0.32,
            text,
            ha="center",
            va="center",
            fontsize=15,
            fontweight="bold",
            color=ink,
        )


def readable_on(fill: str) -> str:
    """Dark text on light fills (yellow), white on the others, as Grafana does."""
    if not fill.startswith("#") or len(fill) != 7:
        return "white"
    r, g, b = (int(fill[i : i + 2], 16) for i in (1, 3, 5))
    return "#111217" if 0.299 * r + 0.587 * g + 0.114 * b > 170 else "white"


def plt_rect(xy: tuple[float, float], w: float, h: float, fill: str) -> Any:
    from matplotlib.patches import FancyBboxPatch

    return FancyBboxPatch(
        xy, w, h, boxstyle="round,pad=0,rounding_size=0.01", facecolor=fill, edgecolor="none"
    )


def draw_table(ax: Any, panel: Mapping[str, Any], prom: Prometheus) -> None:
    _blank(ax)
    ax.axis("off")
    rows: dict[tuple[str, str], dict[str, Any]] = {}
    for target in panel["targets"]:
        for r in prom.instant(target):
            key = (r["metric"].get("provider", ""), r["metric"].get("service", ""))
            row = rows.setdefault(key, {})
            row.update(r["metric"])
            row[f"Value #{target['refId']}"] = float(r["value"][1])
    organize = next(t["options"] for t in panel["transformations"] if t["id"] == "organize")
    excluded = {k for k, v in organize["excludeByName"].items() if v}
    order = sorted(organize["indexByName"], key=organize["indexByName"].get)
    rename = organize["renameByName"]
    columns = [
        c
        for c in order
        if c not in excluded and not field_config(panel, rename.get(c, c)).get("hidden")
    ]
    header = [rename.get(c, c) for c in columns]
    cells: list[list[str]] = []
    fills: list[list[tuple[str, str | None]]] = []
    for key in sorted(rows):
        row = rows[key]
        line, line_style = [], []
        for column, name in zip(columns, header, strict=True):
            value = row.get(column)
            config = field_config(panel, name)
            cell = config.get("cellOptions", {}).get("type", "auto")
            tint = None
            if value is None:
                text = "—"
            elif isinstance(value, float):
                mapped = mapping_for(value, config.get("mappings", []))
                text = (
                    mapped[0]
                    if mapped
                    else fmt_value(value, config.get("unit", "none"), config.get("decimals"))
                )
                if mapped:
                    tint = mapped[1]
                elif "thresholds" in config and cell != "auto":
                    tint = threshold_color(value, config["thresholds"])
            else:
                text = str(value)
            line.append(text)
            line_style.append((cell, tint))
        cells.append(line)
        fills.append(line_style)
    if not cells:
        ax.text(0.5, 0.5, "Sin datos", ha="center", color=MUTED)
        return
    table = ax.table(
        cellText=cells, colLabels=header, loc="upper center", cellLoc="center", bbox=(0, 0, 1, 1)
    )
    table.auto_set_font_size(False)
    table.set_fontsize(8.5)
    widths = [
        max(len(header[c]), *(len(line[c]) for line in cells)) + 2 for c in range(len(header))
    ]
    total = sum(widths)
    for (_, c), cell in table.get_celld().items():
        cell.set_width(widths[c] / total)
    for (r, c), cell in table.get_celld().items():
        cell.set_edgecolor(GRID)
        if r == 0:
            cell.set_facecolor("#22252b")
            cell.get_text().set_color(TEXT)
            cell.get_text().set_fontweight("bold")
            continue
        mode, tint = fills[r - 1][c]
        cell.set_facecolor(tint if mode == "color-background" and tint else PANEL)
        if mode == "color-background" and tint:
            cell.get_text().set_color(readable_on(tint))
        else:
            cell.get_text().set_color(tint or TEXT)


def draw_bargauge(ax: Any, panel: Mapping[str, Any], prom: Prometheus) -> None:
    """Grafana's horizontal bar gauge: the name above each bar, the value at its end."""
    _blank(ax)
    config = field_config(panel)
    series = sorted(
        (legend(t["legendFormat"], r["metric"]), float(r["value"][1]))
        for t in panel["targets"]
        for r in prom.instant(t)
    )
    if not series:
        ax.text(0.5, 0.5, "Sin datos", ha="center", color=MUTED)
        return
    lo, hi = config.get("min", 0), config.get("max", 1)
    slot = 1 / len(series)
    for i, (name, value) in enumerate(series):
        y = 1 - (i + 1) * slot
        tint = threshold_color(value, config["thresholds"])
        share = (min(max(value, lo), hi) - lo) / (hi - lo)
        ax.text(0.0, y + slot * 0.78, name, color=TEXT, fontsize=8.5, va="center")
        ax.add_patch(plt_rect((0.0, y + slot * 0.12), 0.84, slot * 0.45, "#22252b"))
        if share > 0:
            ax.add_patch(plt_rect((0.0, y + slot * 0.12), 0.84 * share, slot * 0.45, tint))
        label = fmt_value(value, config["unit"], config.get("decimals"))
        ax.text(
            0.86, y + slot * 0.34, label, color=tint, fontsize=10, fontweight="bold", va="center"
        )


def draw_timeseries(
    ax: Any, panel: Mapping[str, Any], prom: Prometheus, start: float, end: float
) -> None:
    config = field_config(panel)
    ax.set_facecolor(PANEL)
    for spine in ax.spines.values():
        spine.set_color(GRID)
    i = 0
    for target in panel["targets"]:
        for r in prom.range(target, start, end):
            xs = [datetime.fromtimestamp(float(t), UTC) for t, _ in r["values"]]
            ys = [float(v) for _, v in r["values"]]
            ax.plot(
                xs,
                ys,
                color=PALETTE[i % len(PALETTE)],
                linewidth=1.4,
                label=legend(target["legendFormat"], r["metric"]),
            )
            i += 1
    custom = config.get("custom", {})
    scale = custom.get("scaleDistribution", {})
    if scale.get("type") == "symlog":
        ax.set_yscale("symlog", linthresh=scale.get("linearThreshold", 1))
    if custom.get("thresholdsStyle", {}).get("mode") in ("dashed", "line", "line+area"):
        for step in config["thresholds"]["steps"][1:]:
            ax.axhline(step["value"], color=color(step["color"]), linestyle="--", linewidth=0.9)
    unit = config["unit"]
    if unit == "percentunit":
        ax.yaxis.set_major_formatter(lambda v, _: f"{v * 100:.2f} %")
    elif unit.startswith("suffix:"):
        ax.yaxis.set_major_formatter(lambda v, _: f"{v:g}{unit[7:]}")
    import matplotlib.dates as mdates

    ax.xaxis.set_major_locator(mdates.AutoDateLocator(minticks=4, maxticks=8))
    short = end - start < 1800
    ax.xaxis.set_major_formatter(
        mdates.DateFormatter("%H:%M:%S" if short else "%H:%M", tz=_bogota())
    )
    ax.tick_params(colors=TEXT, labelsize=8)
    ax.grid(color=GRID, linewidth=0.6)
    if i:
        ax.legend(
            fontsize=7.5,
            loc="center left",
            bbox_to_anchor=(1.0, 0.5),
            facecolor=PANEL,
            edgecolor=GRID,
            labelcolor=TEXT,
        )


def _bogota() -> Any:
    from zoneinfo import ZoneInfo

    return ZoneInfo("America/Bogota")


# -- main -------------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--prometheus", help="draw from this Prometheus instead of a local stack")
    parser.add_argument(
        "--duration", type=float, default=150.0, help="seconds the stack runs before drawing"
    )
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        print("matplotlib is needed: .venv/bin/pip install matplotlib", file=sys.stderr)
        return 2
    variables = {"prestador": ".*", "datasource": "prometheus"}
    if args.prometheus:
        note = f"Datos de {args.prometheus}, {datetime.now(_bogota()):%Y-%m-%d %H:%M} (Bogotá)."
        draw_board(Prometheus(args.prometheus, variables), args.out, started=None, note=note)
        print(args.out)
        return 0
    with tempfile.TemporaryDirectory(prefix="scd-board-") as tmp, stack(Path(tmp)) as url:
        started = time.time()
        print(f"stack up: Prometheus at {url}; drawing in {args.duration:.0f} s", flush=True)
        time.sleep(args.duration)
        when = datetime.now(_bogota())
        minutes = (time.time() - started) / 60
        note = (
            f"Datos reales: simulador de prestadores + scd-monitor (vantage bogota) + Prometheus, "
            f"{when:%Y-%m-%d %H:%M} (Bogotá), {minutes:.0f} min después de arrancar el monitor. "
            "Dibujado con matplotlib a partir de las consultas del tablero de Grafana "
            "(scripts/render_board.py).\nLa cobertura del mes es casi nula porque el monitor "
            "lleva minutos midiendo en un mes ya avanzado: ese tiempo es desconocido, no se "
            "cobra al prestador."
        )
        draw_board(Prometheus(url, variables), args.out, started=started, note=note)
    print(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
