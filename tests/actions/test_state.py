"""The organization's state stamp in the shared cache (actions.state)."""

import threading

import pytest
from django.core.cache import cache, caches
from django.core.cache.backends.redis import RedisCache

from actions import state
from actions.models import Organization
from tests.factories import make_organization

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fresh_cache():
    cache.clear()


def test_a_missing_stamp_is_seeded_once_and_then_kept():
    first = state.current(10**9)
    assert state.current(10**9) == first


def test_concurrent_readers_of_a_missing_stamp_agree_on_one():
    seen: list[int] = []
    lock = threading.Lock()
    start = threading.Barrier(8)

    def read() -> None:
        start.wait()
        stamp = state.current(10**9 + 1)
        with lock:
            seen.append(stamp)

    threads = [threading.Thread(target=read) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(seen) == 8
    assert len(set(seen)) == 1


def test_renewing_changes_the_stamp_now_and_again_after_the_commit(
    django_capture_on_commit_callbacks,
):
    org = make_organization()
    before = state.current(org.pk)

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        state.renew(org.pk)
        during = state.current(org.pk)
    after = state.current(org.pk)

    assert len(callbacks) == 1
    # Inside the transaction its own change is visible; after the commit the stamp is
    # one no reader can have used for pre-commit data.
    assert len({before, during, after}) == 3


def test_every_bump_of_the_tools_version_renews_the_stamp():
    org = make_organization()
    before = state.current(org.pk)

    Organization.bump_tools_version(org.pk)

    assert state.current(org.pk) != before


def test_a_new_organization_never_inherits_a_stamp_left_under_its_id():
    org = make_organization()
    stale = state.current(org.pk)
    Organization.objects.filter(pk=org.pk).delete()
    # A rolled-back transaction can give the next organization the same ID (SQLite).
    reborn = Organization.objects.create(pk=org.pk, name="Reborn", slug="reborn")

    assert state.current(reborn.pk) != stale


def test_count_and_read_counts_in_one_window_and_reads_the_stamp():
    org = make_organization()
    stamp = state.current(org.pk)

    counts = [state.count_and_read("throttle:test:abc:1", 65, org.pk) for _ in range(3)]

    assert counts == [(1, stamp), (2, stamp), (3, stamp)]


def test_count_and_read_seeds_a_missing_stamp():
    org = make_organization()
    cache.clear()

    count, stamp = state.count_and_read("throttle:test:abc:2", 65, org.pk)

    assert count == 1
    assert stamp == state.current(org.pk)


def test_count_and_read_survives_a_redis_that_lost_its_scripts():
    backend = caches["default"]
    if not isinstance(backend, RedisCache):
        pytest.skip("the script exists on Redis only (CI runs the cache on Redis)")
    org = make_organization()
    state.count_and_read("throttle:test:abc:3", 65, org.pk)
    state._redis_client(backend).script_flush()  # a restarted or emptied Redis

    assert state.count_and_read("throttle:test:abc:3", 65, org.pk) == (2, state.current(org.pk))
