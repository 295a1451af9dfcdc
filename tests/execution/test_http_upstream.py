"""execution.http against real HTTPS servers on loopback (pytest-httpserver + trustme).

`api.example.com` resolves (fake DNS) to 127.0.0.1, which only the test allowlist opens;
every other destination is refused by the connection recorder."""

from __future__ import annotations

import gzip
import json
import socket
import time
import zlib

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from execution.http import OutboundError, OutboundRequest, send
from tests.execution.conftest import API_HOST
from tests.execution.fakes import Sentinel


def captured(server, path="/echo", response=None):
    """Make the server record the requests to `path`; returns the list they go to."""
    seen: list[Request] = []

    def handler(request: Request) -> Response:
        request.get_data()  # read the body while the connection is open
        seen.append(request)
        return response if response is not None else Response("ok")

    server.expect_request(path).respond_with_handler(handler)
    return seen


def test_get_with_params_encodes_each_pair_and_keeps_the_url_query(upstream):
    seen = captured(upstream, "/v1/search")
    answer = send(
        OutboundRequest(
            "GET",
            f"{upstream.base}/v1/search?fixed=1",
            params=[("q", "a&b=c"), ("q", "x y/é"), ("empty", "")],
        )
    )
    assert answer.status == 200 and answer.body == b"ok" and not answer.truncated
    assert seen[0].query_string == b"fixed=1&q=a%26b%3Dc&q=x+y%2F%C3%A9&empty="
    assert answer.url == f"{upstream.base}/v1/search?fixed=1&q=a%26b%3Dc&q=x+y%2F%C3%A9&empty="


def test_json_body_is_sent_as_utf8_json(upstream):
    seen = captured(upstream)
    send(OutboundRequest("POST", f"{upstream.base}/echo", json={"name": "Zoë", "n": [1, None]}))
    assert seen[0].method == "POST"
    assert seen[0].headers["Content-Type"] == "application/json"
    assert json.loads(seen[0].get_data()) == {"name": "Zoë", "n": [1, None]}


def test_form_body_is_urlencoded(upstream):
    seen = captured(upstream)
    send(OutboundRequest("PUT", f"{upstream.base}/echo", form={"a": "1 2", "b": "x&y=z"}))
    assert seen[0].headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert seen[0].get_data() == b"a=1+2&b=x%26y%3Dz"


def test_multipart_sends_fields_and_a_file(upstream):
    seen = captured(upstream)
    png = b"\x89PNG\r\n\x1a\n" + bytes(range(256))
    send(
        OutboundRequest(
            "POST",
            f"{upstream.base}/echo",
            multipart=[("note", "hello"), ("file", ("receipt.png", png, "image/png"))],
        )
    )
    request = seen[0]
    assert request.headers["Content-Type"].startswith("multipart/form-data; boundary=")
    assert request.form["note"] == "hello"
    upload = request.files["file"]
    assert upload.filename == "receipt.png"
    assert upload.mimetype == "image/png"
    assert upload.read() == png


def test_custom_headers_arrive_and_user_agent_defaults_to_opencx(upstream):
    seen = captured(upstream)
    send(OutboundRequest("GET", f"{upstream.base}/echo", headers={"X-Api-Key": "k-123"}))
    send(OutboundRequest("GET", f"{upstream.base}/echo", headers={"user-agent": "Acme/2"}))
    assert seen[0].headers["X-Api-Key"] == "k-123"
    assert seen[0].headers["User-Agent"] == "OpenCX"
    assert seen[1].headers["User-Agent"] == "Acme/2"
    assert seen[1].headers.getlist("User-Agent") == ["Acme/2"]


def test_sni_and_host_are_the_hostname_while_the_connection_goes_to_the_checked_ip(
    upstream, server_context, dns, loopback_only
):
    seen = captured(upstream)
    send(OutboundRequest("GET", f"{upstream.base}/echo"))
    assert server_context.sni_names == [API_HOST]
    assert seen[0].headers["Host"] == f"{API_HOST}:{upstream.port}"
    assert dns.calls == [API_HOST]
    assert loopback_only.attempts == [("127.0.0.1", upstream.port)]


@pytest.mark.parametrize(
    ("status", "location"),
    [
        (302, "http://127.0.0.1:{sentinel}/admin"),
        (307, "https://127.0.0.1:{sentinel}/latest/meta-data/"),
        (308, "file:///etc/passwd"),
        (301, "https://169.254.169.254/latest/meta-data/"),
        (303, "{base}/echo"),  # even to the same host: the caller decides, not us
    ],
)
def test_a_redirect_is_returned_as_data_and_not_followed(upstream, sentinel, status, location):
    seen = captured(upstream)
    location = location.format(sentinel=sentinel.port, base=upstream.base)
    upstream.expect_request("/moved").respond_with_data(
        "", status=status, headers={"Location": location}
    )
    answer = send(OutboundRequest("POST", f"{upstream.base}/moved", headers={"X-Api-Key": "s"}))
    assert answer.status == status
    assert answer.headers["location"] == location
    assert len(upstream.log) == 1 and seen == []
    assert sentinel.accepted() == 0


