"""Which destinations an outbound call may reach: the address policy of `execution.http`.

Pure functions over names and `ipaddress` objects, no I/O. Three questions, asked in
this order by `execution.http.send`:

1. `hostname_problem(host)`: is the *name* refused before any DNS lookup?
   ``localhost``, ``*.internal`` (``metadata.google.internal``), single labels
   (``intranet``: resolv.conf search domains would complete them)...
2. `numeric_host(host)`: is the name really an IPv4 address in a legacy spelling that
   `getaddrinfo` would decode (``127.1``, ``0x7f.1``, ``2130706433``, ``0177.0.0.1``)?
   A real top-level domain is never numeric, so such a host is decoded here and never
   sent to a resolver.
3. `address_problem(ip)`: may an *address* (every record a lookup returned) be
   called? Only public unicast passes. `ipaddress.is_global` alone is not enough
   (on 3.11 it calls ``64:ff9b::7f00:1``, ``2002:7f00:1::``, ``fec0::1`` and
   ``192.0.0.192`` global, and multicast global too), so an explicit table of
   special-purpose ranges comes first, IPv6 must lie in 2000::/3, and `is_global`
   is the last net. IPv6 forms that carry an IPv4 address (mapped, compatible,
   translated, NAT64, 6to4, Teredo) are refused outright; the embedded address is
   unwrapped for the explanation::

       >>> address_problem(ip_address("2002:7f00:1::"))
       '2002:7f00:1:: is 6to4 (2002::/16); it embeds 127.0.0.1, which is loopback (127.0.0.0/8)'

`check_address(ip, allowlist)` adds the test-only allowlist on top: an allowlisted
network passes question 3, except the cloud metadata endpoints, which nothing unlocks.
"""

from __future__ import annotations

import re
import socket
from collections.abc import Iterable
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_address, ip_network

IPAddress = IPv4Address | IPv6Address
IPNetwork = IPv4Network | IPv6Network

# Instance-metadata and host-agent endpoints: never reachable, not even through the
# test allowlist (GitLab's deny_cloud_metadata_requests rule).
METADATA_ADDRESSES: dict[IPAddress, str] = {
    ip_address("169.254.169.254"): "AWS/GCP/Azure/OpenStack metadata",
    ip_address("169.254.170.2"): "AWS ECS task metadata",
    ip_address("169.254.170.23"): "AWS EKS pod identity agent",
    ip_address("fd00:ec2::254"): "AWS IPv6 metadata",
    ip_address("fd00:ec2::23"): "AWS IPv6 EKS pod identity agent",
    ip_address("100.100.100.200"): "Alibaba Cloud metadata",
    ip_address("192.0.0.192"): "Oracle Cloud metadata",
    ip_address("168.63.129.16"): "Azure WireServer",
}

