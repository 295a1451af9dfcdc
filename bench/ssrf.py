"""Benchmark: the SSRF guard refuses every spelling and reserved range, opening nothing.

    python bench/ssrf.py                  # or: make bench-ssrf

Through the real seam, `execution.http.send` (the function invoke calls), with the
production settings (opencx.settings, DEBUG off, no test allowlist, no test CA; the
allowed ports are the default 443 and 8443 plus the sentinel's port, so that a
loopback spelling that slipped through would land on the sentinel):

- URL spellings: legacy IPv4 (decimal, octal, hex, short forms), IPv6 forms that carry
  IPv4 (mapped, compatible, translated, NAT64, 6to4, Teredo), 0.0.0.0 and [::],
  localhost and internal names, cloud metadata endpoints, userinfo and fragment
  tricks, trailing dots, percent-encoding, Unicode dots and lookalikes, other
  schemes and ports, and names whose DNS answer is private (the fake resolver's);
- every range of `execution.addresses`' tables (and every metadata address), at its
  first and last address, as the DNS answer of a public-looking name and as a literal.

Witnesses, all installed for the whole run:
- listening sockets ("sentinels") on 127.0.0.1 and ::1, at the sentinel's port and
  (when this user may bind them) at 443 and 8443, that must accept nothing;
- a counter on socket.socket.connect/connect_ex (every TCP connect in the process):
  loopback attempts go through, so the sentinels see them; any other destination is
  refused by the counter (nothing leaves the machine) and still counted;
- a fake socket.getaddrinfo: names from a table (any other name -> 127.0.0.1), every
  call counted. Only the DNS cases may look a name up, once each.

Prints a table per category, then a positive control (one call with the test
allowlist open must be seen by both witnesses); exits 1 if anything was not refused,
a connect() was attempted, a sentinel accepted, a lookup was unexpected, or the
control saw nothing. Needs nothing running (no database, no Redis).
"""

import contextlib
import errno
import ipaddress
import os
import select
import socket
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from unittest import mock

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

ROUNDS = int(os.environ.get("BENCH_SSRF_ROUNDS", "20"))
ENV = {
    "DJANGO_SETTINGS_MODULE": "opencx.settings",  # production settings, not the bench's
    "DEBUG": "0",
    "SECRET_KEY": "bench-" + "x" * 50,
    "SECRET_ENCRYPTION_KEYS": "G7Z692euxmDO3tFYdF_0ce5dCaLS2bt3A7dGl86sbsU=",
    "LOG_LEVEL": "WARNING",
    # Set empty rather than unset, so a local .env cannot bring them back.
    "OUTBOUND_TEST_ALLOWLIST": "",
    "OUTBOUND_TEST_CA_BUNDLE": "",
    "OUTBOUND_TEST_OVERRIDES_UNSAFE": "0",
}
GUARD_CAUSES = {"blocked_address", "invalid_request"}
_real_getaddrinfo = socket.getaddrinfo

