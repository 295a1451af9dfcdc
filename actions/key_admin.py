"""API keys in the dashboard: create one (shown once), list, revoke.

Keys are scoped like every other dashboard object (OrganizationScopedAdmin): a
support admin sees and revokes their organization's keys only. The key itself exists
in plain text for one response, in the success message after it is created; the
database holds a hash. Neither the hash nor the id (which embeds the hash) is ever a
field on these pages.
"""

from datetime import datetime

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.utils import timezone
from django.utils.html import format_html
from django.utils.translation import ngettext
from rest_framework_api_key import admin as _stock_api_key_admin  # noqa: F401 (see below)
from rest_framework_api_key.models import APIKey

from actions.admin import OrganizationScopedAdmin
from actions.forms import OrganizationScopedForm
from actions.models import APIScope, OrganizationAPIKey

# The package registers an admin for its own, organization-less APIKey model (unused
# here, and unscoped). Importing its admin module first makes the removal independent
# of the order in which admin modules are discovered.
if admin.site.is_registered(APIKey):
    admin.site.unregister(APIKey)


class APIKeyForm(OrganizationScopedForm):
    scopes = forms.MultipleChoiceField(
        choices=APIScope.choices,
        widget=forms.CheckboxSelectMultiple,
        initial=[APIScope.TOOLS.value],
        help_text="What the key may do. The agent runtime needs “tools”.",
    )

    class Meta:
        model = OrganizationAPIKey
        fields = ["organization", "name", "scopes", "expiry_date", "revoked"]
        help_texts = {"expiry_date": "Optional; the key stops working at this time."}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if not self.instance._state.adding:
            # Stored space-separated; the checkboxes want a list.
            self.initial["scopes"] = sorted(self.instance.scope_set)

    def clean_scopes(self) -> str:
        chosen = set(self.cleaned_data["scopes"])
        return " ".join(scope for scope in APIScope.values if scope in chosen)

    def clean_expiry_date(self) -> datetime | None:
        expiry = self.cleaned_data.get("expiry_date")
        adding = self.instance._state.adding  # (pk is "", not None, before a key exists)
        if expiry is not None and adding and expiry <= timezone.now():
            raise ValidationError(
                "A new key must expire in the future; leave this empty for a key that "
                "does not expire.",
                code="expiry_in_past",
            )
        return expiry


@admin.register(OrganizationAPIKey)
class OrganizationAPIKeyAdmin(OrganizationScopedAdmin):
    form = APIKeyForm
    list_display = [
        "name",
        "prefix",
        "scope_list",
        "created",
        "last_used_at",
        "expiry_date",
        "revoked",
    ]
    list_filter = ["revoked"]
    search_fields = ["name", "prefix"]
    ordering = ["-created"]
    list_select_related = ["organization"]
    actions = ["revoke_selected"]
    fields = [
        "organization",
        "name",
        "prefix",
        "scopes",
        "expiry_date",
        "revoked",
        "created",
        "last_used_at",
    ]
    # Shown on an existing key only: a new key has none of these yet.
    EXISTING_KEY_FIELDS = {"prefix", "revoked", "created", "last_used_at"}

    def get_fields(self, request, obj=None):
        fields = super().get_fields(request, obj)
        if obj is None:
            return [f for f in fields if f not in self.EXISTING_KEY_FIELDS]
        return fields

    def get_readonly_fields(self, request, obj=None):
        if obj is None:
            return []
        # A key never moves to another organization.
        readonly = ["organization", "prefix", "created", "last_used_at"]
        if obj.revoked:
            # Revoking cannot be undone (the package refuses it); nothing else changes.
            readonly += ["name", "scopes", "expiry_date", "revoked"]
        return readonly

    @admin.display(description="scopes")
    def scope_list(self, obj: OrganizationAPIKey) -> str:
        return ", ".join(scope for scope in APIScope.values if scope in obj.scope_set) or "—"

    def save_model(self, request, obj, form, change):
        if change:
            super().save_model(request, obj, form, change)
            return
        key = OrganizationAPIKey.objects.MARKER + OrganizationAPIKey.objects.assign_key(obj)
        super().save_model(request, obj, form, change)
        messages.success(
            request,
            format_html(
                "The API key “{}” is <code class='api-key'>{}</code>. Copy it now and "
                "store it somewhere safe: it is shown this once and cannot be shown again.",
                obj.name,
                key,
            ),
        )

    @admin.action(description="Revoke selected API keys")
    def revoke_selected(self, request, queryset):
        revoked = queryset.filter(revoked=False).update(revoked=True)
        self.message_user(
            request,
            ngettext(
                "Revoked %d API key; it stops working at once.",
                "Revoked %d API keys; they stop working at once.",
                revoked,
            )
            % revoked,
        )
