"""Tool loops end to end, for every vendor: the engine, real SQLite, the real provider
against that vendor's scripted server, and a recording surface.

Each scenario is two turns. The first does the thing under test; the second is an
ordinary message whose request must still be one the vendor accepts: the history the
first turn stored is replayed to the model, so a broken pairing, a repeated id or a cut
answer stored as finished shows up there. `two_turns()` runs both and returns what each
turn showed and sent; a new scenario scripts its replies and asserts on the result.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import pytest
from pydantic import BaseModel

from bot.app import Application
from bot.approvals.gate import Answer, ApprovalQuestion
from bot.domain import ChatKind, ChatRef, IncomingMessage, Role, ToolContext, UserRef, VendorState
from bot.errors import AnswerCutOff
from bot.llm.anthropic import AnthropicProvider
from bot.llm.openai_compat import OpenAICompatProvider
from bot.llm.openai_wire import alnum9
from bot.llm.profiles import PROFILES
from bot.toolkit import tool
from bot.turn.rounds import CUT_OFF_NOTE, TurnOutcome
from tests.apps import AppFactory
from tests.conformance.conftest import Vendor
from tests.fakes.anthropic_server import (
    ScriptedAnthropicServer,
    anthropic_text_reply,
    anthropic_tool_reply,
    validate_request,
)
from tests.fakes.openai_server import (
    ScriptedOpenAIServer,
    ScriptedReply,
    text_reply,
    tool_call_reply,
)
from tests.fakes.reply_edits import (
    anthropic_without_terminator,
    chat_completions_problem,
    with_call_ids,
    without_terminator,
)
from tests.fakes.surface import RecordingSurface

ALICE = UserRef("test", "alice", "Alice")
DM = ChatRef("test", "dm-alice", ChatKind.DM)


class NoteParams(BaseModel):
    to: str
    text: str


class CityParams(BaseModel):
    city: str


SENT_NOTES: list[tuple[str, str]] = []


@tool(side_effect=True)
async def send_note(params: NoteParams, ctx: ToolContext) -> str:
    """Send a note to someone (cannot be undone)."""
    SENT_NOTES.append((params.to, params.text))
    return f"note sent to {params.to}"


@tool()
async def get_weather(params: CityParams, ctx: ToolContext) -> str:
    """Current weather for a city."""
    return f"sunny in {params.city}"


class AnsweringSurface(RecordingSurface):
    """A RecordingSurface whose user answers confirmations in the order given."""

    def __init__(self, answers: Sequence[bool] = ()) -> None:
        super().__init__()
        self.answers = list(answers)

    async def confirm(self, user: UserRef, question: ApprovalQuestion) -> Answer:
        self.confirmations.append((user, question.render(4096).text))
        yes = self.answers.pop(0) if self.answers else False
        return await question.respond(Answer.ONCE if yes else Answer.DENIED)


@dataclass
class Turn:
    outcome: TurnOutcome
    surface: RecordingSurface
    requests: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class Loop:
    """One vendor's engine on a fresh database, and how to run turns through it."""

    vendor: Vendor
    app: Application

    async def turn(
        self, text: str, replies: Sequence[ScriptedReply], answers: Sequence[bool] = ()
    ) -> Turn:
        before = len(self.vendor.requests)
        self.vendor.script(*replies)
        surface = AnsweringSurface(answers)
        outcome = await self.app.engine.handle(
            IncomingMessage(chat=DM, user=ALICE, text=text), surface
        )
        sent = self.vendor.requests[before:]
        for request in sent:
            assert_accepted(self.vendor, request)
        return Turn(outcome, surface, sent)

    async def stored(self) -> list[tuple[Role, str, tuple[str, ...]]]:
        """The conversation as stored: (role, content, tool call ids or the result's id)."""
        info = await self.app.store.open_conversation(IncomingMessage(DM, ALICE, ""))
        rows = [s.message for s in await self.app.store.history(info.conversation_id)]
        return [
            (m.role, m.content, tuple(c.id for c in m.tool_calls) or (m.tool_call_id,))
            for m in rows
        ]


def assert_accepted(vendor: Vendor, request: dict[str, Any]) -> None:
    """The vendor would take this request (the Anthropic server refuses it itself)."""
    if vendor.name == "anthropic":
        assert validate_request(request) is None
    else:
        assert chat_completions_problem(request, vendor.name) is None


async def two_turns(
    loop: Loop,
    first: Sequence[ScriptedReply],
    *,
    answers: Sequence[bool] = (),
    first_text: str = "please do it",
    second_text: str = "thanks, and now?",
    second_answer: str = "Anything else?",
) -> tuple[Turn, Turn]:
    """The scenario's turn, then a plain one that replays its history to the model."""
    one = await loop.turn(first_text, first, answers)
    two = await loop.turn(second_text, [loop.vendor.text(second_answer)])
    assert two.outcome.text == second_answer and two.outcome.error == ""
    [request] = two.requests
    assert loop.vendor.name != "anthropic" or not loop.vendor.server.rejected
    assert last_user_text(loop.vendor, request).endswith(second_text)
    return one, two


