"""The domain: organizations, their people and audiences, and their actions."""

import functools
import secrets
from collections.abc import Iterable

from django.contrib.auth.models import AbstractUser
from django.core.exceptions import ValidationError
from django.core.validators import RegexValidator
from django.db import models
from django.db.models import Exists, OuterRef, ProtectedError, Value
from django.db.models.functions import Lower
from django.utils import timezone
from rest_framework_api_key.models import AbstractAPIKey, BaseAPIKeyManager

from actions import validators
from actions.context import validate_magic_field
from actions.tool_schema import InputRow, ToolSchema, build_tool_schema


class TimeStamped(models.Model):
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        abstract = True


def new_tools_version() -> int:
    """A fresh random stamp, not a counter: a counter restarts when a database is
    recreated while the shared cache still holds renderings keyed on its old values."""
    return secrets.randbits(62)


@functools.lru_cache(maxsize=65_536)
def _endpoint_placeholders(endpoint: str) -> tuple[str, ...]:
    # Parsed once per endpoint: a cold tool list asks for a thousand of them.
    return tuple(validators.parse_endpoint(endpoint))


class Organization(TimeStamped):
    name = models.CharField(max_length=200)
    slug = models.SlugField(max_length=100, unique=True)
    tools_version = models.PositiveBigIntegerField(
        default=new_tools_version,
        editable=False,
        help_text="Renewed on every change that can alter a tool list; cached lists and "
        "ETags are keyed on it.",
    )

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def delete(self, *args, **kwargs):
        # Thousands of cascaded rows would each renew the stamp; renew it once.
        from actions.signals import one_version_bump

        with one_version_bump(self.pk):
            return super().delete(*args, **kwargs)

    @staticmethod
    def bump_tools_version(organization_id: int) -> None:
        """Invalidate every cached tool list of this organization.

        The column records the change in the database; the shared cache's stamp
        (actions.state) is what the API reads on every request instead.
        """
        from actions import state

        Organization.objects.filter(pk=organization_id).update(tools_version=new_tools_version())
        state.renew(organization_id)


class User(AbstractUser):
    """A person who signs in to the dashboard.

    A support admin is a staff user who belongs to an organization and sees only its
    objects; a superuser belongs to none and sees every organization's.
    """

    organization = models.ForeignKey(
        Organization, on_delete=models.PROTECT, null=True, blank=True, related_name="users"
    )

    @property
    def is_support_admin(self) -> bool:
        return self.is_active and self.is_staff and self.organization_id is not None


class OrganizationQuerySet(models.QuerySet):
    def for_organization(self, organization) -> "OrganizationQuerySet":
        """The one scoping seam: the dashboard and the API both narrow through it."""
        return self.filter(organization_id=getattr(organization, "pk", organization))

    def for_user(self, user) -> "OrganizationQuerySet":
        """What this dashboard user may see: everything for a superuser, else their org's."""
        if not (user.is_active and user.is_staff):
            return self.none()
        if user.is_superuser:
            return self
        if getattr(user, "organization_id", None) is None:
            return self.none()
        return self.for_organization(user.organization_id)


class OrganizationOwned(TimeStamped):
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE)

    objects = OrganizationQuerySet.as_manager()

    class Meta:
        abstract = True


class SegmentQuerySet(OrganizationQuerySet):
    def delete(self):
        refuse_to_open_restricted_actions(self)
        return super().delete()


class Segment(OrganizationOwned):
    """An audience of contacts; actions restricted to segments reach only their members.

    A segment that still restricts actions cannot be deleted on its own: dropping it
    would drop the restrictions that name it, and an action with no restriction left
    is open to every contact. Deleting the whole organization takes both together.
    """

    name = models.CharField(max_length=100)
    slug = models.SlugField(max_length=100, help_text="Used by the API to name this segment.")
    description = models.TextField(blank=True)

    objects = SegmentQuerySet.as_manager()

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "slug"],
                name="actions_segment_unique_slug",
                violation_error_message="A segment with this slug already exists.",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    def delete(self, *args, **kwargs):
        refuse_to_open_restricted_actions([self])
        return super().delete(*args, **kwargs)


def refuse_to_open_restricted_actions(segments) -> None:
    """Raise ProtectedError, before anything is deleted, if these segments restrict actions."""
    restricted = list(
        Action.objects.filter(segments__in=[s.pk for s in segments]).distinct().order_by("name")
    )
    if restricted:
        names = ", ".join(f"“{a.name}”" for a in restricted[:5])
        raise ProtectedError(
            f"Restricted actions use this segment ({names}). Remove the segment from their "
            "audience first: without it they would open to every contact.",
            set(restricted),
        )


