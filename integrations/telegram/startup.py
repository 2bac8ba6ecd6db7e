"""Starting the Telegram adapter, and what a failed start tells the operator.

`take_updates` signs in, registers the command menu per language and starts the webhook
or long polling; `abandon` closes what a failed start opened.

A failed start must tell the operator one line without the token, and PTB's own errors are
unfit for that: the `InvalidToken` of `Bot.initialize()` quotes the
token, and a traceback through httpx is sixty lines. `start_failure` turns a PTB error
into the `ParleyError` the command line prints as one line naming the setting.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from babel import Locale
from telegram import Bot, BotCommand, Update
from telegram.error import BadRequest, InvalidToken, NetworkError, TelegramError
from telegram.ext import Application

from bot.chat import commands
from bot.config import TelegramSettings
from bot.errors import ConfigError, ParleyError, PlatformUnavailable
from bot.i18n import DEFAULT_LOCALE, _, available_locales, use_locale

log = logging.getLogger(__name__)

# PTB raises InvalidToken for both; the text is Telegram's `description`.
_STATUS = {"Unauthorized": "401 Unauthorized", "Not Found": "404 Not Found"}


class WebhookRefused(BadRequest):
    """setWebhook was refused (the URL: not HTTPS, a port Telegram does not call, ...)."""


def start_failure(error: TelegramError, base_url: str) -> ParleyError:
    """The error `parley run` ends with when Telegram refused to start the bot."""
    if isinstance(error, WebhookRefused):
        return ConfigError(
            f"PARLEY_TELEGRAM_WEBHOOK_URL was refused by the Telegram Bot API ({error.message})"
        )
    if isinstance(error, InvalidToken):
        # `Bot.initialize()` re-raises with the token in the text; its cause has Telegram's.
        cause = error.__cause__ if isinstance(error.__cause__, InvalidToken) else error
        reason = _STATUS.get(cause.message, cause.message)
        hint = " (or PARLEY_TELEGRAM_BASE_URL is not a Bot API)" if "404" in reason else ""
        return ConfigError(
            f"TELEGRAM_BOT_TOKEN was rejected by the Telegram Bot API ({reason}){hint}"
        )
    if isinstance(error, NetworkError):
        return PlatformUnavailable(
            f"cannot reach the Telegram Bot API at PARLEY_TELEGRAM_BASE_URL ({base_url}): "
            f"{error.message}"
        )
    return PlatformUnavailable(f"the Telegram Bot API refused to start the bot: {error.message}")


# Updates Parley asks Telegram for: messages and button presses.
ALLOWED_UPDATES = [Update.MESSAGE, Update.CALLBACK_QUERY]


async def set_commands(bot: Bot) -> None:
    """The command menu in English, and in each catalog's language for its readers."""
    for locale in available_locales():
        with use_locale(locale):
            menu = [BotCommand(item.name, _(item.menu)) for item in commands.COMMANDS]
        language = "" if locale == DEFAULT_LOCALE else Locale.parse(locale).language
        await bot.set_my_commands(menu, language_code=language or None)


async def take_updates(
    app: Application[Any, Any, Any, Any, Any, Any],
    settings: TelegramSettings,
    *,
    webhook_secret: str,
    on_polling_error: Callable[[TelegramError], None],
) -> None:
    """Sign in (getMe), register the commands and start taking updates: by webhook when
    a URL is set, else by long polling (PTB's Updater, started by hand so that Parley's
    event loop stays Parley's)."""
    await app.initialize()
    await set_commands(app.bot)
    await app.start()
    if settings.webhook_url:
        try:
            await app.bot.set_webhook(
                settings.webhook_url, secret_token=webhook_secret, allowed_updates=ALLOWED_UPDATES
            )
        except BadRequest as exc:
            raise WebhookRefused(exc.message) from None
        log.info("telegram: @%s takes updates by webhook", app.bot.username)
        return
    if app.updater is None:
        raise RuntimeError("polling needs PTB's Updater")
    await app.updater.start_polling(
        allowed_updates=ALLOWED_UPDATES, error_callback=on_polling_error
    )
    log.info("telegram: @%s takes updates by long polling", app.bot.username)


def polling_failed(error: TelegramError) -> None:
    """PTB's Updater retries by itself; the operator sees one line per failure."""
    log.warning("telegram polling failed (%s); retrying", error)


async def abandon(app: Application[Any, Any, Any, Any, Any, Any]) -> None:
    """Close what a start that failed half-way opened (PTB's HTTP clients at least); a
    failure here must not hide the one that is being reported."""
    try:
        if app.updater is not None and app.updater.running:
            await app.updater.stop()
        if app.running:
            await app.stop()
        await app.shutdown()
        await app.bot.shutdown()
    except Exception as exc:
        log.warning("telegram: cleaning up after the failed start failed too (%s)", exc)
