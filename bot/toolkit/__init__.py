"""Tools: the `@tool` decorator, the `Tool` object, the registry and argument validation.

A tool is an async function `fn(params: SomeModel, ctx: ToolContext) -> str | dict`.
The JSON schema the model sees is derived from the pydantic parameter model and made
strict-mode compatible (every property required, optional ones nullable, no additional
properties, no `$ref`), so the same definition works with OpenAI strict mode and with
vendors that ignore `strict`. `ToolContext` is injected and never part of the schema.

Tools defined elsewhere (an MCP server) bring a JSON schema instead of a pydantic model:
`schema_tool()` builds a `Tool` that offers that schema (made strict-compatible when it
can be, sent non-strict otherwise) and validates arguments against it with `jsonschema`.

Before a call that needs the user's approval runs, the user sees an `ApprovalCard`: a
tool says how its call reads to people (`card=`: a function of the validated
arguments); a tool without one shows its name and its arguments as `key: value` lines.
Labels are catalog message ids (marked with `N_`), translated where the card is shown;
values are shown as given. How much of a card fits is the platform's business
(bot/approvals/gate.py renders it within a limit and keeps the whole for "Show all").

Here: `Tool`, `@tool`, the registry and cards (core.py), strict schemas (schemas.py),
and schema-defined tools (schema_tools.py).
"""

from bot.toolkit.core import (
    CARD_ARGUMENTS,
    MAX_RESULT_CHARS,
    N_,
    TOOL_NAME_PATTERN,
    ApprovalCard,
    InvalidArguments,
    Precheck,
    Progress,
    SchemaArguments,
    Tool,
    ToolFunction,
    ToolRegistry,
    argument_lines,
    default_card,
    render_output,
    tool,
)
from bot.toolkit.schema_tools import schema_tool
from bot.toolkit.schemas import strict_json_schema, strict_schema_or_none

__all__ = [
    "CARD_ARGUMENTS",
    "MAX_RESULT_CHARS",
    "N_",
    "TOOL_NAME_PATTERN",
    "ApprovalCard",
    "InvalidArguments",
    "Precheck",
    "Progress",
    "SchemaArguments",
    "Tool",
    "ToolFunction",
    "ToolRegistry",
    "argument_lines",
    "default_card",
    "render_output",
    "schema_tool",
    "strict_json_schema",
    "strict_schema_or_none",
    "tool",
]
