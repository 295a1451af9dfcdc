"""Benchmark: what invoke adds to a call, against calling the same upstream directly.

    python bench/invoke.py                 # or: make bench-invoke
    python bench/invoke.py --profile       # then where in-process invokes spend time

An organization with an API key (scope `tools`), a contact, a global variable bound to
the upstream's host, and two actions pointing at a loopback HTTPS upstream (a threaded
http.server in a child process, with a trustme certificate for api.bench.example):
a GET with a path and an AI query parameter, and a POST with a JSON body; both send a
static header filled from the global variable and a magic field (contact.email).

The product runs under gunicorn on loopback (one gthread worker, 4 threads: a
sequential client stays on one warm process) with the test-only outbound overrides
(loopback allowlisted, the trustme CA trusted), which settings only accept with
OUTBOUND_TEST_OVERRIDES_UNSAFE=1. In the same run, alternating, after a warm-up:

- invoke: POST /api/v1/tools/{tool}/invoke, keep-alive session (GET and POST actions
  in turn); every invoke writes its execution log row, as in production (the row
  before the call, its outcome once the answer has been sent);
- direct, keep-alive: the same request straight to the upstream with requests;
- direct, new connection: the same with a fresh session each time (TCP + TLS
  handshake; one TLS context loaded once), for what a first call to a host costs
  (execution.http keeps checked connections for reuse afterwards).

Printed: p50/p99 of each, the added p50/p99 (invoke minus direct keep-alive) against
the 5 ms goal, and the split of an invoke: gunicorn's request time (access log,
%(D)s: gthread writes it once the answer is sent, before the outcome's UPDATE) and
execution.http.send's own time (the log row's duration_ms); and the SQL queries and
Redis commands of one invoke; and this machine's wake-up cost (a PostgreSQL SELECT 1
back to back, and after 5 ms idle), which an invoke pays at each of its hand-offs
between processes and threads. With --profile, then: the time of each
phase of 300 in-process invokes, and cProfile's busiest functions.

api.bench.example resolves to 127.0.0.1 through a patched socket.getaddrinfo (in the
gunicorn worker and in this process): execution.http's lookup thread runs, but no
real resolver's latency is counted.

Needs PostgreSQL and Redis on 127.0.0.1 (override with BENCH_DATABASE_URL and
BENCH_CACHE_URL; the database name must contain "bench"). It drops and recreates the
database `opencx_bench_invoke`, and empties Redis database 14.
"""

import argparse
import contextlib
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import warnings
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from unittest import mock

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench.common import free_port, recreate_database, wait_for_port  # noqa: E402

DATABASE_URL = os.environ.get(
    "BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/opencx_bench_invoke"
)
CACHE_URL = os.environ.get("BENCH_CACHE_URL", "redis://127.0.0.1:6379/14")
REQUESTS = int(os.environ.get("BENCH_INVOKE_REQUESTS", "2000"))
WARMUP = int(os.environ.get("BENCH_INVOKE_WARMUP", "200"))
GOAL_MS = 5.0
UPSTREAM_HOST = "api.bench.example"
SHOP_KEY = "sk_bench_4f1c2a9d0e7b"
UPSTREAM_BODY = json.dumps(
    {"order_id": "A-1042", "status": "shipped", "eta": "2026-06-02", "items": 2}
).encode()
ENV = {
    "DJANGO_SETTINGS_MODULE": "bench.settings",
    "DATABASE_URL": DATABASE_URL,
    "CACHE_URL": CACHE_URL,
    "SECRET_KEY": "bench-" + "x" * 50,
    "SECRET_ENCRYPTION_KEYS": "G7Z692euxmDO3tFYdF_0ce5dCaLS2bt3A7dGl86sbsU=",
    "ALLOWED_HOSTS": "127.0.0.1,localhost,testserver",
    "LOG_LEVEL": "WARNING",
    "PYTHONWARNINGS": "ignore:No directory at:UserWarning",  # whitenoise: no collectstatic
    "DEBUG": "0",
    # The test-only overrides, on a bench host (settings refuse them otherwise).
    "OUTBOUND_TEST_ALLOWLIST": "127.0.0.1/32",
    "OUTBOUND_TEST_OVERRIDES_UNSAFE": "1",
}

