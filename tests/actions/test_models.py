import pytest
from django.contrib.auth.models import AnonymousUser
from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction

from actions.models import (
    Action,
    ActionHeader,
    ActionParameter,
    Channel,
    Contact,
    Segment,
    SpecSource,
    Tag,
    ValueKind,
)
from tests.factories import (
    make_action,
    make_contact,
    make_organization,
    make_segment,
    make_superuser,
    make_tag,
    make_user,
)

pytestmark = pytest.mark.django_db

CANCEL_BODY = {
    "type": "object",
    "properties": {"reason": {"type": "string", "enum": ["too_expensive", "other"]}},
    "required": ["reason"],
}


def field_errors(instance) -> dict[str, list[ValidationError]]:
    """full_clean() must refuse `instance`; return its errors by field."""
    with pytest.raises(ValidationError) as info:
        instance.full_clean()
    return info.value.error_dict


def codes(errors: list[ValidationError]) -> list[str]:
    return [error.code for error in errors]


def messages(errors: list[ValidationError]) -> str:
    return " ".join(message for error in errors for message in error.messages)


def new_action(organization=None, **fields) -> Action:
    """An unsaved, valid action; full_clean() passes unless `fields` break a rule."""
    fields = {
        "name": "Cancel subscription",
        "description": "Cancels the customer's subscription at the end of the billing period.",
        "method": Action.Method.POST,
        "endpoint": "https://api.example.com/v1/subscriptions/{subscription_id}/cancel",
        "body_schema": CANCEL_BODY,
        **fields,
    }
    return Action(organization=organization or make_organization(), **fields)


# --- factories ----------------------------------------------------------------------


def test_factories_make_valid_rows():
    org = make_organization()
    for instance in [
        org,
        make_segment(org),
        make_tag(org),
        make_contact(org),
        make_action(org),
        make_user(org),
        make_superuser(),
    ]:
        instance.full_clean()


def test_factories_take_overrides_and_many_to_many_rows():
    org = make_organization()
    segment, tag = make_segment(org), make_tag(org, name="billing")
    action = make_action(org, name="Refund payment", segments=[segment], tags=[tag])
    contact = make_contact(org, external_id="cus_42", segments=[segment])
    assert action.name == "Refund payment"
    assert list(action.segments.all()) == [segment]
    assert list(action.tags.all()) == [tag]
    assert contact.external_id == "cus_42"
    assert list(contact.segments.all()) == [segment]


def test_user_factories_make_a_support_admin_and_a_superuser():
    org = make_organization()
    admin, root = make_user(org), make_superuser()
    assert admin.is_support_admin
    assert admin.organization == org
    assert not admin.is_superuser
    assert root.is_superuser and root.is_staff
    assert root.organization is None
    assert not root.is_support_admin


# --- field rules --------------------------------------------------------------------


def test_valid_action_passes_full_clean():
    new_action().full_clean()


def test_short_name_and_description_are_refused_with_their_messages():
    errors = field_errors(new_action(name="Stop", description="Stops things."))
    assert codes(errors["name"]) == ["name_too_short"]
    assert "at least 5 characters" in messages(errors["name"])
    assert codes(errors["description"]) == ["description_too_short"]
    assert "at least 20 characters" in messages(errors["description"])


def test_invalid_tool_name_is_refused():
    errors = field_errors(new_action(tool_name="cancel subscription"))
    assert codes(errors["tool_name"]) == ["invalid_tool_name"]


@pytest.mark.parametrize(
    ("endpoint", "code"),
    [
        ("http://api.example.com/orders", "endpoint_not_https"),
        ("https://{tenant}.example.com/orders", "endpoint_placeholder_in_host"),
        ("https://api.example.com/orders?status=open", "endpoint_query"),
    ],
)
def test_invalid_endpoint_is_refused_on_the_endpoint_field(endpoint, code):
    errors = field_errors(new_action(endpoint=endpoint))
    assert codes(errors["endpoint"]) == [code]


def test_missing_endpoint_is_refused_as_required():
    errors = field_errors(new_action(endpoint=""))
    assert codes(errors["endpoint"]) == ["blank"]


def test_unknown_method_is_refused():
    errors = field_errors(new_action(method="HEAD", body_schema=None))
    assert codes(errors["method"]) == ["invalid_choice"]


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH"])
def test_body_schema_is_accepted_on_methods_with_a_body(method):
    new_action(method=method).full_clean()


