"""OpenAPI 2.0, 3.0, 3.1 and 3.2 schemas, normalized into one JSON Schema 2020-12 shape.

(3.2's Schema Object is 3.1's: JSON Schema 2020-12 with OpenAPI's vocabulary.)

What the three versions spell differently, and what each becomes:

| OpenAPI                                   | JSON Schema 2020-12 here                        |
|-------------------------------------------|-------------------------------------------------|
| `nullable: true` (3.0), `x-nullable` (2.0)| `anyOf: [X, {"type": "null"}]`                  |
| `type: [string, "null"]` (3.1)            | `anyOf: [{"type": "string"}, {"type": "null"}]` |
| `exclusiveMinimum: true` + `minimum: 3`   | `exclusiveMinimum: 3`                           |
| `example: 3`                              | `examples: [3]`                                 |
| `type: file` (2.0)                        | `{"type": "string", "format": "binary"}`        |
| `$ref: #/components/schemas/Pet`          | `$ref: #/$defs/Pet` (the target joins `$defs`)  |
| `allOf` of compatible object schemas      | one merged object schema                        |
| a `readOnly` property                     | dropped (inputs never carry it)                 |
| discriminator, xml, externalDocs, x-*...  | dropped                                         |

Enums, formats, descriptions, defaults and every other JSON Schema keyword are kept.
Everything is rebuilt, never patched in place: the input document is not modified,
and the normalized pieces are shared between operations, so treat them as read-only.

A schema that cannot become part of a tool schema raises SchemaProblem with the JSON
pointer at fault: a type that is not a JSON Schema type, a `$ref` that points
nowhere, a circular `$ref` that no finite value fits (A requires B, B requires A), or
oneOf/anyOf nested deeper than MAX_ALTERNATION_DEPTH.

A recursive schema that has finite values (Node.children -> Node, where a node may
have no children) is not refused: tool schemas are kept free of cycles (not every
model provider accepts a recursive schema), so the recursion is expanded
MAX_RECURSION_DEPTH levels deep, and below that left out in a way that only ever
narrows what the schema accepts (Schemas._cut_cycle): an optional recursive
property cannot be sent, a recursive list must be empty, a recursive oneOf/anyOf
branch is dropped. Any value the tool schema accepts is one the spec's schema
accepts. `Schemas.recursion_cut()` names the cycles cut, for the import's warning.

Cut rather than left open: the alternative, an open `{"type": "object"}` at the
depth limit, would let the AI send deeper values of any shape, which the API may
well refuse; cutting keeps every accepted value one the API accepts, at the cost of
depth, which real inputs (a reply thread, a folder tree, a nested filter) rarely need.
"""

import datetime
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import jsonschema_rs
from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError

from actions.validators import json_depth
from importer.drafts import FAILED_TO_PARSE_SPEC, INVALID_TOOL_SCHEMA
from importer.refs import FIX_REF, Document, RefError, def_name, escape_token, pointer

# oneOf/anyOf may nest this deep (a choice inside a choice's branch...), counting
# through $refs. Model providers flatten or refuse deeper unions, and the AI picks
# badly among them. `anyOf: [X, {"type": "null"}]`, our nullable, is not a choice, nor
# is a oneOf of plain values (consts with titles: an enumeration). Discord's message
# components, the deepest real input we know, nest 5.
MAX_ALTERNATION_DEPTH = 5
# Schemas may nest this many levels (an object in an object...): 2 JSON levels each,
# inside the 100 that actions.validators accepts, with room for `$defs`.
MAX_SCHEMA_DEPTH = 32
# A recursive schema (Node.children -> Node) is expanded this many levels deep; the
# level below leaves the recursion out (see Schemas._cut_cycle). Three levels of a
# comment thread, a folder tree or a nested filter are what an AI assistant sends.
MAX_RECURSION_DEPTH = 3
# How many components an allOf merge may pull in, one inside the other, before the
# rest stays a `$ref` (bounds recursion; the result means the same either way).
MAX_MERGE_CHAIN = 8

JSON_TYPES = ("string", "number", "integer", "boolean", "array", "object", "null")
NULL_SCHEMA = {"type": "null"}
# Keywords that describe a value without constraining it.
ANNOTATIONS = frozenset({"title", "description", "default", "examples", "deprecated"})

_TEXT_KEYWORDS = frozenset({"title", "description"})
_NAME_KEYWORDS = frozenset({"format", "contentMediaType", "contentEncoding"})
_COUNT_KEYWORDS = frozenset(
    {
        "minLength",
        "maxLength",
        "minItems",
        "maxItems",
        "minProperties",
        "maxProperties",
        "minContains",
        "maxContains",
    }
)
_ONE_SCHEMA_KEYWORDS = frozenset(
    {
        "additionalProperties",
        "contains",
        "propertyNames",
        "not",
        "if",
        "then",
        "else",
        "unevaluatedProperties",
        "unevaluatedItems",
        "contentSchema",
    }
)
_LIST_KEYWORDS = frozenset({"allOf", "anyOf", "oneOf", "prefixItems"})
_MAP_KEYWORDS = frozenset({"properties", "patternProperties", "dependentSchemas"})
_ALTERNATIONS = ("anyOf", "oneOf")
# A `$ref` with nothing but annotations beside it: it stands for its target.
REF_ALONE = ANNOTATIONS | {"$ref"}
# Stored as JSON (PostgreSQL): no NUL, no unpaired surrogate.
_UNSTORABLE_RE = re.compile("[\x00\ud800-\udfff]")
_SKIP = object()
_FORBID = object()  # what is left of a schema when leaving recursion out leaves no value


FIX_SCHEMA = (
    "Fix the schema at this pointer, or import with “skip invalid” to leave this operation out."
)
FIX_CYCLE = (
    "Make the input non-recursive (for example, declare the recursive property as "
    '{"type": "object"} instead of a $ref back to its parent) or its recursion '
    "optional (take the recursive property out of `required`, or make it nullable), "
    "or import with “skip invalid” to leave this operation out."
)
FIX_ALTERNATION = (
    f"Flatten the nested oneOf/anyOf to at most {MAX_ALTERNATION_DEPTH} levels, or import "
    "with “skip invalid” to leave this operation out."
)


