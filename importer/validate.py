"""Step 2 of an import: is the loaded document an OpenAPI 2.0, 3.0, 3.1 or 3.2 document?

`validate_document(doc)` returns "2.0", "3.0", "3.1" or "3.2", or raises ImportFailed with
`failed_to_parse_spec` Problems, each with the JSON pointer at fault, the first
leading. It never fetches, never reads a file and never raises anything else.

What fails here, in this order (each kind lists every occurrence, up to
MAX_PROBLEMS):

1. The version: no `openapi`/`swagger` field, a number where a string belongs
   (YAML's unquoted `swagger: 2.0`), 3.3 and later (not supported yet), or anything
   else.
   Nothing else is checked then.
2. Nesting deeper than load.MAX_DEPTH (possible for a dict not made by
   load_document, or JSON between 100 and 1,024 levels). Nothing else is checked then.
3. `$ref`s, found by one walk over the document that skips literal data (`example`,
   `default`, `enum`, `const`, Example `value`, list-valued `examples`, `x-`
   extensions), where a `$ref` key is data and not a reference:

   - not local (anything but `#...`: `https://`, `file:`, `//host/x`, `Pet.yaml`,
     `other.json#/X`): refused, never followed; the fix is to bundle the spec. In
     3.2, a reference to the document's own `$self` URI (`$self#/components/...`)
     is local (see refs.local_ref);
   - local but not a JSON pointer (`#Pet`, a 3.1 `$anchor`): refused;
   - a pointer that resolves to nothing (`#/components/schemas/Missing`);
   - a chain of `$ref`s that comes back on itself (A -> B -> A) and so never reaches
     a definition. Recursive schemas (Node.children -> Node) are fine: the loop
     goes through a property, and the converter handles it.

4. Structure: the official OpenAPI JSON Schema of the version (the ones shipped in
   openapi-spec-validator), run by jsonschema-rs, compiled once per process
   (~25 ms on GitHub's 13 MB spec; the whole of validate_document takes ~0.2 s
   there, most of it the walk of step 3). Formats (`uri`, `email`...) are not checked:
   a sloppy contact email should not block an import. A failed `oneOf`/`anyOf` is
   explained by the branch the document most likely meant (see _explain). Errors
   at a `$ref` already refused as external are left out: the ref is the cause.

Deliberately NOT failed here, because they concern single operations and the
converter reports them per operation (so `skip_invalid` can import the rest), or
because they do not stop a correct import: a path template whose parameters are not
declared (or the reverse), duplicate parameters, duplicate operationIds (tool names
are made unique anyway), security requirements naming an undefined scheme (two
corpus files do it and openapi-spec-validator accepts them), a `$ref` to the wrong
kind of object, `default`/`example` values that break their schema, 3.1 schema
objects that break the 2020-12 meta-schema (the official 3.1 schema does not look
inside them; the converter checks every tool schema it makes).

openapi-spec-validator is not run here: what it adds over the above is exactly that
per-operation list, plus value checks that reject real specs which import fine, and
it costs 17-25 s on GitHub's spec here. Running it only on small documents would make the
verdict depend on the file's size. The tests compare our verdicts with its verdicts
(with refusing handlers) over the real corpus.

Example::

    >>> validate_document({"openapi": "3.0.3", "info": {"title": "t", "version": "1"},
    ...                    "paths": {}})
    '3.0'
    >>> validate_document({"openapi": "3.3.0", ...})
    ImportFailed: failed_to_parse_spec: OpenAPI 3.3.0 is not supported yet...
"""

import functools
import json
import logging
import re
from importlib.resources import files
from urllib.parse import unquote

import jsonschema_rs

from importer.drafts import FAILED_TO_PARSE_SPEC, ImportFailed, Problem
from importer.load import MAX_DEPTH
from importer.refs import local_ref

logger = logging.getLogger(__name__)

MAX_PROBLEMS = 100  # listed in full; past that, one more Problem says there are more
# More objects and lists than any document load_document accepts can expand to; a bound
# for a dict built some other way, that shares its parts many times over.
MAX_CONTAINERS = 50_000_000
_MAX_POINTER = 300  # longer pointers lose their middle
_SHOWN = 80  # at most this many characters of a value from the document in a message
_MASK = "\x00value\x00"  # jsonschema-rs writes this instead of the instance

_SCHEMA_DIRS = {"2.0": "v2.0", "3.0": "v3.0", "3.1": "v3.1", "3.2": "v3.2"}
_VERSION_RE = re.compile(r"(\d+)\.(\d+)\.(\d+)(?:-[0-9A-Za-z.-]+)?")

