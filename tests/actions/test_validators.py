import doctest

import pytest
from django.core.exceptions import ValidationError
from hypothesis import example, given
from hypothesis import strategies as st

from actions import context, inference, validators
from actions.validators import (
    derive_tool_name,
    global_references,
    parse_endpoint,
    validate_body_schema,
    validate_description,
    validate_header_name,
    validate_name,
    validate_path_rows,
    validate_static_value,
    validate_tool_name,
)


def refusal(check, *args) -> tuple[str, str]:
    """Run a check that must refuse; return its error code and message."""
    with pytest.raises(ValidationError) as info:
        check(*args)
    (message,) = info.value.messages
    assert "%%" not in message, "a message without params keeps its %% escapes"
    return info.value.code, message


@pytest.mark.parametrize("module", [validators, inference, context])
def test_worked_examples_in_docstrings_hold(module):
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0
    assert result.failed == 0


# --- name, description, tool name ---------------------------------------------------


@pytest.mark.parametrize("name", ["Track", "Cancel subscription", "  Refund  ", "Sök order"])
def test_name_of_five_characters_or_more_is_accepted(name):
    validate_name(name)


@pytest.mark.parametrize(("name", "length"), [("", 0), ("Ship", 4), ("   abc   ", 3), ("\t\n", 0)])
def test_short_name_is_refused_with_its_length_and_an_example(name, length):
    code, message = refusal(validate_name, name)
    assert code == "name_too_short"
    assert "at least 5 characters" in message
    assert f"it has {length}" in message
    assert "Cancel subscription" in message


def test_description_of_twenty_characters_is_accepted():
    validate_description("Cancels a membership")  # exactly 20


@pytest.mark.parametrize("description", ["Cancels a membershi", "   Orders endpoint     ", ""])
def test_short_description_is_refused_and_says_what_to_write(description):
    code, message = refusal(validate_description, description)
    assert code == "description_too_short"
    assert "at least 20 characters" in message
    assert "what it does" in message
    assert "when to use it" in message


@pytest.mark.parametrize(
    "tool_name", ["a", "cancel_subscription", "Get-Order_2", "x" * 64, "2fa_reset", "_-_"]
)
def test_valid_tool_name_is_accepted(tool_name):
    validate_tool_name(tool_name)


@pytest.mark.parametrize(
    "tool_name",
    [
        "",
        "x" * 65,
        "cancel subscription",
        "cancel.order",
        "café",
        "orders/lookup",
        "cancel_order\n",  # `$` alone would let a trailing newline through
        "\ncancel_order",
    ],
)
def test_invalid_tool_name_is_refused_with_the_allowed_characters(tool_name):
    code, message = refusal(validate_tool_name, tool_name)
    assert code == "invalid_tool_name"
    assert "1 to 64 letters, digits, '_' or '-'" in message
    assert "cancel_subscription" in message


@pytest.mark.parametrize(
    ("name", "tool_name"),
    [
        ("Look up an order (v2)", "look_up_an_order_v2"),
        ("Crème brûlée: réserver", "creme_brulee_reserver"),
        ("  Cancel   subscription!! ", "cancel_subscription"),
        ("Refund — order #42", "refund_order_42"),
        ("GET /orders/{id}", "get_orders_id"),
        ("ﬁnd invoice", "find_invoice"),  # the ligature decomposes to "fi"
        ("取消订单", "action"),
        ("!!!", "action"),
        ("", "action"),
    ],
)
def test_tool_name_is_derived_from_the_name(name, tool_name):
    assert derive_tool_name(name) == tool_name


def test_derived_tool_name_is_cut_to_64_characters_without_a_trailing_underscore():
    assert derive_tool_name("a" * 63 + " b") == "a" * 63
    assert derive_tool_name("word " * 30) == ("word_" * 13)[:64].rstrip("_")


@given(st.text())
@example("Crème brûlée: réserver")
@example("\x00\u200b\U0001f600")
def test_derived_tool_name_is_always_a_valid_tool_name(name):
    tool_name = derive_tool_name(name)
    validate_tool_name(tool_name)
    assert not tool_name.startswith("_")
    assert not tool_name.endswith("_")
    assert derive_tool_name(tool_name) == tool_name


