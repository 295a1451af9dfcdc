"""The SSRF guard of execution.http: every vector is refused and no socket is opened.

Two independent witnesses per test: a `Sentinel` (a real listening socket on
127.0.0.1 whose port is allowed, and to which every name resolves) must accept nothing,
and a `ConnectRecorder` must see no connect() at all. DNS is always the fake resolver.
"""

from __future__ import annotations

import ipaddress
import socket
import time

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from execution.addresses import check_address
from execution.http import OutboundError, OutboundRequest, OutboundResponse, send
from tests.execution.fakes import ConnectRecorder, FakeDNS


@pytest.fixture
def guard(settings, sentinel):
    """Production rules (no allowlist), the sentinel's port allowed, every name -> it."""
    settings.OUTBOUND_TEST_ALLOWLIST = []
    settings.OUTBOUND_ALLOWED_PORTS = [443, 8443, sentinel.port]
    sentinel_address = ("127.0.0.1", sentinel.port)
    dns = FakeDNS(default=["127.0.0.1"])
    recorder = ConnectRecorder(allow=lambda address: address == sentinel_address)
    with dns.installed(), recorder.installed():
        yield dns, recorder, sentinel
    assert sentinel.accepted() == 0, "a connection reached the sentinel"
    assert recorder.attempts == [], f"connect() attempted: {recorder.attempts}"


def refused(url: str, **kwargs) -> OutboundError:
    with pytest.raises(OutboundError) as error:
        send(OutboundRequest("GET", url, **kwargs), timeout_seconds=2)
    return error.value


# SECURITY.md §1.4, literal and encoded hosts; {p} is the sentinel's (allowed) port, so a
# loopback spelling that slipped through would land on the sentinel.
BLOCKED_URLS = [
    "https://127.0.0.1:{p}/",
    "https://127.1:{p}/",
    "https://2130706433:{p}/",
    "https://0x7f000001:{p}/",
    "https://0x7f.1:{p}/",
    "https://0177.0.0.1:{p}/",
    "https://017700000001:{p}/",
    "https://127.000.000.001:{p}/",
    "https://0:{p}/",
    "https://0.0.0.0:{p}/",
    "https://[::]:{p}/",
    "https://[::1]:{p}/",
    "https://[0:0:0:0:0:0:0:1]:{p}/",
    "https://[::ffff:127.0.0.1]:{p}/",
    "https://[::ffff:7f00:1]:{p}/",
    "https://[::127.0.0.1]:{p}/",
    "https://[::ffff:0:7f00:1]:{p}/",
    "https://169.254.169.254/latest/meta-data/",
    "https://[::ffff:a9fe:a9fe]/",
    "https://[fd00:ec2::254]/",
    "https://100.100.100.200/",
    "https://192.0.0.192/",
    "https://metadata.google.internal/computeMetadata/v1/",
    "https://10.0.0.1/",
    "https://172.16.0.1/",
    "https://192.168.1.1/",
    "https://100.64.0.1/",
    "https://[fc00::1]/",
    "https://[fe80::1]/",
    "https://[fec0::1]/",
    "https://[64:ff9b::a9fe:a9fe]/",
    "https://[64:ff9b::7f00:1]:{p}/",
    "https://[2002:a9fe:a9fe::]/",
    "https://[2002:7f00:1::]:{p}/",
    "https://[2001:0:4136:e378:8000:63bf:3f57:fdf2]/",
    "https://[100::1]/",
    "https://255.255.255.255/",
    "https://0xffffffff/",
    "https://4294967295/",
    "https://localhost:{p}/",
    "https://LOCALHOST.:{p}/",
    "https://localhost.:{p}/",
    "https://app.localhost:{p}/",
    "https://intranet:{p}/",
    "https://printer.local:{p}/",
]

