"""Tool policy, channel profiles, budgets and the audit log, through real turns."""

from __future__ import annotations

import dataclasses

from sqlalchemy import select

from bot.domain import ChatKind, ChatRef, Usage, UserRef
from bot.storage import UsageEntry
from bot.storage.models import AuditEntry
from tests.apps import AppFactory
from tests.bot.turn.test_engine import ALICE, DM, echo, hang, launch, make_engine_app, message
from tests.fakes.openai_server import ScriptedOpenAIServer, text_reply, tool_call_reply
from tests.fakes.surface import RecordingSurface
from tools.clock import get_current_time

GROUP = ChatRef("test", "room-1", ChatKind.GROUP)
ADMIN = "test:root"

__all__ = ["make_engine_app"]  # the fixture, shared with test_engine


def offered(request: dict[str, object]) -> set[str]:
    return {t["function"]["name"] for t in request.get("tools", [])}  # type: ignore[attr-defined, index]


async def audit_rows(app: object) -> list[AuditEntry]:
    async with app.database.read() as session:  # type: ignore[attr-defined]
        return list((await session.exec(select(AuditEntry).order_by(AuditEntry.id))).scalars())  # type: ignore[call-overload]


async def test_a_disabled_tool_is_not_offered_and_a_forced_call_is_refused(
    llm: ScriptedOpenAIServer, make_engine_app: AppFactory
) -> None:
    app = await make_engine_app()
    channel_id = await app.store.channel_id(DM)
    done = await app.admin.set_tool(
        actor=ADMIN,
        channel_id=channel_id,
        place="test:dm-alice",
        tool="echo",
        enabled=False,
        surface="test",
        is_admin=True,
    )
    assert done
    llm.script(tool_call_reply(("echo", {"text": "sneaky"})), text_reply("ok"))

    outcome = await app.engine.handle(message("echo sneaky"), RecordingSurface())

    assert "echo" not in offered(llm.requests[0])
    assert "get_current_time" in offered(llm.requests[0])
    [result] = outcome.tool_results
    assert result.is_error and "no tool named 'echo'" in result.content
    [entry] = await audit_rows(app)
    assert (entry.actor, entry.action, entry.allowed, entry.surface) == (
        ADMIN,
        "tool.toggle",
        True,
        "test",
    )
    assert entry.details == {"tool": "echo", "enabled": False, "channel_id": channel_id}


async def test_defaults_per_chat_kind_keep_side_effects_off_unless_named(
    llm: ScriptedOpenAIServer, make_engine_app: AppFactory
) -> None:
    app = await make_engine_app(
        tools=(echo, hang, launch),
        admin={"default_tools_dm": "all", "default_tools_group": "echo,launch"},
    )
    llm.set_default(text_reply("ok"))
    await app.engine.handle(message("hi"), RecordingSurface())
    await app.engine.handle(message("hi", chat=GROUP), RecordingSurface())

    assert offered(llm.requests[0]) == {"echo", "hang"}  # no launch
    assert offered(llm.requests[1]) == {"echo", "launch"}


async def test_mcp_tools_follow_their_server_switch_and_their_own(
    llm: ScriptedOpenAIServer, make_engine_app: AppFactory
) -> None:
    remote = dataclasses.replace(echo, name="docs_search", source="mcp:docs")
    other = dataclasses.replace(echo, name="docs_fetch", source="mcp:docs")
    app = await make_engine_app(
        tools=(remote, other, get_current_time), admin={"default_tools_dm": "all"}
    )
    channel_id = await app.store.channel_id(DM)
    llm.set_default(text_reply("ok"))

    await app.engine.handle(message("1"), RecordingSurface())
    for tool, enabled in (("mcp:docs", False), ("docs_fetch", True)):
        await app.admin.set_tool(
            actor=ADMIN,
            channel_id=channel_id,
            place="test:dm",
            tool=tool,
            enabled=enabled,
            surface="test",
            is_admin=True,
        )
    await app.engine.handle(message("2"), RecordingSurface())

    assert {"docs_search", "docs_fetch"} <= offered(llm.requests[0])
    assert offered(llm.requests[1]) == {"docs_fetch", "get_current_time"}


async def test_a_non_admin_change_is_refused_and_audited(make_engine_app: AppFactory) -> None:
    app = await make_engine_app()
    channel_id = await app.store.channel_id(DM)

    done = await app.admin.set_tool(
        actor="test:mallory",
        channel_id=channel_id,
        place="test:dm-alice",
        tool="launch",
        enabled=True,
        surface="test",
        is_admin=False,
    )

    assert not done
    [entry] = await audit_rows(app)
    assert entry.allowed is False and entry.details["reason"] == "not an admin"
    config = await app.admin_store.channel_config(channel_id)
    assert config.tools == {}


