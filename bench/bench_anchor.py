#!/usr/bin/env python3
"""Side by side: scd-monitor against Prometheus' blackbox_exporter, same fleet, one run.

One simulated fleet of N healthy endpoints (plain HTTP, or HTTPS with ``--tls``: the
simulator's CA) serves both arms, which run **alternately** (never at the same time) over
windows of the same length after the same warm-up; the order flips every repeat
(A B, B A, A B, ...):

* arm A, ``daemon``: ``scd-monitor run`` (log level ``info``, SQLite store, default
  settings) with a catalog of N plain ``http`` checks (the simulator's, without its JSON
  assertions) every ``--interval``. Probes = results in the store that *ended* in the
  window (exact); failures by error kind from the same rows; scheduling lag from the
  ``scd_scheduler_lag_seconds`` histogram (delta of the scrapes around the window);
  misfires and skipped runs from their counters; CPU of the daemon and of its child
  processes (SLA worker) from ``/proc``.
* arm B, ``blackbox``: ``/usr/bin/prometheus-blackbox-exporter`` with an ``http_2xx``
  module, driven by ``/usr/bin/prometheus`` scraping N targets every ``--interval``
  through ``/probe?module=http_2xx&target=...`` (the multi-target exporter pattern,
  ``file_sd`` + relabelling). Probes = ``count_over_time(up[window])`` at the window's
  end (scrapes that *started* in the window; Prometheus' own TSDB); failures =
  ``up == 0`` or ``probe_success == 0`` in the window. CPU of the exporter and of
  Prometheus apart.

CPU ms per probe for each arm and the ratios daemon / exporter and daemon / (exporter +
Prometheus), medians over ``--repeat``. ``--burn`` keeps one core busy with a spinning
process during each arm's warm-up and window. ``--arms daemon`` runs arm A only (the
scheduler targets at 10,000 and 20,000 checks). Everything on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.parse
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_scheduler import (  # the sibling module, found through sys.path
    DAEMON_EXIT_BOUND,
    LOOPBACK,
    READY_TIMEOUT,
    RESULTS,
    SIM_EXIT_BOUND,
    START_TIMEOUT,
    RunConfig,
    children_cpu,
    clean_env,
    code_version,
    cpu_pressure,
    daemon_command,
    family_peak_rss,
    free_port,
    http_get,
    loadavg,
    machine,
    measure,
    median_or_none,
    metric_deltas,
    parse_metrics,
    proc_cpu,
    proc_status,
    read_ready_line,
    self_cpu,
    sleep_watching,
    stop_process,
    system_cpu,
    wait_for_log,
    window_results,
)

BLACKBOX = "/usr/bin/prometheus-blackbox-exporter"
PROMETHEUS = "/usr/bin/prometheus"
SCHEDULER = Path(__file__).resolve().parent / "bench_scheduler.py"


# -- helpers -------------------------------------------------------------------------


def log(message: str) -> None:
    print(f"[{datetime.now(UTC):%H:%M:%S}] {message}", file=sys.stderr, flush=True)


def other_processes(top: int = 6) -> list[dict[str, Any]]:
    """The busiest processes over 1 s (pid, CPU cores, command): the load beside a run."""

    def snapshot() -> dict[int, tuple[float, str]]:
        out: dict[int, tuple[float, str]] = {}
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                cpu = proc_cpu(int(entry.name))
                cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except (OSError, ValueError, IndexError):
                continue
            out[int(entry.name)] = (cpu, cmd.strip()[:120])
        return out

    a = snapshot()
    time.sleep(1.0)
    b = snapshot()
    busy = sorted(
        ((b[pid][0] - a[pid][0], pid) for pid in b if pid in a and b[pid][0] - a[pid][0] > 0.02),
        reverse=True,
    )
    return [{"pid": pid, "cores": round(c, 2), "cmd": b[pid][1]} for c, pid in busy[:top]]


def lag_histogram(text: str) -> dict[float, float]:
    """``scd_scheduler_lag_seconds_bucket`` by upper bound (cumulative counts)."""
    out: dict[float, float] = {}
    for line in text.splitlines():
        if line.startswith("scd_scheduler_lag_seconds_bucket{"):
            labels, _, value = line.rpartition(" ")
            le = labels.split('le="', 1)[1].split('"', 1)[0]
            bound = math.inf if le == "+Inf" else float(le)
            out[bound] = out.get(bound, 0.0) + float(value)
    return out


def lag_figures(h0: dict[float, float], h1: dict[float, float]) -> dict[str, Any]:
    """Lag quantiles (upper bucket bound) and the share over 1 s, from two histograms."""
    bounds = sorted(h1)
    delta = [(b, h1[b] - h0.get(b, 0.0)) for b in bounds]
    total = delta[-1][1] if delta else 0.0
    out: dict[str, Any] = {"lag_observations": total}
    for q in (50, 90, 99):
        out[f"lag_p{q}_le_s"] = next((b for b, c in delta if total and c >= total * q / 100), None)
    under_1s = next((c for b, c in delta if b == 1.0), None)
    out["lag_over_1s"] = total - under_1s if under_1s is not None else None
    out["lag_over_1s_pct"] = (
        round((total - under_1s) / total * 100, 3) if under_1s is not None and total else None
    )
    return out


@dataclass
class Fleet:
    proc: subprocess.Popen[bytes]
    catalog: Path
    ca_file: Path
    urls: list[str]
    log: IO[bytes]


def start_fleet(n: int, tls: bool, workdir: Path) -> Fleet:
    """The simulator (bench_scheduler's commands); its catalog's URLs, CA file."""
    sim_catalog = workdir / "sim-catalog.yaml"
    if tls:
        cmd = [sys.executable, str(SCHEDULER), "--serve-fleet", str(n)]
    else:
        cmd = [sys.executable, "-m", "scd_simulator", "--fleet", str(n)]
    cmd += ["--workdir", str(workdir / "sim"), "--catalog-out", str(sim_catalog)]
    err = (workdir / "simulator.log").open("wb")
    proc = subprocess.Popen(
        cmd,
        stdout=subprocess.PIPE,
        stderr=err,
        stdin=subprocess.DEVNULL,
        env=clean_env({"SCD_MONITOR_LOG_FORMAT": "json"}),
    )
    ready = read_ready_line(proc, READY_TIMEOUT)
    catalog = Path(ready["catalog"])
    data = yaml.safe_load(catalog.read_text(encoding="utf-8"))
    urls = [c["url"] for p in data["providers"] for s in p["services"] for c in s["checks"]]
    return Fleet(proc, catalog, Path(ready["ca_file"]), urls, err)


def write_plain_catalog(source: Path, dest: Path, interval: float, timeout: float) -> int:
    """The simulator's catalog without JSON assertions: N plain ``http`` checks."""
    data = yaml.safe_load(source.read_text(encoding="utf-8"))
    data["defaults"] = {"interval": f"{interval:g}s", "timeout": f"{timeout:g}s"}
    n = 0
    for provider in data["providers"]:
        for service in provider["services"]:
            for check in service["checks"]:
                check.pop("json", None)
                n += 1
    dest.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return n


def start_burner() -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-c", "while True: pass"], stdin=subprocess.DEVNULL)


def store_counts(db: Path, wall0: float, wall1: float) -> dict[str, Any]:
    """Results in the store that ended in ``[wall0, wall1)``, failures by kind."""
    ended = failed = 0
    kinds: dict[str, int] = {}
    durations: list[float] = []
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        rows = con.execute(
            "SELECT started_at, duration_seconds, ok, error_kind FROM scd_probe_results"
        ).fetchall()
    finally:
        con.close()
    for started, duration, ok, kind in rows:
        t0 = datetime.fromisoformat(str(started)).replace(tzinfo=UTC).timestamp()
        end = t0 + float(duration)
        if wall0 <= end < wall1:
            ended += 1
            durations.append(float(duration))
            if not ok:
                failed += 1
                kinds[str(kind)] = kinds.get(str(kind), 0) + 1
    durations.sort()
    return {
        "probes_in_window": ended,
        "failures_in_window": failed,
        "error_kinds_in_window": kinds,
        "results_total": len(rows),
        "duration_p99_ms": round(durations[int(0.99 * (len(durations) - 1))] * 1000, 1)
        if durations
        else None,
    }


# -- arm A: the daemon ---------------------------------------------------------------


@dataclass
class Options:
    n: int
    tls: bool
    interval: float
    timeout: float
    warmup: float
    window: float
    settle: float
    burn: bool
    keep: bool
    daemon_env: dict[str, str] = field(default_factory=dict)


def run_daemon(opt: Options, fleet: Fleet, workdir: Path) -> dict[str, Any]:
    catalog = workdir / "catalog.yaml"
    checks = write_plain_catalog(fleet.catalog, catalog, opt.interval, opt.timeout)
    db = workdir / "bench.db"
    port = free_port()
    cmd = daemon_command(catalog, port, db)
    env = clean_env({"SCD_MONITOR_LOG_FORMAT": "json", "SCD_MONITOR_LOG_LEVEL": "info"})
    env.update(opt.daemon_env)
    out: dict[str, Any] = {
        "arm": "daemon",
        "checks": checks,
        "command": cmd,
        "daemon_env": opt.daemon_env,
    }
    daemon_log = workdir / "daemon.log"
    burner: subprocess.Popen[bytes] | None = None
    with daemon_log.open("wb") as err:
        t_spawn = time.monotonic()
        daemon = subprocess.Popen(
            cmd, stdout=err, stderr=err, stdin=subprocess.DEVNULL, env=env, cwd=workdir
        )
        try:
            t_up = wait_for_log(daemon_log, '"daemon.started"', daemon, START_TIMEOUT)
            out["start_s"] = round(t_up - t_spawn, 2)
            if opt.burn:
                burner = start_burner()
            sleep_watching(daemon, fleet.proc, opt.warmup)
            cfg = RunConfig(
                n=opt.n,
                interval=opt.interval,
                timeout=opt.timeout,
                warmup=opt.warmup,
                measure=opt.window,
                tls=opt.tls,
                max_concurrency=None,
                scrape_every=15.0,  # a Prometheus scrape every 15 s, as deployed
                settle=opt.settle,
                keep=opt.keep,
            )
            _s, body0, _t = http_get(port, "/metrics")
            hist0 = lag_histogram(body0.decode())
            burn0 = proc_cpu(burner.pid) if burner else 0.0
            w = measure(cfg, daemon, fleet.proc, port)
            burn1 = proc_cpu(burner.pid) if burner else 0.0
            _s, body1, _t = http_get(port, "/metrics")
            text1 = body1.decode()
            out.update({k: v for k, v in window_results(w).items() if k != "timeline"})
            out["burner_cores"] = round((burn1 - burn0) / out["window_s"], 3) if burner else None
            if burner is not None and out.get("other_busy_cores") is not None:
                out["other_busy_cores"] = round(out["other_busy_cores"] - out["burner_cores"], 3)
            metrics1 = parse_metrics(text1)
            out["metrics_delta"] = metric_deltas(w, metrics1)
            out.update(lag_figures(hist0, lag_histogram(text1)))
            status = proc_status(daemon.pid)
            out["peak_rss_bytes"] = status.get("VmHWM")
            out["family_peak_rss_bytes"] = family_peak_rss(daemon.pid)
            out["wall0"], out["wall1"] = w.wall0, w.wall1
        finally:
            if burner is not None:
                stop_process(burner, 5.0)
            code, seconds, killed = stop_process(daemon, DAEMON_EXIT_BOUND)
            out["exit"] = {"code": code, "seconds": round(seconds, 2), "killed": killed}
    if "wall0" in out:
        out.update(store_counts(db, out["wall0"], out["wall1"]))
        probes = out["probes_in_window"]
        own = out["daemon_cpu_s"]
        kids = out["daemon_children_cpu_s"]
        out["probes_per_s"] = round(probes / out["window_s"], 2)
        out["expected_probes_per_s"] = round(opt.n / opt.interval, 2)
        out["rate_ratio"] = round(out["probes_per_s"] / (opt.n / opt.interval), 4)
        if probes:
            out["cpu_ms_per_probe"] = round((own + kids) / probes * 1000, 3)
            out["cpu_ms_per_probe_daemon_only"] = round(own / probes * 1000, 3)
            out["simulator_cpu_ms_per_probe"] = round(out["simulator_cpu_s"] / probes * 1000, 3)
        d = out["metrics_delta"]
        out["misfires"] = int(d.get("scd_scheduler_misfires_total") or 0)
        out["skipped"] = int(d.get("scd_scheduler_skipped_runs_total") or 0)
        out["probes_total_delta"] = d.get("scd_probes_total")
    return out


# -- arm B: blackbox_exporter driven by Prometheus -----------------------------------


def prom_query(port: int, query: str, at: float) -> float:
    """The sum of an instant query's vector at time ``at`` (0 when empty)."""
    path = "/api/v1/query?" + urllib.parse.urlencode({"query": query, "time": f"{at:.3f}"})
    status, body, _ = http_get(port, path, timeout=60.0)
    if status != 200:
        raise RuntimeError(f"prometheus query {query!r}: HTTP {status} {body[:200]!r}")
    data = json.loads(body)["data"]["result"]
    return sum(float(x["value"][1]) for x in data)


def prom_interval_p99(port: int, interval: float) -> float | None:
    """Prometheus' own 0.99 quantile of the time between two scrapes of a target."""
    _s, body, _t = http_get(port, "/metrics")
    for line in body.decode().splitlines():
        if line.startswith("prometheus_target_interval_length_seconds{") and (
            f'interval="{interval:g}s"' in line and 'quantile="0.99"' in line
        ):
            value = float(line.rpartition(" ")[2])
            return None if math.isnan(value) else value
    return None


def wait_http(port: int, path: str, proc: subprocess.Popen[bytes], timeout: float) -> float:
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if proc.poll() is not None:
            raise RuntimeError(f"{path}: process exited with code {proc.returncode}")
        try:
            if http_get(port, path, timeout=5.0)[0] == 200:
                return time.monotonic() - t0
        except OSError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{path} not ready within {timeout:.0f}s")


def run_blackbox(opt: Options, fleet: Fleet, workdir: Path) -> dict[str, Any]:
    bb_port, prom_port = free_port(), free_port()
    timeout = f"{opt.timeout:g}s"
    http_cfg: dict[str, Any] = {
        "valid_status_codes": [200],
        "preferred_ip_protocol": "ip4",
        "ip_protocol_fallback": False,
    }
    if opt.tls:
        http_cfg["tls_config"] = {"ca_file": str(fleet.ca_file)}
    bb_cfg = {"modules": {"http_2xx": {"prober": "http", "timeout": timeout, "http": http_cfg}}}
    (workdir / "blackbox.yml").write_text(yaml.safe_dump(bb_cfg), encoding="utf-8")
    (workdir / "targets.json").write_text(
        json.dumps([{"targets": fleet.urls, "labels": {"fleet": "sim"}}]), encoding="utf-8"
    )
    prom_cfg = {
        "global": {"scrape_interval": f"{opt.interval:g}s", "scrape_timeout": timeout},
        "scrape_configs": [
            {
                "job_name": "blackbox",
                "metrics_path": "/probe",
                "params": {"module": ["http_2xx"]},
                "file_sd_configs": [{"files": [str(workdir / "targets.json")]}],
                "relabel_configs": [
                    {"source_labels": ["__address__"], "target_label": "__param_target"},
                    {"source_labels": ["__param_target"], "target_label": "instance"},
                    {"target_label": "__address__", "replacement": f"{LOOPBACK}:{bb_port}"},
                ],
            }
        ],
    }
    (workdir / "prometheus.yml").write_text(yaml.safe_dump(prom_cfg), encoding="utf-8")
    bb_cmd = [
        BLACKBOX,
        f"--config.file={workdir / 'blackbox.yml'}",
        f"--web.listen-address={LOOPBACK}:{bb_port}",
    ]
    prom_cmd = [
        PROMETHEUS,
        f"--config.file={workdir / 'prometheus.yml'}",
        f"--storage.tsdb.path={workdir / 'tsdb'}",
        f"--web.listen-address={LOOPBACK}:{prom_port}",
    ]
    out: dict[str, Any] = {"arm": "blackbox", "commands": [bb_cmd, prom_cmd]}
    burner: subprocess.Popen[bytes] | None = None
    procs: list[subprocess.Popen[bytes]] = []
    with (
        (workdir / "blackbox.log").open("wb") as bb_log,
        (workdir / "prometheus.log").open("wb") as prom_log,
    ):
        try:
            bb = subprocess.Popen(bb_cmd, stdout=bb_log, stderr=bb_log, stdin=subprocess.DEVNULL)
            procs.append(bb)
            wait_http(bb_port, "/metrics", bb, 30.0)
            t_spawn = time.monotonic()
            prom = subprocess.Popen(
                prom_cmd, stdout=prom_log, stderr=prom_log, stdin=subprocess.DEVNULL, cwd=workdir
            )
            procs.append(prom)
            wait_http(prom_port, "/-/ready", prom, START_TIMEOUT)
            out["start_s"] = round(time.monotonic() - t_spawn, 2)
            if opt.burn:
                burner = start_burner()
            sleep_watching(bb, fleet.proc, opt.warmup + opt.settle)
            sys0, psi0, self0 = system_cpu(), cpu_pressure(), self_cpu()
            bb0, prom0, sim0 = proc_cpu(bb.pid), proc_cpu(prom.pid), proc_cpu(fleet.proc.pid)
            burn0 = proc_cpu(burner.pid) if burner else 0.0
            kids0 = children_cpu(prom.pid)[0] + children_cpu(bb.pid)[0]
            wall0 = time.time()
            sleep_watching(prom, fleet.proc, opt.window)
            wall1 = time.time()
            bb1, prom1, sim1 = proc_cpu(bb.pid), proc_cpu(prom.pid), proc_cpu(fleet.proc.pid)
            burn1 = proc_cpu(burner.pid) if burner else 0.0
            kids1 = children_cpu(prom.pid)[0] + children_cpu(bb.pid)[0]
            sys1, psi1, self1 = system_cpu(), cpu_pressure(), self_cpu()
            if burner is not None:
                stop_process(burner, 5.0)
                burner = None
            span = wall1 - wall0
            # Let the last scrapes of the window finish (each is stamped at its start).
            time.sleep(min(opt.timeout, 10.0) + 1.0)
            rng = f"[{int(span * 1000)}ms]"
            scrapes = prom_query(prom_port, f'count_over_time(up{{job="blackbox"}}{rng})', wall1)
            up_ok = prom_query(prom_port, f'sum_over_time(up{{job="blackbox"}}{rng})', wall1)
            success = prom_query(prom_port, f"sum_over_time(probe_success{rng})", wall1)
            slowest = prom_query(
                prom_port,
                f'max(max_over_time(probe_duration_seconds{{job="blackbox"}}{rng}))',
                wall1,
            )
            jitter = prom_interval_p99(prom_port, opt.interval)
            busy, total = sys1[0] - sys0[0], sys1[1] - sys0[1]
            cores = busy / total * (os.cpu_count() or 1) if total else 0.0
            bb_cpu, prom_cpu, sim_cpu = bb1 - bb0, prom1 - prom0, sim1 - sim0
            out.update(
                {
                    "window_s": round(span, 2),
                    "probes_in_window": int(scrapes),
                    "probes_per_s": round(scrapes / span, 2),
                    "expected_probes_per_s": round(opt.n / opt.interval, 2),
                    "rate_ratio": round(scrapes / span / (opt.n / opt.interval), 4),
                    "scrape_failures_in_window": int(scrapes - up_ok),
                    "probe_failures_in_window": int(up_ok - success),
                    "failures_in_window": int(scrapes - success),
                    "duration_max_ms": round(slowest * 1000, 1),
                    "prometheus_interval_p99_s": round(jitter, 4) if jitter else None,
                    "exporter_cpu_s": round(bb_cpu, 2),
                    "prometheus_cpu_s": round(prom_cpu, 2),
                    "children_cpu_s": round(kids1 - kids0, 2),
                    "simulator_cpu_s": round(sim_cpu, 2),
                    "harness_cpu_s": round(self1 - self0, 2),
                    "burner_cores": round((burn1 - burn0) / span, 3) if opt.burn else None,
                    "exporter_peak_rss_bytes": proc_status(bb.pid).get("VmHWM"),
                    "prometheus_peak_rss_bytes": proc_status(prom.pid).get("VmHWM"),
                    "machine_busy_cores": round(cores, 3),
                    "other_busy_cores": round(
                        cores
                        - (bb_cpu + prom_cpu + sim_cpu + (self1 - self0) + (burn1 - burn0)) / span,
                        3,
                    ),
                    "cpu_pressure_some_pct": round((psi1 - psi0) / 1e6 / span * 100, 1)
                    if psi0 is not None and psi1 is not None
                    else None,
                }
            )
            if scrapes:
                out["cpu_ms_per_probe"] = round(bb_cpu / scrapes * 1000, 3)
                out["cpu_ms_per_probe_with_prometheus"] = round(
                    (bb_cpu + prom_cpu) / scrapes * 1000, 3
                )
                out["prometheus_cpu_ms_per_probe"] = round(prom_cpu / scrapes * 1000, 3)
                out["simulator_cpu_ms_per_probe"] = round(sim_cpu / scrapes * 1000, 3)
        finally:
            if burner is not None:
                stop_process(burner, 5.0)
            for proc in reversed(procs):
                stop_process(proc, 30.0)
    return out


# -- main ----------------------------------------------------------------------------


def run_arm(arm: str, opt: Options, fleet: Fleet, root: Path, label: str) -> dict[str, Any]:
    workdir = Path(tempfile.mkdtemp(prefix=f"{label}-{arm}-", dir=root))
    log(f"  {arm}: start ({workdir.name})")
    before = {"loadavg": loadavg(), "busiest": other_processes()}
    try:
        r = (
            run_daemon(opt, fleet, workdir)
            if arm == "daemon"
            else run_blackbox(opt, fleet, workdir)
        )
    except (RuntimeError, OSError) as exc:
        log(f"  {arm}: failed: {exc}")
        return {"arm": arm, "error": str(exc), "workdir": str(workdir)}
    r["before"] = before
    r["loadavg_after"] = loadavg()
    log(
        f"  {arm}: {r.get('probes_per_s')} probes/s (expected {r.get('expected_probes_per_s')}), "
        f"{r.get('cpu_ms_per_probe')} CPU ms/probe, failures {r.get('failures_in_window')}, "
        f"other load {r.get('other_busy_cores')} cores"
    )
    return r


SUMMARY = (
    "cpu_ms_per_probe",
    "cpu_ms_per_probe_daemon_only",
    "cpu_ms_per_probe_with_prometheus",
    "prometheus_cpu_ms_per_probe",
    "simulator_cpu_ms_per_probe",
    "probes_per_s",
    "rate_ratio",
    "failures_in_window",
    "misfires",
    "skipped",
    "lag_p99_le_s",
    "lag_over_1s_pct",
    "prometheus_interval_p99_s",
    "peak_rss_bytes",
    "family_peak_rss_bytes",
    "exporter_peak_rss_bytes",
    "prometheus_peak_rss_bytes",
    "other_busy_cores",
    "cpu_pressure_some_pct",
    "burner_cores",
)


def summarise(runs: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for arm in ("daemon", "blackbox"):
        mine = [r for r in runs if r["arm"] == arm and "error" not in r]
        out[arm] = {
            key: {
                "median": median_or_none([r.get(key) for r in mine]),
                "values": [r.get(key) for r in mine],
            }
            for key in SUMMARY
            if any(r.get(key) is not None for r in mine)
        }
        out[arm]["runs"] = len(mine)
    ratios = []
    ratios_prom = []
    pairs = [r for r in runs if "error" not in r]
    by_rep: dict[int, dict[str, dict[str, Any]]] = {}
    for r in pairs:
        by_rep.setdefault(int(r["repeat"]), {})[r["arm"]] = r
    for rep in by_rep.values():
        if "daemon" in rep and "blackbox" in rep and rep["blackbox"].get("cpu_ms_per_probe"):
            a, b = rep["daemon"], rep["blackbox"]
            ratios.append(round(a["cpu_ms_per_probe"] / b["cpu_ms_per_probe"], 3))
            ratios_prom.append(
                round(a["cpu_ms_per_probe"] / b["cpu_ms_per_probe_with_prometheus"], 3)
            )
    out["ratio_daemon_to_exporter"] = {"median": median_or_none(ratios), "values": ratios}
    out["ratio_daemon_to_exporter_plus_prometheus"] = {
        "median": median_or_none(ratios_prom),
        "values": ratios_prom,
    }
    dm = out["daemon"].get("cpu_ms_per_probe", {}).get("median")
    bm = out["blackbox"].get("cpu_ms_per_probe", {}).get("median")
    out["ratio_of_medians"] = round(dm / bm, 3) if dm and bm else None
    return out


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("--n", type=int, help="fleet size (default 5000; --quick: 200)")
    p.add_argument("--tls", action="store_true", help="HTTPS fleet (the simulator's CA)")
    p.add_argument("--burn", action="store_true", help="keep one core busy during each arm")
    p.add_argument("--window", type=float, help="seconds measured per arm (default 90)")
    p.add_argument("--warmup", type=float, help="seconds before the window (default 1 interval)")
    p.add_argument("--interval", type=float, help="probe interval, s (default 30)")
    p.add_argument("--timeout", type=float, default=10.0, help="probe timeout, s (default 10)")
    p.add_argument("--settle", type=float, default=5.0, help="after the opening scrape (5 s)")
    p.add_argument("--repeat", type=int, help="pairs of arms (default 3); medians reported")
    p.add_argument(
        "--arms",
        choices=("both", "daemon", "blackbox"),
        default="both",
        help="'daemon' for the scheduler targets alone (default both)",
    )
    p.add_argument(
        "--quick",
        action="store_true",
        help="smoke test: N 200, interval 10 s, warm-up 10 s, window 20 s, 1 repeat",
    )
    p.add_argument("--keep", action="store_true", help="keep the run directory")
    p.add_argument(
        "--daemon-env",
        action="append",
        default=[],
        metavar="SCD_MONITOR_X=V",
        help="a daemon setting (repeatable), e.g. SCD_MONITOR_PROBE_PROCESSES=0",
    )
    p.add_argument("--out", type=Path, help="JSON results (default bench/results/anchor-<time>)")
    args = p.parse_args(argv)
    q = args.quick
    args.n = args.n or (200 if q else 5000)
    args.interval = args.interval or (10.0 if q else 30.0)
    args.timeout = min(args.timeout, 5.0) if q else args.timeout
    args.warmup = args.warmup if args.warmup is not None else args.interval
    args.window = args.window or (20.0 if q else 90.0)
    args.repeat = args.repeat or (1 if q else 3)
    if not 0 < args.timeout < args.interval or args.n < 1 or args.repeat < 1:
        p.error("need 0 < --timeout < --interval, --n >= 1 and --repeat >= 1")
    if args.arms != "daemon":
        for exe in (BLACKBOX, PROMETHEUS):
            if not Path(exe).exists():
                p.error(
                    f"{exe} missing: DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "
                    "--no-install-recommends prometheus prometheus-blackbox-exporter"
                )
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    opt = Options(
        n=args.n,
        tls=args.tls,
        interval=args.interval,
        timeout=args.timeout,
        warmup=args.warmup,
        window=args.window,
        settle=args.settle,
        burn=args.burn,
        keep=args.keep,
        daemon_env=dict(item.split("=", 1) for item in args.daemon_env),
    )
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    label = f"anchor-{opt.n}{'-tls' if opt.tls else ''}"
    out = (args.out or RESULTS / f"{label}-{stamp}.json").resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    arms = ["daemon", "blackbox"] if args.arms == "both" else [args.arms]
    report: dict[str, Any] = {
        "benchmark": "anchor",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "argv": sys.argv,
        "options": vars(opt),
        "machine": machine(),
        "code": code_version(),
        "blackbox_version": _version([BLACKBOX, "--version"]),
        "prometheus_version": _version([PROMETHEUS, "--version"]),
        "loadavg_start": loadavg(),
        "busiest_start": other_processes(),
        "runs": [],
    }
    root = Path(tempfile.mkdtemp(prefix=f"scd-{label}-"))
    fleet = start_fleet(opt.n, opt.tls, root)
    log(f"fleet of {len(fleet.urls)} up ({'HTTPS' if opt.tls else 'HTTP'}); arms {arms}")
    failed = False
    try:
        for rep in range(1, args.repeat + 1):
            order = arms if rep % 2 else list(reversed(arms))
            log(f"repeat {rep}/{args.repeat}: {' then '.join(order)}")
            for arm in order:
                r = run_arm(arm, opt, fleet, root, label)
                r["repeat"] = rep
                failed |= "error" in r
                report["runs"].append(r)
                out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    finally:
        stop_process(fleet.proc, SIM_EXIT_BOUND)
        fleet.log.close()
    report["summary"] = summarise(report["runs"])
    report["loadavg_end"] = loadavg()
    out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print_summary(report["summary"], opt)
    if args.keep or failed:
        log(f"run directory kept: {root}")
    else:
        subprocess.run(["rm", "-rf", "--", str(root)], check=False)
    print(f"results: {out}")
    return 1 if failed else 0


def _version(cmd: list[str]) -> str | None:
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return (done.stdout or done.stderr).splitlines()[0] if (done.stdout or done.stderr) else None


def print_summary(s: dict[str, Any], opt: Options) -> None:
    def med(arm: str, key: str, digits: int = 2, scale: float = 1.0) -> str:
        v = s.get(arm, {}).get(key)
        if not v or v["median"] is None:
            return "-"
        vals = ", ".join(f"{x * scale:.{digits}f}" for x in v["values"] if x is not None)
        return f"{v['median'] * scale:.{digits}f} ({vals})"

    print(
        f"N = {opt.n} {'HTTPS' if opt.tls else 'HTTP'}, interval {opt.interval:g} s, "
        f"window {opt.window:g} s, burn {opt.burn}"
    )
    rows = (
        ("CPU ms / probe (daemon + children | exporter)", "cpu_ms_per_probe", 3),
        ("CPU ms / probe, daemon alone", "cpu_ms_per_probe_daemon_only", 3),
        ("CPU ms / probe, exporter + Prometheus", "cpu_ms_per_probe_with_prometheus", 3),
        ("Prometheus CPU ms / probe", "prometheus_cpu_ms_per_probe", 3),
        ("simulator CPU ms / probe", "simulator_cpu_ms_per_probe", 3),
        ("probes/s", "probes_per_s", 2),
        ("rate ratio", "rate_ratio", 4),
        ("failures in window", "failures_in_window", 0),
        ("misfires", "misfires", 0),
        ("skipped", "skipped", 0),
        ("lag p99 <= (bucket), s", "lag_p99_le_s", 3),
        ("lag > 1 s, %", "lag_over_1s_pct", 3),
        ("Prometheus interval p99, s", "prometheus_interval_p99_s", 3),
        ("other load, cores", "other_busy_cores", 2),
        ("CPU pressure, %", "cpu_pressure_some_pct", 1),
        ("burner, cores", "burner_cores", 2),
    )
    for label, key, digits in rows:
        print(
            f"  {label:48s} daemon {med('daemon', key, digits):28s} "
            f"blackbox {med('blackbox', key, digits)}"
        )
    for label, key, scale in (
        ("peak RSS MiB", "peak_rss_bytes", 2**-20),
        ("peak RSS MiB, with child processes", "family_peak_rss_bytes", 2**-20),
        ("exporter / Prometheus peak RSS MiB", "exporter_peak_rss_bytes", 2**-20),
    ):
        print(f"  {label:48s} {med('daemon', key, 0, scale)} {med('blackbox', key, 0, scale)}")
    print(f"  Prometheus peak RSS MiB {med('blackbox', 'prometheus_peak_rss_bytes', 0, 2**-20)}")
    for key in ("ratio_daemon_to_exporter", "ratio_daemon_to_exporter_plus_prometheus"):
        print(f"  {key}: median {s[key]['median']} {s[key]['values']}")


if __name__ == "__main__":
    sys.exit(main())