# --- endpoint -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "placeholders"),
    [
        ("https://api.example.com/orders/{order_id}/items/{item_id}", ["order_id", "item_id"]),
        ("https://api.example.com", []),
        ("https://api.example.com/", []),
        ("HTTPS://API.Example.com/v1/Orders", []),
        ("https://api.example.com:8443/v1/{id}", ["id"]),
        ("https://api.example.com./v1", []),
        ("https://xn--bcher-kva.example/books", []),
        ("https://10.0.0.7/internal", []),  # the SSRF guard lives in execution.http
        ("https://[2001:db8::1]/v1/{id}", ["id"]),
        ("https://[::1]:8443/health", []),
        ("https://api.example.com/files/report%20final.pdf", []),
        ("https://api.example.com/v1/orders/{order_id}.json", ["order_id"]),
        ("https://api.example.com/v1/{_id}/x/{Item2}", ["_id", "Item2"]),
        ("https://api.example.com/a;b=c/d:e/~f/(g)", []),
    ],
)
def test_valid_endpoint_is_accepted_and_its_placeholders_returned_in_order(url, placeholders):
    assert parse_endpoint(url) == placeholders


@pytest.mark.parametrize(
    "url", ["http://api.example.com/orders", "HTTP://api.example.com/orders", "http://"]
)
def test_endpoint_with_http_scheme_is_refused_with_a_hint(url):
    code, message = refusal(parse_endpoint, url)
    assert code == "endpoint_not_https"
    assert "change http:// to https://" in message


@pytest.mark.parametrize(
    "url",
    [
        "",
        "api.example.com/orders",
        "//api.example.com/orders",
        "https:/api.example.com",
        "ftp://api.example.com/orders",
        "wss://api.example.com/orders",
        "javascript:alert(1)",
    ],
)
def test_endpoint_that_is_not_an_absolute_https_url_is_refused_with_an_example(url):
    code, message = refusal(parse_endpoint, url)
    assert code == "endpoint_not_https"
    assert "starting with https://" in message
    assert "https://api.example.com/orders/{order_id}" in message


@pytest.mark.parametrize(
    "url",
    [
        "https://user:secret@api.example.com/orders",
        "https://api.example.com@evil.example/orders",
        "https://api.example.com\\@evil.example/orders",
        "https://api.example.com/orders\\items",
        "https://api.example.com/users/@me",
    ],
)
def test_endpoint_with_credentials_or_a_backslash_is_refused(url):
    code, message = refusal(parse_endpoint, url)
    assert code == "endpoint_credentials"
    assert "put them in a header" in message
    assert "{{global.NAME}}" in message


@pytest.mark.parametrize(
    "url",
    [
        "https://api.example.com/orders?status=open",
        "https://api.example.com/orders?",
        "https://api.example.com/orders#top",
        "https://api.example.com/orders/{id}?expand={expand}",
    ],
)
def test_endpoint_with_a_query_string_or_fragment_is_refused(url):
    code, message = refusal(parse_endpoint, url)
    assert code == "endpoint_query"
    assert "parameter rows (location: query)" in message


@pytest.mark.parametrize(
    "url",
    [
        "https://{tenant}.example.com/orders",
        "https://api.{region}.example.com/orders",
        "https://api.example.com:{port}/orders",
        "https://{host}",
    ],
)
def test_placeholder_outside_the_path_is_refused(url):
    code, message = refusal(parse_endpoint, url)
    assert code == "endpoint_placeholder_in_host"
    assert "only appear in the path" in message
    assert "host is fixed" in message


