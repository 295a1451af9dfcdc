"""A real Celery worker for the crash tests, with checkpoints where a test kills it.
Test-only: the product never imports this module.

    python -m tests.importer.crash_worker QUEUE CONTROL_DIR [VISIBILITY_TIMEOUT]

It is `celery -A opencx worker` (prefork, one child) plus hooks installed in the main
process before the pool forks, so every child (the first, and each one the worker
forks in place of a killed one) inherits them, and the product carries no test hook.

Every delivery of an import task, in the child:

1. appends "PID JOB_ID" to CONTROL_DIR/started;
2. waits while CONTROL_DIR/gate exists (so a test can look at the database between
   a kill and the redelivery);
3. takes CONTROL_DIR/arm, if there is one (deleting it): the checkpoint this delivery
   stops at;
4. runs the import. At the armed checkpoint it writes "PID CHECKPOINT" to
   CONTROL_DIR/paused and sleeps, for the test to SIGKILL it. A delivery that ends
   appends "PID JOB_ID STATUS" to CONTROL_DIR/ran, plus " MISSED CHECKPOINT" if it
   never reached the one it was armed with.

CHECKPOINT, in the order an import reaches them (see SECURITY.md §5):

    insert:N         inside the sync's transaction, once N actions are inserted; the
                     worker inserts BATCH rows per statement, so an N short of the
                     new actions is the middle of their bulk_create
    mid-bulk-create  inside the sync's transaction, after the first statement of the
                     parameters' bulk_create (every action is in, its rows half)
    pre-commit       every write of the sync done, COMMIT not yet sent
    post-commit      the actions and the job's success committed, the task running
    pre-ack          the task returned; the worker's main process, which acknowledges
                     the message when the child reports back, has not heard yet

VISIBILITY_TIMEOUT (seconds) stands in for the hours a real deployment waits before
Redis hands an unacknowledged task to another worker.
"""

import os
import sys
import time
from pathlib import Path

PAUSE_SECONDS = 120  # far longer than any test waits: the test kills it first
GATE_WAIT_SECONDS = 60
BATCH = 2  # rows per INSERT in the sync (the product's 1000 would write them at once)
# How soon the task of a killed child is requeued: the main process waits
# worker_lost_wait (10 s by default) for a result the child may have sent before
# dying, checking every 5 s (AsynPool.timers). Only the delay changes, not what
# happens, and the defaults would make twenty kills take minutes.
LOST_WAIT_SECONDS = 0.2
MAINTAIN_POOL_SECONDS = 0.2

ACTION_INSERT = 'INSERT INTO "actions_action" '
PARAMETER_INSERT = 'INSERT INTO "actions_actionparameter" '


def main(queue: str, control: Path, visibility_timeout: str = "") -> None:
    import django

    django.setup()

    from celery.concurrency.asynpool import AsynPool
    from celery.signals import task_postrun, task_prerun, worker_process_init
    from django.db import connection
    from django.db.backends.base.base import BaseDatabaseWrapper

    import importer.sync
    from importer.models import SpecImport
    from importer.tasks import run_import_task
    from opencx.celery import app

    delivery: dict = {"armed": None, "actions": 0}

    def stop_at(checkpoint: str) -> None:
        if delivery["armed"] != checkpoint:
            return
        (control / "paused.tmp").write_text(f"{os.getpid()} {checkpoint}")
        (control / "paused.tmp").rename(control / "paused")  # never read half-written
        time.sleep(PAUSE_SECONDS)

    def log(name: str, line: str) -> None:
        with (control / name).open("a") as file:
            file.write(line + "\n")

    def count_inserts(execute, sql, params, many, context):
        result = execute(sql, params, many, context)
        armed = delivery["armed"] or ""
        if sql.startswith(ACTION_INSERT):
            delivery["actions"] += context["cursor"].rowcount
            if armed.startswith("insert:") and delivery["actions"] >= int(armed[7:]):
                stop_at(armed)
        elif sql.startswith(PARAMETER_INSERT):
            stop_at("mid-bulk-create")
        return result

    real_commit = BaseDatabaseWrapper.commit

    def commit(self):
        stop_at("pre-commit")
        real_commit(self)
        stop_at("post-commit")

    def on_worker_process_init(**kwargs):
        connection.execute_wrappers.append(count_inserts)

    def on_prerun(sender=None, args=(), **kwargs):
        if sender.name != run_import_task.name:
            return
        log("started", f"{os.getpid()} {args[0]}")
        deadline = time.monotonic() + GATE_WAIT_SECONDS
        while (control / "gate").exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        armed = None
        try:
            armed = (control / "arm").read_text().strip()
            (control / "arm").unlink()
        except FileNotFoundError:
            pass
        delivery.update(armed=armed, actions=0)

    def on_postrun(sender=None, args=(), **kwargs):
        if sender.name != run_import_task.name:
            return
        stop_at("pre-ack")
        status = SpecImport.objects.filter(pk=args[0]).values_list("status", flat=True).first()
        missed = f" MISSED {delivery['armed']}" if delivery["armed"] else ""
        log("ran", f"{os.getpid()} {args[0]} {status}{missed}")
        delivery.update(armed=None)

    BaseDatabaseWrapper.commit = commit
    importer.sync.BATCH = BATCH
    worker_process_init.connect(on_worker_process_init, weak=False)
    task_prerun.connect(on_prerun, weak=False)
    task_postrun.connect(on_postrun, weak=False)

    app.conf.worker_lost_wait = LOST_WAIT_SECONDS
    AsynPool.timers = property(lambda pool: {pool.maintain_pool: MAINTAIN_POOL_SECONDS})
    if visibility_timeout:
        app.conf.broker_transport_options = {
            "visibility_timeout": int(visibility_timeout),
            "unacked_restore_interval": 1,
            "unacked_restore_throttle": 1,
        }
    app.worker_main(
        [
            "worker",
            "--pool=prefork",
            "--concurrency=1",
            f"--queues={queue}",
            f"--hostname=crash-{os.getpid()}@%h",
            "--loglevel=INFO",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
        ]
    )


if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "opencx.settings")
    main(sys.argv[1], Path(sys.argv[2]), *sys.argv[3:])