# IANA special-purpose registries (IPv4 and IPv6) minus the globally reachable
# entries, plus the ranges CPython gets wrong. Order matters only for the label:
# the first matching row names the problem.
BLOCKED_V4: tuple[tuple[IPv4Network, str], ...] = tuple(
    (ip_network(net), label)
    for net, label in (
        ("0.0.0.0/8", "this network"),
        ("10.0.0.0/8", "private-use"),
        ("100.64.0.0/10", "shared address space (CGNAT)"),
        ("127.0.0.0/8", "loopback"),
        ("169.254.0.0/16", "link-local"),
        ("172.16.0.0/12", "private-use"),
        ("192.0.0.0/24", "IETF protocol assignments"),
        ("192.0.2.0/24", "documentation (TEST-NET-1)"),
        ("192.88.99.0/24", "6to4 relay anycast"),
        ("192.168.0.0/16", "private-use"),
        ("198.18.0.0/15", "benchmarking"),
        ("198.51.100.0/24", "documentation (TEST-NET-2)"),
        ("203.0.113.0/24", "documentation (TEST-NET-3)"),
        ("224.0.0.0/4", "multicast"),
        ("255.255.255.255/32", "limited broadcast"),
        ("240.0.0.0/4", "reserved"),
    )
)
BLOCKED_V6: tuple[tuple[IPv6Network, str], ...] = tuple(
    (ip_network(net), label)
    for net, label in (
        ("::/128", "unspecified"),
        ("::1/128", "loopback"),
        ("::ffff:0:0/96", "IPv4-mapped"),
        ("::ffff:0:0:0/96", "IPv4-translated"),
        ("::/96", "IPv4-compatible"),
        ("64:ff9b::/96", "NAT64"),
        ("64:ff9b:1::/48", "local-use NAT64"),
        ("100::/64", "discard-only"),
        ("100:0:0:1::/64", "dummy prefix"),
        ("2001::/32", "Teredo"),
        ("2001:db8::/32", "documentation"),
        ("2001::/23", "IETF protocol assignments"),
        ("2002::/16", "6to4"),
        ("3fff::/20", "documentation"),
        ("5f00::/16", "segment routing (SRv6)"),
        ("fc00::/7", "unique-local"),
        ("fe80::/10", "link-local"),
        ("fec0::/10", "site-local (deprecated)"),
        ("ff00::/8", "multicast"),
    )
)
GLOBAL_UNICAST_V6 = ip_network("2000::/3")

# Names refused before any lookup: they can only mean this host, its LAN or the
# cloud provider's internal DNS. Matched as the name itself or any name under it.
BLOCKED_SUFFIXES = ("localhost", "internal", "local", "localdomain", "home.arpa")

_LABEL = r"[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?"
_HOSTNAME = re.compile(rf"{_LABEL}(?:\.{_LABEL})*")
_OCTET = r"(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)"
_CANONICAL_V4 = re.compile(rf"{_OCTET}(?:\.{_OCTET}){{3}}")


def normalize_hostname(host: str) -> str:
    """Lower-case, without brackets or one trailing dot: the form every check compares.

    >>> normalize_hostname("API.Example.COM.")
    'api.example.com'
    >>> normalize_hostname("[::1]")
    '::1'
    """
    host = host.lower()
    if host.startswith("[") and host.endswith("]"):
        return host[1:-1]
    return host.removesuffix(".")


def hostname_problem(host: str) -> str | None:
    """Why a (normalized, ASCII) DNS name is refused before any lookup, or None.

    >>> hostname_problem("metadata.google.internal")
    'metadata.google.internal is an internal name (*.internal)'
    >>> hostname_problem("intranet")
    'intranet is a single-label name (resolv.conf search domains would complete it)'
    >>> hostname_problem("api.example.com") is None
    True
    """
    if len(host) > 253 or not _HOSTNAME.fullmatch(host):
        return f"{host!r} is not a valid DNS name"
    for suffix in BLOCKED_SUFFIXES:
        if host == suffix or host.endswith("." + suffix):
            return f"{host} is an internal name (*.{suffix})"
    if "." not in host:
        return f"{host} is a single-label name (resolv.conf search domains would complete it)"
    return None


def is_numeric_host(host: str) -> bool:
    """True when a name can only be an IPv4 spelling: its last label is a number.

    No top-level domain is numeric, so ``127.1``, ``0x7f.1`` or ``2130706433`` can never
    be DNS names; glibc's getaddrinfo decodes them as inet_aton does.
    """
    last = host.rsplit(".", 1)[-1]
    return last.isdigit() or (last.startswith("0x") and len(last) > 2)


def decode_legacy_ipv4(host: str) -> IPv4Address | None:
    """What getaddrinfo would make of a numeric host (inet_aton rules), or None.

    >>> decode_legacy_ipv4("0x7f.1")
    IPv4Address('127.0.0.1')
    >>> decode_legacy_ipv4("017700000001")
    IPv4Address('127.0.0.1')
    >>> decode_legacy_ipv4("1.2.3.4.5") is None
    True
    """
    try:
        return IPv4Address(socket.inet_aton(host))
    except (OSError, ValueError):
        return None


