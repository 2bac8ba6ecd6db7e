"""Flood-control values in both of python-telegram-bot's forms, and the per-chat pace."""

from __future__ import annotations

import datetime as dtm
import time

import pytest
from telegram.error import RetryAfter
from telegram.warnings import PTBDeprecationWarning

from integrations.telegram.delivery import retry_after_seconds
from integrations.telegram.pace import ChatPace


def test_retry_after_reads_a_timedelta(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PTB_TIMEDELTA", "true")
    assert retry_after_seconds(RetryAfter(dtm.timedelta(seconds=7))) == 7.0


def test_retry_after_reads_an_int_without_the_warning(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PTB_TIMEDELTA", "false")
    with pytest.warns(PTBDeprecationWarning):  # PTB warns when it builds the error
        error = RetryAfter(3)
    assert retry_after_seconds(error) == 3.0


def test_the_pace_skips_early_calls_and_counts_back_offs() -> None:
    pace = ChatPace(0.2)
    assert pace.take(1) and not pace.take(1) and pace.take(2)
    time.sleep(0.21)
    assert pace.take(1)
    pace.back_off(2, 5)
    time.sleep(0.21)
    assert not pace.take(2)


def test_a_group_gets_previews_until_a_few_slots_of_its_minute_are_left() -> None:
    pace = ChatPace(0.0, group_limit=4, group_window=60.0, group_preview_limit=3)
    group, private = -100, 7
    assert [pace.take(group) for _ in range(5)] == [True, True, True, False, False]
    # A preview loop waits for the minute to free a slot instead of asking again at once.
    assert pace.ready_in(group) > 59
    # A private chat has no per-minute budget; another group has its own.
    assert all(pace.take(private) for _ in range(10))
    assert pace.take(-200)


async def test_a_group_answer_waits_for_the_slot_its_minute_frees() -> None:
    pace = ChatPace(0.0, group_limit=2, group_window=0.3, group_preview_limit=2)
    group = -100
    assert pace.take(group) and pace.take(group)
    started = time.monotonic()
    await pace.acquire(group)  # the third call of the window: waits for the first to age out
    # Not a timing test: the pace itself says when the window had room again.
    assert time.monotonic() - started > 0.2
