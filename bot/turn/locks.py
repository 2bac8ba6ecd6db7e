"""Which turns wait for each other: one conversation's turns never interleave."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Hashable
from contextlib import asynccontextmanager

from bot.domain import IncomingMessage


def conversation_key(message: IncomingMessage) -> tuple[str, str, str, str]:
    """What identifies a conversation before the database is asked: turns with the same
    key are serialised."""
    return (
        message.platform,
        message.chat.platform_chat_id,
        message.thread_key,
        message.user.platform_user_id,
    )


class KeyedLocks:
    """One asyncio.Lock per key, dropped when nobody holds or waits for it."""

    def __init__(self) -> None:
        self._locks: dict[Hashable, tuple[asyncio.Lock, int]] = {}

    @asynccontextmanager
    async def hold(self, key: Hashable) -> AsyncIterator[None]:
        lock, users = self._locks.get(key, (None, 0))
        if lock is None:
            lock = asyncio.Lock()
        self._locks[key] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._locks[key]
            if users <= 1:
                del self._locks[key]
            else:
                self._locks[key] = (lock, users - 1)

    async def idle(self, key: Hashable) -> None:
        """Return once nobody who holds or waits for `key` now does (taking it for no
        time): work that must follow a turn without delaying the next one."""
        async with self.hold(key):
            pass

    def __len__(self) -> int:
        return len(self._locks)


class RunningTurns:
    """The turns running now: how many, which conversation each runs in, and which of
    them their users asked to stop."""

    def __init__(self) -> None:
        self.in_flight = 0
        self._tasks: set[asyncio.Task[object]] = set()
        self._running: dict[tuple[str, str, str, str], asyncio.Task[object]] = {}
        self._stopping: set[asyncio.Task[object]] = set()
        self._idle = asyncio.Event()
        self._idle.set()

    def started(self, task: asyncio.Task[object] | None) -> None:
        if task is not None:
            self._tasks.add(task)
        self.in_flight += 1
        self._idle.clear()

    def running(self, key: tuple[str, str, str, str], task: asyncio.Task[object] | None) -> None:
        """The turn `task` now runs in the conversation `key` (it holds the lock)."""
        if task is not None:
            self._running[key] = task

    def ended(self, key: tuple[str, str, str, str], task: asyncio.Task[object] | None) -> None:
        if task is not None:
            if self._running.get(key) is task:
                del self._running[key]
            self._stopping.discard(task)
            self._tasks.discard(task)
        self.in_flight -= 1
        if self.in_flight == 0:
            self._idle.set()

    async def drain(self, within: float) -> bool:
        """Wait until no turn runs (at most `within` seconds); True if none does."""
        try:
            await asyncio.wait_for(self._idle.wait(), within)
        except TimeoutError:
            return False
        return True

    def cancel_all(self) -> int:
        """Cancel the turns still running; returns how many."""
        tasks = [task for task in self._tasks if not task.done()]
        for task in tasks:
            task.cancel()
        return len(tasks)

    def stop(self, key: tuple[str, str, str, str]) -> bool:
        """Stop the turn running in the conversation `key`, at its user's request; False
        if none runs."""
        task = self._running.get(key)
        if task is None or task.done() or task in self._stopping:
            return False
        self._stopping.add(task)
        task.cancel()
        return True

    def running_in(self, platform: str, chat: str, thread_key: str) -> bool:
        """Whether any user's turn runs in this chat and thread now."""
        return any(
            key[:3] == (platform, chat, thread_key) and not task.done()
            for key, task in self._running.items()
        )

    def stop_requested(self) -> bool:
        """Whether the cancellation being handled is a user's stop (and take it)."""
        task = asyncio.current_task()
        if task is None or task not in self._stopping:
            return False
        self._stopping.discard(task)
        task.uncancel()
        return True
