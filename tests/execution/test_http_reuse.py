"""execution.http keeps a connection whose exchange ended cleanly and reuses it for the
next call that would open exactly the same one, after the same checks as ever.

The raw TLS server counts the connections it accepts; `api.example.com` resolves (fake
DNS) to 127.0.0.1, and every other destination is refused by the connection recorder.
"""

from __future__ import annotations

import doctest
import gzip
import threading
import time

import pytest

from execution import http
from execution.http import OutboundError, OutboundRequest, send
from tests.execution.conftest import API_HOST, OK, KeepAlive


def get(server, path: str = "/", **kwargs) -> http.OutboundResponse:
    return send(OutboundRequest("GET", f"{server.base}{path}"), **kwargs)


def test_two_calls_to_the_same_host_share_one_connection(raw_server, loopback_only, server_context):
    server_context.sni_names.clear()
    handler = KeepAlive()
    server = raw_server(handler)
    first = get(server, "/one")
    second = get(server, "/two")
    assert (first.status, first.body, second.status, second.body) == (200, b"ok", 200, b"ok")
    assert server.connections == 1 and handler.requests == 2
    assert server.requests[0].startswith(b"GET /one ")
    assert handler.heads[0].startswith(b"GET /two ")
    assert loopback_only.attempts == [("127.0.0.1", server.port)]
    assert server_context.sni_names == [API_HOST]  # one handshake


def test_a_kept_connection_is_never_reached_once_the_name_resolves_elsewhere(
    raw_server, dns, loopback_only, settings
):
    """DNS rebinding: the name is resolved and every address checked on each call, and a
    kept connection serves only a call whose own check chose its address."""
    settings.OUTBOUND_TEST_ALLOWLIST = ["127.0.0.0/8"]
    handler = KeepAlive()
    server = raw_server(handler)
    assert get(server).status == 200

    dns.answers[API_HOST] = ["10.0.0.1"]  # now a private address
    with pytest.raises(OutboundError) as blocked:
        get(server)
    assert blocked.value.cause == "blocked_address"

    dns.answers[API_HOST] = ["127.0.0.2"]  # allowed, but not the kept connection's
    with pytest.raises(OutboundError) as elsewhere:
        get(server)
    assert elsewhere.value.cause == "refused"  # a new connect to .2, refused by the recorder
    assert loopback_only.attempts == [("127.0.0.1", server.port), ("127.0.0.2", server.port)]

    dns.answers[API_HOST] = ["127.0.0.1"]
    assert get(server).status == 200  # the kept connection, checked again
    assert server.connections == 1 and handler.requests == 2
    assert dns.calls == [API_HOST] * 4


def framed(body: bytes, *headers: bytes) -> bytes:
    head = b"HTTP/1.1 200 OK\r\n" + b"".join(h + b"\r\n" for h in headers)
    return head + b"Content-Length: %d\r\n\r\n" % len(body) + body


@pytest.mark.parametrize(
    "answer",
    [
        framed(b"x" * 100_000),
        # Read whole off the wire (a few hundred bytes), but over the cap once decoded.
        framed(gzip.compress(bytes(100_000)), b"Content-Encoding: gzip"),
    ],
    ids=["cut on the wire", "cut after decoding"],
)
def test_a_truncated_response_closes_its_connection(raw_server, answer):
    server = raw_server(KeepAlive(answer, OK))
    assert get(server, max_bytes=1000).truncated
    assert get(server).body == b"ok"
    assert server.connections == 2


def test_a_timed_out_call_closes_its_connection(raw_server):
    server = raw_server(KeepAlive(OK, delays={1: 1.0}))
    assert get(server).status == 200
    started = time.monotonic()
    with pytest.raises(OutboundError) as error:
        get(server, timeout_seconds=0.4)  # on the kept connection, answered too late
    assert error.value.cause == "timeout"
    assert time.monotonic() - started < 0.7  # the deadline is the call's, reuse or not
    assert get(server).status == 200
    assert server.connections == 2


@pytest.mark.parametrize(
    "answer",
    [
        b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok",
        b"HTTP/1.1 200 OK\r\nKeep-Alive: timeout=1\r\nContent-Length: 2\r\n\r\nok",
        b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok",
    ],
    ids=["connection close", "keep-alive under two seconds", "HTTP/1.0"],
)
def test_a_connection_the_server_will_not_keep_is_not_reused(raw_server, answer):
    server = raw_server(KeepAlive(answer, OK))
    assert get(server).body == b"ok"
    assert get(server).body == b"ok"
    assert server.connections == 2


