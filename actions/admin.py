"""The dashboard: Django's admin, shaped as the product's main UI.

Every model admin here is scoped to the signed-in support admin's organization
through one mixin, OrganizationScopedAdmin: lists, forms, related-object choices,
autocomplete lookups and bulk actions all see that organization alone. Another
organization's object is a 404, exactly like one that does not exist.
"""

from django.contrib import admin, messages
from django.contrib.admin.models import CHANGE, LogEntry
from django.contrib.admin.options import IncorrectLookupParameters
from django.contrib.admin.utils import flatten_fieldsets
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin
from django.db import models
from django.db.models import Count
from django.http import Http404
from django.utils.html import format_html, format_html_join
from django.utils.translation import ngettext

from actions.filters import HAND_AUTHORED, ActionFilterSet
from actions.forms import (
    ActionForm,
    ChannelActionForm,
    HeaderRowsFormSet,
    OrganizationScopedForm,
    ParameterRowsFormSet,
    PrettyJSONField,
    ValueRowForm,
)
from actions.lint import action_warnings
from actions.models import (
    Action,
    ActionHeader,
    ActionParameter,
    Channel,
    Contact,
    Organization,
    Segment,
    SpecSource,
    Tag,
    User,
    channel_field,
)

admin.site.site_header = "OpenCX Actions"
admin.site.site_title = "OpenCX Actions"
admin.site.index_title = "Dashboard"


def can_use_dashboard(user) -> bool:
    return user.is_active and (user.is_superuser or user.is_support_admin)


class OrganizationScopedAdmin(admin.ModelAdmin):
    """Admin for a model owned by an organization (it has an `organization` FK)."""

    form = OrganizationScopedForm
    formfield_overrides = {models.JSONField: {"form_class": PrettyJSONField}}

    def get_queryset(self, request):
        return super().get_queryset(request).for_user(request.user)

    def get_object(self, request, object_id, from_field=None):
        obj = super().get_object(request, object_id, from_field)
        if obj is None:
            # Admin's default is a redirect with "doesn't exist"; a 404 is what an
            # object of another organization must look like.
            raise Http404
        return obj

    def has_module_permission(self, request):
        return can_use_dashboard(request.user)

    def has_view_permission(self, request, obj=None):
        return can_use_dashboard(request.user)

    def has_add_permission(self, request):
        return can_use_dashboard(request.user)

    def has_change_permission(self, request, obj=None):
        return can_use_dashboard(request.user)

    def has_delete_permission(self, request, obj=None):
        return can_use_dashboard(request.user)

    def get_exclude(self, request, obj=None):
        exclude = list(super().get_exclude(request, obj) or [])
        if not request.user.is_superuser:
            exclude.append("organization")
        return exclude

    def get_fields(self, request, obj=None):
        fields = super().get_fields(request, obj)
        if request.user.is_superuser:
            return fields
        return [f for f in fields if f != "organization"]

    def get_fieldsets(self, request, obj=None):
        fieldsets = super().get_fieldsets(request, obj)
        if request.user.is_superuser or not self.fieldsets:
            return fieldsets
        return [
            (name, {**opts, "fields": [f for f in opts["fields"] if f != "organization"]})
            for name, opts in fieldsets
        ]

    def get_readonly_fields(self, request, obj=None):
        fields = list(super().get_readonly_fields(request, obj))
        if obj is not None and request.user.is_superuser:
            # Moving an object between organizations would leave the other objects
            # that point at it (restrictions, memberships) crossing organizations.
            fields.append("organization")
        return fields

    def get_list_display(self, request):
        columns = list(super().get_list_display(request))
        if request.user.is_superuser:
            columns.append("organization")
        return columns

    def get_list_filter(self, request):
        filters = list(super().get_list_filter(request))
        if request.user.is_superuser:
            filters.append("organization")
        return filters

    def get_form(self, request, obj=None, change=False, **kwargs):
        form = super().get_form(request, obj, change=change, **kwargs)
        if request.user.is_superuser:
            return form
        # A per-request subclass: the class attribute must not leak across requests.
        return type(form.__name__, (form,), {"request_organization": request.user.organization})

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        return self._scoped(db_field, request, super().formfield_for_foreignkey, **kwargs)

    def formfield_for_manytomany(self, db_field, request, **kwargs):
        return self._scoped(db_field, request, super().formfield_for_manytomany, **kwargs)

    def _scoped(self, db_field, request, make_field, **kwargs):
        related = db_field.related_model
        if related is not Organization and hasattr(related.objects, "for_user"):
            kwargs["queryset"] = related.objects.for_user(request.user)
        return make_field(db_field, request, **kwargs)

    def save_model(self, request, obj, form, change):
        if not change and not request.user.is_superuser:
            obj.organization = request.user.organization
        super().save_model(request, obj, form, change)


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


