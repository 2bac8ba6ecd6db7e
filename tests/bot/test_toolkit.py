from __future__ import annotations

import asyncio
import dataclasses
from datetime import UTC, datetime

import pytest
from pydantic import BaseModel, Field

from bot.domain import (
    ChatRef,
    InputAction,
    InputAnswer,
    InputQuestion,
    ToolCall,
    ToolContext,
    UserRef,
)
from bot.policy.tools import for_scheduled_turn
from bot.toolkit import (
    InvalidArguments,
    Progress,
    ToolRegistry,
    schema_tool,
    strict_json_schema,
    tool,
)

CONTEXT = ToolContext(UserRef("t", "1"), ChatRef("t", "c"), "UTC", datetime(2026, 1, 1, tzinfo=UTC))


class Address(BaseModel):
    city: str = Field(description="City name")


class SendParams(BaseModel):
    to: str = Field(description="Recipient")
    count: int = Field(1, ge=1, le=5)
    address: Address | None = None
    tags: list[str] = []


@tool(side_effect=True, timeout=0.05)
async def send_thing(params: SendParams, ctx: ToolContext) -> dict[str, object]:
    """Send a thing to someone."""
    if params.to == "slow":
        await asyncio.sleep(1)
    if params.to == "boom":
        raise RuntimeError("the thing exploded")
    return {"to": params.to, "count": params.count, "user": ctx.user.platform_user_id}


def test_decorator_builds_a_tool_from_signature_and_docstring() -> None:
    assert send_thing.name == "send_thing"
    assert send_thing.description == "Send a thing to someone."
    assert send_thing.side_effect is True
    assert send_thing.parameters is SendParams


def test_schema_is_strict_mode_compatible() -> None:
    schema = strict_json_schema(SendParams)
    assert schema["type"] == "object"
    assert schema["additionalProperties"] is False
    assert set(schema["required"]) == {"to", "count", "address", "tags"}
    assert schema["properties"]["to"] == {"description": "Recipient", "type": "string"}
    assert schema["properties"]["count"]["type"] == ["integer", "null"]
    assert "default" not in schema["properties"]["count"]
    nested = schema["properties"]["address"]["anyOf"][0]
    assert nested["additionalProperties"] is False and nested["required"] == ["city"]
    assert "$defs" not in schema and "$ref" not in str(schema)
    assert "ctx" not in schema["properties"]


def test_null_for_an_optional_field_means_its_default() -> None:
    call = ToolCall("c", "send_thing", {"to": "a", "count": None, "address": None, "tags": None})
    assert send_thing.validate(call) == SendParams(to="a")


def test_invalid_arguments_are_explained() -> None:
    with pytest.raises(InvalidArguments, match=r"count: Input should be less than or equal to 5"):
        send_thing.validate(ToolCall("c", "send_thing", {"to": "a", "count": 9}))
    with pytest.raises(InvalidArguments, match="not a JSON object: bad"):
        send_thing.validate(ToolCall("c", "send_thing", None, "{", "bad"))


async def test_run_returns_results_and_turns_failures_into_error_results() -> None:
    ok = await send_thing.run(ToolCall("c1", "send_thing", {"to": "x"}), CONTEXT, 5)
    assert (ok.is_error, ok.content) == (False, '{"to": "x", "count": 1, "user": "1"}')
    slow = await send_thing.run(ToolCall("c2", "send_thing", {"to": "slow"}), CONTEXT, 5)
    assert slow.is_error and "timed out after 0.05 s" in slow.content
    boom = await send_thing.run(ToolCall("c3", "send_thing", {"to": "boom"}), CONTEXT, 5)
    assert boom.is_error and "the thing exploded" in boom.content
    invalid = await send_thing.run(ToolCall("c4", "send_thing", {}), CONTEXT, 5)
    assert invalid.is_error and "to: Field required" in invalid.content


def test_decorator_rejects_what_the_model_could_not_use() -> None:
    with pytest.raises(TypeError, match="async"):
        tool()(lambda params, ctx: None)  # type: ignore[arg-type]

    async def undocumented(params: SendParams, ctx: ToolContext) -> str:
        return ""

    with pytest.raises(ValueError, match="docstring"):
        tool()(undocumented)
    with pytest.raises(ValueError, match="must match"):
        tool(name="has.dot")(send_thing.function)


def test_registry_refuses_duplicate_names() -> None:
    registry = ToolRegistry([send_thing])
    assert registry.get("send_thing") is send_thing and registry.get("nope") is None
    with pytest.raises(ValueError, match="already registered"):
        registry.register(send_thing)


def test_a_property_named_title_survives_the_strict_transform() -> None:
    class Issue(BaseModel):
        title: str
        body: str = ""

    schema = strict_json_schema(Issue)
    assert set(schema["properties"]) == {"title", "body"} and "title" not in schema
    assert schema["required"] == ["title", "body"]


MCP_SCHEMA = {
    "type": "object",
    "title": "echoArguments",
    "properties": {
        "text": {"type": "string", "title": "Text"},
        "times": {"type": "integer", "default": 1, "minimum": 1},
        "where": {"$ref": "#/$defs/Place"},
    },
    "required": ["text"],
    "$defs": {"Place": {"type": "object", "properties": {"city": {"type": "string"}}}},
}


