"""Sync: the one import step that writes. A source's actions become its spec's operations.

Re-importing replaces exactly what the source generated: afterwards the source's
actions are the spec's operations, one each. An action whose operation survives
keeps its id and what the admin owns (channels, segments); what the spec owns (name,
description, request, rows, tags, pinned, form) is overwritten; vanished operations'
actions are removed. Hand-authored actions and other sources are never touched. All
of it happens in one transaction, so an error (or a dying worker) leaves the database
exactly as before; a dry run is the same code, rolled back.

Names must be unique in the organization: an operation whose name or tool name is
taken by an action this source does not own gets a deterministic variant (the
source's name, a short hash of the operation key), the same on every re-import.
"""

import hashlib
import re
from dataclasses import dataclass, field

import orjson
from django.db import transaction
from django.db.models.functions import Lower

from actions import validators
from actions.models import (
    Action,
    ActionHeader,
    ActionParameter,
    Organization,
    SpecSource,
    Tag,
)
from actions.signals import one_version_bump
from importer.drafts import OperationDraft

BATCH = 1000
SPEC_OWNED_FIELDS = (
    "name", "tool_name", "description", "method", "endpoint", "body_schema", "body_format",
    "pinned", "requires_form", "source_fingerprint",
)  # fmt: skip


@dataclass
class SyncResult:
    """What a sync did (or, for a dry run, would do), by operation label."""

    added: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        return {
            "created": len(self.added),
            "updated": len(self.changed),
            "removed": len(self.removed),
            "unchanged": len(self.unchanged),
        }

    def diff(self) -> dict[str, list[str]]:
        return {"added": self.added, "changed": self.changed, "removed": self.removed}


def fingerprint(draft: OperationDraft) -> str:
    """A hash of everything the spec says about one action (orjson serializes the
    dataclass directly, without the deep copy dataclasses.asdict makes)."""
    canonical = orjson.dumps(draft, option=orjson.OPT_SORT_KEYS, default=str)
    return hashlib.sha256(canonical).hexdigest()


def sync_source(
    organization: Organization,
    source: SpecSource,
    drafts: list[OperationDraft],
    *,
    dry_run: bool = False,
) -> SyncResult:
    with transaction.atomic():
        # Imports into one organization take turns: two imports choosing names at
        # once could otherwise both take the same free name. FOR NO KEY UPDATE: it
        # excludes the other import, not the rows that refer to the organization
        # (an invoke's log row, a contact), whose foreign-key checks need KEY SHARE.
        Organization.objects.select_for_update(no_key=True).filter(pk=organization.pk).first()
        existing = {
            action.operation_key: action
            for action in Action.objects.filter(source=source).only(
                "id", "operation_key", "source_fingerprint", *SPEC_OWNED_FIELDS
            )
        }
        drafts = _with_free_names(organization, source, drafts)
        result = SyncResult()
        added: list[OperationDraft] = []
        changed: list[tuple[Action, OperationDraft]] = []
        prints = {draft.operation_key: fingerprint(draft) for draft in drafts}
        for draft in drafts:
            action = existing.get(draft.operation_key)
            if action is None:
                added.append(draft)
                result.added.append(draft.label)
            elif action.source_fingerprint != prints[draft.operation_key]:
                changed.append((action, draft))
                result.changed.append(draft.label)
            else:
                result.unchanged.append(draft.label)
        keys = {draft.operation_key for draft in drafts}
        vanished = sorted(
            (action for key, action in existing.items() if key not in keys),
            key=lambda action: action.operation_key,
        )
        result.removed = [action.operation_key for action in vanished]
        if dry_run or not (added or changed or vanished):
            return result  # an unchanged spec writes nothing at all
        with one_version_bump(organization.pk):
            _write(organization, source, added, changed, vanished, prints)
        return result


def _with_free_names(
    organization: Organization, source: SpecSource, drafts: list[OperationDraft]
) -> list[OperationDraft]:
    """The drafts, each renamed deterministically where another action holds its name."""
    others = Action.objects.filter(organization=organization).exclude(source=source)
    names = {name for (name,) in others.values_list(Lower("name"))}
    tool_names = set(others.values_list("tool_name", flat=True))
    free = []
    for draft in drafts:
        name, tool_name = draft.name, draft.tool_name
        identity = f"{source.name}:{draft.operation_key}"
        if name.lower() in names:
            name = _variant(name, f" ({source.name})", 200, names, identity)
        if tool_name in tool_names:
            tool_name = _variant(
                tool_name, "", validators.TOOL_NAME_MAX_LENGTH, tool_names, identity
            )
        names.add(name.lower())
        tool_names.add(tool_name)
        if (name, tool_name) != (draft.name, draft.tool_name):
            draft = OperationDraft(**{**draft.__dict__, "name": name, "tool_name": tool_name})
        free.append(draft)
    return free


