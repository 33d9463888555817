#!/usr/bin/env python3
"""X-Road directory discovery benchmark: read a directory of N subsystems × M services.

The fake X-Road runs in its own process (``scd-simulator --xroad N×M``: a security
server and a configuration source over ``XRoadDirectory.synthetic(N, M)``, plus the
monitor's own subsystem), so what is measured here is the reading side alone, in this
process: the global configuration (downloaded, hashes and signature checked against the
anchor), ``listClients``, then REST ``listMethods`` and SOAP ``listMethods`` of every
subsystem, at most ``concurrency`` requests in flight
(:class:`~scd_monitor.xroad.directory.DirectoryReader`, what the daemon runs), and then
turning the directory into catalog checks (:func:`~scd_monitor.catalog.discovered.expand`).

Per run: wall time and CPU time (this process) of the read; requests made; the
expansion's wall time and the number of checks. Peak memory: ``tracemalloc`` (traced
Python allocations during the read, its own runs: tracing slows everything down) and
``ru_maxrss`` (the process's high-water mark). Medians of ``--runs`` runs (3), and one
run per extra ``--sweep`` concurrency for comparison.

Loopback has almost no round-trip time, so the sweep is repeated with ``--latency``
added to every security server answer (the simulator's ``/_sim/xroad/delay``): that is
where bounded concurrency matters, as on a real network. Everything on 127.0.0.1.

    .venv/bin/python bench/bench_discovery.py                  # 2000 × 10, concurrency 16
    .venv/bin/python bench/bench_discovery.py --size 200x10 --sweep 1,4,64
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
import urllib.request
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
sys.path.insert(0, str(ROOT / "src"))

from scd_monitor.catalog import parse_catalog  # noqa: E402  # after the path is set
from scd_monitor.catalog.discovered import expand  # noqa: E402
from scd_monitor.net.tls import ContextCache  # noqa: E402
from scd_monitor.probes.xroad_globalconf import verification_material  # noqa: E402
from scd_monitor.xroad.client import SecurityServerClient  # noqa: E402
from scd_monitor.xroad.directory import Directory, DirectoryReader  # noqa: E402
from scd_monitor.xroad.identifiers import ClientId  # noqa: E402


def set_latency(control: str, seconds: float) -> None:
    request = urllib.request.Request(  # noqa: S310  # the simulator's loopback control URL
        control + "xroad/delay",
        data=json.dumps({"seconds": seconds}).encode(),
        method="PUT",
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as answer:  # noqa: S310  # same URL
        answer.read()


def start_simulator(
    size: str, workdir: Path
) -> tuple[subprocess.Popen[bytes], dict[str, Any], str]:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "scd_simulator",
            "--xroad",
            size,
            "--workdir",
            str(workdir),
        ],
        cwd=workdir,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "PYTHONPATH": str(ROOT / "src")},
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line:
        proc.kill()
        raise SystemExit("the simulator did not start")
    ready = json.loads(line)
    return proc, ready["xroad"], ready["control"]


def reader(xroad: dict[str, Any], concurrency: int, timeout: float) -> DirectoryReader:
    contexts = ContextCache()
    certs, _ = verification_material(None, Path(xroad["anchor"]))
    return DirectoryReader(
        source="bench",
        instance=xroad["instance"],
        security_server=SecurityServerClient(
            xroad["security_server"],
            client_id=ClientId.parse(xroad["client"]),
            contexts=contexts,
            timeout=timeout,
        ),
        globalconf_url=xroad["internalconf"],
        verification_certs=certs,
        contexts=contexts,
        timeout=timeout,
        concurrency=concurrency,
    )


def catalog_for(xroad: dict[str, Any]) -> Any:
    return parse_catalog(
        f"""
xroad:
  - id: bench
    instance: {xroad["instance"]}
    security_server: {{url: "{xroad["security_server"]}", client: {xroad["client"]}}}
    globalconf: {{url: "{xroad["internalconf"]}"}}
    health_url: "{xroad["health"]}"
    provider: {{id: interoperabilidad, name: Plataforma de Interoperabilidad}}
    template:
      subsystem_checks: [{{id: metadatos, kind: xroad_metaservice, metaservice: rest_list_methods}}]
      service_checks: [{{id: listado, kind: xroad_metaservice}}]
