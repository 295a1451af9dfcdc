"""Imports on a real Celery worker through Redis, and what a worker's death does to them.

SECURITY.md §5: the import task is at least once (acks_late, reject_on_worker_lost)
and its sync is one transaction, so a worker killed mid-import leaves the source's
actions exactly as they were (never a partial import), the task is delivered again,
and the job then completes; a job that already finished is not run twice.

The first test runs a worker in a thread (celery.contrib.testing), as
tests/test_celery.py does. The crash tests need a process to SIGKILL, so they run
`celery worker` (prefork) as a subprocess on the test database: see
tests/importer/crash_worker.py for its hooks. Every worker here listens on a queue
of its own, so a stray worker on the same Redis cannot take the test's tasks.
Skipped on a developer's machine without Redis (and, for the crash tests,
PostgreSQL, which a second process can share); required in CI.
"""

import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from urllib.parse import quote

import pytest
from celery.contrib.testing.worker import start_worker
from celery.signals import task_postrun
from django.core.cache import cache
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test import Client

from actions.models import (
    Action,
    ActionHeader,
    ActionParameter,
    OrganizationAPIKey,
    SpecSource,
    Tag,
)
from importer.jobs import submit_import
from importer.models import SpecImport
from importer.run import run_import
from importer.tasks import run_import_task
from opencx.celery import app
from tests.conftest import require_service
from tests.factories import make_action, make_organization
from tests.importer.specs import (
    BASE_URL,
    PETSTORE,
    PETSTORE_KEYS,
    PETSTORE_SIMPLE,
    V2_KEYS,
    petstore_v2,
)
from tests.test_celery import redis_answers, redis_url

pytestmark = pytest.mark.django_db(transaction=True)

ROOT = Path(__file__).resolve().parents[2]
DEADLINE = 30  # seconds any one wait may take; the whole test stays well under 60


def require_redis() -> None:
    url = redis_url()
    require_service(
        url is not None and redis_answers(url) and not app.conf.task_always_eager,
        "Redis is not configured or not answering (set CELERY_BROKER_URL=redis://...)",
    )


def require_postgres_and_redis() -> None:
    require_service(
        connection.vendor == "postgresql",
        "The crash tests share the test database with a worker process: set "
        "DATABASE_URL=postgres://... (an in-memory SQLite test database cannot be shared)",
    )
    require_redis()


def own_queue(monkeypatch) -> str:
    """Send import tasks to a queue of this test's own, and name it."""
    name = f"tests-import-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    task = app.tasks[run_import_task.name]
    monkeypatch.setattr(task, "_exec_options", {**task._get_exec_options(), "queue": name})
    return name


@pytest.fixture
def queue(monkeypatch):
    """A queue of this test's own, which run_import_task is sent to."""
    return own_queue(monkeypatch)


def wait_for(condition, what: str, timeout: float = DEADLINE, log: Path | None = None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.1)
    tail = log.read_text()[-4000:] if log and log.exists() else ""
    pytest.fail(f"timed out after {timeout} s waiting for {what}\n{tail}")


def test_an_import_posted_to_the_api_is_run_by_a_real_worker_through_redis(queue):
    require_redis()
    cache.clear()
    org = make_organization()
    _, key = OrganizationAPIKey.objects.create_key(
        organization=org, name="ci", scopes="specs:import"
    )
    ran: list[tuple[str, bool]] = []
    finished = threading.Event()

    def on_postrun(sender=None, **kwargs):
        if sender.name == run_import_task.name:
            ran.append((sender.request.delivery_info["routing_key"], bool(sender.request.is_eager)))
            finished.set()

    task_postrun.connect(on_postrun, weak=False)
    try:
        with start_worker(app, pool="solo", perform_ping_check=False, queues=[queue]):
            upload = SimpleUploadedFile(PETSTORE_SIMPLE.name, PETSTORE_SIMPLE.read_bytes())
            response = Client().post(
                "/api/v1/specs/petstore/import",
                {"file": upload},
                HTTP_AUTHORIZATION=f"Bearer {key}",
            )
            assert response.status_code == 202, response.content
            # The test thread stays off the database until the worker is done (an
            # in-memory SQLite test database locks whole tables).
            assert finished.wait(DEADLINE), "the worker never ran the import"
    finally:
        task_postrun.disconnect(on_postrun)

    assert ran == [(queue, False)]  # through Redis to the worker, not in-process
    job = SpecImport.objects.get(pk=response.json()["id"])
    assert job.status == "succeeded", job.errors
    assert (job.attempts, job.created, job.operations_done) == (1, 2, 2)
    assert set(Action.objects.filter(organization=org).values_list("operation_key", flat=True)) == {
        "GET /pet/{id}",
        "PUT /pet/{id}",
    }


