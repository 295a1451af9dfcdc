"""One stored tool schema, four renderings: each one as its provider documents it.

The unit tests pin strictify (OpenAI strict mode), clip, gemini_name, the MCP
annotations and the envelopes. The property tests render random tools (names with
leading digits and hyphens, long descriptions, body schemas from a small grammar)
and validate every output against the provider's documented shape and limits,
written down below as JSON Schemas: zero invalid outputs.
"""

import copy
import re
from itertools import count
from typing import Any

import pytest
from django.core.cache import cache
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError

from actions.models import OrganizationAPIKey
from actions.tool_formats import (
    OPENAI_STRICT_FORMATS,
    OPENAI_STRICT_KEYWORDS,
    ToolDefinition,
    clip,
    envelope,
    gemini_name,
    render,
    strictify,
)
from actions.tool_list import local_renderings
from actions.tool_schema import InputRow, build_tool_schema
from tests.factories import make_action, make_organization

# --- the providers' documented shapes ------------------------------------------------------

OPENAI_AND_ANTHROPIC_NAME = r"^[a-zA-Z0-9_-]{1,64}$"
GEMINI_NAME = r"^[A-Za-z_][A-Za-z0-9_.:-]{0,127}$"
MCP_NAME = r"^[A-Za-z0-9._-]{1,128}$"
# jsonschema matches `pattern` with re.search, where `$` also matches before a final
# newline; a name never contains one.
NO_NEWLINE = {"not": {"pattern": "\n"}}


def named(pattern: str) -> dict:
    return {"type": "string", "pattern": pattern, **NO_NEWLINE}


# A parameters / input schema: a JSON Schema whose root is an object schema.
OBJECT_ROOT = {"type": "object", "required": ["type"], "properties": {"type": {"const": "object"}}}

# OpenAI strict mode (Structured Outputs): the supported subset, every object closed
# with every property listed in `required` (checked in strict_mode_problems), arrays
# with items, the supported string formats, at most 1,000 enum values.
_IS_OBJECT = {
    "anyOf": [
        {"required": ["properties"]},
        {"required": ["type"], "properties": {"type": {"const": "object"}}},
        {
            "required": ["type"],
            "properties": {"type": {"type": "array", "contains": {"const": "object"}}},
        },
    ]
}
_IS_ARRAY = {
    "required": ["type"],
    "properties": {
        "type": {"anyOf": [{"const": "array"}, {"type": "array", "contains": {"const": "array"}}]}
    },
}
OPENAI_STRICT_SCHEMA = {
    "$id": "urn:opencx:openai-strict-schema",  # its own base, so "#/$defs/node" is its own
    "$ref": "#/$defs/node",
    "$defs": {
        "node": {
            "type": "object",
            "propertyNames": {"enum": sorted(OPENAI_STRICT_KEYWORDS)},
            "properties": {
                "properties": {"type": "object", "additionalProperties": {"$ref": "#/$defs/node"}},
                "required": {"type": "array", "items": {"type": "string"}, "uniqueItems": True},
                "additionalProperties": {"const": False},
                "items": {"$ref": "#/$defs/node"},
                "anyOf": {"type": "array", "minItems": 1, "items": {"$ref": "#/$defs/node"}},
                "$defs": {"type": "object", "additionalProperties": {"$ref": "#/$defs/node"}},
                "$ref": {"type": "string", "pattern": "^#(/\\$defs/[^/]+)?$"},
                "format": {"enum": sorted(OPENAI_STRICT_FORMATS)},
                "enum": {"type": "array", "maxItems": 1000},
            },
            "allOf": [
                {
                    "if": _IS_OBJECT,
                    "then": {"required": ["properties", "required", "additionalProperties"]},
                },
                {"if": _IS_ARRAY, "then": {"required": ["items"]}},
            ],
        }
    },
}

