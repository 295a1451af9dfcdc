"""The organization's state stamp in the shared cache (actions.state)."""

import threading
import time
import uuid
from unittest import mock

import pytest
import redis
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

    counts = [state.count_and_read("throttle:test:abc:1", 65, org.pk, 100) for _ in range(3)]

    assert counts == [(1, stamp), (2, stamp), (3, stamp)]


def test_count_and_read_seeds_a_missing_stamp():
    org = make_organization()
    cache.clear()

    count, stamp = state.count_and_read("throttle:test:abc:2", 65, org.pk, 100)

    assert count == 1
    assert stamp == state.current(org.pk)


def test_count_and_read_survives_a_redis_that_lost_its_scripts():
    backend = caches["default"]
    if not isinstance(backend, RedisCache):
        pytest.skip("the script exists on Redis only (CI runs the cache on Redis)")
    org = make_organization()
    state.count_and_read("throttle:test:abc:3", 65, org.pk, 100)
    state._redis_client(backend).script_flush()  # a restarted or emptied Redis

    assert state.count_and_read("throttle:test:abc:3", 65, org.pk, 100) == (
        2,
        state.current(org.pk),
    )


# --- what each process keeps: stamps renewed over pub/sub, counts added in batches -------


def redis_only():
    backend = caches["default"]
    if not isinstance(backend, RedisCache):
        pytest.skip("kept in the process on Redis only (CI runs the cache on Redis)")
    return backend


def wait_until(condition, seconds: float = 5.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.01)
    return False


def live_watcher(backend) -> "state._Watcher":
    watcher = state._watcher(backend)
    assert wait_until(lambda: watcher.live), "the watcher never subscribed"
    return watcher


def another_process_renews(backend, key: str) -> int:
    """What state.renew does in another process: set and announce, in one transaction,
    on a connection of its own (this process's watcher learns it only by the message)."""
    client = redis.Redis.from_url(backend._servers[0])
    try:
        stamp = state.new_stamp()
        pipe = client.pipeline()
        pipe.set(backend.make_and_validate_key(key), stamp)
        pipe.publish(state._watcher(backend).channel, f"elsewhere {key}")
        pipe.execute()
        return stamp
    finally:
        client.close()


def test_a_stamp_renewed_elsewhere_is_seen_when_the_announcement_arrives(monkeypatch):
    backend = redis_only()
    monkeypatch.setattr(state, "STAMP_TRUST_SECONDS", 60.0)  # only the message can tell
    org = make_organization()
    live_watcher(backend)
    kept = state.current(org.pk)
    client = state._redis_client(backend)

    # Set without an announcement: this process keeps its copy (no round trip).
    client.set(backend.make_and_validate_key(state._stamp_key(org.pk)), state.new_stamp())
    assert state.current(org.pk) == kept

    renewed = another_process_renews(backend, state._stamp_key(org.pk))
    assert wait_until(lambda: state.current(org.pk) == renewed)


def test_a_kept_stamp_is_trusted_for_a_limited_time_without_any_announcement(monkeypatch):
    backend = redis_only()
    org = make_organization()
    live_watcher(backend)
    monkeypatch.setattr(state, "STAMP_TRUST_SECONDS", 0.05)
    state.current(org.pk)  # kept for 50 ms from now
    silent = state.new_stamp()
    state._redis_client(backend).set(
        backend.make_and_validate_key(state._stamp_key(org.pk)), silent
    )

    assert wait_until(lambda: state.current(org.pk) == silent, seconds=1.0)


def test_a_lost_subscription_drops_every_kept_stamp(monkeypatch):
    """Announcements sent while the connection is down are lost: whether redis-py
    reconnects by itself or the watcher does, subscribing again drops every copy."""
    backend = redis_only()
    monkeypatch.setattr(state, "STAMP_TRUST_SECONDS", 60.0)  # only a reset can tell
    org = make_organization()
    watcher = live_watcher(backend)
    state.current(org.pk)
    client = state._redis_client(backend)
    silent = state.new_stamp()
    client.set(backend.make_and_validate_key(state._stamp_key(org.pk)), silent)
    assert state.current(org.pk) != silent  # kept

    # Its connection ends, as in a network fault or a restart of Redis.
    ip, port = watcher._pubsub.connection._sock.getsockname()[:2]
    client.client_kill_filter(_type="pubsub", addr=f"{ip}:{port}")

    assert wait_until(lambda: state.current(org.pk) == silent)
    assert wait_until(lambda: watcher.live), "the watcher did not subscribe again"


def test_a_stamp_read_before_an_announcement_is_not_kept_after_it():
    backend = redis_only()
    watcher = live_watcher(backend)
    generation = watcher.generation
    watcher.forget("org-state:elsewhere")  # an announcement between the read and the keep

    watcher.remember("org-state:raced", 42, generation)

    assert watcher.get("org-state:raced") is None
    watcher.remember("org-state:raced", 43, watcher.generation)
    assert watcher.get("org-state:raced") == 43


def test_counts_are_added_in_batches_far_from_the_budget_and_one_by_one_near_it():
    backend = redis_only()
    org = make_organization()
    live_watcher(backend)
    counter = f"throttle:test:{uuid.uuid4().hex}:1"
    shared = backend.make_and_validate_key(counter)
    client = state._redis_client(backend)
    limit = 5_000  # a batch is 1% of it: 50
    state.current(org.pk)

    counts = [state.count_and_read(counter, 65, org.pk, limit)[0] for _ in range(49)]
    assert counts == list(range(1, 50))
    assert client.get(shared) is None  # nothing added yet: no round trip
    state.count_and_read(counter, 65, org.pk, limit)
    assert int(client.get(shared)) == 50

    # Another process has used the budget up to near its end: this one's next batch
    # learns it, and from there every request is added at once.
    client.incrby(shared, limit - 60)
    counts = [state.count_and_read(counter, 65, org.pk, limit)[0] for _ in range(60)]
    assert int(client.get(shared)) == limit + 50  # all added
    assert counts[:49] == list(range(51, 100))  # a batch gathered on what it knew
    assert counts[49:] == list(range(limit + 40, limit + 51))  # then one by one, exact


def test_several_processes_go_over_a_budget_by_at_most_a_batch_each():
    backend = redis_only()
    org = make_organization()
    live_watcher(backend)
    counter = f"throttle:test:{uuid.uuid4().hex}:1"
    limit = 2_000  # batches of 20
    processes = [state._Counters() for _ in range(4)]
    admitted = 0
    for turn in range(4_000):
        counters = processes[turn % 4]
        with mock.patch.object(state, "_counters", counters):
            admitted += state.count_and_read(counter, 65, org.pk, limit)[0] <= limit

    assert limit <= admitted <= limit + 4 * 20
    assert int(state._redis_client(backend).get(backend.make_and_validate_key(counter))) >= (
        4_000 - 4 * 20
    )
