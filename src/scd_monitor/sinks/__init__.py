"""Sinks: where incident reports are delivered (webhook · email · file), each behind the
one-method :class:`~scd_monitor.sinks.base.Sink` protocol.

Each sink module owns its configuration model (``WebhookSinkConfig`` in
:mod:`~scd_monitor.sinks.webhook`, ``EmailSinkConfig`` in :mod:`~scd_monitor.sinks.email`,
``FileSinkConfig`` in :mod:`~scd_monitor.sinks.file`); :data:`SinkConfig` is their
discriminated union (by ``kind``), the type of the catalog's ``incidents.sinks[]``.
``SINK_KINDS`` lists the kinds; :func:`build_sinks` makes the configured sinks.

Sinks sit below the catalog and the incidents package: they import neither.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, get_args

from pydantic import Field

from scd_monitor.sinks.base import Sink, SinkConfigBase
from scd_monitor.sinks.email import EmailSink, EmailSinkConfig
from scd_monitor.sinks.file import FileSink, FileSinkConfig
from scd_monitor.sinks.webhook import WebhookSink, WebhookSinkConfig

__all__ = [
    "SINK_KINDS",
    "EmailSinkConfig",
    "FileSinkConfig",
    "SinkConfig",
    "SinkConfigBase",
    "WebhookSinkConfig",
    "build_sinks",
]

SinkConfig = Annotated[
    WebhookSinkConfig | EmailSinkConfig | FileSinkConfig, Field(discriminator="kind")
]
"""One ``incidents.sinks[]`` entry of the catalog, by its ``kind``."""

SINK_KINDS: tuple[str, ...] = tuple(
    get_args(model.model_fields["kind"].annotation)[0]
    for model in get_args(get_args(SinkConfig)[0])
)
"""The catalog's sink ``kind`` literals (``webhook``, ``email``, ``file``); :func:`build_sinks`
handles exactly these."""


def build_sinks(configs: Sequence[SinkConfig]) -> dict[str, Sink]:
    """One sink per configuration, by id (secrets must be resolved already)."""
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
