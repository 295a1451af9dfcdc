"""/api/v1/actions[/{id}]: staff CRUD with the dashboard's rules, in the key's organization."""

import json
from datetime import timedelta
from unittest import mock

import pytest
from django.core.cache import cache
from django.utils import timezone

from actions import authoring
from actions.models import (
    Action,
    ActionHeader,
    ActionParameter,
    OrganizationAPIKey,
    SpecSource,
    Tag,
    ValueKind,
)
from tests.actions.admin_pages import ADD_URL, DESCRIPTION, action_form, header, parameter
from tests.factories import make_action, make_organization, make_segment, make_tag, make_user

pytestmark = pytest.mark.django_db

URL = "/api/v1/actions"
ENDPOINT = "https://api.shop.example/v1/orders/{order_id}"


@pytest.fixture(autouse=True)
def _fresh_cache():
    cache.clear()  # rate-limit counters


@pytest.fixture
def org():
    return make_organization()


def make_key(organization, scopes: str = "actions:read actions:write", **fields) -> str:
    _, raw = OrganizationAPIKey.objects.create_key(
        organization=organization, name="ci", scopes=scopes, **fields
    )
    return raw


@pytest.fixture
def key(org):
    return make_key(org)


def call(client, method: str, url: str, key: str | None, body=None):
    headers = {} if key is None else {"HTTP_AUTHORIZATION": f"Bearer {key}"}
    if body is None:
        return getattr(client, method)(url, **headers)
    return getattr(client, method)(
        url, json.dumps(body), content_type="application/json", **headers
    )


def action_url(action: Action) -> str:
    return f"{URL}/{action.pk}"


def action_body(**fields) -> dict:
    return {
        "name": "Look up an order",
        "description": DESCRIPTION,
        "method": "GET",
        "endpoint": ENDPOINT,
        **fields,
    }


# Create and read


def test_post_creates_an_action_with_rows_tags_segments_and_channels(client, org, key):
    premium = make_segment(org, slug="premium")
    billing = make_tag(org, name="billing")
    make_tag(make_organization(), name="orders")  # another organization's tag of that name

    response = call(
        client,
        "post",
        URL,
        key,
        action_body(
            method="POST",
            endpoint="https://api.shop.example/v1/orders/{order_id}/refunds",
            body_schema={"type": "object", "properties": {"reason": {"type": "string"}}},
            headers=[
                {"key": "Authorization", "value": "Bearer {{global.SHOP_KEY}}"},
                {"key": "X-Customer-Email", "kind": "magic", "value": "contact.email"},
            ],
            parameters=[
                {"location": "path", "key": "order_id", "description": "The order number"},
                {"key": "notify", "value": "true"},
            ],
            tags=["Billing", "orders"],
            segments=["premium"],
            channels=["widget", "email"],
            pinned=True,
            requires_form=True,
        ),
    )

    assert response.status_code == 201, response.content
    action = Action.objects.get()
    assert action.organization == org
    assert (action.name, action.tool_name, action.method) == (
        "Look up an order",
        "look_up_an_order",
        "POST",
    )
    assert action.channels == ["widget", "email"]
    assert (action.pinned, action.requires_form, action.source) == (True, True, None)
    assert [(h.key, h.kind, h.value) for h in action.headers.all()] == [
        ("Authorization", ValueKind.STATIC, "Bearer {{global.SHOP_KEY}}"),
        ("X-Customer-Email", ValueKind.MAGIC, "contact.email"),
    ]
    assert [(p.location, p.key, p.kind, p.value) for p in action.parameters.all()] == [
        ("path", "order_id", ValueKind.AI, ""),  # no value: the AI fills it
        ("query", "notify", ValueKind.STATIC, "true"),
    ]
    assert list(action.segments.all()) == [premium]
    orders = Tag.objects.get(organization=org, name="orders")  # created in the key's org
    assert list(action.tags.all()) == [billing, orders]

    body = response.json()
    assert body["id"] == action.pk
    assert body["tags"] == ["billing", "orders"]
    assert body["segments"] == ["premium"]
    assert body["channels"] == ["widget", "email"]
    assert body["source"] is None
    assert body["tool_schema"] == action.tool_schema().schema
    assert body["tool_schema"]["required"] == ["order_id"]
    assert "SHOP_KEY" not in json.dumps(body["tool_schema"])  # static values stay hidden


