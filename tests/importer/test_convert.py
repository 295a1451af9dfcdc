"""convert_document: one sound action draft per operation, or a problem naming it."""

import copy
import doctest
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

from actions.tool_formats import FORMATS, ToolDefinition, render
from actions.tool_schema import InputRow, build_tool_schema
from actions.validators import TOOL_NAME_RE, _resolves, _walk_refs, check_meta_schema
from importer import convert, naming, security, servers
from importer.convert import convert_document, skipped_operations
from importer.drafts import (
    CANNOT_DETERMINE_API_ENDPOINT,
    CODES,
    FAILED_TO_PARSE_SPEC,
    INVALID_TOOL_SCHEMA,
    RECURSIVE_SCHEMA_CUT,
    Conversion,
    ImportFailed,
    OperationDraft,
    draft_errors,
)
from importer.normalize import MAX_ALTERNATION_DEPTH, MAX_RECURSION_DEPTH

BASE = "https://api.example.com/v1"


def spec3(paths: dict, version: str = "3.0.3", **extra) -> dict:
    return {
        "openapi": version,
        "info": {"title": "Pets", "version": "1"},
        "servers": [{"url": BASE}],
        "paths": paths,
        **extra,
    }


def spec2(paths: dict, **extra) -> dict:
    return {
        "swagger": "2.0",
        "info": {"title": "Pets", "version": "1"},
        "host": "api.example.com",
        "basePath": "/v1",
        "schemes": ["https"],
        "paths": paths,
        **extra,
    }


def version_of(doc: dict) -> str:
    return "2.0" if "swagger" in doc else doc["openapi"][:3]


def tool_schema(draft: OperationDraft) -> dict:
    """The tool schema an action saved from this draft shows the AI (Action.input_rows)."""
    rows = [
        InputRow(row.location, row.key, row.description, row.required, row.value_schema)
        for row in [*draft.parameters, *draft.headers]
        if row.kind == "ai"
    ]
    return build_tool_schema(draft.body_schema, rows).schema


def assert_sound(draft: OperationDraft) -> None:
    assert draft_errors(draft) == []
    schema = tool_schema(draft)
    Draft202012Validator.check_schema(schema)
    for _pointer, ref in _walk_refs(schema):
        assert _resolves(schema, ref), ref


def conversion_of(doc: dict, **kwargs) -> Conversion:
    before = copy.deepcopy(doc)
    conversion = convert_document(doc, version_of(doc), **kwargs)
    assert doc == before, "convert_document must not modify the document"
    for draft in conversion.drafts:
        assert_sound(draft)
    assert conversion.operations_total == len(conversion.drafts) + len(conversion.problems)
    return conversion


def only_draft(doc: dict, **kwargs) -> OperationDraft:
    conversion = conversion_of(doc, **kwargs)
    assert conversion.problems == []
    (draft,) = conversion.drafts
    return draft


def only_problem(doc: dict, **kwargs):
    conversion = conversion_of(doc, **kwargs)
    assert conversion.drafts == []
    (problem,) = conversion.problems
    return problem


def failure(doc: dict, **kwargs) -> ImportFailed:
    with pytest.raises(ImportFailed) as info:
        convert_document(doc, version_of(doc), **kwargs)
    return info.value


def rows(draft: OperationDraft) -> list[tuple]:
    return [
        (row.location, row.key, row.kind, row.value, row.required)
        for row in [*draft.headers, *draft.parameters]
    ]


def op(**fields) -> dict:
    return {"responses": {"200": {"description": "OK"}}, **fields}


@pytest.mark.parametrize("module", [convert, naming, security, servers])
def test_worked_examples_in_docstrings_hold(module):
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0
    assert result.failed == 0


# --- one operation, each version ------------------------------------------------------


def test_a_30_operation_becomes_a_draft_with_every_field():
    doc = spec3(
        {
            "/pets/{petId}": {
                "patch": op(
                    operationId="updatePet",
                    summary="Update a pet",
                    description="Changes the name of one pet.",
                    parameters=[
                        {
                            "name": "petId",
                            "in": "path",
                            "required": True,
                            "schema": {"type": "integer"},
                        }
                    ],
                    requestBody={
                        "required": True,
                        "content": {
                            "application/json": {
                                "schema": {
                                    "type": "object",
                                    "required": ["name"],
                                    "properties": {"name": {"type": "string", "nullable": True}},
                                }
                            }
                        },
                    },
                )
            }
        }
    )
    draft = only_draft(doc)
    assert draft.operation_key == "PATCH /pets/{petId}"
    assert draft.label == "PATCH /pets/{petId} (updatePet)"
    assert (draft.name, draft.tool_name, draft.method) == ("Update a pet", "updatePet", "PATCH")
    assert draft.description == "Update a pet\n\nChanges the name of one pet."
    assert draft.endpoint == f"{BASE}/pets/{{petId}}"
    assert draft.body_format == "json"
    assert draft.body_schema == {
        "type": "object",
        "required": ["name"],
        "properties": {"name": {"anyOf": [{"type": "string"}, {"type": "null"}]}},
    }
    assert rows(draft) == [("path", "petId", "ai", "", True)]
    assert tool_schema(draft)["properties"]["petId"] == {"type": "integer"}


def test_a_swagger_20_operation_is_called_at_host_and_base_path_over_https():
    doc = spec2(
        {
            "/pets": {
                "post": op(
                    operationId="addPet",
                    parameters=[
                        {
                            "name": "body",
                            "in": "body",
                            "required": True,
                            "schema": {"$ref": "#/definitions/Pet"},
                        }
                    ],
                )
            }
        },
        schemes=["http", "https"],
        definitions={
            "Pet": {
                "type": "object",
                "properties": {
                    "name": {"type": "string", "x-nullable": True},
                    "tag": {"$ref": "#/definitions/Tag"},
                },
            },
            "Tag": {"type": "string", "enum": ["cat", "dog"]},
        },
    )
    draft = only_draft(doc)
    assert draft.endpoint == "https://api.example.com/v1/pets"
    assert draft.body_schema == {
        "type": "object",
        "properties": {
            "name": {"anyOf": [{"type": "string"}, {"type": "null"}]},
            "tag": {"$ref": "#/$defs/Tag"},
        },
        "$defs": {"Tag": {"type": "string", "enum": ["cat", "dog"]}},
    }
    assert tool_schema(draft)["$defs"] == {"Tag": {"type": "string", "enum": ["cat", "dog"]}}


