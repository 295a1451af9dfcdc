"""Staff filters over an organization's actions: one FilterSet for the API and the dashboard.

    GET /api/v1/actions?tags=billing,refunds&channel=email&source=hand&pinned=true
    GET /api/v1/actions?tags__all=billing&tags__all=refunds&search=order&segment=premium

`tags` keeps actions with ANY of the tags, `tags__all` those with ALL of them; both
take repeated parameters, comma-separated lists, or a mix. Tags, segments and sources
are named as the API names them (tag name, segment slug, source name) and must be the
organization's own; an unknown value of any filter is a 400 that lists the valid ones.
Relations are filtered through EXISTS subqueries, never joins, so no action is listed
twice, whatever the combination.

The dashboard's sidebar (actions.admin) picks tags, segments and sources by id and
calls the filter_* methods below with the objects, so both lists filter the same way.
"""

from collections.abc import Iterable, Sequence

import django_filters
from django import forms
from django.core.exceptions import ValidationError
from django.core.validators import ProhibitNullCharactersValidator
from django.db.models import Exists, OuterRef, Q
from django.db.models.functions import Lower
from drf_spectacular.utils import extend_schema_field

from actions.contacts import resolve_segments
from actions.models import (
    Action,
    ActionQuerySet,
    Channel,
    Organization,
    Segment,
    SpecSource,
    Tag,
)

HAND_AUTHORED = "hand"
MAX_LISTED = 50
BOOLEANS = {"true": True, "1": True, "false": False, "0": False}


def unknown_value_error(noun: str, unknown: Iterable[str], valid: Sequence[str]) -> ValidationError:
    """“Unknown tag x. Valid tags: a, b.”, listing at most MAX_LISTED valid values."""
    valid = list(valid[: MAX_LISTED + 1])
    listed = ", ".join(valid[:MAX_LISTED]) or "(none yet)"
    if len(valid) > MAX_LISTED:
        listed += ", …"
    return ValidationError(
        "Unknown %(noun)s %(unknown)s. Valid %(noun)ss: %(valid)s.",
        code=f"unknown_{noun}",
        params={"noun": noun, "unknown": ", ".join(unknown), "valid": listed},
    )


def resolve_tags(organization: Organization, names: list[str]) -> list[Tag]:
    """The organization's tags with these names (case-insensitive, as tag names are
    unique), or a ValidationError naming the unknown ones."""
    tags = list(
        Tag.objects.for_organization(organization)
        .alias(folded=Lower("name"))
        .filter(folded__in={name.lower() for name in names})
    )
    found = {tag.name.lower() for tag in tags}
    unknown = [name for name in names if name.lower() not in found]
    if unknown:
        valid = Tag.objects.for_organization(organization).values_list("name", flat=True)
        raise unknown_value_error("tag", unknown, valid)
    return tags


def resolve_segment(organization: Organization, slug: str) -> Segment:
    try:
        return resolve_segments(organization, [slug])[0]
    except ValidationError as error:
        # resolve_segments keys its error to a contact's `segments` field.
        raise ValidationError(error.error_dict["segments"]) from None


def resolve_source(organization: Organization, name: str) -> SpecSource | str:
    """HAND_AUTHORED, or the organization's SpecSource of this name."""
    if name == HAND_AUTHORED:
        return HAND_AUTHORED
    sources = SpecSource.objects.for_organization(organization)
    source = sources.filter(name=name).first()
    if source is None:
        valid = [HAND_AUTHORED, *sources.values_list("name", flat=True)]
        raise unknown_value_error("source", [name], valid)
    return source


class ValuesWidget(forms.Widget):
    """Repeated parameters, comma-separated lists, or both: ?tags=a,b&tags=c -> [a, b, c]."""

    def value_from_datadict(self, data, files, name) -> list[str] | None:
        if name not in data:
            return None
        raw = data.getlist(name) if hasattr(data, "getlist") else data[name]
        raw = [raw] if isinstance(raw, str) else raw
        values = (part.strip() for item in raw for part in str(item).split(","))
        return list(dict.fromkeys(value for value in values if value))


class OrganizationValueField(forms.Field):
    """Names of the organization's tags (a segment's slug, a source's name) -> the objects.

    `resolve(organization, value)` looks them up and raises a ValidationError that
    lists the valid values when one is unknown.
    """

    def __init__(self, *, resolve, organization=None, many=False, **kwargs):
        self.resolve, self.organization, self.many = resolve, organization, many
        kwargs.setdefault("widget", ValuesWidget if many else forms.TextInput)
        super().__init__(**kwargs)

    def clean(self, value):
        value = super().clean(value)
        if value in self.empty_values:
            return None
        values = value if self.many else [value.strip()]
        for item in values:
            ProhibitNullCharactersValidator()(item)  # the database cannot compare with NUL
        return self.resolve(self.organization, values if self.many else values[0])


