"""Benchmark: importing OpenAPI specs end to end, on PostgreSQL, against FastMCP.

    python bench/import_spec.py                 # or: make bench-import
    python bench/import_spec.py --no-corpus --no-distinct --runs 1   # a quick look

Every measurement of ours is `importer.run.run_import(job)` (load, validate, convert,
sync into PostgreSQL: what the Celery task and `manage.py import_openapi` run) on a
job made by `submit_import(..., queue=False)`, in a fresh child process of its own,
so that its peak RSS (getrusage's ru_maxrss) is its own. The clock covers
run_import only: not the job's submission (storing the upload), nor Python's start-up.

1. GitHub's spec (13 MB, 1,223 operations): a full import into a fresh organization
   and source, median of --runs; in the same run, interleaved, the peer: FastMCP's
   `FastMCP.from_openapi(openapi_spec=spec, client=AsyncClient(base_url=...))` on the
   same file, timed alone (after json.load and the imports; it neither validates nor
   writes), in a throwaway virtualenv outside the repository (created on first use:
   BENCH_PEER_VENV, default /tmp/bench-peers/.venv), median of --runs. Ratio ours/peer.
2. Linear cost: a synthetic 20,000-operation spec (bench/synthetic_spec.py: GitHub's
   paths copied under renamed paths and operationIds, sharing GitHub's components;
   and, with its own copy of the components per copy, "distinct"), imported fully:
   operations/s against GitHub's, and peak RSS. The peer on the same file, once.
3. Re-import of the unchanged GitHub spec into each source of 1: time, and the rows
   written (INSERT/UPDATE/DELETE row counts seen by the database connection), apart
   from the job's own row (status, progress).
4. The corpus (../shared/specs, INDEX.csv): every file imported with a base URL
   override and skip_invalid into a source and organization of its own (all into one
   organization with --corpus-one-org): how many import whole, in part or not at all,
   operations imported of the total, crashes (an exception, or run_import's
   `import_failed`, shown with the exception it logged); and, for the specs
   openapi-spec-validator 0.9 calls valid (run with handlers refusing every fetch;
   cached in /tmp by file hash, as it takes a minute), the share of their operations
   we import.

Needs PostgreSQL on 127.0.0.1 (override with BENCH_DATABASE_URL); drops and
recreates the database `opencx_bench_import`, and drops it at the end (--keep-db to
keep it). Redis is not needed.
"""

import argparse
import csv
import gc
import hashlib
import json
import logging
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench.common import recreate_database  # noqa: E402

CORPUS = ROOT.parent / "shared" / "specs"
GITHUB = "npm/octokit__openapi/generated/api.github.com.json"
GITHUB_BASE_URL = "https://api.github.com"
CORPUS_OVERRIDE = "https://api.example.com"
SYNTHETIC_OPERATIONS = 20_000
PEER_VENV = Path(
    os.environ.get("BENCH_PEER_VENV") or Path(tempfile.gettempdir()) / "bench-peers" / ".venv"
)
OSV_CACHE = Path(tempfile.gettempdir()) / "bench-import-osv-verdicts.json"
MARKER = "BENCH-RESULT "

DATABASE_URL = os.environ.get(
    "BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/opencx_bench_import"
)
ENV = {
    "DJANGO_SETTINGS_MODULE": "bench.settings",
    "DATABASE_URL": DATABASE_URL,
    "SECRET_KEY": "bench-" + "x" * 50,
    "SECRET_ENCRYPTION_KEYS": "G7Z692euxmDO3tFYdF_0ce5dCaLS2bt3A7dGl86sbsU=",
    "ALLOWED_HOSTS": "127.0.0.1,localhost,testserver",
    "LOG_LEVEL": "WARNING",
}
os.environ.update(ENV)

