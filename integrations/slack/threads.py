"""Which channel threads Parley takes part in: those it answered in.

A reply in such a thread is for Parley without a mention. The answer is remembered in
this process (bounded, the least recently used go first) and otherwise asked of the store,
so a thread answered before a restart still counts.
"""

from __future__ import annotations

from collections import OrderedDict

from bot.chat.desk import Desk
from bot.domain import ChatKind, ChatRef
from integrations.slack.convert import PLATFORM

KNOWN_THREADS = 10_000


class KnownThreads:
    def __init__(self, desk: Desk, *, size: int = KNOWN_THREADS) -> None:
        self.desk = desk
        self.size = size
        self._threads: OrderedDict[tuple[str, str], None] = OrderedDict()

    async def takes_part(self, channel: str, thread_ts: str) -> bool:
        """Whether Parley takes part in this thread: answered in it, per memory or store."""
        key = (channel, thread_ts)
        if key in self._threads:
            return True
        if await self.desk.knows_thread(ChatRef(PLATFORM, channel, ChatKind.CHANNEL), thread_ts):
            self.remember(channel, thread_ts)
            return True
        return False

    def remember(self, channel: str, thread_ts: str) -> None:
        key = (channel, thread_ts)
        self._threads[key] = None
        self._threads.move_to_end(key)
        while len(self._threads) > self.size:
            self._threads.popitem(last=False)