def test_non_2xx_status_headers_and_body_pass_through(upstream):
    upstream.expect_request("/missing").respond_with_data(
        '{"error":"no such order"}', status=404, headers={"X-Request-Id": "r1"}
    )
    answer = send(OutboundRequest("GET", f"{upstream.base}/missing"))
    assert answer.status == 404
    assert answer.body == b'{"error":"no such order"}'
    assert answer.headers["x-request-id"] == "r1"
    assert answer.elapsed_ms > 0


def test_an_oversized_body_is_cut_at_the_cap_and_marked_truncated(upstream, settings):
    settings.EXECUTION_MAX_RESPONSE_BYTES = 100_000
    upstream.expect_request("/big").respond_with_data(b"x" * 300_000)
    upstream.expect_request("/exact").respond_with_data(b"y" * 100_000)
    big = send(OutboundRequest("GET", f"{upstream.base}/big"))
    exact = send(OutboundRequest("GET", f"{upstream.base}/exact"))
    assert (len(big.body), big.truncated) == (100_000, True)
    assert (len(exact.body), exact.truncated) == (100_000, False)


def test_reading_stops_at_the_cap_instead_of_draining_a_huge_body(upstream):
    produced = []

    def endless(_request):
        def chunks():
            for _ in range(2000):  # 128 MB if anyone read it all
                produced.append(1)
                yield b"z" * 65536

        return Response(chunks(), content_type="text/plain")

    upstream.expect_request("/stream").respond_with_handler(endless)
    started = time.monotonic()
    answer = send(OutboundRequest("GET", f"{upstream.base}/stream"), max_bytes=64 * 1024)
    assert answer.truncated and len(answer.body) == 64 * 1024
    assert time.monotonic() - started < 3
    assert len(produced) < 200  # socket buffers, not the whole body


@pytest.fixture(scope="module")
def gzip_bomb() -> bytes:
    """1 GiB of zeros in ~1 MB: 100 gzip members of 10 MiB each (all decoders accept)."""
    member = gzip.compress(bytes(10 * 1024 * 1024), compresslevel=9)
    return member * 100


def test_a_gzip_bomb_is_decompressed_only_up_to_the_cap(upstream, gzip_bomb):
    upstream.expect_request("/bomb").respond_with_data(
        gzip_bomb, headers={"Content-Encoding": "gzip"}
    )
    started = time.monotonic()
    answer = send(OutboundRequest("GET", f"{upstream.base}/bomb"), max_bytes=1024 * 1024)
    assert answer.truncated
    assert answer.body == bytes(1024 * 1024)
    assert time.monotonic() - started < 3


def test_a_deflate_bomb_is_capped_too(upstream):
    bomb = zlib.compress(bytes(64 * 1024 * 1024), 9)
    upstream.expect_request("/deflate").respond_with_data(
        bomb, headers={"Content-Encoding": "deflate"}
    )
    answer = send(OutboundRequest("GET", f"{upstream.base}/deflate"), max_bytes=256 * 1024)
    assert answer.truncated and answer.body == bytes(256 * 1024)


def test_proxies_netrc_and_ca_bundle_from_the_environment_are_ignored(
    upstream, monkeypatch, tmp_path, ca_bundle, settings
):
    proxy = Sentinel()
    try:
        for name in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"):
            monkeypatch.setenv(name, f"http://127.0.0.1:{proxy.port}")
        netrc = tmp_path / "netrc"
        netrc.write_text(f"machine {API_HOST} login stolen password secret\n")
        monkeypatch.setenv("NETRC", str(netrc))
        seen = captured(upstream)
        send(OutboundRequest("GET", f"{upstream.base}/echo"))
        assert proxy.accepted() == 0
        assert "Authorization" not in seen[0].headers
        # The CA from REQUESTS_CA_BUNDLE is not trusted either: only the setting is.
        settings.OUTBOUND_TEST_CA_BUNDLE = None
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", ca_bundle)
        with pytest.raises(OutboundError) as error:
            send(OutboundRequest("GET", f"{upstream.base}/echo"))
        assert error.value.cause == "tls"
    finally:
        proxy.close()


def test_a_certificate_for_another_name_is_a_tls_error(upstream, dns):
    dns.answers["other.example.com"] = ["127.0.0.1"]
    with pytest.raises(OutboundError) as error:
        send(OutboundRequest("GET", f"https://other.example.com:{upstream.port}/echo"))
    assert error.value.cause == "tls"
    assert "other.example.com" in error.value.detail
    assert len(upstream.log) == 0


