"""The staff API's action: its representation, and the shape of what may be written.

Types are checked here; the rules are the dashboard's, applied to the whole action by
actions.authoring (the models' full_clean(), the cross-row rules, segment slugs).
Their errors come back keyed like the input: `{"headers": {"1": {"key": ["..."]}}}`.
"""

from collections.abc import Mapping

from django.core.exceptions import NON_FIELD_ERRORS
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import IntegrityError
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers
from rest_framework.exceptions import APIException
from rest_framework.fields import get_error_detail
from rest_framework.settings import api_settings

from actions import validators
from actions.authoring import draft_action, save_action
from actions.models import Action, ActionParameter, Channel, ValueKind


class KnownFieldsSerializer(serializers.Serializer):
    """Refuses a field it does not know (a typo such as `tag` would otherwise be dropped
    without a word). Read-only fields are accepted and ignored, so what GET returns can
    be sent back."""

    def to_internal_value(self, data):
        if isinstance(data, Mapping):
            unknown = sorted(set(data) - set(self.fields))
            if unknown:
                writable = ", ".join(name for name, f in self.fields.items() if not f.read_only)
                raise serializers.ValidationError(
                    {name: [f"Unknown field. Send any of: {writable}."] for name in unknown}
                )
        return super().to_internal_value(data)


@extend_schema_field({"type": "object"})
class JSONObjectField(serializers.JSONField):
    """A JSON object (a JSON Schema, a contact's attributes), documented as one.

    A bare JSONField is documented as any value, and a nullable one as
    `oneOf: [{}, {"type": "null"}]`, which null matches twice: no null response could
    ever validate. The server accepts objects only (the models' rules)."""


class ValueRowSerializer(KnownFieldsSerializer):
    key = serializers.CharField(allow_blank=True)
    kind = serializers.ChoiceField(
        choices=ValueKind.choices,
        required=False,
        help_text="static (default), magic (a context value such as contact.email) or ai. "
        "A static row with an empty value is filled by the AI.",
    )
    value = serializers.CharField(required=False, allow_blank=True)
    description = serializers.CharField(
        required=False, allow_blank=True, help_text="For AI-filled values: a hint for the AI."
    )
    required = serializers.BooleanField(required=False)
    value_schema = JSONObjectField(
        required=False,
        allow_null=True,
        validators=[validators.validate_storable_json],
        help_text="For AI-filled values: their JSON Schema.",
    )


class HeaderSerializer(ValueRowSerializer):
    """A request header; names are case-insensitive and set once per action."""


class ParameterSerializer(ValueRowSerializer):
    """A query parameter, or a path parameter named by an {placeholder} of the endpoint."""

    location = serializers.ChoiceField(
        choices=ActionParameter.Location.choices, required=False, help_text="query (default)."
    )


@extend_schema_field({"type": "array", "items": {"type": "string"}})
class RelatedNamesField(serializers.ListField):
    """Names on the wire; read from the related objects' `attribute` (slug, name)."""

    def __init__(self, attribute: str, **kwargs):
        self.attribute = attribute
        super().__init__(child=serializers.CharField(), **kwargs)

    def get_attribute(self, instance):
        related = getattr(instance, self.source_attrs[0]).all()
        return [getattr(obj, self.attribute) for obj in related]


class ActionSerializer(KnownFieldsSerializer):
    id = serializers.IntegerField(read_only=True)
    name = serializers.CharField(allow_blank=True, help_text="At least 5 characters.")
    tool_name = serializers.CharField(
        required=False,
        allow_blank=True,
        help_text="The function name the AI calls; derived from the name when empty.",
    )
    description = serializers.CharField(
        allow_blank=True, help_text="The AI's prompt for this action: at least 20 characters."
    )
    method = serializers.ChoiceField(choices=Action.Method.choices, required=False)
    endpoint = serializers.CharField(
        allow_blank=True,
        help_text="An https:// URL; {name} in the path marks a path parameter.",
    )
    body_schema = JSONObjectField(
        required=False,
        allow_null=True,
        validators=[validators.validate_storable_json],
        help_text="POST, PUT and PATCH only: JSON Schema of the body, an object at its root.",
    )
    body_format = serializers.ChoiceField(choices=Action.BodyFormat.choices, required=False)
    headers = HeaderSerializer(
        many=True, required=False, help_text="Replaces every header row when sent."
    )
    parameters = ParameterSerializer(
        many=True, required=False, help_text="Replaces every parameter row when sent."
    )
    channels = serializers.ListField(
        child=serializers.ChoiceField(choices=Channel.choices),
        required=False,
        help_text="Where the AI may use the action; a new action starts on the widget only.",
    )
    segments = RelatedNamesField(
        "slug",
        required=False,
        help_text="Segment slugs: only their contacts may use the action ([] for everyone).",
    )
    tags = RelatedNamesField(
        "name", required=False, help_text="Tag names; unknown ones are created."
    )
    pinned = serializers.BooleanField(required=False)
    requires_form = serializers.BooleanField(required=False)
    send_context_headers = serializers.BooleanField(
        required=False,
        help_text="Also send the x-opencx-org-id, -session-id, -ticket-number and "
        "-external-user-id headers.",
    )
    source = serializers.CharField(
        source="source.name",
        read_only=True,
        allow_null=True,
        help_text="The OpenAPI source that generated the action; null when hand-authored.",
    )
    operation_key = serializers.CharField(read_only=True)
    tool_schema = serializers.SerializerMethodField(
        help_text="The JSON Schema of the arguments the AI fills."
    )
    created_at = serializers.DateTimeField(read_only=True)
    updated_at = serializers.DateTimeField(read_only=True)

    def get_tool_schema(self, action: Action) -> dict:
        return action.tool_schema().schema

    def validate(self, attrs: dict) -> dict:
        action = self.instance or Action(organization=self.context["request"].user.organization)
        self.draft = draft_action(action, attrs)
        if self.draft.errors:
            raise serializers.ValidationError(api_errors(self.draft.errors))
        return attrs

    def create(self, validated_data: dict) -> Action:
        return self._save()

    def update(self, instance: Action, validated_data: dict) -> Action:
        return self._save()

    def _save(self) -> Action:
        try:
            return save_action(self.draft)
        except IntegrityError:
            # Validation passed, but a concurrent request took the name, tool name or
            # tag in the meantime; the transaction rolled back whole.
            raise Conflict() from None


class Conflict(APIException):
    status_code = 409
    default_detail = (
        "Another request changed this organization's actions at the same moment (a name, "
        "tool name or tag is now taken). Nothing was saved; fetch the latest state and retry."
    )
    default_code = "conflict"


def api_errors(errors: dict | list):
    """actions.authoring's errors as DRF details, shaped as DRF shapes its own: Django's
    "__all__" is "non_field_errors", and the rows' errors are keyed by the position of
    the failing rows (DRF's LIST_SERIALIZER_ERRORS_AS_DICT format)."""
    if isinstance(errors, list):
        return get_error_detail(DjangoValidationError(errors))
    return {
        api_settings.NON_FIELD_ERRORS_KEY if key == NON_FIELD_ERRORS else key: api_errors(value)
        for key, value in errors.items()
    }
