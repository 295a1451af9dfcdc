"""Running an action: build the request, send it, log it, hand the AI its result.

    result = run_action(action, arguments=..., channel=..., contact=..., context=...)

The Execution row is written before the request goes out and completed after it, in
autocommit (never a transaction around the call), so a crash mid-call leaves a
`started` row rather than nothing: one INSERT, with the masked request, once the
request is built, and one UPDATE with the outcome (a row the caller started, for a
form submission or the Test button, is updated with the request instead). The INSERT
is sent ahead (opencx.db.pending): the seam checks the destination, looks it up and
prepares the request while PostgreSQL commits the row, and takes a connection only
once the commit is confirmed (`http.send`'s ``before_request``). A caller
may take the UPDATE on itself (`record_later`, then `Result.record()`): the API writes
it once the AI's answer has been sent, so the AI does not wait for it.

Upstream status and body pass through to the AI (JSON parsed, text as text, cut at
EXECUTION_MAX_CHARS_FOR_AI with truncated: true); a timeout is a 408 "Request timed
out after 60000ms"; any other failure to complete is "Something went wrong" for the
AI, with its precise cause in the log. Every secret and runtime-header value is
masked in what the log keeps.
"""

import base64
import functools
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, quote_plus

from django.conf import settings

from actions import state
from actions.models import Action, Contact
from execution import http
from execution.build import (
    ArgumentsInvalid,
    ConfigurationError,
    ContextMissing,
    PreparedTool,
    build_request,
    prepare_tool,
)
from execution.models import Execution, GlobalVariable
from execution.secrets import SecretUnavailable
from opencx.db.pending import already_saved, send_insert

SOMETHING_WENT_WRONG = "Something went wrong"
MASK = "[REDACTED]"
LOGGED_BODY_CHARS = 10_000


@dataclass
class Result:
    execution: Execution
    ok: bool
    status: int | None
    body: Any = None
    truncated: bool = False
    error: str | None = None
    # The outcome is set on `execution` but not saved yet (run_action's record_later).
    unrecorded: bool = field(default=False, repr=False)

    def record(self) -> None:
        """Write the outcome to the log row, if run_action left that to the caller."""
        if self.unrecorded:
            self.unrecorded = False
            self.execution.save(update_fields=FINISHED_FIELDS)

    def for_ai(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "status": self.status,
            "body": self.body,
            "truncated": self.truncated,
            "error": self.error,
            "execution_id": self.execution.pk,
        }


def call_context(
    action: Action, channel: str, contact: str, context: dict | None, stamp: int | None = None
) -> dict:
    """The conversation context magic fields read: the runtime's, completed with what
    we know (the stored contact) and what only the server may say (organization,
    channel, the contact's ID). `stamp`: as for run_action."""
    context = dict(context or {})
    known = stored_contact(action.organization_id, contact, stamp) if contact else {}
    given = context.get("contact") if isinstance(context.get("contact"), dict) else {}
    merged = {k: v for k, v in known.items() if v not in ("", None, {})}
    merged.update({k: v for k, v in given.items() if v not in ("", None)})
    if isinstance(known.get("attributes"), dict) or isinstance(given.get("attributes"), dict):
        merged["attributes"] = {
            **(known.get("attributes") or {}),
            **(given.get("attributes") or {}),
        }
    if contact:
        merged["external_id"] = contact
    context["contact"] = merged
    context["organization"] = {"id": str(action.organization_id)}
    context["channel"] = channel
    return context


CONTACT_DETAILS = ("external_id", "email", "name", "phone", "attributes")

# Stored contacts' details by (organization, its stamp, contact, the contact's stamp):
# saving or deleting a contact renews the contact's stamp (actions.signals), so an
# entry is never stale. Entries are shared by the threads of this process and only
# read (call_context copies what it merges).
_local_contacts = state.LocalLRU(max_entries=10_000)


