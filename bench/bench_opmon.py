#!/usr/bin/env python3
"""X-Road operational data ingestion benchmark: what does collecting 1,000,000 records a
day from one security server cost the daemon? Target: at most 1 % of one core on average.

Two parts, each on SQLite and on PostgreSQL (a private database per daemon, dropped after):

1. **Steady state.** A fake security server (``bench/opmon_sim.py``, its own process)
   whose records keep arriving at 1,000,000 a day (11.57/s): generated for the run's
   duration plus a margin with timestamps spread over it, published as time passes
   (X-Road's 60 s offset). Per database, two daemons with the same minimal catalog (the
   simulator's X-Road source, directory read every 12 h, its ~50 discovered checks every
   5 min): one with ``operational_monitoring`` (interval ``--interval``, default 1 min,
   health data every minute), one with it ``enabled: false``. All four run at once, under
   a real Prometheus scraping each ``/metrics`` every 15 s and the blackbox exporter
   (probing the simulator's health endpoint, ``http_2xx``) every 15 s; the other core
   busy with a busy loop (``--busy on``), idle (``off``) or alternately (``both``). Per
   window: CPU of each daemon with its children (``/proc``), of its PostgreSQL backends,
   of the blackbox exporter and of Prometheus; the ingestion share = (daemon with − daemon
   without) ÷ window; its ratio to the blackbox exporter's share.
2. **Catch-up** (large pages): a daemon starting with ``lookback`` over ``--catchup-records``
   (default 200,000) records, 10,000 a page. CPU from ``daemon.started`` until every
   record is stored, minus the same daemon without ``operational_monitoring`` over the
   same span: CPU seconds per 1,000 records, records/s, and the implied share of one core
   at 1,000,000 records a day.

Correctness: at the end of every window and catch-up, the records stored (the sum of
``count`` in ``scd_xroad_usage``, read in one statement with the cursor) must equal the
records the simulator holds before the cursor (its sorted timestamps, written by the
simulator at start), and no record may be refused. A run that loses records fails.

Everything talks to 127.0.0.1 only; every wait is bounded; processes write to files.
See ``bench/README.md``.
"""

from __future__ import annotations

import argparse
import bisect
import collections
import hashlib
import http.client
import importlib.metadata
import json
import os
import platform
import queue
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import uuid
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

import psycopg
import yaml

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
SIM_SCRIPT = Path(__file__).resolve().parent / "opmon_sim.py"
LOOPBACK = "127.0.0.1"
CLK_TCK = os.sysconf("SC_CLK_TCK")
PG_ADMIN = "host=127.0.0.1 port=5432 user=postgres dbname=test"
PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
PROMETHEUS = "/usr/bin/prometheus"
BLACKBOX = "/usr/bin/prometheus-blackbox-exporter"
PER_DAY = 1_000_000
RATE = PER_DAY / 86_400.0

READY_TIMEOUT = 180.0
START_TIMEOUT = 180.0
DAEMON_EXIT_BOUND = 45.0
OTHER_EXIT_BOUND = 15.0
CATCHUP_TIMEOUT = 900.0


# -- /proc -------------------------------------------------------------------------------


def _stat(path: str) -> list[str]:
    """Fields 3… of a ``stat`` file (``fields[0]`` is field 3, the state)."""
    text = Path(path).read_text()
    return text[text.rindex(")") + 2 :].split()


def proc_cpu(pid: int) -> float:
    """utime + stime of a process (all its threads)."""
    fields = _stat(f"/proc/{pid}/stat")
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def tree_cpu(pid: int) -> tuple[float, float]:
    """(CPU of the process, CPU of its descendants: live ones and those it reaped)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int(_stat(f"/proc/{entry.name}/stat")[1])
            except (OSError, ValueError, IndexError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    fields = _stat(f"/proc/{pid}/stat")
    own = (int(fields[11]) + int(fields[12])) / CLK_TCK
    total = (int(fields[13]) + int(fields[14])) / CLK_TCK
    stack = list(children.get(pid, []))
    while stack:
        child = stack.pop()
        try:
            f = _stat(f"/proc/{child}/stat")
        except OSError:
            continue
        total += sum(int(f[i]) for i in (11, 12, 13, 14)) / CLK_TCK
        stack.extend(children.get(child, []))
    return own, total


def peak_rss(pid: int) -> int | None:
    with suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return None


def system_cpu() -> tuple[float, float]:
    """(busy, total) jiffies of the whole machine."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:9]]
    return float(sum(values) - values[3] - values[4]), float(sum(values))


def cpu_pressure() -> float | None:
    try:
        first = Path("/proc/pressure/cpu").read_text().splitlines()[0]
    except OSError:
        return None
    return float(first.rsplit("total=", 1)[1])


def loadavg() -> list[float]:
    return [float(v) for v in Path("/proc/loadavg").read_text().split()[:3]]


def self_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def code_version() -> dict[str, Any]:
    """HEAD, uncommitted files under src/, a hash of src/**/*.py (read-only git)."""
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
    versions: dict[str, str | None] = {}
    for name in ("sqlalchemy", "psycopg", "httpx", "apscheduler", "prometheus-client"):
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    return {
        "nproc": os.cpu_count(),
        "cpu_model": model,
        "python": platform.python_version(),
        "kernel": platform.release(),
        "mem_total_bytes": os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"),
        "packages": versions,
        "prometheus": _first_line([PROMETHEUS, "--version"]),
        "blackbox_exporter": _first_line([BLACKBOX, "--version"]),
    }


def _first_line(cmd: list[str]) -> str | None:
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    text = (done.stdout or done.stderr).strip()
    return text.splitlines()[0] if text else None


# -- processes -----------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((LOOPBACK, 0))
        return int(s.getsockname()[1])


def http_get(port: int, path: str, timeout: float = 10.0) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection(LOOPBACK, port, timeout=timeout)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def wait_http(port: int, path: str, proc: subprocess.Popen[bytes], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args!r} exited with {proc.returncode}")
        with suppress(OSError):
            if http_get(port, path, timeout=2)[0] == 200:
                return
        time.sleep(0.3)
    raise RuntimeError(f"127.0.0.1:{port}{path} not ready within {timeout:.0f}s")


