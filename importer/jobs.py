"""Submitting an import: record the job (the document travels with it), then queue it.

The task is queued only once the job is committed, so a worker never looks for a job
that is not there yet. Importing this module costs nothing: the pipeline runs in
importer.run, on the worker.
"""

import hashlib

from actions.models import Organization, SpecSource
from importer.models import SpecImport


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
    )
    if queue:
        from importer.tasks import run_import_task

        run_import_task.delay_on_commit(job.pk)
    return job
