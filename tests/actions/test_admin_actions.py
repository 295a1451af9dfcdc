"""The action dashboard through the test client: create, edit, list, filter, search, bulk."""

from urllib.parse import urlencode

import pytest
from django.contrib.messages import constants as message_levels

from actions.models import Action, ActionHeader, ActionParameter, SpecSource, ValueKind
from tests.actions.admin_pages import (
    ADD_URL,
    DESCRIPTION,
    LIST_URL,
    action_form,
    change_url,
    form_errors,
    header,
    parameter,
    rendered_form,
    result_rows,
    sent_messages,
    shown_names,
)
from tests.factories import (
    make_action,
    make_organization,
    make_segment,
    make_tag,
    make_user,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def org():
    return make_organization()


@pytest.fixture
def support_admin(org, client):
    user = make_user(organization=org)
    client.force_login(user)
    return user


# Create and edit


def test_support_admin_creates_an_action_with_a_magic_header_and_an_ai_filled_path_parameter(
    client, org, support_admin
):
    tag = make_tag(org, name="orders")
    segment = make_segment(org)

    response = client.post(
        ADD_URL,
        action_form(
            channels=["widget", "email"],
            segments=[str(segment.pk)],
            tags=[str(tag.pk)],
            pinned="on",
            headers=[
                header("Authorization", value="Bearer {{global.SHOP_API_KEY}}"),
                header("X-Customer-Email", kind="magic", magic_field="contact.email"),
            ],
            # An empty static value is the dashboard's way of saying "the AI fills it".
            parameters=[parameter("path", "order_id", description="The order number, e.g. A-1042")],
        ),
    )

    assert response.status_code == 302, form_errors(response)
    assert response["Location"] == LIST_URL
    action = Action.objects.get()
    assert action.organization == org
    assert action.name == "Look up an order"
    assert action.tool_name == "look_up_an_order"
    assert action.method == "GET"
    assert action.endpoint == "https://api.shop.example/v1/orders/{order_id}"
    assert action.body_schema is None
    assert action.channels == ["widget", "email"]
    assert action.pinned is True
    assert action.requires_form is False
    assert action.source is None
    assert list(action.tags.all()) == [tag]
    assert list(action.segments.all()) == [segment]
    assert [(h.key, h.kind, h.value) for h in action.headers.order_by("id")] == [
        ("Authorization", ValueKind.STATIC, "Bearer {{global.SHOP_API_KEY}}"),
        ("X-Customer-Email", ValueKind.MAGIC, "contact.email"),
    ]
    path_parameter = action.parameters.get()
    assert (path_parameter.location, path_parameter.key) == ("path", "order_id")
    assert (path_parameter.kind, path_parameter.value) == (ValueKind.AI, "")
    assert path_parameter.description == "The order number, e.g. A-1042"


def test_a_contact_attribute_magic_field_stores_the_attribute_key_and_shows_it_again(
    client, org, support_admin
):
    response = client.post(
        ADD_URL,
        action_form(
            headers=[
                header("X-Plan", kind="magic", magic_field="contact.attributes.", value="plan")
            ]
        ),
    )

    assert response.status_code == 302, form_errors(response)
    action = Action.objects.get()
    assert action.headers.get().value == "contact.attributes.plan"
    reopened = rendered_form(client.get(change_url(action)))
    assert reopened["headers-0-kind"] == "magic"
    assert reopened["headers-0-magic_field"] == "contact.attributes."
    assert reopened["headers-0-value"] == "plan"


def test_a_magic_row_without_a_context_value_is_refused(client, org, support_admin):
    response = client.post(ADD_URL, action_form(headers=[header("X-Customer", kind="magic")]))

    assert response.status_code == 200
    assert "Pick the context value this field is filled from." in response.content.decode()
    assert not Action.objects.exists()


def test_a_contact_attribute_magic_field_without_a_key_is_refused(client, org, support_admin):
    response = client.post(
        ADD_URL,
        action_form(headers=[header("X-Plan", kind="magic", magic_field="contact.attributes.")]),
    )

    assert response.status_code == 200
    assert "A contact attribute needs a key" in response.content.decode()
    assert not Action.objects.exists()


def test_support_admin_edits_an_action_its_headers_and_parameters(client, org, support_admin):
    action = make_action(org, name="Look up an order", on_widget=False, on_email=True)
    ActionHeader.objects.create(action=action, key="X-Legacy", value="1")
    ActionHeader.objects.create(
        action=action, key="X-Customer-Email", kind=ValueKind.MAGIC, value="contact.email"
    )
    ActionParameter.objects.create(
        action=action, location="path", key="order_id", kind=ValueKind.AI, value=""
    )
    tag = make_tag(org, name="orders")

    page = client.get(change_url(action))
    data = rendered_form(page)
    # The form shows what is stored: the magic row picks its context value.
    assert data["name"] == "Look up an order"
    assert data["channels"] == ["email"]
    assert data["headers-1-key"] == "X-Customer-Email"
    assert data["headers-1-magic_field"] == "contact.email"
    assert data["headers-1-value"] == ""
    assert data["parameters-0-kind"] == "ai"

    data.update(
        {
            "name": "Look up an order by number",
            "channels": ["widget", "whatsapp"],
            "tags": [str(tag.pk)],
            "pinned": "on",
            "headers-0-DELETE": "on",
            "parameters-0-description": "The order number",
            "parameters-TOTAL_FORMS": "2",
            **{
                f"parameters-1-{field}": value
                for field, value in parameter("query", "locale", value="en").items()
            },
            "_save": "Save",
        }
    )
    response = client.post(change_url(action), data)

    assert response.status_code == 302, form_errors(response)
    action.refresh_from_db()
    assert action.name == "Look up an order by number"
    # The tool name the AI knows stays put when the name changes.
    assert action.tool_name == "look_up_an_order"
    assert action.channels == ["widget", "whatsapp"]
    assert action.pinned is True
    assert list(action.tags.all()) == [tag]
    assert [h.key for h in action.headers.all()] == ["X-Customer-Email"]
    assert [
        (p.location, p.key, p.kind, p.value, p.description)
        for p in action.parameters.order_by("id")
    ] == [
        ("path", "order_id", "ai", "", "The order number"),
        ("query", "locale", "static", "en", ""),
    ]


def test_a_four_character_name_is_refused_with_its_message(client, org, support_admin):
    response = client.post(ADD_URL, action_form(name="Look"))

    assert response.status_code == 200
    errors = form_errors(response)["name"]
    assert "The name must be at least 5 characters; it has 4." in errors[0]
    assert "at least 5" in response.content.decode()
    assert not Action.objects.exists()


def test_an_http_endpoint_is_refused(client, org, support_admin):
    response = client.post(ADD_URL, action_form(endpoint="http://api.shop.example/v1/orders"))

    assert response.status_code == 200
    assert form_errors(response)["endpoint"] == [
        "Actions only call HTTPS endpoints: change http:// to https://."
    ]
    assert not Action.objects.exists()


def test_a_get_with_a_body_schema_is_refused(client, org, support_admin):
    schema = '{"type": "object", "properties": {"reason": {"type": "string"}}}'

    response = client.post(ADD_URL, action_form(method="GET", body_schema=schema))

    assert response.status_code == 200
    assert "GET requests carry no body" in form_errors(response)["body_schema"][0]
    assert not Action.objects.exists()


def test_a_post_with_the_same_body_schema_is_saved(client, org, support_admin):
    schema = '{"type": "object", "properties": {"reason": {"type": "string"}}}'

    response = client.post(ADD_URL, action_form(method="POST", body_schema=schema))

    assert response.status_code == 302, form_errors(response)
    assert Action.objects.get().body_schema == {
        "type": "object",
        "properties": {"reason": {"type": "string"}},
    }


def test_duplicate_header_keys_are_refused_whatever_their_case(client, org, support_admin):
    response = client.post(
        ADD_URL,
        action_form(headers=[header("X-Api-Key", value="a"), header("x-api-key", value="b")]),
    )

    assert response.status_code == 200
    assert "This header is already set in another row." in response.content.decode()
    assert not Action.objects.exists()


def test_a_path_parameter_missing_from_the_endpoint_is_refused(client, org, support_admin):
    response = client.post(ADD_URL, action_form(parameters=[parameter("path", "customer_id")]))

    assert response.status_code == 200
    assert "has no {customer_id} in the endpoint" in response.content.decode()
    assert not Action.objects.exists()


def test_a_new_action_starts_on_the_widget_only(client, org, support_admin):
    data = rendered_form(client.get(ADD_URL))
    assert data["channels"] == ["widget"]

    data.update({"name": "Look up an order", "description": DESCRIPTION, "_save": "Save"})
    data["endpoint"] = "https://api.shop.example/v1/orders/{order_id}"
    response = client.post(ADD_URL, data)

    assert response.status_code == 302, form_errors(response)
    action = Action.objects.get()
    assert action.channels == ["widget"]
    assert (action.on_email, action.on_sms, action.on_whatsapp) == (False, False, False)


def test_the_organization_comes_from_the_support_admin_not_the_form(client, org, support_admin):
    other = make_organization()

    page = client.get(ADD_URL)
    assert "organization" not in page.context["adminform"].form.fields
    assert 'name="organization"' not in page.content.decode()

    response = client.post(ADD_URL, action_form(organization=str(other.pk)))

    assert response.status_code == 302, form_errors(response)
    assert Action.objects.get().organization == org


def test_a_name_already_used_in_the_organization_is_refused(client, org, support_admin):
    make_action(org, name="Look up an order")

    response = client.post(ADD_URL, action_form(name="look up an ORDER"))

    assert response.status_code == 200
    assert "already exists" in form_errors(response)["name"][0]
    assert Action.objects.count() == 1


def test_saving_an_action_with_a_generic_name_warns_but_saves_it(client, org, support_admin):
    response = client.post(ADD_URL, action_form(name="get_data"))

    assert response.status_code == 302, form_errors(response)
    assert Action.objects.filter(name="get_data").exists()
    warnings = [text for level, text in sent_messages(response) if level == message_levels.WARNING]
    assert len(warnings) == 1
    assert "is a generic name" in warnings[0]


def test_the_form_puts_headers_and_parameters_between_the_body_and_the_audience(
    client, org, support_admin
):
    html = client.get(ADD_URL).content.decode()

    positions = [
        html.index('name="body_sample"'),
        html.index('id="headers-group"'),
        html.index('id="parameters-group"'),
        html.index('name="segments"'),
        html.index('name="pinned"'),
    ]
    assert positions == sorted(positions)
    assert html.count('id="headers-group"') == 1


def test_an_imported_action_shows_its_source_read_only(client, org, support_admin):
    source = SpecSource.objects.create(organization=org, name="shop-api")
    action = make_action(org, source=source, operation_key="GET /orders/{order_id}")

    page = client.get(change_url(action))

    html = page.content.decode()
    assert "shop-api" in html
    assert "GET /orders/{order_id}" in html
    assert "source" not in page.context["adminform"].form.fields
    assert 'name="source"' not in html


# The list


def test_the_list_shows_pinned_actions_first_then_by_name(client, org, support_admin):
    for name, pinned in [
        ("Delta refund", False),
        ("Zulu pinned lookup", True),
        ("Bravo cancel", False),
        ("Alpha pinned refund", True),
        ("Charlie update", False),
    ]:
        make_action(org, name=name, pinned=pinned)

    response = client.get(LIST_URL)

    assert shown_names(response) == [
        "Alpha pinned refund",
        "Zulu pinned lookup",
        "Bravo cancel",
        "Charlie update",
        "Delta refund",
    ]


def test_the_list_shows_method_endpoint_tags_channels_and_source(client, org, support_admin):
    source = SpecSource.objects.create(organization=org, name="shop-api")
    refund = make_action(
        org,
        name="Refund an order",
        method="POST",
        endpoint="https://api.shop.example/v1/refunds",
        on_email=True,
        pinned=True,
        tags=(make_tag(org, name="billing"), make_tag(org, name="orders")),
    )
    lookup = make_action(org, name="Look up an order", source=source, on_widget=False)

    rows = result_rows(client.get(LIST_URL))

    assert rows == [
        {
            "display_name": f'<a href="{change_url(refund)}">'
            'Refund an order <span class="badge-pinned">Pinned</span></a>',
            "method": "POST",
            "endpoint": "https://api.shop.example/v1/refunds",
            "tag_list": '<span class="tag">billing</span> <span class="tag">orders</span>',
            "channel_list": "Widget, Email",
            "source_label": "Hand-authored",
        },
        {
            "display_name": f'<a href="{change_url(lookup)}">Look up an order</a>',
            "method": "GET",
            "endpoint": "https://api.example.com/v1/orders/{order_id}",
            "tag_list": "-",  # the admin's empty value
            "channel_list": "—",
            "source_label": "OpenAPI: shop-api",
        },
    ]


@pytest.fixture
def catalogue(org):
    """Four actions that differ in every filterable way, and an action of another org."""
    billing, orders = make_tag(org, name="billing"), make_tag(org, name="orders")
    premium, beta = make_segment(org, name="Premium"), make_segment(org, name="Beta")
    source = SpecSource.objects.create(organization=org, name="shop-api")
    make_action(
        org,
        name="Alpha refund",
        method="POST",
        pinned=True,
        on_email=True,
        tags=(billing,),
        segments=(premium,),
    )
    make_action(org, name="Bravo lookup", source=source, tags=(orders,))
    make_action(
        org,
        name="Charlie cancel",
        method="DELETE",
        on_widget=False,
        on_sms=True,
        tags=(billing, orders),
        segments=(beta,),
    )
    make_action(org, name="Delta update", method="PATCH")
    make_action(make_organization(), name="Echo elsewhere", method="POST", pinned=True)
    return {
        "billing": billing,
        "orders": orders,
        "premium": premium,
        "beta": beta,
        "source": source,
    }


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({"tag": "billing"}, ["Alpha refund", "Charlie cancel"]),
        ({"tag": "orders"}, ["Bravo lookup", "Charlie cancel"]),
        ({"channel": "widget"}, ["Alpha refund", "Bravo lookup", "Delta update"]),
        ({"channel": "email"}, ["Alpha refund"]),
        ({"channel": "sms"}, ["Charlie cancel"]),
        ({"channel": "slack"}, []),
        ({"source": "hand"}, ["Alpha refund", "Charlie cancel", "Delta update"]),
        ({"source": "source"}, ["Bravo lookup"]),
        ({"method__exact": "POST"}, ["Alpha refund"]),
        ({"method__exact": "GET"}, ["Bravo lookup"]),
        ({"pinned__exact": "1"}, ["Alpha refund"]),
        ({"pinned__exact": "0"}, ["Bravo lookup", "Charlie cancel", "Delta update"]),
        ({"segment": "premium"}, ["Alpha refund"]),
        ({"segment": "beta"}, ["Charlie cancel"]),
        ({"tag": "billing", "method__exact": "DELETE"}, ["Charlie cancel"]),
    ],
)
def test_each_filter_shows_exactly_the_matching_actions(
    client, support_admin, catalogue, query, expected
):
    params = {
        key: str(catalogue[value].pk) if value in catalogue else value
        for key, value in query.items()
    }

    response = client.get(f"{LIST_URL}?{urlencode(params)}")

    assert response.status_code == 200
    assert sorted(shown_names(response)) == expected


