"""A tool's question to the user, step by step: buttons, typed values, Decline and
Cancel, bound to the asker and their chat."""

from __future__ import annotations

import asyncio

from bot.domain import (
    ChatKind,
    ChatRef,
    InputAction,
    InputAnswer,
    InputChoice,
    InputField,
    InputFieldKind,
    InputQuestion,
    UserRef,
)
from bot.questions import DECLINE, DONE, InputPress, InputQuestions, InputStep, PendingInput

ALICE = UserRef("test", "alice", "Alice")
BOB = UserRef("test", "bob", "Bob")
GROUP = ChatRef("test", "g1", ChatKind.GROUP)
OTHER = ChatRef("test", "g2", ChatKind.GROUP)
FORM = InputQuestion(
    "Book a table",
    fields=(
        InputField("guests", "Guests", InputFieldKind.INTEGER),
        InputField(
            "time",
            "Time",
            InputFieldKind.CHOICE,
            choices=(InputChoice("19:00"), InputChoice("20:30")),
        ),
        InputField("outside", "Outside", InputFieldKind.BOOLEAN, required=False),
    ),
    asked_by="MCP server {name}",
    source="web",
)


async def run(
    questions: InputQuestions, question: InputQuestion
) -> tuple[asyncio.Task[InputAnswer], asyncio.Queue[tuple[PendingInput, InputStep]]]:
    steps: asyncio.Queue[tuple[PendingInput, InputStep]] = asyncio.Queue()

    async def show(pending: PendingInput, step: InputStep) -> None:
        await steps.put((pending, step))

    return asyncio.create_task(questions.ask(ALICE, GROUP, question, show)), steps


async def test_a_form_step_by_step_and_someone_elses_press_is_refused() -> None:
    questions = InputQuestions(timeout=30)
    task, steps = await run(questions, FORM)

    pending, step = await steps.get()
    assert step.typed and "MCP server web asks: Book a table" in step.text
    assert [key for _, key in step.buttons] == ["d", "c"]
    assert not questions.reply(BOB, GROUP, "40")  # not Bob's question: a turn of his own
    assert not questions.reply(ALICE, OTHER, "40")  # not this chat's
    assert questions.reply(ALICE, GROUP, "many")  # taken as an answer, but not a number
    _, step = await steps.get()
    assert "Not taken: Type a whole number, like 42." in step.text
    assert questions.reply(ALICE, GROUP, "4")

    _, step = await steps.get()
    assert [label for label, _ in step.buttons] == ["19:00", "20:30", "Decline", "Cancel"]
    assert questions.press(pending.token, BOB, GROUP, "1") is InputPress.NOT_YOURS
    assert questions.press(pending.token, ALICE, GROUP, "y") is InputPress.INVALID
    assert questions.press(pending.token, ALICE, GROUP, "1") is InputPress.TAKEN

    _, step = await steps.get()
    assert [label for label, _ in step.buttons] == ["Yes", "No", "Skip", "Decline", "Cancel"]
    assert questions.press(pending.token, ALICE, GROUP, "s") is InputPress.TAKEN

    assert await task == InputAnswer(InputAction.ACCEPT, {"guests": 4, "time": "20:30"})
    assert questions.press(pending.token, ALICE, GROUP, "d") is InputPress.EXPIRED


async def test_a_link_shows_its_domain_and_can_be_declined() -> None:
    questions = InputQuestions(timeout=30)
    link = InputQuestion("Sign in", url="https://auth.example.com/login?x=1", asked_by="S")
    task, steps = await run(questions, link)
    pending, step = await steps.get()
    assert "auth.example.com" in step.text and step.url == link.url
    assert [key for _, key in step.buttons] == [DONE, DECLINE, "c"]
    assert questions.press(pending.token, ALICE, GROUP, DECLINE) is InputPress.TAKEN
    assert await task == InputAnswer(InputAction.DECLINE)


async def test_a_question_nobody_answers_is_cancelled() -> None:
    questions = InputQuestions(timeout=0.05)
    task, steps = await run(questions, FORM)
    pending, _ = await steps.get()
    assert await task == InputAnswer(InputAction.CANCEL)
    assert questions.press(pending.token, ALICE, GROUP, "d") is InputPress.EXPIRED
