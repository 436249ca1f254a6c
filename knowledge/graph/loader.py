"""Load `data/knowledge/graph/*.yml` into a graph store: validate everything first, then replace.

The load is idempotent: a digest of the validated content is stored with the graph, and an
unchanged content is not written again. Invalid content raises ValidationFailed listing
file, section and row number, and nothing is written.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Union

import jsonschema
import yaml

from knowledge.errors import ValidationFailed
from knowledge.graph import queries as q

MAX_FILE_BYTES = 2_000_000
MAX_ROWS = 20_000

_TEXT = {"type": "string", "minLength": 1, "maxLength": 2000}
NODE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["id", "type", "name_zh", "name_en"],
    "additionalProperties": False,
    "properties": {
        "id": {"type": "string", "pattern": "^[a-z][a-z0-9_]{0,63}$"},
        "type": {"enum": list(q.NODE_TYPES)},
        "kind": {"type": "string", "pattern": "^[a-z][a-z0-9_]{0,63}$"},
        "name_zh": {"type": "string", "minLength": 1, "maxLength": 100},
        "name_en": {"type": "string", "minLength": 1, "maxLength": 100},
        "aliases": {"type": "array", "maxItems": 50, "items": {"type": "string", "minLength": 1, "maxLength": 60}},
        "description_zh": _TEXT,
        "description_en": _TEXT,
    },
}
RELATION_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["from", "type", "to"],
    "additionalProperties": False,
    "properties": {
        "from": {"type": "string"},
        "to": {"type": "string"},
        "type": {"enum": list(q.RELATION_TYPES)},
        "amount": {"type": "number", "minimum": 0},
        "unit": {"type": "string", "maxLength": 20},
        "period": {"type": "string", "maxLength": 20},
        "optional": {"type": "boolean"},
        "note_zh": _TEXT,
        "note_en": _TEXT,
    },
}
FILE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "nodes": {"type": "array", "items": {"type": "object"}},
        "relations": {"type": "array", "items": {"type": "object"}},
    },
}


def read_graph_dir(directory: Union[str, Path]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Validated nodes and relations (relation props split out under "props"), or ValidationFailed."""
    directory = Path(directory)
    files = sorted([*directory.glob("*.yml"), *directory.glob("*.yaml")])
    problems: list[tuple[str, str]] = []
    if not files:
        raise ValidationFailed([(str(directory), "no *.yml graph files")])
    nodes: list[tuple[str, dict[str, Any]]] = []
    relations: list[tuple[str, dict[str, Any]]] = []
    for path in files:
        doc = _read_yaml(path, problems)
        if doc is None:
            continue
        for section, bucket, schema in (("nodes", nodes, NODE_SCHEMA), ("relations", relations, RELATION_SCHEMA)):
            for number, row in enumerate(doc.get(section) or [], 1):
                where = f"{path.name} {section} row {number}"
                found = sorted(jsonschema.Draft7Validator(schema).iter_errors(row), key=lambda e: list(e.path))
                problems.extend((where, _message(err)) for err in found)
                if not found:
                    bucket.append((where, row))
    if not nodes and not problems:
        problems.append((str(directory), "no nodes: refusing to replace the graph with an empty one"))
    if len(nodes) + len(relations) > MAX_ROWS:
        problems.append((str(directory), f"more than {MAX_ROWS} nodes + relations"))
    ids: dict[str, str] = {}
    for where, node in nodes:
        if node["id"] in ids:
            problems.append((where, f"duplicate node id {node['id']!r} (first in {ids[node['id']]})"))
        ids.setdefault(node["id"], where)
    seen: set[tuple[str, str, str]] = set()
    for where, rel in relations:
        for end in ("from", "to"):
            if rel[end] not in ids:
                problems.append((where, f"{end} {rel[end]!r} is not a node id"))
        key = (rel["from"], rel["type"], rel["to"])
        if key in seen:
            problems.append((where, f"duplicate relation {rel['from']} -{rel['type']}-> {rel['to']}"))
        seen.add(key)
    if problems:
        raise ValidationFailed(problems)
    rels = [
        {
            "from": r["from"],
            "type": r["type"],
            "to": r["to"],
            "props": {k: v for k, v in r.items() if k not in RELATION_SCHEMA["required"]},
        }
        for _, r in relations
    ]
    return [node for _, node in nodes], rels


def _read_yaml(path: Path, problems: list[tuple[str, str]]) -> Any:
    try:
        if path.stat().st_size > MAX_FILE_BYTES:
            problems.append((path.name, f"file larger than {MAX_FILE_BYTES} bytes"))
            return None
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        problems.append((path.name, f"cannot read YAML: {exc}"))
        return None
    if doc is None:
        return {}
    errors = list(jsonschema.Draft7Validator(FILE_SCHEMA).iter_errors(doc))
    if errors:
        problems.extend((path.name, _message(err)) for err in errors)
        return None
    return doc


def _message(err: jsonschema.ValidationError) -> str:
    field = ".".join(str(p) for p in err.path)
    text = err.message if len(err.message) <= 200 else err.message[:200] + "..."
    return f"{field}: {text}" if field else text


def content_digest(nodes: list[dict[str, Any]], relations: list[dict[str, Any]]) -> str:
    canonical = json.dumps({"nodes": nodes, "relations": relations}, sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def load_into(store: Any, directory: Union[str, Path], force: bool = False) -> dict[str, int]:
    """Validate `directory` and replace the store's graph unless it already holds this content."""
    nodes, relations = read_graph_dir(directory)
    digest = content_digest(nodes, relations)
    changed = force or store.digest() != digest
    if changed:
        store.replace_graph(nodes, relations, digest)
    return {"nodes": len(nodes), "relations": len(relations), "changed": int(changed)}
