"""Global variables: encrypted at rest, write-only, bound to hosts, rotatable, failing closed."""

from io import StringIO

import pytest
from cryptography.fernet import Fernet
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection

from execution import secrets
from execution.models import GlobalVariable
from tests.factories import make_organization, make_user

pytestmark = pytest.mark.django_db

CANARY = "sk_live_CANARY_4f1b2c9d7e"


def make_variable(organization=None, name="STRIPE_KEY", value=CANARY, hosts="api.stripe.com"):
    variable = GlobalVariable(
        organization=organization or make_organization(), name=name, hosts=hosts
    )
    variable.set_value(value)
    variable.full_clean()
    variable.save()
    return variable


def stored_ciphertext(variable) -> str:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT value_encrypted FROM execution_globalvariable WHERE id = %s", [variable.pk]
        )
        return cursor.fetchone()[0]


def test_the_value_is_encrypted_at_rest_and_revealed_only_on_request():
    variable = make_variable()
    assert CANARY not in stored_ciphertext(variable)
    assert GlobalVariable.objects.get(pk=variable.pk).reveal() == CANARY


def test_a_value_no_key_opens_fails_closed(settings):
    variable = make_variable()
    settings.SECRET_ENCRYPTION_KEYS = [Fernet.generate_key().decode()]
    with pytest.raises(secrets.SecretUnavailable):
        GlobalVariable.objects.get(pk=variable.pk).reveal()


def test_corrupt_ciphertext_fails_closed():
    variable = make_variable()
    GlobalVariable.objects.filter(pk=variable.pk).update(value_encrypted="gAAAAAB-not-a-token")
    with pytest.raises(secrets.SecretUnavailable):
        GlobalVariable.objects.get(pk=variable.pk).reveal()


def test_rotation_moves_every_secret_to_the_new_key_so_the_old_one_can_go(settings):
    old = settings.SECRET_ENCRYPTION_KEYS[0]
    first, second = make_variable(name="A_KEY"), make_variable(name="B_KEY", value="other")
    new = Fernet.generate_key().decode()
    settings.SECRET_ENCRYPTION_KEYS = [new, old]
    call_command("rotate_secrets", stdout=StringIO())
    settings.SECRET_ENCRYPTION_KEYS = [new]
    assert GlobalVariable.objects.get(pk=first.pk).reveal() == CANARY
    assert GlobalVariable.objects.get(pk=second.pk).reveal() == "other"
    assert {v.key_fingerprint for v in GlobalVariable.objects.all()} == {
        secrets.key_fingerprint(new)
    }


def test_rotation_reports_a_secret_it_cannot_open_and_fails(settings):
    make_variable()
    settings.SECRET_ENCRYPTION_KEYS = [Fernet.generate_key().decode()]
    with pytest.raises(CommandError, match="could not be decrypted"):
        call_command("rotate_secrets", stdout=StringIO(), stderr=StringIO())


def test_a_malformed_key_setting_is_a_configuration_error(settings):
    from django.core.exceptions import ImproperlyConfigured

    settings.SECRET_ENCRYPTION_KEYS = ["not-a-fernet-key"]
    with pytest.raises(ImproperlyConfigured, match="not a Fernet key"):
        secrets.encrypt("x")


@pytest.mark.parametrize(
    ("host", "allowed"),
    [
        ("api.stripe.com", True),
        ("API.Stripe.com.", True),
        ("evil.com", False),
        ("api.stripe.com.evil.com", False),
        ("x.api.stripe.com", False),
    ],
)
def test_a_secret_goes_only_to_the_hosts_it_is_bound_to(host, allowed):
    variable = GlobalVariable(name="STRIPE_KEY", hosts="api.stripe.com")
    assert variable.may_be_sent_to(host) is allowed


@pytest.mark.parametrize(
    ("name", "hosts", "field"),
    [
        ("stripe key", "api.stripe.com", "name"),
        ("1KEY", "api.stripe.com", "name"),
        ("KEY", "", "hosts"),
        ("KEY", "https://api.stripe.com", "hosts"),
        ("KEY", "api.stripe.com:443", "hosts"),
        ("KEY", "api.stripe.com/v1", "hosts"),
    ],
)
def test_names_and_host_patterns_are_checked(name, hosts, field):
    variable = GlobalVariable(organization=make_organization(), name=name, hosts=hosts)
    variable.set_value("x")
    with pytest.raises(ValidationError) as refused:
        variable.full_clean()
    assert field in refused.value.error_dict


# --- the dashboard: write-only, scoped --------------------------------------------------


def test_the_dashboard_never_shows_a_saved_value(client):
    org = make_organization()
    client.force_login(make_user(org))
    response = client.post(
        "/admin/execution/globalvariable/add/",
        {"name": "STRIPE_KEY", "value": CANARY, "hosts": "api.stripe.com"},
        follow=True,
    )
    assert response.status_code == 200
    variable = GlobalVariable.objects.get(organization=org)
    assert variable.reveal() == CANARY
    for url in [
        "/admin/execution/globalvariable/",
        f"/admin/execution/globalvariable/{variable.pk}/change/",
        f"/admin/execution/globalvariable/{variable.pk}/history/",
    ]:
        page = client.get(url)
        assert page.status_code == 200
        assert CANARY not in page.content.decode()
        assert variable.value_encrypted not in page.content.decode()


def test_saving_with_an_empty_value_keeps_the_secret(client):
    org = make_organization()
    variable = make_variable(org)
    client.force_login(make_user(org))
    client.post(
        f"/admin/execution/globalvariable/{variable.pk}/change/",
        {"name": "STRIPE_KEY", "value": "", "hosts": "api.stripe.com\nuploads.stripe.com"},
    )
    variable.refresh_from_db()
    assert variable.reveal() == CANARY
    assert variable.host_patterns == ["api.stripe.com", "uploads.stripe.com"]


def test_binding_a_secret_to_any_host_warns(client):
    org = make_organization()
    client.force_login(make_user(org))
    response = client.post(
        "/admin/execution/globalvariable/add/",
        {"name": "ANY_KEY", "value": "v", "hosts": "*"},
        follow=True,
    )
    assert "may be sent to any host" in response.content.decode()


def test_another_organizations_variable_is_a_404(client):
    theirs = make_variable(make_organization())
    client.force_login(make_user(make_organization()))
    assert client.get(f"/admin/execution/globalvariable/{theirs.pk}/change/").status_code == 404
    assert "STRIPE_KEY" not in client.get("/admin/execution/globalvariable/").content.decode()