# Parsers, schemes and ports: refused as malformed before any name is looked at.
INVALID_URLS = [
    "https://127.0.0.1\\@example.com/",
    "https://example.com\\@127.0.0.1/",
    "https://example.com@127.0.0.1:{p}/",
    "https://user:pass@example.com/",
    "https://example.com#@127.0.0.1",
    "https://127.0.0.1%00.example.com/",
    "https://%31%32%37.0.0.1:{p}/",
    "https://127.0.0.1%2e:{p}/",
    "https://[fe80::1%25eth0]/",
    "https://[::ffff:127.0.0.1%25lo]:{p}/",
    "https://127.0.0.1\x00.example.com/",
    " https://example.com/",
    "\thttps://example.com/",
    "https://example.com/ HTTP/1.1\r\nHost: 127.0.0.1",
    "https://example.com/\r\n",
    "https://ⓛⓞⓒⓐⓛⓗⓞⓢⓣ:{p}/",
    "https://exa\u200bmple.com/",
    "http://example.com/",
    "HTTP://127.0.0.1:{p}/",
    "file:///etc/passwd",
    "gopher://127.0.0.1:6379/_INFO",
    "ftp://example.com/",
    "dict://127.0.0.1:11211/stats",
    "//example.com/",
    "example.com/path",
    "https:///path",
    "https://example.com:6379/",
    "https://example.com:22/",
    "https://example.com:25/",
    "https://example.com:65536/",
    "https://example.com:0/",
    "https://example.com:-1/",
    "https://1.2.3.4.5/",
    "https://[::1/",
]


def test_the_attack_list_has_at_least_forty_spellings():
    assert len(BLOCKED_URLS) + len(INVALID_URLS) >= 70
    assert len(set(BLOCKED_URLS + INVALID_URLS)) == len(BLOCKED_URLS + INVALID_URLS)


@pytest.mark.parametrize("template", BLOCKED_URLS)
def test_blocked_spelling_is_refused_without_a_lookup_or_a_connection(guard, template):
    dns, _recorder, sentinel = guard
    error = refused(template.format(p=sentinel.port))
    assert error.cause == "blocked_address", error.detail
    assert dns.calls == []


@pytest.mark.parametrize("template", INVALID_URLS)
def test_malformed_url_scheme_or_port_is_refused_before_anything(guard, template):
    dns, _recorder, sentinel = guard
    error = refused(template.format(p=sentinel.port))
    assert error.cause == "invalid_request", error.detail
    assert dns.calls == []


def test_the_witnesses_do_see_a_connection_when_the_guard_lets_one_through(settings, sentinel):
    """Positive control: with the test allowlist open, the same setup records a connect."""
    settings.OUTBOUND_TEST_ALLOWLIST = ["127.0.0.1/32"]
    settings.OUTBOUND_ALLOWED_PORTS = [sentinel.port]
    recorder = ConnectRecorder(allow=lambda address: address == ("127.0.0.1", sentinel.port))
    with recorder.installed(), pytest.raises(OutboundError):
        send(OutboundRequest("GET", f"https://127.0.0.1:{sentinel.port}/"), timeout_seconds=0.3)
    assert recorder.attempts == [("127.0.0.1", sentinel.port)]
    assert sentinel.accepted(wait=1) == 1


# --- DNS tricks -----------------------------------------------------------------------


def test_a_public_looking_name_resolving_to_loopback_is_refused(guard):
    dns, _recorder, sentinel = guard
    error = refused(f"https://127.0.0.1.nip.io:{sentinel.port}/")
    assert error.cause == "blocked_address"
    assert "127.0.0.1 is loopback" in error.detail
    assert dns.calls == ["127.0.0.1.nip.io"]


@pytest.mark.parametrize(
    "answer",
    [
        ["93.184.216.34", "10.0.0.1"],
        ["10.0.0.1", "93.184.216.34"],
        ["93.184.216.34", "127.0.0.1"],
        ["2606:2800:220:1:248:1893:25c8:1946", "::1"],
        ["93.184.216.34", "::ffff:127.0.0.1"],
        ["93.184.216.34", "64:ff9b::a9fe:a9fe"],
        ["93.184.216.34", "169.254.169.254"],
    ],
)
def test_one_bad_record_refuses_the_whole_answer(guard, answer):
    dns, _recorder, _sentinel = guard
    dns.answers["mixed.example.com"] = answer
    error = refused("https://mixed.example.com/")
    assert error.cause == "blocked_address"
    assert dns.calls == ["mixed.example.com"]


