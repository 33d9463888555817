"""The ``xroad_globalconf`` probe: download a global configuration and judge it.

It downloads the signed directory from the configuration source and the shared
parameters it lists (each checked against the directory's hash; the directory's
signature too when ``verification_cert`` or an ``anchor`` is given), then:

* the directory has expired, or expires within ``min_validity`` → ``assertion``;
* an ``expect_members`` member or subsystem, or an ``expect_security_servers`` server,
  is not listed, or there are fewer than ``min_members`` members → ``assertion``.

``details["globalconf_expires_at"]`` (ISO 8601, UTC) carries the expiry (also when it
fails), with ``globalconf_version``, ``globalconf_remaining_seconds``, ``members``,
``subsystems``, ``security_servers`` and ``signature_verified``.

The configuration version is chosen as X-Road's own configuration client chooses it
(``LocationVersionResolver``, PR-GCONF §2.7): a ``version`` query parameter already in
``url`` is used as it is; otherwise ``?version=6`` (X-Road's current version) is asked
first and each answer ``404`` moves down one version, to ``2`` (X-Road's minimum), whose
answer is taken whatever it is. Any other failure is not a reason to try an older
version. Download errors are
mapped by :func:`~scd_monitor.probes.xroadinfo.failure_outcome`; an unreadable
certificate or anchor file is the monitor's problem (``internal``).
"""

from __future__ import annotations

from pathlib import Path

from scd_monitor.catalog.models import ResolvedCheck, XRoadGlobalconfCheck
from scd_monitor.clock import Clock, SystemClock
from scd_monitor.net.tls import ContextCache
from scd_monitor.probes.base import ErrorKind, Outcome
from scd_monitor.probes.xroadinfo import failure_outcome
from scd_monitor.xroad.client import (
    CONFIGURATION_VERSIONS,
    configuration_versions,
    fetch_newest_globalconf,
)
from scd_monitor.xroad.errors import XRoadFailure
from scd_monitor.xroad.globalconf import GlobalConf, parse_configuration_anchor

__all__ = [
    "CONFIGURATION_VERSIONS",
    "XRoadGlobalconfProbe",
    "configuration_versions",
    "verification_material",
]

Details = dict[str, str | int | float | bool]
_SHOWN = 5


def verification_material(
    cert: Path | None, anchor: Path | None
) -> tuple[list[bytes] | None, str | None]:
    """The certificates to check a directory's signature with (``None``: do not check),
    and the anchor's instance. Raises ``OSError`` or ``XRoadProtocolError`` (bad files)."""
    certs: list[bytes] = []
    instance: str | None = None
    if cert is not None:
        certs.append(cert.read_bytes())
    if anchor is not None:
        parsed = parse_configuration_anchor(anchor.read_bytes())
        instance = parsed.instance
        for source in parsed.sources:
            certs.extend(source.verification_certs)
    return (certs if cert is not None or anchor is not None else None), instance


class XRoadGlobalconfProbe:
    """Implements :class:`~scd_monitor.probes.base.Probe` for ``kind: xroad_globalconf``."""

    def __init__(self, *, contexts: ContextCache | None = None, clock: Clock | None = None) -> None:
        self._contexts = contexts if contexts is not None else ContextCache()
        self._clock: Clock = clock if clock is not None else SystemClock()

    async def __call__(self, check: ResolvedCheck) -> Outcome:
        try:
            spec = check.spec
            if not isinstance(spec, XRoadGlobalconfCheck):
                raise TypeError(f"the xroad_globalconf probe cannot run a {spec.kind!r} check")
            try:
                certs, anchor_instance = verification_material(spec.verification_cert, spec.anchor)
            except (OSError, XRoadFailure) as exc:  # before any I/O: the monitor's files
                return Outcome.failure(
                    ErrorKind.INTERNAL, f"cannot read the verification certificate/anchor: {exc}"
                )
            try:
                conf = await self._download(
                    spec, check.timeout.total_seconds(), certs, spec.instance or anchor_instance
                )
            except XRoadFailure as exc:
                return failure_outcome(exc)
        except Exception as exc:  # the probe's own failure, never the target's
            return Outcome.failure(ErrorKind.INTERNAL, f"{type(exc).__name__}: {exc}")

        return self._judge(spec, conf)

    async def _download(
        self,
        spec: XRoadGlobalconfCheck,
        seconds: float,
        certs: list[bytes] | None,
        instance: str | None,
    ) -> GlobalConf:
        """The configuration in the newest version the source serves (module docstring);
        ``seconds`` bounds the whole search."""
        return await fetch_newest_globalconf(
            spec.url,
            timeout=seconds,
            instance=instance,
            tls=spec.tls,
            contexts=self._contexts,
            verification_certs=certs,
            clock=self._clock,
        )

    def _judge(self, spec: XRoadGlobalconfCheck, conf: GlobalConf) -> Outcome:
        now = self._clock.now()
        remaining = conf.expires_in(now)
        members = [m.client_id(s.instance) for s in conf.shared for m in s.members]
        listed = {str(c) for s in conf.shared for c in s.clients()}
        servers = {
            f"{srv.owner}/{srv.server_code}" for s in conf.shared for srv in s.security_servers
        }
        details: Details = {
            "globalconf_expires_at": conf.expires_at.isoformat(),
            "globalconf_remaining_seconds": round(remaining.total_seconds(), 3),
            "members": len(members),
            "subsystems": len(listed) - len(members),
            "security_servers": len(servers),
            "signature_verified": conf.signature_verified,
        }
        if conf.version is not None:
            details["globalconf_version"] = conf.version
        expiry = conf.expires_at.isoformat()
        if remaining.total_seconds() <= 0:
            return Outcome.failure(
                ErrorKind.ASSERTION,
                f"global configuration expired at {expiry} "
                f"({-remaining.total_seconds():.0f} s ago): the central server is not "
                "publishing a fresh one",
                details=details,
            )
        if remaining < spec.min_validity:
            return Outcome.failure(
                ErrorKind.ASSERTION,
                f"global configuration expires at {expiry}, in {remaining.total_seconds():.0f} s "
                f"(less than min_validity {spec.min_validity.total_seconds():g} s)",
                details=details,
            )
        missing = [m for m in spec.expect_members if m not in listed]
        missing += [s for s in spec.expect_security_servers if s not in servers]
        if missing:
            shown = ", ".join(missing[:_SHOWN]) + (" …" if len(missing) > _SHOWN else "")
            return Outcome.failure(
                ErrorKind.ASSERTION, f"not in the global configuration: {shown}", details=details
            )
        if spec.min_members is not None and len(members) < spec.min_members:
            return Outcome.failure(
                ErrorKind.ASSERTION,
                f"the global configuration lists {len(members)} members, "
                f"expected at least {spec.min_members}",
                details=details,
            )
        return Outcome(ok=True, details=details)
