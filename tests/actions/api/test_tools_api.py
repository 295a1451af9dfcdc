"""GET /api/v1/tools: the runtime sees exactly what this contact may use, on this channel."""

import json
from itertools import count
from unittest import mock

import pytest
from django.core.cache import cache
from django.db.models import ProtectedError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rest_framework.views import APIView

from actions.models import (
    Action,
    ActionHeader,
    Channel,
    Contact,
    Organization,
    OrganizationAPIKey,
    Segment,
    ValueKind,
)
from actions.tool_list import local_renderings
from tests.factories import make_action, make_contact, make_organization, make_segment

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fresh_caches():
    cache.clear()
    local_renderings.clear()


def make_key(organization: Organization, scopes: str = "tools") -> str:
    _, raw = OrganizationAPIKey.objects.create_key(
        organization=organization, name="runtime", scopes=scopes
    )
    return raw


def get_tools(client, key: str, *, headers: dict | None = None, **params):
    params.setdefault("channel", "widget")
    return client.get(
        "/api/v1/tools", params, HTTP_AUTHORIZATION=f"Bearer {key}", headers=headers or {}
    )


def tool_names(response, fmt: str = "openai") -> list[str]:
    assert response.status_code == 200, response.content
    body = json.loads(response.content)
    if fmt == "openai":
        return [entry["function"]["name"] for entry in body["tools"]]
    if fmt == "gemini":
        return [entry["name"] for entry in body["tools"][0]["functionDeclarations"]]
    return [entry["name"] for entry in body["tools"]]


# --- authentication and parameters ----------------------------------------------------


def test_a_request_without_a_key_is_401_with_the_bearer_challenge(client):
    response = client.get("/api/v1/tools", {"channel": "widget"})
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_a_key_without_the_tools_scope_is_403_and_names_the_scope(client):
    key = make_key(make_organization(), scopes="actions:read")
    response = get_tools(client, key)
    assert response.status_code == 403
    assert "“tools” scope" in response.json()["detail"]


def test_an_unknown_channel_is_400_listing_the_valid_ones(client):
    response = get_tools(client, make_key(make_organization()), channel="web")
    assert response.status_code == 400
    message = response.json()["channel"][0]
    assert "web" in message
    for channel in Channel.values:
        assert channel in message


def test_a_missing_channel_is_400(client):
    response = client.get(
        "/api/v1/tools", HTTP_AUTHORIZATION=f"Bearer {make_key(make_organization())}"
    )
    assert response.status_code == 400
    assert "channel" in response.json()


def test_an_unknown_format_is_400_listing_the_valid_ones(client):
    response = get_tools(client, make_key(make_organization()), format="llama")
    assert response.status_code == 400
    assert "openai, anthropic, gemini, mcp" in response.json()["format"][0]


# --- what is listed ----------------------------------------------------------------------


def test_only_actions_enabled_on_the_channel_are_listed(client):
    org = make_organization()
    widget = make_action(org, name="Look up an order")
    sms = make_action(org, name="Text a receipt", on_widget=False, on_sms=True)
    key = make_key(org)
    assert tool_names(get_tools(client, key, channel="widget")) == [widget.tool_name]
    assert tool_names(get_tools(client, key, channel="sms")) == [sms.tool_name]
    assert tool_names(get_tools(client, key, channel="slack")) == []


def test_a_restricted_action_reaches_members_of_any_of_its_segments_only(client):
    org = make_organization()
    premium, beta, other = make_segment(org), make_segment(org), make_segment(org)
    open_action = make_action(org, name="Search help articles")
    restricted = make_action(org, name="Book a repair", segments=(premium, beta))
    member = make_contact(org, segments=(beta,))
    outsider = make_contact(org, segments=(other,))
    key = make_key(org)

    assert set(tool_names(get_tools(client, key, contact=member.external_id))) == {
        open_action.tool_name,
        restricted.tool_name,
    }
    for contact in (outsider.external_id, "cus_unknown", ""):
        names = tool_names(get_tools(client, key, contact=contact))
        assert names == [open_action.tool_name]
    assert tool_names(get_tools(client, key)) == [open_action.tool_name]


def test_pinned_actions_come_first_then_by_name(client):
    org = make_organization()
    make_action(org, name="Cancel subscription")
    make_action(org, name="Zap the cache", pinned=True)
    make_action(org, name="Book a repair")
    names = tool_names(get_tools(client, make_key(org)))
    assert names == ["zap_the_cache", "book_a_repair", "cancel_subscription"]


