"""`TelegramPlatform`: python-telegram-bot run inside Parley's own event loop.

Long polling by default (PTB's `Updater`, started and stopped by hand rather than with
`run_polling`, which would own the loop); webhook mode when a webhook URL is set, served
by a route on Parley's ASGI app that checks the secret-token header before anything else
(webhook.py). Each update is read once (`convert.classify`) and, when it asks anything of
Parley, claimed in the database before it is acted on and, by webhook, before Telegram
gets its 200 (claims.py), so a re-delivered update, even after a restart, does nothing.
Turns run as tasks: the update loop never waits for a model, and the engine serialises
turns of one conversation.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import replace
from typing import Any
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route
from telegram import Update
from telegram.error import TelegramError
from telegram.ext import Application, ApplicationBuilder, ContextTypes, TypeHandler

from bot.chat import CommandStyle, commands
from bot.chat.desk import Desk
from bot.config import TelegramSettings
from bot.domain import AttachmentKind
from bot.errors import ConfigError
from bot.i18n import N_, _, use_locale
from bot.surface import Messenger
from integrations.telegram.approvals import ApprovalPresenter
from integrations.telegram.claims import POLLING_PATIENCE, Claim, claim_update, reader_of
from integrations.telegram.convert import (
    ReadUpdate,
    ReplyAddress,
    UpdateKind,
    classify,
    command_argument,
)
from integrations.telegram.delivery import ChatPace, ChatUnavailable, Delivery
from integrations.telegram.files import download_all, file_base_url
from integrations.telegram.keyboards import TOOLS_HINT, tools_keyboard
from integrations.telegram.presses import CallbackPresses, admin_question
from integrations.telegram.startup import abandon, polling_failed, start_failure, take_updates
from integrations.telegram.surface import PLATFORM, TelegramMessenger, TelegramSurface
from integrations.telegram.webhook import webhook_response

log = logging.getLogger(__name__)

# How Telegram writes a command, and how one reaches Parley there.
STYLE = CommandStyle(
    N_(
        "I'm Parley, an assistant with real tools. In a private chat, just write to me. "
        "In a group, mention me or reply to one of my messages.\n\n{commands}"
    )
)
TEXT_ONLY = N_("I can read text, voice messages and pictures, but not this kind of message.")

# Connections to the Bot API. httpcore checks every pooled connection on every request,
# so PTB's default of 256 costs CPU on each call once bursts have opened many; 8 carry
# ~80 calls/s at 100 ms each, above the ~30 messages/s Telegram allows a bot overall.
# (tests/bench/telegram.py: 17.3/17.0 -> 15.5/14.3 ms CPU per message.)
BOT_API_CONNECTIONS = 8


class TelegramPlatform:
    """The Telegram adapter: a `Platform` for `bot.app.Application`."""

    name = PLATFORM

    def __init__(
        self,
        settings: TelegramSettings,
        desk: Desk,
        *,
        preview_delay: float,
        ephemeral_approvals: bool = True,
    ) -> None:
        if settings.bot_token is None:
            raise ConfigError("TELEGRAM_BOT_TOKEN is not set")
        if settings.webhook_url and settings.webhook_secret is None:
            raise ConfigError(
                "PARLEY_TELEGRAM_WEBHOOK_SECRET must be set when PARLEY_TELEGRAM_WEBHOOK_URL is "
                "(Telegram sends it with every update so that nobody else can post one)"
            )
        self.settings = settings
        self.desk = desk
        # python-telegram-bot prefixes getFile's path with this (the token included).
        self._file_root = (
            f"{file_base_url(settings.base_url)}{settings.bot_token.get_secret_value()}/"
        )
        builder: ApplicationBuilder[Any, Any, Any, Any, Any, Any] = (
            ApplicationBuilder()
            .token(settings.bot_token.get_secret_value())
            .base_url(settings.base_url)
            .base_file_url(file_base_url(settings.base_url))
            .concurrent_updates(True)
            .connection_pool_size(BOT_API_CONNECTIONS)
        )
        if settings.webhook_url:
            builder = builder.updater(None)
        self.application: Application[Any, Any, Any, Any, Any, Any] = builder.build()
        self.application.add_handler(TypeHandler(Update, self._on_update, block=False))
        self.delivery = Delivery(
            bot=self.application.bot,
            pace=ChatPace(settings.edit_interval_seconds),
            max_retries=settings.max_retries,
            draft_interval=settings.draft_interval_seconds,
            preview_delay=preview_delay,
            rich=settings.rich_messages,
        )
        self.messenger: Messenger = TelegramMessenger(self.delivery)
        self.approvals = ApprovalPresenter(self.delivery, ephemeral=ephemeral_approvals)
        self.presses = CallbackPresses(self.application.bot, desk, self.delivery, self.approvals)

    # -- Platform ----------------------------------------------------------------------

    def routes(self) -> Sequence[BaseRoute]:
        if not self.settings.webhook_url:
            return []
        path = urlsplit(self.settings.webhook_url).path or "/telegram"
        return [Route(path, self._webhook, methods=["POST"])]

    async def start(self) -> None:
        """Sign in (getMe), register the commands and start taking updates; a refusal or
        an unreachable Bot API raises a one-line `ParleyError` naming the setting."""
        try:
            await take_updates(
                self.application,
                self.settings,
                webhook_secret=self._webhook_secret(),
                on_polling_error=polling_failed,
            )
        except TelegramError as exc:
            await abandon(self.application)
            raise start_failure(exc, self.settings.base_url) from None

    async def stop(self) -> None:
        app = self.application
        if app.updater is not None and app.updater.running:
            await app.updater.stop()
        # Nobody will press these buttons here now; "expired" lets their turns end.
        self.desk.withdraw_questions()
        if app.running:
            await app.stop()  # waits for the turns in flight
        await app.shutdown()

    # -- inbound -----------------------------------------------------------------------

    async def _webhook(self, request: Request) -> Response:
        secret = self._webhook_secret()
        return await webhook_response(request, self.application, secret, self._accept)

    def _webhook_secret(self) -> str:
        # TelegramSettings refuses a webhook URL without a secret.
        secret = self.settings.webhook_secret
        return secret.get_secret_value() if secret is not None else secrets.token_urlsafe(32)

    def _read(self, update: Update) -> ReadUpdate:
        # getMe ran before the first update (take_updates initialises first).
        bot = self.application.bot
        limit = self.desk.download_limit(AttachmentKind.IMAGE)
        return classify(update, bot_id=bot.id, bot_username=bot.username, image_limit=limit)

    async def _on_update(self, update: Update, _context: ContextTypes.DEFAULT_TYPE) -> None:
        """Long polling: PTB's Updater confirmed this update's offset already, so a claim
        the database does not take (for POLLING_PATIENCE seconds) loses it, logged."""
        read = self._read(update)
        if await self._only_observed(read):
            return  # asks nothing of Parley: nothing to claim, answer or translate
        bot_id = str(self.application.bot.id)
        try:
            claim = await claim_update(self.desk, update, read, bot_id, within=POLLING_PATIENCE)
        except Exception as exc:
            log.error(
                "telegram update %s lost: it could not be recorded (%s)", update.update_id, exc
            )
            return
        await self._run(update, read, claim)

    async def _only_observed(self, read: ReadUpdate) -> bool:
        """True for an update that asks nothing of Parley; group chatter is kept on the
        way (the desk keeps it only if group context is on, and never raises)."""
        if read.kind is UpdateKind.OBSERVED and read.incoming is not None:
            await self.desk.observe(read.incoming)
        return read.kind in (UpdateKind.IGNORED, UpdateKind.OBSERVED)

    async def _accept(self, update: Update) -> bool:
        """Webhook: claimed before Telegram gets its 200, then run in a task, not claimed
        again; False when the database does not take the claim (503: delivered again)."""
        read = self._read(update)
        if await self._only_observed(read):
            return True
        try:
            claim = await claim_update(self.desk, update, read, str(self.application.bot.id))
        except Exception as exc:
            log.warning("telegram update %s not recorded (%s): 503", update.update_id, exc)
            return False
        self.application.create_task(self._run(update, read, claim), update=update)
        return True

    async def _run(self, update: Update, read: ReadUpdate, claim: Claim) -> None:
        if not claim.first:
            log.info("telegram update %s seen before; ignored", update.update_id)
            return
        # Whatever this update leads to is written in its sender's language (the turn too).
        with use_locale(await self.desk.locale_of(reader_of(update))):
            try:
                if claim.ticket is not None and read.incoming and read.reply:
                    on_preview = claim.ticket.note_preview
                    surface = self._surface(read.reply, on_preview)
                    await self.desk.turn(read.incoming, surface, claim.ticket)
                else:
                    await self._act_on(update, read)
            except ChatUnavailable as exc:
                log.warning("telegram update %s dropped: %s", update.update_id, exc)
            except Exception:
                log.exception("telegram update %s failed", update.update_id)

    async def _act_on(self, update: Update, read: ReadUpdate) -> None:
        """A claimed update that is not a text turn: a press, a command, files, or a
        private message Parley cannot read."""
        if read.kind is UpdateKind.PRESS and update.callback_query is not None:
            await self.presses.on_press(update.callback_query)
        elif read.kind is UpdateKind.NOT_READABLE and update.message is not None:
            await self.delivery.send_part(update.message.chat.id, _(TEXT_ONLY), render=False)
        elif read.incoming is None or read.reply is None or update.message is None:
            return
        elif read.kind is UpdateKind.COMMAND:
            await self._command(read, command_argument(update.message.text or ""))
        elif read.kind is UpdateKind.FILES:
            # Files are not kept, so a turn with files is claimed as an event, not as a
            # durable turn (it could not be run again from what is stored).
            surface = self._surface(read.reply)
            refusal = self.desk.file_refusal(read.incoming.attachments)
            if refusal is None:
                downloaded, refusal = await download_all(
                    self.application.bot, read.files, self.desk, file_root=self._file_root
                )
            if refusal is not None:
                await surface.fail(refusal)
                return
            await self.desk.turn(replace(read.incoming, attachments=downloaded), surface)

    def _surface(
        self,
        reply: ReplyAddress,
        on_preview: Callable[[str], Awaitable[None]] | None = None,
        preview: str = "",
    ) -> TelegramSurface:
        return TelegramSurface(
            self.delivery,
            self.approvals,
            reply.chat_id,
            private=reply.private,
            thread_id=reply.thread_id,
            reply_to=reply.reply_to,
            on_preview=on_preview,
            preview_message_id=int(preview) if preview.isdigit() else None,
            ask_user=self.desk.ask_user,
        )

    def resume_surface(
        self, reply: dict[str, Any], preview: str, on_preview: Callable[[str], Awaitable[None]]
    ) -> TelegramSurface:
        """A turn's surface again after a restart: a group's half-streamed message (the
        `preview`) is edited into the answer; a private chat's draft vanished by itself."""
        return self._surface(ReplyAddress(**reply), on_preview, preview)

    async def _command(self, read: ReadUpdate, argument: str) -> None:
        """One of Parley's commands (bot/chat/commands.py), answered in the chat."""
        incoming, reply = read.incoming, read.reply
        if incoming is None or reply is None:
            return
        answer = await commands.run(
            self.desk,
            STYLE,
            incoming,
            read.command,
            argument,
            ask=admin_question(self.application.bot, incoming.user, incoming.chat),
            where=incoming.chat.platform_chat_id,
        )
        text, markup = answer.text, None
        if answer.tools is not None:
            text, markup = f"{text}\n\n{_(TOOLS_HINT)}", tools_keyboard(answer.tools)
        await self.delivery.send_part(
            reply.chat_id,
            text,
            thread_id=reply.thread_id,
            reply_to=reply.reply_to,
            markup=markup,
            render=False,
        )
