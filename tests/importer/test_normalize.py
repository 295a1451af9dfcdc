"""Normalizing OpenAPI 2.0 / 3.0 / 3.1 schemas into JSON Schema 2020-12."""

import copy
import datetime
import doctest

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

from actions.validators import check_meta_schema, validate_body_schema, validate_storable_json
from importer import normalize, refs
from importer.drafts import FAILED_TO_PARSE_SPEC, INVALID_TOOL_SCHEMA
from importer.normalize import (
    MAX_ALTERNATION_DEPTH,
    MAX_RECURSION_DEPTH,
    MAX_SCHEMA_DEPTH,
    SchemaProblem,
    Schemas,
    swagger_parameter_schema,
)
from importer.refs import Document, def_name


def make_schemas(components: dict | None = None, version: str = "3.0") -> Schemas:
    if version == "2.0":
        doc = {"swagger": "2.0", "definitions": components or {}}
    else:
        doc = {"openapi": f"{version}.0", "components": {"schemas": components or {}}}
    return Schemas(Document(doc), version)


def normalized(schema, version: str = "3.0", components: dict | None = None):
    return make_schemas(components, version).normalize(schema, "#/test")


def with_definitions(schema, version: str = "3.0", components: dict | None = None):
    """The normalized schema and the $defs it reaches, as a body would hold them."""
    schemas = make_schemas(components, version)
    root = schemas.normalize(schema, "#/test")
    return root, schemas.definitions(root, "#/test")


def refusal(schema, version: str = "3.0", components: dict | None = None) -> SchemaProblem:
    with pytest.raises(SchemaProblem) as info:
        with_definitions(schema, version, components)
    return info.value


@pytest.mark.parametrize("module", [normalize, refs])
def test_worked_examples_in_docstrings_hold(module):
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0
    assert result.failed == 0


# --- nullables ----------------------------------------------------------------------


def test_openapi_30_nullable_becomes_any_of_with_null():
    assert normalized({"type": "string", "nullable": True, "description": "Nickname"}) == {
        "description": "Nickname",
        "anyOf": [{"type": "string"}, {"type": "null"}],
    }


def test_swagger_x_nullable_becomes_any_of_with_null():
    assert normalized({"type": "integer", "x-nullable": True}, "2.0") == {
        "anyOf": [{"type": "integer"}, {"type": "null"}]
    }


def test_nullable_false_changes_nothing():
    assert normalized({"type": "string", "nullable": False}) == {"type": "string"}


def test_openapi_31_type_array_with_null_becomes_any_of():
    schema = {"type": ["string", "null"], "maxLength": 5, "default": None}
    assert normalized(schema, "3.1") == {
        "default": None,
        "anyOf": [{"type": "string", "maxLength": 5}, {"type": "null"}],
    }


def test_type_array_without_null_stays_a_type_array():
    assert normalized({"type": ["string", "integer"]}, "3.1") == {"type": ["string", "integer"]}


def test_yaml_null_type_is_the_null_type():
    # yaml.safe_load reads `type: [string, null]` as ["string", None]
    assert normalized({"type": ["string", None]}, "3.1") == {
        "anyOf": [{"type": "string"}, {"type": "null"}]
    }
    assert normalized({"type": None}, "3.1") == {"type": "null"}


def test_nullable_reference_in_30_keeps_the_reference_under_any_of():
    components = {"Owner": {"type": "string"}}
    root, definitions = with_definitions(
        {"$ref": "#/components/schemas/Owner", "nullable": True}, components=components
    )
    assert root == {"anyOf": [{"$ref": "#/$defs/Owner"}, {"type": "null"}]}
    assert definitions == {"Owner": {"type": "string"}}


def test_one_of_null_and_a_reference_is_stored_as_a_nullable():
    schema = {"oneOf": [{"type": "null"}, {"$ref": "#/components/schemas/Owner"}]}
    root, _ = with_definitions(schema, "3.1", {"Owner": {"type": "string"}})
    assert root == {"anyOf": [{"$ref": "#/$defs/Owner"}, {"type": "null"}]}


# --- 3.0 and 2.0 spellings -------------------------------------------------------------


