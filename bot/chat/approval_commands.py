"""The approval words of `/tools`, the same on every platform.

    /tools                          lists the user's standing approvals ("Always allow")
    /tools revoke <n>               takes one of them back
    /tools rule <tool> <mode>       (admins) ask | remember | never | default for this
                                    chat; "never" for a tool that acts on the world needs
                                    "never!" (said explicitly, and audited as such)

Adapters pass the words after `/tools`; the answer is text for the asker alone.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Hashable, Sequence
from typing import TYPE_CHECKING

from bot.approvals.gate import Mode
from bot.domain import ChatRef, UserRef
from bot.i18n import _
from bot.numbers import typed_number

if TYPE_CHECKING:
    from bot.chat.desk import Desk

AskPlatform = Callable[[], Awaitable[bool]]
MODES = {"ask": Mode.ASK, "remember": Mode.REMEMBER, "never": Mode.NEVER, "never!": Mode.NEVER}


async def grants_text(desk: Desk, user: UserRef) -> str:
    """The user's standing approvals, one line each, or "" when there are none."""
    grants = await desk.grants_of(user)
    if not grants:
        return ""
    lines = [_("Always allowed for you (take one back with /tools revoke <number>):")]
    lines += [
        _("{id}. {tool} in {place}", id=grant.id, tool=grant.tool, place=grant.place)
        for grant in grants
    ]
    return "\n".join(lines)


async def approval_command(
    desk: Desk,
    user: UserRef,
    chat: ChatRef,
    words: Sequence[str],
    *,
    ask: AskPlatform,
    where: Hashable = "",
) -> str | None:
    """The answer to `/tools <words>` if they are approval words, else None."""
    if not words:
        return None
    verb = words[0].lower()
    if verb == "revoke":
        number = words[1] if len(words) > 1 else ""
        grant_id = typed_number(number)
        revoked = await desk.revoke_grant(user, grant_id) if grant_id is not None else None
        if revoked is None:
            return _("You have no standing approval {id}.", id=number or "?")
        return _("Taken back: {tool} asks again before it runs.", tool=revoked.tool)
    if verb == "rule":
        if len(words) != 3 or (words[2].lower() not in MODES and words[2].lower() != "default"):
            return _("Write: /tools rule <tool> ask|remember|never|default")
        chosen = words[2].lower()
        mode = MODES.get(chosen)
        refusal = await desk.set_approval_rule(
            user, chat, words[1], mode, ask=ask, where=where, explicit=chosen == "never!"
        )
        if refusal:
            return refusal
        return _("{tool} here: {mode}.", tool=words[1], mode=mode.value if mode else "default")
    return None
