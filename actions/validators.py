"""The rules an action obeys, as plain functions.

The model, the dashboard form, the API serializers and the OpenAPI importer all call
these, so a rule and its message are written once. Every message says what is wrong
and how to fix it.
"""

import ipaddress
import json
import math
import re
import unicodedata
from urllib.parse import unquote

import jsonschema_rs
from django.core.exceptions import ValidationError
from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError

NAME_MIN_LENGTH = 5
DESCRIPTION_MIN_LENGTH = 20
TOOL_NAME_MAX_LENGTH = 64
# Deeper JSON than this would exhaust Python's recursion limit in jsonschema; no real
# request body nests anywhere near it.
BODY_SCHEMA_MAX_DEPTH = 100
TOOL_NAME_RE = re.compile(r"^[a-zA-Z0-9_-]{1,64}\Z")
PLACEHOLDER_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*\Z")
GLOBAL_REF_RE = re.compile(r"\{\{\s*global\.([^{}\s]*)\s*\}\}")
GLOBAL_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*\Z")
# RFC 7230 token
HEADER_NAME_RE = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+\Z")
# Headers that would let a value rewrite the request itself (smuggling, virtual-host
# confusion) or that the HTTP client must own.
FORBIDDEN_HEADERS = frozenset(
    {
        "host",
        "content-length",
        "transfer-encoding",
        "connection",
        "te",
        "upgrade",
        "trailer",
        "keep-alive",
        "expect",
    }
)

_HOST_RE = re.compile(
    r"^(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?\Z"
)
_PORT_RE = re.compile(r"^[0-9]{1,5}\Z")
# RFC 3986 path characters, plus the braces of our placeholders.
_PATH_RE = re.compile(r"^[A-Za-z0-9\-._~!$&'()*+,;=:%/{}]*\Z")
_PERCENT_RE = re.compile(r"%(?![0-9A-Fa-f]{2})")
_PLACEHOLDER_RE = re.compile(r"\{([^{}]*)\}")


def validate_name(value: str) -> None:
    if len(value.strip()) < NAME_MIN_LENGTH:
        raise ValidationError(
            "The name must be at least %(min)d characters; it has %(length)d. "
            "Use a few words that say what the action does, such as “Cancel subscription”.",
            code="name_too_short",
            params={"min": NAME_MIN_LENGTH, "length": len(value.strip())},
        )


def validate_description(value: str) -> None:
    if len(value.strip()) < DESCRIPTION_MIN_LENGTH:
        raise ValidationError(
            "The description must be at least %(min)d characters; it has %(length)d. "
            "The AI reads it to decide when to use this action: say what it does, "
            "for whom, and when to use it.",
            code="description_too_short",
            params={"min": DESCRIPTION_MIN_LENGTH, "length": len(value.strip())},
        )


def validate_tool_name(value: str) -> None:
    if not TOOL_NAME_RE.match(value):
        raise ValidationError(
            "“%(value)s” is not a valid tool name: use 1 to 64 letters, digits, '_' or '-' "
            "(for example cancel_subscription).",
            code="invalid_tool_name",
            params={"value": value},
        )


def derive_tool_name(name: str) -> str:
    """Turn an action name into a tool name the model providers accept.

    >>> derive_tool_name("Look up an order (v2)")
    'look_up_an_order_v2'
    >>> derive_tool_name("Crème brûlée: réserver")
    'creme_brulee_reserver'
    """
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "_", ascii_name.lower()).strip("_")
    return slug[:TOOL_NAME_MAX_LENGTH].rstrip("_") or "action"


