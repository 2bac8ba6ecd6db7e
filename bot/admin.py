"""Admin actions with their checks and their audit trail, shared by every surface.

Who counts as an admin is decided per platform by the adapter (Slack workspace admins,
Telegram chat administrators: asked from the platform and cached with `TTLCache`) plus
the platform-qualified ids of PARLEY_ADMINS, checked here. Every change and every refused
attempt goes to the audit log with who, what, where and from which surface.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Hashable, Sequence
from typing import Any, Generic, TypeVar

from bot.config import AdminSettings
from bot.domain import ChatRef, UserRef
from bot.i18n import N_, _
from bot.policy import ChannelToolPolicy, policy_key
from bot.storage.admin import AdminStore
from bot.toolkit import Tool, ToolRegistry

V = TypeVar("V")

NOT_ADMIN = N_("Only admins can change which tools this channel may use. Your attempt was logged.")
PROVIDER_NOT_ADMIN = N_("Only admins can choose this chat's provider. Your attempt was logged.")


def actor_id(user: UserRef) -> str:
    return f"{user.platform}:{user.platform_user_id}"


def place_of(chat: ChatRef) -> str:
    return f"{chat.platform}:{chat.platform_chat_id}"


class UnknownTool(ValueError):
    pass


class UnknownProvider(ValueError):
    pass


def provider_named(model: str | None) -> tuple[str, str]:
    """(provider name, model) of a channel's model `@name` or `@name:model`; ("", model)
    for a plain model name of the default provider."""
    if not model or not model.startswith("@"):
        return "", model or ""
    name, _colon, rest = model[1:].partition(":")
    return name, rest


class TTLCache(Generic[V]):
    """Remembers answers for `ttl` seconds (bounded; the oldest entries go first)."""

    def __init__(self, ttl: float, *, size: int = 10_000) -> None:
        self.ttl = ttl
        self.size = size
        self._items: dict[Hashable, tuple[float, V]] = {}

    async def get(self, key: Hashable, fetch: Callable[[], Awaitable[V]]) -> V:
        now = time.monotonic()
        hit = self._items.get(key)
        if hit is not None and now - hit[0] < self.ttl:
            return hit[1]
        value = await fetch()
        if len(self._items) >= self.size:
            for old in list(self._items)[: self.size // 10 or 1]:
                del self._items[old]
        self._items[key] = (now, value)
        return value

    def put(self, key: Hashable, value: V) -> None:
        self._items[key] = (time.monotonic(), value)

    def forget(self, key: Hashable) -> None:
        self._items.pop(key, None)


class Administration:
    def __init__(
        self,
        store: AdminStore,
        policy: ChannelToolPolicy,
        tools: ToolRegistry,
        settings: AdminSettings,
        *,
        providers: Sequence[str],
    ) -> None:
        self.store = store
        self.policy = policy
        self.tools = tools
        self.settings = settings
        # The providers of PARLEY_PROVIDERS_FILE a channel may name, the default first;
        # empty without the file (one provider, nothing to choose).
        self.providers = tuple(providers)

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

    # -- a channel's provider ------------------------------------------------------------

    def provider_of(self, model: str | None) -> str:
        """The provider answering a channel whose own model is `model` (an unknown name
        falls back to the default, as bot/llm/providers.py does); "" without the file."""
        name, _model = provider_named(model)
        if name in self.providers:
            return name
        return self.providers[0] if self.providers else ""

    def model_refusal(self, model: str) -> str | None:
        """Why a channel's model `model` cannot be saved, in the current language; None
        when it can (a model name, or `@name`/`@name:model` of a known provider)."""
        if not model.startswith("@"):
            return None
        name, _model = provider_named(model)
        if not self.providers:
            return _(
                "{model} names a provider, but this bot has only one (no "
                "PARLEY_PROVIDERS_FILE): write a model name, or leave it empty.",
                model=model,
            )
        if name not in self.providers:
            return self.unknown_provider(name)
        return None

    def unknown_provider(self, name: str) -> str:
        """The refusal of a provider name the file does not define, with the known ones."""
        return _(
            "There is no provider named {name}. Known providers: {names}.",
            name=name[:64],
            names=", ".join(self.providers),
        )

    async def set_provider(
        self,
        *,
        actor: str,
        channel_id: int,
        place: str,
        name: str | None,
        surface: str,
        is_admin: bool,
    ) -> bool:
        """Make provider `name` answer a channel (None: the default again). False (and
        audited) if refused."""
        details: dict[str, Any] = {"provider": name, "channel_id": channel_id}
        if not is_admin:
            await self.store.audit(
                actor=actor,
                action="channel.provider",
                place=place,
                surface=surface,
                allowed=False,
                details={**details, "reason": "not an admin"},
            )
            return False
        if name is not None and name not in self.providers:
            raise UnknownProvider(f"there is no provider named {name!r}")
        await self.store.set_channel_model(channel_id, f"@{name}" if name else None)
        await self.store.audit(
            actor=actor, action="channel.provider", place=place, surface=surface, details=details
        )
        return True