def test_another_organizations_actions_and_contacts_never_show(client):
    org_a, org_b = make_organization(), make_organization()
    segment_b = make_segment(org_b)
    make_action(org_b, name="Refund an order", segments=(segment_b,))
    make_action(org_b, name="Open to all of b")
    make_contact(org_b, external_id="cus_shared", segments=(segment_b,))
    mine = make_action(org_a, name="Look up an order")
    key_a = make_key(org_a)
    assert tool_names(get_tools(client, key_a, contact="cus_shared")) == [mine.tool_name]


def test_static_and_magic_values_never_reach_any_format(client):
    org = make_organization()
    action = make_action(org, name="Look up an order")
    ActionHeader.objects.create(
        action=action, key="Authorization", kind=ValueKind.STATIC, value="Bearer {{global.KEY}}"
    )
    ActionHeader.objects.create(
        action=action, key="X-Email", kind=ValueKind.MAGIC, value="contact.email"
    )
    key = make_key(org)
    for fmt in ("openai", "anthropic", "gemini", "mcp"):
        body = get_tools(client, key, format=fmt).content.decode()
        assert "order_id" in body
        for secret in ("global.KEY", "Authorization", "contact.email", "X-Email"):
            assert secret not in body, (fmt, secret)


# --- caching, ETags, invalidation ------------------------------------------------------------


def test_an_unchanged_list_answers_304_to_its_etag(client):
    org = make_organization()
    make_action(org)
    key = make_key(org)
    first = get_tools(client, key)
    etag = first.headers["ETag"]
    again = get_tools(client, key, headers={"If-None-Match": etag})
    assert again.status_code == 304
    assert again.content == b""
    assert get_tools(client, key, headers={"If-None-Match": f'W/{etag}, "x"'}).status_code == 304
    other_format = get_tools(client, key, format="mcp", headers={"If-None-Match": etag})
    assert other_format.status_code == 200


def changed(client, key, contact, mutate) -> None:
    """Assert that `mutate` changes the next response and its ETag."""
    params = {"contact": contact} if contact else {}
    before = get_tools(client, key, **params)
    mutate()
    after = get_tools(client, key, **params)
    assert after.headers["ETag"] != before.headers["ETag"]
    assert after.content != before.content
    stale = get_tools(client, key, **params, headers={"If-None-Match": before["ETag"]})
    assert stale.status_code == 200


def test_each_kind_of_change_reaches_the_next_request(client):
    org = make_organization()
    premium = make_segment(org)
    action = make_action(org, name="Book a repair", segments=(premium,))
    other = make_action(org, name="Search help articles")
    contact = make_contact(org, segments=(premium,))
    key = make_key(org)
    cid = contact.external_id

    def edit_description():
        action.description = "Books a repair appointment at the nearest service point."
        action.save()

    changed(client, key, cid, edit_description)
    changed(client, key, cid, lambda: contact.segments.remove(premium))
    changed(client, key, cid, lambda: contact.segments.add(premium))
    changed(client, key, cid, lambda: Action.objects.filter(pk=other.pk).update(on_widget=False))
    changed(
        client,
        key,
        cid,
        lambda: ActionHeader.objects.create(
            action=action, key="X-Serial", kind=ValueKind.AI, description="Device serial"
        ),
    )
    # Lifting the restriction changes what an anonymous visitor sees.
    changed(client, key, None, lambda: action.segments.clear())
    changed(client, key, None, lambda: action.segments.add(premium))
    changed(client, key, cid, lambda: Contact.objects.filter(pk=contact.pk).delete())
    changed(client, key, None, lambda: action.segments.clear())
    changed(client, key, None, lambda: Action.objects.filter(pk=action.pk).delete())


def test_removing_a_contacts_segment_hides_the_restricted_action_at_once(client):
    org = make_organization()
    premium = make_segment(org)
    restricted = make_action(org, name="Book a repair", segments=(premium,))
    contact = make_contact(org, segments=(premium,))
    key = make_key(org)
    assert tool_names(get_tools(client, key, contact=contact.external_id)) == [restricted.tool_name]
    contact.segments.remove(premium)
    assert tool_names(get_tools(client, key, contact=contact.external_id)) == []


def test_another_organizations_change_leaves_this_list_cached(client):
    org_a, org_b = make_organization(), make_organization()
    make_action(org_a)
    key = make_key(org_a)
    etag = get_tools(client, key).headers["ETag"]
    make_action(org_b)
    assert get_tools(client, key, headers={"If-None-Match": etag}).status_code == 304


