"""Erasing a user in the console leaves none of their words in any table.

Every table is filled through Parley's own paths (turns through the engine and the
desk, memory and reminders and an email through the tools, the approval card the email
needed, a summary, a thumbs-up, a group message Parley observed), then the user is
erased over HTTP, then every text and JSON column of every table the database has
(reflected, not listed here) is searched for the user's words."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa

from bot.approvals.gate import Answer
from bot.domain import ChatKind, ChatRef, IncomingMessage, UserRef
from tests.fakes.openai_server import ScriptedOpenAIServer, text_reply, tool_call_reply
from tests.fakes.smtp import SMTPServer
from tests.fakes.surface import RecordingSurface
from tests.web.console_harness import ConsoleFactory, csrf_of, sign_in
from tools.email import send_email
from tools.memory import remember
from tools.reminders import create_reminder

# A word nobody else writes: what the search looks for.
WORD = "quokkaberry"
ALICE = UserRef("test", "alice", "Alice")
BOB = UserRef("test", "bob", "Bob")
DM = ChatRef("test", "dm-alice", ChatKind.DM)


def where_the_word_is(database: Path) -> list[str]:
    """`table.column` of every text or JSON value that still holds WORD."""
    engine = sa.create_engine(f"sqlite:///{database}")
    try:
        metadata = sa.MetaData()
        metadata.reflect(engine)
        found = []
        with engine.connect() as connection:
            for table in metadata.sorted_tables:
                for column in table.columns:
                    if isinstance(column.type, sa.Integer | sa.Boolean | sa.Float | sa.DateTime):
                        continue
                    text = sa.func.lower(sa.cast(column, sa.Text))
                    query = sa.select(sa.func.count()).where(text.like(f"%{WORD}%"))
                    query = query.select_from(table)
                    if connection.execute(query).scalar_one():
                        found.append(f"{table.name}.{column.name}")
        return found
    finally:
        engine.dispose()


async def test_an_erased_user_s_words_are_in_no_table(
    make_console: ConsoleFactory,
    llm: ScriptedOpenAIServer,
    smtp_server: SMTPServer,
    tmp_path: Path,
) -> None:
    email = {
        "host": smtp_server.host,
        "port": smtp_server.port,
        "tls": "none",
        "sender": "parley@example.com",
        "allowlist": "@example.com",
    }
    console = await make_console(
        tools=[remember, create_reminder, send_email],
        groups={"email": email, "bot": {"group_context_messages": 5}},
        default_tools_dm="all,send_email",
    )
    app = console.app
    address = f"{WORD}@example.com"
    llm.script(
        tool_call_reply(("remember", {"text": f"Alice loves {WORD} jam"})),
        tool_call_reply(("create_reminder", {"text": f"buy {WORD} jam", "in_seconds": 86_400})),
        tool_call_reply(
            ("send_email", {"to": [address], "subject": f"{WORD} order", "body": f"Two {WORD}s"})
        ),
        text_reply(f"Done: I remembered {WORD}, set the reminder and sent the email."),
    )
    question = IncomingMessage(
        chat=DM, user=ALICE, text=f"Remember {WORD}, remind me, email the shop", event_id="e1"
    )
    ticket = await app.desk.claim_turn(question, "bot", {"chat": "dm-alice"})
    assert ticket is not None
    surface = RecordingSurface(confirm_answer=Answer.ONCE)
    outcome = await app.engine.handle(question, surface, ticket=ticket)
    await ticket.done()
    assert WORD in outcome.text and len(smtp_server.messages) == 1
    user_id = await app.store.user_id_of(ALICE)
    info = await app.store.open_conversation(question)
    newest = (await app.store.history(info.conversation_id))[-1]
    await app.memory.save_summary(info.conversation_id, newest.id, f"Alice and {WORD}", 5)
    await app.desk.rate_answer(DM, ALICE, "m1", helpful=True, answer=outcome.text)
    # Bob's words are not Alice's: they stay.
    llm.script(text_reply("Hello Bob."))
    await app.engine.handle(
        IncomingMessage(chat=ChatRef("test", "dm-bob", ChatKind.DM), user=BOB, text="keepsake"),
        RecordingSurface(),
    )
    # What Alice said in a group Parley observes (opt-in group context); Bob's stays.
    team = ChatRef("test", "team", ChatKind.GROUP, "Team")
    for user, text, ref in ((ALICE, f"{WORD} for lunch?", "g1"), (BOB, "pizza", "g2")):
        await app.desk.observe(
            IncomingMessage(chat=team, user=user, text=text, platform_message_id=ref)
        )
    database = tmp_path / "parley.db"
    assert "observed_messages.text" in where_the_word_is(database)
    assert len(where_the_word_is(database)) >= 9  # the search finds what is there

    async with console.client() as client:
        await sign_in(client)
        page = await client.get(f"/admin/users/{user_id}")
        erased = await client.post(
            f"/admin/users/{user_id}/erase", data={"csrf": csrf_of(page.text), "confirm": "alice"}
        )
        assert erased.status_code == 303

    left = where_the_word_is(database)
    assert left == [], ", ".join(left)
    bob_info = await app.store.open_conversation(
        IncomingMessage(chat=ChatRef("test", "dm-bob", ChatKind.DM), user=BOB, text="")
    )
    assert [m.message.content for m in await app.store.history(bob_info.conversation_id)] == [
        "keepsake",
        "Hello Bob.",
    ]
    since = datetime.now(UTC) - timedelta(hours=1)
    kept = await app.group_context.store.recent("test", "team", "", since=since, limit=5)
    assert [item.text for item in kept] == ["pizza"]