# Chat Completions `tools` entry.
OPENAI_TOOL = {
    "type": "object",
    "required": ["type", "function"],
    "additionalProperties": False,
    "properties": {
        "type": {"const": "function"},
        "function": {
            "type": "object",
            "required": ["name", "parameters", "strict"],
            "additionalProperties": False,
            "properties": {
                "name": named(OPENAI_AND_ANTHROPIC_NAME),
                "description": {"type": "string", "maxLength": 1024},
                "parameters": OBJECT_ROOT,
                "strict": {"type": "boolean"},
            },
            "if": {"properties": {"strict": {"const": True}}},
            "then": {"properties": {"parameters": OPENAI_STRICT_SCHEMA}},
        },
    },
}
# Messages API `tools` entry.
ANTHROPIC_TOOL = {
    "type": "object",
    "required": ["name", "input_schema"],
    "additionalProperties": False,
    "properties": {
        "name": named(OPENAI_AND_ANTHROPIC_NAME),
        "description": {"type": "string"},
        "input_schema": OBJECT_ROOT,
        "strict": {"type": "boolean"},
        "cache_control": {"type": "object"},
    },
}
# generateContent `functionDeclarations` entry (JSON Schema parameters).
GEMINI_FUNCTION = {
    "type": "object",
    "required": ["name"],
    "additionalProperties": False,
    "properties": {
        "name": named(GEMINI_NAME),
        "description": {"type": "string"},
        "parametersJsonSchema": OBJECT_ROOT,
        "parameters": {"type": "object"},
    },
    "not": {"required": ["parameters", "parametersJsonSchema"]},  # mutually exclusive
}
# MCP `tools/list` result entry.
MCP_TOOL = {
    "type": "object",
    "required": ["name", "inputSchema"],
    "additionalProperties": False,
    "properties": {
        "name": named(MCP_NAME),
        "title": {"type": "string"},
        "description": {"type": "string"},
        "inputSchema": {
            **OBJECT_ROOT,
            "properties": {
                "type": {"const": "object"},
                "properties": {"type": "object"},
                "required": {"type": "array", "items": {"type": "string"}},
            },
        },
        "outputSchema": OBJECT_ROOT,
        "annotations": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "title": {"type": "string"},
                "readOnlyHint": {"type": "boolean"},
                "destructiveHint": {"type": "boolean"},
                "idempotentHint": {"type": "boolean"},
                "openWorldHint": {"type": "boolean"},
            },
        },
        "icons": {"type": "array"},
        "_meta": {"type": "object"},
    },
}
TOOL_SHAPES = {
    "openai": OPENAI_TOOL,
    "anthropic": ANTHROPIC_TOOL,
    "gemini": GEMINI_FUNCTION,
    "mcp": MCP_TOOL,
}


def _tools_list(entry: dict) -> dict:
    return {
        "type": "object",
        "required": ["tools"],
        "properties": {"tools": {"type": "array", "items": entry}},
    }


ENVELOPE_SHAPES = {
    "openai": _tools_list(OPENAI_TOOL),
    "anthropic": _tools_list(ANTHROPIC_TOOL),
    "mcp": _tools_list(MCP_TOOL),
    "gemini": _tools_list(
        {
            "type": "object",
            "required": ["functionDeclarations"],
            "additionalProperties": False,
            "properties": {"functionDeclarations": {"type": "array", "items": GEMINI_FUNCTION}},
        }
    ),
}
VALIDATORS = {fmt: Draft202012Validator(shape) for fmt, shape in TOOL_SHAPES.items()}
ENVELOPE_VALIDATORS = {fmt: Draft202012Validator(shape) for fmt, shape in ENVELOPE_SHAPES.items()}


def schema_of(entry: dict, fmt: str) -> dict | None:
    """The parameters / input schema inside a rendered entry."""
    if fmt == "openai":
        return entry.get("function", {}).get("parameters")
    key = {"anthropic": "input_schema", "gemini": "parametersJsonSchema", "mcp": "inputSchema"}
    return entry.get(key[fmt])


def strict_mode_problems(schema: dict) -> list[str]:
    """What JSON Schema cannot say about strict mode: every property required, $refs
    that resolve, at most 10 levels of nested objects and 5,000 properties in all."""
    problems: list[str] = []
    total = 0

    def walk(node: Any, where: str, objects: int) -> None:
        nonlocal total
        if not isinstance(node, dict):
            return
        if "properties" in node:
            objects += 1
            total += len(node["properties"])
            if objects > 10:
                problems.append(f"{where}: objects nested deeper than 10 levels")
            if set(node.get("required", [])) != set(node["properties"]):
                problems.append(f"{where}: not every property is required")
        ref = node.get("$ref")
        if ref is not None and ref != "#":
            name = ref.removeprefix("#/$defs/").replace("~1", "/").replace("~0", "~")
            if name not in schema.get("$defs", {}):
                problems.append(f"{where}: $ref {ref} does not resolve")
        for name, sub in node.get("properties", {}).items():
            walk(sub, f"{where}/properties/{name}", objects)
        for index, sub in enumerate(node.get("anyOf", [])):
            walk(sub, f"{where}/anyOf/{index}", objects)
        walk(node.get("items"), f"{where}/items", objects)
        for name, sub in node.get("$defs", {}).items():
            walk(sub, f"{where}/$defs/{name}", 0)

    walk(schema, "#", 0)
    if total > 5000:
        problems.append(f"{total} properties (more than 5,000)")
    return problems


