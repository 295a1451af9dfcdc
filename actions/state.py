"""An organization's state stamp, and the API's rate-limit counts, in the shared cache.

Everything the API caches about an organization (rendered tool lists, contacts'
segment sets, verified API keys) is keyed on, or checked against, one stamp per
organization held in the shared cache (Redis in production). Any change those
caches depend on renews it (Organization.bump_tools_version, API key changes), so a
warm request needs no database query: it knows the stamp and finds everything else
in this process's memory. (A contact's details have a stamp of their own.)

A warm request needs no round trip to Redis either, which on a busy API costs more
than the rest of the request (a round trip is ~60 µs of CPU on a virtual machine,
and a thread switch on each side):
- **Stamps** are kept in this process (`_Watcher`) and renewed over Redis pub/sub:
  a renewal sets the new stamp and publishes its key in one transaction; every
  process's watcher thread drops its copy on the message. A copy is trusted for
  STAMP_TRUST_SECONDS at most (a lost message costs no more than that), and none is
  trusted while the subscription is down. A renewal is seen at once by the process
  that made it, and by the others as soon as the message arrives.
- **Rate-limit counts** are added to the shared counter in small batches
  (`_Counters`): a process counts up to 1% of a key's budget (at most
  MAX_COUNT_BATCH, none for budgets under 200) before adding them, and at once when
  within a batch of the budget, so a key can go over its budget by at most one
  batch per process in a window. When either needs Redis, one script does both.

Why the stamp is a fresh random number each time, set after the commit:
- A reader that sees a stamp reads the database after that stamp was set. If the
  stamp is set only once the change is committed, nothing rendered from
  pre-change data can be stored under it. It is also set at the change itself, so
  the writing transaction (and a test inside one) sees its own change at once;
  data cached under that interim stamp is simply never asked for again.
- Randomness, not a counter, makes order irrelevant: two transactions' callbacks
  may land in either order, and whichever wins is a value no reader has seen
  before. A counter could come back to an old value after the cache is emptied,
  and a process's memory could still hold renderings under it.
- A missing stamp (the cache was emptied, or evicted it) is seeded with a fresh
  random value set only if still absent, so concurrent readers agree on one.

Processes that share no cache (the embedded default's in-memory cache) each hold
their own stamps; that is right for one process and is why production needs
CACHE_URL (see the deployment check in actions.checks).
"""

import contextlib
import hashlib
import logging
import os
import secrets
import threading
import time
import weakref
from collections import OrderedDict

from django.core.cache import caches
from django.core.cache.backends.redis import RedisCache
from django.db import transaction
from redis.exceptions import NoScriptError

logger = logging.getLogger(__name__)

STAMP_PREFIX = "org-state:"
CONTACT_STAMP_PREFIX = "contact-state:"


def new_stamp() -> int:
    return secrets.randbits(62)


def _stamp_key(organization_id: int) -> str:
    return f"{STAMP_PREFIX}{organization_id}"


def _contact_stamp_key(organization_id: int, external_id: str) -> str:
    digest = hashlib.sha256(external_id.encode()).hexdigest()[:32]
    return f"{CONTACT_STAMP_PREFIX}{organization_id}:{digest}"


def renew(organization_id: int) -> None:
    """Invalidate everything cached about the organization, now and after commit."""
    _renew(_stamp_key(organization_id))


def current(organization_id: int) -> int:
    """The organization's stamp, seeded if the cache has none."""
    return _current(_stamp_key(organization_id))


def renew_contact(organization_id: int, external_id: str) -> None:
    """Invalidate what is cached about one contact's details (name, email, phone,
    attributes), now and after commit. Their segments are the organization's stamp's
    concern: a membership change renews that one."""
    _renew(_contact_stamp_key(organization_id, external_id))


def contact_stamp(organization_id: int, external_id: str) -> int:
    """The contact's stamp (the same rules as the organization's), seeded if absent."""
    return _current(_contact_stamp_key(organization_id, external_id))


def _renew(key: str) -> None:
    _set_new(key)
    transaction.on_commit(lambda: _set_new(key), robust=True)


def _set_new(key: str) -> None:
    backend = caches["default"]
    if not isinstance(backend, RedisCache):
        backend.set(key, new_stamp(), None)
        return
    watcher = _watcher(backend)
    pipe = _redis_client(backend).pipeline()  # MULTI: set and announce together
    pipe.set(backend.make_and_validate_key(key), new_stamp())
    pipe.publish(watcher.channel, f"{watcher.token} {key}")
    pipe.execute()
    watcher.forget(key)  # this process at once; its watcher skips its own message


def _current(key: str) -> int:
    backend = caches["default"]
    watcher = None
    if isinstance(backend, RedisCache):
        watcher = _watcher(backend)
        stamp = watcher.get(key)
        if stamp is not None:
            return stamp
        generation = watcher.generation
        # One GET on a kept client: Django's cache.get builds a client per call.
        raw = _redis_client(backend).get(backend.make_and_validate_key(key))
        if raw is not None:
            watcher.remember(key, int(raw), generation)
            return int(raw)
    stamp = backend.get(key)
    if stamp is None:
        backend.add(key, new_stamp(), None)
        stamp = backend.get(key)
    return stamp


