"""The Test button on an action's page: a real call with sample arguments and
placeholder context, made by a task through the same run and guard as the AI's
calls, its result shown on the page; at most once, secrets masked, org-scoped.

Integration tests against a real HTTPS server on loopback (the `upstream` fixture);
the task runs in-process (eager) when the press commits.
"""

import doctest
import json
from datetime import timedelta

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from werkzeug import Request, Response

import execution.testcall
from actions.models import ActionHeader, ValueKind
from execution.models import Execution, GlobalVariable, TestCall
from execution.performance import action_performance
from execution.tasks import run_test_call_task
from execution.testcall import (
    TIME_LIMIT_SECONDS,
    placeholder_values,
    request_test_call,
    run_test_call,
    sample_arguments,
    shown_status,
)
from tests.execution.conftest import API_HOST
from tests.factories import make_action, make_organization, make_superuser, make_user

pytestmark = pytest.mark.django_db

CANARY = "sk_live_CANARY_5e0b7d21c4"
TEST_CALLS_URL = reverse("admin:execution_testcall_changelist")


@pytest.fixture
def org():
    return make_organization()


@pytest.fixture
def support_admin(client, org):
    user = make_user(organization=org)
    client.force_login(user)
    return user


def captured(server, path, response=None, method="GET"):
    """Record the requests `server` gets at `path`, answering `response` (200 JSON)."""
    seen: list[Request] = []

    def handler(request: Request) -> Response:
        request.get_data()
        seen.append(request)
        if response is not None:
            return response
        return Response(
            json.dumps({"status": "shipped"}),
            content_type="application/json",
            headers={"X-Request-Id": "req-42"},
        )

    server.expect_request(path, method=method).respond_with_handler(handler)
    return seen


def order_lookup(org, upstream, **fields):
    fields = {"endpoint": f"{upstream.base}/v1/orders/{{order_id}}", **fields}
    action = make_action(org, **fields)
    ActionHeader.objects.create(
        action=action, key="X-Customer", kind=ValueKind.MAGIC, value="contact.email"
    )
    return action


def send_url(action) -> str:
    return reverse("admin:execution_testcall_send", args=[action.pk])


def change_url(action) -> str:
    return reverse("admin:actions_action_change", args=[action.pk])


def result_url(test_call) -> str:
    return reverse("admin:execution_testcall_result", args=[test_call.pk])


def press(client, action, arguments, django_capture_on_commit_callbacks, **fields):
    """Press Test: post the panel's form, run the queued task as the commit does, and
    follow the redirect back to the action's page."""
    data = {"test-arguments": json.dumps(arguments), **fields}
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(send_url(action), data)
    assert response.status_code == 302, response.content.decode()[:2000]
    return client.get(response["Location"])


# The panel


def test_the_action_page_offers_a_sample_and_lists_what_the_call_is_sent_with(
    client, org, support_admin, upstream
):
    action = order_lookup(org, upstream)
    variable = GlobalVariable(organization=org, name="SHOP", hosts=API_HOST)
    variable.set_value(CANARY)
    variable.save()
    elsewhere = GlobalVariable(organization=org, name="OTHER_VENDOR", hosts="api.other.example")
    elsewhere.set_value("sk_other_value_123")
    elsewhere.save()

    page = client.get(change_url(action)).content.decode()

    assert "Test this action" in page
    assert '<a href="#test-action">Test</a>' in page
    assert "{\n  &quot;order_id&quot;: &quot;test&quot;\n}" in page  # the prefilled sample
    assert "<code>contact.email</code>" in page
    assert "<code>test@example.com</code>" in page
    assert f"<code>{org.pk}</code>" in page  # organization.id: the real one
    assert "<code>SHOP</code>" in page
    assert "OTHER_VENDOR" not in page  # not bound to this host: not sent
    assert CANARY not in page
    assert "really changes data" not in page  # a GET


