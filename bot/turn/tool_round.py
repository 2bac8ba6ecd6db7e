"""One round of tool calls: from the calls of a model answer to the results it reads next.

    prepare   every call gets an id unique in the round and in the context (an empty,
              repeated or unusable id gets a fresh one; the first holder keeps its own),
              and arguments over the size limit are cut to a short stub
    check     past the round's cap, oversized, unknown or withheld tool, invalid
              arguments, a precheck's refusal: an error result the model reads, not run
    recall    a resumed turn's side-effecting call that an earlier attempt journaled is
              not run again: its settled result is reused (bot/turn/durable.py)
    approve   calls that need the user's approval (bot/approvals/gate.py: side-effecting ones
              unless granted, or as the channel's rule says) are asked about one at a
              time, before anything runs
    run       what is left, concurrently, each within its timeout; a side-effecting
              call is journaled before it runs and settled after; a call's progress
              reports are shown in the chat (`Surface.tool_progress`, throttled)

Everything is keyed by the call's *position* in the round, never by the model's id.
Some compatible servers send one id twice; keyed by id, a round with one cancelled and
one confirmed call of the same id ran the confirmed call twice. Prepared calls are what
the engine stores and sends back, so the next request pairs each call with its result.
An id goes back verbatim to the vendor that issued it (Kimi's `functions.<name>:<idx>`,
vLLM's 46 characters); only a vendor that enforces a shape gets it mapped, on the way
out (OpenAI at most 40 characters, Mistral nine letters and digits: bot/llm/openai_wire.py;
Anthropic `[A-Za-z0-9_-]`: bot/llm/anthropic_history.py).
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import secrets
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Protocol

from pydantic import BaseModel

from bot.domain import (
    ChatMessage,
    ProgressReporter,
    ToolCall,
    ToolContext,
    ToolProgress,
    ToolResult,
    UserRef,
)
from bot.i18n import _
from bot.surface import Surface
from bot.toolkit import InvalidArguments, Tool
from bot.turn.durable import arguments_digest

log = logging.getLogger(__name__)

# Whether this call may run (asks the user if it must): the engine's gate (bot/approvals/gate.py).
Approve = Callable[[Tool, BaseModel], Awaitable[bool]]


class CallJournal(Protocol):
    """Where a durable turn journals its side-effecting calls (bot/turns.RoundJournal)."""

    async def recall(self, position: int, tool: str, digest: str) -> ToolResult | None: ...

    async def begin(self, position: int, tool: str, digest: str) -> None: ...

    async def settle(self, position: int, result: ToolResult) -> None: ...


# Printable, without spaces, and short enough to store (the column holds 128).
_USABLE_ID = re.compile(r"^[\x21-\x7e]{1,128}$")
MAX_NAME_CHARS = 64  # the longest tool name any vendor allows; longer is made up
KEPT_ARGUMENT_CHARS = 200  # how much of oversized arguments the stored call keeps
PROGRESS_SHOWN_EVERY = 1.0  # seconds between two progress lines of one call in the chat
MAX_PROGRESS_MESSAGE = 120  # characters of a tool's own progress message shown


@dataclass(frozen=True, slots=True)
class PreparedRound:
    """A round's calls as they are stored and sent back, and which were too large."""

    calls: tuple[ToolCall, ...]
    oversized: Mapping[int, int] = field(default_factory=dict)  # position -> original size
    renamed: int = 0


@dataclass(frozen=True, slots=True)
class RoundRules:
    """What a round may do: how many calls, how large, and tools this turn may not use
    (name -> the sentence the model reads instead)."""

    max_calls: int
    max_argument_chars: int
    timeout_seconds: float
    withheld: Mapping[str, str] = field(default_factory=dict)


def ids_in(messages: Iterable[ChatMessage]) -> set[str]:
    """Every tool call id the messages carry (a new round's ids must differ)."""
    return {call.id for message in messages for call in message.tool_calls}


