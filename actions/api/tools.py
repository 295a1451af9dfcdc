"""GET /api/v1/tools: what the agent runtime may offer its model, right now."""

from django.http import HttpResponse, HttpResponseNotModified
from rest_framework import serializers
from rest_framework.exceptions import ValidationError
from rest_framework.views import APIView

from actions.models import Channel
from actions.tool_formats import FORMATS
from actions.tool_list import tool_list_body, tool_list_query


class ToolListParams(serializers.Serializer):
    channel = serializers.CharField(help_text="One of: " + ", ".join(Channel.values) + ".")
    contact = serializers.CharField(
        required=False,
        allow_blank=True,
        max_length=255,
        help_text="The contact's external ID. Unknown or missing: unrestricted actions only.",
    )
    format = serializers.CharField(
        required=False, default="openai", help_text="One of: " + ", ".join(FORMATS) + "."
    )

    def validate_channel(self, value: str) -> str:
        if value not in Channel.values:
            raise serializers.ValidationError(
                f"Unknown channel “{value}”. Use one of: {', '.join(Channel.values)}."
            )
        return value

    def validate_format(self, value: str) -> str:
        if value not in FORMATS:
            raise serializers.ValidationError(
                f"Unknown format “{value}”. Use one of: {', '.join(FORMATS)}."
            )
        return value


class ToolListView(APIView):
    required_scopes = {"GET": "tools"}
    throttle_scope = "tools"

    def get(self, request):
        params = ToolListParams(data=request.query_params)
        if not params.is_valid():
            raise ValidationError(params.errors)
        query = tool_list_query(
            request.user.organization,
            params.validated_data["channel"],
            params.validated_data.get("contact") or None,
            params.validated_data["format"],
        )
        headers = {
            "ETag": query.etag,
            "Cache-Control": "private, no-cache",
            "Vary": "Authorization",
        }
        if query.etag in _etags(request.headers.get("If-None-Match", "")):
            return HttpResponseNotModified(headers=headers)
        return HttpResponse(tool_list_body(query), content_type="application/json", headers=headers)


def _etags(header: str) -> set[str]:
    return {tag.strip().removeprefix("W/") for tag in header.split(",") if tag.strip()}
