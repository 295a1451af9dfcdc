"""The import API for customers' CI.

    POST /api/v1/specs/{source}/import   multipart: file, serverBaseUrl, dry_run, skip_invalid
    GET  /api/v1/imports/{id}            status, progress, counts, errors, warnings, diff

The upload is recorded and queued; the response (202) names the job to poll.
"""

from django.conf import settings
from django.urls import path, reverse
from django.utils.text import slugify
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_field
from rest_framework import serializers, status
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.parsers import MultiPartParser
from rest_framework.response import Response
from rest_framework.views import APIView

from actions.models import APIScope, SpecSource
from importer.drafts import FAILED_TO_PARSE_SPEC
from importer.jobs import submit_import
from importer.models import SpecImport


class ImportRequestSerializer(serializers.Serializer):
    file = serializers.FileField(help_text="The OpenAPI document (.json, .yaml or .yml).")
    serverBaseUrl = serializers.CharField(  # the public contract spells it so
        required=False,
        allow_blank=True,
        max_length=2048,
        help_text="Overrides the spec's servers / host: an absolute https:// URL.",
    )
    dry_run = serializers.BooleanField(
        required=False, default=False, help_text="Compute the diff; write nothing."
    )
    skip_invalid = serializers.BooleanField(
        required=False,
        default=False,
        help_text="Import the valid operations and report the invalid ones.",
    )

    def validate_file(self, upload):
        # Checked before anything reads the upload into memory.
        if upload.size > settings.IMPORT_MAX_BYTES:
            raise ValidationError(
                f"{FAILED_TO_PARSE_SPEC}: the file is {upload.size:,} bytes, over the "
                f"{settings.IMPORT_MAX_BYTES:,}-byte limit. Split the spec, or ask your "
                "administrator to raise IMPORT_MAX_BYTES."
            )
        return upload


# Documents the shape of importer.drafts.Problem.as_dict(); the items are served as stored.
class ImportProblemSerializer(serializers.Serializer):
    """One error or warning of an import: its stable code, the operation and the place
    in the spec at fault, what is wrong and how to fix it."""

    code = serializers.CharField(
        help_text="Stable: e.g. invalid_tool_schema, recursive_schema_cut."
    )
    operation = serializers.CharField(
        help_text="`METHOD /path (operationId)`; empty for the whole document."
    )
    pointer = serializers.CharField(help_text="JSON pointer into the spec; may be empty.")
    message = serializers.CharField(help_text="What is wrong, or what to know.")
    fix = serializers.CharField(help_text="How to fix it; may be empty.")


@extend_schema_field(ImportProblemSerializer(many=True))
class ProblemListField(serializers.JSONField):
    """A stored list of problems, as it is (no per-item serializer on a long report)."""


class SpecImportSerializer(serializers.ModelSerializer):
    source = serializers.CharField(source="source.name")
    progress = serializers.SerializerMethodField()
    counts = serializers.SerializerMethodField()
    errors = ProblemListField(
        read_only=True,
        help_text="Why the import failed or, when it succeeded, the operations it skipped; "
        "the first leads.",
    )
    warnings = ProblemListField(
        read_only=True,
        help_text="What to know about operations imported (or, as a dry run, that would "
        "be); never a failure. Empty when the import failed.",
    )

    class Meta:
        model = SpecImport
        fields = [
            "id", "source", "status", "via", "filename", "sha256", "size", "base_url",
            "dry_run", "skip_invalid", "progress", "counts", "errors", "warnings", "diff",
            "created_at", "started_at", "finished_at",
        ]  # fmt: skip

    def get_progress(self, job: SpecImport) -> dict[str, int]:
        return {"done": job.operations_done, "total": job.operations_total}

    def get_counts(self, job: SpecImport) -> dict[str, int]:
        return job.counts()


class SpecImportStartView(APIView):
    required_scopes = {"POST": APIScope.SPECS_IMPORT.value}
    throttle_scope = "import"
    parser_classes = [MultiPartParser]

    @extend_schema(
        operation_id="import_spec",
        summary="Import an OpenAPI spec into a spec source",
        request={"multipart/form-data": ImportRequestSerializer},
        responses={
            202: OpenApiResponse(SpecImportSerializer, description="Queued; poll its URL."),
            400: OpenApiResponse(description="Missing file, file too large, bad source name."),
        },
    )
    def post(self, request, source: str):
        if source != slugify(source) or len(source) > 100:
            raise ValidationError(
                {"source": ["Use letters, digits, '-' and '_' in a source name (e.g. billing)."]}
            )
        params = ImportRequestSerializer(data=request.data)
        params.is_valid(raise_exception=True)
        data = params.validated_data
        organization = request.user.organization
        spec_source, _ = SpecSource.objects.get_or_create(organization=organization, name=source)
        job = submit_import(
            organization,
            spec_source,
            data["file"].read(),
            data["file"].name,
            via=SpecImport.Via.API,
            base_url=data.get("serverBaseUrl", ""),
            dry_run=data["dry_run"],
            skip_invalid=data["skip_invalid"],
        )
        url = reverse("importer-api:import", args=[job.pk])
        return Response(
            SpecImportSerializer(job).data,
            status=status.HTTP_202_ACCEPTED,
            headers={"Location": url},
        )


class SpecImportView(APIView):
    required_scopes = {"GET": APIScope.SPECS_IMPORT.value}
    throttle_scope = "default"

    @extend_schema(
        operation_id="get_import",
        summary="An import's status, progress, counts, errors and warnings",
        responses={200: SpecImportSerializer, 404: OpenApiResponse(description="No such import.")},
    )
    def get(self, request, pk: int):
        job = (
            SpecImport.objects.for_organization(request.user.organization)
            .select_related("source")
            .defer("document")
            .filter(pk=pk)
            .first()
        )
        if job is None:
            raise NotFound("No import with this id in your organization.")
        return Response(SpecImportSerializer(job).data)


app_name = "importer-api"
urlpatterns = [
    path("specs/<str:source>/import", SpecImportStartView.as_view(), name="start"),
    path("imports/<int:pk>", SpecImportView.as_view(), name="import"),
]
