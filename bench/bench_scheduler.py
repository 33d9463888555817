#!/usr/bin/env python3
"""Scheduling benchmark: one daemon probing N simulated endpoints on loopback.

For each N: start the fleet simulator (a subprocess), wait for its ready line, write a
catalog with the requested interval, start ``scd-monitor run`` (a subprocess, fresh
SQLite database in a temporary directory), let it warm up, then measure over a window:

* sustained probes/s (``probe.finished`` lines that ended in the window), and the
  ratio to the expected rate N / interval;
* scheduling lag p50 / p99 / max, exact, from ``lag_s`` of the probes that *started* in
  the window (start = log timestamp - ``duration_s``);
* failures and their error kinds;
* CPU seconds per 1,000 probes of the daemon and of the simulator (utime + stime from
  ``/proc/<pid>/stat`` over the window), the daemon's main-thread (event loop) share;
* peak RSS (``VmHWM``) of both processes at the end of the window;
* misfires, skipped runs, store pending / written / dropped (``/metrics``);
* whether the daemon exits 0 on SIGTERM, and how fast.

Both processes write their logs straight to files (no pipe for the harness to drain),
parsed after the run. Everything listens on and connects to 127.0.0.1 only. Each run
stops itself: every wait is bounded. See ``bench/README.md``.

``--serve-fleet`` is an internal mode: the simulator with a TLS fleet (the CLI's
``simulate`` has no option for that), started by the benchmark itself.
"""

from __future__ import annotations

import argparse
import hashlib
import http.client
import importlib.metadata
import itertools
import json
import os
import platform
import queue
import re
import resource
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
LOOPBACK = "127.0.0.1"
CLK_TCK = os.sysconf("SC_CLK_TCK")

READY_TIMEOUT = 120.0
"""Seconds the simulator may take to print its ready line."""
START_TIMEOUT = 180.0
"""Seconds the daemon may take to log ``daemon.started`` (catalog load, scheduling)."""
DAEMON_EXIT_BOUND = 45.0
"""shutdown_grace (15 s) + writer close (10 s) + slack."""
SIM_EXIT_BOUND = 15.0
SAMPLE_EVERY = 1.0


# -- /proc ---------------------------------------------------------------------------


def _stat(path: str) -> list[str]:
    """Fields 3… of a ``stat`` file (``fields[0]`` is field 3, the state)."""
    text = Path(path).read_text()
    return text[text.rindex(")") + 2 :].split()


def proc_cpu(pid: int, tid: int | None = None) -> float:
    """utime + stime of a process (all its threads, dead ones too) or of one thread."""
    fields = _stat(f"/proc/{pid}/task/{tid}/stat" if tid is not None else f"/proc/{pid}/stat")
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # fields 14 and 15


