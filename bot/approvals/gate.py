"""Approvals: whether a tool call may run, asked of the person who asked for it.

    decide   the channel's rule for the tool (an admin's: ask / remember / never), else
             side-effecting tools ask (and may be remembered) and the rest run; a grant
             ("Always allow", per user, channel and tool) answers instead of the user
    ask      a question row in the database (token, asker, chat, call, expiry, state),
             shown by the turn's Surface as a card with Approve once / Always allow /
             Deny (and "Show all" when the card had to be shortened)
    wait     the asking process wakes at once for a press it received itself, and polls
             the row otherwise (a press may land on any replica); each poll also marks
             the question as still waited for, so a press after that process is gone
             (a restart) is told the question expired instead of answering nobody
    press    one transaction: only the asker, only while open and unexpired; "Always
             allow" stores the grant in the same transaction

Every question, answer, refusal, expiry, grant, revocation and rule change is audited.
Cards are rendered here, within whatever limit the platform gives (Telegram counts UTF-16
code units, Slack characters): the platform never sees a question it would refuse.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import json
import logging
import secrets
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from bot.approvals.cards import full_card_text, render_card
from bot.approvals.trust import FOLLOWS_LABEL, Follows, Relaxations
from bot.domain import ChatRef, UserRef
from bot.i18n import _
from bot.storage.approvals import ApprovalStore, GrantRow, PressResult
from bot.surface import Answer, Measure, RenderedCard
from bot.toolkit import ApprovalCard, Tool

if TYPE_CHECKING:
    from bot.storage.audit import AuditStore
    from bot.surface import Surface

__all__ = ["Answer", "ApprovalQuestion", "Approvals", "Mode", "Press", "PressOutcome"]

log = logging.getLogger(__name__)

CALL_CHARS = 4000  # the call as the question row keeps it (for the record)


class Mode(enum.StrEnum):
    """An admin's rule for one tool in one channel."""

    ASK = "ask"  # every call asks; no "Always allow"
    REMEMBER = "remember"  # asks once per user, who may answer "Always allow"
    NEVER = "never"  # runs without a question


Press = PressResult


@dataclass(frozen=True, slots=True)
class PressOutcome:
    result: Press
    owner: str = ""  # the asker's platform user id, for "only X can answer"
    tool: str = ""
    # The answer as recorded: "Always allow" pressed on a card without it counts once.
    answer: Answer | None = None


# -- questions -----------------------------------------------------------------------------


@dataclass(eq=False)
class ApprovalQuestion:
    """One open question, as a Surface shows it: render `card`, offer the answers, then
    `await answer()` (a press on any replica), or `respond(...)` for a surface that takes
    the answer itself (the terminal)."""

    token: str
    user: UserRef
    tool: str
    card: ApprovalCard
    may_remember: bool
    expires_at: datetime
    _approvals: Approvals
    _woken: asyncio.Event = field(default_factory=asyncio.Event)
    _result: Answer | None = None

    def render(self, limit: int, measure: Measure = len) -> RenderedCard:
        return render_card(self.card, self.tool, limit=limit, measure=measure)

    @property
    def full_text(self) -> str:
        return full_card_text(self.card, self.tool)

    async def answer(self) -> Answer:
        """Wait for the asker's press (wherever it lands) or the expiry."""
        return await self._approvals.wait(self)

    async def respond(self, answer: Answer) -> Answer:
        """The asker answered here and now (a terminal prompt); what stands."""
        outcome = await self._approvals.press(
            self.token, self.user, answer, surface=self.user.platform
        )
        if outcome.result is Press.ANSWERED:
            return answer
        return await self._approvals.wait(self)

    def _settle(self, answer: Answer) -> None:
        self._result = answer
        self._woken.set()


