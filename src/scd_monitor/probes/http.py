"""The ``http`` probe: one HTTP(S) request, judged by status, body and JSON assertions.

How it works, and why:

* **A fresh connection per run.** Each run has its own ``httpx.AsyncClient`` (cheap:
  the SSL context is not rebuilt; :class:`~scd_monitor.net.tls.ContextCache`
  keeps one per set of TLS options), so ``connect`` and ``tls`` are measured every time.
  Environment proxies are ignored (``trust_env=False``): the probe measures the target.
* **Bounded.** ``asyncio.timeout`` around the whole attempt is the safety net; httpx
  timeouts (per read/write/connect) fire first in the common cases. The body is
  streamed and reading stops once more than ``max_body_bytes`` arrived, counting both
  the bytes on the wire and the decoded bytes (gzip/deflate are decoded here with a
  bounded inflater, so a compression bomb cannot make it buffer more than the limit).
  A ``Content-Length`` above the limit fails before any of the body is read.
* **Redirects** are followed by this module, one hop at a time, up to
  ``max_redirects`` (more → ``PROTOCOL``). Hop bodies are not read. On a hop to another
  origin, ``secret_headers`` are dropped (httpx already drops ``Authorization``) and
  the ``server_name`` override is not applied to another host. Without
  ``follow_redirects`` a redirect is judged by ``expect_status`` like any status.
* **Timings** come from httpcore's ``trace`` extension and are summed over the hops:
  ``connect`` (TCP connect, *including* name resolution: httpcore does both in one
  call, so there is no separate ``dns`` phase), ``tls`` (handshake), ``first_byte``
  (request sent → response headers) and ``transfer`` (reading the final body).
* **Certificates** are read from the connection the moment its handshake completes
  (the ``start_tls.complete`` trace event), from the first TLS hop: the check's own
  target unless it redirects from ``http://``. So expiry is known even when the
  server then rejects the request (e.g. TLS 1.3 client-certificate rejection). When
  verification fails, there is no connection to read from: the probe makes a second,
  non-verifying handshake (:func:`~scd_monitor.probes.tlsinfo.handshake`, bounded by
  what is left of the timeout) only to read ``cert_not_after``/``chain_not_after``;
  the verdict stays the verification error.

Error mapping (see :class:`~scd_monitor.probes.base.ErrorKind`): name resolution →
DNS; refused, unreachable *and reset* (``ECONNRESET`` at any point, also after the
request was sent) → CONNECT, except where the reset is the server's TLS layer speaking:
a reset or close *during* the TLS handshake → TLS, and a reset or close right after a
TLS 1.3 handshake, before any byte of the response → TLS (that is how a TLS 1.3 server
rejects a missing or unaccepted client certificate; its alert loses the race against
the reset most of the time, see :func:`_post_handshake_rejection`). An orderly close
before or in the middle of the response → PROTOCOL, like malformed HTTP, a body that
cannot be decoded, invalid JSON (only when JSON assertions are configured), a bad
redirect or too many of them. Every other ``ssl`` error (verification, alerts) → TLS.
A request that cannot even be written (e.g. an illegal header value) and the monitor
running out of file descriptors → INTERNAL.

``details`` may hold ``http_version``, ``bytes_read``, ``redirects``, ``tls_version``
and ``redirect_location`` (without credentials, query or fragment: a query can carry
an authorization code).

Patterns (``body_regex``, ``body_not_regex``, a JSON assertion's ``matches``) are RE2
(:mod:`scd_monitor.patterns`): matching is linear in the body whatever the pattern, so a
hostile body cannot stall the event loop; a body over 64 KiB is judged in a thread.
Whatever the target sent that ends up quoted in a message or a detail (a JSON value, a
redirect location) is cleaned by :class:`~scd_monitor.probes.base.Outcome` itself
(:mod:`scd_monitor.sanitize`).

Secrets: ``secret_headers`` values are sent and never reported. As a last line of
defence every message and detail is scrubbed of those values (an error raised by the
HTTP library might quote a header).
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import time
import zlib
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx

from scd_monitor import __version__
from scd_monitor.catalog.models import HttpCheck, JsonAssertion, ResolvedCheck
from scd_monitor.net.backend import probe_transport
from scd_monitor.net.errors import (
    NetErrorKind,
    NetFailure,
    classify,
    classify_cause,
    is_verify_failure,
)
from scd_monitor.net.tls import ContextCache, httpx_extensions
from scd_monitor.patterns import search
from scd_monitor.probes.base import ErrorKind, Outcome
from scd_monitor.probes.tlsinfo import PeerCertificates, error_kind, handshake, read_peer
from scd_monitor.sanitize import clean_text

__all__ = ["HttpProbe"]

_USER_AGENT = f"scd-monitor/{__version__}"
_TRACE_PHASES = {
    "connection.connect_tcp": "connect",
    "connection.start_tls": "tls",
    "http11.receive_response_headers": "first_byte",
}
_TRACE_WORDS = {
    "connection.connect_tcp": "connecting",
    "connection.start_tls": "in the TLS handshake",
    "http11.send_request_headers": "sending the request",
    "http11.send_request_body": "sending the request",
    "http11.receive_response_headers": "waiting for the response headers",
    "http11.receive_response_body": "reading the body",
}
_MAX_SHOWN = 80
_JUDGE_ON_LOOP_BYTES = 64 * 1024
Details = dict[str, str | int | float | bool]


class HttpProbe:
    """Implements :class:`~scd_monitor.probes.base.Probe` for ``kind: http`` checks."""

    def __init__(self, *, contexts: ContextCache | None = None) -> None:
        self._contexts = contexts if contexts is not None else ContextCache()

    async def __call__(self, check: ResolvedCheck) -> Outcome:
        secrets: list[str] = []
        try:
            spec = check.spec
            if not isinstance(spec, HttpCheck):
                raise TypeError(f"the http probe cannot run a {spec.kind!r} check")
            secrets = _secret_values(spec)
            outcome = await _Attempt(spec, self._contexts, check.timeout.total_seconds()).run()
        except Exception as exc:  # the probe's own failure, never the target's
            outcome = Outcome.failure(ErrorKind.INTERNAL, f"{type(exc).__name__}: {exc}")
        return scrub_secrets(outcome, secrets)


class _Failed(Exception):
    """Ends an attempt early with an outcome already decided."""

    def __init__(self, kind: ErrorKind, message: str, **details: str | int | float | bool) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.details = details


class _Attempt:
    """One run of one check: the state the trace callback and the judging share."""

    def __init__(self, spec: HttpCheck, contexts: ContextCache, timeout: float) -> None:
        self.spec = spec
        self.timeout = timeout
        self.contexts = contexts
        self.phases: dict[str, float] = {}
        self.details: Details = {}
        self.status_code: int | None = None
        self.peer: PeerCertificates | None = None
        self.in_progress: str | None = None
        self.tls13_unconfirmed = False
        """A TLS 1.3 handshake ended on our side and the server has not answered yet."""
        self.tls_target: tuple[str, int, str | None] | None = None
        self._started: dict[str, float] = {}

    async def run(self) -> Outcome:
        spec = self.spec
        headers = _request_headers(spec)
        context = self.contexts.get(spec.tls)  # before any I/O: a bad file is INTERNAL
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.timeout
        verify_failed = False
        try:
            async with asyncio.timeout_at(deadline):
                outcome = await self._exchange(context, headers)
        except TimeoutError:
            outcome = self._fail(ErrorKind.TIMEOUT, self._timeout_message())
        except _Failed as failed:
            self.details.update(failed.details)
            outcome = self._fail(failed.kind, failed.message)
        except (httpx.HTTPError, OSError) as exc:
            kind, message = self._classify(exc)
            verify_failed = is_verify_failure(exc)
            outcome = self._fail(kind, message)
        if verify_failed and self.peer is None and self.tls_target is not None:
            self.peer = await self._read_untrusted(deadline)
            outcome = self._fail(outcome.error_kind or ErrorKind.TLS, outcome.message or "")
        return outcome

    async def _exchange(self, context: Any, headers: dict[str, str]) -> Outcome:
        spec = self.spec
        client = httpx.AsyncClient(
            transport=probe_transport(context),
            trust_env=False,
            follow_redirects=False,
            timeout=httpx.Timeout(self.timeout),
            headers={"User-Agent": _USER_AGENT, "Accept-Encoding": "gzip, deflate"},
        )
        extensions: dict[str, Any] = {"trace": self._trace, **httpx_extensions(spec.tls)}
        content = spec.body.encode("utf-8") if spec.body is not None else None
        async with client:
            request = client.build_request(
                spec.method, spec.url, headers=headers, content=content, extensions=extensions
            )
            origin = request.url
            hops = 0
            while True:
                self._note_target(request)
                response = await client.send(request, stream=True)
                try:
                    if response.has_redirect_location:
                        self.details["redirect_location"] = _shown_location(
                            response.headers["location"]
                        )
                    following = spec.follow_redirects and response.next_request is not None
                    if not following:
                        if hops:
                            self.details["redirects"] = hops
                        return await self._judge(response)
                    if hops >= spec.max_redirects:
                        raise _Failed(
                            ErrorKind.PROTOCOL,
                            f"too many redirects (more than {spec.max_redirects})",
                            redirects=hops,
                        )
                    assert response.next_request is not None
                    request = self._next_hop(origin, response.next_request)
                    hops += 1
                finally:
                    await response.aclose()

    def _next_hop(self, origin: httpx.URL, request: httpx.Request) -> httpx.Request:
        """Adjust httpx's redirect request: nothing secret or host-specific elsewhere."""
        if request.url.host != origin.host:
            request.extensions.pop("sni_hostname", None)
        if not _same_origin(origin, request.url):
            for name in self.spec.secret_headers:
                request.headers.pop(name, None)
        return request

    def _note_target(self, request: httpx.Request) -> None:
        if request.url.scheme == "https" and self.tls_target is None:
            sni = request.extensions.get("sni_hostname")
            self.tls_target = (request.url.host, request.url.port or 443, sni)

    async def _trace(self, name: str, info: Mapping[str, Any]) -> None:
        event, _, stage = name.rpartition(".")
        now = time.perf_counter()
        if stage == "started":
            self._started[event] = now
            if event in _TRACE_WORDS:
                self.in_progress = event
            return
        started = self._started.pop(event, None)
        if stage != "complete":
            return  # "failed": in_progress still names where the attempt broke
        if event == self.in_progress:
            self.in_progress = None
        phase = _TRACE_PHASES.get(event)
        if phase is not None and started is not None:
            self.phases[phase] = self.phases.get(phase, 0.0) + (now - started)
        if event == "connection.start_tls":
            stream = info.get("return_value")
            ssl_object = stream.get_extra_info("ssl_object") if stream is not None else None
            if ssl_object is not None:
                self.tls13_unconfirmed = ssl_object.version() == "TLSv1.3"
                if self.peer is None:
                    self.peer = read_peer(ssl_object)
        elif event == "http11.receive_response_headers":
            self.tls13_unconfirmed = False

    async def _judge(self, response: httpx.Response) -> Outcome:
        spec = self.spec
        self.status_code = response.status_code
        self.details["http_version"] = response.http_version
        if response.status_code in spec.maintenance_status:
            # The target says it is in maintenance (e.g. an X-Road security server's
            # health check answering 503): a failure the state tracker excludes.
            self.details["maintenance"] = True
            return self._fail(
                ErrorKind.STATUS, f"status {response.status_code}: target in maintenance"
            )
        if response.status_code not in spec.expect_status:
            expected = ", ".join(str(code) for code in spec.expect_status)
            return self._fail(
                ErrorKind.STATUS, f"status {response.status_code}, expected {expected}"
            )
        started = time.perf_counter()
        body = await self._read_body(response)
        self.phases["transfer"] = time.perf_counter() - started
        if len(body) > _JUDGE_ON_LOOP_BYTES:
            # Linear time (RE2, json), but a large body still takes milliseconds: off the loop.
            problem = await asyncio.to_thread(_judge_body, spec, body, response.charset_encoding)
        else:
            problem = _judge_body(spec, body, response.charset_encoding)
        if problem is not None:
            return self._fail(*problem)
        return self._outcome(ok=True)

    async def _read_body(self, response: httpx.Response) -> bytes:
        limit = self.spec.max_body_bytes
        declared = response.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            raise _Failed(
                ErrorKind.TOO_LARGE,
                f"Content-Length {int(declared)} exceeds max_body_bytes ({limit})",
                bytes_read=0,
            )
        decoder = _Decoder(response.headers.get("content-encoding", ""))
        body = bytearray()
        wire = 0
        self.in_progress = "http11.receive_response_body"
        async for chunk in response.aiter_raw():
            wire += len(chunk)
            body += decoder.feed(chunk, limit + 1 - len(body))
            if wire > limit or len(body) > limit:
                raise _Failed(
                    ErrorKind.TOO_LARGE,
                    f"body exceeds max_body_bytes ({limit}); stopped after {wire} bytes",
                    bytes_read=wire,
                )
        body += decoder.flush(limit + 1 - len(body))
        self.in_progress = None
        self.details["bytes_read"] = wire
        if len(body) > limit:
            raise _Failed(
                ErrorKind.TOO_LARGE,
                f"decoded body exceeds max_body_bytes ({limit})",
                bytes_read=wire,
            )
        if decoder.unsupported and _needs_body(self.spec):
            raise _Failed(
                ErrorKind.PROTOCOL,
                f"cannot decode Content-Encoding {decoder.encoding!r} to judge the body",
            )
        return bytes(body)

    def _classify(self, exc: Exception) -> tuple[ErrorKind, str]:
        if isinstance(exc, httpx.TimeoutException):
            return ErrorKind.TIMEOUT, self._timeout_message()
        known = classify_cause(exc)
        if self.tls13_unconfirmed:
            rejected = _post_handshake_rejection(exc, known)
            if rejected is not None:
                return ErrorKind.TLS, rejected
        if self.in_progress == "connection.start_tls" and (
            known is None or known.kind is NetErrorKind.CONNECT
        ):
            # The TCP connection was up; the server gave up on the handshake.
            what = known.message if known is not None else "connection closed"
            return ErrorKind.TLS, f"{what} during the TLS handshake"
        if known is not None:
            if known.kind is NetErrorKind.TIMEOUT:
                return ErrorKind.TIMEOUT, self._timeout_message()
            return error_kind(known.kind), known.message
        if isinstance(exc, httpx.UnsupportedProtocol):
            # Checks are http(s) URLs: another scheme can only come from a redirect.
            return ErrorKind.PROTOCOL, f"unsupported URL: {exc}"
        failure = classify(exc)
        return error_kind(failure.kind), failure.message

    def _timeout_message(self) -> str:
        where = _TRACE_WORDS.get(self.in_progress or "", "")
        return f"timed out after {self.timeout:.2f} s {where}".rstrip()

    async def _read_untrusted(self, deadline: float) -> PeerCertificates | None:
        assert self.tls_target is not None
        host, port, sni = self.tls_target
        context = self.contexts.get(self.spec.tls, verify=False)
        try:
            async with asyncio.timeout_at(deadline):
                return await handshake(
                    host, port, context=context, server_name=sni, deadline=deadline
                )
        except (OSError, TimeoutError):
            return None

    def _fail(self, kind: ErrorKind, message: str) -> Outcome:
        return dataclasses.replace(self._outcome(ok=False), error_kind=kind, message=message)

    def _outcome(self, *, ok: bool) -> Outcome:
        details = dict(self.details)
        peer = self.peer
        if peer is not None and peer.tls_version:
            details["tls_version"] = peer.tls_version
        return Outcome(
            ok=ok,
            status_code=self.status_code,
            phases=dict(self.phases),
            cert_not_after=peer.not_after if peer is not None else None,
            chain_not_after=peer.chain_not_after if peer is not None else None,
            details=details,
        )