@pytest.mark.parametrize("method", ["GET", "DELETE"])
def test_body_schema_on_a_method_without_a_body_is_refused(method):
    errors = field_errors(new_action(method=method))
    assert codes(errors["body_schema"]) == ["body_not_allowed"]
    message = messages(errors["body_schema"])
    assert f"{method} requests carry no body" in message
    assert "POST, PUT or PATCH" in message


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_empty_body_schema_is_stored_as_no_body(method):
    action = new_action(method=method, body_schema={})
    action.full_clean()
    assert action.body_schema is None


@pytest.mark.parametrize(
    ("body_schema", "code"),
    [
        ({"type": "array", "items": {"type": "string"}}, "body_schema_root"),
        ({"type": "object", "properties": {"a": {"type": "strng"}}}, "body_schema_invalid"),
        (
            {"type": "object", "properties": {"a": {"$ref": "https://example.com/a.json"}}},
            "body_schema_external_ref",
        ),
        (
            {"type": "object", "properties": {"note": {"type": "string", "nullable": True}}},
            "body_schema_nullable",
        ),
    ],
)
def test_invalid_body_schema_is_refused_on_the_body_field(body_schema, code):
    errors = field_errors(new_action(body_schema=body_schema))
    assert codes(errors["body_schema"]) == [code]


def test_every_broken_rule_is_reported_at_once():
    action = new_action(
        name="Stop", method="GET", endpoint="http://api.example.com/x", body_schema=CANCEL_BODY
    )
    errors = field_errors(action)
    assert set(errors) == {"name", "endpoint", "body_schema"}


# --- names and tool names per organization ------------------------------------------


@pytest.mark.parametrize(
    "name", ["Cancel subscription", "CANCEL SUBSCRIPTION", "cancel subscription "]
)
def test_name_already_used_in_the_organization_is_refused_whatever_its_case(name):
    org = make_organization()
    make_action(org, name="Cancel subscription")
    errors = field_errors(new_action(org, name=name, tool_name="cancel_v2"))
    assert codes(errors["name"]) == ["duplicate_name"]
    (message,) = errors["name"][0].messages
    assert f"An action named “{name.strip()}” already exists" in message
    assert "choose another name" in message


def test_name_used_in_another_organization_is_accepted():
    make_action(name="Cancel subscription", tool_name="cancel_subscription")
    new_action(name="Cancel subscription", tool_name="cancel_subscription").full_clean()


def test_action_keeps_its_own_name_and_tool_name_when_edited():
    action = make_action(name="Cancel subscription")
    action.description = "Cancels the subscription at once, with a prorated refund."
    action.full_clean()


def test_tool_name_already_used_in_the_organization_is_refused():
    org = make_organization()
    make_action(org, name="Look up an order", tool_name="lookup_order")
    errors = field_errors(new_action(org, tool_name="lookup_order"))
    assert codes(errors["tool_name"]) == ["duplicate_tool_name"]
    (message,) = errors["tool_name"][0].messages
    assert "“lookup_order”" in message
    assert "must be unique" in message


def test_tool_names_differing_in_case_are_distinct():
    org = make_organization()
    make_action(org, name="Look up an order", tool_name="lookup_order")
    new_action(org, tool_name="Lookup_Order").full_clean()


def test_blank_tool_name_is_derived_from_the_name_on_clean():
    action = new_action(name="Cancel subscription (EU)", tool_name="")
    action.full_clean()
    assert action.tool_name == "cancel_subscription_eu"


def test_blank_tool_name_is_derived_from_the_name_on_save():
    action = make_action(name="Crème brûlée: réserver", tool_name="")
    action.refresh_from_db()
    assert action.tool_name == "creme_brulee_reserver"


def test_derived_tool_name_takes_the_next_free_number():
    org = make_organization()
    first = make_action(org, name="Cancel subscription")
    second = new_action(org, name="Cancel subscription!")
    second.full_clean()
    second.save()
    third = make_action(org, name="Cancel: subscription")
    assert [first.tool_name, second.tool_name, third.tool_name] == [
        "cancel_subscription",
        "cancel_subscription_2",
        "cancel_subscription_3",
    ]


