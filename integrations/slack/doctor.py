"""`parley doctor`'s Slack check: auth.test with the bot token (and the app token's
apps.connections.open in Socket Mode), through slack_sdk against PARLEY_SLACK_API_URL."""

from __future__ import annotations

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.config import SlackSettings
from bot.ops.doctor import Check, CheckFailed

# What Slack's auth errors mean for someone holding the token.
_FIXES = {
    "invalid_auth": "copy the Bot User OAuth Token (xoxb-...) from your app's OAuth & "
    "Permissions page into SLACK_BOT_TOKEN.",
    "not_authed": "set SLACK_BOT_TOKEN.",
    "token_revoked": "the token was revoked: reinstall the app and copy the new token.",
    "account_inactive": "the app was uninstalled or its workspace deleted: reinstall it.",
}


def slack_check(settings: SlackSettings, *, timeout: int = 10) -> Check:
    """auth.test (and apps.connections.open for SLACK_APP_TOKEN); needs SLACK_BOT_TOKEN."""
    if settings.bot_token is None:
        raise ValueError("the Slack check needs SLACK_BOT_TOKEN")
    token = settings.bot_token.get_secret_value()

    async def probe() -> str:
        client = AsyncWebClient(token=token, base_url=settings.api_url, timeout=timeout)
        identity = await _call(client, "auth.test", "SLACK_BOT_TOKEN", settings.api_url)
        detail = f"workspace {identity.get('team')!s} as @{identity.get('user')!s}"
        if settings.app_token is not None:
            socket = AsyncWebClient(
                token=settings.app_token.get_secret_value(),
                base_url=settings.api_url,
                timeout=timeout,
            )
            await _call(socket, "apps.connections.open", "SLACK_APP_TOKEN", settings.api_url)
            detail += ", Socket Mode token accepted"
        return detail

    return Check("slack", probe)


async def _call(client: AsyncWebClient, method: str, variable: str, api_url: str) -> dict:  # type: ignore[type-arg]
    try:
        response = await client.api_call(method)
    except SlackApiError as exc:
        error = str(exc.response.get("error", "unknown error"))
        fix = _FIXES.get(error, f"check {variable} and the app's scopes.")
        if variable == "SLACK_APP_TOKEN" and error == "invalid_auth":
            fix = "create an app-level token (xapp-...) with connections:write for SLACK_APP_TOKEN."
        raise CheckFailed(f"{method} refused {variable} ({error})", fix) from None
    except (aiohttp.ClientError, OSError, TimeoutError) as exc:
        raise CheckFailed(
            f"cannot reach {api_url} ({type(exc).__name__}: {exc})",
            "check PARLEY_SLACK_API_URL and the network.",
        ) from None
    return dict(response.data) if isinstance(response.data, dict) else {}
