"""Inferring a body schema from a sample JSON in the action form: review, then save."""

import json

import pytest

from actions.models import Action
from tests.actions.admin_pages import ADD_URL, action_form, form_errors, rendered_form
from tests.factories import make_action, make_organization, make_user

pytestmark = pytest.mark.django_db

REVIEW_MESSAGE = (
    "We inferred this schema from your sample. Review it (types, which fields are "
    "required, descriptions for the AI), then save again."
)

SAMPLE = {
    "order_id": "A-1042",
    "customer": {"email": "ada@example.com", "address": {"city": "London", "line2": None}},
    "items": [{"sku": "LAMP-1", "quantity": 2, "price": 19.5}],
    "coupons": [],
    "gift": False,
    "note": None,
}

NULLABLE_STRING = {"anyOf": [{"type": "string"}, {"type": "null"}]}

INFERRED = {
    "type": "object",
    "properties": {
        "order_id": {"type": "string"},
        "customer": {
            "type": "object",
            "properties": {
                "email": {"type": "string"},
                "address": {
                    "type": "object",
                    "properties": {"city": {"type": "string"}, "line2": NULLABLE_STRING},
                    "required": ["city", "line2"],
                },
            },
            "required": ["address", "email"],
        },
        "items": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "sku": {"type": "string"},
                    "quantity": {"type": "integer"},
                    "price": {"type": "number"},
                },
                "required": ["price", "quantity", "sku"],
            },
        },
        "coupons": {"type": "array", "items": {"type": "string"}},
        "gift": {"type": "boolean"},
        "note": NULLABLE_STRING,
    },
    "required": ["coupons", "customer", "gift", "items", "note", "order_id"],
}


@pytest.fixture
def support_admin(client):
    user = make_user(organization=make_organization())
    client.force_login(user)
    return user


def post_sample(client, sample: str, **fields):
    return client.post(
        ADD_URL,
        action_form(
            **{
                "name": "Place an order",
                "method": "POST",
                "endpoint": "https://api.shop.example/v1/orders",
                "body_sample": sample,
                **fields,
            }
        ),
    )


def test_a_sample_is_inferred_into_a_schema_shown_for_review_and_nothing_is_saved(
    client, support_admin
):
    response = post_sample(client, json.dumps(SAMPLE))

    assert response.status_code == 200
    assert not Action.objects.exists()
    assert form_errors(response)["body_schema"] == [REVIEW_MESSAGE]
    shown = rendered_form(response)
    assert json.loads(shown["body_schema"]) == INFERRED
    # The sample has done its job: it is emptied, so the next save stores the schema.
    assert shown["body_sample"] == ""
    # What the admin typed elsewhere is kept.
    assert shown["name"] == "Place an order"
    assert shown["method"] == "POST"


def test_saving_the_reviewed_schema_stores_it(client, support_admin):
    review = rendered_form(post_sample(client, json.dumps(SAMPLE)))

    response = client.post(ADD_URL, {**review, "_save": "Save"})

    assert response.status_code == 302, form_errors(response)
    action = Action.objects.get()
    assert action.name == "Place an order"
    assert action.body_schema == INFERRED


def test_the_admin_can_edit_the_inferred_schema_before_saving(client, support_admin):
    review = rendered_form(post_sample(client, '{"reason": "damaged", "photo_url": null}'))
    schema = json.loads(review["body_schema"])
    schema["properties"]["reason"]["description"] = "Why the customer returns the item."
    schema["required"] = ["reason"]

    response = client.post(ADD_URL, {**review, "body_schema": json.dumps(schema), "_save": "Save"})

    assert response.status_code == 302, form_errors(response)
    assert Action.objects.get().body_schema == {
        "type": "object",
        "properties": {
            "reason": {"type": "string", "description": "Why the customer returns the item."},
            "photo_url": NULLABLE_STRING,
        },
        "required": ["reason"],
    }


def test_a_sample_replaces_the_schema_typed_before_it(client, support_admin):
    response = post_sample(
        client,
        '{"quantity": 3}',
        body_schema='{"type": "object", "properties": {"old": {"type": "string"}}}',
    )

    assert json.loads(rendered_form(response)["body_schema"]) == {
        "type": "object",
        "properties": {"quantity": {"type": "integer"}},
        "required": ["quantity"],
    }
    assert not Action.objects.exists()


def test_a_sample_on_an_existing_action_is_reviewed_before_it_replaces_the_schema(
    client, support_admin
):
    old_schema = {"type": "object", "properties": {"reason": {"type": "string"}}}
    action = make_action(
        support_admin.organization,
        method="POST",
        endpoint="https://api.shop.example/v1/returns",
        body_schema=old_schema,
    )
    url = f"/admin/actions/action/{action.pk}/change/"
    page = rendered_form(client.get(url))

    review = client.post(url, {**page, "body_sample": '{"sku": "LAMP-1"}', "_save": "Save"})

    assert review.status_code == 200
    action.refresh_from_db()
    assert action.body_schema == old_schema
    response = client.post(url, {**rendered_form(review), "_save": "Save"})
    assert response.status_code == 302, form_errors(response)
    action.refresh_from_db()
    assert action.body_schema["properties"] == {"sku": {"type": "string"}}


def test_a_sample_that_is_not_json_is_refused_with_where_it_breaks(client, support_admin):
    response = post_sample(client, '{"order_id": "A-1042",\n "reason": }')

    assert response.status_code == 200
    errors = form_errors(response)
    assert "body_schema" not in errors
    assert errors["body_sample"] == [
        "The sample is not valid JSON (line 2, column 12: Expecting value). "
        "Paste a request body exactly as the API expects it."
    ]
    # The sample stays in the form, so the admin can fix it.
    assert rendered_form(response)["body_sample"] == '{"order_id": "A-1042",\n "reason": }'
    assert not Action.objects.exists()


@pytest.mark.parametrize("sample", ['[{"sku": "LAMP-1"}]', '"A-1042"', "42", "null"])
def test_a_sample_that_is_not_an_object_is_refused(client, support_admin, sample):
    response = post_sample(client, sample)

    assert response.status_code == 200
    assert form_errors(response)["body_sample"] == [
        "The sample must be a JSON object ({...}) at its top level, as a request body is. "
        "Wrap a list or a single value in a property."
    ]
    assert not Action.objects.exists()


def test_a_blank_sample_is_ignored(client, support_admin):
    response = post_sample(client, "   \n")

    assert response.status_code == 302, form_errors(response)
    assert Action.objects.get().body_schema is None


def test_a_sample_on_a_get_is_inferred_but_refused_with_the_method_error(client, support_admin):
    response = post_sample(client, '{"q": "lamp"}', method="GET")

    assert form_errors(response)["body_schema"] == [REVIEW_MESSAGE]
    assert not Action.objects.exists()
    response = client.post(ADD_URL, {**rendered_form(response), "_save": "Save"})
    assert "GET requests carry no body" in form_errors(response)["body_schema"][0]
    assert not Action.objects.exists()
