"""The reference MCP servers, installed from PyPI and npm, as real parts: each through
Parley's MCP client, most of them through `parley chat` driven by the scripted model."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from bot.toolkit import ToolRegistry
from tests.tools.real_mcp_servers import everything_stdio
from tests.tools.test_mcp import load_config_from, wait_until
from tools.mcp import MCPServerLink


async def test_a_task_only_tool_of_server_everything_is_not_offered_and_logged_once(
    everything_package: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    registry = ToolRegistry()
    [config] = load_config_from({"everything": everything_stdio(everything_package)})
    link = MCPServerLink(config, registry, ping_interval=0.1)
    link.start()
    try:
        await link.wait_listed(30)
        assert link.available, link.last_error
        assert registry.get("everything_get-sum") is not None
        # `execution.taskSupport: "required"`: it could only fail, so it is not there.
        assert registry.get("everything_simulate-research-query") is None
        await wait_until(lambda: link.listings >= 3)  # listed again: still one log line
    finally:
        await link.stop()
    [line] = [r for r in caplog.records if "runs only as a task" in r.getMessage()]
    assert "simulate-research-query" in line.getMessage()