def test_the_unfiltered_list_shows_the_whole_catalogue_of_the_organization(
    client, support_admin, catalogue
):
    response = client.get(LIST_URL)

    assert shown_names(response) == [
        "Alpha refund",
        "Bravo lookup",
        "Charlie cancel",
        "Delta update",
    ]


@pytest.mark.parametrize("param", ["tag", "segment", "source"])
def test_a_malformed_filter_value_in_the_url_is_the_invalid_lookup_redirect(
    client, support_admin, catalogue, param
):
    response = client.get(LIST_URL, {param: "abc"})

    assert response.status_code == 302
    assert response["Location"] == f"{LIST_URL}?e=1"


@pytest.mark.parametrize(
    ("term", "expected"),
    [
        ("refund", ["Refund an order"]),  # name
        ("warranty", ["Book a repair"]),  # description
        ("help.shop.example", ["Search articles"]),  # endpoint
        ("ORDER", ["Refund an order", "Track a parcel"]),  # any field, any case
        ("nothing-matches", []),
    ],
)
def test_search_matches_name_description_and_endpoint(client, org, support_admin, term, expected):
    make_action(
        org,
        name="Refund an order",
        description="Refunds a paid order to the original payment method when asked.",
        endpoint="https://api.shop.example/v1/refunds",
    )
    make_action(
        org,
        name="Book a repair",
        description="Books a repair appointment for a device still under warranty.",
        endpoint="https://api.shop.example/v1/repairs",
    )
    make_action(
        org,
        name="Search articles",
        description="Searches the help center for guides that answer a question.",
        endpoint="https://help.shop.example/api/articles",
    )
    make_action(
        org,
        name="Track a parcel",
        description="Tracks the parcel of a shipped order with the carrier.",
        endpoint="https://api.shop.example/v1/shipments",
    )

    response = client.get(LIST_URL, {"q": term})

    assert sorted(shown_names(response)) == expected