def test_a_31_operation_keeps_type_arrays_as_any_of_and_reaches_nested_defs():
    doc = spec3(
        {
            "/pets": {
                "post": op(
                    requestBody={
                        "content": {
                            "application/json": {"schema": {"$ref": "#/components/schemas/Pet"}}
                        }
                    }
                )
            }
        },
        version="3.1.0",
        components={
            "schemas": {
                "Pet": {
                    "type": "object",
                    "$defs": {"Age": {"type": "integer", "exclusiveMinimum": 0}},
                    "properties": {
                        "age": {"$ref": "#/components/schemas/Pet/$defs/Age"},
                        "nick": {"type": ["string", "null"]},
                    },
                }
            }
        },
    )
    draft = only_draft(doc)
    (age_name,) = draft.body_schema["$defs"]
    assert draft.body_schema["properties"] == {
        "age": {"$ref": f"#/$defs/{age_name}"},
        "nick": {"anyOf": [{"type": "string"}, {"type": "null"}]},
    }
    assert draft.body_schema["$defs"][age_name] == {"type": "integer", "exclusiveMinimum": 0}


# --- parameters -------------------------------------------------------------------------


def test_path_level_parameters_merge_with_the_operations_which_override_them():
    doc = spec3(
        {
            "/pets": {
                "parameters": [
                    {"name": "limit", "in": "query", "schema": {"type": "string"}},
                    {"name": "X-Trace", "in": "header", "schema": {"type": "string"}},
                ],
                "get": op(
                    parameters=[
                        {
                            "name": "limit",
                            "in": "query",
                            "required": True,
                            "schema": {"type": "integer"},
                        }
                    ]
                ),
            }
        }
    )
    draft = only_draft(doc)
    assert rows(draft) == [
        ("header", "X-Trace", "ai", "", False),
        ("query", "limit", "ai", "", True),
    ]
    assert draft.parameters[0].value_schema == {"type": "integer"}


def test_placeholders_that_are_not_identifiers_are_renamed_in_endpoint_and_rows():
    doc = spec3(
        {
            "/users/{user-id}/repos/{repo.name}": {
                "get": op(
                    parameters=[
                        {
                            "name": "user-id",
                            "in": "path",
                            "required": True,
                            "schema": {"type": "integer"},
                        },
                        {
                            "name": "repo.name",
                            "in": "path",
                            "required": True,
                            "schema": {"type": "string"},
                        },
                    ]
                )
            }
        }
    )
    draft = only_draft(doc)
    assert draft.operation_key == "GET /users/{user-id}/repos/{repo.name}"
    assert draft.endpoint == f"{BASE}/users/{{user_id}}/repos/{{repo_name}}"
    assert [(r.key, r.value_schema) for r in draft.parameters] == [
        ("user_id", {"type": "integer"}),
        ("repo_name", {"type": "string"}),
    ]
    assert tool_schema(draft)["required"] == ["user_id", "repo_name"]


def test_a_placeholder_nobody_declares_gets_a_string_row_and_an_undeclared_one_is_ignored():
    doc = spec3(
        {
            "/pets/{petId}": {
                "get": op(parameters=[{"name": "ghost", "in": "path", "required": True}])
            }
        }
    )
    draft = only_draft(doc)
    assert [(r.location, r.key, r.value_schema) for r in draft.parameters] == [
        ("path", "petId", {"type": "string"})
    ]


def test_parameter_references_are_resolved_and_their_schemas_inlined():
    doc = spec3(
        {
            "/pets": {
                "get": op(
                    parameters=[
                        {"$ref": "#/components/parameters/status"},
                        {
                            "name": "page",
                            "in": "query",
                            "content": {"application/json": {"schema": {"type": "integer"}}},
                        },
                    ]
                )
            }
        },
        components={
            "parameters": {
                "status": {
                    "name": "status",
                    "in": "query",
                    "description": "Which pets",
                    "example": "open",
                    "schema": {"$ref": "#/components/schemas/Status"},
                }
            },
            "schemas": {"Status": {"type": "string", "enum": ["open", "closed"]}},
        },
    )
    draft = only_draft(doc)
    status, page = draft.parameters
    assert status.value_schema == {
        "type": "string",
        "enum": ["open", "closed"],
        "description": "Which pets",
        "examples": ["open"],
    }
    assert status.description == "Which pets"
    assert page.value_schema == {"type": "integer"}


def test_headers_openapi_ignores_and_headers_the_http_client_owns_are_not_imported():
    headers = ["Accept", "content-type", "Authorization", "Host", "Content-Length", "Connection"]
    doc = spec3(
        {
            "/pets": {
                "get": op(
                    parameters=[
                        *(
                            {"name": name, "in": "header", "schema": {"type": "string"}}
                            for name in headers
                        ),
                        {"name": "X-Request-Id", "in": "header", "schema": {"type": "string"}},
                    ]
                )
            }
        }
    )
    assert rows(only_draft(doc)) == [("header", "X-Request-Id", "ai", "", False)]


def test_optional_cookies_are_left_out_and_required_ones_become_one_cookie_header():
    doc = spec3(
        {
            "/pets": {
                "get": op(
                    parameters=[
                        {"name": "theme", "in": "cookie", "schema": {"type": "string"}},
                        {
                            "name": "session-id",
                            "in": "cookie",
                            "required": True,
                            "schema": {"type": "string"},
                        },
                        {
                            "name": "csrftoken",
                            "in": "cookie",
                            "required": True,
                            "schema": {"type": "string"},
                        },
                    ]
                )
            }
        }
    )
    assert rows(only_draft(doc)) == [
        (
            "header",
            "Cookie",
            "static",
            "session-id={{global.SESSION_ID}}; csrftoken={{global.CSRFTOKEN}}",
            True,
        )
    ]


def test_a_query_string_written_in_the_path_becomes_static_query_rows():
    doc = spec3({"/search?type=all": {"get": op()}})
    draft = only_draft(doc)
    assert draft.endpoint == f"{BASE}/search"
    assert rows(draft) == [("query", "type", "static", "all", True)]


def test_swagger_parameters_carry_their_own_schema_keywords():
    doc = spec2(
        {
            "/pets": {
                "get": op(
                    parameters=[
                        {
                            "name": "tags",
                            "in": "query",
                            "type": "array",
                            "items": {"type": "string", "enum": ["a", "b"]},
                            "collectionFormat": "multi",
                            "description": "Tags to filter by",
                        },
                        {
                            "name": "limit",
                            "in": "query",
                            "type": "integer",
                            "minimum": 1,
                            "required": True,
                        },
                    ]
                )
            }
        }
    )
    tags, limit = only_draft(doc).parameters
    assert tags.value_schema == {
        "type": "array",
        "items": {"type": "string", "enum": ["a", "b"]},
        "description": "Tags to filter by",
    }
    assert (limit.required, limit.value_schema) == (True, {"type": "integer", "minimum": 1})


# --- bodies -----------------------------------------------------------------------------


def body_op(content: dict, method: str = "post", required: bool = True) -> dict:
    return spec3({"/pets": {method: op(requestBody={"required": required, "content": content})}})


