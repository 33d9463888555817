"""An X-Road directory as data: what was discovered, how two of them differ, how to read one.

A :class:`Directory` is one source's view of an instance at one instant: members,
subsystems, services and security servers, each a key (the identifier's text form) with
a few attributes, plus the global configuration's expiry. It is plain, immutable and
round-trips through JSON (:meth:`Directory.to_json`), which is how the store keeps the
last good directory of every source.

:func:`diff` lists what appeared, disappeared or changed between two directories, per
kind of entity; :func:`apply` is its inverse (``apply(a, diff(a, b))`` has ``b``'s
entities), which the tests check as a property.

:class:`DirectoryReader` reads a directory from the network: the global configuration
(members with their names and subsystems, security servers with their clients) and/or
``listClients`` through a security server, then, for every subsystem, REST
``listMethods`` **and** SOAP ``listMethods`` (a subsystem's services are the union of
both), at most ``concurrency`` requests at a time. What it does when something fails:

* the global configuration or ``listClients`` fails → the whole read fails
  (:class:`DirectoryReadError`, chained to the client's error); the caller keeps its
  last good directory;
* one subsystem's service listing fails → that subsystem keeps the services the previous
  directory had for it (it is named in :attr:`Directory.partial`); when every
  subsystem's listing fails (or the directory comes back empty while the previous one
  was not), the whole read fails: an outage of our own security server must not look
  like an empty directory;
* one **entry** is invalid (an identifier X-Road does not allow, such as a lone
  surrogate, ``..`` or ``/``; a malformed entry) → that entry alone is left out and named
  in :attr:`Directory.refused`, the rest of the answer is kept. Identifiers are data:
  they are checked when parsed (:func:`~scd_monitor.xroad.identifiers.validate_part`)
  and percent-encoded part by part in every request.

Every text attribute (names, addresses, service types, endpoints) is cleaned
(:mod:`scd_monitor.sanitize`) as it is read, and again when a stored snapshot is loaded
(:meth:`Directory.from_json`, which also moves keys that are not valid identifiers to
:attr:`Directory.refused`): what a directory holds is valid, NUL-free, bounded text.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Literal, get_args

from scd_monitor.errors import ScdMonitorError
from scd_monitor.sanitize import clean_text, clean_value
from scd_monitor.xroad.client import SecurityServerClient, fetch_newest_globalconf
from scd_monitor.xroad.errors import XRoadFailure
from scd_monitor.xroad.identifiers import ClientId, RefusedEntry, ServiceId, validate_part

if TYPE_CHECKING:
    from scd_monitor.clock import Clock
    from scd_monitor.config.types import TlsOptions
    from scd_monitor.net.tls import ContextCache

__all__ = [
    "ENTITY_KINDS",
    "Change",
    "ChangeKind",
    "Directory",
    "DirectoryEvent",
    "DirectoryReadError",
    "DirectoryReader",
    "EntityKind",
    "apply",
    "diff",
    "service_provider",
]

EntityKind = Literal["member", "subsystem", "service", "security_server"]
ENTITY_KINDS: tuple[EntityKind, ...] = get_args(EntityKind)
ChangeKind = Literal["appeared", "disappeared", "changed"]
Attrs = Mapping[str, Any]
"""An entity's attributes: JSON values only (strings, numbers, lists, ``None``)."""

_FORMAT_VERSION = 1
_NAME_LIMIT = 300
_MAX_REFUSED = 1000
"""Refused entries a directory keeps (the first ones by subject): a directory refusing
more is broken as a whole, and that much is plain already."""


class DirectoryReadError(ScdMonitorError):
    """A directory could not be read; the previous one stays in force."""


@dataclass(frozen=True, slots=True)
class Change:
    """One entity that appeared, disappeared or changed between two directories."""

    kind: EntityKind
    change: ChangeKind
    subject: str
    """The entity's key: ``CO/GOB/800000000/SIS01``, ``…/SIS01/servicio01/v1``, …"""
    before: Attrs | None = None
    after: Attrs | None = None


