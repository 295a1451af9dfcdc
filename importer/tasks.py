from celery import shared_task

from importer.models import SpecImport
from importer.run import run_import

# At least once: the job is acknowledged only when done, and redelivered if the
# worker dies mid-import. That is safe because the sync is one transaction (a dead
# worker's is rolled back) and a finished job is never run again.
IMPORT_TIME_LIMIT = 30 * 60


@shared_task(
    acks_late=True,
    reject_on_worker_lost=True,
    ignore_result=True,
    soft_time_limit=IMPORT_TIME_LIMIT,
    time_limit=IMPORT_TIME_LIMIT + 60,
)
def run_import_task(import_id: int) -> None:
    job = SpecImport.objects.filter(pk=import_id).select_related("organization", "source").first()
    if job is not None:
        run_import(job)
