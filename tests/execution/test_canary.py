"""Secrets never leak: a canary secret is driven through the whole product and then
looked for everywhere a person or a program could read it.

Two canaries: the value of a global variable (sent as `Authorization: Bearer
{{global.NAME}}`, as a static query value `{{global.NAME}}`, and as the header of its
name), and a per-call runtime header. Static and magic values are visible
configuration, not secrets (see Masker in execution/run.py).

The calls go to a real HTTPS upstream on loopback, which must RECEIVE the canaries
(so this test can fail), and to a second vendor's host the variable is not bound to,
which must not. Then every surface is searched for each canary in every form the log
mask covers and a few it should: plain, percent- and form-encoded, base64 at any byte
alignment, and any 16-character piece of it (a secret cut in half is still leaked):

- API: the tool list in every format, invoke (2xx, an upstream 4xx that echoes the
  request back as JSON, a 5xx debug page that echoes it as text, 422, timeout, blocked
  address, a secret not bound to the host), the form flow (202, submit, 409, 422,
  cancel), the staff actions API;
- the dashboard, as the organization's admin and as a superuser: global variables
  (including the add form rejected and re-rendered), the execution log and each row,
  the form submissions and each row, the actions and each action's page;
- every log record at DEBUG from every logger, and everything written to fd 1 and 2;
- every row of every table, and every SQL statement sent.

An upstream that echoes the request back is the hard case. The right behaviour: the
AI never sees the secret either (it would repeat it to the customer), so an echoed
secret is masked in the result invoke returns, as it is in the log. The one assertion
at the end lists every surface that leaks, in which forms.
"""

import base64
import json
import logging
import ssl
import time
import uuid
from collections.abc import Iterator
from urllib.parse import quote, quote_plus

import pytest
from django.apps import apps
from django.core import serializers
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from pytest_httpserver import HTTPServer
from rest_framework.test import APIClient
from werkzeug import Request, Response

from actions.models import Action, ActionHeader, ActionParameter, OrganizationAPIKey, ValueKind
from actions.tool_formats import FORMATS
from execution.models import Execution, FormSubmission, GlobalVariable
from execution.run import LOGGED_BODY_CHARS
from tests.execution.conftest import API_HOST
from tests.factories import make_action, make_organization, make_superuser, make_user

pytestmark = pytest.mark.django_db

VARIABLE = "VENDORKEY"  # no "_": the fake upstream (werkzeug) drops such header names
OTHER_HOST = "api.other-vendor.test"  # a second vendor: the variable is not bound to it
BLOCKED_HOST = "internal.example.com"  # bound, but resolves to a private address
BLOCKED_ADDRESS = "10.0.0.7"
RUNTIME_HEADER = "X-User-Token"
PIECE = 16  # the shortest piece of a canary that counts as leaked


def make_canary(label: str) -> str:
    """A unique secret whose '/', '+', '=' and space every URL encoding changes, so
    an encoded copy differs from the plain one."""
    digits = uuid.uuid4().hex
    return f"canary-{label}-{digits[:16]}/{digits[16:]}+= z"


