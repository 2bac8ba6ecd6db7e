"""Durable turns inside one test process: claims with input, resume from the stored
question, history with one question per turn, and the journal of side effects.
(Crashes of real `parley run` processes: tests/bot/turn/test_turns_survive_a_crash.py.)"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import BaseModel
from sqlmodel import select

from bot.app import Application
from bot.domain import ChatKind, ChatMessage, ChatRef, IncomingMessage, Role, ToolResult, UserRef
from bot.storage import StoredMessage
from bot.storage.models import Turn
from bot.storage.turns import StoredTurn
from bot.turn.context import message_tokens
from bot.turn.durable import UNSETTLED, TurnTicket, arguments_digest
from tests.apps import AppFactory
from tests.fakes.openai_server import ScriptedOpenAIServer, text_reply
from tests.fakes.surface import RecordingSurface

ALICE = UserRef("test", "alice", "Alice")
DM = ChatRef("test", "dm-alice", ChatKind.DM)


def asked(text: str, event: str) -> IncomingMessage:
    return IncomingMessage(chat=DM, user=ALICE, text=text, event_id=event)


def stored(text: str) -> StoredMessage:
    message = ChatMessage(Role.USER, text)
    return StoredMessage(message, message_tokens(message))


async def interrupted(app: Application, text: str, event: str) -> TurnTicket:
    """A turn as a process leaves it when it dies mid-answer: claimed by a holder whose
    lease does not exist, its question stored, marked running, no answer."""
    message = asked(text, event)
    ticket = await app.desk.claim_turn(message, "bot", {"chat": "dm-alice"})
    assert ticket is not None
    await app.store.begin_turn(message, stored(text), turn_id=ticket.id)
    return ticket


def user_messages(request: dict[str, object]) -> list[str]:
    messages = request["messages"]
    assert isinstance(messages, list)
    return [m["content"] for m in messages if m["role"] == "user"]


async def test_a_re_delivered_event_starts_no_second_turn(make_app: AppFactory) -> None:
    app = await make_app([])
    assert await app.desk.claim_turn(asked("hi", "ev-1"), "bot", {}) is not None
    assert await app.desk.claim_turn(asked("hi", "ev-1"), "bot", {}) is None
    # The same id of another bot is another event.
    assert await app.desk.claim_turn(asked("hi", "ev-1"), "other-bot", {}) is not None


async def test_a_resumed_turn_reuses_its_question_and_is_done_once_answered(
    make_app: AppFactory, llm: ScriptedOpenAIServer
) -> None:
    llm.set_default(text_reply("Here it is."))
    dead = await make_app([])
    ticket = await interrupted(dead, "what was that?", "ev-2")
    survivor = await make_app([])  # same database: a restart
    surfaces: list[RecordingSurface] = []

    def surface_for(turn: StoredTurn, _: TurnTicket) -> RecordingSurface:
        assert turn.id == ticket.id and turn.message.text == "what was that?"
        assert turn.reply == {"chat": "dm-alice"} and turn.attempts == 2
        surfaces.append(RecordingSurface())
        return surfaces[-1]

    survivor.recovery.surface_for = surface_for
    await survivor.process_lease.start()
    try:
        assert await survivor.recovery.sweep() == 1
        await survivor.recovery.wait()
        assert await survivor.recovery.sweep() == 0  # its own turns are not orphans
    finally:
        await survivor.process_lease.stop()
    assert [s.finished for s in surfaces] == [["Here it is."]]
    [request] = llm.requests
    assert user_messages(request) == ["what was that?"]
    assert not await survivor.turn_store.open_turns()
    info = await survivor.store.open_conversation(asked("", ""))
    history = [
        (s.message.role, s.message.content)
        for s in await survivor.store.history(info.conversation_id)
    ]
    assert history == [(Role.USER, "what was that?"), (Role.ASSISTANT, "Here it is.")]


async def test_an_unanswered_question_is_not_sent_again_with_the_next_one(
    make_app: AppFactory, llm: ScriptedOpenAIServer
) -> None:
    """Today's bug: the next turn sent system, user, user: stale questions as new."""
    llm.set_default(text_reply("Fresh answer."))
    app = await make_app([])
    await interrupted(app, "stale one", "ev-3")
    await interrupted(app, "stale two", "ev-4")
    message = asked("the new question", "ev-5")
    ticket = await app.desk.claim_turn(message, "bot", {})
    outcome = await app.desk.turn(message, RecordingSurface(), ticket)
    assert not outcome.error
    [request] = llm.requests
    assert user_messages(request) == ["the new question"]


async def test_a_turn_told_lost_is_an_answered_question_for_the_model(
    make_app: AppFactory, llm: ScriptedOpenAIServer
) -> None:
    llm.set_default(text_reply("ok"))
    app = await make_app([], turns={"resume_window_minutes": 0})
    await interrupted(app, "lost question", "ev-6")
    survivor = await make_app([], turns={"resume_window_minutes": 0})
    surface = RecordingSurface()
    survivor.recovery.surface_for = lambda turn, ticket: surface
    await survivor.process_lease.start()
    try:
        await survivor.recovery.sweep()
        await survivor.recovery.wait()
    finally:
        await survivor.process_lease.stop()
    assert len(surface.failures) == 1 and "ask again" in surface.failures[0]
    assert llm.requests == []
    message = asked("next", "ev-7")
    await survivor.desk.turn(
        message, RecordingSurface(), await survivor.desk.claim_turn(message, "bot", {})
    )
    sent = llm.requests[0]["messages"]
    assert [m["role"] for m in sent] == ["system", "user", "assistant", "user"]
    assert "restarted" in json.dumps(sent[2])