def _post_handshake_rejection(exc: Exception, known: NetFailure | None) -> str | None:
    """Name a reset or close that came right after our side of a TLS 1.3 handshake.

    Under TLS 1.3 the client's handshake ends before the server has checked the client's
    certificate; a server that requires one (or rejects ours) then sends an alert and
    closes. The alert often loses the race against the TCP reset, so the same fault
    would show up as TLS or CONNECT at random. A reset or close before any byte of the
    response is taken as the server rejecting the session: TLS, consistently.
    """
    if known is not None and known.kind is NetErrorKind.CONNECT:
        what = known.message
    elif isinstance(exc, httpx.RemoteProtocolError) and "without sending" in str(exc):
        what = "connection closed by peer"
    else:
        return None
    return (
        f"{what} right after the TLS 1.3 handshake, before any response: the server "
        "rejected the session (as it does when it requires a client certificate or "
        "does not accept ours)"
    )


def _request_headers(spec: HttpCheck) -> dict[str, str]:
    headers = dict(spec.headers)
    for name, ref in spec.secret_headers.items():
        if ref.value is None:
            raise ValueError(
                f"secret header {name!r} has no value: the catalog loader did not load it"
            )
        headers[name] = ref.value.get_secret_value()
    return headers


def _secret_values(spec: HttpCheck) -> list[str]:
    values = [ref.value.get_secret_value() for ref in spec.secret_headers.values() if ref.value]
    password = urlsplit(spec.url).password
    if password:
        values.append(password)
    return [value for value in values if value]


