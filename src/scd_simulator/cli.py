"""``scd-simulator``: run a simulator until told to stop, announcing it with one JSON line.

:func:`run_simulator` serves the fleet (and a fake X-Road with ``--xroad N×M``);
:func:`run_xroad_simulator` serves a fake X-Road alone.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from scd_monitor.errors import ConfigError
from scd_simulator.directory import XRoadDirectory
from scd_simulator.fleet import Simulator, XRoadSimulator
from scd_simulator.net import check_loopback, stop_on
from scd_simulator.opmon import OpMonData
from scd_simulator.scenario import Scenario, TlsMode, load_scenario

__all__ = ["main", "run_simulator", "run_xroad_simulator"]


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
    opmon: tuple[int, int] | None = None,
) -> None:
    """Serve the scenario (plus ``fleet`` synthetic healthy endpoints) until stopped.

    The fleet's endpoints use the ``fleet_tls`` listener (see :meth:`Simulator.add_fleet`).
    ``port`` fixes the plain listener (the control API's); the scenario may fix the
    others. Stops when ``stop`` is set or on SIGINT/SIGTERM. Raises
    :class:`ConfigError` for a bad scenario, a non-loopback ``host`` or a catalog
    requested with no endpoints.

    When the listeners are up it prints one JSON line to stdout, the only thing it
    prints::

        {"event": "simulator.ready", "listeners": {"none": "http://127.0.0.1:40123", ...},
         "control": "http://127.0.0.1:40123/_sim/", "ca_file": "/…/ca.crt",
         "catalog": "/…/catalog.yaml", "endpoints": 12, "xroad": null}

    With ``xroad=(N, M)`` (``--xroad N×M``) it also serves a fake X-Road over a synthetic
    directory of N subsystems of M services (``XRoadDirectory.synthetic``); ``"xroad"`` in
    the ready line then gives its URLs and counts (see ``Simulator.describe_xroad``).
    With ``opmon=(R, P)`` (``--opmon-records R --opmon-page P``) its security server also
    holds R operational monitoring records of the last day (seed 0, up to the offset of
    X-Road's default 60 s), answered P per page (``scd_simulator.opmon``).
    """
    check_loopback(host)
    if fleet < 0:
        raise ConfigError([f"--fleet must be 0 or more, got {fleet}"])
    if opmon is not None and xroad is None:
        raise ConfigError(["--opmon-records needs --xroad (the security server that holds them)"])
    scenario = load_scenario(scenario_path) if scenario_path is not None else Scenario()
    directory = XRoadDirectory.synthetic(*xroad) if xroad is not None else None
    opmon_data = _opmon_data(directory, *opmon) if directory is not None and opmon else None
    sim = Simulator.from_scenario(
        scenario, workdir=workdir, host=host, port=port, xroad=directory, xroad_opmon=opmon_data
    )
    if fleet:
        try:
            sim.add_fleet(fleet, tls=fleet_tls)
        except ValueError as exc:
            raise ConfigError([f"--fleet: {exc}"]) from None
    if catalog_out is not None and not sim.endpoint_ids and xroad is None:
        raise ConfigError(["no endpoints: give a scenario, --fleet or --xroad to write a catalog"])
    stop = stop or asyncio.Event()
    with stop_on(stop):
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


def _opmon_data(directory: XRoadDirectory, records: int, page: int) -> OpMonData:
    """``records`` generated records of the last day before X-Road's committed time."""
    try:
        data = OpMonData(directory, max_records_in_payload=page)
    except ValueError as exc:
        raise ConfigError([f"--opmon-page: {exc}"]) from None
    end = int(data.clock.now().timestamp()) - data.offset_seconds - 1
    data.generate(records, end - 86_400, end, seed=0)
    return data


async def run_xroad_simulator(
    directory: XRoadDirectory,
    *,
    workdir: Path,
    host: str = "127.0.0.1",
    tls: bool = False,
    ss_port: int = 0,
    health_port: int = 0,
    conf_port: int = 0,
    stop: asyncio.Event | None = None,
    on_ready: Callable[[dict[str, Any]], None] | None = None,
) -> None:
    """Serve ``directory`` as a security server and a configuration source until stopped.

    Writes ``workdir/configuration-anchor.xml`` (and, with ``tls``, the CA and a client
    certificate ``xroad-client.crt``/``.key`` for the monitor), then reports one dict
    (URLs and files) to ``on_ready`` or, by default, as one JSON line on stdout. Stops
    when ``stop`` is set or on SIGINT/SIGTERM.
    """
    check_loopback(host)
    stop = stop or asyncio.Event()
    with stop_on(stop):
        sim = XRoadSimulator(
            directory,
            host=host,
            tls=tls,
            workdir=workdir,
            ss_port=ss_port,
            health_port=health_port,
            conf_port=conf_port,
        )
        async with sim:
            ready = {"event": "simulator.xroad_ready", **sim.describe()}
            anchor = sim.configuration_source.write_anchor(workdir / "configuration-anchor.xml")
            ready["anchor"] = str(anchor.resolve())
            if tls:
                cert, key = sim.security_server.issue_client_certificate().write(
                    workdir, "xroad-client"
                )
                ready["ca_file"] = str((workdir / "xroad-ca.crt").resolve())
                ready["client_cert"], ready["client_key"] = str(cert.resolve()), str(key.resolve())
            if on_ready is not None:
                on_ready(ready)
            else:
                print(json.dumps(ready), flush=True)  # the ready line is the interface
            await stop.wait()


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
    parser.add_argument(
        "--opmon-records",
        type=int,
        metavar="N",
        help="with --xroad: the security server holds N operational monitoring records "
        "(getSecurityServerOperationalData) of the last day",
    )
    parser.add_argument(
        "--opmon-page",
        type=int,
        default=10_000,
        metavar="N",
        help="records per getSecurityServerOperationalData answer (X-Road's default 10000)",
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


def parse_opmon(records: int | None, page: int) -> tuple[int, int] | None:
    """``--opmon-records`` and ``--opmon-page`` as ``(records, page)``."""
    if records is None:
        return None
    if records < 0 or page < 1:
        raise ConfigError(["--opmon-records must be 0 or more and --opmon-page 1 or more"])
    return records, page


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
                opmon=parse_opmon(args.opmon_records, args.opmon_page),
            )
        )
    except ConfigError as exc:
        for line in exc.problems:
            print(f"error: {line}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return 0
