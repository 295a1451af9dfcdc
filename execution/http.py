"""The outbound-HTTP seam: the only module that sends requests to customers' APIs.

Callers build plain data (`OutboundRequest`) and get plain data back
(`OutboundResponse`), or an `OutboundError` whose ``cause`` is one of `CAUSES` and whose
``detail`` is precise enough for the execution log (it is never shown to the AI, and
never contains a header value or a query string, which may carry secrets).

What `send` guarantees, in the order it checks:

1. **The request is well-formed before anything leaves.** HTTPS only; a port from the
   allowlist; the URL is printable ASCII (IDN hosts in their ``xn--`` form, other
   characters percent-encoded) without ``\\``, ``@``, ``#`` or a percent-encoded host;
   it is parsed by urllib3 (the parser that connects), and after requests has prepared
   it, both parsers requests uses must still agree on scheme, host and port. Header
   names are RFC 7230 tokens, values printable ASCII (no CR, LF, NUL); Host,
   Content-Length, Transfer-Encoding, Connection, TE, Upgrade, Proxy-* and friends
   are ours to set, never the caller's. -> ``invalid_request``
2. **The name, then every address, is checked; the name is resolved once.** A name
   such as ``localhost`` or ``metadata.google.internal`` is refused before any
   lookup; a numeric host (``127.1``, ``0x7f.1``, ``2130706433``) is decoded here and
   never sent to a resolver. One `getaddrinfo` call (with a trailing dot, so search
   domains never apply); if ANY record is not public unicast the whole answer is
   refused (see `execution.addresses`). -> ``blocked_address`` / ``dns``
3. **The connection goes to the checked address.** `_PinnedAdapter` hands urllib3 the
   IP literal as the pool's host and keeps the name for SNI, certificate matching
   (``server_hostname``/``assert_hostname``) and the Host header: the technique of
   requests-hardened's IPFilterAdapter, fed with our own single, all-records-checked
   resolution instead of its own first-record lookup. `_PinnedHTTPSConnection`
   refuses to open a socket to anything but that address and re-checks the peer.
   A kept-alive connection (below) is the other way to reach it.
4. **It ends on time, with a bounded body.** One wall-clock deadline covers DNS,
   connect (at most 5 s), TLS, headers and body: each body read gets the time left,
   and a watchdog shuts the socket down at the deadline, so a server trickling a byte
   every half second cannot stretch the call. The body is read streaming and
   decompressed in bounded steps; past ``max_bytes`` reading stops and the response is
   returned with ``truncated=True`` (a gzip bomb stops at the cap).
5. **Nothing is implicit.** No redirects (a 3xx is returned as data), no retries, no
   proxies, .netrc or CA bundle from the environment (``trust_env=False``), TLS
   verification always on against certifi's CAs (as requests uses), or against
   `settings.OUTBOUND_TEST_CA_BUNDLE` for tests; one SSLContext per trust store is
   built once (loading certifi costs ~30 ms, too much to pay per call).

Response size: over the cap is not an error, it is ``truncated`` (the AI sees the
beginning of the body, as the product promises). ``too_large`` is kept for what cannot
be cut: a response whose header section is over http.client's limits (a 64 KiB line
or more than 100 header fields).

**Kept-alive connections.** A new TCP + TLS connection costs more than the rest of a
call, so a connection whose exchange ended cleanly is kept for the next call that
would open exactly the same one. Reuse changes nothing above: every call still parses,
screens, resolves and checks every address (steps 1-2) before it looks for a kept
connection, and takes one only if it was made under the same key (`_Pin.key`): the
caller's ``partition`` (execution.run passes the organization, so no connection or
its state ever passes between organizations), the host name (SNI, certificate name
and Host header), **the address this call's own resolution chose**, the port and the
TLS context (trust store). A name that now resolves elsewhere, to a blocked address
or to another public one, never reaches a connection made to the old address
(rebinding stays shut). Before reuse the socket's peer is checked against that address
again, and a connection the server closed, or with bytes nobody asked for, is
discarded. A connection is kept only if this call sent its whole request, read the
response to its framed end (Content-Length or the last chunk) before the deadline,
and neither side asked to close (``Connection: close``, HTTP/1.0); a truncated,
timed-out or failed exchange closes it. Kept connections wait at most
`POOL_IDLE_SECONDS` (less when the server's ``Keep-Alive: timeout`` says so),
`POOL_PER_KEY` per key and `POOL_MAX_IDLE` in all; a forked child starts with none.
Deadlines are kept by one watchdog thread for the process, and lookups run in a
small set of reused threads (a stuck lookup keeps its own thread, never another
call's), instead of a thread and a Timer per call.

**Held until the caller is ready.** ``before_request``, if given, runs once after
every check above, the lookup and the request's preparation, just before a connection
is taken (kept or new): the caller's write-ahead log row is confirmed there, while the
call's preparation overlaps the wait for it. Its wait is not the upstream's: the
deadline starts over from there (the time left is what it was) and is not counted in
``elapsed_ms``; a kept connection is checked after it. If it raises, nothing is sent
and `send` raises that error as it is (not an `OutboundError`: it is the caller's).
"""

from __future__ import annotations

import contextlib
import functools
import heapq
import http.client
import itertools
import json as jsonlib
import logging
import os
import queue
import re
import socket
import ssl
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from ipaddress import IPv6Address, ip_address
from typing import Any, Literal, get_args
from urllib.parse import urlparse

import requests
import urllib3
from django.conf import settings
from requests.adapters import HTTPAdapter
from requests.utils import DEFAULT_CA_BUNDLE_PATH
from urllib3.connection import HTTPSConnection
from urllib3.connectionpool import HTTPSConnectionPool
from urllib3.exceptions import ClosedPoolError
from urllib3.util import parse_url
from urllib3.util.ssl_ import create_urllib3_context
from urllib3.util.wait import wait_for_read

