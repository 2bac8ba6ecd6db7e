"""Token budgets (per user and per channel, per UTC day and month) and a message rate limit.

The engine asks `Limits.check` before a turn; a refusal is a sentence for the user.
Usage comes from the `usage` table the engine fills, so budgets hold across restarts and
replicas; the per-minute rate limit is counted in process (a sliding window per user).
A turn that starts under budget may end a little over it: budgets stop the next turn.
"""

from __future__ import annotations

import time
from collections import deque
from datetime import UTC, datetime

from bot.config import LimitSettings
from bot.domain import IncomingMessage
from bot.storage.admin import AdminStore


class Limits:
    def __init__(self, store: AdminStore, settings: LimitSettings) -> None:
        self.store = store
        self.settings = settings
        self._recent: dict[tuple[str, str], deque[float]] = {}

    def effective(self, overrides: dict[str, int]) -> dict[str, int]:
        """The global limits with a channel's overrides applied."""
        values = self.settings.model_dump()
        values.update({k: int(v) for k, v in overrides.items() if k in values})
        return values

    async def check(
        self, message: IncomingMessage, user_id: int, channel_id: int, overrides: dict[str, int]
    ) -> str | None:
        """None if the turn may run, else the reason to tell the user."""
        limits = self.effective(overrides)
        refusal = self._rate(message, limits["user_messages_per_minute"])
        if refusal:
            return refusal
        now = datetime.now(UTC)
        day_start = now.replace(hour=0, minute=0, second=0, microsecond=0)
        month_start = day_start.replace(day=1)
        if limits["user_daily_tokens"] or limits["user_monthly_tokens"]:
            day, month = await self.store.tokens_since(
                day_start=day_start, month_start=month_start, user_id=user_id
            )
            if limits["user_daily_tokens"] and day >= limits["user_daily_tokens"]:
                return (
                    f"You have used your daily budget of {limits['user_daily_tokens']:,} tokens "
                    "here. It resets at midnight UTC; an admin can raise it."
                )
            if limits["user_monthly_tokens"] and month >= limits["user_monthly_tokens"]:
                return (
                    f"You have used your monthly budget of {limits['user_monthly_tokens']:,} "
                    "tokens. It resets on the 1st (UTC); an admin can raise it."
                )
        if limits["channel_daily_tokens"] or limits["channel_monthly_tokens"]:
            day, month = await self.store.tokens_since(
                day_start=day_start, month_start=month_start, channel_id=channel_id
            )
            if limits["channel_daily_tokens"] and day >= limits["channel_daily_tokens"]:
                return (
                    f"This channel has used its daily budget of "
                    f"{limits['channel_daily_tokens']:,} tokens. It resets at midnight UTC; "
                    "an admin can raise it."
                )
            if limits["channel_monthly_tokens"] and month >= limits["channel_monthly_tokens"]:
                return (
                    f"This channel has used its monthly budget of "
                    f"{limits['channel_monthly_tokens']:,} tokens. It resets on the 1st (UTC); "
                    "an admin can raise it."
                )
        return None

    def _rate(self, message: IncomingMessage, per_minute: int) -> str | None:
        if not per_minute:
            return None
        key = (message.user.platform, message.user.platform_user_id)
        now = time.monotonic()
        recent = self._recent.setdefault(key, deque())
        while recent and now - recent[0] >= 60:
            recent.popleft()
        if len(recent) >= per_minute:
            wait = int(60 - (now - recent[0])) + 1
            return (
                f"You are sending messages faster than the limit of {per_minute} per minute. "
                f"Please wait about {wait} s and try again."
            )
        recent.append(now)
        if len(self._recent) > 10_000:  # forget idle users
            for idle in [k for k, v in self._recent.items() if not v or now - v[-1] >= 60]:
                del self._recent[idle]
        return None