def stored_contact(organization_id: int, external_id: str, stamp: int | None = None) -> dict:
    """The details we hold of the organization's contact (empty if unknown); from this
    process's memory when the caller read the organization's stamp first, else queried."""
    if stamp is None:
        return _load_contact(organization_id, external_id)
    key = (organization_id, stamp, external_id, state.contact_stamp(organization_id, external_id))
    return _local_contacts.get_or_load(key, lambda: _load_contact(organization_id, external_id))


def _load_contact(organization_id: int, external_id: str) -> dict:
    return (
        Contact.objects.filter(organization_id=organization_id, external_id=external_id)
        .values(*CONTACT_DETAILS)
        .first()
    ) or {}


def start_execution(
    action: Action, *, channel: str, contact: str = "", is_test: bool = False, **fields: Any
) -> Execution:
    """The log row of a call about to be made (outcome `started`, unless `fields` say
    otherwise; `fields` may also carry the masked arguments and request)."""
    execution = new_execution(action, channel, contact, is_test, **fields)
    execution.save(force_insert=True)
    return execution


def new_execution(
    action: Action, channel: str, contact: str, is_test: bool, **fields: Any
) -> Execution:
    return Execution(
        organization_id=action.organization_id,
        action=action,
        action_name=action.name,
        tool_name=action.tool_name,
        channel=channel,
        contact_external_id=contact or "",
        is_test=is_test,
        **fields,
    )


# What the final save writes (one UPDATE): the outcome of the call.
FINISHED_FIELDS = [
    "outcome", "cause", "detail", "status_code", "duration_ms", "truncated",
    "response_headers", "response_body", "updated_at",
]  # fmt: skip

# The organizations' global variables as stored (values encrypted), by (organization,
# stamp): saving or deleting one renews the stamp (actions.signals), so an entry is
# never stale. Only ciphertext is kept; each call decrypts what it sends, so a key
# taken out of SECRET_ENCRYPTION_KEYS stops opening them at once. Entries are shared by
# the threads of this process and only read (reveal, may_be_sent_to).
_local_variables = state.LocalLRU(max_entries=1_000)


def organization_variables(
    organization_id: int, stamp: int | None = None
) -> dict[str, GlobalVariable]:
    """The organization's global variables by name; from this process's memory when the
    caller read the organization's stamp (before this, as the API does), else queried."""
    if stamp is None:
        return _load_variables(organization_id)
    key = (organization_id, stamp)
    return dict(_local_variables.get_or_load(key, lambda: _load_variables(organization_id)))


def _load_variables(organization_id: int) -> dict[str, GlobalVariable]:
    return {v.name: v for v in GlobalVariable.objects.filter(organization_id=organization_id)}


# Actions' tool schemas and compiled validators, by (organization, stamp, action): an
# action and its rows do not change under a stamp (saving either renews it), and
# validating reads a validator, never writes it.
_local_tools = state.LocalLRU(max_entries=2_000)


def prepared_tool(action: Action, stamp: int | None = None) -> PreparedTool:
    """The action's tool schema and validator; kept in this process's memory when the
    caller read the organization's stamp before loading the action (as the API does)."""
    if stamp is None:
        return prepare_tool(action)
    key = (action.organization_id, stamp, action.pk)
    return _local_tools.get_or_load(key, lambda: prepare_tool(action))


