"""SECURITY.md §5's goals for imports, on the real services: what a killed worker, two
imports at once, and a broker outage do to an organization's actions.

- Crash mid-import: a real worker (Redis, prefork, PostgreSQL) is SIGKILLed at 20
  random checkpoints across a run of imports; never a partial import, never a
  duplicate action, every job ends (a job killed 3 times is failed: a poison pill).
  The seed is printed; IMPORT_CRASH_SEED=<seed> replays the same kills.
- Concurrent imports: imports into one organization take turns on its row lock, so
  the result is always that of some order of them, never a mix.
- Broker outage: a job submitted while the broker is unreachable is kept, pending,
  and the sweeper (celery beat, `manage.py sweep_imports`) sends it again.

The worker-level tests reuse tests/importer/test_import_worker.py's crash worker and
listen on queues of their own; nothing here stops or flushes the shared Redis.
"""

import json
import os
import random
import signal
import threading
import time
from collections import Counter
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

import pytest
from celery.contrib.testing.worker import start_worker
from django.core.cache import cache
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.db import connection, connections
from django.test import Client
from django.utils import timezone

import importer.run
import importer.sync
from actions.models import (
    Action,
    ActionHeader,
    ActionParameter,
    Organization,
    OrganizationAPIKey,
    SpecSource,
)
from importer import jobs
from importer.jobs import (
    GAVE_UP,
    MAX_ATTEMPTS,
    TIMED_OUT,
    runner_lock,
    submit_import,
    sweep_imports,
)
from importer.models import SpecImport
from importer.run import run_import
from importer.tasks import sweep_imports_task
from opencx.celery import app
from tests.conftest import require_service
from tests.factories import make_action, make_organization
from tests.importer.specs import BASE_URL, PETSTORE, petstore, petstore_v2
from tests.importer.test_import_worker import (
    DEADLINE,
    CrashWorker,
    arm,
    gone,
    lines,
    open_write_transactions,
    own_queue,
    require_postgres_and_redis,
    wait_for,
)

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def queue(monkeypatch) -> str:
    """A queue of this test's own, which import tasks are sent to."""
    return own_queue(monkeypatch)


STATUS = SpecImport.Status


def require_postgres() -> None:
    require_service(
        connection.vendor == "postgresql",
        "Locking between imports needs PostgreSQL (set DATABASE_URL=postgres://...)",
    )


# --- specs and what importing them writes --------------------------------------------


def petstore_shop() -> dict:
    """The pet store with its store and user operations moved (12 operations gone, 12
    new ones with the same names) and one summary changed: a switch between it and the
    pet store deletes, updates and inserts actions and their rows."""
    spec = petstore()
    spec["paths"] = {
        path.replace("/store", "/shop").replace("/user", "/account"): item
        for path, item in spec["paths"].items()
    }
    spec["paths"]["/pet"]["post"]["summary"] = "Register a new pet with the store"
    return spec


SPECS = {"petstore": petstore, "shop": petstore_shop, "v2": petstore_v2}
MOVED = 12  # operations petstore_shop moves: each switch inserts this many actions


def document(spec: str) -> bytes:
    return json.dumps(SPECS[spec]()).encode()


def submit(source: SpecSource, spec: str, *, send: bool = False) -> SpecImport:
    """A job importing `spec` into `source`, sent to the worker if `send`."""
    return submit_import(
        source.organization, source, document(spec), f"{spec}.json", via="api",
        base_url=BASE_URL, queue=send,
    )  # fmt: skip


def import_now(source: SpecSource, spec: str) -> SpecImport:
    """Import `spec` into `source` in this process, as `manage.py import_openapi` does."""
    job = run_import(submit(source, spec))
    assert job.status == STATUS.SUCCEEDED, job.errors
    return job


