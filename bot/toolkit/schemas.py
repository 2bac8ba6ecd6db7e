"""JSON schemas made strict-mode compatible: every property required, optional ones
nullable, no additional properties, no `$ref` (OpenAI strict mode, and everyone else)."""

from __future__ import annotations

import copy
from typing import Any

from pydantic import BaseModel

from bot.i18n import N_ as N_  # re-exported: tools mark their card labels with it


def strict_json_schema(model: type[BaseModel]) -> dict[str, Any]:
    """The model's JSON schema, transformed to fit OpenAI strict mode (and everyone else)."""
    schema = model.model_json_schema()
    definitions = schema.pop("$defs", {})
    strict: dict[str, Any] = _strict(schema, definitions)
    return strict


def _strict(node: Any, definitions: dict[str, Any]) -> Any:
    if isinstance(node, list):
        return [_strict(item, definitions) for item in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        target = definitions[node["$ref"].rsplit("/", 1)[-1]]
        merged = {**copy.deepcopy(target), **{k: v for k, v in node.items() if k != "$ref"}}
        return _strict(merged, definitions)
    result: dict[str, Any] = {}
    for key, value in node.items():
        if key == "title":  # annotation noise; but a *property* named "title" is kept
            continue
        if key == "properties" and isinstance(value, dict):
            result[key] = {name: _strict(prop, definitions) for name, prop in value.items()}
        else:
            result[key] = _strict(value, definitions)
    if result.get("type") == "object" or "properties" in result:
        properties: dict[str, Any] = result.setdefault("properties", {})
        required = set(result.get("required", []))
        for key, prop in properties.items():
            if key not in required:
                properties[key] = _nullable(prop)
        result["required"] = list(properties)
        result["additionalProperties"] = False
    # Defaults are a pydantic concern; strict mode rejects them, the model never needs them.
    result.pop("default", None)
    return result


def _nullable(prop: dict[str, Any]) -> dict[str, Any]:
    if "anyOf" in prop:
        if not any(option.get("type") == "null" for option in prop["anyOf"]):
            prop["anyOf"] = [*prop["anyOf"], {"type": "null"}]
        return prop
    kind = prop.get("type")
    if isinstance(kind, str) and kind != "null":
        prop["type"] = [kind, "null"]
    elif isinstance(kind, list) and "null" not in kind:
        prop["type"] = [*kind, "null"]
    elif kind is None:
        return {"anyOf": [prop, {"type": "null"}]}
    return prop


def strict_schema_or_none(schema: dict[str, Any]) -> dict[str, Any] | None:
    """A strict-mode copy of a raw JSON schema, or None if strict mode cannot express it
    (free-form objects, pattern or typed additional properties, recursive `$ref`)."""
    if not _strict_expressible(schema, depth=0):
        return None
    copied = copy.deepcopy(schema)
    definitions = copied.pop("$defs", {}) | copied.pop("definitions", {})
    try:
        converted: dict[str, Any] = _strict(copied, definitions)
    except (KeyError, RecursionError):
        return None
    converted.pop("$schema", None)
    return converted


def _strict_expressible(node: Any, depth: int) -> bool:
    if depth > 20:  # recursive definitions cannot be inlined
        return False
    if isinstance(node, list):
        return all(_strict_expressible(item, depth + 1) for item in node)
    if not isinstance(node, dict):
        return True
    if "patternProperties" in node or node.get("additionalProperties") not in (None, False):
        return False
    if depth > 0 and node.get("type") == "object" and "properties" not in node:
        return False
    if "$ref" in node and not str(node["$ref"]).startswith(("#/$defs/", "#/definitions/")):
        return False
    return all(
        _strict_expressible(value, depth + 1)
        for key, value in node.items()
        if key not in ("$defs", "definitions")
    ) and all(
        _strict_expressible(value, depth + 1)
        for key in ("$defs", "definitions")
        for value in (node.get(key) or {}).values()
    )


def drop_nulls(value: Any, schema: dict[str, Any], definitions: dict[str, Any]) -> Any:
    """Remove nulls sent for optional properties (strict mode's way of saying "absent")."""
    if "$ref" in schema:
        schema = definitions.get(str(schema["$ref"]).rsplit("/", 1)[-1], schema)
    if not isinstance(value, dict) or not isinstance(schema.get("properties"), dict):
        return value
    properties: dict[str, Any] = schema["properties"]
    required = set(schema.get("required", []))
    cleaned = {}
    for key, item in value.items():
        if item is None and key not in required:
            continue
        prop = properties.get(key)
        cleaned[key] = drop_nulls(item, prop, definitions) if isinstance(prop, dict) else item
    return cleaned


def without_titles(schema: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in schema.items() if key not in ("title", "$schema")}
