"""Require form submission: invoke pauses on a form; submit runs the call exactly once.

Against the real loopback HTTPS upstream: what it receives is what was sent.
"""

import doctest
import json
import threading
import time
from datetime import timedelta
from unittest import mock

import pytest
from django.db import connection, connections
from django.test import Client
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from werkzeug import Request, Response

import execution.submissions
from actions.models import ActionHeader, ActionParameter, OrganizationAPIKey, ValueKind
from execution.models import Execution, FormSubmission, GlobalVariable
from tests.conftest import require_service
from tests.execution.conftest import API_HOST
from tests.factories import make_action, make_organization

pytestmark = pytest.mark.django_db

CANARY = "sk_live_CANARY_5d02f7aa61"
RUNTIME_TOKEN = "per-user-token-RT-7731"


@pytest.fixture
def org():
    return make_organization()


@pytest.fixture
def key(org):
    _, raw = OrganizationAPIKey.objects.create_key(organization=org, name="rt", scopes="tools")
    return raw


def post(client, key, url, body=None):
    return client.post(
        url, body or {}, content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {key}"
    )


def invoke(client, key, action, **body):
    body.setdefault("channel", "widget")
    return post(client, key, f"/api/v1/tools/{action.tool_name}/invoke", body)


def submit(client, key, submission_id, values, submitted_by="cus_ada", **body):
    return post(
        client,
        key,
        f"/api/v1/form-submissions/{submission_id}/submit",
        {"values": values, "submitted_by": submitted_by, **body},
    )


def cancel(client, key, submission_id):
    return post(client, key, f"/api/v1/form-submissions/{submission_id}/cancel")


def captured(server, path):
    seen: list[Request] = []

    def handler(request: Request) -> Response:
        request.get_data()
        seen.append(request)
        return Response(json.dumps({"refund": "re_1"}), content_type="application/json")

    server.expect_request(path).respond_with_handler(handler)
    return seen


def refund_action(org, upstream, **fields):
    """A POST that refunds an order: path and query arguments, a JSON body, a static
    header with a secret, a magic header, a secret in a static query value, and the
    secret as a global variable bound to the upstream's host."""
    action = make_action(
        org,
        name="Refund an order",
        method="POST",
        endpoint=f"https://{API_HOST}:{upstream.port}/v1/orders/{{order_id}}/refund",
        body_schema={
            "type": "object",
            "properties": {
                "reason": {"type": "string", "title": "Why", "description": "Shown to staff."},
                "amount": {"type": "integer", "minimum": 1},
            },
            "required": ["reason"],
        },
        requires_form=True,
        **fields,
    )
    ActionParameter.objects.create(
        action=action, location="query", key="notify", kind=ValueKind.AI, required=False
    )
    ActionParameter.objects.create(
        action=action, location="query", key="api_key", kind=ValueKind.STATIC,
        value="{{global.SHOP}}",
    )  # fmt: skip
    ActionHeader.objects.create(
        action=action, key="Authorization", kind=ValueKind.STATIC, value="Bearer {{global.SHOP}}"
    )
    ActionHeader.objects.create(
        action=action, key="X-Customer", kind=ValueKind.MAGIC, value="contact.email"
    )
    variable = GlobalVariable(organization=org, name="SHOP", hosts=API_HOST)
    variable.set_value(CANARY)
    variable.save()
    return action


ARGUMENTS = {"order_id": "A-1042", "reason": "damaged", "amount": 1200, "notify": "yes"}
CONTEXT = {"contact": {"email": "ada@example.com"}, "conversation": {"id": "conv_1"}}


def open_form(client, key, action, **body):
    body = {"arguments": ARGUMENTS, "context": CONTEXT, "contact": "cus_ada", **body}
    response = invoke(client, key, action, **body)
    assert response.status_code == 202, response.content
    return response.json()


# Opening the form