def base64_pieces(secret: str) -> set[str]:
    """The base64 characters that depend on `secret` alone, at each of the three byte
    alignments it can have inside a longer encoded text (e.g. `Basic <user:secret>`):
    whichever bytes come before and after, the encoding contains one of these.

    >>> sorted(base64_pieces("secret!!"))
    ['NlY3JldCEh', 'c2VjcmV0IS', 'zZWNyZXQhI']
    """
    pieces = set()
    for offset in range(3):
        encoded = base64.b64encode(b"\0" * offset + secret.encode()).decode()
        first = -(-offset * 8 // 6)  # the first character with no prefix bit in it
        last = (offset + len(secret.encode())) * 8 // 6  # past the last whole one
        pieces.add(encoded[first:last])
    return pieces


def forms_of(secret: str) -> dict[str, set[str]]:
    """Each form's name and strings; a form that reads like an earlier one is left out."""
    base64_std = base64_pieces(secret)
    forms = {
        "plain": {secret},
        "percent-encoded": {quote(secret, safe="")},
        "percent-encoded, '/' kept": {quote(secret)},
        "form-encoded": {quote_plus(secret)},
        "JSON-escaped": {json.dumps(secret)[1:-1]},
        "base64": base64_std,
        "base64url": {p.replace("+", "-").replace("/", "_") for p in base64_std},
    }
    distinct: dict[str, set[str]] = {}
    for name, strings in forms.items():
        if not any(strings <= earlier for earlier in distinct.values()):
            distinct[name] = strings
    return distinct


def exposures(text: str, secret: str) -> list[str]:
    """The forms of `secret` found in `text`; a piece of the plain form counts too."""
    found = [
        name for name, forms in forms_of(secret).items() if any(form in text for form in forms)
    ]
    if not found and any(secret[i : i + PIECE] in text for i in range(len(secret) - PIECE + 1)):
        found.append(f"a {PIECE}-character piece")
    return found


def readable(response) -> str:
    """Everything a client of a response can read: status, headers and body."""
    headers = "\n".join(f"{name}: {value}" for name, value in response.items())
    return f"{response.status_code}\n{headers}\n\n{response.content.decode('utf-8', 'replace')}"


def as_received(request: Request) -> str:
    head = "\n".join(f"{name}: {value}" for name, value in request.headers.items())
    query = request.query_string.decode()
    return f"{request.method} {request.path}?{query}\n{head}\n\n{request.get_data(as_text=True)}"


# --- The fake upstreams --------------------------------------------------------------


class Recorder:
    """Handlers for the upstream that keep every request they receive."""

    def __init__(self) -> None:
        self.received: list[Request] = []

    def keep(self, request: Request) -> None:
        request.get_data()
        self.received.append(request)

    def ok(self, request: Request) -> Response:
        self.keep(request)
        return Response(json.dumps({"status": "shipped"}), content_type="application/json")

    def echo_json(self, request: Request) -> Response:
        """A 401 that shows the caller what it sent, as many APIs do to help debugging."""
        self.keep(request)
        token = request.headers.get("Authorization", "").removeprefix("Bearer ")
        body = {
            "error": "invalid_token",
            "received": {
                "headers": dict(request.headers),
                "args": request.args.to_dict(),
                "query": request.query_string.decode(),
            },
            "token_base64": base64.b64encode(token.encode()).decode(),
        }
        return Response(
            json.dumps(body),
            status=401,
            content_type="application/json",
            headers={
                "WWW-Authenticate": f'Bearer error="invalid_token", token="{token}"',
                "X-Echo-Query": request.query_string.decode(),
            },
        )

    def debug_page(self, request: Request) -> Response:
        """A framework's 500 debug page: long, with the request's headers far down. The
        Authorization line falls across the execution log's cut."""
        self.keep(request)
        token = request.headers.get("Authorization", "").removeprefix("Bearer ")
        line = "HTTP_AUTHORIZATION = 'Bearer "
        cut_inside = LOGGED_BODY_CHARS - len(line) - len(token) // 2
        return Response(
            "Traceback (most recent call last):\n".ljust(cut_inside, ".")
            + f"{line}{token}'\n"
            + as_received(request),
            status=502,
            content_type="text/plain",
        )

    def slow(self, request: Request) -> Response:
        self.keep(request)
        time.sleep(1.5)
        return Response("late")


@pytest.fixture
def other_vendor(ca, settings, dns, upstream) -> Iterator[HTTPServer]:
    """A second vendor's HTTPS server, reachable as https://api.other-vendor.test:<port>/."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ca.issue_cert(OTHER_HOST).configure_cert(context)
    server = HTTPServer(host="127.0.0.1", port=0, ssl_context=context, threaded=True)
    server.start()
    dns.answers[OTHER_HOST] = ["127.0.0.1"]
    dns.answers[BLOCKED_HOST] = [BLOCKED_ADDRESS]
    settings.OUTBOUND_ALLOWED_PORTS = [443, upstream.port, server.port]
    yield server
    server.clear()
    server.stop()


@pytest.fixture
def every_log_record(caplog, monkeypatch, settings):
    """Every record of every logger at DEBUG, propagating or not: what LOG_LEVEL=DEBUG
    and DEBUG=True would write, and more. A level our LOGGING setting gives a logger on
    purpose is kept (pinning a chatty library above DEBUG is a fix, not a blind spot)."""
    # The fake upstream's access log is the customer's server, not ours: it prints the
    # query string it received, secret included, as any web server would.
    monkeypatch.setattr(logging.getLogger("werkzeug"), "disabled", True)
    for name in ["django", "django.request", "django.db.backends", "celery", "urllib3"]:
        logging.getLogger(name)  # exist before the levels are set
    pinned = {
        name for name, config in settings.LOGGING.get("loggers", {}).items() if "level" in config
    }
    caplog.set_level(logging.DEBUG)
    extra = []
    for name, logger in list(logging.root.manager.loggerDict.items()):
        if isinstance(logger, logging.Logger) and not logger.disabled:
            family = {".".join(name.split(".")[:n]) for n in range(1, name.count(".") + 2)}
            if not family & pinned:  # urllib3.connectionpool follows a pinned urllib3
                caplog.set_level(logging.DEBUG, logger=name)
            if not logger.propagate:
                logger.addHandler(caplog.handler)
                extra.append(logger)
    yield caplog
    for logger in extra:
        logger.removeHandler(caplog.handler)


# --- The organization ----------------------------------------------------------------


def with_secret_rows(action: Action) -> Action:
    ActionHeader.objects.create(
        action=action, key="Authorization", kind=ValueKind.STATIC,
        value=f"Bearer {{{{global.{VARIABLE}}}}}",
    )  # fmt: skip
    ActionParameter.objects.create(
        action=action, location="query", key="api_key", kind=ValueKind.STATIC,
        value=f"{{{{global.{VARIABLE}}}}}",
    )  # fmt: skip
    return action


def make_actions(org, port: int, other_port: int) -> dict[str, Action]:
    base, other = f"https://{API_HOST}:{port}/v1", f"https://{OTHER_HOST}:{other_port}/v1"
    refund = make_action(
        org, name="Refund an order", method="POST", requires_form=True,
        endpoint=f"{base}/orders/{{order_id}}/refund",
        body_schema={"type": "object", "properties": {"reason": {"type": "string"}}},
    )  # fmt: skip
    return {
        "lookup": with_secret_rows(make_action(org, endpoint=f"{base}/orders/{{order_id}}")),
        "refund": with_secret_rows(refund),
        "internal": with_secret_rows(
            make_action(org, endpoint=f"https://{BLOCKED_HOST}/v1/orders/{{order_id}}")
        ),
        "other_vendor": make_action(org, name="Ping the other vendor", endpoint=f"{other}/ping"),
        "other_vendor_templated": with_secret_rows(
            make_action(org, name="Ping with the key", endpoint=f"{other}/ping")
        ),
    }


def add_variable_in_the_dashboard(admin: Client, secret: str, surfaces: dict) -> None:
    add = reverse("admin:execution_globalvariable_add")
    rejected = admin.post(
        add, {"name": VARIABLE, "value": secret, "hosts": f"https://{API_HOST}"}
    )  # a scheme is not a host: the form comes back with its errors
    assert rejected.status_code == 200 and "is not a host pattern" in rejected.content.decode()
    surfaces["dashboard: variable add form, rejected"] = readable(rejected)
    saved = admin.post(
        add, {"name": VARIABLE, "value": secret, "hosts": f"{API_HOST}\n{BLOCKED_HOST}"},
        follow=True,
    )  # fmt: skip
    assert saved.status_code == 200
    surfaces["dashboard: variable saved"] = readable(saved)


# --- Driving the API -----------------------------------------------------------------


def drive_the_api(api: APIClient, actions: dict[str, Action], runtime: str, settings) -> dict:
    surfaces = {}

    def invoke(name: str, expected: int, surface: str, **body) -> dict:
        body = {"channel": "widget", "contact": "cus_ada", **body}
        response = api.post(f"/api/v1/tools/{actions[name].tool_name}/invoke", body, format="json")
        assert response.status_code == expected, response.content
        surfaces[f"API: invoke, {surface}"] = readable(response)
        return response.json()

    headers = {RUNTIME_HEADER: runtime}
    for tool_format in FORMATS:
        response = api.get("/api/v1/tools", {"channel": "widget", "format": tool_format})
        assert response.status_code == 200
        assert actions["lookup"].tool_name in response.content.decode()
        surfaces[f"API: tool list, {tool_format}"] = readable(response)

    result = invoke("lookup", 200, "2xx", arguments={"order_id": "A-1"}, headers=headers)
    assert (result["ok"], result["body"]) == (True, {"status": "shipped"})
    result = invoke("lookup", 200, "4xx echo", arguments={"order_id": "echo"}, headers=headers)
    assert result["status"] == 401
    result = invoke(
        "lookup", 200, "5xx debug page", arguments={"order_id": "debug"}, headers=headers
    )
    assert result["status"] == 502
    invoke(
        "lookup", 422, "arguments outside the schema",
        arguments={"order_id": "A-1", "Authorization": "Bearer guess"}, headers=headers,
    )  # fmt: skip
    deadline, settings.EXECUTION_TIMEOUT_SECONDS = settings.EXECUTION_TIMEOUT_SECONDS, 1
    result = invoke("lookup", 200, "timeout", arguments={"order_id": "slow"}, headers=headers)
    settings.EXECUTION_TIMEOUT_SECONDS = deadline
    assert result["status"] == 408
    result = invoke("internal", 200, "blocked address", arguments={"order_id": "A-1"})
    assert result["error"] == "Something went wrong"
    result = invoke("other_vendor", 200, "a host the secret is not bound to")
    assert result["ok"] is True
    result = invoke("other_vendor_templated", 200, "a template for a host not bound")
    assert result["error"] == "Something went wrong"

    def submit(submission_id: str, expected: int, surface: str, values: dict) -> None:
        response = api.post(
            f"/api/v1/form-submissions/{submission_id}/submit",
            {"values": values, "submitted_by": "cus_ada", "headers": headers},
            format="json",
        )
        assert response.status_code == expected, response.content
        surfaces[f"API: form submit, {surface}"] = readable(response)

    values = {"order_id": "A-2", "reason": "damaged"}
    form = invoke("refund", 202, "form opened", arguments=values, headers=headers)
    assert "[REDACTED]" in form["preview"]["url"]
    submit(form["submission_id"], 200, "2xx", values)
    submit(form["submission_id"], 409, "already submitted", values)
    form = invoke("refund", 202, "second form opened", arguments=values, headers=headers)
    submit(form["submission_id"], 422, "values outside the schema", {**values, "reason": 5})
    cancelled = api.post(f"/api/v1/form-submissions/{form['submission_id']}/cancel")
    assert cancelled.status_code == 200
    surfaces["API: form cancel"] = readable(cancelled)
    return surfaces


def read_the_staff_api(api: APIClient, actions: dict[str, Action]) -> dict:
    surfaces = {}
    listed = api.get("/api/v1/actions")
    assert listed.status_code == 200
    assert f"{{{{global.{VARIABLE}}}}}" in listed.content.decode()  # the template, not its value
    surfaces["staff API: actions list"] = readable(listed)
    for action in actions.values():
        detail = api.get(f"/api/v1/actions/{action.pk}")
        assert detail.status_code == 200
        surfaces[f"staff API: action {action.name}"] = readable(detail)
    return surfaces


# --- Reading the dashboard -----------------------------------------------------------


def read_the_dashboard(client: Client, who: str, variable: GlobalVariable) -> dict:
    surfaces = {}

    def page(url: str) -> str:
        response = client.get(url)
        assert response.status_code == 200, url
        surfaces[f"dashboard as {who}: {url}"] = readable(response)
        return response.content.decode()

    def change(model, pk) -> str:
        return page(
            reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_change", args=[pk])
        )

    page(reverse("admin:index"))
    page(reverse("admin:execution_globalvariable_changelist"))
    change(GlobalVariable, variable.pk)
    page(reverse("admin:execution_globalvariable_history", args=[variable.pk]))
    page(reverse("admin:execution_execution_changelist"))
    masked = [change(Execution, pk) for pk in Execution.objects.values_list("pk", flat=True)]
    assert any("[REDACTED]" in html for html in masked)  # the masked rows were shown
    page(reverse("admin:execution_formsubmission_changelist"))
    for pk in FormSubmission.objects.values_list("pk", flat=True):
        change(FormSubmission, pk)
    page(reverse("admin:actions_action_changelist"))
    for action in Action.objects.filter(organization=variable.organization):
        html = change(Action, action.pk)
        assert "action-performance" in html  # the panel with the calls' figures
        page(reverse("admin:execution_execution_changelist") + f"?action={action.pk}")
    return surfaces


# --- Reading what is stored ----------------------------------------------------------


def every_row() -> dict[str, str]:
    """Each model's rows as the serializer writes them, and each table's raw values
    (tables without a model included)."""
    dumped = {}
    tables = set(connection.introspection.table_names())
    for model in apps.get_models(include_auto_created=True):
        if model._meta.db_table in tables and not model._meta.proxy:
            rows = serializers.serialize("json", model._base_manager.all())
            dumped[f"database: {model._meta.label} (serialized)"] = rows
    with connection.cursor() as cursor:
        for table in sorted(tables):
            # The table names come from the database itself, quoted.
            cursor.execute(f"SELECT * FROM {connection.ops.quote_name(table)}")  # noqa: S608
            dumped[f"database: table {table}"] = "\n".join(
                " | ".join(
                    bytes(value).decode("latin-1")
                    if isinstance(value, bytes | memoryview)
                    else str(value)
                    for value in row
                )
                for row in cursor.fetchall()
            )
    return dumped


# --- The tests -----------------------------------------------------------------------


def test_the_search_finds_a_canary_encoded_embedded_or_cut():
    secret = make_canary("probe")
    wrapped = base64.b64encode(f"user:{secret}".encode()).decode()
    assert exposures(f"Authorization: Basic {wrapped}", secret) == ["base64"]
    assert exposures(f"?key={quote_plus(secret)}&x=1", secret) == ["form-encoded"]
    assert exposures(f"/v1/{quote(secret)}/x", secret) == ["percent-encoded, '/' kept"]
    assert exposures(f"<pre>{secret[:-10]}</pre>", secret) == [f"a {PIECE}-character piece"]
    assert exposures(f"token={secret[: PIECE - 1]}", secret) == []
    assert exposures("[REDACTED]", secret) == []


def test_a_canary_secret_never_appears_in_any_response_page_log_or_row(
    upstream, other_vendor, every_log_record, capfd, settings
):
    secret, runtime = make_canary("variable"), make_canary("runtime")
    org = make_organization()
    surfaces: dict[str, str] = {}
    admin, root = Client(), Client()
    admin.force_login(make_user(org))
    root.force_login(make_superuser())
    _, raw_key = OrganizationAPIKey.objects.create_key(
        organization=org, name="runtime and CI", scopes="tools actions:read"
    )
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {raw_key}")

    main, other = Recorder(), Recorder()
    for path, handler in {
        "/v1/orders/A-1": main.ok,
        "/v1/orders/echo": main.echo_json,
        "/v1/orders/debug": main.debug_page,
        "/v1/orders/slow": main.slow,
        "/v1/orders/A-2/refund": main.ok,
    }.items():
        upstream.expect_request(path).respond_with_handler(handler)
    other_vendor.expect_request("/v1/ping").respond_with_handler(other.ok)

    with CaptureQueriesContext(connection) as queries:  # also logs SQL at DEBUG
        add_variable_in_the_dashboard(admin, secret, surfaces)
        actions = make_actions(org, upstream.port, other_vendor.port)
        surfaces |= drive_the_api(api, actions, runtime, settings)
        surfaces |= read_the_staff_api(api, actions)
        variable = GlobalVariable.objects.get(organization=org, name=VARIABLE)
        surfaces |= read_the_dashboard(admin, "the organization's admin", variable)
        surfaces |= read_the_dashboard(root, "a superuser", variable)

    # The secrets really went out, and only to the host the variable is bound to.
    received = {as_received(request) for request in main.received}
    assert len(main.received) == 5  # 2xx, echo, debug page, slow, and the form's one call
    sent = next(r for r in main.received if r.path == "/v1/orders/A-1")
    assert sent.headers["Authorization"] == f"Bearer {secret}"
    assert sent.headers[VARIABLE] == secret
    assert sent.args["api_key"] == secret
    assert sent.headers[RUNTIME_HEADER] == runtime
    assert {"plain", "form-encoded"} <= set(exposures("\n".join(received), secret))
    submitted = next(r for r in main.received if r.path == "/v1/orders/A-2/refund")
    assert exposures(as_received(submitted), runtime) == ["plain"]
    (elsewhere,) = other.received
    assert exposures(as_received(elsewhere), secret) == []
    assert VARIABLE not in elsewhere.headers

    # Every refusal and failure above was logged as what it was.
    causes = set(Execution.objects.values_list("cause", flat=True))
    assert {"arguments", "timeout", "blocked_address", "configuration"} <= causes

    # The stored value is ciphertext, and it is this secret.
    assert variable.reveal() == secret
    assert exposures(variable.value_encrypted, secret) == []

    surfaces["log records (DEBUG, every logger)"] = every_log_record.text
    surfaces["SQL statements"] = "\n".join(query["sql"] for query in queries.captured_queries)
    # What the log handlers print is the records above; this is everything else
    # (print(), a library writing to sys.stderr or to fd 2 directly).
    out, err = capfd.readouterr()
    surfaces["stdout"], surfaces["stderr"] = out, err
    surfaces |= every_row()

    leaks = {
        f"{surface}: the {label} canary": found
        for surface, text in surfaces.items()
        for label, canary in (("variable", secret), ("runtime header", runtime))
        if (found := exposures(text, canary))
    }
    assert leaks == {}
