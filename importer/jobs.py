"""An import job's life around the pipeline: submit it, queue it, make sure it ends.

The job row, not the task queue, is the source of truth (SECURITY.md §5):

- `submit_import` commits the job (the document travels with it), then queues it; a
  broker that cannot be reached is logged and the job stays pending, never lost.
- `runner_lock` lets one process at a time run a job: a PostgreSQL advisory lock held
  for the whole run, which dies with the runner's connection, so with its process.
- `sweep_imports` (celery beat runs it every minute; also `manage.py sweep_imports`)
  sends again what the queue lost: pending jobs whose message never reached the
  broker, and running jobs whose worker died without the broker redelivering them.
  It fails the jobs no worker can finish.

Sending a job twice is harmless: a finished job is never run again, and a job that
is being run is not run a second time at once (importer.run.run_import).

Importing this module costs nothing: the pipeline runs in importer.run, on the worker.
"""

import hashlib
import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from functools import partial

from django.conf import settings
from django.db import DatabaseError, connection, transaction
from django.utils import timezone
from kombu.exceptions import OperationalError as BrokerUnreachable

from actions.models import Organization, SpecSource
from importer.drafts import Problem
from importer.models import SpecImport

logger = logging.getLogger(__name__)

# A job started this many times without finishing is given up (a poison pill: an
# import that kills its worker, say through the OOM killer, every time).
MAX_ATTEMPTS = 3
# The hard time limit of importer.tasks.run_import_task: no worker runs a job longer.
IMPORT_TIME_LIMIT = 30 * 60
IMPORT_HARD_TIME_LIMIT = IMPORT_TIME_LIMIT + 60
# Advisory lock "a process is running import job N": (RUNNER_LOCK, N mod 2**31).
RUNNER_LOCK = 0x5EC1
# How long a delivery waits for the runner lock: long enough for PostgreSQL to notice
# that a killed runner's connection is gone, short enough not to idle a worker when
# another runner is alive and the delivery is a duplicate.
RUNNER_LOCK_WAIT = 5.0


def submit_import(
    organization: Organization,
    source: SpecSource,
    document: bytes,
    filename: str,
    *,
    via: str,
    user=None,
    base_url: str = "",
    dry_run: bool = False,
    skip_invalid: bool = False,
    preview: SpecImport | None = None,
    queue: bool = True,
) -> SpecImport:
    job = SpecImport.objects.create(
        preview=preview,
        organization=organization,
        source=source,
        created_by=user,
        via=via,
        filename=filename[:255],
        sha256=hashlib.sha256(document).hexdigest(),
        size=len(document),
        document=document,
        base_url=base_url,
        dry_run=dry_run,
        skip_invalid=skip_invalid,
        queued_at=timezone.now() if queue else None,
    )
    if queue:
        # Only once committed, so a worker never looks for a job that is not there yet.
        transaction.on_commit(partial(enqueue_import, job.pk))
    return job


def enqueue_import(job_id: int) -> bool:
    """Hand a committed job to a worker; False (and logged) if the broker is unreachable.

    The job is kept either way: it stays pending, and sweep_imports sends it again
    once the broker answers. The caller (the API, the dashboard) still gets its id.
    """
    from importer.tasks import run_import_task

    try:
        run_import_task.delay(job_id)
    except BrokerUnreachable:
        logger.exception("Import %s could not be queued; the sweeper will send it again", job_id)
        return False
    return True


# --- one runner per job ------------------------------------------------------------


@contextmanager
def runner_lock(job_id: int) -> Iterator[bool]:
    """Hold "job_id is being run" for the block; yields False if another process does.

    A session-level advisory lock: PostgreSQL releases it when the runner's connection
    closes, so a killed worker never leaves a job locked. Without PostgreSQL (the
    embedded SQLite default runs tasks in-process) there is nothing to exclude.
    """
    if connection.vendor != "postgresql":
        yield True
        return
    key = (RUNNER_LOCK, job_id % 2**31)
    deadline = time.monotonic() + RUNNER_LOCK_WAIT
    while not _try_advisory_lock(key):
        if time.monotonic() >= deadline:
            yield False
            return
        time.sleep(0.1)
    try:
        yield True
    finally:
        try:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_unlock(%s, %s)", key)
        except DatabaseError:
            pass  # the connection is gone, and the lock with it


def _try_advisory_lock(key: tuple[int, int]) -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s, %s)", key)
        return cursor.fetchone()[0]


