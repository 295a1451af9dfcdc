"""Step 1 of an import: the uploaded bytes -> the OpenAPI document, a plain dict.

The bytes are untrusted. Whatever they hold, `load_document` returns a dict of plain
JSON data (dict, list, str, int, float, bool, None; every mapping key a string) or
raises ImportFailed with one `failed_to_parse_spec` Problem that says what is wrong
and never quotes more than a short key or tag of the file. In order:

1. Size: over `max_bytes` (default settings.IMPORT_MAX_BYTES) is refused unread.
2. Encoding: a UTF-16/32 byte order mark, a NUL byte (binary, or UTF-16 without a
   BOM) or bytes that are not UTF-8 are refused; a UTF-8 BOM is dropped.
3. Format, by extension and content:

   ========  ===============================  =======================================
   name      content                          result
   ========  ===============================  =======================================
   .json     JSON                             JSON (orjson)
   .json     YAML (not JSON)                  refused: "holds YAML, not JSON"
   .yaml     YAML, or JSON (JSON is YAML)     YAML (JSON text takes the fast JSON path)
   other     JSON or a YAML mapping           that format
   other     anything else                    refused: "neither JSON nor YAML"
   ========  ===============================  =======================================

4. JSON: orjson, which refuses NaN/Infinity, lone surrogates and nesting past 1,024
   (validate_document then holds the document to MAX_DEPTH). Duplicate keys: the
   last wins, as in every JSON parser.
5. YAML: the safe loader (libyaml's when installed), with:

   - a depth pre-scan over the parser's events that stops at MAX_DEPTH, before
     libyaml's nesting cost (quadratic in depth: 20,000 `[` take a second) adds up;
   - bounded aliases: when the file has any, the composed node graph is measured
     with memoization (each distinct node once, so a "billion laughs" costs
     microseconds) and refused when it would expand to more than
     max(ALIAS_NODE_FLOOR, ALIAS_NODES_PER_BYTE x file size) nodes, deeper than
     MAX_DEPTH, or into itself (a recursive alias). An alias-free document is at
     most ~0.5 node per byte, so the budget never refuses one;
   - duplicate keys refused (naming the key and its line); `<<` merge keys keep their
     meaning (a merged key may be overridden once);
   - non-string keys kept as written: `200:` -> "200", `on:` -> "on";
   - timestamps kept as written (`2024-01-31` stays a string); `!!binary`, `!!set`,
     `!!omap`, `!!pairs`, `!!python/...`, unknown tags, `.nan` and `.inf` refused:
     none is JSON data.

6. The top level must be a mapping.

Example::

    >>> load_document(b"openapi: 3.1.0\\npaths: {}\\n", "api.yaml")
    {'openapi': '3.1.0', 'paths': {}}
    >>> load_document(b'{"openapi": "3.1.0"}', "api.yml")  # JSON is YAML
    {'openapi': '3.1.0'}
    >>> load_document(b"openapi: 3.1.0", "api.json")
    ImportFailed: failed_to_parse_spec: api.json holds YAML, not JSON...
"""

import logging
import math
from pathlib import PurePath

import orjson
import yaml
from django.conf import settings
from yaml.constructor import ConstructorError, SafeConstructor
from yaml.nodes import MappingNode, ScalarNode, SequenceNode

from importer.drafts import FAILED_TO_PARSE_SPEC, ImportFailed, Problem

logger = logging.getLogger(__name__)

# Deepest nesting accepted anywhere in a document. Real specs reach 24 (the corpus's
# deepest); Python's recursion limit (1,000) is far above, so later steps that
# recurse over the document stay safe.
MAX_DEPTH = 100
# A YAML document may expand its aliases to at most this many nodes...
ALIAS_NODE_FLOOR = 100_000
# ...or this many per byte of the file, whichever is more.
ALIAS_NODES_PER_BYTE = 1

JSON_SUFFIXES = frozenset({".json"})
YAML_SUFFIXES = frozenset({".yaml", ".yml"})

_BOMS = (  # longest first: a UTF-32 LE mark starts with the UTF-16 LE one
    (b"\xff\xfe\x00\x00", "UTF-32"),
    (b"\x00\x00\xfe\xff", "UTF-32"),
    (b"\xff\xfe", "UTF-16"),
    (b"\xfe\xff", "UTF-16"),
)
_UTF8_BOM = b"\xef\xbb\xbf"
_SHOWN = 80  # at most this many characters of a key, tag or name in a message

_FIX_UTF8 = "Save the file as UTF-8 text and upload it again."
_FIX_JSON = "Fix the JSON at that position (`python -m json.tool FILE` shows it too)."
_FIX_YAML = "Fix the YAML at that line (a YAML linter such as `yamllint` shows it too)."
_FIX_UPLOAD = "Upload the OpenAPI document itself, as a .json, .yaml or .yml file."
_FIX_TOP = (
    "An OpenAPI document is a JSON object (a YAML mapping) with an `openapi` or "
    "`swagger` field at its top level."
)
_FIX_DEPTH = "Flatten it: move nested schemas to components and point at them with $ref."