OBJECT = {"schema": {"type": "object", "properties": {"name": {"type": "string"}}}}


def test_json_is_preferred_over_the_other_media_types():
    content = {
        "application/xml": {"schema": {"type": "string"}},
        "application/x-www-form-urlencoded": {"schema": {"type": "object"}},
        "multipart/form-data": {"schema": {"type": "object"}},
        "application/json; charset=utf-8": OBJECT,
    }
    draft = only_draft(body_op(content))
    assert (draft.body_format, draft.body_schema) == ("json", OBJECT["schema"])


@pytest.mark.parametrize(
    ("media_type", "body_format"),
    [
        ("application/merge-patch+json", "json"),
        ("application/vnd.api+json", "json"),
        ("*/*", "json"),
        ("multipart/form-data", "multipart"),
        ("application/x-www-form-urlencoded", "form"),
    ],
)
def test_each_media_type_an_action_can_send_sets_its_body_format(media_type, body_format):
    draft = only_draft(body_op({media_type: OBJECT, "text/plain": {}}))
    assert (draft.body_format, draft.body_schema) == (body_format, OBJECT["schema"])


def test_multipart_is_preferred_over_urlencoded():
    content = {"application/x-www-form-urlencoded": OBJECT, "multipart/form-data": OBJECT}
    assert only_draft(body_op(content)).body_format == "multipart"


@pytest.mark.parametrize("media_type", ["application/xml", "text/plain", "image/png"])
def test_a_required_body_an_action_cannot_send_is_a_problem(media_type):
    problem = only_problem(body_op({media_type: {"schema": {"type": "string"}}}))
    assert problem.code == INVALID_TOOL_SCHEMA
    assert problem.operation == "POST /pets"
    assert problem.pointer == "#/paths/~1pets/post/requestBody/content"
    assert f"The request body is {media_type} only" in problem.message


def test_an_octet_stream_body_is_sent_raw_as_base64_in_the_body_argument():
    content = {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}
    doc = spec3(
        {"/files/{name}": {"put": op(requestBody={"description": "The file.", "content": content})}}
    )
    draft = only_draft(doc)
    assert draft.body_format == "binary"
    assert draft.body_schema == {
        "type": "string",
        "contentEncoding": "base64",
        "contentMediaType": "application/octet-stream",
        "description": "The file. (The request body: the raw bytes, base64-encoded.)",
    }
    schema = tool_schema(draft)
    assert schema["properties"]["body"] == draft.body_schema
    assert schema["required"] == ["body", "name"]


def test_a_swagger_octet_stream_body_is_sent_raw_too():
    body = {"name": "file", "in": "body", "required": True, "schema": {"type": "string"}}
    doc = spec2({"/files": {"put": op(consumes=["application/octet-stream"], parameters=[body])}})
    draft = only_draft(doc)
    assert (draft.body_format, draft.body_schema["contentEncoding"]) == ("binary", "base64")


def test_json_is_preferred_over_raw_bytes():
    content = {"application/octet-stream": {}, "application/json": OBJECT}
    assert only_draft(body_op(content)).body_format == "json"


def test_an_optional_body_an_action_cannot_send_is_left_out():
    draft = only_draft(body_op({"image/png": {"schema": {"type": "string"}}}, required=False))
    assert draft.body_schema is None


def test_an_optional_body_on_get_is_left_out_and_a_required_one_is_a_problem():
    assert only_draft(body_op({"application/json": OBJECT}, "get", False)).body_schema is None
    problem = only_problem(body_op({"application/json": OBJECT}, "get", True))
    assert problem.code == INVALID_TOOL_SCHEMA
    assert "GET requests carry none" in problem.message


def test_a_body_a_spec_defines_on_delete_is_kept():
    """Some APIs (GitHub's, on 17 operations) take a body on DELETE; the action sends it."""
    draft = only_draft(body_op({"application/json": OBJECT}, "delete", True))
    assert draft.method == "DELETE"
    assert draft.body_schema is not None


def test_a_referenced_body_is_unwrapped_so_its_properties_become_arguments():
    doc = spec3(
        {
            "/pets": {
                "post": op(requestBody={"$ref": "#/components/requestBodies/NewPet"}),
            }
        },
        components={
            "requestBodies": {
                "NewPet": {
                    "required": True,
                    "content": {
                        "application/json": {"schema": {"$ref": "#/components/schemas/Pet"}}
                    },
                }
            },
            "schemas": {
                "Pet": {
                    "type": "object",
                    "required": ["name"],
                    "properties": {
                        "id": {"type": "integer", "readOnly": True},
                        "name": {"type": "string"},
                        "owner": {"$ref": "#/components/schemas/Owner"},
                    },
                },
                "Owner": {
                    "type": "object",
                    "properties": {"email": {"type": "string", "format": "email"}},
                },
            },
        },
    )
    draft = only_draft(doc)
    schema = tool_schema(draft)
    assert sorted(schema["properties"]) == ["name", "owner"]
    assert schema["required"] == ["name"]
    assert schema["$defs"] == {
        "Owner": {"type": "object", "properties": {"email": {"type": "string", "format": "email"}}}
    }


def test_a_body_that_is_not_an_object_travels_as_one_body_argument():
    draft = only_draft(
        body_op({"application/json": {"schema": {"type": "array", "items": {"type": "integer"}}}})
    )
    assert tool_schema(draft)["properties"]["body"] == {
        "type": "array",
        "items": {"type": "integer"},
    }


def test_swagger_form_data_becomes_a_multipart_or_urlencoded_body():
    form = [
        {
            "name": "name",
            "in": "formData",
            "type": "string",
            "required": True,
            "description": "Pet name",
        },
        {"name": "age", "in": "formData", "type": "integer"},
    ]
    urlencoded = spec2(
        {"/pets": {"post": op(parameters=form, consumes=["application/x-www-form-urlencoded"])}}
    )
    draft = only_draft(urlencoded)
    assert draft.body_format == "form"
    assert draft.body_schema == {
        "type": "object",
        "properties": {
            "name": {"type": "string", "description": "Pet name"},
            "age": {"type": "integer"},
        },
        "required": ["name"],
    }
    with_file = spec2(
        {
            "/pets": {
                "post": op(
                    parameters=[*form, {"name": "photo", "in": "formData", "type": "file"}],
                    consumes=["application/x-www-form-urlencoded"],
                )
            }
        }
    )
    draft = only_draft(with_file)
    assert draft.body_format == "multipart"
    assert draft.body_schema["properties"]["photo"] == {"type": "string", "format": "binary"}
    assert only_draft(spec2({"/pets": {"post": op(parameters=form)}})).body_format == "multipart"