@pytest.mark.parametrize(
    "url",
    [
        "https:///orders",
        "https://:443/orders",
        "https://-api.example.com/orders",
        "https://api-.example.com/orders",
        "https://api..example.com/orders",
        "https://api_v1.example.com/orders",
        "https://bücher.example/books",
        "https://" + "a" * 64 + ".example.com/",
        "https://[1]/orders",
        "https://[::1::2]/orders",
        "https://[zz::1]/orders",
        "https://[]/orders",
        "https://[::1/orders",
        "https://[fe80::1%25eth0]/orders",
        "https://[::1]x/orders",
    ],
)
def test_invalid_host_is_refused_with_an_example_host(url):
    code, message = refusal(parse_endpoint, url)
    assert code == "endpoint_host"
    assert "not a valid host name" in message
    assert "api.example.com" in message
    assert "xn--" in message


@pytest.mark.parametrize(
    "port", ["0", "65536", "99999999999999999999", "", "https", "-1", "+443", "²", "٤٤٣", "0x1bb"]
)
def test_invalid_port_is_refused_with_the_allowed_range(port):
    code, message = refusal(parse_endpoint, f"https://api.example.com:{port}/orders")
    assert code == "endpoint_port"
    assert "1 to 65535" in message
    assert "443" in message


@pytest.mark.parametrize("port", ["1", "443", "8443", "65535"])
def test_port_from_1_to_65535_is_accepted(port):
    assert parse_endpoint(f"https://api.example.com:{port}/orders/{{id}}") == ["id"]


@pytest.mark.parametrize(
    "url",
    [
        " https://api.example.com/orders",
        "https://api.example.com/orders ",
        "https://api.example.com/orders\n",
    ],
)
def test_endpoint_with_surrounding_space_is_refused(url):
    code, message = refusal(parse_endpoint, url)
    assert code == "endpoint_whitespace"
    assert "remove it" in message


@pytest.mark.parametrize(
    "url",
    [
        "https://api.example.com/my orders",
        "https://api.example.com/orders/{order id}",
        "https://api.example.com/a\tb",
        "https://api.example.com/a\r\nHost: evil.example",
        "https://api.example.com/a\x00b",
        "https://api.example.com/a\x7fb",
        "https://api.example.com/a\u200bb",  # zero-width space
        "https://api.example.com/a\u2028b",  # line separator
        "https://api.exa\u00a0mple.com/",  # no-break space
    ],
)
def test_endpoint_with_whitespace_or_control_characters_is_refused(url):
    code, message = refusal(parse_endpoint, url)
    assert code == "endpoint_whitespace"
    assert "percent-encode it (a space is %20)" in message


@pytest.mark.parametrize(
    "url",
    [
        "https://api.example.com/café",
        "https://api.example.com/100%",
        "https://api.example.com/a%2",
        "https://api.example.com/a%zz",
        'https://api.example.com/a"b',
        "https://api.example.com/<script>",
        "https://api.example.com/a|b",
        "https://api.example.com/a^b",
        "https://api.example.com/a`b",
        "https://api.example.com/orders/{ordér}",
    ],
)
def test_endpoint_path_with_characters_to_percent_encode_is_refused(url):
    code, message = refusal(parse_endpoint, url)
    assert code == "endpoint_path"
    assert "must be percent-encoded" in message
    assert "'%' must start an escape such as %20" in message


@pytest.mark.parametrize(
    "url",
    [
        "https://api.example.com/orders/{order_id",
        "https://api.example.com/orders/order_id}",
        "https://api.example.com/orders/{{order_id}}",
        "https://api.example.com/orders/{a{b}}",
        "https://api.example.com/orders/}{",
    ],
)
def test_endpoint_with_unmatched_braces_is_refused(url):
    code, message = refusal(parse_endpoint, url)
    assert code == "endpoint_braces"
    assert "unmatched" in message
    assert "/orders/{order_id}" in message


@pytest.mark.parametrize("name", ["", "1st", "order-id", "a.b", "$id", "order:id"])
def test_placeholder_that_is_not_an_identifier_is_refused(name):
    code, message = refusal(parse_endpoint, f"https://api.example.com/orders/{{{name}}}")
    assert code == "endpoint_placeholder_name"
    assert f"“{{{name}}}”" in message
    assert "letters, digits and '_'" in message
    assert "{order_id}" in message


