"""The staff filters on GET /api/v1/actions, and the dashboard list driven by the same FilterSet."""

import pytest
from django.core.cache import cache
from django.urls import reverse

from actions.filters import ActionFilterSet
from actions.models import Channel, OrganizationAPIKey, SpecSource
from tests.factories import make_action, make_organization, make_segment, make_tag, make_user

pytestmark = pytest.mark.django_db

URL = "/api/v1/actions"


@pytest.fixture(autouse=True)
def _fresh_cache():
    cache.clear()  # rate-limit counters


@pytest.fixture
def org():
    return make_organization()


@pytest.fixture
def key(org):
    _, raw = OrganizationAPIKey.objects.create_key(
        organization=org, name="ci", scopes="actions:read"
    )
    return raw


@pytest.fixture
def catalogue(org):
    """Four actions that differ in every filterable way; another organization has
    look-alike tags, segments, sources and actions."""
    billing, orders = make_tag(org, name="billing"), make_tag(org, name="orders")
    premium, beta = make_segment(org, slug="premium"), make_segment(org, slug="beta")
    source = SpecSource.objects.create(organization=org, name="shop-api")
    make_action(
        org,
        name="Alpha refund",
        description="Refunds a paid order to the original payment method.",
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
        endpoint="https://billing.shop.example/v1/subscriptions/{id}",
        on_widget=False,
        on_sms=True,
        tags=(billing, orders),
        segments=(premium, beta),
    )
    make_action(org, name="Delta update", method="PATCH")

    other = make_organization()
    make_action(
        other,
        name="Echo elsewhere refund",
        method="POST",
        pinned=True,
        source=SpecSource.objects.create(organization=other, name="other-api"),
        tags=(make_tag(other, name="billing"), make_tag(other, name="secret")),
        segments=(make_segment(other, slug="premium"), make_segment(other, slug="vip")),
    )
    return org


def listed(client, key: str, query) -> list[str]:
    response = client.get(URL, query, HTTP_AUTHORIZATION=f"Bearer {key}")
    assert response.status_code == 200, response.content
    body = response.json()
    names = [action["name"] for action in body["results"]]
    assert body["count"] == len(names)
    return names


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({}, ["Alpha refund", "Bravo lookup", "Charlie cancel", "Delta update"]),
        ({"tags": "billing"}, ["Alpha refund", "Charlie cancel"]),
        ({"tags": "BILLING"}, ["Alpha refund", "Charlie cancel"]),  # tag names ignore case
        ({"tags": "orders"}, ["Bravo lookup", "Charlie cancel"]),
        ({"tags": "billing,orders"}, ["Alpha refund", "Bravo lookup", "Charlie cancel"]),
        ({"tags": ["billing", "orders"]}, ["Alpha refund", "Bravo lookup", "Charlie cancel"]),
        ({"tags__all": "billing,orders"}, ["Charlie cancel"]),
        ({"tags__all": ["billing", "orders"]}, ["Charlie cancel"]),
        ({"tags__all": "billing"}, ["Alpha refund", "Charlie cancel"]),
        ({"channel": "widget"}, ["Alpha refund", "Bravo lookup", "Delta update"]),
        ({"channel": "email"}, ["Alpha refund"]),
        ({"channel": "sms"}, ["Charlie cancel"]),
        ({"channel": "slack"}, []),
        ({"source": "hand"}, ["Alpha refund", "Charlie cancel", "Delta update"]),
        ({"source": "shop-api"}, ["Bravo lookup"]),
        ({"pinned": "true"}, ["Alpha refund"]),
        ({"pinned": "false"}, ["Bravo lookup", "Charlie cancel", "Delta update"]),
        ({"pinned": "1"}, ["Alpha refund"]),
        ({"method": "POST"}, ["Alpha refund"]),
        ({"method": "GET"}, ["Bravo lookup"]),
        ({"segment": "premium"}, ["Alpha refund", "Charlie cancel"]),
        ({"segment": "beta"}, ["Charlie cancel"]),
        ({"search": "refund"}, ["Alpha refund"]),  # name
        ({"search": "PAYMENT method"}, ["Alpha refund"]),  # description, every word, any case
        ({"search": "billing.shop"}, ["Charlie cancel"]),  # endpoint
        ({"search": "nothing-matches"}, []),
    ],
)
def test_each_filter_lists_exactly_the_matching_actions_of_the_keys_organization(
    client, key, catalogue, query, expected
):
    assert sorted(listed(client, key, query)) == expected


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({"tags": "billing", "method": "DELETE"}, ["Charlie cancel"]),
        ({"tags": "billing,orders", "channel": "widget"}, ["Alpha refund", "Bravo lookup"]),
        ({"source": "hand", "pinned": "false"}, ["Charlie cancel", "Delta update"]),
        ({"segment": "premium", "tags__all": "billing,orders"}, ["Charlie cancel"]),
        ({"segment": "premium", "tags": "billing", "search": "alpha"}, ["Alpha refund"]),
        ({"channel": "email", "source": "shop-api"}, []),
    ],
)
def test_filters_combine_with_and(client, key, catalogue, query, expected):
    assert sorted(listed(client, key, query)) == expected


