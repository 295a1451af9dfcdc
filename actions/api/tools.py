"""GET /api/v1/tools: what the agent runtime may offer its model, right now."""

from urllib.parse import parse_qsl

from django.http import HttpResponse, HttpResponseNotModified
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.exceptions import APIException
from rest_framework.views import APIView

from actions.api.auth import APIKeyAuthentication, KeyHolder
from actions.models import Channel
from actions.tool_formats import FORMATS
from actions.tool_list import tool_list_body, tool_list_query


class ToolListParams(serializers.Serializer):
    # Choice fields, so the schema lists the valid values; the messages still name them.
    channel = serializers.ChoiceField(
        choices=Channel.choices,
        error_messages={
            "invalid_choice": "Unknown channel “{input}”. Use one of: "
            + ", ".join(Channel.values)
            + "."
        },
    )
    contact = serializers.CharField(
        required=False,
        allow_blank=True,
        max_length=255,
        help_text="The contact's external ID. Unknown or missing: unrestricted actions only.",
    )
    format = serializers.ChoiceField(
        choices=FORMATS,
        required=False,
        default="openai",
        error_messages={
            "invalid_choice": "Unknown format “{input}”. Use one of: " + ", ".join(FORMATS) + "."
        },
    )


# One instance serves every request: validating reads and writes no state of its own,
# and it spares the runtime's hottest request a copy of the fields each time.
_PARAMS = ToolListParams()

TOOL_LIST_RESPONSE = {
    "type": "object",
    "description": "The provider's request shape: openai, anthropic and mcp "
    '`{"tools": [...]}`; gemini `{"tools": [{"functionDeclarations": [...]}]}`.',
    "properties": {"tools": {"type": "array", "items": {"type": "object"}}},
    "required": ["tools"],
}


class ToolListView(APIView):
    required_scopes = {"GET": "tools"}
    throttle_scope = "tools"

    @extend_schema(
        operation_id="list_tools",
        summary="The tools a contact may use on a channel",
        description="Actions enabled on `channel` and visible to `contact` (unrestricted, "
        "or restricted to any of the contact's segments; an unknown or missing contact "
        "sees unrestricted actions only), rendered for the model provider named by "
        "`format`. Static and magic values never appear. Send the `ETag` back in "
        "`If-None-Match` to get a 304 while the list is unchanged.",
        parameters=[ToolListParams],
        responses={
            200: OpenApiResponse(TOOL_LIST_RESPONSE, description="The tool list."),
            304: OpenApiResponse(description="Unchanged since the ETag sent."),
            400: OpenApiResponse(
                OpenApiTypes.OBJECT,
                description="Unknown channel or format (the message lists the valid ones).",
            ),
        },
    )
    def get(self, request):
        params = _PARAMS.to_internal_value(request.query_params)  # 400 with every error
        return _respond(request, request.user, params)

    def dispatch(self, request, *args, **kwargs):
        """The agent runtime's hottest request, answered here when it is the plain case:
        a valid key with the scope, within its budget, valid parameters. The same code
        as DRF's path decides each of those; anything else (an error to explain, HEAD,
        OPTIONS) goes through DRF, which answers it. DRF's request machinery costs
        more than everything else a warm list does together."""
        if request.method == "GET":
            response = self._plain_get(request)
            if response is not None:
                return response
        return super().dispatch(request, *args, **kwargs)

    def _plain_get(self, request) -> HttpResponse | None:
        try:
            authenticated = APIKeyAuthentication().authenticate_http(request, self.throttle_scope)
            if authenticated is None:
                return None
            holder, key = authenticated
            if self.required_scopes["GET"] not in key.scope_set or not holder.within_budget(
                self.throttle_scope
            ):
                return None
        except APIException:
            return None
        params = _plain_params(request.META.get("QUERY_STRING", ""))
        if params is None:
            return None
        response = _respond(request, holder, params)
        response["Allow"] = _ALLOW
        return response


_ALLOW = "GET, HEAD, OPTIONS"  # what DRF answers (a test compares them)
_CHANNELS = frozenset(Channel.values)
_FORMATS = frozenset(FORMATS)


def _plain_params(query_string: str) -> dict | None:
    """The parameters, when they are what ToolListParams would take unchanged: a valid
    channel and format, a contact ID with nothing to trim or refuse. Else None: DRF's
    path then decides (and explains), as it would have anyway."""
    if len(query_string) > 1024:
        return None
    params = dict(parse_qsl(query_string, keep_blank_values=True))
    channel = params.get("channel")
    fmt = params.get("format", "openai")
    contact = params.get("contact", "")
    if (
        channel not in _CHANNELS
        or fmt not in _FORMATS
        or len(contact) > 255
        or contact != contact.strip()
        or "\x00" in contact
    ):
        return None
    return {"channel": channel, "format": fmt, "contact": contact}


def _respond(request, holder: KeyHolder, params: dict) -> HttpResponse:
    query = tool_list_query(
        holder.organization_id,
        holder.stamp,
        params["channel"],
        params.get("contact") or None,
        params["format"],
    )
    headers = {
        "ETag": query.etag,
        "Cache-Control": "private, no-cache",
        "Vary": "Authorization",
    }
    if query.etag in _etags(request.META.get("HTTP_IF_NONE_MATCH", "")):
        return HttpResponseNotModified(headers=headers)
    return HttpResponse(tool_list_body(query), content_type="application/json", headers=headers)


def _etags(header: str) -> set[str]:
    return {tag.strip().removeprefix("W/") for tag in header.split(",") if tag.strip()}