def test_boolean_exclusive_bounds_become_numeric_bounds():
    schema = {"type": "number", "minimum": 0, "exclusiveMinimum": True, "maximum": 10}
    assert normalized(schema) == {"type": "number", "exclusiveMinimum": 0, "maximum": 10}
    schema = {"type": "number", "maximum": 5, "exclusiveMaximum": False}
    assert normalized(schema) == {"type": "number", "maximum": 5}


def test_numeric_exclusive_bounds_of_31_are_kept():
    schema = {"type": "number", "exclusiveMinimum": 0}
    assert normalized(schema, "3.1") == schema


def test_example_becomes_examples():
    assert normalized({"type": "string", "example": "rex"}) == {
        "type": "string",
        "examples": ["rex"],
    }
    assert normalized({"type": "string", "examples": ["a"], "example": "b"}, "3.1") == {
        "type": "string",
        "examples": ["a"],
    }


def test_swagger_file_type_becomes_a_binary_string():
    assert normalized({"type": "file"}, "2.0") == {"type": "string", "format": "binary"}


def test_openapi_only_keywords_and_extensions_are_dropped_and_the_rest_kept():
    schema = {
        "type": "object",
        "description": "A pet",
        "discriminator": {"propertyName": "kind"},
        "xml": {"name": "pet"},
        "externalDocs": {"url": "https://example.com"},
        "x-internal": True,
        "properties": {
            "kind": {"type": "string", "enum": ["cat", "dog"], "default": "cat"},
            "born": {"type": "string", "format": "date", "title": "Birthday"},
        },
    }
    assert normalized(schema) == {
        "type": "object",
        "description": "A pet",
        "properties": {
            "kind": {"type": "string", "enum": ["cat", "dog"], "default": "cat"},
            "born": {"type": "string", "format": "date", "title": "Birthday"},
        },
    }


def test_a_property_named_like_a_keyword_is_a_name_not_a_keyword():
    schema = {"type": "object", "properties": {"nullable": {"type": "boolean"}}}
    assert normalized(schema) == schema


def test_python_incompatible_patterns_are_dropped():
    # ECMA-262 `\p{L}` is no Python regex: check_schema would refuse the tool schema.
    assert normalized({"type": "string", "pattern": r"^\p{L}+$"}) == {"type": "string"}
    assert normalized({"type": "string", "pattern": "^[a-z]+$"})["pattern"] == "^[a-z]+$"


def test_yaml_dates_and_nan_in_data_become_storable_json():
    schema = {
        "type": "string",
        "default": datetime.date(2024, 5, 1),
        "enum": [datetime.date(2024, 5, 1), "x"],
        "example": float("nan"),
    }
    assert normalized(schema) == {
        "type": "string",
        "default": "2024-05-01",
        "enum": ["2024-05-01", "x"],
    }


def test_text_with_nul_characters_is_cleaned():
    assert normalized({"type": "string", "description": "a\x00b"}) == {
        "type": "string",
        "description": "ab",
    }


def test_swagger_parameter_keywords_make_a_schema():
    parameter = {
        "name": "limit",
        "in": "query",
        "type": "integer",
        "maximum": 100,
        "exclusiveMaximum": True,
        "collectionFormat": "csv",
        "allowEmptyValue": True,
    }
    assert normalized(swagger_parameter_schema(parameter), "2.0") == {
        "type": "integer",
        "exclusiveMaximum": 100,
    }


def test_normalizing_never_changes_the_document():
    doc = {
        "openapi": "3.0.3",
        "components": {
            "schemas": {
                "Pet": {
                    "allOf": [{"$ref": "#/components/schemas/Base"}],
                    "nullable": True,
                    "properties": {"id": {"type": "integer", "readOnly": True}},
                },
                "Base": {"type": "object", "properties": {"name": {"type": "string"}}},
            }
        },
    }
    before = copy.deepcopy(doc)
    schemas = Schemas(Document(doc), "3.0")
    root = schemas.normalize({"$ref": "#/components/schemas/Pet"}, "#/x")
    schemas.definitions(root, "#/x")
    schemas.inline(root, "#/x")
    assert doc == before


# --- readOnly ---------------------------------------------------------------------------


