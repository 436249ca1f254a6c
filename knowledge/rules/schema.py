"""JSON Schema of a business-rule file (`data/knowledge/rules/*.yml`), one process per file.

Designers edit YAML; this schema (plus the cross-checks in `book.py`: facts used must be
declared, ids unique, templates name declared facts) rejects a broken file with the path of
the offending field, and the running action server keeps the last good version.
"""

from __future__ import annotations

from typing import Any

OPERATORS = ("eq", "ne", "lt", "lte", "gt", "gte", "in", "not_in", "is_set")
NAME = {"type": "string", "pattern": "^[a-z][a-z0-9_]{0,63}$"}
SCALAR = {"type": ["string", "number", "boolean"]}
BILINGUAL = {
    "type": "object",
    "required": ["zh", "en"],
    "additionalProperties": False,
    "properties": {
        "zh": {"type": "string", "minLength": 1, "maxLength": 1000},
        "en": {"type": "string", "minLength": 1, "maxLength": 1000},
    },
}
STEPS = {
    "type": "object",
    "required": ["zh", "en"],
    "additionalProperties": False,
    "properties": {
        lang: {
            "type": "array",
            "minItems": 1,
            "maxItems": 20,
            "items": {"type": "string", "minLength": 1, "maxLength": 300},
        }
        for lang in ("zh", "en")
    },
}


def _leaf(op: str) -> dict[str, Any]:
    if op in ("in", "not_in"):
        value: dict[str, Any] = {"type": "array", "minItems": 1, "maxItems": 100, "items": SCALAR}
    elif op == "is_set":
        value = {"type": "boolean"}
    elif op in ("eq", "ne"):
        value = SCALAR
    else:
        value = {"type": "number"}
    return {
        "type": "object",
        "required": ["fact", op],
        "additionalProperties": False,
        "properties": {"fact": NAME, op: value},
    }


RULE_FILE_SCHEMA: dict[str, Any] = {
    "$schema": "http://json-schema.org/draft-07/schema#",
    "type": "object",
    "required": ["process", "version", "title", "inputs", "rules", "default"],
    "additionalProperties": False,
    "definitions": {
        "condition": {
            "oneOf": [
                {"type": "object", "required": ["all"], "additionalProperties": False,
                 "properties": {"all": {"type": "array", "minItems": 1, "items": {"$ref": "#/definitions/condition"}}}},
                {"type": "object", "required": ["any"], "additionalProperties": False,
                 "properties": {"any": {"type": "array", "minItems": 1, "items": {"$ref": "#/definitions/condition"}}}},
                {"type": "object", "required": ["not"], "additionalProperties": False,
                 "properties": {"not": {"$ref": "#/definitions/condition"}}},
                *[_leaf(op) for op in OPERATORS],
            ]
        },
        "decision": {
            "type": "object",
            "required": ["outcome", "say"],
            "properties": {
                "outcome": NAME,
                "say": BILINGUAL,
                "steps": STEPS,
            },
        },
    },
    "properties": {
        "process": NAME,
        "version": {"type": "integer", "minimum": 1},
        "title": BILINGUAL,
        "description": {"type": "string", "maxLength": 2000},
        "inputs": {
            "type": "object",
            "minProperties": 1,
            "maxProperties": 50,
            "propertyNames": NAME,
            "additionalProperties": {
                "type": "object",
                "required": ["type", "label"],
                "additionalProperties": False,
                "properties": {
                    "type": {"enum": ["string", "integer", "number", "boolean"]},
                    "label": BILINGUAL,
                    "required": {"type": "boolean"},
                    "enum": {"type": "array", "minItems": 1, "items": SCALAR},
                    "minimum": {"type": "number"},
                    "maximum": {"type": "number"},
                    "maxLength": {"type": "integer", "minimum": 1},
                    "value_labels": {"type": "object", "maxProperties": 100, "additionalProperties": BILINGUAL},
                },
            },
        },
        "rules": {
            "type": "array",
            "minItems": 1,
            "maxItems": 200,
            "items": {
                "allOf": [{"$ref": "#/definitions/decision"}],
                "type": "object",
                "required": ["id", "when"],
                "additionalProperties": False,
                "properties": {
                    "id": NAME, "when": {"$ref": "#/definitions/condition"},
                    "outcome": NAME, "say": BILINGUAL, "steps": STEPS, "note": {"type": "string"},
                },
            },
        },
        "default": {
            "allOf": [{"$ref": "#/definitions/decision"}],
            "type": "object",
            "additionalProperties": False,
            "properties": {"outcome": NAME, "say": BILINGUAL, "steps": STEPS},
        },
    },
}  # fmt: skip