def problems_in(entry: dict, fmt: str) -> list[str]:
    """Every way a rendered entry breaks its provider's documented shape and limits."""
    problems = [
        f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
        for e in VALIDATORS[fmt].iter_errors(entry)
    ]
    schema = schema_of(entry, fmt)
    if isinstance(schema, dict):
        problems += [f"not Draft 2020-12: {e.message}" for e in _meta_errors(schema)]
        if fmt == "openai" and entry["function"].get("strict"):
            problems += strict_mode_problems(schema)
    return problems


def _meta_errors(schema: dict) -> list[SchemaError]:
    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as error:
        return [error]
    return []


def tool(schema: dict | None = None, **fields) -> ToolDefinition:
    fields = {
        "name": "look_up_order",
        "title": "Look up order",
        "description": "Looks up an order by its number.",
        "schema": schema or {"type": "object", "properties": {}, "additionalProperties": False},
        "method": "GET",
        **fields,
    }
    return ToolDefinition(**fields)


def obj(properties: dict, required: list[str] | None = None, **extra) -> dict:
    schema = {"type": "object", "properties": properties, **extra}
    if required is not None:
        schema["required"] = required
    return schema


STRING = {"type": "string"}
NULLABLE_STRING = {"anyOf": [STRING, {"type": "null"}]}


# --- the shapes themselves can fail ------------------------------------------------------------


def openai_entry(parameters: dict | None = None, **function) -> dict:
    function = {"name": "ok", "parameters": parameters or obj({}), "strict": False, **function}
    return {"type": "function", "function": function}


CLOSED_URI = obj({"a": {"type": "string", "format": "uri"}}, ["a"], additionalProperties=False)


@pytest.mark.parametrize(
    ("fmt", "entry"),
    [
        ("openai", openai_entry(name="9 lives")),
        ("openai", openai_entry(description="x" * 1025)),
        ("openai", openai_entry(obj({"a": STRING}), strict=True)),  # open, a optional
        ("openai", openai_entry(CLOSED_URI, strict=True)),  # a format strict mode lacks
        ("openai", {"type": "function", "function": {"name": "ok", "strict": False}}),
        ("anthropic", {"name": "a" * 65, "input_schema": obj({})}),
        ("anthropic", {"name": "ok", "input_schema": {"anyOf": [obj({})]}}),
        ("anthropic", {"name": "ok", "input_schema": obj({"a": {"type": "strng"}})}),
        ("mcp", {"name": "ok", "inputSchema": obj({"n": {"exclusiveMinimum": True}})}),
        ("gemini", {"name": "2fa", "parametersJsonSchema": obj({})}),
        ("gemini", {"name": "ok\n", "parametersJsonSchema": obj({})}),
        ("gemini", {"name": "ok", "parametersJsonSchema": obj({}), "parameters": obj({})}),
        ("mcp", {"name": "a b", "inputSchema": obj({})}),
        ("mcp", {"name": "ok", "inputSchema": obj({}), "annotations": {"readOnlyHint": "yes"}}),
    ],
)
def test_each_documented_shape_rejects_what_its_provider_rejects(fmt, entry):
    assert problems_in(entry, fmt)


def test_the_strict_mode_checks_catch_an_optional_property_and_a_dangling_ref():
    optional = obj({"a": STRING, "b": STRING}, ["a"], additionalProperties=False)
    dangling = obj({"a": {"$ref": "#/properties/b"}}, ["a"], additionalProperties=False)
    assert strict_mode_problems(optional) == ["#: not every property is required"]
    assert strict_mode_problems(dangling) == [
        "#/properties/a: $ref #/properties/b does not resolve"
    ]


# --- strictify ---------------------------------------------------------------------------------


def test_strictify_closes_every_object_and_requires_every_property():
    schema = obj(
        {
            "id": STRING,
            "address": obj({"city": STRING, "zip": STRING}, ["city"]),
            "lines": {"type": "array", "items": obj({"sku": STRING})},
            "choice": {"anyOf": [obj({"x": STRING}), STRING]},
        },
        ["id", "address", "lines", "choice"],
    )

    strict = strictify(schema)

    assert strict["additionalProperties"] is False
    assert strict["required"] == ["id", "address", "lines", "choice"]
    address = strict["properties"]["address"]
    assert address["additionalProperties"] is False
    assert address["required"] == ["city", "zip"]
    assert address["properties"]["zip"] == NULLABLE_STRING
    line = strict["properties"]["lines"]["items"]
    assert (line["additionalProperties"], line["required"]) == (False, ["sku"])
    branch = strict["properties"]["choice"]["anyOf"][0]
    assert (branch["additionalProperties"], branch["required"]) == (False, ["x"])
    assert strict_mode_problems(strict) == []