# Bulk actions


def bulk(client, name: str, actions, **extra):
    return client.post(
        LIST_URL,
        {
            "action": name,
            "_selected_action": [str(action.pk) for action in actions],
            "index": "0",
            "channel": "",
            **extra,
        },
    )


def test_pin_selected_pins_only_the_chosen_actions(client, org, support_admin):
    first, second, _untouched = (make_action(org) for _ in range(3))

    response = bulk(client, "pin_selected", [first, second])

    assert response.status_code == 302
    assert list(Action.objects.filter(pinned=True).order_by("pk")) == [first, second]
    assert sent_messages(response) == [(message_levels.INFO, "Pinned 2 actions.")]


def test_unpin_selected_unpins_only_the_chosen_actions(client, org, support_admin):
    first, kept = make_action(org, pinned=True), make_action(org, pinned=True)

    response = bulk(client, "unpin_selected", [first])

    assert response.status_code == 302
    assert list(Action.objects.filter(pinned=True)) == [kept]
    assert sent_messages(response) == [(message_levels.INFO, "Unpinned 1 action.")]


def test_enable_channel_on_selected_turns_on_the_chosen_channel(client, org, support_admin):
    first, second, _untouched = (make_action(org) for _ in range(3))

    response = bulk(client, "enable_channel_on_selected", [first, second], channel="whatsapp")

    assert response.status_code == 302
    assert list(Action.objects.enabled_on("whatsapp").order_by("pk")) == [first, second]
    first.refresh_from_db()
    assert first.channels == ["widget", "whatsapp"]
    assert sent_messages(response) == [(message_levels.INFO, "Enabled WhatsApp on 2 actions.")]