_real_getaddrinfo = socket.getaddrinfo


def install_resolver() -> None:
    """api.bench.example -> 127.0.0.1; every other name goes to the real resolver."""

    def getaddrinfo(host, port, family=0, type=0, proto=0, flags=0):
        if isinstance(host, str) and host.lower().removesuffix(".") == UPSTREAM_HOST:
            host = "127.0.0.1"
        return _real_getaddrinfo(host, port, family, type, proto, flags)

    socket.getaddrinfo = getaddrinfo


def wsgi_application():
    """gunicorn 'bench.invoke:wsgi_application()': the product, with the bench's resolver."""
    install_resolver()
    from django.core.wsgi import get_wsgi_application

    return get_wsgi_application()


# -- the upstream: a small JSON answer over HTTPS, in a child process ---------------------


class UpstreamHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive
    disable_nagle_algorithm = True  # headers and body are two writes

    def do_GET(self) -> None:
        self._answer()

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self._answer()

    def _answer(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(UPSTREAM_BODY)))
        self.end_headers()
        self.wfile.write(UPSTREAM_BODY)

    def log_message(self, format, *args) -> None:
        pass


class UpstreamServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, port: int, cert_file: str):
        super().__init__(("127.0.0.1", port), UpstreamHandler)
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.context.load_cert_chain(cert_file)

    def finish_request(self, request, client_address) -> None:
        # The handshake in the connection's own thread, not in the accept loop.
        with self.context.wrap_socket(request, server_side=True) as tls:
            self.RequestHandlerClass(tls, client_address, self)

    def handle_error(self, request, client_address) -> None:
        pass  # a client closing a kept-alive connection is not news


def serve_upstream(port: int, cert_file: str) -> None:
    UpstreamServer(port, cert_file).serve_forever()


# -- setup ------------------------------------------------------------------------------


def populate(upstream_port: int) -> dict:
    """The organization, its key, contact, secret and the two actions."""
    from actions.models import (
        Action,
        ActionHeader,
        ActionParameter,
        Contact,
        Organization,
        OrganizationAPIKey,
        ValueKind,
    )
    from execution.models import GlobalVariable

    org = Organization.objects.create(name="Bench invoke", slug="bench-invoke")
    _, key = OrganizationAPIKey.objects.create_key(organization=org, name="bench", scopes="tools")
    contact = Contact.objects.create(
        organization=org, external_id="cus_bench", name="Ada", email="ada@bench.example"
    )
    variable = GlobalVariable(organization=org, name="SHOP_KEY", hosts=UPSTREAM_HOST)
    variable.set_value(SHOP_KEY)
    variable.save()
    base = f"https://{UPSTREAM_HOST}:{upstream_port}/v1/orders/{{order_id}}"
    description = (
        "Looks up an order by its number and returns its status and delivery estimate. "
        "Use when the customer asks where their order is."
    )
    look_up = Action.objects.create(
        organization=org, name="Look up an order", description=description,
        method="GET", endpoint=base,
    )  # fmt: skip
    ActionParameter.objects.create(
        action=look_up, location="query", key="expand", kind=ValueKind.AI,
        description="Related objects to include", required=False,
    )  # fmt: skip
    refund = Action.objects.create(
        organization=org, name="Refund an order", description=description.replace(
            "Looks up", "Refunds"), method="POST", endpoint=base + "/refund",
        body_schema={
            "type": "object",
            "properties": {
                "reason": {"type": "string", "enum": ["late", "damaged", "other"]},
                "amount": {"type": "integer", "minimum": 1},
            },
            "required": ["reason"],
        },
    )  # fmt: skip
    for action in (look_up, refund):
        ActionHeader.objects.create(
            action=action, key="Authorization", kind=ValueKind.STATIC,
            value="Bearer {{global.SHOP_KEY}}",
        )  # fmt: skip
        ActionHeader.objects.create(
            action=action, key="X-Customer", kind=ValueKind.MAGIC, value="contact.email"
        )
    Organization.bump_tools_version(org.pk)
    context = {"conversation": {"id": "conv_bench", "ticket_number": "T-1042"}}
    direct_headers = {
        "Authorization": f"Bearer {SHOP_KEY}",
        "SHOP_KEY": SHOP_KEY,
        "X-Customer": contact.email,
        "User-Agent": "OpenCX",
    }
    upstream = f"https://{UPSTREAM_HOST}:{upstream_port}/v1/orders/A-1042"
    return {
        "key": key,
        "calls": [
            {
                "label": "GET",
                "tool": look_up.tool_name,
                "invoke": {
                    "channel": "widget", "contact": "cus_bench", "context": context,
                    "arguments": {"order_id": "A-1042", "expand": "items"},
                },
                "direct": {"method": "GET", "url": upstream, "params": {"expand": "items"},
                           "headers": direct_headers},
            },
            {
                "label": "POST",
                "tool": refund.tool_name,
                "invoke": {
                    "channel": "widget", "contact": "cus_bench", "context": context,
                    "arguments": {"order_id": "A-1042", "reason": "damaged", "amount": 1200},
                },
                "direct": {"method": "POST", "url": upstream + "/refund",
                           "json": {"reason": "damaged", "amount": 1200},
                           "headers": direct_headers},
            },
        ],
    }  # fmt: skip