def wait_for_log(path: Path, needle: str, proc: subprocess.Popen[bytes], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if needle.encode() in path.read_bytes():
            return
        if proc.poll() is not None:
            raise RuntimeError(f"exited with code {proc.returncode} before {needle} ({path})")
        time.sleep(0.2)
    raise RuntimeError(f"{needle} not logged within {timeout:.0f}s ({path})")


def read_ready_line(proc: subprocess.Popen[bytes], timeout: float) -> dict[str, Any]:
    """The simulator's JSON ready line, read in a thread so the wait is bounded."""
    assert proc.stdout is not None
    lines: queue.Queue[bytes] = queue.Queue()
    stdout = proc.stdout
    threading.Thread(target=lambda: lines.put(stdout.readline()), daemon=True).start()
    try:
        line = lines.get(timeout=timeout)
    except queue.Empty:
        raise RuntimeError(f"simulator not ready within {timeout:.0f}s") from None
    if not line:
        raise RuntimeError(f"simulator exited before ready (code {proc.poll()})")
    ready: dict[str, Any] = json.loads(line)
    return ready


def stop_process(proc: subprocess.Popen[bytes], bound: float) -> dict[str, Any]:
    """SIGTERM, wait up to ``bound``; SIGKILL if still alive."""
    t0 = time.monotonic()
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    try:
        code = proc.wait(timeout=bound)
        return {"code": code, "seconds": round(time.monotonic() - t0, 2), "killed": False}
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)
        return {"code": None, "seconds": round(time.monotonic() - t0, 2), "killed": True}


def clean_env(extra: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SCD_MONITOR_")}
    env.update(extra)
    return env


class Processes:
    """Started subprocesses, stopped in reverse order however the run ends."""

    def __init__(self) -> None:
        self._procs: list[tuple[str, subprocess.Popen[bytes], float]] = []
        self._files: list[IO[bytes]] = []
        self.exits: dict[str, dict[str, Any]] = {}

    def start(
        self,
        name: str,
        cmd: list[str],
        log: Path,
        *,
        env: dict[str, str] | None = None,
        stdout_pipe: bool = False,
        bound: float = OTHER_EXIT_BOUND,
    ) -> subprocess.Popen[bytes]:
        out = log.open("wb")
        self._files.append(out)
        proc = subprocess.Popen(
            cmd,
            stdout=subprocess.PIPE if stdout_pipe else out,
            stderr=out,
            env=env,
            cwd=ROOT,
        )
        self._procs.append((name, proc, bound))
        return proc

    def stop(self, name: str) -> dict[str, Any] | None:
        for i, (n, proc, bound) in enumerate(self._procs):
            if n == name:
                del self._procs[i]
                self.exits[name] = stop_process(proc, bound)
                return self.exits[name]
        return None

    def stop_all(self) -> None:
        while self._procs:
            self.stop(self._procs[-1][0])
        for f in self._files:
            f.close()
        self._files.clear()


# -- databases -----------------------------------------------------------------------------


@dataclass
class Database:
    kind: str  # sqlite | postgresql
    url: str
    path: Path | None = None
    pg_name: str | None = None


@contextmanager
def database(kind: str, workdir: Path, label: str) -> Iterator[Database]:
    """A fresh SQLite file, or a private PostgreSQL database dropped afterwards."""
    if kind == "sqlite":
        path = workdir / f"{label}.db"
        yield Database(kind, f"sqlite:///{path}", path=path)
        return
    name = f"bench_opmon_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield Database(kind, PG_URL.format(name=name), pg_name=name)
    finally:
        with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def pg_backend_cpu(name: str) -> float:
    """CPU of the PostgreSQL backends connected to database ``name`` now (they live as long
    as the daemon's pooled connections; a backend that exits takes its CPU with it)."""
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        pids = [
            int(row[0])
            for row in conn.execute(
                "SELECT pid FROM pg_stat_activity WHERE datname = %s", (name,)
            ).fetchall()
        ]
    total = 0.0
    for pid in pids:
        with suppress(OSError):
            total += proc_cpu(pid)
    return total


def stored(db: Database) -> dict[str, Any]:
    """Records stored and the cursor, read in one statement (one snapshot)."""
    query = (
        'SELECT (SELECT COALESCE(SUM("count"), 0) FROM scd_xroad_usage), '
        "(SELECT COUNT(*) FROM scd_xroad_usage), "
        "next_records_from, records_total, refused_total FROM scd_xroad_usage_cursors"
    )
    empty = {"records": 0, "rows": 0, "cursor": None, "records_total": 0, "refused_total": 0}
    rows: list[tuple[Any, ...]]
    if db.kind == "sqlite":
        import sqlite3

        assert db.path is not None
        if not db.path.exists():
            return empty
        conn = sqlite3.connect(f"file:{db.path}?mode=ro", uri=True, timeout=30)
        try:
            rows = conn.execute(query).fetchall()
        except sqlite3.OperationalError:  # no schema yet
            return empty
        finally:
            conn.close()
    else:
        assert db.pg_name is not None
        with psycopg.connect(
            f"host=127.0.0.1 port=5432 user=postgres dbname={db.pg_name}", autocommit=True
        ) as pg:
            try:
                rows = pg.execute(query).fetchall()
            except psycopg.errors.UndefinedTable:
                return empty
    if not rows:
        return empty
    if len(rows) != 1:
        raise RuntimeError(f"expected one cursor row, got {len(rows)}")
    records, n_rows, cursor, total, refused = rows[0]
    return {
        "records": int(records),
        "rows": int(n_rows),
        "cursor": int(cursor),
        "records_total": int(total),
        "refused_total": int(refused),
    }


class Truth:
    """The simulator's records, as their sorted timestamps."""

    def __init__(self, path: Path) -> None:
        self.stamps = [int(line) for line in path.read_text(encoding="utf-8").split()]

    def before(self, cursor: int | None) -> int:
        """Records published before ``cursor`` (all the daemon may have stored)."""
        return 0 if cursor is None else bisect.bisect_left(self.stamps, cursor)


def check(db: Database, truth: Truth, *, opmon: bool) -> dict[str, Any]:
    s = stored(db)
    expected = truth.before(s["cursor"]) if opmon else 0
    s["expected"] = expected
    s["ok"] = (
        s["records"] == expected
        and s["refused_total"] == 0
        and (not opmon or s["records_total"] == s["records"])
    )
    s["cursor_lag_s"] = round(time.time() - s["cursor"], 1) if s["cursor"] is not None else None
    return s


# -- catalog, Prometheus -------------------------------------------------------------------


def write_catalog(
    source: Path,
    dest: Path,
    *,
    server: str,
    enabled: bool,
    interval: str,
    lookback: str,
) -> None:
    data: dict[str, Any] = yaml.safe_load(source.read_text(encoding="utf-8"))
    (xroad,) = data["xroad"]
    xroad["operational_monitoring"] = {
        "enabled": enabled,
        "security_servers": [server],
        "interval": interval,
        "health_interval": "1m",
        "lookback": lookback,
        "publish_delay": "1m",
    }
    dest.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True), "utf-8")


