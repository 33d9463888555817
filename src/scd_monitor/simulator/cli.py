"""``scd-monitor simulate``: run a simulator until told to stop.

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

import asyncio
import contextlib
import json
import signal
from pathlib import Path

from scd_monitor.errors import ConfigError
from scd_monitor.simulator.fleet import Simulator, check_loopback
from scd_monitor.simulator.scenario import Scenario, TlsMode, load_scenario

__all__ = ["run_simulator"]


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
        from scd_monitor.simulator.xroad import XRoadDirectory

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