def test_placeholder_used_twice_is_one_placeholder():
    url = "https://api.example.com/anything/{id}/{action}/{id}"
    assert parse_endpoint(url) == ["id", "action"]
    rows = [("path", "id"), ("path", "action")]
    assert validators.parameter_row_errors(rows, parse_endpoint(url)) == {}


def test_placeholders_differing_only_in_case_are_distinct():
    assert parse_endpoint("https://api.example.com/{id}/{ID}") == ["id", "ID"]


_identifiers = st.from_regex(r"\A[A-Za-z_][A-Za-z0-9_]{0,15}\Z")


@given(st.lists(_identifiers, unique=True, max_size=5))
def test_endpoint_built_from_placeholders_gives_them_back(names):
    url = "https://api.example.com/v1" + "".join(f"/things/{{{n}}}" for n in names)
    assert parse_endpoint(url) == names


_url_text = st.one_of(
    st.text(),
    st.text().map(lambda rest: "https://" + rest),
    st.text().map(lambda rest: "https://api.example.com/" + rest),
    st.text(alphabet="htps:/@\\?#[]{}%.:-_aA0 \n").map(lambda rest: "https://" + rest),
)


@given(_url_text)
@example("https://a.com:²/x")
@example("https://[::1]:٤٤٣/x")
@example("https://[/x")
def test_endpoint_check_never_fails_with_anything_but_a_validation_error(url):
    try:
        placeholders = parse_endpoint(url)
    except ValidationError as error:
        assert error.code.startswith("endpoint_")
        return
    # Whatever is accepted is an https URL whose host and port are fixed text.
    assert url.lower().startswith("https://")
    authority = url[len("https://") :].split("/", 1)[0]
    assert "{" not in authority
    assert not any(ch.isspace() for ch in url)
    for name in placeholders:
        assert validators.PLACEHOLDER_NAME_RE.match(name)
        assert f"{{{name}}}" in url


# --- body schema --------------------------------------------------------------------

CANCEL_BODY = {
    "type": "object",
    "properties": {
        "reason": {"type": "string", "enum": ["too_expensive", "missing_features", "other"]},
        "feedback": {"type": "string", "description": "The customer's own words."},
    },
    "required": ["reason"],
}


@pytest.mark.parametrize(
    "schema",
    [
        {"type": "object"},
        CANCEL_BODY,
        {
            "type": "object",
            "properties": {"address": {"$ref": "#/$defs/Address"}},
            "$defs": {"Address": {"type": "object", "properties": {"city": {"type": "string"}}}},
        },
        {
            "type": "object",
            "properties": {"note": {"anyOf": [{"type": "string"}, {"type": "null"}]}},
        },
        {"type": "object", "additionalProperties": False, "properties": {"a": True}},
        {"type": "object", "properties": {"tags": {"type": "array", "items": {"type": "string"}}}},
    ],
    ids=["bare", "enum", "local-ref", "any-of-null", "boolean-subschema", "array"],
)
def test_valid_body_schema_is_accepted(schema):
    validate_body_schema(schema)


@pytest.mark.parametrize(
    "schema",
    [
        {"type": "object", "properties": {"nullable": {"type": "boolean"}}},
        {"type": "object", "properties": {"x": {"properties": {"nullable": {"type": "string"}}}}},
        {"type": "object", "required": ["nullable"], "properties": {"nullable": True}},
        {"type": "object", "patternProperties": {"nullable": {"type": "string"}}},
        {
            "type": "object",
            "$defs": {"nullable": {"type": "string"}},
            "properties": {"note": {"$ref": "#/$defs/nullable"}},
        },
        {"type": "object", "properties": {"opts": {"type": "object", "default": {"nullable": 1}}}},
        {"type": "object", "properties": {"flag": {"enum": [{"nullable": True}]}}},
    ],
    ids=["property", "nested-property", "required", "pattern", "defs-entry", "default", "enum"],
)
def test_nullable_as_a_name_or_as_data_is_accepted(schema):
    validate_body_schema(schema)