def test_disable_channel_on_selected_turns_off_the_chosen_channel(client, org, support_admin):
    first, untouched = make_action(org), make_action(org)

    response = bulk(client, "disable_channel_on_selected", [first], channel="widget")

    assert response.status_code == 302
    assert list(Action.objects.enabled_on("widget")) == [untouched]
    assert sent_messages(response) == [(message_levels.INFO, "Disabled Widget on 1 action.")]


@pytest.mark.parametrize("name", ["enable_channel_on_selected", "disable_channel_on_selected"])
def test_a_channel_bulk_action_without_a_channel_shows_an_error_and_changes_nothing(
    client, org, support_admin, name
):
    first = make_action(org, on_email=True)

    response = bulk(client, name, [first])

    assert response.status_code == 302
    first.refresh_from_db()
    assert first.channels == ["widget", "email"]
    assert sent_messages(response) == [
        (
            message_levels.ERROR,
            "Choose a channel in the list next to the action, then run it again.",
        )
    ]


def test_the_list_offers_the_channel_picker_next_to_the_bulk_actions(client, org, support_admin):
    make_action(org)

    page = client.get(LIST_URL)

    assert rendered_form(page, form_id="changelist-form")["channel"] == ""
    html = page.content.decode()
    assert '<option value="whatsapp">WhatsApp</option>' in html
    assert "Enable the chosen channel on selected actions" in html


