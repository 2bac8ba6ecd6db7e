"""The `@tool` decorator, the `Tool` object, the registry, argument validation and the
approval card a call shows before it runs."""

from __future__ import annotations

import asyncio
import dataclasses
import inspect
import json
import logging
import re
from collections.abc import Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, get_type_hints

from pydantic import BaseModel, ConfigDict, ValidationError

from bot.domain import InputAnswer, InputQuestion, ToolCall, ToolContext, ToolProgress, ToolResult
from bot.i18n import N_ as N_  # re-exported: tools mark their card labels with it
from bot.toolkit.schemas import strict_json_schema

log = logging.getLogger("bot.toolkit")

ToolFunction = Callable[[Any, ToolContext], Awaitable[Any]]
# Runs before the confirmation question: returns why the call cannot be done, or None.
Precheck = Callable[[Any, ToolContext], Awaitable[str | None]]

TOOL_NAME_PATTERN = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
MAX_RESULT_CHARS = 16_000
# How many arguments a default card lists (the rest are counted, and in "Show all").
CARD_ARGUMENTS = 20


@dataclass(frozen=True, slots=True)
class ApprovalCard:
    """How one tool call reads to the person asked to approve it.

    `title` and the labels of `lines` are message ids (`N_("Send an email")`); the title
    may name `{tool}`. `lines` are short facts (To, Subject, When), `details` raw
    `key: value` pairs whose keys are not translated (an MCP tool's arguments), `body`
    the long part (an email's text), shown as its first lines and its length.
    """

    title: str
    lines: tuple[tuple[str, str], ...] = ()
    details: tuple[tuple[str, str], ...] = ()
    body: str = ""
    body_label: str = N_("Text")


def argument_lines(arguments: dict[str, Any]) -> tuple[tuple[str, str], ...]:
    """Arguments as `(key, value)` pairs for a card: strings as they are, the rest as
    compact JSON (bounding is the renderer's job)."""
    lines = []
    for key, value in arguments.items():
        if value is None:
            continue
        shown = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
        lines.append((str(key), shown))
    return tuple(lines)


@dataclass(frozen=True, slots=True)
class Progress:
    """How a running call reads in the chat: `text` a message id with named
    placeholders (`N_("Checking the weather in {place}…")`), `values` their values."""

    text: str
    values: tuple[tuple[str, str], ...] = ()


def default_card(name: str, arguments: dict[str, Any]) -> ApprovalCard:
    return ApprovalCard(N_("Run {tool}"), details=argument_lines(arguments))