def count_and_read(
    counter: str, window_seconds: int, organization_id: int, limit: int
) -> tuple[int, int]:
    """Count one request on a rate-limit counter (created for `window_seconds`) and
    read the organization's stamp. On Redis: the count so far as far as this process
    knows (see the module docstring), and no round trip unless the count is due to be
    added or the stamp is not known here; then one. Elsewhere, the portable cache API
    (exact counts)."""
    backend = caches["default"]
    if isinstance(backend, RedisCache):
        watcher = _watcher(backend)
        stamp_key = _stamp_key(organization_id)
        count, to_add = _counters.take(counter, limit)
        stamp = watcher.get(stamp_key)
        if not to_add and stamp is not None:
            return count, stamp
        generation = watcher.generation
        keys_and_args = (
            2, backend.make_and_validate_key(counter), backend.make_and_validate_key(stamp_key),
            window_seconds, to_add,
        )  # fmt: skip
        client = _redis_client(backend)
        try:
            total, raw = client.evalsha(_COUNT_AND_READ_SHA, *keys_and_args)
        except NoScriptError:  # a new or emptied Redis: send the script itself once
            total, raw = client.eval(_COUNT_AND_READ, *keys_and_args)
        count = _counters.added(counter, total)
        if raw is None:
            return count, current(organization_id)
        watcher.remember(stamp_key, int(raw), generation)
        return count, int(raw)
    backend.add(counter, 0, window_seconds)
    try:
        count = backend.incr(counter)
    except ValueError:  # expired between add and incr
        backend.set(counter, 1, window_seconds)
        count = 1
    return count, current(organization_id)


# One command instead of three: redis-py's cost per command is most of a round trip.
# SET NX EX creates the window's counter with its expiry; INCRBY adds this process's
# batch (0 when only the stamp is wanted) and answers the total.
_COUNT_AND_READ = """
redis.call('SET', KEYS[1], 0, 'EX', ARGV[1], 'NX')
return {redis.call('INCRBY', KEYS[1], ARGV[2]), redis.call('GET', KEYS[2])}
"""
_COUNT_AND_READ_SHA = hashlib.sha1(_COUNT_AND_READ.encode(), usedforsecurity=False).hexdigest()

MAX_COUNT_BATCH = 64
COUNT_FLUSH_SECONDS = 1.0


