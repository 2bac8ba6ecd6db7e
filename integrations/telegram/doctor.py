"""`parley doctor`'s Telegram check: getMe with the bot token, through python-telegram-bot
against PARLEY_TELEGRAM_BASE_URL (and the webhook's state when webhook mode is set)."""

from __future__ import annotations

from telegram import Bot
from telegram.error import InvalidToken, NetworkError, TelegramError
from telegram.request import HTTPXRequest

from bot.config import TelegramSettings
from bot.ops.doctor import Check, CheckFailed


def telegram_check(settings: TelegramSettings) -> Check:
    """getMe with TELEGRAM_BOT_TOKEN (which must be set)."""
    if settings.bot_token is None:
        raise ValueError("the Telegram check needs TELEGRAM_BOT_TOKEN")
    token = settings.bot_token.get_secret_value()

    async def probe() -> str:
        # A request object of our own, closed below: Bot.shutdown() closes nothing for a
        # bot whose initialize() (itself a getMe) never succeeded.
        request = HTTPXRequest(connection_pool_size=1)
        bot = Bot(token, base_url=settings.base_url, request=request)
        try:
            me = await bot.get_me()
        except InvalidToken:
            raise CheckFailed(
                "getMe refused TELEGRAM_BOT_TOKEN (Unauthorized)",
                "copy the token @BotFather gave you (/token) into TELEGRAM_BOT_TOKEN.",
            ) from None
        except NetworkError as exc:
            raise CheckFailed(
                f"cannot reach the Bot API ({exc})",
                "check PARLEY_TELEGRAM_BASE_URL and the network.",
            ) from None
        except TelegramError as exc:
            raise CheckFailed(f"getMe failed ({exc})") from None
        finally:
            await request.shutdown()
        mode = "webhook" if settings.webhook_url else "long polling"
        # In privacy mode a bot gets only the group messages meant for it, so observed
        # group context (PARLEY_GROUP_CONTEXT_MESSAGES) has nothing to keep.
        privacy = (
            "privacy mode off: sees every group message"
            if me.can_read_all_group_messages
            else "privacy mode on: sees only group messages meant for it"
        )
        return f"@{me.username} ({me.id}), {mode}, {privacy}"

    return Check("telegram", probe)