# Fields whose value maps names (paths, property names, status codes...) to objects:
# their keys are names, never keywords, so `default` or `x-a` there is not data.
_NAME_MAPS = frozenset(
    {
        "paths", "webhooks", "definitions", "parameters", "responses", "securityDefinitions",
        "schemas", "requestBodies", "headers", "securitySchemes", "links", "callbacks",
        "pathItems", "examples", "content", "encoding", "properties", "patternProperties",
        "$defs", "dependentSchemas", "variables",
    }
)  # fmt: skip
# Fields whose value is literal data: a `$ref` inside is an example, not a reference.
_DATA_FIELDS = frozenset({"example", "default", "enum", "const", "value"})

FIX_BUNDLE = "Bundle your spec into one file (for example with `redocly bundle`) and import that."
_FIX_VERSION = (
    'Start the document with `openapi: "3.1.0"` (or 3.0.x, 3.2.x), or `swagger: "2.0"`; '
    "OpenAPI 2.0, 3.0, 3.1 and 3.2 can be imported."
)
_FIX_STRUCTURE = (
    "Fix the document at that pointer so that it follows the OpenAPI specification "
    "(an editor such as Swagger Editor or `redocly lint` shows the same errors)."
)


def validate_document(doc: dict) -> str:
    """The document's OpenAPI version, "2.0", "3.0", "3.1" or "3.2"; see the module
    docstring."""
    try:
        return _validate(doc)
    except ImportFailed:
        raise
    except RecursionError:
        raise _failed(f"The document is nested more than {MAX_DEPTH} levels deep") from None
    except Exception:
        logger.exception("Validating a document failed unexpectedly")
        raise _failed("The document could not be validated as OpenAPI") from None


def _validate(doc: dict) -> str:
    if not isinstance(doc, dict):
        raise _failed("The document is not a mapping", fix=_FIX_VERSION)
    version = _detect_version(doc)
    refs = _collect_refs(doc)
    problems, external = _ref_problems(doc, refs)
    problems += _structure_problems(version, doc, external)
    if problems:
        if len(problems) > MAX_PROBLEMS:
            problems = problems[:MAX_PROBLEMS]
            problems.append(
                Problem(
                    FAILED_TO_PARSE_SPEC,
                    f"There are more problems than the {MAX_PROBLEMS} listed",
                    "Fix the ones above and import again.",
                )
            )
        raise ImportFailed(problems)
    return version


# --- 1. Version -----------------------------------------------------------------------


def _detect_version(doc: dict) -> str:
    if "openapi" in doc and "swagger" in doc:
        raise _failed("The document has both an `openapi` and a `swagger` field", "#", _FIX_VERSION)
    if "swagger" in doc:
        value = doc["swagger"]
        if value == "2.0" and isinstance(value, str):
            return "2.0"
        if isinstance(value, int | float) and not isinstance(value, bool) and value == 2:
            raise _failed(
                'The `swagger` field must be the string "2.0", not a number (YAML reads '
                "an unquoted 2.0 as a number)",
                "#/swagger",
                'Write `swagger: "2.0"`.',
            )
        raise _failed(
            f"`swagger: {_short(value)}` is not a version that can be imported",
            "#/swagger",
            _FIX_VERSION,
        )
    if "openapi" in doc:
        value = doc["openapi"]
        if not isinstance(value, str):
            raise _failed(
                f'The `openapi` field must be a version string such as "3.1.0", not '
                f"{_short(value)} (YAML reads an unquoted 3.0 as a number)",
                "#/openapi",
                'Write the full version in quotes, for example `openapi: "3.0.3"`.',
            )
        match = _VERSION_RE.fullmatch(value)
        if match and match[1] == "3" and match[2] in ("0", "1", "2"):
            return f"3.{match[2]}"
        if match and (int(match[1]), int(match[2])) > (3, 2):
            raise _failed(
                f"OpenAPI {_short(value, quote=False)} is not supported yet",
                "#/openapi",
                "Export the spec as OpenAPI 3.2, 3.1 or 3.0, which can be imported.",
            )
        raise _failed(
            f"`openapi: {_short(value)}` is not a version that can be imported (expected "
            "3.0.x, 3.1.x or 3.2.x, with all three numbers)",
            "#/openapi",
            _FIX_VERSION,
        )
    raise _failed(
        "The document is not an OpenAPI document: it has no `openapi` or `swagger` field",
        "#",
        _FIX_VERSION,
    )


