"""`TelegramSurface` (one per turn) and `TelegramMessenger` (proactive messages).

Private chats stream into a draft (a live preview that Telegram drops after 30 s) and
end with a real message; groups stream by sending one message and editing it. Where the
server takes rich messages, a private chat's draft is a rich one (sendRichMessageDraft):
a thinking block while the model reasons, a line per running tool, then the answer as it
grows; otherwise a plain sendMessageDraft of the answer. A reply shows no progress before
`preview_delay` (an answer done by then arrives whole, in one call): then "typing…" if
nothing shows yet, and previews of the newest text, sent by one background task per turn
at the chat's `ChatPace`. Group previews are plain text; the final text is a rich message
or is rendered from Markdown to HTML, with a plain-text resend if Telegram cannot parse
it. Final edits in groups wait for their slot, and a chat that blocked the bot ends the
turn quietly. A tool's question (bot/approvals/questions.py) goes in the chat one step at a
time, with buttons `in:<token>:<key>` (and the link as a URL button in URL mode); a typed
value is a reply in the chat.
"""

from __future__ import annotations

import asyncio
import contextlib
import html
import itertools
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from telegram import InlineKeyboardButton, InlineKeyboardMarkup
from telegram.error import TelegramError

from bot.approvals.questions import AskUser, InputStep, PendingInput
from bot.domain import (
    ChatKind,
    ChatRef,
    InputAction,
    InputAnswer,
    InputQuestion,
    ToolCall,
    ToolResult,
    UserRef,
)
from bot.i18n import N_, _
from bot.surface import Answer, ApprovalPrompt
from integrations.telegram.approvals import ApprovalPresenter
from integrations.telegram.delivery import ChatUnavailable, Delivery
from integrations.telegram.formatting import PART_LIMIT, utf16_len

log = logging.getLogger(__name__)

PLATFORM = "telegram"
TYPING_EVERY = 4.0
SHOWN_REASONING = 600  # characters of the newest reasoning a draft's thinking block shows
CANNOT_CONFIRM_AS_CHAT = N_(
    "This needs a confirmation, and only a person can give one: ask again as yourself, "
    "not anonymously or as a channel. Nothing was done."
)
INPUT = "in"
QUESTION_LIMIT = 3500  # a step's text; the rest of the 4,096 is the note when it closes
_draft_ids = itertools.count(1)


def input_keyboard(pending: PendingInput, step: InputStep) -> InlineKeyboardMarkup:
    """A step's buttons, three to a row; a multi-choice's options first, two to a row,
    each marked ✓ when chosen (a press toggles it); the link above all, as a URL button."""

    def button(label: str, key: str) -> InlineKeyboardButton:
        return InlineKeyboardButton(label[:60], callback_data=f"{INPUT}:{pending.token}:{key}")

    toggles = [button(f"✓ {label}" if on else label, key) for label, key, on in step.options]
    buttons = [button(label, key) for label, key in step.buttons]
    rows = [toggles[i : i + 2] for i in range(0, len(toggles), 2)]
    rows += [buttons[i : i + 3] for i in range(0, len(buttons), 3)]
    if step.url:
        link = InlineKeyboardButton(_("Open {domain}", domain=step.domain), url=step.url)
        rows.insert(0, [link])
    return InlineKeyboardMarkup(rows)


def answer_note(answer: InputAnswer) -> str:
    if answer.action is InputAction.ACCEPT:
        return _("Answered.")
    if answer.action is InputAction.DECLINE:
        return _("Declined.")
    return _("Cancelled.")


