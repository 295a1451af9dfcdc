"""python manage.py import_openapi PATH --org SLUG [--source NAME] [--base-url URL]
[--dry-run] [--skip-invalid] [--json]: exit 0 on success, 1 on an import error."""

import json
import re
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from actions.models import Action, SpecSource
from importer.models import SpecImport
from tests.factories import make_organization
from tests.importer.specs import (
    BASE_URL,
    PETSTORE,
    PETSTORE_KEYS,
    PETSTORE_SIMPLE,
    RECURSIVE_CUTS,
    RECURSIVE_OPTIONAL,
    SCHEMA_CIRCULAR,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def org():
    return make_organization(slug="acme")


def import_openapi(path, *args, **options) -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command("import_openapi", str(path), *args, stdout=out, stderr=err, **options)
    return out.getvalue(), err.getvalue()


def test_a_successful_import_prints_its_counts(org):
    out, err = import_openapi(PETSTORE_SIMPLE, org="acme")

    assert out.strip() == (
        "Imported petstore-simple.json into “petstore-simple”: 2 created, 0 updated, "
        "0 removed, 0 unchanged."
    )
    assert err == ""
    assert set(Action.objects.filter(organization=org).values_list("operation_key", flat=True)) == {
        "GET /pet/{id}",
        "PUT /pet/{id}",
    }
    job = SpecImport.objects.get()
    assert (job.via, job.status, job.source.name) == ("command", "succeeded", "petstore-simple")


def test_json_prints_exactly_status_counts_errors_and_warnings(org):
    out, _ = import_openapi(PETSTORE_SIMPLE, "--json", org="acme", source="pets")

    assert json.loads(out) == {
        "status": "succeeded",
        "created": 2,
        "updated": 0,
        "removed": 0,
        "unchanged": 0,
        "errors": [],
        "warnings": [],
    }
    assert SpecSource.objects.get().name == "pets"


def test_a_dry_run_prints_what_would_change_and_writes_nothing(org):
    out, _ = import_openapi(PETSTORE_SIMPLE, "--dry-run", org="acme")

    assert out.startswith("Would import petstore-simple.json")
    assert "2 created" in out
    assert not Action.objects.exists()


def test_a_spec_with_only_an_http_server_needs_base_url(org):
    with pytest.raises(SystemExit) as exit:
        import_openapi(PETSTORE, org="acme")
    assert exit.value.code == 1
    assert not Action.objects.exists()

    out, _ = import_openapi(PETSTORE, "--json", org="acme", base_url=BASE_URL)

    assert json.loads(out)["created"] == 20
    actions = Action.objects.filter(organization=org)
    assert set(actions.values_list("operation_key", flat=True)) == PETSTORE_KEYS
    assert all(a.endpoint.startswith(f"{BASE_URL}/") for a in actions)


def test_an_import_error_exits_1_printing_code_operation_and_message_first_one_first(org):
    err = StringIO()
    with pytest.raises(SystemExit) as exit:
        call_command(
            "import_openapi", str(SCHEMA_CIRCULAR), org="acme", stdout=StringIO(), stderr=err
        )

    assert exit.value.code == 1
    assert not Action.objects.exists()

    lines = [line for line in err.getvalue().splitlines() if not line.startswith("  fix:")]
    assert len(lines) == 2
    assert lines[0].startswith("invalid_tool_schema: PUT /circular circular $ref")
    assert lines[1].startswith("invalid_tool_schema: POST /not-quite-circular circular $ref")
    assert "  fix: Make the input non-recursive" in err.getvalue()


def test_an_import_error_with_json_prints_the_errors_and_still_exits_1(org):
    out = StringIO()
    with pytest.raises(SystemExit) as exit:
        call_command("import_openapi", str(SCHEMA_CIRCULAR), "--json", org="acme", stdout=out)

    assert exit.value.code == 1
    result = json.loads(out.getvalue())
    assert result["status"] == "failed"
    assert (result["created"], result["updated"], result["removed"]) == (0, 0, 0)
    assert result["warnings"] == []
    assert [(e["code"], e["operation"], e["pointer"]) for e in result["errors"]] == [
        ("invalid_tool_schema", "PUT /circular", "#/components/schemas/MultiPart"),
        ("invalid_tool_schema", "POST /not-quite-circular", "#/components/schemas/ZoneRules"),
    ]


def test_skip_invalid_imports_the_rest_and_lists_what_it_skipped(org):
    out, _ = import_openapi(SCHEMA_CIRCULAR, "--skip-invalid", org="acme")

    assert "1 created" in out
    assert "  skipped PUT /circular: circular $ref" in out
    assert "  skipped POST /not-quite-circular: circular $ref" in out
    assert list(Action.objects.values_list("operation_key", flat=True)) == ["PUT /nestedTest"]


def test_warnings_print_after_the_counts_and_the_import_still_succeeds(org):
    out, err = import_openapi(RECURSIVE_OPTIONAL, org="acme")  # no SystemExit: exit 0

    lines = out.splitlines()
    assert lines[0] == (
        "Imported schema-circular.json into “schema-circular”: 3 created, 0 updated, "
        "0 removed, 0 unchanged."
    )
    warnings = [line for line in lines if line.startswith("  warning: ")]
    assert [line.split(": ")[1:3] for line in warnings] == [
        [code, operation] for code, operation, _ in RECURSIVE_CUTS
    ]
    assert warnings[0].startswith(
        "  warning: recursive_schema_cut: PUT /circular: The input is recursive "
        "(#/components/schemas/MultiPart"
    )
    assert warnings[0].endswith("(at #/components/schemas/MultiPart)")
    assert lines[2].startswith("    fix: Nothing to do if 3 levels are enough")
    assert err == ""
    assert Action.objects.filter(organization=org).count() == 3


def test_json_lists_warnings_apart_from_errors(org):
    out, _ = import_openapi(RECURSIVE_OPTIONAL, "--json", "--dry-run", org="acme")

    result = json.loads(out)
    assert (result["status"], result["created"], result["errors"]) == ("succeeded", 3, [])
    assert [(w["code"], w["operation"], w["pointer"]) for w in result["warnings"]] == (
        RECURSIVE_CUTS
    )
    assert all(w["message"] and w["fix"] for w in result["warnings"])
    assert not Action.objects.exists()


def test_an_unknown_organization_is_a_command_error(org):
    with pytest.raises(
        CommandError, match=re.escape("No organization with slug “nope”. Known: acme")
    ):
        import_openapi(PETSTORE_SIMPLE, org="nope")

    assert not SpecImport.objects.exists()


def test_a_missing_file_is_a_command_error(org, tmp_path):
    with pytest.raises(CommandError, match="No file at"):
        import_openapi(tmp_path / "missing.json", org="acme")