# (category, URL template); {p} is the sentinel's port. Where a spelling names no port
# it goes to 443, where a sentinel listens too when this user may bind it.
SPELLINGS = (
    [
        ("IPv4 legacy spellings", url)
        for url in (
            "https://127.0.0.1:{p}/",
            "https://127.1:{p}/",
            "https://127.0.1:{p}/",
            "https://2130706433:{p}/",
            "https://0x7f000001:{p}/",
            "https://0X7F000001:{p}/",
            "https://0x7f.1:{p}/",
            "https://0x7f.0x0.0x0.0x1:{p}/",
            "https://0177.0.0.1:{p}/",
            "https://0177.1:{p}/",
            "https://017700000001:{p}/",
            "https://127.000.000.001:{p}/",
            "https://127.0.0.255:{p}/",
            "https://0:{p}/",
            "https://0.0.0.0:{p}/",
            "https://0x0:{p}/",
            "https://4294967295/",
            "https://0xffffffff/",
            "https://255.255.255.255/",
        )
    ]
    + [
        ("IPv6 and embedded IPv4", url)
        for url in (
            "https://[::]:{p}/",
            "https://[::1]:{p}/",
            "https://[0:0:0:0:0:0:0:1]:{p}/",
            "https://[0000:0000:0000:0000:0000:0000:0000:0001]:{p}/",
            "https://[::ffff:127.0.0.1]:{p}/",
            "https://[::ffff:7f00:1]:{p}/",
            "https://[0:0:0:0:0:ffff:127.0.0.1]:{p}/",
            "https://[::127.0.0.1]:{p}/",
            "https://[::ffff:0:7f00:1]:{p}/",
            "https://[::ffff:0.0.0.0]:{p}/",
            "https://[64:ff9b::7f00:1]:{p}/",
            "https://[64:ff9b::127.0.0.1]:{p}/",
            "https://[64:ff9b:1::7f00:1]:{p}/",
            "https://[2002:7f00:1::]:{p}/",
            "https://[2001:0:4136:e378:8000:63bf:3f57:fdf2]/",
            "https://[fc00::1]/",
            "https://[fd12:3456::1]/",
            "https://[fe80::1]/",
            "https://[fec0::1]/",
            "https://[ff02::1]/",
            "https://[100::1]/",
        )
    ]
    + [
        ("cloud metadata", url)
        for url in (
            "https://169.254.169.254/latest/meta-data/",
            "https://169.254.43518/",
            "https://2852039166/",
            "https://0xa9fea9fe/",
            "https://0251.0376.0251.0376/",
            "https://[::ffff:169.254.169.254]/",
            "https://[::ffff:a9fe:a9fe]/",
            "https://[64:ff9b::a9fe:a9fe]/",
            "https://[2002:a9fe:a9fe::]/",
            "https://[fd00:ec2::254]/",
            "https://169.254.170.2/v2/credentials",
            "https://100.100.100.200/latest/meta-data/",
            "https://192.0.0.192/opc/v2/instance/",
            "https://168.63.129.16/machine",
            "https://metadata.google.internal/computeMetadata/v1/",
            "https://METADATA.GOOGLE.INTERNAL./computeMetadata/v1/",
            "https://metadata/computeMetadata/v1/",
        )
    ]
    + [
        ("private and reserved literals", url)
        for url in (
            "https://10.0.0.1/",
            "https://172.16.0.1/",
            "https://172.31.255.254/",
            "https://192.168.1.1/",
            "https://100.64.0.1/",
            "https://198.18.0.1/",
            "https://192.0.2.1/",
            "https://224.0.0.1/",
            "https://240.0.0.1/",
        )
    ]
    + [
        ("local names and trailing dots", url)
        for url in (
            "https://localhost:{p}/",
            "https://LOCALHOST:{p}/",
            "https://localhost.:{p}/",
            "https://LocalHost.:{p}/",
            "https://localhost..:{p}/",
            "https://app.localhost:{p}/",
            "https://a.b.localhost.:{p}/",
            "https://127.0.0.1.:{p}/",
            "https://[::1].:{p}/",
            "https://intranet:{p}/",
            "https://intranet.:{p}/",
            "https://printer.local/",
            "https://router.home.arpa/",
            "https://db.localdomain/",
            "https://vault.internal/",
        )
    ]
    + [
        ("userinfo, fragments, backslashes", url)
        for url in (
            "https://example.com@127.0.0.1:{p}/",
            "https://user:pass@127.0.0.1:{p}/",
            "https://example.com:443@127.0.0.1:{p}/",
            "https://127.0.0.1:{p}@example.com/",
            "https://127.0.0.1\\@example.com/",
            "https://example.com\\@127.0.0.1:{p}/",
            "https://example.com#@127.0.0.1:{p}/",
            "https://127.0.0.1:{p}#@example.com/",
            "https://127.0.0.1:{p}?@example.com/",
            "https:\\\\127.0.0.1:{p}/",
            "https:/127.0.0.1:{p}/",
            "https:127.0.0.1:{p}/",
        )
    ]
    + [
        ("percent-encoding, NUL, whitespace", url)
        for url in (
            "https://%31%32%37.0.0.1:{p}/",
            "https://127.0.0.1%2e:{p}/",
            "https://%6c%6f%63%61%6c%68%6f%73%74:{p}/",
            "https://127%2E0%2E0%2E1:{p}/",
            "https://[::1%25lo]:{p}/",
            "https://[fe80::1%25eth0]/",
            "https://127.0.0.1%00.example.com/",
            "https://127.0.0.1\x00.example.com/",
            " https://127.0.0.1:{p}/",
            "\thttps://127.0.0.1:{p}/",
            "https://127.0.0.1:{p}/ HTTP/1.1\r\nHost: example.com",
            "https://127.0.0.1 :{p}/",
        )
    ]
    + [
        ("Unicode dots and lookalikes", url)
        for url in (
            "https://127\u30020\u30020\u30021:{p}/",  # ideographic full stop
            "https://127\uff0e0\uff0e0\uff0e1:{p}/",  # fullwidth full stop
            "https://127\uff610\uff610\uff611:{p}/",  # halfwidth ideographic full stop
            "https://\uff11\uff12\uff17.0.0.1:{p}/",  # fullwidth digits
            "https://localhost\u3002:{p}/",
            # circled letters: ⓛⓞⓒⓐⓛⓗⓞⓢⓣ
            "https://\u24db\u24de\u24d2\u24d0\u24db\u24d7\u24de\u24e2\u24e3:{p}/",
            "https://loc\u0430lhost:{p}/",  # Cyrillic a
            "https://exa\u200bmple.com/",  # zero-width space
            "https://xn--lcalhost-9za:{p}/",  # single-label punycode
        )
    ]
    + [
        ("schemes and ports", url)
        for url in (
            "http://127.0.0.1:{p}/",
            "HTTP://127.0.0.1:{p}/",
            "file:///etc/passwd",
            "gopher://127.0.0.1:6379/_INFO",
            "dict://127.0.0.1:11211/stats",
            "ftp://127.0.0.1/",
            "ldap://127.0.0.1/",
            "//127.0.0.1:{p}/",
            "127.0.0.1:{p}/",
            "https://127.0.0.1:6379/",
            "https://[::1]:22/",
            "https://example.com:25/",
            "https://example.com:0/",
            "https://example.com:65536/",
            "https://example.com:-1/",
            "https://1.2.3.4.5/",
            "https://[::1/",
        )
    ]
)

