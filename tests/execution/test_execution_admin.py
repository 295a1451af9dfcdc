"""The execution log and the form submissions in the dashboard, and each action's
success rate and latency on its page."""

import doctest
import json
import re
from datetime import timedelta
from pathlib import Path

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from werkzeug import Response

import actions
import execution.performance
from actions.models import ActionHeader, ValueKind
from execution.models import Execution, FormSubmission, GlobalVariable
from execution.performance import action_performance
from execution.run import run_action
from tests.actions.admin_pages import result_rows
from tests.execution.conftest import API_HOST
from tests.factories import make_action, make_organization, make_user

pytestmark = pytest.mark.django_db

LIST_URL = reverse("admin:execution_execution_changelist")
SUBMISSIONS_URL = reverse("admin:execution_formsubmission_changelist")
CANARY = "sk_live_CANARY_0c7e19ab44"


@pytest.fixture
def org():
    return make_organization()


@pytest.fixture
def support_admin(client, org):
    user = make_user(organization=org)
    client.force_login(user)
    return user


def make_execution(action, **fields) -> Execution:
    created_at = fields.pop("created_at", None)
    fields = {
        "organization_id": action.organization_id,
        "action": action,
        "action_name": action.name,
        "tool_name": action.tool_name,
        "channel": "widget",
        "contact_external_id": "cus_1",
        "outcome": Execution.Outcome.SUCCEEDED,
        "status_code": 200,
        "duration_ms": 120.0,
        **fields,
    }
    row = Execution.objects.create(**fields)
    if created_at is not None:
        Execution.objects.filter(pk=row.pk).update(created_at=created_at)
    return row


def detail_url(row) -> str:
    return reverse(f"admin:execution_{row._meta.model_name}_change", args=[row.pk])


def listed(client, query: str = "") -> list[int]:
    response = client.get(LIST_URL + query)
    assert response.status_code == 200
    return sorted(row.pk for row in response.context["cl"].result_list)


# The log


def test_the_log_lists_the_columns_of_the_organizations_calls_only(client, org, support_admin):
    action = make_action(org)
    mine = make_execution(action, duration_ms=1234.4, cause="", truncated=True)
    theirs = make_execution(make_action(make_organization()))

    response = client.get(LIST_URL)

    assert response.context["cl"].list_display == [
        "created_at", "action_name", "channel", "outcome", "status_code",
        "duration", "cause", "truncated", "is_test",
    ]  # fmt: skip
    (row,) = result_rows(response)
    assert row["action_name"] == action.name
    assert (row["channel"], row["status_code"], row["duration"]) == ("widget", "200", "1,234 ms")
    assert "Succeeded" in row["outcome"]
    assert client.get(detail_url(mine)).status_code == 200
    assert client.get(detail_url(theirs)).status_code == 404


def test_the_log_is_read_only(client, org, support_admin):
    row = make_execution(make_action(org))
    assert client.get(reverse("admin:execution_execution_add")).status_code == 403
    assert client.post(detail_url(row), {"status_code": "500"}).status_code == 403
    delete = reverse("admin:execution_execution_delete", args=[row.pk])
    assert client.post(delete, {"post": "yes"}).status_code == 403
    row.refresh_from_db()
    assert row.status_code == 200
    assert 'name="_save"' not in client.get(detail_url(row)).content.decode()


def test_the_detail_page_shows_the_request_and_response_with_secrets_masked(
    client, org, support_admin, upstream
):
    action = make_action(org, endpoint=f"https://{API_HOST}:{upstream.port}/v1/orders/{{order_id}}")
    ActionHeader.objects.create(
        action=action, key="Authorization", kind=ValueKind.STATIC, value="Bearer {{global.SHOP}}"
    )
    variable = GlobalVariable(organization=org, name="SHOP", hosts=API_HOST)
    variable.set_value(CANARY)
    variable.save()
    upstream.expect_request("/v1/orders/42").respond_with_response(
        Response(json.dumps({"echo": CANARY, "status": "late"}), content_type="application/json")
    )
    result = run_action(action, arguments={"order_id": "42"}, channel="widget")
    assert result.ok

    page = client.get(detail_url(result.execution)).content.decode()

    assert CANARY not in page
    assert "[REDACTED]" in page
    assert "/v1/orders/42" in page  # the request as sent
    assert "&quot;status&quot;: &quot;late&quot;" in page  # the response body
    assert reverse("admin:actions_action_change", args=[action.pk]) in page