def _variant(base: str, suffix: str, limit: int, taken: set[str], key: str) -> str:
    """`base` + suffix, else + a short hash of the source and operation: stable, free.

    The hash covers the source name too (`key` is "source:METHOD /path"), so the same
    operation imported into several sources gets a different variant in each; and it
    keeps lengthening until the name is free, so it never collides.

    >>> _variant("find_pets", "", 64, {"find_pets"}, "petstore:GET /pets")
    'find_pets_de90ea'
    """
    digest = hashlib.sha256(key.encode()).hexdigest()
    suffixes = [suffix] if suffix else []
    suffixes += [f"_{digest[:n]}" for n in (6, 10, 16, 32, 64)]
    for candidate_suffix in suffixes:
        candidate = base[: limit - len(candidate_suffix)] + candidate_suffix
        if candidate.lower() not in taken and candidate not in taken:
            return candidate
    counter = 2  # 64 hex digits all taken: unreachable in practice, still never a clash
    while f"{digest[: limit - 8]}_{counter}" in taken:
        counter += 1
    return f"{digest[: limit - 8]}_{counter}"


def _write(organization, source, added, changed, vanished, prints) -> None:
    if vanished:
        Action.objects.filter(pk__in=[a.pk for a in vanished]).delete()

    for action, draft in changed:
        _apply(action, draft, prints[draft.operation_key])
    Action.objects.bulk_update(
        [action for action, _ in changed], SPEC_OWNED_FIELDS, batch_size=BATCH
    )
    changed_ids = [action.pk for action, _ in changed]
    ActionHeader.objects.filter(action_id__in=changed_ids).delete()
    ActionParameter.objects.filter(action_id__in=changed_ids).delete()
    Action.tags.through.objects.filter(action_id__in=changed_ids).delete()

    new_actions = []
    for draft in added:
        action = Action(organization=organization, source=source, operation_key=draft.operation_key)
        _apply(action, draft, prints[draft.operation_key])
        new_actions.append(action)  # channels: the model's default, widget only
    Action.objects.bulk_create(new_actions, batch_size=BATCH)

    written = [*changed, *zip(new_actions, added, strict=True)]
    ActionHeader.objects.bulk_create(
        [_row(ActionHeader, action, row) for action, draft in written for row in draft.headers],
        batch_size=BATCH,
    )
    ActionParameter.objects.bulk_create(
        [
            _row(ActionParameter, action, row, location=row.location)
            for action, draft in written
            for row in draft.parameters
        ],
        batch_size=BATCH,
    )
    tags = _tags(organization, {tag_name(n) for _, draft in written for n in draft.tags})
    Action.tags.through.objects.bulk_create(
        [
            Action.tags.through(action_id=action.pk, tag_id=tags[name.lower()].pk)
            for action, draft in written
            for name in dict.fromkeys(tag_name(n) for n in draft.tags)
        ],
        batch_size=BATCH,
        ignore_conflicts=True,
    )


def _apply(action: Action, draft: OperationDraft, print_: str) -> None:
    action.name = draft.name
    action.tool_name = draft.tool_name
    action.description = draft.description
    action.method = draft.method
    action.endpoint = draft.endpoint
    action.body_schema = draft.body_schema
    action.body_format = draft.body_format
    action.pinned = draft.pinned
    action.requires_form = draft.requires_form
    action.source_fingerprint = print_


def _row(model, action, row, **extra):
    return model(
        action=action,
        key=row.key,
        kind=row.kind,
        value=row.value,
        description=row.description[:1000],
        required=row.required,
        value_schema=row.value_schema,
        **extra,
    )


def tag_name(name: str) -> str:
    """A spec's tag as a dashboard tag name: letters, digits, '_', '-', '.'.

    >>> tag_name("Pet Store / v2")
    'Pet-Store-v2'
    """
    return re.sub(r"[^\w.-]+", "-", name).strip("-")[:50] or "untagged"


def _tags(organization: Organization, names: set[str]) -> dict[str, Tag]:
    """The organization's tags by lower-cased name, creating the missing ones."""
    if not names:
        return {}
    wanted = {name.lower(): name for name in names}

    def existing() -> dict[str, Tag]:
        tags = Tag.objects.filter(organization=organization)
        return {tag.name.lower(): tag for tag in tags if tag.name.lower() in wanted}

    found = existing()
    missing = [name for lower, name in wanted.items() if lower not in found]
    if missing:
        Tag.objects.bulk_create(
            [Tag(organization=organization, name=name) for name in missing],
            ignore_conflicts=True,
        )
        found = existing()
    return found
