"""The import API a customer's CI calls: POST a spec, poll the import, read the result.

    POST /api/v1/specs/{source}/import   multipart file, serverBaseUrl, dry_run, skip_invalid
    GET  /api/v1/imports/{id}

Tasks run in-process (eager) and, as in production, only once the request's
transaction commits: each POST is wrapped in django_capture_on_commit_callbacks.
"""

import json

import pytest
from django.core.cache import cache
from django.core.files.uploadedfile import SimpleUploadedFile

from actions.models import Action, OrganizationAPIKey, SpecSource
from importer.jobs import enqueue_import
from importer.models import SpecImport
from tests.factories import make_action, make_organization
from tests.importer.specs import (
    BASE_URL,
    CIRCULAR_BODIES,
    CIRCULAR_FIRST,
    EXTERNAL_REF,
    PETSTORE,
    PETSTORE_KEYS,
    PETSTORE_SIMPLE,
    PROBLEM_KEYS,
    RECURSIVE_CUTS,
    RECURSIVE_OPTIONAL,
    SCHEMA_CIRCULAR,
    V2_ADDED,
    V2_CHANGED,
    V2_KEYS,
    V2_REMOVED,
    petstore_v2,
)

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("eager_tasks")]


@pytest.fixture(autouse=True)
def _fresh_rate_limits():
    cache.clear()  # the import budget is 30 a minute per key


@pytest.fixture
def org():
    return make_organization()


@pytest.fixture
def key(org):
    _, raw = OrganizationAPIKey.objects.create_key(
        organization=org, name="ci", scopes="specs:import"
    )
    return raw


def upload(path_or_bytes, name: str | None = None) -> SimpleUploadedFile:
    if isinstance(path_or_bytes, bytes):
        return SimpleUploadedFile(name or "spec.json", path_or_bytes, "application/json")
    return SimpleUploadedFile(path_or_bytes.name, path_or_bytes.read_bytes(), "application/json")


def post_import(client, key, source="petstore", *, file=None, **fields):
    data = {**fields}
    if file is not None:
        data["file"] = file
    headers = {"HTTP_AUTHORIZATION": f"Bearer {key}"} if key else {}
    return client.post(f"/api/v1/specs/{source}/import", data, **headers)


def get_import(client, key, url_or_id):
    url = url_or_id if isinstance(url_or_id, str) else f"/api/v1/imports/{url_or_id}"
    headers = {"HTTP_AUTHORIZATION": f"Bearer {key}"} if key else {}
    return client.get(url, **headers)


def run_import(client, key, capture, source="petstore", **fields):
    """POST an import, let its task run on commit, and return the finished import."""
    with capture(execute=True):
        response = post_import(client, key, source, **fields)
    assert response.status_code == 202, response.content
    finished = get_import(client, key, response.headers["Location"])
    assert finished.status_code == 200
    return finished.json()