def round_trips(key: str, call: dict) -> dict[str, int]:
    """SQL queries and Redis commands of one warm invoke, in process (the code gunicorn
    runs, through Django's test client)."""
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext
    from redis.client import Redis

    client = Client()
    url = f"/api/v1/tools/{call['tool']}/invoke"
    auth = {"HTTP_AUTHORIZATION": f"Bearer {key}"}
    for _ in range(3):
        client.post(url, call["invoke"], content_type="application/json", **auth)
    commands = []
    real_execute = Redis.execute_command

    def counted(self, *args, **options):
        commands.append(args[0])
        return real_execute(self, *args, **options)

    with (
        CaptureQueriesContext(connection) as queries,
        mock.patch.object(Redis, "execute_command", counted),
    ):
        response = client.post(url, call["invoke"], content_type="application/json", **auth)
    assert response.status_code == 200 and response.json()["ok"], response.content[:300]
    writes = sum(not q["sql"].lstrip().upper().startswith("SELECT") for q in queries)
    return {"sql": len(queries), "sql_writes": writes, "redis": len(commands)}


def wake_cost() -> tuple[float, float]:
    """p50 ms of a PostgreSQL `SELECT 1` sent back to back, and sent after 5 ms idle:
    on a virtual machine, waking an idle process (or thread) costs far more than the
    work, and an invoke hands work between processes and threads more often than a
    direct call does (client, gunicorn's threads, PostgreSQL, the lookup thread, the
    upstream), so this says how much of the added time is the machine's."""
    from django.db import connection

    def p50(pause: float) -> float:
        times = []
        with connection.cursor() as cursor:
            for _ in range(200):
                if pause:
                    time.sleep(pause)
                started = time.perf_counter()
                cursor.execute("SELECT 1")
                times.append((time.perf_counter() - started) * 1000)
        return p50_p99(times)[0]

    return p50(0), p50(0.005)


# -- the measurement ------------------------------------------------------------------------


def p50_p99(values: list[float]) -> tuple[float, float]:
    ordered = sorted(values)
    return ordered[len(ordered) // 2], ordered[int(len(ordered) * 0.99)]


def start_gunicorn(port: int, access_log: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "bench.invoke:wsgi_application()", "--bind",
         f"127.0.0.1:{port}", "--workers", "1", "--worker-class", "gthread", "--threads", "4",
         "--keep-alive", "30", "--log-level", "warning", "--access-logfile", access_log,
         "--access-logformat", "%(U)s %(s)s %(D)s"],
        cwd=ROOT, env=os.environ.copy(), start_new_session=True,
    )  # fmt: skip


