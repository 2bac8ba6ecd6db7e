"""`Desk`: the one object every chat platform receives, and everything both adapters need.

An adapter translates (native payload → `IncomingMessage` and reply address) and renders
(a `Surface`, a `Messenger`); whatever does not depend on the platform is here, written
once: claiming an event so a re-delivery does nothing, knowing whether Parley takes part
in a thread, running a turn, resetting a conversation, listing and switching tools and
choosing a chat's provider (with the admin check and the audit row), and the approvals:
presses on approval questions (whichever replica they reach), "Show all", standing
approvals and admins' rules. A turn
is claimed with its input and reply address (`claim_turn`), so it survives this process
(bot/turn/durable.py).

The admin check is PARLEY_ADMINS first, then a short cache, then the platform's own
question, which the adapter passes as a small coroutine (Slack asks `users.info`,
Telegram `getChatMember`); a question that raises `LookupError` counts as "no" this
time and is not cached.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Hashable, Sequence
from typing import Any, TypeVar

from bot.approvals.gate import Answer, Approvals, Mode, Press, PressOutcome
from bot.approvals.questions import InputQuestions, ShowStep
from bot.chat.cache import TTLCache
from bot.chat.languages import Languages
from bot.chat.observed import GroupContext
from bot.domain import (
    Attachment,
    AttachmentKind,
    ChatKind,
    ChatRef,
    IncomingMessage,
    InputAnswer,
    InputQuestion,
    MemoryBook,
    MemoryScope,
    UserRef,
)
from bot.i18n import _, available_locales, language_name, ngettext, short_tag, use_locale
from bot.numbers import typed_number
from bot.policy.admin import (
    PROVIDER_NOT_ADMIN,
    Administration,
    actor_id,
    place_of,
    provider_named,
)
from bot.storage.approvals import GrantRow
from bot.storage.feedback import FeedbackStore
from bot.storage.prompts import PromptStore
from bot.storage.repository import ConversationStore
from bot.storage.turns import TurnStore
from bot.surface import Surface
from bot.toolkit import Tool
from bot.turn.durable import Settler, TurnTicket
from bot.turn.engine import Engine, TurnOutcome
from bot.turn.media import MediaReader

AskPlatform = Callable[[], Awaitable[bool]]
T = TypeVar("T")

log = logging.getLogger(__name__)

# How long a claim is tried again while the database does not take it: a short outage
# is ridden out, and Slack, which waits 3 s for its answer, still gets one in time.
CLAIM_PATIENCE = 2.0
CLAIM_FIRST_PAUSE = 0.1
# At most this many claims whose outcome was not heard are remembered.
UNSURE_CLAIMS = 10_000

__all__ = ["Answer", "AskPlatform", "Desk", "Mode", "Press", "PressOutcome", "TurnTicket"]


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
        languages: Languages,
        questions: InputQuestions,
        feedback: FeedbackStore,
        prompts: PromptStore,
        group_context: GroupContext | None = None,
    ) -> None:
        self._engine = engine
        # Opt-in observed group context (bot/chat/observed.py); None or off: nothing kept.
        self.group_context = group_context
        self.languages = languages
        self._feedback = feedback
        self._prompts = prompts
        self._media = media
        self._store = store
        self._admin = admin
        self._memory = memory
        # Durable turns (bot/turn/durable.py): claimed with their input, held by `holder`.
        self._turns = turns
        self._holder = holder
        # Claims whose commit may have gone through unheard (bounded by the retries' life).
        self._unsure_claims: set[tuple[str, str, str]] = set()
        # Settles finished turns even across a database outage (bot/turn/durable.py).
        self.settler = Settler(turns, engine.observer)
        self._admins: TTLCache[bool] = TTLCache(admin.settings.admin_cache_seconds)
        self.approvals: Approvals = engine.approvals
        # Tools' questions to users mid-call (bot/approvals/questions.py): the Surfaces show them,
        # presses and typed replies come back here.
        self.questions = questions

    @property
    def model(self) -> str:
        """The model answering (for a platform's greeting)."""
        return self._engine.provider.model

    # -- events and turns --------------------------------------------------------------

    async def claim(
        self, platform: str, bot: str, event_id: str, *, within: float = CLAIM_PATIENCE
    ) -> bool:
        """True the first time this event is seen (even across restarts and replicas).
        Tried again for up to `within` seconds while the database does not take it; then
        the last error is raised (counted): the adapter must not acknowledge the event."""
        return await self._patiently(
            platform, lambda: self._store.claim_event(platform, bot, event_id), within
        )

    async def claim_turn(
        self,
        message: IncomingMessage,
        bot: str,
        reply: dict[str, Any],
        *,
        within: float = CLAIM_PATIENCE,
    ) -> TurnTicket | None:
        """Claim the event of `message` (received by `bot`) with the turn's input and the
        platform's reply address (JSON), so the turn survives this process; None if the
        event was claimed before (a re-delivery: an unfinished turn is the resume
        sweep's, never a second answer). Retried and raised as `claim` is."""
        key = (message.platform, bot, message.event_id)

        async def attempt() -> int | None:
            try:
                return await self._turns.claim(message, bot, reply, self._holder)
            except Exception:
                # The commit may have gone through with only its answer lost (a connection
                # cut after COMMIT): then the event reads as taken on the next try.
                if len(self._unsure_claims) >= UNSURE_CLAIMS:
                    self._unsure_claims.clear()  # a long outage: the oldest no longer matter
                self._unsure_claims.add(key)
                raise

        turn_id = await self._patiently(message.platform, attempt, within)
        if turn_id is None and key in self._unsure_claims:
            # Taken, after a try of ours whose outcome we never heard: ours if this process
            # holds it and it has not started (a re-delivery of a turn that runs is not).
            # Forgotten before asking, so two re-deliveries at once cannot both adopt it.
            self._unsure_claims.discard(key)
            turn_id = await self._turns.claimed_by(*key, self._holder)
            if turn_id is not None:
                log.info("%s: event %s was recorded by a try that seemed to fail", *key[::2])
        self._unsure_claims.discard(key)
        return None if turn_id is None else TurnTicket(self._turns, turn_id, settler=self.settler)

    async def _patiently(
        self, platform: str, attempt: Callable[[], Awaitable[T]], within: float
    ) -> T:
        """`attempt()` until it succeeds, with pauses doubling from CLAIM_FIRST_PAUSE, for
        at most `within` seconds in all (each try is cut off at the deadline too)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        pause = CLAIM_FIRST_PAUSE
        while True:
            try:
                async with asyncio.timeout(max(deadline - loop.time(), CLAIM_FIRST_PAUSE)):
                    return await attempt()
            except Exception as exc:
                left = deadline - loop.time()
                if left <= 0:
                    log.warning("%s: could not record an event within %.1f s", platform, within)
                    self._engine.observer.claim_failed(platform)
                    raise
                log.info("%s: recording an event failed (%s); trying again", platform, exc)
                await asyncio.sleep(min(pause, left))
                pause *= 2

    async def rate_answer(
        self, chat: ChatRef, voter: UserRef, answer_ref: str, *, helpful: bool, answer: str
    ) -> bool:
        """A person's thumbs up or down on the answer `answer_ref` (the platform's message
        id) in `chat`; False if they had rated it already (counted once)."""
        return await self._feedback.record(
            platform=chat.platform,
            chat=chat.platform_chat_id,
            message_ref=answer_ref,
            voter=voter.qualified_id,
            helpful=helpful,
            answer=answer,
        )

    async def suggested_prompts(self, chat: ChatRef) -> list[dict[str, str]]:
        """The prompts an admin set for `chat` (`title`, `message`); empty: the platform's
        defaults apply."""
        return await self._prompts.of_chat(chat)

    async def knows_thread(self, chat: ChatRef, thread_key: str) -> bool:
        """Whether Parley has a conversation in this thread."""
        return await self._store.has_thread(chat, thread_key)

    async def turn(
        self, message: IncomingMessage, surface: Surface, ticket: TurnTicket | None = None
    ) -> TurnOutcome:
        """Run a turn; a durable one (`ticket`) is done once its final reply went out
        (a cancelled or killed turn stays open, for the resume sweep). A message that
        answers the sender's open question here (a typed value) is that answer instead."""
        if message.text and self.questions.reply(message.user, message.chat, message.text):
            if ticket is not None:
                await ticket.done()
            return TurnOutcome()
        if self.group_context is not None:
            message = await self.group_context.with_context(message)
        # In the locale the adapter entered for this message's sender (`locale_of`).
        outcome = await self._engine.handle(message, surface, ticket=ticket)
        if ticket is not None:
            await ticket.done()
        return outcome

    async def observe(self, message: IncomingMessage) -> None:
        """A group message not addressed to Parley: kept when group context is on."""
        if self.group_context is None or not self.group_context.observes(message.chat):
            return
        try:
            await self.group_context.observe(message)
        except Exception:  # a message nobody asked about must not fail loudly
            log.exception("could not keep an observed message of %s", message.chat.title)

    def stop(self, chat: ChatRef, thread_key: str, user: UserRef) -> bool:
        """Stop `user`'s turn running in this chat and thread (a stop button); False if
        none runs. The turn tells its user and keeps its question in the history."""
        return self._engine.stop(
            (chat.platform, chat.platform_chat_id, thread_key, user.platform_user_id)
        )

    def turn_running(self, chat: ChatRef, thread_key: str) -> bool:
        """Whether anyone's turn runs in this chat and thread (a stop button pressed by
        someone else must leave it alone)."""
        return self._engine.running_in(chat.platform, chat.platform_chat_id, thread_key)

    async def reset(self, message: IncomingMessage) -> bool:
        return await self._engine.reset(message)

    # -- language ----------------------------------------------------------------------

    async def locale_of(self, user: UserRef | None) -> str:
        """The language to write to `user` in (bot/chat/languages.py; the deployment's
        default for nobody in particular). An adapter enters it (`use_locale`) around all
        that a request leads to, a turn included: the turn is written in it."""
        if user is None:
            return self.languages.default
        try:
            return await self.languages.locale_of(user)
        except Exception as exc:
            # Never what decides whether a request is taken: the default language then.
            log.warning("could not look up %s's language (%s)", user.qualified_id, exc)
            return self.languages.default

    async def language_text(self, user: UserRef, argument: str) -> str:
        """`/language zh|en|auto`: store the user's choice; the answer, in the language
        the user reads from now on."""
        locale = await self.languages.choose(user, argument) if argument.strip() else None
        if locale is None:
            return _(
                "Choose the language I write to you in: {choices}, or auto to follow your "
                "chat app.",
                choices=", ".join(short_tag(tag) for tag in available_locales()),
            )
        with use_locale(locale):
            return _("From now on I write to you in {language}.", language=language_name(locale))

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

    async def tool_overview(self, message: IncomingMessage) -> list[tuple[Tool, bool]]:
        """Every tool and whether this message's chat may use it (for /tools and its
        switches; the tools on are those a turn here is offered)."""
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

    # -- a chat's provider (/provider) ---------------------------------------------------

    @property
    def providers(self) -> tuple[str, ...]:
        """The providers a chat may be answered by, the default first (empty: one
        provider, no providers file)."""
        return self._admin.providers

    async def provider_here(self, chat: ChatRef) -> tuple[str, str]:
        """(provider, model) answering `chat`; model "" is the provider's own."""
        config = await self._admin.store.channel_config(await self._store.channel_id(chat))
        name, model = provider_named(config.model)
        if name and name not in self._admin.providers:
            model = ""  # an unknown name answers with the default's own model
        return self._admin.provider_of(config.model), model

    async def set_provider(
        self,
        user: UserRef,
        chat: ChatRef,
        name: str | None,
        *,
        ask: AskPlatform,
        where: Hashable = "",
    ) -> str:
        """An admin's choice of provider for `chat` (None: the default again). Returns why
        it was refused, "" when done; a refusal by rights is audited."""
        if name is not None and name not in self._admin.providers:
            return self._admin.unknown_provider(name)
        allowed = await self.is_admin(user, ask, where=where)
        done = await self._admin.set_provider(
            actor=actor_id(user),
            channel_id=await self._store.channel_id(chat),
            place=place_of(chat),
            name=name,
            surface=user.platform,
            is_admin=allowed,
        )
        return "" if done else _(PROVIDER_NOT_ADMIN)

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
        """Forget one fact (by number) or all facts visible here, for /forget; "context":
        the chat's observed messages."""
        word = argument.strip().lower()
        if word in ("context", "上下文"):
            return await self._forget_context(message)
        if self._memory is None:
            return _("Memory is not available on this bot.")
        if word in ("all", "全部"):
            removed = await self._memory.forget(message.user, message.chat, None)
            return ngettext("Forgot {count} fact.", "Forgot {count} facts.", removed)
        number = typed_number(word)
        if number is None:
            return _("Say which fact to forget: /forget followed by its number, or /forget all.")
        if await self._memory.forget(message.user, message.chat, number):
            return _("Forgotten.")
        return _("There is no fact {number} here; /memory lists them.", number=word)

    async def _forget_context(self, message: IncomingMessage) -> str:
        """/forget context: erase what Parley kept of this chat's unaddressed messages."""
        if self.group_context is None:
            return _("I keep nothing of this chat's other messages.")
        removed = await self.group_context.forget(message.chat)
        log.info("%s erased %d observed message(s) of a chat", message.user.qualified_id, removed)
        return ngettext(
            "Forgot {count} message of this chat that I had kept.",
            "Forgot {count} messages of this chat that I had kept.",
            removed,
        )

    # -- approvals ---------------------------------------------------------------------

    async def ask_user(
        self, user: UserRef, chat: ChatRef, question: InputQuestion, show: ShowStep
    ) -> InputAnswer:
        """Put a tool's question to `user` step by step (`show` draws each), until they
        answer, decline or cancel, or the time runs out (bot/approvals/questions.py)."""
        return await self.questions.ask(user, chat, question, show)

    def withdraw_questions(self) -> None:
        """Shutdown: the open questions end as expired (nobody will press them here)."""
        self.approvals.withdraw_all()

    async def grants_of(self, user: UserRef) -> list[GrantRow]:
        """The user's standing approvals ("Always allow"), for /tools."""
        return await self.approvals.grants(user=user)

    async def revoke_grant(self, user: UserRef, grant_id: int) -> GrantRow | None:
        """Take back one of the user's own standing approvals (audited)."""
        return await self.approvals.revoke(
            grant_id, actor=actor_id(user), surface=user.platform, own_only=True
        )

    async def set_approval_rule(
        self,
        user: UserRef,
        chat: ChatRef,
        tool: str,
        mode: Mode | None,
        *,
        ask: AskPlatform,
        where: Hashable = "",
        explicit: bool = False,
    ) -> str:
        """An admin's rule for `tool` here (ask / remember / never; None: the default).
        Returns why it was refused, "" when done; audited either way."""
        item = self._admin.tools.get(tool)
        if item is None:
            return _("There is no tool named {tool}.", tool=tool)
        allowed = await self.is_admin(user, ask, where=where)
        return await self.approvals.set_rule(
            channel_id=await self._store.channel_id(chat),
            place=place_of(chat),
            item=item,
            mode=mode,
            actor=actor_id(user),
            surface=user.platform,
            is_admin=allowed,
            explicit=explicit,
        )
