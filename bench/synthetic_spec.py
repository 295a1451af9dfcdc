"""A synthetic N-operation OpenAPI spec, made of copies of GitHub's.

    python bench/synthetic_spec.py --operations 20000 --out /tmp/synthetic.json
    python bench/synthetic_spec.py --operations 20000 --components distinct --out ...

Copy 0 is GitHub's spec as it is (1,223 operations). Copies 1, 2... repeat its path
items under `/c<k>`, with `-c<k>` appended to every operationId and ` (copy <k>)` to
every summary, until exactly N operations (GET, PUT, POST, DELETE, PATCH) are there;
the last copy is cut short, path item by path item and method by method.

`--components`:

- `shared` (the default): every copy uses GitHub's components, as GitHub's own
  operations do. 20,000 operations are ~40 MB of compact JSON, under the import's
  default 50 MB limit.
- `distinct`: each copy also gets its own copy of the components its operations use
  (schemas, parameters, responses, headers, request bodies; `#/components/<kind>/X`
  becomes `X__c<k>`), so no work done for one copy's schemas can be reused by
  another: the same schemas-per-operation ratio as GitHub's. ~80 MB for 20,000
  operations (the import needs IMPORT_MAX_BYTES raised).

Nothing is written to the repository: the spec is built in memory, from the corpus at
../shared/specs, and written where --out says.
"""

import argparse
import re
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parent.parent
GITHUB = ROOT.parent / "shared" / "specs" / "npm/octokit__openapi/generated/api.github.com.json"
ACTION_METHODS = ("get", "put", "post", "delete", "patch")
COPIED_KINDS = ("schemas", "parameters", "responses", "headers", "requestBodies")
_KINDS = b"|".join(kind.encode() for kind in COPIED_KINDS)
_REF_RE = re.compile(rb'"#/components/(' + _KINDS + rb')/([^/"]+)')


def _renamed(value: object, suffix: bytes) -> object:
    """A deep copy of `value` whose component pointers name the copy's components."""
    return orjson.loads(_REF_RE.sub(rb'"#/components/\1/\2' + suffix, orjson.dumps(value)))


def _copy_path_item(item: dict, k: int, budget: int, distinct: bool) -> tuple[dict, int]:
    """Copy k of a path item, with at most `budget` operations; and how many it has."""
    copied = _renamed(item, f"__c{k}".encode()) if distinct else orjson.loads(orjson.dumps(item))
    kept = 0
    for method in [m for m in copied if m in ACTION_METHODS]:
        operation = copied[method]
        if kept == budget or not isinstance(operation, dict):
            del copied[method]
            continue
        kept += 1
        if isinstance(operation.get("operationId"), str):
            operation["operationId"] += f"-c{k}"
        if isinstance(operation.get("summary"), str):
            operation["summary"] += f" (copy {k})"
    return copied, kept


def synthetic_spec(source: dict, operations: int, *, distinct: bool = False) -> dict:
    """`source` (GitHub's spec, decoded) grown or cut to exactly `operations` operations."""
    spec = {key: value for key, value in source.items() if key != "paths"}
    spec["paths"] = paths = {}
    components = spec["components"] = {
        kind: dict(members) for kind, members in source.get("components", {}).items()
    }
    count, k = 0, 0
    while count < operations:
        for path, item in source["paths"].items():
            if count == operations:
                break
            if k == 0:  # GitHub's own path item, cut short if need be
                methods = [
                    m for m, op in item.items() if m in ACTION_METHODS and isinstance(op, dict)
                ]
                keep = set(methods[: operations - count])
                copied = {m: v for m, v in item.items() if m not in ACTION_METHODS or m in keep}
                kept = len(keep)
            else:
                copied, kept = _copy_path_item(item, k, operations - count, distinct)
            if kept:
                paths[path if k == 0 else f"/c{k}{path}"] = copied
                count += kept
        if distinct and k > 0:
            suffix = f"__c{k}"
            for kind in COPIED_KINDS:
                members = source.get("components", {}).get(kind, {})
                for name, member in _renamed(members, suffix.encode()).items():
                    components[kind][name + suffix] = member
        k += 1
    return spec


def count_operations(spec: dict) -> int:
    return sum(1 for item in spec["paths"].values() for method in item if method in ACTION_METHODS)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--operations", type=int, default=20_000)
    parser.add_argument("--components", choices=("shared", "distinct"), default="shared")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    source = orjson.loads(GITHUB.read_bytes())
    spec = synthetic_spec(source, args.operations, distinct=args.components == "distinct")
    data = orjson.dumps(spec)
    args.out.write_bytes(data)
    print(f"{args.out}: {count_operations(spec):,} operations, {len(data) / 1e6:.1f} MB")


if __name__ == "__main__":
    main()