@pytest.mark.parametrize(
    "schema",
    [
        None,
        [],
        "object",
        {},
        {"properties": {"a": {"type": "string"}}},
        {"type": "array", "items": {"type": "string"}},
        {"type": "string"},
        {"type": ["object", "null"]},
        True,
    ],
)
def test_body_schema_without_an_object_at_its_root_is_refused(schema):
    code, message = refusal(validate_body_schema, schema)
    assert code == "body_schema_root"
    assert '"type": "object"' in message
    assert "wrap it in a property" in message


@pytest.mark.parametrize(
    ("schema", "where"),
    [
        (
            {"type": "object", "properties": {"age": {"type": "integer", "minimum": "ten"}}},
            "properties/age/minimum",
        ),
        ({"type": "object", "properties": {"a": {"type": "strng"}}}, "properties/a/type"),
        ({"type": "object", "required": "name"}, "required"),
        ({"type": "object", "properties": []}, "properties"),
    ],
)
def test_body_schema_that_breaks_the_meta_schema_is_refused_with_where(schema, where):
    code, message = refusal(validate_body_schema, schema)
    assert code == "body_schema_invalid"
    assert "Draft 2020-12" in message
    assert f"at {where}:" in message
    assert "Fix that keyword" in message


@pytest.mark.parametrize(
    "ref",
    [
        "https://example.com/schemas/address.json",
        "address.json#/Address",
        "/schemas/address",
        "urn:example:address",
    ],
)
def test_body_schema_with_an_external_ref_is_refused(ref):
    schema = {"type": "object", "properties": {"address": {"$ref": ref}}}
    code, message = refusal(validate_body_schema, schema)
    assert code == "body_schema_external_ref"
    assert ref in message
    assert "#/properties/address" in message
    assert "copy the referenced schema into $defs" in message


@pytest.mark.parametrize(
    ("schema", "pointer"),
    [
        ({"type": "object", "nullable": True}, "#"),
        (
            {"type": "object", "properties": {"note": {"type": "string", "nullable": True}}},
            "#/properties/note",
        ),
        (
            {"type": "object", "properties": {"note": {"type": "string", "nullable": False}}},
            "#/properties/note",
        ),
        ({"type": "object", "properties": {"note": {"nullable": None}}}, "#/properties/note"),
        (
            {"type": "object", "properties": {"ids": {"type": "array", "items": {"nullable": 1}}}},
            "#/properties/ids/items",
        ),
        (
            {
                "type": "object",
                "properties": {"a": {"anyOf": [{"type": "string"}, {"nullable": 1}]}},
            },
            "#/properties/a/anyOf/1",
        ),
        (
            {"type": "object", "$defs": {"Note": {"type": "string", "nullable": True}}},
            "#/$defs/Note",
        ),
        (
            {"type": "object", "properties": {"a/b": {"nullable": True}}},
            "#/properties/a~1b",
        ),
    ],
)
def test_openapi_nullable_keyword_is_refused_with_where_and_the_json_schema_spelling(
    schema, pointer
):
    code, message = refusal(validate_body_schema, schema)
    assert code == "body_schema_nullable"
    assert f"at {pointer}," in message
    assert "OpenAPI 3.0" in message
    assert '{"anyOf": [{"type": "string"}, {"type": "null"}]}' in message


def _nested_object_schema(levels: int) -> dict:
    schema = {"type": "object"}
    node = schema
    for _ in range(levels):
        node["properties"] = {"child": {"type": "object"}}
        node = node["properties"]["child"]
    return schema


def test_deeply_nested_body_schema_is_refused_instead_of_crashing():
    code, message = refusal(validate_body_schema, _nested_object_schema(500))
    assert code == "body_schema_too_deep"
    assert "more than 100 levels" in message
    assert "$defs" in message


def test_body_schema_nested_up_to_the_limit_is_accepted():
    validate_body_schema(_nested_object_schema(49))  # 99 levels of JSON


# --- headers and static values ------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    ["Authorization", "X-Customer-Id", "x-api-key", "Accept", "If-None-Match", "X_Odd.Name~1"],
)
def test_header_name_that_is_an_http_token_is_accepted(name):
    validate_header_name(name)