from execution.addresses import (
    IPAddress,
    IPNetwork,
    check_address,
    decode_legacy_ipv4,
    hostname_problem,
    is_canonical_ipv4,
    is_numeric_host,
    normalize_hostname,
    parse_networks,
)

logger = logging.getLogger(__name__)

Cause = Literal[
    "dns",
    "refused",
    "tls",
    "blocked_address",
    "too_large",
    "timeout",
    "invalid_request",
    "connection",
]
CAUSES: tuple[Cause, ...] = get_args(Cause)

METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"})
# Framing, routing and hop-by-hop headers: set by us (or by requests), never by a caller.
FORBIDDEN_HEADERS = frozenset(
    {
        "host",
        "content-length",
        "transfer-encoding",
        "connection",
        "keep-alive",
        "te",
        "trailer",
        "upgrade",
        "expect",
    }
)
# Sent unless the caller sets them. Only the encodings urllib3 decodes within the cap.
DEFAULT_HEADERS = {"User-Agent": "OpenCX", "Accept-Encoding": "gzip, deflate", "Accept": "*/*"}
CONNECT_TIMEOUT_SECONDS = 5.0
DNS_TIMEOUT_SECONDS = 10.0
DNS_THREADS_MAX = 64  # lookups in flight at once; more wait for a free thread
DNS_THREAD_IDLE_SECONDS = 60.0
# Kept-alive connections: how long one waits for its next call, how many per key and
# in all (the oldest go first).
POOL_IDLE_SECONDS = 30.0
POOL_PER_KEY = 4
POOL_MAX_IDLE = 256
MAX_URL_LENGTH = 8192
READ_CHUNK = 64 * 1024

_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")  # RFC 7230 token
_HEADER_VALUE = re.compile(r"[\x20-\x7e\t]*")  # printable ASCII and tab
_URL_FORBIDDEN = re.compile(r"[\x00-\x20\x7f\\@#]|[^\x00-\x7f]")


@dataclass(frozen=True)
class OutboundRequest:
    """One HTTPS request, as plain data.

    ``json`` is the JSON body (None: no JSON body), ``form`` an
    application/x-www-form-urlencoded body, ``multipart`` a multipart/form-data body as
    ``[(name, "value"), (name, (filename, b"bytes", "content/type"))]``, ``content`` a
    raw body sent as it is (its Content-Type header is the caller's, else
    application/octet-stream); at most one of the four. ``params`` are appended to the
    URL's query, encoded by requests.
    """

    method: str
    url: str
    headers: dict[str, str] = field(default_factory=dict)
    params: tuple[tuple[str, str], ...] | list[tuple[str, str]] = ()
    json: Any = None
    form: dict[str, str] | None = None
    multipart: list[tuple[str, str | tuple[str, bytes, str]]] | None = None
    content: bytes | None = None


@dataclass(frozen=True)
class OutboundResponse:
    """What the upstream answered. Header names are lower-case; repeated fields are joined
    with ", ". ``body`` is decoded (gzip/deflate) and at most ``max_bytes`` long;
    ``truncated`` says whether there was more. ``url`` is the URL as sent (with params)."""

    status: int
    headers: dict[str, str]
    body: bytes
    truncated: bool
    elapsed_ms: float
    url: str


class OutboundError(Exception):
    """A call that produced no response. ``cause`` is one of `CAUSES`; ``detail`` is for
    the execution log only."""

    def __init__(self, cause: Cause, detail: str):
        if cause not in CAUSES:
            raise ValueError(f"unknown cause {cause!r}")
        super().__init__(f"{cause}: {detail}")
        self.cause = cause
        self.detail = detail


class _Held(Exception):
    """`before_request` raised (its error is the cause): the request was not sent."""


class _GuardViolation(Exception):
    """The pinned adapter or connection saw a destination other than the one checked."""


@dataclass(frozen=True)
class _Target:
    hostname: str  # normalized: lower-case, no brackets, no trailing dot (ASCII/IDNA)
    port: int
    literal: IPAddress | None  # the host was an IP address

    @property
    def host_header(self) -> str:
        host = f"[{self.hostname}]" if isinstance(self.literal, IPv6Address) else self.hostname
        return host if self.port == 443 else f"{host}:{self.port}"


