import json

import pytest
from django.core.exceptions import ValidationError
from hypothesis import given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

from actions.inference import SAMPLE_MAX_DEPTH, infer_body_schema
from actions.validators import json_depth, validate_body_schema

NULLABLE_STRING = {"anyOf": [{"type": "string"}, {"type": "null"}]}


def refusal(sample_text: str) -> tuple[str, str]:
    with pytest.raises(ValidationError) as info:
        infer_body_schema(sample_text)
    (message,) = info.value.messages
    return info.value.code, message


def infer(sample: object) -> dict:
    """Infer from a sample, and check what any inferred schema must be."""
    schema = infer_body_schema(json.dumps(sample))
    validate_body_schema(schema)
    Draft202012Validator(schema).validate(sample)  # it accepts its own sample
    # Model providers refuse an array without an item type.
    assert all("items" in node for node in _schemas(schema) if _is_array(node))
    return schema


def _schemas(schema: dict):
    yield schema
    for sub in schema.get("properties", {}).values():
        yield from _schemas(sub)
    for sub in schema.get("anyOf", []):
        yield from _schemas(sub)
    if "items" in schema:
        yield from _schemas(schema["items"])


def _is_array(schema: dict) -> bool:
    types = schema.get("type")
    return types == "array" or (isinstance(types, list) and "array" in types)


def test_flat_sample_gives_each_property_its_type_and_requires_them_all():
    schema = infer({"order_id": "A-1042", "quantity": 2, "price": 9.5, "gift": False})
    assert schema == {
        "type": "object",
        "properties": {
            "order_id": {"type": "string"},
            "quantity": {"type": "integer"},
            "price": {"type": "number"},
            "gift": {"type": "boolean"},
        },
        "required": ["gift", "order_id", "price", "quantity"],
    }


def test_schema_uri_is_left_out():
    assert "$schema" not in infer({"a": 1})


def test_nested_object_becomes_a_nested_object_schema():
    schema = infer({"address": {"city": "Lyon", "geo": {"lat": 45.76, "lon": 4.83}}})
    address = schema["properties"]["address"]
    assert address["type"] == "object"
    assert address["required"] == ["city", "geo"]
    assert address["properties"]["geo"] == {
        "type": "object",
        "properties": {"lat": {"type": "number"}, "lon": {"type": "number"}},
        "required": ["lat", "lon"],
    }


def test_array_of_objects_merges_them_and_requires_only_the_shared_keys():
    schema = infer({"items": [{"sku": "A1", "qty": 1}, {"sku": "B2", "note": "gift wrap"}]})
    items = schema["properties"]["items"]
    assert items["type"] == "array"
    assert items["items"]["type"] == "object"
    assert set(items["items"]["properties"]) == {"sku", "qty", "note"}
    assert items["items"]["required"] == ["sku"]


def test_array_of_mixed_numbers_becomes_numbers():
    assert infer({"amounts": [1, 2.5]})["properties"]["amounts"]["items"] == {"type": "number"}


def test_null_becomes_an_optional_string():
    schema = infer({"note": None})
    assert schema["properties"]["note"] == NULLABLE_STRING


def test_null_beside_a_number_keeps_the_number():
    schema = infer({"discounts": [10, None]})
    assert schema["properties"]["discounts"]["items"] == {
        "anyOf": [{"type": "integer"}, {"type": "null"}]
    }


def test_null_beside_an_object_keeps_the_object_not_a_string():
    schema = infer({"lines": [{"sku": "A1"}, None]})
    variants = schema["properties"]["lines"]["items"]["anyOf"]
    assert {"type": "null"} in variants
    assert {"type": "string"} not in variants
    assert {"type": "object", "properties": {"sku": {"type": "string"}}, "required": ["sku"]} in (
        variants
    )


