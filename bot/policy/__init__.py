"""Policy: what a channel may do, and who may change it.

Which tools a channel may use and each channel's prompt and model (tools.py), the token
budgets, rate limit and turns in flight (limits.py), and the admin actions with their
checks and audit trail (admin.py).

The names below are loaded when first used, so importing one module of the package does
not import the rest.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bot.policy.admin import Administration, UnknownTool, actor_id, place_of
    from bot.policy.limits import Admission, Limits, Refusal
    from bot.policy.tools import (
        AllowAllTools,
        ChannelProfile,
        ChannelToolPolicy,
        ToolPolicy,
        for_scheduled_turn,
    )

_HOME = {
    "Administration": "bot.policy.admin",
    "Admission": "bot.policy.limits",
    "AllowAllTools": "bot.policy.tools",
    "ChannelProfile": "bot.policy.tools",
    "ChannelToolPolicy": "bot.policy.tools",
    "Limits": "bot.policy.limits",
    "Refusal": "bot.policy.limits",
    "ToolPolicy": "bot.policy.tools",
    "UnknownTool": "bot.policy.admin",
    "actor_id": "bot.policy.admin",
    "for_scheduled_turn": "bot.policy.tools",
    "place_of": "bot.policy.admin",
}

__all__ = [
    "Administration",
    "Admission",
    "AllowAllTools",
    "ChannelProfile",
    "ChannelToolPolicy",
    "Limits",
    "Refusal",
    "ToolPolicy",
    "UnknownTool",
    "actor_id",
    "for_scheduled_turn",
    "place_of",
]


def __getattr__(name: str) -> Any:
    home = _HOME.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(home), name)
