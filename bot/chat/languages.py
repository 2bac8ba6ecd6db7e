"""`Languages`: which language Parley writes in for a user.

In this order: the user's own choice (`/language zh` and the console's user page), the
language their chat app reports (Telegram's `language_code`, the Slack user's locale),
then PARLEY_LANGUAGE. The app's tag is stored when it changes, so a reminder delivered
with nobody writing reads the same language as a reply. Answers are cached for a while
(PARLEY_LANGUAGE_CACHE_SECONDS) so a turn does not cost a read; a choice made here is
seen at once, one made on another replica once the cache expires.
"""

from __future__ import annotations

import re

from bot.chat.cache import TTLCache
from bot.domain import UserRef
from bot.i18n import available_locales, normalize, short_tag
from bot.storage.languages import LanguageStore, UserLanguage

# What `/language` accepts besides a locale: follow the chat app again.
AUTOMATIC = frozenset({"auto", "default", "reset"})


class Languages:
    """The reader's locale for a user, and their choice of one."""

    def __init__(self, store: LanguageStore, default: str, *, cache_seconds: float) -> None:
        self.store = store
        self.default = normalize(default)
        self.cache_seconds = cache_seconds
        self._known: TTLCache[UserLanguage] = TTLCache(cache_seconds)

    async def locale_of(self, user: UserRef) -> str:
        """The catalog locale to write to `user` in (see the module's docstring)."""
        known = await self._known.get(user.qualified_id, lambda: self.store.of(user))
        if user.language and user.language != known.platform:
            await self.store.note_platform_tag(user, user.language)
            self._known.put(user.qualified_id, UserLanguage(known.chosen, user.language))
        return self._pick(known.chosen, user.language or known.platform)

    async def locale_of_id(self, user_id: int) -> str:
        """The same for a stored user (a reminder's owner), from what is stored."""
        known = await self.store.of_id(user_id)
        return self._pick(known.chosen, known.platform)

    async def choose(self, user: UserRef, argument: str) -> str | None:
        """`/language <argument>`: store the choice; the locale the user now reads, or
        None when `argument` names no language Parley has."""
        word = argument.strip().lower()
        if word in AUTOMATIC:
            chosen = None
        else:
            chosen = normalize(word)
            # normalize() reads anything unknown as English: only "en…" may mean it.
            if chosen not in available_locales() or short_tag(chosen) != re.split("[-_]", word)[0]:
                return None
        await self.set_choice(user, chosen)
        return await self.locale_of(user)

    async def set_choice(self, user: UserRef, locale: str | None) -> None:
        """Store `user`'s choice (None: follow their chat app), seen here at once."""
        await self.store.choose(user, locale)
        self._known.forget(user.qualified_id)

    def _pick(self, chosen: str | None, platform_tag: str | None) -> str:
        if chosen:
            return chosen
        if platform_tag:
            locale = normalize(platform_tag)
            if locale in available_locales():
                return locale
        return self.default