# Names whose (fake) DNS answer is private: one lookup each, then refused.
DNS_ANSWERS = {
    "127.0.0.1.nip.io": ["127.0.0.1"],
    "localtest.me": ["127.0.0.1"],
    "customer-api.example.com": ["::1"],
    "zero.bench.example": ["0.0.0.0"],  # noqa: S104 - an answer, not a bind
    "unspecified6.bench.example": ["::"],
    "metadata.bench.example": ["169.254.169.254"],
    "metadata6.bench.example": ["fd00:ec2::254"],
    "mapped.bench.example": ["::ffff:127.0.0.1"],
    "nat64.bench.example": ["64:ff9b::a9fe:a9fe"],
    "sixtofour.bench.example": ["2002:7f00:1::"],
    "mixed.bench.example": ["93.184.216.34", "10.0.0.1"],
    "mixed-last.bench.example": ["93.184.216.34", "8.8.8.8", "127.0.0.1"],
    "mixed6.bench.example": ["2606:2800:220:1:248:1893:25c8:1946", "::ffff:127.0.0.1"],
    "private.bench.example": ["192.168.0.10"],
}
SPELLINGS += [("DNS answers", f"https://{name}:{{p}}/") for name in DNS_ANSWERS]
SPELLINGS += [
    ("DNS answers", "https://LOCALTEST.ME.:{p}/"),
    ("DNS answers", "https://Metadata.Bench.Example./latest/meta-data/"),
]
LOOKUP_CATEGORIES = {"DNS answers", "reserved ranges (DNS answer)"}


