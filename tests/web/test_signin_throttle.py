"""SignInThrottle on its own: how long attempts wait, and what it remembers."""

from __future__ import annotations

import asyncio

import pytest

from bot.web.signin import FREE_FAILURES, GLOBAL_FREE_FAILURES, SignInBusy, SignInThrottle


def throttle(**options: float) -> SignInThrottle:
    values = {"base_delay": 1.0, "max_delay": 30.0, "tracked": 100, **options}
    return SignInThrottle(
        base_delay=values["base_delay"],
        max_delay=values["max_delay"],
        tracked=int(values["tracked"]),
    )


def test_the_wait_doubles_after_the_free_failures_up_to_the_maximum() -> None:
    slowed = throttle()
    waits = [slowed.failed("198.51.100.7") for _ in range(FREE_FAILURES + 6)]

    assert waits[: FREE_FAILURES - 1] == [0.0] * (FREE_FAILURES - 1)
    assert waits[FREE_FAILURES - 1 :] == [1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0]
    assert slowed.delay("203.0.113.9") == 0.0  # another address owes nothing


def test_signing_in_forgets_the_address() -> None:
    slowed = throttle()
    for _ in range(FREE_FAILURES + 2):
        slowed.failed("198.51.100.7")

    slowed.succeeded("198.51.100.7")

    assert slowed.delay("198.51.100.7") == 0.0


def test_wrong_passwords_from_many_addresses_slow_everyone_a_little() -> None:
    slowed = throttle()
    for i in range(GLOBAL_FREE_FAILURES * 10):
        slowed.failed(f"10.0.{i // 250}.{i % 250}")

    # A fresh address waits too, but never more than a quarter of the maximum.
    assert slowed.delay("203.0.113.9") == 30.0 / 4


def test_the_table_of_addresses_is_bounded_and_forgets_the_oldest() -> None:
    slowed = throttle(tracked=3)
    for address in ("10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.4", "10.0.0.5"):
        for _ in range(FREE_FAILURES):
            slowed.failed(address)

    assert len(slowed) == 3
    assert slowed.delay("10.0.0.1") == 0.0  # forgotten
    assert slowed.delay("10.0.0.5") == 1.0


async def test_one_waiting_attempt_per_address_the_next_is_refused_at_once() -> None:
    slowed = throttle(base_delay=0.2)
    for _ in range(FREE_FAILURES):
        slowed.failed("198.51.100.7")
    entered = asyncio.Event()

    async def first() -> float:
        async with slowed.attempt("198.51.100.7") as waited:
            entered.set()
            return waited

    task = asyncio.create_task(first())
    await asyncio.sleep(0)  # the first attempt is now waiting its turn

    with pytest.raises(SignInBusy):
        async with slowed.attempt("198.51.100.7"):
            pass
    async with slowed.attempt("203.0.113.9") as other:  # another address is not held up
        assert other == 0.0
    assert await task == 0.2 and entered.is_set()
    async with slowed.attempt("198.51.100.7") as again:  # free once the first is done
        assert again == 0.2
