"""Segments, contacts and tags in the dashboard: create, list, search, scoped."""

import pytest
from django.urls import reverse

from actions.models import Contact, Segment, Tag
from tests.actions.admin_pages import form_errors, result_rows
from tests.factories import (
    make_action,
    make_contact,
    make_organization,
    make_segment,
    make_tag,
    make_user,
)

pytestmark = pytest.mark.django_db


def url(name: str, model: str, *args) -> str:
    return reverse(f"admin:actions_{model}_{name}", args=args)


def listed(response) -> list[str]:
    return [str(obj) for obj in response.context["cl"].result_list]


@pytest.fixture
def org():
    return make_organization()


@pytest.fixture
def support_admin(client, org):
    user = make_user(organization=org)
    client.force_login(user)
    return user


# Segments


def test_support_admin_creates_a_segment_in_their_organization(client, org, support_admin):
    response = client.post(
        url("add", "segment"),
        {"name": "Premium customers", "slug": "premium", "description": "On a paid plan."},
    )

    assert response.status_code == 302, form_errors(response)
    segment = Segment.objects.get()
    assert (segment.organization, segment.name, segment.slug) == (
        org,
        "Premium customers",
        "premium",
    )


def test_a_segment_slug_already_used_in_the_organization_is_refused(client, org, support_admin):
    make_segment(org, slug="premium")

    response = client.post(url("add", "segment"), {"name": "Premium again", "slug": "premium"})

    assert response.status_code == 200
    assert form_errors(response)["__all__"] == ["A segment with this slug already exists."]
    assert Segment.objects.count() == 1


def test_a_segment_slug_used_by_another_organization_is_free(client, org, support_admin):
    make_segment(make_organization(), slug="premium")

    response = client.post(url("add", "segment"), {"name": "Premium", "slug": "premium"})

    assert response.status_code == 302, form_errors(response)
    assert Segment.objects.filter(organization=org, slug="premium").exists()


def test_the_segment_list_counts_contacts_and_restricted_actions(client, org, support_admin):
    premium = make_segment(org, name="Premium", slug="premium")
    make_segment(org, name="Beta", slug="beta")
    for _ in range(3):
        make_contact(org, segments=(premium,))
    make_action(org, segments=(premium,))
    make_action(org)
    make_contact(make_organization(), segments=(make_segment(),))

    rows = result_rows(client.get(url("changelist", "segment")))

    assert [(r["slug"], r["contact_count"], r["action_count"]) for r in rows] == [
        ("beta", "0", "0"),
        ("premium", "3", "1"),
    ]


@pytest.mark.parametrize(("term", "expected"), [("prem", ["Premium"]), ("beta-2", ["Beta"])])
def test_the_segment_list_searches_name_and_slug(client, org, support_admin, term, expected):
    make_segment(org, name="Premium", slug="paid")
    make_segment(org, name="Beta", slug="beta-2")
    make_segment(make_organization(), name="Premium elsewhere")

    assert listed(client.get(url("changelist", "segment"), {"q": term})) == expected


def test_the_segment_autocomplete_pages_through_segments_in_name_order(client, org, support_admin):
    # Created in reverse, so the id order is not the name order.
    for n in reversed(range(25)):
        make_segment(org, name=f"Segment {n:02d}", slug=f"segment-{n}")
    params = {"app_label": "actions", "model_name": "action", "field_name": "segments"}

    first = client.get("/admin/autocomplete/", {**params, "term": ""}).json()
    second = client.get("/admin/autocomplete/", {**params, "term": "", "page": 2}).json()

    shown = [row["text"] for row in first["results"] + second["results"]]
    assert shown == [f"Segment {n:02d}" for n in range(25)]
    assert first["pagination"]["more"] is True


# Contacts


def test_support_admin_creates_a_contact_with_attributes_and_segments(client, org, support_admin):
    premium = make_segment(org)

    response = client.post(
        url("add", "contact"),
        {
            "external_id": "cus_1001",
            "name": "Ada Lovelace",
            "email": "ada@example.com",
            "phone": "+44 20 7946 0000",
            "attributes": '{"plan": "pro", "subscription_id": "sub_42"}',
            "segments": [str(premium.pk)],
        },
    )

    assert response.status_code == 302, form_errors(response)
    contact = Contact.objects.get()
    assert contact.organization == org
    assert contact.attributes == {"plan": "pro", "subscription_id": "sub_42"}
    assert list(contact.segments.all()) == [premium]


def test_contact_attributes_that_are_not_an_object_are_refused(client, org, support_admin):
    response = client.post(
        url("add", "contact"), {"external_id": "cus_1001", "attributes": '["pro"]'}
    )

    assert response.status_code == 200
    assert form_errors(response)["attributes"] == [
        'Attributes must be a JSON object, such as {"plan": "pro"}.'
    ]
    assert not Contact.objects.exists()


