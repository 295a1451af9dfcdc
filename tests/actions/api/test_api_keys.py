"""Organization API keys on the wire: Bearer only, hashed at rest, 401 vs 403."""

import hashlib
import threading
from datetime import timedelta
from unittest import mock

import pytest
from django.core.cache import cache
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from actions import state
from actions.api import auth
from actions.models import OrganizationAPIKey
from actions.tool_list import local_renderings
from tests.factories import make_action, make_organization, make_user

pytestmark = pytest.mark.django_db

TOOLS = "/api/v1/tools?channel=widget"


@pytest.fixture(autouse=True)
def _fresh_caches():
    cache.clear()
    local_renderings.clear()


@pytest.fixture
def org():
    organization = make_organization()
    make_action(organization, name="Look up an order")
    return organization


def make_key(organization, scopes: str = "tools contacts:write", **fields):
    return OrganizationAPIKey.objects.create_key(
        organization=organization, name="ci", scopes=scopes, **fields
    )


def get_tools(client, authorization: str | None):
    headers = {} if authorization is None else {"HTTP_AUTHORIZATION": authorization}
    return client.get(TOOLS, **headers)


def test_a_valid_key_lists_its_organizations_tools(client, org):
    _, raw = make_key(org)

    response = get_tools(client, f"Bearer {raw}")

    assert response.status_code == 200, response.content
    assert [tool["function"]["name"] for tool in response.json()["tools"]] == ["look_up_an_order"]


def test_a_missing_key_is_401_with_a_bearer_challenge(client, org):
    response = get_tools(client, None)

    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.parametrize("header", ["Bearer", "Bearer two parts", "Bearer \u00e9t\u00e9"])
def test_a_malformed_authorization_header_is_401(client, org, header):
    response = get_tools(client, header)

    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_another_authorization_scheme_is_401(client, org):
    _, raw = make_key(org)

    response = get_tools(client, f"Token {raw}")

    assert response.status_code == 401


def test_a_wrong_key_is_401(client, org):
    _, raw = make_key(org)
    prefix, _, secret = raw.partition(".")
    tampered = f"{prefix}.{'x' * len(secret)}"

    for key in [tampered, "ocx_nothere.secret", "garbage"]:
        response = get_tools(client, f"Bearer {key}")
        assert response.status_code == 401, key


def test_a_revoked_key_is_401_on_the_next_request(client, org):
    key, raw = make_key(org)
    assert get_tools(client, f"Bearer {raw}").status_code == 200

    key.revoked = True
    key.save()

    response = get_tools(client, f"Bearer {raw}")
    assert response.status_code == 401
    assert "revoked" in response.json()["detail"]


def test_an_expired_key_is_401(client, org):
    _, raw = make_key(org, expiry_date=timezone.now() - timedelta(seconds=1))

    response = get_tools(client, f"Bearer {raw}")

    assert response.status_code == 401
    assert response.json()["detail"] == "This API key has expired."


def test_a_key_that_expires_later_works(client, org):
    _, raw = make_key(org, expiry_date=timezone.now() + timedelta(days=1))

    assert get_tools(client, f"Bearer {raw}").status_code == 200


def test_a_key_without_the_scope_is_403_and_names_the_scope(client, org):
    _, raw = make_key(org, scopes="actions:read contacts:write")

    response = get_tools(client, f"Bearer {raw}")

    assert response.status_code == 403
    assert "“tools”" in response.json()["detail"]


def test_a_dashboard_session_does_not_authenticate_the_api(client, org):
    client.force_login(make_user(organization=org))

    assert get_tools(client, None).status_code == 401


def _last_used(key: OrganizationAPIKey):
    return OrganizationAPIKey.objects.values_list("last_used_at", flat=True).get(pk=key.pk)


def _key_updates(queries) -> list[str]:
    return [
        q["sql"]
        for q in queries
        if q["sql"].startswith("UPDATE") and "actions_organizationapikey" in q["sql"]
    ]


def test_last_used_at_is_written_at_most_once_a_minute(client, org, monkeypatch):
    key, raw = make_key(org)
    assert _last_used(key) is None

    assert get_tools(client, f"Bearer {raw}").status_code == 200
    first = _last_used(key)
    assert first is not None

    with CaptureQueriesContext(connection) as queries:
        assert get_tools(client, f"Bearer {raw}").status_code == 200
    assert _key_updates(queries) == []
    assert _last_used(key) == first

    # 59 seconds later (on this process's clock, which remembers the last write):
    # still no write.
    with monkeypatch.context() as later:
        later.setattr(auth.timezone, "now", lambda: first + timedelta(seconds=59))
        assert get_tools(client, f"Bearer {raw}").status_code == 200
    assert _last_used(key) == first

    # More than a minute later: recorded again.
    with monkeypatch.context() as later:
        later.setattr(auth.timezone, "now", lambda: first + timedelta(seconds=61))
        assert get_tools(client, f"Bearer {raw}").status_code == 200
    assert _last_used(key) == first + timedelta(seconds=61)


def test_an_expired_key_is_not_marked_used(client, org):
    key, raw = make_key(org, expiry_date=timezone.now() - timedelta(seconds=1))

    assert get_tools(client, f"Bearer {raw}").status_code == 401

    assert _last_used(key) is None


