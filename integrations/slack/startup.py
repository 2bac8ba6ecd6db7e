"""Starting the Slack adapter, and what a failed start tells the operator.

`sign_in` calls auth.test at once, so a rejected token ends `parley run` with one line
naming SLACK_BOT_TOKEN instead of failing every event later (bolt asks only then);
`open_socket` asks for the Socket Mode URL before connecting, because with a rejected app
token the client would otherwise retry for ever, a traceback each time.
"""

from __future__ import annotations

import aiohttp
from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler
from slack_bolt.async_app import AsyncApp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.errors import ConfigError, PlatformUnavailable

# auth.test errors that mean the token itself is wrong (docs.slack.dev auth.test).
REJECTED_TOKEN = frozenset(
    {"invalid_auth", "not_authed", "account_inactive", "token_revoked", "token_expired"}
)


async def sign_in(client: AsyncWebClient, api_url: str) -> None:
    """auth.test with the bot token; a one-line `ParleyError` when it fails."""
    try:
        await client.auth_test()
    except SlackApiError as exc:
        error = str(exc.response.get("error", "")) if exc.response is not None else ""
        if error in REJECTED_TOKEN:
            raise ConfigError(f"SLACK_BOT_TOKEN was rejected by Slack ({error})") from None
        raise PlatformUnavailable(f"Slack refused auth.test at start ({error})") from None
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise PlatformUnavailable(
            f"cannot reach the Slack Web API at PARLEY_SLACK_API_URL "
            f"({api_url}): {exc.__class__.__name__}"
        ) from None


async def open_socket(bolt: AsyncApp, app_token: str) -> AsyncSocketModeHandler:
    """A connected Socket Mode handler; a one-line `ParleyError` when Slack refuses."""
    handler = AsyncSocketModeHandler(bolt, app_token)
    socket = handler.client
    try:
        socket.wss_uri = await socket.issue_new_wss_url()
    except SlackApiError as exc:
        await handler.close_async()  # type: ignore[no-untyped-call]
        error = str(exc.response.get("error", ""))
        if error in REJECTED_TOKEN:
            raise ConfigError(f"SLACK_APP_TOKEN was rejected by Slack ({error})") from None
        raise PlatformUnavailable(f"Slack refused a Socket Mode URL ({error})") from None
    await handler.connect_async()  # type: ignore[no-untyped-call]
    return handler
