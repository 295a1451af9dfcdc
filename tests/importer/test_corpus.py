"""The real-world corpus, ../shared/specs: 172 third-party specs, converted.

Every spec converts or fails with a documented code; every draft it yields obeys
every action rule and makes a tool schema valid under Draft 2020-12 whose refs all
resolve; and the operations left out are exactly the documented ones.

Documents are read with json / yaml's safe loader here (load_document and
validate_document are covered by their own tests).
"""

import csv
import functools
import json
import re
import time
from pathlib import Path

import pytest
import yaml
from jsonschema import Draft202012Validator

from actions import tool_formats
from actions.tool_schema import InputRow, build_tool_schema
from actions.validators import _resolves, _walk_refs, check_meta_schema
from importer.convert import convert_document
from importer.drafts import (
    CANNOT_DETERMINE_API_ENDPOINT,
    CODES,
    FAILED_TO_PARSE_SPEC,
    RECURSIVE_SCHEMA_CUT,
    Conversion,
    ImportFailed,
    OperationDraft,
    draft_errors,
)
from tests.conftest import require_service

ROOT = Path(__file__).resolve().parents[2]
SPECS = ROOT.parent / "shared" / "specs"
INDEX = list(csv.DictReader((SPECS / "INDEX.csv").open())) if SPECS.exists() else []
FILES = [row["file"] for row in INDEX]
FORMATS = {row["file"]: row["format"] for row in INDEX}
OVERRIDE = "https://api.example.com"
GITHUB = "npm/octokit__openapi/generated/api.github.com.json"
KUBERNETES = "github/kubernetes-client__python/kubernetes/swagger.json.unprocessed"
DIGITALOCEAN = "github/digitalocean__openapi/specification/DigitalOcean-public.v2.yaml"

# Every draft of a spec is checked with the full, pure-Python draft_errors and
# check_schema up to this many; beyond, an even sample is, and the rest piece by
# piece (see assert_tool_schemas_valid). Kubernetes alone would take 40 s in full.
FULLY_CHECKED = 100

_ENDLESS = "POST /direct: circular $ref that never ends (TreeNode requires a parent TreeNode)"
# Operations not imported even with a base URL override: the documented limits.
NOT_IMPORTED: dict[str, tuple[int, str]] = {
    "npm/readme__oas-examples/3.0/json/circular-request-bodies.json": (1, _ENDLESS),
    "npm/readme__oas-examples/3.0/yaml/circular-request-bodies.yaml": (1, _ENDLESS),
    "github/OAI__learn.openapis.org/examples/v2.0/json/petstore-separate/spec/swagger.json": (
        2,
        "external $ref (a multi-file spec: bundle it first)",
    ),
    "github/OAI__learn.openapis.org/examples/v2.0/yaml/petstore-separate/spec/swagger.yaml": (
        2,
        "external $ref (a multi-file spec: bundle it first)",
    ),
    DIGITALOCEAN: (
        659,
        "every operation is an external $ref (a multi-file spec: bundle it first)",
    ),
}

_LABEL_RE = re.compile(r"^(GET|PUT|POST|DELETE|PATCH) \S*( \(.+\))?$")


def require_corpus() -> None:
    require_service(bool(FILES), f"the spec corpus is missing at {SPECS}")


def test_the_corpus_is_there():
    require_corpus()
    assert len(FILES) == 172


@functools.cache
def document(file: str) -> dict:
    text = (SPECS / file).read_text(encoding="utf-8")
    if FORMATS[file] == "json":
        return json.loads(text)
    return yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))  # noqa: S506


def version_of(doc: dict) -> str:
    declared = str(doc.get("swagger") or doc.get("openapi"))
    return "2.0" if declared.startswith("2") else declared[:3]


@functools.cache
def conversion(file: str, base_url: str | None) -> Conversion | ImportFailed:
    doc = document(file)
    try:
        return convert_document(doc, version_of(doc), base_url=base_url)
    except ImportFailed as failure:
        return failure


def tool_schema(draft: OperationDraft) -> dict:
    rows = [
        InputRow(row.location, row.key, row.description, row.required, row.value_schema)
        for row in [*draft.parameters, *draft.headers]
        if row.kind == "ai"
    ]
    return build_tool_schema(draft.body_schema, rows).schema


@pytest.mark.parametrize("file", FILES)
def test_each_spec_converts_or_fails_with_a_documented_code(file):
    result = conversion(file, None)
    if isinstance(result, ImportFailed):
        assert result.code in (CANNOT_DETERMINE_API_ENDPOINT, FAILED_TO_PARSE_SPEC)
        problems = result.problems
    else:
        problems = result.problems
        assert result.operations_total == len(result.drafts) + len(problems)
        for problem in problems:
            assert _LABEL_RE.match(problem.operation), problem.operation
            assert problem.pointer.startswith("#/"), problem
    for problem in problems:
        assert problem.code in CODES
        assert problem.message and problem.fix