def content(source: SpecSource) -> dict:
    """Everything an import writes into `source`, without ids, as sorted lists: equal
    for two sources holding the same spec, and different if anything is missing,
    left over or there twice."""
    rows = {
        "actions": Action.objects.filter(source=source).values_list(
            "operation_key", "name", "tool_name", "method", "endpoint", "source_fingerprint"
        ),
        "headers": ActionHeader.objects.filter(action__source=source).values_list(
            "action__operation_key", "key", "kind", "value"
        ),
        "parameters": ActionParameter.objects.filter(action__source=source).values_list(
            "action__operation_key", "location", "key", "kind", "value"
        ),
        "tags": Action.tags.through.objects.filter(action__source=source).values_list(
            "action__operation_key", "tag__name"
        ),
    }
    return {name: sorted(query, key=repr) for name, query in rows.items()}


def reference(*specs_by_source: tuple[str, str]) -> list[dict]:
    """What importing these (source, spec) pairs one after the other into a fresh
    organization leaves in each source."""
    org = make_organization()
    sources = []
    for name, spec in specs_by_source:
        source, _ = SpecSource.objects.get_or_create(organization=org, name=name)
        import_now(source, spec)
        sources.append(source)
    return [content(source) for source in sources]


def keys(spec: str) -> set[str]:
    return {
        f"{method.upper()} {path}"
        for path, item in SPECS[spec]()["paths"].items()
        for method in item
        if method in {"get", "put", "post", "delete", "patch"}
    }


# --- crash mid-import: K random kills --------------------------------------------------

KILLS = 20
SEED_VARIABLE = "IMPORT_CRASH_SEED"
UNCOMMITTED = ("insert", "mid-bulk-create", "pre-commit")
COMMITTED = ("post-commit", "pre-ack")


def plan_kills(rng: random.Random, kills: int) -> list[list[str]]:
    """Imports, each with the checkpoints its deliveries are killed at, in order.

    A job is killed 1 to 3 times. Once it has committed (post-commit, pre-ack), only
    pre-ack is left to reach: a redelivery finds the job finished and runs no sync.
    One job, somewhere in the run, is killed MAX_ATTEMPTS times before its commit: a
    poison pill, which its next delivery fails.
    """

    def checkpoint(kinds: tuple[str, ...]) -> str:
        kind = rng.choice(kinds)
        return f"insert:{rng.randint(1, MOVED)}" if kind == "insert" else kind

    poison = [checkpoint(UNCOMMITTED) for _ in range(MAX_ATTEMPTS)]
    plan: list[list[str]] = []
    left = kills - len(poison)
    while left:
        checkpoints: list[str] = []
        for _ in range(min(left, rng.choice([1, 1, 2, 3]))):
            committed = any(c in COMMITTED for c in checkpoints)
            checkpoints.append("pre-ack" if committed else checkpoint(UNCOMMITTED + COMMITTED))
        plan.append(checkpoints)
        left -= len(checkpoints)
    plan.insert(rng.randint(0, len(plan)), poison)
    return plan


def next_stop(control: Path, job: SpecImport, log: Path) -> tuple[str, list[str]]:
    """("paused", [pid, checkpoint]) or, once a delivery of `job` ended, ("ran", record)."""

    def stopped():
        paused = control / "paused"
        text = paused.exists() and paused.read_text()
        if text:
            return "paused", text.split()
        for record in lines(control, "ran"):
            if record[1] == str(job.pk):
                return "ran", record
        return None

    return wait_for(stopped, f"import {job.pk} to stop or end", log=log)


