"""The base URL an operation is called at: an override, or what the spec declares.

Rules, in order:
1. A base URL override (`serverBaseUrl` in the API, `--base-url` on the command line)
   wins for every operation. It must be an absolute https:// URL.
2. OpenAPI 3.x: the operation's `servers`, else its path item's, else the document's;
   the most specific list that is declared decides. Within it the first https://
   server is used, with its `{variables}` filled from their defaults.
3. Swagger 2.0: `host` + `basePath`, over https when `schemes` (the operation's, else
   the document's) lists it or is absent.

A relative server URL (`/v1`, resolved against wherever the spec was downloaded
from), a 2.0 document without `host`, or only `http://` servers cannot be called:
that is `cannot_determine_api_endpoint`, fixed by passing a base URL override. It is
decided per operation, because operation-level servers can differ; the converter
fails the whole document only when no operation has a base URL.
"""

import re

from django.core.exceptions import ValidationError

from actions.validators import parse_endpoint

OVERRIDE_FIX = (
    "Pass a base URL override: serverBaseUrl in the import API, --base-url on the "
    "command line, or the base URL field of the dashboard's import form "
    "(for example https://api.example.com/v1)."
)


class NoBaseUrl(Exception):
    """Why an operation has no usable base URL (`str()`), and where (`pointer`)."""

    def __init__(self, message: str, at: str = "") -> None:
        self.pointer = at
        super().__init__(message)


def check_override(base_url: str) -> str:
    """A base URL override, without its trailing slash; NoBaseUrl when unusable.

    >>> check_override("https://api.example.com/v2/")
    'https://api.example.com/v2'
    """
    cleaned = base_url.strip().rstrip("/")
    _check_absolute_https(cleaned, f"The base URL override “{base_url}”")
    return cleaned


def base_url(
    document: dict,
    version: str,
    path_item: dict,
    operation: dict,
    override: str | None,
    at: tuple[str, str] = ("", ""),
) -> str:
    """The absolute https:// base URL of one operation, without a trailing slash;
    `at` holds the JSON pointers of its path item and of the operation, for problems.

    >>> doc = {"servers": [{"url": "https://{region}.example.com/v1",
    ...                     "variables": {"region": {"default": "eu"}}}]}
    >>> base_url(doc, "3.0", {}, {}, None)
    'https://eu.example.com/v1'
    >>> base_url(doc, "3.0", {}, {"servers": [{"url": "https://upload.example.com"}]}, None)
    'https://upload.example.com'
    >>> base_url({"host": "api.example.com", "basePath": "/v2/"}, "2.0", {}, {}, None)
    'https://api.example.com/v2'
    """
    if override is not None:
        return override
    if version == "2.0":
        return _swagger_base_url(document, operation, at[1])
    for owner, owner_at in ((operation, at[1]), (path_item, at[0]), (document, "#")):
        servers = owner.get("servers") if isinstance(owner, dict) else None
        if isinstance(servers, list) and servers:
            try:
                return _pick_server(servers)
            except NoBaseUrl as error:
                raise NoBaseUrl(str(error), f"{owner_at}/servers") from None
    raise NoBaseUrl("The spec declares no servers, so the API's address is unknown.", "#/servers")


def _pick_server(servers: list) -> str:
    urls = [_expand(server) for server in servers if isinstance(server, dict)]
    urls = [url.rstrip("/") for url in urls if url is not None]
    for url in urls:
        if url.lower().startswith("https://"):
            _check_absolute_https(url, f"The server URL “{url}”")
            return url
    if any(url.lower().startswith("http://") for url in urls):
        raise NoBaseUrl("The spec's servers are http:// only; actions call HTTPS endpoints only.")
    if urls:
        raise NoBaseUrl(
            f"The server URL “{urls[0] or '/'}” is relative: it is resolved against "
            "wherever the spec is hosted, which an uploaded file does not say."
        )
    raise NoBaseUrl("The spec's servers have no url.")


def _expand(server: dict) -> str | None:
    """A server URL with `{variables}` filled from their defaults (literally: a default
    such as `v1/beta` is part of the URL, not a value to percent-encode).

    >>> _expand({"url": "https://{env}.example.com:{port}/", "variables": {
    ...     "env": {"default": "api", "enum": ["api", "sandbox"]}, "port": {"default": 8443}}})
    'https://api.example.com:8443/'
    """
    url = server.get("url")
    if not isinstance(url, str):
        return None
    variables = server.get("variables")
    if isinstance(variables, dict):
        for name, variable in variables.items():
            if isinstance(variable, dict) and "default" in variable:
                url = url.replace("{" + str(name) + "}", str(variable["default"]))
    return url.strip()


def _swagger_base_url(document: dict, operation: dict, at_operation: str) -> str:
    host = document.get("host")
    if not isinstance(host, str) or not host.strip():
        raise NoBaseUrl(
            "The Swagger 2.0 spec has no host, so the API's address is unknown.", "#/host"
        )
    schemes, schemes_at = operation.get("schemes"), f"{at_operation}/schemes"
    if not isinstance(schemes, list):
        schemes, schemes_at = document.get("schemes"), "#/schemes"
    if isinstance(schemes, list) and schemes and "https" not in schemes:
        listed = ", ".join(str(s) for s in schemes)
        raise NoBaseUrl(
            f"The spec's schemes are {listed}, without https; actions call HTTPS endpoints only.",
            schemes_at,
        )
    base_path = document.get("basePath")
    base_path = base_path.strip() if isinstance(base_path, str) else ""
    if base_path and not base_path.startswith("/"):
        base_path = "/" + base_path
    url = f"https://{host.strip().rstrip('/')}{base_path}".rstrip("/")
    try:
        _check_absolute_https(url, f"The host “{host}” with basePath “{base_path}”")
    except NoBaseUrl as error:
        raise NoBaseUrl(str(error), "#/host") from None
    return url


def _check_absolute_https(url: str, subject: str) -> None:
    unfilled = re.search(r"\{([^{}]*)\}", url)
    if unfilled:
        raise NoBaseUrl(
            f"{subject} still has a placeholder {{{unfilled.group(1)}}} that no server "
            "variable default fills."
        )
    try:
        parse_endpoint(url)
    except ValidationError as error:
        raise NoBaseUrl(f"{subject} is not a usable base URL: {error.messages[0]}") from None