class Params(BaseModel):
    to: str


async def test_the_journal_gives_back_a_settled_result_and_refuses_a_begun_call(
    make_app: AppFactory,
) -> None:
    app = await make_app([])
    ticket = await interrupted(app, "send it", "ev-8")
    digest = arguments_digest("send_email", Params(to="bob@example.com"))
    first = ticket.journal(1)
    await first.begin(0, "send_email", digest)
    await first.begin(1, "send_email", digest)
    assert first.resumed is False
    await first.settle(0, ToolResult("c1", "send_email", '{"status": "sent"}'))
    again = TurnTicket(app.turn_store, ticket.id, resumed=True).journal(1)
    settled = await again.recall(0, "send_email", digest)
    assert settled is not None and settled.content == '{"status": "sent"}'
    begun = await again.recall(1, "send_email", digest)
    assert begun is not None and begun.is_error and begun.content == UNSETTLED
    # Another call at that position (the model changed its mind) runs: nothing to reuse.
    other = arguments_digest("send_email", Params(to="carol@example.com"))
    assert await again.recall(0, "send_email", other) is None
    assert await again.recall(2, "send_email", digest) is None


async def test_finished_turns_are_pruned_and_an_erased_users_questions_blanked(
    make_app: AppFactory, llm: ScriptedOpenAIServer
) -> None:
    app = await make_app([])
    done = await interrupted(app, "my secret question", "ev-20")
    await done.journal(1).begin(0, "send_email", "digest")
    await app.turn_store.finish(done.id)
    still_open = await interrupted(app, "still running", "ev-21")

    assert await app.turn_store.erase_inputs("test", "alice") == 1
    async with app.database.read() as session:
        rows = {
            row.id: row
            for row in (await session.exec(select(Turn))).all()  # type: ignore[call-overload]
        }
    assert rows[done.id].text == "" and rows[still_open.id].text == "still running"
    assert (
        await TurnTicket(app.turn_store, done.id, resumed=True)
        .journal(1)
        .recall(0, "send_email", "digest")
        is None
    )
    # Still a claim: the re-delivered event gets no second turn.
    assert await app.desk.claim_turn(asked("my secret question", "ev-20"), "bot", {}) is None

    later = datetime.now(UTC) + timedelta(minutes=1)
    assert await app.turn_store.prune(later) == 1  # the open turn stays
    assert [turn.id for turn in await app.turn_store.open_turns()] == [still_open.id]


async def test_a_lost_turn_is_told_in_its_users_language(make_app: AppFactory) -> None:
    app = await make_app([], turns={"resume_window_minutes": 0})
    await app.languages.set_choice(ALICE, "zh_CN")
    await interrupted(app, "丢失的问题", "ev-8")
    survivor = await make_app([], turns={"resume_window_minutes": 0})
    surface = RecordingSurface()
    survivor.recovery.surface_for = lambda turn, ticket: surface
    await survivor.process_lease.start()
    try:
        await survivor.recovery.sweep()
        await survivor.recovery.wait()
    finally:
        await survivor.process_lease.stop()
    assert surface.failures == [
        "抱歉，我在回答你的消息时被重启了，现在已来不及完成那条回答。如果还需要，请再问一次。"
    ]


class CommitsThenLosesTheAnswer:
    """The real turn store, whose first claim commits and then fails as a connection cut
    after COMMIT does: the row is written, the caller hears only an error."""

    def __init__(self, store: Any) -> None:
        self.store = store
        self.cut = True

    def __getattr__(self, name: str) -> Any:
        return getattr(self.store, name)

    async def claim(self, *args: Any) -> int | None:
        turn_id = await self.store.claim(*args)
        if self.cut:
            self.cut = False
            raise ConnectionResetError("connection reset after COMMIT")
        return turn_id


async def test_a_claim_that_committed_unheard_is_adopted_not_dropped(
    make_app: AppFactory,
) -> None:
    """A database cut can lose a claim's answer after its commit. The next try reads
    the event as taken; the turn is still this process's and has not started, so it is
    run (Slack's retry or the same call's next try), once."""
    app = await make_app([])
    app.desk._turns = CommitsThenLosesTheAnswer(app.desk._turns)  # type: ignore[assignment]
    ticket = await app.desk.claim_turn(asked("hi", "ev-cut"), "bot", {})
    assert ticket is not None
    # A re-delivery of the same event now is a duplicate: it starts nothing.
    assert await app.desk.claim_turn(asked("hi", "ev-cut"), "bot", {}) is None
    async with app.database.read() as session:
        rows = (await session.exec(select(Turn).where(Turn.event_id == "ev-cut"))).all()
    assert [row.id for row in rows] == [ticket.id]
