"""Build the one JSON Schema the AI fills in for an action: its tool schema.

The AI sees a single flat object: the body's properties under their own names, plus
every path, query and header value it is asked to fill. Static and magic values never
appear. A parameter whose name is already taken (by a body property, or by an
earlier parameter) is renamed `name__path`, `name__query` or `name__header`, and the
returned argument map says where each argument goes in the HTTP request.

Pure functions over plain data, so the dashboard, the importer and the tool-list API
share them.
"""

import re
from dataclasses import dataclass, field
from typing import Any

LOCATIONS = ("path", "query", "header")
DEFAULT_VALUE_SCHEMA = {"type": "string"}


@dataclass(frozen=True)
class InputRow:
    """One AI-filled header or parameter, as the tool schema needs it."""

    location: str  # path | query | header
    key: str
    description: str = ""
    required: bool = True
    value_schema: dict[str, Any] | None = None


@dataclass(frozen=True)
class Argument:
    """Where a tool argument goes: `location` is body, path, query or header."""

    location: str
    key: str


@dataclass
class ToolSchema:
    schema: dict[str, Any]
    arguments: dict[str, Argument] = field(default_factory=dict)


def argument_name(key: str) -> str:
    """A header or query key as an argument name every provider accepts.

    >>> argument_name("X-Customer-Id"), argument_name("filter[status]"), argument_name("9to5")
    ('X_Customer_Id', 'filter_status', '_9to5')
    """
    name = re.sub(r"[^A-Za-z0-9_]+", "_", key).strip("_") or "value"
    return name if not name[0].isdigit() else f"_{name}"


def build_tool_schema(body_schema: dict[str, Any] | None, rows: list[InputRow]) -> ToolSchema:
    """Merge the body schema and the AI-filled rows into one object schema.

    >>> body = {"type": "object", "properties": {"id": {"type": "integer"}}, "required": ["id"]}
    >>> built = build_tool_schema(body, [InputRow("path", "id"), InputRow("query", "expand",
    ...                                   required=False)])
    >>> sorted(built.schema["properties"])
    ['expand', 'id', 'id__path']
    >>> built.schema["required"]
    ['id', 'id__path']
    >>> built.arguments["id__path"]
    Argument(location='path', key='id')
    """
    properties: dict[str, Any] = {}
    required: list[str] = []
    arguments: dict[str, Argument] = {}
    defs: dict[str, Any] = {}

    if body_schema:
        body = dict(body_schema)
        defs.update(body.pop("$defs", {}) or {})
        if body.get("type") == "object" and "properties" in body:
            for name, sub in body["properties"].items():
                properties[name] = sub
                arguments[name] = Argument("body", name)
            required.extend(n for n in body.get("required", []) if n in properties)
        else:
            # A body that is not a plain object (a list, a oneOf, raw bytes as a base64
            # string) travels whole.
            properties["body"] = body
            arguments["body"] = Argument("body", "")
            required.append("body")

    ordered = sorted(rows, key=lambda row: LOCATIONS.index(row.location))
    for row in ordered:
        base = argument_name(row.key)
        name = base
        if name in properties:
            name = f"{base}__{row.location}"
        suffix = 2
        while name in properties:  # even the renamed form is taken (a body "id__path")
            name = f"{base}__{row.location}{suffix}"
            suffix += 1
        schema = dict(row.value_schema or DEFAULT_VALUE_SCHEMA)
        if row.description and "description" not in schema:
            schema["description"] = row.description
        properties[name] = schema
        arguments[name] = Argument(row.location, row.key)
        if row.required or row.location == "path":
            required.append(name)

    schema: dict[str, Any] = {"type": "object", "properties": properties}
    if required:
        schema["required"] = required
    schema["additionalProperties"] = False
    if defs:
        schema["$defs"] = defs
    return ToolSchema(schema=schema, arguments=arguments)
