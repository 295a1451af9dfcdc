"""The dashboard's import history: who imported what, when, and how it went."""

from django.contrib import admin
from django.utils.html import format_html

from actions.admin import OrganizationScopedAdmin
from importer.models import SpecImport


@admin.register(SpecImport)
class SpecImportAdmin(OrganizationScopedAdmin):
    """Read-only: an import is a record of what happened."""

    list_display = [
        "created_at", "source", "filename", "short_hash", "via", "created_by", "result",
    ]  # fmt: skip
    list_filter = ["status", "via", "dry_run"]
    search_fields = ["filename", "sha256", "source__name"]
    list_select_related = ["source", "created_by", "organization"]
    date_hierarchy = "created_at"
    exclude = ["document"]
    readonly_fields = [
        "organization", "source", "created_by", "via", "filename", "sha256", "size", "base_url",
        "dry_run", "skip_invalid", "status", "attempts", "operations_done", "operations_total",
        "created", "updated", "removed", "unchanged", "errors", "diff", "created_at",
        "started_at", "finished_at",
    ]  # fmt: skip

    def get_queryset(self, request):
        return super().get_queryset(request).defer("document")

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    @admin.display(description="file hash", ordering="sha256")
    def short_hash(self, job: SpecImport):
        return format_html('<code title="{}">{}</code>', job.sha256, job.sha256[:12])

    @admin.display(description="result", ordering="status")
    def result(self, job: SpecImport):
        if job.status == SpecImport.Status.SUCCEEDED:
            counts = job.counts()
            prefix = "Dry run: " if job.dry_run else ""
            return (
                f"{prefix}{counts['created']} created, {counts['updated']} updated, "
                f"{counts['removed']} removed, {counts['unchanged']} unchanged"
            )
        if job.status == SpecImport.Status.FAILED and job.first_error:
            error = job.first_error
            where = f" {error.get('operation')}" if error.get("operation") else ""
            return f"Failed: {error['code']}{where}"
        return job.get_status_display()
