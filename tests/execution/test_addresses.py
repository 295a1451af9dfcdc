"""The address policy (execution.addresses), on its own: names, spellings, addresses."""

from __future__ import annotations

import doctest
import ipaddress

import pytest
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from requests_hardened.ip_filter import InvalidIPAddress, get_ip_address

import execution.addresses
from execution.addresses import (
    address_problem,
    check_address,
    decode_legacy_ipv4,
    embedded_ipv4,
    hostname_problem,
    is_canonical_ipv4,
    is_numeric_host,
    normalize_hostname,
    parse_networks,
)
from tests.execution.test_http_guard import RESERVED_RANGES

ip = ipaddress.ip_address

PUBLIC = [
    "8.8.8.8",
    "1.1.1.1",
    "93.184.216.34",
    "100.63.255.255",  # just below CGNAT
    "100.128.0.0",  # just above CGNAT
    "172.15.255.255",
    "172.32.0.0",
    "192.0.1.1",
    "198.17.255.255",
    "223.255.255.255",
    "2606:4700:4700::1111",
    "2001:4860:4860::8888",
    "2a00:1450:4001:81c::200e",
]


def test_the_doctests_hold():
    assert doctest.testmod(execution.addresses).failed == 0


@pytest.mark.parametrize("address", PUBLIC)
def test_public_unicast_is_allowed(address):
    assert address_problem(ip(address)) is None


@pytest.mark.parametrize(
    ("address", "words"),
    [
        ("192.0.0.192", "metadata"),  # is_global on 3.11
        ("100.100.100.200", "metadata"),  # neither private nor global
        ("64:ff9b::7f00:1", "NAT64"),  # is_global on 3.11
        ("2002:7f00:1::", "6to4"),  # is_global on 3.11
        ("fec0::1", "site-local"),  # is_global on 3.11
        ("::127.0.0.1", "IPv4-compatible"),  # allowed by requests-hardened 1.3.0
        ("::ffff:0:7f00:1", "IPv4-translated"),  # allowed by requests-hardened 1.3.0
        ("100:0:0:1::1", "dummy prefix"),  # allowed by requests-hardened 1.3.0
        ("224.0.0.1", "multicast"),  # is_global on 3.11
        ("fe80::1%eth0", "zone"),
    ],
)
def test_the_gaps_of_ipaddress_and_requests_hardened_are_closed(address, words):
    problem = address_problem(ip(address))
    assert problem is not None and words in problem


@pytest.mark.parametrize(
    ("address", "inner"),
    [
        ("::ffff:10.1.2.3", "10.1.2.3"),
        ("::10.1.2.3", "10.1.2.3"),
        ("::ffff:0:10.1.2.3", "10.1.2.3"),
        ("64:ff9b::10.1.2.3", "10.1.2.3"),
        ("64:ff9b:1::a01:203", "10.1.2.3"),
        ("2002:a01:203::1", "10.1.2.3"),
        ("2001:0:4136:e378:8000:63bf:f5fe:fdfc", "10.1.2.3"),
    ],
)
def test_embedded_ipv4_is_unwrapped_and_named_in_the_explanation(address, inner):
    assert embedded_ipv4(ip(address)) == ip(inner)
    assert f"it embeds {inner}, which is private-use" in address_problem(ip(address))


def test_transition_forms_are_refused_even_around_a_public_address():
    for address in ("::ffff:8.8.8.8", "64:ff9b::808:808", "2002:808:808::1"):
        assert address_problem(ip(address)) is not None


@pytest.mark.parametrize(
    ("host", "refused"),
    [
        ("localhost", True),
        ("app.localhost", True),
        ("metadata.google.internal", True),
        ("instance-data.ec2.internal", True),
        ("printer.local", True),
        ("nas.home.arpa", True),
        ("intranet", True),
        ("under_score..example.com", True),
        ("-bad.example.com", True),
        ("a" * 64 + ".example.com", True),
        ("api.example.com", False),
        ("xn--mnchen-3ya.de", False),
        ("my_service.example.com", False),
        ("localhost.example.com", False),  # a real domain that merely starts so
    ],
)
def test_names_refused_before_any_lookup(host, refused):
    assert (hostname_problem(host) is not None) is refused


