"""Invalidate cached tool lists whenever something they depend on changes.

A tool list depends on an organization's actions (and their header and parameter
rows, channels and segment restrictions) and on its contacts' segment membership.
Each change bumps the organization's `tools_version`, which every cached list and
ETag is keyed on. Bulk `QuerySet.update()` sends no signal: ActionQuerySet.update
bumps for itself, and writers that use bulk_create bump explicitly.
"""

from contextlib import contextmanager
from contextvars import ContextVar

from django.db.models.signals import m2m_changed, post_delete, post_save
from django.dispatch import receiver

from actions import state
from actions.models import (
    Action,
    ActionHeader,
    ActionParameter,
    Contact,
    Organization,
    OrganizationAPIKey,
    Segment,
)

_muted: ContextVar[bool] = ContextVar("tools_version_muted", default=False)


@contextmanager
def one_version_bump(organization_id: int):
    """Bump the organization's stamp once, after a block of bulk writes to it.

    Inside the block the receivers below stay silent (no query per row touched), so
    an import replacing thousands of actions renews the stamp once, not per row.
    """
    token = _muted.set(True)
    try:
        yield
    finally:
        _muted.reset(token)
    Organization.bump_tools_version(organization_id)


def bump(organization_id: int) -> None:
    if not _muted.get():
        Organization.bump_tools_version(organization_id)


@receiver([post_save, post_delete], sender=Action)
@receiver(post_delete, sender=Segment)
@receiver(post_delete, sender=Contact)
def organization_object_changed(sender, instance, **kwargs) -> None:
    bump(instance.organization_id)


@receiver([post_save, post_delete], sender=ActionHeader)
@receiver([post_save, post_delete], sender=ActionParameter)
def action_row_changed(sender, instance, **kwargs) -> None:
    if _muted.get():
        return
    organization_id = (
        Action.objects.filter(pk=instance.action_id)
        .values_list("organization_id", flat=True)
        .first()
    )
    if organization_id is not None:  # None: the action itself is being deleted
        bump(organization_id)


@receiver(m2m_changed, sender=Action.segments.through)
@receiver(m2m_changed, sender=Contact.segments.through)
def membership_changed(sender, instance, action, **kwargs) -> None:
    # Both ends (action or contact, and segment) carry the organization.
    if action in {"post_add", "post_remove", "post_clear"}:
        bump(instance.organization_id)


@receiver([post_save, post_delete], sender=Contact)
def contact_changed(sender, instance, **kwargs) -> None:
    # Invoke keeps contacts' details in memory under each contact's own stamp
    # (execution.run.stored_contact): a change counts from the next call, and does not
    # discard the organization's rendered tool lists. (QuerySet.update sends no signal:
    # contacts are written one by one, through save.) Muted while an organization is
    # deleted: its own stamp, renewed once, is part of those entries' keys too.
    if _muted.get():
        return
    state.renew_contact(instance.organization_id, instance.external_id)
    previous = getattr(instance, "stored_external_id", None)
    if previous is not None and previous != instance.external_id:
        # A new ID: what was cached under the old one (details, segment set) goes.
        state.renew_contact(instance.organization_id, previous)
        bump(instance.organization_id)
    instance.stored_external_id = instance.external_id


@receiver([post_save, post_delete], sender=OrganizationAPIKey)
def api_key_changed(sender, instance, **kwargs) -> None:
    # A revoked, expired, rescoped or deleted key must stop working at once in every
    # process: each process checks the keys it has verified against the stamp.
    # (Recording a key's last use is a bulk update and sends no signal.)
    state.renew(instance.organization_id)


@receiver([post_save, post_delete], sender="execution.GlobalVariable")
def global_variable_changed(sender, instance, **kwargs) -> None:
    # Invoke keeps each organization's variables (as stored, encrypted) in memory
    # under the stamp (execution.run.organization_variables): a new, changed, rotated
    # or deleted secret is used from the next call on, in every process.
    if not _muted.get():  # an organization being deleted renews its stamp once
        state.renew(instance.organization_id)


@receiver(post_save, sender=Organization)
def organization_created(sender, instance, created, **kwargs) -> None:
    # A fresh stamp for a new organization: nothing cached under an earlier one (an
    # organization whose ID a rolled-back transaction had used) may ever reach it.
    if created:
        state.renew(instance.pk)