def test_null_beside_a_list_keeps_the_list_and_its_items():
    schema = infer({"rows": [{"tags": ["vip"]}, {"tags": None}]})
    tags = schema["properties"]["rows"]["items"]["properties"]["tags"]
    assert list(tags) == ["anyOf"]
    assert sorted(tags["anyOf"], key=json.dumps) == [
        {"type": "array", "items": {"type": "string"}},
        {"type": "null"},
    ]


def test_empty_array_is_given_string_items():
    schema = infer({"tags": []})
    assert schema["properties"]["tags"] == {"type": "array", "items": {"type": "string"}}


def test_empty_array_beside_a_null_is_given_items_too():
    schema = infer({"rows": [{"tags": []}, {"tags": None}]})
    tags = schema["properties"]["rows"]["items"]["properties"]["tags"]
    assert tags == {"anyOf": [{"type": "array", "items": {"type": "string"}}, {"type": "null"}]}


def test_empty_array_beside_a_full_one_takes_its_item_type():
    schema = infer({"matrix": [[], [1, 2]]})
    assert schema["properties"]["matrix"]["items"] == {
        "type": "array",
        "items": {"type": "integer"},
    }


def test_empty_object_sample_gives_an_empty_object_schema():
    assert infer({}) == {"type": "object"}


@pytest.mark.parametrize("name", ["nullable", "$ref", "type", "properties", "required", "items"])
def test_property_named_like_a_keyword_gives_a_valid_schema(name):
    schema = infer({name: "https://example.com/x", "nested": {name: None}})
    assert schema["properties"][name] == {"type": "string"}
    assert schema["properties"]["nested"]["properties"][name] == NULLABLE_STRING


@pytest.mark.parametrize("sample_text", ["[]", "[{}]", '"text"', "42", "null", "true"])
def test_sample_that_is_not_an_object_is_refused(sample_text):
    code, message = refusal(sample_text)
    assert code == "sample_not_object"
    assert "JSON object ({...})" in message
    assert "Wrap a list or a single value in a property" in message


@pytest.mark.parametrize(
    ("sample_text", "where"),
    [
        ('{"a": 1,}', "line 1, column 9"),
        ("", "line 1, column 1"),
        ("{'a': 1}", "line 1, column 2"),
        ('{\n  "a": 1,\n  "b": oops\n}', "line 3, column 8"),
        ('{"a": 1} {"b": 2}', "line 1, column 10"),
    ],
)
def test_invalid_json_is_refused_with_line_and_column(sample_text, where):
    code, message = refusal(sample_text)
    assert code == "sample_not_json"
    assert where in message
    assert "Paste a request body exactly as the API expects it" in message


def _nested_sample(levels: int) -> str:
    return '{"a": ' * levels + "1" + "}" * levels


@pytest.mark.parametrize("levels", [SAMPLE_MAX_DEPTH + 1, 200, 5000])
def test_deeply_nested_sample_is_refused_instead_of_crashing(levels):
    code, message = refusal(_nested_sample(levels))
    assert code == "sample_too_deep"
    assert f"more than {SAMPLE_MAX_DEPTH} levels" in message
    assert "Trim it" in message


def test_sample_nested_up_to_the_limit_gives_a_valid_schema():
    # Arrays of optional arrays are the deepest shape inference produces per level:
    # each takes three levels of schema (items, anyOf, a variant).
    sample = 1
    for _ in range(SAMPLE_MAX_DEPTH - 1):
        sample = [sample, None]
    assert json_depth({"deep": sample}) == SAMPLE_MAX_DEPTH
    schema = infer({"deep": sample})
    assert schema["properties"]["deep"]["type"] == "array"


_json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=10),
)
_json_values = st.recursive(
    _json_scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(st.text(max_size=8), children, max_size=4),
    ),
    max_leaves=25,
)


@settings(max_examples=200)
@given(st.dictionaries(st.text(max_size=8), _json_values, max_size=6))
def test_any_json_object_gives_a_valid_schema_that_accepts_it(sample):
    infer(sample)
