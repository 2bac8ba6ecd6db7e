"""Flood-control values in both of python-telegram-bot's forms, and the per-chat pace."""

from __future__ import annotations

import datetime as dtm
import time

import pytest
from telegram.error import RetryAfter
from telegram.warnings import PTBDeprecationWarning

from integrations.telegram.sender import ChatPace, retry_after_seconds


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