class SchemaProblem(Exception):
    """A schema that cannot become (part of) a tool schema, where it is, and the fix."""

    def __init__(
        self, at: str, message: str, fix: str = FIX_SCHEMA, code: str = INVALID_TOOL_SCHEMA
    ) -> None:
        self.pointer = at
        self.message = message
        self.fix = fix
        self.code = code
        super().__init__(f"{message} (at {at})")

    @classmethod
    def from_ref_error(cls, at: str, error: RefError) -> "SchemaProblem":
        return cls(at, str(error), FIX_REF, FAILED_TO_PARSE_SPEC)


@dataclass(frozen=True)
class Component:
    """A referenced schema, normalized once per document."""

    tokens: tuple[str, ...]
    name: str  # its key under $defs
    schema: Any
    refs: tuple[tuple[str, ...], ...]  # the components it points at directly


def clean_text(text: str) -> str:
    """Text as a JSON column can store it: NUL and unpaired surrogates removed."""
    return _UNSTORABLE_RE.sub("", text) if _UNSTORABLE_RE.search(text) else text


def json_data(value: Any, depth: int = 0) -> Any:
    """A copy of an example, default, enum or const value that is plain, storable JSON.

    YAML hands us dates, non-string keys and `.nan`; JSON Schema and the database want
    strings, string keys and finite numbers.

    >>> json_data({1: datetime.date(2024, 5, 1), "x": [float("nan"), "ok"]})
    {'1': '2024-05-01', 'x': ['ok']}
    """
    if value is None or isinstance(value, bool | int):
        return value
    if isinstance(value, str):
        return clean_text(value)
    if isinstance(value, float):
        return value if math.isfinite(value) else _SKIP
    if depth > 64:
        return _SKIP
    if isinstance(value, dict):
        items = ((clean_text(str(k)), json_data(v, depth + 1)) for k, v in value.items())
        return {k: v for k, v in items if v is not _SKIP}
    if isinstance(value, list | tuple):
        return [v for v in (json_data(item, depth + 1) for item in value) if v is not _SKIP]
    if isinstance(value, datetime.date | datetime.datetime):
        return value.isoformat()
    return _SKIP


def is_nullable_pattern(schema: Any) -> bool:
    """`anyOf: [X, {"type": "null"}]`: how nullables are stored, not a real choice."""
    branches = schema.get("anyOf") if isinstance(schema, dict) else None
    return (
        isinstance(branches, list)
        and len(branches) == 2
        and any(branch == NULL_SCHEMA for branch in branches)
    )


def make_nullable(schema: Any) -> Any:
    """Let a schema also accept null, as `anyOf: [X, {"type": "null"}]`.

    Annotations stay outside, so the AI still reads the description first:

    >>> make_nullable({"type": "string", "description": "Nickname", "maxLength": 20})
    {'description': 'Nickname', 'anyOf': [{'type': 'string', 'maxLength': 20}, {'type': 'null'}]}
    >>> make_nullable({"anyOf": [{"type": "string"}, {"type": "integer"}]})
    {'anyOf': [{'type': 'string'}, {'type': 'integer'}, {'type': 'null'}]}
    >>> make_nullable({"description": "Anything"})  # already accepts null
    {'description': 'Anything'}
    """
    if schema is True:
        return schema
    if schema is False:
        return dict(NULL_SCHEMA)
    if schema.get("type") == "null" or is_nullable_pattern(schema):
        return schema
    branches = schema.get("anyOf")
    if isinstance(branches, list) and NULL_SCHEMA in branches:
        return schema
    outer = {k: v for k, v in schema.items() if k in ANNOTATIONS}
    inner = {k: v for k, v in schema.items() if k not in ANNOTATIONS}
    if not inner:
        return schema
    if list(inner) == ["anyOf"]:
        return {**outer, "anyOf": [*inner["anyOf"], NULL_SCHEMA]}
    return {**outer, "anyOf": [inner, NULL_SCHEMA]}


def _count(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int) and value >= 0:
        return value
    if isinstance(value, float) and value.is_integer() and value >= 0:
        return int(value)
    return None


def _is_number(value: Any) -> bool:
    return (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and (not isinstance(value, float) or math.isfinite(value))
    )


def _compiles(pattern: Any) -> bool:
    """JSON Schema checkers compile patterns with Python's `re`; an ECMA-only pattern
    (`\\p{L}`, `(?<name>...)`) would make the whole tool schema invalid, so it goes."""
    if not isinstance(pattern, str):
        return False
    try:
        re.compile(pattern)
    except (re.error, RecursionError, OverflowError):
        return False
    return True


def _closes_properties(schema: dict) -> bool:
    extra = schema.get("additionalProperties", True)
    return extra is not True or "unevaluatedProperties" in schema


def merge_into(target: dict, content: dict) -> bool:
    """Merge one allOf member into `target` when that keeps the meaning; else False and
    `target` is untouched.

    Keywords of one schema all apply at once, like allOf's members, so members merge
    unless they set the same keyword differently. `properties` unite (a property both
    define becomes the allOf of the two), `required` lists unite, the first annotation
    wins. `additionalProperties: false` on one side only counts its own properties,
    so it blocks a merge that would add others.

    >>> pet = {"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]}
    >>> merge_into(pet, {"properties": {"tag": {"type": "string"}}, "required": ["tag"]})
    True
    >>> sorted(pet["properties"]), pet["required"]
    (['name', 'tag'], ['name', 'tag'])
    >>> merge_into(pet, {"type": "string"})
    False
    """
    for key, value in content.items():
        mergeable = key in ("properties", "required") or key in ANNOTATIONS
        if key in target and not mergeable and target[key] != value:
            return False
    own, other = set(target.get("properties", ())), set(content.get("properties", ()))
    if _closes_properties(target) and (other - own or "patternProperties" in content):
        return False
    if _closes_properties(content) and (own - other or "patternProperties" in target):
        return False
    for key, value in content.items():
        if key == "properties":
            properties = dict(target.get("properties", {}))
            for name, sub in value.items():
                if name in properties and properties[name] != sub:
                    properties[name] = {"allOf": [properties[name], sub]}
                else:
                    properties[name] = sub
            target["properties"] = properties
        elif key == "required":
            target["required"] = list(dict.fromkeys([*target.get("required", []), *value]))
        elif key not in target:
            target[key] = value
    return True


