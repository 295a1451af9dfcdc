"""API keys in the dashboard: created and shown once, listed, revoked, scoped."""

import pytest
from django.contrib import admin, messages
from django.contrib.sessions.models import Session
from django.core.cache import cache
from django.urls import reverse
from rest_framework_api_key.models import APIKey

from actions.models import OrganizationAPIKey
from actions.tool_list import local_renderings
from tests.actions.admin_pages import form_errors, rendered_form, result_rows, sent_messages
from tests.factories import make_organization, make_superuser, make_user

pytestmark = pytest.mark.django_db

ADD_URL = reverse("admin:actions_organizationapikey_add")
LIST_URL = reverse("admin:actions_organizationapikey_changelist")
TOOLS = "/api/v1/tools?channel=widget"


@pytest.fixture(autouse=True)
def _fresh_caches():
    cache.clear()
    local_renderings.clear()


@pytest.fixture
def org():
    return make_organization()


@pytest.fixture
def support_admin(client, org):
    user = make_user(organization=org)
    client.force_login(user)
    return user


def change_url(key: OrganizationAPIKey) -> str:
    return reverse("admin:actions_organizationapikey_change", args=[key.pk])


def make_key(organization, name: str = "runtime", scopes: str = "tools"):
    return OrganizationAPIKey.objects.create_key(
        organization=organization, name=name, scopes=scopes
    )


def key_form(**fields) -> dict:
    data = {
        "name": "Agent runtime",
        "scopes": ["tools", "contacts:write"],
        "expiry_date_0": "",
        "expiry_date_1": "",
        "_save": "Save",
    }
    data.update(fields)
    return data


def create_key_in_dashboard(client, **fields) -> tuple[OrganizationAPIKey, str, str]:
    """Post the add form; return the key row, the key from the message, and the message."""
    response = client.post(ADD_URL, key_form(**fields))
    assert response.status_code == 302, form_errors(response)
    success = [text for level, text in sent_messages(response) if level == messages.SUCCESS]
    shown = [text for text in success if "ocx_" in text]
    assert len(shown) == 1, success
    raw = shown[0].split("<code class='api-key'>")[1].split("</code>")[0]
    return OrganizationAPIKey.objects.get_from_key(raw), raw, shown[0]


def get_tools(client, raw: str):
    return client.get(TOOLS, HTTP_AUTHORIZATION=f"Bearer {raw}")


# Creating: the key is shown once


def test_a_new_key_is_shown_once_and_works_against_the_api(client, org, support_admin):
    key, raw, _ = create_key_in_dashboard(client)

    assert raw.startswith("ocx_")
    assert (key.organization, key.name, key.scopes, key.revoked) == (
        org,
        "Agent runtime",
        "tools contacts:write",
        False,
    )
    # Carried to the next page by the messages cookie, never stored server-side.
    secret = raw.removeprefix("ocx_").split(".")[1]
    assert all(secret not in str(s.get_decoded()) for s in Session.objects.all())
    # Shown on the page the admin is sent to...
    shown = client.get(LIST_URL)
    assert raw in shown.content.decode()
    # ...and never again: not on the list, not on the key's own page.
    assert raw not in client.get(LIST_URL).content.decode()
    page = client.get(change_url(key)).content.decode()
    assert raw not in page
    assert secret not in page

    assert get_tools(client, raw).status_code == 200


def test_the_new_key_message_escapes_the_name(client, org, support_admin):
    _, _, message = create_key_in_dashboard(client, name="<b>ci</b>")

    assert "&lt;b&gt;ci&lt;/b&gt;" in message
    assert "<b>" not in message


def test_scopes_are_checkboxes_stored_space_separated(client, org, support_admin):
    form = rendered_form(client.get(ADD_URL), "organizationapikey_form")
    assert form["scopes"] == "tools"  # checked by default
    assert "revoked" not in form  # a new key cannot start revoked

    key, _, _ = create_key_in_dashboard(client, scopes=["specs:import", "actions:read"])

    assert key.scopes == "actions:read specs:import"
    form = rendered_form(client.get(change_url(key)), "organizationapikey_form")
    assert form["scopes"] == ["actions:read", "specs:import"]


def test_a_key_needs_at_least_one_scope(client, org, support_admin):
    response = client.post(ADD_URL, key_form(scopes=[]))

    assert response.status_code == 200
    assert "scopes" in form_errors(response)
    assert OrganizationAPIKey.objects.count() == 0


def test_an_unknown_scope_is_refused(client, org, support_admin):
    response = client.post(ADD_URL, key_form(scopes=["tools", "admin"]))

    assert response.status_code == 200
    assert "scopes" in form_errors(response)
    assert OrganizationAPIKey.objects.count() == 0


def test_an_expiry_in_the_past_is_refused_for_a_new_key(client, org, support_admin):
    response = client.post(ADD_URL, key_form(expiry_date_0="2020-01-01", expiry_date_1="00:00:00"))

    assert response.status_code == 200
    assert "expire in the future" in str(form_errors(response)["expiry_date"])
    assert OrganizationAPIKey.objects.count() == 0


def test_a_key_with_a_future_expiry_is_created(client, org, support_admin):
    key, _, _ = create_key_in_dashboard(
        client, expiry_date_0="2999-01-01", expiry_date_1="00:00:00"
    )

    assert key.expiry_date.year == 2999


def test_the_form_never_shows_the_hash_or_the_id(client, org, support_admin):
    key, _ = make_key(org)

    add = rendered_form(client.get(ADD_URL), "organizationapikey_form")
    change_page = client.get(change_url(key))
    change = rendered_form(change_page, "organizationapikey_form")

    for form in (add, change):
        assert not {"id", "hashed_key", "organization"} & set(form)
    fields = change_page.context["adminform"].form.fields
    assert set(fields) == {"name", "scopes", "expiry_date", "revoked"}
    assert key.prefix in change_page.content.decode()  # shown, read-only