def test_a_swagger_body_in_xml_only_is_a_problem_at_consumes():
    doc = spec2(
        {
            "/pets": {
                "put": op(
                    consumes=["application/xml"],
                    parameters=[{"name": "b", "in": "body", "required": True, "schema": {}}],
                )
            }
        }
    )
    problem = only_problem(doc)
    assert problem.pointer == "#/paths/~1pets/put/consumes"
    assert "application/xml only" in problem.message


# --- security ---------------------------------------------------------------------------

SCHEMES = {
    "bearerAuth": {"type": "http", "scheme": "bearer"},
    "basic_auth": {"type": "http", "scheme": "basic"},
    "petstore_auth": {"type": "oauth2", "flows": {}},
    "oidc": {"type": "openIdConnect", "openIdConnectUrl": "https://example.com/.well-known"},
    "api-key": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
    "query_key": {"type": "apiKey", "in": "query", "name": "key"},
    "cookie_key": {"type": "apiKey", "in": "cookie", "name": "sid"},
    "mtls": {"type": "mutualTLS"},
}


@pytest.mark.parametrize(
    ("scheme", "row"),
    [
        ("bearerAuth", ("header", "Authorization", "static", "Bearer {{global.BEARERAUTH}}", True)),
        ("basic_auth", ("header", "Authorization", "static", "Basic {{global.BASIC_AUTH}}", True)),
        (
            "petstore_auth",
            ("header", "Authorization", "static", "Bearer {{global.PETSTORE_AUTH}}", True),
        ),
        ("oidc", ("header", "Authorization", "static", "Bearer {{global.OIDC}}", True)),
        ("api-key", ("header", "X-API-Key", "static", "{{global.API_KEY}}", True)),
        ("query_key", ("query", "key", "static", "{{global.QUERY_KEY}}", True)),
        ("cookie_key", ("header", "Cookie", "static", "sid={{global.COOKIE_KEY}}", True)),
        ("mtls", None),
    ],
)
def test_each_security_scheme_becomes_a_row_referencing_a_global_variable(scheme, row):
    doc = spec3(
        {"/pets": {"get": op()}},
        components={"securitySchemes": SCHEMES},
        security=[{scheme: []}],
    )
    assert rows(only_draft(doc)) == ([row] if row else [])


def test_the_operations_security_overrides_the_documents_and_the_first_alternative_counts():
    doc = spec3(
        {
            "/a": {"get": op(security=[{"query_key": []}, {"bearerAuth": []}])},
            "/b": {"get": op(security=[])},
            "/c": {"get": op()},
        },
        components={"securitySchemes": SCHEMES},
        security=[{"bearerAuth": [], "api-key": []}],
    )
    a, b, c = conversion_of(doc).drafts
    assert rows(a) == [("query", "key", "static", "{{global.QUERY_KEY}}", True)]
    assert rows(b) == []
    assert [row[1] for row in rows(c)] == ["Authorization", "X-API-Key"]


def test_a_header_parameter_the_security_scheme_already_sets_is_not_asked_of_the_ai():
    doc = spec3(
        {"/pets": {"get": op(parameters=[{"name": "x-api-key", "in": "header", "schema": {}}])}},
        components={"securitySchemes": SCHEMES},
        security=[{"api-key": []}],
    )
    assert rows(only_draft(doc)) == [("header", "X-API-Key", "static", "{{global.API_KEY}}", True)]


def test_swagger_security_definitions_become_rows_too():
    doc = spec2(
        {"/pets": {"get": op(security=[{"basic": [], "key": []}])}},
        securityDefinitions={
            "basic": {"type": "basic"},
            "key": {"type": "apiKey", "in": "query", "name": "api_key"},
        },
    )
    assert rows(only_draft(doc)) == [
        ("header", "Authorization", "static", "Basic {{global.BASIC}}", True),
        ("query", "api_key", "static", "{{global.KEY}}", True),
    ]


def test_a_requirement_naming_an_undefined_scheme_adds_nothing():
    doc = spec3({"/pets": {"get": op(security=[{"nowhere": []}])}})
    assert rows(only_draft(doc)) == []


# --- names, tool names, descriptions ----------------------------------------------------


def test_the_name_is_the_summary_else_the_operation_id_else_method_and_path():
    doc = spec3(
        {
            "/a": {"get": op(summary="  List   all\npets ", operationId="listPets")},
            "/b": {"get": op(summary="Get", operationId="getPetB")},  # too short a summary
            "/c": {"get": op()},
        }
    )
    assert [d.name for d in conversion_of(doc).drafts] == ["List all pets", "getPetB", "GET /c"]


def test_names_that_clash_ignoring_case_all_get_their_operation():
    doc = spec3(
        {
            "/a": {"get": op(summary="Fetch pet")},
            "/b": {"get": op(summary="fetch PET"), "post": op(summary="Create pet")},
        }
    )
    assert [d.name for d in conversion_of(doc).drafts] == [
        "Fetch pet (GET /a)",
        "fetch PET (GET /b)",
        "Create pet",
    ]


def test_a_long_summary_is_cut_to_the_name_limit():
    doc = spec3({"/a": {"get": op(summary="word " * 100)}})
    name = only_draft(doc).name
    assert len(name) == 200 and name.endswith("…")


def test_tool_names_come_from_the_operation_id_sanitized_or_from_method_and_path():
    doc = spec3(
        {
            "/repos/{owner}/contents": {
                "get": op(operationId="repos/get-content"),
                "put": op(operationId="putContent"),
                "delete": op(),
            }
        }
    )
    assert [d.tool_name for d in conversion_of(doc).drafts] == [
        "repos_get-content",
        "putContent",
        "delete_repos_owner_contents",
    ]


def test_a_long_tool_name_is_cut_with_a_hash_of_the_operation():
    long_id = "actions/" + "list-self-hosted-runners-for-an-organization-" * 3
    doc = spec3(
        {"/a": {"get": op(operationId=long_id)}, "/b": {"get": op(operationId=long_id + "x")}}
    )
    first, second = (d.tool_name for d in conversion_of(doc).drafts)
    assert len(first) == 64 and TOOL_NAME_RE.match(first)
    assert first[:55] == second[:55] and first != second
    alone = spec3({"/a": {"get": op(operationId=long_id)}})
    assert only_draft(alone).tool_name == first


def test_duplicate_operation_ids_all_get_a_hash():
    doc = spec3({"/a": {"get": op(operationId="getIt")}, "/b": {"get": op(operationId="getIt")}})
    names = [d.tool_name for d in conversion_of(doc).drafts]
    assert len(set(names)) == 2
    assert all(name.startswith("getIt_") and TOOL_NAME_RE.match(name) for name in names)