def prometheus_files(
    workdir: Path, daemons: Sequence[int], bb_port: int, target: str, every: float
) -> tuple[Path, Path]:
    blackbox = workdir / "blackbox.yml"
    blackbox.write_text(
        yaml.safe_dump(
            {
                "modules": {
                    "http_2xx": {
                        "prober": "http",
                        "timeout": "5s",
                        "http": {"preferred_ip_protocol": "ip4"},
                    }
                }
            }
        ),
        "utf-8",
    )
    config = {
        "global": {
            "scrape_interval": f"{every:g}s",
            "scrape_timeout": "10s",
            "evaluation_interval": "1m",
        },
        "scrape_configs": [
            {
                "job_name": "scd-monitor",
                "static_configs": [{"targets": [f"{LOOPBACK}:{p}" for p in daemons]}],
            },
            {
                "job_name": "blackbox",
                "metrics_path": "/probe",
                "params": {"module": ["http_2xx"]},
                "static_configs": [{"targets": [target]}],
                "relabel_configs": [
                    {"source_labels": ["__address__"], "target_label": "__param_target"},
                    {"source_labels": ["__param_target"], "target_label": "instance"},
                    {"target_label": "__address__", "replacement": f"{LOOPBACK}:{bb_port}"},
                ],
            },
        ],
    }
    prom = workdir / "prometheus.yml"
    prom.write_text(yaml.safe_dump(config, sort_keys=False), "utf-8")
    return prom, blackbox


def prom_query(port: int, expr: str) -> list[dict[str, Any]]:
    status, body = http_get(port, "/api/v1/query?" + urllib.parse.urlencode({"query": expr}))
    if status != 200:
        return []
    result: list[dict[str, Any]] = json.loads(body)["data"]["result"]
    return result


# -- the steady state --------------------------------------------------------------------


@dataclass
class Arm:
    db: Database
    opmon: bool
    port: int
    log: Path
    proc: subprocess.Popen[bytes] | None = None

    @property
    def name(self) -> str:
        return f"{self.db.kind}-{'on' if self.opmon else 'off'}"


@dataclass
class SteadyConfig:
    dbs: list[str]
    warmup: float
    window: float
    settle: float
    schedule: list[bool]  # busy core per window
    interval: str
    scrape_every: float
    prometheus: bool
    keep: bool
    seed: int
    margin: float = 300.0
    extra: dict[str, Any] = field(default_factory=dict)


def daemon_cmd(catalog: Path, port: int, url: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "scd_monitor",
        "run",
        "--catalog",
        str(catalog),
        "--listen",
        f"{LOOPBACK}:{port}",
        "--database-url",
        url,
    ]


DAEMON_ENV = {"SCD_MONITOR_LOG_FORMAT": "json", "SCD_MONITOR_LOG_LEVEL": "info"}


def daemon_env(spool: Path) -> dict[str, str]:
    """The daemon's environment, with a spool directory of its own (the default,
    ``data/spool`` under the working directory, admits one daemon at a time)."""
    return clean_env({**DAEMON_ENV, "SCD_MONITOR_SPOOL_DIR": str(spool)})


def edge(arms: Sequence[Arm], others: dict[str, int]) -> dict[str, Any]:
    """CPU counters of everything at one instant."""
    out: dict[str, Any] = {"t": time.monotonic(), "arms": {}, "others": {}}
    for arm in arms:
        assert arm.proc is not None
        own, children = tree_cpu(arm.proc.pid)
        out["arms"][arm.name] = {
            "own": own,
            "children": children,
            "pg": pg_backend_cpu(arm.db.pg_name) if arm.db.pg_name else 0.0,
        }
    for name, pid in others.items():
        try:
            out["others"][name] = proc_cpu(pid)
        except OSError:
            out["others"][name] = None
    out["system"] = system_cpu()
    out["psi"] = cpu_pressure()
    out["self"] = self_cpu()
    return out


