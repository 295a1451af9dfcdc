"""Names, tool names and descriptions for the actions a spec's operations become.

Names are what staff read in the dashboard; tool names are what the AI calls, and
they must survive re-imports unchanged (a tool name is part of the agent's
configuration). Both are computed from each operation alone; only a clash between
operations changes them, and then every operation of the clash is treated alike, so
the result never depends on the order of the operations in the spec.
"""

import re
import unicodedata
from collections import Counter

from actions.validators import NAME_MIN_LENGTH, TOOL_NAME_MAX_LENGTH, TOOL_NAME_RE
from importer.normalize import clean_text
from importer.refs import short_hash

NAME_MAX_LENGTH = 200  # actions.models.Action.name
_HASH_LENGTH = 8
_SPACES_RE = re.compile(r"\s+")
_NOT_TOOL_CHARS_RE = re.compile(r"[^A-Za-z0-9_-]+")


def one_line(text: object) -> str:
    """Text as a single trimmed line."""
    return _SPACES_RE.sub(" ", clean_text(str(text))).strip() if text is not None else ""


def _fit(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def natural_name(summary: str, operation_id: str, key: str) -> str:
    """The summary, else the operationId, else `METHOD /path`; the first that is long
    enough to be a name (NAME_MIN_LENGTH).

    >>> natural_name("List pets", "listPets", "GET /pets")
    'List pets'
    >>> natural_name("Get", "getPet", "GET /pets/{petId}")
    'getPet'
    >>> natural_name("", "", "GET /")
    'GET /'
    """
    for candidate in (one_line(summary), one_line(operation_id)):
        if len(candidate) >= NAME_MIN_LENGTH:
            return _fit(candidate, NAME_MAX_LENGTH)
    return _fit(key, NAME_MAX_LENGTH)


def unique_names(natural: dict[str, str]) -> dict[str, str]:
    """Names (operation key -> name) made unique, ignoring case as the database does.

    Every operation of a clash gets its `METHOD /path` appended, so none of them
    depends on which came first:

    >>> unique_names({"GET /a": "Fetch it", "GET /b": "fetch it", "GET /c": "Other"})
    {'GET /a': 'Fetch it (GET /a)', 'GET /b': 'fetch it (GET /b)', 'GET /c': 'Other'}
    """
    counts = Counter(name.casefold() for name in natural.values())
    names = {}
    for key, name in natural.items():
        if counts[name.casefold()] > 1:
            suffix = f" ({key})"
            name = _fit(name, max(NAME_MAX_LENGTH - len(suffix), NAME_MIN_LENGTH)) + suffix
            name = _fit(name, NAME_MAX_LENGTH)
        names[key] = name
    # Still clashing (an operation summarised as another's disambiguated name, or
    # a cut at 200 characters): the hash of the operation key settles it.
    counts = Counter(name.casefold() for name in names.values())
    for key, name in names.items():
        if counts[name.casefold()] > 1:
            suffix = f" [{short_hash(key)}]"
            names[key] = _fit(name, NAME_MAX_LENGTH - len(suffix)) + suffix
    return names


def natural_tool_name(operation_id: str, method: str, path: str) -> tuple[str, bool]:
    """A tool name from the operationId (or, without one, the method and path), and
    whether it is the operationId exactly.

    >>> natural_tool_name("listPets", "GET", "/pets")
    ('listPets', True)
    >>> natural_tool_name("repos/get-content", "GET", "/repos/{owner}/{repo}/contents/{path}")
    ('repos_get-content', False)
    >>> natural_tool_name("", "GET", "/pets/{pet-id}/photos")
    ('get_pets_pet-id_photos', False)
    """
    if operation_id and TOOL_NAME_RE.match(operation_id):
        return operation_id, True
    for source in (operation_id, f"{method.lower()} {path}"):
        ascii_text = unicodedata.normalize("NFKD", source).encode("ascii", "ignore").decode()
        name = _NOT_TOOL_CHARS_RE.sub("_", ascii_text).strip("_-")
        if name:
            return name, False
    return method.lower(), False


def unique_tool_names(natural: dict[str, tuple[str, bool]]) -> dict[str, str]:
    """Tool names (operation key -> tool name): unique, at most 64 characters, and
    stable across re-imports.

    - An operationId that is already a valid tool name is the tool name. (OpenAPI
      makes operationIds unique; duplicates all get the hash below.)
    - Any other name (sanitized, or derived from method and path) stays as it is
      when it fits and no other operation of the spec has it.
    - Otherwise it is cut to 55 characters plus `_` and a hash of the operation key:
      the same operation always gets the same name, whatever else the spec holds.

    >>> names = unique_tool_names({"GET /a/b": ("get_a_b", False),
    ...                            "GET /a_b": ("get_a_b", False),
    ...                            "GET /c": ("getC", True)})
    >>> names["GET /c"], names["GET /a/b"], names["GET /a_b"]
    ('getC', 'get_a_b_840b7118', 'get_a_b_3b7805aa')
    """
    exact = Counter(name for name, is_exact in natural.values() if is_exact)
    every = Counter(name for name, _is_exact in natural.values())
    names: dict[str, str] = {}
    for key, (name, is_exact) in natural.items():
        if is_exact:
            keeps = exact[name] == 1
        else:
            keeps = every[name] == 1 and len(name) <= TOOL_NAME_MAX_LENGTH
        if keeps:
            names[key] = name
        else:
            names[key] = _hashed(name, key)
    # A hashed name could only clash with another by accident (an operationId that
    # happens to be `<name>_<hash>`): every clashing name that is not an exact
    # operationId takes a salted hash, all alike, so order still does not matter.
    for salt in range(1, 10):
        taken = Counter(names.values())
        clashing = [
            key
            for key, name in names.items()
            if taken[name] > 1 and not (natural[key][1] and exact[natural[key][0]] == 1)
        ]
        if not clashing:
            break
        for key in clashing:
            names[key] = _hashed(natural[key][0], f"{key}#{salt}")
    return names


def _hashed(name: str, key: str) -> str:
    keep = TOOL_NAME_MAX_LENGTH - _HASH_LENGTH - 1
    return f"{name[:keep].rstrip('_-') or 'op'}_{short_hash(key)}"


def describe(
    summary: str,
    description: str,
    method: str,
    path: str,
    title: str = "",
    deprecated: bool = False,
) -> str:
    """The action's description: what the AI reads to pick it.

    The summary and description as the spec gives them; when that says too little
    (under 20 characters), a line saying which call this is:

    >>> describe("Get a pet", "", "GET", "/pets/{petId}", "Petstore")
    'Get a pet\\n\\nCalls GET /pets/{petId} on Petstore.'
    >>> describe("", "", "GET", "/", "")
    'Calls the API endpoint GET /.'
    """
    summary_text = one_line(summary)
    body = clean_text(str(description)).strip() if description else ""
    parts = []
    if summary_text and not body.startswith(summary_text):
        parts.append(summary_text)
    if body:
        parts.append(body)
    text = "\n\n".join(parts)
    if len(text) < 20:
        on = f" on {one_line(title)}" if one_line(title) else ""
        call = f"Calls {method} {path}{on}."
        if len(call) < 20:
            call = f"Calls the API endpoint {method} {path}."
        text = f"{text}\n\n{call}" if text else call
    if deprecated:
        text += "\n\nDeprecated: prefer another action when one fits."
    return text
