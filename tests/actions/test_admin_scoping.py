"""Organization scoping in the dashboard: another organization's objects do not exist."""

from dataclasses import dataclass

import pytest
from django.contrib.messages import get_messages
from django.urls import reverse

from actions.models import Action, Contact, Organization, Segment, SpecSource, Tag
from tests.actions.admin_pages import action_form
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

MODELS = ["action", "segment", "contact", "tag"]


@dataclass
class Tenant:
    organization: Organization
    action: Action
    segment: Segment
    contact: Contact
    tag: Tag
    source: SpecSource


def make_tenant(name: str) -> Tenant:
    organization = make_organization(name=name, slug=name.lower())
    segment = make_segment(organization, name=f"{name} premium", slug="premium")
    tag = make_tag(organization, name=f"{name.lower()}-billing")
    source = SpecSource.objects.create(organization=organization, name=f"{name.lower()}-api")
    return Tenant(
        organization=organization,
        action=make_action(
            organization, name=f"{name} refund", tags=(tag,), segments=(segment,), pinned=False
        ),
        segment=segment,
        contact=make_contact(organization, external_id=f"{name}-cus", segments=(segment,)),
        tag=tag,
        source=source,
    )


@pytest.fixture
def a():
    return make_tenant("Alpha")


@pytest.fixture
def b():
    return make_tenant("Bravo")


@pytest.fixture
def support_admin_of_a(client, a, b):
    user = make_user(organization=a.organization)
    client.force_login(user)
    return user


def url(name: str, model: str, *args) -> str:
    return reverse(f"admin:actions_{model}_{name}", args=args)


def listed(response) -> list:
    return list(response.context["cl"].result_list)


def action_post(tenant: Tenant, **fields) -> dict:
    """The add/change form of an action of `tenant`, with its segment and tag picked."""
    return action_form(
        **{
            "name": "Refund an order",
            "segments": [str(tenant.segment.pk)],
            "tags": [str(tenant.tag.pk)],
            **fields,
        }
    )


# Support admin of A


@pytest.mark.parametrize("model", MODELS)
def test_a_support_admin_lists_only_their_organizations_objects(
    client, a, b, support_admin_of_a, model
):
    response = client.get(url("changelist", model))

    assert response.status_code == 200
    assert listed(response) == [getattr(a, model)]
    assert "organization" not in response.context["cl"].list_display


@pytest.mark.parametrize("model", MODELS)
def test_a_search_does_not_reach_another_organizations_objects(
    client, a, b, support_admin_of_a, model
):
    response = client.get(url("changelist", model), {"q": "Bravo"})

    assert listed(response) == []


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("view", ["change", "history", "delete"])
def test_another_organizations_object_is_a_404_on_every_page(
    client, a, b, support_admin_of_a, model, view
):
    own = client.get(url(view, model, getattr(a, model).pk))
    other = client.get(url(view, model, getattr(b, model).pk))

    assert own.status_code == 200
    assert other.status_code == 404


@pytest.mark.parametrize("view", ["change", "history", "delete"])
def test_another_organizations_object_looks_like_one_that_does_not_exist(
    client, a, b, support_admin_of_a, view
):
    missing = Action.objects.order_by("pk").last().pk + 1000

    assert client.get(url(view, "action", missing)).status_code == 404


def test_posting_a_change_to_another_organizations_action_is_a_404_and_changes_nothing(
    client, a, b, support_admin_of_a
):
    response = client.post(
        url("change", "action", b.action.pk),
        action_post(a, name="Hijacked refund", pinned="on"),
    )

    assert response.status_code == 404
    b.action.refresh_from_db()
    assert (b.action.name, b.action.pinned) == ("Bravo refund", False)
    assert b.action.organization == b.organization
    assert list(b.action.segments.all()) == [b.segment]


@pytest.mark.parametrize(
    ("model", "data"),
    [
        ("segment", {"name": "Hijacked", "slug": "hijacked", "description": ""}),
        ("contact", {"external_id": "hijacked", "name": "", "email": "", "phone": ""}),
        ("tag", {"name": "hijacked"}),
    ],
)
def test_posting_a_change_to_another_organizations_object_is_a_404_and_changes_nothing(
    client, a, b, support_admin_of_a, model, data
):
    target = getattr(b, model)
    before = str(type(target).objects.get(pk=target.pk))

    response = client.post(url("change", model, target.pk), {**data, "attributes": "{}"})

    assert response.status_code == 404
    assert str(type(target).objects.get(pk=target.pk)) == before