def test_a_new_action_starts_on_the_widget_only(client, org, key):
    response = call(client, "post", URL, key, action_body())

    assert response.status_code == 201, response.content
    assert response.json()["channels"] == ["widget"]
    assert Action.objects.get().channels == ["widget"]


def test_the_organization_comes_from_the_key_never_from_the_body(client, org, key):
    other = make_organization()

    response = call(client, "post", URL, key, action_body(organization=other.pk))

    assert response.status_code == 400
    assert "organization" in response.json()
    assert not Action.objects.exists()


def test_get_returns_the_full_representation(client, org, key):
    source = SpecSource.objects.create(organization=org, name="shop-api")
    action = make_action(
        org,
        source=source,
        operation_key="GET /orders/{order_id}",
        tags=(make_tag(org, name="orders"),),
        segments=(make_segment(org, slug="premium"),),
        on_sms=True,
    )
    ActionHeader.objects.create(action=action, key="X-Shop", value="acme")
    ActionParameter.objects.create(
        action=action, location="path", key="order_id", kind="ai", description="The order"
    )

    response = call(client, "get", action_url(action), key)

    assert response.status_code == 200
    body = response.json()
    assert set(body) == {
        "id",
        "name",
        "tool_name",
        "description",
        "method",
        "endpoint",
        "body_schema",
        "body_format",
        "headers",
        "parameters",
        "channels",
        "segments",
        "tags",
        "pinned",
        "requires_form",
        "send_context_headers",
        "source",
        "operation_key",
        "tool_schema",
        "created_at",
        "updated_at",
    }
    assert body["source"] == "shop-api"
    assert body["operation_key"] == "GET /orders/{order_id}"
    assert body["channels"] == ["widget", "sms"]
    assert body["headers"] == [
        {
            "key": "X-Shop",
            "kind": "static",
            "value": "acme",
            "description": "",
            "required": True,
            "value_schema": None,
        }
    ]
    assert body["parameters"][0]["location"] == "path"
    assert body["tool_schema"]["properties"]["order_id"]["description"] == "The order"


# Update and delete


def test_patch_changes_only_the_fields_sent(client, org, key):
    action = make_action(org, tags=(make_tag(org, name="orders"),))
    ActionHeader.objects.create(action=action, key="X-Shop", value="acme")

    response = call(client, "patch", action_url(action), key, {"pinned": True})

    assert response.status_code == 200, response.content
    action.refresh_from_db()
    assert action.pinned is True
    assert [h.key for h in action.headers.all()] == ["X-Shop"]
    assert [t.name for t in action.tags.all()] == ["orders"]
    assert response.json()["headers"][0]["key"] == "X-Shop"


def test_rows_sent_replace_the_stored_rows(client, org, key):
    action = make_action(org, endpoint=ENDPOINT)
    ActionHeader.objects.create(action=action, key="X-Old", value="old")
    ActionParameter.objects.create(action=action, key="old", value="1")

    response = call(
        client,
        "patch",
        action_url(action),
        key,
        {
            "headers": [{"key": "X-New", "value": "new"}],
            "parameters": [
                {"location": "path", "key": "order_id", "kind": "magic", "value": "conversation.id"}
            ],
        },
    )

    assert response.status_code == 200, response.content
    assert [(h.key, h.value) for h in action.headers.all()] == [("X-New", "new")]
    assert [(p.location, p.key, p.value) for p in action.parameters.all()] == [
        ("path", "order_id", "conversation.id")
    ]
    body = response.json()
    assert [h["key"] for h in body["headers"]] == ["X-New"]
    assert "order_id" not in body["tool_schema"].get("properties", {})  # magic now


def test_empty_lists_clear_rows_tags_and_segments(client, org, key):
    action = make_action(org, tags=(make_tag(org),), segments=(make_segment(org),))
    ActionHeader.objects.create(action=action, key="X-Old", value="old")

    response = call(
        client, "patch", action_url(action), key, {"headers": [], "tags": [], "segments": []}
    )

    assert response.status_code == 200, response.content
    assert not action.headers.exists()
    assert not action.tags.exists()
    assert not action.segments.exists()


