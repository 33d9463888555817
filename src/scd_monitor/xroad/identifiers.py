"""X-Road identifiers: clients (members, subsystems), services and central services.

Text forms (PR-MESS §1.3, PR-REST §4.1)::

    client           INSTANCE/CLASS/MEMBER[/SUBSYSTEM]             CO/GOB/8999990001/CARPETA
    service          INSTANCE/CLASS/MEMBER/SUBSYSTEM/SERVICE[/VERSION]
    central service  INSTANCE/SERVICE

A service's text form always carries the subsystem when it is parsed: without it,
``A/B/C/D/E`` could be a member's service ``D`` version ``E`` or subsystem ``D``'s
service ``E``. Services offered by a bare member (legacy, X-Road 6) can be built and
formatted but not parsed back.

Identifiers are data, never paths. A part is refused (``ValueError``) when X-Road itself
refuses it: the security server rejects an identifier field holding an ISO control
character (U+0000–U+001F, U+007F–U+009F), ``%``, ``:``, ``;``, ``/``, ``\\``, U+200B or
U+FEFF (``MessageProcessorBase.checkIdentifier`` and ``EncodedIdentifierValidator`` in
``nordic-institute/X-Road``; PR-MESS §2.7 and PR-REST §4.8 recommend even fewer
characters: letters, digits and ``'()+,-.=?``). On top of that a part may not be empty,
``.`` or ``..`` (a path segment of its own in a REST URL: "non-normalized paths" in the
same validator), hold a lone surrogate (not Unicode text), or be longer than
:data:`MAX_PART_LENGTH` characters. What remains is still percent-encoded, part by part,
wherever it goes into a URL or a header (:func:`segment`, :meth:`ClientId.encoded`).

:meth:`ClientId.slug` and :meth:`ServiceId.slug` give catalog ids (``[a-z0-9-]``, at
most 63 characters, matching the catalog's slug pattern) that stay the same for the
same identifier, and that differ for different identifiers of the same type: when the
readable form had to be changed (upper case, characters other than letters and digits)
or shortened, ``--`` and 10 hex digits of a SHA-256 of the exact identifier follow it.
``--`` never occurs in an unchanged form, so changed and unchanged forms cannot meet.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Literal
from urllib.parse import quote

from scd_monitor.sanitize import clean_text

__all__ = [
    "MAX_PART_LENGTH",
    "CentralServiceId",
    "ClientId",
    "RefusedEntry",
    "ServiceId",
    "raw_subject",
    "segment",
    "validate_part",
]

MAX_SLUG_LENGTH = 63
MAX_PART_LENGTH = 255
"""Characters of one identifier part (X-Road keeps them in 255-character columns)."""
_HASH_CHARS = 10
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_FORBIDDEN = re.compile("[%:;\\\\\u200b\ufeff]")
_SURROGATE = re.compile("[\ud800-\udfff]")
_PLAIN = re.compile(r"^[a-z0-9]+$")
_NOT_SLUG = re.compile(r"[^a-z0-9]+")


def validate_part(value: object, what: str) -> str:
    """Return ``value`` if it is a valid identifier part, else raise ``ValueError``."""
    if not isinstance(value, str):
        raise ValueError(f"{what} must be a string, not {type(value).__name__}")
    if not value:
        raise ValueError(f"{what} is empty")
    if _SURROGATE.search(value):
        raise ValueError(f"{what} {_shown(value)} is not valid Unicode (a lone surrogate)")
    if len(value) > MAX_PART_LENGTH:
        raise ValueError(f"{what} {_shown(value)} is longer than {MAX_PART_LENGTH} characters")
    if "/" in value:
        raise ValueError(f"{what} {value!r} contains '/'")
    if _CONTROL.search(value):
        raise ValueError(f"{what} {value!r} contains a control character")
    forbidden = _FORBIDDEN.search(value)
    if forbidden:
        raise ValueError(
            f"{what} {value!r} contains {forbidden.group()!r}, which X-Road does not allow"
        )
    if value in (".", ".."):
        raise ValueError(f"{what} {value!r} is a relative path segment")
    return value


def _shown(value: str) -> str:
    """``value`` fit for a message about an invalid part: surrogates escaped, shortened."""
    shown = repr(value[:60]).encode("utf-8", "backslashreplace").decode("utf-8")
    return shown + ("…" if len(value) > 60 else "")


def segment(part: str) -> str:
    """One identifier part as one URL path segment: percent-encoded (UTF-8) with nothing
    kept as it is, a part of only dots (which :func:`validate_part` refuses anyway)
    encoded as well, so it can never be read as ``.`` or ``..`` (PR-REST §4.2)."""
    encoded = quote(part, safe="")
    return encoded.replace(".", "%2E") if encoded.strip(".") == "" else encoded


def _split(text: str, what: str, counts: tuple[int, ...]) -> list[str]:
    if not isinstance(text, str):
        raise ValueError(f"{what} must be a string, not {type(text).__name__}")
    parts = text.split("/")
    if len(parts) not in counts:
        wanted = " or ".join(str(count) for count in counts)
        raise ValueError(f"{what} {text!r} has {len(parts)} parts, expected {wanted}")
    return parts


def _slug(kind: str, parts: list[str]) -> str:
    readable = "-".join(parts)
    if all(_PLAIN.match(part) for part in parts) and len(readable) <= MAX_SLUG_LENGTH:
        return readable
    digest = hashlib.sha256("\x1f".join([kind, *parts]).encode("utf-8")).hexdigest()
    budget = MAX_SLUG_LENGTH - 2 - _HASH_CHARS
    stem = _NOT_SLUG.sub("-", readable.lower()).strip("-")[:budget].rstrip("-") or "x"
    return f"{stem}--{digest[:_HASH_CHARS]}"


@dataclass(frozen=True, slots=True)
class ClientId:
    """An X-Road member (``subsystem_code`` is ``None``) or subsystem."""

    instance: str
    member_class: str
    member_code: str
    subsystem_code: str | None = None

    def __post_init__(self) -> None:
        validate_part(self.instance, "X-Road instance")
        validate_part(self.member_class, "member class")
        validate_part(self.member_code, "member code")
        if self.subsystem_code is not None:
            validate_part(self.subsystem_code, "subsystem code")

    @classmethod
    def parse(cls, text: str) -> ClientId:
        """``INSTANCE/CLASS/MEMBER[/SUBSYSTEM]``; ``ValueError`` if it is not one."""
        parts = _split(text, "client identifier", (3, 4))
        return cls(*parts)

    @property
    def object_type(self) -> Literal["MEMBER", "SUBSYSTEM"]:
        return "MEMBER" if self.subsystem_code is None else "SUBSYSTEM"

    @property
    def member(self) -> ClientId:
        """The member itself (this identifier without its subsystem)."""
        return ClientId(self.instance, self.member_class, self.member_code)

    def subsystem(self, code: str) -> ClientId:
        """The subsystem ``code`` of this identifier's member."""
        return ClientId(self.instance, self.member_class, self.member_code, code)

    @property
    def parts(self) -> list[str]:
        parts = [self.instance, self.member_class, self.member_code]
        if self.subsystem_code is not None:
            parts.append(self.subsystem_code)
        return parts

    def __str__(self) -> str:
        return "/".join(self.parts)

    def encoded(self) -> str:
        """Each part percent-encoded (UTF-8), joined by ``/``: the ``X-Road-Client``
        header and the REST URL form (PR-REST §4.2, §4.3)."""
        return "/".join(segment(part) for part in self.parts)

    def slug(self) -> str:
        """A stable catalog id for this client (see the module docstring)."""
        return _slug("client", self.parts)


