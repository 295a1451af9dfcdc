"""Test doubles for the outbound seam: a fake resolver, a connection recorder, a sentinel.

CI has no network: every name a test sends to must be answered by `FakeDNS`. Other
apps' unit tests that fake HTTP with `responses` need it too, because `execution.http`
resolves (and checks) the host before requests is involved::

    dns = FakeDNS({"api.example.com": ["93.184.216.34"]})
    with dns.installed(), responses.RequestsMock() as rsps:
        ...
"""

from __future__ import annotations

import contextlib
import ipaddress
import select
import socket
from collections.abc import Callable, Iterator, Sequence
from unittest import mock

_real_getaddrinfo = socket.getaddrinfo
_real_connect = socket.socket.connect
_real_connect_ex = socket.socket.connect_ex

Answer = Sequence[str] | BaseException | Callable[[int], "Sequence[str] | BaseException"]


def _is_ip(host: object) -> bool:
    try:
        ipaddress.ip_address(str(host).split("%")[0])
    except ValueError:
        return False
    return True


class FakeDNS:
    """`socket.getaddrinfo` answering names from a table; IP literals go to the real one.

    An answer is a list of addresses, an exception to raise, or a function of the
    lookup's number for that name (1, 2, ...) returning either: a rebinding resolver.
    Every name lookup is recorded in ``calls`` (lower-case, without the trailing dot).
    """

    def __init__(self, answers: dict[str, Answer] | None = None, default: Answer | None = None):
        self.answers = {name.lower(): answer for name, answer in (answers or {}).items()}
        self.default = default
        self.calls: list[str] = []

    def __call__(self, host, port, family=0, type=0, proto=0, flags=0):
        if _is_ip(host):
            return _real_getaddrinfo(host, port, family, type, proto, flags)
        name = str(host).lower().removesuffix(".")
        self.calls.append(name)
        answer = self.answers.get(name, self.default)
        if callable(answer):
            answer = answer(self.calls.count(name))
        if answer is None:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        if isinstance(answer, BaseException):
            raise answer
        records = []
        for address in answer:
            if ":" in address:
                records.append((socket.AF_INET6, socket.SOCK_STREAM, 6, "", (address, port, 0, 0)))
            else:
                records.append((socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port)))
        return records

    @contextlib.contextmanager
    def installed(self) -> Iterator[FakeDNS]:
        with mock.patch("socket.getaddrinfo", self):
            yield self


class ConnectRecorder:
    """Records every `connect` any socket in the process attempts; lets through only
    the destinations ``allow`` accepts and refuses the rest (ECONNREFUSED), so nothing
    leaves the machine."""

    def __init__(self, allow: Callable[[tuple], bool] = lambda address: False):
        self.allow = allow
        self.attempts: list[tuple] = []

    @contextlib.contextmanager
    def installed(self) -> Iterator[ConnectRecorder]:
        recorder = self

        def connect(sock, address):
            recorder.attempts.append(tuple(address))
            if not recorder.allow(tuple(address)):
                raise ConnectionRefusedError(111, "Connection refused (by the test recorder)")
            return _real_connect(sock, address)

        def connect_ex(sock, address):
            recorder.attempts.append(tuple(address))
            if not recorder.allow(tuple(address)):
                return 111
            return _real_connect_ex(sock, address)

        with (
            mock.patch.object(socket.socket, "connect", connect),
            mock.patch.object(socket.socket, "connect_ex", connect_ex),
        ):
            yield self


class Sentinel:
    """A listening socket on loopback that must see nothing: `accepted()` counts the
    connections that reached it (the kernel queues them even if nobody accepts)."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.sock.setblocking(False)
        self.port = self.sock.getsockname()[1]
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
