"""Execution in the dashboard: global variables (write-only secrets bound to hosts),
the execution log, and the form submissions (the customers' consent records).

The log and the submissions are records of what happened: read-only. Each action's
page shows its success rate and latency through the `action_performance` template tag
(execution/templatetags/execution_dashboard.py), so `actions` never imports us.
"""

import json
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import flatten_fieldsets
from django.contrib.admin.views.main import ChangeList
from django.urls import reverse
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.html import format_html

from actions.admin import OrganizationScopedAdmin, ScopedRelatedFilter
from actions.forms import OrganizationScopedForm
from actions.models import Action, Channel
from execution.models import Execution, FormSubmission, GlobalVariable


class GlobalVariableForm(OrganizationScopedForm):
    value = forms.CharField(
        label="Secret value",
        required=False,
        strip=False,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        help_text="Write-only: it is encrypted when saved and never shown again. Leave "
        "empty to keep the current value.",
    )

    class Meta:
        model = GlobalVariable
        fields = ["organization", "name", "value", "hosts"]
        widgets = {"hosts": forms.Textarea(attrs={"rows": 3, "placeholder": "api.stripe.com"})}

    def clean_value(self):
        value = self.cleaned_data["value"]
        if not value and not self.instance.is_set:
            raise forms.ValidationError("Enter the secret's value.")
        if any(ch in value for ch in "\r\n\x00"):
            raise forms.ValidationError(
                "The value contains a line break or NUL character, which cannot be sent in "
                "a header; remove it."
            )
        return value

    def save(self, commit=True):
        if self.cleaned_data.get("value"):
            self.instance.set_value(self.cleaned_data["value"])
        return super().save(commit)


@admin.register(GlobalVariable)
class GlobalVariableAdmin(OrganizationScopedAdmin):
    form = GlobalVariableForm
    list_display = ["name", "host_list", "value_state", "key_fingerprint", "updated_at"]
    search_fields = ["name", "hosts"]
    fields = ["organization", "name", "value", "hosts", "key_fingerprint", "updated_at"]
    readonly_fields = ["key_fingerprint", "updated_at"]

    @admin.display(description="hosts")
    def host_list(self, variable: GlobalVariable) -> str:
        return ", ".join(variable.host_patterns)

    @admin.display(description="value")
    def value_state(self, variable: GlobalVariable) -> str:
        return "•••••••• (set)" if variable.is_set else "not set"

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        if obj.allows_any_host:
            messages.warning(
                request,
                f"{obj.name} may be sent to any host (*): every action's endpoint will "
                "receive it. Bind it to the hosts that need it instead.",
            )


# --- Read-only records ---------------------------------------------------------------


class RecordAdmin(OrganizationScopedAdmin):
    """A record of what happened: viewed, never added, changed or deleted here."""

    actions = None

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def get_readonly_fields(self, request, obj=None):
        # Every field shown: even a view-only page builds its form from the others.
        return flatten_fieldsets(self.get_fieldsets(request, obj))


def pretty_json(value: Any):
    return format_html(
        '<pre class="execution-json">{}</pre>', json.dumps(value, indent=2, ensure_ascii=False)
    )


class ExecutionActionFilter(ScopedRelatedFilter):
    """The log of one action (of the user's organization; the action page links here)."""

    title = "action"
    parameter_name = "action"
    model = Action

    def filter_by(self, queryset, chosen):
        return queryset.filter(action=chosen)


class StatusClassFilter(admin.SimpleListFilter):
    title = "status"
    parameter_name = "status"
    CLASSES = {"2xx": 200, "3xx": 300, "4xx": 400, "5xx": 500}

    def lookups(self, request, model_admin):
        return [*((name, name) for name in self.CLASSES), ("none", "No response")]

    def queryset(self, request, queryset):
        value = self.value()
        if value == "none":
            return queryset.filter(status_code__isnull=True)
        if value in self.CLASSES:
            low = self.CLASSES[value]
            return queryset.filter(status_code__gte=low, status_code__lt=low + 100)
        return queryset


class ExecutionChannelFilter(admin.SimpleListFilter):
    title = "channel"
    parameter_name = "channel"

    def lookups(self, request, model_admin):
        return Channel.choices

    def queryset(self, request, queryset):
        if self.value() in Channel.values:
            return queryset.filter(channel=self.value())
        return queryset


class ExecutionChangeList(ChangeList):
    # The list shows none of the large columns; a page of 100 rows need not read them.
    HEAVY = ["arguments", "request", "detail", "response_headers", "response_body"]

    def get_queryset(self, request, exclude_parameters=None):
        return super().get_queryset(request, exclude_parameters).defer(*self.HEAVY)


