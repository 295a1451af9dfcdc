"""load_document: untrusted bytes -> a plain dict, or failed_to_parse_spec saying why."""

import json
import os
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from importer import load
from importer.drafts import FAILED_TO_PARSE_SPEC, ImportFailed
from importer.load import MAX_DEPTH, load_document

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "specs"

# What load_document makes of each hostile fixture: None when it loads (validation is
# test_validate's), else a phrase its message must hold.
LOAD_OUTCOMES = {
    "anchor-ref.yaml": None,
    "anchors-and-merge-keys.yaml": None,
    "billion-laughs.yaml": "uses YAML aliases that expand to more than 100,000 nodes",
    "binary-tag.yaml": "uses the YAML tag `!!binary`",
    "comments-only.yaml": "holds no document (only comments)",
    "complex-key.yaml": "has a mapping key that is a list or a mapping (line 2)",
    "control-char.yaml": "is not valid YAML: control characters are not allowed on line 2",
    "custom-tag.yaml": "uses the YAML tag `!Ref`",
    "dangling-ref.json": None,
    "deep-10000.json": f"is nested more than {MAX_DEPTH} levels deep",
    "deep-10000.yaml": f"is nested more than {MAX_DEPTH} levels deep (line 2)",
    "deep-150.json": None,  # under orjson's 1,024 levels: validate_document refuses it
    "deep-block.yaml": f"is nested more than {MAX_DEPTH} levels deep (line 102)",
    "duplicate-keys.yaml": "has the key `summary` twice in one mapping (line 10)",
    "empty.json": "empty.json is empty",
    "external-ref-file.yaml": None,
    "external-ref-http.yaml": None,
    "external-ref-https.json": None,
    "external-ref-network-path.yaml": None,
    "external-ref-relative.yaml": None,
    "garbage.bin": "is a binary file, not text (it has NUL bytes)",
    "garbage.txt": "has the extension .txt, and holds neither JSON nor YAML",
    "infinity.yaml": "holds `.inf`, which is not a JSON number (line 2)",
    "int-response-code.yaml": None,
    "invalid-structure.yaml": None,
    "invalid-utf8.yaml": "is not UTF-8 text: byte 0xe9 on line 3 is not valid UTF-8",
    "json-in-yaml-file.yml": None,
    "json-unknown-extension.json.unprocessed": None,
    "lone-surrogate.json": "is not valid JSON: no low surrogate in string at line 1",
    "multi-document.yaml": "expected a single document in the stream, but found another",
    "nan.json": "NaN and Infinity are not JSON numbers at line 1, column 27",
    "no-version.yaml": None,
    "nul-bytes.json": "is a binary file, not text (it has NUL bytes)",
    "one-byte-over.yaml": None,  # see test_a_file_one_byte_over_the_limit_is_refused
    "openapi-3.1-webhooks-only.yaml": None,
    "openapi-3.2.yaml": None,
    "python-object-apply.yaml": "uses the YAML tag `!!python/object/apply:os.system`",
    "quadratic-blowup.yaml": "uses YAML aliases that expand to more than 100,000 nodes",
    "recursive-alias.yaml": "has a YAML alias that contains itself (a recursive alias)",
    "recursive-schema-and-data-refs.json": None,
    "ref-cycle.json": None,
    "ref-to-missing-path.yaml": None,
    "ref-to-path-item.yaml": None,
    "swagger-2.0.json": None,
    "swagger-unquoted.yaml": None,
    "top-level-array.json": "The top level of top-level-array.json is a list, not a mapping",
    "top-level-string.yaml": "is a string, not a mapping",
    "utf16-bom.json": "is UTF-16 text (it starts with a byte order mark)",
    "utf16-no-bom.json": "looks like UTF-16 text without a byte order mark",
    "utf32-bom.yaml": "is UTF-32 text (it starts with a byte order mark)",
    "whitespace-only.yaml": "holds only whitespace",
    "yaml-named.json": "yaml-named.json holds YAML, not JSON",
}


def load_fixture(name: str, **kwargs) -> dict:
    return load_document((FIXTURES / name).read_bytes(), name, **kwargs)


def failure(data: bytes, filename: str, **kwargs) -> ImportFailed:
    with pytest.raises(ImportFailed) as caught:
        load_document(data, filename, **kwargs)
    assert caught.value.code == FAILED_TO_PARSE_SPEC
    assert len(caught.value.problems) == 1
    return caught.value