def test_a_worker_killed_at_20_random_checkpoints_never_leaves_a_partial_import(
    queue,
    tmp_path,
):
    require_postgres_and_redis()
    seed = int(os.environ.get(SEED_VARIABLE) or random.randrange(2**32))
    print(f"{SEED_VARIABLE}={seed}")  # shown when the test fails: replays the same kills
    plan = plan_kills(random.Random(seed), KILLS)
    replay = f"(replay with {SEED_VARIABLE}={seed})"
    expected = {spec: reference(("petstore", spec))[0] for spec in ("petstore", "shop")}

    org = make_organization()
    source = SpecSource.objects.create(organization=org, name="petstore")
    import_now(source, "petstore")
    hand_authored = make_action(org, name="Look up an order")
    hand_before = Action.objects.filter(pk=hand_authored.pk).values().get()
    control = tmp_path / "control"
    control.mkdir()
    worker = CrashWorker(queue, control)
    current = "petstore"
    finished: list[tuple[SpecImport, list[str]]] = []
    started = time.monotonic()
    try:
        for checkpoints in plan:
            new = "shop" if current == "petstore" else "petstore"
            arm(control, checkpoints[0])
            job = submit(source, new, send=True)  # committed (autocommit), so queued at once
            committed = False
            for i, checkpoint in enumerate(checkpoints):
                stop, record = next_stop(control, job, worker.log)
                assert stop == "paused", f"{checkpoint} was never reached: {record} {replay}"
                pid, reached = int(record[0]), record[1]
                assert reached == checkpoint
                committed = committed or checkpoint in COMMITTED
                # What anyone reading the database sees while the import is stopped:
                # the old set of actions, or the new one; never a mix.
                visible = new if committed else current
                assert content(source) == expected[visible], f"at {checkpoint} {replay}"
                assert open_write_transactions() == (0 if committed else 1)
                if i + 1 < len(checkpoints):
                    arm(control, checkpoints[i + 1])
                (control / "paused").unlink()
                os.kill(pid, signal.SIGKILL)
                wait_for(lambda pid=pid: gone(pid), "the killed child to exit")
            stop, record = next_stop(control, job, worker.log)
            assert stop == "ran" and len(record) == 3, f"{record} {replay}"

            job.refresh_from_db()
            killed_before_commit = next(
                (i for i, c in enumerate(checkpoints) if c in COMMITTED), len(checkpoints)
            )
            if killed_before_commit >= MAX_ATTEMPTS:  # a poison pill
                assert (job.status, job.attempts) == (STATUS.FAILED, MAX_ATTEMPTS), replay
                assert job.errors[0]["message"] == GAVE_UP
            else:
                assert job.status == STATUS.SUCCEEDED, (job.errors, replay)
                assert job.attempts == killed_before_commit + 1, replay
                current = new
            assert content(source) == expected[current], replay
            finished.append((job, checkpoints))
    finally:
        worker.stop()
    elapsed = time.monotonic() - started

    deliveries = Counter(int(job_id) for _, job_id in lines(control, "started"))
    for job, checkpoints in finished:
        assert deliveries[job.pk] == len(checkpoints) + 1  # each kill, then one that ended
    assert sum(len(checkpoints) for _, checkpoints in finished) == KILLS
    assert Action.objects.filter(pk=hand_authored.pk).values().get() == hand_before
    print(f"{KILLS} kills over {len(finished)} imports in {elapsed:.1f} s: {plan}")


# --- one runner per job, and the poison pill ------------------------------------------


@contextmanager
def paused_in_sync(job: SpecImport):
    """Run `job` in a thread that stops inside its sync's transaction (every write
    done, nothing committed) until the block ends; yields the thread's result list."""
    inside, release, result = threading.Event(), threading.Event(), []
    real_write = importer.sync._write

    def write(*args):
        real_write(*args)
        if threading.current_thread().name == f"import-{job.pk}":
            inside.set()
            release.wait(DEADLINE)

    def run():
        try:
            result.append(run_import(job))
        finally:
            connections.close_all()

    importer.sync._write = write
    thread = threading.Thread(target=run, name=f"import-{job.pk}")
    try:
        thread.start()
        assert inside.wait(DEADLINE), "the import never reached its sync"
        yield result
    finally:
        release.set()
        thread.join(DEADLINE)
        importer.sync._write = real_write


def test_a_second_delivery_of_a_job_being_run_does_nothing(monkeypatch):
    require_postgres()
    monkeypatch.setattr(jobs, "RUNNER_LOCK_WAIT", 0.3)
    org = make_organization()
    source = SpecSource.objects.create(organization=org, name="petstore")
    import_now(source, "petstore")
    job = submit(source, "shop")
    with paused_in_sync(job) as first:
        duplicate = run_import(SpecImport.objects.get(pk=job.pk))
        assert (duplicate.status, duplicate.attempts) == (STATUS.RUNNING, 1)
    (job,) = first
    assert (job.status, job.attempts) == (STATUS.SUCCEEDED, 1), job.errors
    assert (job.created, job.removed) == (MOVED, MOVED)  # the one run's own report
    assert content(source) == reference(("petstore", "shop"))[0]


