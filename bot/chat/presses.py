"""Presses on Parley's buttons: who may press, and what the presser is told.

A button under an approval card, a tool's question or a /tools switch is pressed by
somebody, not always the person it was for. The adapter reads the press the platform's
way, calls one function here (`approval`, `question`, `toggle`) and renders the
`PressReply`: `notice` for the presser alone (Telegram's alert, Slack's ephemeral
message), `note` in place of an answered card, `tools` as redrawn switches. So every
platform refuses a stranger's press, an expired question or a non-admin's switch in the
same words, and the words are translated once.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Hashable
from dataclasses import dataclass

from bot.approvals.gate import Press
from bot.approvals.questions import InputPress
from bot.chat.desk import AskPlatform, Desk
from bot.domain import ChatRef, IncomingMessage, UserRef
from bot.i18n import N_, _
from bot.surface import Answer
from bot.toolkit import Tool

__all__ = [
    "NOT_ADMIN",
    "InputPress",
    "PressReply",
    "approval",
    "full_text",
    "press_notice",
    "question",
    "toggle",
]

log = logging.getLogger(__name__)

NOT_ADMIN = N_("Only admins can change which tools this channel may use. Your attempt was logged.")
NOT_YOURS = N_("This question is not yours to answer.")
NOT_YOURS_NAMED = N_("This question is not yours: only {owner} can answer it.")
EXPIRED = N_("This question has expired, so nothing was done. Ask again if needed.")
ANSWERED_BEFORE = N_("This question was already answered.")
NOT_OPEN = N_("This question is no longer open.")
ONLY_ASKER_SEES_ALL = N_("Only the person who was asked can see this question in full.")
TOOL_GONE = N_("That tool no longer exists.")
TOOL_ON = N_("{tool} enabled.")
TOOL_OFF = N_("{tool} disabled.")


@dataclass(frozen=True)
class PressReply:
    """What became of a press, for the adapter to render.

    `taken`: the press counted. `notice`: words for the presser alone ("" for none).
    `note`: an answered approval's line, shown in place of its card. `tools`: the /tools
    switches as they are now, to redraw."""

    taken: bool
    notice: str = ""
    note: str = ""
    tools: list[tuple[Tool, bool]] | None = None


async def approval(
    desk: Desk,
    token: str,
    presser: UserRef,
    answer: Answer,
    *,
    mention: Callable[[str], str] | None = None,
) -> PressReply:
    """A press on an approval card (any replica's): answered only by its asker.
    `mention` writes the asker's id as the platform shows a person, where it can."""
    outcome = await desk.approvals.press(token, presser, answer, surface=presser.platform)
    if outcome.result is Press.ANSWERED:
        return PressReply(True, note=(outcome.answer or answer).note(outcome.tool))
    log.info("refused an approval press by %s (%s)", presser.qualified_id, outcome.result.value)
    if outcome.result is Press.NOT_YOURS:
        if mention is not None and outcome.owner:
            return PressReply(False, _(NOT_YOURS_NAMED, owner=mention(outcome.owner)))
        return PressReply(False, _(NOT_YOURS))
    if outcome.result is Press.EXPIRED:
        return PressReply(False, _(EXPIRED))
    return PressReply(False, _(ANSWERED_BEFORE))


async def full_text(desk: Desk, token: str, presser: UserRef) -> PressReply:
    """ "Show all" on a shortened card: the whole card, for its asker only (in `note`)."""
    full = await desk.approvals.full_text(token, presser)
    if full is None:
        return PressReply(False, _(ONLY_ASKER_SEES_ALL))
    return PressReply(True, note=full)


def question(
    desk: Desk,
    token: str,
    presser: UserRef,
    chat: ChatRef,
    key: str,
    selection: list[str] | None = None,
) -> PressReply:
    """A press on a tool's question: taken only from the asker, in that chat."""
    outcome = desk.questions.press(token, presser, chat, key, selection)
    if outcome is InputPress.TAKEN:
        return PressReply(True)
    return PressReply(False, press_notice(outcome))


def press_notice(outcome: InputPress) -> str:
    """What the presser is told when their press on a tool's question was not taken."""
    if outcome is InputPress.NOT_YOURS:
        return _("This question is for someone else.")
    if outcome is InputPress.EXPIRED:
        return _("This question has expired.")
    return _("That answer does not fit this question.")


def not_open() -> PressReply:
    """A press whose data Parley cannot read (an old keyboard, a forged callback)."""
    return PressReply(False, _(NOT_OPEN))


async def toggle(
    desk: Desk,
    presser: UserRef,
    chat: ChatRef,
    *,
    ask: AskPlatform,
    where: Hashable = "",
    set_to: dict[str, bool] | None = None,
    flip: str = "",
) -> PressReply:
    """Switches pressed on /tools: `set_to` gives pressed tools their new state (Slack's
    checkboxes), `flip` turns one tool over (Telegram's buttons). Admins only (checked
    here, audited by the desk); the switches come back as they now are."""
    here = IncomingMessage(chat=chat, user=presser, text="")
    overview = await desk.tool_overview(here)
    current = {item.name: on for item, on in overview}
    wanted = dict(set_to or {})
    if flip:
        wanted[flip] = not current.get(flip, False)
    if any(name not in current for name in wanted):
        return PressReply(False, _(TOOL_GONE), tools=overview)
    changes = [(name, on) for name, on in wanted.items() if current[name] != on]
    if not changes:
        return PressReply(True, tools=overview)
    if not await desk.set_tools(presser, chat, changes, ask=ask, where=where):
        log.info("refused a tool change by %s in %s", presser.qualified_id, chat)
        return PressReply(False, _(NOT_ADMIN), tools=overview)
    notice = " ".join(_(TOOL_ON if on else TOOL_OFF, tool=name) for name, on in changes)
    return PressReply(True, notice, tools=await desk.tool_overview(here))
