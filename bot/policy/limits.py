"""Token budgets (per user and per channel, per UTC day and month), a message rate limit
and a cap on one user's turns in flight, held across concurrent turns and replicas.

The engine asks `Limits.admit` before a turn and `settle`s what it got when the turn
ends. Admission is one database transaction (`bot/storage/budgets.py`): it reads what
the user and the channel have used (the `usage` table) and what turns still running
hold (their reservations), refuses with a sentence for the user, or reserves the
turn's estimate. The estimate is `PARLEY_TURN_TOKEN_ESTIMATE`, or the tokens of the
user's newest model call when that was bigger (a long conversation costs more per
call). Before each model call of the turn (the first and every further round of a tool
loop) `top_up` sizes the reservation to that call: the request's input tokens, estimated
from its length, plus the output cap (`PARLEY_LLM_MAX_TOKENS`, or the estimate when there
is none), under the same rule, and the turn ends with a sentence when the budget cannot
cover it. A call starts only while the budget has room once everything spent and every
other running turn's reservation is counted, so however many turns start at once, on
however many replicas, they spend at most the budget plus one call's reservation (a
turn's real usage counts as soon as each of its model calls is stored).

The rate limit counts the turns admitted in the last minute, the in-flight cap the
reservations not yet settled, both in the database, so N replicas allow the limit and
not N times it. A reservation names the process that holds it: when that process dies,
the sweep that resumes its turns releases it (`BudgetStore.release_dead`), so the
resumed turn, and the user's next message, reserve anew. One that is never settled
otherwise stops counting after `PARLEY_BUDGET_RESERVATION_SECONDS`; a turn that runs
longer (a slow model, an approval waiting for its answer) renews its reservation every
third of that while it runs (`Limits.holding`). With every limit at 0 nothing is stored.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from bot.config import LimitSettings
from bot.domain import IncomingMessage
from bot.i18n import _
from bot.storage.budgets import BudgetStore, Reservation, Spending

log = logging.getLogger(__name__)

USER_BUDGETS = ("user_daily_tokens", "user_monthly_tokens")
CHANNEL_BUDGETS = ("channel_daily_tokens", "channel_monthly_tokens")


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why a turn may not start: a `kind` and the figures its sentence names. Made inside
    the database transaction, worded afterwards in the reader's language."""

    kind: str
    values: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class Admission:
    """The answer to `admit`: a sentence for the user, or the reservation to settle (and
    the limits it was admitted under, for its top-ups)."""

    refusal: str | None = None
    reservation: Reservation | None = None
    limits: dict[str, int] = field(default_factory=dict)
    with_channel: bool = False


class Limits:
    """The budgets, rate limit and in-flight cap of the turns this process runs.

    `holder` is this process's lease (a dead process's reservations are released by
    the resume sweep); `output_cap` is the most tokens one model call may write."""

    def __init__(
        self,
        store: BudgetStore,
        settings: LimitSettings,
        *,
        holder: str | None = None,
        output_cap: int | None = None,
    ) -> None:
        self.store = store
        self.settings = settings
        self.holder = holder
        self.output_cap = output_cap or settings.turn_token_estimate

    def effective(self, overrides: dict[str, int]) -> dict[str, int]:
        """The global limits with a channel's overrides applied."""
        values = self.settings.model_dump()
        values.update({k: int(v) for k, v in overrides.items() if k in values})
        return values

    async def admit(
        self, message: IncomingMessage, user_id: int, channel_id: int, overrides: dict[str, int]
    ) -> Admission:
        """Whether the turn may start (with its reservation), or the reason to tell the user."""
        limits = self.effective(overrides)
        limits["user_turns_in_flight"] = self.settings.user_turns_in_flight  # global only
        watched = (*USER_BUDGETS, *CHANNEL_BUDGETS, "user_messages_per_minute")
        if not any(limits[key] for key in (*watched, "user_turns_in_flight")):
            return Admission()
        with_channel = any(limits[key] for key in CHANNEL_BUDGETS)
        estimate = self.settings.turn_token_estimate

        def decide(spending: Spending) -> tuple[Refusal | None, int]:
            return _refusal(limits, spending), max(estimate, spending.last_call)

        refusal, reservation = await self.store.reserve(
            user_id=user_id,
            channel_id=channel_id,
            with_channel=with_channel,
            decide=decide,
            hold_seconds=self.settings.reservation_seconds,
            holder=self.holder,
        )
        if refusal is not None:
            return Admission(refusal=_describe(refusal))
        return Admission(reservation=reservation, limits=limits, with_channel=with_channel)

    async def top_up(self, admission: Admission, input_tokens: int) -> str | None:
        """Before a model call: hold what it may use (`input_tokens` plus the output cap)
        instead of what the turn holds now, or the sentence that ends the turn when the
        budgets cannot cover it. Nothing to do for a turn admitted without a budget."""
        reservation = admission.reservation
        budgets = (*USER_BUDGETS, *CHANNEL_BUDGETS)
        if reservation is None or not any(admission.limits.get(k) for k in budgets):
            return None
        need = input_tokens + self.output_cap
        if need == reservation.tokens:
            return None
        limits = admission.limits

        def decide(others: Spending) -> Refusal | None:
            return _over_budget(limits, others)

        refusal, admission.reservation = await self.store.top_up(
            reservation,
            need,
            with_channel=admission.with_channel,
            decide=decide,
            hold_seconds=self.settings.reservation_seconds,
            holder=self.holder,
        )
        if refusal is not None:
            log.info("a turn's next model call (%d tokens) is over budget: %s", need, refusal.kind)
            return _describe(refusal)
        return None

    @contextlib.asynccontextmanager
    async def holding(
        self, admission: Admission, *, renew_every: float | None = None
    ) -> AsyncIterator[None]:
        """Run the admitted turn in this block: its reservation is renewed while the block
        runs (every third of PARLEY_BUDGET_RESERVATION_SECONDS unless `renew_every` says)
        and settled when it ends, however it ends."""
        renewer: asyncio.Task[None] | None = None
        if admission.reservation is not None:
            every = renew_every or self.settings.reservation_seconds / 3
            renewer = asyncio.create_task(self._renew(admission, every))
        try:
            yield
        finally:
            if renewer is not None:
                renewer.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await renewer
            await self.settle(admission)

    async def _renew(self, admission: Admission, every: float) -> None:
        while True:
            await asyncio.sleep(every)
            # The turn's current reservation: a top-up may have made it anew.
            reservation = admission.reservation
            if reservation is None:
                return
            try:
                await self.store.renew(reservation, self.settings.reservation_seconds)
            except Exception:  # the turn goes on; the reservation may lapse early
                log.exception("could not renew budget reservation %d", reservation.id)

    async def settle(self, admission: Admission) -> None:
        """The turn ended: release its reservation. A failure here is logged and left to
        expire, never raised into the turn that already answered."""
        if admission.reservation is None:
            return
        try:
            await self.store.settle(admission.reservation)
        except Exception:
            log.exception("could not settle budget reservation %d", admission.reservation.id)