def range_cases() -> tuple[list[tuple[str, str]], dict[str, list[str]]]:
    """Every range of execution.addresses' tables at its first and last address, and
    every metadata address: as a literal URL and as the answer for a name."""
    from execution.addresses import BLOCKED_V4, BLOCKED_V6, METADATA_ADDRESSES

    addresses = []
    for network, _label in (*BLOCKED_V4, *BLOCKED_V6):
        first = network.network_address + min(1, network.num_addresses - 1)
        addresses += sorted({first, network[-1]}, key=int)
    addresses += list(METADATA_ADDRESSES)
    cases, answers = [], {}
    for i, address in enumerate(addresses):
        literal = f"[{address}]" if address.version == 6 else str(address)
        cases.append(("reserved ranges (literal)", f"https://{literal}/"))
        name = f"range-{i}.customer.example.com"
        answers[name] = [str(address)]
        cases.append(("reserved ranges (DNS answer)", f"https://{name}/"))
    return cases, answers


# -- witnesses -------------------------------------------------------------------------------


class Sentinel:
    """A listening socket that must accept nothing; the kernel queues any connection
    that reaches it, so `accepted()` sees it even after the fact."""

    def __init__(self, family: int, host: str, port: int):
        self.sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            self.sock.bind((host, port))
        except OSError:
            self.sock.close()
            raise
        self.sock.listen(128)
        self.sock.setblocking(False)
        port = self.sock.getsockname()[1]
        self.where = f"[{host}]:{port}" if family == socket.AF_INET6 else f"{host}:{port}"
        self.count = 0

    def accepted(self, wait: float = 0.0) -> int:
        while select.select([self.sock], [], [], wait)[0]:
            connection, _ = self.sock.accept()
            connection.close()
            self.count += 1
            wait = 0.0
        return self.count

    def close(self) -> None:
        self.sock.close()


def open_sentinels() -> tuple[int, list[Sentinel]]:
    """127.0.0.1 and ::1 on one free port (and 443, 8443 where this user may bind)."""
    for _ in range(20):
        first = Sentinel(socket.AF_INET, "127.0.0.1", 0)
        port = first.sock.getsockname()[1]
        sentinels = [first]
        if not socket.has_ipv6:
            break
        try:
            sentinels.append(Sentinel(socket.AF_INET6, "::1", port))
            break
        except OSError:
            first.close()
    else:
        raise RuntimeError("no port free on both 127.0.0.1 and ::1")
    for extra in (443, 8443):
        for family, host in ((socket.AF_INET, "127.0.0.1"), (socket.AF_INET6, "::1")):
            with contextlib.suppress(OSError):
                sentinels.append(Sentinel(family, host, extra))
    return port, sentinels


@dataclass
class Witness:
    """The fake resolver and the connect() counter, with what they saw."""

    answers: dict[str, list[str]]
    lookups: list[str] = field(default_factory=list)
    connects: list[tuple] = field(default_factory=list)

    def getaddrinfo(self, host, port, family=0, type=0, proto=0, flags=0):
        name = str(host).lower().removesuffix(".")
        self.lookups.append(name)
        with contextlib.suppress(ValueError):
            ipaddress.ip_address(name.strip("[]").split("%")[0])
            # A literal (urllib3 "resolves" the pinned address before connecting): the
            # real resolver, numeric only, so a connect goes where the literal says.
            return _real_getaddrinfo(host, port, family, type, proto, flags | socket.AI_NUMERICHOST)
        records = []
        for address in self.answers.get(name, ["127.0.0.1"]):
            if ":" in address:
                records.append((socket.AF_INET6, socket.SOCK_STREAM, 6, "", (address, port, 0, 0)))
            else:
                records.append((socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port)))
        return records

    @contextlib.contextmanager
    def installed(self):
        real_connect, real_connect_ex = socket.socket.connect, socket.socket.connect_ex
        witness = self

        def is_loopback(address) -> bool:
            with contextlib.suppress(ValueError, TypeError, IndexError):
                return ipaddress.ip_address(str(address[0]).split("%")[0]).is_loopback
            return False

        def connect(sock, address):
            witness.connects.append(tuple(address))
            if not is_loopback(address):  # counted, and kept on this machine
                raise ConnectionRefusedError(errno.ECONNREFUSED, "refused by the bench")
            return real_connect(sock, address)

        def connect_ex(sock, address):
            witness.connects.append(tuple(address))
            if not is_loopback(address):
                return errno.ECONNREFUSED
            return real_connect_ex(sock, address)

        with (
            mock.patch("socket.getaddrinfo", self.getaddrinfo),
            mock.patch.object(socket.socket, "connect", connect),
            mock.patch.object(socket.socket, "connect_ex", connect_ex),
        ):
            yield self


