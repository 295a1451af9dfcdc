"""Local `$ref`s of an OpenAPI document: parse them, look them up, name them.

A reference is a JSON pointer into the same document, `#/components/schemas/Pet`
(in 3.2, also spelled with the document's own `$self` URI, see local_ref).
Anything else (another file, a URL, an `$anchor`) cannot be followed here: the
validator refuses external references before conversion, and whatever slips through
is reported on the operation that uses it, never fetched.
"""

import hashlib
import re
from typing import Any
from urllib.parse import unquote, urldefrag, urljoin

# How many `$ref`s may chain (a parameter that is a $ref to a $ref...) before we call it
# a loop: real specs chain two or three.
MAX_REF_HOPS = 32

FIX_REF = (
    "Point the $ref at something this document defines. A spec split over several "
    "files must be bundled into one first (for example with `redocly bundle` or "
    "`swagger-cli bundle`)."
)

_CLEAN_NAME_RE = re.compile(r"^[A-Za-z0-9_.-]+\Z")
# Names normalize.Schemas gives the deeper copies of a recursive schema; a spec's own
# component never keeps such a name, so the two cannot collide.
_COPY_NAME_RE = re.compile(r"__(level\d+|innermost)\Z")
_UNCLEAN_RE = re.compile(r"[^A-Za-z0-9_.-]+")


class RefError(Exception):
    """A `$ref` that cannot be followed; `str()` says why."""

    def __init__(self, ref: object, message: str) -> None:
        self.ref = ref
        super().__init__(f"$ref “{ref}” {message}")


def escape_token(token: object) -> str:
    """One JSON-pointer token: `~` and `/` escaped (RFC 6901)."""
    return str(token).replace("~", "~0").replace("/", "~1")


def pointer(*tokens: object) -> str:
    """A JSON pointer as reports show it.

    >>> pointer("paths", "/pets/{petId}", "get")
    '#/paths/~1pets~1{petId}/get'
    """
    return "#" + "".join("/" + escape_token(token) for token in tokens)


def parse_ref(ref: object) -> tuple[str, ...]:
    """The tokens of a local reference.

    >>> parse_ref("#/components/schemas/Pet")
    ('components', 'schemas', 'Pet')
    >>> parse_ref("#/paths/~1pets/get/parameters/0")
    ('paths', '/pets', 'get', 'parameters', '0')
    >>> parse_ref("#/definitions/Pet%20Owner")
    ('definitions', 'Pet Owner')
    """
    if not isinstance(ref, str):
        raise RefError(ref, "is not a string")
    if not ref.startswith("#"):
        raise RefError(
            ref, "points outside this document; bundle your spec into one file (no external $ref)"
        )
    fragment = ref[1:]
    if not fragment:
        return ()
    if not fragment.startswith("/"):
        raise RefError(ref, "is not a JSON pointer (anchors are not supported)")
    return tuple(
        unquote(token).replace("~1", "/").replace("~0", "~") for token in fragment[1:].split("/")
    )


def local_ref(ref: object, self_uri: object) -> object:
    """`ref` as a `#...` reference when it points into this document by way of its
    OpenAPI 3.2 `$self` URI (resolved against it, as 3.2 says); else `ref` unchanged.

    >>> me = "https://example.com/api/openapi.yaml"
    >>> local_ref("https://example.com/api/openapi.yaml#/components/schemas/Pet", me)
    '#/components/schemas/Pet'
    >>> local_ref("openapi.yaml#/components/schemas/Pet", me)
    '#/components/schemas/Pet'
    >>> local_ref("common.yaml#/components/schemas/Error", me)
    'common.yaml#/components/schemas/Error'
    """
    if not (isinstance(ref, str) and isinstance(self_uri, str) and self_uri) or ref[:1] == "#":
        return ref
    if "#" in self_uri:  # not allowed; ignore it rather than guess
        return ref
    try:
        target, fragment = urldefrag(urljoin(self_uri, ref))
    except ValueError:
        return ref
    return f"#{fragment}" if target == self_uri else ref


def short_hash(text: str) -> str:
    """8 hex digits that identify `text`; stable across runs and machines."""
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:8]


class Document:
    """An OpenAPI document with memoized local reference lookups."""

    def __init__(self, root: Any) -> None:
        self.root = root
        self.self_uri = root.get("$self") if isinstance(root, dict) else None
        self._found: dict[tuple[str, ...], Any] = {}

    def lookup(self, ref: object) -> tuple[tuple[str, ...], Any]:
        """The target of a local reference, as (tokens, value); RefError when missing."""
        tokens = parse_ref(local_ref(ref, self.self_uri))
        if tokens in self._found:
            return tokens, self._found[tokens]
        node = self.root
        for token in tokens:
            if isinstance(node, dict):
                if token in node:
                    node = node[token]
                    continue
                # YAML reads `200:` as an integer key.
                if token.lstrip("-").isdigit() and int(token) in node:
                    node = node[int(token)]
                    continue
            elif isinstance(node, list) and token.isdigit() and int(token) < len(node):
                node = node[int(token)]
                continue
            raise RefError(ref, "points at nothing in this document")
        self._found[tokens] = node
        return tokens, node

    def follow(self, node: Any, at: str) -> tuple[Any, str]:
        """Follow a chain of `$ref`s (a parameter, request body or path item that is a
        reference) to the object itself, and the pointer where it lives.

        >>> doc = Document({"components": {"parameters": {"id": {"name": "id", "in": "path"}}}})
        >>> doc.follow({"$ref": "#/components/parameters/id"}, "#/paths/~1a/get/parameters/0")
        ({'name': 'id', 'in': 'path'}, '#/components/parameters/id')
        """
        for _ in range(MAX_REF_HOPS):
            if not (isinstance(node, dict) and "$ref" in node):
                return node, at
            tokens, node = self.lookup(node["$ref"])
            at = pointer(*tokens)
        raise RefError(at, f"starts a chain of more than {MAX_REF_HOPS} references (a loop?)")


def def_name(tokens: tuple[str, ...], version: str) -> str:
    """The key under `$defs` for the schema a reference points at.

    A component keeps its own name when it is already a safe JSON-pointer token; any
    other target gets a sanitized name plus a hash of its pointer, so two different
    targets never share a name (`Pet Owner` and `Pet_Owner` stay apart):

    >>> def_name(("components", "schemas", "Pet"), "3.0")
    'Pet'
    >>> def_name(("definitions", "Pet Owner"), "2.0")
    'Pet_Owner_3b7d3fc2'
    >>> def_name(("components", "schemas", "Pet", "properties", "tag"), "3.1")
    'Pet_properties_tag_7327c208'
    """
    prefix = ("definitions",) if version == "2.0" else ("components", "schemas")
    tail = tokens[len(prefix) :] if tokens[: len(prefix)] == prefix else tokens
    if (
        len(tail) == 1
        and tail is not tokens
        and _CLEAN_NAME_RE.match(tail[0])
        and not _COPY_NAME_RE.search(tail[0])
    ):
        return tail[0]
    base = _UNCLEAN_RE.sub("_", "_".join(tail)).strip("_")[:48] or "schema"
    return f"{base}_{short_hash(pointer(*tokens))}"
