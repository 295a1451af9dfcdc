"""How machines authenticate: an organization API key, its scopes, its rate limit.

`Authorization: Bearer <key>`. The organization comes from the key alone. A missing
or invalid key is a 401, a key without the scope an endpoint needs is a 403, and
another organization's object is a 404 (views look objects up in the key's
organization only). Sessions are not accepted here: the dashboard's cookies never
authenticate an API call.
"""

import hashlib
import time
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.utils import timezone
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication
from rest_framework.permissions import BasePermission
from rest_framework.throttling import BaseThrottle

from actions import state
from actions.models import OrganizationAPIKey

LAST_USED_RESOLUTION = timedelta(minutes=1)
INVALID_KEY = "Invalid or revoked API key. Create a key in the dashboard (API keys)."


class KeyHolder:
    """`request.user` for an API-key request: the organization acting through a key.

    It also carries what actions.state answered for the request, from this process's
    memory or one round trip to Redis: the organization's state stamp (what every
    cached rendering is keyed on) and the key's request count in the current
    rate-limit window.
    """

    is_authenticated = True
    is_anonymous = False
    is_active = True
    is_staff = False
    is_superuser = False

    def __init__(self, key: OrganizationAPIKey, stamp: int, count: int) -> None:
        self.key = key
        self.organization = key.organization
        self.organization_id = key.organization_id
        self.stamp = stamp
        self.count = count

    def __str__(self) -> str:
        return f"API key {self.key.prefix}"

    def within_budget(self, scope: str) -> bool:
        """Whether this request (already counted) fits the key's budget for `scope`."""
        return self.count <= budget(scope)


def budget(scope: str) -> int:
    """Requests a key may make per minute on endpoints of this throttle scope."""
    limits = settings.API_RATE_LIMITS
    return limits.get(scope, limits["default"])


@dataclass(frozen=True)
class _Verified:
    key: OrganizationAPIKey
    stamp: int


# Keys this process has verified, by a digest of the key as sent. An entry is
# trusted only while its organization's stamp is unchanged (actions.state): any
# change to the organization's keys renews the stamp, so a revoked key stops working
# in every process as soon as the renewal is announced to it (actions.state), while a
# busy runtime's requests skip the database and the key hash entirely.
verified_keys = state.LocalLRU(max_entries=10_000)


class APIKeyAuthentication(BaseAuthentication):
    keyword = "Bearer"

    def authenticate(self, request):
        view = request.parser_context.get("view") if request.parser_context else None
        return self.authenticate_http(request._request, getattr(view, "throttle_scope", "default"))

    def authenticate_http(self, request, scope: str):
        """Authenticate a Django request and count it against the key's budget for
        `scope`. Done once per request: a view that answers the plain case itself
        and hands the rest to DRF (see ToolListView) is not counted twice."""
        done = getattr(request, "_opencx_authenticated", None)
        if done is None:
            done = request._opencx_authenticated = self._authenticate(request, scope)
        return done

    def _authenticate(self, request, scope: str):
        # As DRF's get_authorization_header, without building request.headers.
        header = request.META.get("HTTP_AUTHORIZATION", "").encode("iso-8859-1").split()
        if not header or header[0].lower() != self.keyword.lower().encode():
            return None
        if len(header) != 2:
            raise exceptions.AuthenticationFailed(
                "Malformed Authorization header: send `Authorization: Bearer <key>`."
            )
        digest = hashlib.sha256(header[1]).digest()
        verified = verified_keys.get(digest)
        key = self._verify(header[1]) if verified is None else verified.key
        window = int(time.time() // APIKeyRateThrottle.window_seconds)
        count, stamp = state.count_and_read(
            f"throttle:{scope}:{key.prefix}:{window}",
            APIKeyRateThrottle.window_seconds + 5,
            key.organization_id,
            budget(scope),
        )
        if verified is None or verified.stamp != stamp:
            # Read the key again after reading the stamp: a change committed later
            # renews the stamp, so what is remembered under it is never stale.
            key = self._refetch(key, digest)
            verified_keys.put(digest, _Verified(key, stamp))
        if key.has_expired:
            raise exceptions.AuthenticationFailed("This API key has expired.")
        self._record_use(key)
        return KeyHolder(key, stamp, count), key

    def authenticate_header(self, request) -> str:
        # Makes DRF answer 401 (not 403) when the key is missing or wrong.
        return f'{self.keyword} realm="api"'

    @staticmethod
    def _verify(raw: bytes) -> OrganizationAPIKey:
        try:
            return OrganizationAPIKey.objects.get_from_key(raw.decode("ascii"))
        except (UnicodeDecodeError, OrganizationAPIKey.DoesNotExist):
            raise exceptions.AuthenticationFailed(INVALID_KEY) from None

    @staticmethod
    def _refetch(key: OrganizationAPIKey, digest: bytes) -> OrganizationAPIKey:
        try:
            return OrganizationAPIKey.objects.get_usable_keys().get(pk=key.pk)
        except OrganizationAPIKey.DoesNotExist:
            verified_keys.pop(digest)
            raise exceptions.AuthenticationFailed(INVALID_KEY) from None

    @staticmethod
    def _record_use(key: OrganizationAPIKey) -> None:
        # At most one write a minute per key: a busy runtime must not write per request.
        now = timezone.now()
        if key.last_used_at is None or now - key.last_used_at >= LAST_USED_RESOLUTION:
            OrganizationAPIKey.objects.filter(pk=key.pk).update(last_used_at=now)
            key.last_used_at = now


class HasScope(BasePermission):
    """The key must carry the scope the view names for this method.

    Views set `required_scopes`, a mapping of HTTP method to scope ("*" for any).
    """

    message = "This API key lacks the scope this endpoint needs."

    def has_permission(self, request, view) -> bool:
        key = request.auth
        if not isinstance(key, OrganizationAPIKey):
            return False
        if not hasattr(view, request.method.lower()):
            # A method this endpoint does not have: let DRF answer 405 (with Allow),
            # not a 403 that sends the caller looking for a scope.
            return True
        if request.method == "OPTIONS":
            return True  # what the endpoint accepts, for any valid key; no data
        scopes = getattr(view, "required_scopes", {})
        method = "GET" if request.method == "HEAD" else request.method  # GET's headers only
        needed = scopes.get(method) or scopes.get("*")
        if needed is None:
            return False  # a method no scope grants
        if needed not in key.scope_set:
            self.message = (
                f"This API key lacks the “{needed}” scope. Create a key with it in the "
                "dashboard (API keys)."
            )
            return False
        return True


class APIKeyRateThrottle(BaseThrottle):
    """A fixed-window request budget per API key and throttle scope, in the shared cache.

    The count is taken during authentication (actions.state.count_and_read: added to
    Redis in small batches, with the organization's stamp when that is needed too):
    O(1) per request, unlike DRF's history-list throttles, whose cost grows with the
    allowed rate. Views set `throttle_scope`; the rates come from
    settings.API_RATE_LIMITS (requests per minute).
    """

    window_seconds = 60

    def allow_request(self, request, view) -> bool:
        holder = request.user
        if not isinstance(holder, KeyHolder):
            return True  # unauthenticated requests are refused before they cost anything
        self.wait_seconds = self.window_seconds - (time.time() % self.window_seconds)
        return holder.within_budget(getattr(view, "throttle_scope", "default"))

    def wait(self) -> float:
        return self.wait_seconds