def test_invoking_an_action_that_requires_a_form_sends_nothing_and_returns_the_form(
    client, key, org, upstream, settings
):
    settings.FORM_SUBMISSION_TTL_SECONDS = 600
    action = refund_action(org, upstream)
    seen = captured(upstream, "/v1/orders/A-1042/refund")

    before = timezone.now()
    form = open_form(client, key, action)

    assert seen == []
    assert not Execution.objects.exists()
    assert form["status"] == "awaiting_form"
    expires_at = parse_datetime(form["expires_at"])
    assert before + timedelta(seconds=599) <= expires_at <= timezone.now() + timedelta(seconds=601)
    # By name: PostgreSQL's jsonb keeps a body schema's properties in its own order.
    fields = {f["name"]: f for f in form["fields"]}
    assert {
        name: (f["label"], f["location"], f["required"], f["value"]) for name, f in fields.items()
    } == {
        "reason": ("Why", "body", True, "damaged"),
        "amount": ("Amount", "body", False, 1200),
        "order_id": ("Order id", "path", True, "A-1042"),
        "notify": ("Notify", "query", False, "yes"),
    }
    assert fields["reason"]["description"] == "Shown to staff."
    assert fields["amount"]["schema"] == {"type": "integer", "minimum": 1}
    assert form["preview"] == {
        "method": "POST",
        "url": f"https://{API_HOST}:{upstream.port}/v1/orders/A-1042/refund"
        "?api_key=[REDACTED]&notify=yes",
        "body": {"reason": "damaged", "amount": 1200},
    }

    submission = FormSubmission.objects.get(pk=form["submission_id"])
    assert (submission.status, submission.organization_id, submission.action_id) == (
        FormSubmission.Status.AWAITING, org.pk, action.pk,
    )  # fmt: skip
    assert (submission.channel, submission.contact_external_id) == ("widget", "cus_ada")
    assert submission.arguments == ARGUMENTS
    assert submission.context["contact"]["email"] == "ada@example.com"
    assert submission.context["conversation"] == {"id": "conv_1"}
    assert submission.expires_at == expires_at


def test_the_preview_and_the_stored_form_hold_no_header_and_no_secret(client, key, org, upstream):
    action = refund_action(org, upstream)
    form = open_form(client, key, action, headers={"X-User-Token": RUNTIME_TOKEN})

    shown = json.dumps(form)
    stored = json.dumps(
        list(FormSubmission.objects.values("arguments", "context", "preview")), default=str
    )
    for text in (shown, json.dumps(form["preview"])):
        assert CANARY not in text
        assert RUNTIME_TOKEN not in text
    assert CANARY not in stored and RUNTIME_TOKEN not in stored
    preview = json.dumps(form["preview"])
    for header in ("Authorization", "X-Customer", "SHOP", "X-User-Token", "User-Agent"):
        assert header not in preview
    assert "ada@example.com" not in preview  # the magic header's value


def test_invalid_ai_arguments_are_a_422_and_open_no_form(client, key, org, upstream):
    action = refund_action(org, upstream)
    response = invoke(
        client, key, action, arguments={"order_id": "1", "reason": 5}, context=CONTEXT
    )
    assert response.status_code == 422
    assert "not of type 'string'" in " ".join(response.json()["arguments"])
    assert not FormSubmission.objects.exists()
    assert Execution.objects.get().outcome == Execution.Outcome.REFUSED


def test_a_missing_magic_value_is_a_400_and_opens_no_form(client, key, org, upstream):
    action = refund_action(org, upstream)
    response = invoke(client, key, action, arguments={"order_id": "1", "reason": "x"})
    assert response.status_code == 400
    assert "contact.email" in response.json()["context"][0]
    assert not FormSubmission.objects.exists()