def test_a_post_put_patch_or_delete_warns_that_the_call_really_changes_data(
    client, org, support_admin, upstream
):
    action = order_lookup(org, upstream, method="DELETE")
    page = client.get(change_url(action)).content.decode()
    assert "a test call really changes data at" in page
    assert "I understand this DELETE really changes data at api.example.com" in page


# Sending


def test_a_get_answered_200_passes_and_shows_status_headers_and_body(
    client, org, support_admin, upstream, django_capture_on_commit_callbacks, eager_tasks
):
    action = order_lookup(org, upstream)
    seen = captured(upstream, "/v1/orders/A-1001")

    page = press(client, action, {"order_id": "A-1001"}, django_capture_on_commit_callbacks)

    assert len(seen) == 1
    assert seen[0].headers["X-Customer"] == "test@example.com"  # the placeholder contact
    test_call = TestCall.objects.get()
    assert test_call.status == TestCall.Status.DONE
    assert test_call.passed
    assert test_call.requested_by == support_admin
    assert test_call.context["contact.email"] == "test@example.com"
    html = page.content.decode()
    assert 'data-finished="true"' in html
    assert "<strong>Pass</strong>" in html
    assert '<strong class="test-status">200</strong>' in html
    assert "x-request-id" in html and "req-42" in html
    assert "&quot;status&quot;: &quot;shipped&quot;" in html  # the body, indented JSON
    # The form comes back with the sample just sent, ready to test again.
    assert "&quot;order_id&quot;: &quot;A-1001&quot;" in html
    # The result says what it was sent with.
    fragment = client.get(result_url(test_call)).content.decode()
    assert "&quot;order_id&quot;: &quot;A-1001&quot;" in fragment
    assert "<tr><td><code>contact.email</code></td><td><code>test@example.com</code>" in fragment


def test_the_call_is_logged_as_a_test_and_left_out_of_the_actions_figures(
    client, org, support_admin, upstream, django_capture_on_commit_callbacks, eager_tasks
):
    action = order_lookup(org, upstream)
    captured(upstream, "/v1/orders/A-1")

    press(client, action, {"order_id": "A-1"}, django_capture_on_commit_callbacks)

    logged = Execution.objects.get()
    assert logged == TestCall.objects.get().execution
    assert (logged.is_test, logged.channel, logged.status_code) == (True, "widget", 200)
    assert logged.request["url"] == f"{upstream.base}/v1/orders/A-1"
    assert action_performance(action.pk).calls == 0


def test_a_500_is_shown_as_a_fail_with_its_body(
    client, org, support_admin, upstream, django_capture_on_commit_callbacks, eager_tasks
):
    action = order_lookup(org, upstream)
    captured(
        upstream,
        "/v1/orders/A-1",
        Response("database on fire", status=500, content_type="text/plain"),
    )

    html = press(client, action, {"order_id": "A-1"}, django_capture_on_commit_callbacks)
    html = html.content.decode()

    assert "<strong>Fail</strong>" in html
    assert '<strong class="test-status">500</strong>' in html
    assert "database on fire" in html
    test_call = TestCall.objects.get()
    assert test_call.status == TestCall.Status.DONE
    assert not test_call.passed


def test_a_post_is_sent_only_once_its_confirmation_box_is_ticked(
    client, org, support_admin, upstream, django_capture_on_commit_callbacks, eager_tasks
):
    action = order_lookup(
        org,
        upstream,
        method="POST",
        endpoint=f"{upstream.base}/v1/orders/{{order_id}}/refund",
        body_schema={
            "type": "object",
            "properties": {"reason": {"type": "string", "examples": ["damaged"]}},
            "required": ["reason"],
        },
    )
    seen = captured(upstream, "/v1/orders/A-1/refund", method="POST")
    arguments = {"order_id": "A-1", "reason": "damaged"}

    with django_capture_on_commit_callbacks(execute=True):
        refused = client.post(send_url(action), {"test-arguments": json.dumps(arguments)})

    assert refused.status_code == 200
    assert "Tick the box to send it: a POST test call is a real call." in refused.content.decode()
    assert "Nothing was sent" in refused.content.decode()
    assert not TestCall.objects.exists()
    assert seen == []

    press(client, action, arguments, django_capture_on_commit_callbacks, **{"test-confirm": "on"})

    assert len(seen) == 1
    assert json.loads(seen[0].get_data()) == {"reason": "damaged"}
    assert TestCall.objects.get().passed


