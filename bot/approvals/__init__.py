"""Approvals: whether a tool call may run, asked of the person who asked for it.

The gate (gate.py) decides by the channel's rule and the user's standing approvals and
asks through the surface; cards.py renders an approval card as text within a platform's
limit; a tool's own questions mid-call (an MCP server's elicitation) are held in
questions.py, their values checked in forms.py.

The names below are loaded when first used, so importing one module of the package does
not import the rest.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bot.approvals.cards import full_card_text, render_card, split_parts
    from bot.approvals.forms import NotAValue
    from bot.approvals.gate import ApprovalQuestion, Approvals, Mode
    from bot.approvals.questions import InputPress, InputQuestions, InputStep, PendingInput

_HOME = {
    "ApprovalQuestion": "bot.approvals.gate",
    "Approvals": "bot.approvals.gate",
    "InputPress": "bot.approvals.questions",
    "InputQuestions": "bot.approvals.questions",
    "InputStep": "bot.approvals.questions",
    "Mode": "bot.approvals.gate",
    "NotAValue": "bot.approvals.forms",
    "PendingInput": "bot.approvals.questions",
    "full_card_text": "bot.approvals.cards",
    "render_card": "bot.approvals.cards",
    "split_parts": "bot.approvals.cards",
}

__all__ = [
    "ApprovalQuestion",
    "Approvals",
    "InputPress",
    "InputQuestions",
    "InputStep",
    "Mode",
    "NotAValue",
    "PendingInput",
    "full_card_text",
    "render_card",
    "split_parts",
]


def __getattr__(name: str) -> Any:
    home = _HOME.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(home), name)