@dataclass(frozen=True, slots=True, eq=False)
class Tool:
    """A callable the model may ask for, with everything needed to offer and run it.

    Tools compare and hash by identity (a schema tool holds a dict, so field-wise
    hashing would fail, and two tools are never interchangeable anyway).
    """

    name: str
    description: str
    parameters: type[BaseModel]
    function: ToolFunction
    side_effect: bool = False
    timeout: float | None = None
    source: str = "builtin"
    # Set for tools defined by a JSON schema (see `schema_tool`): the schema offered to
    # the model, whether it is strict-compatible, and the check that replaces pydantic's.
    schema: dict[str, Any] | None = None
    strict: bool = True
    validator: Callable[[dict[str, Any]], dict[str, Any]] | None = None
    precheck: Precheck | None = None
    # Creates or cancels scheduled work (reminders, follow-ups): a scheduled turn is never
    # offered it, so a follow-up cannot copy itself or undo what the user planned.
    scheduling: bool = False
    # How a call reads to the person approving it (see `ApprovalCard`); None: the default.
    card: Callable[[Any], ApprovalCard] | None = None
    # How a running call reads in the chat (see `Progress`); None: "Running <name>…".
    progress: Callable[[Any], Progress] | None = None
    # With it, each progress report of a running call restarts its `timeout`, but the
    # call never runs longer than this many seconds in all. None: reports do not extend.
    hard_timeout: float | None = None
    # Its results carry words from outside (a web service, an untrusted MCP server): a
    # call that acts after one asks the requester (bot/approvals/trust.py).
    outside: bool = False
    # Changes what is stored without asking by default (remember, forget).
    changes: bool = False

    @property
    def acts(self) -> bool:
        """Whether a call changes anything: sends, schedules, stores or deletes."""
        return self.side_effect or self.scheduling or self.changes

    def json_schema(self) -> dict[str, Any]:
        if self.schema is not None:
            return self.schema
        return strict_json_schema(self.parameters)

    def approval_card(self, arguments: BaseModel) -> ApprovalCard:
        """What the user sees before this call runs: the tool's own card, or the default
        (also when the tool's card function fails: a card must never stop the question)."""
        if self.card is not None:
            try:
                return self.card(arguments)
            except Exception as exc:  # the default still shows everything
                log.warning(
                    "the approval card of %s failed (%s); showing the default", self.name, exc
                )
        return default_card(self.name, arguments.model_dump())

    def progress_of(self, arguments: BaseModel) -> Progress:
        """What the chat shows while this call runs: the tool's own line, or the default
        (also when the tool's function fails: a progress line must never stop a call)."""
        if self.progress is not None:
            try:
                return self.progress(arguments)
            except Exception as exc:
                log.warning("the progress line of %s failed (%s)", self.name, exc)
        return Progress(N_("Running {tool}…"), (("tool", self.name),))

    def validate(self, call: ToolCall) -> BaseModel:
        """Parse the model's arguments; raises `InvalidArguments` with a readable reason."""
        if call.arguments is None:
            raise InvalidArguments(
                f"Arguments for {self.name} were not a JSON object: {call.arguments_error}. "
                f"Call it again with arguments matching its schema."
            )
        if self.validator is not None:
            return SchemaArguments.model_validate(self.validator(call.arguments))
        # Strict schemas make the model send null for every optional field it leaves out;
        # null then means "use the default", not "None", where the field has a default.
        fields = self.parameters.model_fields
        arguments = {
            key: value
            for key, value in call.arguments.items()
            if value is not None or key not in fields or fields[key].is_required()
        }
        try:
            return self.parameters.model_validate(arguments)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(part) for part in error['loc']) or '(arguments)'}: {error['msg']}"
                for error in exc.errors()
            )
            raise InvalidArguments(f"Invalid arguments for {self.name}: {problems}.") from None

    async def run(self, call: ToolCall, context: ToolContext, default_timeout: float) -> ToolResult:
        """Validate and run; every failure becomes an error result, never an exception."""
        try:
            arguments = self.validate(call)
        except InvalidArguments as exc:
            return ToolResult(call.id, self.name, str(exc), is_error=True)
        return await self.run_validated(call, arguments, context, default_timeout)

    async def run_validated(
        self, call: ToolCall, arguments: BaseModel, context: ToolContext, default_timeout: float
    ) -> ToolResult:
        timeout = self.timeout if self.timeout is not None else default_timeout
        try:
            async with asyncio.timeout(timeout) as deadline:
                context = _extended_by_progress(context, deadline, timeout, self.hard_timeout)
                output = await self.function(arguments, _paused_while_asking(context, deadline))
        except TimeoutError:
            return ToolResult(
                call.id, self.name, f"{self.name} timed out after {timeout:g} s.", is_error=True
            )
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a tool must never crash the turn
            return ToolResult(call.id, self.name, f"{self.name} failed: {exc}", is_error=True)
        return ToolResult(call.id, self.name, render_output(output))


def _extended_by_progress(
    context: ToolContext, deadline: asyncio.Timeout, timeout: float, hard_timeout: float | None
) -> ToolContext:
    """`context` whose `report` restarts the call's timeout (a call that says how far it
    is is alive), never past `hard_timeout` seconds from the start, and then passes the
    report on. Without a hard timeout reports are passed on and change nothing."""
    report = context.report
    if hard_timeout is None:
        return context
    loop = asyncio.get_running_loop()
    cap = loop.time() + hard_timeout

    async def extended(progress: ToolProgress) -> None:
        when = deadline.when()
        if when is not None:  # None: paused while the user answers
            # Never shorter than it was (the time a user took to answer is not the cap's).
            deadline.reschedule(max(when, min(loop.time() + timeout, cap)))
        if report is not None:
            await report(progress)

    return dataclasses.replace(context, report=extended)


def _paused_while_asking(context: ToolContext, deadline: asyncio.Timeout) -> ToolContext:
    """`context` whose `ask` stops the tool's clock while the user thinks: the time a
    person takes to answer is not the tool's (the question has its own timeout)."""
    ask = context.ask
    if ask is None:
        return context

    async def paused(question: InputQuestion) -> InputAnswer:
        loop = asyncio.get_running_loop()
        when = deadline.when()
        left = (when - loop.time()) if when is not None else None
        deadline.reschedule(None)
        try:
            return await ask(question)
        finally:
            deadline.reschedule(None if left is None else loop.time() + max(left, 0.0))

    return dataclasses.replace(context, ask=paused)