def test_derived_tool_name_skips_a_number_already_taken_by_hand():
    org = make_organization()
    make_action(org, name="Refund an order", tool_name="refund_order")
    make_action(org, name="Refund an order (old)", tool_name="refund_order_2")
    assert make_action(org, name="Refund order").tool_name == "refund_order_3"


def test_derived_tool_name_ignores_other_organizations():
    make_action(name="Refund order")
    assert make_action(name="Refund order").tool_name == "refund_order"


def test_numbered_tool_name_stays_within_64_characters():
    org = make_organization()
    long_name = "Look up the delivery status of the customer's most recent orders everywhere"
    first = make_action(org, name=long_name)
    second = make_action(org, name=long_name + " (EU)")
    assert len(first.tool_name) == 64
    assert second.tool_name == first.tool_name[:62] + "_2"
    second.full_clean()


def test_third_action_with_a_long_colliding_name_gets_its_own_tool_name():
    org = make_organization()
    long_name = "Look up the delivery status of the customer's most recent orders everywhere"
    make_action(org, name=long_name)
    make_action(org, name=long_name + " (EU)")
    third = make_action(org, name=long_name + " (US)")
    assert third.tool_name.endswith("_3")


def test_tool_name_stays_when_the_action_is_renamed():
    action = make_action(name="Look up an order")
    action.name = "Find an order"
    action.full_clean()
    action.save()
    action.refresh_from_db()
    assert action.tool_name == "look_up_an_order"


def test_explicit_tool_name_is_kept():
    assert make_action(name="Look up an order", tool_name="orders_get").tool_name == "orders_get"


# --- channels, placeholders ---------------------------------------------------------


def test_new_action_is_on_the_widget_only():
    assert Action().channels == ["widget"]
    assert new_action().channels == ["widget"]


def test_channels_can_be_set_and_are_stored_as_columns():
    action = make_action()
    action.channels = ["email", Channel.SLACK]
    action.save()
    action.refresh_from_db()
    assert action.channels == ["email", "slack"]
    assert (action.on_widget, action.on_email, action.on_slack) == (False, True, True)


def test_action_can_be_on_no_channel():
    action = make_action()
    action.channels = []
    assert action.channels == []


@pytest.mark.parametrize("channel", list(Channel))
def test_enabled_on_lists_the_actions_on_that_channel_only(channel):
    org = make_organization()
    on = make_action(org)
    on.channels = [channel]
    on.save()
    off = make_action(org)
    off.channels = [c for c in Channel if c != channel]
    off.save()
    assert list(Action.objects.enabled_on(channel)) == [on]


def test_enabled_on_an_unknown_channel_is_an_error():
    with pytest.raises(ValueError, match="fax"):
        Action.objects.enabled_on("fax")


def test_path_placeholders_are_read_from_the_endpoint():
    action = Action(endpoint="https://api.example.com/orders/{order_id}/items/{item_id}")
    assert action.path_placeholders() == ["order_id", "item_id"]
    assert Action(endpoint="http://api.example.com/{id}").path_placeholders() == []


def test_hand_authored_excludes_generated_actions():
    org = make_organization()
    source = SpecSource.objects.create(organization=org, name="shop")
    generated = make_action(org, source=source, operation_key="GET /orders")
    hand_made = make_action(org)
    assert list(Action.objects.hand_authored()) == [hand_made]
    assert not generated.is_hand_authored
    assert hand_made.is_hand_authored


def test_pinned_actions_are_listed_first_then_by_name():
    org = make_organization()
    b = make_action(org, name="Book a table")
    a = make_action(org, name="Add a note")
    pinned = make_action(org, name="Zap a voucher", pinned=True)
    assert list(Action.objects.filter(organization=org)) == [pinned, a, b]


# --- who sees what ------------------------------------------------------------------


@pytest.mark.parametrize(
    "make_row", [make_action, make_segment, make_tag, make_contact], ids=lambda f: f.__name__
)
def test_support_admin_sees_only_their_organization(make_row):
    org, other = make_organization(), make_organization()
    mine, _theirs = make_row(org), make_row(other)
    model = type(mine)
    assert list(model.objects.for_user(make_user(org))) == [mine]


@pytest.mark.parametrize(
    "make_row", [make_action, make_segment, make_tag, make_contact], ids=lambda f: f.__name__
)
def test_superuser_sees_every_organization(make_row):
    rows = [make_row(make_organization()), make_row(make_organization())]
    model = type(rows[0])
    assert set(model.objects.for_user(make_superuser())) == set(rows)


