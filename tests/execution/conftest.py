"""Fixtures for the outbound seam: a trustme CA, real HTTPS servers on loopback, and a
fake resolver that maps the test host names to them."""

from __future__ import annotations

import contextlib
import socket
import ssl
import threading
from collections.abc import Callable, Iterator

import pytest
import trustme
from pytest_httpserver import HTTPServer

from execution import http
from tests.execution.fakes import ConnectRecorder, FakeDNS, Sentinel

API_HOST = "api.example.com"


@pytest.fixture(autouse=True)
def no_kept_alive_connections() -> Iterator[None]:
    """Each test starts and ends with no kept-alive outbound connection: one kept from
    an earlier test (the HTTPS server lives for the session) would hide its connects."""
    http.close_idle_connections()
    yield
    http.close_idle_connections()


@pytest.fixture(scope="session")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(scope="session")
def ca_bundle(ca, tmp_path_factory) -> str:
    path = tmp_path_factory.mktemp("outbound-ca") / "ca.pem"
    ca.cert_pem.write_to_path(str(path))
    return str(path)


@pytest.fixture(scope="session")
def server_context(ca) -> ssl.SSLContext:
    """A server context for api.example.com; it records the SNI name each client sent."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ca.issue_cert(API_HOST, "127.0.0.1", "::1").configure_cert(context)
    context.sni_names = []  # type: ignore[attr-defined]

    def remember(_sslobj, name, _context):
        context.sni_names.append(name)  # type: ignore[attr-defined]

    context.sni_callback = remember
    return context


@pytest.fixture(scope="session")
def https_server(server_context) -> Iterator[HTTPServer]:
    server = HTTPServer(host="127.0.0.1", port=0, ssl_context=server_context, threaded=True)
    server.start()
    yield server
    server.clear()
    server.stop()


@pytest.fixture
def sentinel() -> Iterator[Sentinel]:
    watcher = Sentinel()
    yield watcher
    watcher.close()


@pytest.fixture
def dns() -> Iterator[FakeDNS]:
    with FakeDNS({API_HOST: ["127.0.0.1"]}).installed() as fake:
        yield fake


@pytest.fixture
def loopback_only() -> Iterator[ConnectRecorder]:
    """Any connect to something other than loopback is recorded and refused."""
    loopback = {"127.0.0.1", "::1"}
    with ConnectRecorder(allow=lambda address: address[0] in loopback).installed() as rec:
        yield rec


@pytest.fixture
def trust_loopback(settings, ca_bundle):
    """The test-only overrides: loopback allowlisted, our CA trusted."""
    settings.OUTBOUND_TEST_ALLOWLIST = ["127.0.0.1/32"]
    settings.OUTBOUND_TEST_CA_BUNDLE = ca_bundle
    return settings


@pytest.fixture
def upstream(https_server, server_context, trust_loopback, dns, loopback_only):
    """The HTTPS server, reachable as https://api.example.com:<port>/ and nothing else."""
    https_server.clear()
    server_context.sni_names.clear()
    trust_loopback.OUTBOUND_ALLOWED_PORTS = [443, https_server.port]
    https_server.base = f"https://{API_HOST}:{https_server.port}"
    return https_server


class RawTLSServer:
    """A TLS server on loopback whose handler writes whatever bytes it likes, slowly if
    it wants: for deadlines, malformed answers and counting connections. The handler
    gets the TLS socket (the request head already read) and an event set at teardown,
    to wait on instead of sleeping."""

    def __init__(
        self, context: ssl.SSLContext, handler: Callable[[ssl.SSLSocket, threading.Event], None]
    ):
        self.context = context
        self.handler = handler
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.connections = 0
        self.requests: list[bytes] = []
        self.stop = threading.Event()
        self.threads: list[threading.Thread] = []
        self.accept_thread = threading.Thread(target=self._accept, daemon=True)
        self.accept_thread.start()

    def _accept(self) -> None:
        self.listener.settimeout(0.05)
        while not self.stop.is_set():
            try:
                conn, _ = self.listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.connections += 1
            thread = threading.Thread(target=self._serve, args=(conn,), daemon=True)
            thread.start()
            self.threads.append(thread)

    def _serve(self, conn: socket.socket) -> None:
        with contextlib.suppress(OSError, ssl.SSLError):
            conn.settimeout(5)
            with self.context.wrap_socket(conn, server_side=True) as tls:
                self.requests.append(read_request_head(tls))
                self.handler(tls, self.stop)

    def close(self) -> None:
        self.stop.set()
        self.listener.close()
        self.accept_thread.join(2)
        for thread in self.threads:
            thread.join(2)


def read_request_head(tls: ssl.SSLSocket) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = tls.recv(4096)
        if not chunk:
            break
        data += chunk
    return data


def next_request(tls: ssl.SSLSocket, stop: threading.Event) -> bytes:
    """The next request head on a kept-alive connection; b"" once the client closes it
    (or the test ends)."""
    tls.settimeout(0.05)
    data = b""
    while b"\r\n\r\n" not in data:
        if stop.is_set():
            return b""
        try:
            chunk = tls.recv(4096)
        except TimeoutError:
            continue
        if not chunk:
            return b""
        data += chunk
    return data


OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"


class KeepAlive:
    """A raw_server handler answering every request on a connection for as long as the
    client keeps it: the n-th request of the test (0-based) gets `answers[n]` (the last
    repeats), after `delays[n]` seconds if given. The server reads each connection's
    first request head (its `requests`); `heads` are the later ones."""

    def __init__(self, *answers: bytes, delays: dict[int, float] | None = None):
        self.answers = answers or (OK,)
        self.delays = delays or {}
        self.requests = 0
        self.heads: list[bytes] = []
        self._lock = threading.Lock()

    def __call__(self, tls: ssl.SSLSocket, stop: threading.Event) -> None:
        while True:
            with self._lock:
                number = self.requests
                self.requests += 1
            if stop.wait(self.delays.get(number, 0)):
                return
            tls.sendall(self.answers[min(number, len(self.answers) - 1)])
            head = next_request(tls, stop)
            if not head:
                return
            self.heads.append(head)


@pytest.fixture
def raw_server(server_context, trust_loopback, dns, loopback_only):
    """Start a RawTLSServer with a handler; api.example.com:<port> reaches it."""
    servers: list[RawTLSServer] = []

    def start(handler: Callable[[ssl.SSLSocket, threading.Event], None]) -> RawTLSServer:
        server = RawTLSServer(server_context, handler)
        servers.append(server)
        trust_loopback.OUTBOUND_ALLOWED_PORTS = [443, *(s.port for s in servers)]
        server.base = f"https://{API_HOST}:{server.port}"  # type: ignore[attr-defined]
        return server

    yield start
    for server in servers:
        server.close()