operation_ids = st.one_of(
    st.none(),
    st.sampled_from(["listPets", "getPet", "pets/list", "pets.get", "x" * 70, "getPet "]),
    st.text(alphabet="ab/_-.", min_size=1, max_size=6),
)
specs_operations = st.lists(
    st.tuples(
        st.sampled_from(["get", "post", "put", "delete", "patch"]),
        st.sampled_from(["/pets", "/pets/{id}", "/pets/id", "/a/b", "/a_b", "/a-b", "/"]),
        operation_ids,
    ),
    min_size=1,
    max_size=12,
    unique_by=lambda item: (item[0], item[1]),
)


def tool_names_of(operations: list[tuple]) -> dict[str, str]:
    paths: dict = {}
    for method, path, operation_id in operations:
        fields = {"operationId": operation_id} if operation_id else {}
        paths.setdefault(path, {})[method] = op(**fields)
    conversion = convert_document(spec3(paths), "3.0")
    return {d.operation_key: d.tool_name for d in conversion.drafts}


@settings(max_examples=200, deadline=None)
@given(specs_operations, st.randoms(use_true_random=False))
def test_tool_names_do_not_depend_on_order_nor_on_unrelated_operations(operations, rng):
    full = tool_names_of(operations)
    assert len(set(full.values())) == len(full)
    assert all(TOOL_NAME_RE.match(name) for name in full.values())

    shuffled = list(operations)
    rng.shuffle(shuffled)
    assert tool_names_of(shuffled) == full

    subset = [item for item in operations if rng.random() < 0.5] or operations[:1]
    natural = {
        f"{m.upper()} {p}": naming.natural_tool_name(i or "", m.upper(), p)
        for m, p, i in operations
    }
    kept = {f"{m.upper()} {p}" for m, p, _i in subset}
    for key, name in tool_names_of(subset).items():
        # Only a clash can change a tool name: when the operations sharing this one's
        # natural name are the same in both specs, the name is the same.
        sharing_full = {k for k in natural if natural[k][0] == natural[key][0]}
        if sharing_full <= kept:
            assert name == full[key], key


def test_a_terse_operation_still_gets_a_useful_description():
    doc = spec3({"/pets/{petId}": {"get": op(summary="Get pet")}})
    assert only_draft(doc).description == "Get pet\n\nCalls GET /pets/{petId} on Pets."
    doc = spec3({"/": {"get": op()}}, info={"title": "", "version": "1"})
    assert only_draft(doc).description == "Calls the API endpoint GET /."


def test_a_deprecated_operation_says_so():
    doc = spec3(
        {"/pets": {"get": op(summary="List pets", description="All of them.", deprecated=True)}}
    )
    assert only_draft(doc).description.endswith("Deprecated: prefer another action when one fits.")


@settings(max_examples=100, deadline=None)
@given(st.text(max_size=30), st.text(max_size=30))
def test_any_summary_and_description_make_a_valid_name_and_description(summary, description):
    draft = only_draft(spec3({"/pets": {"post": op(summary=summary, description=description)}}))
    assert len(draft.description.strip()) >= 20
    assert len(draft.name.strip()) >= 5


# --- methods ----------------------------------------------------------------------------


def test_head_options_and_trace_are_not_imported_nor_counted_but_listed():
    doc = spec3(
        {
            "/pets": {
                "get": op(),
                "head": op(operationId="peek"),
                "options": op(),
                "trace": op(),
            }
        }
    )
    conversion = conversion_of(doc)
    assert [d.method for d in conversion.drafts] == ["GET"]
    assert conversion.operations_total == 1
    assert skipped_operations(doc) == [
        "HEAD /pets (peek): HEAD is not an action method (GET, POST, PUT, PATCH, DELETE)",
        "OPTIONS /pets: OPTIONS is not an action method (GET, POST, PUT, PATCH, DELETE)",
        "TRACE /pets: TRACE is not an action method (GET, POST, PUT, PATCH, DELETE)",
    ]


