"""Admin actions with their checks and their audit trail, shared by every surface.

Who counts as an admin is decided per platform by the adapter (Slack workspace admins,
Telegram chat administrators: asked from the platform and cached in bot/chat/cache.py) plus
the platform-qualified ids of PARLEY_ADMINS, checked here. Every change and every refused
attempt goes to the audit log with who, what, where and from which surface.
"""

from __future__ import annotations

from typing import Any

from bot.config import AdminSettings
from bot.domain import ChatRef, UserRef
from bot.policy.tools import ChannelToolPolicy, policy_key
from bot.storage.admin import AdminStore
from bot.toolkit import Tool, ToolRegistry


def actor_id(user: UserRef) -> str:
    return f"{user.platform}:{user.platform_user_id}"


def place_of(chat: ChatRef) -> str:
    return f"{chat.platform}:{chat.platform_chat_id}"


class UnknownTool(ValueError):
    pass


class Administration:
    def __init__(
        self,
        store: AdminStore,
        policy: ChannelToolPolicy,
        tools: ToolRegistry,
        settings: AdminSettings,
    ) -> None:
        self.store = store
        self.policy = policy
        self.tools = tools
        self.settings = settings

    def is_listed(self, user: UserRef) -> bool:
        """Whether PARLEY_ADMINS names this user."""
        return actor_id(user) in self.settings.admin_ids

    def toggle_names(self) -> list[str]:
        """Every name a channel can switch: each tool, and each MCP server as a whole."""
        names = [item.name for item in self.tools]
        groups = sorted({key for item in self.tools if (key := policy_key(item)) is not None})
        return names + groups

    async def overview(self, channel_id: int, chat: ChatRef) -> list[tuple[Tool, bool]]:
        config = await self.store.channel_config(channel_id)
        return [(item, self.policy.is_enabled(item, chat.kind, config)) for item in self.tools]

    async def set_tool(
        self,
        *,
        actor: str,
        channel_id: int,
        place: str,
        tool: str,
        enabled: bool,
        surface: str,
        is_admin: bool,
    ) -> bool:
        """Switch a tool (or `mcp:<server>`) for a channel. False (and audited) if refused."""
        details: dict[str, Any] = {"tool": tool, "enabled": enabled, "channel_id": channel_id}
        if not is_admin:
            await self.store.audit(
                actor=actor,
                action="tool.toggle",
                place=place,
                surface=surface,
                allowed=False,
                details={**details, "reason": "not an admin"},
            )
            return False
        if tool not in self.toggle_names():
            raise UnknownTool(f"there is no tool named {tool!r}")
        await self.store.set_tool(channel_id, tool, enabled, actor)
        await self.store.audit(
            actor=actor, action="tool.toggle", place=place, surface=surface, details=details
        )
        return True