def children_cpu(pid: int) -> tuple[float, int]:
    """CPU of a process's descendants (live ones, and those it reaped); how many are alive.

    The daemon may run work in child processes (the month-to-date SLA worker): their
    CPU is the daemon's cost too, and ``/proc/<pid>/stat`` of the daemon does not have it.
    """
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int(_stat(f"/proc/{entry.name}/stat")[1])
            except (OSError, ValueError, IndexError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    try:
        fields = _stat(f"/proc/{pid}/stat")
    except OSError:
        return 0.0, 0
    total = (int(fields[13]) + int(fields[14])) / CLK_TCK  # cutime, cstime: reaped children
    alive = 0
    stack = list(children.get(pid, []))
    while stack:
        child = stack.pop()
        try:
            fields = _stat(f"/proc/{child}/stat")
        except OSError:
            continue
        alive += 1
        total += sum(int(fields[i]) for i in (11, 12, 13, 14)) / CLK_TCK
        stack.extend(children.get(child, []))
    return total, alive


def descendants(pid: int) -> list[int]:
    """Live descendants of a process (its probing processes, the SLA worker)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int(_stat(f"/proc/{entry.name}/stat")[1])
            except (OSError, ValueError, IndexError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    out: list[int] = []
    stack = list(children.get(pid, []))
    while stack:
        child = stack.pop()
        out.append(child)
        stack.extend(children.get(child, []))
    return out


def family_peak_rss(pid: int) -> int:
    """Sum of the peak RSS (``VmHWM``) of a process and its live descendants: an upper
    bound of the memory the daemon with its probing processes and SLA worker held."""
    total = 0
    for one in [pid, *descendants(pid)]:
        try:
            total += proc_status(one).get("VmHWM", 0)
        except OSError:
            continue
    return total


def proc_status(pid: int) -> dict[str, int]:
    """VmRSS, VmHWM (bytes) and Threads from ``/proc/<pid>/status``."""
    out: dict[str, int] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            out[key] = int(value.split()[0]) * 1024
        elif key == "Threads":
            out[key] = int(value)
    return out


def system_cpu() -> tuple[float, float]:
    """(busy, total) jiffies of the whole machine from ``/proc/stat``."""
    first = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    values = [int(v) for v in first[:8]]  # user nice system idle iowait irq softirq steal
    total = sum(values)
    idle = values[3] + values[4]
    return float(total - idle), float(total)


def cpu_pressure() -> float | None:
    """Total microseconds some task waited for a CPU (``/proc/pressure/cpu``), if available."""
    try:
        first = Path("/proc/pressure/cpu").read_text().splitlines()[0]
    except OSError:
        return None
    return float(first.rsplit("total=", 1)[1])


def loadavg() -> list[float]:
    return [float(v) for v in Path("/proc/loadavg").read_text().split()[:3]]


def code_version() -> dict[str, Any]:
    """What daemon code ran: HEAD, uncommitted files under src/, a hash of src/**/*.py.

    Read-only git (``--no-optional-locks``: not even the index is refreshed).
    """
    out: dict[str, Any] = {}
    git = ["git", "--no-optional-locks", "-C", str(ROOT)]
    try:
        head = subprocess.run(
            [*git, "rev-parse", "--short", "HEAD"], capture_output=True, text=True, timeout=10
        )
        dirty = subprocess.run(
            [*git, "status", "--porcelain", "--", "src"], capture_output=True, text=True, timeout=10
        )
        out["head"] = head.stdout.strip() or None
        out["dirty_src"] = [line[3:] for line in dirty.stdout.splitlines()]
    except (OSError, subprocess.SubprocessError):
        out["head"] = None
    digest = hashlib.sha256()
    for path in sorted((ROOT / "src").rglob("*.py")):
        digest.update(str(path.relative_to(ROOT)).encode())
        digest.update(path.read_bytes())
    out["src_sha256"] = digest.hexdigest()[:16]
    return out


def machine() -> dict[str, Any]:
    model = ""
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    return {
        "nproc": os.cpu_count(),
        "cpu_model": model,
        "python": platform.python_version(),
        "kernel": platform.release(),
        "mem_total_bytes": os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"),
        "packages": {name: _version(name) for name in PACKAGES},
    }


PACKAGES = ("apscheduler", "httpx", "httpcore", "sqlalchemy", "prometheus-client", "structlog")


def _version(name: str) -> str | None:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


# -- HTTP to the daemon (loopback only) ----------------------------------------------


def http_get(port: int, path: str, timeout: float = 30.0) -> tuple[int, bytes, float]:
    """GET ``http://127.0.0.1:port/path``; (status, body, seconds)."""
    t0 = time.perf_counter()
    conn = http.client.HTTPConnection(LOOPBACK, port, timeout=timeout)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        body = resp.read()
        return resp.status, body, time.perf_counter() - t0
    finally:
        conn.close()


def parse_metrics(text: str) -> dict[str, float]:
    """Sum every sample of a metric name over its labels (enough for totals)."""
    sums: dict[str, float] = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        name_labels, _, value = line.rpartition(" ")
        name = name_labels.split("{", 1)[0]
        try:
            sums[name] = sums.get(name, 0.0) + float(value)
        except ValueError:
            continue
    return sums


METRIC_NAMES = (
    "scd_probes_total",
    "scd_probe_failures_total",
    "scd_scheduler_lag_seconds_count",
    "scd_scheduler_lag_seconds_sum",
    "scd_scheduler_misfires_total",
    "scd_scheduler_skipped_runs_total",
    "scd_store_pending_results",
    "scd_store_written_results_total",
    "scd_store_dropped_results_total",
    "scd_store_write_errors_total",
    "process_cpu_seconds_total",
    "process_resident_memory_bytes",
    "scd_scheduler_jobs",
)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((LOOPBACK, 0))
        return int(s.getsockname()[1])


# -- statistics ----------------------------------------------------------------------


def percentile(sorted_values: Sequence[float], q: float) -> float | None:
    """Exact percentile, linear interpolation between closest ranks (numpy's default)."""
    if not sorted_values:
        return None
    pos = (len(sorted_values) - 1) * q / 100.0
    lo = int(pos)
    hi = min(lo + 1, len(sorted_values) - 1)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (pos - lo)


def median_or_none(values: Sequence[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None


# -- the processes -------------------------------------------------------------------


def read_ready_line(proc: subprocess.Popen[bytes], timeout: float) -> dict[str, Any]:
    """The simulator's JSON ready line, read in a thread so the wait is bounded."""
    assert proc.stdout is not None
    lines: queue.Queue[bytes] = queue.Queue()
    stdout = proc.stdout

    def reader() -> None:
        lines.put(stdout.readline())

    threading.Thread(target=reader, daemon=True).start()
    try:
        line = lines.get(timeout=timeout)
    except queue.Empty:
        raise RuntimeError(f"simulator not ready within {timeout:.0f}s") from None
    if not line:
        raise RuntimeError(f"simulator exited before ready (code {proc.poll()})")
    ready: dict[str, Any] = json.loads(line)
    return ready


def wait_for_log(path: Path, needle: str, proc: subprocess.Popen[bytes], timeout: float) -> float:
    """Wait until ``needle`` appears in the log file; return the monotonic time seen."""
    deadline = time.monotonic() + timeout
    offset = 0
    tail = b""
    while time.monotonic() < deadline:
        with path.open("rb") as f:
            f.seek(offset)
            chunk = f.read()
        offset += len(chunk)
        if needle.encode() in tail + chunk:
            return time.monotonic()
        tail = chunk[-len(needle) :]
        if proc.poll() is not None:
            raise RuntimeError(f"daemon exited with code {proc.returncode} before {needle}")
        time.sleep(0.2)
    raise RuntimeError(f"{needle} not logged within {timeout:.0f}s")


def stop_process(proc: subprocess.Popen[bytes], bound: float) -> tuple[int | None, float, bool]:
    """SIGTERM, wait up to ``bound``; SIGKILL if still alive. (code, seconds, killed)."""
    t0 = time.monotonic()
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    try:
        code = proc.wait(timeout=bound)
        return code, time.monotonic() - t0, False
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)
        return None, time.monotonic() - t0, True


def write_catalog(source: Path, dest: Path, interval: float, timeout: float) -> int:
    """Copy the simulator's catalog with the benchmark's interval and timeout."""
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
    data = yaml.load(source.read_text(encoding="utf-8"), Loader=loader)  # noqa: S506 - a safe loader
    data["defaults"] = {"interval": f"{interval:g}s", "timeout": f"{timeout:g}s"}
    dest.write_text(yaml.dump(data, Dumper=dumper, sort_keys=False), encoding="utf-8")
    return sum(len(s["checks"]) for p in data["providers"] for s in p["services"])


def daemon_command(catalog: Path, port: int, db: Path, profiler: Sequence[str] = ()) -> list[str]:
    """``scd-monitor run`` on ``catalog``, listening on loopback ``port``, SQLite ``db``."""
    return [
        sys.executable,
        *profiler,
        "-m",
        "scd_monitor",
        "run",
        "--catalog",
        str(catalog),
        "--listen",
        f"{LOOPBACK}:{port}",
        "--database-url",
        f"sqlite:///{db}",
    ]


def clean_env(extra: dict[str, str]) -> dict[str, str]:
    """The environment without any inherited ``SCD_MONITOR_*`` setting, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SCD_MONITOR_")}
    env.update(extra)
    return env


# -- one run -------------------------------------------------------------------------


@dataclass
class Sample:
    t: float
    daemon_cpu: float
    daemon_main_cpu: float
    daemon_children_cpu: float
    sim_cpu: float
    daemon_rss: int
    healthz_s: float | None


@dataclass
class RunConfig:
    n: int
    interval: float
    timeout: float
    warmup: float
    measure: float
    tls: bool
    max_concurrency: int | None
    scrape_every: float
    settle: float
    keep: bool
    profile: Path | None = None
    daemon_env: dict[str, str] = field(default_factory=dict)


@dataclass
class Window:
    wall0: float = 0.0
    wall1: float = 0.0
    daemon_cpu0: float = 0.0
    daemon_cpu1: float = 0.0
    children0: float = 0.0
    children1: float = 0.0
    children_alive: int = 0
    daemon_main0: float = 0.0
    daemon_main1: float = 0.0
    sim_cpu0: float = 0.0
    sim_cpu1: float = 0.0
    sys0: tuple[float, float] = (0.0, 0.0)
    sys1: tuple[float, float] = (0.0, 0.0)
    self0: float = 0.0
    self1: float = 0.0
    psi0: float | None = None
    psi1: float | None = None
    samples: list[Sample] = field(default_factory=list)
    scrapes_in_window: int = 0
    metrics0: dict[str, float] = field(default_factory=dict)


def self_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def run_once(cfg: RunConfig, repeat_index: int) -> dict[str, Any]:
    workdir = Path(tempfile.mkdtemp(prefix=f"scd-bench-sched-{cfg.n}-"))
    sim_log = workdir / "simulator.log"
    daemon_log = workdir / "daemon.log"
    sim_catalog = workdir / "sim-catalog.yaml"
    catalog = workdir / "catalog.yaml"
    port = free_port()
    result: dict[str, Any] = {
        "n": cfg.n,
        "repeat": repeat_index,
        "interval_s": cfg.interval,
        "timeout_s": cfg.timeout,
        "tls": cfg.tls,
        "max_concurrency": cfg.max_concurrency,
        "daemon_env": cfg.daemon_env,
        "warmup_s": cfg.warmup,
        "settle_s": cfg.settle,
        "measure_s": cfg.measure,
        "started": datetime.now(UTC).isoformat(timespec="seconds"),
        "loadavg_before": loadavg(),
        "code": code_version(),
    }
    if cfg.tls:
        sim_cmd = [sys.executable, str(Path(__file__).resolve()), "--serve-fleet", str(cfg.n)]
    else:
        sim_cmd = [sys.executable, "-m", "scd_simulator", "--fleet", str(cfg.n)]
    sim_cmd += ["--workdir", str(workdir / "sim"), "--catalog-out", str(sim_catalog)]
    sim_env = clean_env({"SCD_MONITOR_LOG_FORMAT": "json"})
    # The figures come from the daemon's `probe.finished` lines, logged at debug (at info
    # only when a check's outcome changes): the benchmark runs it at debug, so it measures
    # a daemon that also writes a JSON line per probe (what `info` saves is on top).
    daemon_env = clean_env({"SCD_MONITOR_LOG_FORMAT": "json", "SCD_MONITOR_LOG_LEVEL": "debug"})
    if cfg.max_concurrency is not None:
        daemon_env["SCD_MONITOR_MAX_CONCURRENCY"] = str(cfg.max_concurrency)
    daemon_env.update(cfg.daemon_env)
    profiler = ["-m", "cProfile", "-o", str(cfg.profile)] if cfg.profile else []
    daemon_cmd = daemon_command(catalog, port, workdir / "bench.db", profiler)
    result["commands"] = {"simulator": sim_cmd, "daemon": daemon_cmd}
    sim: subprocess.Popen[bytes] | None = None
    daemon: subprocess.Popen[bytes] | None = None
    files: list[IO[bytes]] = []
    finished = False
    try:
        sim_err = sim_log.open("wb")
        daemon_err = daemon_log.open("wb")
        files += [sim_err, daemon_err]
        t_spawn = time.monotonic()
        sim = subprocess.Popen(
            sim_cmd, stdout=subprocess.PIPE, stderr=sim_err, stdin=subprocess.DEVNULL, env=sim_env
        )
        ready = read_ready_line(sim, READY_TIMEOUT)
        result["simulator_ready_s"] = round(time.monotonic() - t_spawn, 2)
        result["simulator_listeners"] = ready.get("listeners")
        checks = write_catalog(Path(ready["catalog"]), catalog, cfg.interval, cfg.timeout)
        result["checks"] = checks

        t_spawn = time.monotonic()
        daemon = subprocess.Popen(
            daemon_cmd,
            stdout=daemon_err,
            stderr=daemon_err,
            stdin=subprocess.DEVNULL,
            env=daemon_env,
            cwd=workdir,
        )
        t_started = wait_for_log(daemon_log, '"daemon.started"', daemon, START_TIMEOUT)
        result["daemon_start_s"] = round(t_started - t_spawn, 2)
        log(f"  daemon up in {result['daemon_start_s']}s; warming up {cfg.warmup:g}s")
        sleep_watching(daemon, sim, cfg.warmup)

        window = measure(cfg, daemon, sim, port)
        result.update(window_results(window))

        # End-of-window state: a scrape (its cost measured apart) and peak memory.
        cpu_before = proc_cpu(daemon.pid)
        status, body, seconds = http_get(port, "/metrics")
        result["scrape_end"] = {
            "status": status,
            "seconds": round(seconds, 3),
            "bytes": len(body),
            "daemon_cpu_s": round(proc_cpu(daemon.pid) - cpu_before, 3),
        }
        metrics_end = parse_metrics(body.decode())
        result["metrics_end"] = {k: metrics_end.get(k) for k in METRIC_NAMES}
        result["metrics_delta_scrape_to_scrape"] = metric_deltas(window, metrics_end)
        daemon_status = proc_status(daemon.pid)
        sim_status = proc_status(sim.pid)
        result["daemon_peak_rss_bytes"] = daemon_status.get("VmHWM")
        result["daemon_family_peak_rss_bytes"] = family_peak_rss(daemon.pid)
        result["daemon_rss_end_bytes"] = daemon_status.get("VmRSS")
        result["daemon_threads_end"] = daemon_status.get("Threads")
        result["simulator_peak_rss_bytes"] = sim_status.get("VmHWM")
        result["loadavg_after"] = loadavg()

        code, seconds, killed = stop_process(daemon, DAEMON_EXIT_BOUND)
        result["daemon_exit"] = {
            "code": code,
            "seconds": round(seconds, 2),
            "killed": killed,
            "bound_s": DAEMON_EXIT_BOUND,
        }
        daemon = None
        code, seconds, killed = stop_process(sim, SIM_EXIT_BOUND)
        result["simulator_exit"] = {"code": code, "seconds": round(seconds, 2), "killed": killed}
        sim = None
        for f in files:
            f.flush()
        result.update(parse_daemon_log(daemon_log, window.wall0, window.wall1))
        if cfg.profile is not None:
            result["profile"] = profile_summary(cfg.profile)
        finished = True
    finally:
        for proc in (daemon, sim):
            if proc is not None and proc.poll() is None:
                stop_process(proc, 10.0)
        for f in files:
            f.close()
        if cfg.keep or not finished:
            result["workdir"] = str(workdir)
            log(f"  logs kept in {workdir}")
        else:
            for path in sorted(workdir.rglob("*"), reverse=True):
                if path.is_dir():
                    path.rmdir()
                else:
                    path.unlink()
            workdir.rmdir()
    return result


def measure(
    cfg: RunConfig, daemon: subprocess.Popen[bytes], sim: subprocess.Popen[bytes], port: int
) -> Window:
    """Scrape, read the counters, sample every second for ``cfg.measure`` seconds, read again."""
    _status, body, _ = http_get(port, "/metrics")
    w = Window(metrics0=parse_metrics(body.decode()))
    # A scrape costs the daemon CPU (its backlog drains after the response): let it settle.
    sleep_watching(daemon, sim, cfg.settle)
    w.sys0 = system_cpu()
    w.psi0 = cpu_pressure()
    w.self0 = self_cpu()
    w.daemon_cpu0 = proc_cpu(daemon.pid)
    w.children0 = children_cpu(daemon.pid)[0]
    w.daemon_main0 = proc_cpu(daemon.pid, daemon.pid)
    w.sim_cpu0 = proc_cpu(sim.pid)
    w.wall0 = time.time()
    start = time.monotonic()
    next_scrape = start + cfg.scrape_every if cfg.scrape_every > 0 else float("inf")
    while True:
        now = time.monotonic()
        if now >= start + cfg.measure:
            break
        check_alive(daemon, sim)
        try:
            _s, _b, healthz = http_get(port, "/healthz", timeout=10.0)
        except OSError:
            healthz = None
        w.samples.append(
            Sample(
                t=time.monotonic() - start,
                daemon_cpu=proc_cpu(daemon.pid),
                daemon_main_cpu=proc_cpu(daemon.pid, daemon.pid),
                daemon_children_cpu=children_cpu(daemon.pid)[0],
                sim_cpu=proc_cpu(sim.pid),
                daemon_rss=proc_status(daemon.pid).get("VmRSS", 0),
                healthz_s=healthz,
            )
        )
        if time.monotonic() >= next_scrape:
            http_get(port, "/metrics")
            w.scrapes_in_window += 1
            next_scrape += cfg.scrape_every
        time.sleep(max(0.0, min(SAMPLE_EVERY, start + cfg.measure - time.monotonic())))
    w.daemon_cpu1 = proc_cpu(daemon.pid)
    w.children1, w.children_alive = children_cpu(daemon.pid)
    w.daemon_main1 = proc_cpu(daemon.pid, daemon.pid)
    w.sim_cpu1 = proc_cpu(sim.pid)
    w.wall1 = time.time()
    w.sys1 = system_cpu()
    w.psi1 = cpu_pressure()
    w.self1 = self_cpu()
    return w


def metric_deltas(w: Window, end: dict[str, float]) -> dict[str, float | None]:
    start = w.metrics0
    return {
        # A labelled counter with no series yet (no failures) is absent: count it as 0.
        k: end.get(k, 0.0) - start.get(k, 0.0) if end and start else None
        for k in (
            "scd_probes_total",
            "scd_probe_failures_total",
            "scd_scheduler_lag_seconds_count",
            "scd_scheduler_lag_seconds_sum",
            "scd_scheduler_misfires_total",
            "scd_scheduler_skipped_runs_total",
            "scd_store_written_results_total",
            "scd_store_dropped_results_total",
        )
    }


def window_results(w: Window) -> dict[str, Any]:
    span = w.wall1 - w.wall0
    busy = w.sys1[0] - w.sys0[0]
    total = w.sys1[1] - w.sys0[1]
    ncpu = os.cpu_count() or 1
    daemon_cpu = w.daemon_cpu1 - w.daemon_cpu0
    sim_cpu = w.sim_cpu1 - w.sim_cpu0
    harness_cpu = w.self1 - w.self0
    machine_busy_cores = busy / total * ncpu if total else None
    # Peak daemon CPU over any 5 s of samples (cores).
    peak5 = 0.0
    s = w.samples
    for i in range(len(s)):
        j = i
        while j < len(s) and s[j].t - s[i].t < 5.0:
            j += 1
        if j < len(s):
            peak5 = max(peak5, (s[j].daemon_cpu - s[i].daemon_cpu) / (s[j].t - s[i].t))
    healthz = sorted(x.healthz_s for x in s if x.healthz_s is not None)
    psi = (
        round((w.psi1 - w.psi0) / 1e6 / span * 100, 1)
        if w.psi0 is not None and w.psi1 is not None
        else None
    )
    timeline = [
        {
            "t": round(b.t, 1),
            "daemon_cores": round((b.daemon_cpu - a.daemon_cpu) / (b.t - a.t), 3),
            "daemon_other_threads_cores": round(
                ((b.daemon_cpu - b.daemon_main_cpu) - (a.daemon_cpu - a.daemon_main_cpu))
                / (b.t - a.t),
                3,
            ),
            "daemon_children_cores": round(
                (b.daemon_children_cpu - a.daemon_children_cpu) / (b.t - a.t), 3
            ),
            "sim_cores": round((b.sim_cpu - a.sim_cpu) / (b.t - a.t), 3),
            "healthz_ms": _ms(b.healthz_s),
        }
        for a, b in itertools.pairwise(s)
        if b.t > a.t
    ]
    return {
        "window_s": round(span, 2),
        "daemon_cpu_s": round(daemon_cpu, 2),
        "daemon_main_thread_cpu_s": round(w.daemon_main1 - w.daemon_main0, 2),
        "daemon_children_cpu_s": round(w.children1 - w.children0, 2),
        "daemon_children_alive_end": w.children_alive,
        "daemon_cores_mean": round(daemon_cpu / span, 3),
        "daemon_cores_peak_5s": round(peak5, 3),
        "simulator_cpu_s": round(sim_cpu, 2),
        "harness_cpu_s": round(harness_cpu, 2),
        "machine_busy_cores": round(machine_busy_cores, 3) if machine_busy_cores else None,
        "other_busy_cores": (
            round(
                machine_busy_cores
                - (daemon_cpu + (w.children1 - w.children0) + sim_cpu + harness_cpu) / span,
                3,
            )
            if machine_busy_cores is not None
            else None
        ),
        "cpu_pressure_some_pct": psi,
        "healthz_p50_ms": _ms(percentile(healthz, 50)),
        "healthz_max_ms": _ms(healthz[-1] if healthz else None),
        "scrapes_in_window": w.scrapes_in_window,
        "daemon_rss_max_sampled_bytes": max((x.daemon_rss for x in s), default=None),
        "timeline": timeline,
    }


def _ms(seconds: float | None) -> float | None:
    return round(seconds * 1000, 2) if seconds is not None else None


def event_key(event: str) -> str:
    """A log event without the parts that vary (APScheduler puts job ids and times in it)."""
    event = re.sub(r'"[^"]*"', '"…"', event)
    event = re.sub(r"\S+/\S+/\S+", "<check>", event)
    return re.sub(r"\d+(?:[.:]\d+)*", "<n>", event)[:80]


def parse_daemon_log(path: Path, wall0: float, wall1: float) -> dict[str, Any]:
    """Everything the figures need from the daemon's JSON log lines.

    A probe *ended* at its line's timestamp and *started* ``duration_s`` earlier. Rates
    and CPU use the probes that ended in the window; lag uses those that started in it.
    """
    ended = 0
    started = 0
    failed_in_window = 0
    kinds: Counter[str] = Counter()
    lags: list[tuple[float, float, float]] = []  # (lag, offset of start, duration)
    durations: list[tuple[float, float, float]] = []  # (duration, offset of start, lag)
    total = 0
    failed_total = 0
    kinds_total: Counter[str] = Counter()
    events: Counter[str] = Counter()
    in_window: Counter[str] = Counter()
    notable: list[dict[str, Any]] = []
    per_second: dict[int, list[float]] = {}  # second of the window -> [ended, lag max, dur max]
    unparsed = 0
    stopped: dict[str, Any] | None = None
    with path.open("rb") as f:
        for raw in f:
            try:
                rec = json.loads(raw)
            except ValueError:
                unparsed += 1
                continue
            event = str(rec.get("event"))
            ts = datetime.fromisoformat(rec["timestamp"]).timestamp() if "timestamp" in rec else 0
            if event != "probe.finished":
                level = rec.get("level")
                if level in ("warning", "error", "critical"):
                    key = f"{level}:{event_key(event)}"
                    events[key] += 1
                    if wall0 <= ts < wall1:
                        in_window[key] += 1
                    if events[key] == 1 and len(notable) < 20:  # the first of each kind
                        notable.append(
                            {
                                "offset_s": round(ts - wall0, 3),
                                **{k: str(v)[:1500] for k, v in rec.items() if k != "timestamp"},
                            }
                        )
                if event == "daemon.stopped":
                    stopped = {k: rec.get(k) for k in ("cancelled_probes", "flushed", "written")}
                continue
            total += 1
            ok = bool(rec.get("ok"))
            if not ok:
                failed_total += 1
                kinds_total[str(rec.get("error_kind"))] += 1
            duration = float(rec.get("duration_s") or 0.0)
            begin = ts - duration
            lag = rec.get("lag_s")
            if wall0 <= ts < wall1:
                second = per_second.setdefault(int(ts - wall0), [0, 0.0, 0.0])
                second[0] += 1
                second[1] = max(second[1], float(lag or 0.0))
                second[2] = max(second[2], duration)
                ended += 1
                durations.append((duration, begin - wall0, float(lag or 0.0)))
                if not ok:
                    failed_in_window += 1
                    kinds[str(rec.get("error_kind"))] += 1
            if wall0 <= begin < wall1:
                started += 1
                if lag is not None:
                    lags.append((float(lag), begin - wall0, duration))
    lags.sort()
    durations.sort()
    lag_values = [x[0] for x in lags]
    duration_values = [x[0] for x in durations]
    span = wall1 - wall0

    def worst(rows: list[tuple[float, float, float]], a: str, b: str) -> list[dict[str, float]]:
        return [
            {a: round(x * 1000, 1), "start_offset_s": round(o, 2), b: round(y * 1000, 1)}
            for x, o, y in reversed(rows[-10:])
        ]

    return {
        "probes_in_window": ended,
        "probes_per_s": round(ended / span, 2) if span else None,
        "probes_started_in_window": started,
        "probes_started_per_s": round(started / span, 2) if span else None,
        "failures_in_window": failed_in_window,
        "error_kinds_in_window": dict(kinds),
        "probes_total": total,
        "failures_total": failed_total,
        "error_kinds_total": dict(kinds_total),
        "lag_samples": len(lags),
        "lag_p50_ms": _ms(percentile(lag_values, 50)),
        "lag_p90_ms": _ms(percentile(lag_values, 90)),
        "lag_p99_ms": _ms(percentile(lag_values, 99)),
        "lag_max_ms": _ms(lag_values[-1] if lags else None),
        "duration_p50_ms": _ms(percentile(duration_values, 50)),
        "duration_p99_ms": _ms(percentile(duration_values, 99)),
        "duration_max_ms": _ms(duration_values[-1] if durations else None),
        "largest_lags": worst(lags, "lag_ms", "duration_ms"),
        "slowest_probes": worst(durations, "duration_ms", "lag_ms"),
        "probe_timeline": [
            {"t": t, "ended": int(v[0]), "lag_max_ms": _ms(v[1]), "duration_max_ms": _ms(v[2])}
            for t, v in sorted(per_second.items())
        ],
        "log_warnings_errors": dict(events),
        "log_warnings_errors_in_window": dict(in_window),
        "log_notable": notable,
        "log_unparsed_lines": unparsed,
        "daemon_stopped": stopped,
    }


def profile_summary(path: Path, top: int = 25) -> dict[str, Any]:
    """The daemon's cProfile output: the functions with the most own and cumulative time."""
    import io
    import pstats

    out: dict[str, Any] = {"pstats": str(path)}
    stats = pstats.Stats(str(path), stream=io.StringIO())
    table: dict[Any, Any] = stats.stats  # type: ignore[attr-defined]
    out["total_s"] = round(stats.total_tt, 2)  # type: ignore[attr-defined]
    for order, index in (("by_own_time", 2), ("by_cumulative_time", 3)):
        rows = sorted(table.items(), key=lambda item: item[1][index], reverse=True)[:top]
        out[order] = [
            {
                "function": f"{Path(file).name}:{line}({name})",
                "calls": calls,
                "own_s": round(own, 3),
                "cumulative_s": round(cum, 3),
            }
            for (file, line, name), (_prim, calls, own, cum, _callers) in rows
        ]
    text = io.StringIO()
    pstats.Stats(str(path), stream=text).sort_stats("tottime").print_stats(40)
    path.with_suffix(".txt").write_text(text.getvalue(), encoding="utf-8")
    return out


def check_alive(daemon: subprocess.Popen[bytes], sim: subprocess.Popen[bytes]) -> None:
    if daemon.poll() is not None:
        raise RuntimeError(f"daemon exited early with code {daemon.returncode}")
    if sim.poll() is not None:
        raise RuntimeError(f"simulator exited early with code {sim.returncode}")


def sleep_watching(
    daemon: subprocess.Popen[bytes], sim: subprocess.Popen[bytes], seconds: float
) -> None:
    end = time.monotonic() + seconds
    while (left := end - time.monotonic()) > 0:
        check_alive(daemon, sim)
        time.sleep(min(1.0, left))


def derive(r: dict[str, Any]) -> None:
    """Figures computed from others (added in place)."""
    probes = r.get("probes_in_window") or 0
    expected = r["n"] / r["interval_s"]
    r["expected_probes_per_s"] = round(expected, 2)
    r["rate_ratio"] = round(r["probes_per_s"] / expected, 4) if r.get("probes_per_s") else None
    scrape = r.get("scrape_end") or {}
    r["scrape_end_s"] = scrape.get("seconds")
    r["scrape_end_daemon_cpu_s"] = scrape.get("daemon_cpu_s")
    r["scrape_end_mib"] = round(scrape["bytes"] / 2**20, 2) if "bytes" in scrape else None
    if probes:
        r["daemon_cpu_s_per_1000"] = round(r["daemon_cpu_s"] / probes * 1000, 3)
        r["simulator_cpu_s_per_1000"] = round(r["simulator_cpu_s"] / probes * 1000, 3)
        if "daemon_children_cpu_s" in r:
            r["daemon_with_children_cpu_s_per_1000"] = round(
                (r["daemon_cpu_s"] + r["daemon_children_cpu_s"]) / probes * 1000, 3
            )
            r["daemon_children_cores_mean"] = round(r["daemon_children_cpu_s"] / r["window_s"], 3)
        r["daemon_main_thread_share"] = (
            round(r["daemon_main_thread_cpu_s"] / r["daemon_cpu_s"], 3)
            if r["daemon_cpu_s"]
            else None
        )


# -- reporting -----------------------------------------------------------------------

SUMMARY_KEYS = (
    "probes_per_s",
    "probes_started_per_s",
    "rate_ratio",
    "lag_p50_ms",
    "lag_p90_ms",
    "lag_p99_ms",
    "lag_max_ms",
    "failures_in_window",
    "daemon_cpu_s_per_1000",
    "daemon_with_children_cpu_s_per_1000",
    "daemon_children_cores_mean",
    "simulator_cpu_s_per_1000",
    "daemon_cores_mean",
    "daemon_cores_peak_5s",
    "daemon_main_thread_share",
    "daemon_peak_rss_bytes",
    "daemon_family_peak_rss_bytes",
    "duration_p50_ms",
    "duration_p99_ms",
    "duration_max_ms",
    "scrape_end_s",
    "scrape_end_daemon_cpu_s",
    "scrape_end_mib",
    "healthz_max_ms",
    "other_busy_cores",
    "cpu_pressure_some_pct",
    "daemon_start_s",
)


def summarise(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Median (and min, max) of each figure over the repeats of one N."""
    out: dict[str, Any] = {"n": runs[0]["n"], "runs": len(runs)}
    for key in SUMMARY_KEYS:
        values: list[float] = [r[key] for r in runs if r.get(key) is not None]
        out[key] = {
            "median": median_or_none(values),
            "min": min(values) if values else None,
            "max": max(values) if values else None,
        }
    out["misfires"] = sum(
        int(r["metrics_delta_scrape_to_scrape"].get("scd_scheduler_misfires_total") or 0)
        for r in runs
    )
    out["skipped"] = sum(
        int(r["metrics_delta_scrape_to_scrape"].get("scd_scheduler_skipped_runs_total") or 0)
        for r in runs
    )
    out["error_kinds"] = dict(
        sum((Counter(r.get("error_kinds_in_window", {})) for r in runs), Counter())
    )
    out["store_pending_end_max"] = max(r["metrics_end"]["scd_store_pending_results"] for r in runs)
    out["store_dropped_end_max"] = max(
        r["metrics_end"]["scd_store_dropped_results_total"] for r in runs
    )
    for level in ("warning", "error"):
        out[f"log_{level}s"] = sum(
            v
            for r in runs
            for k, v in r.get("log_warnings_errors", {}).items()
            if k.startswith(level + ":")
        )
    out["daemon_exit_codes"] = [r["daemon_exit"]["code"] for r in runs]
    out["daemon_exit_s_max"] = max(r["daemon_exit"]["seconds"] for r in runs)
    return out


def fmt(v: Any, digits: int = 1) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.{digits}f}"
    return str(v)


def print_runs(runs: list[dict[str, Any]]) -> None:
    header = (
        "N",
        "rep",
        "probes/s",
        "expect",
        "ratio",
        "lag p50 ms",
        "p99 ms",
        "max ms",
        "fail",
        "CPU s/1k daemon",
        "CPU s/1k sim",
        "daemon cores",
        "RSS MiB",
        "misfire",
        "skip",
        "pending",
        "dropped",
        "exit",
        "other cores",
    )
    rows = []
    for r in runs:
        d = r["metrics_delta_scrape_to_scrape"]
        m = r["metrics_end"]
        rows.append(
            (
                str(r["n"]),
                str(r["repeat"]),
                fmt(r.get("probes_per_s"), 2),
                fmt(r.get("expected_probes_per_s"), 2),
                fmt(r.get("rate_ratio"), 3),
                fmt(r.get("lag_p50_ms"), 2),
                fmt(r.get("lag_p99_ms"), 1),
                fmt(r.get("lag_max_ms"), 1),
                fmt(r.get("failures_in_window")),
                fmt(r.get("daemon_cpu_s_per_1000"), 2),
                fmt(r.get("simulator_cpu_s_per_1000"), 2),
                fmt(r.get("daemon_cores_mean"), 2),
                fmt((r.get("daemon_peak_rss_bytes") or 0) / 2**20, 0),
                fmt(int(d.get("scd_scheduler_misfires_total") or 0)),
                fmt(int(d.get("scd_scheduler_skipped_runs_total") or 0)),
                fmt(int(m.get("scd_store_pending_results") or 0)),
                fmt(int(m.get("scd_store_dropped_results_total") or 0)),
                f"{r['daemon_exit']['code']}/{r['daemon_exit']['seconds']:.1f}s",
                fmt(r.get("other_busy_cores"), 2),
            )
        )
    widths = [max(len(x) for x in col) for col in zip(header, *rows, strict=True)]
    for row in (header, *rows):
        print("  ".join(v.rjust(w) for v, w in zip(row, widths, strict=True)))


MARKDOWN_ROWS = (
    ("sustained probes/s (ended in window)", "probes_per_s", 1, 1),
    ("ratio to N / interval", "rate_ratio", 3, 1),
    ("scheduling lag p50, ms", "lag_p50_ms", 1, 1),
    ("scheduling lag p90, ms", "lag_p90_ms", 1, 1),
    ("scheduling lag p99, ms", "lag_p99_ms", 1, 1),
    ("scheduling lag max, ms", "lag_max_ms", 0, 1),
    ("failed probes in window", "failures_in_window", 0, 1),
    ("daemon CPU s per 1,000 probes", "daemon_cpu_s_per_1000", 2, 1),
    ("daemon + its child processes, CPU s per 1,000", "daemon_with_children_cpu_s_per_1000", 2, 1),
    ("daemon's child processes, cores (mean)", "daemon_children_cores_mean", 2, 1),
    ("simulator CPU s per 1,000 probes", "simulator_cpu_s_per_1000", 2, 1),
    ("daemon CPU, cores (mean)", "daemon_cores_mean", 2, 1),
    ("daemon CPU, cores (peak 5 s)", "daemon_cores_peak_5s", 2, 1),
    ("daemon main-thread share of its CPU", "daemon_main_thread_share", 2, 1),
    ("daemon peak RSS, MiB", "daemon_peak_rss_bytes", 0, 2**-20),
    ("… with its child processes (sum of peaks), MiB", "daemon_family_peak_rss_bytes", 0, 2**-20),
    ("probe duration p50, ms", "duration_p50_ms", 1, 1),
    ("probe duration p99, ms", "duration_p99_ms", 1, 1),
    ("/healthz max, ms", "healthz_max_ms", 0, 1),
    ("one /metrics scrape, s", "scrape_end_s", 2, 1),
    ("one /metrics scrape, daemon CPU s", "scrape_end_daemon_cpu_s", 2, 1),
    ("/metrics size, MiB", "scrape_end_mib", 1, 1),
    ("daemon start (to daemon.started), s", "daemon_start_s", 1, 1),
    ("other load on the machine, cores", "other_busy_cores", 2, 1),
    ("CPU pressure (some), % of window", "cpu_pressure_some_pct", 1, 1),
)


def print_markdown(summary: list[dict[str, Any]]) -> None:
    """The summary as a Markdown table: median (min-max) of the repeats, per N."""
    print("| figure | " + " | ".join(f"N = {s['n']:,} ({s['runs']} runs)" for s in summary) + " |")
    print("|---|" + "---:|" * len(summary))

    def cell(s: dict[str, Any], key: str, digits: int, scale: float) -> str:
        v = s.get(key) or {}
        if v.get("median") is None:
            return "-"
        med, lo, hi = (v[x] * scale for x in ("median", "min", "max"))
        if s["runs"] == 1 or lo == hi:
            return f"{med:,.{digits}f}"
        return f"{med:,.{digits}f} ({lo:,.{digits}f}-{hi:,.{digits}f})"

    for label, key, digits, scale in MARKDOWN_ROWS:
        print(f"| {label} | " + " | ".join(cell(s, key, digits, scale) for s in summary) + " |")
    pairs: tuple[tuple[str, tuple[str, str]], ...] = (
        ("misfires / skipped runs (all runs)", ("misfires", "skipped")),
        (
            "store pending / dropped at end (max)",
            ("store_pending_end_max", "store_dropped_end_max"),
        ),
        ("daemon log warnings / errors (all runs)", ("log_warnings", "log_errors")),
    )
    for label, names in pairs:
        print(
            f"| {label} | "
            + " | ".join(f"{s[names[0]]:g} / {s[names[1]]:g}" for s in summary)
            + " |"
        )
    print(
        "| daemon exit code on SIGTERM (slowest exit) | "
        + " | ".join(
            f"{', '.join(str(c) for c in s['daemon_exit_codes'])} ({s['daemon_exit_s_max']:.1f} s)"
            for s in summary
        )
        + " |"
    )


def resummarise(path: Path) -> int:
    """``--resummarise``: recompute derived figures and summaries of a results file."""
    report = json.loads(path.read_text(encoding="utf-8"))
    ok_runs = [r for r in report["runs"] if "error" not in r]
    for r in ok_runs:
        derive(r)
    sizes = list(dict.fromkeys(r["n"] for r in ok_runs))
    report["summary"] = [summarise([r for r in ok_runs if r["n"] == n]) for n in sizes]
    path.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print_runs(ok_runs)
    print()
    print_markdown(report["summary"])
    return 0


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# -- the TLS fleet helper ------------------------------------------------------------


def serve_fleet(n: int, workdir: Path, catalog_out: Path, tls: str) -> int:
    """``--serve-fleet``: the simulator with its fleet on the ``tls`` listener."""
    import asyncio

    from scd_monitor.logs import configure_logging
    from scd_simulator.cli import run_simulator

    configure_logging("json", "info")
    asyncio.run(
        run_simulator(
            None,
            workdir=workdir,
            catalog_out=catalog_out,
            fleet=n,
            fleet_tls=tls,  # type: ignore[arg-type]
        )
    )
    return 0


# -- main ----------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("--n", type=int, nargs="+", default=[1000, 5000], help="fleet sizes")
    p.add_argument("--interval", type=float, default=30.0, help="check interval, seconds")
    p.add_argument("--timeout", type=float, default=10.0, help="check timeout, seconds")
    p.add_argument("--warmup", type=float, help="seconds before measuring (default: 1 interval)")
    p.add_argument("--measure", type=float, help="window, seconds (default: 3 intervals)")
    p.add_argument("--repeat", type=int, default=1, help="runs per N (medians reported)")
    p.add_argument("--tls", action="store_true", help="HTTPS fleet (valid certificates)")
    p.add_argument("--max-concurrency", type=int, help="SCD_MONITOR_MAX_CONCURRENCY")
    p.add_argument(
        "--daemon-env",
        action="append",
        default=[],
        metavar="SCD_MONITOR_X=VALUE",
        help="extra daemon setting (repeatable), e.g. SCD_MONITOR_SLA_INTERVAL=1d",
    )
    p.add_argument(
        "--scrape-every",
        type=float,
        default=0.0,
        help="also scrape /metrics every S seconds in the window (default: only at its edges)",
    )
    p.add_argument(
        "--settle",
        type=float,
        default=5.0,
        help="seconds between the opening /metrics scrape and the window (default 5)",
    )
    p.add_argument("--out", type=Path, help="JSON results (default: bench/results/<time>.json)")
    p.add_argument("--keep", action="store_true", help="keep each run's directory (logs, db)")
    p.add_argument(
        "--profile",
        action="store_true",
        help="run the daemon under cProfile (slower: its figures are not the benchmark's); "
        "the profile goes next to --out",
    )
    p.add_argument(
        "--resummarise",
        type=Path,
        metavar="RESULTS",
        help="recompute the summary of a results file and print it (Markdown too); no run",
    )
    p.add_argument("--serve-fleet", type=int, metavar="N", help=argparse.SUPPRESS)
    p.add_argument("--fleet-tls", default="valid", help=argparse.SUPPRESS)
    p.add_argument("--workdir", type=Path, help=argparse.SUPPRESS)
    p.add_argument("--catalog-out", type=Path, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.serve_fleet is None and args.resummarise is None:
        if not 0 < args.timeout < args.interval:
            p.error("--timeout must be positive and shorter than --interval")
        if args.repeat < 1 or any(n < 1 for n in args.n):
            p.error("--repeat and --n must be positive")
        for item in args.daemon_env:
            if not item.startswith("SCD_MONITOR_") or "=" not in item:
                p.error(f"--daemon-env wants SCD_MONITOR_NAME=VALUE, got {item!r}")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.serve_fleet is not None:
        return serve_fleet(args.serve_fleet, args.workdir, args.catalog_out, args.fleet_tls)
    if args.resummarise is not None:
        return resummarise(args.resummarise)
    warmup = args.warmup if args.warmup is not None else args.interval
    window = args.measure if args.measure is not None else 3 * args.interval
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    out = (args.out or RESULTS / f"bench-{stamp}{'-tls' if args.tls else ''}.json").resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    report: dict[str, Any] = {
        "benchmark": "scheduler",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "argv": sys.argv,
        "machine": machine(),
        "runs": [],
        "summary": [],
    }
    runs: list[dict[str, Any]] = report["runs"]
    failed = False
    for n in args.n:
        mine = []
        for i in range(args.repeat):
            cfg = RunConfig(
                n=n,
                interval=args.interval,
                timeout=args.timeout,
                warmup=warmup,
                measure=window,
                tls=args.tls,
                max_concurrency=args.max_concurrency,
                scrape_every=args.scrape_every,
                settle=args.settle,
                keep=args.keep,
                daemon_env=dict(item.split("=", 1) for item in args.daemon_env),
                profile=(
                    out.with_name(f"{out.stem}-n{n}-r{i + 1}.pstats") if args.profile else None
                ),
            )
            log(f"N={n} run {i + 1}/{args.repeat} (warmup {warmup:g}s, window {window:g}s)")
            try:
                r = run_once(cfg, i + 1)
            except (RuntimeError, OSError) as exc:
                log(f"  run failed: {exc}")
                runs.append({"n": n, "repeat": i + 1, "error": str(exc)})
                failed = True
                continue
            derive(r)
            log(
                f"  {r['probes_per_s']} probes/s (expected {r['expected_probes_per_s']}), "
                f"lag p50 {r['lag_p50_ms']} ms p99 {r['lag_p99_ms']} ms, "
                f"daemon {r.get('daemon_cpu_s_per_1000')} CPU s/1k, "
                f"exit {r['daemon_exit']['code']}"
            )
            mine.append(r)
            runs.append(r)
        if mine:
            report["summary"].append(summarise(mine))
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    ok_runs = [r for r in runs if "error" not in r]
    if ok_runs:
        print_runs(ok_runs)
        print()
        print_markdown(report["summary"])
    print(f"results: {out}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