def test_strictify_leaves_the_stored_schema_untouched():
    schema = obj({"note": {"type": "string", "maxLength": 5, "title": "Note"}})
    before = copy.deepcopy(schema)
    strictify(schema)
    render(tool(schema), "openai")
    assert schema == before


def test_an_optional_property_becomes_nullable_with_its_description_outside():
    schema = obj({"note": {"type": "string", "description": "A note for the courier."}})
    assert strictify(schema)["properties"]["note"] == {
        "anyOf": [STRING, {"type": "null"}],
        "description": "A note for the courier.",
    }


@pytest.mark.parametrize(
    "nullable",
    [
        {"type": ["string", "null"]},
        {"type": "null"},
        {"anyOf": [STRING, {"type": "null"}]},
        {"type": ["string", "null"], "enum": ["a", None]},
    ],
)
def test_an_optional_property_that_is_already_nullable_is_not_wrapped_again(nullable):
    assert strictify(obj({"p": nullable}))["properties"]["p"] == nullable


def test_a_nullable_type_whose_enum_excludes_null_is_wrapped():
    """The enum alone would refuse the null strict mode sends for a missing value."""
    schema = obj({"p": {"type": ["string", "null"], "enum": ["a", "b"]}})
    assert strictify(schema)["properties"]["p"] == {
        "anyOf": [{"type": ["string", "null"], "enum": ["a", "b"]}, {"type": "null"}]
    }


def test_a_required_property_stays_as_it_is():
    assert strictify(obj({"id": STRING}, ["id"]))["properties"]["id"] == STRING


def test_one_of_becomes_any_of_at_every_level():
    schema = obj(
        {"v": {"oneOf": [STRING, obj({"w": {"oneOf": [STRING, {"type": "integer"}]}}, ["w"])]}},
        ["v"],
    )
    strict = strictify(schema)
    outer = strict["properties"]["v"]
    assert "oneOf" not in outer
    assert outer["anyOf"][0] == STRING
    assert outer["anyOf"][1]["properties"]["w"] == {"anyOf": [STRING, {"type": "integer"}]}


def test_annotations_and_length_limits_are_dropped_and_other_constraints_kept():
    leaf = {
        "type": "string",
        "title": "Code",
        "default": "x",
        "examples": ["abc"],
        "deprecated": False,
        "readOnly": False,
        "$comment": "internal",
        "minLength": 3,
        "maxLength": 10,
        "pattern": "^[a-z]+$",
        "format": "email",
        "description": "The code.",
    }
    schema = obj(
        {
            "code": leaf,
            "count": {"type": "integer", "minimum": 1, "maximum": 9, "multipleOf": 1},
            "tags": {"type": "array", "items": STRING, "minItems": 1, "uniqueItems": True},
            "meta": obj({"a": STRING}, ["a"], minProperties=1, maxProperties=2),
        },
        ["code", "count", "tags", "meta"],
        title="Body",
    )

    strict = strictify(schema)

    assert "title" not in strict
    assert strict["properties"]["code"] == {
        "type": "string",
        "pattern": "^[a-z]+$",
        "format": "email",
        "description": "The code.",
    }
    assert strict["properties"]["count"] == schema["properties"]["count"]
    assert strict["properties"]["tags"] == {"type": "array", "items": STRING, "minItems": 1}
    assert "minProperties" not in strict["properties"]["meta"]
    assert "maxProperties" not in strict["properties"]["meta"]


def test_formats_strict_mode_does_not_know_are_dropped_and_known_ones_kept():
    properties = {f: {"type": "string", "format": f} for f in ("uri", "byte", "int32", "uuid")}
    strict = strictify(obj(properties, list(properties)))
    assert strict["properties"]["uri"] == STRING
    assert strict["properties"]["byte"] == STRING
    assert strict["properties"]["int32"] == STRING
    assert strict["properties"]["uuid"] == {"type": "string", "format": "uuid"}


