"""Execution in the dashboard: global variables (write-only secrets bound to hosts),
the execution log, the form submissions (the customers' consent records), and the
Test button's calls.

The log, the submissions and the test calls are records of what happened: read-only.
Each action's page shows its success rate and latency, and its Test panel, through
template tags (execution/templatetags/execution_dashboard.py), so `actions` never
imports us; the panel posts to TestCallAdmin's `send` URL, and its result polls
TestCallAdmin's `result` URL.
"""

import json
from typing import Any
from urllib.parse import urlencode

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.views.main import ChangeList
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponseNotAllowed
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.html import format_html

from actions.admin import OrganizationScopedAdmin, RecordAdmin, ScopedRelatedFilter
from actions.forms import OrganizationScopedForm, PrettyJSONField
from actions.models import Action, Channel
from execution.models import Execution, FormSubmission, GlobalVariable, TestCall
from execution.testcall import (
    arguments_problems,
    changes_data,
    context_rows,
    endpoint_host,
    placeholder_values,
    request_test_call,
    sample_arguments,
    sent_variables,
    shown_status,
    waiting_long,
)


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


# --- The Test button ------------------------------------------------------------------


class TestCallForm(forms.Form):
    """The Test panel's form: the sample arguments, and for a call that changes data,
    the admin's explicit confirmation."""

    prefix = "test"  # the panel sits on the action's page, next to its own fields

    arguments = PrettyJSONField(
        label="Sample arguments",
        required=False,
        widget=forms.Textarea(attrs={"rows": 8, "class": "vLargeTextField code-input"}),
        help_text="What the AI would fill in, prefilled from the tool schema. Edit before "
        "sending; they are checked against the schema as the AI's are.",
    )
    confirm = forms.BooleanField(required=True)

    def __init__(self, action: Action, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.action = action
        if changes_data(action):
            method, confirm = action.method, self.fields["confirm"]
            confirm.label = (
                f"I understand this {method} really changes data at {endpoint_host(action)}"
            )
            confirm.error_messages["required"] = (
                f"Tick the box to send it: a {method} test call is a real call."
            )
        else:
            del self.fields["confirm"]

    def clean_arguments(self):
        arguments = self.cleaned_data["arguments"]
        if arguments is None:
            arguments = {}
        problems = arguments_problems(self.action, arguments)
        if problems:
            raise forms.ValidationError(problems)
        return arguments


def test_call_url(test_call: TestCall) -> str:
    """Where a test call is shown: its action's page, at the Test panel."""
    change = reverse("admin:actions_action_change", args=[test_call.action_id])
    return f"{change}?test={test_call.pk}#test-action"


def test_panel_context(
    action: Action, *, form: TestCallForm | None = None, test_call: TestCall | None = None
) -> dict[str, Any]:
    """The Test panel (admin/execution/test_action.html): the form, what the call is
    sent with (placeholder context, the names of the global variables, never their
    values), and the result of `test_call` if one is shown."""
    if form is None:
        if test_call is not None:
            arguments = test_call.arguments  # testing again starts from the last sample
        else:
            arguments = sample_arguments(action.tool_schema().schema)
        form = TestCallForm(action, initial={"arguments": arguments})
    return {
        "action": action,
        "form": form,
        "send_url": reverse("admin:execution_testcall_send", args=[action.pk]),
        "history_url": reverse("admin:execution_testcall_changelist")
        + "?"
        + urlencode({"action": action.pk}),
        "changes_data": changes_data(action),
        "host": endpoint_host(action),
        "context_rows": context_rows(placeholder_values(action)),
        "variables": sent_variables(action),
        "result": test_result_context(test_call) if test_call is not None else None,
    }


def test_result_context(test_call: TestCall) -> dict[str, Any]:
    """A test call's result (admin/execution/test_call_result.html), as it stands."""
    status = shown_status(test_call)
    execution = test_call.execution
    context = {
        "test_call": test_call,
        "status": status,
        "status_label": TestCall.Status(status).label,
        "finished": status in TestCall.FINISHED,
        "waiting_long": waiting_long(test_call),
        "result_url": reverse("admin:execution_testcall_result", args=[test_call.pk]),
        "execution": execution,
        "arguments_shown": json.dumps(test_call.arguments, indent=2, ensure_ascii=False),
        "context_rows": context_rows(test_call.context),
    }
    if execution is not None:
        context |= {
            "log_url": reverse("admin:execution_execution_change", args=[execution.pk]),
            "request_shown": json.dumps(execution.request, indent=2, ensure_ascii=False),
            "response_headers": sorted(execution.response_headers.items()),
            "response_body": readable_body(execution),
        }
    return context


def readable_body(execution: Execution) -> str:
    """The logged response body (masked, cut), indented when it is whole JSON."""
    try:
        parsed = json.loads(execution.response_body)
    except ValueError:
        return execution.response_body
    if not isinstance(parsed, dict | list):
        return execution.response_body
    return json.dumps(parsed, indent=2, ensure_ascii=False)


class TestCallActionFilter(ExecutionActionFilter):
    """The test calls of one action (the action's Test panel links here)."""


@admin.register(TestCall)
class TestCallAdmin(RecordAdmin):
    """The Test button's calls: who tested which action, when, and how it went. Reached
    from an action's Test panel, not the sidebar; the calls themselves are in the
    execution log. A test call opens on its action's page, where its result is shown."""

    list_display = ["created_at", "action_link", "method", "requested_by", "result"]
    list_filter = [TestCallActionFilter, "status"]
    search_fields = ["action__name", "action__tool_name"]
    list_select_related = ["action", "execution", "requested_by", "organization"]
    date_hierarchy = "created_at"
    show_full_result_count = False

    def has_module_permission(self, request):
        return False

    def get_urls(self):
        view = self.admin_site.admin_view
        return [
            path("send/<int:action_pk>/", view(self.send_view), name="execution_testcall_send"),
            path("<int:pk>/result/", view(self.result_view), name="execution_testcall_result"),
            *super().get_urls(),
        ]

    def change_view(self, request, object_id, form_url="", extra_context=None):
        return redirect(test_call_url(self.get_object(request, object_id)))

    def send_view(self, request, action_pk: int):
        """The Test panel's POST: record the test call and show it on the action's page
        (an invalid sample is shown again, with its errors, on a page of its own)."""
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        action = Action.objects.for_user(request.user).filter(pk=action_pk).first()
        if action is None:
            raise Http404
        if not self.admin_site.get_model_admin(Action).has_change_permission(request, action):
            raise PermissionDenied
        form = TestCallForm(action, request.POST)
        if not form.is_valid():
            context = {
                **self.admin_site.each_context(request),
                "title": f"Test {action}",
                **test_panel_context(action, form=form),
            }
            return TemplateResponse(request, "admin/execution/testcall/send.html", context)
        test_call = request_test_call(
            action, user=request.user, arguments=form.cleaned_data["arguments"]
        )
        return redirect(test_call_url(test_call))

    def result_view(self, request, pk: int):
        """The result, as the panel polls it: an HTML fragment rendered here, so the
        page's script inserts markup that is already escaped."""
        test_call = (
            TestCall.objects.for_user(request.user)
            .select_related("execution")
            .filter(pk=pk)
            .first()
        )
        if test_call is None:
            raise Http404
        return TemplateResponse(
            request,
            "admin/execution/test_call_result.html",
            {"result": test_result_context(test_call)},
        )

    @admin.display(description="action", ordering="action__name")
    def action_link(self, test_call: TestCall):
        return format_html('<a href="{}">{}</a>', test_call_url(test_call), test_call.action.name)

    @admin.display(description="method", ordering="action__method")
    def method(self, test_call: TestCall) -> str:
        return test_call.action.method

    @admin.display(description="result", ordering="status")
    def result(self, test_call: TestCall) -> str:
        status = shown_status(test_call)
        execution = test_call.execution
        if status == TestCall.Status.DONE:
            verdict = "Pass" if test_call.passed else "Fail"
            return f"{verdict}: {execution.status_code}"
        if status == TestCall.Status.FAILED and execution is not None:
            return f"Not completed: {execution.cause}"
        return TestCall.Status(status).label