@pytest.mark.parametrize("model", MODELS)
def test_deleting_another_organizations_object_is_a_404_and_keeps_it(
    client, a, b, support_admin_of_a, model
):
    target = getattr(b, model)

    response = client.post(url("delete", model, target.pk), {"post": "yes"})

    assert response.status_code == 404
    assert type(target).objects.filter(pk=target.pk).exists()


def test_deleting_an_own_object_works(client, a, b, support_admin_of_a):
    response = client.post(url("delete", "tag", a.tag.pk), {"post": "yes"})

    assert response.status_code == 302
    assert not Tag.objects.filter(pk=a.tag.pk).exists()
    assert Tag.objects.filter(pk=b.tag.pk).exists()


@pytest.mark.parametrize("field", ["segments", "tags"])
def test_another_organizations_segment_or_tag_cannot_be_picked_on_a_new_action(
    client, a, b, support_admin_of_a, field
):
    other = b.segment if field == "segments" else b.tag

    response = client.post(url("add", "action"), action_post(a, **{field: [str(other.pk)]}))

    assert response.status_code == 200
    errors = response.context["adminform"].form.errors[field]
    assert f"Select a valid choice. {other.pk} is not one of the available choices." in errors
    assert not Action.objects.filter(name="Refund an order").exists()


def test_another_organizations_segment_cannot_be_added_to_an_own_action(
    client, a, b, support_admin_of_a
):
    response = client.post(
        url("change", "action", a.action.pk),
        action_post(
            a, name=a.action.name, segments=[str(a.segment.pk), str(b.segment.pk)], pinned="on"
        ),
    )

    assert response.status_code == 200
    assert "segments" in response.context["adminform"].form.errors
    a.action.refresh_from_db()
    assert list(a.action.segments.all()) == [a.segment]
    assert a.action.pinned is False


def test_the_action_form_offers_only_own_segments_and_tags(client, a, b, support_admin_of_a):
    form = client.get(url("add", "action")).context["adminform"].form

    assert list(form.fields["segments"].queryset) == [a.segment]
    assert list(form.fields["tags"].queryset) == [a.tag]


def test_another_organizations_segment_cannot_be_picked_on_a_contact(
    client, a, b, support_admin_of_a
):
    response = client.post(
        url("add", "contact"),
        {"external_id": "cus_new", "attributes": "{}", "segments": [str(b.segment.pk)]},
    )

    assert response.status_code == 200
    assert "segments" in response.context["adminform"].form.errors
    assert not Contact.objects.filter(external_id="cus_new").exists()


@pytest.mark.parametrize(("field", "model"), [("segments", "segment"), ("tags", "tag")])
def test_the_autocomplete_returns_only_own_segments_and_tags(
    client, a, b, support_admin_of_a, field, model
):
    make_segment(b.organization, name="Alpha lookalike", slug="lookalike")
    make_tag(b.organization, name="alpha-lookalike")

    everything = client.get(
        "/admin/autocomplete/",
        {"app_label": "actions", "model_name": "action", "field_name": field, "term": ""},
    )
    searched = client.get(
        "/admin/autocomplete/",
        {"app_label": "actions", "model_name": "action", "field_name": field, "term": "alpha"},
    )

    own = getattr(a, model)
    assert everything.status_code == 200
    assert everything.json()["results"] == [{"id": str(own.pk), "text": str(own)}]
    assert searched.json()["results"] == [{"id": str(own.pk), "text": str(own)}]


def test_the_contact_segment_autocomplete_returns_only_own_segments(
    client, a, b, support_admin_of_a
):
    response = client.get(
        "/admin/autocomplete/",
        {"app_label": "actions", "model_name": "contact", "field_name": "segments", "term": ""},
    )

    assert [row["id"] for row in response.json()["results"]] == [str(a.segment.pk)]


def filter_choices(response, title: str) -> list[str]:
    spec = next(spec for spec in response.context["cl"].filter_specs if spec.title == title)
    return [label for _, label in spec.lookup_choices]


def test_the_filter_sidebars_list_only_own_tags_segments_and_sources(
    client, a, b, support_admin_of_a
):
    actions = client.get(url("changelist", "action"))
    contacts = client.get(url("changelist", "contact"))

    assert filter_choices(actions, "tag") == ["alpha-billing"]
    assert filter_choices(actions, "segment") == ["Alpha premium"]
    assert filter_choices(actions, "source") == ["Hand-authored", "OpenAPI: alpha-api"]
    assert filter_choices(contacts, "segment") == ["Alpha premium"]
    assert "Bravo" not in actions.content.decode()
    assert "bravo" not in actions.content.decode()


