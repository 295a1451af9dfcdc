"""Building the HTTPS request for an action from the AI's arguments and the conversation.

    build_request(action, arguments, context, variables, runtime_headers) -> Built

Where each value comes from:
- the AI's arguments, validated against the action's tool schema (the AI can fix
  what is wrong: ArgumentsInvalid, a 422);
- static values, whose {{global.NAME}} references are the organization's secrets;
- magic fields, read from the conversation `context` (the runtime's job: a missing
  one is ContextMissing, a 400 — never an empty string);
- the organization's global variables bound to the endpoint's host, each sent as a
  header of its name unless the runtime's per-call headers set the same name.

The endpoint's scheme, host and port are fixed; an argument only ever fills a path
segment (percent-encoded, never `.`, `..` or empty), a query value, a header value
or a body field. Every secret and runtime-header value used is listed in
`Built.secrets`, for masking in the execution log.
"""

import base64
import binascii
import json
import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, unquote, urlsplit

from jsonschema import Draft202012Validator

from actions.context import ATTRIBUTE_PREFIX
from actions.models import Action, ValueKind
from actions.tool_schema import ToolSchema
from actions.validators import BINARY_MEDIA_TYPE, GLOBAL_REF_RE
from execution.http import OutboundRequest
from execution.models import GlobalVariable

CONTEXT_HEADERS = {
    "x-opencx-org-id": "organization.id",
    "x-opencx-session-id": "session.id",
    "x-opencx-ticket-number": "conversation.ticket_number",
    "x-opencx-external-user-id": "contact.external_id",
}
_PLACEHOLDER_RE = re.compile(r"\{([^{}]+)\}")


class ArgumentsInvalid(Exception):
    """The AI's arguments do not fit the tool schema; `messages` say how to fix them."""

    def __init__(self, messages: list[str]) -> None:
        self.messages = messages
        super().__init__("; ".join(messages))


class ContextMissing(Exception):
    """A magic field's value is not in the conversation context the runtime sent."""


class ConfigurationError(Exception):
    """The action cannot be called as configured (a secret missing, or not bound)."""


@dataclass(frozen=True)
class PreparedTool:
    """An action's tool schema with its compiled validator: what building a request
    needs of the action beyond its rows, kept by callers that cache the action."""

    tool: ToolSchema
    validator: Draft202012Validator


def prepare_tool(action: Action) -> PreparedTool:
    tool = action.tool_schema()
    return PreparedTool(tool, Draft202012Validator(tool.schema))


@dataclass
class Built:
    request: OutboundRequest
    arguments: dict[str, Any]  # the validated arguments, as used
    secrets: list[str] = field(default_factory=list)  # values to mask in the log