class Contact(OrganizationOwned):
    """A customer the AI talks to, known to us by the organization's own ID."""

    external_id = models.CharField(max_length=255, help_text="The contact's ID in your own system.")
    name = models.CharField(max_length=200, blank=True)
    email = models.EmailField(blank=True)
    phone = models.CharField(max_length=50, blank=True)
    attributes = models.JSONField(
        default=dict,
        blank=True,
        help_text="Free-form values (plan, country...) that magic fields can send.",
    )
    segments = models.ManyToManyField(Segment, blank=True, related_name="contacts")

    class Meta:
        ordering = ["external_id"]
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "external_id"],
                name="actions_contact_unique_external_id",
                violation_error_message="A contact with this ID already exists.",
            ),
        ]

    def __str__(self) -> str:
        return self.name or self.external_id

    @classmethod
    def from_db(cls, db, field_names, values):
        contact = super().from_db(db, field_names, values)
        # The ID as stored: saving a new one must also forget what is cached under it.
        contact.stored_external_id = contact.__dict__.get("external_id")
        return contact

    def clean(self) -> None:
        if not isinstance(self.attributes, dict):
            raise ValidationError(
                {"attributes": 'Attributes must be a JSON object, such as {"plan": "pro"}.'}
            )
        try:
            validators.validate_storable_json(self.attributes)
        except ValidationError as error:
            raise ValidationError({"attributes": error.error_list}) from None


class Tag(OrganizationOwned):
    name = models.CharField(
        max_length=50,
        validators=[
            RegexValidator(
                r"^[\w.-]+\Z",
                "Use letters, digits, '_', '-' or '.' in a tag (for example billing).",
            )
        ],
    )

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(
                Lower("name"),
                "organization",
                name="actions_tag_unique_name",
                violation_error_message="A tag with this name already exists.",
            ),
        ]

    def __str__(self) -> str:
        return self.name


class SpecSource(OrganizationOwned):
    """A named OpenAPI document whose operations generate actions.

    Re-importing a source replaces what it generated and nothing else.
    """

    name = models.SlugField(max_length=100)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "name"], name="actions_specsource_unique_name"
            ),
        ]

    def __str__(self) -> str:
        return self.name

    def delete(self, *args, **kwargs):
        from actions.signals import one_version_bump

        with one_version_bump(self.organization_id):
            return super().delete(*args, **kwargs)


class Channel(models.TextChoices):
    WIDGET = "widget", "Widget"
    EMAIL = "email", "Email"
    SMS = "sms", "SMS"
    WHATSAPP = "whatsapp", "WhatsApp"
    PHONE = "phone", "Phone"
    SLACK = "slack", "Slack"


def channel_field(channel: str) -> str:
    """The boolean column that says whether an action is enabled on a channel."""
    return f"on_{Channel(channel).value}"


class ActionQuerySet(OrganizationQuerySet):
    def enabled_on(self, channel: str) -> "ActionQuerySet":
        return self.filter(**{channel_field(channel): True})

    def visible_to(self, segment_ids: Iterable[int]) -> "ActionQuerySet":
        """Actions a contact in these segments may use: unrestricted ones, and those
        restricted to ANY of the segments. An anonymous contact has no segments."""
        restrictions = Action.segments.through.objects.filter(action_id=OuterRef("pk"))
        visible = ~Exists(restrictions)
        segment_ids = list(segment_ids)
        if segment_ids:
            visible |= Exists(restrictions.filter(segment_id__in=segment_ids))
        return self.filter(visible)

    def update(self, **kwargs) -> int:
        # Bulk updates (the dashboard's bulk actions, the API) send no signals, so the
        # organizations' tool lists are invalidated here.
        organization_ids = set(self.values_list("organization_id", flat=True).distinct())
        kwargs.setdefault("updated_at", timezone.now())
        updated = super().update(**kwargs)
        for organization_id in organization_ids:
            Organization.bump_tools_version(organization_id)
        return updated

    def hand_authored(self) -> "ActionQuerySet":
        return self.filter(source__isnull=True)