# -- the run ---------------------------------------------------------------------------------


@dataclass
class Tally:
    cases: int = 0
    attempts: int = 0
    refused: int = 0
    causes: Counter = field(default_factory=Counter)
    lookups: int = 0
    connects: int = 0
    micros: list[float] = field(default_factory=list)


def attempt(send, request_class, error_class, url: str) -> tuple[str, float]:
    """One send: its outcome ('response', or the error's cause) and its time in µs."""
    started = time.perf_counter_ns()
    try:
        send(request_class("GET", url), timeout_seconds=1)
        outcome = "response"
    except error_class as error:
        outcome = error.cause
    return outcome, (time.perf_counter_ns() - started) / 1000


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(int(len(ordered) * fraction), len(ordered) - 1)] if ordered else 0.0


def positive_control(send, request_class, error_class, witness, port, sentinels) -> str:
    """With the test allowlist open for one call, both witnesses must see it."""
    from django.test import override_settings

    before = len(witness.connects)
    primary = sentinels[0]
    accepted_before = primary.accepted()
    with override_settings(OUTBOUND_TEST_ALLOWLIST=["127.0.0.1/32"]):
        outcome, _ = attempt(send, request_class, error_class, f"https://127.0.0.1:{port}/")
    connects = len(witness.connects) - before
    accepts = primary.accepted(wait=1.0) - accepted_before
    verdict = "the witnesses work" if connects == 1 and accepts == 1 else "WITNESSES BLIND"
    return (
        f"positive control (test allowlist 127.0.0.1/32 for one call to {primary.where}): "
        f"{connects} connect() seen, {accepts} accepted, outcome {outcome}: {verdict}"
    )