def steady(cfg: SteadyConfig, out_report: dict[str, Any], save: Any) -> bool:
    """Part 1; appends windows to ``out_report["steady"]``; False if something failed."""
    workdir = Path(tempfile.mkdtemp(prefix="scd-bench-opmon-steady-"))
    section: dict[str, Any] = {"workdir": str(workdir), "windows": [], "config": {}}
    out_report["steady"] = section
    total = cfg.warmup + len(cfg.schedule) * (cfg.window + cfg.settle) + cfg.margin + 120
    start = int(time.time())
    n_records = round(RATE * total)
    section["config"] = {
        "dbs": cfg.dbs,
        "warmup_s": cfg.warmup,
        "window_s": cfg.window,
        "settle_s": cfg.settle,
        "busy_schedule": cfg.schedule,
        "opmon_interval": cfg.interval,
        "health_interval": "1m",
        "publish_delay": "1m",
        "lookback": "1d",
        "scrape_every_s": cfg.scrape_every if cfg.prometheus else None,
        "records_generated": n_records,
        "records_span_s": total,
        "rate_per_s": round(RATE, 3),
    }
    ok = True
    procs = Processes()
    with ExitStack() as stack:
        stack.callback(procs.stop_all)
        sim = procs.start(
            "simulator",
            [
                sys.executable,
                str(SIM_SCRIPT),
                "--workdir",
                str(workdir / "sim"),
                "--catalog-out",
                str(workdir / "sim-catalog.yaml"),
                "--truth",
                str(workdir / "truth.txt"),
                "--records",
                str(n_records),
                "--start",
                str(start),
                "--end",
                str(start + int(total)),
                "--seed",
                str(cfg.seed),
            ],
            workdir / "simulator.log",
            env=clean_env({}),
            stdout_pipe=True,
        )
        ready = read_ready_line(sim, READY_TIMEOUT)
        section["simulator"] = ready
        truth = Truth(workdir / "truth.txt")
        catalogs = {}
        for enabled in (True, False):
            catalogs[enabled] = workdir / f"catalog-{'on' if enabled else 'off'}.yaml"
            write_catalog(
                Path(ready["catalog"]),
                catalogs[enabled],
                server=ready["security_server"],
                enabled=enabled,
                interval=cfg.interval,
                lookback="1d",
            )
        arms: list[Arm] = []
        for kind in cfg.dbs:
            for enabled in (True, False):
                db = stack.enter_context(
                    database(kind, workdir, f"{kind}-{'on' if enabled else 'off'}")
                )
                arms.append(Arm(db, enabled, free_port(), workdir / f"daemon-{kind}-{enabled}.log"))
        for arm in arms:
            arm.proc = procs.start(
                arm.name,
                daemon_cmd(catalogs[arm.opmon], arm.port, arm.db.url),
                arm.log,
                env=daemon_env(workdir / f"spool-{arm.name}"),
                bound=DAEMON_EXIT_BOUND,
            )
        for arm in arms:
            assert arm.proc is not None
            wait_for_log(arm.log, "daemon.started", arm.proc, START_TIMEOUT)
        others: dict[str, int] = {"simulator": sim.pid}
        prom_port = 0
        if cfg.prometheus:
            bb_port, prom_port = free_port(), free_port()
            prom_cfg, bb_cfg = prometheus_files(
                workdir, [a.port for a in arms], bb_port, ready["health_url"], cfg.scrape_every
            )
            bb = procs.start(
                "blackbox",
                [
                    BLACKBOX,
                    f"--config.file={bb_cfg}",
                    f"--web.listen-address={LOOPBACK}:{bb_port}",
                ],
                workdir / "blackbox.log",
            )
            wait_http(bb_port, "/metrics", bb, 60)
            prom = procs.start(
                "prometheus",
                [
                    PROMETHEUS,
                    f"--config.file={prom_cfg}",
                    f"--storage.tsdb.path={workdir / 'prometheus'}",
                    f"--web.listen-address={LOOPBACK}:{prom_port}",
                ],
                workdir / "prometheus.log",
            )
            wait_http(prom_port, "/-/ready", prom, 60)
            others.update(blackbox=bb.pid, prometheus=prom.pid)
        started_mono = time.monotonic()
        log(f"steady: {len(arms)} daemons up, {n_records} records over {total:.0f}s; warm-up")
        busy: subprocess.Popen[bytes] | None = None

        def set_busy(on: bool) -> None:
            nonlocal busy
            if on and busy is None:
                busy = procs.start(
                    "busy", [sys.executable, "-c", "while True: pass"], workdir / "busy.log"
                )
                others["busy"] = busy.pid
            elif not on and busy is not None:
                procs.stop("busy")
                busy = None
                others.pop("busy", None)

        def alive_wait(seconds: float) -> None:
            deadline = time.monotonic() + seconds
            while time.monotonic() < deadline:
                for arm in arms:
                    assert arm.proc is not None
                    if arm.proc.poll() is not None:
                        raise RuntimeError(f"daemon {arm.name} exited with {arm.proc.returncode}")
                time.sleep(min(1.0, max(0.0, deadline - time.monotonic())))

        set_busy(cfg.schedule[0] if cfg.schedule else False)
        alive_wait(cfg.warmup)
        for i, busy_on in enumerate(cfg.schedule):
            set_busy(busy_on)
            alive_wait(cfg.settle)
            before = {a.name: check(a.db, truth, opmon=a.opmon) for a in arms}
            e0 = edge(arms, others)
            wall0 = datetime.now(UTC).isoformat(timespec="seconds")
            log(f"steady window {i + 1}/{len(cfg.schedule)} (busy core: {busy_on}) {wall0}")
            alive_wait(cfg.window)
            e1 = edge(arms, others)
            after = {a.name: check(a.db, truth, opmon=a.opmon) for a in arms}
            w = window_result(i + 1, busy_on, wall0, e0, e1, before, after, arms)
            section["windows"].append(w)
            if not all(x["ok"] for x in after.values()):
                ok = False
                log(f"  CORRECTNESS FAILED: {after}")
            for kind, d in w["by_db"].items():
                log(
                    f"  {kind}: ingestion {d['ingest_share_pct']:.3f} % of a core "
                    f"(on {d['on_share_pct']:.3f} %, off {d['off_share_pct']:.3f} %), "
                    f"{d['records_in_window']} records, blackbox "
                    f"{fmt(w.get('blackbox_share_pct'), 3)} %"
                )
            save()
        set_busy(False)
        if cfg.prometheus:
            span = int(time.monotonic() - started_mono) - 5
            section["prometheus_up"] = [
                {
                    "job": r["metric"].get("job"),
                    "instance": r["metric"].get("instance"),
                    "min_up": float(r["value"][1]),
                }
                for r in prom_query(prom_port, f"min_over_time(up[{span}s])")
            ]
            section["prometheus_scrapes"] = {
                r["metric"].get("instance", "?"): float(r["value"][1])
                for r in prom_query(prom_port, f"count_over_time(up[{span}s])")
            }
            section["blackbox_probe_success_min"] = [
                float(r["value"][1])
                for r in prom_query(prom_port, f"min_over_time(probe_success[{span}s])")
            ]
        section["peak_rss_bytes"] = {
            a.name: peak_rss(a.proc.pid) for a in arms if a.proc is not None
        }
        for arm in arms:
            section.setdefault("daemon_exit", {})[arm.name] = procs.stop(arm.name)
        section["final"] = {a.name: check(a.db, truth, opmon=a.opmon) for a in arms}
        if not all(x["ok"] for x in section["final"].values()):
            ok = False
            log(f"final CORRECTNESS FAILED: {section['final']}")
        section["log_problems"] = {a.name: log_problems(a.log) for a in arms}
        procs.stop_all()
        if not cfg.keep and ok:
            shutil.rmtree(workdir, ignore_errors=True)
    return ok


