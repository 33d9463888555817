#!/usr/bin/env python3
"""The simulator of ``bench_opmon.py``: a fake X-Road whose security server holds
operational monitoring records, run in its own process until SIGTERM.

The records are generated here with :meth:`OpMonData.generate` (seed, count and
``[start, end]`` given), so the ground truth stays in this process; the sorted
``monitoringDataTs`` of every record are written to ``--truth`` (one integer a line)
before the ready line, and the harness counts the records published before any cursor
from that file. Records with timestamps in the future are published as time passes: X-Road
(and :class:`OpMonData`) answers only those older than ``now - offset``.

Prints one JSON line when serving: the catalog (only the X-Road source, no fleet), the
security server's id (for ``operational_monitoring.security_servers``), its health URL
(the blackbox exporter's target), the records' count and time range.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from scd_simulator.directory import XRoadDirectory
from scd_simulator.fleet import Simulator
from scd_simulator.net import stop_on
from scd_simulator.opmon import OpMonData


def _parse(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("--workdir", type=Path, required=True)
    p.add_argument("--catalog-out", type=Path, required=True)
    p.add_argument("--truth", type=Path, required=True, help="sorted timestamps, one a line")
    p.add_argument("--records", type=int, required=True)
    p.add_argument("--start", type=int, required=True, help="first timestamp (Unix s)")
    p.add_argument("--end", type=int, required=True, help="last timestamp (Unix s)")
    p.add_argument("--page", type=int, default=10_000, help="max_records_in_payload")
    p.add_argument("--offset", type=int, default=60, help="publication offset, seconds")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--subsystems", type=int, default=10)
    p.add_argument("--services", type=int, default=4, help="services per subsystem")
    p.add_argument("--checks-every", default="5m", help="interval of the discovered checks")
    p.add_argument("--directory-every", default="12h", help="the source's directory interval")
    return p.parse_args(argv)


async def _serve(args: argparse.Namespace) -> None:
    directory = XRoadDirectory.synthetic(args.subsystems, args.services)
    started_at = datetime.fromtimestamp(min(args.start, int(time.time())) - 60, UTC)
    data = OpMonData(
        directory,
        max_records_in_payload=args.page,
        offset_seconds=args.offset,
        started_at=started_at,
    )
    t0 = time.process_time()
    data.generate(args.records, args.start, args.end, seed=args.seed)
    generate_s = time.process_time() - t0
    stamps = [int(r["monitoringDataTs"]) for r in data.records()]
    args.truth.write_text("".join(f"{ts}\n" for ts in stamps), encoding="utf-8")
    server = directory.security_servers[0]
    sim = Simulator(args.workdir, xroad=directory, xroad_opmon=data)
    stop = asyncio.Event()
    with stop_on(stop):
        async with sim:
            catalog = sim.write_catalog(
                args.catalog_out,
                interval=args.checks_every,
                timeout="10s",
                xroad_interval=args.directory_every,
            )
            ready = {
                "event": "opmon_sim.ready",
                "catalog": str(catalog.resolve()),
                "security_server": f"{server.owner}/{server.server_code}",
                "health_url": sim.xroad_simulator.security_server.health_url,
                "records": len(data),
                "first_ts": stamps[0] if stamps else None,
                "last_ts": stamps[-1] if stamps else None,
                "generate_cpu_s": round(generate_s, 2),
                "subsystems": len(directory.subsystems),
                "services": sum(len(s.services) for s in directory.subsystems),
            }
            print(json.dumps(ready), flush=True)
            await stop.wait()
    print(json.dumps({"event": "opmon_sim.stopped", "queries": data.queries}), flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    asyncio.run(_serve(_parse(argv)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