@pytest.mark.parametrize(
    "name",
    [
        "",
        "X Customer",
        "X-Customer:",
        "Ünicode",
        "(comment)",
        "a/b",
        "X-Id\n",
        "X-Id\r\nHost: evil.example",
        "X-Id\x00",
    ],
)
def test_header_name_that_is_not_an_http_token_is_refused(name):
    code, message = refusal(validate_header_name, name)
    assert code == "invalid_header_name"
    assert "letters, digits and '-'" in message
    assert "X-Customer-Id" in message


@pytest.mark.parametrize(
    "name",
    [
        "Host",
        "host",
        "Content-Length",
        "TRANSFER-ENCODING",
        "Connection",
        "TE",
        "Upgrade",
        "Trailer",
        "Keep-Alive",
        "Expect",
        "Proxy-Authorization",
        "proxy-connection",
    ],
)
def test_header_the_http_client_owns_is_refused(name):
    code, message = refusal(validate_header_name, name)
    assert code == "forbidden_header"
    assert name in message
    assert "remove this row" in message


@pytest.mark.parametrize(
    "value",
    [
        "",
        "application/json",
        "Bearer {{global.STRIPE_KEY}}",
        "Bearer {{ global.API_KEY }}",
        "{{global.a}}-{{global.B_2}}",
        '{"status": "open"}',
        "tab\tseparated",
        "{single braces}",
    ],
)
def test_static_value_is_accepted(value):
    validate_static_value(value)


@pytest.mark.parametrize(
    "value", ["a\rb", "a\nb", "a\x00b", "Bearer x\r\nX-Evil: 1", "trailing newline\n"]
)
def test_static_value_with_a_line_break_or_nul_is_refused(value):
    code, message = refusal(validate_static_value, value)
    assert code == "value_control_character"
    assert "remove it" in message


@pytest.mark.parametrize(
    "value",
    ["{{global.}}", "{{global.1KEY}}", "{{global.KEY-NAME}}", "Bearer {{global.clé}}"],
)
def test_global_reference_with_a_bad_name_is_refused_with_an_example(value):
    code, message = refusal(validate_static_value, value)
    assert code == "invalid_global_reference"
    assert "letters, digits and '_'" in message
    assert "{{global.STRIPE_KEY}}" in message


@pytest.mark.parametrize(
    "value",
    [
        "{{secret.KEY}}",
        "{{global.API KEY}}",
        "{{ global }}",
        "Bearer {{global.KEY}",
        "{{",
    ],
)
def test_template_braces_that_are_not_a_global_reference_are_refused(value):
    code, message = refusal(validate_static_value, value)
    assert code == "invalid_global_reference"
    assert "Write references as {{global.NAME}}" in message


@pytest.mark.parametrize("value", ['{"filter": {"id": 1}}', "Bearer {global.KEY}}", "}}"])
def test_closing_braces_alone_are_plain_text(value):
    validate_static_value(value)


def test_global_references_are_listed_in_order():
    value = "{{global.USER}}:{{ global.PASSWORD }} {{global.USER}}"
    assert global_references(value) == ["USER", "PASSWORD", "USER"]


# --- path rows ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("placeholders", "keys"),
    [([], []), (["order_id"], []), (["order_id", "item_id"], ["item_id", "order_id"])],
)
def test_path_rows_naming_endpoint_placeholders_are_accepted(placeholders, keys):
    validate_path_rows(placeholders, keys)


@pytest.mark.parametrize(
    ("placeholders", "key"), [([], "order_id"), (["order_id"], "Order_Id"), (["id"], "item_id")]
)
def test_path_row_without_its_placeholder_is_refused(placeholders, key):
    code, message = refusal(validate_path_rows, placeholders, [key])
    assert code == "path_parameter_not_in_endpoint"
    assert f"“{key}” has no {{{key}}} in the endpoint" in message
    assert "make it a query parameter" in message


# --- strict JSON, references, query keys, multipart (one set of rules for all writers) ----


