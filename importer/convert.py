"""An OpenAPI document, converted into one action draft per operation.

    convert_document(doc, "3.0") -> Conversion(drafts=[OperationDraft, ...],
                                               problems=[Problem, ...])

Pure: a decoded, validated document in, plain dataclasses out; nothing is fetched,
written or modified (the normalized schema pieces are shared between drafts: treat
drafts as read-only). Every draft returned passes `importer.drafts.draft_errors`;
every operation that cannot become an action is a Problem naming it, and all of
them are listed, in document order. Only a failure of the whole document raises
ImportFailed.

Decisions (each one covered by tests/importer/test_convert.py):
- Operations are the GET, PUT, POST, DELETE and PATCH of each path item. HEAD,
  OPTIONS and TRACE are not action methods: they are not converted nor counted in
  `operations_total`; `skipped_operations()` lists them for the report.
- Base URL: see importer.servers. It is decided per operation (operation-level
  servers can differ): an operation without one is a `cannot_determine_api_endpoint`
  problem, and when no operation has one the document fails with that code.
- Body: JSON first (application/json, then any +json or /json type, then */*),
  else multipart/form-data, else application/x-www-form-urlencoded (format "form"),
  else application/octet-stream (format "binary": raw bytes, which the AI sends
  base64-encoded as the `body` argument, whatever schema the spec gives them; see
  actions.validators.binary_body_schema). A body in another type only (XML,
  text/plain, images) cannot be sent by an action: when the body is required the
  operation is an `invalid_tool_schema` problem; when it is optional the action is
  made without it. The same holds for a body on GET, which actions never send.
- A recursive input (Node.children -> Node) is expanded MAX_RECURSION_DEPTH levels
  deep and imported with a `recursive_schema_cut` warning (Conversion.warnings);
  one that no finite value fits (A requires B, B requires A) is an
  `invalid_tool_schema` problem. See importer.normalize.
- OpenAPI 3.2 is read as 3.1 plus: a media type object may be a $ref (to
  components/mediaTypes); the QUERY method and `additionalOperations` (LINK,
  PURGE...) are not action methods, so, like HEAD, they are neither converted nor
  counted, and skipped_operations() lists them; an optional `in: querystring`
  parameter is left out, a required one is an `invalid_tool_schema` problem.
- Parameters: path-level ones, overridden by the operation's own of the same name
  and location. Path placeholders that are not identifiers (`{user-id}`) are renamed
  (`{user_id}`) in the endpoint and in the path row. Headers Accept, Content-Type
  and Authorization are ignored (OpenAPI says so), and so are the headers an HTTP
  client owns (Host, Content-Length...). A path parameter the path does not use is
  ignored.
- Cookies: an optional cookie parameter is not imported (the AI does not fill
  cookies). A required one, like an apiKey-in-cookie scheme, becomes part of one
  static `Cookie` header that references a global variable named after it
  (`session_id` -> `Cookie: session_id={{global.SESSION_ID}}`), so the
  organization supplies it.
- Security: see importer.security.
- Vendor extensions on the operation: `x-open-require-form-submission` (boolean),
  `x-open-pinned` (boolean), `x-open-tags` (list of strings; sync makes each a
  dashboard tag name); a value of another type is an `invalid_tool_schema` problem on
  that operation naming the extension and the type it needs.
- A draft that would break an action rule (importer.drafts.draft_errors) is an
  `invalid_tool_schema` problem carrying the rules' messages.
"""

import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import parse_qsl, quote

import jsonschema_rs
from django.core.exceptions import ValidationError

from actions import validators
from importer.drafts import (
    CANNOT_DETERMINE_API_ENDPOINT,
    FAILED_TO_PARSE_SPEC,
    INVALID_TOOL_SCHEMA,
    METHODS_WITH_BODY,
    RECURSIVE_SCHEMA_CUT,
    Conversion,
    ImportFailed,
    OperationDraft,
    Problem,
    RowDraft,
    draft_errors,
)
from importer.naming import (
    describe,
    natural_name,
    natural_tool_name,
    unique_names,
    unique_tool_names,
)
from importer.normalize import (
    MAX_RECURSION_DEPTH,
    REF_ALONE,
    SchemaProblem,
    Schemas,
    clean_text,
    json_data,
    ref_names,
    swagger_parameter_schema,
)
from importer.refs import FIX_REF, Document, RefError, escape_token
from importer.security import cookie_row, global_name, security_rows
from importer.servers import OVERRIDE_FIX, NoBaseUrl, base_url, check_override