def test_sample_arguments_that_do_not_fit_the_tool_schema_are_refused_before_queueing(
    client, org, support_admin, upstream, django_capture_on_commit_callbacks
):
    action = order_lookup(org, upstream)
    for text, message in [
        ('{"order_id": 5}', "5 is not of type &#x27;string&#x27;"),
        ('{"order_id": "1", "admin": true}', "(&#x27;admin&#x27; was unexpected)"),
        ("{}", "&#x27;order_id&#x27; is a required property"),
        ("[1]", "Write the arguments as a JSON object"),
        ("{nope", "is not valid JSON"),
    ]:
        with django_capture_on_commit_callbacks(execute=True):
            page = client.post(send_url(action), {"test-arguments": text})
        assert page.status_code == 200
        assert message in page.content.decode(), text
    assert not TestCall.objects.exists()


def test_a_blocked_address_shows_its_cause_and_nothing_connects(
    client,
    org,
    support_admin,
    upstream,
    dns,
    loopback_only,
    django_capture_on_commit_callbacks,
    eager_tasks,
):
    dns.answers["metadata.example.com"] = ["169.254.169.254"]
    action = make_action(org, endpoint="https://metadata.example.com/latest/{order_id}")

    html = press(client, action, {"order_id": "1"}, django_capture_on_commit_callbacks)
    html = html.content.decode()

    assert "<strong>Fail</strong>" in html
    assert '<code class="test-cause">blocked_address</code>' in html
    assert "169.254.169.254" in html  # the detail says which address was refused
    assert not [a for a in loopback_only.attempts if a[0] == "169.254.169.254"]
    assert TestCall.objects.get().status == TestCall.Status.FAILED
    assert Execution.objects.get().cause == "blocked_address"


def test_secrets_are_masked_on_the_page_and_in_what_is_stored(
    client, org, support_admin, upstream, django_capture_on_commit_callbacks, eager_tasks
):
    action = order_lookup(org, upstream)
    ActionHeader.objects.create(
        action=action, key="Authorization", kind=ValueKind.STATIC, value="Bearer {{global.SHOP}}"
    )
    variable = GlobalVariable(organization=org, name="SHOP", hosts=API_HOST)
    variable.set_value(CANARY)
    variable.save()
    # A careless API echoes the key back, in a header and in the body.
    echo = Response(
        json.dumps({"your_key": CANARY}),
        content_type="application/json",
        headers={"X-Echo": f"Bearer {CANARY}"},
    )
    seen = captured(upstream, "/v1/orders/A-1", echo)

    page = press(client, action, {"order_id": "A-1"}, django_capture_on_commit_callbacks)

    assert seen[0].headers["Authorization"] == f"Bearer {CANARY}"  # it was really sent
    test_call = TestCall.objects.select_related("execution").get()
    fragment = client.get(result_url(test_call)).content.decode()
    for html in (page.content.decode(), fragment):
        assert "<strong>Pass</strong>" in html
        assert "[REDACTED]" in html
        assert CANARY not in html
    stored = json.dumps(
        [
            test_call.arguments,
            test_call.context,
            test_call.execution.request,
            test_call.execution.response_headers,
            test_call.execution.response_body,
        ]
    )
    assert CANARY not in stored


