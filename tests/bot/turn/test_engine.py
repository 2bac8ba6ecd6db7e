"""The turn loop, end to end: real openai client, scripted server over HTTP, real SQLite."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Iterable
from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import BaseModel

from bot.app import Application
from bot.domain import (
    ChatKind,
    ChatMessage,
    ChatRef,
    IncomingMessage,
    Role,
    ToolCall,
    ToolContext,
    UserRef,
)
from bot.errors import AnswerCutOff
from bot.llm.base import TextDelta
from bot.storage import StoredMessage
from bot.toolkit import Tool, tool
from bot.turn.rounds import CUT_OFF_NOTE
from tests.apps import AppFactory
from tests.fakes.openai_server import (
    ScriptedOpenAIServer,
    error_reply,
    text_reply,
    tool_call_reply,
)
from tests.fakes.surface import RecordingSurface
from tools import ALL_TOOLS

ALICE = UserRef("test", "alice", "Alice")
BOB = UserRef("test", "bob", "Bob")
DM = ChatRef("test", "dm-alice", ChatKind.DM)


def message(text: str, user: UserRef = ALICE, chat: ChatRef = DM) -> IncomingMessage:
    return IncomingMessage(chat=chat, user=user, text=text)


class Empty(BaseModel):
    pass


class EchoParams(BaseModel):
    text: str


@tool()
async def echo(params: EchoParams, ctx: ToolContext) -> str:
    """Repeat the text."""
    return f"echo: {params.text}"


@tool(timeout=0.2)
async def hang(params: Empty, ctx: ToolContext) -> str:
    """Never finishes in time."""
    await asyncio.sleep(5)
    return "late"


@tool(side_effect=True)
async def launch(params: EchoParams, ctx: ToolContext) -> str:
    """Do something that cannot be undone."""
    LAUNCHED.append(params.text)
    return "launched"


LAUNCHED: list[str] = []


def rendezvous_tool(name: str, arrivals: list[str], everyone: int, arrived: asyncio.Event) -> Tool:
    """A tool that finishes only once `everyone` calls are running at the same time."""

    async def wait_for_the_others(params: Empty, ctx: ToolContext) -> str:
        arrivals.append(name)
        if len(arrivals) == everyone:
            arrived.set()
        await asyncio.wait_for(arrived.wait(), timeout=2)
        return f"{name} met {everyone - 1} other(s)"

    wait_for_the_others.__doc__ = "Meet the others."
    return tool(name=name)(wait_for_the_others)


ENGINE_TOOLS: tuple[Tool, ...] = (echo, hang, launch, *ALL_TOOLS)


@pytest.fixture
def make_engine_app(make_app: AppFactory) -> AppFactory:
    """The one app factory (tests/apps.py), with the engine tests' own tools unless a
    test names others."""

    async def make(tools: Iterable[Tool] = ENGINE_TOOLS, **overrides: Any) -> Application:
        return await make_app(tools, **overrides)

    return make


def sent_roles(request: dict[str, Any]) -> list[str]:
    return [m["role"] for m in request["messages"]]


async def test_a_plain_answer_streams_and_is_stored(
    llm: ScriptedOpenAIServer, make_engine_app: AppFactory
) -> None:
    app = await make_engine_app()
    llm.script(text_reply("Hello there, how can I help?", chunk_size=5, usage=(11, 7)))
    surface = RecordingSurface()

    outcome = await app.engine.handle(message("hi"), surface)

    assert outcome.text == "Hello there, how can I help?"
    assert len(surface.deltas) > 3 and surface.streamed == outcome.text
    assert surface.finished == [outcome.text] and surface.failures == []
    request = llm.requests[0]
    assert request["model"] == "scripted" and request["stream"] is True
    assert sent_roles(request) == ["system", "user"]
    assert {t["function"]["name"] for t in request["tools"]} == {
        "echo",
        "hang",
        "launch",
        *(item.name for item in ALL_TOOLS),
    }
    info = await app.store.open_conversation(message("hi"))
    stored = [s.message for s in await app.store.history(info.conversation_id)]
    assert [(m.role, m.content) for m in stored] == [
        (Role.USER, "hi"),
        (Role.ASSISTANT, outcome.text),
    ]
    since = datetime(2000, 1, 1, tzinfo=UTC)
    assert await app.admin_store.user_usage([info.user_id], since) == {info.user_id: 18}


async def test_non_streaming_mode_gives_the_same_turn(
    llm: ScriptedOpenAIServer, make_engine_app: AppFactory
) -> None:
    app = await make_engine_app(llm={"stream": False})
    llm.script(tool_call_reply(("echo", {"text": "x"})), text_reply("done"))
    surface = RecordingSurface()
    outcome = await app.engine.handle(message("go"), surface)
    assert outcome.text == "done" and outcome.rounds == 2
    assert [r.get("stream", False) for r in llm.requests] == [False, False]
    assert llm.requests[1]["messages"][-1]["content"] == "echo: x"


async def test_one_tool_call_is_run_and_its_result_fed_back(
    llm: ScriptedOpenAIServer, make_engine_app: AppFactory
) -> None:
    app = await make_engine_app()
    llm.script(
        tool_call_reply(("get_current_time", {"timezone": "Asia/Tokyo"}), text="Let me check."),
        text_reply("It is evening in Tokyo."),
    )
    surface = RecordingSurface()

    outcome = await app.engine.handle(message("time in Tokyo?"), surface)

    assert outcome.rounds == 2
    assert outcome.text == "Let me check.\n\nIt is evening in Tokyo."
    assert surface.streamed == outcome.text
    [(call, result)] = surface.finished_tools
    assert call.name == "get_current_time" and not result.is_error
    assert json.loads(result.content)["timezone"] == "Asia/Tokyo"
    second = llm.requests[1]["messages"]
    assert [m["role"] for m in second] == ["system", "user", "assistant", "tool"]
    assert second[2]["tool_calls"][0]["id"] == second[3]["tool_call_id"]
    assert json.loads(second[3]["content"])["timezone"] == "Asia/Tokyo"


async def test_parallel_tool_calls_provably_run_concurrently(
    llm: ScriptedOpenAIServer, make_engine_app: AppFactory
) -> None:
    arrivals: list[str] = []
    arrived = asyncio.Event()
    tools = [
        rendezvous_tool("meet_a", arrivals, 2, arrived),
        rendezvous_tool("meet_b", arrivals, 2, arrived),
    ]
    app = await make_engine_app(tools)
    llm.script(tool_call_reply(("meet_a", {}), ("meet_b", {})), text_reply("both met"))
    surface = RecordingSurface()

    outcome = await app.engine.handle(message("meet"), surface)

    # Each tool returns only once both are running: run one after the other, they time out.
    assert [(r.name, r.is_error, r.content) for r in outcome.tool_results] == [
        ("meet_a", False, "meet_a met 1 other(s)"),
        ("meet_b", False, "meet_b met 1 other(s)"),
    ]
    tool_messages = [m for m in llm.requests[1]["messages"] if m["role"] == "tool"]
    assert [m["content"] for m in tool_messages] == [
        "meet_a met 1 other(s)",
        "meet_b met 1 other(s)",
    ]


async def test_three_rounds_of_tools_then_an_answer(
    llm: ScriptedOpenAIServer, make_engine_app: AppFactory
) -> None:
    app = await make_engine_app()
    llm.script(
        tool_call_reply(("echo", {"text": "one"})),
        tool_call_reply(("echo", {"text": "two"})),
        tool_call_reply(("echo", {"text": "three"})),
        text_reply("all three done"),
    )
    outcome = await app.engine.handle(message("count"), RecordingSurface())
    assert outcome.rounds == 4 and outcome.text == "all three done"
    assert [sent_roles(r) for r in llm.requests] == [
        ["system", "user"],
        ["system", "user", "assistant", "tool"],
        ["system", "user", "assistant", "tool", "assistant", "tool"],
        ["system", "user", "assistant", "tool", "assistant", "tool", "assistant", "tool"],
    ]
    assert [m["content"] for m in llm.requests[3]["messages"] if m["role"] == "tool"] == [
        "echo: one",
        "echo: two",
        "echo: three",
    ]


async def test_arguments_split_over_many_chunks_are_assembled(
    llm: ScriptedOpenAIServer, make_engine_app: AppFactory
) -> None:
    app = await make_engine_app()
    long_text = 'a fairly long argument, 北京, with unicode and "quotes"'
    llm.script(tool_call_reply(("echo", {"text": long_text}), split_arguments=2), text_reply("ok"))
    outcome = await app.engine.handle(message("echo it"), RecordingSurface())
    assert [r.content for r in outcome.tool_results] == [f"echo: {long_text}"]


async def test_malformed_arguments_go_back_to_the_model_which_recovers(
    llm: ScriptedOpenAIServer, make_engine_app: AppFactory
) -> None:
    app = await make_engine_app()
    llm.script(
        tool_call_reply(("echo", '{"text": "unterminated')),
        tool_call_reply(("echo", {"text": "fixed"})),
        text_reply("recovered"),
    )
    outcome = await app.engine.handle(message("go"), RecordingSurface())
    assert outcome.text == "recovered"
    first, second = outcome.tool_results
    assert first.is_error and "not a JSON object" in first.content
    assert (second.is_error, second.content) == (False, "echo: fixed")
    # The broken call is still sent back as valid JSON, or the vendor would reject the request.
    assistant = llm.requests[1]["messages"][2]
    json.loads(assistant["tool_calls"][0]["function"]["arguments"])


async def test_an_unknown_tool_is_refused_and_never_run(
    llm: ScriptedOpenAIServer, make_engine_app: AppFactory
) -> None:
    app = await make_engine_app()
    llm.script(
        tool_call_reply(("delete_everything", {}), ("echo", {"text": "hi"})), text_reply("sorry")
    )
    surface = RecordingSurface()
    outcome = await app.engine.handle(message("go"), surface)
    refused, ran = outcome.tool_results
    assert refused.is_error and "no tool named 'delete_everything'" in refused.content
    assert "echo" in refused.content
    assert [call.name for call in surface.started_tools] == ["echo"]
    assert ran.content == "echo: hi"


async def test_a_tool_that_times_out_becomes_an_error_result(
    llm: ScriptedOpenAIServer, make_engine_app: AppFactory
) -> None:
    app = await make_engine_app()
    llm.script(tool_call_reply(("hang", {})), text_reply("it timed out"))
    outcome = await app.engine.handle(message("go"), RecordingSurface())
    [result] = outcome.tool_results
    assert result.is_error and "timed out after 0.2 s" in result.content
    assert llm.requests[1]["messages"][-1]["content"] == result.content
    assert outcome.text == "it timed out"


async def test_a_rate_limit_is_retried_then_succeeds(
    llm: ScriptedOpenAIServer, make_engine_app: AppFactory
) -> None:
    app = await make_engine_app(llm={"max_retries": 2})
    llm.script(
        error_reply(429, message="slow down", headers={"retry-after-ms": "10"}),
        text_reply("made it"),
    )
    surface = RecordingSurface()
    outcome = await app.engine.handle(message("hi"), surface)
    assert outcome.text == "made it" and surface.failures == []
    assert len(llm.requests) == 2


async def test_a_persistent_server_error_gives_a_clear_message_and_no_traceback(
    llm: ScriptedOpenAIServer, make_engine_app: AppFactory, caplog: pytest.LogCaptureFixture
) -> None:
    app = await make_engine_app(llm={"max_retries": 1})
    llm.set_default(error_reply(500, message="upstream exploded"))
    surface = RecordingSurface()
    with caplog.at_level(logging.WARNING):
        outcome = await app.engine.handle(message("hi"), surface)
    assert surface.failures == [
        "The language model is unreachable right now. Please try again later."
    ]
    assert outcome.error == surface.failures[0] and surface.finished == []
    assert "Traceback" not in surface.failures[0]
    assert "upstream exploded" in caplog.text and "sk-test-secret" not in caplog.text
    assert len(llm.requests) == 2  # the first try and one retry
    # The user's message is kept; no half answer was stored.
    info = await app.store.open_conversation(message("hi"))
    assert [s.message.role for s in await app.store.history(info.conversation_id)] == [Role.USER]

    # The next request carries it with the next message, so roles still alternate.
    llm.set_default(None)
    llm.script(text_reply("Hello again."))
    await app.engine.handle(message("anyone there?"), RecordingSurface())
    assert llm.requests[-1]["messages"][1:] == [{"role": "user", "content": "hi\n\nanyone there?"}]


async def test_context_is_trimmed_to_the_budget(
    llm: ScriptedOpenAIServer, make_engine_app: AppFactory
) -> None:
    # Without summaries (tests/bot/test_memory.py has them): the older part falls out.
    app = await make_engine_app(bot={"context_tokens": 600, "summaries": False})
    for i in range(8):
        llm.script(text_reply(f"answer {i} " + "words " * 40))
        await app.engine.handle(message(f"question {i} " + "padding " * 40), RecordingSurface())
    llm.script(text_reply("fine"))
    await app.engine.handle(message("last"), RecordingSurface())
    sent = llm.requests[-1]["messages"]
    contents = [m["content"] for m in sent]
    assert contents[-1] == "last"
    assert not any(c.startswith("question 0 ") for c in contents)
    assert any(c.startswith("question 7 ") for c in contents)
    assert sent_roles(llm.requests[-1])[1] == "user"
    assert sum(len(c) for c in contents) < 600 * 4 + 1000


async def test_history_survives_a_restart(
    llm: ScriptedOpenAIServer, make_engine_app: AppFactory
) -> None:
    first = await make_engine_app()
    llm.script(text_reply("Nice to meet you, Ada."))
    await first.engine.handle(message("my name is Ada"), RecordingSurface())
    await first.aclose()

    second = await make_engine_app()  # same SQLite file, new process objects
    llm.script(text_reply("Your name is Ada."))
    await second.engine.handle(message("what is my name?"), RecordingSurface())
    assert [m["content"] for m in llm.requests[-1]["messages"][1:]] == [
        "my name is Ada",
        "Nice to meet you, Ada.",
        "what is my name?",
    ]


async def test_too_many_rounds_end_with_an_honest_message(
    llm: ScriptedOpenAIServer, make_engine_app: AppFactory
) -> None:
    app = await make_engine_app(bot={"max_tool_rounds": 2})
    llm.set_default(tool_call_reply(("echo", {"text": "again"})))
    surface = RecordingSurface()
    outcome = await app.engine.handle(message("loop forever"), surface)
    assert len(llm.requests) == 2
    assert "stopped after 2 rounds of tool calls" in outcome.text
    assert surface.finished == [outcome.text]
    # The next turn's history is valid: every call has its result.
    llm.set_default(None)
    llm.script(text_reply("ok"))
    await app.engine.handle(message("next"), RecordingSurface())
    roles = sent_roles(llm.requests[-1])
    assert roles == [
        "system",
        "user",
        "assistant",
        "tool",
        "assistant",
        "tool",
        "assistant",
        "user",
    ]


async def test_side_effects_run_only_when_the_user_confirms(
    llm: ScriptedOpenAIServer, make_engine_app: AppFactory, caplog: pytest.LogCaptureFixture
) -> None:
    app = await make_engine_app()
    LAUNCHED.clear()
    llm.script(tool_call_reply(("launch", {"text": "rocket"})), text_reply("not launched"))
    declined = RecordingSurface(confirm_answer=False)
    with caplog.at_level(logging.INFO, logger="bot.turn.engine"):
        outcome = await app.engine.handle(message("launch it"), declined)
    assert "test:alice did not approve a launch call" in caplog.text
    assert "rocket" not in caplog.text  # arguments are bodies: not logged by default
    assert LAUNCHED == []
    assert declined.confirmations == [(ALICE, "Run launch\ntext: rocket")]
    assert outcome.tool_results[0].is_error and "did not confirm" in outcome.tool_results[0].content

    llm.script(tool_call_reply(("launch", {"text": "rocket"})), text_reply("launched"))
    await app.engine.handle(message("yes really"), RecordingSurface(confirm_answer=True))
    assert LAUNCHED == ["rocket"]


async def test_turns_of_one_conversation_never_interleave(
    llm: ScriptedOpenAIServer, make_engine_app: AppFactory
) -> None:
    app = await make_engine_app()
    llm.script(text_reply("first answer", delay=0.3), text_reply("second answer"))
    await asyncio.gather(
        app.engine.handle(message("first"), RecordingSurface()),
        app.engine.handle(message("second"), RecordingSurface()),
    )
    # The second model call saw the whole first exchange: it waited for it.
    assert [m["content"] for m in llm.requests[1]["messages"][1:]] == [
        "first",
        "first answer",
        "second",
    ]


async def test_different_conversations_run_concurrently(
    llm: ScriptedOpenAIServer, make_engine_app: AppFactory
) -> None:
    arrivals: list[str] = []
    arrived = asyncio.Event()
    app = await make_engine_app([rendezvous_tool("meet", arrivals, 2, arrived)])
    llm.script(
        tool_call_reply(("meet", {})),
        tool_call_reply(("meet", {})),
        text_reply("a"),
        text_reply("b"),
    )
    outcomes = await asyncio.gather(
        app.engine.handle(message("alice"), RecordingSurface()),
        app.engine.handle(
            message("bob", user=BOB, chat=ChatRef("test", "dm-bob")), RecordingSurface()
        ),
    )
    assert [o.tool_results[0].is_error for o in outcomes] == [False, False]


async def test_a_crash_mid_round_leaves_history_a_vendor_accepts(
    llm: ScriptedOpenAIServer, make_engine_app: AppFactory
) -> None:
    app = await make_engine_app()

    class CrashingSurface(RecordingSurface):
        async def tool_started(self, call: Any, progress: str) -> None:
            raise RuntimeError("adapter fell over")

    llm.script(tool_call_reply(("echo", {"text": "x"})))
    crashed = CrashingSurface()
    await app.engine.handle(message("go"), crashed)
    assert crashed.failures and "went wrong on my side" in crashed.failures[0]

    # Also a call stored without its result (a process killed between writes, or older data).
    info = await app.store.open_conversation(message("go"))
    await app.store.append(
        info.conversation_id,
        [
            StoredMessage(
                ChatMessage(
                    Role.ASSISTANT, "", tool_calls=(ToolCall("call_lost", "echo", {}, "{}"),)
                ),
                5,
            )
        ],
    )
    llm.script(text_reply("fine"))
    await app.engine.handle(message("again"), RecordingSurface())
    sent = llm.requests[-1]["messages"]
    for index, entry in enumerate(sent):
        for call in entry.get("tool_calls") or []:
            following = [m.get("tool_call_id") for m in sent[index + 1 :] if m["role"] == "tool"]
            assert call["id"] in following, sent
    assert sent_roles(llm.requests[-1])[-1] == "user"


async def test_an_empty_answer_is_never_sent_as_an_empty_message(
    llm: ScriptedOpenAIServer, make_engine_app: AppFactory
) -> None:
    app = await make_engine_app()
    llm.script(text_reply(""))
    surface = RecordingSurface()
    outcome = await app.engine.handle(message("hi"), surface)
    assert outcome.text.startswith("(The model returned an empty answer")
    assert outcome.error == outcome.text  # callers such as follow-ups can tell it apart
    assert surface.finished == [outcome.text] and surface.streamed == outcome.text


class CutOff:
    """The real provider, except that the calls numbered in `cut` end the way a stream
    without its terminator does under the Provider contract: the text that arrived,
    then `AnswerCutOff` instead of the calls and the finish."""

    def __init__(self, inner: Any, cut: set[int]) -> None:
        self.inner, self.cut, self.model, self.calls = inner, cut, inner.model, 0

    async def stream(self, messages: Any, tools: Any, *, model: str = "") -> AsyncIterator[Any]:
        self.calls += 1
        number = self.calls
        async for event in self.inner.stream(messages, tools):
            if number in self.cut and not isinstance(event, TextDelta):
                raise AnswerCutOff("the stream ended without [DONE]")
            yield event

    async def aclose(self) -> None:
        await self.inner.aclose()


async def stored_turns(app: Application) -> list[tuple[Role, str]]:
    info = await app.store.open_conversation(message(""))
    return [
        (s.message.role, s.message.content) for s in await app.store.history(info.conversation_id)
    ]


async def test_an_answer_cut_off_before_any_text_is_asked_for_again_once(
    llm: ScriptedOpenAIServer, make_engine_app: AppFactory, caplog: pytest.LogCaptureFixture
) -> None:
    app = await make_engine_app()
    app.engine.provider = CutOff(app.engine.provider, cut={1})
    llm.script(tool_call_reply(("launch", {"text": "rocket"})), text_reply("All quiet."))
    surface = RecordingSurface()
    with caplog.at_level(logging.WARNING):
        outcome = await app.engine.handle(message("status?"), surface)

    assert (outcome.text, outcome.error) == ("All quiet.", "")
    assert surface.streamed == "All quiet." and surface.confirmations == []
    assert outcome.tool_results == []  # a call from a cut stream never runs
    assert llm.requests[0]["messages"] == llm.requests[1]["messages"]
    assert "cut off before any text: asking again" in caplog.text
    assert await stored_turns(app) == [(Role.USER, "status?"), (Role.ASSISTANT, "All quiet.")]


async def test_an_answer_cut_off_after_text_is_told_and_never_stored_as_finished(
    llm: ScriptedOpenAIServer, make_engine_app: AppFactory
) -> None:
    app = await make_engine_app()
    app.engine.provider = CutOff(app.engine.provider, cut={2})
    llm.script(
        tool_call_reply(("echo", {"text": "Paris"}), text="Checking."),
        text_reply("The weather in Paris is cur"),
    )
    surface = RecordingSurface()
    outcome = await app.engine.handle(message("weather?"), surface)

    shown = f"Checking.\n\nThe weather in Paris is cur\n\n{CUT_OFF_NOTE}"
    assert surface.streamed == shown and surface.finished == [shown]
    assert outcome.error == CUT_OFF_NOTE and len(llm.requests) == 2  # shown: not asked again
    stored = await stored_turns(app)
    assert stored[-1] == (Role.ASSISTANT, f"The weather in Paris is cur\n\n{CUT_OFF_NOTE}")
    assert [role for role, _ in stored] == [Role.USER, Role.ASSISTANT, Role.TOOL, Role.ASSISTANT]

    llm.script(text_reply("Sunny."))
    await app.engine.handle(message("again?"), RecordingSurface())
    sent = llm.requests[-1]["messages"]
    assert sent_roles(llm.requests[-1]) == [
        "system",
        "user",
        "assistant",
        "tool",
        "assistant",
        "user",
    ]
    assert sent[2]["tool_calls"][0]["id"] == sent[3]["tool_call_id"]
    assert sent[4]["content"].endswith(CUT_OFF_NOTE)


async def test_an_answer_cut_off_twice_before_any_text_fails_the_turn(
    llm: ScriptedOpenAIServer, make_engine_app: AppFactory
) -> None:
    app = await make_engine_app()
    app.engine.provider = CutOff(app.engine.provider, cut={1, 2})
    llm.script(text_reply(""), text_reply(""))
    surface = RecordingSurface()
    outcome = await app.engine.handle(message("hi"), surface)

    assert surface.failures == [AnswerCutOff.user_message] and surface.finished == []
    assert outcome.error == AnswerCutOff.user_message and len(llm.requests) == 2
    assert await stored_turns(app) == [(Role.USER, "hi")]


async def test_calls_past_the_per_round_cap_are_refused_and_never_run(
    llm: ScriptedOpenAIServer, make_engine_app: AppFactory
) -> None:
    app = await make_engine_app(bot={"max_tool_calls_per_round": 3})
    llm.script(tool_call_reply(*(("echo", {"text": str(n)}) for n in range(5))), text_reply("done"))
    surface = RecordingSurface()
    outcome = await app.engine.handle(message("five at once"), surface)

    assert [call.name for call in surface.started_tools] == ["echo"] * 3
    ran, refused = outcome.tool_results[:3], outcome.tool_results[3:]
    assert [r.content for r in ran] == ["echo: 0", "echo: 1", "echo: 2"]
    assert all(r.is_error for r in refused)
    assert "at most 3 tool calls can run at once, and this answer asked for 5" in (
        refused[0].content
    )
    tool_messages = [m for m in llm.requests[1]["messages"] if m["role"] == "tool"]
    assert len(tool_messages) == 5  # every call answered, the refused ones too


async def test_oversized_arguments_are_refused_and_stored_shortened(
    llm: ScriptedOpenAIServer, make_engine_app: AppFactory
) -> None:
    app = await make_engine_app()  # the default limit: 65,536 characters
    LAUNCHED.clear()
    huge = "x" * 200_000
    llm.script(
        tool_call_reply(("launch", {"text": huge}), ("echo", {"text": "small"})),
        text_reply("I could not send all that."),
    )
    surface = RecordingSurface()
    outcome = await app.engine.handle(message("launch this"), surface)

    refused, ran = outcome.tool_results
    assert refused.is_error and "200012 characters long, more than the 65536" in refused.content
    assert LAUNCHED == [] and surface.confirmations == []  # refused before anyone was asked
    assert ran.content == "echo: small"
    info = await app.store.open_conversation(message(""))
    [assistant] = [s for s in await app.store.history(info.conversation_id) if s.message.tool_calls]
    stored_call = assistant.message.tool_calls[0]
    assert len(stored_call.raw_arguments) < 300 and assistant.tokens < 1000
    # Sent back as valid JSON (the vendor would refuse anything else), without the bulk.
    sent = llm.requests[1]["messages"][2]["tool_calls"]
    assert [json.loads(c["function"]["arguments"]) for c in sent] == [{}, {"text": "small"}]