class TelegramSurface:
    """Answers one turn in one Telegram chat (and forum topic)."""

    def __init__(
        self,
        delivery: Delivery,
        approvals: ApprovalPresenter,
        chat_id: int,
        *,
        private: bool,
        thread_id: int | None = None,
        reply_to: int | None = None,
        on_preview: Callable[[str], Awaitable[None]] | None = None,
        preview_message_id: int | None = None,
        ask_user: AskUser | None = None,
    ) -> None:
        self.delivery = delivery
        self.approvals = approvals
        self.ask_user = ask_user  # None: tools' questions are cancelled
        self.chat_id = chat_id
        self.private = private
        self.thread_id = thread_id
        self.reply_to = reply_to if not private else None
        self.text = ""
        self.first_visible: float | None = None
        self._shown = ""
        # A resumed turn's group message, half-streamed before a restart: edited into the
        # answer (or the notice), never left as it was.
        self._message_id: int | None = preview_message_id
        self._replaces_preview = preview_message_id is not None
        self._on_preview = on_preview
        self._draft_id = next(_draft_ids)
        self._streaming = True
        self._gone = False
        self._typing: list[tuple[asyncio.Event, asyncio.Task[None]]] = []
        self._typing_due: asyncio.TimerHandle | None = None
        self._previews_due: asyncio.TimerHandle | None = None
        self._previews: asyncio.Task[None] | None = None
        self._fresh = asyncio.Event()  # new text, or time to stop
        self._stop = asyncio.Event()
        self._reasoning = ""
        self._running: dict[str, str] = {}  # call id -> its progress line
        self._started: dict[str, str] = {}  # call id -> its line as it started

    # -- Surface -----------------------------------------------------------------------

    async def start(self) -> None:
        self._typing_due = asyncio.get_running_loop().call_later(
            self.delivery.preview_delay, self._typing_unless_shown
        )

    async def stream(self, delta: str) -> None:
        self._pause_typing()
        self.text += delta
        self._want_previews()

    async def thinking(self, delta: str) -> None:
        if self._rich_draft:
            self._reasoning = (self._reasoning + delta)[-SHOWN_REASONING:]
            self._want_previews()

    async def status(self, text: str) -> None:
        self._begin_typing()

    async def tool_started(self, call: ToolCall, progress: str) -> None:
        if self._rich_draft:
            self._running[call.id] = progress
            self._started[call.id] = progress
            self._want_previews()

    async def tool_progress(self, call: ToolCall, progress: str) -> None:
        """The call's draft line says how far it is (drafts are paced by the previews)."""
        if call.id in self._running:
            self._running[call.id] = f"{self._started[call.id]} ({progress})"
            self._want_previews()

    async def tool_finished(self, call: ToolCall, result: ToolResult) -> None:
        self._started.pop(call.id, None)
        if self._running.pop(call.id, None) is not None:
            self._fresh.set()

    async def finish(self, text: str) -> None:
        await self._settle()
        await self._guard(self._final(text))

    async def fail(self, text: str) -> None:
        await self._settle()
        if self._replaces_preview and self._message_id is not None and not self._gone:
            try:
                await self.delivery.edit_plain(self.chat_id, self._message_id, text)
                return
            except ChatUnavailable as exc:
                self._drop(exc)
                return
            except TelegramError as exc:  # gone or unchanged: the text goes out anew
                log.info("could not replace the interrupted message (%s); sending anew", exc)
        await self._guard(
            self.delivery.send_part(
                self.chat_id,
                text,
                thread_id=self.thread_id,
                reply_to=self.reply_to,
                render=False,
            )
        )

    async def confirm(self, user: UserRef, question: ApprovalPrompt) -> Answer:
        await self._settle()
        if self._gone:
            return Answer.DENIED
        if user.platform_user_id.startswith("-"):
            # Posted as a chat (anonymous admin, channel): no person to bind the buttons
            # to, so nothing is done, and the asker learns why.
            await self._guard(
                self.delivery.send_part(
                    self.chat_id,
                    _(CANNOT_CONFIRM_AS_CHAT),
                    thread_id=self.thread_id,
                    reply_to=self.reply_to,
                    render=False,
                )
            )
            return Answer.DENIED
        try:
            shown = await self.approvals.show(
                question,
                self.chat_id,
                private=self.private,
                thread_id=self.thread_id,
                reply_to=self.reply_to,
            )
        except ChatUnavailable as exc:
            self._drop(exc)
            return Answer.DENIED
        answer = await question.answer()
        await self._guard(self.approvals.close(shown, question, answer))
        return answer

    async def ask(self, user: UserRef, question: InputQuestion) -> InputAnswer:
        await self._settle()
        if self._gone or self.ask_user is None or user.platform_user_id.startswith("-"):
            return InputAnswer(InputAction.CANCEL)  # nobody to bind the buttons to
        chat = ChatRef(PLATFORM, str(self.chat_id), ChatKind.DM if self.private else ChatKind.GROUP)
        shown: list[tuple[int, str]] = []

        async def show(pending: PendingInput, step: InputStep) -> None:
            text = step.text[:QUESTION_LIMIT]
            if shown and step.refresh:  # a toggle: the same step, its keyboard redrawn
                message_id, _before = shown[-1]
                markup = input_keyboard(pending, step)
                await self._guard(self.delivery.edit_plain(self.chat_id, message_id, text, markup))
                shown[-1] = (message_id, text)
                return
            if shown:  # the previous step's buttons go; its text stays, marked done
                message_id, before = shown[-1]
                await self._guard(self.delivery.edit_plain(self.chat_id, message_id, f"{before} ✓"))
            message = await self.delivery.send_part(
                self.chat_id,
                text,
                thread_id=self.thread_id,
                reply_to=self.reply_to,
                markup=input_keyboard(pending, step),
                render=False,
            )
            shown.append((message.message_id, text))

        try:
            answer = await self.ask_user(user, chat, question, show)
        except ChatUnavailable as exc:
            self._drop(exc)
            return InputAnswer(InputAction.CANCEL)
        if shown:
            message_id, text = shown[-1]
            await self._guard(
                self.delivery.edit_plain(
                    self.chat_id, message_id, f"{text}\n\n{answer_note(answer)}"
                )
            )
        return answer

    # -- inside ------------------------------------------------------------------------

    @property
    def _rich_draft(self) -> bool:
        return self.private and self.delivery.rich

    def _want_previews(self) -> None:
        """Schedule previews once there is something to show; wake them for news."""
        if self._previews_due is None and self._streaming and self._wanted():
            self._previews_due = asyncio.get_running_loop().call_later(
                self.delivery.preview_delay, self._start_previews
            )
        self._fresh.set()

    def _wanted(self) -> str:
        """What a preview would show now: the answer so far, or, in a rich draft, its
        HTML with the thinking block (until the answer starts) and the tool lines."""
        text = self.text.strip()
        if not self._rich_draft:
            return text
        blocks = []
        if self._reasoning.strip() and not text:
            blocks.append(f"<tg-thinking>{html.escape(self._reasoning.strip())}</tg-thinking>")
        blocks.extend(f"<p>{html.escape(line)}</p>" for line in self._running.values())
        if text:
            blocks.append("<p>" + html.escape(text).replace("\n", "<br>") + "</p>")
        return "".join(blocks)

    async def _settle(self) -> None:
        """Stop the background calls (one in flight lands: cancelling it would cost its
        connection) before the turn's own message; later text starts previews anew."""
        if self._previews_due is not None:
            self._previews_due.cancel()
        if self._previews is not None:
            self._stop.set()
            self._fresh.set()
            await self._previews
            self._stop.clear()
        self._previews_due = self._previews = None
        await self._end_typing()

    def _start_previews(self) -> None:
        self._previews = asyncio.create_task(self._show_previews())

    async def _show_previews(self) -> None:
        """Preview the newest text whenever the chat's pace allows, until stopped."""
        delivery, chat_id = self.delivery, self.chat_id
        interval = self.delivery.draft_interval if self.private else None
        while self._streaming and not self._gone and not self._stop.is_set():
            text = self._wanted()
            if text == self._shown:
                self._fresh.clear()
                await self._fresh.wait()
            elif utf16_len(self.text.strip()) > PART_LIMIT:
                self._streaming = False  # the final split takes over
            elif delivery.take(chat_id, interval):
                try:
                    await self._guard(self._preview(text))
                finally:
                    delivery.touch(chat_id, interval)
            else:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(delivery.ready_in(chat_id)):
                        await self._stop.wait()

    def _typing_unless_shown(self) -> None:
        if self.first_visible is None:
            self._begin_typing()

    def _begin_typing(self) -> None:
        """Show "typing…" (renewed every few seconds) until the next text or the end."""
        if self._gone or any(not stop.is_set() for stop, _ in self._typing):
            return
        stop = asyncio.Event()
        self._typing.append((stop, asyncio.create_task(self._keep_typing(stop))))

    async def _keep_typing(self, stop: asyncio.Event) -> None:
        with contextlib.suppress(TelegramError):
            while not stop.is_set():
                await self.delivery.typing(self.chat_id, self.thread_id)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), TYPING_EVERY)

    def _pause_typing(self) -> None:
        # Only signals: cancelling a request in flight would cost its connection.
        for stop, _task in self._typing:
            stop.set()

    async def _end_typing(self) -> None:
        if self._typing_due is not None:
            self._typing_due.cancel()
        self._pause_typing()
        tasks, self._typing = self._typing, []
        for _stop, task in tasks:
            await task

    async def _preview(self, text: str) -> None:
        if self._rich_draft:
            shown = await self.delivery.rich_draft(
                self.chat_id, self._draft_id, text, thread_id=self.thread_id
            )
            if shown:
                self._shown = text
                self._mark_visible()
            return
        preview = await self.delivery.preview(
            self.chat_id,
            text,
            draft_id=self._draft_id if self.private else None,
            thread_id=self.thread_id,
            reply_to=self.reply_to,
            message_id=self._message_id,
        )
        if preview.message_id is not None and preview.message_id != self._message_id:
            self._message_id = preview.message_id
            if self._on_preview is not None:
                await self._on_preview(str(preview.message_id))
        if preview.refused:
            self._streaming = False
        if preview.shown:
            self._shown = text
            self._mark_visible()

    async def _final(self, text: str) -> None:
        await self.delivery.final(
            self.chat_id,
            text,
            private=self.private,
            thread_id=self.thread_id,
            reply_to=self.reply_to,
            streamed_id=self._message_id,
            shown=self._shown,
        )
        self._mark_visible()

    def _mark_visible(self) -> None:
        if self.first_visible is None:
            self.first_visible = asyncio.get_running_loop().time()

    async def _guard(self, work: Awaitable[Any]) -> None:
        """Run `work` unless the chat is gone; a chat that goes away ends the turn quietly."""
        if self._gone:
            if asyncio.iscoroutine(work):
                work.close()
            return
        try:
            await work
        except ChatUnavailable as exc:
            self._drop(exc)
        except TelegramError as exc:
            if not self.private and "not found" in str(exc).lower():
                self._drop(exc)
                return
            log.warning("telegram call failed in chat %s: %s", self.chat_id, exc)

    def _drop(self, exc: Exception) -> None:
        if not self._gone:
            log.warning(
                "telegram chat %s is unavailable (%s); dropping the turn", self.chat_id, exc
            )
        self._gone = True
        self._pause_typing()


class TelegramMessenger:
    """Proactive messages (reminders, follow-ups) to a Telegram chat or topic."""

    platform = PLATFORM

    def __init__(self, delivery: Delivery) -> None:
        self.delivery = delivery

    async def send(self, chat: ChatRef, text: str, thread_key: str = "") -> None:
        chat_id = int(chat.platform_chat_id)
        thread_id = int(thread_key) if thread_key else None
        await self.delivery.send_markdown(chat_id, text, thread_id=thread_id)


__all__ = ["TelegramMessenger", "TelegramSurface"]
