"""The PostgreSQL backend's health check: skipped right after a proven use, run after
idleness or an error, and still replacing a connection the server dropped."""

import pytest
from django.db import DatabaseError, connection, connections

from opencx.db.postgresql import base
from tests.conftest import require_service


@pytest.fixture
def wrapper(db):
    """A connection of our own to the test database, outside the test's transaction
    (request boundaries close a connection left inside one)."""
    require_service(connection.vendor == "postgresql", "the backend is PostgreSQL's")
    own = connections.create_connection("default")
    assert isinstance(own, base.DatabaseWrapper)
    assert own.settings_dict["CONN_HEALTH_CHECKS"] and own.settings_dict["CONN_MAX_AGE"]
    own.pings = 0
    is_usable = own.is_usable

    def counted() -> bool:
        own.pings += 1
        return is_usable()

    own.is_usable = counted
    yield own
    own.close()


def request(wrapper, sql: str = "SELECT 1") -> None:
    """What a request (or a Celery task) does: boundaries around its queries."""
    wrapper.close_if_unusable_or_obsolete()  # request_started
    try:
        with wrapper.cursor() as cursor:
            cursor.execute(sql)
    finally:
        wrapper.close_if_unusable_or_obsolete()  # request_finished


def backend_pid(wrapper) -> int:
    return wrapper.connection.info.backend_pid


def test_a_connection_that_just_ended_a_request_is_not_pinged(wrapper):
    request(wrapper)  # connects: a new connection needs no check
    first = backend_pid(wrapper)
    for _ in range(3):
        request(wrapper)
    assert wrapper.pings == 0
    assert backend_pid(wrapper) == first


def test_an_idle_connection_is_pinged_before_use(wrapper, monkeypatch):
    request(wrapper)
    monkeypatch.setattr(base, "PROVEN_FOR_SECONDS", 0.0)
    request(wrapper)
    assert wrapper.pings == 1


def test_a_connection_dropped_while_idle_is_replaced_before_the_request_uses_it(
    wrapper, monkeypatch
):
    request(wrapper)
    dropped = backend_pid(wrapper)
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_terminate_backend(%s)", [dropped])
        assert cursor.fetchone() == (True,)
    monkeypatch.setattr(base, "PROVEN_FOR_SECONDS", 0.0)
    request(wrapper)  # the ping fails, the connection is replaced, the query works
    assert wrapper.pings == 1
    assert backend_pid(wrapper) != dropped


def test_after_a_database_error_the_connection_is_checked_before_it_is_kept(wrapper):
    request(wrapper)
    with pytest.raises(DatabaseError):
        request(wrapper, "SELECT * FROM no_such_table")
    assert wrapper.pings == 1  # at the end of the failed request
    request(wrapper)  # ... which proved it: trusted
    assert wrapper.pings == 1


def test_a_connection_dropped_mid_request_is_closed_and_the_next_request_reconnects(wrapper):
    request(wrapper)
    dropped = backend_pid(wrapper)
    with pytest.raises(DatabaseError):
        request(wrapper, f"SELECT pg_terminate_backend({dropped})")
    assert wrapper.connection is None  # its check failed: closed, not trusted
    request(wrapper)
    assert backend_pid(wrapper) != dropped
