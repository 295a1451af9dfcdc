"""The Test button: one real call of a saved action with sample values, made by a worker.

    test_call = request_test_call(action, user=request.user, arguments={...})  # the page
    run_test_call(test_call.pk)                                             # the worker

What is sent: the saved action, the admin's sample arguments (prefilled from the tool
schema by `sample_arguments`, checked against it by `arguments_problems`), the
placeholder context values of `placeholder_values` for its magic fields, and the
organization's saved global variables. It goes through `run_action`, the AI's own run:
the same request building and refusals, the same outbound guard (execution.http: SSRF,
HTTPS only, deadline, caps; nothing bypassed, nothing added to an allowlist) and the
same masking of secrets in what is kept. Its Execution row is flagged ``is_test``: the
execution log lists it (and filters on it), the action's success rate and latency
leave it out, so testing a broken endpoint does not drag production figures down.

At most once (SECURITY.md §5), because a POST or DELETE really changes data: the task
is acknowledged early and never retried; the worker claims the row (pending ->
running) and starts its Execution row in one transaction before anything is sent. A
second delivery finds the row claimed and sends nothing; if the row is still running,
the first worker died mid-call and nobody knows whether the API saw the request:
outcome_unknown. A row left running past the task's hard time limit is shown that way
too (`shown_status`), since no worker will finish it.
"""

from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from jsonschema import Draft202012Validator

from actions.context import ATTRIBUTE_PREFIX, MAGIC_FIELDS
from actions.models import Action, Channel, ValueKind
from execution.build import ArgumentsInvalid, ContextMissing
from execution.models import Execution, GlobalVariable, TestCall
from execution.run import run_action, start_execution

# The task's limits sit just past the call's own deadline (execution.http).
SOFT_TIME_LIMIT_SECONDS = settings.EXECUTION_TIMEOUT_SECONDS + 5
TIME_LIMIT_SECONDS = settings.EXECUTION_TIMEOUT_SECONDS + 10
# Past this, a call still waiting for a worker gets a hint that none may be running.
WORKER_WAIT_HINT_SECONDS = 15

# Context values a test call sends for the magic fields (see actions.context).
PLACEHOLDERS: dict[str, str] = {
    "contact.external_id": "test-contact",
    "contact.email": "test@example.com",
    "contact.name": "Test Contact",
    "contact.phone": "+15555550100",
    "conversation.id": "test-conversation",
    "conversation.ticket_number": "TEST-1",
    "session.id": "test-session",
}
# Sample string values by JSON Schema format; other strings are "test".
FORMAT_SAMPLES: dict[str, str] = {
    "email": "test@example.com",
    "idn-email": "test@example.com",
    "date-time": "2025-01-01T12:00:00Z",
    "date": "2025-01-01",
    "time": "12:00:00Z",
    "uuid": "00000000-0000-4000-8000-000000000000",
    "uri": "https://example.com/",
    "url": "https://example.com/",
    "hostname": "example.com",
    "ipv4": "192.0.2.1",
    "ipv6": "2001:db8::1",
    "byte": "dGVzdA==",  # base64 of "test": files travel base64-encoded
    "binary": "dGVzdA==",
}
_NOTHING = object()


def changes_data(action: Action) -> bool:
    """Whether a call can change data at the API: anything but a GET."""
    return action.method != Action.Method.GET


def endpoint_host(action: Action) -> str:
    return urlsplit(action.endpoint).hostname or ""


def sent_variables(action: Action) -> list[str]:
    """The names of the organization's global variables a call of this action sends."""
    host = endpoint_host(action)
    return [
        variable.name
        for variable in GlobalVariable.objects.for_organization(action.organization_id)
        if variable.may_be_sent_to(host)
    ]


# --- What is sent -----------------------------------------------------------------------


def placeholder_values(action: Action) -> dict[str, str]:
    """Every context value the call may read, by magic field, in the catalogue's order:
    the fixed placeholders, "test" for each contact attribute the action reads, the
    action's first channel, and the organization's real ID (which the run sets anyway).
    """
    attributes = sorted(
        {
            row.value
            for row in [*action.headers.all(), *action.parameters.all()]
            if row.kind == ValueKind.MAGIC and row.value.startswith(ATTRIBUTE_PREFIX)
        }
    )
    values: dict[str, str] = {}
    for path in MAGIC_FIELDS:
        if path == ATTRIBUTE_PREFIX:
            values.update((attribute, "test") for attribute in attributes)
        elif path == "channel":
            values[path] = (action.channels or [Channel.WIDGET.value])[0]
        elif path == "organization.id":
            values[path] = str(action.organization_id)
        else:
            values[path] = PLACEHOLDERS[path]
    return values