@dataclass(frozen=True, slots=True)
class DirectoryEvent:
    """A stored fact about a source's directory (``scd_directory_events``).

    ``kind`` is an :data:`EntityKind` (with ``change`` appeared / disappeared / changed),
    ``globalconf`` (``expiring``, ``expired``, ``renewed``) or ``directory``
    (``baseline``: the first directory of a source, with counts; ``fetch_failed``;
    ``fetch_recovered``).
    """

    at: datetime
    source: str
    kind: str
    change: str
    subject: str
    details: Mapping[str, Any] = field(default_factory=dict)
    id: int | None = None

    def __post_init__(self) -> None:
        # Subjects and details quote the directory (names, identifiers as sent, errors):
        # cleaned here, once for every producer of events.
        object.__setattr__(self, "subject", clean_text(self.subject, limit=_NAME_LIMIT))
        if self.details:
            object.__setattr__(self, "details", clean_value(self.details))

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "at": self.at.astimezone(UTC).isoformat().replace("+00:00", "Z"),
            "source": self.source,
            "kind": self.kind,
            "change": self.change,
            "subject": self.subject,
            "details": dict(self.details),
        }


def _frozen(entities: Mapping[str, Mapping[str, Attrs]]) -> Mapping[str, Mapping[str, Attrs]]:
    return MappingProxyType(
        {
            kind: MappingProxyType(dict(sorted(entities.get(kind, {}).items())))
            for kind in ENTITY_KINDS
        }
    )


