"""PUT/GET /api/v1/contacts/{external_id}: upsert details, attributes and segments."""

import json
import threading
import time
from unittest import mock

import pytest
from django.core.cache import cache
from django.db import connection, connections, transaction

from actions import contacts
from actions.models import Contact, Organization, OrganizationAPIKey
from actions.tool_list import local_renderings
from tests.conftest import require_service
from tests.factories import make_action, make_contact, make_organization, make_segment

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fresh_caches():
    cache.clear()
    local_renderings.clear()


@pytest.fixture
def org():
    return make_organization()


@pytest.fixture
def key(org):
    _, raw = OrganizationAPIKey.objects.create_key(
        organization=org, name="ci", scopes="tools contacts:write"
    )
    return raw


def put(client, key: str, external_id: str, body) -> object:
    return client.put(
        f"/api/v1/contacts/{external_id}",
        json.dumps(body),
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {key}",
    )


def get(client, key: str, external_id: str):
    return client.get(f"/api/v1/contacts/{external_id}", HTTP_AUTHORIZATION=f"Bearer {key}")


def tool_names(client, key: str, contact: str) -> list[str]:
    response = client.get(
        "/api/v1/tools",
        {"channel": "widget", "contact": contact},
        HTTP_AUTHORIZATION=f"Bearer {key}",
    )
    assert response.status_code == 200, response.content
    return [tool["function"]["name"] for tool in response.json()["tools"]]


# Upsert


def test_put_creates_a_contact_with_201_and_returns_it(client, org, key):
    make_segment(org, slug="premium")
    make_segment(org, slug="beta")

    response = put(
        client,
        key,
        "cus_42",
        {
            "name": "Ada Lovelace",
            "email": "ada@example.com",
            "phone": "+44 20 7946 0000",
            "attributes": {"plan": "pro", "seats": 3},
            "segments": ["premium", "beta"],
        },
    )

    assert response.status_code == 201, response.content
    assert response.headers["Location"] == "/api/v1/contacts/cus_42"
    body = response.json()
    assert set(body) == {
        "external_id",
        "name",
        "email",
        "phone",
        "attributes",
        "segments",
        "created_at",
        "updated_at",
    }
    assert {k: v for k, v in body.items() if not k.endswith("_at")} == {
        "external_id": "cus_42",
        "name": "Ada Lovelace",
        "email": "ada@example.com",
        "phone": "+44 20 7946 0000",
        "attributes": {"plan": "pro", "seats": 3},
        "segments": ["beta", "premium"],
    }
    contact = Contact.objects.get()
    assert (contact.organization, contact.external_id) == (org, "cus_42")
    assert sorted(s.slug for s in contact.segments.all()) == ["beta", "premium"]


def test_put_updates_an_existing_contact_with_200(client, org, key):
    make_contact(org, external_id="cus_42", name="Ada", email="ada@example.com")

    response = put(client, key, "cus_42", {"name": "Ada King"})

    assert response.status_code == 200, response.content
    assert response.json()["name"] == "Ada King"
    assert response.json()["email"] == "ada@example.com"  # left out: unchanged
    assert Contact.objects.count() == 1
    assert Contact.objects.get().name == "Ada King"


def test_an_empty_body_creates_a_bare_contact(client, org, key):
    response = put(client, key, "cus_1", {})

    assert response.status_code == 201
    assert response.json()["segments"] == []
    assert response.json()["attributes"] == {}


def test_attributes_given_replace_the_stored_ones(client, org, key):
    make_contact(org, external_id="cus_42", attributes={"plan": "pro", "country": "UK"})

    put(client, key, "cus_42", {"attributes": {"plan": "free"}})

    assert Contact.objects.get().attributes == {"plan": "free"}


def test_segments_given_replace_the_membership_and_left_out_keep_it(client, org, key):
    premium = make_segment(org, slug="premium")
    beta = make_segment(org, slug="beta")
    make_contact(org, external_id="cus_42", segments=(premium,))

    assert put(client, key, "cus_42", {"segments": ["beta"]}).json()["segments"] == ["beta"]
    assert put(client, key, "cus_42", {"name": "Ada"}).json()["segments"] == ["beta"]
    assert list(Contact.objects.get().segments.all()) == [beta]
    assert put(client, key, "cus_42", {"segments": []}).json()["segments"] == []
    assert Contact.objects.get().segments.count() == 0