def context_rows(values: dict[str, str]) -> list[tuple[str, str, str]]:
    """(magic field, its label, value) for the page, in the catalogue's order (a stored
    JSON object does not keep its keys' order on PostgreSQL)."""
    order = list(MAGIC_FIELDS)

    def position(path: str) -> tuple[int, str]:
        if path.startswith(ATTRIBUTE_PREFIX):
            return order.index(ATTRIBUTE_PREFIX), path
        return (order.index(path) if path in order else len(order)), path

    rows = []
    for path in sorted(values, key=position):
        if path.startswith(ATTRIBUTE_PREFIX):
            label = f"Contact: attribute {path.removeprefix(ATTRIBUTE_PREFIX)}"
        else:
            label = MAGIC_FIELDS.get(path, path)
        rows.append((path, label, values[path]))
    return rows


def as_context(values: dict[str, str]) -> dict[str, Any]:
    """The conversation context, nested as the runtime sends it, from values by path.

    >>> as_context({"contact.email": "a@example.com", "contact.attributes.plan": "pro",
    ...             "channel": "widget"})
    {'contact': {'email': 'a@example.com', 'attributes': {'plan': 'pro'}}, 'channel': 'widget'}
    """
    context: dict[str, Any] = {}
    for path, value in values.items():
        if path.startswith(ATTRIBUTE_PREFIX):
            parts = ["contact", "attributes", path.removeprefix(ATTRIBUTE_PREFIX)]
        else:
            parts = path.split(".")
        node = context
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value
    return context


def sample_arguments(schema: dict[str, Any]) -> dict[str, Any]:
    """Arguments for a test call, from the action's tool schema: what the schema
    suggests first (const, examples, example, default, then the first enum value),
    else a placeholder of the right type and format. Required arguments are always
    filled; optional ones only when the schema suggests a value. A sample that does
    not fit (a pattern, a recursive schema) is the admin's to finish.

    >>> sample_arguments({"type": "object", "properties": {
    ...     "order_id": {"type": "string"}, "status": {"enum": ["open", "closed"]},
    ...     "email": {"type": "string", "format": "email"},
    ...     "limit": {"type": "integer", "default": 10}, "note": {"type": "string"},
    ...     "items": {"type": "array", "items": {"$ref": "#/$defs/Item"}}},
    ...     "required": ["order_id", "status", "email", "items"],
    ...     "$defs": {"Item": {"type": "object", "properties": {"qty": {"type": "integer",
    ...               "minimum": 2}}, "required": ["qty"]}}})
    {'order_id': 'test', 'status': 'open', 'email': 'test@example.com', 'limit': 10, \
'items': [{'qty': 2}]}
    """
    sample = _Sampler(schema.get("$defs") or {}).sample(schema, ())
    return sample if isinstance(sample, dict) else {}


def _suggested(schema: Any) -> Any:
    if not isinstance(schema, dict):
        return _NOTHING
    if "const" in schema:
        return schema["const"]
    if isinstance(schema.get("examples"), list) and schema["examples"]:
        return schema["examples"][0]
    for key in ("example", "default"):
        if key in schema:
            return schema[key]
    return _NOTHING


