"""`manage.py seed_demo`: a living dashboard for a new user, safe to run again."""

import re
from io import StringIO

import pytest
from django.core.management import call_command
from django.urls import reverse

from actions.models import (
    Action,
    ActionHeader,
    ActionParameter,
    Contact,
    Organization,
    Segment,
    Tag,
    User,
)

pytestmark = pytest.mark.django_db

MODELS = [Organization, User, Segment, Contact, Tag, Action, ActionHeader, ActionParameter]


@pytest.fixture(autouse=True)
def _no_demo_password_from_the_environment(monkeypatch):
    monkeypatch.delenv("DEMO_PASSWORD", raising=False)


def seed(*args: str) -> tuple[str, str]:
    """Run the command; return its output and the password it printed."""
    out = StringIO()
    call_command("seed_demo", *args, stdout=out)
    output = out.getvalue()
    match = re.search(r"Password:\s+(\S+)", output)
    assert match, output
    return output, match.group(1)


def counts() -> dict[str, int]:
    return {model.__name__: model.objects.count() for model in MODELS}


def test_seed_demo_creates_a_demo_organization_with_an_admin_segments_and_actions():
    output, _ = seed()

    organization = Organization.objects.get(slug="demo")
    admin = User.objects.get(username="demo-admin")
    assert admin.organization == organization
    assert admin.is_support_admin
    assert not admin.is_superuser
    assert "Sign in as: demo-admin" in output
    assert set(Segment.objects.values_list("slug", flat=True)) == {"premium", "beta"}
    actions = Action.objects.filter(organization=organization)
    assert actions.count() >= 5
    assert actions.filter(pinned=True).exists()
    assert ActionHeader.objects.filter(kind="magic").exists()
    for action in actions:
        action.full_clean()  # the demo obeys every rule a user's action does


def test_running_seed_demo_twice_creates_nothing_new():
    seed()
    first = counts()

    seed()

    assert counts() == first
    assert first["Organization"] == 1
    assert first["User"] == 1


def test_running_seed_demo_again_restores_an_edited_demo_action():
    seed()
    action = Action.objects.get(name="Look up an order")
    action.pinned = False
    action.save()
    action.headers.all().delete()

    seed()

    action.refresh_from_db()
    assert action.pinned is True
    assert [h.key for h in action.headers.order_by("id")] == ["Authorization", "X-Customer-Email"]
    assert Action.objects.filter(name="Look up an order").count() == 1


def test_the_printed_credentials_sign_in_to_the_demo_dashboard(client):
    _, password = seed()

    assert len(password) >= 12
    assert client.login(username="demo-admin", password=password)
    response = client.get(reverse("admin:actions_action_changelist"))
    assert response.status_code == 200
    names = [action.name for action in response.context["cl"].result_list]
    assert names[0] == "Look up an order"  # pinned first
    assert sorted(names) == sorted(Action.objects.values_list("name", flat=True))


def test_running_again_prints_a_new_password_and_only_that_one_works(client):
    _, first = seed()
    _, second = seed()

    assert first != second
    assert not client.login(username="demo-admin", password=first)
    assert client.login(username="demo-admin", password=second)


def test_a_chosen_password_is_used_and_printed(client):
    _, printed = seed("--password", "correct-horse-battery-staple")

    assert printed == "correct-horse-battery-staple"
    assert client.login(username="demo-admin", password="correct-horse-battery-staple")


def test_the_password_can_come_from_the_environment(client, monkeypatch):
    monkeypatch.setenv("DEMO_PASSWORD", "from-the-environment-42")

    _, printed = seed()

    assert printed == "from-the-environment-42"
    assert client.login(username="demo-admin", password="from-the-environment-42")


def test_seed_demo_leaves_other_organizations_alone():
    other = Organization.objects.create(name="Acme", slug="acme")
    Segment.objects.create(organization=other, name="Premium", slug="premium")

    seed()
    seed()

    assert Segment.objects.filter(organization=other).count() == 1
    assert Action.objects.filter(organization=other).count() == 0