def test_an_action_that_cannot_be_called_as_configured_opens_no_form(client, key, org, upstream):
    action = refund_action(org, upstream)
    GlobalVariable.objects.filter(organization=org).delete()
    response = invoke(client, key, action, arguments=ARGUMENTS, context=CONTEXT)
    assert response.status_code == 200
    assert response.json()["error"] == "Something went wrong"
    assert not FormSubmission.objects.exists()
    assert Execution.objects.get().cause == "configuration"


# Submitting


def test_a_submit_runs_the_call_once_with_the_customers_values_and_records_consent(
    client, key, org, upstream
):
    action = refund_action(org, upstream)
    seen = captured(upstream, "/v1/orders/A-1042/refund")
    form = open_form(client, key, action)
    values = {"order_id": "A-1042", "reason": "arrived broken", "amount": 900}

    before = timezone.now()
    response = submit(
        client, key, form["submission_id"], values, submitted_by="Ada Lovelace (cus_ada)",
        headers={"X-User-Token": RUNTIME_TOKEN},
    )  # fmt: skip

    assert response.status_code == 200, response.content
    answer = response.json()
    assert (answer["status"], answer["submission_id"]) == ("submitted", form["submission_id"])
    assert answer["result"]["ok"] is True
    assert answer["result"]["body"] == {"refund": "re_1"}
    (request,) = seen
    assert json.loads(request.get_data()) == {"reason": "arrived broken", "amount": 900}
    assert request.args.to_dict() == {"api_key": CANARY}  # the customer dropped `notify`
    assert request.headers["Authorization"] == f"Bearer {CANARY}"
    assert request.headers["X-Customer"] == "ada@example.com"
    assert request.headers["X-User-Token"] == RUNTIME_TOKEN

    submission = FormSubmission.objects.get(pk=form["submission_id"])
    assert submission.status == FormSubmission.Status.SUBMITTED
    assert submission.submitted_by == "Ada Lovelace (cus_ada)"
    assert before <= submission.submitted_at <= timezone.now()
    assert parse_datetime(answer["submitted_at"]) == submission.submitted_at
    assert submission.submitted_values == values
    assert submission.execution_id == answer["result"]["execution_id"]
    call = submission.execution
    assert (call.outcome, call.status_code) == (Execution.Outcome.SUCCEEDED, 200)
    assert (call.channel, call.contact_external_id) == ("widget", "cus_ada")
    stored = json.dumps(
        [call.request, list(FormSubmission.objects.values("context", "submitted_values"))],
        default=str,
    )
    assert RUNTIME_TOKEN not in stored and CANARY not in stored


def test_a_second_submit_is_a_409_naming_the_first_call_and_sends_nothing_more(
    client, key, org, upstream
):
    action = refund_action(org, upstream)
    seen = captured(upstream, "/v1/orders/A-1042/refund")
    form = open_form(client, key, action)
    first = submit(client, key, form["submission_id"], ARGUMENTS).json()

    again = submit(client, key, form["submission_id"], {**ARGUMENTS, "reason": "twice"})

    assert again.status_code == 409
    assert again.json()["status"] == "submitted"
    assert again.json()["execution_id"] == first["result"]["execution_id"]
    assert len(seen) == 1
    assert Execution.objects.count() == 1
    assert FormSubmission.objects.get().submitted_values == ARGUMENTS


def test_invalid_values_are_a_422_and_the_form_stays_open(client, key, org, upstream):
    action = refund_action(org, upstream)
    seen = captured(upstream, "/v1/orders/A-1042/refund")
    form = open_form(client, key, action)

    for values in (
        {"order_id": "A-1042", "reason": "x", "amount": 0},
        {"order_id": "A-1042", "amount": 5},
        {"order_id": "A-1042", "reason": "x", "Authorization": "Bearer forged"},
        {"order_id": "..", "reason": "x"},
    ):
        response = submit(client, key, form["submission_id"], values)
        assert response.status_code == 422, values
        assert response.json()["values"]

    assert "minimum of 1" in " ".join(
        submit(client, key, form["submission_id"], {**ARGUMENTS, "amount": 0}).json()["values"]
    )
    assert seen == []
    assert FormSubmission.objects.get().status == FormSubmission.Status.AWAITING
    assert submit(client, key, form["submission_id"], ARGUMENTS).status_code == 200
    assert len(seen) == 1