@admin.register(Execution)
class ExecutionAdmin(RecordAdmin):
    list_display = [
        "created_at", "action_name", "channel", "outcome", "status_code", "duration",
        "cause", "truncated", "is_test",
    ]  # fmt: skip
    list_filter = [
        ExecutionActionFilter, "outcome", StatusClassFilter, ExecutionChannelFilter, "is_test",
    ]  # fmt: skip
    search_fields = ["tool_name", "action_name", "contact_external_id"]
    date_hierarchy = "created_at"
    list_select_related = ["organization"]  # its column, for superusers
    list_per_page = 100
    show_full_result_count = False  # one COUNT(*) over a large log is enough
    fieldsets = [
        (
            "Call",
            {
                "fields": [
                    "organization",
                    "created_at",
                    "action_link",
                    "tool_name",
                    "channel",
                    "contact_external_id",
                    "is_test",
                    "consent",
                ],
            },
        ),
        (
            "Outcome",
            {"fields": ["outcome", "status_code", "duration", "cause", "detail", "truncated"]},
        ),
        (
            "Request (every secret and per-call header value masked)",
            {"fields": ["arguments_shown", "request_shown"]},
        ),
        ("Response", {"fields": ["response_headers_shown", "response_body_shown"]}),
    ]

    def get_changelist(self, request, **kwargs):
        return ExecutionChangeList

    @admin.display(description="duration", ordering="duration_ms")
    def duration(self, execution: Execution) -> str:
        if execution.duration_ms is None:
            return "—"
        return f"{execution.duration_ms:,.0f} ms"

    @admin.display(description="action")
    def action_link(self, execution: Execution):
        if execution.action_id is None:
            return f"{execution.action_name} (deleted)"
        return format_html(
            '<a href="{}">{}</a>',
            reverse("admin:actions_action_change", args=[execution.action_id]),
            execution.action_name,
        )

    @admin.display(description="form submission")
    def consent(self, execution: Execution):
        try:
            submission = execution.form_submission
        except FormSubmission.DoesNotExist:
            return "—"
        return format_html(
            '<a href="{}">Submitted by {} at {}</a>',
            reverse("admin:execution_formsubmission_change", args=[submission.pk]),
            submission.submitted_by,
            date_format(timezone.localtime(submission.submitted_at), "DATETIME_FORMAT"),
        )

    @admin.display(description="arguments")
    def arguments_shown(self, execution: Execution):
        return pretty_json(execution.arguments)

    @admin.display(description="request")
    def request_shown(self, execution: Execution):
        return pretty_json(execution.request)

    @admin.display(description="headers")
    def response_headers_shown(self, execution: Execution):
        return pretty_json(execution.response_headers)

    @admin.display(description="body (as logged, cut at 10,000 characters)")
    def response_body_shown(self, execution: Execution):
        return format_html('<pre class="execution-body">{}</pre>', execution.response_body)


@admin.register(FormSubmission)
class FormSubmissionAdmin(RecordAdmin):
    """Calls paused on a customer's form, and once submitted, their consent."""

    list_display = [
        "created_at", "action_name", "state", "contact_external_id", "submitted_by",
        "submitted_at", "execution_link",
    ]  # fmt: skip
    list_filter = ["status", ExecutionChannelFilter]
    search_fields = ["tool_name", "action_name", "contact_external_id", "submitted_by"]
    date_hierarchy = "created_at"
    list_select_related = ["organization"]
    show_full_result_count = False
    fieldsets = [
        (
            "Form",
            {
                "fields": [
                    "organization",
                    "created_at",
                    "action_name",
                    "tool_name",
                    "channel",
                    "contact_external_id",
                    "state",
                    "expires_at",
                    "arguments_shown",
                    "preview_shown",
                ],
            },
        ),
        (
            "Consent",
            {
                "fields": ["submitted_by", "submitted_at", "values_shown", "execution_link"],
                "description": "Who submitted the form, when, and the values the call was "
                "made with.",
            },
        ),
    ]

    def get_queryset(self, request):
        return super().get_queryset(request).defer("context")

    @admin.display(description="status", ordering="status")
    def state(self, submission: FormSubmission) -> str:
        # Expiry is recorded when someone next tries the form; show it as soon as it is due.
        if (
            submission.status == FormSubmission.Status.AWAITING
            and submission.expires_at <= timezone.now()
        ):
            return FormSubmission.Status.EXPIRED.label
        return submission.get_status_display()

    @admin.display(description="the AI's values")
    def arguments_shown(self, submission: FormSubmission):
        return pretty_json(submission.arguments)

    @admin.display(description="request shown to the customer")
    def preview_shown(self, submission: FormSubmission):
        return pretty_json(submission.preview)

    @admin.display(description="submitted values")
    def values_shown(self, submission: FormSubmission):
        if submission.submitted_values is None:
            return "—"
        return pretty_json(submission.submitted_values)

    @admin.display(description="call")
    def execution_link(self, submission: FormSubmission):
        if submission.execution_id is None:
            return "—"
        return format_html(
            '<a href="{}">Execution {}</a>',
            reverse("admin:execution_execution_change", args=[submission.execution_id]),
            submission.execution_id,
        )
