"""POST /api/v1/tools/{tool_name}/invoke: the runtime asks us to make a call.

    {"arguments": {...}, "channel": "widget", "contact": "cus_42",
     "context": {"conversation": {"id": "...", "ticket_number": "..."}, ...},
     "headers": {"X-User-Token": "..."}}

The action must be enabled on the channel and visible to the contact, exactly as the
tool list decides (a hidden or unknown tool is a 404, and no request is sent). The
answer is the call's result for the AI: 200 whenever the call was attempted, with
the upstream status and body inside; 422 when the AI's arguments do not fit (the
messages say how to fix them); 400 when the context lacks a value the action needs.

An action that requires a form is not called: invoke answers 202 `awaiting_form` with
the form (fields prefilled from the arguments, a preview of the request), and

    POST /api/v1/form-submissions/{id}/submit   {"values": {...}, "submitted_by": "...",
                                                 "headers": {...}}
    POST /api/v1/form-submissions/{id}/cancel

run it once with the customer's values, or close it (execution/submissions.py).
"""

import io
import logging
import uuid

from django.urls import path
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.exceptions import APIException, NotFound, ValidationError
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response
from rest_framework.views import APIView

from actions import state
from actions.api.auth import APIKeyAuthentication
from actions.api.parsers import JSONParser
from actions.models import Action, APIScope, Channel
from actions.tool_list import contact_segment_ids
from execution.build import ArgumentsInvalid, ContextMissing
from execution.models import FormSubmission
from execution.run import Result, run_action
from execution.submissions import (
    ActionUnavailable,
    FormClosed,
    cancel_form,
    open_form,
    submit_form,
)

logger = logging.getLogger(__name__)


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


FIELD = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "description": "The argument's name, the key in `values`."},
        "label": {"type": "string"},
        "description": {"type": "string"},
        "location": {"type": "string", "enum": ["body", "path", "query", "header"]},
        "required": {"type": "boolean"},
        "schema": {"type": "object", "description": "The argument's JSON Schema."},
        "value": {"description": "The AI's value (null when it gave none)."},
    },
    "required": ["name", "label", "description", "location", "required", "schema", "value"],
}
FORM_OPENED = {
    "type": "object",
    "properties": {
        "status": {"type": "string", "enum": ["awaiting_form"]},
        "submission_id": {"type": "string", "format": "uuid"},
        "expires_at": {"type": "string", "format": "date-time"},
        "fields": {"type": "array", "items": FIELD},
        "preview": {
            "type": "object",
            "description": "The request the form will send (with the AI's values): method, "
            "final URL and body. Headers and secrets are never shown.",
            "properties": {
                "method": {"type": "string"},
                "url": {"type": "string"},
                "body": {},
            },
            "required": ["method", "url", "body"],
        },
    },
    "required": ["status", "submission_id", "expires_at", "fields", "preview"],
}


# Resolved actions, with their header and parameter rows, by (organization, stamp,
# channel, the contact's segments, tool name). Every change an answer depends on (the
# action, its rows, channels and segment restrictions, the contact's membership)
# renews the organization's stamp (actions.signals), so an entry is never stale, only
# no longer asked for. Entries are shared by the threads of this process and only
# read: run_action, build_request and open_form never write to an Action or its rows.
_local_actions = state.LocalLRU(max_entries=2_000)


def visible_action(organization, tool_name: str, channel: str, contact: str, stamp: int) -> Action:
    """The action this contact may use on this channel, by its tool name; else 404.

    `stamp`: the organization's state stamp as the request read it (actions.state),
    read before the database so that what is cached under it is never older than it.
    """
    segment_ids = contact_segment_ids(organization.pk, stamp, contact or None)
    key = (organization.pk, stamp, channel, segment_ids, tool_name)
    return _local_actions.get_or_load(
        key, lambda: _find_visible_action(organization, tool_name, channel, segment_ids)
    )