# --- a worker killed mid-import ----------------------------------------------------


def worker_database_url() -> str:
    s = connection.settings_dict
    credentials = quote(s["USER"] or "", safe="")
    if s["PASSWORD"]:
        credentials += ":" + quote(s["PASSWORD"], safe="")
    return (
        f"postgres://{credentials}@{s['HOST'] or '127.0.0.1'}:{s['PORT'] or 5432}/"
        f"{quote(s['NAME'], safe='')}"
    )


class CrashWorker:
    """`celery worker` in a subprocess (see crash_worker.py), in its own process group."""

    def __init__(self, queue: str, control: Path, visibility_timeout=""):
        self.log = control / f"worker-{len(list(control.glob('worker-*.log')))}.log"
        env = {
            **os.environ,
            "DATABASE_URL": worker_database_url(),
            "DJANGO_SETTINGS_MODULE": "opencx.settings",
        }
        args = [sys.executable, "-m", "tests.importer.crash_worker", queue, str(control)]
        args += [str(visibility_timeout)]
        with self.log.open("w") as log:
            self.process = subprocess.Popen(
                args,
                cwd=ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def kill(self) -> None:
        """SIGKILL the worker and its pool: the machine died."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()


def arm(control: Path, checkpoint: str) -> None:
    """Make the worker's next delivery stop at `checkpoint` (see crash_worker.py)."""
    (control / "arm.tmp").write_text(checkpoint)
    (control / "arm.tmp").rename(control / "arm")


def lines(control: Path, name: str) -> list[list[str]]:
    """The records the worker appended to CONTROL/name, split into words."""
    path = control / name
    return [line.split() for line in path.read_text().splitlines()] if path.exists() else []


def wait_for_pause(control: Path, log: Path) -> tuple[int, str]:
    """The pid of the child stopped at its checkpoint, and the checkpoint."""
    paused = control / "paused"
    text = wait_for(lambda: paused.exists() and paused.read_text(), "the checkpoint", log=log)
    pid, checkpoint = text.split()
    return int(pid), checkpoint


def gone(pid: int) -> bool:
    """True once the process has exited (a zombie waiting for its parent counts)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return True
    return state in {"Z", "X"}


def open_write_transactions() -> int:
    """Other sessions on the test database inside a transaction that has written."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND pid <> pg_backend_pid() AND backend_xid IS NOT NULL"
        )
        return cursor.fetchone()[0]


def snapshot(source: SpecSource) -> dict:
    """Everything an import of `source` writes, in a comparable form."""
    actions = Action.objects.filter(source=source).order_by("operation_key")
    return {
        "actions": [
            (a.pk, a.operation_key, a.name, a.source_fingerprint, tuple(a.channels))
            for a in actions
        ],
        "headers": sorted(
            ActionHeader.objects.filter(action__source=source).values_list(
                "action_id", "key", "value"
            )
        ),
        "parameters": sorted(
            ActionParameter.objects.filter(action__source=source).values_list(
                "action_id", "location", "key"
            )
        ),
        "tags": sorted(
            Action.tags.through.objects.filter(action__source=source).values_list(
                "action_id", "tag__name"
            )
        ),
        "tag names": sorted(
            Tag.objects.filter(organization=source.organization).values_list("name", flat=True)
        ),
    }


@pytest.fixture
def imported_v1(tmp_path):
    """An organization whose "petstore" source holds the pet store's 20 actions, one
    with the admin's channel toggles, next to a hand-authored action."""
    org = make_organization()
    source = SpecSource.objects.create(organization=org, name="petstore")
    job = submit_import(
        org, source, PETSTORE.read_bytes(), PETSTORE.name, via="command", base_url=BASE_URL,
        queue=False,
    )  # fmt: skip
    assert run_import(job).status == "succeeded", job.errors
    toggled = Action.objects.get(source=source, operation_key="POST /pet")
    toggled.channels = ["email", "slack"]
    toggled.save()
    hand_authored = make_action(org, name="Look up an order")
    return source, hand_authored


def submit_v2(source: SpecSource) -> SpecImport:
    document = json.dumps(petstore_v2()).encode()
    return submit_import(
        source.organization, source, document, "petstore.json", via="api", base_url=BASE_URL
    )  # committed at once (autocommit), so queued at once