@pytest.mark.parametrize(
    "unsupported",
    [
        {"allOf": [STRING, {"pattern": "^a"}]},
        {"not": STRING},
        {"type": "string", "if": {"pattern": "^a"}, "then": {"maxLength": 3}},
        {"type": "object"},  # an open object: no properties
        {"additionalProperties": True},  # an open object without its type
        {"additionalProperties": STRING},
        {"type": "object", "properties": {"a": STRING}, "additionalProperties": True},
        {"type": "object", "properties": {"a": STRING}, "additionalProperties": STRING},
        {"type": "object", "properties": {}, "patternProperties": {"^x": STRING}},
        {"type": "object", "properties": {"a": STRING}, "dependentRequired": {"a": ["b"]}},
        {"type": "array"},  # no items
        {"type": "array", "prefixItems": [STRING]},
        {"type": "array", "items": [STRING]},  # the old tuple form
    ],
)
def test_what_strict_mode_cannot_express_means_no_strict_schema(unsupported):
    assert strictify(obj({"p": unsupported}, ["p"])) is None
    assert strictify(obj({"p": {"anyOf": [unsupported, STRING]}}, ["p"])) is None


def nested(levels: int) -> dict:
    """A schema whose deepest path passes through `levels` schemas."""
    schema: dict = STRING
    for _ in range(levels - 1):
        schema = obj({"a": schema}, ["a"])
    return schema


def test_ten_levels_of_nesting_are_strict_and_eleven_are_not():
    assert strictify(nested(10)) is not None
    assert strictify(nested(11)) is None


def test_at_most_5000_properties_in_all_objects_together():
    def many(n: int, prefix: str) -> dict:
        return {f"{prefix}{i}": STRING for i in range(n)}

    at_limit = obj({**many(4999, "p"), "inner": obj(many(0, "q"))}, [])
    over = obj({**many(4999, "p"), "inner": obj(many(1, "q"))}, [])
    assert strictify(at_limit) is not None
    assert strictify(over) is None
    # $defs count too.
    in_defs = obj(many(4999, "p"), [], **{"$defs": {"D": obj(many(2, "q"))}})
    assert strictify(in_defs) is None


def test_at_most_1000_enum_values():
    assert strictify(obj({"p": {"enum": list(range(1000))}}, ["p"])) is not None
    assert strictify(obj({"p": {"enum": list(range(1001))}}, ["p"])) is None


def test_defs_are_strictified_too():
    schema = obj(
        {"address": {"$ref": "#/$defs/Address"}},
        ["address"],
        **{"$defs": {"Address": obj({"city": STRING, "zip": STRING}, ["city"], title="A")}},
    )

    strict = strictify(schema)

    assert strict["properties"]["address"] == {"$ref": "#/$defs/Address"}
    address = strict["$defs"]["Address"]
    assert address["additionalProperties"] is False
    assert address["required"] == ["city", "zip"]
    assert address["properties"]["zip"] == NULLABLE_STRING
    assert "title" not in address


def test_a_def_strict_mode_cannot_express_means_no_strict_schema():
    schema = obj({"a": {"$ref": "#/$defs/Open"}}, ["a"], **{"$defs": {"Open": {"type": "object"}}})
    assert strictify(schema) is None


def test_an_optional_reference_becomes_nullable_and_recursion_through_defs_is_kept():
    node = obj({"name": STRING, "child": {"$ref": "#/$defs/Node"}}, ["name"])
    schema = obj({"root": {"$ref": "#/$defs/Node"}}, [], **{"$defs": {"Node": node}})

    strict = strictify(schema)

    assert strict["properties"]["root"] == {"anyOf": [{"$ref": "#/$defs/Node"}, {"type": "null"}]}
    child = strict["$defs"]["Node"]["properties"]["child"]
    assert child == {"anyOf": [{"$ref": "#/$defs/Node"}, {"type": "null"}]}
    assert strict_mode_problems(strict) == []


@pytest.mark.parametrize(
    "schema",
    [
        # Into a property that becomes nullable: the pointer no longer leads there.
        obj({"a": obj({"x": STRING}, ["x"]), "b": {"$ref": "#/properties/a/properties/x"}}, ["b"]),
        # Into $defs nested below the root, which strict mode has no place for.
        obj({"a": {"$defs": {"X": STRING}, "$ref": "#/properties/a/$defs/X"}}, ["a"]),
        # To a definition that does not exist, or into a definition.
        obj({"a": {"$ref": "#/$defs/Missing"}}, ["a"]),
        obj(
            {"a": {"$ref": "#/$defs/D/properties/x"}}, ["a"], **{"$defs": {"D": obj({"x": STRING})}}
        ),
    ],
)
def test_a_reference_that_would_not_resolve_in_the_strict_schema_means_no_strict_schema(schema):
    assert strictify(schema) is None


def test_a_reference_to_a_definition_with_an_escaped_name_is_kept():
    schema = obj({"a": {"$ref": "#/$defs/a~1b"}}, ["a"], **{"$defs": {"a/b": STRING}})
    assert strictify(schema)["properties"]["a"] == {"$ref": "#/$defs/a~1b"}


