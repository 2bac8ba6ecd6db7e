"""The console in the reader's language: Accept-Language, the ?lang= switch and its cookie,
and a user's language set on their page (real HTTP against a served Application)."""

from __future__ import annotations

import pytest

from bot.domain import ChatKind, ChatRef, IncomingMessage, UserRef
from bot.i18n import use_locale
from bot.web.languages import from_accept_language
from tests.fakes.openai_server import ScriptedOpenAIServer, text_reply
from tests.fakes.surface import RecordingSurface
from tests.web.console_harness import ConsoleFactory, csrf_of, sign_in

ALICE = UserRef("test", "alice", "Alice")
ZH = {"Accept-Language": "zh-CN,zh;q=0.9,en;q=0.8"}


async def test_a_chinese_browser_gets_the_console_in_chinese(make_console: ConsoleFactory) -> None:
    console = await make_console(tools=())
    async with console.client() as client:
        login = await client.get("/admin/login", headers=ZH)
        assert '<html lang="zh-CN">' in login.text
        assert "<h1>登录</h1>" in login.text and "密码" in login.text
        await sign_in(client, headers=ZH)
        users = await client.get("/admin/users", headers=ZH)
        assert "<h1>用户</h1>" in users.text and ">审计日志</a>" in users.text

        english = await client.get("/admin/users", headers={"Accept-Language": "en-GB"})
        assert "<h1>Users</h1>" in english.text


async def test_the_switch_is_remembered_over_the_browser_language(
    make_console: ConsoleFactory,
) -> None:
    console = await make_console(tools=())
    async with console.client() as client:
        await sign_in(client)
        switched = await client.get("/admin/users?lang=zh", headers={"Accept-Language": "en"})
        assert "<h1>用户</h1>" in switched.text
        assert "parley_lang=zh_CN" in switched.headers["set-cookie"]
        later = await client.get("/admin/users", headers={"Accept-Language": "en"})
        assert "<h1>用户</h1>" in later.text
        back = await client.get("/admin/users?lang=en", headers=ZH)
        assert "<h1>Users</h1>" in back.text


async def test_an_admin_sets_a_users_language_on_their_page(
    make_console: ConsoleFactory, llm: ScriptedOpenAIServer
) -> None:
    console = await make_console(tools=())
    app = console.app
    llm.set_default(text_reply("ok"))
    room = ChatRef("test", "room-1", ChatKind.GROUP, "Finance")
    await app.desk.turn(IncomingMessage(chat=room, user=ALICE, text="hi"), RecordingSurface())
    user_id = await app.store.user_id_of(ALICE)
    async with console.client() as client:
        await sign_in(client)
        page = await client.get(f"/admin/users/{user_id}")
        assert 'name="language"' in page.text
        bad = await client.post(
            f"/admin/users/{user_id}/language",
            data={"csrf": csrf_of(page.text), "language": "klingon"},
        )
        assert bad.status_code == 400
        done = await client.post(
            f"/admin/users/{user_id}/language", data={"csrf": csrf_of(page.text), "language": "zh"}
        )
        assert done.headers["location"] == f"/admin/users/{user_id}?done=language"
    assert await app.languages.locale_of(ALICE) == "zh_CN"
    surface = RecordingSurface()
    llm.set_default(text_reply(""))
    # As an adapter does: the turn is written in the locale entered for its sender.
    with use_locale(await app.desk.locale_of(ALICE)):
        await app.desk.turn(IncomingMessage(chat=room, user=ALICE, text="again"), surface)
    assert "模型返回了空白回答" in "".join(surface.deltas)


@pytest.mark.parametrize(
    ("header", "locale"),
    [
        ("zh-CN,zh;q=0.9,en;q=0.8", "zh_CN"),
        ("en-US,en;q=0.9,zh;q=0.8", "en"),
        ("de-DE,de;q=0.9,zh-Hans;q=0.5", "zh_CN"),
        ("fr;q=0.9, en;q=0.1", "en"),
        ("en;q=0.2, zh;q=0.8", "zh_CN"),
        ("de, fr", None),
        ("*", None),
        ("", None),
        ("zh;q=nonsense", None),
    ],
)
def test_accept_language_picks_the_first_language_with_a_catalog(
    header: str, locale: str | None
) -> None:
    assert from_accept_language(header) == locale