# Query counts: the changelists do not grow a query per row.


def make_tagged_actions(org, count: int) -> None:
    tags = (make_tag(org), make_tag(org))
    segment = make_segment(org)
    source = SpecSource.objects.get_or_create(organization=org, name="shop-api")[0]
    for n in range(count):
        make_action(
            org,
            tags=tags,
            segments=(segment,),
            pinned=n % 3 == 0,
            source=source if n % 2 else None,
        )


# Session, user, the tag/source/segment filter choices, two counts (filtered and total),
# the user's and groups' permissions (the nav sidebar), the page of actions, their tags.
ACTION_LIST_QUERIES = 11


def test_the_action_list_runs_the_same_queries_for_3_and_30_actions(
    client, org, support_admin, django_assert_num_queries
):
    make_tagged_actions(org, 3)
    with django_assert_num_queries(ACTION_LIST_QUERIES):
        response = client.get(LIST_URL)
    assert len(response.context["cl"].result_list) == 3

    make_tagged_actions(org, 27)
    with django_assert_num_queries(ACTION_LIST_QUERIES):
        response = client.get(LIST_URL)
    assert len(response.context["cl"].result_list) == 30


def test_a_filtered_and_searched_action_list_does_not_query_per_row(
    client, org, support_admin, django_assert_num_queries
):
    make_tagged_actions(org, 30)
    tag = make_tag(org, name="billing")
    for action in Action.objects.all()[:20]:
        action.tags.add(tag)

    with django_assert_num_queries(ACTION_LIST_QUERIES):
        response = client.get(LIST_URL, {"tag": tag.pk, "channel": "widget", "q": "order"})
    assert len(response.context["cl"].result_list) == 20
