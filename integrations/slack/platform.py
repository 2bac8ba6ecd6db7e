"""`SlackPlatform`: Parley in Slack through slack-bolt's `AsyncApp`.

HTTP mode mounts `/slack/events` (events, interactivity, slash commands) on Parley's
web app; `inbound.py` checks each request's signature headers before its body is read,
then the signature and the body's shape, before bolt sees it; Socket Mode (an app-level token)
needs no public URL. Bolt acks events before it runs a listener, so a turn always runs
after the ack. Bolt does no deduplication: each event is claimed in the database as
`team_id:event_id` for its app (`api_app_id`) before its turn, so a retry (even one that
arrives while the first delivery is still running, or after a restart) gets no second reply.
"""

from __future__ import annotations

import logging
import re
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict, replace
from typing import Any

import aiohttp
from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler
from slack_bolt.adapter.starlette.async_handler import AsyncSlackRequestHandler
from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncBoltContext
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_async_handlers import AsyncRateLimitErrorRetryHandler
from slack_sdk.web.async_client import AsyncWebClient
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from bot.approvals.cards import split_parts
from bot.chat import presses
from bot.chat.cache import TTLCache
from bot.chat.desk import Answer, AskPlatform, Desk
from bot.chat.notices import DOWNLOAD_FAILED
from bot.config import SlackSettings
from bot.domain import Attachment, ChatKind, ChatRef, UserRef
from bot.errors import ConfigError, PlatformUnavailable
from bot.i18n import N_, _, enter_locale
from bot.surface import Messenger
from integrations.slack.commands import TOOLS_ACTION, SlashCommands
from integrations.slack.confirmations import (
    APPROVAL_ACTION,
    INPUT_ACTION,
    SECTION_LIMIT,
    SHOW_ALL,
    SHOW_ALL_PARTS,
    escape,
    mention,
    note_blocks,
    picked,
)
from integrations.slack.convert import (
    PLATFORM,
    ReplyAddress,
    SlackFile,
    chat_kind,
    files_of,
    to_incoming_message,
    to_slack_file,
)
from integrations.slack.files import NOT_ON_SLACK, Fetched, SlackFileHosts, fetch_file
from integrations.slack.inbound import Refused, check_body, check_headers, check_signature
from integrations.slack.sessions import (
    FEEDBACK_ACTION,
    FEEDBACK_DOWN,
    FEEDBACK_UP,
    AgentSessions,
    answer_text,
)
from integrations.slack.surface import SlackSurface
from integrations.slack.webapi import SlackMessenger, slack_call

log = logging.getLogger(__name__)