class Action(OrganizationOwned):
    """One HTTPS call the AI may make for a customer."""

    class Method(models.TextChoices):
        GET = "GET", "GET"
        POST = "POST", "POST"
        PUT = "PUT", "PUT"
        PATCH = "PATCH", "PATCH"
        DELETE = "DELETE", "DELETE"

    class BodyFormat(models.TextChoices):
        JSON = "json", "JSON"
        MULTIPART = "multipart", "Multipart form data"
        FORM = "form", "URL-encoded form"
        # The bytes themselves (a file upload as application/octet-stream): the AI
        # sends them base64-encoded as `body`; see validators.binary_body_schema.
        BINARY = "binary", "Raw bytes (a file)"

    METHODS_WITH_BODY = frozenset({Method.POST, Method.PUT, Method.PATCH})

    name = models.CharField(max_length=200, validators=[validators.validate_name])
    tool_name = models.CharField(
        max_length=validators.TOOL_NAME_MAX_LENGTH,
        blank=True,
        validators=[validators.validate_tool_name],
        help_text="The function name the AI calls. Leave empty to derive it from the name.",
    )
    description = models.TextField(
        validators=[validators.validate_description],
        help_text="This is the prompt: the AI reads it to decide when to use the action. "
        "Say what it does, for whom, and when.",
    )
    method = models.CharField(max_length=6, choices=Method.choices, default=Method.GET)
    endpoint = models.CharField(
        max_length=2048,
        help_text="An https:// URL; mark path parameters as {name}, e.g. "
        "https://api.example.com/orders/{order_id}.",
    )
    body_schema = models.JSONField(
        null=True,
        blank=True,
        help_text="JSON Schema (Draft 2020-12) of the request body, with an object at its root.",
    )
    body_format = models.CharField(
        max_length=10, choices=BodyFormat.choices, default=BodyFormat.JSON
    )
    segments = models.ManyToManyField(
        Segment,
        blank=True,
        related_name="actions",
        help_text="Leave empty for every contact; otherwise only members of any listed "
        "segment may use this action.",
    )
    tags = models.ManyToManyField(Tag, blank=True, related_name="actions")
    on_widget = models.BooleanField("Widget", default=True)
    on_email = models.BooleanField("Email", default=False)
    on_sms = models.BooleanField("SMS", default=False)
    on_whatsapp = models.BooleanField("WhatsApp", default=False)
    on_phone = models.BooleanField("Phone", default=False)
    on_slack = models.BooleanField("Slack", default=False)
    pinned = models.BooleanField(default=False, help_text="Pinned actions are listed first.")
    send_context_headers = models.BooleanField(
        default=False,
        help_text="Also send x-opencx-org-id, x-opencx-session-id, x-opencx-ticket-number "
        "and x-opencx-external-user-id with each call.",
    )
    requires_form = models.BooleanField(
        "Require form submission",
        default=False,
        help_text="The AI pauses on a form the customer must submit before the call goes out.",
    )
    source = models.ForeignKey(
        SpecSource,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="actions",
        help_text="The OpenAPI source that generated this action; empty when hand-authored.",
    )
    operation_key = models.CharField(
        max_length=600, blank=True, help_text="The operation this action was generated from."
    )
    source_fingerprint = models.CharField(
        max_length=64,
        blank=True,
        editable=False,
        help_text="A hash of what the spec defines for this action; an unchanged "
        "re-import compares it and writes nothing.",
    )

    objects = ActionQuerySet.as_manager()

    class Meta:
        ordering = ["-pinned", "name"]
        constraints = [
            models.UniqueConstraint(
                Lower("name"),
                "organization",
                name="actions_action_unique_name",
                violation_error_message="An action with this name already exists.",
            ),
            models.UniqueConstraint(
                fields=["organization", "tool_name"],
                name="actions_action_unique_tool_name",
                violation_error_message="An action with this tool name already exists.",
            ),
            models.CheckConstraint(
                condition=models.Q(method__in=["GET", "POST", "PUT", "PATCH", "DELETE"]),
                name="actions_action_method_valid",
            ),
        ]
        indexes = [models.Index(fields=["organization", "-pinned", "name"])]

    def __str__(self) -> str:
        return self.name

    def save(self, *args, **kwargs) -> None:
        if not self.tool_name and self.name:
            self.tool_name = self.unique_tool_name(validators.derive_tool_name(self.name))
        super().save(*args, **kwargs)

    @property
    def channels(self) -> list[str]:
        return [c.value for c in Channel if getattr(self, channel_field(c))]

    @channels.setter
    def channels(self, values) -> None:
        for channel in Channel:
            setattr(self, channel_field(channel), channel.value in set(values))

    @property
    def is_hand_authored(self) -> bool:
        return self.source_id is None

    @property
    def accepts_body(self) -> bool:
        """POST, PUT and PATCH send a body; an imported DELETE may too, if its spec
        defines one (some APIs take a body on DELETE)."""
        return self.method in self.METHODS_WITH_BODY or (
            self.method == self.Method.DELETE and not self.is_hand_authored
        )

    def input_rows(self, parameters=None, headers=None) -> list[InputRow]:
        """The values the AI fills: AI-kind rows, and placeholders no row covers.

        `parameters` and `headers`: the action's rows, when the caller loaded them
        already (anything with the rows' attributes; headers need no `location`).
        """
        if parameters is None:
            parameters = self.parameters.all()
        if headers is None:
            headers = self.headers.all()
        rows: list[InputRow] = []
        covered: set[str] = set()
        for row in [*parameters, *headers]:
            location = getattr(row, "location", "header")
            if location == ActionParameter.Location.PATH:
                covered.add(row.key)
            if row.kind == ValueKind.AI:
                rows.append(
                    InputRow(location, row.key, row.description, row.required, row.value_schema)
                )
        rows.extend(
            InputRow("path", name) for name in self.path_placeholders() if name not in covered
        )
        return rows

    def tool_schema(self, parameters=None, headers=None) -> ToolSchema:
        """The JSON Schema the AI fills in, and where each argument goes."""
        body = self.body_schema if self.accepts_body else None
        return build_tool_schema(body, self.input_rows(parameters, headers))

    def path_placeholders(self) -> list[str]:
        """The endpoint's {placeholders}, or none when the endpoint is invalid."""
        try:
            return list(_endpoint_placeholders(self.endpoint))
        except ValidationError:
            return []

    def clean(self) -> None:
        errors: dict[str, list] = {}
        if self.endpoint:
            try:
                validators.parse_endpoint(self.endpoint)
            except ValidationError as error:
                errors.setdefault("endpoint", []).extend(error.error_list)
        if (
            self.body_format == self.BodyFormat.BINARY
            and self.body_schema in (None, {})
            and self.accepts_body
        ):
            self.body_schema = validators.binary_body_schema()
        if self.body_schema not in (None, {}):
            if not self.accepts_body:
                errors.setdefault("body_schema", []).append(
                    ValidationError(
                        "%(method)s requests carry no body. Remove the body schema, or change "
                        "the method to POST, PUT or PATCH.",
                        code="body_not_allowed",
                        params={"method": self.method},
                    )
                )
            else:
                try:
                    # An imported action's body is what its spec defines: any root
                    # (carried whole as `body`), and nested multipart parts (sent as
                    # JSON). Hand-authored bodies keep the simpler, stricter shape.
                    imported = self.source_id is not None
                    if self.body_format == self.BodyFormat.BINARY:
                        validators.validate_binary_body(self.body_schema)
                    else:
                        validators.validate_body_schema(self.body_schema, object_root=not imported)
                    validators.validate_storable_json(self.body_schema)
                    forms = (self.BodyFormat.MULTIPART, self.BodyFormat.FORM)
                    if self.body_format in forms and not imported:
                        validators.validate_multipart_body(self.body_schema)
                except ValidationError as error:
                    errors.setdefault("body_schema", []).extend(error.error_list)
        if self.body_format != self.BodyFormat.JSON and not self.accepts_body:
            errors.setdefault("body_format", []).append(
                ValidationError(
                    "%(method)s requests carry no body, so they have no body format. "
                    "Choose JSON, or change the method to POST, PUT or PATCH.",
                    code="body_format_without_body",
                    params={"method": self.method},
                )
            )
        if self.body_schema == {}:
            self.body_schema = None
        if self.organization_id is not None:
            errors.update(self._clean_unique_names())
        if errors:
            raise ValidationError(errors)

    def get_constraints(self):
        # clean() reports name and tool-name clashes on their own fields, with a hint;
        # the database constraints stay as the guarantee.
        checked_in_clean = {"actions_action_unique_name", "actions_action_unique_tool_name"}
        return [
            (model, [c for c in constraints if c.name not in checked_in_clean])
            for model, constraints in super().get_constraints()
        ]

    def _clean_unique_names(self) -> dict[str, list[ValidationError]]:
        """Per-organization uniqueness, checked here with friendly messages.

        Forms that leave the organization out would otherwise skip these constraints
        and fail on save with an IntegrityError.
        """
        errors: dict[str, list[ValidationError]] = {}
        siblings = Action.objects.filter(organization_id=self.organization_id).exclude(pk=self.pk)
        # Fold case in the database, exactly as the actions_action_unique_name constraint.
        self.name = self.name.strip()
        same_name = siblings.alias(folded=Lower("name")).filter(folded=Lower(Value(self.name)))
        if self.name and same_name.exists():
            errors["name"] = [
                ValidationError(
                    "An action named “%(name)s” already exists; choose another name.",
                    code="duplicate_name",
                    params={"name": self.name},
                )
            ]
        if not self.tool_name and self.name:
            self.tool_name = self.unique_tool_name(validators.derive_tool_name(self.name))
        elif self.tool_name and siblings.filter(tool_name=self.tool_name).exists():
            errors["tool_name"] = [
                ValidationError(
                    "Another action already uses the tool name “%(tool_name)s”; "
                    "tool names must be unique so the AI can tell actions apart.",
                    code="duplicate_tool_name",
                    params={"tool_name": self.tool_name},
                )
            ]
        return errors

    def unique_tool_name(self, base: str) -> str:
        """`base`, or `base_2`, `base_3`... whichever is free in this organization."""
        # Suffixed candidates may shorten the base to fit 64 characters, so look up
        # everything sharing the shortest prefix a candidate can have.
        shortest = base[: validators.TOOL_NAME_MAX_LENGTH - 8]
        taken = set(
            Action.objects.filter(
                organization_id=self.organization_id, tool_name__startswith=shortest
            )
            .exclude(pk=self.pk)
            .values_list("tool_name", flat=True)
        )
        candidate, n = base, 1
        while candidate in taken:
            n += 1
            suffix = f"_{n}"
            candidate = base[: validators.TOOL_NAME_MAX_LENGTH - len(suffix)] + suffix
        return candidate