def window_result(
    index: int,
    busy_on: bool,
    wall0: str,
    e0: dict[str, Any],
    e1: dict[str, Any],
    before: dict[str, dict[str, Any]],
    after: dict[str, dict[str, Any]],
    arms: Sequence[Arm],
) -> dict[str, Any]:
    window = e1["t"] - e0["t"]
    w: dict[str, Any] = {
        "index": index,
        "busy_core": busy_on,
        "start_utc": wall0,
        "window_s": round(window, 2),
        "loadavg_end": loadavg(),
        "arms": {},
        "by_db": {},
    }
    ours = 0.0
    for arm in arms:
        a0, a1 = e0["arms"][arm.name], e1["arms"][arm.name]
        own = a1["own"] - a0["own"]
        children = a1["children"] - a0["children"]
        pg = a1["pg"] - a0["pg"]
        ours += own + children + pg
        w["arms"][arm.name] = {
            "cpu_s": round(own, 3),
            "children_cpu_s": round(children, 3),
            "pg_backend_cpu_s": round(pg, 3),
            "before": before[arm.name],
            "after": after[arm.name],
        }
    for name in e0["others"]:
        v0, v1 = e0["others"][name], e1["others"].get(name)
        if v0 is not None and v1 is not None:
            w[f"{name}_cpu_s"] = round(v1 - v0, 3)
            w[f"{name}_share_pct"] = round((v1 - v0) / window * 100, 3)
            ours += v1 - v0
    harness = e1["self"] - e0["self"]
    ours += harness
    w["harness_cpu_s"] = round(harness, 3)
    busy = (e1["system"][0] - e0["system"][0]) / CLK_TCK
    w["machine_busy_cores"] = round(busy / window, 3)
    w["other_busy_cores"] = round((busy - ours) / window, 3)
    if e0["psi"] is not None and e1["psi"] is not None:
        w["cpu_pressure_some_pct"] = round((e1["psi"] - e0["psi"]) / 1e6 / window * 100, 1)
    kinds = dict.fromkeys(arm.db.kind for arm in arms)
    for kind in kinds:
        on, off = w["arms"][f"{kind}-on"], w["arms"][f"{kind}-off"]
        on_cpu = on["cpu_s"] + on["children_cpu_s"]
        off_cpu = off["cpu_s"] + off["children_cpu_s"]
        diff = on_cpu - off_cpu
        diff_pg = diff + on["pg_backend_cpu_s"] - off["pg_backend_cpu_s"]
        records = on["after"]["records"] - on["before"]["records"]
        d = {
            "on_cpu_s": round(on_cpu, 3),
            "off_cpu_s": round(off_cpu, 3),
            "on_share_pct": round(on_cpu / window * 100, 3),
            "off_share_pct": round(off_cpu / window * 100, 3),
            "ingest_cpu_s": round(diff, 3),
            "ingest_share_pct": round(diff / window * 100, 3),
            "ingest_share_with_pg_pct": round(diff_pg / window * 100, 3),
            "on_pg_backend_share_pct": round(on["pg_backend_cpu_s"] / window * 100, 3),
            "records_in_window": records,
            "records_per_s": round(records / window, 2),
            "ingest_us_per_record": round(diff / records * 1e6, 1) if records else None,
            "correct": on["after"]["ok"] and off["after"]["ok"],
            "cursor_lag_s": on["after"]["cursor_lag_s"],
        }
        bb = w.get("blackbox_share_pct")
        d["ratio_to_blackbox"] = round(d["ingest_share_pct"] / bb, 3) if bb else None
        d["on_ratio_to_blackbox"] = round(d["on_share_pct"] / bb, 3) if bb else None
        w["by_db"][kind] = d
    return w


def log_problems(path: Path) -> dict[str, Any]:
    """Warnings and errors of a daemon's JSON log, by event."""
    counts: collections.Counter[str] = collections.Counter()
    first: dict[str, str] = {}
    with path.open("rb") as f:
        for raw in f:
            try:
                entry = json.loads(raw)
            except ValueError:
                continue
            level = str(entry.get("level", ""))
            if level in ("warning", "error", "critical"):
                key = f"{level}:{entry.get('event')}"
                counts[key] += 1
                first.setdefault(key, raw.decode(errors="replace")[:400])
    return {"counts": dict(counts), "first": first}


# -- catch-up ------------------------------------------------------------------------------


@dataclass
class CatchupConfig:
    dbs: list[str]
    records: int
    page: int
    repeat: int
    busy: bool
    keep: bool
    seed: int
    profile: Path | None


def py_spy() -> str | None:
    found = shutil.which("py-spy")
    if found:
        return found
    candidate = Path("/tmp/pyspy/bin/py-spy")
    return str(candidate) if candidate.exists() else None


def catchup(cfg: CatchupConfig, out_report: dict[str, Any], save: Any) -> bool:
    workdir = Path(tempfile.mkdtemp(prefix="scd-bench-opmon-catchup-"))
    section: dict[str, Any] = {"workdir": str(workdir), "runs": []}
    out_report["catchup"] = section
    now = int(time.time())
    start, end = now - 3 * 3600, now - 300
    section["config"] = {
        "records": cfg.records,
        "page": cfg.page,
        "span": [start, end],
        "lookback": "4h",
        "opmon_interval": "1m",
        "max_pages": 1000,
        "busy_core": cfg.busy,
        "prometheus": False,
    }
    ok = True
    procs = Processes()
    with ExitStack() as stack:
        stack.callback(procs.stop_all)
        sim = procs.start(
            "simulator",
            [
                sys.executable,
                str(SIM_SCRIPT),
                "--workdir",
                str(workdir / "sim"),
                "--catalog-out",
                str(workdir / "sim-catalog.yaml"),
                "--truth",
                str(workdir / "truth.txt"),
                "--records",
                str(cfg.records),
                "--start",
                str(start),
                "--end",
                str(end),
                "--page",
                str(cfg.page),
                "--seed",
                str(cfg.seed),
            ],
            workdir / "simulator.log",
            env=clean_env({}),
            stdout_pipe=True,
        )
        ready = read_ready_line(sim, READY_TIMEOUT)
        section["simulator"] = ready
        truth = Truth(workdir / "truth.txt")
        catalogs = {}
        for enabled in (True, False):
            catalogs[enabled] = workdir / f"catalog-{'on' if enabled else 'off'}.yaml"
            write_catalog(
                Path(ready["catalog"]),
                catalogs[enabled],
                server=ready["security_server"],
                enabled=enabled,
                interval="1m",
                lookback="4h",
            )
        if cfg.busy:
            procs.start("busy", [sys.executable, "-c", "while True: pass"], workdir / "busy.log")
        plan = [(r, kind, False) for r in range(1, cfg.repeat + 1) for kind in cfg.dbs]
        if cfg.profile is not None:
            plan += [(0, kind, True) for kind in cfg.dbs]
        for rep, kind, profiled in plan:
            label = f"{kind}-r{rep}{'-profile' if profiled else ''}"
            log(f"catch-up {label}: {cfg.records} records, page {cfg.page}")
            run: dict[str, Any] = {"db": kind, "repeat": rep, "profiled": profiled}
            try:
                with database(kind, workdir, label) as db:
                    run.update(
                        catchup_once(db, catalogs, truth, workdir, label, procs, cfg, profiled)
                    )
            except (RuntimeError, OSError, psycopg.Error) as exc:
                run["error"] = str(exc)
                log(f"  failed: {exc}")
            if not run.get("correct"):
                ok = False
            section["runs"].append(run)
            if "error" not in run:
                log(
                    f"  {run['cpu_s_per_1000']:.3f} CPU s/1k records (net), "
                    f"{run['records_per_s']:.0f} records/s, implied "
                    f"{run['implied_share_pct']:.3f} % of a core at 1M/day, "
                    f"correct {run['correct']}"
                )
            save()
        procs.stop_all()
        if not cfg.keep and ok:
            shutil.rmtree(workdir, ignore_errors=True)
    return ok