class _Refused(Exception):
    """A loader rule refused the YAML; `line` is 1-based, 0 when unknown."""

    def __init__(self, message: str, fix: str, line: int = 0) -> None:
        super().__init__(message)
        self.message, self.fix, self.line = message, fix, line


def load_document(data: bytes, filename: str, *, max_bytes: int | None = None) -> dict:
    """Decode an uploaded OpenAPI document (see the module docstring for the rules)."""
    name = _display_name(filename)
    try:
        return _load(data, filename, name, max_bytes)
    except ImportFailed:
        raise
    except RecursionError:
        raise _failed(f"{name} is nested too deeply to read", _FIX_DEPTH) from None
    except MemoryError:
        raise _failed(f"{name} needs too much memory to read", _FIX_UPLOAD) from None
    except Exception:
        logger.exception("Loading %s failed unexpectedly", name)
        raise _failed(f"{name} could not be read as JSON or YAML", _FIX_UPLOAD) from None


def _load(data: bytes, filename: str, name: str, max_bytes: int | None) -> dict:
    if not isinstance(data, bytes | bytearray | memoryview):
        raise _failed(f"{name} is not a file upload", _FIX_UPLOAD)
    data = bytes(data)
    limit = settings.IMPORT_MAX_BYTES if max_bytes is None else max_bytes
    if len(data) > limit:
        raise _failed(
            f"{name} is {len(data):,} bytes, over the limit of {limit:,} bytes "
            f"({_bytes(limit)}) for a spec",
            "Remove what the import does not need (large examples, unused paths), or ask "
            "your administrator to raise IMPORT_MAX_BYTES.",
        )
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            message = f"{name} is {encoding} text (it starts with a byte order mark)"
            raise _failed(message, _FIX_UTF8)
    if data.startswith(_UTF8_BOM):
        data = data[len(_UTF8_BOM) :]
    if b"\x00" in data:
        raise _failed(_binary_message(name, data), _FIX_UPLOAD)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        line = data.count(b"\n", 0, error.start) + 1
        raise _failed(
            f"{name} is not UTF-8 text: byte 0x{data[error.start]:02x} on line {line} "
            "is not valid UTF-8",
            _FIX_UTF8,
        ) from None
    if not text.strip():
        raise _failed(
            f"{name} is empty" if not text else f"{name} holds only whitespace",
            "Upload a file that holds an OpenAPI document.",
        )

    suffix = PurePath(filename or "").suffix.lower()
    looks_like_json = text.lstrip()[:1] in ("{", "[")
    if suffix in JSON_SUFFIXES:
        document = _load_json_file(data, text, name, looks_like_json)
    elif suffix in YAML_SUFFIXES:
        document = _load_yaml_file(data, text, name, looks_like_json)
    else:
        document = _load_unknown(data, text, name, looks_like_json, suffix)
    if not isinstance(document, dict):
        if document is None:
            raise _failed(f"{name} holds no document (only comments)", _FIX_TOP)
        raise _failed(f"The top level of {name} is {_kind_of(document)}, not a mapping", _FIX_TOP)
    return document


def _load_json_file(data: bytes, text: str, name: str, looks_like_json: bool):
    try:
        return _parse_json(data)
    except orjson.JSONDecodeError as error:
        json_error = error
    if not looks_like_json:
        # Not even shaped like JSON: is it YAML under the wrong name?
        try:
            as_yaml = _parse_yaml(text, len(data))
        except (yaml.YAMLError, _Refused):
            as_yaml = None
        if isinstance(as_yaml, dict):
            raise _failed(
                f"{name} holds YAML, not JSON",
                "Rename the file to .yaml (or .yml), or convert it to JSON.",
            )
    raise _json_failure(name, json_error, text)


def _load_yaml_file(data: bytes, text: str, name: str, looks_like_json: bool):
    if looks_like_json:
        # JSON is YAML: take the fast path, and fall back to YAML's laxer flow style.
        try:
            return _parse_json(data)
        except orjson.JSONDecodeError:
            pass
    try:
        return _parse_yaml(text, len(data))
    except yaml.YAMLError as error:
        raise _yaml_failure(name, error, text) from None
    except _Refused as refused:
        raise _refusal(name, refused) from None


