"""Require form submission: the AI's call waits for the customer to confirm it.

    opened = open_form(action, arguments=..., channel=..., contact=..., context=...)
    result = submit_form(submission, values=..., submitted_by=..., runtime_headers=...)
    cancel_form(submission)

`open_form` builds the request exactly as the call would, so the AI's arguments and
the conversation context are checked now (ArgumentsInvalid, ContextMissing), records a
FormSubmission, and returns the form: one field per tool argument, prefilled with the
AI's value, and a preview of the method, URL and body. Nothing is sent, and the
preview never shows a header or a secret.

`submit_form` runs the call at most once, and exactly once for the first valid
submit. The customer's values are checked first (an invalid form stays open). Then
one short transaction claims the row with a conditional UPDATE (awaiting and not
expired -> submitted) and starts the call's Execution row; it commits, and only then
is the request sent, never inside the transaction. A second submit, or one racing
the first, finds the row already claimed (on PostgreSQL the racing UPDATE waits on
the row lock, then re-checks its condition and matches nothing) and gets FormClosed,
which names the first call's execution.
"""

import contextlib
import re
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from urllib.parse import urlencode, urlsplit

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django.utils.text import capfirst

from actions import state
from actions.models import Action
from actions.tool_list import contact_segment_ids
from actions.tool_schema import ToolSchema
from execution.build import ArgumentsInvalid, ConfigurationError, ContextMissing, build_request
from execution.http import OutboundRequest
from execution.models import Execution, FormSubmission
from execution.run import (
    SOMETHING_WENT_WRONG,
    Masker,
    Result,
    call_context,
    organization_variables,
    run_action,
    start_execution,
)
from execution.secrets import SecretUnavailable


class FormClosed(Exception):
    """The form can no longer be submitted (or cancelled): see `submission.status`."""

    def __init__(self, submission: FormSubmission) -> None:
        self.submission = submission
        super().__init__(f"The form is {submission.status}.")


class ActionUnavailable(Exception):
    """The action behind a form was deleted, or no longer reaches this contact on this
    channel; the form cannot run it."""


@dataclass
class OpenedForm:
    submission: FormSubmission
    fields: list[dict[str, Any]]


def open_form(
    action: Action,
    *,
    arguments: dict[str, Any],
    channel: str,
    contact: str = "",
    context: dict | None = None,
    runtime_headers: dict[str, str] | None = None,
) -> OpenedForm | Result:
    """Pause the call on a form. Raises ArgumentsInvalid or ContextMissing as invoke
    does; an action that cannot be called as configured (a secret missing or not
    bound) gives the failed Result the AI would get from invoke, so no customer fills
    in a form that cannot work. Refusals are logged as refused executions."""
    full_context = call_context(action, channel, contact, context)
    try:
        built = build_request(
            action,
            arguments,
            full_context,
            organization_variables(action.organization_id),
            runtime_headers,
        )
    except (ArgumentsInvalid, ContextMissing) as refusal:
        cause = "arguments" if isinstance(refusal, ArgumentsInvalid) else "context"
        _log_refusal(action, channel, contact, cause, str(refusal), arguments)
        raise
    except (ConfigurationError, SecretUnavailable) as problem:
        cause = "secret_unavailable" if isinstance(problem, SecretUnavailable) else "configuration"
        execution = _log_refusal(action, channel, contact, cause, str(problem), arguments)
        return Result(execution, ok=False, status=None, error=SOMETHING_WENT_WRONG)

    submission = FormSubmission.objects.create(
        organization_id=action.organization_id,
        action=action,
        action_name=action.name,
        tool_name=action.tool_name,
        channel=channel,
        contact_external_id=contact or "",
        arguments=built.arguments,
        context=full_context,
        preview=Masker(built.secrets).value(preview(built.request)),
        expires_at=timezone.now() + timedelta(seconds=settings.FORM_SUBMISSION_TTL_SECONDS),
    )
    return OpenedForm(submission, form_fields(action.tool_schema(), built.arguments))


def submit_form(
    submission: FormSubmission,
    *,
    values: dict[str, Any],
    submitted_by: str,
    runtime_headers: dict[str, str] | None = None,
) -> Result:
    """Run the paused call with the customer's values, once. Raises FormClosed,
    ActionUnavailable, or ArgumentsInvalid / ContextMissing (checked before the claim,
    so the form stays open for corrected values)."""
    now = timezone.now()
    if submission.status != FormSubmission.Status.AWAITING or submission.expires_at <= now:
        raise FormClosed(_current(submission.pk, now))
    action = _available_action(submission)
    # Check the customer's values before claiming; a configuration problem is left to
    # the run, which logs it and answers "Something went wrong", as invoke does.
    with contextlib.suppress(ConfigurationError, SecretUnavailable):
        build_request(
            action, values, submission.context, organization_variables(action.organization_id),
            runtime_headers,
        )  # fmt: skip

    # The run builds from the same action object and inputs as the check above, so it
    # refuses nothing the check let through.
    execution = _claim(submission, action, values, submitted_by, now)
    return run_action(
        action,
        arguments=values,
        channel=submission.channel,
        contact=submission.contact_external_id,
        context=submission.context,
        runtime_headers=runtime_headers,
        execution=execution,
    )