async def echo_arguments(params: BaseModel, ctx: ToolContext) -> dict[str, object]:
    return params.model_dump()


def test_schema_tool_offers_a_strict_copy_and_validates_against_the_original() -> None:
    item = schema_tool(
        name="srv_echo",
        description="Echo.",
        schema=MCP_SCHEMA,
        function=echo_arguments,
        source="mcp:srv",
    )
    offered = item.json_schema()
    assert item.strict and item.source == "mcp:srv"
    assert offered["required"] == ["text", "times", "where"]
    assert offered["properties"]["times"]["type"] == ["integer", "null"]
    where = offered["properties"]["where"]
    assert where["type"] == ["object", "null"]
    assert where["properties"]["city"]["type"] == ["string", "null"]
    assert "$defs" not in offered and "title" not in offered
    # Nulls for optional properties mean "absent"; the rest is checked by the schema.
    arguments = item.validate(
        ToolCall("c", "srv_echo", {"text": "x", "times": None, "where": {"city": None}})
    )
    assert arguments.model_dump() == {"text": "x", "where": {}}
    with pytest.raises(InvalidArguments, match="times: 0 is less than the minimum of 1"):
        item.validate(ToolCall("c", "srv_echo", {"text": "x", "times": 0}))
    with pytest.raises(InvalidArguments, match="'text' is a required property"):
        item.validate(ToolCall("c", "srv_echo", {}))


async def test_schema_tool_runs_with_its_arguments() -> None:
    item = schema_tool(
        name="srv_echo", description="", schema=MCP_SCHEMA, function=echo_arguments, source="x"
    )
    result = await item.run(ToolCall("c", "srv_echo", {"text": "hi", "times": 2}), CONTEXT, 1)
    assert not result.is_error and result.content == '{"text": "hi", "times": 2}'


def test_a_schema_strict_mode_cannot_express_is_sent_non_strict() -> None:
    free_form = {
        "type": "object",
        "properties": {"labels": {"type": "object", "additionalProperties": {"type": "string"}}},
    }
    item = schema_tool(
        name="t", description="d", schema=free_form, function=echo_arguments, source="x"
    )
    assert item.strict is False
    assert item.json_schema()["properties"]["labels"]["additionalProperties"] == {"type": "string"}
    # Without the strict copy nulls are not special: they are checked like any value.
    with pytest.raises(InvalidArguments, match="labels"):
        item.validate(ToolCall("c", "t", {"labels": None}))
    with pytest.raises(ValueError, match="invalid input schema"):
        schema_tool(
            name="t", description="d", schema={"type": 5}, function=echo_arguments, source="x"
        )


def test_registry_replaces_one_sources_tools_only() -> None:
    registry = ToolRegistry([send_thing])
    first = schema_tool(
        name="srv_a", description="a", schema={}, function=echo_arguments, source="mcp:srv"
    )
    clash = schema_tool(
        name="send_thing", description="b", schema={}, function=echo_arguments, source="mcp:srv"
    )
    assert registry.replace_source("mcp:srv", [first, clash]) == ["send_thing"]
    assert registry.names() == ["send_thing", "srv_a"]
    assert registry.get("send_thing") is send_thing
    registry.replace_source("mcp:srv", [])
    assert registry.names() == ["send_thing"]
    assert len({first, clash, send_thing}) == 3  # tools hash by identity, schema or not


def test_scheduling_tools_are_marked_and_withheld_from_scheduled_turns() -> None:
    @tool(scheduling=True)
    async def plan_thing(params: SendParams, ctx: ToolContext) -> str:
        """Plan a thing for later."""
        return "planned"

    assert plan_thing.scheduling and not send_thing.scheduling
    offered, withheld = for_scheduled_turn([send_thing, plan_thing])
    assert offered == [send_thing]
    assert list(withheld) == ["plan_thing"]
    assert "not available in a scheduled follow-up" in withheld["plan_thing"]


class _NoArgs(BaseModel):
    pass


async def test_a_tools_clock_stops_while_the_user_answers_its_question() -> None:
    @tool(timeout=0.3)
    async def asks(params: _NoArgs, ctx: ToolContext) -> str:
        """Asks the user something."""
        assert ctx.ask is not None
        answer = await ctx.ask(InputQuestion("Sure?"))
        return answer.action.value

    async def slow_person(question: InputQuestion) -> InputAnswer:
        # Longer than the tool may run: a person thinking, not the tool working.
        await asyncio.sleep(0.6)
        return InputAnswer(InputAction.ACCEPT)

    context = dataclasses.replace(CONTEXT, ask=slow_person)
    call = ToolCall("c1", "asks", {})
    result = await asks.run_validated(call, _NoArgs(), context, 30)
    assert (result.content, result.is_error) == ("accept", False)


class Nothing(BaseModel):
    pass


def test_a_running_call_without_a_working_progress_line_reads_as_its_name() -> None:
    def broken(params: Nothing) -> Progress:
        raise RuntimeError("no line today")

    @tool(progress=broken)
    async def quiet(params: Nothing, ctx: ToolContext) -> str:
        """Does nothing."""
        return ""

    fallback = quiet.progress_of(Nothing())
    assert (fallback.text, dict(fallback.values)) == ("Running {tool}…", {"tool": "quiet"})
