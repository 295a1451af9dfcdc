"""POST /api/v1/tools/{tool_name}/invoke: the runtime asks us to make a call.

    {"arguments": {...}, "channel": "widget", "contact": "cus_42",
     "context": {"conversation": {"id": "...", "ticket_number": "..."}, ...},
     "headers": {"X-User-Token": "..."}}

The action must be enabled on the channel and visible to the contact, exactly as the
tool list decides (a hidden or unknown tool is a 404, and no request is sent). The
answer is the call's result for the AI: 200 whenever the call was attempted, with
the upstream status and body inside; 422 when the AI's arguments do not fit (the
messages say how to fix them); 400 when the context lacks a value the action needs.
"""

from django.urls import path
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.response import Response
from rest_framework.views import APIView

from actions.api.parsers import JSONParser
from actions.models import Action, APIScope, Channel
from actions.tool_list import contact_segment_ids
from execution.build import ArgumentsInvalid, ContextMissing
from execution.run import run_action


class InvokeSerializer(serializers.Serializer):
    arguments = serializers.DictField(required=False, default=dict)
    channel = serializers.ChoiceField(choices=Channel.values)
    contact = serializers.CharField(required=False, allow_blank=True, default="", max_length=255)
    context = serializers.DictField(required=False, default=dict)
    headers = serializers.DictField(
        child=serializers.CharField(allow_blank=True, max_length=8192),
        required=False,
        default=dict,
        help_text="Per-call headers (e.g. the widget's user token): sent with this call only, "
        "overriding same-named global variables; never stored.",
    )


RESULT = {
    "type": "object",
    "properties": {
        "ok": {"type": "boolean"},
        "status": {"type": ["integer", "null"]},
        "body": {},
        "truncated": {"type": "boolean"},
        "error": {"type": ["string", "null"]},
        "execution_id": {"type": "integer"},
    },
    "required": ["ok", "status", "body", "truncated", "error", "execution_id"],
}


def visible_action(organization, tool_name: str, channel: str, contact: str) -> Action:
    """The action this contact may use on this channel, by its tool name; else 404."""
    names = {tool_name, tool_name.removeprefix("_")}  # Gemini's names may gain a leading _
    action = (
        Action.objects.for_organization(organization)
        .enabled_on(channel)
        .visible_to(contact_segment_ids(organization, contact or None))
        .filter(tool_name__in=names)
        .prefetch_related("headers", "parameters")
        .first()
    )
    if action is None:
        raise NotFound(f"No tool named “{tool_name}” for this contact on the {channel} channel.")
    return action


class InvokeView(APIView):
    required_scopes = {"POST": APIScope.TOOLS.value}
    throttle_scope = "tools"
    parser_classes = [JSONParser]

    @extend_schema(
        operation_id="invoke_tool",
        summary="Call a tool for a contact",
        request=InvokeSerializer,
        responses={
            200: OpenApiResponse(RESULT, description="The call's result, for the AI."),
            400: OpenApiResponse(OpenApiTypes.OBJECT, description="Context lacks a value."),
            404: OpenApiResponse(description="No such tool for this contact and channel."),
            422: OpenApiResponse(OpenApiTypes.OBJECT, description="Arguments do not fit."),
        },
    )
    def post(self, request, tool_name: str):
        params = InvokeSerializer(data=request.data)
        params.is_valid(raise_exception=True)
        data = params.validated_data
        action = visible_action(
            request.user.organization, tool_name, data["channel"], data["contact"]
        )
        try:
            result = run_action(
                action,
                arguments=data["arguments"],
                channel=data["channel"],
                contact=data["contact"],
                context=data["context"],
                runtime_headers=data["headers"],
            )
        except ArgumentsInvalid as invalid:
            return Response({"arguments": invalid.messages}, status=422)
        except ContextMissing as missing:
            raise ValidationError({"context": [str(missing)]}) from None
        return Response(result.for_ai())


app_name = "execution-api"
urlpatterns = [path("tools/<str:tool_name>/invoke", InvokeView.as_view(), name="invoke")]
