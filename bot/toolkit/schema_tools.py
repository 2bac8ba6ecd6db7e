"""Tools that bring a JSON schema instead of a pydantic model (an MCP server's): offered
strict when the schema allows, checked against the original with `jsonschema`."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

from bot.toolkit.core import (
    TOOL_NAME_PATTERN,
    ApprovalCard,
    InvalidArguments,
    SchemaArguments,
    Tool,
    ToolFunction,
)
from bot.toolkit.schemas import drop_nulls, strict_schema_or_none, without_titles


def schema_tool(
    *,
    name: str,
    description: str,
    schema: dict[str, Any],
    function: ToolFunction,
    source: str,
    side_effect: bool = False,
    timeout: float | None = None,
    card: Callable[[Any], ApprovalCard] | None = None,
    hard_timeout: float | None = None,
    outside: bool = False,
    changes: bool = False,
) -> Tool:
    """A `Tool` whose parameters are a JSON schema (e.g. an MCP tool's `input_schema`).

    The model is offered a strict-compatible copy when the schema allows one (optional
    properties become required and nullable); otherwise the schema as is, non-strict.
    Arguments are checked against the original schema after nulls the strict copy made
    the model send for optional properties are dropped. `function` gets `SchemaArguments`.
    """
    if not TOOL_NAME_PATTERN.match(name):
        raise ValueError(f"tool name {name!r} must match {TOOL_NAME_PATTERN.pattern}")
    original: dict[str, Any] = (
        copy.deepcopy(schema) if schema else {"type": "object", "properties": {}}
    )
    original.setdefault("type", "object")
    original.setdefault("properties", {})
    import jsonschema  # only schema tools (MCP servers') need it: not loaded otherwise

    validator_cls = jsonschema.validators.validator_for(original, jsonschema.Draft202012Validator)
    try:
        validator_cls.check_schema(original)
    except jsonschema.SchemaError as exc:
        raise ValueError(f"tool {name}: invalid input schema: {exc.message}") from None
    checker = validator_cls(original)
    definitions = {**original.get("definitions", {}), **original.get("$defs", {})}
    offered = strict_schema_or_none(original)

    def validate(arguments: dict[str, Any]) -> dict[str, Any]:
        cleaned = drop_nulls(arguments, original, definitions) if offered is not None else arguments
        errors = sorted(checker.iter_errors(cleaned), key=lambda e: list(e.absolute_path))
        if errors:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in e.absolute_path) or '(arguments)'}: {e.message}"
                for e in errors[:5]
            )
            raise InvalidArguments(f"Invalid arguments for {name}: {problems}.")
        return cleaned

    return Tool(
        name,
        description or name,
        SchemaArguments,
        function,
        side_effect,
        timeout,
        source,
        schema=offered if offered is not None else without_titles(original),
        strict=offered is not None,
        validator=validate,
        card=card,
        outside=outside,
        changes=changes,
        hard_timeout=hard_timeout,
    )