def test_a_submit_without_who_submitted_is_a_400(client, key, org, upstream):
    action = refund_action(org, upstream)
    form = open_form(client, key, action)
    response = post(
        client, key, f"/api/v1/form-submissions/{form['submission_id']}/submit",
        {"values": ARGUMENTS},
    )  # fmt: skip
    assert response.status_code == 400
    assert "submitted_by" in response.json()
    assert FormSubmission.objects.get().status == FormSubmission.Status.AWAITING


# Cancel and expiry


def test_a_cancelled_form_cannot_be_submitted(client, key, org, upstream):
    action = refund_action(org, upstream)
    seen = captured(upstream, "/v1/orders/A-1042/refund")
    form = open_form(client, key, action)

    response = cancel(client, key, form["submission_id"])
    assert response.status_code == 200
    assert response.json() == {"status": "cancelled", "submission_id": form["submission_id"]}
    assert cancel(client, key, form["submission_id"]).status_code == 200  # twice is fine

    refused = submit(client, key, form["submission_id"], ARGUMENTS)
    assert refused.status_code == 409
    assert refused.json()["status"] == "cancelled"
    assert seen == []
    assert not Execution.objects.exists()


def test_a_submitted_form_cannot_be_cancelled(client, key, org, upstream):
    action = refund_action(org, upstream)
    captured(upstream, "/v1/orders/A-1042/refund")
    form = open_form(client, key, action)
    submit(client, key, form["submission_id"], ARGUMENTS)

    response = cancel(client, key, form["submission_id"])
    assert response.status_code == 409
    assert response.json()["status"] == "submitted"
    assert FormSubmission.objects.get().status == FormSubmission.Status.SUBMITTED


def test_an_expired_form_is_a_410_and_sends_nothing(client, key, org, upstream):
    action = refund_action(org, upstream)
    seen = captured(upstream, "/v1/orders/A-1042/refund")
    form = open_form(client, key, action)
    FormSubmission.objects.update(expires_at=timezone.now() - timedelta(seconds=1))

    response = submit(client, key, form["submission_id"], ARGUMENTS)

    assert response.status_code == 410
    assert response.json()["status"] == "expired"
    assert cancel(client, key, form["submission_id"]).status_code == 410
    assert seen == []
    assert not Execution.objects.exists()
    assert FormSubmission.objects.get().status == FormSubmission.Status.EXPIRED


def test_a_form_expiring_between_the_check_and_the_claim_sends_nothing(client, key, org, upstream):
    """The claim itself requires an unexpired row, not only the check before it."""
    action = refund_action(org, upstream)
    seen = captured(upstream, "/v1/orders/A-1042/refund")
    form = open_form(client, key, action)
    real_claim = execution.submissions._claim

    def expire_then_claim(submission, *args):
        FormSubmission.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
        return real_claim(submission, *args)

    with mock.patch.object(execution.submissions, "_claim", expire_then_claim):
        response = submit(client, key, form["submission_id"], ARGUMENTS)

    assert response.status_code == 410
    assert seen == []


def test_an_action_disabled_on_the_channel_meanwhile_is_not_run(client, key, org, upstream):
    action = refund_action(org, upstream)
    seen = captured(upstream, "/v1/orders/A-1042/refund")
    form = open_form(client, key, action)
    action.on_widget = False
    action.save()

    response = submit(client, key, form["submission_id"], ARGUMENTS)

    assert response.status_code == 410
    assert "no longer available" in response.json()["detail"]
    assert seen == []
    assert FormSubmission.objects.get().status == FormSubmission.Status.AWAITING


# Scoping and authentication


