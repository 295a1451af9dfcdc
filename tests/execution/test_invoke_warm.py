"""A warm invoke: what it reads from memory, what it still asks the database, and that
nothing it keeps outlives a change (every change renews the organization's stamp)."""

import io
import json
from unittest import mock

import pytest
from django.db import IntegrityError, OperationalError, connection, connections
from django.test.utils import CaptureQueriesContext
from werkzeug import Request, Response

from actions.models import ActionHeader, ActionParameter, OrganizationAPIKey, ValueKind
from execution import http, run
from execution.models import Execution, GlobalVariable
from tests.conftest import require_service
from tests.execution.conftest import API_HOST, KeepAlive
from tests.execution.test_invoke import CANARY, captured, invoke, order_action
from tests.factories import make_action, make_contact, make_organization, make_segment

pytestmark = pytest.mark.django_db


@pytest.fixture
def org():
    return make_organization()


@pytest.fixture
def key(org):
    _, raw = OrganizationAPIKey.objects.create_key(organization=org, name="rt", scopes="tools")
    return raw


def refund(client, key, action, contact):
    return invoke(
        client, key, action.tool_name, arguments={"order_id": "A-1", "reason": "late"},
        contact=contact.external_id,
    )  # fmt: skip


def test_a_warm_invoke_writes_its_log_row_once_before_and_once_after_and_reads_nothing(
    client, key, org, upstream
):
    action = order_action(org, upstream)
    contact = make_contact(org, email="ada@example.com")
    captured(upstream, "/v1/orders/A-1/refund")
    for _ in range(2):  # the action, its rows, the variables, the key and the contact's
        assert refund(client, key, action, contact).json()["ok"]  # details are in memory
    with CaptureQueriesContext(connection) as queries:
        assert refund(client, key, action, contact).json()["ok"]
    statements = [query["sql"].split()[0] for query in queries]
    # The log row: written before the call, completed after it.
    assert statements == ["INSERT", "UPDATE"], [q["sql"] for q in queries]


def test_a_changed_renamed_or_deleted_contact_counts_from_the_next_invoke(
    client, key, org, upstream
):
    action = order_action(org, upstream)
    contact = make_contact(org, external_id="cus_1", email="ada@example.com")
    seen = captured(upstream, "/v1/orders/A-1/refund")
    assert refund(client, key, action, contact).json()["ok"]
    assert seen[-1].headers["X-Customer"] == "ada@example.com"

    contact.email = "ada@new.example"
    contact.save()
    assert refund(client, key, action, contact).json()["ok"]
    assert seen[-1].headers["X-Customer"] == "ada@new.example"

    # A contact loaded again and given a new ID: the old ID is no longer known.
    renamed = type(contact).objects.get(pk=contact.pk)
    renamed.external_id = "cus_2"
    renamed.save()
    assert refund(client, key, action, contact).status_code == 400  # no email for cus_1
    assert refund(client, key, action, renamed).json()["ok"]
    assert seen[-1].headers["X-Customer"] == "ada@new.example"

    renamed.delete()
    assert refund(client, key, action, renamed).status_code == 400
    assert len(seen) == 3


def test_a_contacts_change_does_not_discard_the_organizations_cached_tool_lists(org):
    from actions import state

    contact = make_contact(org, email="ada@example.com")
    organization_stamp = state.current(org.pk)
    contact_stamp = state.contact_stamp(org.pk, contact.external_id)
    contact.name = "Ada"
    contact.save()
    assert state.current(org.pk) == organization_stamp
    assert state.contact_stamp(org.pk, contact.external_id) != contact_stamp


def test_the_outcome_is_written_once_the_answer_has_been_sent(key, org, upstream):
    """WSGI servers close a response after writing it: the AI's answer does not wait
    for the outcome's UPDATE (the row was written before the call, `started`)."""
    from django.core.handlers.wsgi import WSGIHandler
    from django.core.signals import request_finished, request_started
    from django.db import close_old_connections
    from django.test.client import RequestFactory

    action = order_action(org, upstream)
    contact = make_contact(org, email="ada@example.com")
    captured(upstream, "/v1/orders/A-1/refund")
    body = json.dumps(
        {"channel": "widget", "contact": contact.external_id,
         "arguments": {"order_id": "A-1", "reason": "late"}}
    ).encode()  # fmt: skip
    environ = RequestFactory()._base_environ(
        PATH_INFO=f"/api/v1/tools/{action.tool_name}/invoke",
        REQUEST_METHOD="POST",
        CONTENT_TYPE="application/json",
        CONTENT_LENGTH=str(len(body)),
        HTTP_AUTHORIZATION=f"Bearer {key}",
        **{"wsgi.input": io.BytesIO(body)},
    )
    statuses = []
    # As Django's test client does: this test's transaction keeps its connection open.
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        response = WSGIHandler()(environ, lambda status, headers: statuses.append(status))
        answer = json.loads(b"".join(response))
        assert statuses == ["200 OK"] and answer["ok"] is True
        row = Execution.objects.get(pk=answer["execution_id"])
        assert row.outcome == Execution.Outcome.STARTED and row.request["method"] == "POST"
        response.close()
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)
    row.refresh_from_db()
    assert row.outcome == Execution.Outcome.SUCCEEDED and row.status_code == 200