# --- 2 and 3. Depth and $refs ---------------------------------------------------------

# A path into the document, as a linked list from the leaf: (key, parent) or None.
_Link = tuple[str | int, "_Link"] | None


# Where a value sits, for the walk: its keys are keywords, its keys are names (the
# value of a _NAME_MAPS field), or it is literal data (no $ref in it is a reference).
_KEYWORDS, _NAMES, _DATA = 0, 1, 2


def _collect_refs(doc: dict) -> list[tuple[str, _Link]]:
    """Every `$ref` string outside literal data, with where it is, in document order.

    One iterative walk over every container (so no recursion, whatever the depth),
    which also refuses nesting past MAX_DEPTH (and so a dict that contains itself, which
    only a caller other than load_document can make) and more than MAX_CONTAINERS
    containers. Each stack entry is (value, link, depth, position).
    """
    refs: list[tuple[str, _Link]] = []
    stack: list[tuple[object, _Link, int, int]] = [(doc, None, 1, _KEYWORDS)]
    containers = 0
    push, pop, position_of = stack.append, stack.pop, _child_position
    while stack:
        value, link, depth, position = pop()
        containers += 1
        if depth > MAX_DEPTH:
            raise _failed(
                f"The document is nested more than {MAX_DEPTH} levels deep",
                _pointer(link),
                "Flatten it: move nested schemas to components and point at them with $ref.",
            )
        if containers > MAX_CONTAINERS:
            raise _failed(f"The document has more than {MAX_CONTAINERS:,} objects and lists")
        depth += 1
        if type(value) is dict or isinstance(value, dict):
            if position == _KEYWORDS:
                ref = value.get("$ref")
                if isinstance(ref, str):
                    refs.append((ref, link))
            for key, child in value.items():
                if type(child) in _CONTAINERS or isinstance(child, dict | list):
                    push((child, (key, link), depth, position_of(position, key, child)))
        else:  # a list
            inner = _DATA if position == _DATA else _KEYWORDS
            for index, child in enumerate(value):
                if type(child) in _CONTAINERS or isinstance(child, dict | list):
                    push((child, (index, link), depth, inner))
    refs.reverse()  # the walk pops the last child first: give them in document order
    return refs


_CONTAINERS = (dict, list)  # exact types first: the common case, and the fast one


def _child_position(position: int, key, child) -> int:
    if position == _DATA:
        return _DATA
    if position == _NAMES or not isinstance(key, str):
        return _KEYWORDS
    if key in _DATA_FIELDS or key.startswith("x-"):
        return _DATA
    if key == "examples" and isinstance(child, list):
        return _DATA  # JSON Schema `examples`: a list of literal values
    if key in _NAME_MAPS and isinstance(child, dict):
        return _NAMES
    return _KEYWORDS


def _ref_problems(doc: dict, refs: list[tuple[str, _Link]]) -> tuple[list[Problem], list[str]]:
    """Problems with the refs, and the pointers of the objects holding external ones."""
    problems: list[Problem] = []
    external: list[str] = []
    targets: dict[str, tuple[object, str]] = {}  # ref -> (target, "" or why it fails)
    self_uri = doc.get("$self")
    refs = [(local_ref(ref, self_uri), link) for ref, link in refs]
    for ref, link in refs:
        if not ref.startswith("#"):
            at = _pointer(link)
            external.append(at)
            problems.append(
                Problem(
                    FAILED_TO_PARSE_SPEC,
                    f"The $ref `{_short(ref, quote=False)}` points outside this document "
                    f"({_external_kind(ref)}); external references are never followed",
                    FIX_BUNDLE,
                    pointer=at,
                )
            )
            continue
        if ref not in targets:
            targets[ref] = _resolve(doc, ref)
        why = targets[ref][1]
        if why:
            problems.append(
                Problem(
                    FAILED_TO_PARSE_SPEC,
                    f"The $ref `{_short(ref, quote=False)}` {why}",
                    "Point it at an object that exists in this document, for example "
                    "`#/components/schemas/Name`.",
                    pointer=_pointer(link),
                )
            )
    problems += _cycle_problems(targets, refs, self_uri)
    return problems, external


