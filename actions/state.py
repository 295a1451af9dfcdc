"""An organization's state stamp, read on every API request from the shared cache.

Everything the API caches about an organization (rendered tool lists, contacts'
segment sets, verified API keys) is keyed on, or checked against, one stamp per
organization held in the shared cache (Redis in production). Any change those
caches depend on renews it (Organization.bump_tools_version, API key changes), so a
warm request needs no database query: it reads the stamp, in the same round trip
as its rate-limit counter, and finds everything else in this process's memory.

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

import hashlib
import secrets
import threading
import weakref
from collections import OrderedDict

from django.core.cache import cache, caches
from django.core.cache.backends.redis import RedisCache
from django.db import transaction
from redis.exceptions import NoScriptError

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
    cache.set(key, new_stamp(), None)
    transaction.on_commit(lambda: cache.set(key, new_stamp(), None), robust=True)


def _current(key: str) -> int:
    backend = caches["default"]
    if isinstance(backend, RedisCache):
        # One GET on a kept client: Django's cache.get builds a client per call.
        client = _redis_client(backend)
        stamp = client.get(backend.make_and_validate_key(key))
        if stamp is not None:
            return int(stamp)
    stamp = backend.get(key)
    if stamp is None:
        backend.add(key, new_stamp(), None)
        stamp = backend.get(key)
    return stamp


def count_and_read(counter: str, window_seconds: int, organization_id: int) -> tuple[int, int]:
    """Add one to a rate-limit counter (created for `window_seconds`) and read the
    organization's stamp: one round trip to Redis, where the API spends it on every
    request; the portable cache API elsewhere."""
    backend = caches["default"]
    if isinstance(backend, RedisCache):
        counter_key = backend.make_and_validate_key(counter)
        stamp_key = backend.make_and_validate_key(_stamp_key(organization_id))
        client = _redis_client(backend)
        keys_and_args = (2, counter_key, stamp_key, window_seconds)
        try:
            count, stamp = client.evalsha(_COUNT_AND_READ_SHA, *keys_and_args)
        except NoScriptError:  # a new or emptied Redis: send the script itself once
            count, stamp = client.eval(_COUNT_AND_READ, *keys_and_args)
        if stamp is not None:
            return count, int(stamp)
        return count, current(organization_id)
    backend.add(counter, 0, window_seconds)
    try:
        count = backend.incr(counter)
    except ValueError:  # expired between add and incr
        backend.set(counter, 1, window_seconds)
        count = 1
    return count, current(organization_id)


# One command instead of three: redis-py's cost per command is most of a warm API
# request's. SET NX EX creates the window's counter with its expiry, INCR counts.
_COUNT_AND_READ = """
redis.call('SET', KEYS[1], 0, 'EX', ARGV[1], 'NX')
return {redis.call('INCR', KEYS[1]), redis.call('GET', KEYS[2])}
"""
_COUNT_AND_READ_SHA = hashlib.sha1(_COUNT_AND_READ.encode(), usedforsecurity=False).hexdigest()

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