def build_request(
    action: Action,
    arguments: dict[str, Any],
    context: dict[str, Any],
    variables: dict[str, GlobalVariable],
    runtime_headers: dict[str, str] | None = None,
    prepared: PreparedTool | None = None,
) -> Built:
    """`prepared`: the action's `prepare_tool`, when the caller keeps it."""
    prepared = prepared or prepare_tool(action)
    tool = prepared.tool
    arguments = _without_strict_nulls(arguments or {}, tool.schema)
    _validate_arguments(arguments, tool.schema, prepared.validator)
    host = urlsplit(action.endpoint).hostname or ""
    secrets: list[str] = []

    def render(value: str) -> str:
        """Static text with its {{global.NAME}} references filled in."""

        def fill(match: re.Match) -> str:
            name = match.group(1)
            variable = variables.get(name)
            if variable is None:
                raise ConfigurationError(
                    f"The global variable {name} is not defined; add it in the dashboard."
                )
            if not variable.may_be_sent_to(host):
                raise ConfigurationError(
                    f"The global variable {name} is not bound to {host}; add the host to it."
                )
            secret = variable.reveal()
            secrets.append(secret)
            return secret

        return GLOBAL_REF_RE.sub(fill, value)

    def fixed(row) -> str:
        if row.kind == ValueKind.MAGIC:
            return _magic(row.value, context)
        return render(row.value)

    by_location: dict[str, dict[str, Any]] = {"path": {}, "query": {}, "header": {}, "body": {}}
    for name, value in arguments.items():
        target = tool.arguments[name]
        by_location[target.location][target.key] = value

    # Path: every placeholder from an argument or a row, each one whole segment.
    path_values = dict(by_location["path"])
    query: list[tuple[str, str]] = []
    for row in action.parameters.all():
        if row.kind == ValueKind.AI:
            continue
        if row.location == "path":
            path_values[row.key] = fixed(row)
        else:
            query.append((row.key, fixed(row)))
    url = _fill_path(action.endpoint, path_values)
    for key, value in by_location["query"].items():
        values = value if isinstance(value, list) else [value]
        query.extend((key, _text(item)) for item in values if item is not None)

    headers: dict[str, str] = {}
    for variable in variables.values():
        if variable.may_be_sent_to(host):
            secret = variable.reveal()
            secrets.append(secret)
            headers[variable.name] = secret
    for key, value in (runtime_headers or {}).items():
        _drop(headers, key)  # the runtime's per-call header wins over a variable
        headers[key] = str(value)
        secrets.append(str(value))
    for row in action.headers.all():
        if row.kind != ValueKind.AI:
            _drop(headers, row.key)
            headers[row.key] = fixed(row)
    for key, value in by_location["header"].items():
        _drop(headers, key)
        headers[key] = _text(value)
    if action.send_context_headers:
        for key, path in CONTEXT_HEADERS.items():
            value = _magic(path, context, required=False)
            if value:
                headers[key] = value

    body = by_location["body"]
    if "" in body:  # a non-object body travels whole as the `body` argument
        body = body[""]
    sent = _body(action, body, tool.schema)
    if "content" in sent and not any(key.lower() == "content-type" for key in headers):
        # A raw body is sent as the media type its schema names, unless a header
        # row (or the runtime) says otherwise.
        media_type = (action.body_schema or {}).get("contentMediaType")
        headers["Content-Type"] = media_type if isinstance(media_type, str) else BINARY_MEDIA_TYPE
    request = OutboundRequest(
        method=action.method,
        url=url,
        headers=headers,
        params=tuple(query),
        **sent,
    )
    return Built(request=request, arguments=arguments, secrets=[s for s in secrets if s])


def _validate_arguments(
    arguments: dict[str, Any], schema: dict[str, Any], validator: Draft202012Validator
) -> None:
    if not isinstance(arguments, dict):
        raise ArgumentsInvalid(["Send the arguments as a JSON object."])
    errors = sorted(validator.iter_errors(arguments), key=lambda e: list(e.absolute_path))
    if errors:
        messages = []
        for error in errors[:20]:
            where = "/".join(str(p) for p in error.absolute_path)
            if error.validator == "additionalProperties":
                messages.append(
                    f"{error.message}. Use only the arguments in the tool's schema: "
                    f"{', '.join(schema.get('properties', {}))}."
                )
            else:
                messages.append(f"{where + ': ' if where else ''}{error.message}")
        raise ArgumentsInvalid(messages)


def _without_strict_nulls(arguments: Any, schema: dict[str, Any]) -> Any:
    """Drop the nulls OpenAI's strict mode sends for optional arguments it leaves out.

    Strict mode makes every property required-but-nullable; a null where the real
    schema allows no null means "not given".
    """
    if not isinstance(arguments, dict):
        return arguments
    properties = schema.get("properties", {})
    return {
        name: value
        for name, value in arguments.items()
        if not (value is None and name in properties and not _accepts_null(properties[name]))
    }


def _accepts_null(schema: Any) -> bool:
    if not isinstance(schema, dict):
        return schema is True
    types = schema.get("type")
    if types == "null" or (isinstance(types, list) and "null" in types):
        return True
    return any(_accepts_null(sub) for sub in schema.get("anyOf", []) + schema.get("oneOf", []))


