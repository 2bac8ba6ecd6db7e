"""`Desk`: the one object every chat platform receives, and everything both adapters need.

An adapter translates (native payload → `IncomingMessage` and reply address) and renders
(a `Surface`, a `Messenger`); whatever does not depend on the platform is here, written
once: claiming an event so a re-delivery does nothing, knowing whether Parley takes part
in a thread, running a turn, resetting a conversation, listing and switching tools (with
the admin check and the audit row), and the open Confirm / Cancel questions. A turn is
claimed with its input and reply address (`claim_turn`), so it survives this process
(bot/turns.py).

The admin check is PARLEY_ADMINS first, then a short cache, then the platform's own
question, which the adapter passes as a small coroutine (Slack asks `users.info`,
Telegram `getChatMember`); a question that raises `LookupError` counts as "no" this
time and is not cached.
"""

from __future__ import annotations

import asyncio
import enum
import secrets
from collections.abc import Awaitable, Callable, Hashable, Sequence
from typing import Any

from bot.admin import Administration, TTLCache, actor_id, place_of
from bot.domain import (
    Attachment,
    AttachmentKind,
    ChatKind,
    ChatRef,
    IncomingMessage,
    MemoryBook,
    MemoryScope,
    UserRef,
)
from bot.engine import Engine, TurnOutcome
from bot.i18n import _, ngettext
from bot.media import MediaReader
from bot.storage.repository import ConversationStore
from bot.storage.turns import TurnStore
from bot.surface import Surface
from bot.toolkit import Tool
from bot.turns import TurnTicket

AskPlatform = Callable[[], Awaitable[bool]]


class Press(enum.Enum):
    """What became of a press on a Confirm / Cancel button."""

    ANSWERED = "answered"
    GONE = "gone"  # unknown token, timed out or already answered
    NOT_YOURS = "not yours"  # somebody other than the asker pressed it


class Confirmations:
    """Questions waiting for a button press: token → (asker, future), for every platform."""

    def __init__(self) -> None:
        self._pending: dict[str, tuple[str, asyncio.Future[bool]]] = {}

    def open(self, asker: str) -> tuple[str, asyncio.Future[bool]]:
        """A new question for `asker` (a platform user id); the token goes in the buttons.
        12 characters: Telegram's callback data holds at most 64 bytes."""
        token = secrets.token_urlsafe(9)
        future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._pending[token] = (asker, future)
        return token, future

    def owner(self, token: str) -> str | None:
        """Who may answer this question, or None if it is no longer open."""
        entry = self._pending.get(token)
        return entry[0] if entry is not None and not entry[1].done() else None

    def press(self, token: str, presser: str, yes: bool) -> Press:
        """A press by `presser`: answered only if the question is open and theirs."""
        owner = self.owner(token)
        if owner is None:
            return Press.GONE
        if owner != presser:
            return Press.NOT_YOURS
        _owner, future = self._pending.pop(token)
        future.set_result(yes)
        return Press.ANSWERED

    def discard(self, token: str) -> None:
        self._pending.pop(token, None)

    def refuse_all(self) -> None:
        """Shutdown: nobody will press these buttons now; "no" lets their turns end."""
        for _owner, future in self._pending.values():
            if not future.done():
                future.set_result(False)

    def __len__(self) -> int:
        return len(self._pending)


