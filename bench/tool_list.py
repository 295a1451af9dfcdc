"""Benchmark: the agent runtime's tool list against the framework floor.

    python bench/tool_list.py            # or: make bench-tools

For an organization with 1,000 and then 10,000 actions (50 segments, a contact in
three of them, 20 other organizations alongside), on PostgreSQL and the Redis cache:

- cold: the first request after every cache is emptied (in process, median of 5);
- warm server time: p50 and p99 of 2,000 in-process requests;
- throughput: wrk against gunicorn on loopback, for the tool list and, in the same
  run, for a minimal Django view returning a precomputed body of the same bytes
  (the framework's floor), and the ratio between them: requests/s (five
  interleaved rounds, medians) and requests per CPU-second of the gunicorn
  processes, which is steadier on a shared virtual machine whose wall-clock rates
  swing with other tenants' load.

Needs PostgreSQL and Redis on 127.0.0.1 (override with BENCH_DATABASE_URL and
BENCH_CACHE_URL) and Debian's wrk. It drops and recreates the database
`opencx_bench`.
"""

import json
import os
import random
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench.common import free_port, recreate_database, wait_for_port  # noqa: E402

DATABASE_URL = os.environ.get(
    "BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/opencx_bench"
)
CACHE_URL = os.environ.get("BENCH_CACHE_URL", "redis://127.0.0.1:6379/2")
SIZES = [int(n) for n in os.environ.get("BENCH_SIZES", "1000,10000").split(",")]
WRK_SECONDS = int(os.environ.get("BENCH_WRK_SECONDS", "5"))
WRK_ROUNDS = int(os.environ.get("BENCH_WRK_ROUNDS", "5"))
ENV = {
    "DJANGO_SETTINGS_MODULE": "bench.settings",
    "DATABASE_URL": DATABASE_URL,
    "CACHE_URL": CACHE_URL,
    "SECRET_KEY": "bench-" + "x" * 50,
    "SECRET_ENCRYPTION_KEYS": "G7Z692euxmDO3tFYdF_0ce5dCaLS2bt3A7dGl86sbsU=",
    "ALLOWED_HOSTS": "127.0.0.1,localhost,testserver",
    "LOG_LEVEL": "WARNING",
}
os.environ.update(ENV)


def populate(n_actions: int, tag: str):
    """An organization with n actions (30% restricted to 1-2 of 50 segments)."""
    from django.db import connection

    from actions.models import (
        Action,
        ActionHeader,
        ActionParameter,
        Contact,
        Organization,
        OrganizationAPIKey,
        Segment,
        ValueKind,
    )

    rng = random.Random(n_actions)
    org = Organization.objects.create(name=f"Bench {tag}", slug=f"bench-{tag}")
    segments = Segment.objects.bulk_create(
        Segment(organization=org, name=f"Segment {i}", slug=f"segment-{i}") for i in range(50)
    )
    actions = Action.objects.bulk_create(
        Action(
            organization=org,
            name=f"Look up order kind {i}",
            tool_name=f"look_up_order_kind_{i}",
            description=f"Looks up an order of kind {i} by its number and returns its status "
            "and delivery estimate. Use when the customer asks where their order is.",
            method="POST" if i % 3 == 0 else "GET",
            endpoint=f"https://api.shop.example/v1/kinds/{i}/orders/{{order_id}}",
            body_schema={
                "type": "object",
                "properties": {
                    "reason": {"type": "string", "enum": ["late", "damaged", "other"]},
                    "note": {"type": "string", "maxLength": 500},
                },
                "required": ["reason"],
            }
            if i % 3 == 0
            else None,
            on_sms=i % 2 == 0,
        )
        for i in range(n_actions)
    )
    Action.segments.through.objects.bulk_create(
        Action.segments.through(action_id=a.pk, segment_id=s.pk)
        for a in actions
        if rng.random() < 0.3
        for s in rng.sample(segments, rng.randint(1, 2))
    )
    ActionHeader.objects.bulk_create(
        ActionHeader(action=a, key="Authorization", kind=ValueKind.STATIC,
                     value="Bearer {{global.SHOP_KEY}}")
        for a in actions
    )  # fmt: skip
    ActionParameter.objects.bulk_create(
        ActionParameter(action=a, location="query", key="expand", kind=ValueKind.AI,
                        description="Related objects to include", required=False)
        for a in actions
    )  # fmt: skip
    contact = Contact.objects.create(organization=org, external_id="cus_bench")
    contact.segments.set(segments[:3])
    Organization.bump_tools_version(org.pk)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")  # as autovacuum would soon after such a bulk load
    _, key = OrganizationAPIKey.objects.create_key(organization=org, name="bench", scopes="tools")
    return org, key


def populate_neighbours() -> None:
    for i in range(20):
        populate(100, f"neighbour-{i}")


def clear_caches() -> None:
    from django.core.cache import cache

    from actions import state
    from actions.api.auth import verified_keys
    from actions.tool_list import _local_segments, local_renderings

    cache.clear()
    state.forget_local()
    local_renderings.clear()
    _local_segments.clear()
    verified_keys.clear()