def test_put_replaces_the_action(client, org, key):
    action = make_action(org, name="Old name", method="GET")

    response = call(
        client,
        "put",
        action_url(action),
        key,
        action_body(
            name="Refund an order",
            method="POST",
            body_schema={"type": "object", "properties": {"amount": {"type": "number"}}},
            channels=["email"],
        ),
    )

    assert response.status_code == 200, response.content
    action.refresh_from_db()
    assert (action.name, action.method, action.channels) == ("Refund an order", "POST", ["email"])
    assert action.body_schema["properties"] == {"amount": {"type": "number"}}


def test_put_requires_the_required_fields(client, org, key):
    action = make_action(org)

    response = call(client, "put", action_url(action), key, {"pinned": True})

    assert response.status_code == 400
    assert set(response.json()) == {"name", "description", "endpoint"}


def test_delete_removes_the_action_and_its_rows(client, org, key):
    action = make_action(org)
    ActionHeader.objects.create(action=action, key="X-Shop", value="acme")

    response = call(client, "delete", action_url(action), key)

    assert response.status_code == 204
    assert not Action.objects.exists()
    assert not ActionHeader.objects.exists()


def test_an_imported_action_may_be_edited_and_keeps_its_source(client, org, key):
    source = SpecSource.objects.create(organization=org, name="shop-api")
    action = make_action(org, source=source, operation_key="GET /orders/{order_id}")

    response = call(
        client,
        "patch",
        action_url(action),
        key,
        {
            "description": "Looks up an order and its delivery estimate for the customer.",
            "source": None,  # read-only: ignored
            "operation_key": "",
        },
    )

    assert response.status_code == 200, response.content
    action.refresh_from_db()
    assert action.description.startswith("Looks up an order and its delivery")
    assert (action.source, action.operation_key) == (source, "GET /orders/{order_id}")
    assert response.json()["source"] == "shop-api"


def test_an_unknown_field_is_refused_by_name(client, org, key):
    action = make_action(org, pinned=False)

    response = call(client, "patch", action_url(action), key, {"pined": True})

    assert response.status_code == 400
    assert "pinned" in response.json()["pined"][0]
    action.refresh_from_db()
    assert action.pinned is False


# Validation: the dashboard's rules and messages


def dashboard_errors(response) -> dict:
    """The dashboard's errors: the action form's, and those of each failing inline row by
    its position, as the API reports them."""
    assert response.status_code == 200, "the dashboard accepted the form"
    form = response.context["adminform"].form
    errors = {field: list(messages) for field, messages in form.errors.items()}
    for inline in response.context["inline_admin_formsets"]:
        rows = {
            str(index): {field: list(messages) for field, messages in row.items()}
            for index, row in enumerate(inline.formset.errors)
            if row
        }
        if rows:
            errors[inline.formset.prefix] = rows
    return errors


