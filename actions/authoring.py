"""Writing a whole action at once: its fields, header and parameter rows, tags, segments.

The staff API's write path. The rules are the dashboard's, called where they live:
the models' full_clean() (Action.clean, field validators, the row models' clean),
the cross-row rules in actions.validators, and actions.contacts.resolve_segments.
Errors come back shaped like the input, so each is reported where it was caused:

    {"name": [ValidationError(...)], "headers": {1: {"key": [ValidationError(...)]}}}

Nothing is written until everything is valid; then `save_action` writes it all in
one transaction.
"""

from dataclasses import dataclass, field

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models.functions import Lower

from actions import validators
from actions.contacts import resolve_segments
from actions.models import Action, ActionHeader, ActionParameter, Segment, Tag

ACTION_FIELDS = (
    "name",
    "tool_name",
    "description",
    "method",
    "endpoint",
    "body_schema",
    "body_format",
    "pinned",
    "requires_form",
    "send_context_headers",
)
ROW_FIELDS = ("key", "kind", "value", "description", "required", "value_schema")


@dataclass
class ActionDraft:
    """An action with its changes applied in memory; None keeps what is stored."""

    action: Action
    headers: list[ActionHeader] | None = None
    parameters: list[ActionParameter] | None = None
    tag_names: list[str] | None = None
    segments: list[Segment] | None = None
    errors: dict = field(default_factory=dict)


def draft_action(action: Action, changes: dict) -> ActionDraft:
    """Apply `changes` to `action` (unsaved) and check everything; see draft.errors.

    `changes` holds any of ACTION_FIELDS, `channels` (a list of Channel values),
    `headers` and `parameters` (lists of row dicts, which replace the stored rows),
    `tags` (names; unknown ones will be created) and `segments` (slugs, which must
    be the organization's).
    """
    for name in ACTION_FIELDS:
        if name in changes:
            setattr(action, name, changes[name])
    if "channels" in changes:
        action.channels = changes["channels"]
    draft = ActionDraft(action)
    errors = draft.errors
    try:
        action.full_clean()
    except ValidationError as error:
        errors.update(error.error_dict)

    if changes.get("headers") is not None:
        draft.headers = [_row(ActionHeader, action, row) for row in changes["headers"]]
        row_errors = _rows_errors(draft.headers)
        keys = [header.key for header in draft.headers]
        _add(row_errors, validators.header_row_errors(keys))
        if row_errors:
            errors["headers"] = row_errors

    # Path rows follow the endpoint: check the stored rows too when only it changes.
    parameters = changes.get("parameters")
    if parameters is not None:
        draft.parameters = [_row(ActionParameter, action, row) for row in parameters]
    checked = draft.parameters if parameters is not None else _stored_parameters(action)
    row_errors = _rows_errors(draft.parameters or [])
    rows = [(parameter.location, parameter.key) for parameter in checked]
    _add(row_errors, validators.parameter_row_errors(rows, action.path_placeholders()))
    if row_errors:
        errors["parameters"] = row_errors

    if changes.get("tags") is not None:
        draft.tag_names = list({name.lower(): name for name in changes["tags"]}.values())
        tag_errors = _new_tag_errors(action, changes["tags"])
        if tag_errors:
            errors["tags"] = tag_errors

    if changes.get("segments") is not None:
        try:
            draft.segments = resolve_segments(action.organization_id, changes["segments"])
        except ValidationError as error:
            errors.update(error.error_dict)
    return draft


@transaction.atomic
def save_action(draft: ActionDraft) -> Action:
    """Write a valid draft: the action, then what replaces its rows and relations.

    Saving the action renews the organization's tools_version inside this
    transaction, so no tool list sees the new action without its new rows.
    """
    if draft.errors:
        raise ValueError("save_action() takes a draft without errors.")
    action = draft.action
    action.save()
    for rows, model in [(draft.headers, ActionHeader), (draft.parameters, ActionParameter)]:
        if rows is not None:
            model.objects.filter(action=action).delete()
            for row in rows:
                row.action = action
            model.objects.bulk_create(rows)
    if draft.tag_names is not None:
        action.tags.set(_tags_named(action, draft.tag_names))
    if draft.segments is not None:
        action.segments.set(draft.segments)
    return action


def _row(model, action: Action, data: dict):
    row = model(action=action, **{name: data[name] for name in data})
    row.kind = validators.effective_kind(row.kind, row.value)
    return row


def _rows_errors(rows: list) -> dict[int, dict[str, list[ValidationError]]]:
    errors = {}
    for index, row in enumerate(rows):
        try:
            # The action may be new; the rows' uniqueness among themselves is checked
            # by validators.header_row_errors / parameter_row_errors.
            row.full_clean(exclude=["action"])
        except ValidationError as error:
            errors[index] = error.error_dict
    return errors


def _add(row_errors: dict, key_errors: dict[int, list[ValidationError]]) -> None:
    for index, errors in key_errors.items():
        row_errors.setdefault(index, {}).setdefault("key", []).extend(errors)


def _stored_parameters(action: Action) -> list[ActionParameter]:
    return list(action.parameters.all()) if action.pk else []


def _existing_tags(action: Action, names: list[str]) -> dict[str, Tag]:
    """The organization's tags with these names, by lowercased name (names are
    unique case-insensitively)."""
    tags = (
        Tag.objects.for_organization(action.organization_id)
        .alias(folded=Lower("name"))
        .filter(folded__in={name.lower() for name in names})
    )
    return {tag.name.lower(): tag for tag in tags}


def _new_tag_errors(action: Action, names: list[str]) -> dict[int, list[ValidationError]]:
    existing = _existing_tags(action, names)
    errors = {}
    for index, name in enumerate(names):
        if name.lower() in existing:
            continue
        try:
            Tag(organization_id=action.organization_id, name=name).clean_fields(
                exclude=["organization"]
            )
        except ValidationError as error:
            errors[index] = error.error_dict["name"]
    return errors


def _tags_named(action: Action, names: list[str]) -> list[Tag]:
    existing = _existing_tags(action, names)
    return [
        existing.get(name.lower())
        or Tag.objects.create(organization_id=action.organization_id, name=name)
        for name in names
    ]
