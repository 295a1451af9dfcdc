"""What execution keeps: the organizations' secrets (global variables), the execution
log, the calls paused on a form the customer must submit, and the Test button's calls."""

import re
import uuid

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models

from actions.models import OrganizationOwned
from actions.validators import GLOBAL_NAME_RE
from execution import secrets

# A host, or `*.` and a domain for its subdomains, or `*` for every host.
_HOST_PATTERN_RE = re.compile(
    r"^(\*|(\*\.)?[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*)\Z"
)


class GlobalVariable(OrganizationOwned):
    """A named secret of an organization (an API key for a vendor, say).

    It is sent as a header named after it, and may be used in header and parameter
    values as {{global.NAME}}, on calls to the hosts it is bound to and no other: one
    vendor's key never reaches another vendor. The value is encrypted at rest and
    write-only: nothing shows it after it is saved, and only `reveal()` decrypts it.
    """

    name = models.CharField(
        max_length=100,
        help_text="Letters, digits and '_', e.g. STRIPE_KEY. Sent as a header of this name, "
        "and usable in values as {{global.STRIPE_KEY}}.",
    )
    value_encrypted = models.TextField(editable=False)
    key_fingerprint = models.CharField(
        max_length=12, editable=False, help_text="Which encryption key sealed the value."
    )
    hosts = models.TextField(
        help_text="The hosts this secret may be sent to, one per line: api.stripe.com, "
        "*.example.com for its subdomains, or * for any host (not recommended).",
    )

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "name"],
                name="execution_globalvariable_unique_name",
                violation_error_message="A global variable with this name already exists.",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def host_patterns(self) -> list[str]:
        return [line.strip().lower() for line in self.hosts.splitlines() if line.strip()]

    @property
    def is_set(self) -> bool:
        return bool(self.value_encrypted)

    @property
    def allows_any_host(self) -> bool:
        return "*" in self.host_patterns

    def set_value(self, plaintext: str) -> None:
        self.value_encrypted = secrets.encrypt(plaintext)
        self.key_fingerprint = secrets.current_key_fingerprint()

    def reveal(self) -> str:
        """The plaintext; raises secrets.SecretUnavailable if no key opens it."""
        return secrets.decrypt(self.value_encrypted)

    def may_be_sent_to(self, host: str) -> bool:
        """Whether this secret may go to `host` (the action's endpoint host).

        >>> v = GlobalVariable(hosts="api.stripe.com\\n*.example.com")
        >>> [v.may_be_sent_to(h) for h in ["api.stripe.com", "a.example.com", "example.com",
        ...                                "evil-stripe.com"]]
        [True, True, False, False]
        """
        host = host.lower().rstrip(".")
        for pattern in self.host_patterns:
            if pattern == "*" or pattern == host:
                return True
            if pattern.startswith("*.") and host.endswith(pattern[1:]):
                return True
        return False

    def clean(self) -> None:
        errors = {}
        if not GLOBAL_NAME_RE.match(self.name or ""):
            errors["name"] = ValidationError(
                "Use letters, digits and '_', not starting with a digit (e.g. STRIPE_KEY): "
                "the name is also a header name and a {{global.NAME}} reference.",
                code="invalid_global_name",
            )
        if not self.host_patterns:
            errors["hosts"] = ValidationError(
                "Bind the secret to at least one host it may be sent to, e.g. api.stripe.com.",
                code="no_hosts",
            )
        for pattern in self.host_patterns:
            if not _HOST_PATTERN_RE.match(pattern):
                errors["hosts"] = ValidationError(
                    "“%(pattern)s” is not a host pattern. Write a host (api.stripe.com), "
                    "*.domain for its subdomains, or *; no scheme, port or path.",
                    code="invalid_host_pattern",
                    params={"pattern": pattern},
                )
                break
        if errors:
            raise ValidationError(errors)


class Execution(OrganizationOwned):
    """One call of an action: the execution log's row.

    Written before the request goes out (status `started`) and completed after, never
    inside a transaction around the call. What it records of the request has every
    secret and runtime-header value masked.
    """

    class Outcome(models.TextChoices):
        STARTED = "started", "Started"
        SUCCEEDED = "succeeded", "Succeeded (2xx)"
        FAILED = "failed", "Failed (upstream error status)"
        ERROR = "error", "Not completed (network, timeout...)"
        REFUSED = "refused", "Refused before sending"
        UNKNOWN = "unknown", "Outcome unknown"

    action = models.ForeignKey(
        "actions.Action", on_delete=models.SET_NULL, null=True, blank=True,
        related_name="executions",
    )  # fmt: skip
    action_name = models.CharField(max_length=200)
    tool_name = models.CharField(max_length=64)
    channel = models.CharField(max_length=10)
    contact_external_id = models.CharField(max_length=255, blank=True)
    is_test = models.BooleanField(default=False, help_text="Sent by the dashboard's Test button.")
    arguments = models.JSONField(default=dict, blank=True)
    request = models.JSONField(default=dict, blank=True, help_text="As sent, secrets masked.")
    outcome = models.CharField(max_length=10, choices=Outcome.choices, default=Outcome.STARTED)
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    cause = models.CharField(max_length=30, blank=True)
    detail = models.TextField(blank=True)
    duration_ms = models.FloatField(null=True, blank=True)
    truncated = models.BooleanField(default=False)
    response_headers = models.JSONField(default=dict, blank=True)
    response_body = models.TextField(blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["organization", "-created_at"]),
            models.Index(fields=["action", "-created_at"]),
        ]

    def __str__(self) -> str:
        return f"{self.tool_name} {self.get_outcome_display()}"