def last_user_text(vendor: Vendor, request: dict[str, Any]) -> str:
    last = request["messages"][-1]
    assert last["role"] == "user"
    content = last["content"]
    if isinstance(content, str):
        return content
    return str([b for b in content if b["type"] == "text"][-1]["text"])


def cut(vendor: Vendor, reply: ScriptedReply) -> ScriptedReply:
    """`reply` as a stream that ends cleanly before the vendor's terminator."""
    if vendor.name == "anthropic":
        return anthropic_without_terminator(reply)
    return without_terminator(reply)


async def start_loop(vendor: Vendor, make_app: AppFactory, **groups: dict[str, Any]) -> Loop:
    """A Loop whose application has these settings groups (e.g. `bot={...}`)."""
    SENT_NOTES.clear()
    app = await make_app(
        provider=vendor.provider,
        tools=[send_note, get_weather],
        admin={"default_tools_dm": "all,send_note"},
        **groups,
    )
    return Loop(vendor, app)


@pytest.fixture
async def loop(vendor: Vendor, make_app: AppFactory) -> Loop:
    return await start_loop(vendor, make_app)


# -- scenarios ---------------------------------------------------------------------------


async def test_duplicate_call_ids_one_confirmed_one_cancelled(loop: Loop) -> None:
    vendor = loop.vendor
    same = {"anthropic": "toolu_same", "mistral": "callSame1"}.get(vendor.name, "call_same")
    calls = vendor.tools(
        ("send_note", {"to": "bob", "text": "lunch?"}),
        ("send_note", {"to": "carol", "text": "lunch?"}),
    )
    one, two = await two_turns(
        loop,
        [with_call_ids(calls, same, same), vendor.text("Sent to Carol only.")],
        answers=[False, True],  # the user cancels the first and confirms the second
    )

    assert SENT_NOTES == [("carol", "lunch?")]  # exactly one side effect
    assert len(one.surface.confirmations) == 2
    cancelled, sent = one.outcome.tool_results
    assert cancelled.is_error and "did not confirm" in cancelled.content
    assert (sent.is_error, sent.content) == (False, "note sent to carol")
    # The first holder keeps the model's id (vLLM's shape prefixes it); the second got a
    # fresh one, and each result is paired with its call, right after the round and later.
    kept = cancelled.call_id
    assert kept.endswith(same) and sent.call_id != kept
    # Mistral gets ids in its own shape: the fresh one is mapped, the same for its result.
    fresh = alnum9(sent.call_id) if vendor.name == "mistral" else sent.call_id
    for request in (one.requests[1], two.requests[0]):
        assert vendor.tool_call_ids(request) == [kept, fresh]
        assert [(r[0], r[1]) for r in vendor.tool_results(request)] == [
            (kept, cancelled.content),
            (fresh, "note sent to carol"),
        ]
    stored = await loop.stored()
    assert [entry[2] for entry in stored if entry[0] is Role.TOOL] == [(kept,), (sent.call_id,)]


async def test_refused_calls_past_the_cap_or_too_large_leave_a_valid_history(
    vendor: Vendor, make_app: AppFactory
) -> None:
    loop = await start_loop(
        vendor, make_app, bot={"max_tool_calls_per_round": 2, "max_tool_argument_chars": 1024}
    )
    calls = vendor.tools(
        ("get_weather", {"city": "x" * 5000}),
        ("get_weather", {"city": "Paris"}),
        ("get_weather", {"city": "Rome"}),
    )
    one, two = await two_turns(loop, [calls, vendor.text("Only Paris worked.")])

    oversized, ran, past_cap = one.outcome.tool_results
    assert oversized.is_error and "more than the 1024 a tool call may have" in oversized.content
    assert (ran.is_error, ran.content) == (False, "sunny in Paris")
    assert past_cap.is_error and "at most 2 tool calls can run at once" in past_cap.content
    for request in (one.requests[1], two.requests[0]):
        assert len(vendor.tool_results(request)) == 3
        assert "x" * 2000 not in str(request["messages"])  # the bulk is never sent back


