"""POST /api/v1/tools/{tool_name}/invoke against a real HTTPS upstream on loopback."""

import base64
import json
import time
from unittest import mock

import pytest
from rest_framework.views import APIView
from werkzeug import Request, Response

from actions import validators
from actions.models import (
    Action,
    ActionHeader,
    ActionParameter,
    OrganizationAPIKey,
    SpecSource,
    ValueKind,
)
from execution.build import build_request
from execution.models import Execution, GlobalVariable
from importer.convert import convert_document
from importer.sync import sync_source
from tests.execution.conftest import API_HOST
from tests.factories import make_action, make_contact, make_organization, make_segment

pytestmark = pytest.mark.django_db

CANARY = "sk_live_CANARY_91b7e0c3aa"


def captured(server, path, response=None):
    seen: list[Request] = []

    def handler(request: Request) -> Response:
        request.get_data()
        seen.append(request)
        return (
            response
            if response is not None
            else Response(json.dumps({"status": "shipped"}), content_type="application/json")
        )

    server.expect_request(path).respond_with_handler(handler)
    return seen


@pytest.fixture
def org():
    return make_organization()


@pytest.fixture
def key(org):
    _, raw = OrganizationAPIKey.objects.create_key(organization=org, name="rt", scopes="tools")
    return raw


def invoke(client, key, tool_name, **body):
    body.setdefault("channel", "widget")
    return client.post(
        f"/api/v1/tools/{tool_name}/invoke",
        body,
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {key}",
    )


def order_action(org, upstream, **fields):
    action = make_action(
        org,
        name="Refund an order",
        method="POST",
        endpoint=f"https://{API_HOST}:{upstream.port}/v1/orders/{{order_id}}/refund",
        body_schema={
            "type": "object",
            "properties": {"reason": {"type": "string"}, "amount": {"type": "integer"}},
            "required": ["reason"],
        },
        **fields,
    )
    ActionParameter.objects.create(
        action=action, location="query", key="notify", kind=ValueKind.AI, required=False
    )
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


def test_a_call_carries_arguments_static_magic_and_secret_values_where_they_belong(
    client, key, org, upstream
):
    action = order_action(org, upstream)
    contact = make_contact(org, email="ada@example.com")
    seen = captured(upstream, "/v1/orders/A-1042/refund")

    response = invoke(
        client, key, action.tool_name,
        arguments={"order_id": "A-1042", "reason": "damaged", "amount": 1200, "notify": "yes"},
        contact=contact.external_id,
    )  # fmt: skip

    assert response.status_code == 200, response.content
    result = response.json()
    assert result["ok"] is True
    assert result["status"] == 200
    assert result["body"] == {"status": "shipped"}
    (request,) = seen
    assert request.args.to_dict() == {"notify": "yes"}
    assert json.loads(request.get_data()) == {"reason": "damaged", "amount": 1200}
    assert request.headers["Authorization"] == f"Bearer {CANARY}"
    assert request.headers["SHOP"] == CANARY  # a bound variable travels as its own header
    assert request.headers["X-Customer"] == "ada@example.com"
    assert request.headers["User-Agent"] == "OpenCX"

    execution = Execution.objects.get(pk=result["execution_id"])
    assert execution.outcome == Execution.Outcome.SUCCEEDED
    assert execution.status_code == 200
    assert execution.duration_ms > 0
    stored = json.dumps([execution.request, execution.arguments, execution.response_headers])
    assert CANARY not in stored
    assert "[REDACTED]" in stored
    assert CANARY not in response.content.decode()


def test_a_runtime_header_overrides_a_variable_for_that_call_only(client, key, org, upstream):
    action = order_action(org, upstream)
    seen = captured(upstream, "/v1/orders/1/refund")
    invoke(
        client, key, action.tool_name,
        arguments={"order_id": "1", "reason": "late"}, context={"contact": {"email": "a@b.c"}},
        headers={"SHOP": "per-user-token-123"},
    )  # fmt: skip
    assert seen[0].headers["SHOP"] == "per-user-token-123"
    invoke(
        client, key, action.tool_name,
        arguments={"order_id": "1", "reason": "late"}, context={"contact": {"email": "a@b.c"}},
    )  # fmt: skip
    assert seen[1].headers["SHOP"] == CANARY
    assert "per-user-token-123" not in json.dumps(
        list(Execution.objects.values_list("request", flat=True))
    )


def test_a_variable_is_never_sent_to_a_host_it_is_not_bound_to(client, key, org, upstream):
    action = make_action(org, endpoint=f"https://{API_HOST}:{upstream.port}/v1/orders/{{order_id}}")
    other = GlobalVariable(organization=org, name="OTHER_VENDOR", hosts="api.other-vendor.com")
    other.set_value("other-vendor-secret")
    other.save()
    seen = captured(upstream, "/v1/orders/7")
    response = invoke(client, key, action.tool_name, arguments={"order_id": "7"})
    assert response.json()["ok"] is True
    assert "OTHER_VENDOR" not in seen[0].headers
    assert "other-vendor-secret" not in str(dict(seen[0].headers))


