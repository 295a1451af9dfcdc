"""Infer a body schema from a pasted sample JSON.

genson does the type merging; this module makes its output something an admin can
save as-is after a review: Draft 2020-12, an object at the root, nulls as nullable
strings, and empty arrays given an item type.
"""

import json
from typing import Any

from django.core.exceptions import ValidationError
from genson import SchemaBuilder

from actions.validators import json_depth

DRAFT_2020_12 = "https://json-schema.org/draft/2020-12/schema"
# Each level of the sample can take up to three levels in the schema (items, anyOf,
# a variant), and a body schema may nest 100 levels (validators.BODY_SCHEMA_MAX_DEPTH).
SAMPLE_MAX_DEPTH = 32


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
        raise _too_deep() from None
    if not isinstance(sample, dict):
        raise ValidationError(
            "The sample must be a JSON object ({...}) at its top level, as a request body "
            "is. Wrap a list or a single value in a property.",
            code="sample_not_object",
        )
    if json_depth(sample) > SAMPLE_MAX_DEPTH:
        raise _too_deep()
    builder = SchemaBuilder(schema_uri=DRAFT_2020_12)
    builder.add_object(sample)
    schema = builder.to_schema()
    schema.pop("$schema", None)
    return _tidy(schema)


def _too_deep() -> ValidationError:
    return ValidationError(
        "The sample nests more than %(max)d levels deep. Trim it to the fields the action sends.",
        code="sample_too_deep",
        params={"max": SAMPLE_MAX_DEPTH},
    )


def _tidy(schema: dict[str, Any], *, in_union: bool = False) -> dict[str, Any]:
    """Replace what a single sample cannot tell: the type behind a null or an empty list.

    A lone null becomes an optional string; a null beside other types keeps them:
    {"type": ["array", "null"]} -> {"anyOf": [{"type": "array", "items": {...}},
    {"type": "null"}]}. genson only emits type, properties, required, items and anyOf.
    """
    schema = dict(schema)
    if isinstance(schema.get("properties"), dict):
        schema["properties"] = {name: _tidy(sub) for name, sub in schema["properties"].items()}
    if isinstance(schema.get("items"), dict):
        schema["items"] = _tidy(schema["items"])
    if isinstance(schema.get("anyOf"), list):
        schema["anyOf"] = [_tidy(sub, in_union=True) for sub in schema["anyOf"]]
    types = schema.get("type")
    if types == "null" and not in_union:
        # A null in a sample is usually an optional string; the admin can change it.
        rest = {k: v for k, v in schema.items() if k != "type"}
        return {**rest, "anyOf": [{"type": "string"}, {"type": "null"}]}
    if isinstance(types, list) and "null" in types:
        others = [t for t in types if t != "null"]
        variant = {**schema, "type": others[0] if len(others) == 1 else others}
        return {"anyOf": [_with_items(variant), {"type": "null"}]}
    return _with_items(schema)


def _with_items(schema: dict[str, Any]) -> dict[str, Any]:
    """An array seen only empty gets string items: tool schemas need an item type."""
    types = schema.get("type")
    is_array = types == "array" or (isinstance(types, list) and "array" in types)
    if is_array and "items" not in schema:
        return {**schema, "items": {"type": "string"}}
    return schema