def test_read_only_properties_are_dropped_from_inputs_and_from_required():
    schema = {
        "type": "object",
        "required": ["id", "name"],
        "properties": {
            "id": {"type": "integer", "readOnly": True},
            "name": {"type": "string"},
            "secret": {"type": "string", "writeOnly": True},
        },
    }
    assert normalized(schema) == {
        "type": "object",
        "required": ["name"],
        "properties": {"name": {"type": "string"}, "secret": {"type": "string"}},
    }


def test_a_property_read_only_through_its_reference_is_dropped():
    components = {"Id": {"type": "string", "readOnly": True}}
    schema = {"type": "object", "properties": {"id": {"$ref": "#/components/schemas/Id"}}}
    root, definitions = with_definitions(schema, components=components)
    assert root == {"type": "object", "properties": {}}
    assert definitions == {}


def test_required_of_an_all_of_member_drops_read_only_properties_of_another():
    components = {
        "Base": {
            "type": "object",
            "properties": {"id": {"type": "string", "readOnly": True}, "name": {"type": "string"}},
        }
    }
    schema = {
        "allOf": [{"$ref": "#/components/schemas/Base"}, {"required": ["id", "name"]}],
    }
    root, _ = with_definitions(schema, components=components)
    assert root == {
        "type": "object",
        "properties": {"name": {"type": "string"}},
        "required": ["name"],
    }


# --- references -------------------------------------------------------------------------


def test_references_point_into_defs_which_hold_every_component_reached():
    components = {
        "Pet": {"type": "object", "properties": {"owner": {"$ref": "#/components/schemas/Owner"}}},
        "Owner": {"type": "object", "properties": {"tag": {"$ref": "#/components/schemas/Tag"}}},
        "Tag": {"type": "string"},
        "Unused": {"type": "integer"},
    }
    root, definitions = with_definitions(
        {"$ref": "#/components/schemas/Pet"}, components=components
    )
    assert root == {"$ref": "#/$defs/Pet"}
    assert sorted(definitions) == ["Owner", "Pet", "Tag"]
    assert definitions["Owner"]["properties"]["tag"] == {"$ref": "#/$defs/Tag"}


def test_swagger_definitions_are_referenced_the_same_way():
    root, definitions = with_definitions(
        {"$ref": "#/definitions/Pet"}, "2.0", {"Pet": {"type": "object"}}
    )
    assert root == {"$ref": "#/$defs/Pet"}
    assert definitions == {"Pet": {"type": "object"}}


def test_component_names_that_are_not_safe_get_a_sanitized_name_and_a_hash():
    components = {"Pet Owner": {"type": "string"}, "Pet_Owner": {"type": "integer"}}
    schema = {
        "type": "object",
        "properties": {
            "a": {"$ref": "#/definitions/Pet%20Owner"},
            "b": {"$ref": "#/definitions/Pet_Owner"},
        },
    }
    root, definitions = with_definitions(schema, "2.0", components)
    assert len(definitions) == 2
    a_name = root["properties"]["a"]["$ref"].removeprefix("#/$defs/")
    assert a_name.startswith("Pet_Owner_") and a_name != "Pet_Owner"
    assert definitions[a_name] == {"type": "string"}
    assert definitions["Pet_Owner"] == {"type": "integer"}


def test_a_reference_into_the_middle_of_a_schema_gets_its_own_definition():
    components = {"Pet": {"type": "object", "properties": {"tag": {"type": "string"}}}}
    root, definitions = with_definitions(
        {"$ref": "#/components/schemas/Pet/properties/tag"}, "3.1", components
    )
    name = def_name(("components", "schemas", "Pet", "properties", "tag"), "3.1")
    assert root == {"$ref": f"#/$defs/{name}"}
    assert definitions == {name: {"type": "string"}}


def test_a_31_reference_keeps_its_siblings():
    root, _ = with_definitions(
        {"$ref": "#/components/schemas/Tag", "description": "The tag", "maxLength": 3},
        "3.1",
        {"Tag": {"type": "string"}},
    )
    assert root == {"description": "The tag", "maxLength": 3, "$ref": "#/$defs/Tag"}