def test_a_job_started_three_times_is_failed_without_running_again():
    org = make_organization()
    source = SpecSource.objects.create(organization=org, name="petstore")
    import_now(source, "petstore")
    before = content(source)
    job = submit(source, "shop")
    SpecImport.objects.filter(pk=job.pk).update(status=STATUS.RUNNING, attempts=MAX_ATTEMPTS)

    job = run_import(SpecImport.objects.get(pk=job.pk))

    assert (job.status, job.attempts) == (STATUS.FAILED, MAX_ATTEMPTS)
    assert job.errors[0]["code"] == "import_failed"
    assert job.errors[0]["message"] == GAVE_UP
    assert content(source) == before
    # A later redelivery finds it finished.
    assert run_import(SpecImport.objects.get(pk=job.pk)).errors == job.errors


# --- concurrent imports -----------------------------------------------------------------


def run_in_threads(*job_list: SpecImport) -> list[SpecImport]:
    """Run the jobs at once, one thread each, meeting just before their syncs."""
    barrier = threading.Barrier(len(job_list))
    real_sync = importer.run.sync_source
    results: dict[int, SpecImport] = {}

    def sync(*args, **kwargs):
        barrier.wait(DEADLINE)
        return real_sync(*args, **kwargs)

    def run(job):
        try:
            results[job.pk] = run_import(job)
        finally:
            connections.close_all()

    importer.run.sync_source = sync
    try:
        threads = [threading.Thread(target=run, args=(job,)) for job in job_list]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(DEADLINE)
    finally:
        importer.run.sync_source = real_sync
    return [results[job.pk] for job in job_list]


def lock_waiters() -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND wait_event_type = 'Lock'"
        )
        return cursor.fetchone()[0]


def test_an_import_into_a_source_waits_for_the_one_in_progress_then_replaces_it_whole():
    """The second import's sync blocks on the organization's row lock until the first
    commits, then reads what the first wrote: its report is against the shop spec
    (not the pet store both started from), and the source holds exactly v2."""
    require_postgres()
    expected = reference(("petstore", "v2"))[0]
    org = make_organization()
    source = SpecSource.objects.create(organization=org, name="petstore")
    import_now(source, "petstore")
    before = content(source)
    first = submit(source, "shop")
    second = submit(source, "v2")
    result = []

    def run_second():
        try:
            result.append(run_import(second))
        finally:
            connections.close_all()

    with paused_in_sync(first):
        thread = threading.Thread(target=run_second)
        thread.start()
        wait_for(lambda: lock_waiters() == 1, "the second import to wait for the first")
        assert content(source) == before  # neither shows yet
    thread.join(DEADLINE)

    first.refresh_from_db()
    (second,) = result
    assert (first.status, second.status) == (STATUS.SUCCEEDED, STATUS.SUCCEEDED)
    assert content(source) == expected
    # Against what the first import left: the shop's moved operations go, v2's come.
    assert sorted(second.diff["removed"]) == sorted(keys("shop") - keys("v2"))
    assert second.created == len(keys("v2") - keys("shop"))


def test_two_imports_into_one_source_at_once_leave_exactly_one_of_the_specs():
    require_postgres()
    expected = {
        "shop": reference(("petstore", "shop"))[0],
        "v2": reference(("petstore", "v2"))[0],
    }
    org = make_organization()
    source = SpecSource.objects.create(organization=org, name="petstore")
    import_now(source, "petstore")
    for _ in range(3):
        shop, v2 = submit(source, "shop"), submit(source, "v2")
        shop, v2 = run_in_threads(shop, v2)
        assert (shop.status, v2.status) == (STATUS.SUCCEEDED, STATUS.SUCCEEDED)
        last = "shop" if shop.finished_at > v2.finished_at else "v2"
        assert content(source) == expected[last]  # the one that synced last, whole


