"""One stored tool schema, four renderings: OpenAI, Anthropic, Gemini and MCP.

Each renderer takes a ToolDefinition (plain data) and returns the entry exactly as
that provider's API expects it in its `tools` list; `envelope()` wraps the entries in
the provider's request shape, so the runtime can pass the body through unchanged.
"""

import copy
import json
import re
from dataclasses import dataclass
from typing import Any

import orjson

FORMATS = ("openai", "anthropic", "gemini", "mcp")

# OpenAI strict mode (Structured Outputs) supports this subset of JSON Schema.
OPENAI_STRICT_KEYWORDS = frozenset(
    {
        "type", "properties", "required", "additionalProperties", "items", "anyOf",
        "enum", "const", "description", "$ref", "$defs", "pattern", "format",
        "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf",
        "minItems", "maxItems",
    }
)  # fmt: skip
OPENAI_STRICT_FORMATS = frozenset(
    {"date-time", "time", "date", "duration", "email", "hostname", "ipv4", "ipv6", "uuid"}
)
# Keywords that only annotate: dropping them never changes what the schema accepts.
ANNOTATIONS = frozenset(
    {"title", "default", "examples", "deprecated", "readOnly", "writeOnly", "$comment",
     "contentMediaType", "contentEncoding"}
)  # fmt: skip
# Keywords that constrain; strict mode cannot express them, but every call's
# arguments are validated against the full schema anyway, so the AI learns of a
# violation from the call's error and can retry.
RELAXABLE = frozenset({"minLength", "maxLength", "minProperties", "maxProperties", "uniqueItems"})
# OpenAI refuses a request whose function description is longer ("string_above_max_length").
OPENAI_DESCRIPTION_MAX = 1024
OPENAI_STRICT_MAX_DEPTH = 10
OPENAI_STRICT_MAX_PROPERTIES = 5000
OPENAI_STRICT_MAX_ENUM = 1000

GEMINI_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_.:-]{0,127}\Z")


@dataclass(frozen=True)
class ToolDefinition:
    name: str  # the tool name, ^[a-zA-Z0-9_-]{1,64}$
    title: str  # the action's human name
    description: str
    schema: dict[str, Any]
    method: str
    requires_form: bool = False


def render(tool: ToolDefinition, fmt: str) -> dict[str, Any]:
    return RENDERERS[fmt](tool)


def envelope(fmt: str, entries: list[dict[str, Any]]) -> dict[str, Any]:
    """The provider's request shape around the rendered entries."""
    if fmt == "gemini":
        return {"tools": [{"functionDeclarations": entries}]}
    return {"tools": entries}


def render_openai(tool: ToolDefinition) -> dict[str, Any]:
    strict = strictify(tool.schema)
    return {
        "type": "function",
        "function": {
            "name": tool.name,
            "description": clip(tool.description, OPENAI_DESCRIPTION_MAX),
            "parameters": strict if strict is not None else tool.schema,
            "strict": strict is not None,
        },
    }


def render_anthropic(tool: ToolDefinition) -> dict[str, Any]:
    return {"name": tool.name, "description": tool.description, "input_schema": tool.schema}


def render_gemini(tool: ToolDefinition) -> dict[str, Any]:
    return {
        "name": gemini_name(tool.name),
        "description": tool.description,
        "parametersJsonSchema": tool.schema,
    }


def render_mcp(tool: ToolDefinition) -> dict[str, Any]:
    method = tool.method.upper()
    return {
        "name": tool.name,
        "title": tool.title,
        "description": tool.description,
        "inputSchema": tool.schema,
        "annotations": {
            "title": tool.title,
            "readOnlyHint": method == "GET",
            "destructiveHint": method == "DELETE" or (method != "GET" and tool.requires_form),
            "idempotentHint": method in {"GET", "PUT", "DELETE"},
            "openWorldHint": True,
        },
    }


RENDERERS = {
    "openai": render_openai,
    "anthropic": render_anthropic,
    "gemini": render_gemini,
    "mcp": render_mcp,
}


def clip(text: str, limit: int) -> str:
    """`text`, or its first words that fit in `limit` characters with an ellipsis.

    >>> clip("Looks up an order by its number.", 20)
    'Looks up an order…'
    """
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    if " " in cut:
        cut = cut.rsplit(" ", 1)[0]
    return cut.rstrip(" ,;:.") + "…"


def gemini_name(name: str) -> str:
    """Gemini names start with a letter or '_'; our tool names may start with a digit.

    >>> gemini_name("2fa_reset"), gemini_name("lookup_order")
    ('_2fa_reset', 'lookup_order')
    """
    return name if GEMINI_NAME_RE.match(name) else f"_{name}"


