"""Upserting an organization's contact: its details, attributes and segment membership.

The organization's own system pushes contacts by their external ID; segments are named
by slug. A slug the organization does not have (another organization's included) is
an error that names it, and nothing is written.
"""

from collections.abc import Iterable

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from actions.models import Contact, Organization, Segment

CONTACT_FIELDS = ("name", "email", "phone", "attributes")
MAX_LISTED_SLUGS = 50


def resolve_segments(organization: Organization, slugs: Iterable[str]) -> list[Segment]:
    """The organization's segments with these slugs, or a ValidationError naming the
    unknown ones and listing the valid ones (up to MAX_LISTED_SLUGS of them)."""
    slugs = list(dict.fromkeys(slugs))
    segments = list(Segment.objects.for_organization(organization).filter(slug__in=slugs))
    unknown = sorted(set(slugs) - {segment.slug for segment in segments})
    if unknown:
        valid = list(
            Segment.objects.for_organization(organization)
            .order_by("slug")
            .values_list("slug", flat=True)[: MAX_LISTED_SLUGS + 1]
        )
        listed = ", ".join(valid[:MAX_LISTED_SLUGS]) or "(none yet: create segments first)"
        if len(valid) > MAX_LISTED_SLUGS:
            listed += ", …"
        raise ValidationError(
            {
                "segments": ValidationError(
                    "Unknown segment %(unknown)s. Valid segments: %(valid)s.",
                    code="unknown_segment",
                    params={"unknown": ", ".join(unknown), "valid": listed},
                )
            }
        )
    return segments


def upsert_contact(
    organization: Organization, external_id: str, changes: dict
) -> tuple[Contact, bool]:
    """Create or update the organization's contact `external_id`; True when created.

    `changes` holds any of name, email, phone, attributes (each replaces the stored
    value) and segments (a list of slugs that replaces the membership). What it
    leaves out stays as it is. Validation is the model's (full_clean); on an error
    nothing is written.
    """
    try:
        return _upsert(organization, external_id, changes)
    except IntegrityError:
        # Another request created the same contact between our lookup and our insert:
        # it exists now, so this is an update.
        return _upsert(organization, external_id, changes)


@transaction.atomic
def _upsert(organization: Organization, external_id: str, changes: dict) -> tuple[Contact, bool]:
    contact = (
        Contact.objects.for_organization(organization)
        .select_for_update()
        .filter(external_id=external_id)
        .first()
    )
    created = contact is None
    if created:
        contact = Contact(organization=organization, external_id=external_id)
    for field in CONTACT_FIELDS:
        if field in changes:
            setattr(contact, field, changes[field])
    segments = None
    errors: dict[str, list[ValidationError]] = {}
    if changes.get("segments") is not None:
        try:
            segments = resolve_segments(organization, changes["segments"])
        except ValidationError as error:
            errors.update(error.error_dict)
    try:
        # The lookup above is the (organization, external_id) uniqueness check; the
        # database constraint catches a concurrent insert (see upsert_contact).
        contact.full_clean(validate_constraints=False)
    except ValidationError as error:
        errors.update(error.error_dict)
    if errors:
        raise ValidationError(errors)
    contact.save()
    if segments is not None:
        contact.segments.set(segments)  # m2m_changed bumps the tools_version
    return contact, created