def test_a_header_with_cr_lf_or_nul_is_refused_before_any_connection(upstream, loopback_only):
    for bad in ("a\r\nX-Injected: 1", "a\nb", "a\x00b", "a\rb"):
        with pytest.raises(OutboundError) as error:
            send(OutboundRequest("GET", f"{upstream.base}/echo", headers={"X-Note": bad}))
        assert error.value.cause == "invalid_request"
        assert "X-Note" in error.value.detail and bad not in error.value.detail
    assert loopback_only.attempts == []
    assert len(upstream.log) == 0


def test_a_closed_port_is_refused(trust_loopback, dns, loopback_only):
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    trust_loopback.OUTBOUND_ALLOWED_PORTS = [port]
    with pytest.raises(OutboundError) as error:
        send(OutboundRequest("GET", f"https://{API_HOST}:{port}/"))
    assert error.value.cause == "refused"


def test_a_dropped_connection_is_not_retried(raw_server):
    server = raw_server(lambda tls, stop: None)  # reads the request, then hangs up
    with pytest.raises(OutboundError) as error:
        send(OutboundRequest("POST", f"{server.base}/refund", json={"order": 1}))
    assert error.value.cause == "connection"
    assert server.connections == 1


@pytest.mark.parametrize(
    "head",
    [
        b"HTTP/1.1 200 OK\r\nX-Big: " + b"a" * 70_000 + b"\r\n\r\n",
        b"HTTP/1.1 200 OK\r\n" + b"".join(b"X-%d: 1\r\n" % i for i in range(150)) + b"\r\n",
    ],
    ids=["a 70 kB line", "150 fields"],
)
def test_a_header_section_over_the_limits_is_too_large(raw_server, head):
    server = raw_server(lambda tls, stop: tls.sendall(head))
    with pytest.raises(OutboundError) as error:
        send(OutboundRequest("GET", f"{server.base}/"))
    assert error.value.cause == "too_large"


def trickle(head: bytes, body_length: int, interval: float):
    """A handler sending `head` at once, then one body byte every `interval` seconds."""

    def handler(tls, stop):
        tls.sendall(head % body_length)
        for _ in range(body_length):
            if stop.wait(interval):
                return
            tls.sendall(b"x")

    return handler


def test_a_body_trickling_a_byte_every_half_second_ends_at_the_deadline(raw_server):
    server = raw_server(
        trickle(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n", body_length=100, interval=0.5)
    )
    started = time.monotonic()
    with pytest.raises(OutboundError) as error:
        send(OutboundRequest("GET", f"{server.base}/slow"), timeout_seconds=1.2)
    elapsed = time.monotonic() - started
    assert error.value.cause == "timeout"
    assert 1.1 < elapsed < 1.45  # a fixed per-read timeout would never end (a byte per 0.5 s)


def test_headers_trickling_a_byte_at_a_time_end_at_the_deadline(raw_server):
    def slow_head(tls, stop):
        for byte in b"HTTP/1.1 200 OK\r\nX-Slow: " + b"y" * 100:
            if stop.wait(0.2):
                return
            tls.sendall(bytes([byte]))

    server = raw_server(slow_head)
    started = time.monotonic()
    with pytest.raises(OutboundError) as error:
        send(OutboundRequest("GET", f"{server.base}/slow"), timeout_seconds=1.0)
    assert error.value.cause == "timeout"
    assert time.monotonic() - started < 1.35


def test_a_server_that_never_answers_times_out_at_the_deadline(raw_server):
    server = raw_server(lambda tls, stop: stop.wait(5))
    started = time.monotonic()
    with pytest.raises(OutboundError) as error:
        send(OutboundRequest("GET", f"{server.base}/"), timeout_seconds=0.5)
    assert error.value.cause == "timeout"
    assert time.monotonic() - started < 0.8


def test_a_name_is_resolved_once_so_rebinding_cannot_move_the_connection(
    upstream, dns, loopback_only
):
    seen = captured(upstream)
    dns.answers[API_HOST] = lambda n: ["127.0.0.1"] if n == 1 else ["10.0.0.1"]
    answer = send(OutboundRequest("GET", f"{upstream.base}/echo"))
    assert answer.status == 200 and len(seen) == 1
    assert dns.calls == [API_HOST]
    assert loopback_only.attempts == [("127.0.0.1", upstream.port)]


def test_an_ipv6_literal_is_reached_with_a_bracketed_host_and_its_certificate_checked(
    server_context, trust_loopback, loopback_only
):
    server = HTTPServer(host="::1", port=0, ssl_context=server_context, threaded=True)
    server.start()
    try:
        seen = captured(server)
        trust_loopback.OUTBOUND_TEST_ALLOWLIST = ["::1/128"]
        trust_loopback.OUTBOUND_ALLOWED_PORTS = [server.port]
        answer = send(OutboundRequest("GET", f"https://[::1]:{server.port}/echo"))
        assert answer.status == 200
        assert seen[0].headers["Host"] == f"[::1]:{server.port}"
        assert loopback_only.attempts[0][:2] == ("::1", server.port)
    finally:
        server.stop()
