"""Security requirements as static header and query rows that name global variables.

Secrets never live in the spec nor in the action: a row's value references the
organization's global variable `{{global.<NAME>}}`, NAME being the security scheme's
name made an identifier and upper-cased (`petstore_auth` -> PETSTORE_AUTH,
`api-key` -> API_KEY). The operation's `security` is used, else the document's;
of its alternatives, the first.

| scheme                                   | row                                        |
|------------------------------------------|--------------------------------------------|
| http bearer, oauth2, openIdConnect       | header `Authorization: Bearer {{global.N}}`|
| http basic (2.0 `basic`)                 | header `Authorization: Basic {{global.N}}` |
| any other http scheme (digest...)        | header `Authorization: {{global.N}}`       |
| apiKey in header                         | header `<name>: {{global.N}}`              |
| apiKey in query                          | query `<name>={{global.N}}`                |
| apiKey in cookie                         | header `Cookie: <name>={{global.N}}`       |
| mutualTLS, unknown or undefined schemes  | nothing (no header can carry them)         |

`{}` as the first alternative means "no authentication": no rows. Cookies, from
apiKey schemes and required cookie parameters alike, share one `Cookie` header.
"""

import re
from typing import Any

from importer.drafts import RowDraft
from importer.refs import Document, RefError


def global_name(scheme_name: str) -> str:
    """The global variable that holds a scheme's secret.

    >>> global_name("petstore_auth"), global_name("api-key"), global_name("2fa")
    ('PETSTORE_AUTH', 'API_KEY', '_2FA')
    """
    name = re.sub(r"[^A-Za-z0-9_]+", "_", scheme_name).strip("_").upper() or "API_KEY"
    return f"_{name}" if name[0].isdigit() else name


def security_rows(
    document: Document, version: str, operation: dict
) -> tuple[list[RowDraft], list[RowDraft], list[str]]:
    """(header rows, query rows, cookies) that authenticate one operation.

    >>> doc = {"components": {"securitySchemes": {
    ...     "bearerAuth": {"type": "http", "scheme": "bearer"},
    ...     "key": {"type": "apiKey", "in": "query", "name": "api_key"}}},
    ...     "security": [{"bearerAuth": [], "key": []}, {}]}
    >>> headers, queries, cookies = security_rows(Document(doc), "3.0", {})
    >>> [(r.key, r.value) for r in headers], [(r.key, r.value) for r in queries]
    ([('Authorization', 'Bearer {{global.BEARERAUTH}}')], [('api_key', '{{global.KEY}}')])
    """
    root = document.root
    requirements = operation.get("security")
    if not isinstance(requirements, list):
        requirements = root.get("security")
    if not isinstance(requirements, list) or not requirements:
        return [], [], []
    first = requirements[0]
    if not isinstance(first, dict):
        return [], [], []
    if version == "2.0":
        schemes = root.get("securityDefinitions")
    else:
        components = root.get("components")
        schemes = components.get("securitySchemes") if isinstance(components, dict) else None
    if not isinstance(schemes, dict):
        return [], [], []

    headers: list[RowDraft] = []
    queries: list[RowDraft] = []
    cookies: list[str] = []
    for scheme_name in first:
        scheme = schemes.get(scheme_name)
        try:
            scheme, _at = document.follow(scheme, "")
        except RefError:
            continue
        if not isinstance(scheme, dict):
            continue
        value = "{{global." + global_name(str(scheme_name)) + "}}"
        kind = scheme.get("type")
        if kind == "http":
            http = str(scheme.get("scheme", "")).lower()
            prefix = {"bearer": "Bearer ", "basic": "Basic "}.get(http, "")
            headers.append(_static("header", "Authorization", prefix + value))
        elif kind == "basic":
            headers.append(_static("header", "Authorization", "Basic " + value))
        elif kind in ("oauth2", "openIdConnect"):
            headers.append(_static("header", "Authorization", "Bearer " + value))
        elif kind == "apiKey":
            name = scheme.get("name")
            where = scheme.get("in")
            if not isinstance(name, str) or not name:
                continue
            if where == "header":
                headers.append(_static("header", name, value))
            elif where == "query":
                queries.append(_static("query", name, value))
            elif where == "cookie":
                cookies.append(f"{name}={value}")
    return _first_per_header(headers), queries, cookies


def _static(location: str, key: str, value: str) -> RowDraft:
    return RowDraft(location=location, key=key, kind="static", value=value, required=True)


def _first_per_header(rows: list[RowDraft]) -> list[RowDraft]:
    """Two schemes of one requirement can both want Authorization: the first keeps it."""
    seen: set[str] = set()
    kept = []
    for row in rows:
        if row.key.lower() not in seen:
            seen.add(row.key.lower())
            kept.append(row)
    return kept


def cookie_row(cookies: list[Any]) -> RowDraft | None:
    """One `Cookie` header for every cookie the call needs."""
    return _static("header", "Cookie", "; ".join(cookies)) if cookies else None