def test_an_unknown_segment_is_a_400_that_names_it_and_lists_the_valid_ones(client, org, key):
    make_segment(org, slug="premium")
    make_segment(org, slug="beta")
    make_contact(org, external_id="cus_42", name="Ada")

    response = put(client, key, "cus_42", {"name": "Changed", "segments": ["premium", "gold"]})

    assert response.status_code == 400
    assert response.json() == {"segments": ["Unknown segment gold. Valid segments: beta, premium."]}
    contact = Contact.objects.get()
    assert contact.name == "Ada"  # nothing written
    assert contact.segments.count() == 0


def test_another_organizations_segment_is_unknown(client, org, key):
    make_segment(make_organization(), slug="vip")

    response = put(client, key, "cus_42", {"segments": ["vip"]})

    assert response.status_code == 400
    assert "Unknown segment vip" in response.json()["segments"][0]
    assert Contact.objects.count() == 0


def test_the_contact_lives_in_the_keys_organization_only(client, org, key):
    other = make_organization()
    make_contact(other, external_id="cus_42", name="Theirs")

    response = put(client, key, "cus_42", {"name": "Ours"})

    assert response.status_code == 201
    assert Contact.objects.get(organization=other).name == "Theirs"
    assert Contact.objects.get(organization=org).name == "Ours"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"email": "not an email"}, "email"),
        ({"phone": "1" * 51}, "phone"),
        ({"name": "x" * 201}, "name"),
        ({"attributes": ["a", "list"]}, "attributes"),
        ({"attributes": "plan=pro"}, "attributes"),
        ({"attributes": {"bad": "nul\u0000"}}, "attributes"),
        ({"segments": "premium"}, "segments"),
        ({"name": None}, "name"),
        ({"segment": ["premium"]}, "segment"),
    ],
)
def test_invalid_bodies_are_400_on_the_field(client, org, key, body, field):
    response = put(client, key, "cus_42", body)

    assert response.status_code == 400, response.content
    assert list(response.json()) == [field]
    assert Contact.objects.count() == 0


def test_a_body_that_is_not_an_object_is_400(client, org, key):
    response = put(client, key, "cus_42", ["a"])

    assert response.status_code == 400
    assert Contact.objects.count() == 0


def test_an_external_id_longer_than_the_model_allows_is_400(client, org, key):
    response = put(client, key, "x" * 256, {})

    assert response.status_code == 400
    assert "external_id" in response.json()


# Read


def test_get_returns_the_contact(client, org, key):
    premium = make_segment(org, slug="premium")
    make_contact(
        org, external_id="cus_42", name="Ada", attributes={"plan": "pro"}, segments=(premium,)
    )

    response = get(client, key, "cus_42")

    assert response.status_code == 200
    assert response.json()["name"] == "Ada"
    assert response.json()["segments"] == ["premium"]


def test_get_of_an_unknown_or_another_organizations_contact_is_404(client, org, key):
    make_contact(make_organization(), external_id="cus_theirs")

    assert get(client, key, "cus_nobody").status_code == 404
    assert get(client, key, "cus_theirs").status_code == 404


# Auth


def test_the_contacts_write_scope_is_required(client, org):
    _, tools_only = OrganizationAPIKey.objects.create_key(
        organization=org, name="runtime", scopes="tools"
    )

    assert put(client, tools_only, "cus_42", {"name": "Ada"}).status_code == 403
    assert get(client, tools_only, "cus_42").status_code == 403
    assert Contact.objects.count() == 0


def test_without_a_key_it_is_401(client, org):
    response = client.put("/api/v1/contacts/cus_42", "{}", content_type="application/json")

    assert response.status_code == 401
    assert Contact.objects.count() == 0


def test_other_methods_are_refused(client, org, key):
    make_contact(org, external_id="cus_42")

    response = client.delete("/api/v1/contacts/cus_42", HTTP_AUTHORIZATION=f"Bearer {key}")

    assert response.status_code in {403, 405}
    assert Contact.objects.count() == 1


# Tool lists follow membership changes


def test_the_next_tool_list_follows_segment_changes_made_by_put(client, org, key):
    premium = make_segment(org, slug="premium")
    make_segment(org, slug="beta")
    make_action(org, name="Open to everyone")
    make_action(org, name="Premium refund", segments=(premium,))

    put(client, key, "cus_42", {"segments": ["beta"]})
    assert tool_names(client, key, "cus_42") == ["open_to_everyone"]

    put(client, key, "cus_42", {"segments": ["premium", "beta"]})
    assert tool_names(client, key, "cus_42") == ["open_to_everyone", "premium_refund"]

    put(client, key, "cus_42", {"segments": []})
    assert tool_names(client, key, "cus_42") == ["open_to_everyone"]


