"""The API's own OpenAPI document (drf-spectacular): auth scheme and shared errors."""

from drf_spectacular.extensions import OpenApiAuthenticationExtension

ERROR_SCHEMA = {
    "type": "object",
    "properties": {"detail": {"type": "string"}},
    "required": ["detail"],
}
COMMON_ERRORS = {
    "401": "Missing, invalid, revoked or expired API key.",
    "403": "The API key lacks the scope this endpoint needs.",
    "429": "Too many requests for this API key; retry after the Retry-After seconds.",
}


class APIKeyScheme(OpenApiAuthenticationExtension):
    target_class = "actions.api.auth.APIKeyAuthentication"
    name = "OrganizationAPIKey"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "An organization API key, created in the dashboard (API keys) or "
            "with `manage.py create_api_key`: `Authorization: Bearer ocx_...`. Each key "
            "carries scopes: tools, actions:read, actions:write, specs:import, "
            "contacts:write.",
        }


def add_common_errors(result, generator, request, public):
    """Document the errors every authenticated endpoint can answer (postprocessing hook)."""
    result.setdefault("components", {}).setdefault("schemas", {})["Error"] = ERROR_SCHEMA
    for path, operations in result.get("paths", {}).items():
        if not path.startswith("/api/v1/"):
            continue
        for operation in operations.values():
            responses = operation.setdefault("responses", {})
            for status, description in COMMON_ERRORS.items():
                responses.setdefault(
                    status,
                    {
                        "description": description,
                        "content": {
                            "application/json": {"schema": {"$ref": "#/components/schemas/Error"}}
                        },
                    },
                )
    return result