class Approvals:
    """The approval gate of every tool call (one per application, built in bot/app.py).

    Without a store (engine tests) questions, grants and rules live in this object only.
    """

    def __init__(
        self,
        store: ApprovalStore | None,
        audit: AuditStore | None,
        *,
        timeout_seconds: float,
        poll_seconds: float = 0.5,
    ) -> None:
        self.store = store
        self.audit_store = audit
        self.timeout = timedelta(seconds=timeout_seconds)
        self.poll_seconds = poll_seconds
        # A press after the asking process stopped polling for this long is "expired".
        self.alive_window = timedelta(seconds=max(5.0, 10 * poll_seconds))
        self._waiting: dict[str, ApprovalQuestion] = {}
        self._memory: dict[str, tuple[str, str]] = {}  # token -> (asker, state), no store
        self._memory_grants: set[tuple[str, int, str]] = set()
        self.relaxations = Relaxations(store, self.audit)

    # -- deciding --------------------------------------------------------------------------

    async def rule(self, channel_id: int, tool: str) -> Mode | None:
        if self.store is None:
            return None
        mode = (await self.store.rules(channel_id)).get(tool, "")
        return Mode(mode) if mode in set(Mode) else None

    async def needs_question(
        self, user: UserRef, channel_id: int, item: Tool, follows: Follows | None = None
    ) -> bool | None:
        """None: run without asking; else ask, True if "Always allow" may be offered. A
        call that acts after outside words (`follows`) asks, whatever the grants and
        rules, unless an admin relaxed that here (bot/approvals/trust.py)."""
        if (
            follows is not None
            and item.acts
            and not await self.relaxations.relaxed(channel_id, item.name)
        ):
            return False
        rule = await self.rule(channel_id, item.name)
        if rule is Mode.NEVER or (rule is None and not item.side_effect):
            return None
        if rule is Mode.ASK:
            return False
        if await self.has_grant(user, channel_id, item.name):
            log.info("%s runs %s on their standing approval", user.qualified_id, item.name)
            return None
        return True

    async def has_grant(self, user: UserRef, channel_id: int, tool: str) -> bool:
        if self.store is None:
            return (user.qualified_id, channel_id, tool) in self._memory_grants
        return await self.store.has_grant(user.qualified_id, channel_id, tool)

    # -- asking ----------------------------------------------------------------------------

    async def ask(
        self,
        surface: Surface,
        user: UserRef,
        chat: ChatRef,
        channel_id: int,
        item: Tool,
        arguments: BaseModel,
        follows: Follows | None = None,
    ) -> bool:
        """Ask `user` (through `surface`) whether this call may run, if it must be asked;
        `follows`: the outside words in the turn's context, if any."""
        remember = await self.needs_question(user, channel_id, item, follows)
        if remember is None:
            return True
        forced = follows is not None and item.acts
        if not forced or await self.relaxations.relaxed(channel_id, item.name):
            follows = None  # the card says why only when that is why
        question = await self.open(user, chat, channel_id, item, arguments, remember, follows)
        try:
            answer = await surface.confirm(user, question)
        except Exception:
            log.exception("the approval question for %s could not be shown", item.name)
            answer = Answer.DENIED
        finally:
            self._waiting.pop(question.token, None)
        if not answer.allows:
            await self._expire(question)  # a question nobody can answer any more
        return answer.allows

    async def open(
        self,
        user: UserRef,
        chat: ChatRef,
        channel_id: int,
        item: Tool,
        arguments: BaseModel,
        may_remember: bool,
        follows: Follows | None = None,
    ) -> ApprovalQuestion:
        # 12 characters: Telegram's callback data holds at most 64 bytes.
        token = secrets.token_urlsafe(9)
        now = datetime.now(UTC)
        card = item.approval_card(arguments)
        if follows is not None:
            card = replace(card, lines=((FOLLOWS_LABEL, follows.reason), *card.lines))
        question = ApprovalQuestion(
            token, user, item.name, card, may_remember, now + self.timeout, self
        )
        place = f"{chat.platform}:{chat.platform_chat_id}"
        if self.store is None:
            self._memory[token] = (user.qualified_id, "open")
        else:
            call = json.dumps(arguments.model_dump(), ensure_ascii=False, default=str)
            await self.store.open(
                token=token,
                asker=user.qualified_id,
                place=place,
                channel_id=channel_id,
                tool=item.name,
                call=call[:CALL_CHARS],
                full_text=question.full_text,
                may_remember=may_remember,
                now=now,
                expires_at=question.expires_at,
            )
        self._waiting[token] = question
        await self.audit(
            user.qualified_id,
            "approval.request",
            place,
            user.platform,
            {"tool": item.name, "token": token, "channel_id": channel_id}
            | (follows.audit() if follows is not None else {}),
        )
        return question

    async def wait(self, question: ApprovalQuestion) -> Answer:
        while question._result is None:
            now = datetime.now(UTC)
            left = (question.expires_at - now).total_seconds()
            if left <= 0:
                return await self._expire(question)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(question._woken.wait(), min(self.poll_seconds, left))
            if question._result is None and self.store is not None:
                state = await self.store.waiting(question.token, datetime.now(UTC))
                if state is None:
                    return Answer.EXPIRED
                if state != "open":
                    question._settle(_answer_of(state))
        return question._result

    async def _expire(self, question: ApprovalQuestion) -> Answer:
        """Close the question (unless an answer landed first): what stands."""
        if question._result is not None and question._result.allows:
            return question._result
        if self.store is None:
            asker, state = self._memory.get(question.token, ("", "open"))
            if state == "open":
                self._memory[question.token] = (asker, "expired")
                state = "expired"
        else:
            state = await self.store.expire(question.token, datetime.now(UTC)) or "expired"
        answer = _answer_of(state)
        if answer is Answer.EXPIRED and question._result is None:
            await self.audit(
                question.user.qualified_id,
                "approval.expired",
                "",
                question.user.platform,
                {"tool": question.tool, "token": question.token},
            )
        question._settle(answer)
        return answer

    def withdraw_all(self) -> None:
        """Shutdown: nobody will press these buttons now; "expired" lets their turns end
        (the rows stop being waited for, so a later press says they expired)."""
        for question in list(self._waiting.values()):
            if question._result is None:
                question._settle(Answer.EXPIRED)

    def __len__(self) -> int:
        return sum(1 for question in self._waiting.values() if question._result is None)

    # -- pressing --------------------------------------------------------------------------

    async def press(
        self, token: str, presser: UserRef, answer: Answer, *, surface: str
    ) -> PressOutcome:
        """A press of one of the answers, on whichever replica it landed. The server
        decides which answers the card had: "Always allow" on a card that did not offer
        it (the rule is "ask", or the tool may not be remembered) is taken as "once"."""
        now = datetime.now(UTC)
        if self.store is None:
            asker, state = self._memory.get(token, ("", ""))
            local = self._waiting.get(token)
            if not asker or state != "open":
                return PressOutcome(Press.EXPIRED if state == "expired" else Press.GONE)
            if asker != presser.qualified_id:
                return PressOutcome(Press.NOT_YOURS, asker.partition(":")[2])
            if answer is Answer.ALWAYS and (local is None or not local.may_remember):
                answer = Answer.ONCE
            self._memory[token] = (asker, answer.value)
            tool = local.tool if local is not None else ""
            if answer is Answer.ALWAYS and local is not None:
                self._memory_grants.add((asker, 0, tool))
            result = PressResult.ANSWERED
            owner = asker
        else:
            result, row = await self.store.press(
                token,
                presser.qualified_id,
                answer.value,
                now=now,
                alive_after=now - self.alive_window,
            )
            if answer is Answer.ALWAYS and row is not None and not row.may_remember:
                log.info("an 'always' press on a card that did not offer it counts once")
                answer = Answer.ONCE
            owner = row.asker if row is not None else ""
            tool = row.tool if row is not None else ""
            place = row.place if row is not None else ""
            if row is not None:
                await self._audit_press(result, row.asker, presser, answer, tool, place, surface)
        local = self._waiting.get(token)
        if result is Press.ANSWERED and local is not None:
            local._settle(answer)
        return PressOutcome(result, owner.partition(":")[2], tool, answer)

    async def _audit_press(
        self,
        result: Press,
        asker: str,
        presser: UserRef,
        answer: Answer,
        tool: str,
        place: str,
        surface: str,
    ) -> None:
        details: dict[str, Any] = {"tool": tool, "answer": answer.value}
        if result is Press.ANSWERED:
            await self.audit(presser.qualified_id, "approval.answer", place, surface, details)
            if answer is Answer.ALWAYS:
                await self.audit(presser.qualified_id, "approval.grant", place, surface, details)
            return
        if result is Press.NOT_YOURS:
            log.info("%s pressed %s's approval question; refused", presser.qualified_id, asker)
        reason = {Press.NOT_YOURS: "not the asker", Press.EXPIRED: "expired"}.get(result)
        if reason:
            details["reason"] = reason
            await self.audit(
                presser.qualified_id, "approval.answer", place, surface, details, allowed=False
            )

    async def full_text(self, token: str, presser: UserRef) -> str | None:
        """The whole card of a question, for its asker only (None for anyone else)."""
        local = self._waiting.get(token)
        if local is not None:
            return local.full_text if local.user.qualified_id == presser.qualified_id else None
        if self.store is None:
            return None
        row = await self.store.question(token)
        if row is None or row.asker != presser.qualified_id:
            return None
        return row.full_text

    # -- grants and rules ------------------------------------------------------------------

    async def grants(
        self, *, user: UserRef | None = None, channel_id: int | None = None
    ) -> list[GrantRow]:
        """Standing approvals: one user's (for /tools) or everyone's (for admins)."""
        if self.store is None:
            return []
        asker = user.qualified_id if user is not None else None
        return await self.store.grants(asker=asker, channel_id=channel_id)

    async def revoke(
        self, grant_id: int, *, actor: str, surface: str, own_only: bool
    ) -> GrantRow | None:
        """Take a grant back: the user their own (`own_only`), an admin anyone's."""
        if self.store is None:
            return None
        grant = await self.store.revoke(grant_id, asker=actor if own_only else None)
        await self.audit(
            actor,
            "approval.revoke",
            grant.place if grant is not None else "",
            surface,
            {"grant": grant_id, "tool": grant.tool if grant is not None else ""},
            allowed=grant is not None,
        )
        return grant

    async def rules(self, channel_id: int) -> dict[str, Mode]:
        if self.store is None:
            return {}
        found = await self.store.rules(channel_id)
        return {tool: Mode(mode) for tool, mode in found.items() if mode in set(Mode)}

    async def set_rule(
        self,
        *,
        channel_id: int,
        place: str,
        item: Tool,
        mode: Mode | None,
        actor: str,
        surface: str,
        is_admin: bool,
        explicit: bool = False,
    ) -> str:
        """An admin's rule for `item` in a channel (None: back to the default). Returns
        why it was refused ("" when done); every attempt is audited."""
        details: dict[str, Any] = {
            "tool": item.name,
            "mode": mode.value if mode is not None else "default",
            "channel_id": channel_id,
        }
        refusal = ""
        if not is_admin:
            refusal = _("Only admins can change when this channel asks before a tool runs.")
        elif mode is Mode.NEVER and item.side_effect and not explicit:
            refusal = _(
                "{tool} acts on the world: “never ask” needs an admin's explicit "
                "confirmation for it.",
                tool=item.name,
            )
        elif self.store is None:
            refusal = _("Approval rules cannot be stored on this bot.")
        if refusal:
            await self.audit(
                actor,
                "approval.rule",
                place,
                surface,
                details | {"refused": refusal},
                allowed=False,
            )
            return refusal
        await self.store.set_rule(  # type: ignore[union-attr]  # None is refused above
            channel_id, item.name, mode.value if mode else None, by=actor, now=datetime.now(UTC)
        )
        if explicit:
            details["explicit"] = True
        await self.audit(actor, "approval.rule", place, surface, details)
        return ""

    async def audit(
        self,
        actor: str,
        action: str,
        place: str,
        surface: str,
        details: dict[str, Any],
        *,
        allowed: bool = True,
    ) -> None:
        if self.audit_store is None:
            return
        try:
            await self.audit_store.audit(
                actor=actor,
                action=action,
                place=place,
                surface=surface,
                allowed=allowed,
                details=details,
            )
        except Exception:  # the record must not turn an answer into a failure
            log.exception("could not audit %s by %s", action, actor)


def _answer_of(state: str) -> Answer:
    try:
        return Answer(state)
    except ValueError:
        return Answer.EXPIRED