def cancel_form(submission: FormSubmission) -> FormSubmission:
    """Close an awaiting form without running it; cancelling twice is harmless.
    Raises FormClosed when it was submitted or has expired."""
    now = timezone.now()
    FormSubmission.objects.filter(
        pk=submission.pk, status=FormSubmission.Status.AWAITING, expires_at__gt=now
    ).update(status=FormSubmission.Status.CANCELLED, updated_at=now)
    current = _current(submission.pk, now)
    if current.status != FormSubmission.Status.CANCELLED:
        raise FormClosed(current)
    return current


def _claim(
    submission: FormSubmission, action: Action, values: dict, submitted_by: str, now
) -> Execution:
    with transaction.atomic():
        claimed = FormSubmission.objects.filter(
            pk=submission.pk, status=FormSubmission.Status.AWAITING, expires_at__gt=now
        ).update(
            status=FormSubmission.Status.SUBMITTED, submitted_at=now,
            submitted_by=submitted_by, submitted_values=values, updated_at=now,
        )  # fmt: skip
        if claimed:
            execution = start_execution(
                action, channel=submission.channel, contact=submission.contact_external_id
            )
            FormSubmission.objects.filter(pk=submission.pk).update(execution=execution)
    if not claimed:
        raise FormClosed(_current(submission.pk, now))
    return execution


def _current(pk, now) -> FormSubmission:
    """The row as it stands, an awaiting one past its expiry marked expired."""
    current = FormSubmission.objects.get(pk=pk)
    if current.status == FormSubmission.Status.AWAITING and current.expires_at <= now:
        FormSubmission.objects.filter(pk=pk, status=FormSubmission.Status.AWAITING).update(
            status=FormSubmission.Status.EXPIRED, updated_at=now
        )
        current = FormSubmission.objects.get(pk=pk)
    return current


def _available_action(submission: FormSubmission) -> Action:
    """The action, checked again as invoke checks it: enabled on the channel, visible
    to the contact."""
    if submission.action_id is None:
        raise ActionUnavailable("The action behind this form was deleted.")
    organization = submission.organization
    action = (
        Action.objects.for_organization(organization)
        .enabled_on(submission.channel)
        .visible_to(
            contact_segment_ids(
                organization.pk,
                state.current(organization.pk),
                submission.contact_external_id or None,
            )
        )
        .filter(pk=submission.action_id)
        .prefetch_related("headers", "parameters")
        .first()
    )
    if action is None:
        raise ActionUnavailable(
            f"The action is no longer available to this contact on the {submission.channel} "
            "channel."
        )
    return action


def _log_refusal(
    action: Action, channel: str, contact: str, cause: str, detail: str, arguments: Any
) -> Execution:
    execution = start_execution(action, channel=channel, contact=contact)
    execution.outcome = Execution.Outcome.REFUSED
    execution.cause = cause
    execution.detail = detail
    execution.arguments = arguments if isinstance(arguments, dict) else {}
    execution.save()
    return execution


def form_fields(tool: ToolSchema, arguments: dict[str, Any]) -> list[dict[str, Any]]:
    """The form: one field per tool argument, in schema order, prefilled from the AI.

    >>> from actions.tool_schema import build_tool_schema, InputRow
    >>> tool = build_tool_schema(
    ...     {"type": "object", "properties": {"reason": {"type": "string"}}},
    ...     [InputRow("path", "order_id")])
    >>> [(f["name"], f["label"], f["location"], f["required"], f["value"])
    ...  for f in form_fields(tool, {"order_id": "A-1"})]
    [('reason', 'Reason', 'body', False, None), ('order_id', 'Order id', 'path', True, 'A-1')]
    """
    schema = tool.schema
    definitions = schema.get("$defs")
    required = set(schema.get("required", []))
    fields = []
    for name, field_schema in schema.get("properties", {}).items():
        if definitions and "$ref" in str(field_schema):
            field_schema = {**field_schema, "$defs": definitions}  # each field self-contained
        title = field_schema.get("title") if isinstance(field_schema, dict) else None
        fields.append(
            {
                "name": name,
                "label": title or field_label(name),
                "description": (field_schema or {}).get("description", "")
                if isinstance(field_schema, dict)
                else "",
                "location": tool.arguments[name].location,
                "required": name in required,
                "schema": field_schema,
                "value": arguments.get(name),
            }
        )
    return fields


def field_label(name: str) -> str:
    """A readable label for an argument name.

    >>> [field_label(n) for n in ["order_id", "deliveryDate", "X_Customer_Id", "id__path"]]
    ['Order id', 'Delivery date', 'X customer id', 'Id (path)']
    """
    base, _, location = name.partition("__")
    words = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", " ", base)
    words = re.sub(r"[\s_-]+", " ", words).strip().lower()
    label = capfirst(words or name)
    return f"{label} ({location})" if location else label


def preview(request: OutboundRequest) -> dict[str, Any]:
    """What the customer is shown: method, final URL (with its query) and body; never
    the headers. Files in a multipart body are described, not included."""
    url = request.url
    if request.params:
        url += ("&" if urlsplit(url).query else "?") + urlencode(list(request.params))
    body: Any = None
    if request.json is not None:
        body = request.json
    elif request.form is not None:
        body = dict(request.form)
    elif request.multipart is not None:
        parts: dict[str, list[str]] = {}
        for name, value in request.multipart:
            shown = value if isinstance(value, str) else f"<file {value[0]}, {len(value[1])} bytes>"
            parts.setdefault(name, []).append(shown)
        body = {name: shown[0] if len(shown) == 1 else shown for name, shown in parts.items()}
    elif request.content is not None:
        body = f"<file, {len(request.content)} bytes>"
    return {"method": request.method, "url": url, "body": body}