def run_action(
    action: Action,
    *,
    arguments: dict[str, Any],
    channel: str,
    contact: str = "",
    context: dict | None = None,
    runtime_headers: dict[str, str] | None = None,
    is_test: bool = False,
    execution: Execution | None = None,
    stamp: int | None = None,
    record_later: bool = False,
) -> Result:
    """`execution`: a row already started for this call (a form submission starts it
    in the same transaction that claims the submission, before anything is sent).
    `stamp`: the organization's state stamp, when the caller read it before anything
    else (the API does), so the organization's variables come from memory.
    `record_later`: the outcome of a call that was sent is left for the caller to write
    with `Result.record()` (a refusal before sending is always written at once)."""
    start = functools.partial(
        start_execution, action, channel=channel, contact=contact, is_test=is_test
    )
    variables = organization_variables(action.organization_id, stamp)
    masker = Masker()
    try:
        built = build_request(
            action, arguments, call_context(action, channel, contact, context, stamp),
            variables, runtime_headers, prepared_tool(action, stamp),
        )  # fmt: skip
    except (ArgumentsInvalid, ContextMissing) as refusal:
        cause = "arguments" if isinstance(refusal, ArgumentsInvalid) else "context"
        _refuse(execution or start, cause, str(refusal), arguments, masker)
        raise
    except (ConfigurationError, SecretUnavailable) as problem:
        cause = "secret_unavailable" if isinstance(problem, SecretUnavailable) else "configuration"
        execution = _refuse(execution or start, cause, str(problem), arguments, masker)
        return Result(execution, ok=False, status=None, error=SOMETHING_WENT_WRONG)

    masker.secrets = built.secrets
    logged = {
        "arguments": masker.value(built.arguments),
        "request": masker.value(describe(built.request)),
    }
    if execution is None:
        # Committed before anything is sent, so a crash mid-call leaves this `started`
        # row; the seam prepares the call (checks, lookup) while PostgreSQL commits it,
        # and takes a connection only once the commit is confirmed.
        pending = send_insert(new_execution(action, channel, contact, is_test, **logged))
    else:
        for name, value in logged.items():
            setattr(execution, name, value)
        execution.save(update_fields=[*logged, "updated_at"])
        pending = already_saved(execution)

    started = time.perf_counter()
    try:
        # Kept-alive connections are never shared between organizations.
        response = http.send(
            built.request,
            partition=action.organization_id,
            before_request=pending.confirm,
        )
    except http.OutboundError as failure:
        execution = pending.confirm()
        # The log's wait for its commit is not the upstream's time.
        execution.duration_ms = (time.perf_counter() - started - pending.waited_seconds) * 1000
        execution.outcome = Execution.Outcome.ERROR
        execution.cause = failure.cause
        execution.detail = masker.text(failure.detail)
        if failure.cause == "timeout":
            execution.status_code = 408
            timeout_ms = int(settings.EXECUTION_TIMEOUT_SECONDS * 1000)
            result = Result(
                execution, ok=False, status=408, body=f"Request timed out after {timeout_ms}ms",
                error=f"Request timed out after {timeout_ms}ms", unrecorded=True,
            )  # fmt: skip
        else:
            result = Result(
                execution, ok=False, status=None, error=SOMETHING_WENT_WRONG, unrecorded=True
            )
        if not record_later:
            result.record()
        return result
    except BaseException:
        pending.settle()  # the connection stays usable for whatever handles this
        raise
    execution = pending.confirm()  # done: the request could not go out before it
    body, cut = body_for_ai(response, masker)
    execution.duration_ms = response.elapsed_ms
    execution.status_code = response.status
    ok = 200 <= response.status < 300
    execution.outcome = Execution.Outcome.SUCCEEDED if ok else Execution.Outcome.FAILED
    execution.truncated = response.truncated or cut
    execution.response_headers = masker.value(response.headers)
    # Masked before it is cut: a cut first could leave half a secret behind.
    execution.response_body = masker.text(response.body[: LOGGED_BODY_CHARS * 4].decode(
        "utf-8", "replace"))[:LOGGED_BODY_CHARS]  # fmt: skip
    result = Result(
        execution, ok=ok, status=response.status, body=body, truncated=execution.truncated,
        unrecorded=True,
    )  # fmt: skip
    if not record_later:
        result.record()
    return result