def _resolve(doc: dict, ref: str) -> tuple[object, str]:
    """Follow a local ref's JSON pointer: (target, "") or (None, why it fails).

    The fragment is percent-decoded, then split on "/" with ~1 -> "/" and ~0 -> "~"
    (RFC 6901). Example: "#/paths/~1pets~1%7Bid%7D/get" -> doc["paths"]["/pets/{id}"]["get"].
    """
    fragment = ref[1:]
    if not fragment:
        return doc, ""
    if not fragment.startswith("/"):
        return None, "is not a JSON pointer (anchors such as `#Name` are not supported)"
    target: object = doc
    for part in unquote(fragment[1:]).split("/"):
        part = part.replace("~1", "/").replace("~0", "~")
        if isinstance(target, dict) and part in target:
            target = target[part]
        elif (
            isinstance(target, list)
            and part.isdigit()
            and (part == "0" or not part.startswith("0"))
            and int(part) < len(target)
        ):
            target = target[int(part)]
        else:
            return None, "points to nothing in this document"
    return target, ""


def _cycle_problems(targets: dict[str, tuple[object, str]], refs, self_uri=None) -> list[Problem]:
    """A Problem per chain of refs that comes back on itself (A -> B -> A).

    Each resolved ref whose target is itself a `$ref` object has one successor, so the
    refs form a functional graph: walk each chain, colouring what is done.
    """
    successor = {
        ref: local_ref(target["$ref"], self_uri)
        for ref, (target, why) in targets.items()
        if not why and isinstance(target, dict) and isinstance(target.get("$ref"), str)
    }
    first_use = {}
    for ref, link in refs:
        first_use.setdefault(ref, link)
    problems: list[Problem] = []
    done: set[str] = set()
    for start in successor:
        chain: list[str] = []
        ref = start
        while ref in successor and ref not in done and ref not in chain:
            chain.append(ref)
            ref = successor[ref]
        if ref in chain:  # came back: the cycle is the chain from `ref` on
            cycle = [*chain[chain.index(ref) :], ref]
            shown = " \u2192 ".join(_short(r, quote=False, limit=60) for r in cycle[:6])
            problems.append(
                Problem(
                    FAILED_TO_PARSE_SPEC,
                    f"The $ref chain {shown} comes back on itself and never reaches a definition",
                    "Make one of them a real definition instead of a $ref.",
                    pointer=_pointer(first_use.get(cycle[0])),
                )
            )
        done.update(chain)
    return problems


def _external_kind(ref: str) -> str:
    lowered = ref.lower()
    if lowered.startswith(("http://", "https://")):
        return "a URL"
    if lowered.startswith("file:"):
        return "a local file"
    if lowered.startswith("//"):
        return "a network location"
    if ":" in lowered.split("/")[0]:
        return "a URI"
    return "another file"


# --- 4. Structure ---------------------------------------------------------------------


@functools.cache
def _structure_validator(version: str):
    resource = files("openapi_spec_validator") / "resources" / "schemas"
    schema = json.loads((resource / _SCHEMA_DIRS[version] / "schema.json").read_text("utf-8"))
    # offline: the schemas need nothing from the network, and must never get it.
    return jsonschema_rs.validator_for(schema, validate_formats=False, offline=True, mask=_MASK)


def _structure_problems(version: str, doc: dict, external: list[str]) -> list[Problem]:
    problems: list[Problem] = []
    seen: set[tuple[str, str]] = set()
    for error in _structure_validator(version).iter_errors(doc):
        for path, message in _explain(error):
            pointer = _pointer_from_path(path)
            if any(pointer == at or pointer.startswith(at + "/") for at in external):
                continue
            if (pointer, message) in seen:
                continue
            seen.add((pointer, message))
            problems.append(Problem(FAILED_TO_PARSE_SPEC, message, _FIX_STRUCTURE, pointer=pointer))
        if len(problems) > MAX_PROBLEMS:
            break
    return problems


def _explain(error) -> list[tuple[list, str]]:
    """(instance path, readable message) for one error, explaining a failed oneOf/anyOf.

    The official schemas say "a parameter is oneOf [Parameter, Reference]", and a
    failed oneOf only says that no branch matched. The branch the author meant is
    the one that does not fail on a discriminator: a missing `$ref` (so: not meant
    as a Reference) or a single-value `enum`/`const` on `in`, `type` or `flow` (so:
    another kind of parameter or security scheme). Among those, the branch with the
    fewest errors is explained, recursively. When every branch fails on a
    discriminator, the message lists the values it accepts. Example: a parameter
    `{name: id, in: path, schema: {type: integr}}` gives
    "#/.../parameters/0/schema/type: "integr" is not one of "array", ...".
    """
    kind = error.kind
    context = getattr(kind, "context", None) if kind.name in ("oneOf", "anyOf") else None
    if not context:
        return [(list(error.instance_path), _message(error))]
    path = list(error.instance_path)
    meant = [branch for branch in context if branch and not _discriminator_miss(branch, path)]
    if not meant:
        return [(path, _no_branch_message(context, path))]
    if all(len(b) == 1 and b[0].kind.name == "required" for b in meant) and len(meant) > 1:
        fields = ", ".join(f"`{b[0].kind.property}`" for b in meant)
        return [(path, f"needs exactly one of the fields {fields}")]
    best = min(meant, key=len)
    return [explained for sub in best for explained in _explain(sub)]


