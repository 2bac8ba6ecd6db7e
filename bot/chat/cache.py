"""`TTLCache`: answers the chat side asks the platform or the database for, kept a while.

Who is an admin of a chat (asked of Slack or Telegram), which language a user writes in:
both change rarely and are read on every turn, so they are remembered for a few seconds
to minutes (each caller's setting), and bounded so a flood of users cannot grow them.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

V = TypeVar("V")


class TTLCache(Generic[V]):
    """Remembers answers for `ttl` seconds (bounded; the oldest entries go first)."""

    def __init__(self, ttl: float, *, size: int = 10_000) -> None:
        self.ttl = ttl
        self.size = size
        self._items: dict[Hashable, tuple[float, V]] = {}

    async def get(self, key: Hashable, fetch: Callable[[], Awaitable[V]]) -> V:
        now = time.monotonic()
        hit = self._items.get(key)
        if hit is not None and now - hit[0] < self.ttl:
            return hit[1]
        value = await fetch()
        if len(self._items) >= self.size:
            for old in list(self._items)[: self.size // 10 or 1]:
                del self._items[old]
        self._items[key] = (now, value)
        return value

    def put(self, key: Hashable, value: V) -> None:
        self._items[key] = (time.monotonic(), value)

    def forget(self, key: Hashable) -> None:
        self._items.pop(key, None)