@dataclass(frozen=True, slots=True)
class ServiceId:
    """A service of a member or subsystem, with an optional version."""

    client: ClientId
    service_code: str
    service_version: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.client, ClientId):
            raise ValueError(f"service provider must be a ClientId, not {self.client!r}")
        validate_part(self.service_code, "service code")
        if self.service_version is not None:
            validate_part(self.service_version, "service version")

    @classmethod
    def parse(cls, text: str) -> ServiceId:
        """``INSTANCE/CLASS/MEMBER/SUBSYSTEM/SERVICE[/VERSION]``; ``ValueError`` otherwise."""
        parts = _split(text, "service identifier", (5, 6))
        version = parts[5] if len(parts) == 6 else None
        return cls(ClientId(*parts[:4]), parts[4], version)

    @property
    def parts(self) -> list[str]:
        parts = [*self.client.parts, self.service_code]
        if self.service_version is not None:
            parts.append(self.service_version)
        return parts

    def __str__(self) -> str:
        return "/".join(self.parts)

    def without_version(self) -> ServiceId:
        return ServiceId(self.client, self.service_code)

    def slug(self) -> str:
        """A stable catalog id for this service (see the module docstring)."""
        return _slug("service", self.parts)


@dataclass(frozen=True, slots=True)
class CentralServiceId:
    """A central service: an alias defined by the governing authority (PR-MESS §1.3)."""

    instance: str
    service_code: str

    def __post_init__(self) -> None:
        validate_part(self.instance, "X-Road instance")
        validate_part(self.service_code, "central service code")

    def __str__(self) -> str:
        return f"{self.instance}/{self.service_code}"


@dataclass(frozen=True, slots=True)
class RefusedEntry:
    """One entry of an answer (a member, a subsystem, a service …) left out because its
    identifier is invalid or the entry is malformed; the rest of the answer is kept.

    ``subject`` is the identifier as sent (cleaned: it may hold what made it invalid,
    e.g. a lone surrogate shown as U+FFFD), ``reason`` why it was refused, ``where``
    which answer and entry (``listMethods response, service #3``).
    """

    subject: str
    reason: str
    where: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "subject", clean_text(self.subject, limit=_SUBJECT_LIMIT))
        object.__setattr__(self, "reason", clean_text(self.reason, limit=_REASON_LIMIT))
        object.__setattr__(self, "where", clean_text(self.where, limit=_REASON_LIMIT))


_SUBJECT_LIMIT = 400
_REASON_LIMIT = 300


def raw_subject(values: list[object]) -> str:
    """The text form of an identifier from the raw fields an answer gave (``None`` and
    non-text fields shown as ``?``), for naming a refused entry."""
    return "/".join(
        value if isinstance(value, str) else "?" for value in values if value is not None
    )