class ScopedRelatedFilter(admin.SimpleListFilter):
    """A sidebar filter over a related, organization-owned model (tags, segments...).

    The URL names the object by id, like Django's own relation filters. The object is
    taken from the choices the sidebar loaded, which are the user's organization's: a
    malformed id (?tag=abc) is the admin's "invalid lookup" redirect, and an id of
    another organization matches nothing.
    """

    model = None

    def lookups(self, request, model_admin):
        self.objects = {str(obj.pk): obj for obj in self.model.objects.for_user(request.user)}
        return [(pk, self.label(obj)) for pk, obj in self.objects.items()]

    def label(self, obj) -> str:
        return str(obj)

    def queryset(self, request, queryset):
        value = self.value()
        if not value:
            return queryset
        try:
            int(value)
        except ValueError as error:
            raise IncorrectLookupParameters(error) from error
        chosen = self.objects.get(value)
        if chosen is None:
            return queryset.none()
        return self.filter_by(queryset, chosen)

    def filter_by(self, queryset, chosen):
        raise NotImplementedError


class TagFilter(ScopedRelatedFilter):
    title = "tag"
    parameter_name = "tag"
    model = Tag

    def filter_by(self, queryset, chosen):
        return ActionFilterSet.filter_tags_any(queryset, "tags", [chosen])


class SegmentFilter(ScopedRelatedFilter):
    """Contacts in a segment."""

    title = "segment"
    parameter_name = "segment"
    model = Segment

    def filter_by(self, queryset, chosen):
        return queryset.filter(segments=chosen)


class ActionSegmentFilter(SegmentFilter):
    """Actions restricted to a segment."""

    def filter_by(self, queryset, chosen):
        return ActionFilterSet.filter_segment(queryset, "segment", chosen)


class ChannelFilter(admin.SimpleListFilter):
    title = "channel"
    parameter_name = "channel"

    def lookups(self, request, model_admin):
        return Channel.choices

    def queryset(self, request, queryset):
        if self.value() in Channel.values:
            return ActionFilterSet.filter_channel(queryset, "channel", self.value())
        return queryset


class SourceFilter(ScopedRelatedFilter):
    title = "source"
    parameter_name = "source"
    model = SpecSource

    def lookups(self, request, model_admin):
        return [(HAND_AUTHORED, "Hand-authored"), *super().lookups(request, model_admin)]

    def label(self, obj) -> str:
        return f"OpenAPI: {obj}"

    def queryset(self, request, queryset):
        if self.value() == HAND_AUTHORED:
            return ActionFilterSet.filter_source(queryset, "source", HAND_AUTHORED)
        return super().queryset(request, queryset)

    def filter_by(self, queryset, chosen):
        return ActionFilterSet.filter_source(queryset, "source", chosen)


class ValueRowInline(admin.TabularInline):
    form = ValueRowForm
    extra = 0
    classes = ["value-rows"]

    def has_view_permission(self, request, obj=None):
        return can_use_dashboard(request.user)

    has_add_permission = has_change_permission = has_delete_permission = has_view_permission


class ActionHeaderInline(ValueRowInline):
    model = ActionHeader
    formset = HeaderRowsFormSet
    fields = ["key", "kind", "value", "magic_field", "description", "required"]
    verbose_name = "header"
    verbose_name_plural = "Headers"


class ActionParameterInline(ValueRowInline):
    model = ActionParameter
    formset = ParameterRowsFormSet
    fields = ["location", "key", "kind", "value", "magic_field", "description", "required"]
    verbose_name = "parameter"
    verbose_name_plural = "Parameters (query and path)"