def test_the_filters_narrow_the_log(client, org, support_admin):
    refund, lookup = make_action(org), make_action(org)
    ok = make_execution(refund)
    missing = make_execution(refund, outcome=Execution.Outcome.FAILED, status_code=404)
    timeout = make_execution(
        lookup, outcome=Execution.Outcome.ERROR, status_code=None, cause="dns", channel="sms"
    )
    old = make_execution(lookup, created_at=timezone.now() - timedelta(days=400))
    stranger = make_action(make_organization())
    make_execution(stranger)

    assert listed(client, f"?action={refund.pk}") == sorted([ok.pk, missing.pk])
    assert listed(client, f"?action={stranger.pk}") == []
    assert listed(client, "?outcome=error") == [timeout.pk]
    assert listed(client, "?status=4xx") == [missing.pk]
    assert listed(client, "?status=2xx") == sorted([ok.pk, old.pk])
    assert listed(client, "?status=none") == [timeout.pk]
    assert listed(client, "?channel=sms") == [timeout.pk]
    year = timezone.now().year
    assert old.pk not in listed(client, f"?created_at__year={year}")
    sidebar = client.get(LIST_URL).content.decode()
    assert refund.name in sidebar and stranger.name not in sidebar


def test_the_log_is_searched_by_tool_name_and_contact(client, org, support_admin):
    refund, lookup = make_action(org), make_action(org)
    by_tool = make_execution(refund)
    by_contact = make_execution(lookup, contact_external_id="cus_ada_77")
    assert listed(client, f"?q={refund.tool_name}") == [by_tool.pk]
    assert listed(client, "?q=cus_ada_77") == [by_contact.pk]


def test_the_log_runs_the_same_queries_for_3_and_30_calls(
    client, org, support_admin, django_assert_num_queries
):
    actions = [make_action(org) for _ in range(3)]
    for n in range(3):
        make_execution(actions[n % 3])
    # session, user, the nav sidebar's 2 permission lookups, the action filter's
    # actions, the count, the page, the date hierarchy's 2
    with django_assert_num_queries(9):
        response = client.get(LIST_URL)
    assert len(response.context["cl"].result_list) == 3

    for n in range(27):
        make_execution(actions[n % 3])
    with django_assert_num_queries(9):
        response = client.get(LIST_URL)
    assert len(response.context["cl"].result_list) == 30


def test_the_list_does_not_read_the_large_columns(client, org, support_admin):
    make_execution(make_action(org), response_body="x" * 5000)
    response = client.get(LIST_URL)
    (row,) = response.context["cl"].result_list
    assert {"request", "response_body", "arguments"} <= row.get_deferred_fields()


# Each action's page


def page_of(client, action) -> str:
    response = client.get(reverse("admin:actions_action_change", args=[action.pk]))
    assert response.status_code == 200
    return response.content.decode()


def test_the_action_page_shows_success_rate_and_latency_of_recent_calls(client, org, support_admin):
    action = make_action(org)
    for n, duration in enumerate(range(10, 220, 10)):  # 10..210 ms, the last four 5xx
        failed = n >= 17
        make_execution(
            action,
            duration_ms=float(duration),
            outcome=Execution.Outcome.FAILED if failed else Execution.Outcome.SUCCEEDED,
            status_code=500 if failed else 200,
        )
    make_execution(action, duration_ms=9000.0, is_test=True)  # the Test button: left out
    make_execution(action, duration_ms=9000.0, created_at=timezone.now() - timedelta(days=31))
    make_execution(action, outcome=Execution.Outcome.REFUSED, status_code=None, duration_ms=None)
    make_execution(make_action(org), duration_ms=9000.0)  # another action

    performance = action_performance(action.pk)
    assert (performance.calls, performance.succeeded, performance.refused) == (21, 17, 1)
    assert performance.success_rate == pytest.approx(100 * 17 / 21)
    assert performance.p50_ms == pytest.approx(110.0)
    assert performance.p95_ms == pytest.approx(200.0)

    page = page_of(client, action)
    block = page[page.index('id="action-performance"') :]
    assert re.search(r"<strong>81\.0%</strong> succeeded", block)
    assert re.search(r'class="calls">21</span>', block)
    assert re.search(r'class="p50">110 ms<', block)
    assert re.search(r'class="p95">200 ms<', block)
    assert re.search(r'class="refused">1</span> refused before sending', block)
    log_url = f"{LIST_URL}?action={action.pk}"
    assert f'href="{log_url}"' in block
    assert len(listed(client, f"?action={action.pk}")) == 24


