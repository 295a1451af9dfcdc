"""Infer a body schema from a pasted sample JSON.

genson does the type merging; this module makes its output something an admin can
save as-is after a review: Draft 2020-12, an object at the root, nulls as nullable
strings, and empty arrays given an item type.
"""

import json
from typing import Any

from django.core.exceptions import ValidationError
from genson import SchemaBuilder

DRAFT_2020_12 = "https://json-schema.org/draft/2020-12/schema"


def infer_body_schema(sample_text: str) -> dict[str, Any]:
    """Parse a sample request body and return a JSON Schema for it.

    >>> schema = infer_body_schema('{"order_id": "A1", "note": null, "items": []}')
    >>> schema["properties"]["note"]
    {'anyOf': [{'type': 'string'}, {'type': 'null'}]}
    >>> schema["properties"]["items"]
    {'type': 'array', 'items': {'type': 'string'}}
    """
    try:
        sample = json.loads(sample_text)
    except json.JSONDecodeError as error:
        raise ValidationError(
            "The sample is not valid JSON (line %(line)d, column %(column)d: %(message)s). "
            "Paste a request body exactly as the API expects it.",
            code="sample_not_json",
            params={"line": error.lineno, "column": error.colno, "message": error.msg},
        ) from None
    except RecursionError:
        raise ValidationError(
            "The sample is nested too deeply to read.", code="sample_too_deep"
        ) from None
    if not isinstance(sample, dict):
        raise ValidationError(
            "The sample must be a JSON object ({...}) at its top level, as a request body "
            "is. Wrap a list or a single value in a property.",
            code="sample_not_object",
        )
    builder = SchemaBuilder(schema_uri=DRAFT_2020_12)
    builder.add_object(sample)
    schema = builder.to_schema()
    schema.pop("$schema", None)
    return _tidy(schema)


def _tidy(node: Any) -> Any:
    """Replace what a single sample cannot tell: the type behind a null or an empty list."""
    if isinstance(node, list):
        return [_tidy(item) for item in node]
    if not isinstance(node, dict):
        return node
    node = {key: _tidy(value) for key, value in node.items()}
    if node.get("type") == "null":
        # A null in a sample is usually an optional string; the admin can change it.
        rest = {k: v for k, v in node.items() if k != "type"}
        return {**rest, "anyOf": [{"type": "string"}, {"type": "null"}]}
    if isinstance(node.get("type"), list) and "null" in node["type"]:
        others = [t for t in node["type"] if t != "null"]
        rest = {k: v for k, v in node.items() if k != "type"}
        variant = {"type": others[0] if len(others) == 1 else others}
        return {**rest, "anyOf": [variant, {"type": "null"}]}
    if node.get("type") == "array" and "items" not in node:
        node["items"] = {"type": "string"}
    return node
