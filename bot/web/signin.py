"""Slowing wrong console passwords without ever locking out the right one.

Every sign-in attempt first waits what its client address owes, then its password is
checked: the right password always signs in, at worst after the wait. The wait doubles
with each recent wrong password from that address (the first few are free, so a typo
costs nothing), and everyone waits a little more while wrong passwords pour in from
many addresses at once. An address may have one attempt waiting at a time, so opening
more connections buys no more guesses. The table of addresses is an LRU of bounded
size; an address is forgotten 15 quiet minutes after its last wrong password, or at
once when it signs in.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict, deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

FREE_FAILURES = 3  # wrong passwords from one address before its attempts wait
GLOBAL_FREE_FAILURES = 20  # wrong passwords from anywhere (per window) before everyone waits
GLOBAL_STEP = 20  # ...and the global wait doubles every this many more
WINDOW_SECONDS = 900.0
MAX_WAITING = 100  # attempts waiting at once, over all addresses


class SignInBusy(Exception):
    """The address already has an attempt waiting, or too many are waiting overall."""


@dataclass(slots=True)
class _Record:
    failures: int
    last: float


class SignInThrottle:
    """Per-address and global exponential backoff for wrong passwords."""

    def __init__(self, *, base_delay: float, max_delay: float, tracked: int) -> None:
        self.base_delay = base_delay
        self.max_delay = max_delay
        self.tracked = tracked
        self._addresses: OrderedDict[str, _Record] = OrderedDict()
        self._recent: deque[float] = deque(maxlen=max(tracked, GLOBAL_FREE_FAILURES * 8))
        self._waiting: set[str] = set()

    def __len__(self) -> int:
        return len(self._addresses)

    def delay(self, address: str) -> float:
        """Seconds the next attempt from `address` waits before its password is checked."""
        now = time.monotonic()
        record = self._addresses.get(address)
        if record is not None and now - record.last > WINDOW_SECONDS:
            del self._addresses[address]
            record = None
        own = 0.0
        if record is not None and record.failures >= FREE_FAILURES:
            own = self._backoff(record.failures - FREE_FAILURES)
        while self._recent and now - self._recent[0] > WINDOW_SECONDS:
            self._recent.popleft()
        shared = 0.0
        if len(self._recent) >= GLOBAL_FREE_FAILURES:
            steps = (len(self._recent) - GLOBAL_FREE_FAILURES) // GLOBAL_STEP
            # Everyone pays this, the real admin too: kept to a quarter of the maximum.
            shared = min(self._backoff(steps), self.max_delay / 4)
        return max(own, shared)

    def _backoff(self, steps: int) -> float:
        return float(min(self.max_delay, self.base_delay * 2 ** min(steps, 32)))

    @asynccontextmanager
    async def attempt(self, address: str) -> AsyncIterator[float]:
        """Wait what `address` owes, then let the caller check the password.

        Raises SignInBusy, without waiting, while another attempt from `address` waits
        or MAX_WAITING attempts wait overall."""
        wait = self.delay(address)
        if wait <= 0:
            yield 0.0
            return
        if address in self._waiting or len(self._waiting) >= MAX_WAITING:
            raise SignInBusy
        self._waiting.add(address)
        try:
            await asyncio.sleep(wait)
            yield wait
        finally:
            self._waiting.discard(address)

    def failed(self, address: str) -> float:
        """Count a wrong password; returns the wait of the next attempt from `address`."""
        now = time.monotonic()
        record = self._addresses.pop(address, None)
        if record is None or now - record.last > WINDOW_SECONDS:
            record = _Record(0, now)
        record.failures += 1
        record.last = now
        self._addresses[address] = record  # newest last: the LRU end
        while len(self._addresses) > self.tracked:
            self._addresses.popitem(last=False)
        self._recent.append(now)
        return self.delay(address)

    def succeeded(self, address: str) -> None:
        self._addresses.pop(address, None)