def test_an_action_matching_through_several_tags_and_segments_is_listed_once(client, org, key):
    tags = [make_tag(org, name=name) for name in ("a", "b", "c")]
    segments = [make_segment(org, slug=slug) for slug in ("s1", "s2")]
    make_action(org, name="Many relations", tags=tags, segments=segments)
    make_action(org, name="Some relations", tags=tags[:2], segments=segments)

    names = listed(client, key, {"tags": "a,b,c", "tags__all": "a,b", "segment": "s1"})

    assert names == ["Many relations", "Some relations"]


@pytest.mark.parametrize(
    ("query", "field", "named", "valid", "not_listed"),
    [
        ({"channel": "web"}, "channel", "web", Channel.values, []),
        ({"method": "get"}, "method", "get", ["GET", "POST", "PUT", "PATCH", "DELETE"], []),
        ({"pinned": "maybe"}, "pinned", "maybe", ["true", "false"], []),
        ({"tags": "billing,nope"}, "tags", "nope", ["billing", "orders"], ["secret"]),
        ({"tags__all": "secret"}, "tags__all", "secret", ["billing", "orders"], []),
        ({"source": "other-api"}, "source", "other-api", ["hand", "shop-api"], []),
        ({"segment": "vip"}, "segment", "vip", ["beta", "premium"], []),
    ],
)
def test_an_invalid_value_is_a_400_naming_it_and_listing_the_valid_ones(
    client, key, catalogue, query, field, named, valid, not_listed
):
    response = client.get(URL, query, HTTP_AUTHORIZATION=f"Bearer {key}")

    assert response.status_code == 400
    [message] = response.json()[field]
    assert named in message
    for value in valid:
        assert value in message
    for value in not_listed:  # another organization's names are never revealed
        assert value not in message


@pytest.mark.parametrize("field", ["tags", "tags__all", "source", "segment", "search"])
def test_a_nul_in_a_filter_value_is_a_400_not_a_crash(client, key, catalogue, field):
    response = client.get(URL, {field: "bill\x00ing"}, HTTP_AUTHORIZATION=f"Bearer {key}")

    assert response.status_code == 400
    assert response.json()[field] == ["Null characters are not allowed."]


def test_an_empty_filter_value_does_not_filter(client, key, catalogue):
    assert len(listed(client, key, {"tags": "", "source": "", "segment": "", "search": ""})) == 4


# The dashboard list uses the same FilterSet.


def test_the_dashboard_sidebar_filters_through_the_api_filterset(
    client, org, catalogue, monkeypatch
):
    calls = []
    for name in ["filter_tags_any", "filter_channel", "filter_source", "filter_segment"]:
        original = getattr(ActionFilterSet, name)

        def recording(queryset, field, value, _original=original):
            calls.append(field)
            return _original(queryset, field, value)

        monkeypatch.setattr(ActionFilterSet, name, staticmethod(recording))
    client.force_login(make_user(organization=org))
    billing = org.tag_set.get(name="billing")
    premium = org.segment_set.get(slug="premium")

    response = client.get(
        reverse("admin:actions_action_changelist"),
        {"tag": billing.pk, "channel": "widget", "source": "hand", "segment": premium.pk},
    )

    assert response.status_code == 200
    assert [action.name for action in response.context["cl"].result_list] == ["Alpha refund"]
    assert sorted(calls) == ["channel", "segment", "source", "tags"]


# Query counts


# The tag and segment lookups, the count, the page, and one query each for the page's
# tags, segments, headers and parameters. (The key is read from the database again
# only after its organization changed: see actions.state.)
FILTERED_LIST_QUERIES = 8


def test_a_filtered_list_runs_the_same_queries_for_3_and_30_matches(
    client, org, key, django_assert_num_queries
):
    tags = (make_tag(org, name="billing"), make_tag(org, name="orders"))
    segment = make_segment(org, slug="premium")

    def add_actions(count: int) -> None:
        for _ in range(count):
            make_action(org, tags=tags, segments=(segment,))

    query = {"tags": "billing,orders", "segment": "premium", "search": "order"}
    add_actions(3)
    listed(client, key, query)  # the first request records the key's use (one write)
    with django_assert_num_queries(FILTERED_LIST_QUERIES):
        assert len(listed(client, key, query)) == 3
    add_actions(27)
    listed(client, key, query)  # the organization changed: the key is read again
    with django_assert_num_queries(FILTERED_LIST_QUERIES):
        assert len(listed(client, key, query)) == 30
