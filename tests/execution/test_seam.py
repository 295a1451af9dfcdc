"""One outbound-HTTP seam: no application module but execution/http.py imports an HTTP
client (ruff's banned-api says the same in `make lint`; this holds even without it)."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ["actions", "importer", "execution", "opencx"]
CLIENTS = {"requests", "urllib3", "httpx", "aiohttp", "urllib.request", "http.client", "pycurl"}
SEAM = ROOT / "execution" / "http.py"


def imported_modules(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def is_client(name: str) -> bool:
    return any(name == client or name.startswith(client + ".") for client in CLIENTS)


def test_only_the_seam_imports_an_http_client():
    offenders = {
        str(path.relative_to(ROOT)): sorted(n for n in imported_modules(path) if is_client(n))
        for package in PACKAGES
        for path in (ROOT / package).rglob("*.py")
        if path != SEAM
    }
    assert {path: names for path, names in offenders.items() if names} == {}


def test_the_check_does_see_the_seam_itself():
    assert {"requests", "urllib3"} <= {n for n in imported_modules(SEAM) if is_client(n)}