@pytest.mark.parametrize("file", FILES)
def test_every_draft_of_each_spec_obeys_the_action_rules_and_makes_a_valid_tool_schema(file):
    result = conversion(file, OVERRIDE)
    assert isinstance(result, Conversion), result  # with a base URL, no spec fails whole
    drafts = result.drafts
    step = max(1, -(-len(drafts) // FULLY_CHECKED))
    for draft in drafts[::step]:
        assert draft_errors(draft) == [], draft.label
        schema = tool_schema(draft)
        Draft202012Validator.check_schema(schema)
    assert_tool_schemas_valid(drafts)
    assert len({d.tool_name for d in drafts}) == len(drafts)
    assert len({d.name.casefold() for d in drafts}) == len(drafts)


def assert_tool_schemas_valid(drafts: list[OperationDraft]) -> None:
    """Every tool schema, checked piece by piece: the schema without `$defs`, then each
    definition once (drafts share them), then every $ref against the whole. Draft
    2020-12's meta-schema checks `$defs` members one by one, so this is the same
    verdict as check_schema on the whole, without re-checking shared definitions."""
    checked: dict[int, object] = {}
    for draft in drafts:
        schema = tool_schema(draft)
        definitions = schema.get("$defs", {})
        Draft202012Validator.check_schema({k: v for k, v in schema.items() if k != "$defs"})
        for definition in definitions.values():
            if id(definition) not in checked:
                Draft202012Validator.check_schema(definition)
                checked[id(definition)] = definition
        for _pointer, ref in _walk_refs(schema):
            assert _resolves(schema, ref), (draft.label, ref)
        for row in [*draft.headers, *draft.parameters]:
            if row.value_schema is not None and id(row.value_schema) not in checked:
                assert "$ref" not in json.dumps(row.value_schema), draft.label
                checked[id(row.value_schema)] = row.value_schema


def test_the_corpus_imports_every_operation_but_the_documented_ones():
    require_corpus()
    imported = total = 0
    not_imported: dict[str, int] = {}
    lines = []
    for file in FILES:
        result = conversion(file, OVERRIDE)
        assert isinstance(result, Conversion)
        imported += len(result.drafts)
        total += result.operations_total
        if result.problems:
            not_imported[file] = len(result.problems)
        share = len(result.drafts) / result.operations_total if result.operations_total else 1
        lines.append(f"{share:7.1%} {len(result.drafts):5}/{result.operations_total:<5} {file}")
    print("\n".join(["", "imported operations per spec (with a base URL override):", *lines]))
    print(f"overall: {imported}/{total} = {imported / total:.1%}")
    assert not_imported == {file: count for file, (count, _why) in NOT_IMPORTED.items()}
    # DigitalOcean's spec is many files: validation refuses it until it is bundled.
    bundled = total - NOT_IMPORTED[DIGITALOCEAN][0]
    assert imported / bundled > 0.985


# Operations whose recursive input is imported cut, with a warning (normalize.Schemas).
RECURSIVE: dict[str, int] = {
    "npm/readme__oas-examples/2.0/json/schema-circular.json": 1,
    "npm/readme__oas-examples/2.0/yaml/schema-circular.yaml": 1,
    "npm/readme__oas-examples/3.0/json/circular-paths.json": 2,
    "npm/readme__oas-examples/3.0/yaml/circular-paths.yaml": 2,
    "npm/readme__oas-examples/3.0/json/circular-request-bodies.json": 3,
    "npm/readme__oas-examples/3.0/yaml/circular-request-bodies.yaml": 3,
    "npm/readme__oas-examples/3.0/json/schema-circular.json": 2,
    "npm/readme__oas-examples/3.0/yaml/schema-circular.yaml": 2,
    "npm/readme__oas-examples/3.0/json/schema-types.json": 2,
    "npm/readme__oas-examples/3.0/yaml/schema-types.yaml": 2,
    "npm/readme__oas-examples/3.1/json/schema-types.json": 2,
    "npm/readme__oas-examples/3.1/yaml/schema-types.yaml": 2,
    KUBERNETES: 3,  # CustomResourceDefinition's JSONSchemaProps
}


def test_recursive_inputs_import_cut_with_a_warning_and_render_in_every_format():
    require_corpus()
    warned: dict[str, int] = {}
    for file in FILES:
        result = conversion(file, OVERRIDE)
        assert isinstance(result, Conversion)
        if not result.warnings:
            continue
        warned[file] = len(result.warnings)
        drafts = {draft.label: draft for draft in result.drafts}
        for warning in result.warnings:
            assert warning.code == RECURSIVE_SCHEMA_CUT
            assert warning.pointer.startswith("#/") and " → " in warning.message
            draft = drafts[warning.operation]  # a warning names an imported operation
            schema = tool_schema(draft)
            check_meta_schema(schema)
            tool = tool_formats.ToolDefinition(
                draft.tool_name, draft.name, draft.description, schema, draft.method
            )
            for fmt in tool_formats.FORMATS:
                tool_formats.render(tool, fmt)
    assert warned == RECURSIVE


@pytest.mark.parametrize("file", [GITHUB, KUBERNETES])
def test_the_largest_specs_convert_in_well_under_two_seconds(file):
    require_corpus()
    doc = document(file)
    timings = []
    for _ in range(2):
        started = time.perf_counter()
        convert_document(doc, version_of(doc), base_url=OVERRIDE)
        timings.append(time.perf_counter() - started)
    assert min(timings) < 2.0, timings