def test_a_32_document_converts_like_31_and_leaves_query_and_additional_operations_out():
    pet = {"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]}
    doc = spec3(
        {
            "/pets": {
                "get": op(operationId="listPets"),
                "query": op(requestBody={"content": {"application/json": OBJECT}}),
                "post": op(
                    requestBody={
                        "required": True,
                        "content": {"application/json": {"$ref": "#/components/mediaTypes/Pet"}},
                    }
                ),
                "additionalOperations": {"LINK": op(operationId="linkPets")},
            }
        },
        version="3.2.0",
        components={"mediaTypes": {"Pet": {"schema": pet}}},
        tags=[{"name": "pets", "kind": "nav"}],
    )
    conversion = conversion_of(doc)
    assert [d.operation_key for d in conversion.drafts] == ["GET /pets", "POST /pets"]
    assert conversion.operations_total == 2
    assert conversion.drafts[1].body_schema == pet
    assert skipped_operations(doc) == [
        "QUERY /pets: QUERY is not an action method (GET, POST, PUT, PATCH, DELETE)",
        "LINK /pets (linkPets): LINK is not an action method (GET, POST, PUT, PATCH, DELETE)",
    ]


def test_a_32_reference_through_the_documents_own_self_uri_is_followed():
    limit = {"name": "limit", "in": "query", "schema": {"type": "integer"}}
    doc = spec3(
        {"/pets": {"get": op(parameters=[{"$ref": "openapi.yaml#/components/parameters/limit"}])}},
        version="3.2.0",
        components={"parameters": {"limit": limit}},
        **{"$self": "https://example.com/api/openapi.yaml"},
    )
    assert rows(only_draft(doc)) == [("query", "limit", "ai", "", False)]


def test_a_required_querystring_parameter_is_a_problem_and_an_optional_one_is_left_out():
    def with_querystring(required: bool) -> dict:
        querystring = {
            "name": "filter",
            "in": "querystring",
            "required": required,
            "content": {"application/x-www-form-urlencoded": {"schema": {"type": "object"}}},
        }
        return spec3({"/pets": {"get": op(parameters=[querystring])}}, version="3.2.0")

    assert rows(only_draft(with_querystring(False))) == []
    problem = only_problem(with_querystring(True))
    assert problem.code == INVALID_TOOL_SCHEMA
    assert problem.pointer == "#/paths/~1pets/get/parameters/0"
    assert "in: querystring" in problem.message


# --- base URL ---------------------------------------------------------------------------


def endpoints(doc: dict, **kwargs) -> list[str]:
    return [d.endpoint for d in conversion_of(doc, **kwargs).drafts]


def test_the_base_url_override_wins_for_every_operation():
    doc = spec3(
        {"/a": {"get": op(servers=[{"url": "https://other.example.com"}])}, "/b": {"get": op()}}
    )
    assert endpoints(doc, base_url="https://sandbox.example.com/api/") == [
        "https://sandbox.example.com/api/a",
        "https://sandbox.example.com/api/b",
    ]


@pytest.mark.parametrize(
    "override", ["http://api.example.com", "/v1", "api.example.com", "https://{env}.example.com"]
)
def test_an_unusable_override_fails_the_import(override):
    error = failure(spec3({"/a": {"get": op()}}), base_url=override)
    assert error.code == CANNOT_DETERMINE_API_ENDPOINT
    assert "https://" in error.problems[0].fix


def test_operation_servers_beat_path_servers_which_beat_the_documents():
    doc = spec3(
        {
            "/a": {
                "servers": [{"url": "https://path.example.com"}],
                "get": op(servers=[{"url": "https://operation.example.com/"}]),
                "post": op(),
            },
            "/b": {"get": op()},
        }
    )
    assert endpoints(doc) == [
        "https://operation.example.com/a",
        "https://path.example.com/a",
        f"{BASE}/b",
    ]


def test_the_first_https_server_is_used_with_variables_filled_from_defaults():
    doc = spec3(
        {"/a": {"get": op()}},
        servers=[
            {"url": "http://insecure.example.com"},
            {
                "url": "https://{region}.example.com:{port}/{base}",
                "variables": {
                    "region": {"default": "eu", "enum": ["eu", "us"]},
                    "port": {"default": "8443"},
                    "base": {"default": "v2/beta"},
                },
            },
        ],
    )
    assert endpoints(doc) == ["https://eu.example.com:8443/v2/beta/a"]


@pytest.mark.parametrize(
    ("servers", "message", "pointer"),
    [
        ([{"url": "/v1"}], "The server URL “/v1” is relative", "#/servers"),
        ([{"url": "http://api.example.com"}], "http:// only", "#/servers"),
        ([{"url": "https://{tenant}.example.com"}], "placeholder {tenant}", "#/servers"),
        (None, "declares no servers", "#/servers"),
    ],
)
def test_without_any_usable_base_url_the_document_fails_with_the_fix(servers, message, pointer):
    doc = spec3({"/a": {"get": op()}, "/b": {"post": op()}})
    if servers is None:
        del doc["servers"]
    else:
        doc["servers"] = servers
    error = failure(doc)
    (problem,) = error.problems
    assert problem.code == CANNOT_DETERMINE_API_ENDPOINT
    assert message in problem.message
    assert problem.pointer == pointer
    assert "serverBaseUrl" in problem.fix and "--base-url" in problem.fix
    assert endpoints(doc, base_url="https://api.example.com") == [
        "https://api.example.com/a",
        "https://api.example.com/b",
    ]


def test_an_operation_without_a_base_url_is_a_problem_when_others_have_one():
    doc = spec3({"/a": {"get": op(servers=[{"url": "/v3"}])}, "/b": {"get": op()}})
    conversion = conversion_of(doc)
    assert [d.operation_key for d in conversion.drafts] == ["GET /b"]
    (problem,) = conversion.problems
    assert problem.code == CANNOT_DETERMINE_API_ENDPOINT
    assert problem.operation == "GET /a"
    assert problem.pointer == "#/paths/~1a/get/servers"


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"schemes": ["https"]}, "https://api.example.com/v1/a"),
        ({"schemes": None}, "https://api.example.com/v1/a"),  # absent: assume https
        ({"basePath": None}, "https://api.example.com/a"),
        ({"basePath": "/"}, "https://api.example.com/a"),
        ({"host": "api.example.com:8443", "basePath": "v2"}, "https://api.example.com:8443/v2/a"),
    ],
)
def test_swagger_base_urls(changes, expected):
    doc = spec2({"/a": {"get": op()}})
    for key, value in changes.items():
        if value is None:
            del doc[key]
        else:
            doc[key] = value
    assert endpoints(doc) == [expected]


@pytest.mark.parametrize(
    ("changes", "message", "pointer"),
    [
        ({"host": None}, "has no host", "#/host"),
        ({"schemes": ["http"]}, "schemes are http, without https", "#/schemes"),
        ({"schemes": ["ws", "wss"]}, "schemes are ws, wss", "#/schemes"),
    ],
)
def test_swagger_without_a_usable_base_url_fails(changes, message, pointer):
    doc = spec2({"/a": {"get": op()}})
    for key, value in changes.items():
        if value is None:
            del doc[key]
        else:
            doc[key] = value
    (problem,) = failure(doc).problems
    assert (problem.code, problem.pointer) == (CANNOT_DETERMINE_API_ENDPOINT, pointer)
    assert message in problem.message


def test_swagger_operation_schemes_override_the_documents():
    doc = spec2({"/a": {"get": op(schemes=["http"])}, "/b": {"get": op()}}, schemes=["http"])
    doc["paths"]["/b"]["get"]["schemes"] = ["https"]
    conversion = conversion_of(doc)
    assert [d.endpoint for d in conversion.drafts] == ["https://api.example.com/v1/b"]
    assert conversion.problems[0].pointer == "#/paths/~1a/get/schemes"


# --- vendor extensions ------------------------------------------------------------------


def test_vendor_extensions_set_form_submission_pinned_and_tags():
    doc = spec3(
        {
            "/refunds": {
                "post": op(
                    **{
                        "x-open-require-form-submission": True,
                        "x-open-pinned": True,
                        "x-open-tags": ["billing", "refunds", "Billing", " ", "Pet store"],
                    }
                )
            }
        }
    )
    draft = only_draft(doc)
    assert (draft.requires_form, draft.pinned) == (True, True)
    assert draft.tags == ["billing", "refunds", "Pet store"]
    plain = only_draft(spec3({"/refunds": {"post": op()}}))
    assert (plain.requires_form, plain.pinned, plain.tags) == (False, False, [])


@pytest.mark.parametrize(
    ("extension", "value", "message", "at"),
    [
        (
            "x-open-pinned",
            "yes",
            "x-open-pinned must be a boolean (true or false), not a string",
            "",
        ),
        (
            "x-open-require-form-submission",
            1,
            "must be a boolean (true or false), not a number",
            "",
        ),
        ("x-open-tags", "billing", "x-open-tags must be a list of strings, not a string", ""),
        ("x-open-tags", ["ok", 3], "item 1 is a number 3", "/1"),
    ],
)
def test_a_vendor_extension_of_the_wrong_type_is_a_problem_on_its_operation(
    extension, value, message, at
):
    doc = spec3({"/refunds": {"post": op(operationId="refund", **{extension: value})}})
    problem = only_problem(doc)
    assert problem.code == INVALID_TOOL_SCHEMA
    assert problem.operation == "POST /refunds (refund)"
    assert problem.pointer == f"#/paths/~1refunds/post/{extension}{at}"
    assert message in problem.message
    assert extension in problem.fix


# --- invalid operations -----------------------------------------------------------------