def test_a_reference_to_the_root_is_kept():
    schema = obj({"name": STRING, "parent": {"$ref": "#"}}, ["name", "parent"])
    strict = strictify(schema)
    assert strict["properties"]["parent"] == {"$ref": "#"}


def test_properties_without_a_type_are_an_object_and_closed():
    """OpenAPI documents often leave out `type: object` next to `properties`."""
    schema = obj({"address": {"properties": {"city": STRING}}}, ["address"])

    strict = strictify(schema)

    assert strict is not None
    address = strict["properties"]["address"]
    assert address["additionalProperties"] is False
    assert address["required"] == ["city"]
    assert strict_mode_problems(strict) == []


# --- clip ----------------------------------------------------------------------------------------


def test_clip_keeps_a_text_that_fits():
    assert clip("Looks up an order.", 18) == "Looks up an order."
    assert clip("x" * 1024, 1024) == "x" * 1024


def test_clip_cuts_at_a_word_and_marks_the_cut():
    assert clip("Looks up an order by its number.", 20) == "Looks up an order…"
    assert clip("Refunds, then emails the customer.", 12) == "Refunds…"


def test_clip_cuts_a_single_long_word_hard():
    assert clip("x" * 2000, 1024) == "x" * 1023 + "…"


@given(text=st.text(max_size=3000), limit=st.integers(1, 1500))
def test_clip_never_exceeds_the_limit_and_keeps_a_prefix(text, limit):
    clipped = clip(text, limit)
    assert len(clipped) <= limit
    if len(text) <= limit:
        assert clipped == text
    else:
        assert clipped.endswith("…")
        assert text.startswith(clipped[:-1])


# --- gemini_name -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("lookup_order", "lookup_order"),
        ("_private", "_private"),
        ("Refund-v2", "Refund-v2"),
        ("2fa_reset", "_2fa_reset"),
        ("-dash-first", "_-dash-first"),
        ("9" * 64, "_" + "9" * 64),
    ],
)
def test_gemini_name_prefixes_names_gemini_would_refuse(name, expected):
    assert gemini_name(name) == expected


@given(name=st.from_regex(r"[a-zA-Z0-9_-]{1,64}", fullmatch=True))
def test_every_tool_name_becomes_a_valid_gemini_name(name):
    assert re.fullmatch(GEMINI_NAME.strip("^$"), gemini_name(name))
    assert gemini_name(name).removeprefix("_") == name.removeprefix("_")


# --- MCP annotations, renderers and envelopes -------------------------------------------------


@pytest.mark.parametrize(
    ("method", "requires_form", "read_only", "destructive", "idempotent"),
    [
        ("GET", False, True, False, True),
        ("GET", True, True, False, True),
        ("POST", False, False, False, False),
        ("POST", True, False, True, False),
        ("PUT", False, False, False, True),
        ("PUT", True, False, True, True),
        ("PATCH", False, False, False, False),
        ("PATCH", True, False, True, False),
        ("DELETE", False, False, True, True),
        ("DELETE", True, False, True, True),
        ("get", False, True, False, True),
    ],
)
def test_mcp_annotations_follow_the_method_and_the_form(
    method, requires_form, read_only, destructive, idempotent
):
    entry = render(tool(method=method, requires_form=requires_form, title="Refund"), "mcp")
    assert entry["annotations"] == {
        "title": "Refund",
        "readOnlyHint": read_only,
        "destructiveHint": destructive,
        "idempotentHint": idempotent,
        "openWorldHint": True,
    }
    assert entry["title"] == "Refund"
    assert problems_in(entry, "mcp") == []


def test_openai_serves_the_strict_schema_when_there_is_one():
    schema = obj({"id": STRING, "note": {"type": "string", "maxLength": 500}}, ["id"])
    entry = render(tool(schema), "openai")
    assert entry == {
        "type": "function",
        "function": {
            "name": "look_up_order",
            "description": "Looks up an order by its number.",
            "parameters": strictify(schema),
            "strict": True,
        },
    }


def test_openai_serves_the_schema_as_stored_and_not_strict_otherwise():
    schema = obj({"meta": {"type": "object"}}, ["meta"])
    function = render(tool(schema), "openai")["function"]
    assert function["strict"] is False
    assert function["parameters"] == schema
    assert problems_in({"type": "function", "function": function}, "openai") == []


def test_openai_clips_a_long_description_and_the_others_keep_it_whole():
    description = "Refunds the order. " * 100
    definition = tool(description=description)
    assert render(definition, "openai")["function"]["description"] == clip(description, 1024)
    assert render(definition, "anthropic")["description"] == description
    assert render(definition, "gemini")["description"] == description
    assert render(definition, "mcp")["description"] == description