def test_an_outcome_that_cannot_be_written_is_logged_and_the_answer_stands(
    client, key, org, upstream, caplog
):
    action = order_action(org, upstream)
    contact = make_contact(org, email="ada@example.com")
    captured(upstream, "/v1/orders/A-1/refund")
    real_save = Execution.save

    def save(self, *args, **kwargs):
        if "outcome" in (kwargs.get("update_fields") or ()):
            raise OperationalError("the database went away")
        return real_save(self, *args, **kwargs)

    with mock.patch.object(Execution, "save", save), caplog.at_level("ERROR", "execution.api"):
        answer = refund(client, key, action, contact).json()
    assert answer["ok"] is True
    assert Execution.objects.get(pk=answer["execution_id"]).outcome == "started"
    assert f"could not record the outcome of execution {answer['execution_id']}" in caplog.text


def test_the_log_row_holds_the_masked_request_before_anything_is_sent(client, key, org, upstream):
    action = order_action(org, upstream)
    contact = make_contact(org, email="ada@example.com")
    seen = captured(upstream, "/v1/orders/A-1/refund")
    real_send = http.send
    at_send = []

    def send(request, **kwargs):
        at_send.append(Execution.objects.get())
        assert seen == []
        return real_send(request, **kwargs)

    with mock.patch.object(http, "send", send):
        result = refund(client, key, action, contact).json()
    (row,) = at_send
    assert row.pk == result["execution_id"]
    assert row.outcome == Execution.Outcome.STARTED
    assert row.arguments == {"order_id": "A-1", "reason": "late"}
    assert row.request["url"].endswith("/v1/orders/A-1/refund")
    assert row.request["headers"]["Authorization"] == "Bearer [REDACTED]"
    assert CANARY not in json.dumps(row.request)
    assert Execution.objects.get().outcome == Execution.Outcome.SUCCEEDED


def test_a_change_to_the_action_its_rows_or_its_audience_counts_from_the_next_invoke(
    client, key, org, upstream
):
    action = order_action(org, upstream)
    contact = make_contact(org, email="ada@example.com")
    seen = captured(upstream, "/v1/orders/A-1/refund")
    assert refund(client, key, action, contact).json()["ok"]

    ActionHeader.objects.create(action=action, key="X-Shop", kind=ValueKind.STATIC, value="eu")
    assert refund(client, key, action, contact).json()["ok"]
    assert seen[-1].headers["X-Shop"] == "eu"

    # The tool schema (and its compiled validator) follow the rows and the body schema.
    currency = ActionParameter.objects.create(
        action=action, location="query", key="currency", kind=ValueKind.AI, required=True
    )
    refused = refund(client, key, action, contact)
    assert refused.status_code == 422 and "currency" in json.dumps(refused.json())
    currency.delete()
    action.body_schema["properties"]["reason"]["enum"] = ["damaged"]
    action.save()
    refused = refund(client, key, action, contact)  # reason "late" is no longer allowed
    assert refused.status_code == 422 and "damaged" in json.dumps(refused.json())
    action.body_schema["properties"]["reason"].pop("enum")
    action.save()

    action.segments.add(make_segment(org))  # the contact is not in it
    assert refund(client, key, action, contact).status_code == 404
    contact.segments.add(action.segments.get())
    assert refund(client, key, action, contact).json()["ok"]

    action.on_widget = False
    action.save()
    assert refund(client, key, action, contact).status_code == 404
    assert len(seen) == 3