@pytest.mark.parametrize(
    "user",
    [
        lambda: make_superuser(is_superuser=False),  # staff, but in no organization
        AnonymousUser,
    ],
    ids=["staff-without-organization", "anonymous"],
)
def test_user_without_an_organization_sees_nothing(user):
    make_action()
    assert list(Action.objects.for_user(user())) == []


def test_for_user_chains_with_other_filters():
    org = make_organization()
    on_sms = make_action(org, on_sms=True)
    make_action(org)
    make_action(on_sms=True)
    assert list(Action.objects.for_user(make_user(org)).enabled_on("sms")) == [on_sms]


# --- header and parameter rows ------------------------------------------------------


def header(**fields) -> ActionHeader:
    fields = {"key": "Authorization", "value": "Bearer {{global.SHOP_API_KEY}}", **fields}
    return ActionHeader(action=fields.pop("action", None) or make_action(), **fields)


def parameter(**fields) -> ActionParameter:
    fields = {"key": "order_id", "location": ActionParameter.Location.PATH, **fields}
    return ActionParameter(action=fields.pop("action", None) or make_action(), **fields)


@pytest.mark.parametrize(
    "row",
    [
        lambda: header(),
        lambda: header(key="X-Customer-Email", kind=ValueKind.MAGIC, value="contact.email"),
        lambda: header(key="X-Plan", kind=ValueKind.MAGIC, value="contact.attributes.plan"),
        lambda: header(key="X-Locale", kind=ValueKind.AI, value="", description="BCP 47 tag"),
        lambda: parameter(kind=ValueKind.AI, value_schema={"type": "string", "minLength": 3}),
        lambda: parameter(kind=ValueKind.MAGIC, value="contact.external_id"),
        lambda: parameter(location="query", key="page-size", value="50"),
        lambda: parameter(location="query", key="status", kind=ValueKind.AI, value_schema={}),
    ],
    ids=[
        "static-header",
        "magic-header",
        "attribute-header",
        "ai-header",
        "ai-path",
        "magic-path",
        "static-query",
        "ai-query-no-schema",
    ],
)
def test_valid_row_passes_full_clean(row):
    row().full_clean()


@pytest.mark.parametrize(
    ("key", "code"),
    [
        ("X Customer", "invalid_header_name"),
        ("X-Customer\n", "invalid_header_name"),
        ("Host", "forbidden_header"),
        ("Proxy-Authorization", "forbidden_header"),
    ],
)
def test_header_with_a_bad_name_is_refused_on_its_key(key, code):
    errors = field_errors(header(key=key))
    assert codes(errors["key"]) == [code]


@pytest.mark.parametrize(
    ("value", "code"),
    [
        ("Bearer x\r\nX-Evil: 1", "value_control_character"),
        ("Bearer {{global.SHOP-KEY}}", "invalid_global_reference"),
        ("Bearer {{secret.KEY}}", "invalid_global_reference"),
    ],
)
def test_static_value_is_checked(value, code):
    errors = field_errors(header(value=value))
    assert codes(errors["value"]) == [code]


@pytest.mark.parametrize(
    ("value", "code"),
    [
        ("contact.password", "unknown_magic_field"),
        ("", "unknown_magic_field"),
        ("contact.attributes.", "invalid_attribute_key"),
    ],
)
def test_magic_value_must_be_in_the_catalogue(value, code):
    errors = field_errors(header(kind=ValueKind.MAGIC, value=value))
    assert codes(errors["value"]) == [code]


@pytest.mark.parametrize("row", [header, parameter], ids=["header", "parameter"])
def test_value_filled_by_the_ai_must_be_left_empty(row):
    errors = field_errors(row(kind=ValueKind.AI, value="A-1042"))
    assert codes(errors["value"]) == ["ai_value_given"]
    assert "leave it empty" in messages(errors["value"])


@pytest.mark.parametrize("value_schema", [{"type": "strng"}, {"minLength": "three"}, "string", 42])
def test_value_schema_must_be_valid_json_schema(value_schema):
    errors = field_errors(parameter(kind=ValueKind.AI, value_schema=value_schema))
    assert codes(errors["value_schema"]) == ["value_schema_invalid"]
    message = messages(errors["value_schema"])
    assert "Draft 2020-12" in message
    assert '{"type": "string"}' in message