async def test_parley_admins_names_platform_qualified_users(make_engine_app: AppFactory) -> None:
    app = await make_engine_app(admin={"admins": "test:alice, slack:U1"})
    assert app.admin.is_listed(ALICE)
    assert not app.admin.is_listed(UserRef("slack", "alice"))
    assert not app.admin.is_listed(UserRef("test", "bob"))


async def test_a_channel_uses_its_own_system_prompt_and_model(
    llm: ScriptedOpenAIServer, make_engine_app: AppFactory
) -> None:
    app = await make_engine_app()
    channel_id = await app.store.channel_id(DM)
    await app.admin_store.set_channel_settings(
        channel_id, system_prompt="You are the finance bot.", model="finance-model", limits={}
    )
    llm.set_default(text_reply("ok"))

    await app.engine.handle(message("hi"), RecordingSurface())
    await app.engine.handle(message("hi", chat=GROUP), RecordingSurface())

    first, second = llm.requests
    assert first["model"] == "finance-model"
    assert first["messages"][0]["content"].startswith("You are the finance bot.")
    assert second["model"] == "scripted"
    assert not second["messages"][0]["content"].startswith("You are the finance bot.")


async def test_a_user_over_the_daily_budget_is_told_so(
    llm: ScriptedOpenAIServer, make_engine_app: AppFactory
) -> None:
    app = await make_engine_app(limits={"user_daily_tokens": 30})
    llm.set_default(text_reply("fine", usage=(20, 15)))

    first = await app.engine.handle(message("one"), RecordingSurface())
    surface = RecordingSurface()
    second = await app.engine.handle(message("two"), surface)

    assert first.text == "fine" and not first.error
    assert "daily budget of 30 tokens" in second.error
    assert surface.failures == [second.error]
    assert len(llm.requests) == 1  # the model was not called for the refused turn


async def test_a_channel_budget_override_and_the_rate_limit(
    llm: ScriptedOpenAIServer, make_engine_app: AppFactory
) -> None:
    app = await make_engine_app(limits={"user_messages_per_minute": 2})
    llm.set_default(text_reply("fine", usage=(50, 50)))
    group_id = await app.store.channel_id(GROUP)
    await app.admin_store.set_channel_settings(
        group_id, system_prompt=None, model=None, limits={"channel_monthly_tokens": 100}
    )

    in_group = await app.engine.handle(message("a", chat=GROUP), RecordingSurface())
    refused_group = await app.engine.handle(
        message("b", user=UserRef("test", "bob"), chat=GROUP), RecordingSurface()
    )
    assert not in_group.error
    assert "This channel has used its monthly budget" in refused_group.error

    await app.engine.handle(message("c"), RecordingSurface())
    limited = await app.engine.handle(message("d"), RecordingSurface())
    assert "faster than the limit of 2 per minute" in limited.error


async def test_the_usage_chart_names_the_top_channels_and_sums_the_rest(
    make_engine_app: AppFactory,
) -> None:
    app = await make_engine_app()
    for index in range(8):
        chat = ChatRef("test", f"room-{index}", ChatKind.GROUP)
        info = await app.store.open_conversation(message("x", chat=chat))
        await app.store.record_usage(
            UsageEntry(info.user_id, info.channel_id, None, "m", Usage(100 * (index + 1), 0))
        )

    rows = await app.admin_store.tokens_per_day(days=30, top=6)

    by_label = {label: tokens for _, label, tokens in rows}
    assert by_label == {
        **{f"test:room-{i}": 100 * (i + 1) for i in range(2, 8)},
        "other": 100 + 200,
    }


async def test_another_replicas_change_shows_once_the_cache_expires(
    llm: ScriptedOpenAIServer, make_engine_app: AppFactory
) -> None:
    app = await make_engine_app(tools=(echo,))
    other = await make_engine_app(tools=(echo,))  # a second process on the same database
    # Expiry is made explicit rather than waited for: a wall-clock window of 0.2 s
    # between two turns does not hold on a busy machine.
    app.admin_store.cache_seconds = 3600
    llm.set_default(text_reply("ok"))
    await app.engine.handle(message("1"), RecordingSurface())
    channel_id = await other.store.channel_id(DM)
    await other.admin.set_tool(
        actor=ADMIN,
        channel_id=channel_id,
        place="test:dm-alice",
        tool="echo",
        enabled=False,
        surface="test",
        is_admin=True,
    )
    await app.engine.handle(message("2"), RecordingSurface())  # still cached
    app.admin_store.cache_seconds = 0  # the cache's time is up
    await app.engine.handle(message("3"), RecordingSurface())

    assert [offered(r) for r in llm.requests] == [{"echo"}, {"echo"}, set()]
