"""One scheduler among replicas: a leader lease in the database.

Every replica runs `Leadership`: every `renew_seconds` it tries to take or renew the
row `leases(name='scheduler')` with one statement,

    INSERT ... ON CONFLICT (name) DO UPDATE SET holder = me, expires_at = now + ttl
        WHERE leases.holder = me OR leases.expires_at < now
    RETURNING holder

so exactly one replica holds it while it keeps renewing. The holder runs the reminder
scheduler; a replica that fails to renew (lost, or the database is unreachable) stops its
scheduler at once, before its lease can run out. A replica that dies without releasing
leaves the row to expire; another takes over after at most `ttl`, and the reminders' own
claims (`status = 'pending'` guards) make the hand-over deliver each firing once.
Clocks of the replicas are assumed to agree to well under `ttl - renew`.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable
from datetime import timedelta

from bot.storage.leases import LeaseStore
from bot.storage.models import utcnow

log = logging.getLogger(__name__)


class LeaderLease:
    """Take, renew and release one named lease."""

    def __init__(self, leases: LeaseStore, name: str, ttl_seconds: float) -> None:
        self.leases = leases
        self.name = name
        self.ttl = timedelta(seconds=ttl_seconds)
        self.holder = f"{uuid.uuid4().hex[:12]}"

    async def acquire(self) -> bool:
        """Take the lease if it is free or expired, renew it if it is ours."""
        now = utcnow()
        return await self.leases.take(self.name, self.holder, now=now, until=now + self.ttl)

    async def release(self) -> None:
        await self.leases.release(self.name, self.holder)


class Leadership:
    """Runs `on_gain` when this replica becomes leader and `on_loss` when it stops being."""

    def __init__(
        self,
        lease: LeaderLease,
        *,
        renew_seconds: float,
        on_gain: Callable[[], Awaitable[object]],
        on_loss: Callable[[], Awaitable[object]],
        on_renew: Callable[[], Awaitable[object]] | None = None,
    ) -> None:
        self.lease = lease
        self.renew_seconds = renew_seconds
        self.on_gain = on_gain
        self.on_loss = on_loss
        self.on_renew = on_renew
        self.leader = False
        self.running = False
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Try once now (a lone replica leads from its first second), then keep trying."""
        self.running = True
        await self._step()
        self._task = asyncio.create_task(self._loop(), name="leadership")

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self.renew_seconds)
            await self._step()

    async def _step(self) -> None:
        try:
            held = await self.lease.acquire()
        except Exception as exc:  # database away: we cannot know, so we must not lead
            log.warning("scheduler lease: renewing failed (%s)", exc)
            held = False
        if held and not self.leader:
            log.info("scheduler lease taken by %s: reminders run here", self.lease.holder)
            # Leader from the moment the lease is ours: whoever sees the scheduler running
            # must also see `leader` (readiness reports both).
            self.leader = True
            try:
                await self.on_gain()
            except Exception:
                log.exception("the scheduler did not start; trying again at the next renewal")
                self.leader = False
                await self._lose()
                return
        elif not held and self.leader:
            log.warning("scheduler lease lost: stopping the reminder scheduler here")
            self.leader = False
            await self._lose()
        elif held and self.on_renew is not None:
            try:
                await self.on_renew()
            except Exception as exc:
                log.warning("scheduler lease: renewal work failed (%s)", exc)

    async def _lose(self) -> None:
        try:
            await self.on_loss()
        except Exception:
            log.exception("stopping the scheduler failed")

    async def stop(self, *, release: bool = True) -> None:
        """Stop trying; with `release`, hand the lease back so another replica takes over
        at its next renewal instead of after the lease runs out."""
        self.running = False
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        if self.leader:
            self.leader = False
            await self._lose()
            if release:
                try:
                    await self.lease.release()
                except Exception as exc:
                    log.warning("scheduler lease: releasing failed (%s); it expires", exc)