def test_anthropic_gemini_and_mcp_carry_the_schema_as_stored():
    schema = obj({"note": {"type": "string", "maxLength": 5}})
    definition = tool(schema, name="2fa_reset")
    assert render(definition, "anthropic") == {
        "name": "2fa_reset",
        "description": definition.description,
        "input_schema": schema,
    }
    assert render(definition, "gemini") == {
        "name": "_2fa_reset",
        "description": definition.description,
        "parametersJsonSchema": schema,
    }
    assert render(definition, "mcp")["inputSchema"] == schema


def test_envelopes_are_the_providers_request_shapes():
    entries = [{"name": "a"}]
    assert envelope("openai", entries) == {"tools": entries}
    assert envelope("anthropic", entries) == {"tools": entries}
    assert envelope("mcp", entries) == {"tools": entries}
    assert envelope("gemini", entries) == {"tools": [{"functionDeclarations": entries}]}
    assert envelope("gemini", []) == {"tools": [{"functionDeclarations": []}]}


# --- every rendering of random tools matches its provider's documented shape -----------------

FORMATS = ("openai", "anthropic", "gemini", "mcp")


def texts(**sizes):
    """Any text PostgreSQL can store (the product refuses NUL before it gets there)."""
    return st.text(st.characters(exclude_characters="\x00", exclude_categories=("Cs",)), **sizes)


# Names as tool names allow them: leading digits and hyphens included.
tool_names = st.one_of(
    st.from_regex(r"[a-zA-Z0-9_-]{1,64}", fullmatch=True),
    st.from_regex(r"[0-9-][a-zA-Z0-9_-]{0,63}", fullmatch=True),
    st.sampled_from(["2fa_reset", "-x", "_", "9" * 64, "a" * 64]),
)
descriptions = st.one_of(
    texts(max_size=200),
    st.text(alphabet=st.sampled_from("ab cd,.é\n"), min_size=1000, max_size=3000),
    st.just("word " * 400),
)
property_names = st.from_regex(r"[a-z][a-z0-9_]{0,8}", fullmatch=True)
DEF_NAMES = ("Address", "Line")

leaves = st.one_of(
    st.just({"type": "string"}),
    st.fixed_dictionaries(
        {"type": st.just("string")},
        optional={
            "format": st.sampled_from(["email", "date-time", "uuid", "uri", "byte", "int32"]),
            "pattern": st.just("^[A-Z]{2}[0-9]+$"),
            "minLength": st.integers(0, 5),
            "maxLength": st.integers(5, 50),
            "enum": st.lists(texts(max_size=5), min_size=1, max_size=4, unique=True),
        },
    ),
    st.fixed_dictionaries(
        {"type": st.sampled_from(["integer", "number"])},
        optional={"minimum": st.integers(-5, 0), "maximum": st.integers(1, 100)},
    ),
    st.just({"type": "boolean"}),
    st.just({"type": ["string", "null"]}),
    st.just({"type": "null"}),
    st.builds(lambda v: {"const": v}, st.one_of(st.integers(), texts(max_size=4))),
    st.just({"enum": list(range(1001))}),
    st.just({}),
    st.sampled_from([{"$ref": f"#/$defs/{name}"} for name in DEF_NAMES]),
)


def annotated(schema_strategy):
    return st.builds(
        lambda schema, extra: {**schema, **extra},
        schema_strategy,
        st.fixed_dictionaries(
            {},
            optional={
                "description": texts(max_size=40),
                "title": texts(max_size=10),
                "default": st.none(),
                "examples": st.just(["x"]),
                "deprecated": st.booleans(),
            },
        ),
    )


@st.composite
def objects(draw, children, *, typed=None) -> dict:
    properties = draw(st.dictionaries(property_names, children, max_size=4))
    schema: dict = {"properties": properties}
    if draw(st.booleans()) if typed is None else typed:
        schema["type"] = draw(st.sampled_from(["object", "object", ["object", "null"]]))
    required = (
        draw(st.lists(st.sampled_from(sorted(properties)), unique=True)) if properties else []
    )
    if required or draw(st.booleans()):
        schema["required"] = required
    closing = draw(st.sampled_from(["missing", "missing", "false", "true", "schema"]))
    if closing != "missing":
        schema["additionalProperties"] = {"false": False, "true": True, "schema": STRING}[closing]
    if draw(st.integers(0, 9)) == 0:
        del schema["properties"]  # a map, or an object with nothing declared
    return schema