def test_a_30_reference_keeps_only_its_description():
    root, _ = with_definitions(
        {"$ref": "#/components/schemas/Tag", "description": "The tag", "maxLength": 3},
        "3.0",
        {"Tag": {"type": "string"}},
    )
    assert root == {"description": "The tag", "$ref": "#/$defs/Tag"}


def test_a_dangling_reference_is_a_parse_problem_at_the_reference():
    problem = refusal({"type": "array", "items": {"$ref": "#/components/schemas/Missing"}})
    assert problem.code == FAILED_TO_PARSE_SPEC
    assert problem.pointer == "#/test/items/$ref"
    assert "points at nothing" in problem.message


def test_an_external_reference_is_refused_and_never_followed():
    problem = refusal({"$ref": "https://example.com/schemas/pet.json"})
    assert problem.code == FAILED_TO_PARSE_SPEC
    assert "bundle" in problem.message


def test_inlining_replaces_every_reference_for_parameter_schemas():
    components = {
        "Status": {"type": "string", "enum": ["open", "closed"]},
        "Filter": {"type": "array", "items": {"$ref": "#/components/schemas/Status"}},
    }
    schemas = make_schemas(components)
    root = schemas.normalize({"$ref": "#/components/schemas/Filter"}, "#/p")
    assert schemas.inline(root, "#/p") == {
        "type": "array",
        "items": {"type": "string", "enum": ["open", "closed"]},
    }


# --- allOf ------------------------------------------------------------------------------


def test_all_of_of_a_reference_and_an_object_is_merged_into_one_object():
    components = {
        "Base": {
            "type": "object",
            "required": ["name"],
            "properties": {"name": {"type": "string"}},
        }
    }
    schema = {
        "description": "A new pet",
        "allOf": [
            {"$ref": "#/components/schemas/Base"},
            {"type": "object", "properties": {"tag": {"type": "string"}}, "required": ["tag"]},
        ],
    }
    root, definitions = with_definitions(schema, components=components)
    assert root == {
        "description": "A new pet",
        "type": "object",
        "required": ["name", "tag"],
        "properties": {"name": {"type": "string"}, "tag": {"type": "string"}},
    }
    assert definitions == {}  # Base was merged in, nothing refers to it


def test_all_of_with_conflicting_types_stays_an_all_of():
    schema = {"allOf": [{"type": "string"}, {"type": "integer"}]}
    assert normalized(schema) == {"type": "string", "allOf": [{"type": "integer"}]}


def test_all_of_is_not_merged_when_additional_properties_false_would_change_its_meaning():
    schema = {
        "allOf": [
            {"type": "object", "properties": {"a": {}}, "additionalProperties": False},
            {"properties": {"b": {}}},
        ]
    }
    result = normalized(schema)
    assert result["allOf"] == [{"properties": {"b": {}}}]
    assert result["additionalProperties"] is False


def test_a_property_both_members_define_becomes_the_all_of_of_both():
    schema = {
        "allOf": [
            {"properties": {"age": {"type": "integer"}}},
            {"properties": {"age": {"minimum": 0}}},
        ]
    }
    assert normalized(schema) == {
        "properties": {"age": {"allOf": [{"type": "integer"}, {"minimum": 0}]}}
    }


def test_nested_all_of_references_merge_through():
    components = {
        "A": {"type": "object", "properties": {"a": {"type": "string"}}},
        "B": {"allOf": [{"$ref": "#/components/schemas/A"}, {"properties": {"b": {}}}]},
    }
    root, _ = with_definitions(
        {"allOf": [{"$ref": "#/components/schemas/B"}], "nullable": True}, components=components
    )
    assert root == {
        "anyOf": [
            {"type": "object", "properties": {"a": {"type": "string"}, "b": {}}},
            {"type": "null"},
        ]
    }


# --- problems ---------------------------------------------------------------------------


def test_a_type_that_is_not_json_schema_is_refused_with_its_pointer():
    problem = refusal({"type": "object", "properties": {"when": {"type": "date"}}})
    assert problem.code == INVALID_TOOL_SCHEMA
    assert problem.pointer == "#/test/properties/when/type"
    assert "“date” is not a JSON Schema type" in problem.message


