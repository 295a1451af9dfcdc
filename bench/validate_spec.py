"""Benchmark: the import's first two steps (load_document + validate_document).

    python bench/validate_spec.py              # ours, then openapi-spec-validator's
    python bench/validate_spec.py --no-peer    # ours only (seconds instead of ~30 s)

For GitHub's REST API spec (13 MB JSON, OpenAPI 3.0, 1,223 operations) and
Kubernetes' (4 MB JSON, Swagger 2.0, 1,123 operations), from ../shared/specs:

- ours: load_document (orjson) and validate_document (version, $refs, the official
  OpenAPI schema through jsonschema-rs), cold (first call in the process: compiles
  the validator) and warm (median of --runs);
- the peer: openapi-spec-validator 0.9 on the same parsed document, with handlers
  that refuse every fetch, once (it takes ~17 s on GitHub's spec);

then our time over the whole corpus (172 files). Needs no database.
"""

import argparse
import csv
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT.parent / "shared" / "specs"
SPECS = {
    "GitHub (3.0, 13 MB)": "npm/octokit__openapi/generated/api.github.com.json",
    "Kubernetes (2.0, 4 MB)": (
        "github/kubernetes-client__python/kubernetes/swagger.json.unprocessed"
    ),
}
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "opencx.settings")
os.environ.setdefault("SECRET_KEY", "bench-" + "x" * 50)
os.environ.setdefault("SECRET_ENCRYPTION_KEYS", "G7Z692euxmDO3tFYdF_0ce5dCaLS2bt3A7dGl86sbsU=")
os.environ.setdefault("LOG_LEVEL", "WARNING")


def ours(data: bytes, filename: str) -> tuple[float, float, str]:
    from importer.drafts import ImportFailed
    from importer.load import load_document
    from importer.validate import validate_document

    started = time.perf_counter()
    document = load_document(data, filename)
    loaded = time.perf_counter()
    try:
        verdict = validate_document(document)
    except ImportFailed as failure:
        verdict = f"failed ({len(failure.problems)} problems)"
    return loaded - started, time.perf_counter() - loaded, verdict


def peer(data: bytes) -> tuple[float, float, str]:
    import orjson
    from jsonschema_path import SchemaPath
    from openapi_spec_validator.shortcuts import get_validator_cls

    def deny(uri):
        raise PermissionError(f"refused to fetch {uri}")

    handlers = {"<all_urls>": deny, "file": deny, "http": deny, "https": deny}
    started = time.perf_counter()
    document = orjson.loads(data)
    loaded = time.perf_counter()
    errors = list(
        get_validator_cls(document)(SchemaPath.from_dict(document, handlers=handlers)).iter_errors()
    )
    verdict = "valid" if not errors else f"invalid ({len(errors)} errors)"
    return loaded - started, time.perf_counter() - loaded, verdict


def row(spec: str, who: str, load: float, check: float, verdict: str) -> None:
    print(f"{spec:24} {who:28} {load:8.3f} {check:9.3f} {load + check:8.3f}  {verdict}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--no-peer", action="store_true", help="skip openapi-spec-validator")
    parser.add_argument("--runs", type=int, default=5, help="warm runs of ours (median)")
    args = parser.parse_args()

    import django

    django.setup()
    print(f"{'spec':24} {'who':28} {'load s':>8} {'validate':>9} {'total':>8}  verdict")
    for label, relative in SPECS.items():
        data = (CORPUS / relative).read_bytes()
        row(label, "ours, cold", *ours(data, relative))
        warm = [ours(data, relative) for _ in range(args.runs)]
        load = statistics.median(w[0] for w in warm)
        check = statistics.median(w[1] for w in warm)
        row("", f"ours, warm (median of {args.runs})", load, check, warm[0][2])
        if not args.no_peer:
            peer_load, peer_check, verdict = peer(data)
            row("", "openapi-spec-validator", peer_load, peer_check, verdict)
            ratio = (peer_load + peer_check) / (load + check)
            print(f"{'':24} {'peer / ours (warm)':28} {ratio:27.0f}x")

    with (CORPUS / "INDEX.csv").open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    started = time.perf_counter()
    verdicts = [ours((CORPUS / row["file"]).read_bytes(), row["file"])[2] for row in rows]
    elapsed = time.perf_counter() - started
    failed = sum(1 for verdict in verdicts if verdict.startswith("failed"))
    print(f"\nWhole corpus, ours: {len(rows)} files in {elapsed:.2f} s "
          f"({len(rows) - failed} valid, {failed} failed_to_parse_spec)")  # fmt: skip


if __name__ == "__main__":
    main()