@admin.register(Action)
class ActionAdmin(OrganizationScopedAdmin):
    form = ActionForm
    action_form = ChannelActionForm
    inlines = [ActionHeaderInline, ActionParameterInline]
    list_display = [
        "display_name",
        "method",
        "endpoint",
        "tag_list",
        "channel_list",
        "source_label",
    ]
    list_display_links = ["display_name"]
    # Tags, channels, sources and segments filter through ActionFilterSet, as the API
    # does; method and pinned are Django's own single-column filters.
    list_filter = [
        TagFilter,
        ChannelFilter,
        SourceFilter,
        "method",
        "pinned",
        ActionSegmentFilter,
    ]
    search_fields = ["name", "description", "endpoint"]
    ordering = ["-pinned", "name"]
    list_select_related = ["source", "organization"]
    list_per_page = 50
    autocomplete_fields = ["segments", "tags"]
    readonly_fields = ["source", "operation_key"]
    actions = [
        "pin_selected",
        "unpin_selected",
        "enable_channel_on_selected",
        "disable_channel_on_selected",
    ]
    fieldsets = [
        (
            "What the AI reads",
            {
                "fields": ["organization", "name", "description", "tool_name"],
                "description": "The AI chooses this action from its name and description "
                "alone: the description is its prompt.",
            },
        ),
        ("Request", {"fields": ["method", "endpoint"]}),
        (
            "Body",
            {
                "fields": ["body_format", "body_schema", "body_sample"],
                "classes": ["action-body"],
                "description": "Only POST, PUT and PATCH send a body.",
            },
        ),
        # Headers and parameters (inlines) are shown here, between body and audience:
        # see templates/admin/actions/action/change_form.html.
        (
            "Who may use it, and where",
            {"fields": ["segments", "channels", "requires_form", "send_context_headers"]},
        ),
        ("Organizing", {"fields": ["tags", "pinned"]}),
    ]
    SOURCE_FIELDSET = ("Source", {"fields": ["source", "operation_key"]})

    class Media:
        css = {"all": ["actions/dashboard.css"]}
        js = ["actions/action_form.js"]

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("tags")

    def get_fieldsets(self, request, obj=None):
        fieldsets = list(super().get_fieldsets(request, obj))
        if obj is not None and obj.source_id is not None:
            fieldsets.append(self.SOURCE_FIELDSET)
        return fieldsets

    @admin.display(description="name", ordering="name")
    def display_name(self, obj: Action):
        if obj.pinned:
            return format_html('{} <span class="badge-pinned">Pinned</span>', obj.name)
        return obj.name

    @admin.display(description="tags")
    def tag_list(self, obj: Action):
        return format_html_join(
            " ", '<span class="tag">{}</span>', ((tag.name,) for tag in obj.tags.all())
        )

    @admin.display(description="channels")
    def channel_list(self, obj: Action):
        labels = dict(Channel.choices)
        return ", ".join(labels[c] for c in obj.channels) or "—"

    @admin.display(description="source", ordering="source__name")
    def source_label(self, obj: Action):
        return f"OpenAPI: {obj.source}" if obj.source_id else "Hand-authored"

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        for warning in action_warnings(obj.name, obj.tool_name, obj.description):
            messages.warning(request, warning)

    def _log_bulk_change(self, request, queryset, message: str) -> None:
        """Bulk updates skip save(); record them in each action's history all the same."""
        LogEntry.objects.log_actions(
            user_id=request.user.pk,
            queryset=queryset,
            action_flag=CHANGE,
            change_message=message,
            single_object=False,
        )

    @admin.action(description="Pin selected actions")
    def pin_selected(self, request, queryset):
        self._log_bulk_change(request, queryset, "Pinned (bulk action).")
        updated = queryset.update(pinned=True)
        self.message_user(
            request, ngettext("Pinned %d action.", "Pinned %d actions.", updated) % updated
        )

    @admin.action(description="Unpin selected actions")
    def unpin_selected(self, request, queryset):
        self._log_bulk_change(request, queryset, "Unpinned (bulk action).")
        updated = queryset.update(pinned=False)
        self.message_user(
            request, ngettext("Unpinned %d action.", "Unpinned %d actions.", updated) % updated
        )

    @admin.action(description="Enable the chosen channel on selected actions")
    def enable_channel_on_selected(self, request, queryset):
        self._set_channel(request, queryset, enabled=True)

    @admin.action(description="Disable the chosen channel on selected actions")
    def disable_channel_on_selected(self, request, queryset):
        self._set_channel(request, queryset, enabled=False)

    def _set_channel(self, request, queryset, *, enabled: bool) -> None:
        channel = request.POST.get("channel", "")
        if channel not in Channel.values:
            self.message_user(
                request,
                "Choose a channel in the list next to the action, then run it again.",
                messages.ERROR,
            )
            return
        label = Channel(channel).label
        verb = "Enabled" if enabled else "Disabled"
        self._log_bulk_change(request, queryset, f"{verb} {label} (bulk action).")
        updated = queryset.update(**{channel_field(channel): enabled})
        self.message_user(
            request,
            ngettext(
                "%(verb)s %(label)s on %(count)d action.",
                "%(verb)s %(label)s on %(count)d actions.",
                updated,
            )
            % {"verb": verb, "label": label, "count": updated},
        )