def body_for_ai(response: http.OutboundResponse, masker: "Masker") -> tuple[Any, bool]:
    """The upstream body as the AI sees it: parsed JSON, or text; cut if too long.

    The call's secrets are masked first, wherever they are: an upstream that echoes
    the request (a 401 page, a debug page) must not hand the AI a key it could repeat
    to the customer. The mask is plain text, so JSON stays JSON.
    """
    limit = settings.EXECUTION_MAX_CHARS_FOR_AI
    text = masker.text(response.body.decode("utf-8", "replace"))
    content_type = response.headers.get("content-type", response.headers.get("Content-Type", ""))
    if "json" in content_type.lower() and not response.truncated:
        try:
            parsed = json.loads(text)
        except ValueError:
            parsed = None
        else:
            if len(text) <= limit:
                return parsed, False
    return text[:limit], len(text) > limit


def describe(request: http.OutboundRequest) -> dict[str, Any]:
    """What the log keeps of a request (before masking)."""
    described: dict[str, Any] = {
        "method": request.method,
        "url": request.url,
        "headers": dict(request.headers),
        "params": [list(p) for p in request.params],
    }
    if request.json is not None:
        described["json"] = request.json
    if request.form is not None:
        described["form"] = request.form
    if request.multipart is not None:
        described["multipart"] = [
            [name, value if isinstance(value, str) else f"<file {value[0]}, {len(value[1])} bytes>"]
            for name, value in request.multipart
        ]
    if request.content is not None:
        described["content"] = f"<{len(request.content)} bytes>"
    return described


def _refuse(
    execution: "Execution | Callable[..., Execution]",
    cause: str,
    detail: str,
    arguments: Any,
    masker: "Masker",
) -> Execution:
    """Log a call refused before sending: an UPDATE of the row already started, or one
    INSERT (`execution` is then the function that starts it)."""
    refused = {
        "outcome": Execution.Outcome.REFUSED,
        "cause": cause,
        "detail": masker.text(detail),
        "arguments": arguments if isinstance(arguments, dict) else {},
    }
    if not isinstance(execution, Execution):
        return execution(**refused)
    for name, value in refused.items():
        setattr(execution, name, value)
    execution.save(update_fields=[*refused, "updated_at"])
    return execution


def _base64_cores(secret: bytes) -> list[str]:
    """The part of a base64 text that spells `secret` wherever it starts in the
    encoded bytes (`Basic base64(user:secret)` puts it at any of three alignments):
    the characters made of the secret's bits alone."""
    cores = []
    for offset in range(3):
        encoded = base64.b64encode(bytes(offset) + secret).decode()
        first = -(-offset * 8 // 6)  # characters that carry bits of what comes before
        last = (offset + len(secret)) * 8 // 6  # ... and of what comes after
        cores.append(encoded[first:last])
    return [core for core in cores if len(core) >= 8]


class Masker:
    """Replaces every secret value, and its common encodings, with [REDACTED]."""

    def __init__(self, secrets: list[str] | None = None) -> None:
        self.secrets = secrets or []
        self._forms: tuple[tuple[str, ...], list[str]] | None = None

    def forms(self) -> list[str]:
        # Computed once per set of secrets, not per value masked (a call masks dozens);
        # keyed on the secrets themselves, so appending one recomputes.
        secrets = tuple(self.secrets)
        if self._forms is None or self._forms[0] != secrets:
            self._forms = (secrets, self._compute_forms(secrets))
        return self._forms[1]

    @staticmethod
    def _compute_forms(secrets: tuple[str, ...]) -> list[str]:
        forms = set()
        for secret in secrets:
            if len(secret) < 4:
                continue  # too short to mask without mangling ordinary text
            forms |= {
                secret,
                quote(secret, safe=""),
                quote_plus(secret),
                base64.b64encode(secret.encode()).decode(),
                json.dumps(secret)[1:-1],
                *_base64_cores(secret.encode()),
            }
        return sorted(forms, key=len, reverse=True)

    def text(self, text: str) -> str:
        for form in self.forms():
            text = text.replace(form, MASK)
        return text

    def value(self, value: Any) -> Any:
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict):
            return {self.text(str(k)): self.value(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self.value(v) for v in value]
        return value