# Run by the peer's own interpreter: argv = spec path, base URL, MARKER.
PEER_SCRIPT = """
import json, resource, sys, time
spec = json.load(open(sys.argv[1], encoding="utf-8"))
import fastmcp
from fastmcp import FastMCP
try:
    import httpx
except ImportError:  # fastmcp 4 ships its fork, httpx2
    import httpx2 as httpx
client = httpx.AsyncClient(base_url=sys.argv[2])
started = time.perf_counter()
server = FastMCP.from_openapi(openapi_spec=spec, client=client)
seconds = time.perf_counter() - started
import asyncio
tools = len(asyncio.run(server.list_tools()))
print(sys.argv[3] + json.dumps({"seconds": seconds, "tools": tools, "version": fastmcp.__version__,
    "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


# -- helpers ---------------------------------------------------------------------------


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def child_result(command: list[str], env: dict | None = None, timeout: float = 1800) -> dict:
    """Run a child process and return the JSON it printed after MARKER."""
    done = subprocess.run(
        command,
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=timeout,
        cwd=ROOT,
    )
    for line in reversed(done.stdout.splitlines()):
        if line.startswith(MARKER):
            return json.loads(line[len(MARKER) :])
    raise RuntimeError(
        f"{' '.join(command[:4])}... exited {done.returncode} without a result:\n"
        f"{done.stderr[-3000:]}"
    )


def median(values: list[float]) -> float:
    return statistics.median(values)


def spread(values: list[float]) -> str:
    return "[" + " ".join(f"{v:.2f}" for v in values) + "]"


# -- the child: one measured import --------------------------------------------------


def run_child(job_ids: list[int]) -> None:
    """Run each job's import in this process; print timings, phases, rows and RSS."""
    import django

    django.setup()
    from django.db import connection

    import importer.run as run
    from importer.models import SpecImport

    phases: dict[str, float] = {}

    def timed(name, function):
        def wrapper(*args, **kwargs):
            started = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                phases[name] = phases.get(name, 0.0) + time.perf_counter() - started

        return wrapper

    # Wrapped where run_import looks them up; the modules themselves are untouched.
    for name in ("load_document", "validate_document", "convert_document", "sync_source"):
        setattr(run, name, timed(name.split("_")[0], getattr(run, name)))

    rows: dict[str, int] = {}
    collecting: list[float] = []

    def gc_pauses(phase: str, info: dict) -> None:
        if phase == "start":
            collecting.append(time.perf_counter())
        else:
            phases["gc"] = phases.get("gc", 0.0) + time.perf_counter() - collecting.pop()

    gc.callbacks.append(gc_pauses)

    def count_rows(execute, sql, params, many, context):
        result = execute(sql, params, many, context)
        words = sql.lstrip().split(None, 3)
        verb = words[0].upper() if words else ""
        if verb in ("INSERT", "UPDATE", "DELETE"):
            table = (words[2] if verb != "UPDATE" else words[1]).strip('"')
            count = context["cursor"].rowcount
            rows[table] = rows.get(table, 0) + max(count, 0)
        return result

    logged: list[str] = []  # what run_import logged when it caught a crash

    class Remember(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if record.exc_info and record.exc_info[1] is not None:
                error = record.exc_info[1]
                logged.append(" ".join(f"{type(error).__name__}: {error}".split()))

    logging.getLogger("importer.run").addHandler(Remember(logging.ERROR))
    baseline = rss_mb()
    results = []
    for job_id in job_ids:
        job = SpecImport.objects.get(pk=job_id)
        phases.clear()
        rows.clear()
        logged.clear()
        crashed = ""
        started = time.perf_counter()
        try:
            with connection.execute_wrapper(count_rows):
                job = run.run_import(job)
        except Exception as error:  # a crash that escaped run_import itself
            crashed = f"{type(error).__name__}: {error}"[:300]
        crashed = crashed or "; ".join(logged)[:300]
        seconds = time.perf_counter() - started
        if not crashed:
            job.refresh_from_db()
        job_rows = rows.pop(SpecImport._meta.db_table, 0)
        results.append(
            {
                "job": job_id,
                "seconds": seconds,
                "phases": dict(phases),
                "status": job.status,
                "operations_total": job.operations_total,
                **job.counts(),
                "errors": [(e["code"], e["operation"], e["message"][:160]) for e in job.errors],
                "rows": rows.copy(),
                "rows_written": sum(rows.values()),
                "job_row_writes": job_rows,
                "crashed": crashed,
            }
        )
    print(MARKER + json.dumps({"results": results, "rss_mb": rss_mb(), "baseline_mb": baseline}))


def measure_ours(job_ids: list[int], env: dict | None = None) -> dict:
    out = child_result(
        [sys.executable, __file__, "--child", *map(str, job_ids)], env=env, timeout=3600
    )
    for result in out["results"]:
        result["rss_mb"], result["baseline_mb"] = out["rss_mb"], out["baseline_mb"]
    return out


# -- the peer: FastMCP in its own virtualenv ----------------------------------------------


def peer_python() -> Path | None:
    """The peer virtualenv's interpreter, created with fastmcp on first use."""
    python = PEER_VENV / "bin" / "python"
    probe = [str(python), "-c", "import fastmcp"]
    if python.exists() and subprocess.run(probe, capture_output=True).returncode == 0:
        return python
    print(f"Creating the peer virtualenv {PEER_VENV} (pip install fastmcp)...", flush=True)
    try:
        PEER_VENV.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run([sys.executable, "-m", "venv", str(PEER_VENV)], check=True)
        subprocess.run(
            [str(python), "-m", "pip", "install", "--quiet", "fastmcp"],
            check=True,
            capture_output=True,
        )
    except (OSError, subprocess.CalledProcessError) as error:
        print(
            f"  could not ({error}); the peer is skipped. To set it up by hand:\n"
            f"    python3 -m venv {PEER_VENV} && {python} -m pip install fastmcp",
            flush=True,
        )
        return None
    return python


def measure_peer(python: Path, spec: Path, base_url: str) -> dict:
    with tempfile.NamedTemporaryFile("w", suffix=".py", delete=False) as script:
        script.write(PEER_SCRIPT)
    try:
        return child_result([str(python), script.name, str(spec), base_url, MARKER], timeout=600)
    except subprocess.TimeoutExpired:
        return {"seconds": float("inf"), "tools": 0, "version": "?", "rss_mb": 0, "timeout": 600}
    finally:
        os.unlink(script.name)


# -- the parent: jobs, and what to print -----------------------------------------------


def new_job(slug: str, data: bytes, filename: str, **options):
    from actions.models import Organization, SpecSource
    from importer.jobs import submit_import
    from importer.models import SpecImport

    organization, _ = Organization.objects.get_or_create(slug=slug, defaults={"name": slug})
    source, _ = SpecSource.objects.get_or_create(
        organization=organization, name=options.pop("source", "spec")
    )
    return submit_import(
        organization, source, data, filename, via=SpecImport.Via.COMMAND, queue=False, **options
    )


def check_succeeded(result: dict, what: str) -> None:
    if result["status"] != "succeeded" or result["crashed"]:
        sys.exit(f"{what} did not import: {result['crashed'] or result['errors'][:3]}")


def phases_line(result: dict) -> str:
    p = result["phases"]
    rest = result["seconds"] - sum(v for k, v in p.items() if k != "gc")
    return (
        f"load {p.get('load', 0):.2f} + validate {p.get('validate', 0):.2f} + convert "
        f"{p.get('convert', 0):.2f} + sync {p.get('sync', 0):.2f} + job bookkeeping {rest:.2f} s "
        f"(garbage collector pauses in all: {p.get('gc', 0):.2f} s)"
    )


def bench_github(args, peer: Path | None) -> dict:
    path = CORPUS / GITHUB
    data = path.read_bytes()
    print(
        f"\n== 1. GitHub's spec ({len(data) / 1e6:.1f} MB, 1,223 operations): median of "
        f"{args.runs}, each run in a fresh process ==",
        flush=True,
    )
    ours, theirs, jobs = [], [], []
    for i in range(args.runs):
        job = new_job(f"bench-github-{i}", data, path.name, source="github")
        jobs.append(job)
        result = measure_ours([job.pk])["results"][0]
        check_succeeded(result, "GitHub's spec")
        ours.append(result)
        if peer:
            theirs.append(measure_peer(peer, path, GITHUB_BASE_URL))
    ours_s = median([r["seconds"] for r in ours])
    first = ours[0]
    print(
        f"ours  run_import, full (load+validate+convert+sync to PostgreSQL): {ours_s:.2f} s "
        f"{spread([r['seconds'] for r in ours])}, {first['created']:,} actions created, "
        f"{first['rows_written']:,} rows written, peak RSS "
        f"{median([r['rss_mb'] for r in ours]):.0f} MB (process baseline "
        f"{first['baseline_mb']:.0f} MB)"
    )
    print(f"      run 1: {phases_line(first)}")
    print(f"      rows: {first['rows']}")
    figures = {
        "ours_s": ours_s,
        "ops_per_s": first["operations_total"] / ours_s,
        "best_ops_per_s": first["operations_total"] / min(r["seconds"] for r in ours),
        "jobs": jobs,
        "first_rows": first["rows_written"],
    }
    if theirs:
        peer_s = median([t["seconds"] for t in theirs])
        print(
            f"peer  FastMCP {theirs[0]['version']} FastMCP.from_openapi (no validation, no "
            f"writes): {peer_s:.2f} s {spread([t['seconds'] for t in theirs])}, "
            f"{theirs[0]['tools']:,} tools, peak RSS {theirs[0]['rss_mb']:.0f} MB"
        )
        best = min(r["seconds"] for r in ours) / min(t["seconds"] for t in theirs)
        print(
            f"ratio ours / peer = {ours_s / peer_s:.2f} of the medians "
            f"(target <= 1.00: {'met' if ours_s <= peer_s else 'MISSED'}); "
            f"{best:.2f} of the best runs"
        )
        figures["peer_s"] = peer_s
    print(
        f"      GitHub operations/s, ours: {figures['ops_per_s']:,.0f} "
        f"({first['operations_total']:,} operations / {ours_s:.2f} s); best run: "
        f"{figures['best_ops_per_s']:,.0f}",
        flush=True,
    )
    return figures


def bench_reimport(args, github: dict) -> None:
    print("\n== 3. Re-import of the unchanged GitHub spec into the sources of 1 ==", flush=True)
    path = CORPUS / GITHUB
    data = path.read_bytes()
    results = []
    for first_job in github["jobs"]:
        job = new_job(first_job.organization.slug, data, path.name, source="github")
        result = measure_ours([job.pk])["results"][0]
        check_succeeded(result, "The re-import")
        results.append(result)
    seconds = median([r["seconds"] for r in results])
    r = results[0]
    print(
        f"ours  re-import: {seconds:.2f} s {spread([x['seconds'] for x in results])} = "
        f"{seconds / github['ours_s']:.0%} of the first import ({github['ours_s']:.2f} s); "
        f"{r['unchanged']:,} unchanged, {r['created']} created, {r['updated']} updated, "
        f"{r['removed']} removed"
    )
    print(
        f"      rows written: {max(x['rows_written'] for x in results)} (the largest of the "
        f"{len(results)} runs; the first import wrote {github['first_rows']:,}); the job's "
        f"own row: {r['job_row_writes']} updates (status, progress, result)"
    )
    print(f"      run 1: {phases_line(r)}", flush=True)


def bench_synthetic(args, github: dict, peer: Path | None) -> None:
    import orjson

    from bench.synthetic_spec import count_operations, synthetic_spec

    print(
        f"\n== 2. Linear cost: a synthetic {SYNTHETIC_OPERATIONS:,}-operation spec "
        "(bench/synthetic_spec.py) ==",
        flush=True,
    )
    source = orjson.loads((CORPUS / GITHUB).read_bytes())
    variants = [("shared components", False, args.runs)]
    if not args.no_distinct:
        variants.append(("distinct components", True, 1))
    for label, distinct, runs in variants:
        spec = synthetic_spec(source, SYNTHETIC_OPERATIONS, distinct=distinct)
        assert count_operations(spec) == SYNTHETIC_OPERATIONS
        data = orjson.dumps(spec)
        del spec
        # The distinct variant is over the default 50 MB upload limit.
        env = {"IMPORT_MAX_BYTES": str(max(len(data) + 1, 50 * 1024 * 1024))}
        results = []
        for i in range(runs):
            slug = f"bench-synthetic-{int(distinct)}-{i}"
            job = new_job(slug, data, "synthetic.json")
            result = measure_ours([job.pk], env=env)["results"][0]
            check_succeeded(result, f"The synthetic spec ({label})")
            results.append(result)
        seconds = median([r["seconds"] for r in results])
        ops_s = SYNTHETIC_OPERATIONS / seconds
        share = ops_s / github["ops_per_s"]
        best_share = SYNTHETIC_OPERATIONS / min(r["seconds"] for r in results)
        best_share /= github["best_ops_per_s"]
        peak = max(r["rss_mb"] for r in results)
        print(
            f"ours  {label} ({len(data) / 1e6:.1f} MB): {seconds:.2f} s "
            f"{spread([r['seconds'] for r in results])} = {ops_s:,.0f} operations/s = "
            f"{share:.0%} of GitHub's {github['ops_per_s']:,.0f}/s (target >= 80%: "
            f"{'met' if share >= 0.8 else 'MISSED'}; best run against best run: "
            f"{best_share:.0%}); peak RSS {peak:,.0f} MB (target <= "
            f"1,536 MB: {'met' if peak <= 1536 else 'MISSED'}); {results[0]['created']:,} "
            f"actions, {results[0]['rows_written']:,} rows written",
            flush=True,
        )
        print(f"      run 1: {phases_line(results[0])}")
        if peer and not distinct:
            with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as file:
                file.write(data)
            try:
                theirs = measure_peer(peer, Path(file.name), GITHUB_BASE_URL)
            finally:
                os.unlink(file.name)
            print(
                f"peer  FastMCP.from_openapi on the same file, once: {theirs['seconds']:.2f} s "
                f"= {SYNTHETIC_OPERATIONS / theirs['seconds']:,.0f} operations/s, "
                f"{theirs['tools']:,} tools, peak RSS {theirs['rss_mb']:,.0f} MB",
                flush=True,
            )


def osv_verdict(path: str) -> tuple[bool, str, float]:
    """openapi-spec-validator's verdict, with handlers that refuse every fetch."""
    import yaml
    from jsonschema_path import SchemaPath
    from openapi_spec_validator.shortcuts import get_validator_cls

    from importer.drafts import ImportFailed
    from importer.load import load_document

    def deny(uri):
        raise PermissionError(f"refused to fetch {uri}")

    handlers = {"<all_urls>": deny, "file": deny, "http": deny, "https": deny}
    started = time.perf_counter()
    data = Path(path).read_bytes()
    try:
        document = load_document(data, path)
    except ImportFailed:
        document = yaml.safe_load(data)
    try:
        validator = get_validator_cls(document)(SchemaPath.from_dict(document, handlers=handlers))
        first = next(iter(validator.iter_errors()), None)
        verdict = (first is None, "" if first is None else str(first)[:200])
    except Exception as error:  # it raises on unresolvable (external) refs
        verdict = (False, f"{type(error).__name__}: {error}"[:200])
    return (*verdict, time.perf_counter() - started)


def osv_verdicts(rows: list[dict], use_cache: bool) -> dict[str, tuple[bool, str]]:
    from importlib.metadata import version

    tag = f"openapi-spec-validator {version('openapi-spec-validator')}"
    cache = json.loads(OSV_CACHE.read_text()) if use_cache and OSV_CACHE.exists() else {}
    keys = {}
    for row in rows:
        digest = hashlib.sha256((CORPUS / row["file"]).read_bytes()).hexdigest()
        keys[row["file"]] = f"{tag} {digest}"
    missing = [row["file"] for row in rows if keys[row["file"]] not in cache]
    if missing:
        print(
            f"      running {tag} on {len(missing)} files (2 processes; cached in "
            f"{OSV_CACHE} for next time)...",
            flush=True,
        )
        started = time.perf_counter()
        with ProcessPoolExecutor(max_workers=2) as pool:
            paths = [str(CORPUS / file) for file in missing]
            for file, (valid, why, _seconds) in zip(
                missing, pool.map(osv_verdict, paths), strict=True
            ):
                cache[keys[file]] = [valid, why]
        print(f"      ({time.perf_counter() - started:.0f} s)", flush=True)
        OSV_CACHE.write_text(json.dumps(cache))
    return {row["file"]: tuple(cache[keys[row["file"]]]) for row in rows}


def why_short(errors: list[dict]) -> str:
    reasons = sorted({f"{e['code']}: {e['message'][:80]}" for e in errors})
    more = f" (+{len(reasons) - 2} more)" if len(reasons) > 2 else ""
    return "; ".join(reasons[:2]) + more


def bench_corpus(args) -> None:
    from importer.models import SpecImport

    with (CORPUS / "INDEX.csv").open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    print(
        f"\n== 4. The corpus: {len(rows)} files of ../shared/specs, each imported with the "
        f"base URL override {CORPUS_OVERRIDE} and skip_invalid, into a source of its own, "
        f"in {'one organization' if args.corpus_one_org else 'an organization of its own'} ==",
        flush=True,
    )
    jobs = {}
    for row in rows:
        job = new_job(
            "bench-corpus" if args.corpus_one_org else f"bench-corpus-{row['id']}",
            (CORPUS / row["file"]).read_bytes(),
            Path(row["file"]).name,
            source=row["id"],
            base_url=CORPUS_OVERRIDE,
            skip_invalid=True,
        )
        jobs[row["file"]] = job.pk
    started = time.perf_counter()
    try:
        out = measure_ours(list(jobs.values()))
        escaped = {r["job"]: r["crashed"] for r in out["results"] if r["crashed"]}
    except RuntimeError as error:  # the child died: its unfinished jobs are crashes
        print(f"      the corpus child died: {error}")
        escaped = {}
    elapsed = time.perf_counter() - started
    done = {job.pk: job for job in SpecImport.objects.filter(pk__in=jobs.values())}

    whole = partial = failed = imported = total = index_total = 0
    crashes: list[str] = []
    failures: dict[str, list[str]] = {}
    per_file: dict[str, tuple[int, int]] = {}
    errors: dict[str, list[dict]] = {}
    for row in rows:
        job = done[jobs[row["file"]]]
        codes = [error["code"] for error in job.errors]
        errors[row["file"]] = job.errors
        index_total += int(row["operations"])
        if job.pk in escaped or not job.is_finished or "import_failed" in codes:
            why = escaped.get(job.pk) or (job.errors[0]["message"] if job.errors else job.status)
            crashes.append(f"{row['id']} {row['file']}: {why}")
        # A spec refused before conversion counted nothing: INDEX.csv has its count.
        ops = job.operations_total or int(row["operations"])
        got = job.created if job.status == SpecImport.Status.SUCCEEDED else 0
        per_file[row["file"]] = (got, ops)
        imported += got
        total += ops
        if job.status != SpecImport.Status.SUCCEEDED:
            failed += 1
            failures.setdefault(codes[0] if codes else "?", []).append(row["id"])
        elif job.errors:
            partial += 1
        else:
            whole += 1
    why = "; ".join(f"{code}: {' '.join(ids)}" for code, ids in failures.items())
    print(
        f"ours  {len(rows)} specs in {elapsed:.1f} s: {whole} import whole, {partial} in part "
        f"(skip_invalid), {failed} not at all ({why})"
    )
    print(
        f"      operations imported: {imported:,} of {total:,} ({imported / total:.1%}); "
        f"crashes: {len(crashes)}"
        + "".join(f"\n        crash: {crash[:400]}" for crash in crashes)
        + "".join(
            f"\n        not imported: {row['id']} {row['file']}: {why_short(errors[row['file']])}"
            for row in rows
            if done[jobs[row["file"]]].status != SpecImport.Status.SUCCEEDED
            and not any(crash.startswith(row["id"] + " ") for crash in crashes)
        )
    )
    if args.no_osv:
        return
    verdicts = osv_verdicts(rows, use_cache=not args.no_osv_cache)
    valid = [row for row in rows if verdicts[row["file"]][0]]
    ours_of_valid = sum(per_file[row["file"]][0] for row in valid)
    total_of_valid = sum(per_file[row["file"]][1] for row in valid)
    short = [
        f"{row['id']} {row['file']}: {per_file[row['file']][0]}/{per_file[row['file']][1]}, "
        + why_short(errors[row["file"]])
        for row in valid
        if per_file[row["file"]][0] < per_file[row["file"]][1]
    ]
    print(
        f"      openapi-spec-validator calls {len(valid)} of {len(rows)} specs valid "
        f"({total_of_valid:,} operations); we import {ours_of_valid:,} of them "
        f"({ours_of_valid / total_of_valid:.1%}; target: all)"
        + "".join(f"\n        short: {line}" for line in short),
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=3, help="runs per median (default 3)")
    parser.add_argument("--no-peer", action="store_true", help="skip FastMCP")
    parser.add_argument("--no-synthetic", action="store_true", help="skip the 20,000 operations")
    parser.add_argument("--no-distinct", action="store_true", help="skip the distinct variant")
    parser.add_argument("--no-corpus", action="store_true", help="skip the corpus")
    parser.add_argument("--no-osv", action="store_true", help="skip openapi-spec-validator")
    parser.add_argument("--no-osv-cache", action="store_true", help="re-run it on every file")
    parser.add_argument(
        "--corpus-one-org",
        action="store_true",
        help="import the whole corpus into one organization (a source per spec)",
    )
    parser.add_argument("--keep-db", action="store_true", help="keep opencx_bench_import")
    parser.add_argument("--child", nargs="+", type=int, metavar="JOB", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        run_child(args.child)
        return

    peer = None if args.no_peer else peer_python()
    recreate_database(DATABASE_URL)
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connections

    call_command("migrate", verbosity=0)
    print(f"PostgreSQL database {DATABASE_URL.rsplit('/', 1)[1]}; {os.cpu_count()} CPUs")
    try:
        github = bench_github(args, peer)
        if not args.no_synthetic:
            bench_synthetic(args, github, peer)
        bench_reimport(args, github)
        if not args.no_corpus:
            bench_corpus(args)
    finally:
        connections.close_all()
        if not args.keep_db:
            recreate_database(DATABASE_URL, drop_only=True)


if __name__ == "__main__":
    main()