def send(
    request: OutboundRequest,
    *,
    timeout_seconds: float | None = None,
    max_bytes: int | None = None,
    partition: Hashable = None,
    before_request: Callable[[], object] | None = None,
) -> OutboundResponse:
    """Send one request under the rules in the module docstring; never follows a redirect.

    Returns the upstream's answer whatever its status; raises `OutboundError` when there
    is no answer. No other exception escapes for any input. ``partition`` (the
    organization, say) keeps kept-alive connections apart: a connection is reused only
    by a call with the same partition.
    """
    started = time.monotonic()
    try:
        timeout = float(
            settings.EXECUTION_TIMEOUT_SECONDS if timeout_seconds is None else timeout_seconds
        )
        cap = int(settings.EXECUTION_MAX_RESPONSE_BYTES if max_bytes is None else max_bytes)
    except (TypeError, ValueError, OverflowError):
        raise OutboundError("invalid_request", "timeout and max_bytes must be numbers") from None
    if not 0 < timeout <= 24 * 60 * 60 or cap <= 0:
        raise OutboundError("invalid_request", "timeout and max_bytes must be positive")
    deadline = started + timeout

    target = _parse_target(request.url)
    allowlist = _allowlist()
    _screen(target, allowlist)  # literals and names, before any lookup
    prepared = _prepare(request, target)
    address = (
        target.literal if target.literal is not None else _resolve(target, allowlist, deadline)
    )

    pin = _Pin(
        hostname=target.hostname, ip=address, port=target.port, partition=partition,
        deadline=deadline, before_request=before_request,
    )  # fmt: skip
    session = requests.Session()
    session.trust_env = False  # no HTTPS_PROXY, no .netrc, no REQUESTS_CA_BUNDLE
    session.adapters.clear()
    session.mount("https://", _PinnedAdapter(pin))
    response: requests.Response | None = None
    complete = False  # the exchange ended cleanly: its connection may be kept
    try:
        pin.tls = _tls_context(settings.OUTBOUND_TEST_CA_BUNDLE)
        remaining = _remaining(deadline)
        response = session.send(
            prepared,
            stream=True,
            allow_redirects=False,
            timeout=(min(CONNECT_TIMEOUT_SECONDS, remaining), remaining),
            verify=True,  # against _tls_context's CAs, see _PinnedAdapter.cert_verify
            proxies={},
        )
        body, truncated = _read_body(response, pin, pin.deadline, cap)
        if pin.expired:
            raise OutboundError("timeout", f"no complete response within {timeout:g} s")
        # A 101 or other 1xx final answer leaves the connection in another protocol.
        complete = not truncated and response.status_code >= 200
        return OutboundResponse(
            status=response.status_code,
            headers={name.lower(): value for name, value in response.headers.items()},
            body=body,
            truncated=truncated,
            elapsed_ms=(time.monotonic() - started - pin.held_seconds) * 1000,
            url=prepared.url or "",
        )
    except OutboundError:
        raise
    except _Held as held:  # the caller's own error, before anything was sent
        raise held.__cause__ from None
    except Exception as error:  # every library failure becomes a cause
        raise _classify(error, pin, timeout, target) from error
    finally:
        if response is not None:
            response.close()  # closes the connection, unless it was read to its end
        session.close()
        pin.finish(keep=complete, headers=response.headers if response is not None else None)


# --- 1. The request -------------------------------------------------------------------


def _parse_target(url: Any) -> _Target:
    if not isinstance(url, str) or not url:
        raise OutboundError("invalid_request", "the URL is not a string")
    if len(url) > MAX_URL_LENGTH:
        raise OutboundError("invalid_request", f"the URL is over {MAX_URL_LENGTH} characters")
    bad = _URL_FORBIDDEN.search(url)
    if bad:
        raise OutboundError(
            "invalid_request",
            f"the URL contains {bad.group()!r} at {bad.start()} (whitespace, control "
            "characters, non-ASCII, backslash, @ and # are refused)",
        )
    authority = url.partition("://")[2].partition("/")[0].partition("?")[0]
    if "%" in authority:
        # %31%32%37.0.0.1 is 127.0.0.1 to urllib3; whether every parser agrees is not a
        # question worth answering. Zone indexes (fe80::1%25eth0) go with it.
        raise OutboundError("invalid_request", "percent-encoding in the host is refused")
    try:
        parsed = parse_url(url)
    except (ValueError, urllib3.exceptions.LocationParseError) as error:
        raise OutboundError("invalid_request", f"unparsable URL ({type(error).__name__})") from None
    if (parsed.scheme or "").lower() != "https":
        raise OutboundError("invalid_request", f"scheme {parsed.scheme!r} is not https")
    if not parsed.host:
        raise OutboundError("invalid_request", "the URL has no host")
    port = 443 if parsed.port is None else parsed.port
    allowed = {443, *settings.OUTBOUND_ALLOWED_PORTS}
    if port not in allowed:
        raise OutboundError(
            "invalid_request", f"port {port} is not allowed (allowed: {sorted(allowed)})"
        )
    hostname = normalize_hostname(parsed.host)
    try:
        literal: IPAddress | None = ip_address(hostname)
    except ValueError:
        literal = None
    if literal is None and ":" in hostname:
        raise OutboundError("invalid_request", "malformed IPv6 address in the URL")
    if literal is not None and literal.version == 4 and not is_canonical_ipv4(hostname):
        literal = None  # 127.000.000.001 and friends: treated as legacy spellings below
    return _Target(hostname=hostname, port=port, literal=literal)


def _prepare(request: OutboundRequest, target: _Target) -> requests.PreparedRequest:
    method = request.method.upper() if isinstance(request.method, str) else ""
    if method not in METHODS:
        raise OutboundError("invalid_request", f"method {request.method!r} is not supported")
    caller = _check_headers(request.headers)
    given = {name.lower() for name in caller}
    headers = {name: value for name, value in DEFAULT_HEADERS.items() if name.lower() not in given}
    headers.update(caller)
    headers["Host"] = target.host_header
    bodies = [
        request.json is not None,
        request.form is not None,
        request.multipart is not None,
        request.content is not None,
    ]
    if sum(bodies) > 1:
        raise OutboundError(
            "invalid_request", "give at most one of json, form, multipart and content"
        )
    data: Any = None
    files: Any = None
    if request.json is not None:
        try:
            data = jsonlib.dumps(request.json, ensure_ascii=False, allow_nan=False).encode()
        except (TypeError, ValueError, RecursionError) as error:
            raise OutboundError("invalid_request", f"JSON body not serializable: {error}") from None
        if "content-type" not in given:
            headers["Content-Type"] = "application/json"
    elif request.form is not None:
        data = _check_form(request.form)
    elif request.multipart is not None:
        if "content-type" in given:
            raise OutboundError("invalid_request", "Content-Type is set by multipart encoding")
        files = _check_multipart(request.multipart)
    elif request.content is not None:
        if not isinstance(request.content, bytes):
            raise OutboundError("invalid_request", "content must be bytes")
        data = request.content
        if "content-type" not in given:
            headers["Content-Type"] = "application/octet-stream"
    try:
        prepared = requests.Request(
            method,
            request.url,
            headers=headers,
            params=_check_params(request.params),
            data=data,
            files=files,
        ).prepare()
    except (requests.RequestException, ValueError, TypeError, UnicodeError) as error:
        raise OutboundError("invalid_request", f"cannot build the request ({error})") from None
    # What requests will connect to must be what we checked: re-parse the final URL with
    # both parsers requests itself uses (urllib3's, and urlparse in the adapter).
    try:
        final = parse_url(prepared.url or "")
        split = urlparse(prepared.url or "")
        views = {
            (final.scheme, normalize_hostname(final.host or ""), final.port or 443),
            (split.scheme, normalize_hostname(split.hostname or ""), split.port or 443),
        }
    except ValueError:
        views = set()
    if views != {("https", target.hostname, target.port)}:
        raise OutboundError("invalid_request", "the prepared URL does not keep the checked host")
    return prepared