async def test_a_cut_stream_with_nothing_shown_is_asked_again_once(loop: Loop) -> None:
    vendor = loop.vendor
    broken = cut(vendor, vendor.tools(("get_weather", {"city": "Paris"})))
    one, two = await two_turns(loop, [broken, vendor.text("It is sunny in Paris.")])

    assert len(one.requests) == 2 and one.requests[0]["messages"] == one.requests[1]["messages"]
    assert one.outcome.text == "It is sunny in Paris." and one.outcome.error == ""
    assert one.surface.streamed == "It is sunny in Paris."
    assert one.outcome.tool_results == []  # the cut call never ran
    assert [(role, text) for role, text, _ in await loop.stored()] == [
        (Role.USER, "please do it"),
        (Role.ASSISTANT, "It is sunny in Paris."),
        (Role.USER, "thanks, and now?"),
        (Role.ASSISTANT, "Anything else?"),
    ]
    assert vendor.tool_call_ids(two.requests[0]) == []


async def test_a_cut_stream_after_text_tells_the_user_and_is_not_stored_as_finished(
    loop: Loop,
) -> None:
    vendor = loop.vendor
    partial = "The weather in Paris is cur"
    one, two = await two_turns(loop, [cut(vendor, vendor.text(partial, chunk_size=4))])

    assert len(one.requests) == 1  # shown text is never asked for again
    assert one.surface.streamed == f"{partial}\n\n{CUT_OFF_NOTE}"
    assert one.surface.finished == [one.surface.streamed] and one.surface.failures == []
    assert one.outcome.error == CUT_OFF_NOTE
    stored = [(role, text) for role, text, _ in await loop.stored()]
    assert stored[1] == (Role.ASSISTANT, f"{partial}\n\n{CUT_OFF_NOTE}")
    assert (Role.ASSISTANT, partial) not in stored
    replayed = str(two.requests[0]["messages"])
    assert CUT_OFF_NOTE in replayed


async def test_a_cut_stream_after_a_tool_round_keeps_that_round_valid(loop: Loop) -> None:
    vendor = loop.vendor
    one, two = await two_turns(
        loop,
        [
            vendor.tools(("get_weather", {"city": "Paris"})),
            cut(vendor, vendor.text("Paris is sunny, and tomor")),
        ],
    )

    [result] = one.outcome.tool_results
    assert result.content == "sunny in Paris"
    assert one.outcome.error == CUT_OFF_NOTE
    assert one.surface.streamed.endswith(f"tomor\n\n{CUT_OFF_NOTE}")
    assert [(role, ids) for role, _, ids in await loop.stored()][:4] == [
        (Role.USER, ("",)),
        (Role.ASSISTANT, (result.call_id,)),
        (Role.TOOL, (result.call_id,)),
        (Role.ASSISTANT, ("",)),
    ]
    assert vendor.tool_call_ids(two.requests[0]) == [result.call_id]
    assert [r[0] for r in vendor.tool_results(two.requests[0])] == [result.call_id]


async def test_a_stream_cut_twice_before_any_text_fails_the_turn_cleanly(loop: Loop) -> None:
    vendor = loop.vendor
    broken = cut(vendor, vendor.tools(("get_weather", {"city": "Paris"})))
    one, two = await two_turns(loop, [broken, broken])

    assert len(one.requests) == 2
    assert one.surface.failures == [AnswerCutOff.user_message]
    assert one.outcome.tool_results == [] and one.surface.streamed == ""
    assert [role for role, _, _ in await loop.stored()] == [
        Role.USER,
        Role.USER,
        Role.ASSISTANT,
    ]
    # The unanswered message travels with the next one: roles still alternate
    # (deepseek-reasoner refuses two user messages in a row).
    roles = [m["role"] for m in two.requests[0]["messages"] if m["role"] != "system"]
    assert roles == ["user"]
    assert last_user_text(vendor, two.requests[0]) == "please do it\n\nthanks, and now?"


# -- reasoning state through the engine and the database ------------------------------
#
# What a thinking model returns with a tool round is stored with that assistant message
# and, where the vendor requires it, sent back in every later request of the
# conversation: DeepSeek's reasoning_content, Anthropic's signed thinking blocks. The
# scripted servers refuse a tool loop without it, so both turns passing is the proof.


def thinking_loop_vendor(vendor: Vendor) -> Vendor:
    """`vendor`, with Anthropic's provider asking for thinking (the others' servers stream
    reasoning whether asked or not)."""
    if vendor.name != "anthropic":
        return vendor
    assert isinstance(vendor.server, ScriptedAnthropicServer)
    vendor.server.checks_prefix = True  # as models with preserved thinking do
    provider = AnthropicProvider(
        api_key="sk-ant-test",
        model="claude-test",
        base_url=vendor.server.base_url,
        max_retries=0,
        thinking="on",
    )
    return replace(vendor, provider=provider)


