"""`ActivityRecorder`: what each turn did, kept in the database for the console.

An `Observer` like the metrics, but per turn: the model and tool calls a turn makes are
gathered under its turn id (the engine's context variable), and when it finishes one
`turn_log` row is queued. Rows are written in batches a few seconds later (one insert
for many turns, off the turn's path), when the console asks, and at shutdown.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Any

from bot.domain import Usage
from bot.ops.observe import TURN_ID, Observer
from bot.storage.activity import ActivityStore
from bot.storage.models import utcnow

log = logging.getLogger(__name__)

FLUSH_AFTER_SECONDS = 5.0  # how stale the overview may be for turns of another replica
FLUSH_AT_ROWS = 200


@dataclass
class _Turn:
    models: dict[str, list[int]] = field(default_factory=dict)
    tools: dict[str, list[int]] = field(default_factory=dict)


class ActivityRecorder(Observer):
    def __init__(self, store: ActivityStore, *, vendor: str, keep_days: int) -> None:
        self.store = store
        self.vendor = vendor
        self.keep_days = keep_days
        self._open: dict[str, _Turn] = {}
        self._pending: list[dict[str, Any]] = []
        self._timer: asyncio.TimerHandle | None = None
        self._flushing: set[asyncio.Task[None]] = set()
        self._lock = asyncio.Lock()
        self.approvals_waiting = 0  # in this process: confirmations are answered in process

    def turn_started(self) -> None:
        self._open[TURN_ID.get()] = _Turn()

    def llm_call(self, model: str, usage: Usage, *, failed: bool) -> None:
        turn = self._open.get(TURN_ID.get())
        if turn is not None:
            _tally(turn.models, model, failed)

    def tool_call(self, tool: str, *, failed: bool) -> None:
        turn = self._open.get(TURN_ID.get())
        if turn is not None:
            _tally(turn.tools, tool, failed)

    def approval_waiting(self, change: int) -> None:
        self.approvals_waiting = max(0, self.approvals_waiting + change)

    def turn_finished(self, platform: str, outcome: str, seconds: float) -> None:
        turn_id = TURN_ID.get()
        turn = self._open.pop(turn_id, None) or _Turn()
        # A plain dict per turn: a model instance would cost ~50 µs of validation each.
        self._pending.append(
            {
                "turn_id": turn_id,
                "finished_at": utcnow(),
                "platform": platform or "none",
                "outcome": outcome,
                "seconds": seconds,
                "vendor": self.vendor,
                "models": turn.models,
                "tools": turn.tools,
                "error": _describe(turn) if outcome != "ok" else "",
            }
        )
        self._schedule()

    def _schedule(self) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return  # no loop: the next flush() takes it
        if len(self._pending) >= FLUSH_AT_ROWS:
            self._flush_soon()
        elif self._timer is None:
            self._timer = loop.call_later(FLUSH_AFTER_SECONDS, self._flush_soon)

    def _flush_soon(self) -> None:
        self._timer = None
        task = asyncio.get_running_loop().create_task(self.flush())
        self._flushing.add(task)
        task.add_done_callback(self._flushing.discard)

    async def flush(self) -> None:
        """Write the queued rows now (the console calls it before it reads)."""
        async with self._lock:
            rows, self._pending = self._pending, []
            if not rows:
                return
            try:
                await self.store.record(rows, keep_days=self.keep_days)
            except Exception as exc:  # the overview loses these turns; the turns are fine
                log.warning("could not record %d turn(s) for the overview: %s", len(rows), exc)

    async def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._flushing:
            await asyncio.wait(set(self._flushing))
        await self.flush()


def _tally(counts: dict[str, list[int]], name: str, failed: bool) -> None:
    calls, failures = counts.get(name, [0, 0])
    counts[name] = [calls + 1, failures + int(failed)]


def _describe(turn: _Turn) -> str:
    failed_models = [name for name, (_, failures) in turn.models.items() if failures]
    if failed_models:
        return f"the model failed ({', '.join(failed_models)})"
    failed_tools = [name for name, (_, failures) in turn.tools.items() if failures]
    if failed_tools:
        return f"failed after tool errors ({', '.join(failed_tools)})"
    return "failed (the log has the details under this turn id)"
