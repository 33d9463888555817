"""The sinks as the network tests use them: a payload, configured sinks, their verdict."""

from __future__ import annotations

import re
from typing import Any

from pydantic import SecretStr

from scd_monitor.errors import SinkError
from scd_monitor.sinks import EmailSinkConfig, WebhookSinkConfig
from scd_monitor.sinks.base import DeliveryPayload
from scd_monitor.sinks.email import EmailSink


def payload() -> DeliveryPayload:
    return DeliveryPayload(
        idempotency_key="SCD-2026-000001.1.red",
        incident="SCD-2026-000001",
        report_id="SCD-2026-000001.1",
        event="opened",
        audience="authority",
        recipient=None,
        subject="SCD-2026-000001 · Apertura",
        body=b'{"ok": true}',
        text="Reporte\n",
        html="<p>Reporte</p>\n",
        attempt=1,
    )


def webhook_sink(url: str, tls: dict[str, Any], **extra: Any) -> WebhookSinkConfig:
    config = WebhookSinkConfig.model_validate(
        {
            "id": "red",
            "kind": "webhook",
            "url": url,
            "secret": {"env": "SCD_NET_TEST_UNUSED"},
            "tls": tls,
            **extra,
        }
    )
    secret = config.secret.model_copy(update={"value": SecretStr("clave")})
    return config.model_copy(update={"secret": secret})


def sink_kind(error: SinkError) -> str:
    """The classified kind a sink quotes (``[POST ]<where>: <kind>: …``); always transient."""
    assert not error.permanent, error
    found = re.match(r"^(?:POST )?\S+: (\w+): ", str(error))
    assert found is not None, str(error)
    return found.group(1)


def email_sink(
    port: int, tls: dict[str, Any], *, host: str = "127.0.0.1", **extra: Any
) -> EmailSink:
    """An e-mail sink to ``host:port`` with STARTTLS and no credentials."""
    config = EmailSinkConfig.model_validate(
        {
            "id": "correo",
            "kind": "email",
            "host": host,
            "port": port,
            "sender": "monitor@scd.example",
            "to": ["incidentes@mintic.example"],
            "tls": tls,
            "timeout": "5s",
            **extra,
        }
    )
    return EmailSink(config)
