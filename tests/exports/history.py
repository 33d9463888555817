"""October 2026 of simulated history, written as probe results and turned into spans.

Everything is in Bogotá time (UTC−5, no DST). Every check is probed every 10 minutes
(timeout 10 s, so one result stays fresh for 2 × 10 min + 10 s = 20 min 10 s) from
30 September 22:00 to 1 November 02:00, so the month [1 Oct 00:00, 1 Nov 00:00) =
[2026-10-01T05:00Z, 2026-11-01T05:00Z) is 31 days = 2 678 400 s and fully covered,
except where stated. A failed probe is ``timeout``; 3 failures confirm an outage, which
starts at the first failure and ends at the first success.

alfa/autenticacion (target 99,5 %, latency threshold 1 s):
  - 5 Oct 10:00 → 12:00 down (12 failures, success at 12:00): charged 7 200 s.
  - 12 Oct 02:30 → 03:30 down inside the window 02:00–04:00 «actualización de
    plataforma»: charged 0, the 1 h is excluded.
  - 19 Oct 02:30 → 03:40 down, window 02:00–03:00 «cambio de certificados»: 30 min
    excluded, charged 40 min = 2 400 s (from the window's end).
  - 25 Oct no probes from 08:00 to 13:50: the 07:50 result is fresh until 08:10:10,
    so 08:10:10 → 14:00 is UNKNOWN = 5 h 49 min 50 s = 20 990 s.
  - every probe of 7 Oct (local day, 144 probes) takes 1,5 s, the others 0,3 s.
alfa/carpeta (target 99,9 %, threshold 2 s): 20 Oct 22:30 → 23:30 down: 3 600 s.
beta/interop (target 99 %): 30 Oct 22:00 → 31 Oct 14:00 down: 57 600 s (2 h on the
  30th, 14 h on the 31st).
beta/sin-datos: never probed: the whole month is UNKNOWN.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from scd_monitor.catalog import Catalog, parse_catalog
from scd_monitor.clock import FixedClock
from scd_monitor.probes.base import ErrorKind, Outcome, ProbeResult
from scd_monitor.runtime.tracker import StateTracker
from scd_monitor.store import ResultRepository, Store

BOGOTA = ZoneInfo("America/Bogota")

CATALOG_YAML = """\
version: "2026.10-prueba"
timezone: America/Bogota
defaults: {interval: 10m, timeout: 10s}
providers:
  - id: alfa
    name: Prestador Alfa S.A.S.
    services:
      - id: autenticacion
        name: Autenticación Digital
        type: autenticacion_digital
        sla: {availability_target: 0.995, latency_threshold: 1s}
        maintenance:
          - start: "2026-10-12T02:00:00-05:00"
            end: "2026-10-12T04:00:00-05:00"
            reason: actualización de plataforma
          - start: "2026-10-19T02:00:00-05:00"
            end: "2026-10-19T03:00:00-05:00"
            reason: cambio de certificados
        checks:
          - {id: api, kind: tls, host: alfa.example}
      - id: carpeta
        name: Carpeta Ciudadana
        type: carpeta_ciudadana
        sla: {availability_target: 0.999, latency_threshold: 2s}
        checks:
          - {id: api, kind: tls, host: carpeta.alfa.example}
  - id: beta
    name: Operador Beta
    services:
      - id: interop
        name: Interoperabilidad X-Road
        type: interoperabilidad
        sla: {availability_target: 0.99}
        checks:
          - {id: api, kind: tls, host: beta.example}
      - id: sin-datos
        name: Servicio sin medición
        type: otro
        checks:
          - {id: api, kind: tls, host: nada.beta.example}
"""

FIRST = datetime(2026, 9, 30, 22, 0, tzinfo=BOGOTA)
LAST = datetime(2026, 11, 1, 2, 0, tzinfo=BOGOTA)  # exclusive
TRACKED_AT = LAST + timedelta(minutes=1)
STEP = timedelta(minutes=10)


def local(day: int, hour: int, minute: int = 0, month: int = 10) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=BOGOTA)


def catalog() -> Catalog:
    return parse_catalog(CATALOG_YAML)


def _between(t: datetime, lo: datetime, hi: datetime) -> bool:
    return lo <= t < hi


# Per check: (failing [from, to) ranges, missing [from, to) ranges, slow [from, to) ranges).
SCRIPT: dict[str, tuple[list[tuple[datetime, datetime]], ...]] = {
    "alfa/autenticacion/api": (
        [
            (local(5, 10), local(5, 12)),
            (local(12, 2, 30), local(12, 3, 30)),
            (local(19, 2, 30), local(19, 3, 40)),
        ],
        [(local(25, 8), local(25, 14))],
        [(local(7, 0), local(8, 0))],
    ),
    "alfa/carpeta/api": ([(local(20, 22, 30), local(20, 23, 30))], [], []),
    "beta/interop/api": ([(local(30, 22), local(31, 14))], [], []),
}


def results() -> Iterator[ProbeResult]:
    t = FIRST
    while t < LAST:
        for check, (failing, missing, slow) in SCRIPT.items():
            if any(_between(t, lo, hi) for lo, hi in missing):
                continue
            ok = not any(_between(t, lo, hi) for lo, hi in failing)
            yield ProbeResult(
                check_id=check,
                kind="tls",
                vantage="v1",
                started_at=t.astimezone(ZoneInfo("UTC")),
                duration=1.5 if any(_between(t, lo, hi) for lo, hi in slow) else 0.3,
                outcome=Outcome(ok=ok, error_kind=None if ok else ErrorKind.TIMEOUT),
            )
        t += STEP


def build_store(url: str) -> Store:
    """A store at ``url`` holding the history above, its spans derived."""
    store = Store(url)
    store.create_schema()
    batch: list[ProbeResult] = []
    for r in results():
        batch.append(r)
        if len(batch) >= 5000:
            ResultRepository(store).write(batch)
            batch = []
    ResultRepository(store).write(batch)
    tracker = StateTracker(store, vantage="v1", clock=FixedClock(TRACKED_AT))
    tracker.set_catalog(catalog())
    tracker.run_until_idle()
    return store