def test_a_hidden_action_is_a_404_and_nothing_is_sent(client, key, org, upstream):
    premium = make_segment(org)
    action = make_action(
        org,
        segments=(premium,),
        endpoint=f"https://{API_HOST}:{upstream.port}/v1/orders/{{order_id}}",
    )
    outsider = make_contact(org)
    seen = captured(upstream, "/v1/orders/1")
    for contact in (outsider.external_id, "", "cus_unknown"):
        response = invoke(
            client, key, action.tool_name, arguments={"order_id": "1"}, contact=contact
        )
        assert response.status_code == 404
    assert (
        invoke(
            client, key, action.tool_name, arguments={"order_id": "1"}, channel="sms"
        ).status_code
        == 404
    )
    assert seen == []
    assert not Execution.objects.exists()


def test_arguments_outside_the_schema_are_a_422_the_ai_can_act_on(client, key, org, upstream):
    action = order_action(org, upstream)
    seen = captured(upstream, "/v1/orders/1/refund")
    response = invoke(
        client, key, action.tool_name,
        arguments={"order_id": "1", "reason": 5, "Authorization": "Bearer forged"},
        context={"contact": {"email": "a@b.c"}},
    )  # fmt: skip
    assert response.status_code == 422
    messages = " ".join(response.json()["arguments"])
    assert "Authorization" in messages and "not of type 'string'" in messages
    assert seen == []
    assert Execution.objects.get().outcome == Execution.Outcome.REFUSED


@pytest.mark.parametrize("value", ["..", ".", "", "%2e%2e"])
def test_a_path_value_that_would_move_out_of_its_segment_is_refused(
    client, key, org, upstream, value
):
    action = make_action(
        org, endpoint=f"https://{API_HOST}:{upstream.port}/v1/orders/{{order_id}}/items"
    )
    response = invoke(client, key, action.tool_name, arguments={"order_id": value})
    assert response.status_code == 422


def test_a_missing_magic_value_is_a_clear_400_not_an_empty_header(client, key, org, upstream):
    action = order_action(org, upstream)
    seen = captured(upstream, "/v1/orders/1/refund")
    response = invoke(client, key, action.tool_name, arguments={"order_id": "1", "reason": "x"})
    assert response.status_code == 400
    assert "contact.email" in response.json()["context"][0]
    assert seen == []


def test_upstream_errors_pass_through_to_the_ai(client, key, org, upstream):
    action = make_action(org, endpoint=f"https://{API_HOST}:{upstream.port}/v1/orders/{{order_id}}")
    missing = Response(
        json.dumps({"error": "no such order"}), status=404, content_type="application/json"
    )
    captured(upstream, "/v1/orders/404", missing)
    result = invoke(client, key, action.tool_name, arguments={"order_id": "404"}).json()
    assert (result["ok"], result["status"], result["body"]) == (
        False,
        404,
        {"error": "no such order"},
    )
    assert Execution.objects.get().outcome == Execution.Outcome.FAILED


def test_a_redirect_is_returned_not_followed(client, key, org, upstream):
    action = make_action(org, endpoint=f"https://{API_HOST}:{upstream.port}/v1/orders/{{order_id}}")
    captured(
        upstream,
        "/v1/orders/1",
        Response("", status=302, headers={"Location": "https://169.254.169.254/"}),
    )
    result = invoke(client, key, action.tool_name, arguments={"order_id": "1"}).json()
    assert result["status"] == 302


def test_a_slow_upstream_times_out_as_a_408(client, key, org, upstream, settings):
    settings.EXECUTION_TIMEOUT_SECONDS = 1
    action = make_action(org, endpoint=f"https://{API_HOST}:{upstream.port}/v1/orders/{{order_id}}")

    def slow(request):
        time.sleep(2)
        return Response("late")

    upstream.expect_request("/v1/orders/slow").respond_with_handler(slow)
    result = invoke(client, key, action.tool_name, arguments={"order_id": "slow"}).json()
    assert result["status"] == 408
    assert result["error"] == "Request timed out after 1000ms"
    execution = Execution.objects.get()
    assert (execution.outcome, execution.cause) == (Execution.Outcome.ERROR, "timeout")


def test_a_long_body_is_cut_for_the_ai_and_marked_truncated(client, key, org, upstream, settings):
    settings.EXECUTION_MAX_CHARS_FOR_AI = 100
    action = make_action(org, endpoint=f"https://{API_HOST}:{upstream.port}/v1/orders/{{order_id}}")
    captured(upstream, "/v1/orders/big", Response("x" * 5000, content_type="text/plain"))
    result = invoke(client, key, action.tool_name, arguments={"order_id": "big"}).json()
    assert result["truncated"] is True
    assert result["body"] == "x" * 100