def test_a_connection_switched_to_another_protocol_is_not_reused(raw_server):
    switched = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\nConnection: Upgrade\r\n\r\n"
    server = raw_server(KeepAlive(switched, OK))
    assert get(server).status == 101
    assert get(server).body == b"ok"
    assert server.connections == 2


def test_a_connection_the_server_closed_meanwhile_is_replaced_not_failed(raw_server):
    def answer_once(tls, stop):
        tls.sendall(OK)  # then closes the connection, as an idle server does

    server = raw_server(answer_once)
    assert get(server).status == 200
    for thread in server.threads:
        thread.join(2)
    time.sleep(0.05)  # the server's close reaches this end
    assert get(server).status == 200
    assert server.connections == 2


def test_a_connection_waits_for_its_next_call_only_so_long(raw_server, monkeypatch):
    monkeypatch.setattr(http, "POOL_IDLE_SECONDS", 0.2)
    server = raw_server(KeepAlive())
    get(server)
    time.sleep(0.3)
    get(server)
    assert server.connections == 2


def test_connections_are_kept_apart_by_partition(raw_server):
    server = raw_server(KeepAlive())
    get(server, partition=1)
    get(server, partition=2)
    get(server, partition=1)
    get(server, partition=2)
    assert server.connections == 2


def test_warm_calls_start_no_thread(raw_server, monkeypatch):
    """The deadline watchdog and the lookup threads are shared and kept, not started per
    call (a thread and a Timer per call cost a few hundred microseconds)."""
    server = raw_server(KeepAlive())
    get(server)  # the watchdog, a lookup thread and the connection (server side too)
    started = []
    real_start = threading.Thread.start

    def start(thread):
        started.append(thread.name)
        real_start(thread)

    monkeypatch.setattr(threading.Thread, "start", start)
    for _ in range(20):
        assert get(server).status == 200
    assert started == []
    assert server.connections == 1


def test_the_doctests_hold():
    assert doctest.testmod(http).failed == 0


def test_before_request_runs_once_before_a_connection_is_taken(raw_server):
    """The caller's hold (the write-ahead log row's commit) overlaps the checks, the
    lookup and the request's preparation, and precedes any byte of the request."""
    handler = KeepAlive(OK)
    server = raw_server(handler)
    holds = []

    def hold():
        holds.append((server.connections, len(server.requests) + len(handler.heads)))

    assert get(server, before_request=hold).status == 200  # a new connection
    assert get(server, before_request=hold).status == 200  # the kept one
    # Before the first connection, then before the second request.
    assert holds == [(0, 0), (1, 1)]
    assert handler.requests == 2 and server.connections == 1


def test_the_hold_is_not_the_upstreams_time_and_a_kept_connection_is_checked_after_it(
    raw_server,
):
    close_now = threading.Event()

    def handler(tls, stop):  # answers one request, closes when told (or at once after)
        tls.sendall(OK)
        close_now.wait(5)

    server = raw_server(handler)
    assert get(server).status == 200

    def hold():  # slow, and the server closes the kept connection meanwhile
        close_now.set()
        time.sleep(0.6)

    answer = get(server, before_request=hold, timeout_seconds=0.5)
    assert answer.status == 200 and answer.body == b"ok"
    assert answer.elapsed_ms < 500  # the upstream's time only
    assert server.connections == 2  # the closed one was found out before use


def test_when_before_request_raises_nothing_is_sent_and_its_error_is_raised(raw_server):
    handler = KeepAlive(OK)
    server = raw_server(handler)
    assert get(server).status == 200

    class NotCommitted(Exception):
        pass

    def hold():
        raise NotCommitted("the log row was refused")

    with pytest.raises(NotCommitted):
        get(server, before_request=hold)
    assert get(server).status == 200
    # Two requests reached the server, both answered; the kept connection was not
    # taken by the held call and serves the next one.
    assert handler.requests == 2 and server.connections == 1 and len(handler.heads) == 1


def test_before_request_is_not_run_for_a_call_refused_before_sending(raw_server, dns):
    server = raw_server(KeepAlive(OK))
    dns.answers[API_HOST] = ["10.0.0.7"]
    holds = []
    with pytest.raises(OutboundError) as error:
        get(server, before_request=lambda: holds.append(1))
    assert error.value.cause == "blocked_address" and holds == []