class Desk:
    """The front door of the core for chat platforms (built once, in bot/app.py)."""

    def __init__(
        self,
        engine: Engine,
        store: ConversationStore,
        admin: Administration,
        memory: MemoryBook | None = None,
        *,
        media: MediaReader | None = None,
        turns: TurnStore,
        holder: str,
    ) -> None:
        self._engine = engine
        self._media = media
        self._store = store
        self._admin = admin
        self._memory = memory
        # Durable turns (bot/turns.py): claimed with their input, held by `holder`.
        self._turns = turns
        self._holder = holder
        self._admins: TTLCache[bool] = TTLCache(admin.settings.admin_cache_seconds)
        self.confirmations = Confirmations()

    @property
    def model(self) -> str:
        """The model answering (for a platform's greeting)."""
        return self._engine.provider.model

    # -- events and turns --------------------------------------------------------------

    async def claim(self, platform: str, bot: str, event_id: str) -> bool:
        """True the first time this event is seen (even across restarts and replicas)."""
        return await self._store.claim_event(platform, bot, event_id)

    async def claim_turn(
        self, message: IncomingMessage, bot: str, reply: dict[str, Any]
    ) -> TurnTicket | None:
        """Claim the event of `message` (received by `bot`) with the turn's input and the
        platform's reply address (JSON), so the turn survives this process; None if the
        event was claimed before (a re-delivery: an unfinished turn is the resume
        sweep's, never a second answer)."""
        turn_id = await self._turns.claim(message, bot, reply, self._holder)
        return None if turn_id is None else TurnTicket(self._turns, turn_id)

    async def knows_thread(self, chat: ChatRef, thread_key: str) -> bool:
        """Whether Parley has a conversation in this thread."""
        return await self._store.has_thread(chat, thread_key)

    async def turn(
        self, message: IncomingMessage, surface: Surface, ticket: TurnTicket | None = None
    ) -> TurnOutcome:
        """Run a turn; a durable one (`ticket`) is done once its final reply went out
        (a cancelled or killed turn stays open, for the resume sweep)."""
        outcome = await self._engine.handle(message, surface, ticket=ticket)
        if ticket is not None:
            await ticket.done()
        return outcome

    async def reset(self, message: IncomingMessage) -> bool:
        return await self._engine.reset(message)

    # -- files -------------------------------------------------------------------------

    def file_refusal(self, attachments: Sequence[Attachment]) -> str | None:
        """Why files the platform describes this way are not downloaded (their number,
        declared size or length, or a kind Parley cannot use here), in the reader's
        language; None if they may be."""
        if self._media is None:
            return None
        return self._media.refusal(attachments)

    def download_limit(self, kind: AttachmentKind) -> int:
        """The most bytes an adapter may download for a file of this kind."""
        return self._media.max_bytes(kind) if self._media is not None else 0

    async def drain(self, within: float) -> bool:
        """Wait until no turn runs (at most `within` seconds); True if none does."""
        return await self._engine.drain(within)

    # -- tools -------------------------------------------------------------------------

    async def offered_tools(self, message: IncomingMessage) -> list[Tool]:
        return await self._engine.offered_tools(message)

    async def tool_overview(self, message: IncomingMessage) -> list[tuple[Tool, bool]]:
        return await self._engine.tool_overview(message)

    async def is_admin(self, user: UserRef, ask: AskPlatform, *, where: Hashable = "") -> bool:
        """PARLEY_ADMINS, or what the platform says (`ask`, cached per user and `where`)."""
        if self._admin.is_listed(user):
            return True
        try:
            return await self._admins.get((actor_id(user), where), ask)
        except LookupError:
            return False  # a failed check counts as "not an admin" this time only

    async def set_tools(
        self,
        user: UserRef,
        chat: ChatRef,
        changes: Sequence[tuple[str, bool]],
        *,
        ask: AskPlatform,
        where: Hashable = "",
    ) -> bool:
        """Switch tools for `chat` as `user` asked; False (audited) at the first refusal."""
        allowed = await self.is_admin(user, ask, where=where)
        channel_id = await self._store.channel_id(chat)
        for name, enabled in changes:
            done = await self._admin.set_tool(
                actor=actor_id(user),
                channel_id=channel_id,
                place=place_of(chat),
                tool=name,
                enabled=enabled,
                surface=user.platform,
                is_admin=allowed,
            )
            if not done:
                return False
        return True

    # -- memory (/memory, /forget) -------------------------------------------------------

    async def memory_text(self, message: IncomingMessage) -> str:
        """What the user asked Parley to remember that may be shown here, for /memory."""
        if self._memory is None:
            return _("Memory is not available on this bot.")
        facts = await self._memory.facts_for(message.user, message.chat)
        private = message.chat.kind is ChatKind.DM
        if not facts:
            if private:
                return _("I don't remember anything about you. Ask me to remember something.")
            return _(
                "I don't remember anything about you that is shared here. "
                "Facts you keep private are listed in a direct chat with me."
            )
        lines = [_("What I remember about you:")]
        for fact in facts:
            # In a DM both kinds are listed: say which ones groups see too.
            shared = private and fact.scope is MemoryScope.EVERYWHERE
            lines.append(
                _("{number}. {text} (shared everywhere)", number=fact.id, text=fact.text)
                if shared
                else f"{fact.id}. {fact.text}"
            )
        lines.append(_("To forget one: /forget followed by its number, or /forget all."))
        return "\n".join(lines)

    async def forget_text(self, message: IncomingMessage, argument: str) -> str:
        """Forget one fact (by number) or all facts visible here, for /forget."""
        if self._memory is None:
            return _("Memory is not available on this bot.")
        word = argument.strip().lower()
        if word in ("all", "全部"):
            removed = await self._memory.forget(message.user, message.chat, None)
            return ngettext("Forgot {count} fact.", "Forgot {count} facts.", removed)
        if not word.isdigit():
            return _("Say which fact to forget: /forget followed by its number, or /forget all.")
        if await self._memory.forget(message.user, message.chat, int(word)):
            return _("Forgotten.")
        return _("There is no fact {number} here; /memory lists them.", number=word)