def _check_headers(headers: Any) -> dict[str, str]:
    if not isinstance(headers, dict):
        raise OutboundError("invalid_request", "headers must be a dict of strings")
    checked: dict[str, str] = {}
    seen: set[str] = set()
    for name, value in headers.items():
        if not isinstance(name, str) or not _TOKEN.fullmatch(name):
            raise OutboundError("invalid_request", f"header name {name!r} is not an RFC 7230 token")
        lower = name.lower()
        if lower in FORBIDDEN_HEADERS or lower.startswith("proxy-"):
            raise OutboundError("invalid_request", f"header {name} may not be set by the caller")
        if lower in seen:
            raise OutboundError("invalid_request", f"header {name} is given twice")
        seen.add(lower)
        if not isinstance(value, str):
            raise OutboundError("invalid_request", f"header {name} has a non-string value")
        if not _HEADER_VALUE.fullmatch(value):
            position = next(i for i, c in enumerate(value) if not _HEADER_VALUE.fullmatch(c))
            raise OutboundError(
                "invalid_request",
                f"header {name} has a forbidden character (code {ord(value[position])}) at "
                f"{position}: only printable ASCII and tab are sent",
            )
        checked[name] = value.strip(" \t")
    return checked


def _check_params(params: Any) -> list[tuple[str, str]]:
    if not isinstance(params, list | tuple):
        raise OutboundError("invalid_request", "params must be a list of (name, value) pairs")
    for pair in params:
        if not (
            isinstance(pair, list | tuple)
            and len(pair) == 2
            and all(isinstance(part, str) for part in pair)
        ):
            raise OutboundError("invalid_request", "params must be (name, value) string pairs")
    return [tuple(pair) for pair in params]  # type: ignore[misc]


def _check_form(form: Any) -> dict[str, str]:
    if not isinstance(form, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in form.items()
    ):
        raise OutboundError("invalid_request", "form must be a dict of strings")
    return form


def _check_multipart(parts: Any) -> list[tuple[str, tuple[str | None, Any, str | None]]]:
    if not isinstance(parts, list | tuple) or not parts:
        raise OutboundError("invalid_request", "multipart must be a non-empty list of parts")
    encoded = []
    for part in parts:
        if not (isinstance(part, list | tuple) and len(part) == 2 and isinstance(part[0], str)):
            raise OutboundError("invalid_request", "a multipart part must be (name, value)")
        name, value = part
        if isinstance(value, str | bytes):
            encoded.append((name, (None, value, None)))
            continue
        if not (
            isinstance(value, list | tuple)
            and len(value) == 3
            and isinstance(value[0], str)
            and isinstance(value[1], bytes)
            and isinstance(value[2], str)
        ):
            raise OutboundError(
                "invalid_request", f"multipart file {name!r} must be (filename, bytes, type)"
            )
        filename, content, content_type = value
        # urllib3 escapes names and filenames (HTML5 rules); the type goes in verbatim.
        if not _TOKEN.fullmatch(content_type.split("/", 1)[0]) or not _HEADER_VALUE.fullmatch(
            content_type
        ):
            raise OutboundError("invalid_request", f"multipart file {name!r} has a bad type")
        encoded.append((name, (filename, content, content_type)))
    return encoded


# --- 2. The destination ---------------------------------------------------------------


def _allowlist() -> tuple[IPNetwork, ...]:
    try:
        return parse_networks(settings.OUTBOUND_TEST_ALLOWLIST)
    except ValueError as error:
        raise OutboundError("invalid_request", f"OUTBOUND_TEST_ALLOWLIST: {error}") from None


def _screen(target: _Target, allowlist: tuple[IPNetwork, ...]) -> None:
    """Refuse what is known to be refused without a lookup: blocked literals, numeric
    spellings of addresses, and internal or single-label names."""
    if target.literal is not None:
        problem = check_address(target.literal, allowlist)
        if problem:
            raise OutboundError("blocked_address", problem)
        return
    host = target.hostname
    if is_numeric_host(host):
        decoded = decode_legacy_ipv4(host)
        if decoded is None:
            raise OutboundError("invalid_request", f"{host!r} is neither a name nor an address")
        problem = check_address(decoded, allowlist)
        if problem:
            raise OutboundError("blocked_address", f"{host} means {decoded}: {problem}")
        raise OutboundError(
            "invalid_request", f"{host} is an ambiguous spelling of {decoded}: write it dotted"
        )
    problem = hostname_problem(host)
    if problem:
        raise OutboundError("blocked_address", problem)