def test_a_multipart_call_sends_fields_and_base64_files(client, key, org, upstream):
    action = make_action(
        org,
        method="POST",
        endpoint=f"https://{API_HOST}:{upstream.port}/v1/uploads",
        body_format="multipart",
        body_schema={
            "type": "object",
            "properties": {
                "note": {"type": "string"},
                "receipt": {"type": "string", "contentEncoding": "base64"},
            },
        },
    )
    seen = captured(upstream, "/v1/uploads")
    content = b"%PDF-1.7 receipt"
    invoke(
        client, key, action.tool_name,
        arguments={"note": "for order 7", "receipt": base64.b64encode(content).decode()},
    )  # fmt: skip
    (request,) = seen
    assert request.form["note"] == "for order 7"
    assert request.files["receipt"].read() == content


def test_a_secret_that_cannot_be_decrypted_is_never_sent(client, key, org, upstream, settings):
    from cryptography.fernet import Fernet

    action = order_action(org, upstream)
    seen = captured(upstream, "/v1/orders/1/refund")
    settings.SECRET_ENCRYPTION_KEYS = [Fernet.generate_key().decode()]
    result = invoke(
        client, key, action.tool_name, arguments={"order_id": "1", "reason": "x"},
        context={"contact": {"email": "a@b.c"}},
    ).json()  # fmt: skip
    assert result["error"] == "Something went wrong"
    assert seen == []
    assert Execution.objects.get().cause == "secret_unavailable"


def test_an_exact_tool_name_wins_over_the_gemini_prefixed_form(client, key, org, upstream):
    """Gemini shows "2fa_reset" as "_2fa_reset"; a tool really named "_2fa_reset" stays itself."""
    base = f"https://{API_HOST}:{upstream.port}/v1"
    plain = make_action(
        org, name="Reset two factor", tool_name="2fa_reset", endpoint=f"{base}/plain"
    )
    prefixed = make_action(
        org, name="Reset two factor v2", tool_name="_2fa_reset", endpoint=f"{base}/prefixed"
    )
    captured(upstream, "/v1/plain")
    captured(upstream, "/v1/prefixed")
    first = invoke(client, key, "_2fa_reset").json()
    assert Execution.objects.get(pk=first["execution_id"]).action == prefixed
    prefixed.delete()
    second = invoke(client, key, "_2fa_reset").json()
    assert Execution.objects.get(pk=second["execution_id"]).action == plain


# --- raw (binary) bodies and repeated path placeholders ------------------------------


def upload_action(org, upstream=None, media_type="image/png", **fields):
    port = upstream.port if upstream is not None else 443
    return make_action(
        org,
        name="Upload a logo",
        method="PUT",
        endpoint=f"https://{API_HOST}:{port}/v1/logos/{{name}}",
        body_format=Action.BodyFormat.BINARY,
        body_schema=validators.binary_body_schema(media_type),
        **fields,
    )


def test_a_raw_body_call_sends_the_decoded_bytes_as_its_media_type(client, key, org, upstream):
    action = upload_action(org, upstream)
    seen = captured(upstream, "/v1/logos/acme.png")
    content = bytes(range(256))  # not text, not JSON
    result = invoke(
        client, key, action.tool_name,
        arguments={"name": "acme.png", "body": base64.b64encode(content).decode()},
    ).json()  # fmt: skip
    assert result["ok"] is True, result
    (request,) = seen
    assert request.method == "PUT"
    assert request.get_data() == content
    assert request.headers["Content-Type"] == "image/png"
    logged = Execution.objects.get(pk=result["execution_id"]).request
    assert logged["content"] == "<256 bytes>"  # described, not stored


def test_a_raw_body_that_is_not_base64_is_a_422_and_nothing_is_sent(client, key, org, upstream):
    action = upload_action(org, upstream)
    seen = captured(upstream, "/v1/logos/acme.png")
    response = invoke(
        client, key, action.tool_name, arguments={"name": "acme.png", "body": "not base64!"}
    )
    assert response.status_code == 422
    assert "base64" in json.dumps(response.json())
    assert seen == []


def test_build_request_sends_a_raw_body_and_a_content_type_row_wins(org):
    action = upload_action(org, media_type="application/octet-stream")
    built = build_request(action, {"name": "a.bin", "body": "AAEC"}, {}, {})
    assert built.request.content == b"\x00\x01\x02"
    assert (built.request.json, built.request.form, built.request.multipart) == (None, None, None)
    assert built.request.headers["Content-Type"] == "application/octet-stream"
    ActionHeader.objects.create(
        action=action, key="Content-Type", kind=ValueKind.STATIC, value="application/pdf"
    )
    built = build_request(action, {"name": "a.pdf", "body": "JVBERg=="}, {}, {})
    assert built.request.content == b"%PDF"
    assert built.request.headers == {"Content-Type": "application/pdf"}