def main() -> int:
    port, sentinels = open_sentinels()
    os.environ.update(ENV)
    os.environ["OUTBOUND_ALLOWED_PORTS"] = f"443,8443,{port}"
    import django

    django.setup()
    from django.conf import settings

    from execution.http import OutboundError, OutboundRequest, send

    assert not settings.DEBUG and settings.OUTBOUND_TEST_ALLOWLIST == []
    assert settings.OUTBOUND_TEST_CA_BUNDLE is None

    from execution.addresses import BLOCKED_V4, BLOCKED_V6, METADATA_ADDRESSES

    ranges, range_answers = range_cases()
    n_v4, n_v6, n_metadata = len(BLOCKED_V4), len(BLOCKED_V6), len(METADATA_ADDRESSES)
    cases = [(category, url.replace("{p}", str(port))) for category, url in SPELLINGS] + ranges
    witness = Witness(answers={**DNS_ANSWERS, **range_answers})
    tallies: dict[str, Tally] = {}
    for category, _ in cases:
        tallies.setdefault(category, Tally()).cases += 1
    failures: dict[str, str] = {}  # by URL: the first time it went wrong

    print(
        f"SSRF guard: execution.http.send with production settings (DEBUG off, no test "
        f"allowlist, no test CA; allowed ports {sorted(settings.OUTBOUND_ALLOWED_PORTS)})"
    )
    print(
        "sentinels listening: " + ", ".join(s.where for s in sentinels) + "; connect() "
        f"counter and fake resolver installed; {ROUNDS} rounds"
        + (" (round 1 untimed)" if ROUNDS > 1 else "")
    )
    with witness.installed():
        for round_number in range(1, ROUNDS + 1):
            for category, url in cases:
                tally = tallies[category]
                lookups, connects = len(witness.lookups), len(witness.connects)
                outcome, micros = attempt(send, OutboundRequest, OutboundError, url)
                lookups = len(witness.lookups) - lookups
                connects = len(witness.connects) - connects
                tally.attempts += 1
                tally.causes[outcome] += 1
                tally.lookups += lookups
                tally.connects += connects
                refused = outcome in GUARD_CAUSES
                tally.refused += refused
                if round_number > 1 or ROUNDS == 1:
                    tally.micros.append(micros)
                expected_lookups = 1 if category in LOOKUP_CATEGORIES else 0
                if (not refused or connects or lookups != expected_lookups) and (
                    url not in failures
                ):
                    failures[url] = (
                        f"{category}: {url!r} -> {outcome}, {lookups} lookups "
                        f"(expected {expected_lookups}), {connects} connect() (round "
                        f"{round_number})"
                    )
        accepts = sum(s.accepted(wait=0.5) for s in sentinels)
        control = positive_control(send, OutboundRequest, OutboundError, witness, port, sentinels)
    for sentinel in sentinels:
        sentinel.close()

    header = (
        f"{'category':<34} {'cases':>5} {'tries':>6} {'refused':>7} {'blocked':>7} "
        f"{'invalid':>7} {'lookups':>7} {'connects':>8} {'µs p50':>8} {'µs p99':>8}"
    )
    print("\n" + header + "\n" + "-" * len(header))
    total = Tally()
    spelling_cases = 0
    for category, tally in tallies.items():
        if not category.startswith("reserved ranges"):
            spelling_cases += tally.cases
        for name in ("cases", "attempts", "refused", "lookups", "connects"):
            setattr(total, name, getattr(total, name) + getattr(tally, name))
        total.causes.update(tally.causes)
        total.micros += tally.micros
        print(
            f"{category:<34} {tally.cases:>5} {tally.attempts:>6} {tally.refused:>7} "
            f"{tally.causes['blocked_address']:>7} {tally.causes['invalid_request']:>7} "
            f"{tally.lookups:>7} {tally.connects:>8} {percentile(tally.micros, 0.5):>8.1f} "
            f"{percentile(tally.micros, 0.99):>8.1f}"
        )
    print("-" * len(header))
    print(
        f"{'all':<34} {total.cases:>5} {total.attempts:>6} {total.refused:>7} "
        f"{total.causes['blocked_address']:>7} {total.causes['invalid_request']:>7} "
        f"{total.lookups:>7} {total.connects:>8} {percentile(total.micros, 0.5):>8.1f} "
        f"{percentile(total.micros, 0.99):>8.1f}"
    )
    not_refused = total.attempts - total.refused
    print(
        f"\nspellings tried: {spelling_cases}; reserved ranges tried: {n_v4 + n_v6} "
        f"({n_v4} IPv4 + {n_v6} IPv6) + {n_metadata} metadata addresses: "
        f"{len(range_answers)} addresses, each as a literal and as a DNS answer"
    )
    print(
        f"refused: {total.refused} of {total.attempts} attempts; not refused: {not_refused}; "
        f"connect() attempted: {total.connects}; accepts seen by the sentinels: {accepts}; "
        f"time per refusal: p50 {percentile(total.micros, 0.5):.1f} µs, "
        f"p99 {percentile(total.micros, 0.99):.1f} µs"
    )
    print(control)
    for failure in failures.values():
        print(f"  FAILED {failure}")
    ok = (
        not failures
        and not_refused == 0
        and total.connects == 0
        and accepts == 0
        and control.endswith("the witnesses work")
    )
    print(f"verdict: {'PASS' if ok else 'FAIL'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