class FormSubmission(OrganizationOwned):
    """A call paused until the customer submits its form ("Require form submission").

    Opened when the AI invokes an action that requires a form: nothing is sent. The
    AI's validated arguments and the conversation context wait here until the customer
    submits (the call then runs once, with their values), cancels, or the form expires.
    The runtime's per-call headers are never stored: the submit call sends them again.
    Once submitted, the row is the consent record: who, when, which values, and the
    Execution they produced (see execution/submissions.py).
    """

    class Status(models.TextChoices):
        AWAITING = "awaiting", "Awaiting the customer"
        SUBMITTED = "submitted", "Submitted"
        CANCELLED = "cancelled", "Cancelled"
        EXPIRED = "expired", "Expired"

    # Not a counter: the id travels through the runtime to the customer's browser.
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    action = models.ForeignKey(
        "actions.Action", on_delete=models.SET_NULL, null=True, blank=True,
        related_name="form_submissions",
    )  # fmt: skip
    action_name = models.CharField(max_length=200)
    tool_name = models.CharField(max_length=64)
    channel = models.CharField(max_length=10)
    contact_external_id = models.CharField(max_length=255, blank=True)
    arguments = models.JSONField(
        default=dict, blank=True, help_text="The AI's validated arguments: the form's prefill."
    )
    context = models.JSONField(
        default=dict, blank=True, help_text="The conversation context the call is built from."
    )
    preview = models.JSONField(
        default=dict, blank=True,
        help_text="The request shown to the customer (method, URL, body), secrets masked.",
    )  # fmt: skip
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.AWAITING)
    expires_at = models.DateTimeField()
    submitted_at = models.DateTimeField(null=True, blank=True)
    submitted_by = models.CharField(
        max_length=255, blank=True, help_text="Who submitted the form, as the runtime named them."
    )
    submitted_values = models.JSONField(
        null=True, blank=True, help_text="The values the customer confirmed: what was sent."
    )
    execution = models.OneToOneField(
        Execution, on_delete=models.SET_NULL, null=True, blank=True,
        related_name="form_submission", help_text="The call the submission produced.",
    )  # fmt: skip

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["organization", "-created_at"])]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(status__in=["awaiting", "submitted", "cancelled", "expired"]),
                name="execution_formsubmission_status_valid",
            ),
            models.CheckConstraint(
                condition=~models.Q(status="submitted") | models.Q(submitted_at__isnull=False),
                name="execution_formsubmission_submitted_has_consent",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.tool_name} form ({self.get_status_display()})"


class TestCall(OrganizationOwned):
    """One press of an action's Test button: a real call with sample values.

    The admin's sample arguments and the placeholder context (by magic field, e.g.
    ``{"contact.email": "test@example.com"}``) are recorded when the button is pressed;
    a worker claims the row (pending -> running) and makes the call through the same
    run as the AI's, whose Execution row (``is_test``) keeps the masked request and
    the response. A row found running by a second delivery becomes outcome_unknown
    and is never sent again (see execution/testcall.py).
    """

    __test__ = False  # its name starts with "Test"; pytest must not collect it

    class Status(models.TextChoices):
        PENDING = "pending", "Waiting for a worker"
        RUNNING = "running", "Sending"
        DONE = "done", "Answered"
        FAILED = "failed", "Not completed"
        OUTCOME_UNKNOWN = "outcome_unknown", "Outcome unknown"

    FINISHED = frozenset({Status.DONE, Status.FAILED, Status.OUTCOME_UNKNOWN})

    action = models.ForeignKey(
        "actions.Action", on_delete=models.CASCADE, related_name="test_calls"
    )
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True,
        related_name="+",
    )  # fmt: skip
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.PENDING)
    arguments = models.JSONField(
        default=dict, blank=True, help_text="The sample arguments, as the admin sent them."
    )
    context = models.JSONField(
        default=dict, blank=True, help_text="The placeholder context values, by magic field."
    )
    execution = models.OneToOneField(
        Execution, on_delete=models.SET_NULL, null=True, blank=True, related_name="test_call",
        help_text="The call in the execution log (a test call): request and response.",
    )  # fmt: skip

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["organization", "-created_at"])]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(
                    status__in=["pending", "running", "done", "failed", "outcome_unknown"]
                ),
                name="execution_testcall_status_valid",
            ),
        ]

    def __str__(self) -> str:
        return f"Test of {self.action} ({self.get_status_display()})"

    @property
    def is_finished(self) -> bool:
        return self.status in self.FINISHED

    @property
    def passed(self) -> bool:
        """A 2xx answer."""
        return self.execution is not None and self.execution.outcome == Execution.Outcome.SUCCEEDED