def _find_visible_action(
    organization, tool_name: str, channel: str, segment_ids: tuple[int, ...]
) -> Action:
    # Gemini's rendering prefixes "_" to a name starting with a digit; the exact name
    # always wins, so a tool really named "_2fa" is never mistaken for "2fa".
    names = [tool_name]
    if tool_name.startswith("_") and tool_name[1:2].isdigit():
        names.append(tool_name[1:])
    candidates = {
        action.tool_name: action
        for action in Action.objects.for_organization(organization)
        .enabled_on(channel)
        .visible_to(segment_ids)
        .filter(tool_name__in=names)
        .prefetch_related("headers", "parameters")
    }
    action = next((candidates[name] for name in names if name in candidates), None)
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
            202: OpenApiResponse(
                FORM_OPENED,
                description="The action requires a form: nothing was sent; show the "
                "customer the form, then submit or cancel it.",
            ),
            400: OpenApiResponse(OpenApiTypes.OBJECT, description="Context lacks a value."),
            404: OpenApiResponse(description="No such tool for this contact and channel."),
            422: OpenApiResponse(OpenApiTypes.OBJECT, description="Arguments do not fit."),
        },
    )
    def post(self, request, tool_name: str):
        data = _INVOKE_PARAMS.run_validation(request.data)  # 400 with every error
        return _invoke(request.user, tool_name, data)

    def dispatch(self, request, *args, **kwargs):
        """The plain case answered here, as the tool list does (actions.api.tools): a
        valid key with the scope, within its budget, a JSON body that fits, a tool this
        contact may use. The same code as DRF's path decides each of those, before
        anything is written or sent; anything else (an error to explain, another
        method or media type) goes through DRF, which answers it."""
        if request.method == "POST":
            response = self._plain_post(request, kwargs.get("tool_name", ""))
            if response is not None:
                response["Allow"] = ", ".join(self.allowed_methods)
                return response
        return super().dispatch(request, *args, **kwargs)

    def _plain_post(self, request, tool_name: str) -> Response | None:
        if request.content_type != "application/json" or request.headers.get(
            "Accept", "*/*"
        ) not in ("*/*", "application/json"):
            return None
        scope = self.required_scopes["POST"]
        try:
            authenticated = APIKeyAuthentication().authenticate_http(request, self.throttle_scope)
            if authenticated is None:
                return None
            holder, key = authenticated
            if scope not in key.scope_set or not holder.within_budget(self.throttle_scope):
                return None
            body = JSONParser().parse(io.BytesIO(request.body), None, {})
            data = _INVOKE_PARAMS.run_validation(body)
            action = visible_action(
                holder.organization, tool_name, data["channel"], data["contact"], holder.stamp
            )
        except APIException:
            return None
        response = _call(action, data, holder.stamp)
        # What DRF's dispatch would add: its (only) renderer, JSON.
        response.accepted_renderer = _JSON
        response.accepted_media_type = _JSON.media_type
        response.renderer_context = {}
        return response


# One instance serves every request: validating reads and writes no state of its own.
_INVOKE_PARAMS = InvokeSerializer()
_JSON = JSONRenderer()


def _invoke(holder, tool_name: str, data: dict) -> Response:
    action = visible_action(
        holder.organization, tool_name, data["channel"], data["contact"], holder.stamp
    )
    return _call(action, data, holder.stamp)


def _call(action: Action, data: dict, stamp: int) -> Response:
    """Run the action (or open its form) with validated invoke parameters.

    `stamp`: the organization's, read with the rate limit (KeyHolder)."""
    try:
        if action.requires_form:
            return _form_response(action, data)
        result = run_action(
            action,
            arguments=data["arguments"],
            channel=data["channel"],
            contact=data["contact"],
            context=data["context"],
            runtime_headers=data["headers"],
            stamp=stamp,
            record_later=True,
        )
    except ArgumentsInvalid as invalid:
        return Response({"arguments": invalid.messages}, status=422)
    except ContextMissing as missing:
        return Response({"context": [str(missing)]}, status=400)
    return ResultResponse(result)


