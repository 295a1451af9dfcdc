"""An import of an OpenAPI document into a spec source: the job, its progress, its result."""

from django.conf import settings
from django.db import models

from actions.models import Organization, OrganizationQuerySet, SpecSource


class SpecImport(models.Model):
    """One upload of a spec, from the dashboard, the API or the command line.

    The document is kept with the job, so a worker on another machine can run it and
    the history says exactly what was imported. The job row, not the task queue, is
    the source of truth: a redelivered task finds the job finished and does nothing,
    and a job the queue lost is sent again by importer.jobs.sweep_imports.
    """

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"

    class Via(models.TextChoices):
        DASHBOARD = "dashboard", "Dashboard"
        API = "api", "API"
        COMMAND = "command", "Command line"

    TERMINAL = frozenset({Status.SUCCEEDED, Status.FAILED})

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE)
    source = models.ForeignKey(SpecSource, on_delete=models.CASCADE, related_name="imports")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True
    )
    via = models.CharField(max_length=10, choices=Via.choices)
    filename = models.CharField(max_length=255)
    sha256 = models.CharField("file hash (SHA-256)", max_length=64)
    size = models.PositiveBigIntegerField(help_text="Bytes.")
    document = models.BinaryField(editable=False)
    base_url = models.CharField(max_length=2048, blank=True)
    dry_run = models.BooleanField(default=False)
    skip_invalid = models.BooleanField(default=False)
    preview = models.ForeignKey(
        "self",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="confirmations",
        help_text="The dry run this import confirmed, when it came from the dashboard.",
    )

    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    operations_total = models.PositiveIntegerField(default=0)
    operations_done = models.PositiveIntegerField(default=0)
    created = models.PositiveIntegerField(default=0)
    updated = models.PositiveIntegerField(default=0)
    removed = models.PositiveIntegerField(default=0)
    unchanged = models.PositiveIntegerField(default=0)
    # Reports, shown as they are: every problem ({code, operation, pointer, message,
    # fix}), and the per-operation diff ({added, changed, removed: [operation labels]}).
    errors = models.JSONField(default=list, blank=True)
    # What the admin should know about operations this import brought in (or, as a dry
    # run, would): same shape as errors, codes of importer.drafts.WARNING_CODES. Never
    # a reason to fail, and empty on a failed import, which brings nothing in.
    warnings = models.JSONField(default=list, blank=True)
    diff = models.JSONField(default=dict, blank=True)

    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    # When the job was last handed to the task queue: the sweeper sends an unfinished
    # job again once this is old (importer.jobs.sweep_imports). None for a job run in
    # the process that created it (the import_openapi command), which no worker takes.
    queued_at = models.DateTimeField(null=True, blank=True, editable=False)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    objects = OrganizationQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["organization", "-created_at"]),
            # What the sweeper scans every minute: the few unfinished jobs.
            models.Index(
                fields=["queued_at"],
                condition=models.Q(status__in=["pending", "running"]),
                name="importer_specimport_unfinished",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.filename} → {self.source} ({self.get_status_display()})"

    @property
    def is_finished(self) -> bool:
        return self.status in self.TERMINAL

    @property
    def first_error(self) -> dict | None:
        return self.errors[0] if self.errors else None

    def counts(self) -> dict[str, int]:
        return {
            "created": self.created,
            "updated": self.updated,
            "removed": self.removed,
            "unchanged": self.unchanged,
        }