def parse_endpoint(url: str) -> list[str]:
    """Check an endpoint URL template and return its path placeholders in order,
    each once.

    Only an absolute https:// URL is accepted; placeholders may appear in the path
    alone, so the scheme, host and port are fixed when the action is saved. A
    placeholder may appear more than once: it is one value, sent in each place.

    >>> parse_endpoint("https://api.example.com/orders/{order_id}/items/{item_id}")
    ['order_id', 'item_id']
    >>> parse_endpoint("https://api.example.com/anything/{id}/{action}/{id}")
    ['id', 'action']
    """
    if url != url.strip():
        raise ValidationError(
            "The endpoint starts or ends with a space; remove it.", code="endpoint_whitespace"
        )
    if any(ch.isspace() or unicodedata.category(ch)[0] == "C" for ch in url):
        raise ValidationError(
            "The endpoint contains a space or a control character; percent-encode it "
            "(a space is %20) or remove it.",
            code="endpoint_whitespace",
        )
    lowered = url.lower()
    if lowered.startswith("http://"):
        raise ValidationError(
            "Actions only call HTTPS endpoints: change http:// to https://.",
            code="endpoint_not_https",
        )
    if not lowered.startswith("https://"):
        raise ValidationError(
            "The endpoint must be an absolute URL starting with https://, "
            "for example https://api.example.com/orders/{order_id}.",
            code="endpoint_not_https",
        )
    rest = url[len("https://") :]
    if "\\" in rest or "@" in rest:
        raise ValidationError(
            "The endpoint must not contain '@' or '\\'. Credentials never go in the URL: "
            "put them in a header, ideally as {{global.NAME}}.",
            code="endpoint_credentials",
        )
    if "?" in rest or "#" in rest:
        raise ValidationError(
            "The endpoint holds only the scheme, host and path. Move the query string "
            "into parameter rows (location: query).",
            code="endpoint_query",
        )
    authority, slash, path = rest.partition("/")
    path = slash + path
    if "{" in authority or "}" in authority:
        raise ValidationError(
            "Placeholders such as {name} may only appear in the path, never in the host "
            "or port: the host is fixed when the action is saved.",
            code="endpoint_placeholder_in_host",
        )
    host, port = authority, None
    if authority.startswith("["):
        bracketed = re.match(r"^(\[[^\]]*\])(?::(.*))?$", authority)
        host, port = bracketed.groups() if bracketed else ("", None)
    elif ":" in authority:
        host, port = authority.rsplit(":", 1)
    if not host or not (_HOST_RE.match(host) or _is_ipv6_literal(host)):
        raise ValidationError(
            "“%(host)s” is not a valid host name. Use the API's host, such as "
            "api.example.com (internationalized names in their xn-- form).",
            code="endpoint_host",
            params={"host": host},
        )
    # ASCII digits only: str.isdigit() also accepts "²" or "٤", which int() rejects or
    # reads as a port the URL does not spell.
    if port is not None and not (_PORT_RE.match(port) and 1 <= int(port) <= 65535):
        raise ValidationError(
            "“%(port)s” is not a valid port: use a number from 1 to 65535, or leave it "
            "out for HTTPS's 443.",
            code="endpoint_port",
            params={"port": port},
        )
    if not _PATH_RE.match(path) or _PERCENT_RE.search(path):
        raise ValidationError(
            "The endpoint's path has characters that must be percent-encoded "
            "(letters, digits and - . _ ~ / are safe; '%' must start an escape such as %20).",
            code="endpoint_path",
        )
    placeholders = _PLACEHOLDER_RE.findall(path)
    if "{" in _PLACEHOLDER_RE.sub("", path) or "}" in _PLACEHOLDER_RE.sub("", path):
        raise ValidationError(
            "The endpoint has an unmatched '{' or '}'. Write path parameters as "
            "{name}, for example /orders/{order_id}.",
            code="endpoint_braces",
        )
    for name in placeholders:
        if not PLACEHOLDER_NAME_RE.match(name):
            raise ValidationError(
                "“{%(name)s}” is not a valid path parameter: use letters, digits and '_', "
                "not starting with a digit (for example {order_id}).",
                code="endpoint_placeholder_name",
                params={"name": name},
            )
    return list(dict.fromkeys(placeholders))


def _is_ipv6_literal(host: str) -> bool:
    """`[2001:db8::1]`, brackets included; no zone ID."""
    if not (host.startswith("[") and host.endswith("]")):
        return False
    try:
        ipaddress.IPv6Address(host[1:-1])
    except ValueError:
        return False
    return "%" not in host


def _resolves(document: object, ref: str) -> bool:
    """Whether a local JSON pointer (`#/$defs/Address`) names something in the document."""
    node = document
    for token in ref.removeprefix("#").split("/")[1:]:
        token = unquote(token).replace("~1", "/").replace("~0", "~")
        if isinstance(node, dict) and token in node:
            node = node[token]
        elif isinstance(node, list) and token.isdigit() and int(token) < len(node):
            node = node[int(token)]
        else:
            return False
    return True