def prepare_round(
    calls: Sequence[ToolCall], taken: set[str], max_argument_chars: int
) -> PreparedRound:
    """Unique, usable ids and bounded arguments, before anything runs (module docstring)."""
    # Fresh ids avoid every id the model sent too, so a later call cannot collide with one.
    avoid = taken | {call.id for call in calls}
    used = set(taken)
    prepared: list[ToolCall] = []
    oversized: dict[int, int] = {}
    renamed = 0
    for position, call in enumerate(calls):
        call_id = call.id
        if call_id in used or not _USABLE_ID.match(call_id):
            call_id = _fresh_id(avoid)
            renamed += 1
        used.add(call_id)
        avoid.add(call_id)
        size = _argument_size(call)
        changed = replace(call, id=call_id, name=call.name[:MAX_NAME_CHARS])
        if size > max_argument_chars:
            oversized[position] = size
            stub = call.raw_arguments[:KEPT_ARGUMENT_CHARS] or "{}"
            changed = replace(
                changed,
                arguments=None,
                raw_arguments=f"{stub}… [{size} characters, not stored]",
                arguments_error=f"arguments too long ({size} characters)",
            )
        prepared.append(changed)
    return PreparedRound(tuple(prepared), oversized, renamed)


def _fresh_id(avoid: set[str]) -> str:
    while True:
        candidate = f"call_{secrets.token_hex(12)}"
        if candidate not in avoid:
            return candidate


def _argument_size(call: ToolCall) -> int:
    if call.raw_arguments:
        return len(call.raw_arguments)
    if call.arguments:
        return len(json.dumps(call.arguments, ensure_ascii=False))
    return 0


async def run_round(
    prepared: PreparedRound,
    offered: Mapping[str, Tool],
    rules: RoundRules,
    user: UserRef,
    context: ToolContext,
    surface: Surface,
    approve: Approve,
    journal: CallJournal | None = None,
) -> list[ToolResult]:
    """Check, approve and run one round's calls; one result per call, in their order.
    With a `journal` (a durable turn), side-effecting calls are journaled and recalled."""
    calls = prepared.calls
    results: list[ToolResult | None] = [None] * len(calls)
    ready: dict[int, tuple[Tool, BaseModel]] = {}
    digests: dict[int, str] = {}
    for position, call in enumerate(calls):
        refusal = _refusal(position, call, prepared, offered, rules)
        if refusal:
            results[position] = ToolResult(call.id, call.name, refusal, is_error=True)
            continue
        item = offered[call.name]
        try:
            arguments = item.validate(call)
        except InvalidArguments as exc:
            results[position] = ToolResult(call.id, call.name, str(exc), is_error=True)
            continue
        if item.side_effect and journal is not None:
            digests[position] = digest = arguments_digest(item.name, arguments)
            earlier = await journal.recall(position, item.name, digest)
            if earlier is not None:  # run (or begun) by an attempt before a restart
                results[position] = replace(earlier, call_id=call.id, name=call.name)
                continue
        if item.precheck is not None:
            try:
                refused = await item.precheck(arguments, context)
            except Exception as exc:  # a check must not crash the turn either
                refused = f"{call.name} cannot run: {exc}"
            if refused:
                log.info("tool %s refused before confirmation: %s", call.name, refused)
                results[position] = ToolResult(call.id, call.name, refused, is_error=True)
                continue
        # Asked one at a time, before anything runs; each answer belongs to one position.
        if not await approve(item, arguments):
            results[position] = ToolResult(
                call.id,
                call.name,
                "The user did not confirm this action, so it was not done.",
                is_error=True,
            )
            continue
        ready[position] = (item, arguments)

    async def run(position: int) -> None:
        call = calls[position]
        item, arguments = ready[position]
        digest = digests.get(position)
        if journal is not None and digest is not None:
            # Committed before the tool starts (for email: before the SMTP connection
            # opens), so a death anywhere from here to `settle` leaves a begun entry,
            # which a resume never runs again: at most once, never twice.
            await journal.begin(position, item.name, digest)
        progress = item.progress_of(arguments)
        await surface.tool_started(call, _(progress.text, **dict(progress.values)))
        reporting = replace(context, report=_reporter(surface, call))
        result = await item.run_validated(call, arguments, reporting, rules.timeout_seconds)
        if result.is_error:
            log.info("tool %s failed: %s", call.name, result.content)
        if journal is not None and digest is not None:
            await journal.settle(position, result)
        results[position] = result
        await surface.tool_finished(call, result)

    if ready:
        names = ", ".join(calls[position].name for position in ready)
        await surface.status(_("Running {names}…", names=names))
        await asyncio.gather(*(run(position) for position in ready))
    finished = [result for result in results if result is not None]
    if len(finished) != len(calls):  # every position is answered above; guard the invariant
        raise RuntimeError("a tool call of the round was left without a result")
    return finished