def test_latency_counts_calls_that_did_not_complete(org):
    action = make_action(org)
    make_execution(action, duration_ms=100.0)
    make_execution(
        action, outcome=Execution.Outcome.ERROR, cause="timeout", status_code=408,
        duration_ms=60_000.0,
    )  # fmt: skip
    performance = action_performance(action.pk)
    assert (performance.calls, performance.success_rate) == (2, 50.0)
    assert performance.p95_ms == pytest.approx(100 + 0.95 * 59_900)


def test_an_action_with_no_calls_says_so(client, org, support_admin):
    action = make_action(org)
    block = page_of(client, action).split('id="action-performance"')[1]
    assert "No calls sent." in block
    assert action_performance(action.pk).p50_ms is None


def test_the_add_page_shows_no_figures(client, org, support_admin):
    response = client.get(reverse("admin:actions_action_add"))
    assert response.status_code == 200
    assert 'id="action-performance"' not in response.content.decode()


def test_the_actions_app_does_not_import_execution():
    for path in Path(actions.__file__).parent.rglob("*.py"):
        source = path.read_text()
        assert not re.search(r"^\s*(from|import) (execution|importer)\b", source, re.M), path


def test_the_percentile_doctests_hold():
    assert doctest.testmod(execution.performance).failed == 0


# Form submissions (consent records)


def make_submission(action, **fields) -> FormSubmission:
    fields = {
        "organization_id": action.organization_id,
        "action": action,
        "action_name": action.name,
        "tool_name": action.tool_name,
        "channel": "widget",
        "contact_external_id": "cus_1",
        "arguments": {"order_id": "A-1"},
        "preview": {"method": "GET", "url": "https://api.example.com/v1/orders/A-1", "body": None},
        "expires_at": timezone.now() + timedelta(minutes=30),
        **fields,
    }
    return FormSubmission.objects.create(**fields)


def test_a_submission_page_shows_the_consent_and_links_the_call(client, org, support_admin):
    action = make_action(org)
    call = make_execution(action)
    submission = make_submission(
        action,
        status=FormSubmission.Status.SUBMITTED,
        submitted_by="Ada Lovelace (cus_1)",
        submitted_at=timezone.now(),
        submitted_values={"order_id": "A-2"},
        execution=call,
    )
    page = client.get(detail_url(submission)).content.decode()
    assert "Ada Lovelace (cus_1)" in page
    assert "&quot;order_id&quot;: &quot;A-2&quot;" in page
    assert detail_url(call) in page
    assert detail_url(submission) in client.get(detail_url(call)).content.decode()

    theirs = make_submission(make_action(make_organization()))
    assert client.get(detail_url(theirs)).status_code == 404
    assert client.get(SUBMISSIONS_URL).context["cl"].result_list[0] == submission


def test_the_submissions_list_runs_the_same_queries_for_3_and_30(
    client, org, support_admin, django_assert_num_queries
):
    action = make_action(org)
    for _ in range(3):
        make_submission(action)
    with django_assert_num_queries(8):
        response = client.get(SUBMISSIONS_URL)
    assert len(response.context["cl"].result_list) == 3
    for _ in range(27):
        make_submission(action, execution=make_execution(action))
    with django_assert_num_queries(8):
        response = client.get(SUBMISSIONS_URL)
    assert len(response.context["cl"].result_list) == 30


def test_percentiles_are_computed_in_postgresql_when_it_is_the_database(org):
    action = make_action(org)
    make_execution(action)
    with CaptureQueriesContext(connection) as queries:
        action_performance(action.pk)
    if connection.vendor == "postgresql":
        (query,) = queries.captured_queries
        assert query["sql"].count("PERCENTILE_CONT") == 2
    else:  # the portable fallback: counts, then a bounded sample of durations
        assert len(queries.captured_queries) == 2
        assert "LIMIT 10000" in queries.captured_queries[1]["sql"]


def test_a_form_past_its_expiry_is_listed_as_expired(client, org, support_admin):
    action = make_action(org)
    make_submission(action, expires_at=timezone.now() - timedelta(seconds=1))
    make_submission(action)
    states = sorted(row["state"] for row in result_rows(client.get(SUBMISSIONS_URL)))
    assert states == ["Awaiting the customer", "Expired"]
