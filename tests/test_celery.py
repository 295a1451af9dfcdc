"""The Celery app is wired to Django's settings and reaches a real worker through Redis."""

import os
import threading

from celery.contrib.testing.worker import start_worker

from opencx.celery import app
from tests.conftest import require_service


def redis_url() -> str | None:
    url = os.environ.get("CELERY_BROKER_URL", "")
    return url if url.startswith("redis://") else None


def redis_answers(url: str) -> bool:
    import redis

    try:
        return bool(redis.Redis.from_url(url, socket_connect_timeout=2).ping())
    except redis.exceptions.RedisError:
        return False


def test_celery_reads_its_configuration_from_django_settings(settings):
    assert app.conf.broker_url == settings.CELERY_BROKER_URL
    assert app.conf.task_always_eager == settings.CELERY_TASK_ALWAYS_EAGER
    assert app.conf.worker_prefetch_multiplier == 1


def test_a_task_sent_through_redis_runs_on_a_real_worker():
    url = redis_url()
    require_service(
        url is not None and redis_answers(url),
        "Redis is not configured or not answering (set CELERY_BROKER_URL=redis://...)",
    )
    ran = threading.Event()

    @app.task(name="tests.mark_ran")
    def mark_ran(token: str) -> None:
        if token == "through-redis":
            ran.set()

    # A dedicated queue, so a stray production worker on the same Redis cannot take it.
    queue = f"tests-{os.getpid()}"
    with start_worker(app, pool="solo", perform_ping_check=False, queues=[queue]):
        mark_ran.apply_async(args=["through-redis"], queue=queue)
        assert ran.wait(timeout=30), "the worker never ran the task"
