"""The plain data the import pipeline passes between its steps, and how it fails.

    load (bytes -> document dict) -> validate (-> OpenAPI version)
      -> convert (document -> Conversion: OperationDraft per operation + Problems)
      -> sync (drafts -> the database, the only step that writes)

Every step but sync is a pure function over these types. A Problem names its stable
code, the operation at fault and the JSON pointer, and says how to fix it.
"""

from dataclasses import asdict, dataclass, field
from typing import Any

from django.core.exceptions import ValidationError

from actions import validators
from actions.context import validate_magic_field

FAILED_TO_PARSE_SPEC = "failed_to_parse_spec"
INVALID_TOOL_SCHEMA = "invalid_tool_schema"
CANNOT_DETERMINE_API_ENDPOINT = "cannot_determine_api_endpoint"
CODES = (FAILED_TO_PARSE_SPEC, INVALID_TOOL_SCHEMA, CANNOT_DETERMINE_API_ENDPOINT)
# Warnings: the operation is imported, with something the admin should know.
RECURSIVE_SCHEMA_CUT = "recursive_schema_cut"  # a recursive input, expanded to a set depth
WARNING_CODES = (RECURSIVE_SCHEMA_CUT,)

METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
# A spec may define a body on DELETE (GitHub does, on 17 operations), and an imported
# action sends it; hand-authored actions keep bodies to POST, PUT and PATCH.
METHODS_WITH_BODY = frozenset({"POST", "PUT", "PATCH", "DELETE"})
BODY_FORMATS = ("json", "multipart", "form", "binary")  # actions.models.Action.BodyFormat


@dataclass(frozen=True)
class Problem:
    """Why a spec, or one of its operations, cannot become actions; or, with one of
    WARNING_CODES, what the admin should know about an operation that was imported."""

    code: str  # one of CODES, or of WARNING_CODES
    message: str  # what is wrong
    fix: str = ""  # how to fix it
    operation: str = ""  # "GET /pets/{petId} (getPet)", empty for the whole document
    pointer: str = ""  # JSON pointer into the document, e.g. "#/paths/~1pets/get"

    def as_dict(self) -> dict[str, str]:
        return asdict(self)

    def __str__(self) -> str:
        where = f"{self.operation}: " if self.operation else ""
        at = f" (at {self.pointer})" if self.pointer else ""
        fix = f" {self.fix}" if self.fix else ""
        return f"{self.code}: {where}{self.message}{at}.{fix}".replace("..", ".")


class ImportFailed(Exception):
    """The import cannot go on; `problems` lists every reason, the first leads."""

    def __init__(self, problems: list[Problem]) -> None:
        if not problems:
            raise ValueError("ImportFailed needs at least one problem")
        self.problems = problems
        super().__init__(str(problems[0]))

    @property
    def code(self) -> str:
        return self.problems[0].code


@dataclass
class RowDraft:
    """A header, query or path value of an action (see actions.models.ValueRow)."""

    location: str  # header | query | path
    key: str
    kind: str = "ai"  # static | magic | ai
    value: str = ""  # static text (may hold {{global.NAME}}), or a magic path
    description: str = ""
    required: bool = False
    value_schema: dict[str, Any] | None = None


@dataclass
class OperationDraft:
    """One operation of a spec, as the action it becomes."""

    operation_key: str  # "GET /pets/{petId}": its identity across re-imports
    operation_id: str  # may be empty
    name: str
    tool_name: str
    description: str
    method: str
    endpoint: str  # absolute https:// URL; path placeholders are identifiers
    body_schema: dict[str, Any] | None = None
    # json | multipart | form (application/x-www-form-urlencoded) | binary (raw bytes)
    body_format: str = "json"
    headers: list[RowDraft] = field(default_factory=list)
    parameters: list[RowDraft] = field(default_factory=list)  # query and path rows
    tags: list[str] = field(default_factory=list)
    pinned: bool = False
    requires_form: bool = False

    @property
    def label(self) -> str:
        """How reports name the operation: `METHOD /path (operationId)`."""
        return (
            f"{self.operation_key} ({self.operation_id})"
            if self.operation_id
            else (self.operation_key)
        )


@dataclass
class Conversion:
    """What convert() makes of a document: the valid drafts, the invalid operations,
    and warnings about valid ones (each a Problem with a code of WARNING_CODES, naming
    an operation that is among the drafts)."""

    version: str  # "2.0", "3.0", "3.1" or "3.2"
    drafts: list[OperationDraft]
    problems: list[Problem] = field(default_factory=list)
    operations_total: int = 0
    warnings: list[Problem] = field(default_factory=list)


def draft_errors(draft: OperationDraft) -> list[str]:
    """The action rules a draft breaks, checked without the database.

    These are the rules every action obeys (actions.validators), as an imported one:
    its body may have any root and nested multipart parts. An empty list means the
    draft will save.
    """
    errors: list[str] = []

    def check(label: str, rule, *args, **kwargs):
        try:
            return rule(*args, **kwargs)
        except ValidationError as error:
            errors.extend(f"{label}: {message}" for message in error.messages)
            return None

    check("name", validators.validate_name, draft.name)
    check("tool name", validators.validate_tool_name, draft.tool_name)
    check("description", validators.validate_description, draft.description)
    if draft.method not in METHODS:
        errors.append(f"method: {draft.method} is not one of {', '.join(METHODS)}")
    placeholders = check("endpoint", validators.parse_endpoint, draft.endpoint) or []
    if draft.body_schema is not None:
        if draft.method not in METHODS_WITH_BODY:
            errors.append(f"body: {draft.method} requests carry no body")
        if draft.body_format == "binary":
            check("body", validators.validate_binary_body, draft.body_schema)
        else:
            check("body", validators.validate_body_schema, draft.body_schema, object_root=False)
        check("body", validators.validate_storable_json, draft.body_schema)
    if draft.body_format not in BODY_FORMATS:
        errors.append(f"body format: {draft.body_format} is not {', '.join(BODY_FORMATS)}")

    for row in draft.headers:
        check(f"header {row.key}", validators.validate_header_name, row.key)
    for index, problems in validators.header_row_errors([r.key for r in draft.headers]).items():
        errors.extend(
            f"header {draft.headers[index].key}: {m}" for p in problems for m in p.messages
        )
    row_keys = [(r.location, r.key) for r in draft.parameters]
    for index, problems in validators.parameter_row_errors(row_keys, placeholders).items():
        errors.extend(
            f"parameter {draft.parameters[index].key}: {m}" for p in problems for m in p.messages
        )
    for row in [*draft.headers, *draft.parameters]:
        label = f"{row.location} {row.key}"
        if row.location == "query":
            check(label, validators.validate_query_key, row.key)
        if row.location == "path" and not validators.PLACEHOLDER_NAME_RE.match(row.key):
            errors.append(f"{label}: a path key must be an identifier")
        if row.kind == "static":
            check(label, validators.validate_static_value, row.value)
        elif row.kind == "magic":
            check(label, validate_magic_field, row.value)
        elif row.kind == "ai":
            if row.value:
                errors.append(f"{label}: an AI-filled value must be empty")
            if row.value_schema is not None:
                check(label, validators.validate_value_schema, row.value_schema)
                check(label, validators.validate_storable_json, row.value_schema)
        else:
            errors.append(f"{label}: kind {row.kind} is not static, magic or ai")
    return errors
