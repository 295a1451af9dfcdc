"""Real specs for the import entry points' tests (../shared/specs), and edited copies.

PETSTORE         20 operations; its only server is http://, so it needs BASE_URL
PETSTORE_SIMPLE  2 operations on https://httpbin.org
SCHEMA_CIRCULAR  3 operations; PUT /circular and POST /not-quite-circular are
                 recursive with no end (invalid_tool_schema), PUT /nestedTest is fine:
                 the corpus's schema-circular.json with its recursion made required
                 (the original's optional recursion imports, with a warning)
RECURSIVE_OPTIONAL  that original (the corpus's schema-circular.json): all 3 operations
                 import; the recursive inputs of PUT /circular and POST
                 /not-quite-circular are cut 3 levels deep, each with a
                 recursive_schema_cut warning (RECURSIVE_CUTS)
CIRCULAR_BODIES  4 operations on https://httpbin.org: POST /direct recurses with no end
                 (invalid_tool_schema); the other three recurse optionally and import
                 with a recursive_schema_cut warning each
"""

import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
OAS_EXAMPLES = ROOT.parent / "shared" / "specs" / "npm" / "readme__oas-examples" / "3.0" / "json"
PETSTORE = OAS_EXAMPLES / "petstore.json"
PETSTORE_SIMPLE = OAS_EXAMPLES / "petstore-simple.json"
SCHEMA_CIRCULAR = ROOT / "tests" / "fixtures" / "edited" / "schema-circular.json"
RECURSIVE_OPTIONAL = OAS_EXAMPLES / "schema-circular.json"
CIRCULAR_BODIES = OAS_EXAMPLES / "circular-request-bodies.json"
EXTERNAL_REF = ROOT / "tests" / "fixtures" / "specs" / "external-ref-https.json"

BASE_URL = "https://petstore.example.com/v3"
PETSTORE_KEYS = frozenset(
    {
        "POST /pet", "PUT /pet", "GET /pet/findByStatus", "GET /pet/findByTags",
        "GET /pet/{petId}", "POST /pet/{petId}", "DELETE /pet/{petId}",
        "POST /pet/{petId}/uploadImage", "GET /store/inventory", "POST /store/order",
        "GET /store/order/{orderId}", "DELETE /store/order/{orderId}", "POST /user",
        "POST /user/createWithArray", "POST /user/createWithList", "GET /user/login",
        "GET /user/logout", "GET /user/{username}", "PUT /user/{username}",
        "DELETE /user/{username}",
    }
)  # fmt: skip
CIRCULAR_FIRST = {
    "code": "invalid_tool_schema",
    "operation": "PUT /circular",
    "pointer": "#/components/schemas/MultiPart",
}
# RECURSIVE_OPTIONAL's warnings, as (code, operation, pointer), in the spec's order.
RECURSIVE_CUTS = [
    ("recursive_schema_cut", "PUT /circular", "#/components/schemas/MultiPart"),
    ("recursive_schema_cut", "POST /not-quite-circular", "#/components/schemas/ZoneRules"),
]
PROBLEM_KEYS = {"code", "operation", "pointer", "message", "fix"}
# What petstore_v2() changes, as the import reports it.
V2_ADDED = "GET /pet/{petId}/vaccinations (listVaccinations)"
V2_CHANGED = "POST /pet (addPet)"
V2_REMOVED = "GET /user/logout"
V2_KEYS = PETSTORE_KEYS - {"GET /user/logout"} | {"GET /pet/{petId}/vaccinations"}


def petstore() -> dict:
    return json.loads(PETSTORE.read_text())


def petstore_v2() -> dict:
    """The pet store a release later: one operation added, one renamed, one gone."""
    spec = petstore()
    spec["paths"]["/pet"]["post"]["summary"] = "Register a new pet with the store"
    del spec["paths"]["/user/logout"]
    spec["paths"]["/pet/{petId}/vaccinations"] = {
        "get": {
            "operationId": "listVaccinations",
            "summary": "List a pet's vaccinations",
            "tags": ["pet", "health"],
            "parameters": [
                {"name": "petId", "in": "path", "required": True, "schema": {"type": "integer"}}
            ],
            "responses": {"200": {"description": "The vaccinations, newest first."}},
        }
    }
    return spec


def petstore_pinned() -> dict:
    """The pet store with its inventory pinned (x-open-pinned), so it lists first."""
    spec = petstore()
    spec["paths"]["/store/inventory"]["get"]["x-open-pinned"] = True
    return spec


def write_spec(directory: Path, name: str, spec: dict) -> Path:
    path = directory / name
    path.write_text(json.dumps(spec))
    return path
