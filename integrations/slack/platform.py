"""`SlackPlatform`: Parley in Slack through slack-bolt's `AsyncApp`.

HTTP mode mounts `/slack/events` (events, interactivity, slash commands) on Parley's
web app; `inbound.py` checks each request's signature headers before its body is read,
then the signature and the body's shape, before bolt sees it; Socket Mode (an app-level token)
needs no public URL. Bolt acks events before it runs a listener, so a turn always runs
after the ack, but its event is claimed before it (claims.py), as `team_id:event_id` for
its app (`api_app_id`): a retry (even one that arrives while the first delivery is still
running, or after a restart) gets no second reply, and an unrecorded event is not acked.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import replace
from typing import Any

import aiohttp
from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler
from slack_bolt.adapter.starlette.async_handler import AsyncSlackRequestHandler
from slack_bolt.async_app import AsyncApp, AsyncBoltContext
from slack_sdk.http_retry.builtin_async_handlers import AsyncRateLimitErrorRetryHandler
from slack_sdk.web.async_client import AsyncWebClient
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from bot.chat.desk import Desk
from bot.config import SlackSettings
from bot.domain import ChatKind
from bot.errors import ConfigError
from bot.i18n import N_, _
from bot.surface import Messenger
from integrations.slack.assistant import AssistantPane
from integrations.slack.catchup import ThreadCatchUp
from integrations.slack.claims import CLAIM, Claimed, EventClaims
from integrations.slack.commands import TOOLS_ACTION, SlashCommands
from integrations.slack.confirmations import (
    APPROVAL_ACTION,
    INPUT_ACTION,
)
from integrations.slack.convert import PLATFORM, ReplyAddress, files_of
from integrations.slack.files import SlackFileHosts, download_all
from integrations.slack.inbound import refusal_of
from integrations.slack.presses import ActionPresses, admin_question
from integrations.slack.readers import ReaderLanguage
from integrations.slack.sessions import (
    FEEDBACK_ACTION,
    AgentSessions,
)
from integrations.slack.startup import open_socket, sign_in
from integrations.slack.surface import SlackSurface
from integrations.slack.threads import KnownThreads
from integrations.slack.webapi import SlackMessenger, slack_call

log = logging.getLogger(__name__)

EMPTY_HINT = N_("Hi! Write your question after the mention, or type `{command} help`.")


class SlackPlatform:
    """The Slack adapter: a bolt app, its web route or socket, and the turns it starts."""

    name = PLATFORM

    def __init__(
        self,
        settings: SlackSettings,
        desk: Desk,
        *,
        preview_delay: float,
        drain_timeout: float,
        locale_cache_seconds: float = 600.0,
    ) -> None:
        if settings.bot_token is None or not settings.bot_token.get_secret_value():
            raise ConfigError("SLACK_BOT_TOKEN is not set")
        app_token = settings.app_token.get_secret_value() if settings.app_token else ""
        secret = settings.signing_secret.get_secret_value() if settings.signing_secret else ""
        if not app_token and not secret:
            raise ConfigError(
                "SLACK_SIGNING_SECRET is not set: HTTP mode needs it to verify Slack's requests "
                "(or set SLACK_APP_TOKEN for Socket Mode)"
            )
        self.settings = settings
        self.desk = desk
        self.preview_delay = preview_delay
        self.stream_interval = settings.stream_interval_seconds
        self.update_interval = settings.update_interval_seconds
        self.drain_timeout = drain_timeout
        self.client = AsyncWebClient(
            token=settings.bot_token.get_secret_value(), base_url=settings.api_url
        )
        # slack_sdk retries only connection errors by default; 429s must wait Retry-After.
        self.client.retry_handlers.append(AsyncRateLimitErrorRetryHandler(max_retry_count=3))
        self.messenger: Messenger = SlackMessenger(self.client)
        self.sessions = AgentSessions(self.client) if settings.agent_sessions else None
        self.bolt = AsyncApp(client=self.client, signing_secret=secret, logger=log)
        self._app_token = app_token
        self._socket: AsyncSocketModeHandler | None = None
        self.threads = KnownThreads(desk)
        self.catch_up = ThreadCatchUp(self.client, self.threads)
        self._http = AsyncSlackRequestHandler(self.bolt)
        self._signing_secret = secret.encode("utf-8")
        self._file_hosts = SlackFileHosts(settings.api_url)
        self.locale_cache_seconds = locale_cache_seconds
        self._register()

    # -- Platform ----------------------------------------------------------------------

    def routes(self) -> Sequence[BaseRoute]:
        if self._app_token:
            return []
        return [Route("/slack/events", self._endpoint, methods=["POST"])]

    async def start(self) -> None:
        # One pooled HTTP session for every Web API call from now on.
        self.client.session = aiohttp.ClientSession()
        try:
            await sign_in(self.client, self.settings.api_url)
            if self._app_token:
                self._socket = await open_socket(self.bolt, self._app_token)
                log.info("slack: connected in Socket Mode")
            else:
                log.info("slack: taking events at /slack/events")
        except BaseException:
            session, self.client.session = self.client.session, None
            await session.close()
            raise

    async def stop(self) -> None:
        if self._socket is not None:
            await self._socket.close_async()  # type: ignore[no-untyped-call]
            self._socket = None
        # No new events now; the turns in flight are the engine's (Application.serve has
        # normally drained them already, this covers a platform stopped on its own).
        if not await self.desk.drain(self.drain_timeout):
            log.warning("slack: turns still running at shutdown")
        self.desk.withdraw_questions()
        session, self.client.session = self.client.session, None
        if session is not None:
            await session.close()

    async def _endpoint(self, request: Request) -> Response:
        refusal = await refusal_of(request, self._signing_secret)
        return refusal if refusal is not None else await self._http.handle(request)

    # -- listeners ---------------------------------------------------------------------

    def _register(self) -> None:
        self.bolt.use(
            ReaderLanguage(self.client, self.desk, cache_seconds=self.locale_cache_seconds)
        )
        # After the language (its lookup never fails a request): before bolt's ack.
        self.bolt.use(EventClaims(self.desk, self.threads))
        self.bolt.event("message")(self._on_event)
        self.bolt.event("app_mention")(self._on_event)
        pane = AssistantPane(self.client, self.desk, self.sessions)
        self.bolt.event("app_home_opened")(pane.on_home_opened)
        self.bolt.event("agent_session_stopped")(pane.on_session_stopped)
        commands = SlashCommands(self.desk, lambda user: admin_question(self.client, user))
        presses = ActionPresses(self.client, self.desk)
        self.bolt.command(self.settings.command)(commands.handle)
        self.bolt.action(re.compile(f"^{TOOLS_ACTION}:\\d+$"))(commands.toggle)
        self.bolt.action(re.compile(f"^{APPROVAL_ACTION}_[a-z]+$"))(presses.on_approval)
        self.bolt.action(re.compile(f"^{INPUT_ACTION}_[a-z0-9]+$"))(presses.on_input_press)
        self.bolt.action(FEEDBACK_ACTION)(presses.on_feedback)

    async def _on_event(self, context: AsyncBoltContext) -> None:
        # Claimed before the ack, if Parley answers it (claims.py `EventClaims`).
        claimed = context.get(CLAIM)
        if isinstance(claimed, Claimed):
            await self._turn(claimed, context.bot_user_id)

    # -- turns -------------------------------------------------------------------------

    async def _turn(self, claimed: Claimed, bot_user_id: str | None) -> None:
        message, reply, ticket = claimed.message, claimed.reply, claimed.ticket
        if not claimed.first:
            log.info("slack: event %s was already taken; skipping the retry", message.event_id)
            return
        files = files_of(claimed.event)
        message = await self.catch_up.with_thread(message, claimed.event, bot_user_id)
        if message.chat.kind is not ChatKind.DM:
            self.threads.remember(reply.channel, reply.thread_ts)
        if not message.text and not files:
            await slack_call(
                "chat.postMessage (empty message)",
                self.client.chat_postMessage(
                    channel=reply.channel,
                    thread_ts=reply.thread_ts,
                    text=_(EMPTY_HINT, command=self.settings.command),
                ),
            )
            return
        surface = self._surface(
            reply, ticket.note_preview if ticket is not None else None, title=message.text
        )
        if files:
            downloaded, refusal = await download_all(
                self.client, files, self.desk, token=self._files_token(), hosts=self._file_hosts
            )
            if refusal is not None:
                await surface.fail(refusal)
                return
            message = replace(message, attachments=downloaded)
        await self.desk.turn(message, surface, ticket)

    def _surface(
        self,
        reply: ReplyAddress,
        on_preview: Callable[[str], Awaitable[None]] | None = None,
        preview: str = "",
        *,
        title: str = "",
    ) -> SlackSurface:
        return SlackSurface(
            self.client,
            channel=reply.channel,
            thread_ts=reply.thread_ts,
            user_id=reply.user_id,
            team_id=reply.team_id,
            preview_delay=self.preview_delay,
            stream_interval=self.stream_interval,
            update_interval=self.update_interval,
            on_preview=on_preview,
            preview_ts=preview,
            ask_user=self.desk.ask_user,
            sessions=self.sessions,
            title=title,
        )

    def _files_token(self) -> str:
        # Read when used: the token files:read is checked against (a test swaps it).
        token = self.settings.bot_token
        return token.get_secret_value() if token is not None else ""

    def resume_surface(
        self, reply: dict[str, Any], preview: str, on_preview: Callable[[str], Awaitable[None]]
    ) -> SlackSurface:
        """A turn's surface again after a restart: the message that showed its answer
        half-written (`preview`) is replaced by a short note; the answer follows it."""
        return self._surface(ReplyAddress(**reply), on_preview, preview)
