"""Which language Parley writes in for a user (bot/chat/languages.py), stored on SQLite and
PostgreSQL, and the reminder delivery's wording and dates in that language."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bot.chat.languages import Languages
from bot.domain import ChatKind, ChatRef, UserRef
from bot.i18n import use_locale
from bot.reminders.delivery import compose
from bot.storage import ConversationStore, Database
from bot.storage.languages import LanguageStore
from bot.storage.models import Reminder
from tests.databases import migrated_database

LI = UserRef("telegram", "5201", "Li", language="zh-hans")
SAM = UserRef("slack", "USAM", "Sam")


@pytest.fixture(params=["sqlite", "postgres"])
async def database(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Database]:
    async with migrated_database(request, tmp_path) as database:
        yield database


async def test_choice_then_app_language_then_the_default(database: Database) -> None:
    languages = Languages(LanguageStore(database), "en", cache_seconds=60)

    assert await languages.locale_of(LI) == "zh_CN"  # the app's tag, noted for later
    assert await languages.locale_of(SAM) == "en"  # nothing known: PARLEY_LANGUAGE
    user_id = await ConversationStore(database).user_id_of(LI)
    assert await languages.locale_of_id(user_id) == "zh_CN"  # a reminder, nobody writing

    assert await languages.choose(LI, "en") == "en"
    assert await languages.locale_of(LI) == "en"
    assert await languages.locale_of_id(user_id) == "en"
    assert await languages.choose(LI, "auto") == "zh_CN"
    for nonsense in ("klingon", "zh-TW", "", "de"):
        assert await languages.choose(LI, nonsense) is None
    assert await languages.locale_of(LI) == "zh_CN"


async def test_a_tag_without_a_catalog_falls_through_to_the_default(database: Database) -> None:
    languages = Languages(LanguageStore(database), "zh", cache_seconds=60)
    german = UserRef("telegram", "77", "Jonas", language="de-DE")
    assert await languages.locale_of(german) == "zh_CN"
    assert await languages.locale_of(UserRef("telegram", "78", language="en-US")) == "en"


async def test_a_changed_app_language_is_stored_again(database: Database) -> None:
    store = LanguageStore(database)
    languages = Languages(store, "en", cache_seconds=60)
    await languages.locale_of(LI)
    await languages.locale_of(UserRef("telegram", "5201", "Li", language="en-GB"))
    assert (await store.of(LI)).platform == "en-GB"


def late_reminder() -> Reminder:
    return Reminder(
        id=1,
        user_id=1,
        channel_id=1,
        thread_key="",
        kind="message",
        text="给妈妈打电话",
        due_at=datetime(2026, 12, 1, 7, 30, tzinfo=UTC),
        timezone="Asia/Shanghai",
        status="pending",
    )


@pytest.mark.parametrize(
    ("locale", "expected"),
    [
        (
            "zh_CN",
            "⏰ 提醒（已延迟：原定于 2026年12月1日 15:30:00（Asia/Shanghai））：给妈妈打电话",
        ),
        (
            "en",
            "⏰ Reminder (late: this was due Dec 1, 2026, 3:30:00\u202fPM Asia/Shanghai): "
            "给妈妈打电话",
        ),
    ],
)
async def test_a_late_reminder_says_when_it_was_due_the_readers_way(
    locale: str, expected: str
) -> None:
    chat = ChatRef("telegram", "5201", ChatKind.DM)
    with use_locale(locale):
        text = await compose(late_reminder(), LI, chat, True, None)
    assert text == expected
