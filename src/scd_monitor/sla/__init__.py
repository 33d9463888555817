"""The SLA (ANS) engine: pure functions over state spans, time injected, no I/O.

``derive`` turns one check's probe results into spans; ``timeline`` combines checks,
vantages, maintenance and monitor faults into a service's timeline; ``engine`` turns
that into availability, downtime, coverage, outages, budgets and burn rates.
"""

from __future__ import annotations

from scd_monitor.sla.model import Period, Span, State

__all__ = ["Period", "Span", "State"]
