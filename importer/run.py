"""Running an import job: load, validate, convert and sync its document.

`run_import` does the work, for the Celery task and the command line alike (jobs are
created by importer.jobs.submit_import). The job row is the source of truth, so the
task can be delivered more than once (at least once: SECURITY.md §5):

- a finished job is left as it is, and "finished" commits in the sync's transaction,
  with the actions it describes: a worker dying after that commit leaves nothing to
  redo, one dying before it leaves the previous actions and an unfinished job;
- one process runs a job at a time (importer.jobs.runner_lock): a second delivery
  while the first runs does nothing;
- a job started MAX_ATTEMPTS times without finishing (its worker keeps dying) is
  failed rather than started again (a poison pill).
"""

import logging
import time

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from importer.convert import convert_document
from importer.drafts import FAILED_TO_PARSE_SPEC, ImportFailed, Problem
from importer.jobs import GAVE_UP, MAX_ATTEMPTS, import_failed, runner_lock
from importer.load import load_document
from importer.models import SpecImport
from importer.sync import sync_source
from importer.validate import validate_document

logger = logging.getLogger(__name__)

NO_OPERATIONS = Problem(
    code=FAILED_TO_PARSE_SPEC,
    message="The spec defines no operations (its paths are empty), so there is nothing to import",
    fix="Check that you uploaded the right file; to remove a source's actions, delete the "
    "source in the dashboard.",
    pointer="#/paths",
)
RESULT_FIELDS = (
    "status", "errors", "warnings", "finished_at", "created", "updated", "removed",
    "unchanged", "diff", "operations_done", "operations_total",
)  # fmt: skip
PROGRESS_INTERVAL = 0.5  # seconds between progress writes
CLAIM_FIELDS = ["status", "attempts", "started_at", "finished_at"]


def run_import(job: SpecImport) -> SpecImport:
    """Run a pending (or interrupted) job to its end; a finished job is left as it is,
    and so is one another process is running."""
    with runner_lock(job.pk) as mine:
        if not mine:
            logger.info("Import %s is being run by another worker; not running it twice", job.pk)
            job.refresh_from_db(fields=CLAIM_FIELDS)
            return job
        return _run(job)


def _run(job: SpecImport) -> SpecImport:
    unfinished = SpecImport.objects.filter(pk=job.pk).exclude(status__in=SpecImport.TERMINAL)
    claimed = unfinished.filter(attempts__lt=MAX_ATTEMPTS).update(
        status=SpecImport.Status.RUNNING, started_at=timezone.now(), attempts=F("attempts") + 1
    )
    job.refresh_from_db(fields=CLAIM_FIELDS)
    if not claimed:
        if job.is_finished:
            return job  # a redelivery of a finished job
        logger.error("Import %s was started %s times without finishing", job.pk, job.attempts)
        return _finish(job, failed=[import_failed(GAVE_UP)])
    try:
        document = load_document(bytes(job.document), job.filename)
        version = validate_document(document)
        conversion = convert_document(
            document, version, base_url=job.base_url or None, progress=_progress_writer(job)
        )
        _record_progress(job, conversion.operations_total, conversion.operations_total)
        if conversion.operations_total == 0:
            # An empty import would remove everything the source generated.
            raise ImportFailed([NO_OPERATIONS])
        if conversion.problems and not job.skip_invalid:
            raise ImportFailed(conversion.problems)
        with transaction.atomic():
            result = sync_source(
                job.organization, job.source, conversion.drafts, dry_run=job.dry_run
            )
            job.created, job.updated, job.removed, job.unchanged = result.counts().values()
            job.diff = result.diff()
            return _finish(job, skipped=conversion.problems, warnings=conversion.warnings)
    except ImportFailed as failure:
        return _finish(job, failed=failure.problems)
    except Exception:
        logger.exception("Import %s crashed", job.pk)
        return _finish(
            job,
            failed=[import_failed("The import stopped on an unexpected error; it has been logged")],
        )


def _finish(
    job: SpecImport,
    *,
    failed: list[Problem] | None = None,
    skipped: list[Problem] | None = None,
    warnings: list[Problem] | None = None,
) -> SpecImport:
    """Record the job's end. A failed job changed nothing, and its errors say why; a
    succeeded one lists, as errors, the operations it skipped and, apart, the warnings
    about those it imported (or, as a dry run, would import)."""
    job.status = SpecImport.Status.FAILED if failed else SpecImport.Status.SUCCEEDED
    job.errors = [problem.as_dict() for problem in (failed or skipped or [])]
    job.warnings = [problem.as_dict() for problem in (warnings or [])]
    job.finished_at = timezone.now()
    # Never rewrite the stored document: it can be tens of megabytes.
    job.save(update_fields=[*RESULT_FIELDS, "updated_at"])
    return job


def _progress_writer(job: SpecImport):
    last = [0.0]

    def progress(done: int, total: int) -> None:
        now = time.monotonic()
        if now - last[0] >= PROGRESS_INTERVAL or done == total:
            last[0] = now
            _record_progress(job, done, total)

    return progress


def _record_progress(job: SpecImport, done: int, total: int) -> None:
    job.operations_done, job.operations_total = done, total
    SpecImport.objects.filter(pk=job.pk).update(operations_done=done, operations_total=total)
