"""Alerts: tell the admins once when something keeps failing, and once when it clears.

Three conditions, each an episode with a start and an end:
- the model failed PARLEY_ALERT_MODEL_FAILURES times within PARLEY_ALERT_WINDOW_MINUTES
  (the next answered call ends it);
- reminder deliveries failed PARLEY_ALERT_REMINDER_FAILURES times within the same window
  (the next delivery ends it);
- a platform's check (Slack auth.test, Telegram getMe: the doctor's) has failed for
  PARLEY_ALERT_DISCONNECTED_SECONDS (the next passing check ends it).

An episode sends one alert when it starts and one recovery when it ends. An episode that
starts within PARLEY_ALERT_REPEAT_MINUTES of the condition's last alert stays quiet, and so
does its end, so a flapping model cannot flood anyone. Messages go to every target of
PARLEY_ALERT_TO through the platforms' messengers (a Slack user id gets a DM, a Telegram
id a private message) or, for `email:` targets, the mailer. `Alerts` is an `Observer`:
the engine and the scheduler report to it as they report to the metrics.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import socket
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from bot.config import AlertSettings
from bot.domain import ChatKind, ChatRef, Mailer, Usage, UserRef
from bot.ops.doctor import Check, run_checks
from bot.ops.observe import Observer
from bot.surface import Messenger

log = logging.getLogger(__name__)

SENDER = UserRef("parley", "alerts", "Parley alerts")


@dataclass
class Condition:
    """One thing that can go wrong, and where its current episode stands."""

    name: str
    failures: deque[float] = field(default_factory=deque)
    active: bool = False
    announced: bool = False  # this episode's alert was sent (so its recovery will be)
    last_alert: float = -math.inf
    failing_since: float | None = None


class Alerts(Observer):
    """Counts failures, decides when an episode starts and ends, and sends the messages."""

    def __init__(
        self,
        settings: AlertSettings,
        messenger_for: Callable[[str], Messenger | None],
        mailer: Mailer | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self.messenger_for = messenger_for
        self.mailer = mailer
        self.clock = clock
        self.conditions: dict[str, Condition] = {}
        self.sent: list[str] = []  # the last 50 messages, newest last (the console shows them)
        self._host = socket.gethostname()
        self._tasks: set[asyncio.Task[None]] = set()
        self._watcher: asyncio.Task[None] | None = None

    @property
    def enabled(self) -> bool:
        return bool(self.settings.targets)

    # -- what the engine and the scheduler report ------------------------------------------

    def llm_call(self, model: str, usage: Usage, *, failed: bool) -> None:
        self._count(
            "model",
            failed,
            self.settings.model_failures,
            alert=f"the model ({model}) failed {{n}} times in {{window}}: users are getting "
            "error answers. `parley doctor` shows whether the key, the endpoint or the model "
            "name is at fault.",
            recovery=f"the model ({model}) answers again.",
        )

    def reminder_fired(self, *, late: bool, failed: bool) -> None:
        self._count(
            "reminders",
            failed,
            self.settings.reminder_failures,
            alert="{n} reminder deliveries failed in {window} (they are retried, then marked "
            "failed): see `parley reminders list --all` for the errors.",
            recovery="reminders are being delivered again.",
        )

    def _count(self, name: str, failed: bool, threshold: int, *, alert: str, recovery: str) -> None:
        condition = self._condition(name)
        now = self.clock()
        if not failed:
            self._end(condition, recovery)
            return
        window = self.settings.window_minutes * 60
        condition.failures.append(now)
        while condition.failures and condition.failures[0] < now - window:
            condition.failures.popleft()
        if len(condition.failures) >= threshold and not condition.active:
            minutes = f"{self.settings.window_minutes:g} minute(s)"
            self._start(condition, alert.format(n=len(condition.failures), window=minutes))

    # -- platforms -------------------------------------------------------------------------

    def watch(self, checks: Sequence[Check]) -> None:
        """Run the platforms' checks every PARLEY_ALERT_CHECK_SECONDS until `stop()`."""
        if checks and self.enabled and self._watcher is None:
            self._watcher = asyncio.create_task(self._watch(checks), name="alerts:platforms")

    async def _watch(self, checks: Sequence[Check]) -> None:
        interval = self.settings.check_seconds
        while True:
            for result in await run_checks(checks, within=max(interval, 5.0)):
                self.platform_checked(result.name, result.ok, result.detail)
            await asyncio.sleep(interval)

    def platform_checked(self, platform: str, ok: bool, detail: str = "") -> None:
        condition = self._condition(f"platform:{platform}")
        now = self.clock()
        if ok:
            condition.failing_since = None
            self._end(condition, f"{platform} is reachable again.")
            return
        if condition.failing_since is None:
            condition.failing_since = now
        down_for = now - condition.failing_since
        if down_for >= self.settings.disconnected_seconds and not condition.active:
            self._start(
                condition,
                f"{platform} has been unreachable for {down_for:.0f} s ({detail}): nobody "
                "there gets answers. `parley doctor` checks the token and the connection.",
            )

    # -- episodes and messages -------------------------------------------------------------

    def _condition(self, name: str) -> Condition:
        return self.conditions.setdefault(name, Condition(name))

    def _start(self, condition: Condition, text: str) -> None:
        condition.active = True
        now = self.clock()
        if now - condition.last_alert < self.settings.repeat_minutes * 60:
            condition.announced = False
            log.warning("alert (not sent again so soon): %s", text)
            return
        condition.last_alert = now
        condition.announced = True
        self._send(f"Parley alert on {self._host}: {text}")

    def _end(self, condition: Condition, text: str) -> None:
        if not condition.active:
            return
        condition.active = False
        condition.failures.clear()
        if condition.announced:
            condition.announced = False
            self._send(f"Parley recovered on {self._host}: {text}")
        else:
            log.info("recovered (no alert had been sent): %s", text)

    def _send(self, text: str) -> None:
        log.warning("%s", text)
        self.sent = [*self.sent[-49:], text]
        if not self.enabled:
            return
        try:
            task = asyncio.get_running_loop().create_task(self._deliver(text))
        except RuntimeError:  # no loop (a report from a thread): the log line must do
            return
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _deliver(self, text: str) -> None:
        for kind, target in self.settings.targets:
            try:
                if kind == "email":
                    if self.mailer is None:
                        raise LookupError("email is not set up (SMTP_HOST)")
                    subject = text.split(":", 1)[0]
                    chat = ChatRef("parley", "alerts")
                    await self.mailer.send(SENDER, chat, [target], subject, text)
                    continue
                messenger = self.messenger_for(kind)
                if messenger is None:
                    raise LookupError(f"no platform {kind!r} is running")
                await messenger.send(ChatRef(kind, target, ChatKind.DM), text)
            except Exception as exc:  # one unreachable admin must not stop the others
                log.warning("could not send an alert to %s:%s: %s", kind, target, exc)

    async def stop(self) -> None:
        """Stop watching the platforms and let the messages under way finish."""
        if self._watcher is not None:
            self._watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watcher
            self._watcher = None
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=10)