@pytest.mark.parametrize("param", ["tag", "segment", "source"])
def test_filtering_by_another_organizations_id_shows_nothing_of_theirs(
    client, a, b, support_admin_of_a, param
):
    other = {"tag": b.tag, "segment": b.segment, "source": b.source}[param]
    b.action.source = b.source
    b.action.save()

    response = client.get(url("changelist", "action"), {param: other.pk})

    assert listed(response) == []


@pytest.mark.parametrize(
    ("bulk_action", "extra", "field", "unchanged", "message"),
    [
        ("pin_selected", {}, "pinned", False, "Pinned 0 actions."),
        ("unpin_selected", {}, "pinned", True, "Unpinned 0 actions."),
        (
            "enable_channel_on_selected",
            {"channel": "sms"},
            "on_sms",
            False,
            "Enabled SMS on 0 actions.",
        ),
        (
            "disable_channel_on_selected",
            {"channel": "widget"},
            "on_widget",
            True,
            "Disabled Widget on 0 actions.",
        ),
    ],
)
def test_bulk_actions_posted_with_another_organizations_ids_change_nothing_of_theirs(
    client, a, b, support_admin_of_a, bulk_action, extra, field, unchanged, message
):
    Action.objects.filter(pk=b.action.pk).update(**{field: unchanged})
    response = client.post(
        url("changelist", "action"),
        {"action": bulk_action, "_selected_action": [str(b.action.pk)], "index": "0", **extra},
    )

    assert response.status_code == 302
    b.action.refresh_from_db()
    assert getattr(b.action, field) is unchanged
    # The ids of another organization are ignored, exactly like ids that do not exist.
    assert [m.message for m in get_messages(response.wsgi_request)] == [message]


def test_delete_selected_with_another_organizations_ids_deletes_nothing_of_theirs(
    client, a, b, support_admin_of_a
):
    response = client.post(
        url("changelist", "action"),
        {
            "action": "delete_selected",
            "_selected_action": [str(a.action.pk), str(b.action.pk)],
            "post": "yes",
        },
    )

    assert response.status_code == 302
    assert list(Action.objects.all()) == [b.action]


def test_a_bulk_action_over_both_organizations_changes_only_own_actions(
    client, a, b, support_admin_of_a
):
    response = client.post(
        url("changelist", "action"),
        {
            "action": "pin_selected",
            "_selected_action": [str(a.action.pk), str(b.action.pk)],
            "index": "0",
        },
    )

    assert [m.message for m in get_messages(response.wsgi_request)] == ["Pinned 1 action."]
    assert list(Action.objects.filter(pinned=True)) == [a.action]


def test_a_bulk_action_across_all_pages_changes_only_own_actions(client, a, b, support_admin_of_a):
    client.post(
        url("changelist", "action"),
        {
            "action": "pin_selected",
            "_selected_action": [str(a.action.pk)],
            "select_across": "1",
            "index": "0",
        },
    )

    assert list(Action.objects.filter(pinned=True)) == [a.action]


@pytest.mark.parametrize("model", ["user", "organization"])
def test_a_support_admin_cannot_see_users_or_organizations(client, a, b, support_admin_of_a, model):
    assert client.get(url("changelist", model)).status_code == 403


def test_the_dashboard_index_offers_a_support_admin_only_their_own_models(
    client, a, b, support_admin_of_a
):
    app_list = client.get(reverse("admin:index")).context["app_list"]

    assert [(app["name"], [m["object_name"] for m in app["models"]]) for app in app_list] == [
        ("Actions", ["OrganizationAPIKey", "Action", "Contact", "Segment", "Tag"]),
        ("Execution", ["Execution", "FormSubmission", "GlobalVariable"]),
        ("OpenAPI import", ["SpecImport"]),
    ]


# Superusers


@pytest.fixture
def superuser(client, a, b):
    user = make_superuser()
    client.force_login(user)
    return user


@pytest.mark.parametrize("model", MODELS)
def test_a_superuser_sees_both_organizations_and_the_organization_column(
    client, a, b, superuser, model
):
    response = client.get(url("changelist", model))

    assert sorted(obj.pk for obj in listed(response)) == sorted(
        [getattr(a, model).pk, getattr(b, model).pk]
    )
    assert "organization" in response.context["cl"].list_display
    assert "organization" in [
        spec.field_path for spec in response.context["cl"].filter_specs if hasattr(spec, "field")
    ]
    assert client.get(url("change", model, getattr(b, model).pk)).status_code == 200