def test_a_changed_or_deleted_secret_counts_from_the_next_invoke(client, key, org, upstream):
    action = order_action(org, upstream)
    contact = make_contact(org, email="ada@example.com")
    seen = captured(upstream, "/v1/orders/A-1/refund")
    assert refund(client, key, action, contact).json()["ok"]
    assert seen[-1].headers["Authorization"] == f"Bearer {CANARY}"

    variable = GlobalVariable.objects.get(organization=org, name="SHOP")
    variable.set_value("sk_live_ROTATED_5d1e")
    variable.save()
    assert refund(client, key, action, contact).json()["ok"]
    assert seen[-1].headers["Authorization"] == "Bearer sk_live_ROTATED_5d1e"

    variable.delete()
    result = refund(client, key, action, contact).json()
    assert result["error"] == "Something went wrong"
    assert Execution.objects.get(pk=result["execution_id"]).cause == "configuration"
    assert len(seen) == 2


def test_two_organizations_calling_one_host_never_share_a_connection(
    client, raw_server, loopback_only
):
    server = raw_server(KeepAlive(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}"))
    keys = []
    for _ in range(2):
        organization = make_organization()
        action = make_action(
            organization, name="Look up an order", endpoint=f"https://{API_HOST}:{server.port}/o"
        )
        _, raw = OrganizationAPIKey.objects.create_key(
            organization=organization, name="rt", scopes="tools"
        )
        keys.append((raw, action.tool_name))
    for raw, tool_name in [*keys, *keys]:
        assert invoke(client, raw, tool_name).json()["ok"]
    assert server.connections == 2  # one per organization, each used twice
    assert len(loopback_only.attempts) == 2


@pytest.fixture
def slow_log_commit(transactional_db):
    """Every execution log INSERT takes 0.3 s more to commit (a deferred trigger)."""
    require_service(connection.vendor == "postgresql", "the database is PostgreSQL")
    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE FUNCTION test_slow_commit() RETURNS trigger LANGUAGE plpgsql AS "
            "$$ BEGIN PERFORM pg_sleep(0.3); RETURN NULL; END $$"
        )
        cursor.execute(
            "CREATE CONSTRAINT TRIGGER test_slow_commit AFTER INSERT ON execution_execution "
            "DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION test_slow_commit()"
        )
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute("DROP TRIGGER test_slow_commit ON execution_execution")
            cursor.execute("DROP FUNCTION test_slow_commit()")


@pytest.fixture
def observer(transactional_db):
    """A connection of its own, usable from the upstream's thread: what others see."""
    own = connections.create_connection("default")
    own.inc_thread_sharing()
    yield own
    own.close()


def test_the_upstream_gets_the_request_only_once_its_log_row_is_committed(
    client, key, org, upstream, slow_log_commit, observer
):
    """The INSERT is sent ahead and the call prepared meanwhile; the first byte waits
    for the commit, however slow, on a new connection and on a kept one."""
    action = order_action(org, upstream)
    contact = make_contact(org, email="ada@example.com")
    rows_seen = []

    def handler(request: Request) -> Response:
        with observer.cursor() as cursor:
            cursor.execute("SELECT outcome, request->>'method' FROM execution_execution")
            rows_seen.append(sorted(cursor.fetchall()))
        return Response(json.dumps({"status": "refunded"}), content_type="application/json")

    upstream.expect_request("/v1/orders/A-1/refund").respond_with_handler(handler)
    with CaptureQueriesContext(connection) as queries:
        first = refund(client, key, action, contact).json()
    logged = [q["sql"].split()[0] for q in queries if "execution_execution" in q["sql"]]
    second = refund(client, key, action, contact).json()
    assert first["ok"] and second["ok"]
    assert rows_seen == [
        [("started", "POST")],
        [("started", "POST"), ("succeeded", "POST")],
    ]
    assert logged == ["INSERT", "UPDATE"]  # the INSERT sent ahead is a query like any


def test_a_log_row_that_cannot_be_committed_means_nothing_is_sent(
    client, key, org, upstream, transactional_db
):
    require_service(connection.vendor == "postgresql", "the database is PostgreSQL")
    action = order_action(org, upstream)
    contact = make_contact(org, email="ada@example.com")
    seen = captured(upstream, "/v1/orders/A-1/refund")
    real = run.new_execution

    def unwritable(*args, **kwargs):  # its foreign key fails at commit
        row = real(*args, **kwargs)
        row.organization_id += 10_000
        return row

    with mock.patch.object(run, "new_execution", unwritable), pytest.raises(IntegrityError):
        refund(client, key, action, contact)
    assert seen == [] and Execution.objects.count() == 0
    assert refund(client, key, action, contact).json()["ok"]  # the next call goes through
    assert len(seen) == 1 and Execution.objects.get().outcome == "succeeded"