def test_a_contact_id_already_used_in_the_organization_is_refused(client, org, support_admin):
    make_contact(org, external_id="cus_1001")

    response = client.post(url("add", "contact"), {"external_id": "cus_1001", "attributes": "{}"})

    assert response.status_code == 200
    assert form_errors(response)["__all__"] == ["A contact with this ID already exists."]
    assert Contact.objects.count() == 1


@pytest.mark.parametrize(
    ("term", "expected"),
    [("cus_7", ["Grace Hopper"]), ("ada@", ["Ada Lovelace"]), ("0000", ["Ada Lovelace"])],
)
def test_the_contact_list_searches_id_name_email_and_phone(
    client, org, support_admin, term, expected
):
    make_contact(org, external_id="cus_1", name="Ada Lovelace", email="ada@x.io", phone="0000")
    make_contact(org, external_id="cus_7", name="Grace Hopper", email="grace@x.io", phone="1")
    make_contact(make_organization(), name="Ada elsewhere", email="ada@y.io", phone="0000")

    assert listed(client.get(url("changelist", "contact"), {"q": term})) == expected


def test_the_contact_list_filters_by_segment_and_shows_segments(client, org, support_admin):
    premium, beta = make_segment(org, name="Premium"), make_segment(org, name="Beta")
    make_contact(org, external_id="cus_1", name="Ada", segments=(premium, beta))
    make_contact(org, external_id="cus_2", name="Grace")

    everyone = client.get(url("changelist", "contact"))
    filtered = client.get(url("changelist", "contact"), {"segment": beta.pk})

    assert [(r["name"], r["segment_list"]) for r in result_rows(everyone)] == [
        ("Ada", "Beta, Premium"),
        ("Grace", "—"),
    ]
    assert listed(filtered) == ["Ada"]


# Tags


def test_support_admin_creates_a_tag_in_their_organization(client, org, support_admin):
    response = client.post(url("add", "tag"), {"name": "billing"})

    assert response.status_code == 302, form_errors(response)
    assert Tag.objects.get().organization == org


def test_a_tag_name_with_spaces_is_refused(client, org, support_admin):
    response = client.post(url("add", "tag"), {"name": "two words"})

    assert form_errors(response)["name"] == [
        "Use letters, digits, '_', '-' or '.' in a tag (for example billing)."
    ]
    assert not Tag.objects.exists()


def test_a_tag_name_already_used_in_the_organization_is_refused_whatever_its_case(
    client, org, support_admin
):
    make_tag(org, name="billing")

    response = client.post(url("add", "tag"), {"name": "Billing"})

    assert response.status_code == 200
    assert form_errors(response)["__all__"] == ["A tag with this name already exists."]
    assert Tag.objects.count() == 1


def test_renaming_a_tag_to_its_own_name_is_allowed(client, org, support_admin):
    tag = make_tag(org, name="billing")

    response = client.post(url("change", "tag", tag.pk), {"name": "billing"})

    assert response.status_code == 302, form_errors(response)


def test_the_tag_list_counts_actions_and_searches_names(client, org, support_admin):
    billing, orders = make_tag(org, name="billing"), make_tag(org, name="orders")
    make_action(org, tags=(billing, orders))
    make_action(org, tags=(billing,))
    make_tag(make_organization(), name="billing")

    rows = result_rows(client.get(url("changelist", "tag")))
    searched = client.get(url("changelist", "tag"), {"q": "bill"})

    assert [r["action_count"] for r in rows] == ["2", "1"]
    assert listed(client.get(url("changelist", "tag"))) == ["billing", "orders"]
    assert listed(searched) == ["billing"]


# Query counts: the changelists do not grow a query per row.

# Session, user, two counts (filtered and total), the user's and groups' permissions
# (the nav sidebar), the page of rows; contacts add the segment filter's choices and
# their prefetched segments.
LIST_QUERIES = {"segment": 7, "contact": 9, "tag": 7}


def make_rows(org, count: int) -> None:
    segments = (make_segment(org), make_segment(org))
    tags = (make_tag(org), make_tag(org))
    for _ in range(count):
        make_contact(org, segments=segments)
        make_action(org, segments=segments, tags=tags)
        make_segment(org)
        make_tag(org)


@pytest.mark.parametrize("model", ["segment", "contact", "tag"])
def test_the_list_runs_the_same_queries_for_3_and_30_rows(
    client, org, support_admin, django_assert_num_queries, model
):
    make_rows(org, 3)
    with django_assert_num_queries(LIST_QUERIES[model]):
        response = client.get(url("changelist", model))
    few = len(response.context["cl"].result_list)

    make_rows(org, 27)
    with django_assert_num_queries(LIST_QUERIES[model]):
        response = client.get(url("changelist", model))
    assert len(response.context["cl"].result_list) > few >= 3