"""
    )


def max_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


async def one_run(
    xroad: dict[str, Any], concurrency: int, request_timeout: float, *, trace: bool
) -> tuple[dict[str, Any], Directory]:
    r = reader(xroad, concurrency, request_timeout)
    if trace:
        tracemalloc.start()
    cpu0, wall0 = time.process_time(), time.perf_counter()
    directory = await r.read()
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    peak = None
    if trace:
        _current, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    result: dict[str, Any] = {
        "concurrency": concurrency,
        "wall_s": round(wall, 3),
        "cpu_s": round(cpu, 3),
        "requests": r.requests,
        "requests_per_s": round(r.requests / wall, 1),
        "max_rss_mib": round(max_rss_mib(), 1),
        "counts": directory.counts(),
        "partial": len(directory.partial),
    }
    if peak is not None:
        result["tracemalloc_peak_mib"] = round(peak / 2**20, 1)
    return result, directory


def median(runs: list[dict[str, Any]], key: str) -> float:
    return round(statistics.median(r[key] for r in runs), 3)


async def bench(args: argparse.Namespace) -> dict[str, Any]:
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="scd-bench-discovery-") as tmp:
        proc, xroad, control = start_simulator(args.size, Path(tmp))
        try:
            print(f"simulator: {xroad['subsystems']} subsystems, {xroad['services']} services")
            warm, _ = await one_run(xroad, args.concurrency, args.timeout, trace=False)
            print(f"warm-up: {warm['wall_s']} s")
            timed = []
            directory: Directory | None = None
            for i in range(args.runs):
                result, directory = await one_run(
                    xroad, args.concurrency, args.timeout, trace=False
                )
                assert directory.counts()["services"] == xroad["services"], directory.counts()
                assert directory.counts()["subsystems"] == xroad["subsystems"]
                timed.append(result)
                print(f"run {i + 1}: {result}")
            traced = []
            for i in range(args.runs):
                result, _ = await one_run(xroad, args.concurrency, args.timeout, trace=True)
                traced.append(result)
                print(f"traced run {i + 1}: peak {result['tracemalloc_peak_mib']} MiB")
            assert directory is not None
            catalog = catalog_for(xroad)
            expansions = []
            for _ in range(args.runs):
                t0 = time.perf_counter()
                checks = expand(catalog, {"bench": directory}).catalog.resolved_checks()
                expansions.append(time.perf_counter() - t0)
            sweep = []
            for c in args.sweep:
                result, _ = await one_run(xroad, c, args.timeout, trace=False)
                sweep.append(result)
                print(f"concurrency {c}: {result['wall_s']} s wall, {result['cpu_s']} s CPU")
            latency_sweep = []
            if args.latency:
                set_latency(control, args.latency)
                for c in args.latency_sweep:
                    result, _ = await one_run(xroad, c, args.timeout, trace=False)
                    result["latency_s"] = args.latency
                    latency_sweep.append(result)
                    print(
                        f"latency {args.latency * 1000:g} ms, concurrency {c}: "
                        f"{result['wall_s']} s wall, {result['cpu_s']} s CPU"
                    )
                set_latency(control, 0)
        finally:
            proc.terminate()
            proc.wait(10)
    return {
        "benchmark": "xroad-directory-discovery",
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {
            "python": platform.python_version(),
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "loadavg_before": [round(x, 2) for x in load_before],
            "loadavg_after": [round(x, 2) for x in os.getloadavg()],
        },
        "size": args.size,
        "directory": {
            "subsystems": xroad["subsystems"],
            "services": xroad["services"],
            "members": xroad["members"],
        },
        "concurrency": args.concurrency,
        "runs": timed,
        "traced_runs": traced,
        "median": {
            "wall_s": median(timed, "wall_s"),
            "cpu_s": median(timed, "cpu_s"),
            "requests_per_s": median(timed, "requests_per_s"),
            "tracemalloc_peak_mib": median(traced, "tracemalloc_peak_mib"),
            "max_rss_mib": max(r["max_rss_mib"] for r in timed + traced),
            "expand_s": round(statistics.median(expansions), 3),
        },
        "checks": len(checks),
        "sweep": sweep,
        "latency_sweep": latency_sweep,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", default="2000x10", help="N×M subsystems × services")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--timeout", type=float, default=30.0, help="per request, seconds")
    parser.add_argument(
        "--sweep",
        default="1,64",
        help="extra concurrencies, one run each (comma-separated; '' for none)",
    )
    parser.add_argument(
        "--latency", type=float, default=0.02, help="added per answer for the latency sweep (s)"
    )
    parser.add_argument("--latency-sweep", default="1,16,64", help="concurrencies with latency")
    parser.add_argument("--out", type=Path, help="JSON results (default: bench/results/)")
    args = parser.parse_args()
    args.sweep = [int(x) for x in args.sweep.split(",") if x.strip()]
    args.latency_sweep = [int(x) for x in args.latency_sweep.split(",") if x.strip()]
    report = asyncio.run(bench(args))
    out = args.out or RESULTS / f"bench-discovery-{args.size.replace('×', 'x')}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report["median"], indent=2))
    print(f"written to {out}")


if __name__ == "__main__":
    main()
