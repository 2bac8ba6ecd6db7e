"""`MCPTools`: every configured MCP server, started and stopped together."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable

from bot.toolkit import ToolRegistry
from tools.mcp.config import MCPServerConfig
from tools.mcp.link import MCPServerLink
from tools.mcp.transport import quiet_sdk_tracebacks

log = logging.getLogger("tools.mcp")


class MCPTools:
    """Every configured MCP server, started and stopped together."""

    def __init__(
        self,
        configs: Iterable[MCPServerConfig],
        registry: ToolRegistry,
        *,
        start_timeout: float = 10.0,
        initial_backoff: float = 1.0,
        max_backoff: float = 60.0,
        probe_timeout: float = 5.0,
        hard_timeout: float = 600.0,
    ) -> None:
        self.links = [
            MCPServerLink(
                config,
                registry,
                initial_backoff=initial_backoff,
                max_backoff=max_backoff,
                probe_timeout=probe_timeout,
                hard_timeout=hard_timeout,
            )
            for config in configs
        ]
        self._start_timeout = start_timeout
        quiet_sdk_tracebacks()

    async def start(self) -> None:
        """Connect to every server and wait (up to the start timeout) for their tools.

        A server that is down at start does not stop Parley: it keeps being retried."""
        for link in self.links:
            link.start()
        await asyncio.gather(*(link.wait_listed(self._start_timeout) for link in self.links))
        for link in self.links:
            if not link.available:
                log.warning(
                    "MCP server %s is not available (%s); retrying in the background",
                    link.config.name,
                    link.last_error or "no answer yet",
                )

    async def aclose(self) -> None:
        await asyncio.gather(*(link.stop() for link in self.links))

    def status(self) -> dict[str, bool]:
        return {link.config.name: link.available for link in self.links}
