"""The Test button end to end: a support admin opens an action in Chromium, presses
Test, and watches the result arrive; the call is made by a real Celery worker that
took the task from Redis, against a real HTTPS server on loopback.

The worker runs in this process (a thread, the solo pool), so it shares the test's
settings, fake resolver and database; it consumes a queue of its own, the default
queue for the test's duration, so no other worker on the same Redis takes the task.
The result panel's polling is driven apart, with a pending call and Playwright's
clock, which decides when the page polls.
"""

import ipaddress
import json
import os
from datetime import datetime, timedelta
from urllib.parse import urlsplit

import pytest
from celery.contrib.testing.worker import start_worker
from celery.signals import task_postrun
from django.db import connections
from django.utils import timezone
from playwright.sync_api import expect
from werkzeug import Request, Response

from actions.models import Action, ActionHeader, ValueKind
from execution.models import Execution, TestCall
from execution.testcall import placeholder_values, run_test_call
from opencx.celery import app
from tests.conftest import require_service
from tests.execution import conftest as outbound
from tests.execution import fakes
from tests.test_celery import redis_answers, redis_url

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

# tests/execution's outbound fixtures, here too: a trustme CA, the HTTPS server on
# loopback (`upstream`), the fake resolver (`dns`) and the connection recorder.
ca, ca_bundle, server_context, https_server = (
    outbound.ca, outbound.ca_bundle, outbound.server_context, outbound.https_server,
)  # fmt: skip
dns, loopback_only, trust_loopback, upstream = (
    outbound.dns, outbound.loopback_only, outbound.trust_loopback, outbound.upstream,
)  # fmt: skip


@pytest.fixture
def worker(dns, monkeypatch):
    """A real Celery worker on Redis, consuming a queue of its own."""
    url = redis_url()
    require_service(
        url is not None and redis_answers(url),
        "Redis is not configured or not answering (set CELERY_BROKER_URL=redis://...)",
    )
    host = urlsplit(url).hostname or ""
    try:
        ipaddress.ip_address(host)
    except ValueError:  # a named Redis host: the fake resolver must still find it
        dns.answers[host] = sorted({info[4][0] for info in fakes._real_getaddrinfo(host, None)})
    queue = f"tests-test-button-{os.getpid()}"
    monkeypatch.setitem(app.conf, "task_default_queue", queue)

    # The worker thread's database connection must not outlive the test: the test
    # database is flushed after it, and dropped at the end of the session.
    def close_connections(**kwargs) -> None:
        connections.close_all()

    task_postrun.connect(close_connections, weak=False)
    try:
        with start_worker(app, pool="solo", perform_ping_check=False, queues=[queue]):
            yield
    finally:
        task_postrun.disconnect(close_connections)


def answer_shipped(server, path: str, method: str = "GET") -> list[Request]:
    seen: list[Request] = []

    def handler(request: Request) -> Response:
        request.get_data()
        seen.append(request)
        return Response(
            json.dumps({"order": "test", "status": "shipped"}),
            content_type="application/json",
            headers={"X-Request-Id": "req-7"},
        )

    server.expect_request(path, method=method).respond_with_handler(handler)
    return seen


def make_order_action(organization, upstream, **fields) -> Action:
    fields = {
        "name": "Look up an order",
        "description": "Looks up an order by its number and returns its status and "
        "delivery estimate. Use when the customer asks where their order is.",
        "method": Action.Method.GET,
        "endpoint": f"{upstream.base}/v1/orders/{{order_id}}",
        **fields,
    }
    action = Action.objects.create(organization=organization, **fields)
    ActionHeader.objects.create(
        action=action, key="X-Customer", kind=ValueKind.MAGIC, value="contact.email"
    )
    return action