def in_process(key: str) -> dict:
    from django.test import Client

    client = Client()
    url = "/api/v1/tools?channel=widget&contact=cus_bench&format=openai"
    auth = {"HTTP_AUTHORIZATION": f"Bearer {key}"}
    client.get(url, **auth)  # records the key's use, warms imports
    cold = []
    for _ in range(5):
        clear_caches()
        started = time.perf_counter()
        response = client.get(url, **auth)
        cold.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200, response.content[:300]
    body = response.content
    warm = []
    for _ in range(2000):
        started = time.perf_counter()
        client.get(url, **auth)
        warm.append((time.perf_counter() - started) * 1000)
    warm.sort()
    return {
        "tools_listed": len(json.loads(body)["tools"]),
        "body_bytes": len(body),
        "cold_ms_median": statistics.median(cold),
        "cold_ms_max": max(cold),
        "warm_ms_p50": warm[len(warm) // 2],
        "warm_ms_p99": warm[int(len(warm) * 0.99)],
        "body": body,
    }


def wrk(url: str, headers: dict[str, str]) -> dict:
    command = ["wrk", "-t1", "-c8", f"-d{WRK_SECONDS}s", "--latency", url]
    for name, value in headers.items():
        command[1:1] = ["-H", f"{name}: {value}"]
    out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))

    def percentile(label: str) -> float:
        value, unit = re.search(rf"\s{label}%\s+([\d.]+)(us|ms|s)", out).groups()
        return float(value) * {"us": 0.001, "ms": 1, "s": 1000}[unit]

    non_2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    return {
        "rps": rps,
        "requests": int(re.search(r"(\d+) requests in", out).group(1)),
        "p50_ms": percentile("50"),
        "p99_ms": percentile("99"),
        "errors": int(non_2xx.group(1)) if non_2xx else 0,
    }


def server_cpu_seconds(pid: int) -> float:
    """User + system CPU time of gunicorn's master and workers so far (Linux /proc).

    Requests per CPU-second is what a dedicated machine's throughput follows; on a
    shared virtual machine wall-clock rates swing with other tenants' load (steal).
    """
    ticks = os.sysconf("SC_CLK_TCK")
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    total = 0
    for process in [pid, *map(int, children)]:
        fields = Path(f"/proc/{process}/stat").read_text().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / ticks


def throughput(key: str, body: bytes) -> dict:
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as floor_file:
        floor_file.write(body)
    port = free_port()
    env = {**os.environ, "BENCH_FLOOR_BODY": floor_file.name}
    server = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "opencx.wsgi:application", "--bind",
         f"127.0.0.1:{port}", "--workers", "2", "--worker-class", "gthread", "--threads", "4",
         "--log-level", "warning"],
        cwd=ROOT, env=env, start_new_session=True,
    )  # fmt: skip
    try:
        base = f"http://127.0.0.1:{port}"
        wait_for_port(port)
        auth = {"Authorization": f"Bearer {key}"}
        tools_url = f"{base}/api/v1/tools?channel=widget&contact=cus_bench&format=openai"
        wrk(tools_url, auth)  # warm every worker's in-process cache
        # Interleaved rounds, the median of each side: a machine whose load drifts
        # during the run then tilts neither side.
        floors, toolses = [], []

        def measured(url: str, headers: dict[str, str]) -> dict:
            before = server_cpu_seconds(server.pid)
            run = wrk(url, headers)
            run["requests_per_cpu_second"] = run["requests"] / (
                server_cpu_seconds(server.pid) - before
            )
            return run

        for _ in range(WRK_ROUNDS):
            floors.append(measured(f"{base}/bench/floor", {}))
            toolses.append(measured(tools_url, auth))
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
        os.unlink(floor_file.name)
    floor = sorted(floors, key=lambda run: run["rps"])[len(floors) // 2]
    tools = sorted(toolses, key=lambda run: run["rps"])[len(toolses) // 2]
    cpu = [t["requests_per_cpu_second"] / f["requests_per_cpu_second"] for f, t in
           zip(floors, toolses, strict=True)]  # fmt: skip
    return {
        "floor": floor,
        "tools": tools,
        "ratio": tools["rps"] / floor["rps"],
        "rounds": [round(t["rps"] / f["rps"], 3) for f, t in zip(floors, toolses, strict=True)],
        "cpu_ratio": sorted(cpu)[len(cpu) // 2],
        "cpu_rounds": [round(r, 3) for r in cpu],
    }


def main() -> None:
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed: apt-get install wrk")
    recreate_database(DATABASE_URL)
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    populate_neighbours()
    results = {}
    for n in SIZES:
        _, key = populate(n, str(n))
        measured = in_process(key)
        body = measured.pop("body")
        measured["throughput"] = throughput(key, body)
        results[n] = measured
        t = measured["throughput"]
        print(
            f"{n:>6} actions: {measured['tools_listed']} listed, {measured['body_bytes']:,} B | "
            f"cold {measured['cold_ms_median']:.1f} ms (max {measured['cold_ms_max']:.1f}) | "
            f"warm p50 {measured['warm_ms_p50']:.2f} ms p99 {measured['warm_ms_p99']:.2f} ms | "
            f"wrk tools {t['tools']['rps']:.0f} req/s (p50 {t['tools']['p50_ms']:.2f} ms, "
            f"p99 {t['tools']['p99_ms']:.2f} ms) vs floor {t['floor']['rps']:.0f} req/s "
            f"= {t['ratio']:.0%} of the floor (rounds: {t['rounds']}); per server "
            f"CPU-second {t['tools']['requests_per_cpu_second']:.0f} vs "
            f"{t['floor']['requests_per_cpu_second']:.0f} = {t['cpu_ratio']:.0%} of the floor "
            f"(rounds: {t['cpu_rounds']})",
            flush=True,
        )
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