def _load_unknown(data: bytes, text: str, name: str, looks_like_json: bool, suffix: str):
    detail = ""
    if looks_like_json:
        try:
            return _parse_json(data)
        except orjson.JSONDecodeError as error:
            detail = _json_failure(name, error, text).problems[0].message
    try:
        document = _parse_yaml(text, len(data))
    except _Refused as refused:
        raise _refusal(name, refused) from None
    except yaml.YAMLError as error:
        document = None
        detail = detail or _yaml_failure(name, error, text).problems[0].message
    if isinstance(document, dict):
        return document
    extension = f"the extension {suffix[:_SHOWN]}" if suffix else "no extension"
    raise _failed(
        f"{name} has {extension}, and holds neither JSON nor YAML"
        + (f" ({detail})" if detail else ""),
        _FIX_UPLOAD,
    )


def _parse_json(data: bytes):
    return orjson.loads(data)


def _json_failure(name: str, error: orjson.JSONDecodeError, text: str) -> ImportFailed:
    what = error.msg
    if "depth" in what or "recursion" in what:
        return _failed(f"{name} is nested more than {MAX_DEPTH} levels deep", _FIX_DEPTH)
    if text[error.pos : error.pos + 9].lstrip("-").startswith(("NaN", "Infinity")):
        what = "NaN and Infinity are not JSON numbers"
    return _failed(
        f"{name} is not valid JSON: {what[:_SHOWN]} at line {error.lineno}, column {error.colno}",
        _FIX_JSON,
    )


# --- YAML -----------------------------------------------------------------------------

_MERGE_TAG = "tag:yaml.org,2002:merge"
_BaseLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _SpecLoader(_BaseLoader):
    """The safe loader, with the rules of the module docstring for keys and tags."""

    def construct_mapping(self, node, deep=False):
        if not isinstance(node, MappingNode):
            raise ConstructorError(None, None, "expected a mapping", node.start_mark)
        pairs = node.value
        merged = 0
        if any(key.tag == _MERGE_TAG for key, _ in pairs):
            own = sum(1 for key, _ in pairs if key.tag != _MERGE_TAG)
            self.flatten_mapping(node)  # node.value = merged pairs, then its own pairs
            pairs = node.value
            merged = len(pairs) - own
        mapping: dict = {}
        own_keys: set[str] = set()
        for index, (key_node, value_node) in enumerate(pairs):
            key = self._key(key_node)
            if index >= merged:  # its own key may override a merged one, not a sibling
                if key in own_keys:
                    raise _Refused(
                        f"has the key `{key[:_SHOWN]}` twice in one mapping",
                        "Remove or rename one of them: YAML readers silently keep only "
                        "the last, which drops data.",
                        key_node.start_mark.line + 1,
                    )
                own_keys.add(key)
            mapping[key] = self.construct_object(value_node, deep=deep)
        return mapping

    def _key(self, node) -> str:
        if not isinstance(node, ScalarNode):
            raise _Refused(
                "has a mapping key that is a list or a mapping",
                "Use plain strings as keys.",
                node.start_mark.line + 1,
            )
        key = self.construct_object(node)
        # `200:` is the int 200 and `on:` the bool True to YAML 1.1: keep what was written.
        return key if isinstance(key, str) else node.value

    def construct_finite_float(self, node):
        value = SafeConstructor.construct_yaml_float(self, node)
        if not math.isfinite(value):
            raise _Refused(
                f"holds `{node.value[:_SHOWN]}`, which is not a JSON number",
                "Use a finite number or a string.",
                node.start_mark.line + 1,
            )
        return value

    def construct_as_written(self, node):
        return self.construct_scalar(node)

    def refuse_tag(self, node):
        tag = (node.tag or "").replace("tag:yaml.org,2002:", "!!")
        raise _Refused(
            f"uses the YAML tag `{tag[:_SHOWN]}`; a spec holds plain data "
            "only (mappings, lists, strings, numbers, booleans and null)",
            "Remove the tag.",
            node.start_mark.line + 1,
        )


_SpecLoader.add_constructor("tag:yaml.org,2002:float", _SpecLoader.construct_finite_float)
_SpecLoader.add_constructor("tag:yaml.org,2002:timestamp", _SpecLoader.construct_as_written)
for _tag in ("binary", "set", "omap", "pairs"):
    _SpecLoader.add_constructor(f"tag:yaml.org,2002:{_tag}", _SpecLoader.refuse_tag)
_SpecLoader.add_constructor(None, _SpecLoader.refuse_tag)


def _parse_yaml(text: str, size: int):
    """Parse YAML under the depth and alias rules; see the module docstring."""
    aliases = _prescan_yaml(text)
    loader = _SpecLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        if aliases:
            _check_alias_expansion(node, max(ALIAS_NODE_FLOOR, ALIAS_NODES_PER_BYTE * size))
        return loader.construct_document(node)
    finally:
        loader.dispose()