@admin.register(Segment)
class SegmentAdmin(OrganizationScopedAdmin):
    list_display = ["name", "slug", "contact_count", "action_count"]
    search_fields = ["name", "slug"]
    # Meta.ordering does not apply to the annotated (GROUP BY) queryset below; the
    # autocomplete pages through it, so it needs an explicit order.
    ordering = ["name"]
    prepopulated_fields = {"slug": ["name"]}
    fields = ["organization", "name", "slug", "description"]

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .annotate(
                contact_total=Count("contacts", distinct=True),
                action_total=Count("actions", distinct=True),
            )
        )

    def get_deleted_objects(self, objs, request):
        to_delete, model_count, perms_needed, protected = super().get_deleted_objects(objs, request)
        # The actions a segment restricts protect it (see actions.signals).
        for segment in objs:
            protected.extend(
                format_html("Action: {} (restricted to {})", action, segment)
                for action in segment.actions.all()
            )
        return to_delete, model_count, perms_needed, protected

    @admin.display(description="contacts", ordering="contact_total")
    def contact_count(self, obj):
        return obj.contact_total

    @admin.display(description="restricted actions", ordering="action_total")
    def action_count(self, obj):
        return obj.action_total


@admin.register(Contact)
class ContactAdmin(OrganizationScopedAdmin):
    list_display = ["external_id", "name", "email", "segment_list"]
    list_filter = [SegmentFilter]
    search_fields = ["external_id", "name", "email", "phone"]
    autocomplete_fields = ["segments"]
    fields = ["organization", "external_id", "name", "email", "phone", "attributes", "segments"]

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("segments")

    @admin.display(description="segments")
    def segment_list(self, obj):
        return ", ".join(segment.name for segment in obj.segments.all()) or "—"


@admin.register(Tag)
class TagAdmin(OrganizationScopedAdmin):
    list_display = ["name", "action_count"]
    search_fields = ["name"]
    ordering = ["name"]  # see SegmentAdmin.ordering
    fields = ["organization", "name"]

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(action_total=Count("actions"))

    @admin.display(description="actions", ordering="action_total")
    def action_count(self, obj):
        return obj.action_total


@admin.register(Organization)
class OrganizationAdmin(admin.ModelAdmin):
    """Organizations are managed by superusers (the operators of this installation)."""

    list_display = ["name", "slug", "created_at"]
    search_fields = ["name", "slug"]
    prepopulated_fields = {"slug": ["name"]}


@admin.register(User)
class UserAdmin(BaseUserAdmin):
    list_display = [*BaseUserAdmin.list_display, "organization"]
    list_filter = [*BaseUserAdmin.list_filter, "organization"]
    list_select_related = ["organization"]
    fieldsets = [
        *BaseUserAdmin.fieldsets,
        ("Organization", {"fields": ["organization"]}),
    ]
    add_fieldsets = [
        (
            None,
            {
                "classes": ["wide"],
                "fields": ["username", "organization", "is_staff", "password1", "password2"],
            },
        ),
    ]


from actions import key_admin  # noqa: E402,F401  (registers the API key admin)
