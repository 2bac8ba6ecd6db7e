"""The language helpers every writer of user-facing text relies on."""

import asyncio

import pytest

from bot.i18n import _, current_locale, normalize, use_locale


@pytest.mark.parametrize(
    ("tag", "locale"),
    [
        ("zh-CN", "zh_CN"),
        ("zh_Hans", "zh_CN"),
        ("zh", "zh_CN"),
        ("zh-TW", "zh_Hant"),
        ("en-US", "en"),
        ("de-DE", "de"),
        ("", "en"),
        (None, "en"),
        ("not a language", "en"),
    ],
)
def test_platform_language_tags_map_to_catalog_locales(tag: str | None, locale: str) -> None:
    assert normalize(tag) == locale


def test_a_message_without_a_catalog_reads_english_with_its_placeholders_filled() -> None:
    with use_locale("xx"):
        assert _("Reminder: {text}", text="call Li") == "Reminder: call Li"


async def test_the_locale_is_per_task_and_restored_after_the_block() -> None:
    async def reader(tag: str) -> str:
        with use_locale(tag):
            await asyncio.sleep(0)
            return current_locale()

    assert await asyncio.gather(reader("zh-CN"), reader("en-GB")) == ["zh_CN", "en"]
    assert current_locale() == "en"