def _fill_path(endpoint: str, values: dict[str, Any]) -> str:
    """The endpoint with each {placeholder} replaced by one percent-encoded segment.

    >>> _fill_path("https://api.example.com/u/{id}/x", {"id": "a/b c"})
    'https://api.example.com/u/a%2Fb%20c/x'

    A placeholder used twice is one value, sent in both places:

    >>> _fill_path("https://api.example.com/a/{id}/{action}/{id}", {"id": 7, "action": "get"})
    'https://api.example.com/a/7/get/7'
    """
    authority, slash, path = endpoint.partition("://")[2].partition("/")
    prefix = endpoint[: endpoint.index("://") + 3] + authority

    def segment(match: re.Match) -> str:
        name = match.group(1)
        if name not in values:
            raise ArgumentsInvalid([f"{name}: a value is required for this path parameter."])
        value = values[name]
        if isinstance(value, dict | list) or value is None:
            raise ArgumentsInvalid([f"{name}: a path parameter takes a single value."])
        text = _text(value)
        decoded = unquote(text)
        if decoded.strip() in {"", ".", ".."}:
            raise ArgumentsInvalid(
                [f"{name}: “{text}” cannot be a path segment (empty, '.' or '..')."]
            )
        return quote(text, safe="")

    return prefix + slash + _PLACEHOLDER_RE.sub(segment, path)


def _magic(path: str, context: dict[str, Any], *, required: bool = True) -> str:
    """A context value by its magic path, e.g. contact.email or contact.attributes.plan."""
    if path.startswith(ATTRIBUTE_PREFIX):
        node = ((context.get("contact") or {}).get("attributes") or {}).get(
            path.removeprefix(ATTRIBUTE_PREFIX)
        )
    else:
        node: Any = context
        for part in path.split("."):
            node = node.get(part) if isinstance(node, dict) else None
    if node is None or node == "" or isinstance(node, dict | list):
        if required:
            raise ContextMissing(
                f"The conversation context has no {path}, which this action sends; "
                f"include it in `context` (for example {_example(path)})."
            )
        return ""
    return _text(node)


def _example(path: str) -> str:
    head, *rest = path.split(".")
    inner: Any = "…"
    for part in reversed(rest):
        inner = {part: inner}
    return json.dumps({head: inner})


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict | list):
        return json.dumps(value, separators=(",", ":"))
    return str(value)


def _drop(headers: dict[str, str], key: str) -> None:
    for existing in [k for k in headers if k.lower() == key.lower()]:
        del headers[existing]


def _body(action: Action, body: Any, schema: dict[str, Any]) -> dict[str, Any]:
    if not action.accepts_body or action.body_schema is None:
        return {}
    if action.body_format == Action.BodyFormat.JSON:
        return {"json": body}
    if action.body_format == Action.BodyFormat.BINARY:
        return {"content": _decode_base64("body", body)}
    if not isinstance(body, dict):
        raise ArgumentsInvalid(["body: a form body is a set of named fields (an object)."])
    properties = (action.body_schema or {}).get("properties", {})
    if action.body_format == Action.BodyFormat.FORM:
        return {"form": {k: _text(v) for k, v in body.items() if v is not None}}
    parts: list[tuple[str, Any]] = []
    for key, value in body.items():
        if value is None:
            continue
        if _is_binary(properties.get(key, {})):
            parts.append((key, (key, _decode_base64(key, value), "application/octet-stream")))
        elif isinstance(value, list) and not _is_binary(properties.get(key, {})):
            parts.extend((key, _text(item)) for item in value)
        else:
            parts.append((key, _text(value)))
    return {"multipart": parts}


def _is_binary(schema: dict[str, Any]) -> bool:
    return schema.get("format") in {"binary", "byte"} or "contentEncoding" in schema


def _decode_base64(key: str, value: Any) -> bytes:
    try:
        return base64.b64decode(str(value), validate=True)
    except (binascii.Error, ValueError):
        raise ArgumentsInvalid([f"{key}: send the file's content as base64."]) from None
