"""Rate limits: a fixed per-minute budget per API key and kind of endpoint, in the cache.

The counters live in Django's cache: in-process memory on a laptop, Redis in CI
(CACHE_URL) and in production, where every worker shares them. These tests run
against whichever backend is configured.
"""

import json
import threading
import time
import uuid
from unittest import mock

import pytest
from django.conf import settings as django_settings
from django.core.cache import cache
from django.core.cache.backends.redis import RedisCacheClient

from actions import state
from actions.api import auth
from actions.api.auth import APIKeyRateThrottle
from actions.models import OrganizationAPIKey
from tests.conftest import IN_CI
from tests.factories import make_action, make_organization

pytestmark = pytest.mark.django_db

ALL_SCOPES = "tools contacts:write actions:read actions:write"


@pytest.fixture(autouse=True)
def _fresh_cache():
    cache.clear()


@pytest.fixture
def limits(settings):
    """Small budgets: tools 3, contacts (default) 2, staff 2 requests a minute."""
    settings.API_RATE_LIMITS = {"default": 2, "tools": 3, "staff": 2, "import": 1}
    return settings.API_RATE_LIMITS


@pytest.fixture
def org():
    organization = make_organization()
    make_action(organization, name="Look up an order")
    return organization


def make_key(organization) -> tuple[OrganizationAPIKey, str]:
    return OrganizationAPIKey.objects.create_key(
        organization=organization, name="runtime", scopes=ALL_SCOPES
    )


def get_tools(client, raw: str):
    return client.get("/api/v1/tools?channel=widget", HTTP_AUTHORIZATION=f"Bearer {raw}")


def put_contact(client, raw: str):
    return client.put(
        "/api/v1/contacts/cus_1",
        json.dumps({"name": "Ada"}),
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {raw}",
    )


def list_actions(client, raw: str):
    return client.get("/api/v1/actions", HTTP_AUTHORIZATION=f"Bearer {raw}")


class Clock:
    """Stands in for the time module inside actions.api.auth."""

    def __init__(self, now: float) -> None:
        self.now = now

    def time(self) -> float:
        return self.now