def composites(children):
    return st.one_of(
        objects(children),
        st.builds(lambda items: {"type": "array", "items": items}, children),
        st.builds(
            lambda items, lo: {
                "type": "array",
                "items": items,
                "minItems": lo,
                "uniqueItems": True,
            },
            children,
            st.integers(0, 2),
        ),
        st.just({"type": "array"}),
        st.builds(lambda subs: {"anyOf": subs}, st.lists(children, min_size=1, max_size=3)),
        st.builds(lambda subs: {"oneOf": subs}, st.lists(children, min_size=1, max_size=3)),
        st.builds(lambda subs: {"allOf": subs}, st.lists(children, min_size=1, max_size=2)),
        st.builds(lambda sub: {"not": sub}, children),
    )


subschemas = st.recursive(annotated(leaves), lambda c: annotated(composites(c)), max_leaves=12)


@st.composite
def body_schemas(draw) -> dict | None:
    if draw(st.integers(0, 5)) == 0:
        return None
    body = draw(objects(subschemas, typed=True))
    body["type"] = "object"
    body.setdefault("properties", {})
    defs = {name: draw(subschemas) for name in DEF_NAMES}
    body["$defs"] = defs
    return body


input_rows = st.lists(
    st.builds(
        InputRow,
        location=st.sampled_from(["path", "query", "header"]),
        key=st.sampled_from(["id", "X-Customer-Id", "9to5", "filter[status]", "page"]),
        description=texts(max_size=30),
        required=st.booleans(),
        value_schema=st.one_of(st.none(), leaves.filter(lambda s: "$ref" not in s)),
    ),
    max_size=4,
)


@st.composite
def tool_definitions(draw) -> ToolDefinition:
    return ToolDefinition(
        name=draw(tool_names),
        title=draw(texts(max_size=60)),
        description=draw(descriptions),
        schema=build_tool_schema(draw(body_schemas()), draw(input_rows)).schema,
        method=draw(st.sampled_from(["GET", "POST", "PUT", "PATCH", "DELETE"])),
        requires_form=draw(st.booleans()),
    )


def test_the_grammar_makes_valid_json_schemas():
    """Otherwise a broken rendering could be the grammar's fault, not the renderer's."""

    @settings(max_examples=100, deadline=None)
    @given(definition=tool_definitions())
    def check(definition):
        Draft202012Validator.check_schema(definition.schema)

    check()


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(definitions=st.lists(tool_definitions(), min_size=1, max_size=3))
def test_every_rendering_of_random_tools_matches_its_providers_documented_shape(definitions):
    for fmt in FORMATS:
        entries = [render(definition, fmt) for definition in definitions]
        for definition, entry in zip(definitions, entries, strict=True):
            assert problems_in(entry, fmt) == [], (fmt, definition)
        assert list(ENVELOPE_VALIDATORS[fmt].iter_errors(envelope(fmt, entries))) == []


# --- and so does every list the API serves ------------------------------------------------------

_orgs = count(1)


@pytest.mark.django_db
@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    actions=st.lists(
        st.tuples(
            tool_names,
            descriptions,
            body_schemas(),
            st.sampled_from(["GET", "POST", "PUT", "PATCH", "DELETE"]),
            st.booleans(),
        ),
        min_size=1,
        max_size=4,
        unique_by=lambda action: action[0],
    )
)
def test_every_format_the_api_serves_matches_its_providers_documented_shape(client, actions):
    # Rolled-back organizations' ids come back; their cached lists must not.
    cache.clear()
    local_renderings.clear()
    organization = make_organization(slug=f"formats-{next(_orgs)}")
    for index, (name, description, body, method, requires_form) in enumerate(actions):
        make_action(
            organization,
            name=f"Random action {index}",
            tool_name=name,
            description=description,
            method=method,
            body_schema=body,
            requires_form=requires_form,
            endpoint="https://api.example.com/v1/things/{thing_id}",
        )
    _, key = OrganizationAPIKey.objects.create_key(
        organization=organization, name="runtime", scopes="tools"
    )

    for fmt in FORMATS:
        response = client.get(
            "/api/v1/tools",
            {"channel": "widget", "format": fmt},
            HTTP_AUTHORIZATION=f"Bearer {key}",
        )
        assert response.status_code == 200, response.content
        body = response.json()
        assert list(ENVELOPE_VALIDATORS[fmt].iter_errors(body)) == [], fmt
        entries = body["tools"][0]["functionDeclarations"] if fmt == "gemini" else body["tools"]
        assert len(entries) == len(actions)
        for entry in entries:
            assert problems_in(entry, fmt) == [], (fmt, entry)