def scrub_secrets(outcome: Outcome, secrets: list[str]) -> Outcome:
    """Replace every secret value (and its escaped forms) in the message and details."""
    if not secrets:
        return outcome
    raw = {form for s in secrets for form in (s, repr(s)[1:-1], repr(s.encode())[2:-1]) if form}
    # The outcome's text is already cleaned (controls shown as pictures): so are the forms.
    forms = raw | {clean_text(form, limit=None) for form in raw}

    def clean(text: str) -> str:
        for form in sorted(forms, key=len, reverse=True):
            text = text.replace(form, "[secret]")
        return text

    details = {k: clean(v) if isinstance(v, str) else v for k, v in outcome.details.items()}
    message = clean(outcome.message) if outcome.message is not None else None
    return dataclasses.replace(outcome, message=message, details=details)


def _same_origin(a: httpx.URL, b: httpx.URL) -> bool:
    upgrade = a.scheme == "http" and b.scheme == "https" and b.port in (None, 443)
    return a.host == b.host and (
        upgrade or (a.scheme == b.scheme and (a.port or 0) == (b.port or 0))
    )


def _shown_location(location: str) -> str:
    """A redirect target fit for ``details``: no credentials, query or fragment."""
    try:
        parts = urlsplit(location)
        netloc = parts.netloc.rpartition("@")[2]
        shown = urlunsplit((parts.scheme, netloc, parts.path, "", ""))
    except ValueError:
        shown = location.split("?", 1)[0].split("#", 1)[0]
    return shown[:200]


