"""An INSERT sent ahead (opencx.db.pending): committed by PostgreSQL on receipt,
confirmed later, seen by Django's instrumentation, and leaving the connection usable
whatever its outcome; saved at once where it cannot be sent ahead."""

import time

import pytest
from django.db import IntegrityError, connection, connections, transaction
from django.db.models.signals import post_save
from django.test.utils import CaptureQueriesContext

from execution.models import Execution
from opencx.db import pending as pending_module
from opencx.db.pending import send_insert
from tests.conftest import require_service
from tests.factories import make_action, make_organization


@pytest.fixture
def postgresql():
    require_service(connection.vendor == "postgresql", "the database is PostgreSQL")


@pytest.fixture
def other():
    """A second connection to the test database: what other sessions see."""
    own = connections.create_connection("default")
    yield own
    own.close()


def committed(other, pk_above: int) -> list[int]:
    with other.cursor() as cursor:
        cursor.execute("SELECT id FROM execution_execution WHERE id > %s", [pk_above])
        return [row[0] for row in cursor.fetchall()]


def row(action, **fields) -> Execution:
    fields = {"organization_id": action.organization_id, **fields}
    return Execution(
        action=action, action_name=action.name, tool_name=action.tool_name, channel="widget",
        **fields,
    )  # fmt: skip


def last_id() -> int:
    return Execution.objects.order_by("-id").values_list("id", flat=True).first() or 0


@pytest.mark.django_db(transaction=True)
def test_the_row_is_committed_before_it_is_confirmed_and_confirm_gives_it_its_id(postgresql, other):
    action = make_action(make_organization())
    before = last_id()
    instance = row(action, arguments={"order_id": "A-1"}, request={"method": "POST"})
    pending = send_insert(instance)
    assert instance.pk is None and instance._state.adding  # not confirmed yet
    deadline = time.monotonic() + 5
    while not (seen := committed(other, before)) and time.monotonic() < deadline:
        time.sleep(0.005)
    assert len(seen) == 1  # PostgreSQL committed it without waiting for us

    assert pending.confirm() is instance
    assert instance.pk == seen[0] and not instance._state.adding
    assert pending.confirm() is instance  # once; later calls repeat the outcome
    stored = Execution.objects.get(pk=instance.pk)
    assert stored.arguments == {"order_id": "A-1"} and stored.request == {"method": "POST"}
    assert stored.created_at is not None and stored.outcome == "started"
    instance.outcome = "succeeded"
    instance.save(update_fields=["outcome"])  # an UPDATE of the row, not a second INSERT
    assert Execution.objects.get().outcome == "succeeded"


@pytest.mark.django_db(transaction=True)
def test_the_queries_log_execute_wrappers_and_signals_see_it_as_a_save(postgresql):
    action = make_action(make_organization())
    wrapped, saved = [], []

    def wrapper(execute, sql, params, many, context):
        wrapped.append(sql.split()[0])
        return execute(sql, params, many, context)

    def receiver(sender, instance, created, **kwargs):
        saved.append((instance.pk, created))

    post_save.connect(receiver, sender=Execution)
    try:
        with CaptureQueriesContext(connection) as queries, connection.execute_wrapper(wrapper):
            pending = send_insert(row(action))
            assert saved == []  # post_save once it is confirmed, with its id
            instance = pending.confirm()
    finally:
        post_save.disconnect(receiver, sender=Execution)
    assert wrapped == ["INSERT"]
    (query,) = queries.captured_queries
    assert query["sql"].startswith('INSERT INTO "execution_execution"')
    assert "'widget'" in query["sql"]  # the statement as sent, values bound
    assert saved == [(instance.pk, True)]


@pytest.mark.django_db(transaction=True)
def test_a_failed_insert_raises_at_confirm_every_time_and_the_connection_goes_on(postgresql):
    action = make_action(make_organization())
    # The foreign keys are checked at commit: the statement is sent, then refused.
    pending = send_insert(row(action, organization_id=action.organization_id + 10_000))
    with pytest.raises(IntegrityError):
        pending.confirm()
    with pytest.raises(IntegrityError):
        pending.confirm()
    pending.settle()  # on an error path: not raised again
    assert Execution.objects.count() == 0
    assert send_insert(row(action)).confirm().pk is not None  # the connection is usable
    assert Execution.objects.count() == 1


@pytest.mark.django_db
def test_inside_a_transaction_it_is_saved_at_once(postgresql):
    action = make_action(make_organization())
    with transaction.atomic():
        instance = row(action)
        pending = send_insert(instance)
        assert instance.pk is not None  # an ordinary INSERT in the transaction
        assert pending.confirm() is instance
    assert Execution.objects.filter(pk=instance.pk).exists()


@pytest.mark.django_db
def test_where_it_cannot_be_sent_ahead_it_is_saved_at_once():
    """SQLite, or PostgreSQL inside the test's transaction: one ordinary INSERT."""
    action = make_action(make_organization())
    instance = row(action)
    with CaptureQueriesContext(connection) as queries:
        pending = send_insert(instance)
        assert instance.pk is not None and not instance._state.adding
    assert pending.confirm() is instance
    assert [q["sql"].split()[0] for q in queries.captured_queries] == ["INSERT"]


@pytest.mark.django_db(transaction=True)
def test_an_instrumentation_error_after_sending_leaves_the_connection_ready(postgresql):
    """An execute wrapper that fails once the statement went out: its error is raised,
    and the statement's answer is read, so the next query works."""
    action = make_action(make_organization())

    def failing(execute, sql, params, many, context):
        execute(sql, params, many, context)
        raise RuntimeError("the monitoring agent broke")

    with connection.execute_wrapper(failing), pytest.raises(RuntimeError):
        send_insert(row(action))
    assert Execution.objects.count() == 1  # it was sent and committed; nothing pending
    assert not connection.errors_occurred


@pytest.mark.django_db(transaction=True)
def test_a_wait_interrupted_midway_has_django_check_the_connection(postgresql, monkeypatch):
    action = make_action(make_organization())
    with connection.cursor() as cursor:  # an INSERT takes 0.3 s
        cursor.execute(
            "CREATE FUNCTION test_slow_insert() RETURNS trigger LANGUAGE plpgsql AS "
            "$$ BEGIN PERFORM pg_sleep(0.3); RETURN NEW; END $$"
        )
        cursor.execute(
            "CREATE TRIGGER slow_insert BEFORE INSERT ON execution_execution "
            "FOR EACH ROW EXECUTE FUNCTION test_slow_insert()"
        )
    try:
        pending = send_insert(row(action))

        def interrupted(fileno, events):
            raise KeyboardInterrupt

        monkeypatch.setattr(pending_module, "_wait", interrupted)
        with pytest.raises(KeyboardInterrupt):
            pending.confirm()
        assert connection.errors_occurred  # checked (and replaced if need be) before reuse
    finally:
        connection.close()  # its answer was never read
        with connection.cursor() as cursor:
            cursor.execute("DROP TRIGGER slow_insert ON execution_execution")
            cursor.execute("DROP FUNCTION test_slow_insert()")