def assert_v2_imported(source: SpecSource, v1: dict, hand_authored: Action, hand_before: dict):
    after = snapshot(source)
    keys = [key for _, key, *_ in after["actions"]]
    assert len(keys) == len(set(keys)), "an operation was imported twice"
    assert set(keys) == V2_KEYS
    v1_ids = {key: pk for pk, key, *_ in v1["actions"]}
    for pk, key, name, _, channels in after["actions"]:
        if key in PETSTORE_KEYS:
            assert pk == v1_ids[key], f"{key} lost its id"
        if key == "POST /pet":
            assert name == "Register a new pet with the store"
            assert channels == ("email", "slack")  # the admin's toggles survived
    assert Action.objects.filter(pk=hand_authored.pk).values().get() == hand_before


@pytest.mark.parametrize("kill", ["pool child", "whole worker"])
def test_a_worker_killed_mid_sync_leaves_the_old_actions_and_the_redelivered_job_completes(
    imported_v1, queue, tmp_path, kill
):
    """`pool child`: the OOM killer takes the child running the import; the worker
    sees it lost (reject_on_worker_lost), requeues the task, and a fresh child runs it.
    `whole worker`: the machine dies; the task, never acknowledged (acks_late), waits
    in Redis until a restarted worker takes it after the visibility timeout."""
    require_postgres_and_redis()
    source, hand_authored = imported_v1
    v1 = snapshot(source)
    hand_before = Action.objects.filter(pk=hand_authored.pk).values().get()
    control = tmp_path / "control"
    control.mkdir()
    workers = [CrashWorker(queue, control)]
    try:
        arm(control, "mid-bulk-create")
        job = submit_v2(source)
        pid, _ = wait_for_pause(control, workers[0].log)
        assert pid != workers[0].process.pid  # a pool child, not the worker itself
        assert snapshot(source) == v1  # nothing of the new set shows
        assert open_write_transactions() == 1  # yet sync's writes are in, uncommitted

        (control / "gate").touch()  # the redelivery waits until we have looked
        if kill == "pool child":
            os.kill(pid, signal.SIGKILL)
        else:
            workers[0].kill()
        wait_for(lambda: gone(pid), "the killed process to exit")
        wait_for(lambda: open_write_transactions() == 0, "PostgreSQL to roll the sync back")

        assert snapshot(source) == v1  # exactly as before: nothing of the new set
        job.refresh_from_db()
        assert (job.status, job.attempts) == ("running", 1)

        if kill == "whole worker":
            assert len(lines(control, "started")) == 1
            workers.append(CrashWorker(queue, control, visibility_timeout=1))
        wait_for(
            lambda: len(lines(control, "started")) == 2,
            "the task's redelivery",
            log=workers[-1].log,
        )
        (control / "gate").unlink()
        wait_for(
            lambda: SpecImport.objects.get(pk=job.pk).is_finished,
            "the redelivered import to finish",
            log=workers[-1].log,
        )
    finally:
        for worker in workers:
            worker.stop()

    job.refresh_from_db()
    assert job.status == "succeeded", job.errors
    assert job.attempts == 2
    assert (job.created, job.updated, job.removed, job.unchanged) == (1, 1, 1, 18)
    assert_v2_imported(source, v1, hand_authored, hand_before)
    assert len(lines(control, "started")) == 2  # delivered twice in all


def test_a_worker_killed_after_the_commit_does_not_import_twice(imported_v1, queue, tmp_path):
    """Killed after the import committed but before the task was acknowledged, the
    worker gets the task again; the job is finished, so it does nothing."""
    require_postgres_and_redis()
    source, hand_authored = imported_v1
    v1 = snapshot(source)
    hand_before = Action.objects.filter(pk=hand_authored.pk).values().get()
    control = tmp_path / "control"
    control.mkdir()
    worker = CrashWorker(queue, control)
    try:
        arm(control, "post-commit")
        job = submit_v2(source)
        pid, _ = wait_for_pause(control, worker.log)
        job.refresh_from_db()
        # The job's success committed with the actions it describes.
        assert (job.status, job.attempts) == ("succeeded", 1)
        committed = snapshot(source)
        assert committed != v1
        finished_at = job.finished_at

        os.kill(pid, signal.SIGKILL)
        wait_for(lambda: lines(control, "ran"), "the redelivered task to end", log=worker.log)
    finally:
        worker.stop()

    assert len(lines(control, "started")) == 2  # it was delivered again...
    assert [status for _, _, status in lines(control, "ran")] == ["succeeded"]
    job.refresh_from_db()  # ...and did nothing
    assert (job.status, job.attempts, job.finished_at) == ("succeeded", 1, finished_at)
    assert snapshot(source) == committed
    assert_v2_imported(source, v1, hand_authored, hand_before)