class ValueKind(models.TextChoices):
    STATIC = "static", "Static value"
    MAGIC = "magic", "Magic field (from the conversation)"
    AI = "ai", "Filled by the AI"


class ValueRow(TimeStamped):
    """A header or parameter whose value is static, magic or left to the AI.

    Static values may hold {{global.NAME}} references to the organization's secrets;
    magic values name a context path (see actions.context); AI values are described
    to the model through the tool schema, with `value_schema` giving their type.
    """

    key = models.CharField(max_length=200)
    kind = models.CharField(max_length=6, choices=ValueKind.choices, default=ValueKind.STATIC)
    value = models.CharField(max_length=2000, blank=True)
    description = models.CharField(
        max_length=1000, blank=True, help_text="For AI-filled values: what the AI should put here."
    )
    required = models.BooleanField(default=True)
    value_schema = models.JSONField(
        null=True,
        blank=True,
        help_text="For AI-filled values: a JSON Schema for the value (a string when empty).",
    )

    class Meta:
        abstract = True
        ordering = ["id"]

    def __str__(self) -> str:
        return self.key

    def clean(self) -> None:
        errors: dict[str, list] = {}
        if self.kind == ValueKind.STATIC:
            try:
                validators.validate_static_value(self.value)
            except ValidationError as error:
                errors["value"] = error.error_list
        elif self.kind == ValueKind.MAGIC:
            try:
                validate_magic_field(self.value)
            except ValidationError as error:
                errors["value"] = error.error_list
        elif self.kind == ValueKind.AI:
            if self.value:
                errors["value"] = [
                    ValidationError(
                        "The AI fills this value, so leave it empty (or make it static).",
                        code="ai_value_given",
                    )
                ]
            if self.value_schema not in (None, {}):
                try:
                    validators.validate_value_schema(self.value_schema)
                    validators.validate_storable_json(self.value_schema)
                except ValidationError as error:
                    errors["value_schema"] = error.error_list
        if errors:
            raise ValidationError(errors)


