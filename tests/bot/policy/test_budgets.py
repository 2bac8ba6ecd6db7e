"""Budgets, the rate limit and the in-flight cap under concurrent turns and replicas, on
SQLite and PostgreSQL: real turns against the scripted model, started at once."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select, update

from bot.app import Application
from bot.domain import ChatKind, ChatRef, UserRef
from bot.storage.models import BudgetReservation, UsageRecord, utcnow
from bot.turn.engine import TurnOutcome
from tests.apps import AppFactory
from tests.bot.turn.test_engine import ALICE, echo, message
from tests.databases import database_url_for
from tests.fakes.openai_server import ScriptedOpenAIServer, text_reply, tool_call_reply
from tests.fakes.surface import RecordingSurface

TURN_TOKENS = 1000  # what every scripted answer reports using (600 prompt + 400 completion)
GROUPS = [ChatRef("test", f"group-{n}", ChatKind.GROUP) for n in range(20)]


@pytest.fixture(params=["sqlite", "postgres"])
async def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    async with database_url_for(request, tmp_path) as url:
        yield url


async def spent(app: Application, user: UserRef = ALICE) -> int:
    user_id, _ = await app.store.ids_of(user, GROUPS[0])
    u = UsageRecord.__table__.c  # type: ignore[attr-defined]
    query = select(func.coalesce(func.sum(u.prompt_tokens + u.completion_tokens), 0)).where(
        u.user_id == user_id
    )
    async with app.database.read() as session:
        return int((await session.exec(query)).one()[0])  # type: ignore[call-overload]


async def at_once(
    app: Application, chats: list[ChatRef], user: UserRef = ALICE
) -> list[TurnOutcome]:
    """One turn of `user` in each chat, all started together."""
    return await asyncio.gather(
        *(
            app.engine.handle(message(f"question {n}", user, chat), RecordingSurface())
            for n, chat in enumerate(chats)
        )
    )


async def test_twenty_turns_at_once_spend_at_most_the_budget_plus_one_turn(
    llm: ScriptedOpenAIServer, make_app: AppFactory, database_url: str
) -> None:
    budget = 5000
    limits = {"user_daily_tokens": budget, "turn_token_estimate": TURN_TOKENS}
    app = await make_app([], database_url=database_url, limits=limits)
    llm.set_default(text_reply("answered", delay=0.3, usage=(600, 400)))

    outcomes = await at_once(app, GROUPS)

    answered = [o for o in outcomes if not o.error]
    refused = [o for o in outcomes if o.error]
    assert await spent(app) <= budget + TURN_TOKENS
    assert len(llm.requests) == len(answered) <= budget // TURN_TOKENS + 1
    assert answered, "the budget had room for some turns"
    assert refused and all("budget of 5,000 tokens" in o.error for o in refused), [
        o.error for o in refused
    ]
    # Settled: nothing is held once every turn is over.
    held = select(func.count()).where(BudgetReservation.settled_at.is_(None))  # type: ignore[union-attr]
    async with app.database.read() as session:
        assert (await session.exec(held)).one()[0] == 0  # type: ignore[call-overload]


async def test_turns_one_after_another_use_the_whole_budget(
    llm: ScriptedOpenAIServer, make_app: AppFactory
) -> None:
    """Reservations are released: in series, every turn the budget holds is answered."""
    limits = {"user_daily_tokens": 3000, "turn_token_estimate": TURN_TOKENS}
    app = await make_app([], limits=limits)
    llm.set_default(text_reply("answered", usage=(600, 400)))

    outcomes = [
        await app.engine.handle(message(f"q{n}", ALICE, GROUPS[n]), RecordingSurface())
        for n in range(4)
    ]

    assert [bool(o.error) for o in outcomes] == [False, False, False, True]
    assert "You have used your daily budget of 3,000 tokens" in outcomes[3].error


async def test_the_turns_in_flight_of_one_user_are_capped(
    llm: ScriptedOpenAIServer, make_app: AppFactory, database_url: str
) -> None:
    app = await make_app([], database_url=database_url, limits={"user_turns_in_flight": 2})
    llm.set_default(text_reply("answered", delay=0.5))

    outcomes = await at_once(app, GROUPS[:5])

    assert sum(not o.error for o in outcomes) == 2
    refusals = [o.error for o in outcomes if o.error]
    assert len(refusals) == 3 and all("at most 2 at a time" in e for e in refusals), refusals
    # Another user is not held up by Alice's turns.
    bob = await app.engine.handle(
        message("hi", UserRef("test", "bob"), GROUPS[0]), RecordingSurface()
    )
    assert not bob.error
    # Once hers are answered she may ask again.
    again = await app.engine.handle(message("again", ALICE, GROUPS[0]), RecordingSurface())
    assert not again.error


async def test_two_replicas_share_one_rate_limit(
    llm: ScriptedOpenAIServer, make_app: AppFactory, database_url: str
) -> None:
    limits = {"user_messages_per_minute": 3}
    first = await make_app([], database_url=database_url, limits=limits)
    second = await make_app([], database_url=database_url, limits=limits)
    llm.set_default(text_reply("answered", delay=0.2))

    outcomes = await asyncio.gather(
        *(
            (first if n % 2 else second).engine.handle(
                message(f"q{n}", ALICE, GROUPS[n]), RecordingSurface()
            )
            for n in range(8)
        )
    )

    assert sum(not o.error for o in outcomes) == 3
    refusals = [o.error for o in outcomes if o.error]
    assert all("faster than the limit of 3 per minute" in e for e in refusals), refusals


async def test_a_crashed_turns_reservation_expires(
    llm: ScriptedOpenAIServer, make_app: AppFactory
) -> None:
    """A process that died mid-turn never settles: its reservation holds the budget and
    the in-flight cap only until it expires."""
    limits = {"user_turns_in_flight": 1, "user_daily_tokens": 1500, "turn_token_estimate": 2000}
    app = await make_app([], limits=limits)
    llm.set_default(text_reply("answered", usage=(600, 400)))
    user_id, channel_id = await app.store.ids_of(ALICE, GROUPS[0])
    assert app.limits is not None
    crashed = await app.limits.admit(message("lost"), user_id, channel_id, {})
    assert crashed.reservation is not None and crashed.refusal is None

    held = await app.engine.handle(message("now?", ALICE, GROUPS[1]), RecordingSurface())
    assert "at most 1 at a time" in held.error

    async with app.database.write() as session:  # the hold ran out
        await session.exec(  # type: ignore[call-overload]
            update(BudgetReservation)
            .where(BudgetReservation.id == crashed.reservation.id)  # type: ignore[arg-type]
            .values(expires_at=utcnow() - timedelta(seconds=1))
        )
    later = await app.engine.handle(message("now?", ALICE, GROUPS[1]), RecordingSurface())
    assert not later.error, later.error
    unsettled = select(func.count()).where(BudgetReservation.settled_at.is_(None))  # type: ignore[union-attr]
    async with app.database.read() as session:
        assert (await session.exec(unsettled)).one()[0] == 0  # type: ignore[call-overload]


async def test_a_turn_waits_for_the_budget_its_running_turns_hold(
    llm: ScriptedOpenAIServer, make_app: AppFactory
) -> None:
    """Used is under the budget but a running turn's estimate fills it: the new turn is
    told why, in words that say the budget is held, not spent."""
    app = await make_app([], limits={"user_daily_tokens": 1000, "turn_token_estimate": 1000})
    llm.set_default(text_reply("answered", delay=0.5, usage=(300, 200)))
    first = asyncio.create_task(
        app.engine.handle(message("slow", ALICE, GROUPS[0]), RecordingSurface())
    )
    while not llm.requests:
        assert not first.done()
        await asyncio.sleep(0.01)
    surface = RecordingSurface()
    second = await app.engine.handle(message("fast", ALICE, GROUPS[1]), surface)
    assert "Your questions in progress may use the rest of the budget" in second.error
    assert surface.failures == [second.error]
    assert not (await first).error
    third = await app.engine.handle(message("after", ALICE, GROUPS[1]), RecordingSurface())
    assert not third.error  # 500 used of 1,000: room again


async def test_a_long_turn_keeps_its_reservation_until_it_ends(
    llm: ScriptedOpenAIServer, make_app: AppFactory
) -> None:
    """A turn that runs longer than PARLEY_BUDGET_RESERVATION_SECONDS (an approval left
    open, a slow model) renews its hold while it runs, so parallel turns cannot take
    its share; when it ends the hold is settled and no longer renewed."""
    app = await make_app([], limits={"user_turns_in_flight": 1})
    llm.set_default(text_reply("answered"))
    assert app.limits is not None
    store = app.limits.store
    user_id, channel_id = await app.store.ids_of(ALICE, GROUPS[0])
    admission = await app.limits.admit(message("long"), user_id, channel_id, {})
    reservation = admission.reservation
    assert reservation is not None
    first = await store.expires_at(reservation)
    assert first is not None
    async with app.limits.holding(admission, renew_every=0.05):
        deadline = asyncio.get_running_loop().time() + 30
        while (renewed := await store.expires_at(reservation)) == first:
            assert asyncio.get_running_loop().time() < deadline, "never renewed"
            await asyncio.sleep(0.02)
        assert renewed is not None and renewed > first
        held = await app.engine.handle(message("now?", ALICE, GROUPS[1]), RecordingSurface())
        assert "at most 1 at a time" in held.error
    settled = await store.expires_at(reservation)
    assert settled == reservation.created_at + timedelta(seconds=60)
    later = await app.engine.handle(message("now?", ALICE, GROUPS[1]), RecordingSurface())
    assert not later.error, later.error


async def test_fifteen_large_turns_at_once_spend_at_most_the_budget_plus_one_call(
    llm: ScriptedOpenAIServer, make_app: AppFactory, database_url: str
) -> None:
    """Each turn reserves what its request needs (37 kB of text is ~9,250 tokens, plus
    the output cap), not PARLEY_TURN_TOKEN_ESTIMATE."""
    budget, cap = 20_000, 1000
    app = await make_app(
        [],
        database_url=database_url,
        limits={"user_daily_tokens": budget},
        llm={"max_tokens": cap},
    )
    # What a model reports for a 37 kB question: its tokens, and an answer under the cap.
    llm.set_default(text_reply("answered", delay=0.3, usage=(9_500, 500)))
    large = "word " * 7_400  # 37 kB

    outcomes = await asyncio.gather(
        *(
            app.engine.handle(message(f"{large} {n}", ALICE, chat), RecordingSurface())
            for n, chat in enumerate(GROUPS[:15])
        )
    )

    one_call = len(large) // 4 + 500 + cap  # the request (with the prompt) and its cap
    assert await spent(app) <= budget + one_call
    answered = [o for o in outcomes if not o.error]
    assert answered and len(llm.requests) == len(answered)
    assert all("budget of 20,000 tokens" in o.error for o in outcomes if o.error)


async def test_a_tool_loop_stops_when_the_budget_cannot_cover_its_next_round(
    llm: ScriptedOpenAIServer, make_app: AppFactory
) -> None:
    budget = 20_000
    app = await make_app([echo], limits={"user_daily_tokens": budget}, llm={"max_tokens": 1000})
    # Every round costs 8,000 tokens and asks for another.
    llm.set_default(tool_call_reply(("echo", {"text": "again"}), usage=(7_500, 500)))
    surface = RecordingSurface()

    outcome = await app.engine.handle(message("loop", ALICE, GROUPS[0]), surface)

    # Rounds 1-3 start under the budget (0, 8,000, 16,000 spent); the 4th would not fit.
    assert len(llm.requests) == 3
    assert await spent(app) == 24_000
    assert "budget of 20,000 tokens" in outcome.error
    assert outcome.text.endswith(outcome.error)