class InvalidArguments(ValueError):
    """The model's arguments do not fit the tool's parameter model."""


class SchemaArguments(BaseModel):
    """The validated arguments of a schema-defined tool: `model_dump()` gives them back."""

    model_config = ConfigDict(extra="allow")


def render_output(output: Any) -> str:
    text = (
        output if isinstance(output, str) else json.dumps(output, ensure_ascii=False, default=str)
    )
    if len(text) > MAX_RESULT_CHARS:
        text = (
            text[:MAX_RESULT_CHARS]
            + f"\n[truncated: {len(text) - MAX_RESULT_CHARS} more characters]"
        )
    return text


def tool(
    *,
    name: str | None = None,
    side_effect: bool = False,
    timeout: float | None = None,
    precheck: Precheck | None = None,
    scheduling: bool = False,
    card: Callable[[Any], ApprovalCard] | None = None,
    progress: Callable[[Any], Progress] | None = None,
    outside: bool = False,
    changes: bool = False,
) -> Callable[[ToolFunction], Tool]:
    """Turn `async def fn(params: Model, ctx: ToolContext)` into a `Tool`.

    The docstring is the description the model reads; the parameter model's field
    descriptions become the schema's. `precheck(params, ctx)` runs before a
    side-effecting call is confirmed, so a call that cannot succeed (a recipient off the
    allow-list) is refused without asking the user first. `scheduling` marks a tool that
    creates or cancels scheduled work: scheduled turns (follow-ups) are not offered it.
    `card(params)` says how a call reads to the person asked to approve it, and
    `progress(params)` how it reads in the chat while it runs. `outside`: its results
    carry words from outside; `changes`: it changes stored things without asking.
    """

    def decorate(function: ToolFunction) -> Tool:
        if not inspect.iscoroutinefunction(function):
            raise TypeError(f"tool {function.__name__} must be an async function")
        hints = get_type_hints(function)
        params = [p for p in inspect.signature(function).parameters.values()]
        if len(params) != 2:
            raise TypeError(f"tool {function.__name__} must take (params, ctx)")
        model = hints.get(params[0].name)
        if not (inspect.isclass(model) and issubclass(model, BaseModel)):
            raise TypeError(f"tool {function.__name__}: first parameter must be a pydantic model")
        tool_name = name or function.__name__
        if not TOOL_NAME_PATTERN.match(tool_name):
            raise ValueError(f"tool name {tool_name!r} must match {TOOL_NAME_PATTERN.pattern}")
        description = inspect.cleandoc(function.__doc__ or "")
        if not description:
            raise ValueError(f"tool {tool_name} needs a docstring: it is what the model reads")
        return Tool(
            tool_name,
            description,
            model,
            function,
            side_effect,
            timeout,
            precheck=precheck,
            scheduling=scheduling,
            card=card,
            progress=progress,
            outside=outside,
            changes=changes,
        )

    return decorate


class ToolRegistry:
    """The tools one application offers, by name. Built by the composition root."""

    def __init__(self, tools: Iterable[Tool] = ()) -> None:
        self._tools: dict[str, Tool] = {}
        for item in tools:
            self.register(item)

    def register(self, item: Tool) -> None:
        if item.name in self._tools:
            raise ValueError(f"a tool named {item.name!r} is already registered")
        self._tools[item.name] = item

    def replace_source(self, source: str, tools: Iterable[Tool]) -> list[str]:
        """Make `tools` the only ones from `source` (e.g. an MCP server whose list changed).

        A tool whose name another source already uses is skipped; its name is returned.
        """
        self._tools = {name: t for name, t in self._tools.items() if t.source != source}
        skipped = []
        for item in tools:
            if item.name in self._tools:
                skipped.append(item.name)
            else:
                self._tools[item.name] = item
        return skipped

    def get(self, name: str) -> Tool | None:
        return self._tools.get(name)

    def names(self) -> list[str]:
        return list(self._tools)

    def __iter__(self) -> Iterator[Tool]:
        return iter(self._tools.values())

    def __len__(self) -> int:
        return len(self._tools)