def test_a_superuser_picks_the_organization_of_a_new_action(client, a, b, superuser):
    response = client.post(
        url("add", "action"), action_post(b, organization=str(b.organization.pk))
    )

    assert response.status_code == 302
    created = Action.objects.get(name="Refund an order")
    assert created.organization == b.organization
    assert list(created.segments.all()) == [b.segment]


@pytest.mark.parametrize(
    ("model", "data"),
    [
        ("action", action_form()),
        ("tag", {"name": "billing"}),
        ("segment", {"name": "VIP", "slug": "vip"}),
    ],
)
def test_a_superuser_who_picks_no_organization_is_asked_for_one(
    client, a, b, superuser, model, data
):
    before = type(getattr(a, model)).objects.count()

    response = client.post(url("add", model), data)

    assert response.status_code == 200
    assert response.context["adminform"].form.errors["organization"] == ["This field is required."]
    assert type(getattr(a, model)).objects.count() == before


def test_a_superuser_cannot_give_an_action_another_organizations_segment(client, a, b, superuser):
    response = client.post(
        url("add", "action"),
        action_post(a, organization=str(a.organization.pk), segments=[str(b.segment.pk)]),
    )

    assert response.status_code == 200
    assert response.context["adminform"].form.errors["segments"] == [
        "“Bravo premium” belongs to another organization; pick one of Alpha's own."
    ]
    assert not Action.objects.filter(name="Refund an order").exists()


def test_a_superuser_cannot_move_an_existing_action_to_another_organization(
    client, a, b, superuser
):
    """Moving it would leave its tags, segments and rows pointing across organizations."""
    page = client.get(url("change", "action", a.action.pk))
    assert "organization" not in page.context["adminform"].form.fields

    response = client.post(
        url("change", "action", a.action.pk),
        action_post(a, name=a.action.name, organization=str(b.organization.pk), segments=[]),
    )

    assert response.status_code == 302
    a.action.refresh_from_db()
    assert a.action.organization == a.organization


def test_a_superuser_moving_a_segment_is_ignored_too(client, a, b, superuser):
    client.post(
        url("change", "segment", a.segment.pk),
        {
            "organization": str(b.organization.pk),
            "name": a.segment.name,
            "slug": a.segment.slug,
            "description": "",
        },
    )
    a.segment.refresh_from_db()
    assert a.segment.organization == a.organization


def test_a_superuser_cannot_give_a_contact_another_organizations_segment(client, a, b, superuser):
    response = client.post(
        url("add", "contact"),
        {
            "organization": str(a.organization.pk),
            "external_id": "cus_new",
            "attributes": "{}",
            "segments": [str(b.segment.pk)],
        },
    )

    assert response.status_code == 200
    assert "belongs to another organization" in str(
        response.context["adminform"].form.errors["segments"]
    )
    assert not Contact.objects.filter(external_id="cus_new").exists()


# Staff without an organization


@pytest.fixture
def staff_without_organization(client, a, b):
    user = make_user(organization=None)
    user.organization = None  # the factory makes an organization when given none
    user.save()
    client.force_login(user)
    return user


def test_staff_without_an_organization_sees_an_empty_dashboard(
    client, a, b, staff_without_organization
):
    response = client.get(reverse("admin:index"))

    assert response.status_code == 200
    assert response.context["app_list"] == []
    assert "You don’t have permission to view or edit anything." in response.content.decode()


@pytest.mark.parametrize("model", MODELS)
def test_staff_without_an_organization_cannot_list_or_add(
    client, a, b, staff_without_organization, model
):
    assert client.get(url("changelist", model)).status_code == 403
    assert client.get(url("add", model)).status_code == 403


@pytest.mark.parametrize("model", MODELS)
def test_staff_without_an_organization_cannot_open_any_object(
    client, a, b, staff_without_organization, model
):
    assert client.get(url("change", model, getattr(a, model).pk)).status_code == 404


def test_staff_without_an_organization_gets_nothing_from_the_autocomplete(
    client, a, b, staff_without_organization
):
    response = client.get(
        "/admin/autocomplete/",
        {"app_label": "actions", "model_name": "action", "field_name": "segments", "term": ""},
    )

    assert response.status_code == 403