_DISCRIMINATORS = frozenset({"in", "type", "flow"})


def _discriminator_miss(branch, path: list) -> bool:
    for sub in branch:
        name = sub.kind.name
        if name == "required" and sub.kind.property == "$ref" and list(sub.instance_path) == path:
            return True
        if name in ("enum", "const"):
            sub_path = list(sub.instance_path)
            options = sub.kind.options if name == "enum" else [sub.kind.expected_value]
            if (
                len(options) == 1
                and len(sub_path) == len(path) + 1
                and sub_path[:-1] == path
                and sub_path[-1] in _DISCRIMINATORS
            ):
                return True
    return False


def _no_branch_message(context, path: list) -> str:
    values: dict[str, list[str]] = {}
    for branch in context:
        for sub in branch:
            sub_path = list(sub.instance_path)
            if sub.kind.name in ("enum", "const") and sub_path[:-1] == path and sub_path:
                options = sub.kind.options if sub.kind.name == "enum" else [sub.kind.expected_value]
                shown = values.setdefault(str(sub_path[-1]), [])
                shown += [_short(o) for o in options if _short(o) not in shown]
    if values:
        field, options = next(iter(values.items()))
        return f"`{field}` must be one of {', '.join(options[:12])}"
    return "matches none of the forms the OpenAPI specification allows here"


def _message(error) -> str:
    kind = error.kind
    name = kind.name
    if name == "required":
        return f"the required field `{_short(kind.property, quote=False)}` is missing"
    if name in ("additionalProperties", "unevaluatedProperties"):
        fields = ", ".join(f"`{_short(f, quote=False, limit=40)}`" for f in kind.unexpected[:5])
        more = f" and {len(kind.unexpected) - 5} more" if len(kind.unexpected) > 5 else ""
        return f"unexpected field {fields}{more}"
    if name == "minProperties" and kind.limit == 1:
        return "must not be empty"
    message = error.message
    if _MASK in message:
        message = message.replace(_MASK, _describe(error.instance))
    return message[:300]


def _describe(value) -> str:
    if isinstance(value, dict):
        return "the object"
    if isinstance(value, list):
        return "the list"
    return _short(value)


# --- Helpers --------------------------------------------------------------------------


def _failed(message: str, pointer: str = "", fix: str = _FIX_STRUCTURE) -> ImportFailed:
    return ImportFailed([Problem(FAILED_TO_PARSE_SPEC, message, fix, pointer=pointer)])


def _short(value, *, quote: bool = True, limit: int = _SHOWN) -> str:
    """A value from the document, cut short so that no message quotes much of it."""
    if isinstance(value, str):
        text = json.dumps(value, ensure_ascii=False) if quote else value
    elif isinstance(value, dict | list):
        text = "an object" if isinstance(value, dict) else "a list"
    else:
        try:
            text = json.dumps(value)
        except (TypeError, ValueError):
            text = type(value).__name__
    return text if len(text) <= limit else text[: limit - 1] + "\u2026"


def _escape(token) -> str:
    return str(token).replace("~", "~0").replace("/", "~1")


def _pointer(link: _Link) -> str:
    """The JSON pointer of a walk link. Example: ("get", ("/pets", ("paths", None)))
    -> "#/paths/~1pets/get"."""
    tokens = []
    while link is not None:
        token, link = link
        tokens.append(token)
    return _pointer_from_path(reversed(tokens))


def _pointer_from_path(path) -> str:
    """A JSON pointer, its middle cut out when it is long (deep, or with long keys)."""
    pointer = "#" + "".join("/" + _escape(token) for token in path)
    if len(pointer) > _MAX_POINTER:
        half = _MAX_POINTER // 2
        pointer = pointer[:half] + "\u2026" + pointer[-half:]
    return pointer