ACTION_METHODS = ("get", "put", "post", "delete", "patch")
SKIPPED_METHODS = ("head", "options", "trace", "query")  # query: OpenAPI 3.2
# OpenAPI: "If in is header and the name is Accept, Content-Type or Authorization,
# the parameter definition SHALL be ignored."
IGNORED_HEADERS = frozenset({"accept", "content-type", "authorization"})
# Lengths of the columns drafts are saved to (actions.models).
ROW_KEY_MAX_LENGTH = 200
ROW_VALUE_MAX_LENGTH = 2000
ROW_DESCRIPTION_MAX_LENGTH = 1000
ENDPOINT_MAX_LENGTH = 2048
OPERATION_KEY_MAX_LENGTH = 600

FIX_BODY = (
    "Give the operation an application/json, multipart/form-data, "
    "application/x-www-form-urlencoded or application/octet-stream request body, or "
    "import with “skip invalid” to leave it out."
)
BODY_TYPES = (
    "an action sends JSON, multipart/form-data, application/x-www-form-urlencoded or "
    "raw bytes (application/octet-stream)"
)
FIX_BODY_METHOD = (
    "Actions send a body with POST, PUT and PATCH only: make the body optional, or "
    "import with “skip invalid” to leave this operation out."
)
FIX_RULES = (
    "Change the spec so that this operation meets the action rules above, or import "
    "with “skip invalid” to leave it out."
)
EMPTY_BODY_SCHEMA = {"description": "The request body, any JSON value."}
FIX_RECURSION_CUT = (
    f"Nothing to do if {MAX_RECURSION_DEPTH} levels are enough for what the AI sends. "
    "Otherwise describe the deeper levels in the spec without a $ref back to the "
    "recursive schema."
)

_PLACEHOLDER_RE = re.compile(r"\{([^{}]*)\}")
_NOT_IDENTIFIER_RE = re.compile(r"[^A-Za-z0-9_]+")
_STRAY_PERCENT_RE = re.compile(r"%(?![0-9A-Fa-f]{2})")


class OperationProblem(Exception):
    """Why one operation cannot become an action."""

    def __init__(self, code: str, message: str, fix: str, at: str) -> None:
        self.code = code
        self.message = message
        self.fix = fix
        self.pointer = at
        super().__init__(message)

    @classmethod
    def from_schema(cls, problem: SchemaProblem) -> "OperationProblem":
        return cls(problem.code, problem.message, problem.fix, problem.pointer)


@dataclass(frozen=True)
class Operation:
    """One operation of the document, where it is, and what it is called."""

    method: str  # GET, POST...
    path: str  # as the spec writes it: /pets/{pet-id}
    path_item: dict
    operation: dict
    path_at: str  # JSON pointer of the path item
    at: str  # JSON pointer of the operation
    unresolved: str = ""  # why the operation, written as a $ref, cannot be read

    @property
    def key(self) -> str:
        """Its identity across re-imports: `METHOD /path`."""
        return f"{self.method} {self.path}"

    @property
    def operation_id(self) -> str:
        value = self.operation.get("operationId")
        return clean_text(value.strip()) if isinstance(value, str) else ""

    @property
    def label(self) -> str:
        """`METHOD /path (operationId)`, as reports name it."""
        return f"{self.key} ({self.operation_id})" if self.operation_id else self.key


def operations(
    document: Document, methods: tuple[str, ...] = ACTION_METHODS, *, additional: bool = False
) -> list[Operation]:
    """The operations of a document, in document order; with `additional`, also those
    under a path item's `additionalOperations` (OpenAPI 3.2: LINK, PURGE...).

    >>> doc = {"paths": {"/pets": {"get": {}, "head": {}, "post": {"operationId": "addPet"}}}}
    >>> [op.label for op in operations(Document(doc))]
    ['GET /pets', 'POST /pets (addPet)']
    """
    paths = document.root.get("paths")
    found: list[Operation] = []
    unreadable: list[Problem] = []
    if not isinstance(paths, dict):
        return found
    for path, raw_item in paths.items():
        if not isinstance(path, str):
            continue
        path_at = f"#/paths/{escape_token(path)}"
        try:
            item, _item_at = document.follow(raw_item, path_at)
        except RefError as error:
            # Without the path item there is no knowing its operations.
            unreadable.append(Problem(FAILED_TO_PARSE_SPEC, str(error), FIX_REF, path, path_at))
            continue
        if not isinstance(item, dict):
            continue
        listed = [
            (method, f"{path_at}/{method}", op) for method, op in item.items() if method in methods
        ]
        extra = item.get("additionalOperations")
        if additional and isinstance(extra, dict):
            listed += [
                (method, f"{path_at}/additionalOperations/{escape_token(method)}", op)
                for method, op in extra.items()
                if isinstance(method, str)
            ]
        for method, at, operation in listed:
            if isinstance(operation, dict):
                unresolved = ""
                if "$ref" in operation:  # not OpenAPI, but split specs do it
                    try:
                        target, _target_at = document.follow(operation, at)
                    except RefError as error:
                        unresolved = str(error)
                    else:
                        operation = target if isinstance(target, dict) else {}
                found.append(
                    Operation(method.upper(), path, item, operation, path_at, at, unresolved)
                )
    if unreadable:
        raise ImportFailed(unreadable)
    return found


