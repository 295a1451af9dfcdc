from celery import shared_task

from importer.jobs import IMPORT_HARD_TIME_LIMIT, IMPORT_TIME_LIMIT, sweep_imports
from importer.models import SpecImport
from importer.run import run_import

# At least once: the job is acknowledged only when done, and redelivered if the
# worker dies mid-import. That is safe because the sync is one transaction (a dead
# worker's is rolled back) and a finished job is never run again (SECURITY.md §5).


@shared_task(
    acks_late=True,
    reject_on_worker_lost=True,
    ignore_result=True,
    soft_time_limit=IMPORT_TIME_LIMIT,
    time_limit=IMPORT_HARD_TIME_LIMIT,
)
def run_import_task(import_id: int) -> None:
    # The document (up to IMPORT_MAX_BYTES) is read only if this delivery runs the job.
    job = (
        SpecImport.objects.filter(pk=import_id)
        .select_related("organization", "source")
        .defer("document")
        .first()
    )
    if job is not None:
        run_import(job)


# Sent by celery beat every minute (CELERY_BEAT_SCHEDULE); a missed tick is harmless,
# the next one sweeps the same jobs.
@shared_task(ignore_result=True)
def sweep_imports_task() -> None:
    sweep_imports()