def test_the_hostile_corpus_is_listed_here_file_by_file():
    assert sorted(p.name for p in FIXTURES.iterdir()) == sorted(LOAD_OUTCOMES)
    assert len(LOAD_OUTCOMES) >= 25


@pytest.mark.parametrize("name", sorted(LOAD_OUTCOMES))
def test_each_hostile_file_loads_or_fails_with_a_message_that_says_why(name):
    started = time.perf_counter()
    expected = LOAD_OUTCOMES[name]
    if expected is None:
        assert isinstance(load_fixture(name), dict)
    else:
        with pytest.raises(ImportFailed) as caught:
            load_fixture(name)
        problem = caught.value.problems[0]
        assert problem.code == FAILED_TO_PARSE_SPEC
        assert expected in problem.message
        assert problem.fix
    assert time.perf_counter() - started < 2


def test_a_billion_laughs_fails_in_milliseconds_without_building_the_tree():
    data = (FIXTURES / "billion-laughs.yaml").read_bytes()
    assert len(data) < 1024
    tracemalloc.start()
    started = time.perf_counter()
    try:
        failure(data, "bomb.yaml")
        elapsed = time.perf_counter() - started
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert elapsed < 0.25
    assert peak < 2 * 1024 * 1024  # the expansion would be billions of nodes


def test_aliases_within_the_budget_load_expanded_and_merge_keys_keep_their_meaning():
    document = load_fixture("anchors-and-merge-keys.yaml")
    pets = document["paths"]["/pets"]["get"]
    cats = document["paths"]["/cats"]["get"]
    assert (
        cats["parameters"]
        == pets["parameters"]
        == [{"name": "limit", "in": "query", "schema": {"type": "integer", "maximum": 100}}]
    )
    assert pets["responses"]["401"] == {"description": "Unauthorized"}
    assert pets["responses"]["500"] == {"description": "Server error"}
    # a key of the mapping itself overrides a merged one; that is not a duplicate
    assert cats["responses"]["500"] == {"description": "Cats override the merged 500"}


def test_the_alias_budget_grows_with_the_file(monkeypatch):
    # 300 aliases of a 300-item list: 90,000 nodes, within the 100,000 floor...
    doc = "a: &a [" + ",".join(["x"] * 300) + "]\nb: [" + ",".join(["*a"] * 300) + "]\n"
    assert len(load_document(doc.encode(), "ok.yaml")["b"]) == 300
    # ...and refused once the floor is lower than the expansion and the file is small.
    monkeypatch.setattr(load, "ALIAS_NODE_FLOOR", 10_000)
    assert "expand to more than 10,000 nodes" in str(failure(doc.encode(), "bomb.yaml"))


def test_non_string_keys_and_timestamps_stay_as_written():
    document = load_document(
        b"responses:\n  200: {description: ok}\n  default: {description: d}\n"
        b"on: 1\n0x1F: hex\ncreated: 2024-01-31\n",
        "spec.yaml",
    )
    assert list(document["responses"]) == ["200", "default"]
    assert document["on"] == 1
    assert document["0x1F"] == "hex"
    assert document["created"] == "2024-01-31"
    assert json.loads(json.dumps(document)) == document  # plain JSON data only


def test_int_response_codes_become_strings_in_a_real_spec():
    responses = load_fixture("int-response-code.yaml")["paths"]["/pets"]["get"]["responses"]
    assert responses == {"200": {"description": "The pets"}}


def test_a_file_one_byte_over_the_limit_is_refused():
    data = (FIXTURES / "one-byte-over.yaml").read_bytes()
    assert load_document(data, "spec.yaml", max_bytes=len(data))["openapi"] == "3.0.3"
    error = failure(data, "spec.yaml", max_bytes=len(data) - 1)
    assert f"is {len(data)} bytes, over the limit of {len(data) - 1} bytes" in str(error)
    assert "IMPORT_MAX_BYTES" in error.problems[0].fix


def test_the_limit_defaults_to_the_import_max_bytes_setting(settings):
    settings.IMPORT_MAX_BYTES = 100
    data = b"openapi: 3.1.0\ninfo: {title: t, version: '1'}\n" + b"#" * 100
    assert "over the limit of 100 bytes" in str(failure(data, "spec.yaml"))
    settings.IMPORT_MAX_BYTES = 1000
    assert load_document(data, "spec.yaml")["openapi"] == "3.1.0"