@pytest.mark.parametrize(
    ("api_fields", "form_fields"),
    [
        pytest.param({"name": "Look"}, {"name": "Look"}, id="4-character name"),
        pytest.param(
            {"endpoint": "http://api.shop.example/v1/orders"},
            {"endpoint": "http://api.shop.example/v1/orders"},
            id="http endpoint",
        ),
        pytest.param(
            {"method": "GET", "body_schema": {"type": "object"}},
            {"method": "GET", "body_schema": '{"type": "object"}'},
            id="GET with a body",
        ),
        pytest.param(
            {"method": "POST", "body_schema": {"type": "array"}},
            {"method": "POST", "body_schema": '{"type": "array"}'},
            id="body not an object",
        ),
        pytest.param({"description": "Too short"}, {"description": "Too short"}, id="description"),
        pytest.param({"name": "EXISTING action"}, {"name": "EXISTING action"}, id="duplicate name"),
        pytest.param({"tool_name": "taken"}, {"tool_name": "taken"}, id="duplicate tool name"),
        pytest.param({"tool_name": "no spaces"}, {"tool_name": "no spaces"}, id="bad tool name"),
        pytest.param(
            {"parameters": [{"location": "path", "key": "order"}]},
            {"parameters": [parameter("path", "order")]},
            id="path row without a placeholder",
        ),
        pytest.param(
            {"parameters": [{"key": "q", "value": "1"}, {"key": "q", "value": "2"}]},
            {
                "parameters": [
                    parameter("query", "q", value="1"),
                    parameter("query", "q", value="2"),
                ]
            },
            id="duplicate parameter",
        ),
        pytest.param(
            {"headers": [{"key": "X-Id", "value": "1"}, {"key": "x-id", "value": "2"}]},
            {"headers": [header("X-Id", value="1"), header("x-id", value="2")]},
            id="duplicate header, any case",
        ),
        pytest.param(
            {"headers": [{"key": "Host", "value": "evil.example"}]},
            {"headers": [header("Host", value="evil.example")]},
            id="forbidden header",
        ),
        pytest.param(
            {"headers": [{"key": "X-Plan", "kind": "magic", "value": "contact.attributes.a b"}]},
            {
                "headers": [
                    header("X-Plan", kind="magic", magic_field="contact.attributes.", value="a b")
                ]
            },
            id="bad magic field",
        ),
        pytest.param(
            {"headers": [{"key": "X-Key", "value": "{{global.bad name}}"}]},
            {"headers": [header("X-Key", value="{{global.bad name}}")]},
            id="bad global reference",
        ),
    ],
)
def test_an_invalid_action_gets_the_dashboards_messages_on_the_same_fields(
    client, org, key, api_fields, form_fields
):
    make_action(org, name="Existing action", tool_name="taken")
    client.force_login(make_user(organization=org))
    expected = dashboard_errors(client.post(ADD_URL, action_form(**form_fields)))

    response = call(client, "post", URL, key, action_body(**api_fields))

    assert response.status_code == 400
    assert expected  # the dashboard refused it too
    assert response.json() == expected
    assert Action.objects.count() == 1


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"body_schema": {"type": "object", "properties": {"a\u0000": {}}}}, "body_schema"),
        ({"body_schema": {"type": "object", "description": "\ud800"}}, "body_schema"),
        (
            {"headers": [{"key": "X-A", "kind": "ai", "value_schema": {"enum": ["\u0000"]}}]},
            "headers",
        ),
        ({"name": "Look up \ud800 order"}, "name"),
        ({"tags": ["bill\u0000ing"]}, "tags"),
    ],
)
def test_text_the_database_cannot_store_is_a_400_not_a_crash(client, org, key, fields, field):
    response = call(client, "post", URL, key, action_body(method="POST", **fields))

    assert response.status_code == 400
    assert field in response.json()
    assert not Action.objects.exists()


def test_an_unknown_segment_slug_is_a_400_that_names_it(client, org, key):
    make_segment(org, slug="premium")
    make_segment(make_organization(), slug="vip")  # another organization's

    response = call(client, "post", URL, key, action_body(segments=["premium", "vip"]))

    assert response.status_code == 400
    [message] = response.json()["segments"]
    assert "vip" in message
    assert "premium" in message  # the valid ones
    assert not Action.objects.exists()


def test_an_invalid_tag_name_is_refused_at_its_position(client, org, key):
    response = call(client, "post", URL, key, action_body(tags=["billing", "two words"]))

    assert response.status_code == 400
    assert list(response.json()["tags"]) == ["1"]
    assert not Tag.objects.exists()


def test_a_path_row_is_checked_against_a_changed_endpoint(client, org, key):
    action = make_action(org, endpoint=ENDPOINT)
    ActionParameter.objects.create(action=action, location="path", key="order_id", kind="ai")

    response = call(
        client,
        "patch",
        action_url(action),
        key,
        {"endpoint": "https://api.shop.example/v1/orders"},
    )

    assert response.status_code == 400
    assert "order_id" in response.json()["parameters"]["0"]["key"][0]
    action.refresh_from_db()
    assert action.endpoint == ENDPOINT


def test_errors_of_several_rows_are_reported_together_at_their_positions(client, org, key):
    response = call(
        client,
        "post",
        URL,
        key,
        action_body(
            headers=[
                {"key": "X-Ok", "value": "fine"},
                {"key": "X-Bad", "kind": "magic", "value": "contact.password"},
                {"key": "X-Ai", "kind": "ai", "value": "not empty"},
            ]
        ),
    )

    assert response.status_code == 400
    rows = response.json()["headers"]
    assert set(rows) == {"1", "2"}
    assert "contact.password" in rows["1"]["value"][0]
    assert rows["2"] == {
        "value": ["The AI fills this value, so leave it empty (or make it static)."]
    }


