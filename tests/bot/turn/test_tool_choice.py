"""Choosing the tools to offer when a channel has more enabled than the budget."""

from __future__ import annotations

from typing import Any

from bot.domain import ToolContext
from bot.toolkit import SchemaArguments, Tool, schema_tool
from bot.turn.tool_choice import most_relevant


async def _run(params: SchemaArguments, ctx: ToolContext) -> Any:
    return "ok"


def mcp_tool(name: str, description: str) -> Tool:
    return schema_tool(
        name=name,
        description=description,
        schema={"type": "object", "properties": {}},
        function=_run,
        source="mcp:" + name.split("_")[0],
    )


def builtin(name: str) -> Tool:
    return schema_tool(
        name=name,
        description="A built-in tool.",
        schema={"type": "object"},
        function=_run,
        source="builtin",
    )


def test_within_the_budget_every_tool_is_offered() -> None:
    tools = [builtin("get_current_time"), mcp_tool("gh_create_issue", "Create an issue")]
    assert most_relevant(tools, "anything", 2) == tools


def test_over_the_budget_builtins_stay_and_the_most_relevant_others_join() -> None:
    fillers = [mcp_tool(f"misc_tool{n}", f"Does thing number {n}.") for n in range(50)]
    issue = mcp_tool("github_create_issue", "Open a new issue in a GitHub repository.")
    search = mcp_tool("web_search", "Search the web for pages about a query.")
    clock, weather = builtin("get_current_time"), builtin("get_weather")
    tools = [clock, *fillers[:25], search, *fillers[25:], issue, weather]

    chosen = most_relevant(tools, "please open an issue about the crash on github", 4)

    assert {clock, weather, issue} <= set(chosen) and len(chosen) == 4
    assert [t for t in tools if t in chosen] == chosen  # the registry's order
    # Recent history counts too: "search" from an earlier message.
    chosen = most_relevant(tools, "and the pages? search for crash reports", 3)
    assert set(chosen) == {clock, weather, search}


def test_a_budget_smaller_than_the_builtins_still_keeps_them() -> None:
    clock, weather = builtin("get_current_time"), builtin("get_weather")
    tools = [clock, mcp_tool("web_search", "Search the web."), weather]
    assert most_relevant(tools, "search", 1) == [clock, weather]