def test_rebinding_resolves_once_and_connects_to_the_checked_address(settings):
    """First answer public, any later one loopback: exactly one lookup, and the only
    connect() goes to the public address that was checked (refused by the recorder, as
    nothing may leave this machine)."""
    settings.OUTBOUND_TEST_ALLOWLIST = []
    dns = FakeDNS({"rebind.example.com": lambda n: ["93.184.216.34"] if n == 1 else ["127.0.0.1"]})
    recorder = ConnectRecorder()
    with dns.installed(), recorder.installed(), pytest.raises(OutboundError) as error:
        send(OutboundRequest("GET", "https://rebind.example.com/"))
    assert error.value.cause == "refused"
    assert dns.calls == ["rebind.example.com"]
    assert recorder.attempts == [("93.184.216.34", 443)]


def test_a_failed_lookup_is_a_dns_error(guard):
    dns, _recorder, _sentinel = guard
    dns.answers["gone.example.com"] = socket.gaierror(
        socket.EAI_NONAME, "Name or service not known"
    )
    error = refused("https://gone.example.com/")
    assert error.cause == "dns"
    assert "gone.example.com" in error.detail


def test_an_empty_answer_is_a_dns_error(guard):
    dns, _recorder, _sentinel = guard
    dns.answers["empty.example.com"] = []
    assert refused("https://empty.example.com/").cause == "dns"


def test_a_hanging_lookup_ends_at_the_deadline(guard):
    dns, _recorder, _sentinel = guard

    def hang(_n):
        time.sleep(0.6)
        return ["127.0.0.1"]

    dns.answers["slow.example.com"] = hang
    started = time.monotonic()
    with pytest.raises(OutboundError) as error:
        send(OutboundRequest("GET", "https://slow.example.com/"), timeout_seconds=0.2)
    assert error.value.cause == "timeout"
    assert time.monotonic() - started < 0.45
    time.sleep(0.5)  # let the abandoned lookup finish before the witnesses are read


def test_the_metadata_endpoint_stays_closed_even_when_its_range_is_allowlisted(guard, settings):
    dns, _recorder, _sentinel = guard
    settings.OUTBOUND_TEST_ALLOWLIST = ["169.254.0.0/16", "fd00:ec2::/32", "::ffff:0:0/96"]
    dns.answers["meta.example.com"] = ["169.254.169.254"]
    assert refused("https://meta.example.com/").cause == "blocked_address"
    assert refused("https://[fd00:ec2::254]/").cause == "blocked_address"
    assert refused("https://[::ffff:169.254.169.254]/").cause == "blocked_address"


# --- Every reserved range, at its network address, first host and last address -------

# Written out from the IANA special-purpose registries, independently of
# execution.addresses, so a range dropped there fails here.
RESERVED_RANGES = [
    "0.0.0.0/8",
    "10.0.0.0/8",
    "100.64.0.0/10",
    "127.0.0.0/8",
    "169.254.0.0/16",
    "172.16.0.0/12",
    "192.0.0.0/24",
    "192.0.2.0/24",
    "192.88.99.0/24",
    "192.168.0.0/16",
    "198.18.0.0/15",
    "198.51.100.0/24",
    "203.0.113.0/24",
    "224.0.0.0/4",
    "240.0.0.0/4",
    "255.255.255.255/32",
    "::/128",
    "::1/128",
    "::ffff:0:0/96",
    "::ffff:0:0:0/96",
    "::/96",
    "64:ff9b::/96",
    "64:ff9b:1::/48",
    "100::/64",
    "100:0:0:1::/64",
    "2001::/23",
    "2001::/32",
    "2001:2::/48",
    "2001:10::/28",
    "2001:20::/28",
    "2001:db8::/32",
    "2002::/16",
    "3fff::/20",
    "5f00::/16",
    "fc00::/7",
    "fe80::/10",
    "fec0::/10",
    "ff00::/8",
]