class _Sampler:
    """Walks a schema once, within bounds: the page that shows the sample must render
    whatever schema an import brought (deep, wide, huge minItems). A definition met
    again inside itself is left empty (None): a recursive schema is sampled once."""

    MAX_DEPTH = 8
    MAX_NODES = 2000
    MAX_ITEMS = 20
    MAX_LENGTH = 1000

    def __init__(self, defs: dict[str, Any]) -> None:
        self.defs = defs
        self.nodes = 0

    def sample(self, schema: Any, refs: tuple[str, ...], depth: int = 0) -> Any:
        self.nodes += 1
        if depth > self.MAX_DEPTH or self.nodes > self.MAX_NODES:
            return None
        if not isinstance(schema, dict):
            return "test"
        ref = schema.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/$defs/"):
            if ref in refs:
                return None
            target = self.defs.get(ref.removeprefix("#/$defs/"), {})
            return self.sample(target, (*refs, ref), depth + 1)
        suggested = _suggested(schema)
        if suggested is not _NOTHING:
            return suggested
        if isinstance(schema.get("enum"), list) and schema["enum"]:
            return schema["enum"][0]
        for key in ("anyOf", "oneOf"):  # the first choice that is not null
            options = [
                option
                for option in schema.get(key) or []
                if not (isinstance(option, dict) and option.get("type") == "null")
            ]
            if options:
                return self.sample(options[0], refs, depth + 1)
        if isinstance(schema.get("allOf"), list) and schema["allOf"]:
            parts = [self.sample(part, refs, depth + 1) for part in schema["allOf"]]
            if all(isinstance(part, dict) for part in parts):  # objects: every part's fields
                return {name: value for part in parts for name, value in part.items()}
            return parts[0]
        kind = schema.get("type")
        if isinstance(kind, list):
            kind = next((k for k in kind if k != "null"), "null")
        if kind is None:
            kind = "object" if "properties" in schema else "array" if "items" in schema else ""
        if kind == "object":
            # A saved tool schema is valid Draft 2020-12: properties is an object,
            # required a list of names.
            required = set(schema.get("required") or [])
            return {
                name: self.sample(sub, refs, depth + 1)
                for name, sub in (schema.get("properties") or {}).items()
                if name in required or _suggested(sub) is not _NOTHING
            }
        if kind == "array":
            items = schema.get("items")
            if not isinstance(items, dict):
                return []
            count = min(max(_int(schema.get("minItems"), 0), 1), self.MAX_ITEMS)
            return [self.sample(items, refs, depth + 1)] * count
        if kind in ("integer", "number"):
            return _number(schema, kind)
        if kind == "boolean":
            return False  # the cautious answer, should the flag mean "delete everything"
        if kind == "null":
            return None
        return self.string(schema)

    def string(self, schema: dict[str, Any]) -> str:
        if "contentEncoding" in schema:
            return FORMAT_SAMPLES["byte"]
        text = FORMAT_SAMPLES.get(str(schema.get("format", "")), "test")
        minimum = min(_int(schema.get("minLength"), 0), self.MAX_LENGTH)
        text = text.ljust(minimum, "x")
        maximum = _int(schema.get("maxLength"), -1)
        return text[:maximum] if maximum >= 0 else text


def _int(value: Any, default: int) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else default


def _number(schema: dict[str, Any], kind: str) -> int | float:
    value: int | float = 1
    if isinstance(schema.get("minimum"), int | float):
        value = schema["minimum"]
    elif isinstance(schema.get("exclusiveMinimum"), int | float):
        value = schema["exclusiveMinimum"] + 1
    if isinstance(schema.get("maximum"), int | float):
        value = min(value, schema["maximum"])
    return int(value) if kind == "integer" else value


def arguments_problems(action: Action, arguments: Any) -> list[str]:
    """What is wrong with sample arguments, by the action's tool schema (as the AI's
    arguments are checked on a real call); empty when they fit."""
    if not isinstance(arguments, dict):
        return ['Write the arguments as a JSON object, e.g. {"order_id": "123"}.']
    schema = action.tool_schema().schema
    errors = sorted(
        Draft202012Validator(schema).iter_errors(arguments),
        key=lambda error: [str(part) for part in error.absolute_path],
    )
    problems = []
    for error in errors[:20]:
        where = "/".join(str(part) for part in error.absolute_path)
        problems.append(f"{where}: {error.message}" if where else error.message)
    return problems


# --- Pressing the button, and the worker's run ------------------------------------------------