@dataclass(frozen=True, slots=True)
class Directory:
    """One source's directory of one X-Road instance, as read at ``fetched_at``."""

    source: str
    instance: str
    fetched_at: datetime
    entities: Mapping[str, Mapping[str, Attrs]]
    """Per :data:`EntityKind`: key → attributes, keys sorted."""
    globalconf_expires_at: datetime | None = None
    globalconf_version: int | None = None
    partial: tuple[str, ...] = ()
    """Subsystems whose services could not be listed this time (previous ones kept)."""
    refused: tuple[tuple[str, str], ...] = ()
    """Entries left out for an invalid identifier or a malformed entry: ``(subject,
    reason)`` pairs, the subject as sent (cleaned), at most one per subject, sorted."""

    @classmethod
    def build(
        cls,
        source: str,
        instance: str,
        fetched_at: datetime,
        entities: Mapping[str, Mapping[str, Attrs]],
        **extra: Any,
    ) -> Directory:
        return cls(source, instance, fetched_at, _frozen(entities), **extra)

    # -- reading ------------------------------------------------------------------------

    def of(self, kind: EntityKind) -> Mapping[str, Attrs]:
        return self.entities.get(kind, MappingProxyType({}))

    @property
    def members(self) -> Mapping[str, Attrs]:
        return self.of("member")

    @property
    def subsystems(self) -> Mapping[str, Attrs]:
        return self.of("subsystem")

    @property
    def services(self) -> Mapping[str, Attrs]:
        return self.of("service")

    @property
    def security_servers(self) -> Mapping[str, Attrs]:
        return self.of("security_server")

    def counts(self) -> dict[str, int]:
        return {f"{kind}s": len(self.of(kind)) for kind in ENTITY_KINDS}

    def counts_by_class(self) -> dict[tuple[str, str], int]:
        """``(entity kind, member class)`` → how many (security servers by their owner's)."""
        out: dict[tuple[str, str], int] = {}
        for kind in ENTITY_KINDS:
            for key in self.of(kind):
                parts = key.split("/")
                member_class = parts[1] if len(parts) > 1 else ""
                out[(kind, member_class)] = out.get((kind, member_class), 0) + 1
        return out

    def same_entities(self, other: Directory) -> bool:
        return all(dict(self.of(k)) == dict(other.of(k)) for k in ENTITY_KINDS)

    # -- JSON -------------------------------------------------------------------------

    def to_json(self) -> dict[str, Any]:
        return {
            "format": _FORMAT_VERSION,
            "source": self.source,
            "instance": self.instance,
            "fetched_at": self.fetched_at.astimezone(UTC).isoformat(),
            "globalconf": None
            if self.globalconf_expires_at is None
            else {
                "expires_at": self.globalconf_expires_at.astimezone(UTC).isoformat(),
                "version": self.globalconf_version,
            },
            "partial": list(self.partial),
            "refused": [list(pair) for pair in self.refused],
            "entities": {
                kind: {key: dict(attrs) for key, attrs in self.of(kind).items()}
                for kind in ENTITY_KINDS
            },
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Directory:
        """A stored snapshot read back. Whatever an older release stored is checked again:
        a key that is not a valid identifier moves to :attr:`refused`, attributes are
        cleaned; only a snapshot of an unknown format raises (``ValueError``)."""
        if data.get("format") != _FORMAT_VERSION:
            raise ValueError(f"unknown directory snapshot format {data.get('format')!r}")
        conf = data.get("globalconf") or {}
        expires = conf.get("expires_at")
        refused = [(str(s), str(r)) for s, r in data.get("refused", ())]
        stored = {kind: dict(data["entities"].get(kind, {})) for kind in ENTITY_KINDS}
        # Cleaning every attribute is slow for a large directory; nearly always there is
        # nothing to clean, which one look at the whole text tells.
        text = json.dumps(stored, ensure_ascii=False, default=str)
        dirty = clean_text(text, limit=None) is not text
        entities: dict[str, dict[str, Attrs]] = {}
        for kind in ENTITY_KINDS:
            kept: dict[str, Attrs] = {}
            for key, attrs in stored[kind].items():
                problem = _key_problem(key)
                if problem is not None:
                    refused.append((str(key), f"stored {kind}: {problem}"))
                    continue
                cleaned = clean_value(attrs) if dirty else attrs
                kept[key] = cleaned if isinstance(cleaned, dict) else {"value": cleaned}
            entities[kind] = kept
        return cls.build(
            clean_text(str(data["source"])),
            clean_text(str(data["instance"])),
            datetime.fromisoformat(data["fetched_at"]),
            entities,
            globalconf_expires_at=datetime.fromisoformat(expires) if expires else None,
            globalconf_version=conf.get("version"),
            partial=tuple(clean_text(str(p)) for p in data.get("partial", ())),
            refused=refused_pairs(refused),
        )

    def dumps(self) -> str:
        return json.dumps(self.to_json(), ensure_ascii=False, sort_keys=True)


# -- differences -----------------------------------------------------------------------


_PART = "[^\x00-\x1f\x7f-\x9f%:;/\\\\\u200b\ufeff\ud800-\udfff]{1,255}"
_VALID_KEY = re.compile(f"{_PART}(?:/{_PART})*")
_DOT_PART = re.compile(r"(?:^|/)\.\.?(?:/|$)")


def _key_problem(key: object) -> str | None:
    """Why ``key`` (an entity's key: identifier parts joined by ``/``) is not valid."""
    if not isinstance(key, str):
        return f"key is a {type(key).__name__}, not text"
    if _VALID_KEY.fullmatch(key) and not _DOT_PART.search(key):
        return None  # the common case, in one pass; the parts one by one otherwise
    try:
        for part in key.split("/"):
            validate_part(part, "identifier part")
    except ValueError as exc:
        return str(exc)
    return None


def refused_pairs(entries: Iterable[RefusedEntry | tuple[str, str]]) -> tuple[tuple[str, str], ...]:
    """``(subject, reason)`` pairs for :attr:`Directory.refused`: cleaned, one per
    subject (the first reason), sorted, at most :data:`_MAX_REFUSED`."""
    by_subject: dict[str, str] = {}
    for entry in entries:
        subject, reason = (
            (entry.subject, entry.reason) if isinstance(entry, RefusedEntry) else entry
        )
        subject = clean_text(subject, limit=_NAME_LIMIT)
        by_subject.setdefault(subject, clean_text(reason, limit=_NAME_LIMIT))
    return tuple(sorted(by_subject.items()))[:_MAX_REFUSED]


def diff(before: Directory | None, after: Directory) -> list[Change]:
    """What changed from ``before`` to ``after``, kind by kind, keys in order.

    With no ``before`` everything appeared (callers record a baseline instead).
    """
    changes: list[Change] = []
    for kind in ENTITY_KINDS:
        old = before.of(kind) if before is not None else {}
        new = after.of(kind)
        for key in sorted(set(old) | set(new)):
            if key not in new:
                changes.append(Change(kind, "disappeared", key, before=old[key]))
            elif key not in old:
                changes.append(Change(kind, "appeared", key, after=new[key]))
            elif dict(old[key]) != dict(new[key]):
                changes.append(Change(kind, "changed", key, before=old[key], after=new[key]))
    return changes


def apply(
    entities: Mapping[str, Mapping[str, Attrs]], changes: Iterable[Change]
) -> dict[str, dict[str, Attrs]]:
    """``entities`` with ``changes`` applied (the inverse of :func:`diff`).

    Raises ``ValueError`` when a change does not fit (an entity that appears twice, or
    disappears or changes without being there).
    """
    out: dict[str, dict[str, Attrs]] = {k: dict(entities.get(k, {})) for k in ENTITY_KINDS}
    for change in changes:
        current = out[change.kind]
        present = change.subject in current
        if change.change == "appeared":
            if present or change.after is None:
                raise ValueError(f"{change.kind} {change.subject} cannot appear again")
            current[change.subject] = change.after
        elif change.change == "disappeared":
            if not present:
                raise ValueError(f"{change.kind} {change.subject} is not there to disappear")
            del current[change.subject]
        else:
            if not present or change.after is None:
                raise ValueError(f"{change.kind} {change.subject} is not there to change")
            current[change.subject] = change.after
    return out


# -- reading from the network -----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Listing:
    subsystem: str
    services: dict[str, Attrs] | None
    error: str | None = None


def _name(value: str | None) -> str | None:
    """A name from the directory as an attribute: one line, cleaned, bounded."""
    if not value:
        return None
    return clean_text(" ".join(value.split()), limit=_NAME_LIMIT) or None


class DirectoryReader:
    """Reads one source's directory (see the module docstring for what fails how).

    ``security_server`` lists clients (``listClients``) and every subsystem's services;
    ``globalconf_url`` (with ``verification_certs`` for the signature) gives members,
    subsystems and security servers. At least one of the two is needed; without a
    security server no services are listed.
    """

    def __init__(
        self,
        *,
        source: str,
        instance: str,
        security_server: SecurityServerClient | None = None,
        globalconf_url: str | None = None,
        globalconf_tls: TlsOptions | None = None,
        verification_certs: Sequence[bytes] | None = None,
        contexts: ContextCache | None = None,
        timeout: float = 30.0,
        concurrency: int = 16,
        clock: Clock | None = None,
    ) -> None:
        if security_server is None and globalconf_url is None:
            raise ValueError("a directory reader needs a security server or a globalconf URL")
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        self.source = source
        self.instance = instance
        self.security_server = security_server
        self.globalconf_url = globalconf_url
        self.globalconf_tls = globalconf_tls
        self.verification_certs = verification_certs
        self.contexts = contexts
        self.timeout = timeout
        self.concurrency = concurrency
        self.clock = clock
        self.requests = 0
        """Requests made by the last :meth:`read` (for benchmarks and logs)."""

    def _now(self) -> datetime:
        return self.clock.now() if self.clock is not None else datetime.now(UTC)

    async def read(self, previous: Directory | None = None) -> Directory:
        """Read the directory now; raises :class:`DirectoryReadError` when it cannot."""
        self.requests = 0
        refused: list[RefusedEntry] = []
        members: dict[str, dict[str, Any]] = {}
        subsystems: dict[str, dict[str, Any]] = {}
        servers: dict[str, dict[str, Any]] = {}
        expires_at: datetime | None = None
        version: int | None = None
        if self.globalconf_url is not None:
            try:
                self.requests += 1
                conf = await fetch_newest_globalconf(
                    self.globalconf_url,
                    instance=self.instance,
                    tls=self.globalconf_tls,
                    contexts=self.contexts,
                    timeout=self.timeout,
                    verification_certs=self.verification_certs,
                    clock=self.clock,
                    refused=refused,
                )
            except XRoadFailure as exc:
                raise DirectoryReadError(f"global configuration: {exc}") from exc
            self.requests += len(conf.shared)
            expires_at, version = conf.expires_at, conf.version
            for shared in conf.shared:
                for member in shared.members:
                    member_id = member.client_id(shared.instance)
                    members[str(member_id)] = {"name": _name(member.name)}
                    for code in member.subsystems:
                        subsystems[str(member_id.subsystem(code))] = {
                            "name": _name(member.subsystem_names.get(code))
                        }
                for server in shared.security_servers:
                    servers[f"{server.owner}/{server.server_code}"] = {
                        "address": _name(server.address),
                        "clients": sorted(str(c) for c in server.clients),
                        "in_maintenance": server.in_maintenance,
                    }
        if self.security_server is not None:
            try:
                self.requests += 1
                listed = await self.security_server.list_clients(
                    instance=self.instance, refused=refused
                )
            except XRoadFailure as exc:
                raise DirectoryReadError(f"listClients: {exc}") from exc
            for client in listed:
                key = str(client.id)
                if client.id.subsystem_code is None:
                    entry = members.setdefault(key, {"name": None})
                    entry["name"] = entry["name"] or _name(client.name)
                else:
                    members.setdefault(str(client.id.member), {"name": _name(client.name)})
                    sub = subsystems.setdefault(key, {"name": None})
                    sub["name"] = sub["name"] or _name(client.subsystem_name)
        if not members and previous is not None and previous.members:
            raise DirectoryReadError(
                "the directory came back empty (no members); keeping the last good one"
            )
        services: dict[str, Attrs] = {}
        partial: list[str] = []
        if self.security_server is not None and subsystems:
            listings = await self._list_services(sorted(subsystems), refused)
            failed = [listing for listing in listings if listing.services is None]
            if len(failed) == len(listings):
                raise DirectoryReadError(
                    f"listing services failed for all {len(listings)} subsystems, "
                    f"e.g. {failed[0].subsystem}: {failed[0].error}"
                )
            kept = _by_subsystem(previous.services) if previous is not None and failed else {}
            for listing in listings:
                if listing.services is not None:
                    services.update(listing.services)
                else:
                    partial.append(listing.subsystem)
                    services.update(kept.get(listing.subsystem, {}))
        return Directory.build(
            self.source,
            self.instance,
            self._now(),
            {
                "member": members,
                "subsystem": subsystems,
                "service": services,
                "security_server": servers,
            },
            globalconf_expires_at=expires_at,
            globalconf_version=version,
            partial=tuple(partial),
            refused=refused_pairs(refused),
        )

    async def _list_services(
        self, subsystems: Sequence[str], refused: list[RefusedEntry]
    ) -> list[_Listing]:
        semaphore = asyncio.Semaphore(self.concurrency)
        return list(
            await asyncio.gather(
                *(self._services_of(sub, semaphore, refused) for sub in subsystems)
            )
        )

    async def _services_of(
        self, subsystem: str, semaphore: asyncio.Semaphore, refused: list[RefusedEntry]
    ) -> _Listing:
        assert self.security_server is not None
        client = self.security_server
        provider = ClientId.parse(subsystem)

        async def rest() -> dict[str, Attrs]:
            async with semaphore:
                self.requests += 1
                entries = await client.rest_list_methods(provider, refused=refused)
            found: dict[str, Attrs] = {}
            for entry in entries:
                found[str(entry.service)] = {
                    "protocol": "REST",
                    "type": _name(entry.service_type),
                    "endpoints": sorted(
                        clean_text(f"{e.method} {e.path}", limit=_NAME_LIMIT)
                        for e in entry.endpoints
                    ),
                }
            return found

        async def soap() -> dict[str, Attrs]:
            async with semaphore:
                self.requests += 1
                ids = await client.soap_list_methods(provider, refused=refused)
            return {str(i): {"protocol": "SOAP", "type": "WSDL", "endpoints": []} for i in ids}

        answers = await asyncio.gather(rest(), soap(), return_exceptions=True)
        merged: dict[str, Attrs] = {}
        for answer in reversed(answers):  # the same id listed by both: REST's entry wins
            if isinstance(answer, XRoadFailure):
                return _Listing(subsystem, None, str(answer))
            if isinstance(answer, Exception):
                # Not the server's fault as far as the client knows (a bug, or input no
                # check foresaw): this subsystem fails alone, the others are kept.
                return _Listing(subsystem, None, f"{type(answer).__name__}: {answer}")
            if isinstance(answer, BaseException):
                raise answer
            merged.update(answer)
        return _Listing(subsystem, {k: v for k, v in merged.items() if _belongs(k, provider)})


def service_provider(key: str) -> str:
    """The provider (subsystem) part of a service key: ``…/SUB/CODE[/VERSION]`` → ``…/SUB``."""
    return key.rsplit("/", 2 if key.count("/") == 5 else 1)[0]


def _by_subsystem(services: Mapping[str, Attrs]) -> dict[str, dict[str, Attrs]]:
    out: dict[str, dict[str, Attrs]] = {}
    for key, attrs in services.items():
        out.setdefault(service_provider(key), {})[key] = attrs
    return out


def _belongs(service_key: str, provider: ClientId) -> bool:
    """Whether a listed service is ``provider``'s (a server may list others'; ignored)."""
    try:
        return ServiceId.parse(service_key).client == provider
    except ValueError:
        return False
