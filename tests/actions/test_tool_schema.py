"""The tool schema: one flat object the AI fills, never showing static or magic values."""

import pytest
from hypothesis import given
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

from actions.models import Action, ActionHeader, ActionParameter, Organization, ValueKind
from actions.tool_schema import Argument, InputRow, build_tool_schema


def test_body_properties_keep_their_names_and_parameters_join_them():
    body = {
        "type": "object",
        "properties": {"reason": {"type": "string"}, "note": {"type": "string"}},
        "required": ["reason"],
    }
    built = build_tool_schema(body, [InputRow("query", "expand", required=False)])
    assert built.schema["properties"] == {
        "reason": {"type": "string"},
        "note": {"type": "string"},
        "expand": {"type": "string"},
    }
    assert built.schema["required"] == ["reason"]
    assert built.arguments == {
        "reason": Argument("body", "reason"),
        "note": Argument("body", "note"),
        "expand": Argument("query", "expand"),
    }


def test_a_parameter_named_like_a_body_property_is_renamed_with_its_location():
    body = {"type": "object", "properties": {"id": {"type": "integer"}}}
    rows = [InputRow("path", "id"), InputRow("query", "id"), InputRow("header", "id")]
    built = build_tool_schema(body, rows)
    assert list(built.schema["properties"]) == ["id", "id__path", "id__query", "id__header"]
    assert built.arguments["id__query"] == Argument("query", "id")
    assert built.arguments["id"] == Argument("body", "id")


def test_path_parameters_are_always_required_and_descriptions_reach_the_ai():
    built = build_tool_schema(
        None, [InputRow("path", "order_id", description="The order number", required=False)]
    )
    assert built.schema["required"] == ["order_id"]
    assert built.schema["properties"]["order_id"]["description"] == "The order number"


def test_a_body_that_is_not_an_object_travels_under_body():
    body = {"type": "array", "items": {"type": "string"}}
    built = build_tool_schema(body, [])
    assert built.schema["properties"] == {"body": body}
    assert built.arguments["body"] == Argument("body", "")


def test_body_defs_move_to_the_root_so_local_refs_still_resolve():
    body = {
        "type": "object",
        "properties": {"address": {"$ref": "#/$defs/Address"}},
        "$defs": {"Address": {"type": "object", "properties": {"city": {"type": "string"}}}},
    }
    schema = build_tool_schema(body, []).schema
    assert "Address" in schema["$defs"]
    validator = Draft202012Validator(schema)
    assert validator.is_valid({"address": {"city": "Oslo"}})
    assert not validator.is_valid({"address": {"city": 5}})


@pytest.mark.django_db
def test_an_actions_schema_hides_static_and_magic_values_and_fills_uncovered_placeholders():
    org = Organization.objects.create(name="Acme", slug="acme")
    action = Action.objects.create(
        organization=org,
        name="Change delivery address",
        description="Changes the delivery address of an order that has not shipped.",
        method="PATCH",
        endpoint="https://api.example.com/v1/shops/{shop}/orders/{order_id}/address",
        body_schema={"type": "object", "properties": {"city": {"type": "string"}}},
    )
    ActionParameter.objects.create(
        action=action, location="path", key="shop", kind=ValueKind.STATIC, value="eu-1"
    )
    ActionParameter.objects.create(
        action=action, location="query", key="notify", kind=ValueKind.AI, required=False
    )
    ActionHeader.objects.create(
        action=action, key="Authorization", kind=ValueKind.STATIC, value="Bearer {{global.KEY}}"
    )
    ActionHeader.objects.create(
        action=action, key="X-Email", kind=ValueKind.MAGIC, value="contact.email"
    )
    schema = action.tool_schema().schema
    assert set(schema["properties"]) == {"city", "notify", "order_id"}
    assert schema["required"] == ["order_id"]
    text = str(schema)
    for hidden in ("eu-1", "global.KEY", "contact.email", "Authorization", "X-Email", "shop"):
        assert hidden not in text


names = st.from_regex(r"[a-z][a-z0-9_]{0,10}", fullmatch=True)


@given(
    body_names=st.lists(names, max_size=5, unique=True),
    rows=st.lists(
        st.tuples(st.sampled_from(["path", "query", "header"]), names, st.booleans()),
        max_size=8,
        unique_by=lambda r: (r[0], r[1]),
    ),
)
def test_every_input_appears_exactly_once_in_a_valid_schema(body_names, rows):
    body = {"type": "object", "properties": {n: {"type": "string"} for n in body_names}}
    built = build_tool_schema(body, [InputRow(loc, key, required=req) for loc, key, req in rows])
    Draft202012Validator.check_schema(built.schema)
    assert set(built.arguments) == set(built.schema["properties"])
    destinations = sorted((a.location, a.key) for a in built.arguments.values())
    expected = sorted([("body", n) for n in body_names] + [(loc, key) for loc, key, _ in rows])
    assert destinations == expected
    assert set(built.schema.get("required", [])) <= set(built.schema["properties"])


def test_a_renamed_parameter_never_overwrites_a_body_property_of_that_name():
    body = {"type": "object", "properties": {"id": {"type": "integer"}, "id__path": {}}}
    built = build_tool_schema(body, [InputRow("path", "id")])
    assert built.arguments["id__path"] == Argument("body", "id__path")
    assert built.arguments["id__path2"] == Argument("path", "id")
