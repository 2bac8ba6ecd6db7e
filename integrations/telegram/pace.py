"""`ChatPace` spaces the optional calls of a chat (streaming edits and drafts): a call that
comes too soon is skipped, not queued, so a chat never sees more than one per interval
however many turns run in it, and a 429 pushes the next slot back by its `retry_after`.
Groups also get Telegram's 20 messages a minute (edits count, PROTOCOLS.md): previews
stop a few short of it, so the answers themselves always find a slot, and a required
call waits for one.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque


class ChatPace:
    """The earliest time each chat may get its next optional (skippable) call, and each
    group's calls of the last minute."""

    def __init__(
        self,
        interval: float,
        *,
        group_limit: int = 20,
        group_window: float = 60.0,
        group_preview_limit: int = 15,
    ) -> None:
        self.interval = interval
        self.group_limit = group_limit
        self.group_window = group_window
        self.group_preview_limit = group_preview_limit
        self._next: dict[int, float] = {}
        self._group_calls: dict[int, deque[float]] = {}

    def take(self, chat_id: int, interval: float | None = None) -> bool:
        """Claim the chat's slot now if it is free; False means "skip this update"."""
        now = time.monotonic()
        if now < self._next.get(chat_id, 0.0):
            return False
        recent = self._recent(chat_id, now)
        if recent is not None and len(recent) >= self.group_preview_limit:
            return False  # the rest of this minute is kept for answers
        self._next[chat_id] = now + (self.interval if interval is None else interval)
        if recent is not None:
            recent.append(now)
        if len(self._next) > 10_000:
            self._next = {k: v for k, v in self._next.items() if v > now}
            self._group_calls = {k: v for k, v in self._group_calls.items() if v}
        return True

    def ready_in(self, chat_id: int) -> float:
        """Seconds until `take` could succeed for the chat (0 if it could now)."""
        now = time.monotonic()
        at = self._next.get(chat_id, 0.0)
        recent = self._recent(chat_id, now)
        if recent is not None and len(recent) >= self.group_preview_limit:
            # A group past its preview share: until enough of its minute has aged out.
            at = max(at, recent[len(recent) - self.group_preview_limit] + self.group_window)
        return max(0.0, at - now)

    def touch(self, chat_id: int, interval: float | None = None) -> None:
        """A call just finished: count the interval from now, since Telegram counts from
        arrival and a slow request may have arrived late."""
        after = time.monotonic() + (self.interval if interval is None else interval)
        self._next[chat_id] = max(self._next.get(chat_id, 0.0), after)

    def back_off(self, chat_id: int, seconds: float) -> None:
        """Telegram said wait: no optional call to this chat for `seconds`."""
        self._next[chat_id] = max(self._next.get(chat_id, 0.0), time.monotonic() + seconds)

    async def acquire(self, chat_id: int) -> None:
        """Wait for the chat's next slot and take it (for calls that must not be skipped)."""
        now = time.monotonic()
        at = max(now, self._next.get(chat_id, 0.0))
        recent = self._recent(chat_id, now)
        if recent is not None:
            if len(recent) >= self.group_limit:
                # The slot the oldest call of the counted minute frees.
                at = max(at, recent[len(recent) - self.group_limit] + self.group_window)
            recent.append(at)
        self._next[chat_id] = at + self.interval
        if at > now:
            await asyncio.sleep(at - now)

    def _recent(self, chat_id: int, now: float) -> deque[float] | None:
        """A group's calls in the window ending now (None for a private chat: users have
        positive ids, groups negative ones)."""
        if chat_id > 0:
            return None
        recent = self._group_calls.setdefault(chat_id, deque())
        while recent and now - recent[0] >= self.group_window:
            recent.popleft()
        return recent