def measure(api_port: int, ca_file: str, setup: dict) -> dict:
    # The bench's own clients, not outbound calls of the product.
    import requests  # noqa: TID251
    from requests.adapters import HTTPAdapter  # noqa: TID251

    context = ssl.create_default_context(cafile=ca_file)

    class OneContextAdapter(HTTPAdapter):
        """One TLS context loaded once, as execution.http's adapter (requests would build
        a context and load the CA file into it for every new connection)."""

        def build_connection_pool_key_attributes(self, request, verify, cert=None):
            host_params, pool_kwargs = super().build_connection_pool_key_attributes(
                request, verify, cert
            )
            pool_kwargs.pop("ca_certs", None)
            pool_kwargs.pop("ca_cert_dir", None)
            pool_kwargs["ssl_context"] = context
            return host_params, pool_kwargs

        def cert_verify(self, conn, url, verify, cert) -> None:
            conn.cert_reqs = "CERT_REQUIRED"
            conn.ca_certs = None
            conn.ca_cert_dir = None

    def session() -> requests.Session:
        # As execution.http's: no proxies, .netrc or REQUESTS_CA_BUNDLE from the environment.
        made = requests.Session()
        made.trust_env = False
        made.mount("https://", OneContextAdapter(max_retries=0, pool_maxsize=1))
        return made

    api = session()
    api.headers["Authorization"] = f"Bearer {setup['key']}"
    upstream = session()
    base = f"http://127.0.0.1:{api_port}"

    def invoke(call: dict) -> tuple[float, int]:
        started = time.perf_counter()
        response = api.post(f"{base}/api/v1/tools/{call['tool']}/invoke", json=call["invoke"])
        elapsed = (time.perf_counter() - started) * 1000
        result = response.json()
        if response.status_code != 200 or not result.get("ok"):
            raise RuntimeError(f"invoke {call['label']}: {response.status_code} {result}")
        return elapsed, result["execution_id"]

    def direct(client: requests.Session, call: dict) -> float:
        started = time.perf_counter()
        response = client.request(**call["direct"])
        elapsed = (time.perf_counter() - started) * 1000
        if response.status_code != 200 or response.content != UPSTREAM_BODY:
            raise RuntimeError(f"direct {call['label']}: {response.status_code}")
        return elapsed

    def fresh(call: dict) -> float:
        with session() as new:
            return direct(new, call)

    calls = setup["calls"]
    for i in range(WARMUP):
        call = calls[i % 2]
        invoke(call)
        direct(upstream, call)
        fresh(call)

    samples: dict[str, dict[str, list[float]]] = {
        call["label"]: {"invoke": [], "direct": [], "fresh": []} for call in calls
    }
    execution_ids: dict[str, list[int]] = {call["label"]: [] for call in calls}
    started = time.perf_counter()
    for i in range(REQUESTS):
        call = calls[i % 2]
        seen = samples[call["label"]]
        # Alternate which goes first, so neither always follows the other.
        if (i // 2) % 2:
            seen["direct"].append(direct(upstream, call))
            elapsed, execution_id = invoke(call)
        else:
            elapsed, execution_id = invoke(call)
            seen["direct"].append(direct(upstream, call))
        seen["invoke"].append(elapsed)
        execution_ids[call["label"]].append(execution_id)
        seen["fresh"].append(fresh(call))
    wall = time.perf_counter() - started
    api.close()
    upstream.close()
    return {"samples": samples, "execution_ids": execution_ids, "wall_seconds": wall}


def send_times(execution_ids: list[int]) -> list[float]:
    """execution.http.send's own duration for each invoke, from its log row."""
    from execution.models import Execution

    rows = dict(Execution.objects.filter(pk__in=execution_ids).values_list("pk", "duration_ms"))
    outcomes = set(Execution.objects.filter(pk__in=execution_ids).values_list("outcome", flat=True))
    assert outcomes == {Execution.Outcome.SUCCEEDED}, outcomes
    return [rows[pk] for pk in execution_ids]


def server_times(access_log: str, tools: dict[str, str]) -> dict[str, list[float]]:
    """gunicorn's request time (ms) of the last REQUESTS/2 invokes of each tool."""
    lines = Path(access_log).read_text().splitlines()
    times: dict[str, list[float]] = {label: [] for label in tools}
    for line in lines:
        path, status, micros = line.split()
        for label, tool in tools.items():
            if path == f"/api/v1/tools/{tool}/invoke" and status == "200":
                times[label].append(int(micros) / 1000)
    return {label: values[-(REQUESTS // 2) :] for label, values in times.items()}


def report(measured: dict, server: dict[str, list[float]], send: dict[str, list[float]]) -> dict:
    samples = measured["samples"]
    labels = list(samples)
    scopes = {"all": {kind: [] for kind in ("invoke", "direct", "fresh")}}
    for label in labels:
        scopes[label] = samples[label]
        for kind, values in samples[label].items():
            scopes["all"][kind] += values
    results: dict = {}

    def row(name: str, values: list[float]) -> dict[str, float]:
        p50, p99 = p50_p99(values)
        print(f"  {name:<52} {p50:>8.2f} {p99:>8.2f}")
        return {"p50": round(p50, 3), "p99": round(p99, 3)}

    print(
        f"\n{REQUESTS:,} invokes ({REQUESTS // 2:,} GET + {REQUESTS // 2:,} POST JSON), each "
        f"next to the same call made directly, after {WARMUP} warm-up rounds "
        f"({measured['wall_seconds']:.1f} s)"
    )
    print(f"  {'':<52} {'p50 ms':>8} {'p99 ms':>8}")
    for scope, values in scopes.items():
        print(f" {scope}:")
        invoke = row("invoke through our API (keep-alive)", values["invoke"])
        direct = row("direct to the upstream (keep-alive)", values["direct"])
        fresh = row("direct, a new connection each (TCP + TLS)", values["fresh"])
        added = {q: round(invoke[q] - direct[q], 3) for q in ("p50", "p99")}
        print(f"  {'added by invoke (invoke - direct keep-alive)':<52} {added['p50']:>8.2f} "
              f"{added['p99']:>8.2f}")  # fmt: skip
        results[scope] = {
            "invoke_ms": invoke, "direct_ms": direct, "direct_new_connection_ms": fresh,
            "added_ms": added,
        }  # fmt: skip

    # Per invoke: the client's time, gunicorn's request time, send's time (in order).
    client_ms = [v for label in labels for v in samples[label]["invoke"]]
    server_ms = [v for label in labels for v in server[label]]
    send_ms = [v for label in labels for v in send[label]]
    print("\nwhere an invoke's time goes (per invoke, then p50 / p99 ms):")
    if len(server_ms) != len(client_ms):
        print(f"  (the access log has {len(server_ms)} rows for {len(client_ms)} invokes)")
    parts = {
        "HTTP to our API and back (client - gunicorn)": [
            c - s for c, s in zip(client_ms, server_ms, strict=False)
        ],
        "our code, in gunicorn, outside send": [
            s - o for s, o in zip(server_ms, send_ms, strict=False)
        ],
        "execution.http.send (guard, lookup, kept connection, call)": send_ms,
    }
    results["split_ms"] = {name: row(name, values) for name, values in parts.items()}
    everything = results["all"]
    handshake = everything["direct_new_connection_ms"]["p50"] - everything["direct_ms"]["p50"]
    beyond = (
        results["split_ms"]["execution.http.send (guard, lookup, kept connection, call)"]["p50"]
        - everything["direct_new_connection_ms"]["p50"]
    )
    print(f"  {'  a new TCP+TLS connection (p50: new - keep-alive)':<52} {handshake:>8.2f}")
    print(f"  {'  send beyond a plain new-connection call (p50)':<52} {beyond:>8.2f}")
    results["split_ms"]["new_connection_p50"] = round(handshake, 3)
    results["split_ms"]["send_beyond_new_connection_p50"] = round(beyond, 3)

    added = everything["added_ms"]
    results["verdict"] = "MET" if added["p50"] <= GOAL_MS else "NOT MET"
    print(
        f"\nverdict: invoke adds {added['p50']:.2f} ms at p50 ({added['p99']:.2f} ms at p99) "
        f"to a direct keep-alive call; goal <= {GOAL_MS:g} ms at p50: {results['verdict']}"
    )
    return results


# Where an in-process invoke spends its time: (module, attribute path, label). Nested
# phases are indented; a function that moved away is simply not timed.
PHASES = [
    ("actions.api.auth", "APIKeyAuthentication.authenticate", "authentication (+ rate limit)"),
    ("execution.api", "InvokeSerializer.is_valid", "request body validation"),
    ("execution.api", "visible_action", "find the action (visible_action)"),
    ("execution.api", "run_action", "run_action"),
    ("execution.run", "send_insert", "  send the log row's INSERT (send_insert)"),
    ("opencx.db.pending", "PendingInsert.confirm", "  wait for its commit (confirm, 2 calls)"),
    ("execution.run", "call_context", "  conversation context (call_context)"),
    ("execution.run", "build_request", "  build the request (build_request)"),
    ("execution.run", "Masker.value", "  mask secrets for the log (Masker.value)"),
    ("execution.http", "send", "  execution.http.send"),
    ("execution.models", "Execution.save", "  Execution.save (the outcome's UPDATE)"),
]


@contextlib.contextmanager
def timed_phases():
    """Wrap each phase's function with a timer (this process only), then put it back."""
    import importlib
    import inspect

    times: dict[str, list[float]] = {label: [] for *_, label in PHASES}
    undo = []
    for module_name, path, label in PHASES:
        owner = importlib.import_module(module_name)
        *parents, name = path.split(".")
        for parent in parents:
            owner = getattr(owner, parent)
        original = inspect.getattr_static(owner, name, None)
        if not callable(original):  # gone, or a staticmethod/classmethod: not timed
            continue

        def timer(*args, _original=original, _seen=times[label], **kwargs):
            started = time.perf_counter()
            try:
                return _original(*args, **kwargs)
            finally:
                _seen.append((time.perf_counter() - started) * 1000)

        undo.append((owner, name, name in vars(owner), original))
        setattr(owner, name, timer)
    try:
        yield times
    finally:
        for owner, name, own, original in reversed(undo):
            if own:
                setattr(owner, name, original)
            else:
                delattr(owner, name)


def profile(setup: dict, count: int = 300) -> None:
    """In-process invokes (Django's test client: no gunicorn, the same view): time per
    phase, then cProfile's busiest functions."""
    import cProfile
    import pstats

    from django.test import Client

    client = Client()
    auth = {"HTTP_AUTHORIZATION": f"Bearer {setup['key']}"}
    calls = setup["calls"]

    def run(n: int) -> list[float]:
        elapsed = []
        for i in range(n):
            call = calls[i % 2]
            started = time.perf_counter()
            response = client.post(f"/api/v1/tools/{call['tool']}/invoke", call["invoke"],
                                   content_type="application/json", **auth)  # fmt: skip
            elapsed.append((time.perf_counter() - started) * 1000)
            assert response.status_code == 200, response.content[:300]
        return elapsed

    run(50)
    with timed_phases() as times:
        totals = run(count)
    total = sum(totals) / count
    print(
        f"\nin-process invoke, {count} of them: p50 {p50_p99(totals)[0]:.2f} ms, mean "
        f"{total:.2f} ms; by phase (mean ms per invoke, calls per invoke, share of the mean):"
    )
    top_level = 0.0
    for label, values in times.items():
        spent = sum(values) / count
        if not label.startswith(" "):
            top_level += spent
        print(f"  {label:<46} {spent:>7.2f} {len(values) / count:>5.1f}x {spent / total:>6.0%}")
    rest = total - top_level
    print(f"  {'everything else (Django, DRF, middleware...)':<46} {rest:>7.2f}       "
          f"{rest / total:>6.0%}")  # fmt: skip

    profiler = cProfile.Profile()
    profiler.enable()
    run(count)
    profiler.disable()
    print(f"\ncProfile of {count} more (busiest functions by own time):")
    pstats.Stats(profiler).strip_dirs().sort_stats("tottime").print_stats(20)


def main() -> None:
    warnings.filterwarnings("ignore", "No directory at", UserWarning)  # whitenoise
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--profile", action="store_true", help="then cProfile invokes")
    parser.add_argument(
        "--serve-upstream", nargs=2, metavar=("PORT", "CERT"), help=argparse.SUPPRESS
    )
    args = parser.parse_args()
    if args.serve_upstream:
        serve_upstream(int(args.serve_upstream[0]), args.serve_upstream[1])
        return

    import trustme

    workdir = Path(tempfile.mkdtemp(prefix="bench-invoke-"))
    ca = trustme.CA()
    ca_file = str(workdir / "ca.pem")
    cert_file = str(workdir / "upstream.pem")
    ca.cert_pem.write_to_path(ca_file)
    ca.issue_cert(UPSTREAM_HOST).private_key_and_cert_chain_pem.write_to_path(cert_file)
    access_log = str(workdir / "access.log")
    upstream_port = free_port()
    api_port = free_port()
    os.environ.update(ENV)
    os.environ["OUTBOUND_TEST_CA_BUNDLE"] = ca_file
    os.environ["OUTBOUND_ALLOWED_PORTS"] = f"443,{upstream_port}"

    recreate_database(DATABASE_URL)
    install_resolver()
    import django

    django.setup()
    from django.core.cache import cache
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    cache.clear()
    setup = populate(upstream_port)
    upstream = [sys.executable, __file__, "--serve-upstream", str(upstream_port), cert_file]
    children = [
        subprocess.Popen(upstream, cwd=ROOT, start_new_session=True),
        start_gunicorn(api_port, access_log),
    ]
    try:
        wait_for_port(upstream_port)
        wait_for_port(api_port)
        trips = {call["label"]: round_trips(setup["key"], call) for call in setup["calls"]}
        busy, idle = wake_cost()
        print(
            f"setup: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}; gunicorn "
            f"(1 gthread worker, 4 threads) and the upstream on loopback; PostgreSQL "
            f"{DATABASE_URL.rsplit('/', 1)[1]}, Redis {CACHE_URL}; round trips per invoke: "
            + "; ".join(
                f"{label} {t['sql']} SQL ({t['sql_writes']} writes), {t['redis']} Redis"
                for label, t in trips.items()
            )
            + f"\nwake-up cost on this machine: a PostgreSQL SELECT 1 takes {busy:.3f} ms back "
            f"to back, {idle:.3f} ms after 5 ms idle",
            flush=True,
        )
        measured = measure(api_port, ca_file, setup)
        server = server_times(access_log, {call["label"]: call["tool"] for call in setup["calls"]})
        send = {label: send_times(ids) for label, ids in measured["execution_ids"].items()}
        results = report(measured, server, send)
        results["round_trips_per_invoke"] = trips
        results["select_1_ms"] = {"back_to_back": round(busy, 3), "after_5_ms_idle": round(idle, 3)}
        results["load_average_after"] = round(os.getloadavg()[0], 2)
        print(f"load average after: {results['load_average_after']:.2f}")
        print(json.dumps(results))
        if args.profile:
            profile(setup)
    finally:
        for child in children:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(child.pid, signal.SIGTERM)
            child.wait(timeout=30)
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
