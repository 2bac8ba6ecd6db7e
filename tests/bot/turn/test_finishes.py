"""How a turn ends when the model's answer does not finish (bot/turn/answer.py, bot/turn/engine.py):
each abnormal finish a vendor sends, end to end through the real openai client, the
scripted server and SQLite. The user is told in their language; a partial is never stored
as a finished answer; a failure the vendor calls transient is asked again once when
nothing was shown yet; the next turn's history is one the vendor accepts."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from bot.app import Application
from bot.domain import ChatKind, ChatRef, IncomingMessage, Role, UserRef
from bot.i18n import translations, use_locale
from bot.llm.anthropic import AnthropicProvider
from bot.llm.base import FAILED, FILTERED, LENGTH, REFUSED
from bot.turn.rounds import UNFINISHED_NOTES
from tests.apps import AppFactory
from tests.fakes.anthropic_server import ScriptedAnthropicServer, anthropic_text_reply
from tests.fakes.openai_server import (
    ScriptedOpenAIServer,
    openrouter_error_reply,
    refusal_reply,
    stream_error_reply,
    text_reply,
)
from tests.fakes.surface import RecordingSurface


async def tokens_used(app: Application, user_id: int) -> int:
    """What the user's calls used, as the console counts it."""
    used = await app.admin_store.user_usage([user_id], datetime(2000, 1, 1, tzinfo=UTC))
    return used.get(user_id, 0)


ALICE = UserRef("test", "alice", "Alice")
DM = ChatRef("test", "dm-alice", ChatKind.DM)


def message(text: str) -> IncomingMessage:
    return IncomingMessage(chat=DM, user=ALICE, text=text)


async def stored(app: Application) -> list[tuple[Role, str]]:
    info = await app.store.open_conversation(message("x"))
    return [
        (s.message.role, s.message.content) for s in await app.store.history(info.conversation_id)
    ]


async def next_turn_is_valid(app: Application, llm: ScriptedOpenAIServer) -> dict[str, Any]:
    """A second turn: the history the first left behind is sent, and accepted."""
    llm.script(text_reply("Fine now."))
    outcome = await app.engine.handle(message("and now?"), RecordingSurface())
    assert outcome.text == "Fine now." and outcome.error == ""
    assert llm.rejected == []
    request: dict[str, Any] = llm.requests[-1]
    return request


@pytest.mark.parametrize(
    ("finish", "how"),
    [
        ("content_filter", FILTERED),  # OpenAI, DashScope, DeepSeek, Gemini
        ("sensitive", FILTERED),  # GLM
        ("length", LENGTH),
        ("network_error", FAILED),  # GLM
        ("insufficient_system_resource", FAILED),  # DeepSeek
    ],
)
async def test_an_abnormal_finish_after_text_is_told_and_stored_with_its_note(
    llm: ScriptedOpenAIServer, make_app: AppFactory, finish: str, how: str
) -> None:
    app = await make_app([])
    llm.refuse_as("openai")
    llm.script(text_reply("The first half of an answ", finish_reason=finish))
    surface = RecordingSurface()
    outcome = await app.engine.handle(message("tell me"), surface)

    note = UNFINISHED_NOTES[how]
    assert surface.streamed == f"The first half of an answ\n\n{note}"
    assert outcome.error == note and len(llm.requests) == 1  # shown: never asked again
    assert await stored(app) == [
        (Role.USER, "tell me"),
        (Role.ASSISTANT, f"The first half of an answ\n\n{note}"),
    ]
    info = await app.store.open_conversation(message("x"))
    assert await tokens_used(app, info.user_id) == 15
    sent = (await next_turn_is_valid(app, llm))["messages"]
    assert [m["role"] for m in sent] == ["system", "user", "assistant", "user"]
    assert sent[2]["content"].endswith(note)


@pytest.mark.parametrize("finish", ["network_error", "insufficient_system_resource", "error"])
async def test_a_transient_failure_before_any_text_is_asked_again_once(
    llm: ScriptedOpenAIServer, make_app: AppFactory, finish: str
) -> None:
    app = await make_app([])
    llm.script(text_reply("", finish_reason=finish), text_reply("Here it is."))
    surface = RecordingSurface()
    outcome = await app.engine.handle(message("tell me"), surface)
    assert (outcome.text, outcome.error) == ("Here it is.", "")
    assert llm.requests[0]["messages"] == llm.requests[1]["messages"]
    assert await stored(app) == [(Role.USER, "tell me"), (Role.ASSISTANT, "Here it is.")]


