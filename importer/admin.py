"""The dashboard's way in for specs: upload, preview, confirm, progress, result; and
the import history (who imported what, when, with which file, and how it went)."""

from django import forms
from django.conf import settings
from django.contrib import admin
from django.http import Http404, HttpResponseNotAllowed, JsonResponse
from django.shortcuts import redirect
from django.template.defaultfilters import pluralize
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html
from django.utils.text import slugify

from actions.admin import RecordAdmin, can_use_dashboard
from actions.models import SpecSource
from importer.jobs import submit_import
from importer.models import SpecImport


class UploadForm(forms.Form):
    file = forms.FileField(label="OpenAPI file", help_text="JSON or YAML: .json, .yaml, .yml")
    source = forms.SlugField(
        max_length=100,
        help_text="A name for this spec, e.g. billing. Importing into the same source again "
        "replaces what it generated.",
        widget=forms.TextInput(attrs={"list": "known-sources", "autocomplete": "off"}),
    )
    base_url = forms.URLField(
        label="Base URL override",
        required=False,
        assume_scheme="https",
        help_text="Use instead of the spec's servers (or host), e.g. https://api.example.com/v2.",
    )
    skip_invalid = forms.BooleanField(
        label="Skip invalid operations",
        required=False,
        help_text="Import the valid operations and list the others, instead of stopping.",
    )

    def clean_file(self):
        upload = self.cleaned_data["file"]
        if upload.size > settings.IMPORT_MAX_BYTES:
            raise forms.ValidationError(
                f"The file is {upload.size:,} bytes, over the {settings.IMPORT_MAX_BYTES:,}-byte "
                "limit."
            )
        return upload

    def clean_base_url(self):
        url = self.cleaned_data["base_url"]
        if url and not url.lower().startswith("https://"):
            raise forms.ValidationError("Actions only call HTTPS endpoints: use https://.")
        return url


@admin.register(SpecImport)
class SpecImportAdmin(RecordAdmin):
    """The history is read-only: an import is a record of what happened."""

    list_display = [
        "created_at", "source", "job_link", "short_hash", "via", "created_by", "result",
    ]  # fmt: skip
    list_display_links = None
    list_filter = ["status", "via", "dry_run"]
    search_fields = ["filename", "sha256", "source__name"]
    list_select_related = ["source", "created_by", "organization"]
    date_hierarchy = "created_at"

    def get_queryset(self, request):
        return super().get_queryset(request).defer("document")

    def get_urls(self):
        view = self.admin_site.admin_view
        return [
            path("upload/", view(self.upload_view), name="importer_specimport_upload"),
            path("<int:pk>/job/", view(self.job_view), name="importer_specimport_job"),
            path("<int:pk>/confirm/", view(self.confirm_view), name="importer_specimport_confirm"),
            path("<int:pk>/status/", view(self.status_view), name="importer_specimport_status"),
            *super().get_urls(),
        ]

    def change_view(self, request, object_id, form_url="", extra_context=None):
        return redirect("admin:importer_specimport_job", pk=object_id)

    # --- the flow -------------------------------------------------------------------

    def upload_view(self, request):
        if not can_use_dashboard(request.user) or request.user.organization_id is None:
            raise Http404  # superusers import as a member of an organization
        organization = request.user.organization
        form = UploadForm(request.POST or None, request.FILES or None)
        if request.method == "POST" and form.is_valid():
            data = form.cleaned_data
            source, _ = SpecSource.objects.get_or_create(
                organization=organization, name=slugify(data["source"])
            )
            job = submit_import(
                organization,
                source,
                data["file"].read(),
                data["file"].name,
                via=SpecImport.Via.DASHBOARD,
                user=request.user,
                base_url=data["base_url"],
                dry_run=True,
                skip_invalid=data["skip_invalid"],
            )
            return redirect("admin:importer_specimport_job", pk=job.pk)
        context = {
            **self.admin_site.each_context(request),
            "title": "Import from OpenAPI",
            "form": form,
            "sources": SpecSource.objects.for_organization(organization).values_list(
                "name", flat=True
            ),
        }
        return TemplateResponse(request, "admin/importer/specimport/upload.html", context)

    def job_view(self, request, pk: int):
        job = self._job(request, pk)
        diff = job.diff or {}
        context = {
            **self.admin_site.each_context(request),
            "title": "Preview" if job.dry_run else "Import",
            "job": job,
            "diff_sections": [
                ("Added", diff.get("added", [])),
                ("Changed", diff.get("changed", [])),
                ("Removed", diff.get("removed", [])),
            ],
            "superseded": job.confirmations.exists(),
        }
        return TemplateResponse(request, "admin/importer/specimport/job.html", context)

    def confirm_view(self, request, pk: int):
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        preview = self._job(request, pk, with_document=True)
        if not (preview.dry_run and preview.status == SpecImport.Status.SUCCEEDED):
            raise Http404
        existing = preview.confirmations.first()
        if existing is not None:  # a double click confirms once
            return redirect("admin:importer_specimport_job", pk=existing.pk)
        job = submit_import(
            preview.organization,
            preview.source,
            bytes(preview.document),
            preview.filename,
            via=SpecImport.Via.DASHBOARD,
            user=request.user,
            base_url=preview.base_url,
            skip_invalid=preview.skip_invalid,
            preview=preview,
        )
        return redirect("admin:importer_specimport_job", pk=job.pk)

    def status_view(self, request, pk: int):
        job = self._job(request, pk)
        return JsonResponse(
            {
                "status": job.status,
                "done": job.operations_done,
                "total": job.operations_total,
                "finished": job.is_finished,
            }
        )

    def _job(self, request, pk: int, *, with_document: bool = False) -> SpecImport:
        jobs = SpecImport.objects.for_user(request.user).select_related("source", "created_by")
        if not with_document:
            jobs = jobs.defer("document")
        job = jobs.filter(pk=pk).first()
        if job is None:
            raise Http404
        return job

    # --- the history's columns ------------------------------------------------------------

    @admin.display(description="file", ordering="filename")
    def job_link(self, job: SpecImport):
        url = reverse("admin:importer_specimport_job", args=[job.pk])
        return format_html('<a href="{}">{}</a>', url, job.filename)

    @admin.display(description="file hash", ordering="sha256")
    def short_hash(self, job: SpecImport):
        return format_html('<code title="{}">{}</code>', job.sha256, job.sha256[:12])

    @admin.display(description="result", ordering="status")
    def result(self, job: SpecImport):
        if job.status == SpecImport.Status.SUCCEEDED:
            counts = job.counts()
            prefix = "Preview: " if job.dry_run else ""
            warnings = len(job.warnings)
            noted = f"; {warnings} warning{pluralize(warnings)}" if warnings else ""
            return (
                f"{prefix}{counts['created']} created, {counts['updated']} updated, "
                f"{counts['removed']} removed, {counts['unchanged']} unchanged{noted}"
            )
        if job.status == SpecImport.Status.FAILED and job.first_error:
            error = job.first_error
            where = f" {error.get('operation')}" if error.get("operation") else ""
            return f"Failed: {error['code']}{where}"
        return job.get_status_display()