@pytest.fixture
def clock():
    # The start of a minute a little ahead, plus 10 s: well inside one window.
    fake = Clock(now=(int(time.time()) // 60 + 1) * 60 + 10)
    with mock.patch("actions.api.auth.time", fake):
        yield fake


def test_a_key_over_its_budget_gets_429_with_retry_after(client, org, limits, clock):
    _, raw = make_key(org)

    statuses = [get_tools(client, raw).status_code for _ in range(4)]

    assert statuses == [200, 200, 200, 429]
    refused = get_tools(client, raw)
    assert refused.status_code == 429
    # 10 s into the minute: the budget comes back in 50 s.
    assert refused.headers["Retry-After"] == "50"
    assert "50 seconds" in refused.json()["detail"]


def test_retry_after_rounds_up_to_the_end_of_the_window(client, org, limits, clock):
    _, raw = make_key(org)
    clock.now += 49.2  # 59.2 s into the minute
    for _ in range(3):
        get_tools(client, raw)

    assert get_tools(client, raw).headers["Retry-After"] == "1"


def test_one_keys_budget_leaves_other_keys_alone(client, org, limits, clock):
    _, first = make_key(org)
    _, second = make_key(org)
    _, elsewhere = make_key(make_organization())
    for _ in range(3):
        get_tools(client, first)
    assert get_tools(client, first).status_code == 429

    assert get_tools(client, second).status_code == 200
    assert get_tools(client, elsewhere).status_code == 200


def test_each_kind_of_endpoint_has_its_own_budget(client, org, limits, clock):
    _, raw = make_key(org)
    for _ in range(3):
        assert get_tools(client, raw).status_code == 200
    assert get_tools(client, raw).status_code == 429

    # Contacts (default budget 2) and the staff API (2) still have theirs.
    assert [put_contact(client, raw).status_code for _ in range(3)] == [201, 200, 429]
    assert [list_actions(client, raw).status_code for _ in range(3)] == [200, 200, 429]


def test_the_budget_comes_back_in_the_next_window(client, org, limits, clock):
    _, raw = make_key(org)
    for _ in range(3):
        get_tools(client, raw)
    assert get_tools(client, raw).status_code == 429

    clock.now += 49.9  # still the same minute
    assert get_tools(client, raw).status_code == 429
    clock.now += 0.2  # the next one
    assert [get_tools(client, raw).status_code for _ in range(4)] == [200, 200, 200, 429]


def test_requests_without_a_valid_key_are_refused_before_they_are_counted(
    client, org, limits, clock
):
    key, raw = make_key(org)
    for _ in range(5):
        assert get_tools(client, "ocx_nothere.secret").status_code == 401
    assert get_tools(client, raw).status_code == 200
    assert cache.get(f"throttle:tools:{key.prefix}:{int(clock.now // 60)}") == 1


# --- the counter itself, on whatever cache backend is configured ---------------------------------


def throttle_calls(key: OrganizationAPIKey, scope: str, calls: int) -> list[bool]:
    """What the API does per request: count in the window (actions.state, with the
    organization's stamp read in the same round trip), then compare with the budget."""
    limit = django_settings.API_RATE_LIMITS[scope]
    window = int(auth.time.time() // APIKeyRateThrottle.window_seconds)
    counter = f"throttle:{scope}:{key.prefix}:{window}"
    return [
        state.count_and_read(counter, APIKeyRateThrottle.window_seconds + 5, 10**9, limit)[0]
        <= limit
        for _ in range(calls)
    ]


def unsaved_key() -> OrganizationAPIKey:
    # A unique prefix: counters in a shared Redis outlive a test run by a minute.
    return OrganizationAPIKey(prefix=f"t{uuid.uuid4().hex[:12]}", name="counter")


def test_the_counter_lives_in_the_cache_and_expires_after_its_window(limits):
    key = unsaved_key()
    with mock.patch("actions.api.auth.time", Clock(now=6_000_000_030.0)):
        assert throttle_calls(key, "tools", 4) == [True, True, True, False]
        counter = f"throttle:tools:{key.prefix}:{6_000_000_030 // 60}"

    assert cache.get(counter) == 4
    if isinstance(cache._cache if hasattr(cache, "_cache") else None, RedisCacheClient):
        client = cache._cache.get_client(write=False)
        assert 60 < client.ttl(cache.make_and_validate_key(counter)) <= 65


def test_concurrent_requests_never_exceed_the_budget(settings):
    """The count is atomic in every backend we use: 8 threads, 200 calls, budget 50."""
    settings.API_RATE_LIMITS = {**django_settings.API_RATE_LIMITS, "tools": 50}
    key = unsaved_key()
    allowed: list[bool] = []
    lock = threading.Lock()
    start = threading.Barrier(8)

    def worker() -> None:
        start.wait()
        results = throttle_calls(key, "tools", 25)
        with lock:
            allowed.extend(results)

    # One clock for every thread: the calls must all land in one window.
    with mock.patch("actions.api.auth.time", Clock(now=6_000_000_100.0)):
        threads = [threading.Thread(target=worker) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

    assert len(allowed) == 200
    assert allowed.count(True) == 50


@pytest.mark.skipif(not IN_CI, reason="CI runs the cache on Redis (.ci/run sets CACHE_URL)")
def test_ci_keeps_the_counters_in_redis():
    assert django_settings.CACHES["default"]["BACKEND"] == (
        "django.core.cache.backends.redis.RedisCache"
    )
    cache.set("rate-limit-probe", 1, 5)
    assert cache.incr("rate-limit-probe") == 2


def test_a_refused_tool_list_request_is_counted_once(client, org, limits, clock):
    """The tool list answers its plain case itself and hands the rest to DRF, which
    must not count the request a second time."""
    _, raw = make_key(org)
    bad = "/api/v1/tools?channel=fax"

    statuses = [client.get(bad, HTTP_AUTHORIZATION=f"Bearer {raw}").status_code for _ in range(3)]

    assert statuses == [400, 400, 400]
    assert get_tools(client, raw).status_code == 429


def test_a_refused_invoke_is_counted_once(client, org, limits, clock):
    """Invoke, too, answers its plain case itself and hands the rest to DRF."""
    _, raw = make_key(org)

    statuses = [
        client.post(
            "/api/v1/tools/no_such_tool/invoke", {"channel": "widget"},
            content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {raw}",
        ).status_code
        for _ in range(3)
    ]  # fmt: skip

    assert statuses == [404, 404, 404]
    assert get_tools(client, raw).status_code == 429