def live_runners() -> set[int] | None:
    """The jobs (ids mod 2**31) some process is running now; None if it cannot be known."""
    if connection.vendor != "postgresql":
        return None
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT objid::bigint FROM pg_locks WHERE locktype = 'advisory' AND granted "
            "AND objsubid = 2 AND classid = %s::int::oid "
            "AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
            [RUNNER_LOCK],
        )
        return {objid for (objid,) in cursor.fetchall()}


# --- the sweeper -----------------------------------------------------------------


@dataclass
class Sweep:
    """What one sweep did: the jobs it sent again and those it failed, by id."""

    requeued: list[int] = field(default_factory=list)
    failed: list[int] = field(default_factory=list)
    broker_down: bool = False  # it stopped there: the rest wait for the next sweep


def import_failed(message: str) -> Problem:
    """The problem a job that stopped for a reason other than its spec reports."""
    return Problem(
        code="import_failed",
        message=message,
        fix="Try again; if it fails again, contact your administrator.",
    )


GAVE_UP = (
    f"The import was started {MAX_ATTEMPTS} times and its worker stopped each time "
    "(it may need more memory than a worker has)"
)
TIMED_OUT = f"The import ran past its time limit ({IMPORT_HARD_TIME_LIMIT // 60} minutes)"


def sweep_imports(after: int | None = None) -> Sweep:
    """Send again the unfinished jobs the queue lost; fail those no worker can finish.

    Only jobs last queued `after` seconds ago or more (IMPORT_REQUEUE_AFTER_SECONDS by
    default) are looked at, so a job on its way to a worker is left to it; and only
    queued jobs (the import_openapi command runs its own in-process):

    - pending: its message never reached the broker (which was down when the job was
      submitted) or the broker lost it. Sent again.
    - running for `after` seconds with no process holding it: its worker died and
      nothing redelivered it (Redis redelivers only after its visibility timeout,
      hours later). Sent again; failed instead if it was started MAX_ATTEMPTS times.
    - running for longer than the task's hard time limit: no worker is still on it.
      Failed.

    Stops at the first job it cannot send (the broker is down); the next sweep goes on.
    """
    after = settings.IMPORT_REQUEUE_AFTER_SECONDS if after is None else after
    now = timezone.now()
    cutoff = now - timedelta(seconds=after)
    candidates = (
        SpecImport.objects.filter(
            status__in=[SpecImport.Status.PENDING, SpecImport.Status.RUNNING],
            queued_at__lte=cutoff,
        )
        .order_by("queued_at")
        .only("pk", "status", "attempts", "queued_at", "started_at")
    )
    live = live_runners()
    sweep = Sweep()
    for job in candidates:
        if job.status == SpecImport.Status.RUNNING:
            started = job.started_at or job.queued_at
            if started <= now - timedelta(seconds=IMPORT_HARD_TIME_LIMIT):
                if _fail_running(job, TIMED_OUT, now):
                    sweep.failed.append(job.pk)
                continue
            alive = live is None or job.pk % 2**31 in live
            if started > cutoff or alive:
                continue  # its worker is on it (or, without PostgreSQL, may be)
            if job.attempts >= MAX_ATTEMPTS:
                if _fail_running(job, GAVE_UP, now):
                    sweep.failed.append(job.pk)
                continue
        sent = _requeue(job, now)
        if sent is None:
            sweep.broker_down = True
            break
        if sent:
            sweep.requeued.append(job.pk)
    return sweep


def _requeue(job: SpecImport, now) -> bool | None:
    """True once sent; False if another sweeper took the job first; None: broker down."""
    mine = SpecImport.objects.filter(pk=job.pk, status=job.status, queued_at=job.queued_at)
    if not mine.update(queued_at=now):
        return False
    if enqueue_import(job.pk):
        return True
    # Not sent: look at it again on the next sweep.
    SpecImport.objects.filter(pk=job.pk, queued_at=now).update(queued_at=job.queued_at)
    return None


def _fail_running(job: SpecImport, message: str, now) -> bool:
    """Fail the job unless a worker has claimed it again since we looked."""
    return bool(
        SpecImport.objects.filter(
            pk=job.pk, status=SpecImport.Status.RUNNING, started_at=job.started_at
        ).update(
            status=SpecImport.Status.FAILED,
            errors=[import_failed(message).as_dict()],
            finished_at=now,
            updated_at=now,
        )
    )