CIRCULAR = {  # a node needs a parent, which needs a parent...: no finite value
    "schemas": {
        "Node": {
            "type": "object",
            "properties": {
                "parent": {"$ref": "#/components/schemas/Node"},
                "children": {"type": "array", "items": {"$ref": "#/components/schemas/Node"}},
            },
            "required": ["parent"],
        }
    }
}
TREE = {  # children may be empty: a finite tree
    "schemas": {
        "Node": {
            "type": "object",
            "properties": {
                "name": {"type": "string"},
                "children": {"type": "array", "items": {"$ref": "#/components/schemas/Node"}},
            },
            "required": ["name"],
        }
    }
}


def test_every_invalid_operation_is_listed_in_order_and_the_valid_ones_still_convert():
    node_body = {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Node"}}}}
    doc = spec3(
        {
            "/trees": {"post": op(operationId="plant", requestBody=node_body)},
            "/pets": {"get": op(operationId="listPets")},
            "/trees/{id}": {
                "put": op(requestBody=node_body),
                "patch": op(**{"x-open-pinned": "no"}),
            },
        },
        components=CIRCULAR,
    )
    conversion = conversion_of(doc)
    assert [d.tool_name for d in conversion.drafts] == ["listPets"]
    assert [(p.code, p.operation, p.pointer) for p in conversion.problems] == [
        (INVALID_TOOL_SCHEMA, "POST /trees (plant)", "#/components/schemas/Node"),
        (INVALID_TOOL_SCHEMA, "PUT /trees/{id}", "#/components/schemas/Node"),
        (INVALID_TOOL_SCHEMA, "PATCH /trees/{id}", "#/paths/~1trees~1{id}/patch/x-open-pinned"),
    ]
    first = conversion.problems[0]
    assert "circular $ref" in first.message and "non-recursive" in first.fix
    assert str(first).startswith("invalid_tool_schema: POST /trees (plant): circular $ref")
    assert "#/components/schemas/Node → #/components/schemas/Node" in first.message
    assert conversion.warnings == []


def test_a_recursive_body_imports_cut_with_a_warning_naming_the_cycle():
    node_body = {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Node"}}}}
    doc = spec3(
        {"/trees": {"post": op(operationId="plant", requestBody=node_body)}}, components=TREE
    )
    conversion = conversion_of(doc)
    (draft,) = conversion.drafts
    assert conversion.problems == []
    (warning,) = conversion.warnings
    assert warning.code == RECURSIVE_SCHEMA_CUT and warning.code not in CODES
    assert warning.operation == "POST /trees (plant)"
    assert warning.pointer == "#/components/schemas/Node"
    assert "(#/components/schemas/Node → #/components/schemas/Node)" in warning.message
    assert f"expands it {MAX_RECURSION_DEPTH} levels deep" in warning.message
    schema = tool_schema(draft)
    assert schema["properties"]["children"]["items"] == {"$ref": "#/$defs/Node__level1"}
    check_meta_schema(schema)
    for fmt in FORMATS:
        render(
            ToolDefinition("plant", "Plant a tree", "Plants a tree of nodes.", schema, "POST"), fmt
        )
    leaf = {"name": "leaf"}
    assert Draft202012Validator(schema).is_valid({"name": "root", "children": [leaf, leaf]})


def test_a_recursive_parameter_schema_is_written_out_cut_with_a_warning():
    parameter = {"name": "q", "in": "query", "schema": {"$ref": "#/components/schemas/Node"}}
    doc = spec3({"/trees": {"get": op(parameters=[parameter])}}, components=TREE)
    conversion = conversion_of(doc)
    (draft,) = conversion.drafts
    (row,) = draft.parameters
    assert list(_walk_refs(row.value_schema)) == []  # written out: no $ref
    children = row.value_schema["properties"]["children"]
    for _level in range(MAX_RECURSION_DEPTH):
        children = children["items"]["properties"]["children"]
    assert children["maxItems"] == 0
    assert [w.operation for w in conversion.warnings] == ["GET /trees"]


def test_a_circular_parameter_schema_is_a_problem_too():
    doc = spec3(
        {
            "/trees": {
                "get": op(
                    parameters=[
                        {
                            "name": "q",
                            "in": "query",
                            "schema": {"$ref": "#/components/schemas/Node"},
                        }
                    ]
                )
            }
        },
        components=CIRCULAR,
    )
    assert "circular" in only_problem(doc).message


def test_one_of_nested_too_deep_in_a_body_is_a_problem():
    schema: dict = {"type": "string"}
    for _ in range(MAX_ALTERNATION_DEPTH + 1):
        schema = {
            "oneOf": [{"type": "object", "properties": {"next": schema}}, {"type": "integer"}]
        }
    problem = only_problem(body_op({"application/json": {"schema": schema}}))
    assert problem.pointer == "#/paths/~1pets/post/requestBody/content/application~1json/schema"
    assert f"{MAX_ALTERNATION_DEPTH + 1} levels deep" in problem.message


def test_a_type_that_is_not_json_schema_is_a_problem_at_its_pointer():
    doc = spec3(
        {
            "/pets": {
                "get": op(parameters=[{"name": "d", "in": "query", "schema": {"type": "date"}}])
            }
        }
    )
    problem = only_problem(doc)
    assert problem.pointer == "#/paths/~1pets/get/parameters/0/schema/type"
    assert "“date” is not a JSON Schema type" in problem.message


def test_an_operation_breaking_an_action_rule_reports_the_rules_messages():
    doc = spec3(
        {"/pets": {"get": op(parameters=[{"name": "bad name", "in": "header", "schema": {}}])}}
    )
    problem = only_problem(doc)
    assert problem.code == INVALID_TOOL_SCHEMA
    assert problem.pointer == "#/paths/~1pets/get"
    assert "header bad name" in problem.message and "not a valid header name" in problem.message


def test_a_path_parameter_used_twice_is_one_argument_filling_both_places():
    path_id = {"name": "id", "in": "path", "required": True, "schema": {"type": "integer"}}
    doc = spec3({"/anything/{id}/{action}/{id}": {"get": op(parameters=[path_id])}})
    draft = only_draft(doc)
    assert draft.endpoint == f"{BASE}/anything/{{id}}/{{action}}/{{id}}"
    assert [(row.key, row.value_schema) for row in draft.parameters] == [
        ("id", {"type": "integer"}),
        ("action", {"type": "string"}),
    ]
    assert tool_schema(draft)["required"] == ["id", "action"]


def test_references_outside_the_document_are_parse_problems():
    doc = spec3(
        {
            "/pets": {"get": op(parameters=[{"$ref": "parameters.yaml#/limit"}])},
            "/tags": {"get": op()},
        }
    )
    conversion = conversion_of(doc)
    (problem,) = conversion.problems
    assert problem.code == FAILED_TO_PARSE_SPEC
    assert "bundle" in problem.fix
    with_external_path = spec3({"/pets": {"$ref": "pets.yaml"}, "/tags": {"get": op()}})
    (problem,) = failure(with_external_path).problems
    assert (problem.code, problem.operation) == (FAILED_TO_PARSE_SPEC, "/pets")


# --- the whole document ---------------------------------------------------------------


def test_progress_is_reported_after_each_operation():
    doc = spec3({"/a": {"get": op(), "post": op()}, "/b": {"get": op(servers=[{"url": "/x"}])}})
    calls = []
    convert_document(doc, "3.0", progress=lambda done, total: calls.append((done, total)))
    assert calls == [(1, 3), (2, 3), (3, 3)]


def test_a_document_without_operations_converts_to_nothing():
    conversion = conversion_of(spec3({}))
    assert (conversion.drafts, conversion.problems, conversion.operations_total) == ([], [], 0)


def test_a_document_that_is_not_an_object_fails():
    with pytest.raises(ImportFailed) as info:
        convert_document(["openapi"], "3.0")  # type: ignore[arg-type]
    assert info.value.code == FAILED_TO_PARSE_SPEC


# Documents of any shape, mostly wrong: conversion reports, never crashes.
json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=5)),
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=8,
)
schema_like = st.recursive(
    st.one_of(
        st.fixed_dictionaries(
            {},
            optional={
                "type": st.sampled_from(["object", "string", "array", "file", "int", None]),
                "nullable": st.one_of(st.booleans(), json_values),
                "readOnly": st.booleans(),
                "enum": json_values,
                "pattern": st.sampled_from(["^a", r"\p{L}", "("]),
                "example": json_values,
            },
        ),
        st.sampled_from(
            [
                {"$ref": "#/components/schemas/A"},
                {"$ref": "#/components/schemas/B"},
                {"$ref": "#/definitions/A"},
                {"$ref": "#/nope"},
                {"$ref": "x.yaml"},
                {"$ref": "#"},
            ]
        ),
    ),
    lambda inner: st.fixed_dictionaries(
        {},
        optional={
            "type": st.sampled_from(["object", "array"]),
            "properties": st.dictionaries(st.text(max_size=3), inner, max_size=3),
            "items": inner,
            "allOf": st.lists(inner, min_size=1, max_size=2),
            "oneOf": st.lists(inner, min_size=1, max_size=2),
            "required": json_values,
            "additionalProperties": st.one_of(st.booleans(), inner),
        },
    ),
    max_leaves=6,
)
schemas_or_junk = st.one_of(schema_like, schema_like, json_values)
parameters = st.fixed_dictionaries(
    {
        "name": st.one_of(st.sampled_from(["id", "x-y", "X-Key", "a b"]), json_values),
        "in": st.sampled_from(["query", "path", "header", "cookie", "body", "formData", "x"]),
    },
    optional={
        "schema": schemas_or_junk,
        "required": st.one_of(st.booleans(), json_values),
        "type": st.sampled_from(["string", "file", "array"]),
        "content": json_values,
    },
)
request_bodies = st.fixed_dictionaries(
    {
        "content": st.dictionaries(
            st.sampled_from(
                ["application/json", "text/plain", "multipart/form-data", "application/*"]
            ),
            st.one_of(st.fixed_dictionaries({"schema": schemas_or_junk}), json_values),
            min_size=1,
            max_size=2,
        )
    },
    optional={"required": st.one_of(st.booleans(), json_values)},
)
operations_ = st.fixed_dictionaries(
    {},
    optional={
        "operationId": st.one_of(st.text(max_size=70), json_values),
        "summary": json_values,
        "description": json_values,
        "parameters": st.one_of(
            st.lists(
                st.one_of(parameters, st.just({"$ref": "#/components/parameters/P"})), max_size=3
            ),
            json_values,
        ),
        "requestBody": st.one_of(
            request_bodies,
            request_bodies,
            st.just({"$ref": "#/components/requestBodies/R"}),
            json_values,
        ),
        "security": st.one_of(st.just([{"key": []}]), json_values),
        "servers": st.one_of(st.just([{"url": "https://x.example.com"}]), json_values),
        "consumes": st.one_of(st.just(["application/x-www-form-urlencoded"]), json_values),
    },
)
documents = st.fixed_dictionaries(
    {
        "paths": st.dictionaries(
            st.sampled_from(["/a", "/a/{id}", "/{x-y}/{x_y}", "b", "/c?d=e", "/ü {z}"]),
            st.dictionaries(
                st.sampled_from(
                    ["get", "post", "post", "patch", "delete", "parameters", "servers"]
                ),
                st.one_of(operations_, operations_, operations_, json_values),
                min_size=1,
                max_size=3,
            ),
            max_size=3,
        ),
    },
    optional={
        "components": st.fixed_dictionaries(
            {},
            optional={
                "schemas": st.dictionaries(
                    st.sampled_from(["A", "B"]), schemas_or_junk, max_size=2
                ),
                "parameters": st.fixed_dictionaries({"P": st.one_of(parameters, json_values)}),
                "requestBodies": st.fixed_dictionaries(
                    {"R": st.one_of(request_bodies, json_values)}
                ),
                "securitySchemes": st.one_of(
                    st.just({"key": {"type": "apiKey", "in": "header", "name": "K"}}), json_values
                ),
            },
        ),
        "servers": json_values,
        "security": json_values,
        "host": st.one_of(st.just("api.example.com"), json_values),
        "definitions": st.one_of(st.dictionaries(st.just("A"), schemas_or_junk), json_values),
    },
)


@settings(max_examples=300, deadline=None)
@given(
    documents,
    st.sampled_from(["2.0", "3.0", "3.1"]),
    st.sampled_from([None, "https://api.example.com"]),
)
def test_any_document_converts_to_sound_drafts_and_problems_or_fails_cleanly(doc, version, base):
    try:
        conversion = convert_document(doc, version, base_url=base)
    except ImportFailed as error:
        assert all(problem.code in CODES for problem in error.problems)
        return
    for draft in conversion.drafts:
        assert_sound(draft)
    for problem in conversion.problems:
        assert problem.code in CODES and problem.operation and problem.pointer.startswith("#")


def test_the_same_document_converts_the_same_every_time():
    doc = spec3(
        {f"/items{i}/{{id}}": {"get": op(operationId=f"op{i}"), "post": op()} for i in range(30)}
    )
    first = conversion_of(doc)
    shuffled = dict(random.Random(7).sample(list(doc["paths"].items()), len(doc["paths"])))
    second = conversion_of({**doc, "paths": shuffled})
    assert sorted(map(repr, first.drafts)) == sorted(map(repr, second.drafts))