def _prescan_yaml(text: str) -> int:
    """Count the aliases, refusing nesting deeper than MAX_DEPTH before libyaml digs in."""
    depth = aliases = 0
    for event in yaml.parse(text, Loader=_BaseLoader):
        if isinstance(event, yaml.CollectionStartEvent):
            depth += 1
            if depth > MAX_DEPTH:
                raise _Refused(
                    f"is nested more than {MAX_DEPTH} levels deep",
                    _FIX_DEPTH,
                    event.start_mark.line + 1,
                )
        elif isinstance(event, yaml.CollectionEndEvent):
            depth -= 1
        elif isinstance(event, yaml.AliasEvent):
            aliases += 1
    return aliases


def _check_alias_expansion(root, budget: int) -> None:
    """Refuse a node graph that expands past `budget` nodes, MAX_DEPTH or into itself.

    Each distinct node is visited once, and its expanded size and height are
    memoized, so the cost is linear in the file, not in the expansion. Example: a
    "billion laughs" of 10 levels of 9 aliases is ~100 nodes whose sizes are 9, 81,
    729, ... 9**10: refused on the level that crosses the budget.
    """
    done: dict[int, tuple[int, int]] = {}  # id(node) -> (expanded size, height)
    open_: set[int] = set()
    stack: list[tuple[object, bool]] = [(root, False)]
    while stack:
        node, finished = stack.pop()
        key = id(node)
        children = _children(node)
        if finished:
            size = 1 + sum(done[id(child)][0] for child in children)
            height = 1 + max((done[id(child)][1] for child in children), default=0)
            line = node.start_mark.line + 1
            if size > budget:
                raise _Refused(
                    f"uses YAML aliases that expand to more than {budget:,} nodes "
                    "(an alias bomb such as \u201cbillion laughs\u201d)",
                    "Write the repeated parts out, or reference them with $ref instead of "
                    "YAML aliases.",
                    line,
                )
            if height > MAX_DEPTH:
                raise _Refused(
                    f"is nested more than {MAX_DEPTH} levels deep once its aliases are expanded",
                    _FIX_DEPTH,
                    line,
                )
            done[key] = (size, height)
            open_.discard(key)
            continue
        if key in done:
            continue
        open_.add(key)
        stack.append((node, True))
        for child in children:
            if id(child) in open_:
                raise _Refused(
                    "has a YAML alias that contains itself (a recursive alias)",
                    "Remove the recursive alias; use $ref for recursive schemas.",
                    child.start_mark.line + 1,
                )
            if id(child) not in done:
                stack.append((child, False))


def _children(node) -> list:
    if isinstance(node, MappingNode):
        return [part for pair in node.value for part in pair]
    if isinstance(node, SequenceNode):
        return node.value
    return []


def _yaml_failure(name: str, error: yaml.YAMLError, text: str = "") -> ImportFailed:
    # Built from the parts, never str(error): that quotes the offending line.
    mark = getattr(error, "problem_mark", None)
    problem = getattr(error, "problem", None) or getattr(error, "reason", None)
    context = getattr(error, "context", None)
    if problem and context:
        problem = f"{context}, {problem}" if problem.startswith("but") else problem
    if mark is not None:
        where = f" at line {mark.line + 1}, column {mark.column + 1}"
    elif isinstance(getattr(error, "position", None), int) and text:
        where = f" on line {text.count(chr(10), 0, error.position) + 1}"
    else:
        where = ""
    what = str(problem)[:_SHOWN] if problem else "it cannot be parsed"
    return _failed(f"{name} is not valid YAML: {what}{where}", _FIX_YAML)


def _refusal(name: str, refused: _Refused) -> ImportFailed:
    where = f" (line {refused.line})" if refused.line else ""
    return _failed(f"{name} {refused.message}{where}", refused.fix)


# --- Messages -------------------------------------------------------------------------


def _failed(message: str, fix: str) -> ImportFailed:
    return ImportFailed([Problem(FAILED_TO_PARSE_SPEC, message, fix)])


def _display_name(filename) -> str:
    name = PurePath(filename).name if isinstance(filename, str) and filename else ""
    name = "".join(c if c.isprintable() else "?" for c in name)
    if len(name) > _SHOWN:
        name = name[: _SHOWN - 1] + "\u2026"
    return name or "The file"


def _binary_message(name: str, data: bytes) -> str:
    head = data[:4096]
    if head[1::2].count(0) > len(head) // 4 or head[0::2].count(0) > len(head) // 4:
        return f"{name} looks like UTF-16 text without a byte order mark (it has NUL bytes)"
    return f"{name} is a binary file, not text (it has NUL bytes)"


def _bytes(size: int) -> str:
    for unit, scale in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if size >= scale:
            return f"{size / scale:.1f}".removesuffix(".0") + f" {unit}"
    return f"{size} bytes"


def _kind_of(value) -> str:
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    return "not a mapping"