async def test_a_transient_failure_twice_is_told_and_not_stored(
    llm: ScriptedOpenAIServer, make_app: AppFactory
) -> None:
    app = await make_app([])
    llm.script(
        text_reply("", finish_reason="network_error"), text_reply("", finish_reason="network_error")
    )
    surface = RecordingSurface()
    outcome = await app.engine.handle(message("tell me"), surface)
    assert outcome.error == UNFINISHED_NOTES[FAILED] and len(llm.requests) == 2
    assert await stored(app) == [(Role.USER, "tell me")]


async def test_an_openrouter_error_chunk_before_text_is_asked_again(
    llm: ScriptedOpenAIServer, make_app: AppFactory
) -> None:
    app = await make_app([])
    llm.script(openrouter_error_reply("", code=502), text_reply("Recovered."))
    outcome = await app.engine.handle(message("tell me"), RecordingSurface())
    assert (outcome.text, outcome.error, len(llm.requests)) == ("Recovered.", "", 2)


@pytest.mark.parametrize(
    "reply",
    [
        openrouter_error_reply("Partial answer that", code=502),
        stream_error_reply("The server had an error while processing your request."),
    ],
    ids=["openrouter-error-finish", "error-line"],
)
async def test_an_error_after_text_is_a_failed_answer_never_a_finished_one(
    llm: ScriptedOpenAIServer, make_app: AppFactory, reply: Any
) -> None:
    app = await make_app([])
    llm.script(reply)
    surface = RecordingSurface()
    outcome = await app.engine.handle(message("tell me"), surface)
    note = UNFINISHED_NOTES[FAILED]
    assert outcome.error == note and surface.streamed.endswith(f"\n\n{note}")
    assert surface.streamed.startswith("Partial answer")
    [(role, content)] = (await stored(app))[1:]
    assert role is Role.ASSISTANT and content.endswith(note)
    await next_turn_is_valid(app, llm)


async def test_a_refusal_is_told_and_not_stored(
    llm: ScriptedOpenAIServer, make_app: AppFactory
) -> None:
    app = await make_app([])
    llm.script(refusal_reply("I can't help with that."))
    surface = RecordingSurface()
    outcome = await app.engine.handle(message("something bad"), surface)
    note = UNFINISHED_NOTES[REFUSED]
    assert surface.streamed == f"I can't help with that.\n\n{note}"
    assert outcome.error == note
    assert [role for role, _ in await stored(app)] == [Role.USER]
    info = await app.store.open_conversation(message("x"))
    assert await tokens_used(app, info.user_id) == 15  # counted all the same
    await next_turn_is_valid(app, llm)


async def test_the_note_is_in_the_users_language(
    llm: ScriptedOpenAIServer, make_app: AppFactory
) -> None:
    app = await make_app([])
    llm.script(text_reply("一半", finish_reason="sensitive"))
    surface = RecordingSurface()
    with use_locale("zh_CN"):  # as the desk runs a turn of a user who writes Chinese
        await app.engine.handle(message("说"), surface)
    chinese = translations("zh_CN").gettext(UNFINISHED_NOTES[FILTERED])
    assert chinese != UNFINISHED_NOTES[FILTERED]
    assert surface.streamed == f"一半\n\n{chinese}"


async def test_an_anthropic_refusal_leaves_the_refused_turn_out_of_later_requests(
    claude: ScriptedAnthropicServer, make_app: AppFactory
) -> None:
    """The Messages API's refusal: the user is told, and the turn that prompted it is not
    sent again (a durable turn with no answer is left out of the history)."""
    provider = AnthropicProvider(
        api_key="sk-ant-test", model="claude-test", base_url=claude.base_url, max_retries=0
    )
    app = await make_app([], provider=provider)
    claude.script(
        anthropic_text_reply("I won't", stop_reason="refusal"), anthropic_text_reply("Hello.")
    )
    first = IncomingMessage(chat=DM, user=ALICE, text="something bad", event_id="ev-1")
    surface = RecordingSurface()
    outcome = await app.desk.turn(first, surface, await app.desk.claim_turn(first, "bot", {}))
    assert outcome.error == UNFINISHED_NOTES[REFUSED]
    assert surface.streamed == f"I won't\n\n{UNFINISHED_NOTES[REFUSED]}"

    second = IncomingMessage(chat=DM, user=ALICE, text="hi", event_id="ev-2")
    again = await app.desk.turn(
        second, RecordingSurface(), await app.desk.claim_turn(second, "bot", {})
    )
    assert again.text == "Hello." and claude.rejected == []
    sent = claude.requests[-1]["messages"]
    assert "something bad" not in json.dumps(sent) and "I won't" not in json.dumps(sent)
    assert [m["role"] for m in sent] == ["user"]