async def test_reasoning_of_a_tool_round_survives_storage_and_goes_back_where_required(
    vendor: Vendor, make_app: AppFactory
) -> None:
    thinking = thinking_loop_vendor(vendor)
    loop = await start_loop(thinking, make_app)
    thought = "思考: the user wants Paris, so call get_weather first."
    try:
        if vendor.name == "anthropic":
            first = [
                anthropic_tool_reply(("get_weather", {"city": "Paris"}), thinking=thought),
                anthropic_text_reply("Sunny in Paris.", thinking="Now answer."),
            ]
        else:
            first = [
                vendor.tools(("get_weather", {"city": "Paris"}), reasoning=thought),
                vendor.text("Sunny in Paris."),
            ]
        one, two = await two_turns(loop, first, first_text="weather in Paris?")
    finally:
        if thinking is not vendor:
            await thinking.provider.aclose()

    assert one.outcome.text == "Sunny in Paris." and one.outcome.error == ""
    assert thought not in one.surface.streamed  # reasoning is never the answer
    assert vendor.server.rejected == []
    info = await loop.app.store.open_conversation(IncomingMessage(DM, ALICE, ""))
    [tool_round] = [
        s.message
        for s in await loop.app.store.history(info.conversation_id)
        if s.message.tool_calls
    ]
    follow_up, second = one.requests[1], two.requests[0]
    carried = [
        next(m for m in request["messages"] if m.get("tool_calls"))
        for request in (follow_up, second)
        if vendor.name != "anthropic"
    ]
    if vendor.name in ("deepseek", "kimi", "glm", "ark"):
        assert tool_round.vendor_state == VendorState(vendor.name, {"reasoning_content": thought})
        assert [m["reasoning_content"] for m in carried] == [thought, thought]
    elif vendor.name == "minimax":  # kept verbatim in the content, never shown
        block = f"<think>{thought}</think>"
        assert tool_round.vendor_state == VendorState("minimax", {"think": block})
        assert [m["content"] for m in carried] == [block, block]
    elif vendor.name == "openrouter":  # reasoning_details handed back unchanged
        assert tool_round.vendor_state is not None
        details = tool_round.vendor_state.data["reasoning_details"]
        assert details[0] == {
            "type": "reasoning.text",
            "text": thought,
            "index": 0,
            "format": "unknown",
        }
        assert details[1]["type"] == "reasoning.encrypted"
        assert [m["reasoning_details"] for m in carried] == [details, details]
    elif vendor.name == "anthropic":
        assert tool_round.vendor_state is not None
        assert tool_round.vendor_state.vendor == "anthropic"
        [loop_turn] = [
            m
            for m in follow_up["messages"]
            if m["role"] == "assistant" and isinstance(m["content"], list)
        ]
        assert [b["type"] for b in loop_turn["content"]] == ["thinking", "tool_use"]
        assert loop_turn["content"][0]["thinking"] == thought
    else:  # nobody else documents needing it back: it is not sent
        for request in (follow_up, second):
            assert thought not in json.dumps(request, ensure_ascii=False)


async def test_a_conversation_that_switches_vendor_drops_the_other_vendors_state(
    make_app: AppFactory, llm: ScriptedOpenAIServer, claude: ScriptedAnthropicServer
) -> None:
    """DeepSeek's reasoning is stored with its round; when the channel moves to Claude the
    history goes on without it, and the Messages API takes the request."""
    llm.refuse_as("deepseek")
    deepseek = OpenAICompatProvider(
        base_url=llm.base_url,
        api_key="sk-test",
        model="deepseek-v4-flash",
        max_retries=0,
        profile=PROFILES["deepseek"],
    )
    claude_provider = AnthropicProvider(
        api_key="sk-ant-test", model="claude-test", base_url=claude.base_url, max_retries=0
    )
    thought = "secret chain of thought: call get_weather"
    try:
        app = await make_app(provider=deepseek, tools=[get_weather])
        llm.script(
            tool_call_reply(
                ("get_weather", {"city": "Paris"}), vendor="deepseek", reasoning=thought
            ),
            text_reply("Sunny in Paris.", vendor="deepseek"),
        )
        first = await app.engine.handle(
            IncomingMessage(chat=DM, user=ALICE, text="weather in Paris?"), RecordingSurface()
        )
        assert first.text == "Sunny in Paris." and llm.rejected == []

        app.engine.provider = claude_provider  # the operator switched PARLEY_PROVIDER
        claude.script(anthropic_text_reply("You're welcome."))
        second = await app.engine.handle(
            IncomingMessage(chat=DM, user=ALICE, text="thanks"), RecordingSurface()
        )
    finally:
        await deepseek.aclose()
        await claude_provider.aclose()

    assert second.text == "You're welcome." and second.error == ""
    [request] = claude.requests
    assert validate_request(request) is None and claude.rejected == []
    assert thought not in json.dumps(request)
    # The tool round goes on as a plain tool_use turn: no thinking block, no reasoning.
    assistant = [m["content"] for m in request["messages"] if m["role"] == "assistant"]
    assert [b["type"] for b in assistant[0]] == ["tool_use"]