def skipped_operations(doc: dict) -> list[str]:
    """Operations that are not imported because their method is not an action's.

    >>> skipped_operations({"paths": {"/pets": {"get": {}, "head": {"operationId": "peek"}}}})
    ['HEAD /pets (peek): HEAD is not an action method (GET, POST, PUT, PATCH, DELETE)']
    >>> skipped_operations({"paths": {"/pets": {"additionalOperations": {"LINK": {}}}}})
    ['LINK /pets: LINK is not an action method (GET, POST, PUT, PATCH, DELETE)']
    """
    return [
        f"{op.label}: {op.method} is not an action method (GET, POST, PUT, PATCH, DELETE)"
        for op in operations(Document(doc), SKIPPED_METHODS, additional=True)
    ]


def convert_document(
    doc: dict,
    version: str,
    *,
    base_url: str | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> Conversion:
    """Convert a decoded, validated OpenAPI document (`version` "2.0", "3.0", "3.1" or
    "3.2").

    `base_url`, when given, is the base URL of every operation (the override).
    `progress(done, total)` is called after each operation.

    >>> conversion = convert_document({"openapi": "3.0.3", "info": {"title": "Pets"},
    ...     "servers": [{"url": "https://pets.example.com/v1"}],
    ...     "paths": {"/pets/{pet-id}": {"get": {"operationId": "getPet",
    ...         "summary": "Find a pet", "parameters": [{"name": "pet-id", "in": "path",
    ...         "required": True, "schema": {"type": "integer"}}]}}}}, "3.0")
    >>> draft = conversion.drafts[0]
    >>> draft.name, draft.tool_name, draft.endpoint
    ('Find a pet', 'getPet', 'https://pets.example.com/v1/pets/{pet_id}')
    >>> [(row.location, row.key, row.value_schema) for row in draft.parameters]
    [('path', 'pet_id', {'type': 'integer'})]
    """
    if not isinstance(doc, dict):
        raise ImportFailed(
            [Problem(FAILED_TO_PARSE_SPEC, "The document is not an OpenAPI object.")]
        )
    return _Converter(doc, version, base_url).convert(progress)


class _Converter:
    def __init__(self, doc: dict, version: str, override: str | None) -> None:
        self.doc = doc
        self.version = version
        self.document = Document(doc)
        self.schemas = Schemas(self.document, version)
        self.override = None
        if override is not None and override.strip():
            try:
                self.override = check_override(override)
            except NoBaseUrl as error:
                raise ImportFailed(
                    [
                        Problem(
                            CANNOT_DETERMINE_API_ENDPOINT,
                            str(error),
                            "Pass an absolute https:// URL, for example https://api.example.com/v1.",
                        )
                    ]
                ) from None
        info = doc.get("info")
        self.title = info.get("title", "") if isinstance(info, dict) else ""
        # Per JSON pointer: a parameter's value schema (shared by the operations that
        # use the parameter), and each value schema's check.
        self._value_schemas: dict[str, Any] = {}
        self._checked: dict[int, tuple[Any, list[str]]] = {}
        # The recursive cycles cut in the current operation's input, (pointer, cycle),
        # and per value schema pointer (value schemas are shared).
        self._cuts: list[tuple[str, str]] = []
        self._value_cuts: dict[str, list[tuple[str, str]]] = {}

    def convert(self, progress: Callable[[int, int], None] | None) -> Conversion:
        ops = operations(self.document)
        bases: dict[str, str | NoBaseUrl] = {}
        for op in ops:
            try:
                bases[op.key] = base_url(
                    self.doc,
                    self.version,
                    op.path_item,
                    op.operation,
                    self.override,
                    (op.path_at, op.at),
                )
            except NoBaseUrl as error:
                bases[op.key] = error
        if ops and all(isinstance(base, NoBaseUrl) for base in bases.values()):
            first = bases[ops[0].key]
            raise ImportFailed(
                [
                    Problem(
                        CANNOT_DETERMINE_API_ENDPOINT,
                        f"{first} No operation has a usable https:// base URL.",
                        OVERRIDE_FIX,
                        pointer=first.pointer,
                    )
                ]
            )

        names = unique_names(
            {op.key: natural_name(self._summary(op), op.operation_id, op.key) for op in ops}
        )
        tool_names = unique_tool_names(
            {op.key: natural_tool_name(op.operation_id, op.method, op.path) for op in ops}
        )
        drafts: list[OperationDraft] = []
        problems: list[Problem] = []
        warnings: list[Problem] = []
        for done, op in enumerate(ops, start=1):
            base = bases[op.key]
            self._cuts = []
            try:
                if op.unresolved:
                    raise OperationProblem(FAILED_TO_PARSE_SPEC, op.unresolved, FIX_REF, op.at)
                if isinstance(base, NoBaseUrl):
                    raise OperationProblem(
                        CANNOT_DETERMINE_API_ENDPOINT, str(base), OVERRIDE_FIX, base.pointer
                    )
                draft = self._draft(op, base, names[op.key], tool_names[op.key])
                errors = self._errors(draft)
                if errors:
                    raise OperationProblem(INVALID_TOOL_SCHEMA, "; ".join(errors), FIX_RULES, op.at)
            except SchemaProblem as problem:
                problems.append(self._problem(op, OperationProblem.from_schema(problem)))
            except OperationProblem as problem:
                problems.append(self._problem(op, problem))
            else:
                drafts.append(draft)
                warnings.extend(self._cut_warnings(op))
            if progress is not None:
                progress(done, len(ops))
        return Conversion(
            version=self.version,
            drafts=drafts,
            problems=problems,
            operations_total=len(ops),
            warnings=warnings,
        )

    def _cut_warnings(self, op: Operation) -> list[Problem]:
        """A warning per recursive cycle the operation's input reaches, which the
        tool schema expands MAX_RECURSION_DEPTH levels deep (normalize.Schemas)."""
        return [
            Problem(
                code=RECURSIVE_SCHEMA_CUT,
                message=f"The input is recursive ({cycle}); the tool schema expands it "
                f"{MAX_RECURSION_DEPTH} levels deep and leaves deeper nesting out",
                fix=FIX_RECURSION_CUT,
                operation=op.label,
                pointer=at,
            )
            for at, cycle in dict.fromkeys(self._cuts)
        ]

    @staticmethod
    def _problem(op: Operation, problem: OperationProblem) -> Problem:
        return Problem(
            code=problem.code,
            message=problem.message,
            fix=problem.fix,
            operation=op.label,
            pointer=problem.pointer,
        )

    @staticmethod
    def _summary(op: Operation) -> str:
        for owner in (op.operation, op.path_item):
            if isinstance(owner.get("summary"), str) and owner["summary"].strip():
                return owner["summary"]
        return ""

    # -- one operation -------------------------------------------------------------

    def _draft(self, op: Operation, base: str, name: str, tool_name: str) -> OperationDraft:
        requires_form, pinned, tags = _extensions(op)
        description = op.operation.get("description")
        if not (isinstance(description, str) and description.strip()):
            description = op.path_item.get("description")
        path, renamed, static_query = _endpoint_path(op.path)

        headers, queries, cookies = security_rows(self.document, self.version, op.operation)
        path_rows: dict[str, RowDraft] = {}
        query_rows: list[RowDraft] = [*queries, *static_query]
        header_rows: list[RowDraft] = list(headers)
        body_params: list[tuple[dict, str]] = []
        form_params: list[tuple[dict, str]] = []
        for param, at in self._parameters(op):
            where, key = param["in"], param["name"]
            if where == "body":
                body_params.append((param, at))
            elif where == "formData":
                form_params.append((param, at))
            elif where == "path":
                if key in renamed:
                    path_rows[renamed[key]] = self._row("path", renamed[key], param, at, True)
            elif where == "query":
                if not any(row.key == key for row in query_rows):
                    query_rows.append(self._row("query", key, param, at))
            elif where == "header":
                lowered = key.lower()
                if (
                    lowered in IGNORED_HEADERS
                    or lowered in validators.FORBIDDEN_HEADERS
                    or lowered.startswith("proxy-")
                    or any(row.key.lower() == lowered for row in header_rows)
                ):
                    continue
                header_rows.append(self._row("header", key, param, at))
            elif where == "querystring" and param.get("required") is True:  # 3.2
                raise OperationProblem(
                    INVALID_TOOL_SCHEMA,
                    f"The required parameter {key} is the whole query string (in: "
                    "querystring), which actions do not send; they send named query "
                    "parameters",
                    "Describe the query string as `in: query` parameters, or import with "
                    "“skip invalid” to leave this operation out.",
                    at,
                )
            elif where == "cookie" and param.get("required") is True:
                cookies.append(f"{key}={{{{global.{global_name(key)}}}}}")
        cookie = cookie_row(cookies)
        if cookie is not None and not any(r.key.lower() == "cookie" for r in header_rows):
            header_rows.append(cookie)
        # Every placeholder gets a row, in path order; one the spec does not declare
        # is a plain string.
        parameters = [
            path_rows.get(ident)
            or RowDraft("path", ident, required=True, value_schema={"type": "string"})
            for ident in renamed.values()
        ]
        parameters.extend(query_rows)

        if self.version == "2.0":
            body = self._swagger_body(op, body_params, form_params)
        else:
            body = self._body(op)
        body_schema, body_format = body if body is not None else (None, "json")

        return OperationDraft(
            operation_key=op.key,
            operation_id=op.operation_id,
            name=name,
            tool_name=tool_name,
            description=describe(
                self._summary(op),
                description if isinstance(description, str) else "",
                op.method,
                op.path,
                self.title if isinstance(self.title, str) else "",
                op.operation.get("deprecated") is True,
            ),
            method=op.method,
            endpoint=base + path,
            body_schema=body_schema,
            body_format=body_format,
            headers=header_rows,
            parameters=parameters,
            tags=tags,
            pinned=pinned,
            requires_form=requires_form,
        )

    def _parameters(self, op: Operation) -> list[tuple[dict, str]]:
        """Path-level parameters, overridden by the operation's own (same name and in)."""
        merged: dict[tuple[str, str], tuple[dict, str]] = {}
        for owner, owner_at in ((op.path_item, op.path_at), (op.operation, op.at)):
            listed = owner.get("parameters")
            if not isinstance(listed, list):
                continue
            for index, raw in enumerate(listed):
                at = f"{owner_at}/parameters/{index}"
                try:
                    param, at = self.document.follow(raw, at)
                except RefError as error:
                    raise OperationProblem(FAILED_TO_PARSE_SPEC, str(error), FIX_REF, at) from None
                if not isinstance(param, dict):
                    continue
                name, where = param.get("name"), param.get("in")
                if isinstance(name, str) and name and isinstance(where, str):
                    merged[(name, where)] = (param, at)
        return list(merged.values())

    def _row(
        self, location: str, key: str, param: dict, at: str, required: bool = False
    ) -> RowDraft:
        description = param.get("description")
        description = clean_text(description.strip()) if isinstance(description, str) else ""
        if len(description) > ROW_DESCRIPTION_MAX_LENGTH:
            description = description[: ROW_DESCRIPTION_MAX_LENGTH - 1] + "…"
        return RowDraft(
            location=location,
            key=key,
            kind="ai",
            description=description,
            required=required or param.get("required") is True,
            value_schema=self._value_schema(param, at),
        )

    def _value_schema(self, param: dict, at: str) -> dict | None:
        """A parameter's schema, normalized and inlined (no $ref), with the
        parameter's own description and example; shared by every operation using it."""
        if at in self._value_schemas:
            known = self._value_schemas[at]
            if isinstance(known, SchemaProblem):
                raise known
            self._cuts.extend(self._value_cuts.get(at, ()))
            return known
        try:
            schema = self._make_value_schema(param, at)
        except SchemaProblem as problem:
            self._value_schemas[at] = problem
            raise
        self._value_schemas[at] = schema
        self._cuts.extend(self._value_cuts.get(at, ()))
        return schema

    def _make_value_schema(self, param: dict, at: str) -> dict | None:
        if self.version == "2.0":
            raw, raw_at = swagger_parameter_schema(param), at
            if not raw:
                return None
        else:
            raw, raw_at = param.get("schema"), f"{at}/schema"
            content = param.get("content")
            if raw is None and isinstance(content, dict) and content:
                media_type, media = next(iter(content.items()))
                raw = media.get("schema") if isinstance(media, dict) else None
                raw_at = f"{at}/content/{escape_token(media_type)}/schema"
            if raw is None:
                return None
        normalized = self.schemas.normalize(raw, raw_at)
        schema = self.schemas.inline(normalized, raw_at)
        cuts = self.schemas.recursion_cut(normalized)
        if cuts:
            self._value_cuts[at] = cuts
        if schema is True:
            return None
        if schema is False:
            schema = {"not": {}}
        extra: dict[str, Any] = {}
        description = param.get("description")
        if isinstance(description, str) and description.strip():
            extra["description"] = clean_text(description.strip())
        if "example" in param and "examples" not in schema:
            example = json_data(param["example"])
            if isinstance(example, str | int | float | bool | list | dict):
                extra["examples"] = [example]
        return {**schema, **extra} if extra else schema

    # -- bodies --------------------------------------------------------------------

    def _body(self, op: Operation) -> tuple[dict, str] | None:
        """The request body of a 3.x operation: (schema, body format), or None."""
        raw = op.operation.get("requestBody")
        if raw is None:
            return None
        try:
            request_body, at = self.document.follow(raw, f"{op.at}/requestBody")
        except RefError as error:
            raise OperationProblem(
                FAILED_TO_PARSE_SPEC, str(error), FIX_REF, f"{op.at}/requestBody"
            ) from None
        if not isinstance(request_body, dict):
            return None
        required = request_body.get("required") is True
        content = request_body.get("content")
        if not isinstance(content, dict) or not content:
            return None
        chosen = _choose_media_type(content)
        if chosen is None:
            if not required:
                return None
            listed = ", ".join(str(media_type) for media_type in content)
            raise OperationProblem(
                INVALID_TOOL_SCHEMA,
                f"The request body is {listed} only; {BODY_TYPES}",
                FIX_BODY,
                f"{at}/content",
            )
        if op.method not in METHODS_WITH_BODY:
            return self._body_on_bodiless_method(op, required, at)
        media_type, body_format = chosen
        media_at = f"{at}/content/{escape_token(media_type)}"
        try:  # 3.2: a media type object may be a reference
            media, media_at = self.document.follow(content[media_type], media_at)
        except RefError as error:
            raise OperationProblem(FAILED_TO_PARSE_SPEC, str(error), FIX_REF, media_at) from None
        schema = media.get("schema") if isinstance(media, dict) else None
        if body_format == "binary":
            return _binary_body(schema, request_body), body_format
        if schema is None:
            return (dict(EMPTY_BODY_SCHEMA), body_format) if required else None
        return self._body_schema(schema, f"{media_at}/schema"), body_format

    def _swagger_body(
        self,
        op: Operation,
        body_params: list[tuple[dict, str]],
        form_params: list[tuple[dict, str]],
    ) -> tuple[dict, str] | None:
        """The request body of a 2.0 operation: its `in: body` parameter, or its
        `in: formData` parameters as one object (multipart, or form when `consumes`
        says urlencoded and no field is a file)."""
        if not body_params and not form_params:
            return None
        consumes = op.operation.get("consumes")
        if not isinstance(consumes, list):
            consumes = self.doc.get("consumes")
        consumes = [str(c).split(";")[0].strip().lower() for c in consumes or ()]
        required = any(p.get("required") is True for p, _at in body_params + form_params)
        at = body_params[0][1] if body_params else form_params[0][1]
        if body_params:
            chosen = _choose_media_type(dict.fromkeys(consumes)) if consumes else ("", "json")
            if chosen is None:
                if not required:
                    return None
                raise OperationProblem(
                    INVALID_TOOL_SCHEMA,
                    f"The request body is {', '.join(consumes)} only; {BODY_TYPES}",
                    FIX_BODY,
                    f"{op.at}/consumes" if "consumes" in op.operation else "#/consumes",
                )
            if op.method not in METHODS_WITH_BODY:
                return self._body_on_bodiless_method(op, required, at)
            param, at = body_params[0]
            if chosen[1] == "binary":
                return _binary_body(param.get("schema"), param), "binary"
            if "schema" not in param:
                return (dict(EMPTY_BODY_SCHEMA), chosen[1]) if required else None
            return self._body_schema(param["schema"], f"{at}/schema"), chosen[1]

        if op.method not in METHODS_WITH_BODY:
            return self._body_on_bodiless_method(op, required, at)
        has_file = any(p.get("type") == "file" for p, _at in form_params)
        urlencoded = "application/x-www-form-urlencoded" in consumes
        body_format = (
            "form"
            if urlencoded and "multipart/form-data" not in consumes and not has_file
            else "multipart"
        )
        properties: dict[str, Any] = {}
        required_names: list[str] = []
        for param, param_at in form_params:
            schema = self.schemas.normalize(swagger_parameter_schema(param), param_at)
            description = param.get("description")
            if isinstance(schema, dict) and isinstance(description, str) and description.strip():
                schema = {**schema, "description": clean_text(description.strip())}
            name = clean_text(param["name"])
            properties[name] = schema
            if param.get("required") is True:
                required_names.append(name)
        body: dict[str, Any] = {"type": "object", "properties": properties}
        if required_names:
            body["required"] = required_names
        return self._finish_body(body, at), body_format

    def _body_on_bodiless_method(self, op: Operation, required: bool, at: str) -> None:
        if required:
            raise OperationProblem(
                INVALID_TOOL_SCHEMA,
                f"The operation requires a request body, but {op.method} requests carry none",
                FIX_BODY_METHOD,
                at,
            )
        return None

    def _body_schema(self, raw: Any, at: str) -> dict:
        """A body schema: normalized, with every component it reaches under `$defs`.

        A body that is only a reference (`$ref: Pet`) is replaced by its target, so
        the target's properties become the tool's arguments instead of one `body`."""
        root = self.schemas.normalize(raw, at)
        for _ in range(8):
            if not (isinstance(root, dict) and "$ref" in root and set(root) <= REF_ALONE):
                break
            self.schemas.definitions(root, at)  # reports a broken or looping target
            target = self.schemas.referenced(root).schema
            annotations = {k: v for k, v in root.items() if k != "$ref"}
            root = {**target, **annotations} if isinstance(target, dict) else target
        if root is True or root == {}:
            return dict(EMPTY_BODY_SCHEMA)
        if root is False:
            raise SchemaProblem(at, "the body schema accepts no value at all (false)")
        return self._finish_body(root, at)

    def _finish_body(self, root: dict, at: str) -> dict:
        definitions = self.schemas.definitions(root, at)
        self._cuts.extend(self.schemas.recursion_cut(root))
        if self.schemas.definitions_depth(root) > validators.BODY_SCHEMA_MAX_DEPTH:
            raise SchemaProblem(
                at,
                f"the body schema nests more than {validators.BODY_SCHEMA_MAX_DEPTH} levels deep",
            )
        if not jsonschema_rs.meta.is_valid(root):
            try:
                validators.validate_body_schema(root, object_root=False)
            except ValidationError as error:
                raise SchemaProblem(at, "; ".join(error.messages)) from None
        return {**root, "$defs": definitions} if definitions else root

    # -- checks --------------------------------------------------------------------

    def _errors(self, draft: OperationDraft) -> list[str]:
        """What draft_errors(draft) says, fast.

        draft_errors checks schemas with the pure-Python Draft 2020-12 meta-schema,
        about 1 ms per schema and 0.2 ms per subschema: seconds on a large spec. The
        body (each component once, see Schemas) and each value schema were checked
        against the same meta-schema with the compiled jsonschema_rs, and everything
        else validate_body_schema requires holds by construction (local refs that
        resolve, no `nullable`, storable text); so draft_errors runs here on the draft
        with those schemas left out, and checks every other rule as written. The
        corpus test runs the full draft_errors on every draft to keep this honest.
        """
        errors = _column_errors(draft)
        if draft.body_schema is not None and draft.method not in METHODS_WITH_BODY:
            errors.append(f"body: {draft.method} requests carry no body")
        rows: dict[str, list[RowDraft]] = {"headers": [], "parameters": []}
        for field_name in rows:
            for row in getattr(draft, field_name):
                if row.value_schema is not None:
                    errors.extend(self._value_schema_errors(row))
                    row = replace(row, value_schema=None)
                rows[field_name].append(row)
        stub = replace(
            draft,
            body_schema=None,
            headers=rows["headers"],
            parameters=rows["parameters"],
        )
        return errors + draft_errors(stub)

    def _value_schema_errors(self, row: RowDraft) -> list[str]:
        schema = row.value_schema
        known = self._checked.get(id(schema))
        if known is None:
            messages: list[str] = []
            if (
                not jsonschema_rs.meta.is_valid(schema)
                or validators.json_depth(schema) > validators.BODY_SCHEMA_MAX_DEPTH
                or ref_names(schema)
            ):
                try:
                    validators.validate_value_schema(schema)
                    validators.validate_storable_json(schema)
                except ValidationError as error:
                    messages = error.messages
            known = (schema, messages)  # holding the schema keeps its id() unique
            self._checked[id(schema)] = known
        return [f"{row.location} {row.key}: {message}" for message in known[1]]


def _column_errors(draft: OperationDraft) -> list[str]:
    """Lengths the database columns impose that draft_errors does not check."""
    errors = []
    if len(draft.endpoint) > ENDPOINT_MAX_LENGTH:
        errors.append(f"endpoint: longer than {ENDPOINT_MAX_LENGTH} characters")
    if len(draft.operation_key) > OPERATION_KEY_MAX_LENGTH:
        errors.append(f"path: longer than {OPERATION_KEY_MAX_LENGTH - 7} characters")
    for row in [*draft.headers, *draft.parameters]:
        if len(row.key) > ROW_KEY_MAX_LENGTH:
            errors.append(
                f"{row.location} {row.key[:40]}…: longer than {ROW_KEY_MAX_LENGTH} characters"
            )
        if len(row.value) > ROW_VALUE_MAX_LENGTH:
            errors.append(f"{row.location} {row.key}: value longer than {ROW_VALUE_MAX_LENGTH}")
    return errors


def _extensions(op: Operation) -> tuple[bool, bool, list[str]]:
    """(requires_form, pinned, tags) from the operation's x-open-* extensions."""
    flags = []
    for key in ("x-open-require-form-submission", "x-open-pinned"):
        value = op.operation.get(key, False)
        if not isinstance(value, bool):
            raise OperationProblem(
                INVALID_TOOL_SCHEMA,
                f"{key} must be a boolean (true or false), not {_kind(value)} {value!r}",
                f"Set {key} to true or false.",
                f"{op.at}/{key}",
            )
        flags.append(value)
    tags = op.operation.get("x-open-tags", [])
    at = f"{op.at}/x-open-tags"
    fix = "Set x-open-tags to a list of tag names, such as [billing, refunds]."
    if not isinstance(tags, list):
        raise OperationProblem(
            INVALID_TOOL_SCHEMA,
            f"x-open-tags must be a list of strings, not {_kind(tags)} {tags!r}",
            fix,
            at,
        )
    for index, tag in enumerate(tags):
        if not isinstance(tag, str):
            raise OperationProblem(
                INVALID_TOOL_SCHEMA,
                f"x-open-tags must be a list of strings; item {index} is {_kind(tag)} {tag!r}",
                fix,
                f"{at}/{index}",
            )
    # Tag names are made dashboard-safe when synced (importer.sync.tag_name).
    tags = [tag.strip() for tag in tags if tag.strip()]
    unique = {tag.casefold(): tag for tag in reversed(tags)}  # first spelling wins
    return flags[0], flags[1], [unique[key] for key in dict.fromkeys(t.casefold() for t in tags)]


def _kind(value: Any) -> str:
    return {
        str: "a string",
        int: "a number",
        float: "a number",
        list: "a list",
        dict: "an object",
        bool: "a boolean",
        type(None): "null",
    }.get(type(value), type(value).__name__)


def _media_kind(media_type: str) -> tuple[str, int] | None:
    """(body format, preference) for a request media type; lower is preferred.

    >>> _media_kind("application/json; charset=utf-8"), _media_kind("application/merge-patch+json")
    (('json', 0), ('json', 1))
    >>> _media_kind("application/xml") is None
    True
    """
    base = str(media_type).split(";")[0].strip().lower()
    if base == "application/json":
        return "json", 0
    if base.endswith("+json") or base.endswith("/json"):
        return "json", 1
    if base == "multipart/form-data":
        return "multipart", 3
    if base == "application/x-www-form-urlencoded":
        return "form", 4
    if base in ("*/*", "application/*"):
        return "json", 2
    if base == validators.BINARY_MEDIA_TYPE:
        return "binary", 5
    return None


def _binary_body(schema: Any, owner: dict) -> dict:
    """The body schema of a raw (application/octet-stream) body, described by the
    spec's schema or else by the request body (or 2.0 body parameter) holding it."""
    description = ""
    for where in (schema, owner):
        if isinstance(where, dict) and isinstance(where.get("description"), str):
            description = clean_text(where["description"].strip())
            if description:
                break
    if len(description) > ROW_DESCRIPTION_MAX_LENGTH:
        description = description[: ROW_DESCRIPTION_MAX_LENGTH - 1] + "…"
    return validators.binary_body_schema(validators.BINARY_MEDIA_TYPE, description)


def _choose_media_type(content: dict) -> tuple[str, str] | None:
    """(media type, body format) of the request content an action sends."""
    ranked = [
        (kind[1], index, media_type, kind[0])
        for index, media_type in enumerate(content)
        if (kind := _media_kind(media_type)) is not None
    ]
    if not ranked:
        return None
    _rank, _index, media_type, body_format = min(ranked)
    return media_type, body_format


def _endpoint_path(path: str) -> tuple[str, dict[str, str], list[RowDraft]]:
    """The path as an endpoint's: placeholders renamed to identifiers, other
    characters percent-encoded, a query string moved to static query rows.

    Returns (path, {spec placeholder -> identifier}, static query rows):

    >>> path, renamed, query = _endpoint_path("/users/{user-id}/repos/{repo.name}?type=all")
    >>> path
    '/users/{user_id}/repos/{repo_name}'
    >>> renamed, [(row.key, row.value) for row in query]
    ({'user-id': 'user_id', 'repo.name': 'repo_name'}, [('type', 'all')])
    >>> _endpoint_path("/files/{a-b}/{a_b}/über")[:2]
    ('/files/{a_b}/{a_b_2}/%C3%BCber', {'a-b': 'a_b', 'a_b': 'a_b_2'})
    """
    path, _hash, _fragment = path.partition("#")
    path, _question, query = path.partition("?")
    if not path.startswith("/"):
        path = "/" + path
    renamed: dict[str, str] = {}
    used: set[str] = set()
    pieces: list[str] = []
    position = 0
    for match in _PLACEHOLDER_RE.finditer(path):
        pieces.append(_encode(path[position : match.start()]))
        original = match.group(1)
        if original not in renamed:
            ident = _NOT_IDENTIFIER_RE.sub("_", original).strip("_") or "param"
            if ident[0].isdigit():
                ident = f"_{ident}"
            candidate, suffix = ident, 2
            while candidate in used:
                candidate, suffix = f"{ident}_{suffix}", suffix + 1
            renamed[original] = candidate
            used.add(candidate)
        pieces.append("{" + renamed[original] + "}")
        position = match.end()
    pieces.append(_encode(path[position:]))
    static = [
        RowDraft("query", key, kind="static", value=value, required=True)
        for key, value in parse_qsl(query, keep_blank_values=True)
    ]
    return "".join(pieces), renamed, static


def _encode(literal: str) -> str:
    encoded = quote(literal, safe="-._~!$&'()*+,;=:/%")
    return _STRAY_PERCENT_RE.sub("%25", encoded)