def request_test_call(action: Action, *, user, arguments: dict[str, Any]) -> TestCall:
    """Record a press of the Test button and queue its call once committed.

    A second press while this user's last test of the action is still waiting or
    sending (a double click, a reload that re-posts) returns that test: one call.
    """
    from execution.tasks import run_test_call_task

    with transaction.atomic():
        # Presses on one action take turns, so two racing presses cannot both miss
        # the one in flight (NO KEY: calls logging against the action go on).
        list(Action.objects.select_for_update(no_key=True).filter(pk=action.pk).values_list("pk"))
        in_flight = TestCall.objects.filter(
            action=action,
            requested_by=user,
            status__in=[TestCall.Status.PENDING, TestCall.Status.RUNNING],
            created_at__gte=timezone.now() - timedelta(seconds=TIME_LIMIT_SECONDS),
        ).first()
        if in_flight is not None:
            return in_flight
        test_call = TestCall.objects.create(
            organization_id=action.organization_id,
            action=action,
            requested_by=user,
            arguments=arguments,
            context=placeholder_values(action),
        )
        run_test_call_task.delay_on_commit(test_call.pk)
    return test_call


def run_test_call(test_call_id: int) -> None:
    """Make the call of a pending test call, once; see the module docstring."""
    test_call = _claim(test_call_id)
    if test_call is None:
        _settle_redelivery(test_call_id)
        return
    action = Action.objects.prefetch_related("headers", "parameters").get(pk=test_call.action_id)
    try:
        run_action(
            action,
            arguments=test_call.arguments,
            channel=_channel(test_call),
            context=as_context(test_call.context),
            is_test=True,
            execution=test_call.execution,
        )
    except (ArgumentsInvalid, ContextMissing):
        pass  # refused before sending; run_action recorded why on the execution row
    finally:
        _finish(test_call)


def _channel(test_call: TestCall) -> str:
    return test_call.context.get("channel") or Channel.WIDGET.value


def _claim(test_call_id: int) -> TestCall | None:
    """pending -> running, with its Execution row started, in one transaction; None if
    another delivery claimed it first (or it is gone with its action)."""
    with transaction.atomic():
        claimed = TestCall.objects.filter(pk=test_call_id, status=TestCall.Status.PENDING).update(
            status=TestCall.Status.RUNNING, updated_at=timezone.now()
        )
        if not claimed:
            return None
        test_call = TestCall.objects.select_related("action").get(pk=test_call_id)
        test_call.execution = start_execution(
            test_call.action, channel=_channel(test_call), is_test=True
        )
        test_call.save(update_fields=["execution", "updated_at"])
    return test_call


def _settle_redelivery(test_call_id: int) -> None:
    """A delivery of a test call already claimed: still running means its worker died
    mid-call (early ack: a live worker's task is not delivered again)."""
    with transaction.atomic():
        Execution.objects.filter(
            test_call__pk=test_call_id,
            test_call__status=TestCall.Status.RUNNING,
            outcome=Execution.Outcome.STARTED,
        ).update(outcome=Execution.Outcome.UNKNOWN, updated_at=timezone.now())
        TestCall.objects.filter(pk=test_call_id, status=TestCall.Status.RUNNING).update(
            status=TestCall.Status.OUTCOME_UNKNOWN, updated_at=timezone.now()
        )


def _finish(test_call: TestCall) -> None:
    outcome = test_call.execution.outcome
    if outcome in (Execution.Outcome.SUCCEEDED, Execution.Outcome.FAILED):
        status = TestCall.Status.DONE
    elif outcome == Execution.Outcome.STARTED:  # an error escaped mid-call
        status = TestCall.Status.OUTCOME_UNKNOWN
    else:
        status = TestCall.Status.FAILED
    TestCall.objects.filter(pk=test_call.pk).update(status=status, updated_at=timezone.now())


# --- What the page shows ----------------------------------------------------------------------


def shown_status(test_call: TestCall, now=None) -> str:
    """The status to show: a call still running past the task's hard time limit will
    never be finished by its worker, so its outcome is unknown."""
    now = now or timezone.now()
    limit = timedelta(seconds=TIME_LIMIT_SECONDS + 5)
    if test_call.status == TestCall.Status.RUNNING and now - test_call.updated_at > limit:
        return TestCall.Status.OUTCOME_UNKNOWN
    return test_call.status


def waiting_long(test_call: TestCall, now=None) -> bool:
    """Still waiting for a worker after WORKER_WAIT_HINT_SECONDS."""
    now = now or timezone.now()
    return test_call.status == TestCall.Status.PENDING and now - test_call.created_at > timedelta(
        seconds=WORKER_WAIT_HINT_SECONDS
    )