def _needs_body(spec: HttpCheck) -> bool:
    return bool(spec.body_regex or spec.body_not_regex or spec.json_assertions)


class _Decoder:
    """Content-Encoding decoding that never produces more than it is asked for."""

    def __init__(self, header: str) -> None:
        codings = [c.strip().lower() for c in header.split(",") if c.strip()]
        codings = [c for c in codings if c != "identity"]
        self.encoding = ", ".join(codings)
        self.unsupported = False
        self._inflater: Any = None
        self._raw_deflate_tried = False
        if not codings:
            return
        if codings in (["gzip"], ["x-gzip"]):
            self._inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
        elif codings == ["deflate"]:
            self._inflater = zlib.decompressobj()
        else:
            self.unsupported = True

    def feed(self, data: bytes, room: int) -> bytes:
        if self._inflater is None:
            return data[: max(room, 0)]
        try:
            return bytes(self._inflater.decompress(data, max(room, 1)))
        except zlib.error as exc:
            if self.encoding == "deflate" and not self._raw_deflate_tried:
                # Some servers send raw deflate without the zlib wrapper; httpx accepts it.
                self._raw_deflate_tried = True
                self._inflater = zlib.decompressobj(-zlib.MAX_WBITS)
                return self.feed(data, room)
            raise _Failed(ErrorKind.PROTOCOL, f"body is not valid {self.encoding}: {exc}") from None

    def flush(self, room: int) -> bytes:
        if self._inflater is None:
            return b""
        try:
            return bytes(self._inflater.flush(max(room, 1)))
        except zlib.error as exc:
            raise _Failed(ErrorKind.PROTOCOL, f"body is not valid {self.encoding}: {exc}") from None