@pytest.mark.parametrize(
    ("host", "address"),
    [
        ("127.1", "127.0.0.1"),
        ("2130706433", "127.0.0.1"),
        ("0x7f000001", "127.0.0.1"),
        ("0x7f.1", "127.0.0.1"),
        ("0177.0.0.1", "127.0.0.1"),
        ("017700000001", "127.0.0.1"),
        ("127.000.000.001", "127.0.0.1"),
        ("0", "0.0.0.0"),  # noqa: S104 - an address under test, nothing binds
        ("0xffffffff", "255.255.255.255"),
        ("010.8.8.8", "8.8.8.8"),
    ],
)
def test_legacy_ipv4_spellings_are_decoded_as_getaddrinfo_would(host, address):
    assert is_numeric_host(host)
    assert not is_canonical_ipv4(host)
    assert decode_legacy_ipv4(host) == ip(address)


def test_only_dotted_decimal_is_canonical_and_names_are_not_numeric():
    assert is_canonical_ipv4("8.8.8.8")
    assert not is_numeric_host("example.com")
    assert not is_numeric_host("0x.example")
    assert decode_legacy_ipv4("1.2.3.4.5") is None


def test_normalized_names_drop_case_brackets_and_one_trailing_dot():
    assert normalize_hostname("API.Example.COM.") == "api.example.com"
    assert normalize_hostname("[::1]") == "::1"


def test_the_allowlist_opens_only_its_networks_and_never_metadata():
    allowlist = parse_networks(["127.0.0.1/32", "169.254.0.0/16"])
    assert check_address(ip("127.0.0.1"), allowlist) is None
    assert check_address(ip("127.0.0.2"), allowlist) is not None
    assert check_address(ip("169.254.1.1"), allowlist) is None
    assert check_address(ip("169.254.169.254"), allowlist) is not None
    assert check_address(ip("::ffff:169.254.169.254"), parse_networks(["::/0"])) is not None
    with pytest.raises(ValueError):
        parse_networks(["127.0.0.1/8"])  # host bits set: a typo must not widen it


# --- Properties over random addresses --------------------------------------------------

ranges = [ipaddress.ip_network(cidr) for cidr in RESERVED_RANGES]
in_reserved_range = st.sampled_from(ranges).flatmap(
    lambda net: st.integers(0, net.num_addresses - 1).map(lambda i: net.network_address + i)
)
any_address = st.one_of(
    st.integers(0, 2**32 - 1).map(ipaddress.IPv4Address),
    st.integers(0, 2**128 - 1).map(ipaddress.IPv6Address),
    in_reserved_range,
    st.sampled_from([ip(a) for a in PUBLIC]),
)


@hypothesis_settings(max_examples=500, deadline=None)
@given(in_reserved_range)
def test_any_address_in_a_reserved_range_is_refused(address):
    assert address_problem(address) is not None


@hypothesis_settings(max_examples=500, deadline=None)
@given(any_address)
def test_whatever_is_allowed_is_global_unicast(address):
    if address_problem(address) is None:
        assert address.is_global and not address.is_multicast
        assert not any(address in net for net in ranges)
        if address.version == 6:
            assert address in ipaddress.ip_network("2000::/3")


@hypothesis_settings(max_examples=500, deadline=None)
@given(any_address)
def test_the_policy_refuses_everything_requests_hardened_refuses(address):
    """requests-hardened 1.3.0 as an independent oracle: ours must be at least as strict."""
    try:
        get_ip_address(str(address), 443, allow_loopback=False)
    except InvalidIPAddress:
        assert address_problem(address) is not None
    except OSError:
        pass  # an address getaddrinfo itself will not take
