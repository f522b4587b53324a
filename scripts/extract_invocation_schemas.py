"""Make the compact OpenAPI extract the double serves at GET /openapi.json.

The SDK reads field types and constraints from ``components.schemas`` of a server's
``/openapi.json``: every schema with ``"class": "invocation"`` plus the component schemas
their inputs refer to. This script keeps exactly that from a full capture (1.7 MB for 6.14.2)
and drops what the SDK never reads (paths, node attribute boilerplate, long descriptions of
non-input schemas), so the double can ship it as package data.

    python scripts/extract_invocation_schemas.py ../shared/invokeai/openapi-6.14.2.json \
        invokeai_client/testing/openapi-6.14.2.min.json
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

KEEP_NODE_KEYS = ("class", "title", "version", "classification", "output", "type", "required")


def refs_in(value: Any) -> set[str]:
    found: set[str] = set()
    if isinstance(value, dict):
        ref = value.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/components/schemas/"):
            found.add(ref.rsplit("/", 1)[-1])
        for item in value.values():
            found |= refs_in(item)
    elif isinstance(value, list):
        for item in value:
            found |= refs_in(item)
    return found


def compact_node(schema: dict[str, Any]) -> dict[str, Any]:
    node = {key: schema[key] for key in KEEP_NODE_KEYS if key in schema}
    properties: dict[str, Any] = {}
    for name, prop in schema.get("properties", {}).items():
        if name == "id":
            properties[name] = {"type": "string", "field_kind": "node_attribute"}
            continue
        if name in ("is_intermediate", "use_cache", "type"):
            keep = ("default", "const", "field_kind", "type")
            properties[name] = {k: v for k, v in prop.items() if k in keep}
            continue
        properties[name] = {
            key: value
            for key, value in prop.items()
            if not (key == "orig_default" and value == prop.get("default"))
        }
    node["properties"] = properties
    return node


def extract(doc: dict[str, Any]) -> dict[str, Any]:
    schemas: dict[str, Any] = doc["components"]["schemas"]
    keep: dict[str, Any] = {}
    pending: list[str] = []
    for name, schema in schemas.items():
        if schema.get("class") == "invocation":
            keep[name] = compact_node(schema)
            pending.extend(refs_in(keep[name]["properties"]))
    while pending:
        name = pending.pop()
        if name in keep or name not in schemas:
            continue
        keep[name] = schemas[name]
        pending.extend(refs_in(schemas[name]))
    return {
        "openapi": doc.get("openapi", "3.1.0"),
        "info": doc.get("info", {}),
        "paths": {},
        "components": {"schemas": dict(sorted(keep.items()))},
    }


def main(argv: list[str]) -> int:
    if len(argv) != 3:
        print(__doc__)
        return 2
    doc = json.loads(Path(argv[1]).read_text())
    out = extract(doc)
    Path(argv[2]).write_text(json.dumps(out, separators=(",", ":"), sort_keys=False) + "\n")
    count = sum(1 for s in out["components"]["schemas"].values() if s.get("class") == "invocation")
    print(
        f"{argv[2]}: {count} invocations, {len(out['components']['schemas'])} schemas, "
        f"{Path(argv[2]).stat().st_size} bytes"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