def test_a_put_that_changes_membership_bumps_the_tools_version(client, org, key):
    make_segment(org, slug="premium")
    put(client, key, "cus_42", {})
    before = Organization.objects.get(pk=org.pk).tools_version

    put(client, key, "cus_42", {"name": "Ada"})
    assert Organization.objects.get(pk=org.pk).tools_version == before

    put(client, key, "cus_42", {"segments": ["premium"]})
    assert Organization.objects.get(pk=org.pk).tools_version != before


# Concurrency (PostgreSQL: row locks and a unique index that makes a second insert wait)


@pytest.mark.django_db(transaction=True)
def test_a_put_racing_another_insert_of_the_same_contact_updates_it():
    """Another writer inserts cus_42 after our lookup found nothing: our insert waits on
    the unique index, fails when they commit, and the upsert becomes an update."""
    require_service(connection.vendor == "postgresql", "needs PostgreSQL row locking")
    org = make_organization()
    make_segment(org, slug="premium")
    inserted, release = threading.Event(), threading.Event()
    calls = []
    real_upsert = contacts._upsert

    def counting_upsert(*args):
        calls.append(args[1])
        return real_upsert(*args)

    def other_writer():
        try:
            with transaction.atomic():
                Contact.objects.create(organization=org, external_id="cus_42", name="Theirs")
                inserted.set()
                release.wait(10)
        finally:
            connections.close_all()

    writer = threading.Thread(target=other_writer)
    writer.start()
    assert inserted.wait(10)
    result = {}

    def ours():
        try:
            with mock.patch.object(contacts, "_upsert", counting_upsert):
                result["value"] = contacts.upsert_contact(
                    org, "cus_42", {"name": "Ours", "segments": ["premium"]}
                )
        except Exception as error:  # surfaced by the assertion below
            result["error"] = error
        finally:
            connections.close_all()

    upserter = threading.Thread(target=ours)
    upserter.start()
    _wait_for_a_lock_wait()
    release.set()
    writer.join(10)
    upserter.join(10)

    assert "error" not in result, result.get("error")
    contact, created = result["value"]
    assert (contact.name, created) == ("Ours", False)
    assert calls == ["cus_42", "cus_42"]  # the race really happened: one retry
    assert Contact.objects.get(organization=org, external_id="cus_42").name == "Ours"
    assert [s.slug for s in Contact.objects.get().segments.all()] == ["premium"]


def _wait_for_a_lock_wait(timeout: float = 10) -> None:
    """Until some session of this database waits on a lock (our blocked insert)."""
    deadline = time.monotonic() + timeout
    with connection.cursor() as cursor:
        while time.monotonic() < deadline:
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity "
                "WHERE datname = current_database() AND wait_event_type = 'Lock'"
            )
            if cursor.fetchone()[0]:
                return
            time.sleep(0.02)
    raise AssertionError("the upsert never waited on the other writer's insert")


# Bodies and IDs that must be a 4xx, not a server error (PostgreSQL refuses NUL and
# unpaired surrogates; Python's json recurses per nesting level)


def test_a_deeply_nested_body_is_400(client, org, key):
    for depth in (64, 5000):  # plus the body object: 65 levels and more
        body = '{"attributes": ' + '{"a": ' * depth + "1" + "}" * depth + "}"
        response = client.put(
            "/api/v1/contacts/cus_42",
            body,
            content_type="application/json",
            HTTP_AUTHORIZATION=f"Bearer {key}",
        )
        assert response.status_code == 400, depth
        assert "nested deeper than 64 levels" in response.json()["detail"]
    assert Contact.objects.count() == 0


def test_attributes_nested_64_deep_are_accepted(client, org, key):
    attributes = 1
    for _ in range(63):  # plus the body object itself: 64 levels
        attributes = {"a": attributes}

    assert put(client, key, "cus_42", {"attributes": attributes}).status_code == 201


@pytest.mark.parametrize("text", ["\u0000", "\ud800"])
def test_attributes_postgresql_cannot_store_are_400(client, org, key, text):
    for attributes in ({"a": f"x{text}"}, {f"k{text}": 1}, {"a": [{"b": text}]}):
        response = put(client, key, "cus_42", {"attributes": attributes})
        assert response.status_code == 400, attributes
        assert list(response.json()) == ["attributes"]
    assert Contact.objects.count() == 0


def test_an_external_id_with_a_nul_is_refused(client, org, key):
    assert get(client, key, "cus%00").status_code == 404
    response = put(client, key, "cus%00", {})
    assert response.status_code == 400
    assert list(response.json()) == ["external_id"]
    assert Contact.objects.count() == 0