def catchup_once(
    db: Database,
    catalogs: dict[bool, Path],
    truth: Truth,
    workdir: Path,
    label: str,
    procs: Processes,
    cfg: CatchupConfig,
    profiled: bool,
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    port = free_port()
    dlog = workdir / f"daemon-{label}-on.log"
    # the same daemon without operational monitoring, at the same time, on its own SQLite
    # file: its CPU over the same span is the baseline subtracted
    plog = workdir / f"daemon-{label}-off.log"
    off_url = f"sqlite:///{workdir / f'{label}-off.db'}"
    proc = procs.start(
        f"on-{label}",
        daemon_cmd(catalogs[True], port, db.url),
        dlog,
        env=daemon_env(workdir / f"spool-{label}-on"),
        bound=DAEMON_EXIT_BOUND,
    )
    off_port = free_port()
    off = procs.start(
        f"off-{label}",
        daemon_cmd(catalogs[False], off_port, off_url),
        plog,
        env=daemon_env(workdir / f"spool-{label}-off"),
        bound=DAEMON_EXIT_BOUND,
    )
    wait_for_log(plog, "daemon.started", off, START_TIMEOUT)
    off0 = sum(tree_cpu(off.pid))
    wait_for_log(dlog, "daemon.started", proc, START_TIMEOUT)
    own0, ch0 = tree_cpu(proc.pid)
    pg0 = pg_backend_cpu(db.pg_name) if db.pg_name else 0.0
    t0 = time.monotonic()
    spy: subprocess.Popen[bytes] | None = None
    spy_out = None
    if profiled and cfg.profile is not None:
        tool = py_spy()
        if tool is None:
            raise RuntimeError("--profile needs py-spy (pip install --target /tmp/pyspy py-spy)")
        spy_out = cfg.profile.with_name(f"{cfg.profile.stem}-{label}.txt")
        spy = procs.start(
            f"spy-{label}",
            [
                tool,
                "record",
                "--pid",
                str(proc.pid),
                "--rate",
                "100",
                "--threads",
                "--idle",
                "--format",
                "raw",
                "-o",
                str(spy_out),
            ],
            workdir / f"spy-{label}.log",
            bound=30,
        )
    t_first: float | None = None
    deadline = t0 + CATCHUP_TIMEOUT
    state: dict[str, Any] = {}
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"daemon exited with {proc.returncode}")
        state = stored(db)
        if t_first is None and state["records"] > 0:
            t_first = time.monotonic()
        if state["records"] >= cfg.records:
            break
        time.sleep(0.2)
    else:
        raise RuntimeError(f"catch-up not done within {CATCHUP_TIMEOUT:.0f}s: {state}")
    t1 = time.monotonic()
    own1, ch1 = tree_cpu(proc.pid)
    off1 = sum(tree_cpu(off.pid))
    # after the span: what one /metrics scrape costs each daemon (the collector's series)
    out["scrape"] = {"on": scrape_cost(proc.pid, port), "off": scrape_cost(off.pid, off_port)}
    procs.stop(f"off-{label}")
    pg1 = pg_backend_cpu(db.pg_name) if db.pg_name else 0.0
    if spy is not None:  # py-spy writes its output on SIGINT
        spy.send_signal(signal.SIGINT)
        with suppress(subprocess.TimeoutExpired):
            spy.wait(timeout=30)
        procs.stop(f"spy-{label}")
    out["peak_rss_bytes"] = peak_rss(proc.pid)
    out["daemon_exit"] = procs.stop(f"on-{label}")
    result = check(db, truth, opmon=True)
    out["check"] = result
    out["correct"] = result["ok"] and result["records"] == cfg.records
    span = t1 - t0
    on_cpu = (own1 - own0) + (ch1 - ch0)
    out["span_s"] = round(span, 2)
    out["first_page_after_s"] = round(t_first - t0, 2) if t_first is not None else None
    out["on_cpu_s"] = round(on_cpu, 3)
    out["pg_backend_cpu_s"] = round(pg1 - pg0, 3)
    out["log_problems"] = log_problems(dlog)
    off_cpu = off1 - off0
    out["off_cpu_s"] = round(off_cpu, 3)
    net = on_cpu - off_cpu
    out["net_cpu_s"] = round(net, 3)
    out["cpu_s_per_1000"] = round(net / cfg.records * 1000, 4)
    out["cpu_s_per_1000_gross"] = round(on_cpu / cfg.records * 1000, 4)
    out["cpu_s_per_1000_with_pg"] = round((net + pg1 - pg0) / cfg.records * 1000, 4)
    out["records_per_s"] = round(cfg.records / span, 1)
    out["records_per_s_from_first_page"] = (
        round(cfg.records / (t1 - t_first), 1) if t_first is not None and t1 > t_first else None
    )
    out["implied_share_pct"] = round(net / cfg.records * PER_DAY / 86_400 * 100, 4)
    out["implied_share_with_pg_pct"] = round(
        (net + pg1 - pg0) / cfg.records * PER_DAY / 86_400 * 100, 4
    )
    if spy_out is not None and spy_out.exists():
        out["profile"] = {"file": str(spy_out), **profile_summary(spy_out)}
    return out


