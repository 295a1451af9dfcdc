"""A real Celery worker for the crash tests, with hooks that stop an import where a
test wants to kill it. Test-only: the product never imports this module.

    python -m tests.importer.crash_worker QUEUE CONTROL_DIR CHECKPOINT [VISIBILITY_TIMEOUT]

It is `celery -A opencx worker` (prefork, one child) plus monkeypatches applied in
the main process before the pool forks, so every child inherits them and the product
itself carries no test hook.

CHECKPOINT, where the first attempt stops:
    mid-sync      inside sync's transaction, after the old actions are deleted or
                  updated and the new ones, their headers, parameters and tags are
                  inserted, before the tag links and the commit
    after-commit  after the import committed and the job was marked finished,
                  before the task returns (so before the broker is acknowledged)

There the child writes its pid to CONTROL_DIR/paused and sleeps, for the test to
SIGKILL it. Any later attempt appends to CONTROL_DIR/redelivered, waits for
CONTROL_DIR/resume (so the test can look at the database in between), runs, and
appends to CONTROL_DIR/ran.

VISIBILITY_TIMEOUT (seconds) stands in for the hours a real deployment waits before
Redis hands an unacknowledged task to another worker.
"""

import os
import sys
import time
from pathlib import Path

PAUSE_SECONDS = 120  # far longer than any test waits: the test kills it first
RESUME_WAIT_SECONDS = 60


def main(queue: str, control: Path, checkpoint: str, visibility_timeout: str = "") -> None:
    import django

    django.setup()

    import importer.sync
    import importer.tasks
    from opencx.celery import app

    paused, resume = control / "paused", control / "resume"

    def pause() -> None:
        (control / "paused.tmp").write_text(str(os.getpid()))
        (control / "paused.tmp").rename(paused)  # the test never reads half a pid
        time.sleep(PAUSE_SECONDS)

    real_run_import = importer.tasks.run_import
    real_tags = importer.sync._tags

    def run_import(job):
        if paused.exists():  # a redelivery
            with (control / "redelivered").open("a") as log:
                log.write(f"{os.getpid()}\n")
            deadline = time.monotonic() + RESUME_WAIT_SECONDS
            while not resume.exists() and time.monotonic() < deadline:
                time.sleep(0.05)
        result = real_run_import(job)
        if checkpoint == "after-commit" and not paused.exists():
            pause()
        with (control / "ran").open("a") as log:
            log.write(f"{os.getpid()} {result.status}\n")
        return result

    def tags(*args, **kwargs):
        found = real_tags(*args, **kwargs)
        if checkpoint == "mid-sync" and not paused.exists():
            pause()
        return found

    importer.tasks.run_import = run_import
    importer.sync._tags = tags

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
