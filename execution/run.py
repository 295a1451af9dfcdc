"""Running an action: build the request, send it, log it, hand the AI its result.

    result = run_action(action, arguments=..., channel=..., contact=..., context=...)

The Execution row is written before the request goes out and completed after it, in
autocommit (never a transaction around the call), so a crash mid-call leaves a
`started` row rather than nothing. Upstream status and body pass through to the AI
(JSON parsed, text as text, cut at EXECUTION_MAX_CHARS_FOR_AI with truncated: true);
a timeout is a 408 "Request timed out after 60000ms"; any other failure to complete
is "Something went wrong" for the AI, with its precise cause in the log. Every
secret and runtime-header value is masked in what the log keeps.
"""

import base64
import json
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, quote_plus

from django.conf import settings

from actions.models import Action, Contact
from execution import http
from execution.build import ArgumentsInvalid, ConfigurationError, ContextMissing, build_request
from execution.models import Execution, GlobalVariable
from execution.secrets import SecretUnavailable

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

    def for_ai(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "status": self.status,
            "body": self.body,
            "truncated": self.truncated,
            "error": self.error,
            "execution_id": self.execution.pk,
        }


def call_context(action: Action, channel: str, contact: str, context: dict | None) -> dict:
    """The conversation context magic fields read: the runtime's, completed with what
    we know (the stored contact) and what only the server may say (organization,
    channel, the contact's ID)."""
    context = dict(context or {})
    stored = (
        Contact.objects.filter(organization_id=action.organization_id, external_id=contact).first()
        if contact
        else None
    )
    known = {}
    if stored is not None:
        known = {
            "external_id": stored.external_id,
            "email": stored.email,
            "name": stored.name,
            "phone": stored.phone,
            "attributes": stored.attributes,
        }
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


def start_execution(
    action: Action, *, channel: str, contact: str = "", is_test: bool = False
) -> Execution:
    """The log row of a call about to be made (outcome `started`)."""
    return Execution.objects.create(
        organization_id=action.organization_id,
        action=action,
        action_name=action.name,
        tool_name=action.tool_name,
        channel=channel,
        contact_external_id=contact or "",
        is_test=is_test,
    )


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
) -> Result:
    """`execution`: a row already started for this call (a form submission starts it
    in the same transaction that claims the submission, before anything is sent)."""
    if execution is None:
        execution = start_execution(action, channel=channel, contact=contact, is_test=is_test)
    variables = {
        v.name: v for v in GlobalVariable.objects.filter(organization_id=action.organization_id)
    }
    masker = Masker()
    try:
        built = build_request(
            action, arguments, call_context(action, channel, contact, context), variables,
            runtime_headers,
        )  # fmt: skip
    except (ArgumentsInvalid, ContextMissing) as refusal:
        cause = "arguments" if isinstance(refusal, ArgumentsInvalid) else "context"
        _refuse(execution, cause, str(refusal), arguments, masker)
        raise
    except (ConfigurationError, SecretUnavailable) as problem:
        cause = "secret_unavailable" if isinstance(problem, SecretUnavailable) else "configuration"
        _refuse(execution, cause, str(problem), arguments, masker)
        return Result(execution, ok=False, status=None, error=SOMETHING_WENT_WRONG)

    masker.secrets = built.secrets
    execution.arguments = masker.value(built.arguments)
    execution.request = masker.value(describe(built.request))
    execution.save(update_fields=["arguments", "request", "updated_at"])

    started = time.perf_counter()
    try:
        response = http.send(built.request)
    except http.OutboundError as failure:
        execution.duration_ms = (time.perf_counter() - started) * 1000
        execution.outcome = Execution.Outcome.ERROR
        execution.cause = failure.cause
        execution.detail = masker.text(failure.detail)
        if failure.cause == "timeout":
            execution.status_code = 408
        execution.save()
        if failure.cause == "timeout":
            timeout_ms = int(settings.EXECUTION_TIMEOUT_SECONDS * 1000)
            return Result(
                execution, ok=False, status=408, body=f"Request timed out after {timeout_ms}ms",
                error=f"Request timed out after {timeout_ms}ms",
            )  # fmt: skip
        return Result(execution, ok=False, status=None, error=SOMETHING_WENT_WRONG)

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
    execution.save()
    return Result(
        execution, ok=ok, status=response.status, body=body, truncated=execution.truncated
    )


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


def _refuse(execution: Execution, cause: str, detail: str, arguments: Any, masker) -> None:
    execution.outcome = Execution.Outcome.REFUSED
    execution.cause = cause
    execution.detail = masker.text(detail)
    execution.arguments = arguments if isinstance(arguments, dict) else {}
    execution.save()


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

    def forms(self) -> list[str]:
        forms = set()
        for secret in self.secrets:
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
