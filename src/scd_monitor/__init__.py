"""scd-monitor: availability and SLA monitor for Colombia's Servicios Ciudadanos Digitales."""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