def test_a_schema_that_is_not_an_object_is_refused():
    problem = refusal({"type": "object", "properties": {"a": "string"}})
    assert problem.pointer == "#/test/properties/a"


NODE = "#/components/schemas/Node"
TREE = {
    "Node": {
        "type": "object",
        "description": "A folder.",
        "properties": {
            "name": {"type": "string"},
            "children": {"type": "array", "items": {"$ref": NODE}},
        },
        "required": ["name"],
    }
}


def cut_body(schema, components: dict, version: str = "3.0"):
    """A body as convert makes it (the root, its $defs), and the cycles cut."""
    schemas = make_schemas(components, version)
    root = schemas.normalize(schema, "#/test")
    definitions = schemas.definitions(root, "#/test")
    return {**root, "$defs": definitions}, schemas.recursion_cut(root)


def original(schema, components: dict) -> Draft202012Validator:
    """A validator for the spec's own (recursive) schema, refs and all."""
    return Draft202012Validator({**schema, "components": {"schemas": components}})


def assert_acyclic(body: dict) -> None:
    graph = {name: set(normalize.ref_names(sub)) for name, sub in body["$defs"].items()}
    done: set[str] = set()

    def visit(name: str, path: tuple[str, ...]) -> None:
        assert name not in path, f"cycle {(*path, name)}"
        if name not in done:
            for child in graph[name]:
                visit(child, (*path, name))
            done.add(name)

    for name in graph:
        visit(name, ())


def tree(depth: int) -> dict:
    node: dict = {"name": f"level {depth}"}
    if depth:
        node["children"] = [tree(depth - 1)]
    return node


def test_an_optional_self_reference_is_expanded_three_levels_deep_then_cut():
    body, cuts = cut_body({"$ref": NODE}, TREE)
    assert sorted(body["$defs"]) == ["Node", "Node__innermost", "Node__level1", "Node__level2"]
    assert body["$defs"]["Node"]["properties"]["children"]["items"] == {
        "$ref": "#/$defs/Node__level1"
    }
    innermost = body["$defs"]["Node__innermost"]["properties"]["children"]
    assert innermost["maxItems"] == 0 and "items" not in innermost
    assert "Not expanded: nested more than 3 levels deep" in innermost["description"]
    assert_acyclic(body)
    check_meta_schema(body)
    validator = Draft202012Validator(body)
    assert MAX_RECURSION_DEPTH == 3
    assert validator.is_valid(tree(MAX_RECURSION_DEPTH))  # the root and 3 levels below
    assert not validator.is_valid(tree(MAX_RECURSION_DEPTH + 1))
    assert original({"$ref": NODE}, TREE).is_valid(tree(MAX_RECURSION_DEPTH + 1))
    assert not validator.is_valid({"children": []})  # required name, at every level
    assert cuts == [(NODE, f"{NODE} → {NODE}")]


def test_a_self_reference_required_all_the_way_down_is_a_cycle_that_never_ends():
    components = {
        "Node": {
            "type": "object",
            "properties": {"parent": {"$ref": NODE}, "name": {"type": "string"}},
            "required": ["parent"],
        }
    }
    problem = refusal({"$ref": NODE}, components=components)
    assert problem.code == INVALID_TOOL_SCHEMA
    assert problem.pointer == NODE
    assert f"circular $ref ({NODE} → {NODE}) that never ends" in problem.message
    assert "non-recursive" in problem.fix and "optional" in problem.fix