def test_posting_a_spec_answers_202_and_the_import_reaches_succeeded_with_counts(
    client, org, key, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        response = post_import(client, key, file=upload(PETSTORE_SIMPLE))

        assert response.status_code == 202, response.content
        queued = response.json()
        assert queued["status"] == "pending"  # nothing runs before the upload commits
        assert response.headers["Location"] == f"/api/v1/imports/{queued['id']}"
        assert queued["source"] == "petstore"
        assert (queued["errors"], queued["warnings"]) == ([], [])
        assert queued["filename"] == "petstore-simple.json"
        assert len(queued["sha256"]) == 64
        assert not Action.objects.exists()
    # One task queued (the import's own commit adds a callback renewing the stamp).
    queued_tasks = [c for c in callbacks if getattr(c, "func", None) is enqueue_import]
    assert len(queued_tasks) == 1

    status = get_import(client, key, response.headers["Location"])

    assert status.status_code == 200
    job = status.json()
    assert job["status"] == "succeeded", job["errors"]
    assert job["counts"] == {"created": 2, "updated": 0, "removed": 0, "unchanged": 0}
    assert job["progress"] == {"done": 2, "total": 2}
    assert job["errors"] == []
    assert job["warnings"] == []
    assert sorted(job["diff"]["added"]) == ["GET /pet/{id}", "PUT /pet/{id}"]
    actions = Action.objects.filter(organization=org, source__name="petstore")
    assert sorted(actions.values_list("name", flat=True)) == ["Find a pet", "Update a pet"]
    assert {tuple(action.channels) for action in actions} == {("widget",)}
    assert {action.endpoint for action in actions} == {"https://httpbin.org/pet/{id}"}


def test_server_base_url_overrides_a_spec_whose_only_server_is_http(
    client, org, key, django_capture_on_commit_callbacks
):
    refused = run_import(client, key, django_capture_on_commit_callbacks, file=upload(PETSTORE))
    assert refused["status"] == "failed"
    assert refused["errors"][0]["code"] == "cannot_determine_api_endpoint"

    job = run_import(
        client,
        key,
        django_capture_on_commit_callbacks,
        file=upload(PETSTORE),
        serverBaseUrl=BASE_URL,
    )

    assert job["status"] == "succeeded", job["errors"]
    assert job["base_url"] == BASE_URL
    assert job["counts"]["created"] == 20
    endpoints = Action.objects.filter(organization=org).values_list("endpoint", flat=True)
    assert all(endpoint.startswith(f"{BASE_URL}/") for endpoint in endpoints)
    assert set(Action.objects.values_list("operation_key", flat=True)) == PETSTORE_KEYS


def test_an_http_server_base_url_fails_the_import_naming_the_override(
    client, org, key, django_capture_on_commit_callbacks
):
    job = run_import(
        client,
        key,
        django_capture_on_commit_callbacks,
        file=upload(PETSTORE),
        serverBaseUrl="http://petstore.example.com/v3",
    )

    assert job["status"] == "failed"
    assert job["errors"][0]["code"] == "cannot_determine_api_endpoint"
    assert "http://petstore.example.com/v3" in job["errors"][0]["message"]
    assert "https://" in job["errors"][0]["fix"]
    assert not Action.objects.exists()


def test_a_dry_run_returns_the_diff_per_operation_and_writes_nothing(
    client, org, key, django_capture_on_commit_callbacks
):
    run_import(
        client,
        key,
        django_capture_on_commit_callbacks,
        file=upload(PETSTORE),
        serverBaseUrl=BASE_URL,
    )
    before = sorted(Action.objects.values_list("pk", "operation_key", "name", "updated_at"))

    job = run_import(
        client,
        key,
        django_capture_on_commit_callbacks,
        file=upload(json.dumps(petstore_v2()).encode(), "petstore.json"),
        serverBaseUrl=BASE_URL,
        dry_run="true",
    )

    assert job["status"] == "succeeded", job["errors"]
    assert job["dry_run"] is True
    assert job["diff"] == {"added": [V2_ADDED], "changed": [V2_CHANGED], "removed": [V2_REMOVED]}
    assert job["counts"] == {"created": 1, "updated": 1, "removed": 1, "unchanged": 18}
    assert sorted(Action.objects.values_list("pk", "operation_key", "name", "updated_at")) == before


def test_a_broken_spec_fails_with_every_invalid_operation_led_by_the_first(
    client, org, key, django_capture_on_commit_callbacks
):
    job = run_import(client, key, django_capture_on_commit_callbacks, file=upload(SCHEMA_CIRCULAR))

    assert job["status"] == "failed"
    assert [error["operation"] for error in job["errors"]] == [
        "PUT /circular",
        "POST /not-quite-circular",
    ]
    lead = job["errors"][0]
    assert {k: lead[k] for k in CIRCULAR_FIRST} == CIRCULAR_FIRST
    assert "circular $ref" in lead["message"] and lead["fix"]
    assert job["counts"] == {"created": 0, "updated": 0, "removed": 0, "unchanged": 0}
    assert not Action.objects.exists()  # a failed import changes nothing


def test_skip_invalid_imports_the_valid_operations_and_reports_the_rest(
    client, org, key, django_capture_on_commit_callbacks
):
    job = run_import(
        client,
        key,
        django_capture_on_commit_callbacks,
        file=upload(SCHEMA_CIRCULAR),
        skip_invalid="true",
    )

    assert job["status"] == "succeeded", job["errors"]
    assert job["counts"]["created"] == 1
    assert [error["operation"] for error in job["errors"]] == [
        "PUT /circular",
        "POST /not-quite-circular",
    ]
    assert list(Action.objects.values_list("operation_key", flat=True)) == ["PUT /nestedTest"]


def test_an_optional_recursive_input_imports_with_a_recursive_schema_cut_warning(
    client, org, key, django_capture_on_commit_callbacks
):
    job = run_import(
        client, key, django_capture_on_commit_callbacks, file=upload(RECURSIVE_OPTIONAL)
    )

    assert job["status"] == "succeeded", job["errors"]
    assert job["counts"]["created"] == 3
    assert job["errors"] == []
    assert all(set(warning) == PROBLEM_KEYS for warning in job["warnings"])
    assert [(w["code"], w["operation"], w["pointer"]) for w in job["warnings"]] == RECURSIVE_CUTS
    lead = job["warnings"][0]
    assert lead["message"].startswith("The input is recursive (#/components/schemas/MultiPart")
    assert "expands it 3 levels deep" in lead["message"]
    assert lead["fix"].startswith("Nothing to do if 3 levels are enough")
    assert Action.objects.filter(organization=org).count() == 3


def test_a_dry_run_reports_the_warnings_of_what_it_would_import(
    client, org, key, django_capture_on_commit_callbacks
):
    job = run_import(
        client,
        key,
        django_capture_on_commit_callbacks,
        file=upload(RECURSIVE_OPTIONAL),
        dry_run="true",
    )

    assert (job["status"], job["dry_run"]) == ("succeeded", True)
    assert [(w["code"], w["operation"], w["pointer"]) for w in job["warnings"]] == RECURSIVE_CUTS
    assert not Action.objects.exists()


def test_warnings_stay_apart_from_errors_and_a_failed_import_has_none(
    client, org, key, django_capture_on_commit_callbacks
):
    failed = run_import(
        client, key, django_capture_on_commit_callbacks, file=upload(CIRCULAR_BODIES)
    )

    assert failed["status"] == "failed"
    assert [e["operation"] for e in failed["errors"]] == ["POST /direct (directCircular)"]
    assert failed["warnings"] == []  # nothing was imported, so nothing to know about

    job = run_import(
        client,
        key,
        django_capture_on_commit_callbacks,
        file=upload(CIRCULAR_BODIES),
        skip_invalid="true",
    )

    assert job["status"] == "succeeded", job["errors"]
    assert [(e["code"], e["operation"]) for e in job["errors"]] == [
        ("invalid_tool_schema", "POST /direct (directCircular)")
    ]
    assert [(w["code"], w["operation"]) for w in job["warnings"]] == [
        ("recursive_schema_cut", "POST /indirect (indirectCircular)"),
        ("recursive_schema_cut", "POST /polymorphic (polymorphicCircular)"),
        ("recursive_schema_cut", "POST /multiple (multipleCircular)"),
    ]
    assert Action.objects.count() == 3


def test_an_external_ref_fails_to_parse_and_names_the_ref(
    client, org, key, django_capture_on_commit_callbacks
):
    job = run_import(client, key, django_capture_on_commit_callbacks, file=upload(EXTERNAL_REF))

    assert job["status"] == "failed"
    assert job["errors"][0]["code"] == "failed_to_parse_spec"
    assert "https://127.0.0.1:9/pet.json" in job["errors"][0]["message"]
    assert not Action.objects.exists()


def test_a_post_without_a_file_is_400_and_queues_nothing(client, org, key):
    response = post_import(client, key, serverBaseUrl=BASE_URL)

    assert response.status_code == 400
    assert "file" in response.json()
    assert not SpecImport.objects.exists()
    assert not SpecSource.objects.exists()


@pytest.mark.parametrize("source", ["Billing", "billing%20api", "billing.v2", "x" * 101])
def test_a_bad_source_name_is_400_and_queues_nothing(client, org, key, source):
    response = post_import(client, key, source, file=upload(PETSTORE_SIMPLE))

    assert response.status_code == 400
    assert "source" in response.json()
    assert not SpecImport.objects.exists()
    assert not SpecSource.objects.exists()


def test_a_file_over_the_size_limit_is_400_and_queues_nothing(client, org, key, settings):
    settings.IMPORT_MAX_BYTES = PETSTORE_SIMPLE.stat().st_size - 1

    response = post_import(client, key, file=upload(PETSTORE_SIMPLE))

    assert response.status_code == 400
    message = " ".join(response.json()["file"])
    assert "failed_to_parse_spec" in message
    assert f"{settings.IMPORT_MAX_BYTES:,}-byte limit" in message
    assert not SpecImport.objects.exists()


def test_without_a_key_both_calls_are_401(client, org, key, django_capture_on_commit_callbacks):
    job = run_import(client, key, django_capture_on_commit_callbacks, file=upload(PETSTORE_SIMPLE))

    assert post_import(client, None, file=upload(PETSTORE_SIMPLE)).status_code == 401
    assert get_import(client, None, job["id"]).status_code == 401
    assert SpecImport.objects.count() == 1


def test_a_key_without_the_specs_import_scope_is_403(
    client, org, key, django_capture_on_commit_callbacks
):
    job = run_import(client, key, django_capture_on_commit_callbacks, file=upload(PETSTORE_SIMPLE))
    _, other = OrganizationAPIKey.objects.create_key(
        organization=org, name="runtime", scopes="tools actions:write"
    )

    refused = post_import(client, other, file=upload(PETSTORE_SIMPLE))

    assert refused.status_code == 403
    assert "specs:import" in refused.json()["detail"]
    assert get_import(client, other, job["id"]).status_code == 403
    assert SpecImport.objects.count() == 1


def test_another_organizations_import_is_404(client, org, key, django_capture_on_commit_callbacks):
    job = run_import(client, key, django_capture_on_commit_callbacks, file=upload(PETSTORE_SIMPLE))
    _, stranger = OrganizationAPIKey.objects.create_key(
        organization=make_organization(), name="ci", scopes="specs:import"
    )

    response = get_import(client, stranger, job["id"])

    assert response.status_code == 404
    assert "sha256" not in response.content.decode()
    assert get_import(client, key, job["id"]).status_code == 200


def test_reimport_keeps_ids_and_channel_toggles_and_leaves_hand_authored_actions_alone(
    client, org, key, django_capture_on_commit_callbacks
):
    run_import(
        client,
        key,
        django_capture_on_commit_callbacks,
        file=upload(PETSTORE),
        serverBaseUrl=BASE_URL,
    )
    ids = dict(Action.objects.values_list("operation_key", "pk"))
    toggled = Action.objects.get(operation_key="POST /pet")  # it changes in v2
    toggled.channels = ["email", "slack"]
    toggled.save()
    hand_authored = make_action(org, name="Look up an order")
    hand_before = Action.objects.filter(pk=hand_authored.pk).values().get()

    job = run_import(
        client,
        key,
        django_capture_on_commit_callbacks,
        file=upload(json.dumps(petstore_v2()).encode(), "petstore.json"),
        serverBaseUrl=BASE_URL,
    )

    assert job["status"] == "succeeded", job["errors"]
    assert job["counts"] == {"created": 1, "updated": 1, "removed": 1, "unchanged": 18}
    generated = dict(
        Action.objects.filter(source__name="petstore").values_list("operation_key", "pk")
    )
    assert set(generated) == V2_KEYS
    for operation_key in V2_KEYS & PETSTORE_KEYS:
        assert generated[operation_key] == ids[operation_key]  # kept their ids
    toggled.refresh_from_db()
    assert toggled.name == "Register a new pet with the store"  # the spec's field, updated
    assert toggled.channels == ["email", "slack"]  # the admin's, kept
    assert Action.objects.filter(pk=hand_authored.pk).values().get() == hand_before


def test_reimporting_an_unchanged_spec_reports_everything_unchanged(
    client, org, key, django_capture_on_commit_callbacks
):
    run_import(client, key, django_capture_on_commit_callbacks, file=upload(PETSTORE_SIMPLE))
    stamps = sorted(Action.objects.values_list("pk", "updated_at"))

    job = run_import(client, key, django_capture_on_commit_callbacks, file=upload(PETSTORE_SIMPLE))

    assert job["counts"] == {"created": 0, "updated": 0, "removed": 0, "unchanged": 2}
    assert sorted(Action.objects.values_list("pk", "updated_at")) == stamps


def test_reading_an_import_costs_a_fixed_number_of_queries(
    client, org, key, django_capture_on_commit_callbacks, django_assert_num_queries
):
    job = run_import(
        client,
        key,
        django_capture_on_commit_callbacks,
        file=upload(PETSTORE),
        serverBaseUrl=BASE_URL,
    )
    get_import(client, key, job["id"])  # records the key's first use: one write a minute

    # The import (with its source), never the document; the key was verified already
    # under the organization's current stamp (actions.state).
    with django_assert_num_queries(1) as queries:
        assert get_import(client, key, job["id"]).status_code == 200
    assert "document" not in queries.captured_queries[-1]["sql"]
