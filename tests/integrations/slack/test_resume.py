"""A Slack turn resumed after a restart (bot/turn/durable.py): the message that showed its
answer half-written is replaced by a note, and the answer follows it."""

from __future__ import annotations

from bot.domain import ChatKind, ChatRef, IncomingMessage, UserRef
from bot.turn.durable import TurnTicket
from integrations.slack import SlackPlatform
from integrations.slack.surface import INTERRUPTED
from tests.apps import AppFactory
from tests.fakes.openai_server import ScriptedOpenAIServer, text_reply
from tests.fakes.slack_server import FakeSlackServer
from tests.integrations.slack.harness import SIGNING_SECRET

STALE_TS = "1700000000.000100"


async def test_a_resumed_turn_replaces_its_half_written_message(
    make_app: AppFactory, slack: FakeSlackServer, llm: ScriptedOpenAIServer
) -> None:
    llm.set_default(text_reply("The whole answer."))
    options = {"bot_token": "xoxb-test-token", "signing_secret": SIGNING_SECRET}
    app = await make_app(
        [], slack={**options, "api_url": slack.api_url}, bot={"preview_delay_seconds": 5}
    )
    [platform] = app.platforms
    assert isinstance(platform, SlackPlatform)
    message = IncomingMessage(
        chat=ChatRef("slack", "D42", ChatKind.DM),
        user=UserRef("slack", "U42"),
        text="what did you find?",
        event_id="T1:Ev42",
    )
    reply = {"channel": "D42", "thread_ts": "1699999999.000001", "user_id": "U42", "team_id": "T1"}
    claimed = await app.desk.claim_turn(message, "A1", reply)
    assert claimed is not None
    await platform.start()
    try:
        ticket = TurnTicket(app.turn_store, claimed.id, resumed=True, preview=STALE_TS)
        surface = platform.resume_surface(reply, STALE_TS, ticket.note_preview)
        outcome = await app.desk.turn(message, surface, ticket)
    finally:
        await platform.stop()
    assert not outcome.error
    [update] = slack.bodies("chat.update")
    assert update["ts"] == STALE_TS and update["text"] == INTERRUPTED
    [answer] = slack.bodies("chat.postMessage")
    assert answer["text"] == "The whole answer." and answer["thread_ts"] == reply["thread_ts"]
    assert not await app.turn_store.open_turns()
