"""What a failed start of the Telegram adapter tells the operator: one line, no token.

PTB's own errors are unfit for that: the `InvalidToken` of `Bot.initialize()` quotes the
token, and a traceback through httpx is sixty lines. `start_failure` turns a PTB error
into the `ParleyError` the command line prints as one line naming the setting.
"""

from __future__ import annotations

from telegram.error import BadRequest, InvalidToken, NetworkError, TelegramError

from bot.errors import ConfigError, ParleyError, PlatformUnavailable

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