def test_a_call_refused_before_sending_says_why(
    client, org, support_admin, upstream, django_capture_on_commit_callbacks, eager_tasks
):
    action = order_lookup(org, upstream)
    ActionHeader.objects.create(
        action=action, key="Authorization", kind=ValueKind.STATIC, value="{{global.MISSING}}"
    )
    seen = captured(upstream, "/v1/orders/A-1")

    html = press(client, action, {"order_id": "A-1"}, django_capture_on_commit_callbacks)
    html = html.content.decode()

    assert "refused before sending" in html
    assert '<code class="test-cause">configuration</code>' in html
    assert "The global variable MISSING is not defined; add it in the dashboard." in html
    assert seen == []
    assert TestCall.objects.get().status == TestCall.Status.FAILED


# Scoping and permissions


def test_another_organizations_action_and_test_calls_are_a_404(
    client, org, support_admin, upstream, django_capture_on_commit_callbacks
):
    theirs = order_lookup(make_organization(), upstream)
    their_call = TestCall.objects.create(
        organization=theirs.organization, action=theirs, context=placeholder_values(theirs)
    )
    mine = order_lookup(org, upstream)

    with django_capture_on_commit_callbacks(execute=True):
        sent = client.post(send_url(theirs), {"test-arguments": '{"order_id": "1"}'})
    assert sent.status_code == 404
    assert client.get(result_url(their_call)).status_code == 404
    detail = reverse("admin:execution_testcall_change", args=[their_call.pk])
    assert client.get(detail).status_code == 404
    # Named on my action's page, their test call is not shown either.
    page = client.get(f"{change_url(mine)}?test={their_call.pk}").content.decode()
    assert 'id="test-result"' not in page
    assert list(client.get(TEST_CALLS_URL).context["cl"].result_list) == []
    their_history = f"{TEST_CALLS_URL}?action={theirs.pk}"
    assert list(client.get(their_history).context["cl"].result_list) == []
    assert TestCall.objects.count() == 1


def test_a_superuser_may_test_any_organizations_action(
    client, org, upstream, django_capture_on_commit_callbacks, eager_tasks
):
    client.force_login(make_superuser())
    action = order_lookup(org, upstream)
    captured(upstream, "/v1/orders/A-1")

    press(client, action, {"order_id": "A-1"}, django_capture_on_commit_callbacks)

    assert TestCall.objects.get().organization == org


def test_sending_takes_a_post_with_a_csrf_token(org, upstream):
    action = order_lookup(org, upstream)
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(make_user(organization=org))

    assert browser.get(send_url(action)).status_code == 405
    forged = browser.post(send_url(action), {"test-arguments": '{"order_id": "1"}'})
    assert forged.status_code == 403
    assert not TestCall.objects.exists()


def test_signed_out_visitors_are_sent_to_the_login_page(client, org, upstream):
    action = order_lookup(org, upstream)
    response = client.post(send_url(action), {"test-arguments": '{"order_id": "1"}'})
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("admin:login"))
    assert not TestCall.objects.exists()


# At most once


def test_a_redelivered_task_does_not_send_again(org, upstream):
    action = order_lookup(org, upstream)
    seen = captured(upstream, "/v1/orders/A-1")
    test_call = request_test_call(action, user=None, arguments={"order_id": "A-1"})

    run_test_call(test_call.pk)
    run_test_call(test_call.pk)  # delivered again

    assert len(seen) == 1
    test_call.refresh_from_db()
    assert test_call.status == TestCall.Status.DONE
    assert Execution.objects.count() == 1


def test_a_call_found_running_by_a_second_delivery_becomes_outcome_unknown_unsent(
    client, org, support_admin, upstream
):
    action = order_lookup(org, upstream)
    seen = captured(upstream, "/v1/orders/A-1")
    test_call = request_test_call(action, user=support_admin, arguments={"order_id": "A-1"})
    # The first worker claimed the call and died mid-call.
    assert execution.testcall._claim(test_call.pk) is not None

    run_test_call_task.apply(args=[test_call.pk])

    assert seen == []
    test_call.refresh_from_db()
    assert test_call.status == TestCall.Status.OUTCOME_UNKNOWN
    assert test_call.execution.outcome == Execution.Outcome.UNKNOWN
    html = client.get(result_url(test_call)).content.decode()
    assert "<strong>Outcome unknown</strong>" in html
    assert 'data-finished="true"' in html