# The list


def test_the_list_shows_name_prefix_scopes_dates_and_revoked(client, org, support_admin):
    make_key(org, name="ci", scopes="actions:read specs:import")

    response = client.get(LIST_URL)

    assert response.context["cl"].list_display == [
        "action_checkbox",
        "name",
        "prefix",
        "scope_list",
        "created",
        "last_used_at",
        "expiry_date",
        "revoked",
    ]
    (row,) = result_rows(response)
    assert "ci" in row["name"]
    assert row["scope_list"] == "actions:read, specs:import"


def test_the_list_runs_the_same_queries_for_3_and_30_keys(
    client, org, support_admin, django_assert_num_queries
):
    for n in range(3):
        make_key(org, name=f"key {n}")
    with django_assert_num_queries(7):
        response = client.get(LIST_URL)
    assert len(response.context["cl"].result_list) == 3

    for n in range(27):
        make_key(org, name=f"more {n}")
    with django_assert_num_queries(7):
        response = client.get(LIST_URL)
    assert len(response.context["cl"].result_list) == 30


# Revoking


def test_revoke_selected_revokes_and_the_key_stops_working(client, org, support_admin):
    key, raw = make_key(org)
    other, other_raw = make_key(org, name="other")
    assert get_tools(client, raw).status_code == 200

    response = client.post(LIST_URL, {"action": "revoke_selected", "_selected_action": [key.pk]})

    assert response.status_code == 302
    assert sent_messages(response) == [
        (messages.INFO, "Revoked 1 API key; it stops working at once.")
    ]
    key.refresh_from_db()
    other.refresh_from_db()
    assert (key.revoked, other.revoked) == (True, False)
    assert get_tools(client, raw).status_code == 401
    assert get_tools(client, other_raw).status_code == 200


def test_revoking_with_the_checkbox_stops_the_key(client, org, support_admin):
    key, raw = make_key(org)
    form = rendered_form(client.get(change_url(key)), "organizationapikey_form")

    response = client.post(change_url(key), {**form, "revoked": "on", "_save": "Save"})

    assert response.status_code == 302, form_errors(response)
    key.refresh_from_db()
    assert key.revoked
    assert get_tools(client, raw).status_code == 401


def test_a_revoked_key_cannot_be_unrevoked(client, org, support_admin):
    key, raw = make_key(org)
    key.revoked = True
    key.save()

    page = client.get(change_url(key))
    form = rendered_form(page, "organizationapikey_form")
    assert "revoked" not in form  # read-only now
    response = client.post(change_url(key), {**form, "revoked": "", "_save": "Save"})

    assert response.status_code == 302
    key.refresh_from_db()
    assert key.revoked
    assert get_tools(client, raw).status_code == 401


# Organization scoping


def test_another_organizations_key_is_404_and_not_listed(client, org, support_admin):
    make_key(org, name="mine")
    theirs, their_raw = make_key(make_organization(), name="theirs")

    listed = client.get(LIST_URL).context["cl"].result_list
    assert [key.name for key in listed] == ["mine"]
    assert client.get(change_url(theirs)).status_code == 404
    assert client.post(change_url(theirs), {"revoked": "on"}).status_code == 404
    delete_url = reverse("admin:actions_organizationapikey_delete", args=[theirs.pk])
    assert client.get(delete_url).status_code == 404
    assert client.post(delete_url, {"post": "yes"}).status_code == 404

    theirs.refresh_from_db()
    assert not theirs.revoked
    assert get_tools(client, their_raw).status_code == 200


def test_bulk_revoke_cannot_reach_another_organizations_key(client, org, support_admin):
    mine, _ = make_key(org)
    theirs, their_raw = make_key(make_organization())

    client.post(LIST_URL, {"action": "revoke_selected", "_selected_action": [mine.pk, theirs.pk]})

    theirs.refresh_from_db()
    assert not theirs.revoked
    assert get_tools(client, their_raw).status_code == 200


def test_a_new_key_belongs_to_the_admins_organization(client, org, support_admin):
    other = make_organization()

    key, _, _ = create_key_in_dashboard(client, organization=str(other.pk))

    assert key.organization == org


def test_a_superuser_sees_every_organizations_keys_and_picks_the_organization(client):
    first, second = make_organization(name="First"), make_organization(name="Second")
    make_key(first, name="first key")
    make_key(second, name="second key")
    client.force_login(make_superuser())

    response = client.get(LIST_URL)
    assert {key.name for key in response.context["cl"].result_list} == {
        "first key",
        "second key",
    }
    assert "organization" in response.context["cl"].list_display

    key, _, _ = create_key_in_dashboard(client, organization=str(second.pk))
    assert key.organization == second


def test_a_staff_user_without_an_organization_sees_no_keys(client, org):
    make_key(org)
    user = make_user()
    user.organization = None
    user.save()
    client.force_login(user)

    assert client.get(LIST_URL).status_code == 403


def test_the_packages_unscoped_api_key_admin_is_not_registered():
    assert not admin.site.is_registered(APIKey)
    assert admin.site.is_registered(OrganizationAPIKey)


def test_a_superuser_cannot_move_a_key_to_another_organization(client):
    first, second = make_organization(), make_organization()
    key, _ = make_key(first)
    client.force_login(make_superuser())
    page = client.get(change_url(key))
    form = rendered_form(page, "organizationapikey_form")
    assert "organization" not in form  # shown read-only

    response = client.post(
        change_url(key), {**form, "organization": str(second.pk), "_save": "Save"}
    )

    assert response.status_code == 302, form_errors(response)
    key.refresh_from_db()
    assert key.organization == first