def test_support_admin_tests_an_action_and_sees_the_result_arrive(
    signed_in_page, live_server, support_admin, upstream, worker
):
    page = signed_in_page
    user, _ = support_admin
    action = make_order_action(user.organization, upstream)
    seen = answer_shipped(upstream, "/v1/orders/test")

    page.goto(f"{live_server.url}/admin/actions/action/{action.pk}/change/")
    page.get_by_role("link", name="Test", exact=True).click()
    panel = page.locator("#test-action")
    expect(panel.locator("textarea")).to_have_value('{\n  "order_id": "test"\n}')
    expect(panel.locator(".test-context")).to_contain_text("test@example.com")
    expect(panel.locator(".test-warning")).to_have_count(0)  # a GET changes nothing

    panel.get_by_role("button", name="Send a test request").click()

    result = page.locator("#test-result")
    expect(result).to_have_attribute("data-finished", "true", timeout=30_000)
    expect(result.locator(".test-verdict")).to_contain_text("Pass")
    expect(result.locator(".test-status")).to_have_text("200")
    expect(result.locator(".test-headers")).to_contain_text("req-7")
    expect(result.locator(".test-body")).to_contain_text('"status": "shipped"')
    assert len(seen) == 1
    assert seen[0].headers["X-Customer"] == "test@example.com"
    test_call = TestCall.objects.select_related("execution").get()
    assert test_call.status == TestCall.Status.DONE
    assert test_call.execution.is_test


def test_a_delete_is_sent_only_after_the_admin_confirms_it(
    signed_in_page, live_server, support_admin, upstream, worker
):
    page = signed_in_page
    user, _ = support_admin
    action = make_order_action(user.organization, upstream, method=Action.Method.DELETE)
    seen = answer_shipped(upstream, "/v1/orders/A-1", method="DELETE")

    page.goto(f"{live_server.url}/admin/actions/action/{action.pk}/change/")
    panel = page.locator("#test-action")
    expect(panel.locator(".test-warning")).to_contain_text("really changes data")
    panel.locator("textarea").fill('{"order_id": "A-1"}')
    panel.get_by_role("button", name="Send a test request").click()

    expect(page.locator(".errornote").first).to_contain_text("Nothing was sent")
    expect(page.locator("#test-action .errorlist")).to_contain_text("Tick the box to send it")
    assert not TestCall.objects.exists()

    page.get_by_label("I understand this DELETE really changes data").check()
    page.get_by_role("button", name="Send a test request").click()

    result = page.locator("#test-result")
    expect(result).to_have_attribute("data-finished", "true", timeout=30_000)
    expect(result.locator(".test-status")).to_have_text("200")
    assert len(seen) == 1
    assert Execution.objects.get().request["method"] == "DELETE"


def test_the_result_panel_polls_until_the_call_is_finished(
    signed_in_page, live_server, support_admin, upstream
):
    page = signed_in_page
    user, _ = support_admin
    action = make_order_action(user.organization, upstream)
    answer_shipped(upstream, "/v1/orders/A-9")
    # Pressed, and not queued: this test plays the worker.
    test_call = TestCall.objects.create(
        organization=user.organization,
        action=action,
        requested_by=user,
        arguments={"order_id": "A-9"},
        context=placeholder_values(action),
    )
    start = datetime.now()
    page.clock.install(time=start)
    page.clock.pause_at(start)
    page.goto(f"{live_server.url}/admin/actions/action/{action.pk}/change/?test={test_call.pk}")

    result = page.locator("#test-result")
    expect(result.locator(".test-state")).to_have_text("Waiting for a worker…")
    expect(result).not_to_contain_text("No worker has taken the call yet")

    TestCall.objects.filter(pk=test_call.pk).update(
        created_at=timezone.now() - timedelta(minutes=1)
    )
    page.clock.run_for(600)  # the first poll: still waiting, for long now

    expect(result).to_contain_text("No worker has taken the call yet")
    expect(result).to_have_attribute("data-finished", "false")

    run_test_call(test_call.pk)
    page.clock.run_for(1100)  # the next poll brings the result

    expect(result).to_have_attribute("data-finished", "true")
    expect(result.locator(".test-verdict")).to_contain_text("Pass")
    expect(result.locator(".test-status")).to_have_text("200")
    expect(result.locator(".test-body")).to_contain_text('"status": "shipped"')