def test_a_double_press_makes_one_call(org, upstream):
    action = order_lookup(org, upstream)
    user = make_user(organization=org)
    first = request_test_call(action, user=user, arguments={"order_id": "A-1"})
    again = request_test_call(action, user=user, arguments={"order_id": "A-1"})
    assert again == first
    assert TestCall.objects.count() == 1


def test_the_task_is_acknowledged_early_never_retried_and_time_limited(settings):
    assert run_test_call_task.acks_late is False
    assert not getattr(run_test_call_task, "autoretry_for", ())
    assert run_test_call_task.ignore_result is True
    # Just past the call's own deadline (60 s: 65 s and 70 s).
    deadline = settings.EXECUTION_TIMEOUT_SECONDS
    assert run_test_call_task.soft_time_limit == deadline + 5
    assert run_test_call_task.time_limit == deadline + 10


# While it runs


def test_the_result_polls_until_the_call_is_finished(client, org, support_admin, upstream):
    action = order_lookup(org, upstream)
    test_call = request_test_call(action, user=support_admin, arguments={"order_id": "A-1"})

    page = client.get(f"{change_url(action)}?test={test_call.pk}").content.decode()
    assert 'data-finished="false"' in page
    assert f'data-result-url="{result_url(test_call)}"' in page
    assert "Waiting for a worker…" in page

    TestCall.objects.filter(pk=test_call.pk).update(
        created_at=timezone.now() - timedelta(seconds=30)
    )
    fragment = client.get(result_url(test_call)).content.decode()
    assert "No worker has taken the call yet" in fragment
    assert 'data-finished="false"' in fragment


def test_a_call_running_past_the_time_limit_is_shown_as_outcome_unknown(org, upstream):
    action = order_lookup(org, upstream)
    test_call = request_test_call(action, user=None, arguments={"order_id": "A-1"})
    claimed = execution.testcall._claim(test_call.pk)

    assert shown_status(claimed) == TestCall.Status.RUNNING
    later = claimed.updated_at + timedelta(seconds=TIME_LIMIT_SECONDS + 10)
    assert shown_status(claimed, now=later) == TestCall.Status.OUTCOME_UNKNOWN


# The history


def test_the_test_call_list_runs_the_same_queries_for_3_and_30_rows(
    client, org, support_admin, upstream, django_assert_num_queries
):
    action = order_lookup(org, upstream)

    def make_calls(count: int) -> None:
        for _ in range(count):
            test_call = TestCall.objects.create(organization=org, action=action)
            execution.testcall._claim(test_call.pk)

    make_calls(3)
    # session, user, the nav sidebar's 2 permission lookups, the action filter's
    # actions, the count, the page, the date hierarchy's 2
    with django_assert_num_queries(9):
        response = client.get(TEST_CALLS_URL)
    assert len(response.context["cl"].result_list) == 3
    make_calls(27)
    with django_assert_num_queries(9):
        response = client.get(TEST_CALLS_URL)
    assert len(response.context["cl"].result_list) == 30


def test_the_panel_links_to_the_actions_earlier_tests(client, org, support_admin, upstream):
    action = order_lookup(org, upstream)
    other = order_lookup(org, upstream)
    mine = request_test_call(action, user=support_admin, arguments={"order_id": "A-1"})
    request_test_call(other, user=support_admin, arguments={"order_id": "A-2"})

    page = client.get(change_url(action)).content.decode()
    history = f"{TEST_CALLS_URL}?action={action.pk}"
    assert f'<a href="{history}" class="test-history">' in page
    listed = client.get(history).context["cl"].result_list
    assert list(listed) == [mine]


