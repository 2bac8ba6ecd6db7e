"""`TelegramPlatform`: python-telegram-bot run inside Parley's own event loop.

Long polling by default (PTB's `Updater`, started and stopped by hand rather than with
`run_polling`, which would own the loop); webhook mode when a webhook URL is set, served
by a route on Parley's ASGI app that checks the secret-token header before anything else.
Each update is claimed in the database (`processed_events`) before it is acted on, so a
re-delivered update, even after a restart, does nothing. Turns run as tasks: the update
loop never waits for a model, and the engine serialises turns of one conversation.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict, replace
from http import HTTPStatus
from typing import Any
from urllib.parse import urlsplit

from babel import Locale
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route
from telegram import (
    BotCommand,
    Message,
    Update,
)
from telegram.constants import ChatType
from telegram.error import BadRequest, TelegramError
from telegram.ext import Application, ApplicationBuilder, ContextTypes, TypeHandler

from bot.chat import CommandStyle, commands
from bot.chat.desk import Desk
from bot.chat.notices import DOWNLOAD_FAILED
from bot.config import TelegramSettings
from bot.domain import Attachment, AttachmentKind, IncomingMessage, UserRef
from bot.errors import ConfigError
from bot.i18n import DEFAULT_LOCALE, N_, _, available_locales, use_locale
from bot.surface import Messenger
from integrations.telegram.approvals import ApprovalPresenter
from integrations.telegram.convert import (
    OWN_COMMANDS,
    FileRef,
    ReplyAddress,
    command_of,
    files_of,
    to_incoming_message,
)
from integrations.telegram.delivery import ChatPace, ChatUnavailable, Delivery
from integrations.telegram.files import download_file
from integrations.telegram.keyboards import TOOLS_HINT, tools_keyboard
from integrations.telegram.presses import CallbackPresses, admin_question
from integrations.telegram.startup import WebhookRefused, start_failure
from integrations.telegram.surface import (
    PLATFORM,
    TelegramMessenger,
    TelegramSurface,
)
from integrations.telegram.webhook import BadUpdate, read_update

log = logging.getLogger(__name__)

# How Telegram writes a command, and how one reaches Parley there.
STYLE = CommandStyle(
    N_(
        "I'm Parley, an assistant with real tools. In a private chat, just write to me. "
        "In a group, mention me or reply to one of my messages.\n\n{commands}"
    )
)
TEXT_ONLY = N_("I can read text, voice messages and pictures, but not this kind of message.")
ALLOWED_UPDATES = [Update.MESSAGE, Update.CALLBACK_QUERY]

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
        self._bot_id = 0
        self._username = ""

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
            await self._start()
        except TelegramError as exc:
            await self._abandon()
            raise start_failure(exc, self.settings.base_url) from None

    async def _abandon(self) -> None:
        # Close what a start that failed half-way opened (PTB's HTTP clients at least);
        # a failure here must not hide the one that is being reported.
        app = self.application
        try:
            if app.updater is not None and app.updater.running:
                await app.updater.stop()
            if app.running:
                await app.stop()
            await app.shutdown()
            await app.bot.shutdown()
        except Exception as exc:
            log.warning("telegram: cleaning up after the failed start failed too (%s)", exc)

    async def _start(self) -> None:
        app = self.application
        await app.initialize()
        self._bot_id, self._username = app.bot.id, app.bot.username
        await self._set_commands(app)
        await app.start()
        if self.settings.webhook_url:
            try:
                await app.bot.set_webhook(
                    self.settings.webhook_url,
                    secret_token=self._webhook_secret(),
                    allowed_updates=ALLOWED_UPDATES,
                )
            except BadRequest as exc:
                raise WebhookRefused(exc.message) from None
            log.info("telegram: @%s takes updates by webhook", self._username)
        else:
            if app.updater is None:
                raise RuntimeError("polling needs PTB's Updater")
            await app.updater.start_polling(
                allowed_updates=ALLOWED_UPDATES, error_callback=self._polling_error
            )
            log.info("telegram: @%s takes updates by long polling", self._username)

    async def _set_commands(self, app: Application[Any, Any, Any, Any, Any, Any]) -> None:
        """The command menu in English, and in each catalog's language for its readers."""
        for locale in available_locales():
            with use_locale(locale):
                menu = [BotCommand(item.name, _(item.menu)) for item in commands.COMMANDS]
            language = "" if locale == DEFAULT_LOCALE else Locale.parse(locale).language
            await app.bot.set_my_commands(menu, language_code=language or None)

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
        given = request.headers.get("x-telegram-bot-api-secret-token", "")
        expected = self._webhook_secret()
        if not secrets.compare_digest(given.encode(), expected.encode()):
            log.warning("telegram webhook: request without the right secret token refused")
            return Response(status_code=HTTPStatus.FORBIDDEN)
        if not self.application.running:
            # Stopping: a non-2xx answer makes Telegram deliver the update again later.
            return Response(status_code=HTTPStatus.SERVICE_UNAVAILABLE)
        try:
            payload = read_update(request.headers.get("content-type", ""), await request.body())
            update = Update.de_json(payload, self.application.bot)
        except Exception as exc:  # untrusted input: whatever it breaks is a 400, not a 500
            log.warning("telegram webhook: unreadable update refused with 400: %s", _reason(exc))
            return Response(status_code=HTTPStatus.BAD_REQUEST)
        await self.application.update_queue.put(update)
        return Response(status_code=HTTPStatus.OK)

    def _webhook_secret(self) -> str:
        # TelegramSettings refuses a webhook URL without a secret.
        secret = self.settings.webhook_secret
        return secret.get_secret_value() if secret is not None else secrets.token_urlsafe(32)

    def _polling_error(self, error: TelegramError) -> None:
        log.warning("telegram polling failed (%s); retrying", error)

    async def _on_update(self, update: Update, _context: ContextTypes.DEFAULT_TYPE) -> None:
        # Whatever this update leads to is written in its sender's language.
        sender = update.effective_user
        reader = (
            UserRef(PLATFORM, str(sender.id), sender.full_name, language=sender.language_code or "")
            if sender is not None and not sender.is_bot
            else None
        )
        locale = (
            await self.desk.locale_of(reader) if reader is not None else self.desk.languages.default
        )
        with use_locale(locale):
            await self._handle_update(update)

    async def _handle_update(self, update: Update) -> None:
        try:
            turn = self._turn_of(update)
            if turn is not None:
                # Claimed with its input and reply address: it survives this process.
                incoming, reply = turn
                ticket = await self.desk.claim_turn(incoming, str(self._bot_id), asdict(reply))
                if ticket is None:
                    log.info("telegram update %s seen before; ignored", update.update_id)
                    return
                await self.desk.turn(incoming, self._surface(reply, ticket.note_preview), ticket)
                return
            # Keyed by bot: each bot's update ids are its own (and re-randomised at times).
            if not await self.desk.claim(PLATFORM, str(self._bot_id), str(update.update_id)):
                log.info("telegram update %s seen before; ignored", update.update_id)
                return
            if update.callback_query is not None:
                await self.presses.on_press(update.callback_query)
            elif update.message is not None:
                await self._on_message(update.message, update.update_id)
        except ChatUnavailable as exc:
            log.warning("telegram update %s dropped: %s", update.update_id, exc)
        except Exception:
            log.exception("telegram update %s failed", update.update_id)

    async def _on_message(self, message: Message, update_id: int) -> None:
        private = message.chat.type == ChatType.PRIVATE
        files = files_of(message, image_limit=self.desk.download_limit(AttachmentKind.IMAGE))
        if message.text is None and not files:
            if private and message.from_user is not None and not message.from_user.is_bot:
                await self.delivery.send_part(message.chat.id, _(TEXT_ONLY), render=False)
            return
        command = command_of(message, self._username)
        if command in OWN_COMMANDS:
            await self._command(command, message, update_id)
            return
        if not files:
            return  # a text message for Parley is a turn, claimed and run by `_on_update`
        converted = self._incoming(
            message,
            update_id,
            command=command is not None,
            files=tuple(f.attachment for f in files),
        )
        if converted is None:
            return
        incoming, reply = converted
        # Files are not kept, so a turn with files is claimed as an event, not as a
        # durable turn (it could not be run again from what is stored).
        surface = self._surface(reply)
        refusal = self.desk.file_refusal(incoming.attachments)
        if refusal is None:
            downloaded, refusal = await self._download(files)
        if refusal is not None:
            await surface.fail(refusal)
            return
        await self.desk.turn(replace(incoming, attachments=downloaded), surface)

    def _turn_of(self, update: Update) -> tuple[IncomingMessage, ReplyAddress] | None:
        """The turn an update starts, if it is a message for Parley that is not one of
        its own commands."""
        message = update.message
        if message is None or message.text is None:
            return None
        command = command_of(message, self._username)
        if command in OWN_COMMANDS:
            return None
        return self._incoming(message, update.update_id, command=command is not None)

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
            questions=self.desk.questions,
        )

    def resume_surface(
        self, reply: dict[str, Any], preview: str, on_preview: Callable[[str], Awaitable[None]]
    ) -> TelegramSurface:
        """A turn's surface again after a restart: a group's half-streamed message (the
        `preview`) is edited into the answer; a private chat's draft vanished by itself."""
        return self._surface(ReplyAddress(**reply), on_preview, preview)

    async def _download(
        self, files: Sequence[FileRef]
    ) -> tuple[tuple[Attachment, ...], str | None]:
        """The files' bytes (getFile, then the configured file URL, which carries the bot
        token and so is never logged), or what to tell the user instead."""
        downloaded: list[Attachment] = []
        for ref in files:
            attachment = ref.attachment
            try:
                file = await self.application.bot.get_file(ref.file_id)
                # getFile tells the size for certain; the message may not have.
                declared = replace(attachment, size=file.file_size or attachment.size)
                refusal = self.desk.file_refusal([declared])
                if refusal is not None:
                    return (), refusal
            except TelegramError as exc:
                log.warning(
                    "telegram: a %s file could not be downloaded (%s: %s)",
                    attachment.kind.value,
                    type(exc).__name__,
                    exc.message,
                )
                return (), _(DOWNLOAD_FAILED)
            data = await download_file(
                file.file_path or "",
                file_root=self._file_root,
                limit=self.desk.download_limit(attachment.kind),
            )
            if data is None:
                return (), _(DOWNLOAD_FAILED)
            downloaded.append(replace(declared, data=data))
        return tuple(downloaded), None

    def _incoming(
        self,
        message: Message,
        update_id: int,
        *,
        command: bool = False,
        files: tuple[Attachment, ...] = (),
    ) -> tuple[IncomingMessage, ReplyAddress] | None:
        return to_incoming_message(
            message,
            bot_id=self._bot_id,
            bot_username=self._username,
            update_id=update_id,
            command=command,
            files=files,
        )

    async def _command(self, command: str, message: Message, update_id: int) -> None:
        converted = self._incoming(message, update_id, command=True)
        if converted is None:
            return
        incoming, reply = converted
        answer = await commands.run(
            self.desk,
            STYLE,
            incoming,
            command,
            command_argument(message.text or ""),
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


def file_base_url(base_url: str) -> str:
    """Where the Bot API serves files, next to its methods: `https://api.telegram.org/bot`
    gives `https://api.telegram.org/file/bot` (a local Bot API server alike)."""
    root = base_url.rstrip("/").removesuffix("/bot")
    return f"{root}/file/bot"


def _reason(exc: Exception) -> str:
    # Our own checks say what is wrong; PTB's errors may quote the body, so only their type.
    return str(exc) if isinstance(exc, BadUpdate) else f"{type(exc).__name__} in Update.de_json"


def command_argument(text: str) -> str:
    """What follows the command word: "/forget@parley_bot 3" → "3"."""
    _command, _space, rest = text.strip().partition(" ")
    return rest.strip()