class ResultResponse(Response):
    """A call's result for the AI, whose outcome is written to the execution log once
    the response has been sent: a WSGI server closes a response after writing it, so
    the AI does not wait for that UPDATE. The row was written before the call went out;
    a process that dies between the two leaves it `started`, as one dying mid-call."""

    def __init__(self, result: Result) -> None:
        super().__init__(result.for_ai())
        self.result = result

    def close(self) -> None:
        try:
            self.result.record()
        except Exception:
            logger.exception(
                "could not record the outcome of execution %s", self.result.execution.pk
            )
        finally:
            super().close()


def _form_response(action: Action, data: dict) -> Response:
    opened = open_form(
        action,
        arguments=data["arguments"],
        channel=data["channel"],
        contact=data["contact"],
        context=data["context"],
        runtime_headers=data["headers"],
    )
    if isinstance(opened, Result):  # the action cannot be called as configured
        return Response(opened.for_ai())
    submission = opened.submission
    return Response(
        {
            "status": "awaiting_form",
            "submission_id": str(submission.pk),
            "expires_at": submission.expires_at,
            "fields": opened.fields,
            "preview": submission.preview,
        },
        status=202,
    )


SUBMITTED = {
    "type": "object",
    "properties": {
        "status": {"type": "string", "enum": ["submitted"]},
        "submission_id": {"type": "string", "format": "uuid"},
        "submitted_at": {"type": "string", "format": "date-time"},
        "result": RESULT,
    },
    "required": ["status", "submission_id", "submitted_at", "result"],
}
CLOSED = {
    "type": "object",
    "properties": {
        "detail": {"type": "string"},
        "status": {"type": "string", "enum": FormSubmission.Status.values},
        "submission_id": {"type": "string", "format": "uuid"},
        "execution_id": {
            "type": ["integer", "null"],
            "description": "The call the first submit made (in the execution log).",
        },
    },
    "required": ["detail", "status", "submission_id", "execution_id"],
}
CANCELLED = {
    "type": "object",
    "properties": {
        "status": {"type": "string", "enum": ["cancelled"]},
        "submission_id": {"type": "string", "format": "uuid"},
    },
    "required": ["status", "submission_id"],
}


class SubmitSerializer(serializers.Serializer):
    values = serializers.DictField(
        help_text="Every field of the form as the customer confirmed it, by field name: "
        "the arguments the call is made with.",
    )
    submitted_by = serializers.CharField(
        max_length=255,
        help_text="Who submitted the form (e.g. the contact's ID or name), for the consent record.",
    )
    headers = serializers.DictField(
        child=serializers.CharField(allow_blank=True, max_length=8192),
        required=False,
        default=dict,
        help_text="Per-call headers, as on invoke: sent with this call only; never stored.",
    )


def organization_submission(organization, submission_id: str) -> FormSubmission:
    """The organization's submission with this id; else 404 (another org's included)."""
    try:
        pk = uuid.UUID(submission_id)
    except ValueError:
        pk = None
    submission = (
        FormSubmission.objects.for_organization(organization)
        .select_related("organization")
        .filter(pk=pk)
        .first()
        if pk
        else None
    )
    if submission is None:
        raise NotFound("No such form submission.")
    return submission


def closed_response(submission: FormSubmission) -> Response:
    """409 for a form already submitted or cancelled, 410 for an expired one."""
    details = {
        FormSubmission.Status.SUBMITTED: "This form was already submitted; its call was made "
        "once and is not repeated.",
        FormSubmission.Status.CANCELLED: "This form was cancelled.",
        FormSubmission.Status.EXPIRED: "This form expired; ask the AI to prepare the call again.",
    }
    return Response(
        {
            "detail": details.get(submission.status, "This form is closed."),
            "status": submission.status,
            "submission_id": str(submission.pk),
            "execution_id": submission.execution_id,
        },
        status=410 if submission.status == FormSubmission.Status.EXPIRED else 409,
    )


