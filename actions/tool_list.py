"""The tools a contact may use on a channel, rendered for a model provider, cached.

The filter runs in the database, on the server, before anything is rendered:
enabled on the channel, and unrestricted or restricted to ANY of the contact's
segments (an unknown or anonymous contact sees unrestricted actions only).

A rendering is cached per (organization, tools_version, channel, segment set,
format). Every change that can alter a list bumps the organization's
tools_version (see actions.signals), so a cached rendering is never stale: it is
simply no longer asked for. Two tiers: a small in-process LRU (a warm request then
costs one key lookup, whatever the number of actions) in front of the shared cache
(Redis in production), so each rendering is built once per version across workers.
"""

import hashlib
import threading
from collections import OrderedDict, defaultdict, namedtuple
from dataclasses import dataclass
from functools import cached_property

from django.conf import settings
from django.core.cache import cache

from actions import state
from actions.models import Action, ActionHeader, ActionParameter, Contact
from actions.tool_formats import ToolDefinition, dumps, envelope, render


@dataclass(frozen=True)
class ToolListQuery:
    organization_id: int
    tools_version: int
    channel: str
    segment_ids: tuple[int, ...]
    fmt: str

    @cached_property
    def cache_key(self) -> str:
        segments = ",".join(map(str, self.segment_ids))
        digest = hashlib.sha256(segments.encode()).hexdigest()[:16]
        return (
            f"tools:{self.organization_id}:{self.tools_version}:{self.channel}:{self.fmt}:{digest}"
        )

    @cached_property
    def etag(self) -> str:
        return '"' + hashlib.sha256(self.cache_key.encode()).hexdigest()[:32] + '"'


# Contacts' segment sets by (organization, stamp, contact): any membership change
# renews the stamp, so an entry is never stale, only no longer asked for.
_local_segments = state.LocalLRU(max_entries=100_000)


def contact_segment_ids(
    organization_id: int, stamp: int, external_id: str | None
) -> tuple[int, ...]:
    """The segments of the organization's contact with this ID; none if unknown."""
    if not external_id:
        return ()
    digest = hashlib.sha256(external_id.encode()).hexdigest()[:32]
    local_key = (organization_id, stamp, digest)
    segment_ids = _local_segments.get(local_key)
    if segment_ids is not None:
        return segment_ids
    key = f"contact-segments:{organization_id}:{stamp}:{digest}"
    cached = cache.get(key)
    if cached is None:
        cached = sorted(
            Contact.segments.through.objects.filter(
                contact__organization_id=organization_id, contact__external_id=external_id
            ).values_list("segment_id", flat=True)
        )
        cache.set(key, cached, settings.TOOL_LIST_CACHE_SECONDS)
    segment_ids = tuple(cached)
    _local_segments.put(local_key, segment_ids)
    return segment_ids


def tool_list_query(
    organization_id: int, stamp: int, channel: str, contact: str | None, fmt: str
) -> ToolListQuery:
    """What to list; `stamp` is the organization's state stamp (actions.state) as
    this request read it."""
    return ToolListQuery(
        organization_id=organization_id,
        tools_version=stamp,
        channel=channel,
        segment_ids=contact_segment_ids(organization_id, stamp, contact),
        fmt=fmt,
    )


def visible_actions(query: ToolListQuery):
    return (
        Action.objects.filter(organization_id=query.organization_id)
        .enabled_on(query.channel)
        .visible_to(query.segment_ids)
        .order_by("-pinned", "name")
    )


def tool_definition(action: Action, parameters=None, headers=None) -> ToolDefinition:
    return ToolDefinition(
        name=action.tool_name,
        title=action.name,
        description=action.description,
        schema=action.tool_schema(parameters, headers).schema,
        method=action.method,
        requires_form=action.requires_form,
    )


# What a tool definition reads of an action and of its rows. Three queries whatever
# the number of actions, and the rows as plain tuples: per-row model instances and
# prefetching were most of a cold request's time.
_ACTION_FIELDS = (
    "id", "tool_name", "name", "description", "method", "endpoint", "body_schema",
    "source_id", "requires_form",
)  # fmt: skip
_ROW_FIELDS = ("key", "kind", "description", "required", "value_schema")
_Parameter = namedtuple("_Parameter", ("location", *_ROW_FIELDS))
_Header = namedtuple("_Header", _ROW_FIELDS)


def build_tool_list(query: ToolListQuery) -> bytes:
    visible = visible_actions(query)
    parameters: dict[int, list] = defaultdict(list)
    headers: dict[int, list] = defaultdict(list)
    ids = visible.values("pk")
    for action_id, *row in ActionParameter.objects.filter(action__in=ids).values_list(
        "action_id", "location", *_ROW_FIELDS
    ):
        parameters[action_id].append(_Parameter(*row))
    for action_id, *row in ActionHeader.objects.filter(action__in=ids).values_list(
        "action_id", *_ROW_FIELDS
    ):
        headers[action_id].append(_Header(*row))
    entries = []
    for action in visible.only(*_ACTION_FIELDS):
        definition = tool_definition(action, parameters[action.id], headers[action.id])
        entries.append(render(definition, query.fmt))
    return dumps(envelope(query.fmt, entries))


class _LocalRenderings:
    """A byte-bounded, thread-safe LRU of rendered lists, private to this process."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._items: OrderedDict[str, bytes] = OrderedDict()
        self._size = 0
        self._lock = threading.Lock()

    def get(self, key: str) -> bytes | None:
        with self._lock:
            body = self._items.get(key)
            if body is not None:
                self._items.move_to_end(key)
            return body

    def put(self, key: str, body: bytes) -> None:
        if len(body) > self.max_bytes:
            return
        with self._lock:
            if key in self._items:
                return
            self._items[key] = body
            self._size += len(body)
            while self._size > self.max_bytes:
                _, evicted = self._items.popitem(last=False)
                self._size -= len(evicted)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
            self._size = 0


local_renderings = _LocalRenderings(settings.TOOL_LIST_LOCAL_CACHE_BYTES)


def tool_list_body(query: ToolListQuery) -> bytes:
    """The rendered list: from this process, else the shared cache, else built."""
    key = query.cache_key
    body = local_renderings.get(key)
    if body is None:
        body = cache.get(key)
        if body is None:
            body = build_tool_list(query)
            cache.set(key, body, settings.TOOL_LIST_CACHE_SECONDS)
        local_renderings.put(key, body)
    return body
