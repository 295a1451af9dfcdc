"""The API keeps the promises of its own OpenAPI document (schemathesis, in process).

The schema is loaded from the running application (/api/schema/), every operation is
fuzzed with schema-valid and schema-violating requests (bounded examples) under an API
key holding every scope, for an organization with actions, segments, tags and
contacts. No response may be a 5xx, carry an undocumented status, or contradict its
documented body, content type or headers; an operation that declares auth must
enforce it.

Not asserted: that every schema-valid request is accepted, nor every invalid one
refused. The rules the dashboard applies (a description of 20 characters once
trimmed, an https endpoint, segments that exist, placeholders that match) go beyond
what OpenAPI can say, and an empty query value means "no filter", as in the
dashboard's own filters.
"""

import json
import time
from unittest import mock
from urllib.parse import unquote

import pytest
import schemathesis
from django.core.cache import cache
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode

from actions.models import APIScope, Channel, OrganizationAPIKey
from actions.tool_formats import FORMATS
from actions.tool_list import local_renderings
from execution import http
from opencx.wsgi import application
from tests.factories import make_action, make_contact, make_organization, make_segment, make_tag

pytestmark = pytest.mark.django_db

EXAMPLES = 25  # per operation, mode and set of path parameters: ~20 s in all on 2 cores
CONFIG = schemathesis.Config.from_dict(
    {
        "checks": {
            # See the module docstring: acceptance is the dashboard's rules, not the schema's.
            "positive_data_acceptance": {"enabled": False},
            "negative_data_rejection": {"enabled": False},
        }
    }
)
# Operations that must answer with a success at least once: otherwise the fuzzing
# only ever met the error paths (a broken key, missing data) and proved little.
MUST_SUCCEED = {
    "GET /api/v1/actions",
    "GET /api/v1/actions/{id}",
    "PATCH /api/v1/actions/{id}",
    "DELETE /api/v1/actions/{id}",
    "GET /api/v1/contacts/{external_id}",
    "PUT /api/v1/contacts/{external_id}",
    "GET /api/v1/tools",
}


@pytest.fixture(autouse=True)
def _keep_the_tests_connection():
    """schemathesis calls the WSGI application itself, whose request_started and
    request_finished signals close the database connection, and with it the test's
    transaction (PostgreSQL; SQLite's in-memory database survives it). Django's test
    client unhooks them in the same way."""
    for signal in (request_started, request_finished):
        signal.disconnect(close_old_connections)
    yield
    for signal in (request_started, request_finished):
        signal.connect(close_old_connections)


@pytest.fixture(autouse=True)
def upstream():
    """Invoking a tool calls the customer's API: here, a fake at the outbound seam."""

    def send(request, **limits) -> http.OutboundResponse:
        return http.OutboundResponse(
            status=200,
            headers={"content-type": "application/json"},
            body=b'{"status": "refunded"}',
            truncated=False,
            elapsed_ms=1.0,
            url=request.url,
        )

    with mock.patch("execution.http.send", side_effect=send) as fake:
        yield fake


@pytest.fixture
def api(settings):
    """An organization with some of everything, and a key with every scope."""
    settings.API_RATE_LIMITS = dict.fromkeys(settings.API_RATE_LIMITS, 1_000_000)
    cache.clear()
    local_renderings.clear()
    org = make_organization()
    premium = make_segment(org, slug="premium")
    billing = make_tag(org, name="billing")
    lookup = make_action(org, name="Look up an order", segments=(premium,), tags=(billing,))
    refund = make_action(
        org,
        name="Refund an order",
        method="POST",
        endpoint="https://api.example.com/v1/refunds",
        body_schema={
            "type": "object",
            "properties": {"amount": {"type": "number"}, "reason": {"type": "string"}},
            "required": ["amount"],
        },
        pinned=True,
    )
    doomed = make_action(org, name="Cancel an order")
    make_contact(org, external_id="cus_1", segments=(premium,))
    make_action(make_organization(), name="Another organization's action")
    _, key = OrganizationAPIKey.objects.create_key(
        organization=org, name="contract", scopes=" ".join(APIScope.values)
    )
    return {
        "key": key,
        "path_parameters": {
            "id": lookup.pk,
            "external_id": "cus_1",
            "tool_name": refund.tool_name,
        },
        "doomed": doomed.pk,
    }


def load_schema():
    return schemathesis.openapi.from_wsgi("/api/schema/?format=json", application, config=CONFIG)


def known_path_parameters(operation, api) -> dict | None:
    names = {p.name for p in operation.path_parameters}
    if not names:
        return None
    known = dict(api["path_parameters"])
    if operation.method.upper() == "DELETE":
        known["id"] = api["doomed"]  # leave the others for GET, PUT and PATCH
    return {name: known[name] for name in names if name in known} or None


def test_every_operation_keeps_the_promises_of_the_openapi_document(api):
    schema = load_schema()
    headers = {"Authorization": f"Bearer {api['key']}"}
    statuses: dict[str, set[int]] = {}
    failures: list[str] = []
    started = time.monotonic()

    for result in schema.get_all_operations():
        operation = result.ok()
        label = f"{operation.method.upper()} {operation.path}"
        fixed = known_path_parameters(operation, api)
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            for path_parameters in (None, fixed) if fixed else (None,):
                strategy = operation.as_strategy(
                    mode, headers=headers, path_parameters=path_parameters
                )

                @settings(
                    max_examples=EXAMPLES,
                    deadline=None,
                    database=None,
                    suppress_health_check=list(HealthCheck),
                )
                @given(case=strategy)
                def run(case):
                    response = case.call_and_validate()
                    seen = statuses.setdefault(f"{case.method.upper()} {case.path}", set())
                    seen.add(response.status_code)

                try:
                    run()
                except Unsatisfiable:
                    # Nothing to break: the only parameter is fixed, or every value
                    # of a path string is a valid string.
                    continue
                except (Exception, BaseExceptionGroup) as error:
                    failures.append(f"{label} ({mode.value}, {path_parameters}):\n{error}")

    assert failures == [], "\n\n".join(failures)
    succeeded = {label for label, seen in statuses.items() if seen & {200, 201, 204, 304}}
    assert succeeded >= MUST_SUCCEED, statuses
    assert time.monotonic() - started < 120