@pytest.mark.parametrize(
    "components",
    [
        {  # A requires a B, B requires an A
            "A": {"properties": {"b": {"$ref": "#/components/schemas/B"}}, "required": ["b"]},
            "B": {"properties": {"a": {"$ref": "#/components/schemas/A"}}, "required": ["a"]},
        },
        {  # a non-empty list of the other
            "A": {
                "type": "object",
                "properties": {
                    "bs": {
                        "type": "array",
                        "minItems": 1,
                        "items": {"$ref": "#/components/schemas/B"},
                    }
                },
                "required": ["bs"],
            },
            "B": {"allOf": [{"$ref": "#/components/schemas/A"}]},
        },
        {  # through allOf alone: A is B and more, B is A and more
            "A": {"allOf": [{"$ref": "#/components/schemas/B"}]},
            "B": {"allOf": [{"$ref": "#/components/schemas/A"}], "properties": {"x": {}}},
        },
    ],
)
def test_a_cycle_with_no_finite_value_is_refused_from_any_entry_point(components):
    components = {**components, "Badge": {"properties": {"a": {"$ref": "#/components/schemas/A"}}}}
    schemas = make_schemas(components)
    for name in ("Badge", "A", "B"):
        root = schemas.normalize({"$ref": f"#/components/schemas/{name}"}, "#/x")
        with pytest.raises(SchemaProblem, match="circular") as info:
            schemas.definitions(root, "#/x")
        assert info.value.pointer.startswith("#/components/schemas/")
        assert info.value.code == INVALID_TOOL_SCHEMA


def test_an_indirect_optional_cycle_is_cut_from_any_entry_point():
    components = {
        "Person": {"properties": {"employer": {"$ref": "#/components/schemas/Company"}}},
        "Company": {"properties": {"staff": {"items": {"$ref": "#/components/schemas/Person"}}}},
        "Badge": {"properties": {"holder": {"$ref": "#/components/schemas/Person"}}},
    }
    for name in ("Badge", "Company", "Person"):
        schema = {"$ref": f"#/components/schemas/{name}"}
        body, cuts = cut_body(schema, components)
        assert_acyclic(body)
        check_meta_schema(body)
        (cut,) = cuts
        assert "#/components/schemas/Person" in cut[1] and "#/components/schemas/Company" in cut[1]
        company = {"staff": [{"employer": {"staff": []}}]}
        value = company if name == "Company" else {"employer": company}
        if name == "Badge":
            value = {"holder": value}
        assert Draft202012Validator(body).is_valid(value)
        assert original(schema, components).is_valid(value)


def test_the_recursion_ends_in_the_branch_that_is_not_recursive():
    components = {
        "Expression": {
            "type": "object",
            "properties": {
                "value": {
                    "oneOf": [{"type": "string"}, {"$ref": "#/components/schemas/Expression"}]
                },
                "next": {"$ref": "#/components/schemas/Expression", "nullable": True},
            },
            "required": ["value", "next"],
        }
    }
    body, cuts = cut_body({"$ref": "#/components/schemas/Expression"}, components)
    innermost = body["$defs"]["Expression__innermost"]["properties"]
    assert innermost["value"] == {"oneOf": [{"type": "string"}]}
    assert innermost["next"] == {"anyOf": [{"type": "null"}]}
    assert cuts
    assert_acyclic(body)


def test_a_required_recursion_goes_on_through_members_that_end_sooner():
    components = {  # an A needs a B; a B may hold an A
        "A": {"properties": {"b": {"$ref": "#/components/schemas/B"}}, "required": ["b"]},
        "B": {"properties": {"a": {"$ref": "#/components/schemas/A"}}},
    }
    schema = {"$ref": "#/components/schemas/B"}  # B, A__level1, B__level2, A__innermost
    body, _cuts = cut_body(schema, components)
    defs = body["$defs"]
    assert defs["A__innermost"]["properties"]["b"] == {"$ref": "#/$defs/B__innermost"}
    assert defs["B__innermost"]["properties"]["a"]["not"] == {}
    assert_acyclic(body)
    deep = {"a": {"b": {"a": {"b": {"a": {"b": {}}}}}}}
    assert Draft202012Validator(body).is_valid({"a": {"b": {"a": {"b": {}}}}})
    assert not Draft202012Validator(body).is_valid(deep)
    assert original(schema, components).is_valid(deep)


def test_recursion_under_not_is_left_out_rather_than_loosened():
    components = {
        "Node": {
            "properties": {"child": {"$ref": NODE}, "other": {"not": {"$ref": NODE}}},
        }
    }
    body, _cuts = cut_body({"$ref": NODE}, components)
    properties = body["$defs"]["Node"]["properties"]
    assert properties["child"] == {"$ref": "#/$defs/Node__level1"}
    assert properties["other"]["not"] == {}  # cannot be sent: never accepts more
    components["Node"]["not"] = {"properties": {"child": {"$ref": NODE}}, "required": ["child"]}
    problem = refusal({"$ref": NODE}, components=components)
    assert "circular $ref" in problem.message and "never ends" in problem.message