def test_value_schema_with_an_external_ref_is_refused():
    row = parameter(kind=ValueKind.AI, value_schema={"$ref": "https://example.com/id.json"})
    errors = field_errors(row)
    assert "value_schema" in errors


def test_second_header_with_the_same_name_in_another_case_is_refused_with_a_fix():
    action = make_action()
    ActionHeader.objects.create(action=action, key="X-Api-Key", value="x")
    with pytest.raises(ValidationError) as info:
        header(action=action, key="x-api-key").full_clean()
    message = " ".join(info.value.messages)
    assert "header" in message.lower()
    assert "Constraint" not in message


def test_header_reports_its_key_and_value_errors_together():
    errors = field_errors(header(key="Host", value="evil\r\n"))
    assert set(errors) == {"key", "value"}


@pytest.mark.parametrize("key", ["order-id", "1st", "order id", "", "order_id\n"])
def test_path_parameter_key_must_be_an_identifier(key):
    errors = field_errors(parameter(key=key, value="A-1042"))
    assert "invalid_path_key" in codes(errors["key"])
    assert "{placeholder}" in messages(errors["key"])


def test_path_parameter_reports_its_key_and_value_errors_together():
    errors = field_errors(parameter(key="order-id", kind=ValueKind.AI, value="A-1042"))
    assert set(errors) == {"key", "value"}


def test_query_parameter_key_may_be_any_text():
    parameter(location="query", key="filter[status]", value="open").full_clean()


def test_contact_attributes_must_be_an_object():
    contact = make_contact()
    contact.attributes = ["pro"]
    errors = field_errors(contact)
    assert "JSON object" in messages(errors["attributes"])


@pytest.mark.parametrize("name", ["billing", "v2.orders", "after-sales", "facturación"])
def test_tag_name_of_word_characters_is_accepted(name):
    Tag(organization=make_organization(), name=name).full_clean()


@pytest.mark.parametrize("name", ["billing plans", "billing/eu", "#billing"])
def test_tag_name_with_other_characters_is_refused_with_an_example(name):
    errors = field_errors(Tag(organization=make_organization(), name=name))
    assert "for example billing" in messages(errors["name"])


def test_tag_name_with_a_trailing_newline_is_refused():
    field_errors(Tag(organization=make_organization(), name="billing\n"))


# --- database constraints -----------------------------------------------------------


def _action_rows(org, **second):
    make_action(org, name="Look up an order", tool_name="lookup_order")
    make_action(org, **{"name": "Find an order", "tool_name": "find_order", **second})


CONSTRAINTS = {
    "actions_action_unique_tool_name": lambda org: _action_rows(org, tool_name="lookup_order"),
    "actions_action_unique_name": lambda org: _action_rows(org, name="LOOK UP AN ORDER"),
    "actions_action_method_valid": lambda org: make_action(org, method="HEAD"),
    "actions_segment_unique_slug": lambda org: [
        make_segment(org, slug="premium") for _ in range(2)
    ],
    "actions_contact_unique_external_id": lambda org: [
        make_contact(org, external_id="cus_1") for _ in range(2)
    ],
    "actions_tag_unique_name": lambda org: [
        make_tag(org, name="billing"),
        make_tag(org, name="Billing"),
    ],
    "actions_specsource_unique_name": lambda org: [
        SpecSource.objects.create(organization=org, name="shop") for _ in range(2)
    ],
    "actions_actionheader_unique_key": lambda org: [
        ActionHeader.objects.create(action=action, key=key, value="x")
        for action in [make_action(org)]
        for key in ["X-Api-Key", "x-api-key"]
    ],
    "actions_actionparameter_unique_key": lambda org: [
        ActionParameter.objects.create(action=action, location="query", key="page")
        for action in [make_action(org)]
        for _ in range(2)
    ],
}


@pytest.mark.parametrize("constraint", CONSTRAINTS)
def test_database_refuses_what_a_constraint_forbids(constraint):
    org = make_organization()
    with pytest.raises(IntegrityError) as info, transaction.atomic():
        CONSTRAINTS[constraint](org)
    if connection.vendor == "postgresql":  # SQLite names only expression and check constraints
        assert constraint in str(info.value)


