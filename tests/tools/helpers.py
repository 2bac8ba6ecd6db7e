"""Calling a tool the way the engine does: a ToolCall, a ToolContext, `Tool.run`."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from bot.domain import ChatKind, ChatRef, ToolCall, ToolContext, ToolResult, ToolServices, UserRef
from bot.toolkit import Tool

ALICE = UserRef("test", "alice", "Alice")
DM = ChatRef("test", "dm-alice", ChatKind.DM)


def context(
    services: ToolServices,
    *,
    timezone: str = "UTC",
    now: datetime | None = None,
    user: UserRef = ALICE,
    chat: ChatRef = DM,
) -> ToolContext:
    return ToolContext(
        user=user,
        chat=chat,
        timezone=timezone,
        now=now or datetime.now(UTC),
        services=services,
    )


async def call(item: Tool, arguments: dict[str, Any], ctx: ToolContext) -> ToolResult:
    return await item.run(ToolCall("call_1", item.name, arguments), ctx, default_timeout=10)