class _Counters:
    """This process's rate-limit counts not yet added to the shared counters."""

    MAX_ENTRIES = 10_000

    def __init__(self) -> None:
        self._lock = threading.Lock()
        # counter -> [counted here and not added yet, shared total last seen, when seen]
        self._items: dict[str, list] = {}

    def take(self, counter: str, limit: int) -> tuple[int, int]:
        """Count one request: (the count as this process knows it, how many to add to
        the shared counter now: 0 while a batch is being gathered)."""
        batch = min(MAX_COUNT_BATCH, limit // 100)
        now = time.monotonic()
        with self._lock:
            item = self._items.get(counter)
            if item is None:
                if len(self._items) >= self.MAX_ENTRIES:
                    self._items.clear()  # counters of past windows; pending ones < a batch
                item = self._items[counter] = [0, 0, now]
            item[0] += 1
            pending, seen, seen_at = item
            if (
                batch > 1
                and pending < batch
                and seen + pending + batch <= limit
                and now - seen_at < COUNT_FLUSH_SECONDS
            ):
                return seen + pending, 0
            item[0] = 0
            return seen + pending, pending

    def added(self, counter: str, total: int) -> int:
        """The request's count, from the shared counter's total after this request's
        addition (another thread's larger total is not this request's place)."""
        with self._lock:
            item = self._items.get(counter)
            if item is None:
                return total
            item[1] = max(item[1], total)
            item[2] = time.monotonic()
            return total + item[0]

    def clear(self) -> None:
        with self._lock:
            self._items.clear()


_counters = _Counters()

STAMP_TRUST_SECONDS = 1.0
WATCH_PING_SECONDS = 1.0


class _Watcher:
    """This process's copies of stamps, dropped when Redis announces a renewal.

    A daemon thread holds a subscription to the channel renewals are published on. A
    copy is kept only while the subscription is up, for STAMP_TRUST_SECONDS at most,
    and only if no announcement came between reading the stamp and keeping it (the
    `generation` a reader takes before reading). A lost connection drops every copy
    until the thread has subscribed again.
    """

    MAX_ENTRIES = 100_000

    def __init__(self, backend: RedisCache) -> None:
        self.location = _location(backend)
        self.pid = os.getpid()
        client = backend._cache.get_client(write=True)
        database = client.connection_pool.connection_kwargs.get("db", 0)
        self.channel = backend.make_and_validate_key(f"state-renewed:{database}")
        self.token = secrets.token_hex(8)  # names this process's announcements
        self.generation = 0
        self.live = False
        self.stopped = False
        self._client = client
        self._lock = threading.Lock()
        self._stamps: OrderedDict[str, tuple[int, float]] = OrderedDict()
        self._pubsub = None
        threading.Thread(target=self._run, name="opencx-state-watcher", daemon=True).start()

    def get(self, key: str) -> int | None:
        item = self._stamps.get(key)
        if item is None or not self.live or item[1] < time.monotonic():
            return None
        return item[0]

    def remember(self, key: str, stamp: int, generation: int) -> None:
        with self._lock:
            if not self.live or generation != self.generation:
                return  # a renewal may have been announced meanwhile
            self._stamps[key] = (stamp, time.monotonic() + STAMP_TRUST_SECONDS)
            self._stamps.move_to_end(key)
            if len(self._stamps) > self.MAX_ENTRIES:
                self._stamps.popitem(last=False)

    def forget(self, key: str) -> None:
        with self._lock:
            self.generation += 1
            self._stamps.pop(key, None)

    def _reset(self, live: bool) -> None:
        with self._lock:
            self.generation += 1
            self._stamps.clear()
            self.live = live

    def _run(self) -> None:
        backoff = 0.1
        while not self.stopped:
            pubsub = self._pubsub = self._client.pubsub()
            try:
                pubsub.subscribe(self.channel)
                heard = pinged = time.monotonic()
                while not self.stopped:
                    message = pubsub.get_message(timeout=WATCH_PING_SECONDS)
                    now = time.monotonic()
                    if message is not None:
                        heard = now
                        if message["type"] == "subscribe":
                            self._reset(live=True)
                            backoff = 0.1
                        elif message["type"] == "message":
                            token, _, key = message["data"].decode().partition(" ")
                            if token != self.token:
                                self.forget(key)
                    elif now - heard > 3 * WATCH_PING_SECONDS:
                        raise ConnectionError("Redis stopped answering the subscription")
                    if now - pinged >= WATCH_PING_SECONDS:
                        pubsub.ping()
                        pinged = now
            except Exception:  # the connection is gone: trust nothing until subscribed again
                logger.warning("stamp subscription lost; reconnecting", exc_info=True)
            finally:
                self._reset(live=False)
                with contextlib.suppress(Exception):
                    pubsub.close()
            time.sleep(backoff)
            backoff = min(backoff * 2, 5.0)


_watcher_lock = threading.Lock()
_current_watcher: _Watcher | None = None


def _location(backend: RedisCache) -> tuple:
    return (tuple(backend._servers), backend.key_prefix, backend.version)


def _watcher(backend: RedisCache) -> _Watcher:
    """This process's watcher for the cache (a new one after a fork)."""
    global _current_watcher
    watcher = _current_watcher
    if (
        watcher is not None
        and watcher.pid == os.getpid()
        and watcher.location == _location(backend)
    ):
        return watcher
    with _watcher_lock:
        watcher = _current_watcher
        if watcher is None or watcher.pid != os.getpid() or watcher.location != _location(backend):
            if watcher is not None and watcher.pid == os.getpid():
                watcher.stopped = True
            watcher = _current_watcher = _Watcher(backend)
        return watcher


def forget_local() -> None:
    """Drop this process's copies of stamps and its uncounted requests (benchmarks
    measuring a cold start; tests)."""
    if _current_watcher is not None:
        _current_watcher._reset(live=_current_watcher.live)
    _counters.clear()


# Django builds a new redis.Redis around its connection pool on every call, and
# building one costs more than the round trip itself; keep one per cache client.
_redis_clients: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def _redis_client(backend: RedisCache):
    cache_client = backend._cache
    client = _redis_clients.get(cache_client)
    if client is None:
        client = _redis_clients[cache_client] = cache_client.get_client(write=True)
    return client


class LocalLRU:
    """A small thread-safe LRU private to this process, bounded by entry count.

    What goes in is always keyed by, or checked against, a stamp, so nothing here
    needs expiring: an entry under an old stamp is simply never asked for again.
    """

    def __init__(self, max_entries: int) -> None:
        self.max_entries = max_entries
        self._items: OrderedDict = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key):
        with self._lock:
            value = self._items.get(key)
            if value is not None:
                self._items.move_to_end(key)
            return value

    def get_or_load(self, key, load):
        """The entry under `key`, else `load()`'s value, kept (loaded outside the lock:
        two threads may load the same key at once, and either value is right)."""
        value = self.get(key)
        if value is None:
            value = load()
            self.put(key, value)
        return value

    def put(self, key, value) -> None:
        with self._lock:
            self._items[key] = value
            self._items.move_to_end(key)
            while len(self._items) > self.max_entries:
                self._items.popitem(last=False)

    def pop(self, key) -> None:
        with self._lock:
            self._items.pop(key, None)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
