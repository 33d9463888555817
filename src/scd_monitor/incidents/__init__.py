"""Incidents: detection rules, the lifecycle, reports (es-CO) and their outbox.

::

    observe.py         the daemon's view at one instant (Observations), no I/O
    detect.py          Observations → Signals per service (pure)
    lifecycle.py       a service's signals over time → opened / updated / resolved (pure)
    report.py          the report document (JSON Schema in schemas/) and its renderings
    routing.py         which sinks get a report, for which audience (pure)
    outbox.py          OutboxDispatcher: stored deliveries → sinks (SQL: store.outbox)
    service.py         IncidentService: what the daemon and the CLI call
    metrics.py         the Prometheus collector
    commands.py        ``scd-monitor incidents …`` and ``scd-monitor deliveries …``

Import the modules themselves; this package exports nothing, so that
``scd_monitor.sinks`` and it can import each other's modules without cycles.
"""

from __future__ import annotations