def test_a_spec_component_named_like_a_level_copy_cannot_collide_with_one():
    assert def_name(("components", "schemas", "Node__level1"), "3.0").startswith("Node__level1_")
    assert def_name(("components", "schemas", "Node__innermost"), "3.0") != "Node__innermost"
    assert def_name(("components", "schemas", "Node__levels"), "3.0") == "Node__levels"


# Values shaped like the schemas below: keys they know, any JSON under them.
recursive_values = st.recursive(
    st.none() | st.booleans() | st.integers(-3, 3) | st.sampled_from(["", "x"]),
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(st.sampled_from(["name", "children", "parent", "value", "b", "a"]), inner)
    ),
    max_leaves=40,
)
RECURSIVE_COMPONENTS = [
    TREE,
    {
        "Node": {
            "properties": {
                "name": {"type": "string"},
                "parent": {"$ref": NODE},
                "children": {"type": "array", "items": {"$ref": NODE}, "maxItems": 2},
                "value": {"anyOf": [{"type": "integer"}, {"$ref": NODE}]},
            },
            "additionalProperties": False,
        }
    },
    {
        "Node": {"properties": {"b": {"$ref": "#/components/schemas/B"}}, "required": ["b"]},
        "B": {"type": ["object", "string"], "properties": {"a": {"$ref": NODE}}, "required": ["a"]},
    },
]


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(range(len(RECURSIVE_COMPONENTS))), recursive_values)
def test_a_cut_schema_accepts_only_what_the_spec_accepts_and_all_of_it_up_to_the_depth(
    which, value
):
    components = RECURSIVE_COMPONENTS[which]
    body, _cuts = cut_body({"$ref": NODE}, components)
    spec = original({"$ref": NODE}, components)
    if Draft202012Validator(body).is_valid(value):
        assert spec.is_valid(value)
    elif spec.is_valid(value):  # too deep: the root and MAX_RECURSION_DEPTH levels fit
        assert nesting(value) > MAX_RECURSION_DEPTH + 1


def nesting(value) -> int:
    """How many objects nest inside each other in a value."""
    if isinstance(value, dict):
        return 1 + max((nesting(v) for v in value.values()), default=0)
    if isinstance(value, list):
        return max((nesting(v) for v in value), default=0)
    return 0


def test_a_schema_sharing_components_without_a_cycle_is_fine():
    components = {
        "Money": {"type": "object", "properties": {"amount": {"type": "number"}}},
        "Price": {
            "properties": {
                "net": {"$ref": "#/components/schemas/Money"},
                "gross": {"$ref": "#/components/schemas/Money"},
            }
        },
    }
    _, definitions = with_definitions({"$ref": "#/components/schemas/Price"}, components=components)
    assert sorted(definitions) == ["Money", "Price"]


def choices(depth: int) -> dict:
    """oneOf nested `depth` levels deep, each choice between an object and a string."""
    schema: dict = {"type": "object", "properties": {"leaf": {"type": "string"}}}
    for _ in range(depth):
        schema = {"oneOf": [{"type": "object", "properties": {"next": schema}}, {"type": "string"}]}
    return schema


def test_one_of_nested_up_to_the_limit_is_accepted():
    with_definitions(choices(MAX_ALTERNATION_DEPTH))


def test_one_of_nested_deeper_than_the_limit_is_refused():
    problem = refusal(choices(MAX_ALTERNATION_DEPTH + 1))
    assert problem.code == INVALID_TOOL_SCHEMA
    assert f"nest {MAX_ALTERNATION_DEPTH + 1} levels deep" in problem.message


def test_nesting_counts_through_references():
    components = {"Inner": choices(MAX_ALTERNATION_DEPTH)}
    schema = {"anyOf": [{"$ref": "#/components/schemas/Inner"}, {"type": "integer"}]}
    assert "nest" in refusal(schema, components=components).message