def _judge_body(spec: HttpCheck, body: bytes, charset: str | None) -> tuple[ErrorKind, str] | None:
    if spec.body_regex is not None or spec.body_not_regex is not None:
        text = _decode_text(body, charset)
        if spec.body_regex is not None and not search(spec.body_regex, text):
            return ErrorKind.ASSERTION, f"body does not match /{spec.body_regex}/"
        if spec.body_not_regex is not None and search(spec.body_not_regex, text):
            return (
                ErrorKind.ASSERTION,
                f"body matches the forbidden pattern /{spec.body_not_regex}/",
            )
    if spec.json_assertions:
        try:
            document = json.loads(body)
        except (ValueError, RecursionError) as exc:
            return ErrorKind.PROTOCOL, f"body is not valid JSON: {_short(str(exc))}"
        for assertion in spec.json_assertions:
            problem = _check_json(document, assertion)
            if problem is not None:
                return ErrorKind.ASSERTION, problem
    return None


def _decode_text(body: bytes, charset: str | None) -> str:
    try:
        return body.decode(charset or "utf-8", errors="replace")
    except LookupError:
        return body.decode("utf-8", errors="replace")


_MISSING = object()


def _lookup(document: object, path: str) -> object:
    node = document
    for part in path.split("."):
        if isinstance(node, dict):
            if part not in node:
                return _MISSING
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            return _MISSING
    return node


