"""The language a Slack request's answer is written in.

Bolt runs its middleware and then the listener in the request's own task (or starts the
listener's task from it), so the locale is entered for that task once per request: the
user's own choice or, failing that, their Slack locale (`users.info` with
`include_locale`, remembered for PARLEY_LANGUAGE_CACHE_SECONDS). Everything the request
leads to, a turn included, is written in it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from slack_bolt.async_app import AsyncBoltContext
from slack_sdk.web.async_client import AsyncWebClient

from bot.chat.cache import TTLCache
from bot.chat.desk import Desk
from bot.domain import UserRef
from bot.i18n import enter_locale
from integrations.slack.convert import PLATFORM
from integrations.slack.webapi import slack_call


class ReaderLanguage:
    """Bolt middleware that enters the requester's locale."""

    def __init__(self, client: AsyncWebClient, desk: Desk, *, cache_seconds: float) -> None:
        self.client = client
        self.desk = desk
        self._locales: TTLCache[str] = TTLCache(cache_seconds)

    async def __call__(
        self, context: AsyncBoltContext, next: Callable[[], Awaitable[None]]
    ) -> None:
        user_id = context.user_id
        if user_id and user_id != context.bot_user_id:
            user = UserRef(PLATFORM, user_id, language=await self.slack_locale(user_id))
            enter_locale(await self.desk.locale_of(user))
        await next()

    async def slack_locale(self, user_id: str) -> str:
        """The user's Slack locale ("zh-CN"; "" if Slack does not say), cached."""

        async def ask() -> str:
            response = await slack_call(
                "users.info (locale)", self.client.users_info(user=user_id, include_locale=True)
            )
            if response is None:
                raise LookupError("users.info failed")  # logged by slack_call; not cached
            return str((response.get("user") or {}).get("locale") or "")

        try:
            return await self._locales.get(user_id, ask)
        except LookupError:
            return ""