@pytest.mark.parametrize("text", ['{"score": NaN}', '{"a": Infinity}', '{"a": -Infinity}'])
def test_pasted_json_with_nan_or_infinity_is_refused(text):
    from actions.validators import parse_json

    code, message = refusal(lambda t: parse_json(t, subject="The sample"), text)
    assert code == "json_not_finite"
    assert "use a number or null" in message


def test_pasted_json_nested_past_the_parsers_limit_is_refused_not_a_crash():
    from actions.validators import parse_json

    code, _ = refusal(lambda t: parse_json(t, subject="The sample"), "[" * 5000 + "]" * 5000)
    assert code == "json_too_deep"


def test_a_decoded_value_with_an_infinite_number_is_refused():
    from actions.validators import validate_storable_json

    validate_storable_json({"a": [1, 2.5, {"b": None}]})
    code, _ = refusal(validate_storable_json, {"a": [{"b": float("inf")}]})
    assert code == "json_not_finite"


def test_a_local_reference_that_points_nowhere_is_refused():
    schema = {
        "type": "object",
        "properties": {"address": {"$ref": "#/definitions/Address"}},
    }
    code, message = refusal(validate_body_schema, schema)
    assert code == "body_schema_dangling_ref"
    assert "#/definitions/Address" in message
    schema["$defs"] = {"Address": {"type": "object"}}
    schema["properties"]["address"]["$ref"] = "#/$defs/Address"
    validate_body_schema(schema)


@pytest.mark.parametrize("key", ["page_size", "filter[status]", "$top", "page.size", "a-b~c:d"])
def test_usual_query_parameter_names_are_accepted(key):
    from actions.validators import validate_query_key

    validate_query_key(key)


@pytest.mark.parametrize("key", ["a b", "a&b", "a=b", "a#b", "a?b", "", "x" * 201, "é"])
def test_query_parameter_names_that_would_break_the_query_string_are_refused(key):
    from actions.validators import validate_query_key

    code, message = refusal(validate_query_key, key)
    assert code == "invalid_query_key"
    assert "filter[status]" in message


def test_a_multipart_body_takes_flat_fields_and_lists_of_them():
    from actions.validators import validate_multipart_body

    validate_multipart_body(
        {
            "type": "object",
            "properties": {
                "note": {"type": "string"},
                "file": {"type": "string", "contentEncoding": "base64"},
                "count": {"type": "integer"},
                "labels": {"type": "array", "items": {"type": "string"}},
            },
        }
    )
    code, message = refusal(
        validate_multipart_body,
        {"type": "object", "properties": {"address": {"type": "object"}}},
    )
    assert code == "multipart_nested_field"
    assert "body format: JSON" in message


# --- raw (binary) bodies ------------------------------------------------------------


def test_the_raw_body_schema_is_a_base64_string_with_its_media_type():
    schema = validators.binary_body_schema("image/png", "The logo.")
    assert schema == {
        "type": "string",
        "contentEncoding": "base64",
        "contentMediaType": "image/png",
        "description": "The logo. (The request body: the raw bytes, base64-encoded.)",
    }
    validators.validate_binary_body(schema)
    validators.validate_binary_body({"type": "string", "contentEncoding": "base64"})


@pytest.mark.parametrize(
    ("schema", "code"),
    [
        ({"type": "object", "properties": {}}, "binary_body_schema"),
        ({"type": "string"}, "binary_body_schema"),
        ({"type": "string", "contentEncoding": "base32"}, "binary_body_schema"),
        (["not", "a", "schema"], "binary_body_schema"),
        (
            {"type": "string", "contentEncoding": "base64", "contentMediaType": "image/*"},
            "binary_body_media_type",
        ),
        (
            {"type": "string", "contentEncoding": "base64", "contentMediaType": "text/csv; q=1"},
            "binary_body_media_type",
        ),
        (
            {"type": "string", "contentEncoding": "base64", "maxLength": -1},
            "body_schema_invalid",
        ),
    ],
)
def test_a_raw_body_schema_that_is_not_a_base64_string_with_a_media_type_is_refused(schema, code):
    assert refusal(validators.validate_binary_body, schema)[0] == code