def test_the_import_max_bytes_setting_is_50_mib_by_default():
    from opencx import settings as project_settings

    assert project_settings.IMPORT_MAX_BYTES == 50 * 1024 * 1024


def test_a_utf8_byte_order_mark_is_dropped():
    assert load_document(b'\xef\xbb\xbf{"openapi": "3.1.0"}', "spec.json") == {"openapi": "3.1.0"}
    assert load_document(b"\xef\xbb\xbfopenapi: 3.1.0\n", "spec.yaml") == {"openapi": "3.1.0"}


def test_json_in_a_yaml_file_is_yaml_and_loads():
    assert load_document(b'{"openapi": "3.1.0"}', "spec.yaml") == {"openapi": "3.1.0"}
    # YAML's laxer flow style too, which is not JSON
    assert load_document(b"{openapi: 3.1.0, paths: {}}", "spec.yml") == {
        "openapi": "3.1.0",
        "paths": {},
    }


def test_broken_json_in_a_json_file_reports_the_json_error_not_a_format_mismatch():
    error = failure(b'{"openapi": "3.1.0",}', "spec.json")
    assert "spec.json is not valid JSON: trailing comma is not allowed at line 1" in str(error)


def test_the_extension_is_read_case_blind_and_from_the_last_suffix_only():
    assert load_document(b'{"openapi": "3.1.0"}', "dir/Spec.JSON") == {"openapi": "3.1.0"}
    assert "holds YAML, not JSON" in str(failure(b"openapi: 3.1.0\n", "spec.yaml.json"))


def test_an_unknown_extension_loads_json_or_a_yaml_mapping():
    assert load_document(b'{"openapi": "3.1.0"}', "") == {"openapi": "3.1.0"}
    assert load_document(b"openapi: 3.1.0\n", "spec.txt") == {"openapi": "3.1.0"}
    assert "has no extension, and holds neither JSON nor YAML" in str(
        failure(b"- just\n- a list\n", "spec")
    )


def test_a_json_number_past_64_bits_still_loads():
    assert load_document(b'{"n": 123456789012345678901234567890}', "x.json")["n"] > 10**29


@pytest.mark.parametrize(
    ("data", "filename"),
    [
        (b"key: [" + b"SECRET-CANARY " * 2000 + b"\n", "broken.yaml"),
        (b'{"key": "' + b"SECRET-CANARY " * 2000 + b'", }', "broken.json"),
        (
            b"a: 1\n" + b"SECRET-CANARY" * 500 + b": 1\n" + b"SECRET-CANARY" * 500 + b": 2\n",
            "dup.yaml",
        ),
        (b"a: !" + b"SECRET-CANARY" * 500 + b" x\n", "tag.yaml"),
        (b"SECRET-CANARY " * 2000, "spec"),
    ],
)
def test_errors_never_echo_more_than_a_short_excerpt_of_the_file(data, filename):
    message = str(failure(data, filename))
    assert len(message) < 500
    assert message.count("SECRET-CANARY") <= 7  # at most an 80-character excerpt


def test_a_long_or_strange_filename_is_shortened_in_messages():
    error = failure(b"", "dir/" + "x" * 500 + "\n\x1b[31m.json")
    assert len(error.problems[0].message) < 150
    assert "\x1b" not in error.problems[0].message


@pytest.mark.parametrize("data", [None, "openapi: 3.1.0", 42, ["a"]])
def test_input_that_is_not_bytes_is_refused_not_crashed(data):
    assert failure(data, "spec.yaml").problems[0].message == "spec.yaml is not a file upload"


def test_bytearray_and_memoryview_are_bytes_too():
    assert load_document(bytearray(b"openapi: 3.1.0"), "a.yaml") == {"openapi": "3.1.0"}
    assert load_document(memoryview(b'{"openapi": "3.1.0"}'), "a.json") == {"openapi": "3.1.0"}


def test_an_unexpected_error_inside_becomes_failed_to_parse_spec(monkeypatch, caplog):
    def explode(data):
        raise RuntimeError("a bug")

    monkeypatch.setattr(load, "_parse_json", explode)
    error = failure(b'{"openapi": "3.1.0"}', "spec.json")
    assert error.problems[0].message == "spec.json could not be read as JSON or YAML"
    assert "Loading spec.json failed unexpectedly" in caplog.text  # logged, not hidden


