"""execution.http with HTTP faked at the seam (`responses`): request building, the exact
bytes on the wire, and the mapping of failures to causes. DNS is faked too (the seam
resolves and checks the host before requests is involved) and any connect() fails the
test."""

from __future__ import annotations

import ssl

import pytest
import responses
from responses import matchers

from execution.http import CAUSES, OutboundError, OutboundRequest, send
from tests.execution.fakes import ConnectRecorder, FakeDNS

BASE = "https://api.example.com"


@pytest.fixture
def fake_http():
    dns = FakeDNS({"api.example.com": ["93.184.216.34"]})
    recorder = ConnectRecorder()
    with dns.installed(), recorder.installed(), responses.RequestsMock() as mock:
        yield mock
    assert recorder.attempts == []


def invalid(request: OutboundRequest, **kwargs) -> str:
    with pytest.raises(OutboundError) as error:
        send(request, **kwargs)
    assert error.value.cause == "invalid_request"
    return error.value.detail


def test_path_and_query_are_sent_exactly_as_encoded(fake_http):
    fake_http.get(f"{BASE}/v1/users/a%2Fb/orders?fixed=1&q=%26admin%3D1&q=x+y&e=%E2%82%AC")
    answer = send(
        OutboundRequest(
            "GET",
            f"{BASE}/v1/users/a%2Fb/orders?fixed=1",
            params=[("q", "&admin=1"), ("q", "x y"), ("e", "€")],
        )
    )
    assert answer.status == 200
    sent = fake_http.calls[0].request
    assert sent.url == f"{BASE}/v1/users/a%2Fb/orders?fixed=1&q=%26admin%3D1&q=x+y&e=%E2%82%AC"
    assert sent.headers["Host"] == "api.example.com"
    assert sent.headers["User-Agent"] == "OpenCX"
    assert sent.headers["Accept-Encoding"] == "gzip, deflate"


def test_a_non_default_port_is_kept_in_the_host_header(fake_http, settings):
    fake_http.get(f"{BASE}:8443/x")
    send(OutboundRequest("GET", f"{BASE}:8443/x"))
    assert fake_http.calls[0].request.headers["Host"] == "api.example.com:8443"


def test_json_body_with_a_caller_content_type(fake_http):
    fake_http.post(
        f"{BASE}/items",
        match=[
            matchers.json_params_matcher({"a": [1, "é"]}),
            matchers.header_matcher({"Content-Type": "application/vnd.api+json"}),
        ],
    )
    send(
        OutboundRequest(
            "POST",
            f"{BASE}/items",
            headers={"Content-Type": "application/vnd.api+json"},
            json={"a": [1, "é"]},
        )
    )


def test_an_empty_json_object_is_still_a_body(fake_http):
    fake_http.post(f"{BASE}/items", match=[matchers.json_params_matcher({})])
    send(OutboundRequest("POST", f"{BASE}/items", json={}))
    assert fake_http.calls[0].request.headers["Content-Type"] == "application/json"


def test_multipart_names_and_filenames_cannot_inject_part_headers(fake_http):
    fake_http.post(f"{BASE}/upload")
    send(
        OutboundRequest(
            "POST",
            f"{BASE}/upload",
            multipart=[
                ('fi"eld\r\nX-Evil: 1', "v"),
                ("file", ('a".txt\r\nContent-Type: text/html', b"data", "text/plain")),
            ],
        )
    )
    body = fake_http.calls[0].request.body
    assert b"\r\nX-Evil" not in body
    assert b"\r\nContent-Type: text/html" not in body
    assert b"Content-Type: text/plain" in body


def test_response_headers_are_lower_case_and_the_url_is_reported(fake_http):
    fake_http.get(f"{BASE}/h", body="{}", headers={"X-Rate-Limit": "10"}, status=201)
    answer = send(OutboundRequest("GET", f"{BASE}/h", params=[("a", "1")]))
    assert answer.status == 201
    assert answer.headers["x-rate-limit"] == "10"
    assert answer.url == f"{BASE}/h?a=1"


def test_the_default_cap_comes_from_settings(fake_http, settings):
    settings.EXECUTION_MAX_RESPONSE_BYTES = 10
    fake_http.get(f"{BASE}/big", body=b"0123456789ABCDEF")
    answer = send(OutboundRequest("GET", f"{BASE}/big"))
    assert (answer.body, answer.truncated) == (b"0123456789", True)


def test_a_head_request_has_no_body(fake_http):
    fake_http.head(f"{BASE}/h", headers={"Content-Length": "1234"})
    answer = send(OutboundRequest("HEAD", f"{BASE}/h"))
    assert answer.body == b"" and not answer.truncated


@pytest.mark.parametrize(
    ("failure", "cause"),
    [
        (ConnectionRefusedError(111, "refused"), "refused"),
        (TimeoutError("timed out"), "timeout"),
        (ssl.SSLCertVerificationError("certificate verify failed"), "tls"),
        (ConnectionResetError(104, "reset"), "connection"),
    ],
)
def test_library_failures_map_to_causes(fake_http, failure, cause):
    fake_http.get(f"{BASE}/x", body=failure)
    with pytest.raises(OutboundError) as error:
        send(OutboundRequest("GET", f"{BASE}/x"))
    assert error.value.cause == cause
    assert "api.example.com" in error.value.detail


