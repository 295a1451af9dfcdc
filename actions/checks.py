"""Deployment checks of our own, run by `manage.py check --deploy`."""

from django.conf import settings
from django.core.checks import Tags, Warning, register

# Cache backends whose data lives inside one process.
PROCESS_LOCAL_CACHES = {
    "django.core.cache.backends.locmem.LocMemCache",
    "django.core.cache.backends.dummy.DummyCache",
}


@register(Tags.caches, deploy=True)
def shared_cache(app_configs, **kwargs) -> list[Warning]:
    """Rate limits and the organizations' state stamps (actions.state) must be shared
    by every worker process; in one process's memory each worker would count and
    invalidate on its own, and a change made through one would not reach the others."""
    if settings.CACHES["default"]["BACKEND"] not in PROCESS_LOCAL_CACHES:
        return []
    return [
        Warning(
            "The cache is private to each process, so rate limits and tool-list "
            "invalidation do not hold across workers.",
            hint="Set CACHE_URL to a Redis shared by every worker, e.g. "
            "redis://redis.internal:6379/1.",
            id="opencx.W001",
        )
    ]