def _reporter(surface: Surface, call: ToolCall) -> ProgressReporter:
    """Progress reports of one call, shown in the chat as a short line at most once per
    `PROGRESS_SHOWN_EVERY` seconds (the first and the last always): a server may report
    many times a second, and each shown report is a platform call."""
    shown_at: float | None = None

    async def report(progress: ToolProgress) -> None:
        nonlocal shown_at
        now = asyncio.get_running_loop().time()
        last = progress.total is not None and progress.progress == progress.total
        if shown_at is not None and now - shown_at < PROGRESS_SHOWN_EVERY and not last:
            return
        line = progress_line(progress)
        if not line:
            return
        shown_at = now
        try:
            await surface.tool_progress(call, line)
        except Exception as exc:  # a progress line must never stop the call
            log.warning("showing the progress of %s failed: %s", call.name, exc)

    return report


def progress_line(progress: ToolProgress) -> str:
    """How far a call is, for people: "3 of 5: Analysing" (the tool's message is its own
    words, bounded to one short line); empty if the report says nothing."""
    count = ""
    if progress.progress is not None and progress.total:
        count = _(
            "{done} of {total}",
            done=_figure(progress.progress),
            total=_figure(progress.total),
        )
    elif progress.progress is not None:
        count = _figure(progress.progress)
    message = " ".join(progress.message.split())
    if len(message) > MAX_PROGRESS_MESSAGE:
        message = message[: MAX_PROGRESS_MESSAGE - 1] + "…"
    return ": ".join(part for part in (count, message) if part)


def _figure(value: float) -> str:
    return str(int(value)) if value == int(value) else f"{value:.3g}"


def _refusal(
    position: int,
    call: ToolCall,
    prepared: PreparedRound,
    offered: Mapping[str, Tool],
    rules: RoundRules,
) -> str:
    """Why this call is not run at all (empty: it may be validated and run)."""
    if position >= rules.max_calls:
        if position == rules.max_calls:
            log.info(
                "refused %d tool calls past the cap of %d",
                len(prepared.calls) - position,
                rules.max_calls,
            )
        return (
            f"Not run: at most {rules.max_calls} tool calls can run at once, and this answer "
            f"asked for {len(prepared.calls)}. Ask for the rest in your next answer, at most "
            f"{rules.max_calls} at a time."
        )
    if position in prepared.oversized:
        log.info(
            "refused a %s call with %d characters of arguments",
            call.name,
            prepared.oversized[position],
        )
        return (
            f"Not run: the arguments of this {call.name} call are "
            f"{prepared.oversized[position]} characters long, more than the "
            f"{rules.max_argument_chars} a tool call may have. Call it again with shorter "
            "arguments."
        )
    if call.name in rules.withheld:
        log.info("refused call to withheld tool %r", call.name)
        return rules.withheld[call.name]
    if call.name not in offered:
        log.info("refused call to unknown or disabled tool %r", call.name)
        return (
            f"There is no tool named {call.name!r} available here. "
            f"Available tools: {', '.join(offered) or 'none'}."
        )
    return ""
