"""``scd-simulator``: run a simulator until told to stop.

When the listeners are up it prints one JSON line to stdout, the only thing it
prints::

    {"event": "simulator.ready", "listeners": {"none": "http://127.0.0.1:40123", ...},
     "control": "http://127.0.0.1:40123/_sim/", "ca_file": "/…/ca.crt",
     "catalog": "/…/catalog.yaml", "endpoints": 12, "xroad": null}

With ``xroad=(N, M)`` (``--xroad N×M``) it also serves a fake X-Road over a synthetic
directory of N subsystems of M services (``XRoadDirectory.synthetic``); ``"xroad"`` in
the ready line then gives its URLs and counts (see ``Simulator.describe_xroad``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

from scd_monitor.errors import ConfigError
from scd_simulator.fleet import Simulator, check_loopback
from scd_simulator.scenario import Scenario, TlsMode, load_scenario

__all__ = ["main", "run_simulator"]


async def run_simulator(
    scenario_path: Path | None,
    *,
    workdir: Path,
    catalog_out: Path | None,
    host: str = "127.0.0.1",
    port: int = 0,
    fleet: int = 0,
    stop: asyncio.Event | None = None,
    fleet_tls: TlsMode = "none",
    xroad: tuple[int, int] | None = None,
) -> None:
    """Serve the scenario (plus ``fleet`` synthetic healthy endpoints) until stopped.

    The fleet's endpoints use the ``fleet_tls`` listener (see :meth:`Simulator.add_fleet`).
    ``port`` fixes the plain listener (the control API's); the scenario may fix the
    others. Stops when ``stop`` is set or on SIGINT/SIGTERM. Raises
    :class:`ConfigError` for a bad scenario, a non-loopback ``host`` or a catalog
    requested with no endpoints.
    """
    check_loopback(host)
    if fleet < 0:
        raise ConfigError([f"--fleet must be 0 or more, got {fleet}"])
    scenario = load_scenario(scenario_path) if scenario_path is not None else Scenario()
    directory = None
    if xroad is not None:
        from scd_simulator.xroad import XRoadDirectory

        directory = XRoadDirectory.synthetic(*xroad)
    sim = Simulator.from_scenario(scenario, workdir=workdir, host=host, port=port, xroad=directory)
    if fleet:
        try:
            sim.add_fleet(fleet, tls=fleet_tls)
        except ValueError as exc:
            raise ConfigError([f"--fleet: {exc}"]) from None
    if catalog_out is not None and not sim.endpoint_ids and xroad is None:
        raise ConfigError(["no endpoints: give a scenario, --fleet or --xroad to write a catalog"])
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    installed: list[signal.Signals] = []
    for signum in (signal.SIGINT, signal.SIGTERM):
        # Not available off the main thread or on Windows; `stop` still works there.
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(signum, stop.set)
            installed.append(signum)
    try:
        async with sim:
            catalog = sim.write_catalog(catalog_out) if catalog_out is not None else None
            ready = {
                "event": "simulator.ready",
                "listeners": sim.listener_urls,
                "control": sim.control_url,
                "ca_file": str(sim.ca_file.resolve()),
                "catalog": str(catalog.resolve()) if catalog is not None else None,
                "endpoints": len(sim.endpoint_ids),
                "xroad": sim.describe_xroad() if directory is not None else None,
            }
            print(json.dumps(ready), flush=True)  # the ready line is the interface
            await stop.wait()
    finally:
        for signum in installed:
            loop.remove_signal_handler(signum)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="scd-simulator", description="Serve fake SCD providers and X-Road on 127.0.0.1."
    )
    parser.add_argument("scenario", nargs="?", type=Path, help="scenario YAML")
    parser.add_argument("--workdir", type=Path, default=Path("data/simulator"))
    parser.add_argument("--catalog-out", type=Path, help="write a catalog that probes the fleet")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="port of the plain-HTTP listener")
    parser.add_argument("--fleet", type=int, default=0, help="add N healthy synthetic endpoints")
    parser.add_argument(
        "--xroad",
        metavar="N×M",
        help="also serve a fake X-Road (security server, health check, configuration source) "
        "with N subsystems of M services each, e.g. 20x5",
    )
    return parser


def parse_xroad(text: str | None) -> tuple[int, int] | None:
    """``--xroad N×M`` (or ``NxM``) as two counts."""
    if text is None:
        return None
    parts = text.lower().replace("×", "x").split("x")
    try:
        n, m = (int(p) for p in parts)
    except ValueError:
        raise ConfigError([f"--xroad: expected N×M (e.g. 20x5), got {text!r}"]) from None
    if n < 0 or m < 0:
        raise ConfigError([f"--xroad: counts must be 0 or more, got {text!r}"])
    return n, m


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        asyncio.run(
            run_simulator(
                args.scenario,
                workdir=args.workdir,
                catalog_out=args.catalog_out,
                host=args.host,
                port=args.port,
                fleet=args.fleet,
                xroad=parse_xroad(args.xroad),
            )
        )
    except ConfigError as exc:
        for line in exc.problems:
            print(f"error: {line}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return 0