def parse_json(text: str, *, subject: str) -> object:
    """Strict JSON as people paste it: no NaN or Infinity (PostgreSQL's json refuses
    them) and no nesting deep enough to exhaust Python's stack."""

    def refuse_constant(name: str):
        raise ValidationError(
            "%(subject)s contains %(name)s, which is not JSON; use a number or null.",
            code="json_not_finite",
            params={"subject": subject, "name": name},
        )

    try:
        value = json.loads(text, parse_constant=refuse_constant)
    except json.JSONDecodeError as error:
        raise ValidationError(
            "%(subject)s is not valid JSON (line %(line)d, column %(column)d: %(message)s).",
            code="json_invalid",
            params={
                "subject": subject,
                "line": error.lineno,
                "column": error.colno,
                "message": error.msg,
            },
        ) from None
    except RecursionError:
        raise ValidationError(
            "%(subject)s nests too deeply to read.",
            code="json_too_deep",
            params={"subject": subject},
        ) from None
    return value


# PostgreSQL's json/jsonb cannot store U+0000, nor an unpaired UTF-16 surrogate.
_UNSTORABLE_TEXT = re.compile("[\x00\ud800-\udfff]")


def validate_storable_json(value: object) -> None:
    """Refuse what a JSON column cannot hold: NaN and infinities (not JSON numbers), and
    text with U+0000 or unpaired surrogates in any string or key. Walked without
    recursion, so any depth is safe to check."""
    stack = [value]
    while stack:
        node = stack.pop()
        if isinstance(node, float) and not math.isfinite(node):
            raise ValidationError(
                "NaN and Infinity are not JSON numbers; use a number or null.",
                code="json_not_finite",
            )
        if isinstance(node, str) and _UNSTORABLE_TEXT.search(node):
            raise ValidationError(
                "The JSON contains a NUL (\\u0000) or an unpaired surrogate character, "
                "which cannot be stored; remove it.",
                code="json_unstorable_text",
            )
        if isinstance(node, dict):
            stack.extend(node.keys())
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)


def json_depth(value: object) -> int:
    """How deeply objects and arrays nest in a decoded JSON value, without recursing.

    >>> json_depth({"a": [{"b": 1}]})
    3
    >>> json_depth("text")
    0
    """
    deepest, stack = 0, [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict):
            children = node.values()
        elif isinstance(node, list):
            children = node
        else:
            continue
        deepest = max(deepest, depth)
        stack.extend((child, depth + 1) for child in children)
    return deepest


def _walk_refs(node: object, pointer: str = "#"):
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                yield pointer, value
            yield from _walk_refs(value, f"{pointer}/{key}")
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _walk_refs(value, f"{pointer}/{index}")


def validate_body_schema(schema: object, *, object_root: bool = True) -> None:
    """A body schema is valid Draft 2020-12 with an object at its root.

    `object_root=False` is for bodies an OpenAPI spec defines (a list, a oneOf...):
    the tool schema then carries the whole body under one `body` argument.
    """
    if not isinstance(schema, dict) and not object_root:
        raise ValidationError(
            "The body schema must be a JSON Schema object ({...}).", code="body_schema_root"
        )
    if object_root and (not isinstance(schema, dict) or schema.get("type") != "object"):
        raise ValidationError(
            'The body schema\'s root must be an object schema ({"type": "object", '
            '"properties": {...}}). To send a list or a single value, wrap it in a property.',
            code="body_schema_root",
        )
    validate_json_schema(
        schema,
        subject="The body schema",
        code_prefix="body_schema",
        hint="Fix that keyword, or infer the schema from a sample JSON.",
    )


def validate_value_schema(schema: object) -> None:
    """The schema of one AI-filled header or parameter: self-contained, no $ref.

    It is embedded in the action's tool schema, where a reference would point at the
    wrong root; copy the referenced schema in instead.
    """
    validate_json_schema(
        schema,
        subject="The value schema",
        code_prefix="value_schema",
        hint='Fix that keyword; a plain {"type": "string"} is a good start.',
    )
    for pointer, ref in _walk_refs(schema):
        raise ValidationError(
            "The value schema refers to “%(ref)s” at %(pointer)s. Write the schema out in "
            "full: a header or parameter schema cannot use $ref.",
            code="value_schema_ref",
            params={"ref": ref, "pointer": pointer},
        )


