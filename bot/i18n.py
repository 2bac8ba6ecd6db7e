"""Every word Parley writes itself, in the reader's language (gettext catalogs, Babel).

Conventions, for every module that writes to people:

- Wrap the English text in `_()` where it is shown: `_("Reminder: {text}", text=text)`.
  Placeholders are named `{braces}`; values are passed as keywords, never formatted
  into the message id first, so a translator sees the whole sentence.
- A module-level constant is marked with `N_()` (extracted, not translated) and
  translated where it is shown: `_(UNEXPECTED_ERROR)`.
- The language is the reader's, chosen by whoever knows the reader (the desk, for a
  turn; the console, for a request) with `use_locale(...)`; code that writes text does
  not pass a language around.

Catalogs live in `bot/locale/<locale>/LC_MESSAGES/parley.po` (compiled to `.mo` by the
build: `make catalogs`, `make venv`, the wheel's hook); a tree whose `.mo` was not built yet
reads the `.po` itself. A locale without a catalog, or a message without a translation,
reads English. Adding a language: docs/languages.md.
"""

from __future__ import annotations

import gettext
import io
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from functools import cache
from pathlib import Path

from babel import Locale, UnknownLocaleError
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import Translations

LOCALE_DIR = Path(__file__).parent / "locale"
DOMAIN = "parley"
DEFAULT_LOCALE = "en"

_current_locale: ContextVar[str] = ContextVar("parley_locale", default=DEFAULT_LOCALE)


def normalize(tag: str | None) -> str:
    """A platform's language tag ("zh-CN", "zh_hans", "en-US", "") as a catalog locale.

    Unknown or empty tags read as English rather than failing: a user's client may send
    anything.
    """
    if not tag:
        return DEFAULT_LOCALE
    try:
        locale = Locale.parse(tag.replace("-", "_"), sep="_")
    except (ValueError, UnknownLocaleError):
        return DEFAULT_LOCALE
    if locale.language == "zh":
        # Simplified Chinese for every Chinese tag unless it says Traditional.
        traditional = locale.script == "Hant" or locale.territory in {"TW", "HK", "MO"}
        return "zh_Hant" if traditional else "zh_CN"
    return locale.language


@cache
def translations(locale: str) -> gettext.NullTranslations:
    """The catalog for `locale`, or English (the message ids) when there is none.

    The compiled `.mo` is read unless its `.po` is newer (a catalog edited, not yet
    compiled), so what a reader sees is always the catalog in the tree.
    """
    for candidate in dict.fromkeys([locale, DEFAULT_LOCALE]):
        folder = LOCALE_DIR / candidate / "LC_MESSAGES"
        compiled, source = folder / f"{DOMAIN}.mo", folder / f"{DOMAIN}.po"
        if source.is_file() and (
            not compiled.is_file() or compiled.stat().st_mtime < source.stat().st_mtime
        ):
            return _compile(source, candidate)
        if compiled.is_file():
            with compiled.open("rb") as mo_file:
                return Translations(mo_file, domain=DOMAIN)
    return gettext.NullTranslations()


def _compile(source: Path, locale: str) -> Translations:
    with source.open("rb") as po_file:
        catalog = read_po(po_file, locale=locale)
    compiled = io.BytesIO()
    write_mo(compiled, catalog)
    compiled.seek(0)
    return Translations(compiled, domain=DOMAIN)


def available_locales() -> list[str]:
    """The locales that have a catalog (English first), for a language switch."""
    others = sorted(
        path.parents[1].name
        for path in LOCALE_DIR.glob(f"*/LC_MESSAGES/{DOMAIN}.po")
        if path.parents[1].name != DEFAULT_LOCALE
    )
    return [DEFAULT_LOCALE, *others]


def language_name(locale: str) -> str:
    """The language's own name for itself ("English", "中文"), for a language switch."""
    return Locale.parse(locale).get_language_name(locale) or locale


def short_tag(locale: str) -> str:
    """What a user types to choose `locale` ("zh" for zh_CN, "en")."""
    return Locale.parse(locale).language


def current_locale() -> str:
    return _current_locale.get()


@contextmanager
def use_locale(tag: str | None) -> Iterator[str]:
    """Write in the language `tag` names within this block (and tasks started in it)."""
    token = _current_locale.set(normalize(tag))
    try:
        yield _current_locale.get()
    finally:
        _current_locale.reset(token)


def enter_locale(tag: str | None) -> str:
    """Write in the language `tag` names for the rest of the current task (and tasks it
    starts): for a framework whose middleware cannot wrap the handlers it leads to (Slack
    bolt's run one after the other). Prefer `use_locale`."""
    _current_locale.set(normalize(tag))
    return _current_locale.get()


def _(message: str, /, **values: object) -> str:
    """`message` in the current reader's language, with its `{placeholders}` filled."""
    text = translations(_current_locale.get()).gettext(message)
    return text.format(**values) if values else text


def ngettext(singular: str, plural: str, count: int, /, **values: object) -> str:
    """The singular or plural form for `count` in the reader's language (`{count}` filled)."""
    text = translations(_current_locale.get()).ngettext(singular, plural, count)
    return text.format(count=count, **values)


def N_(message: str, /) -> str:
    """Mark `message` for the catalogs without translating it (translate where shown)."""
    return message
