"""OIDC providers' signing keys: what each JWKS listed, and its rotations as events.

An ``oidc`` probe reports the key ids of the provider's JWKS (``details["jwks_kids"]``)
and the key that signed the monitoring token with the token's expiry. The state tracker
hands those observations here, in the transaction in which it turns the same results
into spans: :meth:`OidcKeyRepository.apply` compares each with the check's stored key
set and records one event per key that **appeared** or **disappeared**. A key that
disappears while a token it signed may still be valid (the last token the monitor got
was signed by it and has not expired) is marked ``early``: relying parties holding such
tokens can no longer verify them.

The first observation of a check is its baseline: stored, no event (the keys did not
change; the monitor only started looking). A key list cut short by the detail limit
(ending in ``…``) is not diffed: an event must never come from a truncation.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, delete, insert, select, update

from scd_monitor.store.engine import Store
from scd_monitor.store.tables import oidc_key_events, oidc_keys

__all__ = ["KeyEvent", "KeyObservation", "KeyState", "OidcKeyRepository", "observation_of"]

TRUNCATED = "…"


@dataclass(frozen=True, slots=True)
class KeyObservation:
    """What one ``oidc`` probe result says about the provider's keys."""

    check_id: str
    at: datetime
    kids: tuple[str, ...]
    token_kid: str | None = None
    token_valid_until: datetime | None = None


@dataclass(frozen=True, slots=True)
class KeyState:
    kids: tuple[str, ...]
    seen_at: datetime
    token_kid: str | None
    token_valid_until: datetime | None


@dataclass(frozen=True, slots=True)
class KeyEvent:
    id: int | None
    at: datetime
    check_id: str
    vantage: str
    change: str
    kid: str
    early: bool
    details: Mapping[str, Any]


def observation_of(
    check_id: str, at: datetime, details: Mapping[str, Any]
) -> KeyObservation | None:
    """The key observation in an ``oidc`` result's details; None when it has none (the
    probe failed before the JWKS) or its key list was cut short."""
    raw = details.get("jwks_kids")
    if not isinstance(raw, str) or raw.endswith(TRUNCATED):
        return None
    kids = tuple(sorted(k for k in raw.split(",") if k))
    token_kid = details.get("token_kid")
    until: datetime | None = None
    expires = details.get("token_expires_at")
    if isinstance(expires, str):
        try:
            until = datetime.fromisoformat(expires)
        except ValueError:
            until = None
    return KeyObservation(
        check_id=check_id,
        at=at,
        kids=kids,
        token_kid=token_kid if isinstance(token_kid, str) else None,
        token_valid_until=until,
    )


class OidcKeyRepository:
    """Reads and writes ``scd_oidc_keys`` and ``scd_oidc_key_events``."""

    def __init__(self, store: Store) -> None:
        self._store = store

    def states(self, conn: Connection, vantage: str) -> dict[str, KeyState]:
        rows = conn.execute(select(oidc_keys).where(oidc_keys.c.vantage == vantage))
        return {
            r.check_id: KeyState(
                kids=tuple(r.kids or ()),
                seen_at=r.seen_at,
                token_kid=r.token_kid,
                token_valid_until=r.token_valid_until,
            )
            for r in rows
        }

    def apply(
        self,
        conn: Connection,
        vantage: str,
        observations: Iterable[KeyObservation],
        known: dict[str, KeyState],
    ) -> list[KeyEvent]:
        """Diff ``observations`` (in order) against ``known`` (updated in place), store
        the events and the new states; return the events."""
        events: list[KeyEvent] = []
        changed: dict[str, KeyState] = {}
        new: set[str] = set()
        for obs in observations:
            before = known.get(obs.check_id)
            token_kid = obs.token_kid
            until = obs.token_valid_until
            if before is not None:
                if token_kid is None:  # no token this time: the last one still counts
                    token_kid, until = before.token_kid, before.token_valid_until
                events += _diff(vantage, obs, before)
            elif obs.check_id not in changed:
                new.add(obs.check_id)
            state = KeyState(obs.kids, obs.at, token_kid, until)
            known[obs.check_id] = state
            changed[obs.check_id] = state
        for check_id, state in changed.items():
            values = {
                "kids": list(state.kids),
                "seen_at": state.seen_at,
                "token_kid": state.token_kid,
                "token_valid_until": state.token_valid_until,
            }
            if check_id in new:
                conn.execute(insert(oidc_keys).values(check_id=check_id, vantage=vantage, **values))
            else:
                conn.execute(
                    update(oidc_keys)
                    .where(oidc_keys.c.check_id == check_id, oidc_keys.c.vantage == vantage)
                    .values(**values)
                )
        if events:
            conn.execute(
                insert(oidc_key_events),
                [
                    {
                        "at": e.at,
                        "check_id": e.check_id,
                        "vantage": e.vantage,
                        "change": e.change,
                        "kid": e.kid,
                        "early": e.early,
                        "details": dict(e.details),
                    }
                    for e in events
                ],
            )
        return events

    def events(
        self,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        check: str | None = None,
        limit: int = 10_000,
    ) -> list[KeyEvent]:
        """Stored key events, oldest first."""
        t = oidc_key_events
        query = select(t).order_by(t.c.at, t.c.id).limit(limit)
        if since is not None:
            query = query.where(t.c.at >= since)
        if until is not None:
            query = query.where(t.c.at < until)
        if check is not None:
            query = query.where(t.c.check_id == check)
        with self._store.engine.connect() as conn:
            return [_event(r) for r in conn.execute(query)]

    def events_in(self, conn: Connection, *, since: datetime, vantage: str) -> list[KeyEvent]:
        """The vantage's key events since ``since``, in ``conn`` (the tracker's round)."""
        t = oidc_key_events
        query = select(t).where(t.c.at >= since, t.c.vantage == vantage).order_by(t.c.at, t.c.id)
        return [_event(r) for r in conn.execute(query)]

    def current(self) -> dict[tuple[str, str], KeyState]:
        """Every (check, vantage)'s last known keys."""
        with self._store.engine.connect() as conn:
            return {
                (r.check_id, r.vantage): KeyState(
                    tuple(r.kids or ()), r.seen_at, r.token_kid, r.token_valid_until
                )
                for r in conn.execute(select(oidc_keys))
            }

    def forget_vantage(self, conn: Connection, vantage: str) -> None:
        conn.execute(delete(oidc_keys).where(oidc_keys.c.vantage == vantage))


def _event(r: Any) -> KeyEvent:
    return KeyEvent(
        id=r.id,
        at=r.at,
        check_id=r.check_id,
        vantage=r.vantage,
        change=r.change,
        kid=r.kid,
        early=bool(r.early),
        details=r.details or {},
    )


def _diff(vantage: str, obs: KeyObservation, before: KeyState) -> Sequence[KeyEvent]:
    old, new = set(before.kids), set(obs.kids)
    if old == new:
        return ()
    details: dict[str, Any] = {"kids_before": list(before.kids), "kids_after": list(obs.kids)}
    out: list[KeyEvent] = []
    for kid in sorted(new - old):
        out.append(KeyEvent(None, obs.at, obs.check_id, vantage, "appeared", kid, False, details))
    for kid in sorted(old - new):
        valid = before.token_valid_until
        early = kid == before.token_kid and valid is not None and valid > obs.at
        extra = dict(details)
        if early and valid is not None:
            extra["token_valid_until"] = valid.isoformat()
        out.append(KeyEvent(None, obs.at, obs.check_id, vantage, "disappeared", kid, early, extra))
    return out