def check_meta_schema(schema: object) -> None:
    """Draft 2020-12's meta-schema, checked by the compiled validator first (about 50
    times faster: an import checks thousands of schemas); the Python one runs only
    to explain a failure, and decides when the two disagree. Patterns must compile
    with Python's `re`, which is what validates arguments later."""
    if jsonschema_rs.meta.is_valid(schema) and _patterns_compile(schema):
        return
    Draft202012Validator.check_schema(schema)


def _patterns_compile(schema: object) -> bool:
    for _pointer, subschema in _subschemas(schema):
        patterns = list((subschema.get("patternProperties") or {}) if isinstance(
            subschema.get("patternProperties"), dict) else [])  # fmt: skip
        if isinstance(subschema.get("pattern"), str):
            patterns.append(subschema["pattern"])
        for pattern in patterns:
            try:
                re.compile(pattern)
            except (re.error, TypeError):
                return False
    return True


def validate_json_schema(schema: object, *, subject: str, code_prefix: str, hint: str) -> None:
    """Valid Draft 2020-12, local references only, no OpenAPI-only keywords, bounded depth."""
    params = {"subject": subject, "hint": hint}
    if json_depth(schema) > BODY_SCHEMA_MAX_DEPTH:
        raise ValidationError(
            "%(subject)s nests more than %(max)d levels deep. Flatten it, or move "
            "repeated parts into $defs and point at them with $ref.",
            code=f"{code_prefix}_too_deep",
            params={**params, "max": BODY_SCHEMA_MAX_DEPTH},
        )
    try:
        check_meta_schema(schema)
    except SchemaError as error:
        where = "/".join(str(p) for p in error.absolute_path) or "(root)"
        raise ValidationError(
            "%(subject)s is not valid JSON Schema (Draft 2020-12) at %(where)s: "
            "%(message)s. %(hint)s",
            code=f"{code_prefix}_invalid",
            params={**params, "where": where, "message": error.message},
        ) from None
    for pointer, ref in _walk_refs(schema):
        if not ref.startswith("#"):
            raise ValidationError(
                "%(subject)s refers to “%(ref)s” at %(pointer)s. Only local references "
                "such as #/$defs/Address are allowed: copy the referenced schema into $defs.",
                code=f"{code_prefix}_external_ref",
                params={**params, "ref": ref, "pointer": pointer},
            )
        if not _resolves(schema, ref):
            raise ValidationError(
                "%(subject)s refers to “%(ref)s” at %(pointer)s, which does not exist. "
                "Define it under $defs, or fix the reference.",
                code=f"{code_prefix}_dangling_ref",
                params={**params, "ref": ref, "pointer": pointer},
            )
    for pointer, subschema in _subschemas(schema):
        if "nullable" in subschema:
            raise ValidationError(
                "%(subject)s uses “nullable” at %(pointer)s, which is OpenAPI 3.0, not "
                'JSON Schema. Write {"anyOf": [{"type": "string"}, {"type": "null"}]} instead.',
                code=f"{code_prefix}_nullable",
                params={**params, "pointer": pointer},
            )


# Keywords whose value is one schema, a list of schemas, or a map of names to schemas.
# Everything else (enum, const, default, examples, unknown keywords) holds data.
_ONE_SCHEMA_KEYWORDS = frozenset(
    {
        "additionalItems",
        "additionalProperties",
        "contains",
        "contentSchema",
        "else",
        "if",
        "items",
        "not",
        "propertyNames",
        "then",
        "unevaluatedItems",
        "unevaluatedProperties",
    }
)
_SCHEMA_LIST_KEYWORDS = frozenset({"allOf", "anyOf", "oneOf", "prefixItems"})
_SCHEMA_MAP_KEYWORDS = frozenset(
    {"$defs", "definitions", "dependentSchemas", "patternProperties", "properties"}
)


def _subschemas(schema: object, pointer: str = "#"):
    """Yield (JSON pointer, schema) for a schema and every schema nested in it.

    Names are not schemas: in {"properties": {"nullable": {"type": "boolean"}}} the
    schemas are the root and #/properties/nullable, and "nullable" is only a name.
    """
    stack = [(pointer, schema)]
    while stack:
        pointer, node = stack.pop()
        if not isinstance(node, dict):
            continue  # a boolean schema, or a malformed one check_schema reports
        yield pointer, node
        for key, value in node.items():
            at = f"{pointer}/{_escape_pointer(key)}"
            if key in _ONE_SCHEMA_KEYWORDS:
                stack.append((at, value))
            elif key in _SCHEMA_LIST_KEYWORDS and isinstance(value, list):
                stack.extend((f"{at}/{i}", sub) for i, sub in enumerate(value))
            elif key in _SCHEMA_MAP_KEYWORDS and isinstance(value, dict):
                stack.extend((f"{at}/{_escape_pointer(k)}", sub) for k, sub in value.items())