# --- what a fuzzer rarely sends ------------------------------------------------------------------


def test_the_document_names_valid_values_and_the_rarer_statuses(client):
    """What fuzzing cannot reach: the valid channels and formats (so a client need not
    learn them from a 400), and the 409 of a write that lost a race."""
    document = client.get("/api/schema/", HTTP_ACCEPT="application/json").json()
    parameters = {
        p["name"]: p["schema"] for p in document["paths"]["/api/v1/tools"]["get"]["parameters"]
    }
    assert parameters["channel"]["enum"] == Channel.values
    assert parameters["format"]["enum"] == list(FORMATS)
    actions = document["paths"]["/api/v1/actions"]
    action = document["paths"]["/api/v1/actions/{id}"]
    for operation in (actions["post"], action["put"], action["patch"]):
        assert "409" in operation["responses"]


def test_every_method_an_endpoint_lacks_is_405_with_allow(client, api):
    """Not a 403 sending the caller off to look for a scope that does not exist."""
    document = client.get("/api/schema/", HTTP_ACCEPT="application/json").json()
    headers = {"HTTP_AUTHORIZATION": f"Bearer {api['key']}"}
    concrete = {f"{{{name}}}": str(value) for name, value in api["path_parameters"].items()}
    checked = 0
    for template, operations in document["paths"].items():
        path = template
        for placeholder, value in concrete.items():
            path = path.replace(placeholder, value)
        documented = {method.upper() for method in operations}
        for method in {"GET", "POST", "PUT", "PATCH", "DELETE"} - documented:
            response = client.generic(method, path, **headers)
            assert response.status_code == 405, (method, template, response.content)
            assert documented <= set(response["Allow"].replace(" ", "").split(","))
            checked += 1
    assert checked >= 6


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/api/v1/actions"),
        ("PUT", "/api/v1/actions/{id}"),
        ("PATCH", "/api/v1/actions/{id}"),
        ("PUT", "/api/v1/contacts/cus_1"),
    ],
)
def test_a_body_nested_thousands_deep_is_400_not_500(client, api, method, path):
    body = "[" * 5000 + "]" * 5000
    response = client.generic(
        method,
        path.replace("{id}", str(api["path_parameters"]["id"])),
        body,
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {api['key']}",
    )
    assert response.status_code == 400
    assert "nested deeper" in response.json()["detail"]


def test_valid_writes_and_calls_match_their_documented_responses(api, upstream):
    """The fuzzer rarely builds an action the dashboard's rules accept, or arguments a
    tool accepts; here is one of each."""
    schema = load_schema()
    headers = {"Authorization": f"Bearer {api['key']}"}
    body = {
        "name": "Book a repair",
        "description": "Books a repair appointment at the service point nearest the customer.",
        "method": "POST",
        "endpoint": "https://api.example.com/v1/repairs/{device_id}",
        "body_schema": {"type": "object", "properties": {"day": {"type": "string"}}},
        "headers": [{"key": "X-Source", "value": "opencx"}],
        "parameters": [{"key": "device_id", "location": "path", "kind": "ai"}],
        "channels": ["widget", "email"],
        "segments": ["premium"],
        "tags": ["billing", "repairs"],
    }
    create = schema["/api/v1/actions"]["POST"]
    created = create.Case(body=body, headers=headers).call_and_validate()
    assert created.status_code == 201, created.text

    replace = schema["/api/v1/actions/{id}"]["PUT"]
    case = replace.Case(
        body={**body, "name": "Book a repair visit", "body_schema": None},
        path_parameters={"id": json.loads(created.text)["id"]},
        headers=headers,
    )
    replaced = case.call_and_validate()
    assert replaced.status_code == 200, replaced.text

    invoke = schema["/api/v1/tools/{tool_name}/invoke"]["POST"]
    case = invoke.Case(
        body={"channel": "widget", "arguments": {"amount": 12.5}},
        path_parameters={"tool_name": api["path_parameters"]["tool_name"]},
        headers=headers,
    )
    called = case.call_and_validate()
    assert called.status_code == 200, called.text
    assert json.loads(called.text)["body"] == {"status": "refunded"}
    assert upstream.call_count == 1


@pytest.mark.parametrize("external_id", ["org/42", "a%2Fb", "line%0Abreak"])
def test_a_contact_id_with_a_slash_or_a_line_break_is_a_contact_not_a_404(client, api, external_id):
    headers = {"HTTP_AUTHORIZATION": f"Bearer {api['key']}"}
    url = f"/api/v1/contacts/{external_id}"

    created = client.put(url, json.dumps({"name": "Ada"}), "application/json", **headers)

    assert created.status_code == 201, created.content
    stored = created.json()["external_id"]
    assert stored == unquote(external_id)
    assert client.get(created["Location"], **headers).json()["external_id"] == stored
    assert client.get(url, **headers).status_code == 200
