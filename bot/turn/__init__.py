"""The turn: one incoming message in, one streamed answer out.

The engine's loop (engine.py) with what it needs and nothing of chat or the web: which
turns wait for each other and which run (locks.py), the model's context and system
prompt (context.py), the rounds of a turn and how it ends (rounds.py), one streamed model
answer (answer.py), one round of tool calls (tool_round.py) and which tools are offered
(tool_choice.py),
voice notes and pictures made ready (media.py), the journal that lets a turn outlive its
process (durable.py), and rolling summaries of long conversations (summaries.py).

The names below are loaded when first used, so importing one module of the package does
not import the rest.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bot.turn.answer import ModelAnswer
    from bot.turn.context import build_context
    from bot.turn.durable import ProcessLease, TurnRecovery, TurnTicket
    from bot.turn.engine import Engine
    from bot.turn.locks import KeyedLocks, RunningTurns, conversation_key
    from bot.turn.media import MediaReader, PreparedTurn
    from bot.turn.rounds import TurnOutcome, TurnRounds
    from bot.turn.summaries import Summariser
    from bot.turn.tool_choice import most_relevant
    from bot.turn.tool_round import PreparedRound, prepare_round

_HOME = {
    "Engine": "bot.turn.engine",
    "KeyedLocks": "bot.turn.locks",
    "MediaReader": "bot.turn.media",
    "ModelAnswer": "bot.turn.answer",
    "PreparedRound": "bot.turn.tool_round",
    "PreparedTurn": "bot.turn.media",
    "ProcessLease": "bot.turn.durable",
    "Summariser": "bot.turn.summaries",
    "RunningTurns": "bot.turn.locks",
    "TurnOutcome": "bot.turn.rounds",
    "TurnRecovery": "bot.turn.durable",
    "TurnRounds": "bot.turn.rounds",
    "TurnTicket": "bot.turn.durable",
    "build_context": "bot.turn.context",
    "conversation_key": "bot.turn.locks",
    "most_relevant": "bot.turn.tool_choice",
    "prepare_round": "bot.turn.tool_round",
}

__all__ = [
    "Engine",
    "KeyedLocks",
    "MediaReader",
    "ModelAnswer",
    "PreparedRound",
    "PreparedTurn",
    "ProcessLease",
    "RunningTurns",
    "Summariser",
    "TurnOutcome",
    "TurnRecovery",
    "TurnRounds",
    "TurnTicket",
    "build_context",
    "conversation_key",
    "most_relevant",
    "prepare_round",
]


def __getattr__(name: str) -> Any:
    home = _HOME.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(home), name)