def _resolve(target: _Target, allowlist: tuple[IPNetwork, ...], deadline: float) -> IPAddress:
    """The one address to connect to; every address the name resolved to is checked."""
    host = target.hostname
    records = _getaddrinfo(host, target.port, deadline)
    addresses: list[tuple[int, IPAddress]] = []
    for family, _type, _proto, _canon, sockaddr in records:
        if family not in (socket.AF_INET, socket.AF_INET6):
            continue
        text = sockaddr[0]
        if family == socket.AF_INET6 and len(sockaddr) >= 4 and sockaddr[3]:
            text = f"{text.split('%')[0]}%{sockaddr[3]}"
        try:
            addresses.append((family, ip_address(text)))
        except ValueError:
            raise OutboundError("dns", f"{host} resolved to an unreadable address") from None
    if not addresses:
        raise OutboundError("dns", f"{host} has no IPv4 or IPv6 address")
    for _family, address in addresses:
        problem = check_address(address, allowlist)
        if problem:
            answer = ", ".join(str(a) for _f, a in addresses)
            raise OutboundError("blocked_address", f"{host} resolved to [{answer}]: {problem}")
    usable = [a for f, a in addresses if f == socket.AF_INET or urllib3.util.connection.HAS_IPV6]
    if not usable:
        raise OutboundError("dns", f"{host} has only IPv6 addresses and this host has no IPv6")
    return usable[0]


def _getaddrinfo(host: str, port: int, deadline: float) -> list:
    """One lookup, bounded in time. The trailing dot keeps resolv.conf's search list out."""
    limit = min(DNS_TIMEOUT_SECONDS, deadline - time.monotonic())
    if limit <= 0:
        raise OutboundError("timeout", "no time left for the DNS lookup")
    lookup = _Lookup(host + ".", port)
    # Another thread, because getaddrinfo has no timeout of its own; a stuck lookup
    # ends by the resolver's own timeouts and is abandoned here.
    try:
        _resolver.submit(lookup)
    except RuntimeError:  # no thread could be started
        raise OutboundError("dns", f"no thread free to look {host} up") from None
    if not lookup.done.wait(limit):
        lookup.abandoned = True
        cause: Cause = "timeout" if limit < DNS_TIMEOUT_SECONDS else "dns"
        raise OutboundError(cause, f"DNS lookup of {host} took over {limit:.1f} s")
    error = lookup.error
    if isinstance(error, socket.gaierror):
        raise OutboundError("dns", f"{host} did not resolve ({error.strerror or error})")
    if error is not None:
        raise OutboundError("dns", f"DNS lookup of {host} failed ({type(error).__name__})")
    return lookup.records


class _Lookup:
    """One getaddrinfo call, run by a `_Resolver` thread; `done` is set once it ended."""

    def __init__(self, host: str, port: int) -> None:
        self.host = host
        self.port = port
        self.done = threading.Event()
        self.abandoned = False  # its caller stopped waiting: not worth starting
        self.records: list = []
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self.records = socket.getaddrinfo(
                self.host, self.port, socket.AF_UNSPEC, socket.SOCK_STREAM
            )
        except Exception as error:  # handed back to the caller's thread
            self.error = error


