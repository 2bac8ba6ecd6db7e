"""The message catalogs: complete, faithful to their placeholders, and current with the code.

When one of these fails after a change of wording: `make catalogs`, translate the empty and
fuzzy entries of each bot/locale/<locale>/LC_MESSAGES/parley.po, `make catalogs` again
(docs/languages.md).
"""

from __future__ import annotations

import string
from pathlib import Path

import pytest
from babel.messages.catalog import Catalog, Message
from babel.messages.extract import extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.pofile import read_po

from bot.i18n import DOMAIN, LOCALE_DIR, _, use_locale

ROOT = Path(__file__).resolve().parents[1]
TRANSLATED = ["zh_CN"]


def _catalog(path: Path, locale: str | None = None) -> Catalog:
    with path.open("rb") as po_file:
        return read_po(po_file, locale=locale)


def _ids(message: Message) -> tuple[str, ...]:
    return message.id if isinstance(message.id, tuple) else (message.id,)


def _strings(message: Message) -> tuple[str, ...]:
    return message.string if isinstance(message.string, tuple) else (message.string,)


def _placeholders(text: str) -> set[str]:
    return {field for _, field, _, _ in string.Formatter().parse(text) if field is not None}


def _entries(locale: str) -> list[Message]:
    catalog = _catalog(LOCALE_DIR / locale / "LC_MESSAGES" / f"{DOMAIN}.po", locale)
    return [message for message in catalog if message.id]


@pytest.mark.parametrize("locale", TRANSLATED)
def test_every_message_has_a_reviewed_translation(locale: str) -> None:
    untranslated = [
        _ids(message)[0]
        for message in _entries(locale)
        if message.fuzzy or not all(_strings(message))
    ]
    assert untranslated == [], f"{locale}: no (or only a fuzzy) translation for these"


@pytest.mark.parametrize("locale", TRANSLATED)
def test_translations_keep_the_placeholders_of_the_original(locale: str) -> None:
    wrong = [
        (_ids(message)[0], translation)
        for message in _entries(locale)
        for translation in _strings(message)
        if translation and _placeholders(translation) != _placeholders(_ids(message)[-1])
    ]
    assert wrong == [], f"{locale}: placeholders differ from the original"


def _extracted_ids() -> set[str]:
    with (ROOT / "babel.cfg").open() as cfg:
        method_map, options_map = parse_mapping_cfg(cfg, "babel.cfg")
    return {
        message if isinstance(message, str) else message[0]
        for _, _, message, *_ in extract_from_dir(str(ROOT), method_map, options_map)
    }


def test_the_template_and_every_catalog_hold_exactly_the_words_in_the_code() -> None:
    in_code = _extracted_ids()
    template = {_ids(m)[0] for m in _catalog(LOCALE_DIR / f"{DOMAIN}.pot") if m.id}
    assert sorted(in_code - template) == [], "in the code, not in parley.pot: make catalogs"
    assert sorted(template - in_code) == [], "in parley.pot, gone from the code: make catalogs"
    for path in sorted(LOCALE_DIR.glob(f"*/LC_MESSAGES/{DOMAIN}.po")):
        ids = {_ids(m)[0] for m in _catalog(path) if m.id}
        assert ids == template, f"{path.relative_to(ROOT)} differs from parley.pot"


def test_a_chinese_reader_reads_chinese_and_an_english_one_english() -> None:
    with use_locale("zh-CN"):
        assert _("Deny") == "拒绝"
    with use_locale("en-GB"):
        assert _("Deny") == "Deny"