def test_an_invalid_patch_changes_nothing(client, org, key):
    action = make_action(org, name="Look up an order", tags=(make_tag(org, name="orders"),))
    ActionHeader.objects.create(action=action, key="X-Shop", value="acme")

    response = call(
        client,
        "patch",
        action_url(action),
        key,
        {"name": "Look", "headers": [{"key": "X-New", "value": "new"}], "tags": ["billing"]},
    )

    assert response.status_code == 400
    action.refresh_from_db()
    assert action.name == "Look up an order"
    assert [h.key for h in action.headers.all()] == ["X-Shop"]
    assert [t.name for t in action.tags.all()] == ["orders"]
    assert not Tag.objects.filter(name="billing").exists()


def test_a_write_that_fails_midway_is_rolled_back(client, org, key):
    action = make_action(org, name="Look up an order")
    ActionHeader.objects.create(action=action, key="X-Shop", value="acme")
    client.raise_request_exception = False

    with mock.patch.object(authoring, "_tags_named", side_effect=RuntimeError("boom")):
        response = call(
            client,
            "patch",
            action_url(action),
            key,
            {"name": "Renamed action", "headers": [], "tags": ["billing"]},
        )

    assert response.status_code == 500
    action.refresh_from_db()
    assert action.name == "Look up an order"
    assert [h.key for h in action.headers.all()] == ["X-Shop"]


# Authentication, scopes, organizations


def test_without_a_key_it_is_401(client, org):
    response = call(client, "get", URL, None)

    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_a_revoked_key_is_401(client, org):
    raw = make_key(org)
    OrganizationAPIKey.objects.filter(organization=org).update(revoked=True)

    assert call(client, "get", URL, raw).status_code == 401


def test_an_expired_key_is_401(client, org):
    raw = make_key(org, expiry_date=timezone.now() - timedelta(seconds=1))

    response = call(client, "get", URL, raw)

    assert response.status_code == 401
    assert response.json()["detail"] == "This API key has expired."


@pytest.mark.parametrize(
    ("scopes", "method", "allowed"),
    [
        ("tools", "get", False),
        ("actions:write", "get", False),
        ("actions:read", "get", True),
        ("actions:read", "post", False),
        ("actions:read", "patch", False),
        ("actions:read", "put", False),
        ("actions:read", "delete", False),
        ("actions:write", "post", True),
        ("actions:write", "patch", True),
        ("actions:write", "put", True),
        ("actions:write", "delete", True),
    ],
)
def test_reading_needs_actions_read_and_writing_actions_write(client, org, scopes, method, allowed):
    action = make_action(org)
    url = URL if method == "post" else action_url(action)
    body = None if method in {"get", "delete"} else action_body(name="Another action")

    response = call(client, method, url, make_key(org, scopes), body)

    if allowed:
        assert response.status_code in {200, 201, 204}, response.content
    else:
        assert response.status_code == 403
        needed = "actions:read" if method == "get" else "actions:write"
        assert f"“{needed}” scope" in response.json()["detail"]


def test_the_staff_rate_limit_applies_per_key(client, org, settings):
    settings.API_RATE_LIMITS = {**settings.API_RATE_LIMITS, "staff": 2, "default": 1000}
    first, second = make_key(org), make_key(org)

    statuses = [call(client, "get", URL, first).status_code for _ in range(3)]

    assert statuses == [200, 200, 429]
    assert call(client, "get", URL, second).status_code == 200


@pytest.mark.parametrize(
    ("method", "body"),
    [
        ("get", None),
        ("patch", {"name": "Hijacked action"}),
        ("put", action_body(name="Hijacked action")),
        ("delete", None),
    ],
)
def test_another_organizations_action_is_404_and_stays_unchanged(client, org, key, method, body):
    theirs = make_action(make_organization(), name="Their action")

    response = call(client, method, action_url(theirs), key, body)

    assert response.status_code == 404
    theirs.refresh_from_db()
    assert theirs.name == "Their action"


def test_the_list_shows_only_the_keys_organization(client, org, key):
    make_action(org, name="Ours")
    make_action(make_organization(), name="Theirs")

    response = call(client, "get", URL, key)

    assert [a["name"] for a in response.json()["results"]] == ["Ours"]


# Listing: order, pages, queries


