"""The ``tls`` probe: a TCP connection and a TLS handshake, nothing else.

It reports the expiry of the leaf (``cert_not_after``) and the earliest expiry among the
certificates the peer sent (``chain_not_after``), with ``dns``, ``connect`` and ``tls``
phase timings. The outcome is ``ok`` when the handshake succeeds, the certificate is
trusted (with ``tls.verify``), nothing the peer sent has expired and the earliest expiry
is at least ``min_days_valid`` days away; any of those failing is ``ErrorKind.TLS``.

Expiry is reported even when verification fails. The first handshake uses the check's
own context (verifying or not), so in the usual case there is one connection. When
verification fails, a second handshake with a non-verifying context (bounded by what is
left of ``check.timeout``) reads the certificates; the verdict stays the first
handshake's error (for instance "certificate verify failed: certificate has expired").

A server that requires a client certificate and does not get one may still complete
the client's side of a TLS 1.3 handshake (it rejects the certificate after the client
finished); this probe does not send application data, so it reports such a server as
``ok``. The ``http`` probe sees that rejection.
"""

from __future__ import annotations

import asyncio
import ssl
from datetime import timedelta

from scd_monitor.catalog.models import ResolvedCheck, TlsCheck
from scd_monitor.clock import Clock, SystemClock
from scd_monitor.net.errors import classify_cause, describe_ssl_error
from scd_monitor.net.tls import ContextCache, server_name
from scd_monitor.probes.base import ErrorKind, Outcome
from scd_monitor.probes.tlsinfo import PeerCertificates, error_kind, handshake
from scd_monitor.timefmt import iso_utc

__all__ = ["TlsProbe"]

_PHASE_WORDS = {"dns": "resolving the name", "connect": "connecting", "tls": "in the TLS handshake"}


class TlsProbe:
    """Implements :class:`~scd_monitor.probes.base.Probe` for ``kind: tls`` checks."""

    def __init__(self, *, contexts: ContextCache | None = None, clock: Clock | None = None) -> None:
        self._contexts = contexts if contexts is not None else ContextCache()
        self._clock: Clock = clock if clock is not None else SystemClock()

    async def __call__(self, check: ResolvedCheck) -> Outcome:
        try:
            spec = check.spec
            if not isinstance(spec, TlsCheck):
                raise TypeError(f"the tls probe cannot run a {spec.kind!r} check")
            return await self._run(spec, budget=check.timeout.total_seconds())
        except Exception as exc:  # the probe's own failure, never the target's
            return Outcome.failure(ErrorKind.INTERNAL, f"{type(exc).__name__}: {exc}")

    async def _run(self, spec: TlsCheck, *, budget: float) -> Outcome:
        options = spec.tls
        context = self._contexts.get(options)  # before any I/O: a bad file is INTERNAL
        sni = server_name(options, spec.host)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + budget
        phases: dict[str, float] = {}

        try:
            async with asyncio.timeout_at(deadline):
                peer = await handshake(
                    spec.host,
                    spec.port,
                    context=context,
                    server_name=sni,
                    phases=phases,
                    deadline=deadline,
                )
        except TimeoutError:
            where = _PHASE_WORDS.get(_current_phase(phases), "")
            return Outcome.failure(
                ErrorKind.TIMEOUT, f"timed out after {budget:.2f} s {where}".rstrip(), phases=phases
            )
        except ssl.SSLCertVerificationError as exc:
            peer = await self._read_untrusted(spec, sni, deadline)
            return self._with_peer(
                Outcome.failure(ErrorKind.TLS, describe_ssl_error(exc), phases=phases), peer
            )
        except OSError as exc:
            known = classify_cause(exc)
            kind, message = (
                (error_kind(known.kind), known.message)
                if known is not None
                else (ErrorKind.CONNECT, str(exc))
            )
            if kind is ErrorKind.TIMEOUT:
                message = f"timed out after {budget:.2f} s"
            elif kind is ErrorKind.CONNECT and "connect" in phases:
                # The TCP connection was up; the server gave up on the handshake.
                kind, message = ErrorKind.TLS, f"{message} during the TLS handshake"
            return Outcome.failure(kind, message, phases=phases)

        if peer is None:
            return Outcome.failure(
                ErrorKind.TLS, "the peer sent no certificate that could be parsed", phases=phases
            )
        return self._with_peer(self._judge(spec, peer, phases), peer)

    def _judge(self, spec: TlsCheck, peer: PeerCertificates, phases: dict[str, float]) -> Outcome:
        now = self._clock.now()
        if peer.not_after <= now:
            return Outcome.failure(
                ErrorKind.TLS, f"certificate expired on {iso_utc(peer.not_after)}", phases=phases
            )
        if peer.chain_not_after <= now:
            return Outcome.failure(
                ErrorKind.TLS,
                f"a chain certificate expired on {iso_utc(peer.chain_not_after)}",
                phases=phases,
            )
        days_left = (peer.chain_not_after - now) // timedelta(days=1)
        if days_left < spec.min_days_valid:
            which = "certificate" if peer.chain_not_after == peer.not_after else "chain certificate"
            return Outcome.failure(
                ErrorKind.TLS,
                f"{which} expires in {days_left} day{'' if days_left == 1 else 's'}"
                f" (minimum {spec.min_days_valid})",
                phases=phases,
            )
        return Outcome(ok=True, phases=phases)

    async def _read_untrusted(
        self, spec: TlsCheck, sni: str, deadline: float
    ) -> PeerCertificates | None:
        """A second handshake that trusts anything, only to read the certificates."""
        context = self._contexts.get(spec.tls, verify=False)
        try:
            async with asyncio.timeout_at(deadline):
                return await handshake(
                    spec.host,
                    spec.port,
                    context=context,
                    server_name=sni,
                    deadline=deadline,
                )
        except (OSError, TimeoutError):
            return None

    @staticmethod
    def _with_peer(outcome: Outcome, peer: PeerCertificates | None) -> Outcome:
        if peer is None:
            return outcome
        details: dict[str, str | int | float | bool] = {"chain_length": peer.chain_length}
        if peer.tls_version:
            details["tls_version"] = peer.tls_version
        return Outcome(
            ok=outcome.ok,
            error_kind=outcome.error_kind,
            message=outcome.message,
            status_code=outcome.status_code,
            phases=outcome.phases,
            cert_not_after=peer.not_after,
            chain_not_after=peer.chain_not_after,
            details={**outcome.details, **details},
        )


def _current_phase(phases: dict[str, float]) -> str:
    """The phase that was under way: the first one :func:`handshake` had not finished."""
    for phase in ("dns", "connect", "tls"):
        if phase not in phases:
            return phase
    return ""
