"""Two Telegram bots on one database: each claims its own update ids (real PTB bots,
two fake Bot APIs with their own tokens, one SQLite file)."""

from __future__ import annotations

from pathlib import Path

from tests.fakes.openai_server import ScriptedOpenAIServer, text_reply
from tests.fakes.telegram_server import FakeTelegramServer, private_message
from tests.integrations.telegram.conftest import AppFactory, stop

OTHER_TOKEN = "7000002:OTHER-token_abcdefghijklmnopqrstuvwxyz"


async def test_two_bots_on_one_database_both_answer_the_same_update_id(
    llm: ScriptedOpenAIServer,
    telegram: FakeTelegramServer,
    telegram_app: AppFactory,
    tmp_path: Path,
) -> None:
    llm.set_default(text_reply("Hello."))
    database = tmp_path / "shared.db"
    other = FakeTelegramServer(token=OTHER_TOKEN, username="other_parley_bot")
    other.start()
    second = None
    try:
        await telegram_app(database=database)
        second = await telegram_app(
            database=database, bot_token=OTHER_TOKEN, base_url=other.base_url
        )
        # Telegram numbers each bot's updates on its own: the same id reaches both.
        telegram.push(private_message(4001, "hi"), update_id=1)
        other.push(private_message(4002, "hi"), update_id=1)
        await telegram.wait_for(lambda t: bool(t.calls_of("sendMessage")))
        await other.wait_for(lambda t: bool(t.calls_of("sendMessage")))
    finally:
        if second is not None:
            await stop(second)  # before its Bot API goes away
        other.stop()
    assert [c.params["chat_id"] for c in telegram.calls_of("sendMessage")] == [4001]
    assert [c.params["chat_id"] for c in other.calls_of("sendMessage")] == [4002]
    assert len(llm.requests) == 2