def test_query_count_is_flat_in_the_number_of_actions(client, django_assert_num_queries):
    org = make_organization()
    key = make_key(org)
    get_tools(client, key)  # records the key's first use (one write a minute at most)

    def cold_queries(n: int) -> int:
        for _ in range(n):
            make_action(org)
        cache.clear()
        local_renderings.clear()
        from django.db import connection
        from django.test.utils import CaptureQueriesContext

        with CaptureQueriesContext(connection) as captured:
            assert get_tools(client, key).status_code == 200
        return len(captured)

    assert cold_queries(3) == cold_queries(30)
    # Warm: no query at all (the key was verified under the organization's current
    # stamp, the rendering is cached).
    get_tools(client, key)
    with django_assert_num_queries(0):
        get_tools(client, key)
    # Warm for a known contact: still none (its segments are cached too).
    contact = make_contact(org)
    get_tools(client, key, contact=contact.external_id)
    with django_assert_num_queries(0):
        get_tools(client, key, contact=contact.external_id)


# --- the property: a restricted action never reaches an outsider ----------------------------

_orgs = count(1)


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    action_specs=st.lists(
        st.tuples(
            st.frozensets(st.integers(0, 3), max_size=3),  # segment restrictions
            st.frozensets(st.sampled_from(Channel.values), min_size=1, max_size=3),
        ),
        min_size=1,
        max_size=6,
    ),
    contact_segments=st.frozensets(st.integers(0, 3), max_size=3),
    channel=st.sampled_from(Channel.values),
    known_contact=st.booleans(),
)
def test_the_list_equals_the_oracle_for_random_organizations(
    client, action_specs, contact_segments, channel, known_contact
):
    cache.clear()
    local_renderings.clear()
    n = next(_orgs)
    org = Organization.objects.create(name=f"Prop {n}", slug=f"prop-{n}")
    segments = [
        Segment.objects.create(organization=org, name=f"S{i}", slug=f"s{i}") for i in range(4)
    ]
    expected = set()
    for index, (restricted_to, channels) in enumerate(action_specs):
        action = Action(
            organization=org,
            name=f"Action number {index}",
            description="Does a thing for the customer when they ask for it.",
            endpoint="https://api.example.com/v1/things",
        )
        action.channels = channels
        action.save()
        action.segments.set([segments[i] for i in restricted_to])
        member_segments = contact_segments if known_contact else frozenset()
        if channel in channels and (not restricted_to or restricted_to & member_segments):
            expected.add(action.tool_name)
    contact_id = "cus_prop"
    if known_contact:
        contact = Contact.objects.create(organization=org, external_id=contact_id)
        contact.segments.set([segments[i] for i in contact_segments])
    key = make_key(org)
    names = tool_names(get_tools(client, key, channel=channel, contact=contact_id))
    assert len(names) == len(set(names))
    assert set(names) == expected


def test_a_segment_that_restricts_actions_cannot_be_deleted(client):
    """Deleting it would drop the restriction and open the action to every contact."""
    org = make_organization()
    premium = make_segment(org)
    restricted = make_action(org, name="Book a repair", segments=(premium,))
    with pytest.raises(ProtectedError) as refused:
        premium.delete()
    assert "“Book a repair”" in str(refused.value)
    with pytest.raises(ProtectedError):
        Segment.objects.filter(pk=premium.pk).delete()
    assert tool_names(get_tools(client, make_key(org))) == []
    restricted.segments.clear()
    premium.delete()
    assert tool_names(get_tools(client, make_key(org))) == [restricted.tool_name]


def test_deleting_a_segment_that_restricts_nothing_updates_its_members_lists(client):
    org = make_organization()
    beta = make_segment(org)
    contact = make_contact(org, segments=(beta,))
    make_action(org)
    key = make_key(org)
    etag = get_tools(client, key, contact=contact.external_id).headers["ETag"]
    beta.delete()
    assert get_tools(client, key, contact=contact.external_id).headers["ETag"] != etag


def test_deleting_an_organization_takes_its_segments_and_actions_together():
    org = make_organization()
    premium = make_segment(org)
    make_action(org, segments=(premium,))
    org.delete()
    assert not Segment.objects.filter(pk=premium.pk).exists()