class OrganizationValueFilter(django_filters.Filter):
    """A filter on the request organization's own tags, segments or sources."""

    field_class = OrganizationValueField

    @property
    def field(self):
        request = getattr(self.parent, "request", None)
        # request.user is a KeyHolder (API) or a dashboard User: both carry the organization.
        self.extra["organization"] = getattr(getattr(request, "user", None), "organization", None)
        return super().field


class BooleanValueField(forms.Field):
    def clean(self, value) -> bool | None:
        value = super().clean(value)
        if value in self.empty_values:
            return None
        try:
            return BOOLEANS[str(value).strip().lower()]
        except KeyError:
            raise ValidationError(
                "“%(value)s” is not a boolean. Use one of: true, false.",
                code="invalid_boolean",
                params={"value": value},
            ) from None


class BooleanValueFilter(django_filters.Filter):
    field_class = BooleanValueField


NAMES = {"type": "array", "items": {"type": "string"}}


def documented(schema: dict, filter_: django_filters.Filter) -> django_filters.Filter:
    """Give drf-spectacular the filter's type; its description is the help text."""
    return extend_schema_field({**schema, "description": filter_.extra["help_text"]})(filter_)


def _choice_error(noun: str, choices: list[str]) -> dict[str, str]:
    return {"invalid_choice": f"Unknown {noun} “%(value)s”. Use one of: {', '.join(choices)}."}


class ActionFilterSet(django_filters.FilterSet):
    tags = documented(
        NAMES,
        OrganizationValueFilter(
            resolve=resolve_tags,
            many=True,
            method="filter_tags_any",
            help_text="Tag names: actions with ANY of them. Repeat the parameter or "
            "separate names with commas.",
        ),
    )
    tags__all = documented(
        NAMES,
        OrganizationValueFilter(
            resolve=resolve_tags,
            many=True,
            method="filter_tags_all",
            help_text="Tag names: actions with ALL of them. Repeat the parameter or "
            "separate names with commas.",
        ),
    )
    channel = django_filters.ChoiceFilter(
        choices=Channel.choices,
        method="filter_channel",
        error_messages=_choice_error("channel", Channel.values),
        help_text="Actions enabled on this channel.",
    )
    source = documented(
        {"type": "string"},
        OrganizationValueFilter(
            resolve=resolve_source,
            method="filter_source",
            help_text=f"“{HAND_AUTHORED}” for hand-authored actions, or the name of an "
            "OpenAPI source for the actions it generated.",
        ),
    )
    pinned = documented(
        {"type": "boolean"},
        BooleanValueFilter(help_text="true for pinned actions, false for the others."),
    )
    method = django_filters.ChoiceFilter(
        choices=Action.Method.choices,
        error_messages=_choice_error("method", Action.Method.values),
        help_text="The HTTP method.",
    )
    search = django_filters.CharFilter(
        method="filter_search",
        help_text="Words that must each appear in the name, description or endpoint "
        "(case-insensitive).",
    )
    segment = documented(
        {"type": "string"},
        OrganizationValueFilter(
            resolve=resolve_segment,
            method="filter_segment",
            help_text="A segment's slug: actions restricted to that segment.",
        ),
    )

    class Meta:
        model = Action
        fields = []  # every filter is declared above

    # The filter methods take resolved values (Tag, Segment, SpecSource objects) and
    # use no state, so the dashboard calls them directly with what its sidebar picked.

    @staticmethod
    def filter_tags_any(queryset: ActionQuerySet, name: str, tags: list[Tag]) -> ActionQuerySet:
        tagged = Action.tags.through.objects.filter(action_id=OuterRef("pk"), tag__in=tags)
        return queryset.filter(Exists(tagged))

    @staticmethod
    def filter_tags_all(queryset: ActionQuerySet, name: str, tags: list[Tag]) -> ActionQuerySet:
        for tag in tags:
            tagged = Action.tags.through.objects.filter(action_id=OuterRef("pk"), tag=tag)
            queryset = queryset.filter(Exists(tagged))
        return queryset

    @staticmethod
    def filter_channel(queryset: ActionQuerySet, name: str, channel: str) -> ActionQuerySet:
        return queryset.enabled_on(channel)

    @staticmethod
    def filter_source(
        queryset: ActionQuerySet, name: str, source: SpecSource | str
    ) -> ActionQuerySet:
        if source == HAND_AUTHORED:
            return queryset.hand_authored()
        return queryset.filter(source=source)

    @staticmethod
    def filter_search(queryset: ActionQuerySet, name: str, text: str) -> ActionQuerySet:
        for word in text.split():
            queryset = queryset.filter(
                Q(name__icontains=word)
                | Q(description__icontains=word)
                | Q(endpoint__icontains=word)
            )
        return queryset

    @staticmethod
    def filter_segment(queryset: ActionQuerySet, name: str, segment: Segment) -> ActionQuerySet:
        restricted = Action.segments.through.objects.filter(
            action_id=OuterRef("pk"), segment=segment
        )
        return queryset.filter(Exists(restricted))