def test_nullables_and_choices_among_plain_values_are_not_counted():
    schema = choices(MAX_ALTERNATION_DEPTH)
    schema = {"type": "object", "nullable": True, "properties": {"deep": schema}}
    schema["properties"]["kind"] = {"oneOf": [{"const": "a", "title": "A"}, {"const": "b"}]}
    with_definitions(schema)
    leaf = {"oneOf": [{"const": "a"}, {"const": "b"}]}
    inner = choices(MAX_ALTERNATION_DEPTH)
    node = inner
    while "oneOf" in node:
        node = node["oneOf"][0]["properties"]["next"]
    node["properties"]["leaf"] = leaf
    with_definitions(inner)


def test_a_schema_nested_too_deep_is_refused():
    schema: dict = {"type": "string"}
    for _ in range(MAX_SCHEMA_DEPTH + 2):
        schema = {"type": "object", "properties": {"a": schema}}
    assert "levels deep" in refusal(schema).message


# --- properties -------------------------------------------------------------------------

# OpenAPI-flavoured schemas of any shape: what normalize() must turn into valid 2020-12.
_leaf = st.fixed_dictionaries(
    {},
    optional={
        "type": st.sampled_from(["string", "integer", "number", "boolean", "object", "array"]),
        "nullable": st.booleans(),
        "x-nullable": st.booleans(),
        "format": st.sampled_from(["date", "int32", "binary", "uuid"]),
        "minimum": st.integers(-5, 5),
        "exclusiveMinimum": st.booleans(),
        "maximum": st.integers(6, 10),
        "exclusiveMaximum": st.one_of(st.booleans(), st.integers(6, 10)),
        "example": st.one_of(st.integers(), st.text(max_size=5), st.none()),
        "enum": st.lists(st.one_of(st.integers(), st.text(max_size=3)), min_size=1, max_size=3),
        "readOnly": st.booleans(),
        "pattern": st.sampled_from(["^a", r"\p{L}", "[", "(?<n>x)"]),
        "discriminator": st.just({"propertyName": "kind"}),
        "minLength": st.one_of(st.integers(-1, 3), st.floats(0, 3)),
        "multipleOf": st.sampled_from([0, -1, 2, 0.5]),
        "description": st.text(max_size=10),
        "default": st.one_of(st.integers(), st.none(), st.just(float("inf"))),
    },
)
openapi_schemas = st.recursive(
    _leaf,
    lambda inner: st.one_of(
        st.builds(
            lambda props, base: {**base, "properties": props},
            st.dictionaries(st.text(min_size=1, max_size=4), inner, max_size=3),
            _leaf,
        ),
        st.builds(lambda items, base: {**base, "items": items}, inner, _leaf),
        st.builds(lambda members: {"allOf": members}, st.lists(inner, min_size=1, max_size=3)),
        st.builds(lambda members: {"oneOf": members}, st.lists(inner, min_size=1, max_size=3)),
        st.builds(lambda members: {"anyOf": members}, st.lists(inner, min_size=1, max_size=3)),
        st.builds(
            lambda extra, base: {**base, "additionalProperties": extra},
            st.one_of(st.booleans(), inner),
            _leaf,
        ),
        st.just({"$ref": "#/components/schemas/Shared"}),
    ),
    max_leaves=12,
)


@settings(max_examples=150, deadline=None)
@given(openapi_schemas, st.sampled_from(["2.0", "3.0", "3.1"]))
def test_any_openapi_schema_normalizes_to_a_valid_body_schema(schema, version):
    shared = {"type": "object", "nullable": True, "properties": {"x": {"readOnly": True}}}
    doc = {"definitions": {"Shared": shared}, "components": {"schemas": {"Shared": shared}}}
    schemas = Schemas(Document(doc), version)
    try:
        root = schemas.normalize(schema, "#/test")
        definitions = schemas.definitions(root, "#/test")
    except SchemaProblem as problem:
        assert "nest" in problem.message  # only too many nested choices may be refused
        return
    body = {**root, "$defs": definitions} if isinstance(root, dict) else {"allOf": [root]}
    # The rule every imported body obeys: valid 2020-12, local refs that resolve, no
    # OpenAPI-only `nullable`.
    validate_body_schema(body, object_root=False)
    validate_storable_json(body)
    assert "discriminator" not in str(body)