class ActionHeader(ValueRow):
    action = models.ForeignKey(Action, on_delete=models.CASCADE, related_name="headers")

    class Meta(ValueRow.Meta):
        constraints = [
            models.UniqueConstraint(
                Lower("key"),
                "action",
                name="actions_actionheader_unique_key",
                violation_error_message="This action already sets this header (names are "
                "case-insensitive); keep one row for it.",
            ),
        ]

    def clean(self) -> None:
        errors = {}
        try:
            validators.validate_header_name(self.key)
        except ValidationError as error:
            errors["key"] = error.error_list
        try:
            super().clean()
        except ValidationError as error:
            errors.update(error.error_dict)
        if errors:
            raise ValidationError(errors)


class ActionParameter(ValueRow):
    class Location(models.TextChoices):
        QUERY = "query", "Query"
        PATH = "path", "Path"

    action = models.ForeignKey(Action, on_delete=models.CASCADE, related_name="parameters")
    location = models.CharField(max_length=5, choices=Location.choices, default=Location.QUERY)

    class Meta(ValueRow.Meta):
        constraints = [
            models.UniqueConstraint(
                fields=["action", "location", "key"], name="actions_actionparameter_unique_key"
            ),
        ]

    def clean(self) -> None:
        errors = {}
        if self.location == self.Location.QUERY:
            try:
                validators.validate_query_key(self.key)
            except ValidationError as error:
                errors["key"] = error.error_list
        if self.location == self.Location.PATH and not validators.PLACEHOLDER_NAME_RE.match(
            self.key
        ):
            errors["key"] = [
                ValidationError(
                    "A path parameter's key must match its {placeholder} in the endpoint: "
                    "letters, digits and '_'.",
                    code="invalid_path_key",
                )
            ]
        try:
            super().clean()
        except ValidationError as error:
            errors.update(error.error_dict)
        if errors:
            raise ValidationError(errors)


