"""A warm invoke: what it reads from memory, what it still asks the database, and that
nothing it keeps outlives a change (every change renews the organization's stamp)."""

import json
from unittest import mock

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from actions.models import ActionHeader, OrganizationAPIKey, ValueKind
from execution import http
from execution.models import Execution, GlobalVariable
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


def test_a_warm_invoke_reads_the_contact_and_writes_its_log_row_once_before_and_once_after(
    client, key, org, upstream
):
    action = order_action(org, upstream)
    contact = make_contact(org, email="ada@example.com")
    captured(upstream, "/v1/orders/A-1/refund")
    for _ in range(2):  # the action, its rows, the variables and the key are now in memory
        assert refund(client, key, action, contact).json()["ok"]
    with CaptureQueriesContext(connection) as queries:
        assert refund(client, key, action, contact).json()["ok"]
    statements = [query["sql"].split()[0] for query in queries]
    # The contact's details (magic fields; contacts change without renewing the stamp),
    # then the log row: written before the call, completed after it.
    assert statements == ["SELECT", "INSERT", "UPDATE"], [q["sql"] for q in queries]


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
