"""`manage.py create_api_key`: prints a working key once, refuses what it cannot make."""

from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from actions.models import OrganizationAPIKey
from tests.factories import make_organization

pytestmark = pytest.mark.django_db


def create_api_key(*args: str) -> tuple[str, str]:
    stdout, stderr = StringIO(), StringIO()
    call_command("create_api_key", *args, stdout=stdout, stderr=stderr)
    return stdout.getvalue(), stderr.getvalue()


def test_it_prints_only_the_key_on_stdout_and_the_key_works(client):
    org = make_organization(slug="acme")

    stdout, stderr = create_api_key("--org", "acme", "--name", "runtime")

    raw = stdout.strip()
    assert stdout == raw + "\n"
    assert raw.startswith("ocx_")
    key = OrganizationAPIKey.objects.get_from_key(raw)
    assert (key.organization, key.name, key.scopes, key.expiry_date) == (
        org,
        "runtime",
        "tools",
        None,
    )
    assert raw not in stderr
    assert key.prefix in stderr
    response = client.get("/api/v1/tools?channel=widget", HTTP_AUTHORIZATION=f"Bearer {raw}")
    assert response.status_code == 200


def test_each_run_makes_a_new_key(client):
    make_organization(slug="acme")

    first, _ = create_api_key("--org", "acme", "--name", "ci")
    second, _ = create_api_key("--org", "acme", "--name", "ci")

    assert first != second
    assert OrganizationAPIKey.objects.count() == 2


def test_scopes_can_be_repeated():
    make_organization(slug="acme")

    stdout, _ = create_api_key(
        "--org", "acme", "--name", "ci", "--scope", "actions:write", "--scope", "specs:import"
    )

    key = OrganizationAPIKey.objects.get_from_key(stdout.strip())
    assert key.scope_set == {"actions:write", "specs:import"}


def test_expiry_in_days():
    make_organization(slug="acme")

    stdout, _ = create_api_key("--org", "acme", "--name", "ci", "--expires-in-days", "30")

    key = OrganizationAPIKey.objects.get_from_key(stdout.strip())
    expected = timezone.now() + timedelta(days=30)
    assert abs(key.expiry_date - expected) < timedelta(minutes=1)


def test_an_unknown_organization_is_refused_with_the_valid_slugs():
    make_organization(slug="acme")
    make_organization(slug="globex")

    with pytest.raises(CommandError) as error:
        create_api_key("--org", "initech", "--name", "ci")

    assert str(error.value) == "No organization with slug “initech”. Valid slugs: acme, globex."
    assert OrganizationAPIKey.objects.count() == 0


def test_an_unknown_scope_is_refused_with_the_valid_scopes():
    make_organization(slug="acme")

    with pytest.raises(CommandError) as error:
        create_api_key("--org", "acme", "--name", "ci", "--scope", "tools", "--scope", "admin")

    message = str(error.value)
    assert message.startswith("Unknown scope admin. Valid scopes: tools, actions:read,")
    assert "contacts:write" in message
    assert OrganizationAPIKey.objects.count() == 0


@pytest.mark.parametrize("days", ["0", "-3"])
def test_a_non_positive_expiry_is_refused(days):
    make_organization(slug="acme")

    with pytest.raises(CommandError, match="--expires-in-days"):
        create_api_key("--org", "acme", "--name", "ci", "--expires-in-days", days)

    assert OrganizationAPIKey.objects.count() == 0


def test_a_name_too_long_for_the_model_is_refused():
    make_organization(slug="acme")

    with pytest.raises(CommandError, match="name: Ensure this value has at most 50 characters"):
        create_api_key("--org", "acme", "--name", "x" * 51)

    assert OrganizationAPIKey.objects.count() == 0