def test_a_test_call_opens_on_its_actions_page(client, org, support_admin, upstream):
    action = order_lookup(org, upstream)
    test_call = request_test_call(action, user=support_admin, arguments={"order_id": "A-1"})
    detail = reverse("admin:execution_testcall_change", args=[test_call.pk])
    response = client.get(detail)
    assert response.status_code == 302
    assert response["Location"] == f"{change_url(action)}?test={test_call.pk}#test-action"


# Samples


def test_samples_follow_the_schemas_suggestions_then_types_and_formats():
    schema = {
        "type": "object",
        "properties": {
            "id": {"type": "integer", "exclusiveMinimum": 0},
            "when": {"type": "string", "format": "date-time"},
            "code": {"type": "string", "minLength": 6, "maxLength": 8},
            "force": {"type": "boolean"},
            "kind": {"anyOf": [{"type": "null"}, {"const": "refund"}]},
            "tags": {"type": "array", "items": {"type": "string"}, "minItems": 2},
            "page": {"type": "integer", "examples": [3]},
            "address": {
                "allOf": [
                    {
                        "type": "object",
                        "properties": {"city": {"type": "string"}},
                        "required": ["city"],
                    },
                    {
                        "type": "object",
                        "properties": {
                            "zip": {
                                "type": "string",
                                "pattern": "^[0-9]{5}$",
                                "examples": ["75001"],
                            }
                        },
                    },
                ]
            },
            "note": {"type": "string"},
        },
        "required": ["id", "when", "code", "force", "kind", "tags", "address"],
    }
    assert sample_arguments(schema) == {
        "id": 1,
        "when": "2025-01-01T12:00:00Z",
        "code": "testxx",
        "force": False,
        "kind": "refund",
        "tags": ["test", "test"],
        "page": 3,
        "address": {"city": "test", "zip": "75001"},
    }


def test_a_recursive_schema_is_sampled_once_and_left_for_the_admin_to_finish():
    schema = {
        "type": "object",
        "properties": {"node": {"$ref": "#/$defs/Node"}},
        "required": ["node"],
        "$defs": {
            "Node": {
                "type": "object",
                "properties": {"name": {"type": "string"}, "child": {"$ref": "#/$defs/Node"}},
                "required": ["name", "child"],
            }
        },
    }
    assert sample_arguments(schema) == {"node": {"name": "test", "child": None}}


def test_a_schema_too_large_to_fill_still_gives_a_bounded_sample_at_once():
    # Ten required children per level, eight levels deep: 10**8 values if filled in.
    levels = {
        f"L{n}": {
            "type": "object",
            "properties": {f"c{k}": {"$ref": f"#/$defs/L{n + 1}"} for k in range(10)},
            "required": [f"c{k}" for k in range(10)],
        }
        for n in range(8)
    }
    levels["L8"] = {"type": "string"}
    schema = {
        "type": "object",
        "properties": {
            "many": {"type": "array", "items": {"type": "string"}, "minItems": 10**9},
            "long": {"type": "string", "minLength": 10**9},
            "tree": {"$ref": "#/$defs/L0"},
        },
        "required": ["many", "long", "tree"],
        "$defs": levels,
    }
    sample = sample_arguments(schema)
    assert len(sample["many"]) == 20
    assert len(sample["long"]) == 1000
    assert len(json.dumps(sample)) < 100_000


def test_placeholder_values_cover_the_attributes_and_channel_the_action_reads(org, upstream):
    action = order_lookup(org, upstream, on_widget=False, on_email=True)
    ActionHeader.objects.create(
        action=action, key="X-Plan", kind=ValueKind.MAGIC, value="contact.attributes.plan"
    )
    values = placeholder_values(action)
    assert values["contact.attributes.plan"] == "test"
    assert values["channel"] == "email"
    assert values["organization.id"] == str(org.pk)
    assert list(values)[:5] == [
        "contact.external_id",
        "contact.email",
        "contact.name",
        "contact.phone",
        "contact.attributes.plan",
    ]


def test_the_test_call_doctests_hold():
    assert doctest.testmod(execution.testcall).failed == 0