SUBMISSION_ID = OpenApiParameter(
    "submission_id", OpenApiTypes.UUID, OpenApiParameter.PATH,
    description="The `submission_id` invoke answered with.",
)  # fmt: skip


class FormSubmitView(APIView):
    required_scopes = {"POST": APIScope.TOOLS.value}
    throttle_scope = "tools"
    parser_classes = [JSONParser]

    @extend_schema(
        operation_id="submit_form",
        summary="Submit a form: run the paused call once",
        description="Validates the customer's values against the tool schema, then runs "
        "the call exactly once; a second or concurrent submit never sends another request.",
        request=SubmitSerializer,
        parameters=[SUBMISSION_ID],
        responses={
            200: OpenApiResponse(SUBMITTED, description="The call's result, for the AI."),
            400: OpenApiResponse(OpenApiTypes.OBJECT, description="Context lacks a value."),
            404: OpenApiResponse(description="No such form submission."),
            409: OpenApiResponse(CLOSED, description="Already submitted, or cancelled."),
            410: OpenApiResponse(
                CLOSED, description="Expired, or the action is no longer available."
            ),
            422: OpenApiResponse(OpenApiTypes.OBJECT, description="Values do not fit."),
        },
    )
    def post(self, request, submission_id: str):
        params = SubmitSerializer(data=request.data)
        params.is_valid(raise_exception=True)
        data = params.validated_data
        submission = organization_submission(request.user.organization, submission_id)
        try:
            result = submit_form(
                submission,
                values=data["values"],
                submitted_by=data["submitted_by"],
                runtime_headers=data["headers"],
            )
        except FormClosed as closed:
            return closed_response(closed.submission)
        except ActionUnavailable as gone:
            return Response(
                {
                    "detail": str(gone),
                    "status": submission.status,
                    "submission_id": str(submission.pk),
                    "execution_id": None,
                },
                status=410,
            )
        except ArgumentsInvalid as invalid:
            return Response({"values": invalid.messages}, status=422)
        except ContextMissing as missing:
            raise ValidationError({"context": [str(missing)]}) from None
        submission.refresh_from_db(fields=["submitted_at"])
        return Response(
            {
                "status": FormSubmission.Status.SUBMITTED,
                "submission_id": str(submission.pk),
                "submitted_at": submission.submitted_at,
                "result": result.for_ai(),
            }
        )


class FormCancelView(APIView):
    required_scopes = {"POST": APIScope.TOOLS.value}
    throttle_scope = "tools"

    @extend_schema(
        operation_id="cancel_form",
        summary="Cancel a form: the paused call is never made",
        request=None,
        parameters=[SUBMISSION_ID],
        responses={
            200: OpenApiResponse(CANCELLED, description="Cancelled (cancelling twice is fine)."),
            404: OpenApiResponse(description="No such form submission."),
            409: OpenApiResponse(CLOSED, description="Already submitted."),
            410: OpenApiResponse(CLOSED, description="Expired."),
        },
    )
    def post(self, request, submission_id: str):
        submission = organization_submission(request.user.organization, submission_id)
        try:
            cancelled = cancel_form(submission)
        except FormClosed as closed:
            return closed_response(closed.submission)
        return Response({"status": cancelled.status, "submission_id": str(cancelled.pk)})


app_name = "execution-api"
urlpatterns = [
    path("tools/<str:tool_name>/invoke", InvokeView.as_view(), name="invoke"),
    path(
        "form-submissions/<str:submission_id>/submit",
        FormSubmitView.as_view(),
        name="form-submit",
    ),
    path(
        "form-submissions/<str:submission_id>/cancel",
        FormCancelView.as_view(),
        name="form-cancel",
    ),
]