def test_another_organizations_form_is_a_404(client, key, org, upstream):
    theirs = make_organization()
    _, their_key = OrganizationAPIKey.objects.create_key(
        organization=theirs, name="rt", scopes="tools"
    )
    action = refund_action(org, upstream)
    seen = captured(upstream, "/v1/orders/A-1042/refund")
    form = open_form(client, key, action)

    assert submit(client, their_key, form["submission_id"], ARGUMENTS).status_code == 404
    assert cancel(client, their_key, form["submission_id"]).status_code == 404
    for bad in ("not-a-uuid", "00000000-0000-0000-0000-000000000000"):
        assert submit(client, key, bad, ARGUMENTS).status_code == 404
    assert seen == []
    assert FormSubmission.objects.get().status == FormSubmission.Status.AWAITING


def test_the_form_endpoints_need_the_tools_scope(client, org, upstream):
    action = refund_action(org, upstream)
    _, tools_key = OrganizationAPIKey.objects.create_key(
        organization=org, name="rt", scopes="tools"
    )
    _, staff_key = OrganizationAPIKey.objects.create_key(
        organization=org, name="staff", scopes="actions:read"
    )
    form = open_form(client, tools_key, action)
    assert submit(client, staff_key, form["submission_id"], ARGUMENTS).status_code == 403
    assert cancel(client, staff_key, form["submission_id"]).status_code == 403
    assert submit(client, "", form["submission_id"], ARGUMENTS).status_code == 401


def test_an_action_without_the_form_requirement_is_called_at_once(client, key, org, upstream):
    action = refund_action(org, upstream)
    action.requires_form = False
    action.save()
    seen = captured(upstream, "/v1/orders/A-1042/refund")
    response = invoke(client, key, action, arguments=ARGUMENTS, context=CONTEXT)
    assert response.status_code == 200
    assert len(seen) == 1
    assert not FormSubmission.objects.exists()


def test_the_doctests_hold():
    assert doctest.testmod(execution.submissions).failed == 0


# Exactly once under concurrency (PostgreSQL: row locks)


@pytest.mark.django_db(transaction=True)
def test_two_concurrent_submits_send_exactly_one_request(upstream):
    """Two submits start together; the winner holds its claim open a moment, so the
    other's UPDATE really waits on the row lock. One request reaches the upstream."""
    require_service(connection.vendor == "postgresql", "needs PostgreSQL row locking")
    org = make_organization()
    _, key = OrganizationAPIKey.objects.create_key(organization=org, name="rt", scopes="tools")
    action = refund_action(org, upstream)
    seen = captured(upstream, "/v1/orders/A-1042/refund")
    form = open_form(Client(), key, action)

    real_start = execution.submissions.start_execution

    def slow_start(*args, **kwargs):
        time.sleep(0.3)  # inside the claim's transaction: the row lock is held
        return real_start(*args, **kwargs)

    start = threading.Barrier(2)
    answers: list = []

    def customer(reason: str) -> None:
        try:
            start.wait(5)
            answers.append(
                submit(Client(), key, form["submission_id"], {**ARGUMENTS, "reason": reason})
            )
        except Exception as error:  # surfaced by the assertions below
            answers.append(error)
        finally:
            connections.close_all()

    with mock.patch.object(execution.submissions, "start_execution", slow_start):
        threads = [threading.Thread(target=customer, args=(r,)) for r in ("first", "second")]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(20)

    statuses = sorted(getattr(a, "status_code", a) for a in answers)
    assert statuses == [200, 409], answers
    winner = next(a for a in answers if a.status_code == 200).json()
    loser = next(a for a in answers if a.status_code == 409).json()
    assert loser["execution_id"] == winner["result"]["execution_id"]
    assert len(seen) == 1
    assert Execution.objects.count() == 1
    submission = FormSubmission.objects.get()
    assert json.loads(seen[0].get_data())["reason"] == submission.submitted_values["reason"]