class Schemas:
    """The schemas of one document: normalized, with `$ref`s made `#/$defs/<name>`.

    Each referenced component is normalized once and analysed once (what it reaches,
    whether that loops, how deep its oneOf/anyOf nest), so converting N operations
    costs N small walks plus one pass over the components they use.

    >>> doc = {"components": {"schemas": {
    ...     "Pet": {"type": "object", "properties": {"id": {"type": "integer", "readOnly": True},
    ...             "owner": {"$ref": "#/components/schemas/Owner"}}, "required": ["id"]},
    ...     "Owner": {"type": "string", "nullable": True}}}}
    >>> schemas = Schemas(Document(doc), "3.0")
    >>> body = schemas.normalize({"$ref": "#/components/schemas/Pet"}, "#/body")
    >>> body
    {'$ref': '#/$defs/Pet'}
    >>> schemas.definitions(body, "#/body")["Pet"]
    {'type': 'object', 'properties': {'owner': {'$ref': '#/$defs/Owner'}}}
    >>> schemas.inline(body, "#/body")
    {'type': 'object', 'properties': {'owner': {'anyOf': [{'type': 'string'}, {'type': 'null'}]}}}
    """

    def __init__(self, document: Document, version: str) -> None:
        self.document = document
        self.version = version
        self._components: dict[tuple[str, ...], Component | SchemaProblem] = {}
        self._by_name: dict[str, tuple[str, ...]] = {}
        self._in_progress: set[tuple[str, ...]] = set()
        # Analysis of components, filled in post-order (children first).
        self._reach: dict[tuple[str, ...], frozenset[tuple[str, ...]]] = {}
        self._failed: dict[tuple[str, ...], SchemaProblem] = {}
        self._alternation: dict[tuple[str, ...], int] = {}
        self._depth: dict[tuple[str, ...], int] = {}
        self._inlined: dict[tuple[str, ...], Any] = {}
        # Components of a recursive cycle that was cut (see _cut_cycles), and their
        # deeper copies, -> (pointer, cycle) for the import's warning.
        self._recursive: dict[tuple[str, ...], tuple[str, str]] = {}

    # -- normalizing ---------------------------------------------------------------

    def normalize(self, node: Any, at: str, depth: int = 0) -> Any:
        """One schema, normalized; `at` is its JSON pointer, for problems."""
        if depth > MAX_SCHEMA_DEPTH:
            raise SchemaProblem(
                at, f"the schema nests more than {MAX_SCHEMA_DEPTH} levels deep; flatten it"
            )
        if isinstance(node, bool):
            return node
        if not isinstance(node, dict):
            raise SchemaProblem(
                at, 'this is not a schema: expected an object such as {"type": "string"}'
            )
        if "$ref" in node:
            return self._reference(node, at, depth)

        out: dict[str, Any] = {}
        nullable = False
        read_only: set[str] = set()
        for key, value in node.items():
            if key in _TEXT_KEYWORDS:
                if isinstance(value, str | int | float) and not isinstance(value, bool):
                    out[key] = clean_text(str(value))
            elif key in _NAME_KEYWORDS:
                if isinstance(value, str):
                    out[key] = clean_text(value)
            elif key == "pattern":
                if _compiles(value):
                    out[key] = clean_text(value)
            elif key in _COUNT_KEYWORDS:
                count = _count(value)
                if count is not None:
                    out[key] = count
            elif key in ("minimum", "maximum"):
                if _is_number(value):
                    out[key] = value
            elif key in ("exclusiveMinimum", "exclusiveMaximum"):
                if isinstance(value, bool) or _is_number(value):
                    out[key] = value
            elif key == "multipleOf":
                if _is_number(value) and value > 0:
                    out[key] = value
            elif key in ("uniqueItems", "deprecated"):
                if isinstance(value, bool):
                    out[key] = value
            elif key in ("default", "const"):
                data = json_data(value)
                if data is not _SKIP:
                    out[key] = data
            elif key == "enum":
                if isinstance(value, list) and value:
                    out[key] = json_data(value)
            elif key == "examples":
                if isinstance(value, list):
                    out[key] = json_data(value)
            elif key == "type":
                out[key] = value
            elif key == "required":
                if isinstance(value, list):
                    names = [clean_text(str(n)) for n in value if isinstance(n, str | int)]
                    if names:
                        out[key] = list(dict.fromkeys(names))
            elif key == "dependentRequired":
                if isinstance(value, dict):
                    out[key] = {
                        clean_text(str(k)): list(dict.fromkeys(clean_text(n) for n in v))
                        for k, v in value.items()
                        if isinstance(v, list) and all(isinstance(n, str) for n in v)
                    }
            elif key == "properties":
                if isinstance(value, dict):
                    properties = {}
                    for name, sub in value.items():
                        if self._read_only(sub):
                            read_only.add(str(name))
                            continue
                        at_sub = f"{at}/properties/{escape_token(name)}"
                        properties[clean_text(str(name))] = self.normalize(sub, at_sub, depth + 1)
                    out[key] = properties
            elif key == "patternProperties":
                if isinstance(value, dict):
                    out[key] = {
                        clean_text(k): self.normalize(
                            sub, f"{at}/patternProperties/{escape_token(k)}", depth + 1
                        )
                        for k, sub in value.items()
                        if _compiles(k)
                    }
            elif key == "dependentSchemas":
                if isinstance(value, dict):
                    out[key] = {
                        clean_text(str(k)): self.normalize(
                            sub, f"{at}/dependentSchemas/{escape_token(k)}", depth + 1
                        )
                        for k, sub in value.items()
                    }
            elif key in _ONE_SCHEMA_KEYWORDS:
                out[key] = self.normalize(value, f"{at}/{key}", depth + 1)
            elif key == "items":
                if isinstance(value, list):  # a draft-4 tuple
                    out["prefixItems"] = [
                        self.normalize(sub, f"{at}/items/{i}", depth + 1)
                        for i, sub in enumerate(value)
                    ]
                else:
                    out[key] = self.normalize(value, f"{at}/items", depth + 1)
            elif key in _LIST_KEYWORDS:
                if isinstance(value, list) and value:
                    out[key] = [
                        self.normalize(sub, f"{at}/{key}/{i}", depth + 1)
                        for i, sub in enumerate(value)
                    ]
            elif key in ("nullable", "x-nullable"):
                nullable = value is True
            # Anything else goes: OpenAPI-only keywords (discriminator, xml, externalDocs,
            # readOnly, writeOnly), vendor extensions, and $id/$schema/$anchor/$defs
            # (referenced definitions are gathered by pointer, see definitions()).

        _canonical_nullable(out)
        if "example" in node and "examples" not in out:
            example = json_data(node["example"])
            if example is not _SKIP:
                out["examples"] = [example]
        if read_only and "required" in out:
            out["required"] = [n for n in out["required"] if n not in read_only]
            if not out["required"]:
                del out["required"]
        _exclusive_bounds(out)
        with_null = self._types(out, at)
        if "type" in out:  # first, as people write it
            out = {"type": out.pop("type"), **out}
        if "allOf" in out:
            out = self._merge_all_of(out, node)
        if with_null is True:
            out = make_nullable(out)
        elif with_null == "only":
            out["type"] = "null"
        elif nullable:
            out = make_nullable(out)
        return out

    def _types(self, out: dict, at: str) -> bool | str:
        """Check and rewrite `type`; say whether null was among the types ("only" when
        it was the only one)."""
        if "type" not in out:
            return False
        raw = out.pop("type")
        listed = raw if isinstance(raw, list) else [raw]
        types: list[str] = []
        with_null = False
        for kind in listed:
            if kind is None or kind == "null":  # YAML reads `type: null` as None
                with_null = True
            elif kind == "file":
                types.append("string")
                out.setdefault("format", "binary")
            elif isinstance(kind, str) and kind in JSON_TYPES:
                types.append(kind)
            else:
                raise SchemaProblem(
                    f"{at}/type",
                    f"“{kind}” is not a JSON Schema type; use one of {', '.join(JSON_TYPES)}",
                )
        types = list(dict.fromkeys(types))
        if types:
            out["type"] = types[0] if len(types) == 1 else types
        elif with_null:
            return "only"
        return with_null

    def _reference(self, node: dict, at: str, depth: int) -> dict:
        try:
            tokens, _target = self.document.lookup(node["$ref"])
        except RefError as error:
            raise SchemaProblem.from_ref_error(f"{at}/$ref", error) from None
        name = def_name(tokens, self.version)
        self._by_name[name] = tokens
        ref = {"$ref": f"#/$defs/{name}"}
        siblings = {k: v for k, v in node.items() if k != "$ref"}
        if not siblings:
            return ref
        if self.version in ("3.1", "3.2"):
            # 3.1 and 3.2 (JSON Schema) apply a $ref's siblings too.
            rest = self.normalize(siblings, at, depth)
            if isinstance(rest, dict) and "$ref" not in rest:
                return {**rest, **ref}
            return {"allOf": [rest, ref]}
        # 2.0 and 3.0 ignore a $ref's siblings; authors still mean a description and
        # nullable there, so those are kept.
        out = {
            key: clean_text(str(value))
            for key, value in siblings.items()
            if key in _TEXT_KEYWORDS and isinstance(value, str)
        }
        out.update(ref)
        if siblings.get("nullable") is True or siblings.get("x-nullable") is True:
            return make_nullable(out)
        return out

    def _read_only(self, node: Any) -> bool:
        """Whether a property is readOnly, directly or through its $ref."""
        for _ in range(8):
            if not isinstance(node, dict):
                return False
            if node.get("readOnly") is True:
                return True
            if "$ref" not in node:
                return False
            try:
                _tokens, node = self.document.lookup(node["$ref"])
            except RefError:
                return False
        return False

    def _read_only_names(self, node: Any, hops: int = 0) -> set[str]:
        """The readOnly properties an allOf member declares, through $refs and allOfs."""
        names: set[str] = set()
        if not isinstance(node, dict) or hops > 8:
            return names
        if "$ref" in node:
            try:
                _tokens, target = self.document.lookup(node["$ref"])
            except RefError:
                return names
            return self._read_only_names(target, hops + 1)
        properties = node.get("properties")
        if isinstance(properties, dict):
            names.update(str(k) for k, v in properties.items() if self._read_only(v))
        for member in node.get("allOf") or ():
            names |= self._read_only_names(member, hops + 1)
        return names

    def _merge_all_of(self, out: dict, node: dict) -> dict:
        """Fold allOf members (inline, or referenced components) into the schema itself
        where merge_into() says the meaning holds; the rest stays under allOf."""
        members = out.pop("allOf")
        merged = out
        left: list[Any] = []
        for member in members:
            content = member
            if isinstance(member, dict) and "$ref" in member and set(member) <= REF_ALONE:
                component = self._component_to_merge(member["$ref"])
                if component is None or not isinstance(component.schema, dict):
                    left.append(member)
                    continue
                content = component.schema
            if content is True:
                continue
            if not isinstance(content, dict):
                left.append(member)
                continue
            if "allOf" in content:  # allOf is associative: its own leftovers join ours
                content = dict(content)
                left.extend(content.pop("allOf"))
            if not merge_into(merged, content):
                left.append(member)
        if left:
            merged["allOf"] = left
        if "required" in merged:
            read_only = self._read_only_names(node)
            if read_only:
                merged["required"] = [n for n in merged["required"] if n not in read_only]
                if not merged["required"]:
                    del merged["required"]
        return merged

    def _component_to_merge(self, ref: str) -> Component | None:
        tokens = self._by_name.get(ref.removeprefix("#/$defs/"))
        if tokens is None or tokens in self._in_progress:
            return None  # a cycle through allOf: keep the reference
        if len(self._in_progress) >= MAX_MERGE_CHAIN:
            return None
        try:
            return self.component(tokens)
        except SchemaProblem:
            return None  # reported where the reference is used

    def component(self, tokens: tuple[str, ...]) -> Component:
        """The normalized schema a reference points at (memoized)."""
        known = self._components.get(tokens)
        if isinstance(known, SchemaProblem):
            raise known
        if known is not None:
            return known
        at = pointer(*tokens)
        self._in_progress.add(tokens)
        try:
            _tokens, target = self.document.lookup(at)
            schema = self.normalize(target, at)
        except SchemaProblem as problem:
            self._components[tokens] = problem
            raise
        except RefError as error:
            problem = SchemaProblem.from_ref_error(at, error)
            self._components[tokens] = problem
            raise problem from None
        finally:
            self._in_progress.discard(tokens)
        name = def_name(tokens, self.version)
        self._by_name[name] = tokens
        refs = tuple(dict.fromkeys(self._by_name[n] for n in ref_names(schema)))
        component = Component(tokens, name, schema, refs)
        self._components[tokens] = component
        return component

    # -- analysing -----------------------------------------------------------------

    def referenced(self, schema: dict) -> Component:
        """The component a `{"$ref": "#/$defs/<name>"}` schema points at."""
        return self.component(self._by_name[schema["$ref"].removeprefix("#/$defs/")])

    def refs(self, schema: Any) -> list[tuple[str, ...]]:
        """The components a normalized schema points at directly."""
        return list(dict.fromkeys(self._by_name[n] for n in ref_names(schema)))

    def definitions(self, schema: Any, at: str) -> dict[str, Any]:
        """Every component a normalized schema reaches, as `$defs` (name -> schema).

        Raises SchemaProblem when one of them is broken, loops back on itself, or nests
        oneOf/anyOf too deep. Works on the component graph once per document: each
        component is visited once, whatever the number of operations using it.
        """
        roots = self.refs(schema)
        for root in roots:
            self._analyse(root)
            if root in self._failed:
                raise self._failed[root]
        reached: set[tuple[str, ...]] = set()
        for root in roots:
            reached |= self._reach[root]
        found = (self._components[tokens] for tokens in reached)
        definitions = {c.name: c.schema for c in sorted(found, key=lambda c: c.name)}
        deepest = self.alternation_depth(schema)
        if deepest > MAX_ALTERNATION_DEPTH:
            raise SchemaProblem(
                at,
                f"oneOf/anyOf nest {deepest} levels deep (counting through $refs); an "
                f"action's input allows {MAX_ALTERNATION_DEPTH}",
                FIX_ALTERNATION,
            )
        return definitions

    def definitions_depth(self, schema: Any) -> int:
        """How deeply a body with these definitions nests as JSON (see json_depth)."""
        own = json_depth(schema)
        reached: set[tuple[str, ...]] = set()
        for root in self.refs(schema):
            reached |= self._reach.get(root, frozenset())
        return max([own, *(2 + self._depth[tokens] for tokens in reached)])

    def alternation_depth(self, schema: Any) -> int:
        """How many oneOf/anyOf nest inside each other, through `$ref`s (analysed ones).

        >>> schemas = Schemas(Document({}), "3.1")
        >>> choice = {"oneOf": [{"type": "array"}, {"type": "object"}]}
        >>> schemas.alternation_depth({"anyOf": [choice, {"type": "string"}]})
        2
        >>> schemas.alternation_depth({"anyOf": [{"type": "string"}, {"type": "null"}]})
        0
        >>> schemas.alternation_depth({"oneOf": [{"const": "user"}, {"const": "role"}]})
        0

        Neither a nullable nor a choice among plain values (an enumeration in
        disguise, with titles) is counted: nothing can nest inside them.
        """
        if not isinstance(schema, dict):
            return 0
        deepest = 0
        for key, value in schema.items():
            if key == "$ref":
                tokens = self._by_name.get(value.removeprefix("#/$defs/"))
                deepest = max(deepest, self._alternation.get(tokens, 0))
            elif key in _ONE_SCHEMA_KEYWORDS or key == "items":
                deepest = max(deepest, self.alternation_depth(value))
            elif key in _LIST_KEYWORDS and isinstance(value, list):
                inside = max((self.alternation_depth(sub) for sub in value), default=0)
                counts = (
                    key in _ALTERNATIONS
                    and not is_nullable_pattern(schema)
                    and not all(_is_plain_value(sub) for sub in value)
                )
                deepest = max(deepest, inside + (1 if counts else 0))
            elif key in _MAP_KEYWORDS and isinstance(value, dict):
                for sub in value.values():
                    deepest = max(deepest, self.alternation_depth(sub))
        return deepest

    def _analyse(self, start: tuple[str, ...]) -> None:
        """Depth-first over the component graph, without recursion; fills _reach,
        _alternation and _depth for each component reachable from `start` in
        post-order, or _failed (with the first problem found, a cycle included)."""
        if start in self._reach or start in self._failed:
            return
        self._cut_cycles(start)
        if start in self._failed:
            return
        path: list[tuple[str, ...]] = []
        on_path: dict[tuple[str, ...], int] = {}
        children: list[Any] = []
        problems: dict[tuple[str, ...], SchemaProblem] = {}

        def enter(tokens: tuple[str, ...]) -> None:
            on_path[tokens] = len(path)
            path.append(tokens)
            try:
                children.append(iter(self.component(tokens).refs))
            except SchemaProblem as problem:
                problems[tokens] = problem
                children.append(iter(()))

        enter(start)
        while path:
            node = path[-1]
            child = next(children[-1], None)
            if child is not None:
                if child in self._failed:
                    problems.setdefault(node, self._failed[child])
                elif child in on_path:
                    loop = [*path[on_path[child] :], child]
                    names = " → ".join(pointer(*t) for t in loop)
                    problems.setdefault(
                        node,
                        SchemaProblem(
                            pointer(*child),
                            f"circular $ref ({names}); a tool schema cannot be recursive",
                            FIX_CYCLE,
                        ),
                    )
                elif child not in self._reach:
                    enter(child)
                continue
            path.pop()
            children.pop()
            del on_path[node]
            problem = problems.pop(node, None)
            if problem is None:
                problem = self._finish(node)
            if problem is not None:
                self._failed[node] = problem
                if path:
                    problems.setdefault(path[-1], problem)

    def _finish(self, tokens: tuple[str, ...]) -> SchemaProblem | None:
        component = self._components[tokens]
        if not isinstance(component, Component):  # a problem, recorded by _analyse()
            return component
        if not jsonschema_rs.meta.is_valid(component.schema):
            # Should not happen (normalize() builds valid schemas); say why if it does.
            try:
                Draft202012Validator.check_schema(component.schema)
                message = "this schema is not valid JSON Schema (Draft 2020-12)"
            except SchemaError as error:
                message = f"this schema is not valid JSON Schema (Draft 2020-12): {error.message}"
            return SchemaProblem(pointer(*tokens), message)
        reach = {tokens}
        for child in component.refs:
            reach |= self._reach[child]
        self._reach[tokens] = frozenset(reach)
        self._alternation[tokens] = self.alternation_depth(component.schema)
        self._depth[tokens] = max(
            [json_depth(component.schema), *(self._depth[c] for c in component.refs)]
        )
        return None

    # -- recursion -----------------------------------------------------------------

    def recursion_cut(self, schema: Any) -> list[tuple[str, str]]:
        """The recursive cycles a normalized, analysed schema reaches that were cut,
        as (JSON pointer, cycle) pairs: what the import warns about."""
        reached: set[tuple[str, ...]] = set()
        for root in self.refs(schema):
            reached |= self._reach.get(root, frozenset())
        return sorted({self._recursive[t] for t in reached if t in self._recursive})

    def _cut_cycles(self, start: tuple[str, ...]) -> None:
        """Make the component graph reachable from `start` acyclic, before _analyse
        walks it: each strongly connected component with a cycle is either cut
        (_cut_cycle) or, when no finite value fits it, recorded in _failed."""
        for members in self._cycles_from(start):
            self._cut_cycle(members)

    def _cycles_from(self, start: tuple[str, ...]) -> list[list[tuple[str, ...]]]:
        """Tarjan's strongly connected components reachable from `start`, iterative,
        children first; only those with a cycle (two or more members, or a component
        that refers to itself). Analysed or failed components are leaves."""
        index: dict[tuple[str, ...], int] = {}
        low: dict[tuple[str, ...], int] = {}
        stack: list[tuple[str, ...]] = []
        on_stack: set[tuple[str, ...]] = set()
        found: list[list[tuple[str, ...]]] = []

        def edges(tokens: tuple[str, ...]) -> tuple[tuple[str, ...], ...]:
            if tokens in self._reach or tokens in self._failed:
                return ()
            try:
                return self.component(tokens).refs
            except SchemaProblem:
                return ()  # reported by _analyse

        work: list[tuple[tuple[str, ...], Any]] = []

        def visit(tokens: tuple[str, ...]) -> None:
            index[tokens] = low[tokens] = len(index)
            stack.append(tokens)
            on_stack.add(tokens)
            work.append((tokens, iter(edges(tokens))))

        visit(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    visit(child)
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                members = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    members.append(member)
                    if member == node:
                        break
                members.reverse()
                if len(members) > 1 or node in edges(node):
                    found.append(members)
        return found

    def _cut_cycle(self, members: list[tuple[str, ...]]) -> None:
        """Unroll one recursive cycle MAX_RECURSION_DEPTH levels deep, or fail it.

        A recursive schema can be cut when every member has a finite value: one that
        leaves the recursion out (an optional property, an empty list, another
        branch of a oneOf/anyOf, null). Found as a fixpoint: round by round, a member
        whose schema, with the recursion into the members not yet known to end
        removed (see _without_recursion), still accepts a value, ends; its round is
        its rank. Members that never end (`A.required b: B`, `B.required a: A`) fail
        with "circular $ref".

        Otherwise each member C is rewritten in place (level 0, keeping its name) to
        point at copies of the members one level down, `C__level1`, `C__level2`...,
        and the last level, `C__innermost`, leaves the recursion out: there, an
        optional recursive property is forbidden, a recursive list holds nothing,
        a recursive branch is dropped, and a required one points at the innermost
        copy of a member of lower rank (so this ends). For `Node = {children:
        [Node]}` and a depth of 3:

            Node.children: [Node__level1]         Node__level1.children: [Node__level2]
            Node__level2.children: [Node__innermost]
            Node__innermost.children: {"type": "array", "maxItems": 0, ...}

        Each copy accepts a subset of what the spec's schema accepts (sound: a value
        the tool accepts is one the API accepts), and the graph is acyclic, so the
        rest of the analysis runs as for any other schema.
        """
        member_set = set(members)
        schemas: dict[tuple[str, ...], Any] = {}
        names: dict[tuple[str, ...], str] = {}
        for tokens in members:
            component = self._components[tokens]
            if not isinstance(component, Component):
                return  # a broken member: _analyse reports it
            schemas[tokens], names[tokens] = component.schema, component.name
        rank: dict[tuple[str, ...], int] = {}
        rounds = 0
        while True:
            rounds += 1
            known = set(rank)
            ended = [
                tokens
                for tokens in members
                if tokens not in rank
                and self._without_recursion(
                    schemas[tokens], member_set, lambda r, known=known: "" if r in known else None
                )
                is not _FORBID
            ]
            if not ended:
                break
            for tokens in ended:
                rank[tokens] = rounds
        if len(rank) < len(members):
            endless = [t for t in members if t not in rank]
            cycle = self._cycle_text(endless)
            problem = SchemaProblem(
                pointer(*endless[0]),
                f"circular $ref ({cycle}) that never ends: each of these requires the next, "
                "so no finite value fits and a tool schema cannot describe it",
                FIX_CYCLE,
            )
            for tokens in members:
                self._failed[tokens] = problem
            return
        cycle = self._cycle_text(members)

        def suffix(level: int) -> str:
            return "innermost" if level >= MAX_RECURSION_DEPTH else f"level{level}"

        def level_name(tokens: tuple[str, ...], level: int) -> str:
            return f"{names[tokens]}__{suffix(level)}" if level else names[tokens]

        def level_tokens(tokens: tuple[str, ...], level: int) -> tuple[str, ...]:
            return (*tokens, f"<{suffix(level)}>") if level else tokens

        copies: dict[tuple[str, ...], tuple[str, Any]] = {}
        for tokens in members:
            for level in range(MAX_RECURSION_DEPTH + 1):
                if level < MAX_RECURSION_DEPTH:

                    def follow(r: tuple[str, ...], level=level) -> str:
                        return level_name(r, level + 1)

                else:

                    def follow(r: tuple[str, ...], tokens=tokens) -> str | None:
                        return (
                            level_name(r, MAX_RECURSION_DEPTH) if rank[r] < rank[tokens] else None
                        )

                schema = self._without_recursion(schemas[tokens], member_set, follow)
                if schema is _FORBID:  # cannot happen: the ranks say how each one ends
                    problem = SchemaProblem(
                        pointer(*tokens), f"circular $ref ({cycle}) that cannot be cut", FIX_CYCLE
                    )
                    for member in members:
                        self._failed[member] = problem
                    return
                copies[level_tokens(tokens, level)] = (level_name(tokens, level), schema)
        for tokens, (name, _schema) in copies.items():
            self._by_name[name] = tokens
        at = pointer(*members[0])
        for tokens, (name, schema) in copies.items():
            refs = tuple(dict.fromkeys(self._by_name[n] for n in ref_names(schema)))
            self._components[tokens] = Component(tokens, name, schema, refs)
            self._recursive[tokens] = (at, cycle)

    def _without_recursion(
        self, node: Any, members: set[tuple[str, ...]], follow: Callable[..., str | None]
    ) -> Any:
        """`node` with each `$ref` to a member of the cycle redirected to the `$defs`
        name follow(tokens) gives, or, where that is None, the recursion left out in
        a way that only ever accepts less: _FORBID when nothing is left.

        >>> schemas = Schemas(Document({}), "3.1")
        >>> schemas._by_name["Node"] = node = ("components", "schemas", "Node")
        >>> tree = {"type": "object", "properties": {"name": {"type": "string"},
        ...     "children": {"type": "array", "items": {"$ref": "#/$defs/Node"}}}}
        >>> cut = schemas._without_recursion(tree, {node}, lambda r: None)
        >>> cut["properties"]["children"]  # doctest: +ELLIPSIS
        {'type': 'array', 'maxItems': 0, 'description': '(Not expanded: ...; send an empty list.)'}
        >>> schemas._without_recursion({**tree, "required": ["children"], "properties": {
        ...     "children": {"type": "array", "minItems": 1, "items": {"$ref": "#/$defs/Node"}}}},
        ...     {node}, lambda r: None) is _FORBID
        True
        """
        if not isinstance(node, dict):
            return node

        def cut(sub: Any) -> Any:
            return self._without_recursion(sub, members, follow)

        def member(ref: Any) -> tuple[str, ...] | None:
            tokens = (
                self._by_name.get(ref.removeprefix("#/$defs/")) if isinstance(ref, str) else None
            )
            return tokens if tokens in members else None

        required = node.get("required") if isinstance(node.get("required"), list) else []
        out: dict[str, Any] = {}
        closed_to: set[str] = set()  # "object", "array": no finite value of that type left
        max_items: int | None = None
        for key, value in node.items():
            if key == "$ref":
                tokens = member(value)
                if tokens is None:
                    out[key] = value
                    continue
                name = follow(tokens)
                if name is None:
                    return _FORBID
                out[key] = f"#/$defs/{name}"
            elif key == "properties" and isinstance(value, dict):
                properties = {}
                for name, sub in value.items():
                    new = cut(sub)
                    if new is _FORBID:
                        if name in required:
                            closed_to.add("object")
                        new = _left_out(sub)
                    properties[name] = new
                out[key] = properties
            elif key in ("additionalProperties", "unevaluatedProperties"):
                new = cut(value)
                if new is _FORBID:
                    declared = (
                        node.get("properties") if isinstance(node.get("properties"), dict) else {}
                    )
                    if any(name not in declared for name in required):
                        closed_to.add("object")
                    new = False
                out[key] = new
            elif key in ("patternProperties", "dependentSchemas") and isinstance(value, dict):
                out[key] = {
                    k: (False if (n := cut(sub)) is _FORBID else n) for k, sub in value.items()
                }
            elif key == "items":
                new = cut(value)
                if new is _FORBID:
                    if (_count(node.get("minItems")) or 0) > len(node.get("prefixItems") or ()):
                        closed_to.add("array")
                    else:
                        max_items = len(node.get("prefixItems") or ())
                    continue
                out[key] = new
            elif key == "prefixItems" and isinstance(value, list):
                kept = []
                for sub in value:
                    new = cut(sub)
                    if new is _FORBID:
                        if (_count(node.get("minItems")) or 0) > len(kept):
                            closed_to.add("array")
                        max_items = len(kept) if max_items is None else min(max_items, len(kept))
                        break
                    kept.append(new)
                if kept:
                    out[key] = kept
            elif key == "contains":
                new = cut(value)
                if new is _FORBID:
                    if _count(node.get("minContains")) != 0:
                        closed_to.add("array")
                    continue
                out[key] = new
            elif key in _ALTERNATIONS and isinstance(value, list):
                kept = [new for new in map(cut, value) if new is not _FORBID]
                if not kept:
                    return _FORBID
                out[key] = kept
            elif key == "allOf" and isinstance(value, list):
                kept = list(map(cut, value))
                if any(new is _FORBID for new in kept):
                    return _FORBID
                out[key] = kept
            elif key in ("not", "if"):
                # Leaving something out under `not` would accept more: refuse instead.
                if any(member(f"#/$defs/{name}") for name in ref_names(value)):
                    return _FORBID
                out[key] = value
            elif key in _ONE_SCHEMA_KEYWORDS:  # then, else, propertyNames, contentSchema...
                new = cut(value)
                out[key] = False if new is _FORBID else new
            else:
                out[key] = value
        if closed_to:
            types = node.get("type")
            listed = types if isinstance(types, list) else [types] if isinstance(types, str) else []
            left = [kind for kind in listed if kind not in closed_to]
            if not left:  # untyped with object (array) keywords: an object (array), as meant
                return _FORBID
            out["type"] = left[0] if len(left) == 1 else left
        if max_items is not None:
            limit = _count(out.get("maxItems"))
            out["maxItems"] = max_items if limit is None else min(limit, max_items)
            if max_items == 0:
                out.pop("minItems", None)
                out["description"] = _note(out.get("description"), "send an empty list")
        return out

    def _cycle_text(self, among: list[tuple[str, ...]]) -> str:
        """One cycle through `among` (components that each refer to another of them),
        as `#/a → #/b → #/a`."""
        inside = set(among)
        path = [among[0]]
        while True:
            component = self._components[path[-1]]
            refs = component.refs if isinstance(component, Component) else ()
            following = next((r for r in refs if r in inside), None)
            if following is None:
                break
            if following in path:
                path = [*path[path.index(following) :], following]
                break
            path.append(following)
        return " → ".join(pointer(*tokens) for tokens in path)

    # -- inlining ------------------------------------------------------------------

    def inline(self, schema: Any, at: str) -> Any:
        """The schema with every `$ref` replaced by its target, for a header or
        parameter (whose schema cannot hold references). Shares unchanged parts.
        Raises SchemaProblem as definitions() does."""
        self.definitions(schema, at)
        return self._inline(schema)

    def _inline(self, schema: Any) -> Any:
        if not isinstance(schema, dict):
            return schema
        out: dict[str, Any] = {}
        changed = False
        for key, value in schema.items():
            if key == "$ref":
                continue
            if key in _ONE_SCHEMA_KEYWORDS or key == "items":
                new = self._inline(value)
            elif key in _LIST_KEYWORDS and isinstance(value, list):
                new = [self._inline(sub) for sub in value]
                new = value if all(a is b for a, b in zip(new, value, strict=True)) else new
            elif key in _MAP_KEYWORDS and isinstance(value, dict):
                new = {k: self._inline(sub) for k, sub in value.items()}
                new = value if all(new[k] is value[k] for k in value) else new
            else:
                new = value
            changed = changed or new is not value
            out[key] = new
        if "$ref" not in schema:
            return out if changed else schema
        tokens = self._by_name[schema["$ref"].removeprefix("#/$defs/")]
        target = self._inlined.get(tokens)
        if target is None:
            target = self._inline(self._components[tokens].schema)
            self._inlined[tokens] = target
        if not out:
            return target
        if isinstance(target, dict) and not (set(out) - ANNOTATIONS):
            return {**target, **out}
        return {**out, "allOf": [*out.get("allOf", []), target]}


def _note(description: Any, advice: str) -> str:
    """A description, with the note that the recursion was cut here.

    >>> _note("Replies to this comment.", "leave it out")
    'Replies to this comment. (Not expanded: nested more than 3 levels deep; leave it out.)'
    """
    note = f"(Not expanded: nested more than {MAX_RECURSION_DEPTH} levels deep; {advice}.)"
    return f"{description} {note}" if isinstance(description, str) and description else note


def _left_out(schema: Any) -> dict:
    """What an optional recursive property becomes past the depth limit: a schema no
    value fits (`not: {}`), so the property can only be left out, saying why."""
    description = schema.get("description") if isinstance(schema, dict) else None
    return {"not": {}, "description": _note(description, "leave it out")}


def _is_plain_value(schema: Any) -> bool:
    """A schema with nothing nested and no reference: a const, an enum, a scalar type."""
    if not isinstance(schema, dict):
        return True
    return not any(
        key == "$ref"
        or key == "items"
        or key in _ONE_SCHEMA_KEYWORDS
        or key in _LIST_KEYWORDS
        or key in _MAP_KEYWORDS
        for key in schema
    ) and schema.get("type") not in ("object", "array")


def _canonical_nullable(out: dict) -> None:
    """`oneOf: [{"type": "null"}, X]` (or anyOf, in any order) is a nullable X: store it
    as ours, `anyOf: [X, {"type": "null"}]`, so it is not counted as a choice.

    >>> out = {"oneOf": [{"type": "null"}, {"$ref": "#/$defs/Duration"}]}
    >>> _canonical_nullable(out); out
    {'anyOf': [{'$ref': '#/$defs/Duration'}, {'type': 'null'}]}
    """
    for key in _ALTERNATIONS:
        branches = out.get(key)
        if not (isinstance(branches, list) and len(branches) == 2 and NULL_SCHEMA in branches):
            continue
        if key == "oneOf" and "anyOf" in out:
            continue
        other = branches[1] if branches[0] == NULL_SCHEMA else branches[0]
        del out[key]
        out["anyOf"] = [other, NULL_SCHEMA]


def _exclusive_bounds(out: dict) -> None:
    """`exclusiveMinimum: true` with `minimum: m` (2.0, 3.0) -> `exclusiveMinimum: m`."""
    for exclusive, bound in (("exclusiveMinimum", "minimum"), ("exclusiveMaximum", "maximum")):
        value = out.get(exclusive)
        if isinstance(value, bool):
            del out[exclusive]
            if value and bound in out:
                out[exclusive] = out.pop(bound)


def ref_names(schema: Any) -> list[str]:
    """The `$defs` names a normalized schema refers to, walking schema positions only."""
    names: list[str] = []
    stack = [schema]
    while stack:
        node = stack.pop()
        if not isinstance(node, dict):
            continue
        for key, value in node.items():
            if key == "$ref":
                names.append(value.removeprefix("#/$defs/"))
            elif key in _ONE_SCHEMA_KEYWORDS or key == "items":
                stack.append(value)
            elif key in _LIST_KEYWORDS and isinstance(value, list):
                stack.extend(value)
            elif key in _MAP_KEYWORDS and isinstance(value, dict):
                stack.extend(value.values())
    return names


# The keys a Swagger 2.0 non-body parameter (or its `items`) shares with schemas.
_PARAMETER_SCHEMA_KEYS = (
    "type",
    "format",
    "items",
    "default",
    "maximum",
    "exclusiveMaximum",
    "minimum",
    "exclusiveMinimum",
    "maxLength",
    "minLength",
    "pattern",
    "maxItems",
    "minItems",
    "uniqueItems",
    "enum",
    "multipleOf",
    "x-nullable",
    "x-example",
)


def swagger_parameter_schema(parameter: dict) -> dict:
    """The schema a Swagger 2.0 query, path, header or formData parameter describes
    with keywords of its own (to normalize like any schema).

    >>> swagger_parameter_schema({"name": "tags", "in": "query", "type": "array",
    ...                           "items": {"type": "string"}, "collectionFormat": "csv"})
    {'type': 'array', 'items': {'type': 'string'}}
    """
    schema = {key: parameter[key] for key in _PARAMETER_SCHEMA_KEYS if key in parameter}
    if "x-example" in schema:
        schema["example"] = schema.pop("x-example")
    return schema
