"""Global variables in the dashboard: write-only secrets bound to hosts."""

from django import forms
from django.contrib import admin, messages

from actions.admin import OrganizationScopedAdmin
from actions.forms import OrganizationScopedForm
from execution.models import GlobalVariable


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
