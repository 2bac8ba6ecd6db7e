"""Which tools a channel may use, and each channel's prompt and model.

The engine asks the policy once per turn for the tools to offer, and refuses any call
to a tool outside that set, even one the model names without being offered it.

`ChannelToolPolicy` decides per channel, in this order:

1. an admin's choice for the tool itself (a `channel_tools` row named like the tool);
2. an admin's choice for the tool's MCP server (a row named `mcp:<server>`);
3. the default for the platform's chat kind (PARLEY_DEFAULT_TOOLS_DM / _GROUP):
   "all", "none" or a comma list of tool names and `mcp:<server>` entries.
   Side-effecting tools are only on by default when the list names them (or their
   server): "all" never switches on a tool that acts on the world.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from bot.config import AdminSettings
from bot.domain import ChatKind, IncomingMessage
from bot.storage.channels import ChannelConfig, ChannelStore
from bot.toolkit import Tool


@dataclass(frozen=True, slots=True)
class ChannelProfile:
    """A channel's own system prompt, model, limits and whether its model sees pictures
    (None/empty: the global ones)."""

    system_prompt: str | None = None
    model: str | None = None
    limits: dict[str, int] = field(default_factory=dict)
    vision: bool | None = None


class ToolPolicy(Protocol):
    async def enabled_tools(
        self, message: IncomingMessage, channel_id: int, tools: Sequence[Tool]
    ) -> list[Tool]:
        """The subset of `tools` this message's channel may use."""
        ...

    async def profile(self, channel_id: int) -> ChannelProfile:
        """The channel's own prompt and model, if admins set them."""
        ...


class AllowAllTools:
    """Every registered tool is enabled everywhere (for tests of other parts)."""

    async def enabled_tools(
        self, message: IncomingMessage, channel_id: int, tools: Sequence[Tool]
    ) -> list[Tool]:
        return list(tools)

    async def profile(self, channel_id: int) -> ChannelProfile:
        return ChannelProfile()


SCHEDULED_TURN_REFUSAL = (
    "{name} is not available in a scheduled follow-up: a follow-up cannot create or "
    "cancel reminders. Tell the user they can ask for it in a message of their own."
)


def for_scheduled_turn(tools: Sequence[Tool]) -> tuple[list[Tool], dict[str, str]]:
    """The tools a scheduled turn (a follow-up) is offered, and those it is refused with
    the sentence the model reads: a follow-up that could create reminders could copy
    itself without bound, and one that could cancel them could undo the user's plans."""
    offered = [item for item in tools if not item.scheduling]
    withheld = {
        item.name: SCHEDULED_TURN_REFUSAL.format(name=item.name)
        for item in tools
        if item.scheduling
    }
    return offered, withheld


def policy_key(item: Tool) -> str | None:
    """The name of the group a tool belongs to (`mcp:<server>`), or None for a built-in."""
    return item.source if item.source.startswith("mcp:") else None


class ChannelToolPolicy:
    """Admins' choices in the database over defaults from settings."""

    def __init__(self, store: ChannelStore, settings: AdminSettings) -> None:
        self.store = store
        self.defaults = {
            "dm": _parse_default(settings.default_tools_dm),
            "group": _parse_default(settings.default_tools_group),
        }

    async def enabled_tools(
        self, message: IncomingMessage, channel_id: int, tools: Sequence[Tool]
    ) -> list[Tool]:
        config = await self.store.channel_config(channel_id)
        return [item for item in tools if self.is_enabled(item, message.chat.kind, config)]

    async def profile(self, channel_id: int) -> ChannelProfile:
        config = await self.store.channel_config(channel_id)
        return ChannelProfile(config.system_prompt, config.model, config.limits, config.vision)

    def is_enabled(self, item: Tool, kind: ChatKind | str, config: ChannelConfig) -> bool:
        if item.name in config.tools:
            return config.tools[item.name]
        group = policy_key(item)
        if group is not None and group in config.tools:
            return config.tools[group]
        return self.default(item, kind)

    def default(self, item: Tool, kind: ChatKind | str) -> bool:
        everything, named = self.defaults["dm" if str(kind) == "dm" else "group"]
        group = policy_key(item)
        if item.name in named or (group is not None and group in named):
            return True
        return everything and not item.side_effect


def _parse_default(value: str) -> tuple[bool, frozenset[str]]:
    """("all"/"none"/list) as (everything harmless on, the names switched on)."""
    names = {item.strip() for item in value.split(",") if item.strip()}
    everything = "all" in {name.lower() for name in names}
    names = {name for name in names if name.lower() not in ("all", "none")}
    return everything, frozenset(names)