def is_canonical_ipv4(host: str) -> bool:
    """Dotted decimal with four parts and no leading zeros: the only IPv4 form we accept."""
    return _CANONICAL_V4.fullmatch(host) is not None


def embedded_ipv4(ip: IPv6Address) -> IPv4Address | None:
    """The IPv4 address an IPv6 transition form carries, if any.

    >>> embedded_ipv4(ip_address("64:ff9b::7f00:1"))
    IPv4Address('127.0.0.1')
    >>> embedded_ipv4(ip_address("2001:0:4136:e378:8000:63bf:3f57:fdf2"))
    IPv4Address('192.168.2.13')
    """
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip.teredo is not None:
        return ip.teredo[1]  # the client's (obfuscated) address; the server is public
    packed = ip.packed
    low32 = IPv4Address(packed[12:])
    if packed[:12] == bytes(12):  # ::a.b.c.d, IPv4-compatible
        return low32
    if packed[:12] == bytes(8) + b"\xff\xff\x00\x00":  # ::ffff:0:a.b.c.d, IPv4-translated
        return low32
    if ip in ip_network("64:ff9b::/96") or ip in ip_network("64:ff9b:1::/48"):
        return low32
    return None


def address_problem(ip: IPAddress) -> str | None:
    """Why an address may not be called, or None for public unicast.

    >>> address_problem(ip_address("10.1.2.3"))
    '10.1.2.3 is private-use (10.0.0.0/8)'
    >>> print(address_problem(ip_address("::7f00:1")))
    ::7f00:1 is IPv4-compatible (::/96); it embeds 127.0.0.1, which is loopback (127.0.0.0/8)
    >>> address_problem(ip_address("8.8.8.8")) is None
    True
    """
    if ip in METADATA_ADDRESSES:
        return f"{ip} is a cloud metadata endpoint ({METADATA_ADDRESSES[ip]})"
    if isinstance(ip, IPv6Address):
        if ip.scope_id:
            return f"{ip} carries a zone index"
        for network, label in BLOCKED_V6:
            if ip in network:
                problem = f"{ip} is {label} ({network})"
                inner = embedded_ipv4(ip)
                if inner is not None:
                    problem += f"; it embeds {inner}"
                    inner_problem = address_problem(inner)
                    if inner_problem is not None:
                        problem += f", which is {inner_problem.removeprefix(f'{inner} is ')}"
                return problem
        if ip not in GLOBAL_UNICAST_V6:
            return f"{ip} is outside IPv6 global unicast ({GLOBAL_UNICAST_V6})"
    else:
        for network, label in BLOCKED_V4:
            if ip in network:
                return f"{ip} is {label} ({network})"
    if not ip.is_global:  # the last net: whatever CPython knows that the tables miss
        return f"{ip} is not globally reachable"
    return None


def parse_networks(values: Iterable[str | IPNetwork]) -> tuple[IPNetwork, ...]:
    """Networks from settings; a host address needs its prefix (``127.0.0.1/32``)."""
    return tuple(v if isinstance(v, IPv4Network | IPv6Network) else ip_network(v) for v in values)


def check_address(ip: IPAddress, allowlist: Iterable[IPNetwork] = ()) -> str | None:
    """`address_problem`, with the test-only allowlist applied; metadata stays refused.

    >>> check_address(ip_address("127.0.0.1"), [ip_network("127.0.0.1/32")]) is None
    True
    >>> check_address(ip_address("169.254.169.254"), [ip_network("169.254.0.0/16")])
    '169.254.169.254 is a cloud metadata endpoint (AWS/GCP/Azure/OpenStack metadata)'
    """
    if ip in METADATA_ADDRESSES or (
        isinstance(ip, IPv6Address) and embedded_ipv4(ip) in METADATA_ADDRESSES
    ):
        return address_problem(ip)
    if any(ip.version == net.version and ip in net for net in allowlist):
        return None
    return address_problem(ip)