def _refusal(limits: dict[str, int], spending: Spending) -> Refusal | None:
    per_minute = limits["user_messages_per_minute"]
    if per_minute and spending.user_recent >= per_minute:
        oldest = spending.oldest_recent or spending.now
        wait = max(1, int(60 - (spending.now - oldest).total_seconds()) + 1)
        return Refusal("rate", {"limit": per_minute, "seconds": wait})
    cap = limits["user_turns_in_flight"]
    if cap and spending.user_in_flight >= cap:
        return Refusal("in_flight", {"count": cap})
    return _over_budget(limits, spending)


def _over_budget(limits: dict[str, int], spending: Spending) -> Refusal | None:
    budgets = (
        ("user_daily_tokens", spending.user_day, spending.user_reserved),
        ("user_monthly_tokens", spending.user_month, spending.user_reserved),
        ("channel_daily_tokens", spending.channel_day, spending.channel_reserved),
        ("channel_monthly_tokens", spending.channel_month, spending.channel_reserved),
    )
    for key, used, reserved in budgets:
        budget = limits[key]
        if budget and used >= budget:
            return Refusal(key, {"budget": f"{budget:,}"})
        if budget and used + reserved >= budget:
            return Refusal(key + ":held", {"budget": f"{budget:,}"})
    return None


def _describe(refusal: Refusal) -> str:
    """The refusal as a sentence in the reader's language."""
    kind, values = refusal.kind, refusal.values
    if kind == "rate":
        return _(
            "You are sending messages faster than the limit of {limit} per minute. "
            "Please wait about {seconds} s and try again.",
            **values,
        )
    if kind == "in_flight":
        return _(
            "I am still working on your other questions (at most {count} at a time). "
            "Please ask again when one of them is answered.",
            **values,
        )
    if kind.startswith("channel") and kind.endswith(":held"):
        return _(
            "Questions in progress in this channel may use the rest of its budget of "
            "{budget} tokens. Please ask again when they are answered.",
            **values,
        )
    if kind.endswith(":held"):
        return _(
            "Your questions in progress may use the rest of the budget of {budget} tokens. "
            "Please ask again when they are answered.",
            **values,
        )
    if kind == "user_daily_tokens":
        return _(
            "You have used your daily budget of {budget} tokens here. It resets at "
            "midnight UTC; an admin can raise it.",
            **values,
        )
    if kind == "user_monthly_tokens":
        return _(
            "You have used your monthly budget of {budget} tokens. It resets on the 1st "
            "(UTC); an admin can raise it.",
            **values,
        )
    if kind == "channel_daily_tokens":
        return _(
            "This channel has used its daily budget of {budget} tokens. It resets at "
            "midnight UTC; an admin can raise it.",
            **values,
        )
    return _(
        "This channel has used its monthly budget of {budget} tokens. It resets on the 1st "
        "(UTC); an admin can raise it.",
        **values,
    )