def _check_json(document: object, assertion: JsonAssertion) -> str | None:
    value = _lookup(document, assertion.path)
    field = f"JSON field {assertion.path!r}"
    if not assertion.exists:
        return None if value is _MISSING else f"{field} is present, expected it absent"
    if value is _MISSING:
        return f"{field} is missing"
    if assertion.equals is not None and not _json_equal(value, assertion.equals):
        return f"{field} is {_show(value)}, expected {_show(assertion.equals)}"
    if assertion.matches is not None:
        text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
        if not search(assertion.matches, text):
            return f"{field} is {_show(value)}, which does not match /{assertion.matches}/"
    return None


def _json_equal(value: object, expected: str | int | float | bool) -> bool:
    """Equality without Python's ``True == 1``: booleans equal only booleans."""
    if isinstance(value, bool) or isinstance(expected, bool):
        return isinstance(value, bool) and isinstance(expected, bool) and value is expected
    if isinstance(expected, str) or isinstance(value, str):
        return value == expected
    if isinstance(value, int | float):
        return value == expected
    return False


def _show(value: object) -> str:
    return _short(json.dumps(value, ensure_ascii=False))


def _short(text: str) -> str:
    return text if len(text) <= _MAX_SHOWN else text[: _MAX_SHOWN - 1] + "…"