def strictify(schema: dict[str, Any]) -> dict[str, Any] | None:
    """A copy of `schema` that OpenAI's strict mode accepts, or None if it cannot be.

    Strict mode wants every object closed (`additionalProperties: false`) with every
    property required; an optional property becomes required-but-nullable, so the
    model sends null where it has nothing (the caller drops such nulls before the
    request goes out). Annotations and length limits it does not support are
    dropped (calls are still validated against the full schema); a construct it
    cannot express at all (allOf, not, if/then, open objects, tuples, a $ref to
    anything but the root or its $defs) means no strict schema, and the tool is
    served non-strict. A schema with `properties` or `additionalProperties` and no
    `type` is taken as an object's.

    >>> strict = strictify({"type": "object", "properties": {"id": {"type": "string"},
    ...     "note": {"type": "string", "maxLength": 500}}, "required": ["id"]})
    >>> strict["properties"]["note"], strict["required"], strict["additionalProperties"]
    ({'anyOf': [{'type': 'string'}, {'type': 'null'}]}, ['id', 'note'], False)
    >>> strictify({"type": "object", "properties": {"meta": {"type": "object"}}}) is None
    True
    """
    counters = {"properties": 0}
    defs = schema.get("$defs") or {}
    try:
        result = _strict_node(_copy(schema), depth=1, counters=counters, defs=defs)
        for name, definition in defs.items():
            result.setdefault("$defs", {})[name] = _strict_node(
                _copy(definition), depth=1, counters=counters, defs=defs
            )
    except _NotStrict:
        return None
    return result


def _copy(schema: Any) -> Any:
    """A deep copy of plain JSON data, several times faster than copy.deepcopy (it
    matters when a cold tool list renders a thousand schemas)."""
    try:
        return orjson.loads(orjson.dumps(schema))
    except TypeError:  # an integer past 64 bits, which orjson does not take
        return copy.deepcopy(schema)


def dumps(value: Any) -> bytes:
    """Compact JSON bytes: orjson, or the standard library for integers past 64 bits."""
    try:
        return orjson.dumps(value)
    except TypeError:
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


class _NotStrict(Exception):
    pass


def _strict_node(
    node: Any, depth: int, counters: dict[str, int], defs: dict[str, Any]
) -> dict[str, Any]:
    if not isinstance(node, dict) or depth > OPENAI_STRICT_MAX_DEPTH:
        raise _NotStrict
    node = {k: v for k, v in node.items() if k not in ANNOTATIONS | RELAXABLE}
    node.pop("$defs", None)  # handled once, at the root
    if "oneOf" in node:  # exclusive choice: strict mode offers anyOf
        node["anyOf"] = node.pop("oneOf")
    if set(node) - OPENAI_STRICT_KEYWORDS:
        raise _NotStrict
    if "$ref" in node and not _resolves(node["$ref"], defs):
        # Only the root and the root's $defs keep their place in the strict schema: a
        # pointer into a property (now perhaps wrapped in anyOf) or into nested $defs
        # (dropped) would lead nowhere, and OpenAI refuses the whole request.
        raise _NotStrict
    if "type" not in node and ("properties" in node or "additionalProperties" in node):
        node["type"] = "object"  # OpenAPI documents often leave it out next to properties
    if node.get("format") not in (None, *OPENAI_STRICT_FORMATS):
        node.pop("format")
    if len(node.get("enum", [])) > OPENAI_STRICT_MAX_ENUM:
        raise _NotStrict
    if "anyOf" in node:
        node["anyOf"] = [_strict_node(sub, depth + 1, counters, defs) for sub in node["anyOf"]]
    types = node.get("type")
    types = types if isinstance(types, list) else [types]
    if "object" in types:
        if node.get("additionalProperties") not in (None, False) or "properties" not in node:
            raise _NotStrict  # an open object (a map) cannot be strict
        properties = node["properties"]
        counters["properties"] += len(properties)
        if counters["properties"] > OPENAI_STRICT_MAX_PROPERTIES:
            raise _NotStrict
        required = set(node.get("required", []))
        strict_properties = {}
        for name, sub in properties.items():
            sub = _strict_node(sub, depth + 1, counters, defs)
            strict_properties[name] = sub if name in required else _nullable(sub)
        node["properties"] = strict_properties
        node["required"] = list(properties)
        node["additionalProperties"] = False
    if "array" in types:
        if "items" not in node:
            raise _NotStrict
        node["items"] = _strict_node(node["items"], depth + 1, counters, defs)
    return node


def _resolves(ref: Any, defs: dict[str, Any]) -> bool:
    """Whether `ref` is the root ("#") or one of the root's $defs ("#/$defs/Name")."""
    if ref == "#":
        return True
    if not isinstance(ref, str) or not ref.startswith("#/$defs/"):
        return False
    name = ref.removeprefix("#/$defs/")
    return "/" not in name and name.replace("~1", "/").replace("~0", "~") in defs


def _nullable(schema: dict[str, Any]) -> dict[str, Any]:
    """`schema` or null, written as anyOf (the form every provider accepts)."""
    types = schema.get("type")
    already = types == "null" or (isinstance(types, list) and "null" in types)
    if already and None in schema.get("enum", [None]):
        return schema
    if {"type": "null"} in schema.get("anyOf", []):
        return schema
    description = schema.get("description")
    inner = {k: v for k, v in schema.items() if k != "description"}
    nullable: dict[str, Any] = {"anyOf": [inner, {"type": "null"}]}
    if description:
        nullable["description"] = description
    return nullable