def _escape_pointer(token: object) -> str:
    return str(token).replace("~", "~0").replace("/", "~1")


def validate_header_name(value: str) -> None:
    if not HEADER_NAME_RE.match(value):
        raise ValidationError(
            "“%(value)s” is not a valid header name: use letters, digits and '-' "
            "(for example X-Customer-Id).",
            code="invalid_header_name",
            params={"value": value},
        )
    lowered = value.lower()
    if lowered in FORBIDDEN_HEADERS or lowered.startswith("proxy-"):
        raise ValidationError(
            "The %(value)s header is set by the HTTP client and cannot be configured on an "
            "action; remove this row.",
            code="forbidden_header",
            params={"value": value},
        )


_QUERY_KEY_RE = re.compile(r"^[A-Za-z0-9_.\-~\[\]$:]{1,200}\Z")


def validate_query_key(value: str) -> None:
    """A query parameter name: no spaces, and none of the characters that would
    split or end the query string (& = # ?)."""
    if not _QUERY_KEY_RE.match(value):
        raise ValidationError(
            "“%(value)s” is not a usable query parameter name: use letters, digits and "
            "_ . - ~ [ ] $ : (for example page_size or filter[status]).",
            code="invalid_query_key",
            params={"value": value},
        )


BINARY_MEDIA_TYPE = "application/octet-stream"
# type/subtype, RFC 9110 tokens, no wildcard and no parameters: what a Content-Type is.
_MEDIA_TYPE_RE = re.compile(r"^[!#$%&'+\-.^_`|~0-9A-Za-z]+/[!#$%&'+\-.^_`|~0-9A-Za-z]+\Z")


def binary_body_schema(media_type: str = BINARY_MEDIA_TYPE, description: str = "") -> dict:
    """The body schema of a raw body (body format "binary"): the AI sends the bytes as
    base64 text in the `body` argument; the call decodes them and sends them with
    `contentMediaType` as the Content-Type.

    >>> binary_body_schema("image/png")["contentMediaType"]
    'image/png'
    """
    text = "The request body: the raw bytes, base64-encoded."
    return {
        "type": "string",
        "contentEncoding": "base64",
        "contentMediaType": media_type,
        "description": f"{description.strip()} ({text})" if description.strip() else text,
    }


def validate_binary_body(schema: object) -> None:
    """A raw body's schema: a base64 string, with the media type it is sent as."""
    if not (
        isinstance(schema, dict)
        and schema.get("type") == "string"
        and schema.get("contentEncoding") == "base64"
    ):
        raise ValidationError(
            'A raw body\'s schema is a base64 string: {"type": "string", '
            '"contentEncoding": "base64", "contentMediaType": "application/octet-stream"}. '
            "Leave the body schema empty to get this one.",
            code="binary_body_schema",
        )
    media_type = schema.get("contentMediaType", BINARY_MEDIA_TYPE)
    if not (isinstance(media_type, str) and _MEDIA_TYPE_RE.match(media_type)):
        raise ValidationError(
            "“%(value)s” is not a media type a raw body can be sent as: write one such "
            "as application/octet-stream or image/png (no wildcard, no parameters).",
            code="binary_body_media_type",
            params={"value": media_type},
        )
    validate_json_schema(
        schema,
        subject="The body schema",
        code_prefix="body_schema",
        hint="Leave the body schema empty to get the standard one.",
    )


MULTIPART_SCALAR_TYPES = frozenset({"string", "number", "integer", "boolean"})