def test_two_imports_into_two_sources_at_once_both_land_as_if_one_after_the_other():
    """Their operations share names, so the second to sync gets the name variants:
    the result is that of one order or the other, each source whole."""
    require_postgres()
    orders = [
        reference(("pets", "petstore"), ("shop", "shop")),
        reference(("shop", "shop"), ("pets", "petstore"))[::-1],
    ]
    org = make_organization()
    hand_authored = make_action(org, name="Look up an order")
    pets = SpecSource.objects.create(organization=org, name="pets")
    shop = SpecSource.objects.create(organization=org, name="shop")
    results = run_in_threads(submit(pets, "petstore"), submit(shop, "shop"))
    assert [job.status for job in results] == [STATUS.SUCCEEDED, STATUS.SUCCEEDED]
    assert [content(pets), content(shop)] in orders
    assert Action.objects.filter(organization=org).count() == len(keys("petstore")) * 2 + 1
    assert Action.objects.filter(pk=hand_authored.pk).exists()


# --- broker outage and the sweeper ------------------------------------------------------

CLOSED_PORT = "redis://127.0.0.1:1/0"  # nothing listens: a broker that is down


@contextmanager
def broker_unreachable():
    """Send tasks to a closed port (broker_write_url: where tasks are published); the
    shared Redis stays up for everyone else."""
    saved = app.conf.get("broker_write_url")

    def send_to(url: str | None) -> None:
        app.conf["broker_write_url"] = url
        app._pool = None  # as after a fork: the next send connects to the new URL
        app.amqp._producer_pool = None

    send_to(CLOSED_PORT)
    try:
        yield
    finally:
        send_to(saved)


def test_an_import_submitted_while_the_broker_is_down_is_kept_and_the_sweeper_sends_it(
    queue,
    caplog,
):
    require_postgres_and_redis()
    cache.clear()
    org = make_organization()
    _, key = OrganizationAPIKey.objects.create_key(
        organization=org, name="ci", scopes="specs:import"
    )
    with broker_unreachable():
        began = time.monotonic()
        response = Client().post(
            "/api/v1/specs/petstore/import",
            {
                "file": SimpleUploadedFile("petstore.json", PETSTORE.read_bytes()),
                "serverBaseUrl": BASE_URL,
            },
            HTTP_AUTHORIZATION=f"Bearer {key}",
        )
        took = time.monotonic() - began
    assert response.status_code == 202, response.content
    assert response.json()["status"] == "pending"
    assert took < 10  # the caller is not kept waiting on a dead broker
    assert "could not be queued" in caplog.text
    job = SpecImport.objects.get(pk=response.json()["id"])
    assert (job.status, job.attempts) == (STATUS.PENDING, 0)  # kept, not lost

    # A job queued a moment ago is left to its worker...
    assert sweep_imports().requeued == []
    # ...one that has waited long enough is sent again, here through the real Redis.
    with start_worker(app, pool="solo", perform_ping_check=False, queues=[queue]):
        call_command("sweep_imports", "--after=0")
        wait_for(lambda: SpecImport.objects.get(pk=job.pk).is_finished, "the swept import")
    job.refresh_from_db()
    assert (job.status, job.attempts, job.created) == (STATUS.SUCCEEDED, 1, 20), job.errors


def test_celery_beat_sends_the_sweeper_every_minute_and_a_worker_runs_it(queue, settings):
    require_postgres_and_redis()
    schedule = app.conf.beat_schedule["sweep-imports"]
    assert (schedule["task"], schedule["schedule"]) == (sweep_imports_task.name, 60.0)
    settings.IMPORT_REQUEUE_AFTER_SECONDS = 5
    org = make_organization()
    source = SpecSource.objects.create(organization=org, name="petstore")
    with broker_unreachable():
        job = submit(source, "petstore", send=True)
    SpecImport.objects.filter(pk=job.pk).update(queued_at=timezone.now() - timedelta(seconds=6))

    with start_worker(app, pool="solo", perform_ping_check=False, queues=[queue]):
        sweep_imports_task.apply_async(queue=queue)  # what beat sends
        wait_for(lambda: SpecImport.objects.get(pk=job.pk).is_finished, "the swept import")
    job.refresh_from_db()
    assert job.status == STATUS.SUCCEEDED, job.errors