def test_the_list_is_pinned_first_then_by_name(client, org, key):
    for name, pinned in [
        ("Zulu lookup", False),
        ("Zulu pinned", True),
        ("Alpha lookup", False),
        ("Alpha pinned", True),
        ("Mike lookup", False),
    ]:
        make_action(org, name=name, pinned=pinned)

    response = call(client, "get", URL, key)

    assert [a["name"] for a in response.json()["results"]] == [
        "Alpha pinned",
        "Zulu pinned",
        "Alpha lookup",
        "Mike lookup",
        "Zulu lookup",
    ]


def make_actions(organization, count: int, **fields) -> None:
    Action.objects.bulk_create(
        Action(
            organization=organization,
            name=f"Action {n:04d}",
            tool_name=f"action_{n:04d}",
            description=DESCRIPTION,
            endpoint=ENDPOINT,
            **fields,
        )
        for n in range(count)
    )


def test_the_list_is_paginated_50_a_page(client, org, key):
    make_actions(org, 60)

    first = call(client, "get", URL, key).json()
    second = call(client, "get", first["next"], key).json()

    assert first["count"] == 60
    assert len(first["results"]) == 50
    assert first["previous"] is None
    assert len(second["results"]) == 10
    assert second["next"] is None
    names = [a["name"] for a in first["results"] + second["results"]]
    assert names == sorted(names)
    assert len(set(names)) == 60


def test_page_size_is_chosen_by_the_client_up_to_200(client, org, key):
    make_actions(org, 210)

    small = call(client, "get", f"{URL}?page_size=7", key).json()
    capped = call(client, "get", f"{URL}?page_size=1000", key).json()

    assert len(small["results"]) == 7
    assert len(capped["results"]) == 200


def test_a_page_past_the_end_is_404(client, org, key):
    make_actions(org, 3)

    assert call(client, "get", f"{URL}?page=2", key).status_code == 404


# The count, the page, then one query each for the page's tags, segments, headers and
# parameters, whatever the number of actions. (The key is read from the database
# again only after its organization changed: see actions.state.)
LIST_QUERIES = 6


def make_full_actions(organization, count: int) -> None:
    tags = (make_tag(organization), make_tag(organization))
    segment = make_segment(organization)
    source = SpecSource.objects.get_or_create(organization=organization, name="shop-api")[0]
    for n in range(count):
        action = make_action(
            organization,
            tags=tags,
            segments=(segment,),
            pinned=n % 3 == 0,
            source=source if n % 2 else None,
        )
        ActionHeader.objects.create(action=action, key="X-Shop", value="acme")
        ActionParameter.objects.create(action=action, location="path", key="order_id", kind="ai")


def test_the_list_runs_the_same_queries_for_3_and_30_actions(
    client, org, key, django_assert_num_queries
):
    make_full_actions(org, 3)
    call(client, "get", URL, key)  # the first request records the key's use (one write)
    with django_assert_num_queries(LIST_QUERIES):
        response = call(client, "get", URL, key)
    assert len(response.json()["results"]) == 3

    make_full_actions(org, 27)
    call(client, "get", URL, key)  # the organization changed: the key is read again
    with django_assert_num_queries(LIST_QUERIES):
        response = call(client, "get", URL, key)
    body = response.json()
    assert len(body["results"]) == 30
    assert all(a["headers"] and a["parameters"] and a["tags"] for a in body["results"])
    assert {a["source"] for a in body["results"]} == {None, "shop-api"}


def test_a_name_taken_by_a_concurrent_request_is_a_409_and_saves_nothing(client, monkeypatch):
    """Validation passed, then the database constraint fired: a conflict, not a 500."""
    from actions.api import serializers as api_serializers

    org = make_organization()
    _, raw = OrganizationAPIKey.objects.create_key(
        organization=org, name="ci", scopes="actions:read actions:write"
    )
    real_save = api_serializers.save_action

    def racing_save(draft):
        # Another request commits the same name between validation and save.
        make_action(org, name=draft.action.name)
        return real_save(draft)

    monkeypatch.setattr(api_serializers, "save_action", racing_save)
    response = client.post(
        "/api/v1/actions",
        {
            "name": "Refund an order",
            "description": "Refunds an order in full when the customer asks for it.",
            "method": "POST",
            "endpoint": "https://api.example.com/v1/orders/{order_id}/refund",
        },
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {raw}",
    )
    assert response.status_code == 409
    assert "retry" in response.json()["detail"]
    assert Action.objects.filter(organization=org, name="Refund an order").count() == 1