def validate_multipart_body(schema: dict) -> None:
    """A multipart form carries flat fields: scalars (files are base64 strings), or
    lists of scalars sent as repeated fields; never nested objects."""
    for name, sub in (schema.get("properties") or {}).items():
        if not isinstance(sub, dict):
            continue
        kinds = sub.get("type")
        kinds = set(kinds) if isinstance(kinds, list) else {kinds}
        if kinds == {"array"}:
            items = sub.get("items") if isinstance(sub.get("items"), dict) else {}
            item_kinds = items.get("type")
            item_kinds = set(item_kinds) if isinstance(item_kinds, list) else {item_kinds}
            if item_kinds - MULTIPART_SCALAR_TYPES - {"null"}:
                kinds = {"nested"}
            else:
                continue
        if kinds - MULTIPART_SCALAR_TYPES - {"null"}:
            raise ValidationError(
                "The multipart field “%(name)s” is not a flat value. A multipart form "
                "sends strings, numbers, booleans, files or lists of them; send nested "
                "objects as JSON instead (body format: JSON).",
                code="multipart_nested_field",
                params={"name": name},
            )


def validate_static_value(value: str) -> None:
    """Static text may hold {{global.NAME}} references and nothing unprintable."""
    if any(ch in value for ch in "\r\n\x00"):
        raise ValidationError(
            "The value contains a line break or NUL character, which would let it rewrite "
            "the request; remove it.",
            code="value_control_character",
        )
    for name in GLOBAL_REF_RE.findall(value):
        if not GLOBAL_NAME_RE.match(name):
            raise ValidationError(
                "“{{global.%(name)s}}” is not a valid global variable reference: the name "
                "uses letters, digits and '_' (for example {{global.STRIPE_KEY}}).",
                code="invalid_global_reference",
                params={"name": name},
            )
    # An unmatched "{{" is almost always a mistyped reference, which would otherwise be
    # sent literally; a lone "}}" (as in a JSON value) is harmless.
    if "{{" in GLOBAL_REF_RE.sub("", value):
        raise ValidationError(
            "The value has a '{{' that is not a global variable reference. "
            "Write references as {{global.NAME}}.",
            code="invalid_global_reference",
        )


def global_references(value: str) -> list[str]:
    return GLOBAL_REF_RE.findall(value)


def validate_path_rows(placeholders: list[str], path_keys: list[str]) -> None:
    """Every path-parameter row must name one of the endpoint's {placeholders}.

    Placeholders without a row are filled by the AI; a row makes one static or magic,
    or describes it for the AI.
    """
    for key in path_keys:
        if key not in placeholders:
            raise ValidationError(
                "The path parameter “%(key)s” has no {%(key)s} in the endpoint. Add "
                "{%(key)s} to the endpoint's path, or make it a query parameter.",
                code="path_parameter_not_in_endpoint",
                params={"key": key},
            )


def effective_kind(kind: str, value: str) -> str:
    """The kind a header or parameter row is stored as: an empty static value means
    the AI fills it (DESIGN.md), in the dashboard and the API alike.

    >>> effective_kind("static", "  ")
    'ai'
    >>> effective_kind("static", "v2")
    'static'
    """
    return "ai" if kind == "static" and not value.strip() else kind


def header_row_errors(keys: list[str]) -> dict[int, list[ValidationError]]:
    """Errors of an action's header rows, by position: a header an earlier row already
    sets (names are case-insensitive, so "x-id" repeats "X-Id").

    >>> sorted(header_row_errors(["X-Id", "Accept", "x-id"]))
    [2]
    """
    errors: dict[int, list[ValidationError]] = {}
    seen: set[str] = set()
    for index, key in enumerate(keys):
        if key.lower() in seen:
            errors[index] = [
                ValidationError(
                    "This header is already set in another row.", code="duplicate_header"
                )
            ]
        seen.add(key.lower())
    return errors


def parameter_row_errors(
    rows: list[tuple[str, str]], placeholders: list[str]
) -> dict[int, list[ValidationError]]:
    """Errors of an action's (location, key) parameter rows, by position: a row that
    repeats an earlier one, and a path row with no {placeholder} in the endpoint.

    >>> sorted(parameter_row_errors([("query", "q"), ("query", "q"), ("path", "id")], []))
    [1, 2]
    """
    errors: dict[int, list[ValidationError]] = {}
    seen: set[tuple[str, str]] = set()
    for index, (location, key) in enumerate(rows):
        if (location, key) in seen:
            errors.setdefault(index, []).append(
                ValidationError(
                    "This parameter is already set in another row.", code="duplicate_parameter"
                )
            )
        seen.add((location, key))
        if location == "path":
            try:
                validate_path_rows(placeholders, [key])
            except ValidationError as error:
                errors.setdefault(index, []).extend(error.error_list)
    return errors