@pytest.mark.parametrize("constraint", CONSTRAINTS)
def test_constraint_is_declared_under_its_name(constraint):
    models = [Action, ActionHeader, ActionParameter, Contact, Segment, SpecSource, Tag]
    names = {c.name for model in models for c in model._meta.constraints}
    assert constraint in names


def test_same_names_in_two_organizations_are_allowed_by_the_database():
    for org in [make_organization(), make_organization()]:
        make_action(org, name="Look up an order", tool_name="lookup_order")
        make_segment(org, slug="premium")
        make_contact(org, external_id="cus_1")
        make_tag(org, name="billing")


def test_query_and_path_parameters_may_share_a_key():
    action = make_action()
    ActionParameter.objects.create(action=action, location="query", key="order_id")
    ActionParameter.objects.create(action=action, location="path", key="order_id")
    assert action.parameters.count() == 2


def test_deleting_an_organization_deletes_its_actions_and_rows():
    org = make_organization()
    action = make_action(org, segments=[make_segment(org)], tags=[make_tag(org)])
    ActionHeader.objects.create(action=action, key="X-Api-Key", value="x")
    org.delete()
    assert not Action.objects.exists()
    assert not ActionHeader.objects.exists()
    assert not Segment.objects.exists()


# --- body format, query keys, finite JSON -----------------------------------------------------


def test_a_multipart_body_with_a_nested_object_is_refused():
    action = new_action(
        make_organization(),
        method="POST",
        body_format=Action.BodyFormat.MULTIPART,
        body_schema={"type": "object", "properties": {"address": {"type": "object"}}},
    )
    errors = field_errors(action)
    assert codes(errors["body_schema"]) == ["multipart_nested_field"]


def test_a_get_cannot_have_a_multipart_body_format():
    action = new_action(
        make_organization(),
        method="GET",
        body_schema=None,
        body_format=Action.BodyFormat.MULTIPART,
    )
    errors = field_errors(action)
    assert codes(errors["body_format"]) == ["body_format_without_body"]


def test_a_raw_body_without_a_schema_gets_the_base64_one():
    action = new_action(body_format=Action.BodyFormat.BINARY, body_schema=None)
    action.full_clean()
    action.save()
    assert action.body_schema == {
        "type": "string",
        "contentEncoding": "base64",
        "contentMediaType": "application/octet-stream",
        "description": "The request body: the raw bytes, base64-encoded.",
    }
    assert action.tool_schema().schema["properties"]["body"] == action.body_schema


def test_a_raw_body_with_an_object_schema_is_refused():
    action = new_action(body_format=Action.BodyFormat.BINARY)  # CANCEL_BODY, an object
    assert codes(field_errors(action)["body_schema"]) == ["binary_body_schema"]


def test_a_get_cannot_have_a_raw_body():
    action = new_action(method="GET", body_schema=None, body_format=Action.BodyFormat.BINARY)
    assert codes(field_errors(action)["body_format"]) == ["body_format_without_body"]


def test_an_endpoint_may_use_a_placeholder_twice():
    action = new_action(endpoint="https://api.example.com/a/{id}/{action}/{id}")
    action.full_clean()
    action.save()
    assert action.path_placeholders() == ["id", "action"]
    assert sorted(action.tool_schema().schema["properties"]) == ["action", "id", "reason"]


def test_a_query_parameter_with_a_space_in_its_name_is_refused():
    action = make_action()
    row = ActionParameter(action=action, location="query", key="a b", kind=ValueKind.AI)
    assert codes(field_errors(row)["key"]) == ["invalid_query_key"]


def test_contact_attributes_with_an_infinite_number_are_refused():
    contact = Contact(
        organization=make_organization(), external_id="cus_1", attributes={"score": float("nan")}
    )
    assert codes(field_errors(contact)["attributes"]) == ["json_not_finite"]


def test_a_bulk_update_of_actions_moves_their_updated_at():
    action = make_action()
    before = action.updated_at
    Action.objects.filter(pk=action.pk).update(pinned=True)
    action.refresh_from_db()
    assert action.updated_at > before


def test_for_organization_is_the_scoping_seam_for_ids_and_objects():
    org, other = make_organization(), make_organization()
    mine, theirs = make_action(org), make_action(other)
    assert list(Action.objects.for_organization(org)) == [mine]
    assert list(Action.objects.for_organization(other.pk)) == [theirs]
