import os

import pytest

IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def pytest_sessionstart(session):
    """CI must exercise the real services; a silent fallback to SQLite would hide bugs."""
    if not IN_CI:
        return
    from django.db import connection

    if connection.vendor != "postgresql":
        pytest.exit(
            "CI is set but the database is not PostgreSQL: set DATABASE_URL (see .ci/run).",
            returncode=3,
        )


def require_service(available: bool, reason: str) -> None:
    """Skip a test whose real service is missing on a developer's machine; fail in CI."""
    if available:
        return
    if IN_CI:
        pytest.fail(f"{reason} (required in CI)")
    pytest.skip(reason)


@pytest.fixture
def eager_tasks(monkeypatch):
    """Celery tasks run in-process, as on the embedded default, even where CI sets a
    broker: a test that is not about the worker must not leave its jobs in Redis."""
    from opencx.celery import app

    monkeypatch.setitem(app.conf, "task_always_eager", True)