def make_job(status: str, *, attempts: int = 0, waited: int | None, ran: int | None = None):
    """A job queued `waited` seconds ago (None: never queued, run in-process), started
    `ran` seconds ago."""
    org = Organization.objects.first() or make_organization()
    source, _ = SpecSource.objects.get_or_create(organization=org, name="petstore")
    job = submit(source, "petstore")
    now = timezone.now()
    SpecImport.objects.filter(pk=job.pk).update(
        status=status,
        attempts=attempts,
        queued_at=None if waited is None else now - timedelta(seconds=waited),
        started_at=None if ran is None else now - timedelta(seconds=ran),
    )
    return SpecImport.objects.get(pk=job.pk)


@pytest.fixture
def sent(monkeypatch) -> list[int]:
    """The job ids the sweeper hands to the broker (which is not involved here)."""
    sent: list[int] = []
    monkeypatch.setattr(jobs, "enqueue_import", lambda job_id: sent.append(job_id) or True)
    return sent


def test_the_sweeper_sends_a_pending_job_again_once_it_has_waited_and_only_once(sent):
    waiting = make_job(STATUS.PENDING, waited=700)
    make_job(STATUS.PENDING, waited=10)  # on its way to a worker
    make_job(STATUS.SUCCEEDED, waited=700)
    make_job(STATUS.RUNNING, waited=None, ran=700)  # the import_openapi command's own

    assert sweep_imports(after=600).requeued == [waiting.pk]
    assert sweep_imports(after=600).requeued == []  # it has just been sent
    assert sent == [waiting.pk]


def test_the_sweeper_resends_a_running_job_whose_worker_died_and_leaves_a_live_one(sent):
    require_postgres()
    dead = make_job(STATUS.RUNNING, attempts=1, waited=700, ran=700)
    alive = make_job(STATUS.RUNNING, attempts=1, waited=700, ran=700)
    held, release = threading.Event(), threading.Event()

    def hold():  # a worker running `alive`, on a connection of its own
        try:
            with runner_lock(alive.pk):
                held.set()
                release.wait(DEADLINE)
        finally:
            connections.close_all()

    thread = threading.Thread(target=hold)
    thread.start()
    try:
        assert held.wait(DEADLINE)
        assert sweep_imports(after=600).requeued == [dead.pk]
    finally:
        release.set()
        thread.join(DEADLINE)
    assert sent == [dead.pk]
    dead.refresh_from_db()
    assert dead.status == STATUS.RUNNING  # the redelivery claims it again


def test_the_sweeper_fails_a_job_whose_worker_died_three_times(sent):
    require_postgres()
    poison = make_job(STATUS.RUNNING, attempts=MAX_ATTEMPTS, waited=700, ran=700)
    assert sweep_imports(after=600).failed == [poison.pk]
    poison.refresh_from_db()
    assert poison.status == STATUS.FAILED
    assert poison.errors[0]["message"] == GAVE_UP
    assert sent == []


def test_the_sweeper_fails_a_job_running_past_the_time_limit(sent):
    stuck = make_job(STATUS.RUNNING, attempts=1, waited=4000, ran=jobs.IMPORT_HARD_TIME_LIMIT + 1)
    assert sweep_imports(after=600).failed == [stuck.pk]
    stuck.refresh_from_db()
    assert (stuck.status, stuck.errors[0]["message"]) == (STATUS.FAILED, TIMED_OUT)
    assert sent == []


def test_the_sweep_command_reports_a_broker_it_cannot_reach(monkeypatch, capsys):
    monkeypatch.setattr(jobs, "enqueue_import", lambda job_id: False)
    job = make_job(STATUS.PENDING, waited=700)
    with pytest.raises(SystemExit) as exit_:
        call_command("sweep_imports")
    assert exit_.value.code == 1
    assert "could not be reached" in capsys.readouterr().err
    job.refresh_from_db()
    assert job.queued_at < timezone.now() - timedelta(seconds=600)  # tried again next time
