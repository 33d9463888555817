"""TLS client contexts: one builder, one cache, one trust policy.

Every TLS connection the monitor opens (probes, the X-Road client, the webhook and
e-mail sinks) gets its :class:`ssl.SSLContext` from :func:`build_context`, usually
through a :class:`ContextCache`. The policy, in one place:

* **Trust.** With ``verify`` on (the default), the options' ``ca_file`` is the only
  trust anchor, or ``certifi``'s bundle when none is given (httpx's own default), so
  what is trusted does not depend on the host's CA store and every component agrees
  on it. The peer's name is checked against ``server_name`` when given, otherwise
  against the host connected to (callers pass :func:`server_name`).
* **No verification** (``verify: false``, or ``verify=False`` to read a certificate
  that failed verification): neither the chain nor the name is checked.
* **Mutual TLS**: ``client_cert`` (and ``client_key``, unless the key is in the
  certificate file) are presented when the server asks.
* **Protocol and ciphers**: TLS 1.2 at least (:data:`MINIMUM_VERSION`); the cipher
  suites are Python's defaults for a client context (OpenSSL security level 2: forward
  secrecy and AEAD first, no RC4, 3DES, MD5 or export suites).
* **ALPN**: ``http/1.1`` for HTTP clients (:data:`HTTP_ALPN`; httpcore sets the same on
  every connect, so a shared context is never changed by it); none for SMTP.

Contexts are built once per set of options: loading a CA bundle costs ~10 ms and the
daemon runs hundreds of probes a second. The cache key holds what shapes a context
(``server_name`` does not: it is per connection) and the mtime and size of every file
named, so a rotated client certificate or CA file is picked up on its next use.
"""

from __future__ import annotations

import os
import ssl
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import certifi

from scd_monitor.config.types import TlsOptions

__all__ = [
    "HTTP_ALPN",
    "MINIMUM_VERSION",
    "TLS_FILE_FIELDS",
    "ContextCache",
    "build_context",
    "httpx_extensions",
    "server_name",
    "tls_files",
    "with_absolute_files",
]

MINIMUM_VERSION = ssl.TLSVersion.TLSv1_2
"""The oldest protocol version any connection of the monitor accepts."""

HTTP_ALPN: tuple[str, ...] = ("http/1.1",)
"""ALPN protocols offered by HTTP clients (httpx/httpcore speak HTTP/1.1 here)."""

TLS_FILE_FIELDS: tuple[str, ...] = ("ca_file", "client_cert", "client_key")
"""The fields of :class:`TlsOptions` that name files."""

_FileStamp = tuple[str, int, int]
_ContextKey = tuple[
    bool, Path | None, Path | None, Path | None, tuple[str, ...], tuple[_FileStamp, ...]
]


def build_context(
    options: TlsOptions,
    *,
    verify: bool | None = None,
    alpn: Sequence[str] = HTTP_ALPN,
) -> ssl.SSLContext:
    """A client context for ``options``; ``verify=False`` forces a non-verifying one.

    Raises ``OSError`` or ``ssl.SSLError`` when a named file is missing or invalid: the
    monitor's problem, not the peer's, so build the context before any I/O.
    """
    verifying = options.verify if verify is None else verify
    return _build(
        verify=verifying,
        ca_file=options.ca_file if verifying else None,
        client_cert=options.client_cert,
        client_key=options.client_key,
        alpn=tuple(alpn),
    )


def _build(
    *,
    verify: bool,
    ca_file: Path | None,
    client_cert: Path | None,
    client_key: Path | None,
    alpn: tuple[str, ...],
) -> ssl.SSLContext:
    # PROTOCOL_TLS_CLIENT: CERT_REQUIRED and host name checking; Python's default ciphers.
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.minimum_version = MINIMUM_VERSION
    if verify:
        context.load_verify_locations(cafile=os.fspath(ca_file or certifi.where()))
    else:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    if client_cert is not None:
        context.load_cert_chain(client_cert, client_key)
    if alpn:
        context.set_alpn_protocols(list(alpn))
    return context


def server_name(options: TlsOptions, host: str) -> str:
    """The name sent in SNI and checked against the certificate for ``host``."""
    return options.server_name or host


def httpx_extensions(options: TlsOptions) -> dict[str, Any]:
    """The httpx request extensions for ``options``: ``sni_hostname`` (the name sent in
    SNI and checked against the certificate) when ``server_name`` is set."""
    return {"sni_hostname": options.server_name} if options.server_name else {}


class ContextCache:
    """Client contexts by the options that shape them, least recently used evicted.

    Contexts are shared between concurrent connections; nothing mutates one after it
    is built.
    """

    def __init__(self, *, max_size: int = 256) -> None:
        self._max_size = max_size
        self._contexts: OrderedDict[_ContextKey, ssl.SSLContext] = OrderedDict()

    def __len__(self) -> int:
        return len(self._contexts)

    def get(
        self,
        options: TlsOptions,
        *,
        verify: bool | None = None,
        alpn: Sequence[str] = HTTP_ALPN,
    ) -> ssl.SSLContext:
        """The context :func:`build_context` makes for these arguments, built once.

        Raises like :func:`build_context` (call it before touching the network).
        """
        verifying = options.verify if verify is None else verify
        ca_file = options.ca_file if verifying else None
        files = [p for p in (ca_file, options.client_cert, options.client_key) if p is not None]
        protocols = tuple(alpn)
        key: _ContextKey = (
            verifying,
            ca_file,
            options.client_cert,
            options.client_key,
            protocols,
            tuple(_stamp(p) for p in files),
        )
        context = self._contexts.get(key)
        if context is not None:
            self._contexts.move_to_end(key)
            return context
        context = _build(
            verify=verifying,
            ca_file=ca_file,
            client_cert=options.client_cert,
            client_key=options.client_key,
            alpn=protocols,
        )
        self._contexts[key] = context
        while len(self._contexts) > self._max_size:
            self._contexts.popitem(last=False)
        return context


def _stamp(path: Path) -> _FileStamp:
    info = path.stat()
    return (str(path), info.st_mtime_ns, info.st_size)


def tls_files(options: TlsOptions) -> list[tuple[str, Path]]:
    """``(field, path)`` for every file the options name."""
    return [
        (name, value) for name in TLS_FILE_FIELDS if (value := getattr(options, name)) is not None
    ]


def with_absolute_files(options: TlsOptions, base_dir: Path) -> TlsOptions:
    """The options with every file made absolute against ``base_dir``."""
    update = {name: (base_dir / value).resolve() for name, value in tls_files(options)}
    return options.model_copy(update=update) if update else options
