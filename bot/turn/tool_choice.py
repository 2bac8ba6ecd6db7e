"""Which of a channel's enabled tools the model is offered when there are too many.

A model offered hundreds of MCP tools picks worse and costs more per call. When the
enabled tools exceed PARLEY_MAX_OFFERED_TOOLS, the built-in tools are always offered and
the rest of the budget goes to the MCP tools whose name and description share the most
words with the message and the recent history (words weighted by how rare they are among
the candidates, a match in the name counting thrice). Ties keep the registry's order.
No index or model is involved: it is a few set operations per tool, per turn.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence

from bot.toolkit import Tool

_WORD = re.compile(r"[^\W_]{3,}", re.UNICODE)
_COMMON = frozenset(
    {
        "the",
        "and",
        "for",
        "with",
        "from",
        "this",
        "that",
        "what",
        "when",
        "where",
        "which",
        "into",
        "your",
        "you",
        "are",
        "can",
        "how",
        "please",
        "tool",
        "tools",
        "use",
        "using",
        "server",
        "mcp",
    }
)
NAME_WEIGHT = 3.0


def words_of(text: str) -> set[str]:
    return {word for word in _WORD.findall(text.lower()) if word not in _COMMON}


def relevance(item: Tool, asked: set[str], rarity: dict[str, float]) -> float:
    name = words_of(item.name.replace("_", " ").replace("-", " "))
    described = words_of(item.description)
    return sum(
        rarity.get(word, 0.0) * (NAME_WEIGHT if word in name else 1.0)
        for word in asked & (name | described)
    )


def most_relevant(tools: Sequence[Tool], text: str, budget: int) -> list[Tool]:
    """`tools` if they fit the budget; otherwise every built-in tool and the most
    relevant others to `text`, up to `budget` in all, in their original order."""
    if len(tools) <= budget:
        return list(tools)
    kept = [item for item in tools if item.source == "builtin"]
    candidates = [item for item in tools if item.source != "builtin"]
    room = max(budget - len(kept), 0)
    asked = words_of(text)
    seen: dict[str, int] = {}
    for item in candidates:
        for word in words_of(f"{item.name.replace('_', ' ')} {item.description}") & asked:
            seen[word] = seen.get(word, 0) + 1
    rarity = {word: math.log(1 + len(candidates) / count) for word, count in seen.items()}
    ranked = sorted(
        range(len(candidates)),
        key=lambda index: (-relevance(candidates[index], asked, rarity), index),
    )
    chosen = {id(candidates[index]) for index in ranked[:room]}
    return [item for item in tools if item.source == "builtin" or id(item) in chosen]