def scrape_cost(pid: int, port: int) -> dict[str, Any]:
    """One ``GET /metrics``: bytes, series, wall and the daemon's CPU."""
    cpu0, t0 = proc_cpu(pid), time.perf_counter()
    status, body = http_get(port, "/metrics", timeout=30)
    wall, cpu = time.perf_counter() - t0, proc_cpu(pid) - cpu0
    series = sum(1 for line in body.splitlines() if line and not line.startswith(b"#"))
    opmon = sum(1 for line in body.splitlines() if line.startswith(b"scd_xroad_"))
    return {
        "status": status,
        "bytes": len(body),
        "series": series,
        "scd_xroad_series": opmon,
        "wall_s": round(wall, 3),
        "daemon_cpu_s": round(cpu, 3),
    }


def profile_summary(path: Path, top: int = 30) -> dict[str, Any]:
    """py-spy's collapsed stacks (``--format raw``): samples by own frame and inclusive."""
    own: collections.Counter[str] = collections.Counter()
    inclusive: collections.Counter[str] = collections.Counter()
    threads: collections.Counter[str] = collections.Counter()
    total = 0
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        n = int(count_text)
        frames = stack.split(";")
        if frames and "(idle)" in frames[-1]:
            continue
        total += n
        threads[frames[0]] += n
        own[frames[-1]] += n
        for frame in set(frames[1:]):
            inclusive[frame] += n
    return {
        "samples_active": total,
        "threads": threads.most_common(10),
        "own": [(f, n, round(n / total * 100, 1)) for f, n in own.most_common(top)]
        if total
        else [],
        "inclusive": [(f, n, round(n / total * 100, 1)) for f, n in inclusive.most_common(top)]
        if total
        else [],
    }


# -- summary -------------------------------------------------------------------------------


def fmt(v: Any, digits: int = 2) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:,.{digits}f}"
    return str(v)


def med(values: Sequence[float | None]) -> dict[str, float | None]:
    present = [v for v in values if v is not None]
    if not present:
        return {"median": None, "min": None, "max": None, "n": 0}
    return {
        "median": statistics.median(present),
        "min": min(present),
        "max": max(present),
        "n": len(present),
    }


STEADY_KEYS = (
    "ingest_share_pct",
    "ingest_share_with_pg_pct",
    "on_share_pct",
    "off_share_pct",
    "on_pg_backend_share_pct",
    "records_per_s",
    "ingest_us_per_record",
    "ratio_to_blackbox",
    "on_ratio_to_blackbox",
    "cursor_lag_s",
)
WINDOW_KEYS = (
    "blackbox_share_pct",
    "prometheus_share_pct",
    "simulator_share_pct",
    "busy_share_pct",
    "other_busy_cores",
    "machine_busy_cores",
    "cpu_pressure_some_pct",
)
CATCHUP_KEYS = (
    "cpu_s_per_1000",
    "cpu_s_per_1000_gross",
    "cpu_s_per_1000_with_pg",
    "records_per_s",
    "records_per_s_from_first_page",
    "implied_share_pct",
    "implied_share_with_pg_pct",
    "on_cpu_s",
    "off_cpu_s",
    "pg_backend_cpu_s",
    "span_s",
    "peak_rss_bytes",
)


def summarise(report: dict[str, Any]) -> dict[str, Any]:
    summary: dict[str, Any] = {}
    windows = report.get("steady", {}).get("windows", [])
    for busy_on in (True, False):
        mine = [w for w in windows if w["busy_core"] is busy_on]
        if not mine:
            continue
        key = "busy" if busy_on else "idle"
        group: dict[str, Any] = {"windows": len(mine)}
        for k in WINDOW_KEYS:
            group[k] = med([w.get(k) for w in mine])
        for kind in mine[0]["by_db"]:
            group[kind] = {k: med([w["by_db"][kind].get(k) for w in mine]) for k in STEADY_KEYS}
            group[kind]["all_correct"] = all(w["by_db"][kind]["correct"] for w in mine)
        summary[f"steady_{key}"] = group
    runs = [
        r for r in report.get("catchup", {}).get("runs", []) if "error" not in r and r["repeat"]
    ]
    for kind in dict.fromkeys(r["db"] for r in runs):
        mine = [r for r in runs if r["db"] == kind]
        group = {k: med([r.get(k) for r in mine]) for k in CATCHUP_KEYS}
        group["runs"] = len(mine)
        group["all_correct"] = all(r["correct"] for r in mine)
        summary[f"catchup_{kind}"] = group
    return summary


def cell(v: dict[str, Any], digits: int, scale: float = 1.0) -> str:
    if v.get("median") is None:
        return "-"
    m, lo, hi = (v[x] * scale for x in ("median", "min", "max"))
    if v["n"] == 1 or lo == hi:
        return f"{m:,.{digits}f}"
    return f"{m:,.{digits}f} ({lo:,.{digits}f} – {hi:,.{digits}f})"


