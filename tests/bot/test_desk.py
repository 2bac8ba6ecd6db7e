"""The desk's registry of open Confirm / Cancel questions, shared by every platform."""

from __future__ import annotations

from bot.desk import Confirmations, Press


async def test_only_the_asker_answers_and_only_once() -> None:
    questions = Confirmations()
    token, answer = questions.open("U1")
    assert questions.owner(token) == "U1"

    assert questions.press(token, "U2", True) is Press.NOT_YOURS
    assert not answer.done()
    assert questions.press(token, "U1", True) is Press.ANSWERED
    assert answer.result() is True
    assert questions.press(token, "U1", False) is Press.GONE  # already answered
    assert questions.owner(token) is None and len(questions) == 0


async def test_unknown_and_discarded_questions_are_gone() -> None:
    questions = Confirmations()
    assert questions.press("nonsense", "U1", True) is Press.GONE
    token, answer = questions.open("U1")
    questions.discard(token)  # timed out: the surface gave up waiting
    assert questions.press(token, "U1", True) is Press.GONE
    assert not answer.done()


async def test_tokens_fit_telegram_callback_data_and_differ() -> None:
    questions = Confirmations()
    tokens = {questions.open("U1")[0] for _ in range(50)}
    assert len(tokens) == 50
    # "cf:<token>:1" must stay within Telegram's 64 bytes of callback data.
    assert all(len(f"cf:{token}:1".encode()) <= 64 for token in tokens)


async def test_shutdown_refuses_every_open_question() -> None:
    questions = Confirmations()
    _, first = questions.open("U1")
    _, second = questions.open("U2")
    questions.refuse_all()
    assert first.result() is False and second.result() is False
