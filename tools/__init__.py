"""The tools Parley ships. The composition root registers `ALL_TOOLS`."""

from bot.toolkit import Tool
from tools.clock import get_current_time

ALL_TOOLS: tuple[Tool, ...] = (get_current_time,)

__all__ = ["ALL_TOOLS"]