def print_markdown(report: dict[str, Any]) -> None:
    s = report["summary"]
    for key in ("steady_busy", "steady_idle"):
        if key not in s:
            continue
        g = s[key]
        kinds = [k for k in g if isinstance(g[k], dict) and "ingest_share_pct" in g[k]]
        load = "other core busy" if key == "steady_busy" else "no busy loop"
        print(
            f"\n**Steady state, 1,000,000 records/day, {load}** "
            f"— median (min – max) of {g['windows']} windows\n"
        )
        print("| | " + " | ".join(kinds) + " |")
        print("|---|" + "---:|" * len(kinds))
        rows = (
            ("ingestion: daemon with − without opmon, % of one core", "ingest_share_pct", 3),
            ("… including the PostgreSQL backends", "ingest_share_with_pg_pct", 3),
            ("daemon with opmon, % of one core", "on_share_pct", 3),
            ("daemon without opmon, % of one core", "off_share_pct", 3),
            ("its PostgreSQL backends, % of one core", "on_pg_backend_share_pct", 3),
            ("records stored per second", "records_per_s", 2),
            ("ingestion CPU per record, µs", "ingest_us_per_record", 0),
            ("ingestion ÷ blackbox exporter", "ratio_to_blackbox", 2),
            ("whole daemon with opmon ÷ blackbox exporter", "on_ratio_to_blackbox", 2),
            ("cursor lag at window end, s", "cursor_lag_s", 0),
        )
        for label, k, digits in rows:
            print(f"| {label} | " + " | ".join(cell(g[kind][k], digits) for kind in kinds) + " |")
        print(
            "| stored = published before the cursor, every window | "
            + " | ".join("yes" if g[kind]["all_correct"] else "**NO**" for kind in kinds)
            + " |"
        )
        print("\n| same windows | |\n|---|---:|")
        for label, k, digits in (
            ("blackbox exporter, % of one core", "blackbox_share_pct", 3),
            ("Prometheus, % of one core", "prometheus_share_pct", 2),
            ("simulator, % of one core", "simulator_share_pct", 2),
            ("busy loop, % of one core", "busy_share_pct", 1),
            ("other load on the machine, cores", "other_busy_cores", 2),
            ("machine busy, cores", "machine_busy_cores", 2),
            ("CPU pressure (some), % of window", "cpu_pressure_some_pct", 1),
        ):
            print(f"| {label} | {cell(g[k], digits)} |")
    kinds = [k.removeprefix("catchup_") for k in s if k.startswith("catchup_")]
    if kinds:
        runs = s[f"catchup_{kinds[0]}"]["runs"]
        print(f"\n**Catch-up** — median (min – max) of {runs} runs\n")
        print("| | " + " | ".join(kinds) + " |")
        print("|---|" + "---:|" * len(kinds))
        for label, k, digits, scale in (
            ("CPU s per 1,000 records (net of the daemon without opmon)", "cpu_s_per_1000", 3, 1),
            ("… gross (the daemon with opmon alone)", "cpu_s_per_1000_gross", 3, 1),
            ("… net, with the PostgreSQL backends", "cpu_s_per_1000_with_pg", 3, 1),
            ("records/s (daemon.started → all stored)", "records_per_s", 0, 1),
            ("records/s (first page stored → all stored)", "records_per_s_from_first_page", 0, 1),
            ("implied share of one core at 1M/day, %", "implied_share_pct", 3, 1),
            ("… with the PostgreSQL backends, %", "implied_share_with_pg_pct", 3, 1),
            ("daemon peak RSS, MiB", "peak_rss_bytes", 0, 2**-20),
        ):
            print(
                f"| {label} | "
                + " | ".join(cell(s[f"catchup_{kind}"][k], digits, scale) for kind in kinds)
                + " |"
            )
        print(
            "| stored = published, every run | "
            + " | ".join(
                "yes" if s[f"catchup_{kind}"]["all_correct"] else "**NO**" for kind in kinds
            )
            + " |"
        )


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# -- main ----------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("--quick", action="store_true", help="smoke run: 60 s windows, 1 repeat")
    p.add_argument("--db", nargs="+", choices=("sqlite", "postgresql"), default=None)
    p.add_argument("--warmup", type=float, help="seconds before the first window (180)")
    p.add_argument("--window", type=float, help="seconds per window (240)")
    p.add_argument("--settle", type=float, default=15.0, help="pause before each window (15 s)")
    p.add_argument("--repeat", type=int, help="windows per busy-core state (3)")
    p.add_argument(
        "--busy",
        choices=("on", "off", "both"),
        default="both",
        help="the other core busy with a busy loop: in every window, none, or alternately",
    )
    p.add_argument("--interval", default="1m", help="operational_monitoring.interval (1m)")
    p.add_argument("--scrape-every", type=float, default=15.0)
    p.add_argument("--no-prometheus", action="store_true")
    p.add_argument("--catchup-records", type=int, help="records for part 2 (200,000)")
    p.add_argument("--catchup-page", type=int, default=10_000)
    p.add_argument("--catchup-repeat", type=int, help="runs per database (3)")
    p.add_argument("--skip-steady", action="store_true")
    p.add_argument("--skip-catchup", action="store_true")
    p.add_argument(
        "--profile",
        action="store_true",
        help="one more catch-up per database under py-spy (its figures are not the benchmark's)",
    )
    p.add_argument("--seed", type=int, default=20261124)
    p.add_argument("--keep", action="store_true", help="keep the run directories")
    p.add_argument("--out", type=Path)
    p.add_argument("--resummarise", type=Path, metavar="RESULTS", help="tables again; no run")
    args = p.parse_args(argv)
    quick = args.quick
    args.db = args.db or ["sqlite", "postgresql"]
    args.warmup = args.warmup if args.warmup is not None else (60.0 if quick else 180.0)
    args.window = args.window if args.window is not None else (60.0 if quick else 240.0)
    args.repeat = args.repeat if args.repeat is not None else (1 if quick else 3)
    args.catchup_records = args.catchup_records or (50_000 if quick else 200_000)
    args.catchup_repeat = args.catchup_repeat or (1 if quick else 3)
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.resummarise is not None:
        old: dict[str, Any] = json.loads(args.resummarise.read_text(encoding="utf-8"))
        old["summary"] = summarise(old)
        args.resummarise.write_text(json.dumps(old, indent=2) + "\n", encoding="utf-8")
        print_markdown(old)
        return 0
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    out = (
        args.out or RESULTS / f"bench-opmon-{stamp}{'-quick' if args.quick else ''}.json"
    ).resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    report: dict[str, Any] = {
        "benchmark": "opmon",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "argv": sys.argv,
        "machine": machine(),
        "code": code_version(),
        "loadavg_before": loadavg(),
    }

    def save() -> None:
        out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")

    ok = True
    if not args.skip_steady:
        schedule = {"on": [True], "off": [False], "both": [True, False]}[args.busy] * args.repeat
        cfg = SteadyConfig(
            dbs=args.db,
            warmup=args.warmup,
            window=args.window,
            settle=args.settle,
            schedule=schedule,
            interval=args.interval,
            scrape_every=args.scrape_every,
            prometheus=not args.no_prometheus,
            keep=args.keep,
            seed=args.seed,
        )
        try:
            ok = steady(cfg, report, save) and ok
        except (RuntimeError, OSError, psycopg.Error) as exc:
            log(f"steady state failed: {exc}")
            report.setdefault("steady", {})["error"] = str(exc)
            ok = False
        save()
    if not args.skip_catchup:
        ccfg = CatchupConfig(
            dbs=args.db,
            records=args.catchup_records,
            page=args.catchup_page,
            repeat=args.catchup_repeat,
            busy=args.busy != "off",
            keep=args.keep,
            seed=args.seed,
            profile=out.with_suffix(".pyspy") if args.profile else None,
        )
        try:
            ok = catchup(ccfg, report, save) and ok
        except (RuntimeError, OSError, psycopg.Error) as exc:
            log(f"catch-up failed: {exc}")
            report.setdefault("catchup", {})["error"] = str(exc)
            ok = False
    report["loadavg_after"] = loadavg()
    report["summary"] = summarise(report)
    save()
    print_markdown(report)
    print(f"\nresults: {out}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
