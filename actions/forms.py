"""Dashboard forms: the action form, its header and parameter rows, and bulk-action options."""

import json

from django import forms
from django.contrib.admin.helpers import ActionForm as AdminActionForm
from django.core.exceptions import ValidationError

from actions import validators
from actions.context import ATTRIBUTE_PREFIX, MAGIC_FIELDS
from actions.inference import infer_body_schema
from actions.models import Action, Channel, ValueKind


class PrettyJSONField(forms.JSONField):
    """A JSON field an admin can read and edit: indented, keys in their order, and
    strict (no NaN or Infinity, no nesting deep enough to crash the parser)."""

    def to_python(self, value):
        if self.disabled or value in self.empty_values:
            return super().to_python(value)
        if isinstance(value, list | dict | int | float | forms.fields.JSONString):
            return value
        return validators.parse_json(value, subject="This value")

    def bound_data(self, data, initial):
        if self.disabled:
            return initial
        if data is None:
            return None
        try:
            return validators.parse_json(data, subject="This value")
        except ValidationError:
            return forms.fields.InvalidJSONInput(data)

    def prepare_value(self, value):
        if isinstance(value, forms.fields.InvalidJSONInput):
            return value
        if value is None:
            return ""
        return json.dumps(value, indent=2, ensure_ascii=False, cls=self.encoder)


class OrganizationScopedForm(forms.ModelForm):
    """A model form that knows the organization it works in.

    For a support admin, the organization is theirs and is not a form field; it is
    set on the instance before validation so per-organization rules (unique names)
    are checked. A superuser picks the organization, and every related object must
    then belong to it.
    """

    request_organization = None  # set per request by the admin (see get_form)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.request_organization is not None and self.instance.organization_id is None:
            self.instance.organization = self.request_organization

    def _get_validation_exclusions(self):
        exclude = super()._get_validation_exclusions()
        # Django leaves fields that are not on the form out of model validation, and
        # with them every constraint naming them. Keep the organization in, so a
        # duplicate tag, segment slug or contact ID is a form error, not an
        # IntegrityError on save.
        if self.instance.organization_id is not None:
            exclude.discard("organization")
        return exclude

    def clean(self):
        cleaned = super().clean()
        organization = cleaned.get("organization")
        if organization is None and self.instance.organization_id is not None:
            organization = self.instance.organization
        if organization is None:
            # A superuser left the organization empty: its field already says so.
            return cleaned
        for name, field in self.fields.items():
            if not isinstance(field, forms.ModelMultipleChoiceField | forms.ModelChoiceField):
                continue
            value = cleaned.get(name)
            related = value if isinstance(value, list | tuple) or hasattr(value, "all") else [value]
            for obj in related or []:
                owner = getattr(obj, "organization_id", None)
                if obj is not None and owner is not None and owner != organization.pk:
                    self.add_error(
                        name,
                        ValidationError(
                            "“%(obj)s” belongs to another organization; pick one of %(org)s's own.",
                            code="other_organization",
                            params={"obj": obj, "org": organization},
                        ),
                    )
        return cleaned


class ActionForm(OrganizationScopedForm):
    channels = forms.MultipleChoiceField(
        choices=Channel.choices,
        widget=forms.CheckboxSelectMultiple,
        required=False,
        initial=[Channel.WIDGET.value],
        help_text="Where the AI may use this action. New actions start on the widget only.",
    )
    body_schema = PrettyJSONField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 12, "class": "vLargeTextField code-input"}),
        help_text="JSON Schema (Draft 2020-12) of the request body, with an object at its "
        "root. Only for POST, PUT and PATCH. For raw bytes, leave it empty: the AI then "
        "sends the file base64-encoded.",
    )
    body_sample = forms.CharField(
        label="Infer from sample JSON",
        required=False,
        widget=forms.Textarea(
            attrs={
                "rows": 6,
                "class": "vLargeTextField code-input",
                "placeholder": '{"order_id": "A-1042", "reason": "damaged"}',
            }
        ),
        help_text="Paste a request body the API accepts; saving infers the schema above "
        "from it and shows it to you for review before anything is stored.",
    )

    class Meta:
        model = Action
        fields = [
            "organization",
            "name",
            "description",
            "tool_name",
            "method",
            "endpoint",
            "body_format",
            "body_schema",
            "segments",
            "requires_form",
            "tags",
            "pinned",
        ]
        widgets = {
            "description": forms.Textarea(attrs={"rows": 4, "class": "vLargeTextField"}),
            "endpoint": forms.TextInput(
                attrs={
                    "class": "vURLField",
                    "placeholder": "https://api.example.com/orders/{order_id}",
                }
            ),
        }

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            self.initial.setdefault("channels", self.instance.channels)

    def clean(self):
        cleaned = super().clean()
        self.instance.channels = cleaned.get("channels", [])
        sample = (cleaned.get("body_sample") or "").strip()
        if sample:
            self._infer_schema_for_review(sample)
        return cleaned

    def _infer_schema_for_review(self, sample: str) -> None:
        """Replace the body schema with one inferred from the sample, and stop the save.

        The admin sees the inferred schema in the form, with a note to review it; the
        next save (with the sample field emptied) stores it.
        """
        try:
            schema = infer_body_schema(sample)
        except ValidationError as error:
            self.add_error("body_sample", error)
            return
        data = self.data.copy()
        data[self.add_prefix("body_schema")] = json.dumps(schema, indent=2)
        data[self.add_prefix("body_sample")] = ""
        self.data = data
        self.cleaned_data["body_schema"] = schema
        self.add_error(
            "body_schema",
            ValidationError(
                "We inferred this schema from your sample. Review it (types, which fields "
                "are required, descriptions for the AI), then save again.",
                code="review_inferred_schema",
            ),
        )


