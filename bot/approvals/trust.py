"""Trust follows provenance: a call that acts after words from outside asks its requester.

Words from anyone but the requester (a thread, a replied-to message, a group), and the
results of tools that read the outside world (the weather service, an untrusted MCP
server, an open-world MCP tool), can steer the model. When a turn's context holds such
words, a call that acts (`Tool.acts`: sends, schedules, remembers, forgets, an MCP tool
not read-only by the operator's rules) is asked about on a card, even past "Always
allow" and an admin's "never ask", and the card says what it follows. An admin may relax
this per channel and tool (`Approvals.set_relaxed`, audited). Without such words nothing
changes.
"""

from __future__ import annotations

import enum
from collections.abc import Awaitable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol

from bot.i18n import N_, _

if TYPE_CHECKING:
    from bot.storage.approvals import ApprovalStore

# What a card says of the words a call follows (`{name}`: who or what they came from).
FOLLOWS_MESSAGE = N_("this follows a message from {name}")
FOLLOWS_SERVER = N_("this follows a result from server {name}")
FOLLOWS_TOOL = N_("this follows a result of {name}")
FOLLOWS_LABEL = N_("Why I ask")
NAME_CHARS = 64


class Audit(Protocol):
    def __call__(
        self,
        actor: str,
        action: str,
        place: str,
        surface: str,
        details: dict[str, Any],
        *,
        allowed: bool = True,
    ) -> Awaitable[None]: ...


class OutsideKind(enum.StrEnum):
    MESSAGE = "message"  # someone else's message
    SERVER = "server"  # a result of an MCP server's tool
    TOOL = "tool"  # a result of a built-in tool that reads the outside world


@dataclass(frozen=True, slots=True)
class Follows:
    """The outside words a call follows: of what kind, and from whom or what."""

    kind: OutsideKind
    name: str

    @property
    def reason(self) -> str:
        """The card's sentence, in the current language."""
        text = {
            OutsideKind.MESSAGE: FOLLOWS_MESSAGE,
            OutsideKind.SERVER: FOLLOWS_SERVER,
            OutsideKind.TOOL: FOLLOWS_TOOL,
        }[self.kind]
        name = " ".join(self.name.split())[:NAME_CHARS] or "?"
        return _(text, name=name)

    def audit(self) -> dict[str, str]:
        return {"follows": self.kind.value, "from": self.name[:NAME_CHARS]}


class Relaxations:
    """Admins' relaxations of the rule, per channel and tool (without a store: in memory,
    for tests of the loop). Every change is audited through `audit`."""

    def __init__(self, store: ApprovalStore | None, audit: Audit) -> None:
        self.store = store
        self._audit = audit
        self._memory: set[tuple[int, str]] = set()

    async def of(self, channel_id: int) -> set[str]:
        if self.store is None:
            return {tool for channel, tool in self._memory if channel == channel_id}
        return await self.store.relaxed(channel_id)

    async def relaxed(self, channel_id: int, tool: str) -> bool:
        return tool in await self.of(channel_id)

    async def set(
        self,
        *,
        channel_id: int,
        place: str,
        tool: str,
        relaxed: bool,
        actor: str,
        surface: str,
        is_admin: bool,
    ) -> str:
        """Relax the rule for `tool` here (or, `relaxed=False`, restore it); why it was
        refused ("" when done). Every attempt is audited."""
        details: dict[str, Any] = {"tool": tool, "relaxed": relaxed, "channel_id": channel_id}
        if not is_admin:
            refusal = _("Only admins can change when this channel asks before a tool runs.")
            await self._audit(actor, "approval.trust", place, surface, details, allowed=False)
            return refusal
        if self.store is None:
            if relaxed:
                self._memory.add((channel_id, tool))
            else:
                self._memory.discard((channel_id, tool))
        else:
            await self.store.set_relaxed(channel_id, tool, relaxed, by=actor, now=datetime.now(UTC))
        await self._audit(actor, "approval.trust", place, surface, details, allowed=True)
        return ""