def test_a_memory_error_becomes_failed_to_parse_spec(monkeypatch):
    def exhaust(text, size):
        raise MemoryError

    monkeypatch.setattr(load, "_parse_yaml", exhaust)
    assert "needs too much memory" in str(failure(b"openapi: 3.1.0", "spec.yaml"))


def _mutations(seed_files):
    """Deterministic damage to real fixtures: cut, duplicate, flip and splice bytes."""
    import random

    rng = random.Random(20261122)
    for name in seed_files:
        data = (FIXTURES / name).read_bytes()
        for _ in range(40):
            mutated = bytearray(data)
            for _ in range(rng.randint(1, 4)):
                at = rng.randrange(max(1, len(mutated)))
                choice = rng.randrange(4)
                if choice == 0:
                    del mutated[at : at + rng.randint(1, 20)]
                elif choice == 1:
                    mutated[at:at] = mutated[at : at + rng.randint(1, 40)]
                elif choice == 2 and mutated:
                    mutated[at % len(mutated)] = rng.randrange(256)
                else:
                    mutated[at:at] = rng.choice([b"&a ", b"*a", b"{", b"[", b"\n  ", b":", b"\\u"])
            yield name, bytes(mutated)


def test_damaged_specs_load_or_fail_cleanly_never_crash():
    seeds = ["anchors-and-merge-keys.yaml", "swagger-2.0.json", "billion-laughs.yaml"]
    outcomes = {"loaded": 0, "failed": 0}
    for name, data in _mutations(seeds):
        try:
            assert isinstance(load_document(data, name), dict)
            outcomes["loaded"] += 1
        except ImportFailed as error:
            assert error.code == FAILED_TO_PARSE_SPEC
            outcomes["failed"] += 1
    assert outcomes["loaded"] and outcomes["failed"]  # both paths were exercised


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    data=st.one_of(
        st.binary(max_size=300),
        st.text(max_size=300).map(lambda text: text.encode("utf-8", "surrogatepass")),
        st.recursive(
            st.none() | st.booleans() | st.integers() | st.text(max_size=10),
            lambda children: (
                st.lists(children, max_size=4)
                | st.dictionaries(st.text(max_size=5), children, max_size=4)
            ),
            max_leaves=20,
        ).map(lambda value: json.dumps(value).encode()),
    ),
    filename=st.sampled_from(["a.json", "a.yaml", "a.yml", "a", "a.txt"]),
)
def test_any_bytes_load_to_a_dict_or_fail_with_failed_to_parse_spec(data, filename):
    try:
        document = load_document(data, filename)
    except ImportFailed as error:
        assert error.code == FAILED_TO_PARSE_SPEC
    else:
        assert isinstance(document, dict)
        json.dumps(document)  # plain JSON data, whatever the input


_WITHOUT_LIBYAML = """
import json, sys
sys.modules["yaml._yaml"] = None  # as if PyYAML had been built without libyaml
import django
django.setup()
from importer import load
from importer.drafts import ImportFailed
outcomes = {"base": load._BaseLoader.__name__}
for name in sys.argv[1:]:
    try:
        outcomes[name] = sorted(load.load_document(open(name, "rb").read(), name, max_bytes=10**6))
    except ImportFailed as error:
        outcomes[name] = error.problems[0].message
print(json.dumps(outcomes))
"""


def test_the_rules_hold_with_the_pure_python_yaml_parser_too():
    names = [
        "billion-laughs.yaml", "deep-10000.yaml", "duplicate-keys.yaml",
        "anchors-and-merge-keys.yaml", "python-object-apply.yaml", "recursive-alias.yaml",
    ]  # fmt: skip
    result = subprocess.run(
        [sys.executable, "-c", _WITHOUT_LIBYAML, *names],
        cwd=FIXTURES,
        env={**os.environ, "PYTHONPATH": str(FIXTURES.parents[2])},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    outcomes = json.loads(result.stdout.strip().splitlines()[-1])
    assert outcomes.pop("base") == "SafeLoader"
    assert outcomes.pop("anchors-and-merge-keys.yaml") == [
        "info", "openapi", "paths", "servers", "x-common-responses",
    ]  # fmt: skip
    for name, message in outcomes.items():
        assert LOAD_OUTCOMES[name] in message