class _Resolver:
    """Daemon threads that run lookups and wait for the next one: a call hands its
    lookup to an idle thread, or starts one (up to DNS_THREADS_MAX; beyond that lookups
    queue). A stuck lookup holds only its own thread. A thread idle for
    DNS_THREAD_IDLE_SECONDS ends."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._idle: list[queue.SimpleQueue] = []  # each idle thread's inbox
        self._threads = 0
        self._backlog: deque[_Lookup] = deque()

    def submit(self, lookup: _Lookup) -> None:
        with self._lock:
            if self._idle:
                self._idle.pop().put(lookup)
                return
            if self._threads >= DNS_THREADS_MAX:
                self._backlog.append(lookup)
                return
            self._threads += 1
        try:
            threading.Thread(
                target=self._work, args=(lookup,), name="outbound-dns", daemon=True
            ).start()
        except RuntimeError:
            with self._lock:
                self._threads -= 1
            raise

    def _work(self, lookup: _Lookup) -> None:
        inbox: queue.SimpleQueue = queue.SimpleQueue()
        while True:
            if not lookup.abandoned:
                lookup.run()
            finished = lookup
            with self._lock:
                backlog = self._backlog.popleft() if self._backlog else None
                if backlog is None:
                    self._idle.append(inbox)
            # Free again before the caller wakes: its next lookup finds this thread.
            finished.done.set()
            if backlog is not None:
                lookup = backlog
                continue
            try:
                lookup = inbox.get(timeout=DNS_THREAD_IDLE_SECONDS)
            except queue.Empty:
                with self._lock:
                    if any(idle is inbox for idle in self._idle):
                        self._idle.remove(inbox)
                        self._threads -= 1
                        return
                lookup = inbox.get()  # handed one just as the wait ended


def _remaining(deadline: float) -> float:
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise OutboundError("timeout", "the deadline passed before the request was sent")
    return remaining


# --- 3. The connection ----------------------------------------------------------------


class _Pin:
    """The checked destination of one call, its deadline, and what becomes of its
    connection (`finish`)."""

    def __init__(
        self,
        hostname: str,
        ip: IPAddress,
        port: int,
        partition: Hashable,
        deadline: float,
        before_request: Callable[[], object] | None,
    ):
        self.hostname = hostname
        self.ip = ip
        self.port = port
        self.partition = partition
        self.deadline = deadline  # watched from `hold_and_arm` on
        self.before_request = before_request  # see send()
        self.tls: ssl.SSLContext | None = None  # the trust store the connection verifies with
        self.expired = False
        self.done = False  # finished: the deadline no longer concerns it
        self.stream: socket.socket | None = None  # the socket reads go through (TLS)
        # The connection urllib3 handed back because its response was read to the end.
        self.released: _PinnedHTTPSConnection | None = None
        self.reused = False  # the call went over a kept-alive connection
        self.held_seconds = 0.0  # spent in before_request
        self._watched: list[socket.socket] = []
        self._lock = threading.Lock()

    @property
    def pool_host(self) -> str:
        return f"[{self.ip}]" if isinstance(self.ip, IPv6Address) else str(self.ip)

    @property
    def key(self) -> tuple:
        """What a kept-alive connection must have been made for to serve this call: the
        same partition, name (SNI, certificate, Host), checked address, port and TLS
        context (the context object itself: one per trust store, see _tls_context)."""
        return (self.partition, self.hostname, self.ip, self.port, self.tls)

    def hold_and_arm(self) -> None:
        """Before a connection is taken: run the caller's hold (its time is added to
        the deadline), then put the deadline under the watchdog."""
        hold, self.before_request = self.before_request, None
        if hold is not None:
            began = time.monotonic()
            try:
                hold()
            except Exception as error:
                raise _Held() from error
            finally:
                self.held_seconds = time.monotonic() - began
                self.deadline += self.held_seconds
        _watchdog.arm(self, self.deadline)

    def watch(self, sock: socket.socket) -> None:
        # A duplicate of the descriptor: shutdown() on it ends the connection the TLS
        # layer reads from, without racing on the TLS object from another thread.
        # (fromfd, not dup(): a kept-alive connection's socket is already TLS.)
        with self._lock:
            duplicate = socket.fromfd(sock.fileno(), sock.family, sock.type)
            self._watched.append(duplicate)
            if self.expired:
                self._shutdown(duplicate)

    def expire(self) -> None:
        """The deadline passed (the watchdog's thread): end the call's connection."""
        with self._lock:
            if self.done:
                return
            self.expired = True
            for sock in self._watched:
                self._shutdown(sock)

    def adopt(self, conn: _PinnedHTTPSConnection) -> bool:
        """Take a kept-alive connection for this call, if it still is what its key says
        and is clean: connected to this call's checked address, verified, not closed by
        the server, nothing unread in it."""
        sock = conn.sock
        if sock is None or not conn.is_verified or not isinstance(sock, ssl.SSLSocket):
            return False
        try:
            if sock.pending() or wait_for_read(sock, timeout=0.0):
                return False  # the server closed it, or sent what nobody asked for
            peer = ip_address(sock.getpeername()[0].split("%")[0])
        except (OSError, ValueError):
            return False
        if peer != ip_address(str(self.ip).split("%")[0]):
            return False
        conn._pin = self
        self.watch(sock)
        self.stream = sock
        self.reused = True
        return True

    def finish(self, keep: bool, headers: Any) -> None:
        """End the call: stop watching its deadline, then keep its connection for the
        next call if the exchange ended cleanly (`keep`) and in time, urllib3 released
        it (the response was read to its framed end), the whole request was sent, and
        neither side asked to close it; else close it."""
        with self._lock:
            expired = self.expired
            self.done = True
            for sock in self._watched:
                sock.close()
            self._watched.clear()
        self.stream = None  # the watchdog's queue may hold this pin a while
        conn, self.released = self.released, None
        if conn is None:
            return
        idle = _idle_seconds(headers) if keep and not expired else 0.0
        if idle > 0 and conn.sock is not None and conn.sent_whole and self.tls is not None:
            _idle.put(self.key, conn, time.monotonic() + idle)
        else:
            _discard(conn)

    @staticmethod
    def _shutdown(sock: socket.socket) -> None:
        with contextlib.suppress(OSError):  # already closed by its owner
            sock.shutdown(socket.SHUT_RDWR)


class _PinnedHTTPSConnection(HTTPSConnection):
    """Connects only to the pinned address; records the socket for the deadline."""

    def __init__(self, *args: Any, pin: _Pin, **kwargs: Any):
        self._pin = pin
        super().__init__(*args, **kwargs)

    def _new_conn(self) -> socket.socket:
        pin = self._pin
        try:
            host = ip_address(self._dns_host.strip("[]"))
        except ValueError:
            host = None
        if host != pin.ip or self.port != pin.port:
            raise _GuardViolation(f"connection to {self._dns_host}:{self.port} is not the pin")
        sock = super()._new_conn()
        peer = ip_address(sock.getpeername()[0].split("%")[0])
        if peer != ip_address(str(pin.ip).split("%")[0]):
            sock.close()
            raise _GuardViolation(f"connected to {peer}, not {pin.ip}")
        pin.watch(sock)
        return sock

    def connect(self) -> None:
        super().connect()
        self._pin.stream = self.sock

    sent_whole = False  # the last request went out entirely (urllib3 swallows EPIPE)

    def request(self, *args: Any, **kwargs: Any) -> None:
        self.sent_whole = False
        super().request(*args, **kwargs)
        self.sent_whole = True


class _PinnedHTTPSConnectionPool(HTTPSConnectionPool):
    """One call's pool: its connection is a kept-alive one made under the same key, or
    a new one to the pinned address; what urllib3 hands back goes to the pin, which
    decides whether it is kept (`_Pin.finish`)."""

    ConnectionCls = _PinnedHTTPSConnection

    def __init__(self, *args: Any, pin: _Pin, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.conn_kw["pin"] = pin
        self._pin = pin

    def _get_conn(self, timeout: float | None = None) -> _PinnedHTTPSConnection:
        if self.pool is None:
            raise ClosedPoolError(self, "Pool is closed.")
        pin = self._pin
        pin.hold_and_arm()
        while (conn := _idle.take(pin.key)) is not None:
            if pin.adopt(conn):
                return conn
            _discard(conn)
        return self._new_conn()

    def _put_conn(self, conn: Any) -> None:
        if conn is not None:
            self._pin.released = conn


@functools.lru_cache(maxsize=4)
def _tls_context(ca_bundle: str | None) -> ssl.SSLContext:
    """One verifying context per trust store: the system's (certifi, as requests uses),
    or the test CA bundle. TLS 1.2+, certificate required; urllib3 checks the name."""
    context = create_urllib3_context(cert_reqs=ssl.CERT_REQUIRED)
    context.load_verify_locations(cafile=ca_bundle or DEFAULT_CA_BUNDLE_PATH)
    return context


class _PinnedAdapter(HTTPAdapter):
    """requests-hardened's pinning technique, fed with our single checked resolution."""

    def __init__(self, pin: _Pin):
        self._pin = pin
        super().__init__(max_retries=0, pool_connections=1, pool_maxsize=1)

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        pin = self._pin
        self.poolmanager.pool_classes_by_scheme = {
            "https": lambda host, port, **kw: _PinnedHTTPSConnectionPool(host, port, pin=pin, **kw)
        }

    def cert_verify(self, conn: Any, url: str, verify: Any, cert: Any) -> None:
        # Always verified, against the cached context's CAs (requests would reload the CA
        # bundle into every new connection: ~30 ms for certifi's).
        conn.cert_reqs = "CERT_REQUIRED"
        conn.ca_certs = None
        conn.ca_cert_dir = None

    def build_connection_pool_key_attributes(self, request, verify, cert=None):
        host_params, pool_kwargs = super().build_connection_pool_key_attributes(
            request, verify, cert
        )
        pin = self._pin
        seen = (host_params["scheme"], normalize_hostname(host_params["host"] or ""))
        if seen != ("https", pin.hostname) or (host_params["port"] or 443) != pin.port:
            raise _GuardViolation(f"request for {seen[1]} is not for the pinned {pin.hostname}")
        host_params["host"] = pin.pool_host
        host_params["port"] = pin.port
        # Certificate and SNI stay the name's, not the IP's.
        pool_kwargs["assert_hostname"] = pin.hostname
        pool_kwargs["server_hostname"] = pin.hostname
        pool_kwargs.pop("ca_certs", None)
        pool_kwargs.pop("ca_cert_dir", None)
        pool_kwargs["cert_reqs"] = "CERT_REQUIRED"
        pool_kwargs["ssl_context"] = pin.tls  # the context in the pin's key
        return host_params, pool_kwargs


def _idle_seconds(headers: Any) -> float:
    """How long a connection may wait for its next call after this response: none if
    either side asked to close it; else POOL_IDLE_SECONDS, or a second less than the
    server's own ``Keep-Alive: timeout=N`` if that is shorter.

    >>> _idle_seconds({"keep-alive": "timeout=5, max=100"}), _idle_seconds({})
    (4.0, 30.0)
    >>> _idle_seconds({"connection": "close"}), _idle_seconds({"keep-alive": "timeout=1"})
    (0.0, 0.0)
    """
    if headers is None:
        return 0.0
    if "close" in (headers.get("connection") or "").lower():
        return 0.0
    limit = POOL_IDLE_SECONDS
    hint = re.search(r"timeout\s*=\s*(\d+)", headers.get("keep-alive") or "", re.IGNORECASE)
    if hint:
        limit = min(limit, float(hint.group(1)) - 1)
    return max(limit, 0.0)


def _discard(conn: _PinnedHTTPSConnection) -> None:
    with contextlib.suppress(OSError):
        conn.close()


class _IdleConnections:
    """This process's kept-alive connections by key (`_Pin.key`), each with the time it
    must be used by; at most POOL_PER_KEY per key and POOL_MAX_IDLE in all (the least
    recently returned go first). Expired ones are closed when met, and by `sweep`."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        # key -> [(use by, connection)], oldest first; keys least recently returned first
        self._idle: OrderedDict[tuple, list[tuple[float, _PinnedHTTPSConnection]]]
        self._idle = OrderedDict()
        self._count = 0
        self._next_sweep = 0.0

    def take(self, key: tuple) -> _PinnedHTTPSConnection | None:
        """The most recently returned connection for the key that is not past its time."""
        now = time.monotonic()
        stale = []
        found = None
        with self._lock:
            entries = self._idle.get(key)
            while entries:
                use_by, conn = entries.pop()
                self._count -= 1
                if use_by > now:
                    found = conn
                    break
                stale.append(conn)
            if entries is not None and not entries:
                del self._idle[key]
        for conn in stale:
            _discard(conn)
        return found

    def put(self, key: tuple, conn: _PinnedHTTPSConnection, use_by: float) -> None:
        closing = []
        with self._lock:
            entries = self._idle.setdefault(key, [])
            self._idle.move_to_end(key)
            entries.append((use_by, conn))
            self._count += 1
            if len(entries) > POOL_PER_KEY:
                closing.append(self._pop_oldest(key))
            while self._count > POOL_MAX_IDLE:
                closing.append(self._pop_oldest(next(iter(self._idle))))
        for old in closing:
            _discard(old)
        self.sweep()

    def sweep(self) -> None:
        """Close the connections past their time (at most once a second)."""
        now = time.monotonic()
        expired = []
        with self._lock:
            if now < self._next_sweep:
                return
            self._next_sweep = now + 1.0
            for key in list(self._idle):
                entries = self._idle[key]
                fresh = [entry for entry in entries if entry[0] > now]
                if len(fresh) == len(entries):
                    continue
                expired += [conn for use_by, conn in entries if use_by <= now]
                self._count -= len(entries) - len(fresh)
                if fresh:
                    self._idle[key] = fresh
                else:
                    del self._idle[key]
        for conn in expired:
            _discard(conn)

    def clear(self) -> None:
        with self._lock:
            everything = [conn for entries in self._idle.values() for _, conn in entries]
            self._idle.clear()
            self._count = 0
        for conn in everything:
            _discard(conn)

    def __len__(self) -> int:
        return self._count

    def _pop_oldest(self, key: tuple) -> _PinnedHTTPSConnection:
        entries = self._idle[key]
        _, conn = entries.pop(0)
        self._count -= 1
        if not entries:
            del self._idle[key]
        return conn


class _Watchdog:
    """One daemon thread that ends each call at its deadline (`_Pin.expire`), instead
    of a Timer thread per call; between deadlines it closes kept-alive connections past
    their time. Finished calls are dropped from its queue lazily."""

    def __init__(self) -> None:
        self._wake = threading.Condition(threading.Lock())
        self._heap: list[tuple[float, int, _Pin]] = []
        self._order = itertools.count()
        self._compact_at = 1024
        self._sleeping_until = float("inf")
        self._thread: threading.Thread | None = None

    def arm(self, pin: _Pin, deadline: float) -> None:
        with self._wake:
            heapq.heappush(self._heap, (deadline, next(self._order), pin))
            if len(self._heap) >= self._compact_at:  # many finished calls still queued
                self._heap = [entry for entry in self._heap if not entry[2].done]
                heapq.heapify(self._heap)
                self._compact_at = max(1024, 2 * len(self._heap))
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="outbound-deadlines", daemon=True
                )
                self._thread.start()
            elif deadline < self._sleeping_until:
                self._wake.notify()  # it sleeps past this deadline

    def _run(self) -> None:
        while True:
            due = None
            with self._wake:
                while self._heap and self._heap[0][2].done:
                    heapq.heappop(self._heap)
                now = time.monotonic()
                if self._heap and self._heap[0][0] <= now:
                    due = heapq.heappop(self._heap)[2]
                else:
                    until = now + POOL_IDLE_SECONDS
                    if self._heap:
                        until = min(until, self._heap[0][0])
                    self._sleeping_until = until
                    self._wake.wait(until - now)
            if due is not None:
                due.expire()
            else:
                _idle.sweep()


_idle = _IdleConnections()
_watchdog = _Watchdog()
_resolver = _Resolver()


def close_idle_connections() -> None:
    """Close every kept-alive connection of this process (tests start with none)."""
    _idle.clear()


def _after_fork_in_child() -> None:
    # The parent's threads do not exist in a forked child (a prefork worker), and its
    # kept-alive connections are the parent's: two processes must never share one.
    # Start afresh, without taking the parent's locks (another thread may have held
    # one at the fork). The parent's connections are dropped: collecting them closes
    # this process's copies of their descriptors, and sends nothing on them.
    global _idle, _watchdog, _resolver
    _idle = _IdleConnections()
    _watchdog = _Watchdog()
    _resolver = _Resolver()


os.register_at_fork(after_in_child=_after_fork_in_child)


# --- 4. The response ------------------------------------------------------------------


def _read_body(
    response: requests.Response, pin: _Pin, deadline: float, cap: int
) -> tuple[bytes, bool]:
    """Up to ``cap`` decoded bytes; one socket read per step, each timed to the deadline."""
    raw = response.raw
    body = bytearray()
    while True:
        remaining = _remaining(deadline)
        if pin.stream is not None and pin.stream.fileno() != -1:  # -1: closed, body complete
            pin.stream.settimeout(remaining)
        # read1: at most one read from the socket, decompressed at most `amt` bytes.
        chunk = raw.read1(min(READ_CHUNK, cap + 1 - len(body)), decode_content=True)
        if not chunk:
            return bytes(body), False
        body += chunk
        if len(body) > cap:
            return bytes(body[:cap]), True


def _chain(error: BaseException) -> list[BaseException]:
    """The error and everything it wraps (causes, contexts, urllib3 reasons, args)."""
    seen: list[BaseException] = []
    pending = [error]
    while pending:
        current = pending.pop()
        if any(current is s for s in seen) or len(seen) > 50:
            continue
        seen.append(current)
        for nested in (
            current.__cause__,
            current.__context__,
            getattr(current, "reason", None),
            *current.args,
        ):
            if isinstance(nested, BaseException):
                pending.append(nested)
    return seen


def _classify(error: Exception, pin: _Pin, timeout: float, target: _Target) -> OutboundError:
    where = f"{target.hostname} ({pin.ip}) port {target.port}"
    if pin.reused:
        where += " on a kept-alive connection"
    if pin.expired:
        return OutboundError("timeout", f"{where}: no complete response within {timeout:g} s")
    chain = _chain(error)

    def has(*types: type) -> BaseException | None:
        return next((e for e in chain if isinstance(e, types)), None)

    if found := has(_GuardViolation):
        return OutboundError("blocked_address", f"{where}: {found}")
    if has(ConnectionRefusedError):
        return OutboundError("refused", f"{where}: connection refused")
    # urllib3's NewConnectionError subclasses ConnectTimeoutError: only a real timeout counts.
    timeouts = [
        e
        for e in chain
        if isinstance(e, requests.Timeout | urllib3.exceptions.TimeoutError | TimeoutError)
        and not isinstance(e, urllib3.exceptions.NewConnectionError)
    ]
    if timeouts:
        return OutboundError("timeout", f"{where}: timed out ({type(timeouts[0]).__name__})")
    if found := has(ssl.SSLError, ssl.CertificateError, requests.exceptions.SSLError):
        return OutboundError("tls", f"{where}: TLS failed ({found})")
    if found := has(http.client.LineTooLong):
        return OutboundError("too_large", f"{where}: response header section too large ({found})")
    if (found := has(http.client.HTTPException)) and "more than" in str(found):
        return OutboundError("too_large", f"{where}: response has too many headers ({found})")
    if has(socket.gaierror, urllib3.exceptions.NameResolutionError):
        return OutboundError("dns", f"{where}: name resolution failed")
    if isinstance(error, requests.exceptions.InvalidHeader | requests.exceptions.InvalidURL):
        return OutboundError("invalid_request", f"{where}: {error}")
    if isinstance(error, requests.RequestException | urllib3.exceptions.HTTPError | OSError):
        return OutboundError("connection", f"{where}: {type(error).__name__}: {error}")
    logger.exception("Unexpected failure of an outbound call to %s", where)
    return OutboundError("connection", f"{where}: unexpected {type(error).__name__}")