def test_deleting_a_source_with_many_actions_renews_the_lists_once(client):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from actions.models import SpecSource

    org = make_organization()
    source = SpecSource.objects.create(organization=org, name="big")
    for _ in range(20):
        make_action(org, source=source)
    key = make_key(org)
    etag = get_tools(client, key).headers["ETag"]
    with CaptureQueriesContext(connection) as captured:
        source.delete()
    bumps = [q for q in captured if q["sql"].startswith("UPDATE") and "tools_version" in q["sql"]]
    assert len(bumps) == 1
    assert get_tools(client, key).headers["ETag"] != etag
    assert tool_names(get_tools(client, key)) == []


@pytest.mark.parametrize("fmt", ["openai", "anthropic", "gemini", "mcp"])
def test_a_schema_with_an_integer_past_64_bits_still_renders(client, fmt):
    # JSON allows any integer; the fast JSON library does not, and must not cost a 500.
    org = make_organization()
    make_action(
        org,
        method="POST",
        body_schema={
            "type": "object",
            "properties": {"amount": {"type": "integer", "maximum": 2**70}},
        },
    )

    response = get_tools(client, make_key(org), format=fmt)

    assert response.status_code == 200
    assert str(2**70) in response.content.decode()


def test_the_plain_request_is_answered_without_drfs_request_machinery(client):
    org = make_organization()
    make_action(org)
    key = make_key(org)
    expected = get_tools(client, key)
    answered_by_drf = get_tools(client, key, channel="fax")

    with mock.patch.object(APIView, "initial", side_effect=AssertionError("went through DRF")):
        plain = get_tools(client, key)
        assert plain.status_code == 200
        assert plain.content == expected.content
        assert plain.headers["ETag"] == expected.headers["ETag"]
        assert plain.headers["Allow"] == answered_by_drf.headers["Allow"] == "GET, HEAD, OPTIONS"
        assert plain.headers["Vary"] == "Authorization"
        # Errors are DRF's to explain.
        with pytest.raises(AssertionError, match="went through DRF"):
            get_tools(client, key, channel="fax")


def test_a_warm_request_makes_no_round_trip_to_redis(client, monkeypatch):
    """The stamp is kept in the process (renewals are announced over pub/sub) and the
    rate-limit count is added to Redis in batches (actions.state)."""
    from django.core.cache import caches
    from django.core.cache.backends.redis import RedisCache

    from actions import state
    from tests.actions.test_state import live_watcher

    # However slow this machine: neither the copy's trust nor a batch's time runs out.
    monkeypatch.setattr(state, "STAMP_TRUST_SECONDS", 60.0)
    monkeypatch.setattr(state, "COUNT_FLUSH_SECONDS", 60.0)

    if not isinstance(caches["default"], RedisCache):
        pytest.skip("the shared cache is Redis in production and in CI")
    import redis

    org = make_organization()
    make_action(org)
    key = make_key(org)
    live_watcher(caches["default"])
    for _ in range(3):
        assert get_tools(client, key).status_code == 200
    commands = []
    real = redis.Redis.execute_command

    def counted(self, *args, **options):
        commands.append(args[0])
        return real(self, *args, **options)

    with mock.patch.object(redis.Redis, "execute_command", counted):
        statuses = [get_tools(client, key).status_code for _ in range(20)]

    assert statuses == [200] * 20
    assert commands == []


_QUERY_PARTS = st.sampled_from(["channel", "format", "contact", "other", "channel", "contact"])
_QUERY_VALUES = st.one_of(
    st.sampled_from(["widget", "sms", "fax", "", "openai", "gemini", "mcp", "OPENAI",
                     " cus_1", "cus_1 ", "cus%00x", "cus_42", "%20", "%F0%9F%98%80", "a" * 256]),
    st.text(max_size=12),
)  # fmt: skip


@settings(max_examples=300, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(_QUERY_PARTS, _QUERY_VALUES), max_size=5))
def test_the_plain_parameters_are_taken_only_as_drf_would_take_them(pairs):
    from urllib.parse import quote

    from django.http import QueryDict
    from rest_framework.exceptions import ValidationError

    from actions.api.tools import _PARAMS, _plain_params

    query = "&".join(f"{name}={value if '%' in value else quote(value)}" for name, value in pairs)
    plain = _plain_params(query)
    try:
        expected = _PARAMS.to_internal_value(QueryDict(query))
    except ValidationError:
        assert plain is None  # refused: DRF explains
        return
    if plain is not None:
        assert plain == {"contact": "", **expected}