def test_a_placeholder_used_twice_is_sent_with_one_value_in_both_places(client, key, org, upstream):
    action = make_action(
        org, endpoint=f"https://{API_HOST}:{upstream.port}/v1/anything/{{id}}/{{action}}/{{id}}"
    )
    assert sorted(action.tool_schema().schema["properties"]) == ["action", "id"]
    seen = captured(upstream, "/v1/anything/A-7/get/A-7")
    result = invoke(client, key, action.tool_name, arguments={"id": "A-7", "action": "get"}).json()
    assert result["ok"] is True, result
    assert len(seen) == 1


def test_an_imported_octet_stream_upload_sends_the_bytes_upstream(client, key, org, upstream):
    spec = {
        "openapi": "3.0.3",
        "info": {"title": "Files", "version": "1"},
        "servers": [{"url": f"https://{API_HOST}:{upstream.port}/v1"}],
        "paths": {
            "/files/{path}": {
                "put": {
                    "operationId": "uploadFile",
                    "summary": "Upload one file of a deploy",
                    "parameters": [
                        {
                            "name": "path",
                            "in": "path",
                            "required": True,
                            "schema": {"type": "string"},
                        }
                    ],
                    "requestBody": {
                        "required": True,
                        "content": {
                            "application/octet-stream": {
                                "schema": {"type": "string", "format": "binary"}
                            }
                        },
                    },
                    "responses": {"200": {"description": "Uploaded"}},
                }
            }
        },
    }
    conversion = convert_document(spec, "3.0")
    sync_source(org, SpecSource.objects.create(organization=org, name="files"), conversion.drafts)
    action = Action.objects.get(organization=org)
    action.full_clean()
    assert action.body_format == Action.BodyFormat.BINARY
    seen = captured(upstream, "/v1/files/index.html")
    content = b"<!doctype html>\x00\xff"
    result = invoke(
        client, key, "uploadFile",
        arguments={"path": "index.html", "body": base64.b64encode(content).decode()},
    ).json()  # fmt: skip
    assert result["ok"] is True, result
    (request,) = seen
    assert request.get_data() == content
    assert request.headers["Content-Type"] == "application/octet-stream"


def test_the_plain_invoke_is_answered_without_drfs_request_machinery_as_drf_would(
    client, key, org, upstream
):
    action = order_action(org, upstream)
    contact = make_contact(org, email="ada@example.com")
    captured(upstream, "/v1/orders/A-1/refund")
    arguments = {"order_id": "A-1", "reason": "late"}

    def both(**body):
        """The same invoke through DRF (an Accept header the plain path leaves to it),
        then answered by the plain path, which must not reach DRF."""
        by_drf = client.post(
            f"/api/v1/tools/{action.tool_name}/invoke", {"channel": "widget", **body},
            content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {key}",
            HTTP_ACCEPT="application/*",
        )  # fmt: skip
        with mock.patch.object(APIView, "initial", side_effect=AssertionError("went through DRF")):
            plain = invoke(client, key, action.tool_name, **body)
        return by_drf, plain

    def without_ids(response):
        return {k: v for k, v in response.json().items() if k != "execution_id"}

    by_drf, plain = both(contact=contact.external_id, arguments=arguments)
    assert by_drf.status_code == plain.status_code == 200
    assert without_ids(plain) == without_ids(by_drf)
    assert without_ids(plain)["ok"] is True
    assert plain.headers["Content-Type"] == by_drf.headers["Content-Type"] == "application/json"
    assert plain.headers["Allow"] == by_drf.headers["Allow"] == "POST, OPTIONS"

    # Refusals after the tool was found are answered where they happen, alike.
    by_drf, plain = both(contact=contact.external_id, arguments={"order_id": "A-1"})
    assert by_drf.status_code == plain.status_code == 422
    assert plain.json() == by_drf.json()
    by_drf, plain = both(contact="cus_unknown", arguments=arguments)  # no email to send
    assert by_drf.status_code == plain.status_code == 400
    assert plain.json() == by_drf.json() and "contact.email" in plain.json()["context"][0]

    # Errors before that are DRF's to explain.
    with mock.patch.object(APIView, "initial", side_effect=AssertionError("went through DRF")):
        for body in ({"channel": "fax"}, {"contact": contact.external_id, "arguments": []}):
            with pytest.raises(AssertionError, match="went through DRF"):
                invoke(client, key, action.tool_name, **body)
        with pytest.raises(AssertionError, match="went through DRF"):
            invoke(client, key, "no_such_tool", arguments=arguments)