class APIScope(models.TextChoices):
    TOOLS = "tools", "tools: list and invoke tools (the agent runtime)"
    ACTIONS_READ = "actions:read", "actions:read: read actions"
    ACTIONS_WRITE = "actions:write", "actions:write: create, change and delete actions"
    SPECS_IMPORT = "specs:import", "specs:import: import OpenAPI specs"
    CONTACTS_WRITE = "contacts:write", "contacts:write: create and update contacts"


class APIKeyQuerySet(OrganizationQuerySet):
    def update(self, **kwargs) -> int:
        """A bulk change (revoking from the key list, say) sends no signal: renew the
        stamps of the organizations concerned here, so every process that remembers
        one of these keys reads it again. Recording a key's last use changes nothing
        that matters to that, and renews nothing."""
        if set(kwargs) <= {"last_used_at"}:
            return super().update(**kwargs)
        from actions import state

        organization_ids = set(self.values_list("organization_id", flat=True))
        updated = super().update(**kwargs)
        for organization_id in organization_ids:
            state.renew(organization_id)
        return updated


class OrganizationAPIKeyManager(BaseAPIKeyManager.from_queryset(APIKeyQuerySet)):
    """Keys read `ocx_<prefix>.<secret>`: the marker lets secret scanners spot a
    leaked key; only the part after it is hashed and stored."""

    MARKER = "ocx_"

    def create_key(self, **kwargs) -> tuple["OrganizationAPIKey", str]:
        obj, key = super().create_key(**kwargs)
        return obj, self.MARKER + key

    def get_from_key(self, key: str) -> "OrganizationAPIKey":
        return super().get_from_key(key.removeprefix(self.MARKER))

    def get_usable_keys(self):
        return super().get_usable_keys().select_related("organization")


class OrganizationAPIKey(AbstractAPIKey):
    """A key a machine (the agent runtime, a CI job) uses to act for one organization.

    Only a hash is stored; the key itself is shown once, when it is created. The
    organization comes from the key alone, never from the request.
    """

    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="api_keys"
    )
    scopes = models.CharField(
        max_length=200,
        default=APIScope.TOOLS.value,
        help_text="Space-separated: " + ", ".join(APIScope.values) + ".",
    )
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    objects = OrganizationAPIKeyManager()

    class Meta(AbstractAPIKey.Meta):
        verbose_name = "API key"
        verbose_name_plural = "API keys"

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @property
    def scope_set(self) -> frozenset[str]:
        return frozenset(self.scopes.split())

    def clean(self) -> None:
        super().clean()
        unknown = self.scope_set - set(APIScope.values)
        if unknown:
            raise ValidationError(
                {
                    "scopes": ValidationError(
                        "Unknown scope %(unknown)s; use any of %(known)s.",
                        code="unknown_scope",
                        params={
                            "unknown": ", ".join(sorted(unknown)),
                            "known": ", ".join(APIScope.values),
                        },
                    )
                }
            )
