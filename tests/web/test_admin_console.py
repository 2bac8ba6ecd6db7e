"""The admin console over real HTTP: sign-in, CSRF, changes, audit and what turns see."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from pydantic import BaseModel
from sqlalchemy import select

from bot.app import Application
from bot.approvals.gate import Answer, Mode
from bot.approvals.trust import Follows, OutsideKind
from bot.config import Settings
from bot.domain import (
    Attachment,
    AttachmentKind,
    ChatKind,
    ChatRef,
    IncomingMessage,
    MemoryScope,
    ReminderRequest,
    ToolContext,
    UserRef,
)
from bot.storage.models import AuditEntry
from bot.toolkit import tool
from tests.apps import two_providers
from tests.fakes.openai_server import ScriptedOpenAIServer, text_reply
from tests.fakes.surface import RecordingSurface
from tests.web.console_harness import ConsoleFactory, csrf_of, sign_in
from tools.clock import get_current_time
from tools.email import SendEmailParams, send_email

ALICE = UserRef("test", "alice", "Alice")
ROOM = ChatRef("test", "room-1", ChatKind.GROUP, "Finance")


def hello(text: str = "hi") -> IncomingMessage:
    return IncomingMessage(chat=ROOM, user=ALICE, text=text)


async def audit_rows(app: Application) -> list[AuditEntry]:
    async with app.database.read() as session:
        result = await session.exec(select(AuditEntry).order_by(AuditEntry.id))  # type: ignore[call-overload]
        return list(result.scalars())


async def test_without_a_password_there_is_no_console(
    llm: ScriptedOpenAIServer, tmp_path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = Settings.load(
        env_file=None,
        llm={"base_url": llm.base_url, "api_key": "sk", "model": "m"},
        database={"url": f"sqlite:///{tmp_path / 'p.db'}"},
    )
    app = Application(settings)
    try:
        with caplog.at_level(logging.INFO):
            assert app.console_routes() == []
        assert "admin console disabled: set PARLEY_ADMIN_PASSWORD" in caplog.text
    finally:
        await app.aclose()


async def test_pages_need_sign_in_and_a_wrong_password_is_refused_and_audited(
    make_console: ConsoleFactory,
) -> None:
    console = await make_console()
    async with console.client() as client:
        for page in ("/admin/channels", "/admin/audit", "/admin/usage", "/admin/reminders"):
            response = await client.get(page)
            assert response.status_code == 303 and response.headers["location"] == "/admin/login"
        refused = await sign_in(client, "guess")
        assert refused.status_code == 401 and "Wrong password." in refused.text
        assert (await client.get("/admin/channels")).status_code == 303

    [entry] = await audit_rows(console.app)
    assert (entry.action, entry.allowed, entry.surface) == ("console.signin", False, "console")
    assert "guess" not in str(entry.details)


async def test_a_post_without_the_csrf_token_is_refused(make_console: ConsoleFactory) -> None:
    console = await make_console(tools=(get_current_time,))
    channel_id = await console.app.store.channel_id(ROOM)
    async with console.client() as client:
        assert (await sign_in(client)).status_code == 303
        missing = await client.post(
            f"/admin/channels/{channel_id}/tools", data={"tool": "get_current_time", "enabled": "0"}
        )
        wrong = await client.post(
            f"/admin/channels/{channel_id}/tools",
            data={"tool": "get_current_time", "enabled": "0", "csrf": "forged"},
        )
        login_without = await client.post("/admin/login", data={"password": "x"})
    assert missing.status_code == 403 and "Refused" in missing.text
    assert wrong.status_code == 403
    assert login_without.status_code == 403
    config = await console.app.admin_store.channel_config(channel_id)
    assert config.tools == {}
    assert [e.action for e in await audit_rows(console.app)] == ["console.signin"]


async def test_a_toggle_in_the_console_changes_the_next_turn_and_is_audited(
    make_console: ConsoleFactory, llm: ScriptedOpenAIServer
) -> None:
    console = await make_console(tools=(get_current_time,))
    llm.set_default(text_reply("ok"))
    await console.app.engine.handle(hello(), RecordingSurface())
    channel_id = await console.app.store.channel_id(ROOM)
    async with console.client() as client:
        await sign_in(client)
        page = await client.get(f"/admin/channels/{channel_id}")
        assert "Disable get_current_time" in page.text
        done = await client.post(
            f"/admin/channels/{channel_id}/tools",
            data={"tool": "get_current_time", "enabled": "0", "csrf": csrf_of(page.text)},
        )
        assert done.status_code == 303
        after = await client.get(done.headers["location"])
        assert "Enable get_current_time" in after.text and "Saved." in after.text

    await console.app.engine.handle(hello("again"), RecordingSurface())

    assert [t["function"]["name"] for t in llm.requests[0]["tools"]] == ["get_current_time"]
    assert "tools" not in llm.requests[1]
    entry = (await audit_rows(console.app))[-1]
    assert (entry.actor, entry.action, entry.place, entry.surface) == (
        "console:admin",
        "tool.toggle",
        "test:room-1",
        "console",
    )


async def test_channel_prompt_model_and_budget_from_the_console(
    make_console: ConsoleFactory, llm: ScriptedOpenAIServer
) -> None:
    console = await make_console(tools=())
    llm.set_default(text_reply("ok", usage=(40, 40)))
    channel_id = await console.app.store.channel_id(ROOM)
    async with console.client() as client:
        await sign_in(client)
        page = await client.get(f"/admin/channels/{channel_id}")
        bad = await client.post(
            f"/admin/channels/{channel_id}/settings",
            data={"csrf": csrf_of(page.text), "user_daily_tokens": "lots"},
        )
        assert bad.status_code == 400 and "whole number" in bad.text
        saved = await client.post(
            f"/admin/channels/{channel_id}/settings",
            data={
                "csrf": csrf_of(page.text),
                "system_prompt": "Talk like an accountant.",
                "model": "ledger-1",
                "user_daily_tokens": "50",
            },
        )
        assert saved.status_code == 303

    first = await console.app.engine.handle(hello(), RecordingSurface())
    second = await console.app.engine.handle(hello(), RecordingSurface())

    assert llm.requests[0]["model"] == "ledger-1"
    assert llm.requests[0]["messages"][0]["content"].startswith("Talk like an accountant.")
    assert not first.error and "daily budget of 50 tokens" in second.error
    entry = (await audit_rows(console.app))[-1]
    assert entry.action == "channel.settings" and entry.details["limits"] == {
        "user_daily_tokens": 50
    }


async def test_conversations_can_hide_content_and_users_get_a_timezone(
    make_console: ConsoleFactory, llm: ScriptedOpenAIServer
) -> None:
    console = await make_console(tools=(), console_show_content=False)
    llm.set_default(text_reply("the secret answer"))
    await console.app.engine.handle(hello("my secret question"), RecordingSurface())
    async with console.client() as client:
        await sign_in(client)
        listing = await client.get("/admin/conversations")
        assert "Finance" in listing.text
        page = await client.get("/admin/conversations/1")
        assert "secret" not in page.text and "hidden" in page.text
        users = await client.get("/admin/users")
        assert "test:alice" in users.text and "<td>15</td>" in users.text  # tokens this month
        bad = await client.post(
            "/admin/users/1/timezone", data={"csrf": csrf_of(users.text), "timezone": "Mars/Base"}
        )
        assert bad.status_code == 400
        good = await client.post(
            "/admin/users/1/timezone",
            data={"csrf": csrf_of(users.text), "timezone": "Europe/Berlin"},
        )
        assert good.status_code == 303
        assert 'value="Europe/Berlin"' in (await client.get("/admin/users")).text


async def test_cancel_a_reminder_and_sign_out(make_console: ConsoleFactory) -> None:
    console = await make_console(tools=())
    reminder = await console.app.reminders.create(
        ReminderRequest(
            user=ALICE,
            chat=ROOM,
            thread_key="",
            kind="message",
            text="pay the invoices",
            due_at=datetime.now(UTC) + timedelta(hours=1),
            timezone="UTC",
        )
    )
    async with console.client() as client:
        await sign_in(client)
        page = await client.get("/admin/reminders")
        assert "pay the invoices" in page.text
        done = await client.post(
            f"/admin/reminders/{reminder.id}/cancel", data={"csrf": csrf_of(page.text)}
        )
        assert done.headers["location"] == "/admin/reminders?done=cancelled"
        assert "pay the invoices" not in (await client.get("/admin/reminders")).text
        cancelled = await client.get("/admin/reminders?status=cancelled")
        assert "pay the invoices" in cancelled.text
        out = await client.post("/admin/logout", data={"csrf": csrf_of(cancelled.text)})
        assert out.status_code == 303
        assert (await client.get("/admin/reminders")).status_code == 303
    [info] = await console.app.reminders.list_for(ALICE, include_done=True)
    assert info.status == "cancelled"
    assert [e.action for e in await audit_rows(console.app)][-2:] == [
        "reminder.cancel",
        "console.signout",
    ]


async def test_the_usage_page_draws_bars(
    make_console: ConsoleFactory, llm: ScriptedOpenAIServer
) -> None:
    console = await make_console(tools=())
    llm.set_default(text_reply("ok", usage=(100, 50)))
    await console.app.engine.handle(hello(), RecordingSurface())
    async with console.client() as client:
        await sign_in(client)
        page = await client.get("/admin/usage")
        await console.app.engine.handle(hello(), RecordingSurface())
        cached = await client.get("/admin/usage")
        fresh = await client.get("/admin/usage?fresh=1")
    assert page.status_code == 200
    assert "<rect" in page.text and "test:Finance: 150 tokens" in page.text
    assert "test:Finance: 150 tokens" in cached.text  # remembered for a minute
    assert "test:Finance: 300 tokens" in fresh.text


class _NoParams(BaseModel):
    pass


@tool()
async def long_described(params: _NoParams, ctx: ToolContext) -> str:
    """Looks up the on-call engineer for a team, with their phone number and the time
    their shift ends, from the team's rota.

    Only for teams that publish a rota."""
    return "nobody"


async def test_channels_are_listed_by_name_and_descriptions_are_whole_sentences(
    make_console: ConsoleFactory, llm: ScriptedOpenAIServer
) -> None:
    console = await make_console(tools=(long_described,))
    llm.set_default(text_reply("ok"))
    await console.app.engine.handle(hello(), RecordingSurface())
    channel_id = await console.app.store.channel_id(ROOM)
    async with console.client() as client:
        await sign_in(client)
        listing = (await client.get("/admin/channels")).text
        page = (await client.get(f"/admin/channels/{channel_id}")).text

    assert f'<a href="/admin/channels/{channel_id}">Finance</a>' in listing
    assert "<code" in listing and "room-1</code>" in listing  # the id beside the name
    # The docstring's first paragraph, not its first line (which ends mid-sentence).
    assert (
        "Looks up the on-call engineer for a team, with their phone number and the time "
        "their shift ends, from the team&#39;s rota." in page
    )
    assert "Only for teams" not in page


async def test_a_users_memory_is_shown_forgotten_and_erased(
    make_console: ConsoleFactory, llm: ScriptedOpenAIServer
) -> None:
    console = await make_console(tools=())
    app = console.app
    dm = ChatRef("test", "dm-alice", ChatKind.DM)
    veg = await app.memory.remember(ALICE, dm, "I am vegetarian", MemoryScope.PRIVATE)
    await app.memory.remember(ALICE, dm, "Team in Hangzhou", MemoryScope.EVERYWHERE)
    llm.set_default(text_reply("noted"))
    await app.engine.handle(hello("my question"), RecordingSurface())
    claimed = IncomingMessage(chat=ROOM, user=ALICE, text="my question", event_id="ev-1")
    ticket = await app.desk.claim_turn(claimed, "bot", {})
    assert ticket is not None
    await app.turn_store.finish(ticket.id)
    user_id = await app.store.user_id_of(ALICE)
    async with console.client() as client:
        await sign_in(client)
        assert f'href="/admin/users/{user_id}"' in (await client.get("/admin/users")).text
        page = await client.get(f"/admin/users/{user_id}")
        assert "I am vegetarian" in page.text and "direct chats only" in page.text
        assert "Team in Hangzhou" in page.text
        gone = await client.post(
            f"/admin/users/{user_id}/facts/{veg.id}/delete", data={"csrf": csrf_of(page.text)}
        )
        assert gone.headers["location"] == f"/admin/users/{user_id}?done=forgotten"
        page = await client.get(f"/admin/users/{user_id}")
        assert "I am vegetarian" not in page.text
        unconfirmed = await client.post(
            f"/admin/users/{user_id}/erase", data={"csrf": csrf_of(page.text), "confirm": "x"}
        )
        assert unconfirmed.status_code == 400
        assert [f.text for f in await app.memory.facts_of_user(user_id)] == ["Team in Hangzhou"]
        erased = await client.post(
            f"/admin/users/{user_id}/erase", data={"csrf": csrf_of(page.text), "confirm": "alice"}
        )
        assert erased.status_code == 303
        assert "Nothing remembered." in (await client.get(f"/admin/users/{user_id}")).text
        missing = await client.get("/admin/users/9999")
        assert missing.status_code == 404
    assert await app.memory.facts_of_user(user_id) == []
    info = await app.store.open_conversation(hello())
    assert await app.store.history(info.conversation_id) == []
    actions = [row.action for row in await audit_rows(app)]
    assert actions[-2:] == ["memory.forget", "user.erase"]
    details = (await audit_rows(app))[-1].details
    assert (details["messages"], details["turn_inputs"]) == (2, 1)


async def test_a_channel_can_be_marked_vision_capable_in_the_console(
    make_console: ConsoleFactory, llm: ScriptedOpenAIServer
) -> None:
    console = await make_console(tools=())
    llm.set_default(text_reply("ok"))
    png = b"\x89PNG\r\n\x1a\n" + bytes(16)
    picture = IncomingMessage(
        chat=ROOM,
        user=ALICE,
        text="what is it?",
        attachments=(Attachment(AttachmentKind.IMAGE, "image/png", data=png, size=len(png)),),
    )
    await console.app.engine.handle(picture, RecordingSurface())  # PARLEY_LLM_VISION off
    channel_id = await console.app.store.channel_id(ROOM)
    async with console.client() as client:
        await sign_in(client)
        page = await client.get(f"/admin/channels/{channel_id}")
        bad = await client.post(
            f"/admin/channels/{channel_id}/vision", data={"csrf": csrf_of(page.text), "vision": "?"}
        )
        saved = await client.post(
            f"/admin/channels/{channel_id}/vision",
            data={"csrf": csrf_of(page.text), "vision": "on"},
        )
        after = await client.get(saved.headers["location"])
    assert bad.status_code == 400 and saved.status_code == 303
    assert '<option value="on" selected>' in after.text

    await console.app.engine.handle(picture, RecordingSurface())

    blind, seeing = (request["messages"][-1]["content"] for request in llm.requests)
    assert blind == "[image]\nwhat is it?"
    assert [part["type"] for part in seeing] == ["text", "image_url"]
    entry = (await audit_rows(console.app))[-1]
    assert (entry.action, entry.details["vision"]) == ("channel.vision", True)


async def test_admins_set_approval_rules_and_revoke_always_allow_in_the_console(
    make_console: ConsoleFactory,
) -> None:
    console = await make_console(tools=[send_email])
    app = console.app
    pressing = RecordingSurface(confirm_answer=Answer.ALWAYS)
    await app.store.open_conversation(hello())
    channel_id = await app.store.channel_id(ROOM)
    assert channel_id is not None
    arguments = SendEmailParams(to=["ops@example.com"], subject="Report", body="Numbers.")
    assert await app.approvals.ask(pressing, ALICE, ROOM, channel_id, send_email, arguments)
    [grant] = await app.approvals.grants(channel_id=channel_id)
    async with console.client() as client:
        await sign_in(client)
        page = await client.get(f"/admin/channels/{channel_id}")
        assert 'id="grant-' in page.text and ALICE.qualified_id in page.text
        csrf = csrf_of(page.text)
        # "never ask" for a tool that acts on the world needs the explicit box.
        unboxed = await client.post(
            f"/admin/channels/{channel_id}/approval-rule",
            data={"csrf": csrf, "tool": "send_email", "mode": "never"},
        )
        assert unboxed.status_code == 400 and "explicit" in unboxed.text
        assert await app.approvals.rules(channel_id) == {}
        ruled = await client.post(
            f"/admin/channels/{channel_id}/approval-rule",
            data={"csrf": csrf, "tool": "send_email", "mode": "ask"},
        )
        assert ruled.status_code == 303
        unknown = await client.post(
            f"/admin/channels/{channel_id}/approval-rule",
            data={"csrf": csrf, "tool": "no_such_tool", "mode": "ask"},
        )
        assert unknown.status_code == 400
        revoked = await client.post(
            f"/admin/channels/{channel_id}/grants/{grant.id}/revoke", data={"csrf": csrf}
        )
        assert revoked.status_code == 303
        again = await client.post(
            f"/admin/channels/{channel_id}/grants/{grant.id}/revoke", data={"csrf": csrf}
        )
        assert again.status_code == 404
        after = await client.get(f"/admin/channels/{channel_id}")
    assert "Nobody has an Always allow here." in after.text
    assert '<option value="ask" selected>' in after.text
    assert await app.approvals.rules(channel_id) == {"send_email": Mode.ASK}
    assert await app.approvals.grants(channel_id=channel_id) == []
    # The rule "always ask" means the next call asks again, with no Always allow offered.
    asked = RecordingSurface(confirm_answer=Answer.ONCE)
    assert await app.approvals.ask(asked, ALICE, ROOM, channel_id, send_email, arguments)
    [question] = asked.questions
    assert not question.may_remember
    actions = [row.action for row in await audit_rows(app)]
    assert actions.count("approval.rule") == 2 and "approval.revoke" in actions


async def test_admins_relax_the_outside_words_rule_per_tool_in_the_console_audited(
    make_console: ConsoleFactory,
) -> None:
    console = await make_console(tools=[send_email])
    app = console.app
    await app.store.open_conversation(hello())
    channel_id = await app.store.channel_id(ROOM)
    assert channel_id is not None
    arguments = SendEmailParams(to=["ops@example.com"], subject="Report", body="Numbers.")
    always = RecordingSurface(confirm_answer=Answer.ALWAYS)
    assert await app.approvals.ask(always, ALICE, ROOM, channel_id, send_email, arguments)
    follows = Follows(OutsideKind.MESSAGE, "Eve")
    # Past "Always allow", a call after outside words asks, and says why.
    asked = RecordingSurface(confirm_answer=Answer.ONCE)
    assert await app.approvals.ask(asked, ALICE, ROOM, channel_id, send_email, arguments, follows)
    assert "Why I ask: this follows a message from Eve" in asked.confirmations[0][1]
    async with console.client() as client:
        await sign_in(client)
        page = await client.get(f"/admin/channels/{channel_id}")
        assert "asks every time" in page.text
        csrf = csrf_of(page.text)
        bad = await client.post(
            f"/admin/channels/{channel_id}/outside-rule",
            data={"csrf": csrf, "tool": "no_such_tool", "relaxed": "1"},
        )
        assert bad.status_code == 400
        relaxed = await client.post(
            f"/admin/channels/{channel_id}/outside-rule",
            data={"csrf": csrf, "tool": "send_email", "relaxed": "1"},
        )
        assert relaxed.status_code == 303
        after = await client.get(f"/admin/channels/{channel_id}")
    assert "relaxed: asks as usual" in after.text
    assert await app.approvals.relaxations.of(channel_id) == {"send_email"}
    # Relaxed: the standing approval answers again.
    quiet = RecordingSurface(confirm_answer=Answer.DENIED)
    assert await app.approvals.ask(quiet, ALICE, ROOM, channel_id, send_email, arguments, follows)
    assert quiet.confirmations == []
    entry = (await audit_rows(app))[-1]
    assert (entry.action, entry.details["tool"], entry.details["relaxed"]) == (
        "approval.trust",
        "send_email",
        True,
    )


async def test_a_budget_that_is_no_plain_number_is_a_400_not_a_500(
    make_console: ConsoleFactory,
) -> None:
    console = await make_console(tools=())
    channel_id = await console.app.store.channel_id(ROOM)
    async with console.client() as client:
        await sign_in(client)
        page = await client.get(f"/admin/channels/{channel_id}")
        for typed in ("²", "١٢", "1234567890123456789012345"):
            answer = await client.post(
                f"/admin/channels/{channel_id}/settings",
                data={"csrf": csrf_of(page.text), "user_daily_tokens": typed},
            )
            assert answer.status_code == 400 and "whole number" in answer.text, typed
    assert (await console.app.policy.profile(channel_id)).limits == {}


async def test_a_channel_model_naming_an_unknown_provider_is_refused_not_saved(
    make_console: ConsoleFactory,
    llm: ScriptedOpenAIServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`@name` in a channel's model field must name a provider of the providers file: a
    typo is a 400 naming the known providers, and nothing is saved; a known name is
    saved, audited, and answers the channel's next turn."""
    console = await make_console(
        tools=(), groups={"llm": two_providers(tmp_path, llm.base_url, monkeypatch)}
    )
    llm.set_default(text_reply("ok"))
    channel_id = await console.app.store.channel_id(ROOM)
    async with console.client() as client:
        await sign_in(client)
        page = await client.get(f"/admin/channels/{channel_id}")
        assert "Providers: primary, backup." in page.text
        refused = await client.post(
            f"/admin/channels/{channel_id}/settings",
            data={"csrf": csrf_of(page.text), "model": "@bakcup", "system_prompt": "Be brief."},
        )
        assert refused.status_code == 400
        assert "There is no provider named bakcup. Known providers: primary, backup." in (
            refused.text
        )
        config = await console.app.admin_store.channel_config(channel_id)
        assert (config.model, config.system_prompt) == (None, None)

        saved = await client.post(
            f"/admin/channels/{channel_id}/settings",
            data={"csrf": csrf_of(page.text), "model": "@backup:backup-large"},
        )
        assert saved.status_code == 303

    await console.app.engine.handle(hello(), RecordingSurface())
    assert llm.requests[-1]["model"] == "backup-large"
    changes = [e for e in await audit_rows(console.app) if e.action == "channel.settings"]
    assert [e.details["model"] for e in changes] == ["@backup:backup-large"]


async def test_without_a_providers_file_a_provider_name_is_refused(
    make_console: ConsoleFactory,
) -> None:
    console = await make_console(tools=())
    channel_id = await console.app.store.channel_id(ROOM)
    async with console.client() as client:
        await sign_in(client)
        page = await client.get(f"/admin/channels/{channel_id}")
        assert "Or a provider" not in page.text
        refused = await client.post(
            f"/admin/channels/{channel_id}/settings",
            data={"csrf": csrf_of(page.text), "model": "@claude"},
        )
    assert refused.status_code == 400 and "no PARLEY_PROVIDERS_FILE" in refused.text
    assert (await console.app.admin_store.channel_config(channel_id)).model is None