class ValueRowForm(forms.ModelForm):
    """A header or parameter row: a static value, a magic field, or left to the AI.

    In the dashboard the wand button switches a row to a magic field picked from the
    context catalogue; an empty static value means the AI fills it in.
    """

    magic_field = forms.ChoiceField(
        label="Context value",
        required=False,
        choices=[("", "— pick a context value —"), *MAGIC_FIELDS.items()],
    )

    class Meta:
        fields = ["key", "kind", "value", "magic_field", "description", "required"]
        widgets = {
            "value": forms.TextInput(
                attrs={"placeholder": "Static value; empty = the AI fills it", "size": 30}
            ),
            "description": forms.TextInput(attrs={"placeholder": "Hint for the AI", "size": 24}),
            "key": forms.TextInput(attrs={"size": 18}),
        }

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        instance = self.instance
        if instance.pk and instance.kind == ValueKind.MAGIC:
            if instance.value.startswith(ATTRIBUTE_PREFIX):
                self.initial["magic_field"] = ATTRIBUTE_PREFIX
                self.initial["value"] = instance.value.removeprefix(ATTRIBUTE_PREFIX)
            else:
                self.initial["magic_field"] = instance.value
                self.initial["value"] = ""

    def clean(self):
        cleaned = super().clean()
        kind = cleaned.get("kind")
        value = (cleaned.get("value") or "").strip()
        if kind == ValueKind.MAGIC:
            picked = cleaned.get("magic_field")
            if not picked:
                self.add_error("magic_field", "Pick the context value this field is filled from.")
            elif picked == ATTRIBUTE_PREFIX:
                cleaned["value"] = ATTRIBUTE_PREFIX + value
            else:
                cleaned["value"] = picked
        elif kind == ValueKind.STATIC and validators.effective_kind(kind, value) == ValueKind.AI:
            # An empty static value is the dashboard's way of saying "the AI fills it".
            cleaned["kind"] = ValueKind.AI
            cleaned["value"] = ""
        return cleaned


class RowsFormSet(forms.BaseInlineFormSet):
    """Header or parameter rows, with the cross-row rules that validators hold for the
    dashboard and the API alike."""

    def kept_forms(self) -> list[forms.Form]:
        return [
            form for form in self.forms if form.cleaned_data and not form.cleaned_data.get("DELETE")
        ]

    def validate_unique(self):
        # validators.header_row_errors / parameter_row_errors check the rows' uniqueness
        # and say so on the row that repeats another; Django's generic check ("Please
        # correct the duplicate values below.") would stop clean() before them.
        pass

    def add_row_errors(self, kept: list[forms.Form], errors: dict[int, list]) -> None:
        for index, row_errors in errors.items():
            for error in row_errors:
                kept[index].add_error("key", error)


class HeaderRowsFormSet(RowsFormSet):
    def clean(self):
        super().clean()
        kept = self.kept_forms()
        keys = [form.cleaned_data.get("key") or "" for form in kept]
        self.add_row_errors(kept, validators.header_row_errors(keys))


class ParameterRowsFormSet(RowsFormSet):
    def clean(self):
        super().clean()
        kept = self.kept_forms()
        rows = [
            (form.cleaned_data.get("location"), form.cleaned_data.get("key") or "") for form in kept
        ]
        placeholders = self.instance.path_placeholders()
        self.add_row_errors(kept, validators.parameter_row_errors(rows, placeholders))


class ChannelActionForm(AdminActionForm):
    """The bulk-action bar, with the channel that enable/disable act on."""

    channel = forms.ChoiceField(choices=[("", "— channel —"), *Channel.choices], required=False)