@pytest.mark.parametrize(
    "name",
    [
        "Host",
        "host",
        "Content-Length",
        "Transfer-Encoding",
        "Connection",
        "TE",
        "Upgrade",
        "Proxy-Authorization",
        "Proxy-Connection",
        "Keep-Alive",
        "Expect",
    ],
)
def test_framing_and_routing_headers_are_ours_to_set(fake_http, name):
    assert name in invalid(OutboundRequest("GET", f"{BASE}/", headers={name: "x"}))


@pytest.mark.parametrize(
    "name", ["X Key", "X-Key:", "", "X-Ké", "X\r\nA", "(x)", "X-Key\x00", "X/Y"]
)
def test_header_names_must_be_tokens(fake_http, name):
    invalid(OutboundRequest("GET", f"{BASE}/", headers={name: "x"}))


@pytest.mark.parametrize(
    "value", ["a\r\nb", "a\nb", "a\rb", "a\x00b", "a\x7fb", "a\x0bb", "€", "é", "a\x1bb"]
)
def test_header_values_must_be_printable_ascii(fake_http, value):
    detail = invalid(OutboundRequest("GET", f"{BASE}/", headers={"X-Key": value}))
    assert value not in detail  # the value may be a secret: never echoed


def test_header_values_may_hold_tabs_and_are_trimmed(fake_http):
    fake_http.get(f"{BASE}/")
    send(OutboundRequest("GET", f"{BASE}/", headers={"X-Key": "  a\tb  "}))
    assert fake_http.calls[0].request.headers["X-Key"] == "a\tb"


def test_the_same_header_twice_in_different_case_is_refused(fake_http):
    invalid(OutboundRequest("GET", f"{BASE}/", headers={"X-Key": "a", "x-key": "b"}))


@pytest.mark.parametrize(
    "request_",
    [
        OutboundRequest("TRACE", f"{BASE}/"),
        OutboundRequest("CONNECT", f"{BASE}/"),
        OutboundRequest("GET\r\n", f"{BASE}/"),
        OutboundRequest("POST", f"{BASE}/", json={"a": 1}, form={"a": "1"}),
        OutboundRequest("POST", f"{BASE}/", json={"x": float("nan")}),
        OutboundRequest("POST", f"{BASE}/", json={"x": object()}),
        OutboundRequest("POST", f"{BASE}/", form={"a": 1}),  # type: ignore[dict-item]
        OutboundRequest("POST", f"{BASE}/", multipart=[]),
        OutboundRequest("POST", f"{BASE}/", multipart=[("f", ("a", "not bytes", "text/plain"))]),
        OutboundRequest("POST", f"{BASE}/", multipart=[("f", ("a", b"x", "text/plain\r\nX: 1"))]),
        OutboundRequest(
            "POST", f"{BASE}/", headers={"Content-Type": "text/plain"}, multipart=[("a", "b")]
        ),
        OutboundRequest("GET", f"{BASE}/", params=[("a",)]),  # type: ignore[list-item]
        OutboundRequest("GET", f"{BASE}/", params=[("a", 1)]),  # type: ignore[list-item]
        OutboundRequest("GET", f"{BASE}/", headers=[("a", "b")]),  # type: ignore[arg-type]
        OutboundRequest("GET", f"{BASE}/", headers={"X-Key": 1}),  # type: ignore[dict-item]
        OutboundRequest("GET", None),  # type: ignore[arg-type]
        OutboundRequest("GET", f"{BASE}/" + "a" * 9000),
    ],
)
def test_malformed_requests_are_refused_before_sending(fake_http, request_):
    invalid(request_)


def test_a_circular_json_body_is_refused(fake_http):
    loop: dict = {}
    loop["self"] = loop
    invalid(OutboundRequest("POST", f"{BASE}/", json=loop))


def test_deadline_and_cap_must_be_positive(fake_http):
    for bad in (0, -1, float("nan"), float("inf"), "soon"):
        invalid(OutboundRequest("GET", f"{BASE}/"), timeout_seconds=bad)
    invalid(OutboundRequest("GET", f"{BASE}/"), max_bytes=0)


def test_an_error_names_its_cause_and_unknown_causes_are_a_bug():
    error = OutboundError("dns", "api.example.com did not resolve")
    assert (error.cause, error.detail) == ("dns", "api.example.com did not resolve")
    assert str(error) == "dns: api.example.com did not resolve"
    assert set(CAUSES) == {
        "dns",
        "refused",
        "tls",
        "blocked_address",
        "too_large",
        "timeout",
        "invalid_request",
        "connection",
    }
    with pytest.raises(ValueError):
        OutboundError("oops", "x")  # type: ignore[arg-type]
