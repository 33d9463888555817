"""Sinks: where incident reports are delivered (webhook · email · file), each behind the
one-method :class:`~scd_monitor.sinks.base.Sink` protocol, and the outbox dispatcher
(:mod:`scd_monitor.sinks.outbox`) that delivers the stored reports through them.

``SINK_KINDS`` maps each catalog ``kind`` to its class; :func:`build_sinks` makes the
configured ones.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from scd_monitor.incidents.config import SinkConfig
    from scd_monitor.sinks.base import Sink

__all__ = ["SINK_KINDS", "build_sinks"]

SINK_KINDS: tuple[str, ...] = ("webhook", "email", "file")
"""The catalog's sink ``kind`` literals; :func:`build_sinks` handles exactly these."""


def build_sinks(configs: Sequence[SinkConfig]) -> dict[str, Sink]:
    """One sink per configuration, by id (secrets must be resolved already)."""
    from scd_monitor.incidents.config import EmailSinkConfig, FileSinkConfig, WebhookSinkConfig
    from scd_monitor.sinks.email import EmailSink
    from scd_monitor.sinks.file import FileSink
    from scd_monitor.sinks.webhook import WebhookSink

    out: dict[str, Sink] = {}
    for config in configs:
        if isinstance(config, WebhookSinkConfig):
            out[config.id] = WebhookSink(config)
        elif isinstance(config, EmailSinkConfig):
            out[config.id] = EmailSink(config)
        elif isinstance(config, FileSinkConfig):
            out[config.id] = FileSink(config)
        else:  # pragma: no cover - the config's discriminated union is closed
            raise AssertionError(f"unknown sink kind {config!r}")
    return out