SUGGESTED_PROMPTS = [
    (N_("What can you do?"), N_("What can you do, and which tools do you have?")),
    (N_("Time somewhere"), N_("What time is it in Tokyo right now?")),
]
NOT_YOUR_TURN = N_("Only the person who asked can stop this answer.")
EMPTY_HINT = N_("Hi! Write your question after the mention, or type `{command} help`.")
_KNOWN_THREADS = 10_000
# Message subtypes that are still a person writing to Parley (None: a plain message).
USER_SUBTYPES = frozenset({None, "file_share", "thread_broadcast"})
# auth.test errors that mean the token itself is wrong (docs.slack.dev auth.test).
REJECTED_TOKEN = frozenset(
    {"invalid_auth", "not_authed", "account_inactive", "token_revoked", "token_expired"}
)


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
        self._threads: OrderedDict[tuple[str, str], None] = OrderedDict()
        self._prompted: set[str] = set()
        self._http = AsyncSlackRequestHandler(self.bolt)
        self._signing_secret = secret.encode("utf-8")
        self._file_hosts = SlackFileHosts(settings.api_url)
        # Each user's Slack locale (users.info include_locale), asked once in a while.
        self._locales: TTLCache[str] = TTLCache(desk.languages.cache_seconds)
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
            await self._sign_in()
        except BaseException:
            await self._close_after_failed_start()
            raise
        if self._app_token:
            self._socket = AsyncSocketModeHandler(self.bolt, self._app_token)
            # The socket URL first: with a rejected app token the client would otherwise
            # retry for ever, a traceback each time.
            socket = self._socket.client
            try:
                socket.wss_uri = await socket.issue_new_wss_url()
            except SlackApiError as exc:
                await self._close_after_failed_start()
                error = str(exc.response.get("error", ""))
                if error in REJECTED_TOKEN:
                    raise ConfigError(f"SLACK_APP_TOKEN was rejected by Slack ({error})") from None
                raise PlatformUnavailable(f"Slack refused a Socket Mode URL ({error})") from None
            await self._socket.connect_async()  # type: ignore[no-untyped-call]
            log.info("slack: connected in Socket Mode")
        else:
            log.info("slack: taking events at /slack/events")

    async def _close_after_failed_start(self) -> None:
        if self._socket is not None:
            await self._socket.close_async()  # type: ignore[no-untyped-call]
            self._socket = None
        session, self.client.session = self.client.session, None
        if session is not None:
            await session.close()

    async def _sign_in(self) -> None:
        """auth.test now, so a rejected token ends `parley run` with one line naming
        SLACK_BOT_TOKEN instead of failing every event later (bolt asks only then)."""
        try:
            await self.client.auth_test()
        except SlackApiError as exc:
            error = str(exc.response.get("error", "")) if exc.response is not None else ""
            if error in REJECTED_TOKEN:
                raise ConfigError(f"SLACK_BOT_TOKEN was rejected by Slack ({error})") from None
            raise PlatformUnavailable(f"Slack refused auth.test at start ({error})") from None
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise PlatformUnavailable(
                f"cannot reach the Slack Web API at PARLEY_SLACK_API_URL "
                f"({self.settings.api_url}): {exc.__class__.__name__}"
            ) from None

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
        try:
            check_headers(request.headers)
            body = await request.body()  # within PARLEY_HTTP_SLACK_*_MAX_BYTES
            if self._signing_secret:
                check_signature(self._signing_secret, request.headers, body)
            check_body(request.headers, body)
        except Refused as refused:
            client = request.client.host if request.client else "?"
            log.warning(
                "slack: refused a request from %s with %d: %s", client, refused.status, refused
            )
            return Response(str(refused), status_code=refused.status, media_type="text/plain")
        return await self._http.handle(request)

    # -- listeners ---------------------------------------------------------------------

    def _register(self) -> None:
        self.bolt.use(self._in_reader_language)
        self.bolt.event("message")(self._on_message)
        self.bolt.event("app_mention")(self._on_mention)
        self.bolt.event("app_home_opened")(self._on_home_opened)
        self.bolt.event("agent_session_stopped")(self._on_session_stopped)
        commands = SlashCommands(self.desk, self.admin_question)
        self.bolt.command(self.settings.command)(commands.handle)
        self.bolt.action(re.compile(f"^{TOOLS_ACTION}:\\d+$"))(commands.toggle)
        self.bolt.action(re.compile(f"^{APPROVAL_ACTION}_[a-z]+$"))(self._on_approval)
        self.bolt.action(re.compile(f"^{INPUT_ACTION}_[a-z0-9]+$"))(self._on_input_press)
        self.bolt.action(FEEDBACK_ACTION)(self._on_feedback)

    async def _in_reader_language(
        self, context: AsyncBoltContext, next: Callable[[], Awaitable[None]]
    ) -> None:
        """Everything a request leads to is written in its user's language. Bolt runs its
        middleware and then the listener in the request's own task (or starts the
        listener's task from it), so the locale is set for that task, not around `next`."""
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

    async def _on_message(
        self, body: dict[str, Any], event: dict[str, Any], context: AsyncBoltContext
    ) -> None:
        # Edits, deletions, joins and bot posts arrive as subtypes or with a bot_id.
        if event.get("subtype") not in USER_SUBTYPES or event.get("bot_id"):
            return
        if not event.get("user"):
            return
        if event["user"] == context.bot_user_id:
            return
        if chat_kind(event) is ChatKind.DM:
            await self._turn(body, event, context)
            return
        thread_ts = event.get("thread_ts")
        if not thread_ts:
            return
        if context.bot_user_id and f"<@{context.bot_user_id}" in str(event.get("text", "")):
            return  # the app_mention event of the same message starts that turn
        if await self._in_thread(str(event["channel"]), str(thread_ts)):
            await self._turn(body, event, context)

    async def _on_mention(
        self, body: dict[str, Any], event: dict[str, Any], context: AsyncBoltContext
    ) -> None:
        if event.get("bot_id") or not event.get("user"):
            return
        await self._turn(body, event, context)

    async def _on_home_opened(self, event: dict[str, Any]) -> None:
        channel = str(event.get("channel") or "")
        if event.get("tab") != "messages" or not channel or channel in self._prompted:
            return
        self._prompted.add(channel)
        # An admin's prompts for this conversation (the console), else the defaults.
        chosen = await self.desk.suggested_prompts(ChatRef(PLATFORM, channel, ChatKind.DM))
        await slack_call(
            "assistant.threads.setSuggestedPrompts",
            self.client.assistant_threads_setSuggestedPrompts(
                channel_id=channel,
                title=_("Try asking"),
                prompts=chosen
                or [
                    {"title": _(title), "message": _(message)}
                    for title, message in SUGGESTED_PROMPTS
                ],
            ),
        )

    async def _on_session_stopped(self, event: dict[str, Any]) -> None:
        """The stop button of an agent session: the turn running in that thread ends (it
        tells its user and leaves the session active). Only the asker stops a turn: a
        press by someone else is told so, and the session stays as it is. Slack does not
        move the session out of "processing" itself, so with no turn to stop Parley does."""
        channel, thread_ts = str(event.get("channel") or ""), str(event.get("thread_ts") or "")
        user = str(event.get("user") or "")
        if not channel or not thread_ts or not user:
            return
        kind = ChatKind.DM if channel.startswith("D") else ChatKind.CHANNEL
        thread_key = "" if kind is ChatKind.DM else thread_ts
        chat = ChatRef(PLATFORM, channel, kind)
        if self.desk.stop(chat, thread_key, UserRef(PLATFORM, user)):
            log.info("slack: %s stopped the turn in %s/%s", user, channel, thread_ts)
        elif self.desk.turn_running(chat, thread_key):
            log.info("slack: %s pressed stop on another user's turn in %s; refused", user, channel)
            await slack_call(
                "chat.postEphemeral",
                self.client.chat_postEphemeral(
                    channel=channel, user=user, text=_(NOT_YOUR_TURN), thread_ts=thread_ts
                ),
            )
        elif self.sessions is not None:
            await self.sessions.set_status(channel, thread_ts, working="")

    async def _on_feedback(self, ack: AsyncAck, body: dict[str, Any]) -> None:
        """A thumbs up or down under an answer: acknowledged at once (Slack shows an error
        otherwise), then stored once per answer and person with the answer's text."""
        await ack()
        [action] = body.get("actions") or [{}]
        container = body.get("container") or {}
        channel = str(container.get("channel_id") or (body.get("channel") or {}).get("id") or "")
        answer_ts = str(container.get("message_ts") or "")
        voter = str((body.get("user") or {}).get("id") or "")
        value = action.get("value")
        if not channel or not answer_ts or not voter or value not in (FEEDBACK_UP, FEEDBACK_DOWN):
            log.info("slack feedback press without its answer, person or rating: ignored")
            return
        kind = ChatKind.DM if channel.startswith("D") else ChatKind.CHANNEL
        counted = await self.desk.rate_answer(
            ChatRef(PLATFORM, channel, kind),
            UserRef(PLATFORM, voter),
            answer_ts,
            helpful=value == FEEDBACK_UP,
            answer=answer_text(body.get("message") or {}),
        )
        if not counted:
            log.info("slack feedback on %s by %s was given before; counted once", answer_ts, voter)

    async def _on_approval(
        self,
        ack: Callable[..., Awaitable[None]],
        respond: Callable[..., Awaitable[Any]],
        body: dict[str, Any],
        action: dict[str, Any],
    ) -> None:
        await ack()
        token = str(action.get("value", ""))[:64]
        choice = str(action.get("action_id", "")).removeprefix(f"{APPROVAL_ACTION}_")
        presser = UserRef(PLATFORM, str(body.get("user", {}).get("id", "")))
        channel = str(body.get("channel", {}).get("id", ""))
        message = body.get("message") or {}
        container = body.get("container") or {}
        thread_ts = message.get("thread_ts") or container.get("thread_ts")

        async def tell(text: str) -> None:
            await slack_call(
                "chat.postEphemeral",
                self.client.chat_postEphemeral(
                    channel=channel, user=presser.platform_user_id, text=text, thread_ts=thread_ts
                ),
            )

        if choice == SHOW_ALL:
            shown = await presses.full_text(self.desk, token, presser)
            if not shown.taken:
                await tell(shown.notice)
                return
            parts = split_parts(escape(shown.note), SECTION_LIMIT)
            for part in parts[:SHOW_ALL_PARTS]:
                await tell(part)
            if len(parts) > SHOW_ALL_PARTS:
                await tell(_("(The rest is too long to show here.)"))
            return
        try:
            answer = Answer(choice)
        except ValueError:
            log.info("slack: an approval press with an unknown action %r", choice)
            return
        reply = await presses.approval(self.desk, token, presser, answer, mention=mention)
        if not reply.taken:
            await tell(reply.notice)
            return
        note = f"{escape(reply.note)} (<@{presser.platform_user_id}>)"
        if container.get("is_ephemeral"):
            # An ephemeral question can only be replaced through its response_url.
            try:
                await respond(replace_original=True, text=note, blocks=note_blocks(note))
            except Exception as exc:  # the answer stands; only the old buttons stay
                log.warning("slack: could not replace the answered question: %s", exc)
        elif message.get("ts"):
            await slack_call(
                "chat.update (approval answered)",
                self.client.chat_update(
                    channel=channel, ts=str(message["ts"]), text=note, blocks=note_blocks(note)
                ),
            )

    async def _on_input_press(
        self,
        ack: Callable[..., Awaitable[None]],
        respond: Callable[..., Awaitable[Any]],
        body: dict[str, Any],
        action: dict[str, Any],
    ) -> None:
        """A press on a tool's question: taken only from the asker, in that channel."""
        await ack()
        key = str(action.get("action_id", "")).removeprefix(f"{INPUT_ACTION}_")
        if key in ("link", "pick"):
            return  # the link button only opens the link; ticks are read on Done
        token = str(action.get("value", ""))[:64]
        presser = UserRef(PLATFORM, str(body.get("user", {}).get("id", "")))
        channel = str(body.get("channel", {}).get("id", ""))
        chat = ChatRef(PLATFORM, channel, ChatKind.CHANNEL)
        reply = presses.question(self.desk, token, presser, chat, key, picked(body))
        container = body.get("container") or {}
        if not reply.taken:
            message = body.get("message") or {}
            await slack_call(
                "chat.postEphemeral",
                self.client.chat_postEphemeral(
                    channel=channel,
                    user=presser.platform_user_id,
                    text=reply.notice,
                    thread_ts=message.get("thread_ts") or container.get("thread_ts"),
                ),
            )
        elif container.get("is_ephemeral"):
            try:  # the step is done: its buttons go (the next step, if any, follows)
                await respond(replace_original=True, text="✓", blocks=note_blocks("✓"))
            except Exception as exc:
                log.warning("slack: could not close a question step: %s", exc)

    def admin_question(self, user: UserRef) -> AskPlatform:
        """Slack's own answer to "is this user an admin": a workspace admin or owner."""

        async def ask() -> bool:
            response = await slack_call(
                "users.info (admin check)", self.client.users_info(user=user.platform_user_id)
            )
            if response is None:
                raise LookupError("users.info failed")  # logged by slack_call; not cached
            info = response.get("user") or {}
            return bool(
                info.get("is_admin") or info.get("is_owner") or info.get("is_primary_owner")
            )

        return ask

    # -- turns -------------------------------------------------------------------------

    async def _in_thread(self, channel: str, thread_ts: str) -> bool:
        """Whether Parley takes part in this thread: answered in it, per memory or store."""
        key = (channel, thread_ts)
        if key in self._threads:
            return True
        if await self.desk.knows_thread(ChatRef(PLATFORM, channel, ChatKind.CHANNEL), thread_ts):
            self._remember_thread(key)
            return True
        return False

    def _remember_thread(self, key: tuple[str, str]) -> None:
        self._threads[key] = None
        self._threads.move_to_end(key)
        while len(self._threads) > _KNOWN_THREADS:
            self._threads.popitem(last=False)

    async def _turn(
        self, body: dict[str, Any], event: dict[str, Any], context: AsyncBoltContext
    ) -> None:
        team_id = str(body.get("team_id") or context.team_id or "")
        event_id = str(body.get("event_id") or "")
        if not event_id:
            log.warning("slack: an event without event_id was ignored: %s", event.get("type"))
            return
        if not event.get("channel") or not event.get("user"):
            # HTTP refuses these at the door (inbound.py); Socket Mode has no door.
            log.warning("slack: a %s event without channel or user was ignored", event["type"])
            return
        message, reply = to_incoming_message(
            event, team_id=team_id, event_id=event_id, bot_user_id=context.bot_user_id
        )
        # Keyed by app too: two Slack apps on one database never share event ids.
        app_id = str(body.get("api_app_id") or "")
        try:
            if message.text:
                # Claimed with its input and reply address: it survives this process.
                ticket = await self.desk.claim_turn(message, app_id, asdict(reply))
                first = ticket is not None
            else:
                ticket, first = None, await self.desk.claim(PLATFORM, app_id, message.event_id)
        except Exception:
            log.exception("slack: could not record event %s; not answering it", event_id)
            return
        if not first:
            log.info("slack: event %s:%s was already taken; skipping the retry", team_id, event_id)
            return
        files = files_of(event)
        if message.chat.kind is not ChatKind.DM:
            self._remember_thread((reply.channel, reply.thread_ts))
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
            downloaded, refusal = await self._download(files)
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
            questions=self.desk.questions,
            sessions=self.sessions,
            title=title,
        )

    def resume_surface(
        self, reply: dict[str, Any], preview: str, on_preview: Callable[[str], Awaitable[None]]
    ) -> SlackSurface:
        """A turn's surface again after a restart: the message that showed its answer
        half-written (`preview`) is replaced by a short note; the answer follows it."""
        return self._surface(ReplyAddress(**reply), on_preview, preview)

    # -- files -------------------------------------------------------------------------

    async def _download(
        self, files: Sequence[SlackFile]
    ) -> tuple[tuple[Attachment, ...], str | None]:
        """The files' bytes, fetched from their private URLs on Slack's file hosts with
        the bot token (the files:read scope), or what to tell the user instead. Limits are
        checked on what Slack declares first, and on the bytes as they arrive."""
        described: list[SlackFile] = []
        for shared in files:
            item: SlackFile | None = shared
            if shared.check_info or not shared.url:
                response = await slack_call(
                    "files.info", self.client.files_info(file=shared.file_id)
                )
                info = response.get("file") if response is not None else None
                item = to_slack_file(info) if isinstance(info, dict) else None
            if item is None or item.check_info or not item.url:
                log.info("slack: a shared file could not be described by files.info")
                return (), _(DOWNLOAD_FAILED)
            described.append(item)
        refusal = self.desk.file_refusal([item.attachment for item in described])
        if refusal is not None:
            return (), refusal
        downloaded: list[Attachment] = []
        for item in described:
            fetched = await self._fetch(item)
            if fetched.refused:
                return (), _(NOT_ON_SLACK)
            if fetched.data is None:
                return (), _(DOWNLOAD_FAILED)
            downloaded.append(replace(item.attachment, data=fetched.data))
        return tuple(downloaded), None

    async def _fetch(self, item: SlackFile) -> Fetched:
        """One file's bytes, at most one byte over the download limit (the core refuses
        what is over it), from Slack's own file hosts only."""
        session = self.client.session
        token = self.settings.bot_token.get_secret_value() if self.settings.bot_token else ""
        if session is None:
            return Fetched(None)
        limit = self.desk.download_limit(item.attachment.kind)
        try:
            return await fetch_file(
                session, item.url, token=token, hosts=self._file_hosts, limit=limit
            )
        except (aiohttp.ClientError, TimeoutError) as exc:
            log.warning("slack: a file download failed: %s", type(exc).__name__)
            return Fetched(None)