def edge_addresses(cidr: str) -> list[str]:
    network = ipaddress.ip_network(cidr)
    first_host = network.network_address + min(1, network.num_addresses - 1)
    return sorted({str(network.network_address), str(first_host), str(network[-1])})


RANGE_CASES = [(cidr, address) for cidr in RESERVED_RANGES for address in edge_addresses(cidr)]


def test_every_range_is_probed_at_three_points():
    assert len(RESERVED_RANGES) >= 32
    assert len(RANGE_CASES) >= 100


@pytest.mark.parametrize(("cidr", "address"), RANGE_CASES)
def test_reserved_address_is_refused_as_a_literal_and_as_a_dns_answer(guard, cidr, address):
    dns, _recorder, _sentinel = guard
    literal = f"[{address}]" if ":" in address else address
    error = refused(f"https://{literal}/")
    assert error.cause == "blocked_address", error.detail
    # Named by the explicit table, not left to ipaddress.is_global's last net.
    assert "not globally reachable" not in error.detail
    dns.answers["victim.example.com"] = [address]
    error = refused("https://victim.example.com/")
    assert error.cause == "blocked_address", error.detail
    assert dns.calls == ["victim.example.com"]


# --- Property: no input escapes the guard ----------------------------------------------

PUBLIC = ["93.184.216.34", "8.8.8.8", "2606:4700:4700::1111"]
PRIVATE = ["127.0.0.1", "10.0.0.1", "169.254.169.254", "::1", "::ffff:127.0.0.1", "fc00::1"]
host_parts = st.sampled_from(
    [
        "api.example.com",
        "127.0.0.1",
        "0x7f.1",
        "[::1]",
        "localhost",
        "10.0.0.1",
        "x.test",
        "8.8.8.8",
        "[2606:4700:4700::1111]",
        "intranet",
        "0",
        "",
        "a..b",
        "-a.com",
        "xn--a.com",
    ]
)
url_noise = st.text(alphabet=st.sampled_from(list("/?#@:\\%.[]aZ09 \t\r\n\x00é&=+")), max_size=12)
urls = st.one_of(
    st.builds(
        lambda scheme, host, port, tail: f"{scheme}://{host}{port}{tail}",
        st.sampled_from(["https", "HTTPS", "http", "ftp", "https:", ""]),
        host_parts,
        st.sampled_from(["", ":443", ":8443", ":22", ":0", ":99999", ":"]),
        url_noise,
    ),
    st.text(max_size=40),
)
header_dicts = st.dictionaries(
    st.one_of(
        st.sampled_from(["X-Key", "Host", "Content-Length", "Proxy-Auth", "TE"]),
        st.text(max_size=8),
    ),
    st.one_of(st.text(max_size=12), st.integers(), st.none()),
    max_size=3,
)


@hypothesis_settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    url=urls,
    headers=header_dicts,
    answer=st.lists(st.sampled_from(PUBLIC + PRIVATE), min_size=0, max_size=3),
    method=st.sampled_from(["GET", "POST", "get", "TRACE", "CONNECT", ""]),
)
def test_any_url_and_headers_give_a_response_or_an_outbound_error_and_no_private_connect(
    settings, url, headers, answer, method
):
    settings.OUTBOUND_TEST_ALLOWLIST = []
    dns = FakeDNS(default=answer)
    recorder = ConnectRecorder()  # refuses everything: nothing leaves the machine
    with dns.installed(), recorder.installed():
        try:
            result = send(OutboundRequest(method, url, headers=headers), timeout_seconds=2)
        except OutboundError as error:
            result = error
    assert isinstance(result, OutboundResponse | OutboundError)
    assert len(dns.calls) <= 1
    for address in recorder.attempts:
        assert check_address(ipaddress.ip_address(address[0])) is None, address