def test_the_key_is_stored_hashed(client, org):
    _, raw = make_key(org)
    assert raw.startswith("ocx_")
    prefix, _, secret = raw.removeprefix("ocx_").partition(".")
    assert len(secret) >= 32

    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM actions_organizationapikey WHERE prefix = %s", [prefix])
        columns = [column[0] for column in cursor.description]
        (row,) = cursor.fetchall()

    stored = dict(zip(columns, row, strict=True))
    assert stored["hashed_key"].startswith("sha512$$")
    for column, value in stored.items():
        assert secret not in str(value), column
        assert raw not in str(value), column


# --- keys this process remembers are checked against the organization's stamp --------


def test_a_remembered_key_loses_a_scope_on_the_next_request(client, org):
    key, raw = make_key(org)
    assert get_tools(client, f"Bearer {raw}").status_code == 200

    key.scopes = "contacts:write"
    key.save()

    assert get_tools(client, f"Bearer {raw}").status_code == 403


def test_a_remembered_key_given_a_past_expiry_is_401_on_the_next_request(client, org):
    key, raw = make_key(org)
    assert get_tools(client, f"Bearer {raw}").status_code == 200

    key.expiry_date = timezone.now() - timedelta(seconds=1)
    key.save()

    assert get_tools(client, f"Bearer {raw}").status_code == 401


def test_a_remembered_key_of_a_deleted_organization_is_401(client, org):
    _, raw = make_key(org)
    assert get_tools(client, f"Bearer {raw}").status_code == 200

    org.delete()

    assert get_tools(client, f"Bearer {raw}").status_code == 401


def test_a_remembered_key_is_read_again_once_the_shared_stamp_is_gone(
    client, org, django_assert_num_queries
):
    _, raw = make_key(org)
    get_tools(client, f"Bearer {raw}")
    with django_assert_num_queries(0):
        assert get_tools(client, f"Bearer {raw}").status_code == 200

    # Redis restarted empty: the stamp is seeded afresh, nothing is trusted. (A restart
    # also ends every process's subscription, which drops the stamps they keep.)
    cache.clear()
    state.forget_local()

    with CaptureQueriesContext(connection) as queries:
        assert get_tools(client, f"Bearer {raw}").status_code == 200
    assert any("actions_organizationapikey" in q["sql"] for q in queries)


def test_a_revocation_reaches_a_process_that_remembers_the_key(client, org):
    """This process revokes the key in bulk: it still remembers the key verified, but
    the revocation renewed the stamp, which this process then forgets at once."""
    key, raw = make_key(org)
    assert get_tools(client, f"Bearer {raw}").status_code == 200
    digest = hashlib.sha256(raw.encode()).digest()
    assert auth.verified_keys.get(digest) is not None

    # What the key list's bulk revoke does (no signal; the queryset renews the stamp).
    OrganizationAPIKey.objects.filter(pk=key.pk).update(revoked=True)

    assert get_tools(client, f"Bearer {raw}").status_code == 401
    assert auth.verified_keys.get(digest) is None


def test_head_needs_the_scope_get_needs_and_answers_like_get(client, org):
    _, raw = make_key(org)
    _, other = make_key(org, scopes="contacts:write")

    head = client.head(TOOLS, HTTP_AUTHORIZATION=f"Bearer {raw}")
    assert head.status_code == 200
    assert head.content == b""
    assert head.headers["ETag"] == get_tools(client, f"Bearer {raw}").headers["ETag"]
    assert client.head(TOOLS, HTTP_AUTHORIZATION=f"Bearer {other}").status_code == 403


def test_options_describes_the_endpoint_to_any_valid_key_only(client, org):
    _, raw = make_key(org, scopes="contacts:write")

    assert client.options(TOOLS, HTTP_AUTHORIZATION=f"Bearer {raw}").status_code == 200
    assert client.options(TOOLS).status_code == 401


def test_a_revocation_made_by_another_process_reaches_this_one_by_its_announcement(
    client, org, monkeypatch
):
    """The revoking process sets the new stamp and announces it over Redis pub/sub;
    this one drops its copy when the message arrives (well within the second a copy
    may be trusted without one)."""
    from django.core.cache import caches
    from django.core.cache.backends.redis import RedisCache

    from tests.actions.test_state import live_watcher, wait_until

    if not isinstance(caches["default"], RedisCache):
        pytest.skip("processes share stamps through Redis (CI runs the cache on Redis)")
    monkeypatch.setattr(state, "STAMP_TRUST_SECONDS", 60.0)  # only the message can tell
    watcher = live_watcher(caches["default"])
    key, raw = make_key(org)
    assert get_tools(client, f"Bearer {raw}").status_code == 200

    # The write as another process makes it: announced under its own name, and
    # without the writing thread forgetting anything here (the watcher still does).
    writer = threading.current_thread()
    real_forget = watcher.forget

    def forget(key):
        if threading.current_thread() is not writer:
            real_forget(key)

    with (
        mock.patch.object(watcher, "token", "another-process"),
        mock.patch.object(watcher, "forget", forget),
    ):
        OrganizationAPIKey.objects.filter(pk=key.pk).update(revoked=True)

    assert wait_until(lambda: get_tools(client, f"Bearer {raw}").status_code == 401)
