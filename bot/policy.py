"""Which tools a channel may use.

The engine asks the policy once per turn for the tools to offer, and refuses any call
to a tool outside that set, even one the model names without being offered it.
`AllowAllTools` is the policy until per-channel administration exists.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from bot.domain import IncomingMessage
from bot.toolkit import Tool


class ToolPolicy(Protocol):
    async def enabled_tools(
        self, message: IncomingMessage, channel_id: int, tools: Sequence[Tool]
    ) -> list[Tool]:
        """The subset of `tools` this message's channel may use."""
        ...


class AllowAllTools:
    """Every registered tool is enabled everywhere."""

    async def enabled_tools(
        self, message: IncomingMessage, channel_id: int, tools: Sequence[Tool]
    ) -> list[Tool]:
        return list(tools)
