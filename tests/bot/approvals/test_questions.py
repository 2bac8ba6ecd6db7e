"""A tool's question to the user, step by step: buttons, typed values, Decline and
Cancel, bound to the asker and their chat."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from bot.approvals.questions import (
    CHANGE,
    DECLINE,
    DONE,
    KEEP,
    InputPress,
    InputQuestions,
    InputStep,
    PendingInput,
)
from bot.domain import (
    ChatKind,
    ChatRef,
    InputAction,
    InputAnswer,
    InputChoice,
    InputField,
    InputFieldKind,
    InputLimits,
    InputQuestion,
    UserRef,
)
from bot.i18n import use_locale

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


async def send(
    questions: InputQuestions, steps: asyncio.Queue[tuple[PendingInput, InputStep]]
) -> str:
    """Press Send on the review of the answers (the step after the last field); its text."""
    pending, step = await steps.get()
    assert [key for _, key in step.buttons] == [DONE, CHANGE, DECLINE, "c"]
    assert questions.press(pending.token, ALICE, GROUP, DONE) is InputPress.TAKEN
    return step.text


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

    review = await send(questions, steps)
    assert "Check your answers, then press Send:" in review
    assert "Guests: 4\nTime: 20:30\nOutside: (skipped)" in review
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


HEROES = InputField(
    "hero",
    "Hero",
    InputFieldKind.CHOICE,
    required=False,
    choices=(InputChoice("hero-1", "Superman"), InputChoice("hero-2", "Green Lantern")),
    default="hero-1",
)
FISH = InputField(
    "fish",
    "Fish",
    InputFieldKind.MULTI_CHOICE,
    choices=(InputChoice("fish-1", "Tuna"), InputChoice("fish-2", "Salmon"), InputChoice("x", "")),
    default=["fish-1"],
    limits=InputLimits(min_items=1, max_items=2),
)


async def test_titles_are_shown_and_values_sent_a_default_kept_and_toggles_bounded() -> None:
    questions = InputQuestions(timeout=30)
    task, steps = await run(questions, InputQuestion("Favourites", fields=(HEROES, FISH)))

    pending, step = await steps.get()
    assert [label for label, _ in step.buttons] == [
        "Superman",
        "Green Lantern",
        "Keep Superman",
        "Skip",
        "Decline",
        "Cancel",
    ]
    assert "Default: Superman" in step.text
    assert questions.press(pending.token, ALICE, GROUP, KEEP) is InputPress.TAKEN

    _, step = await steps.get()
    assert step.options == (("Tuna", "0", True), ("Salmon", "1", False), ("x", "2", False))
    assert "Choices: from 1 to 2." in step.text
    assert questions.press(pending.token, ALICE, GROUP, "0") is InputPress.TAKEN  # Tuna off
    _, step = await steps.get()
    assert step.refresh and not any(on for _, _, on in step.options)
    assert questions.press(pending.token, ALICE, GROUP, DONE) is InputPress.TAKEN
    _, step = await steps.get()
    assert "Not taken: Choose at least 1 option." in step.text and not step.refresh
    # A platform that keeps the ticks itself sends them with Done: three are too many.
    assert questions.press(pending.token, ALICE, GROUP, DONE, ["0", "1", "2"]) is InputPress.TAKEN
    _, step = await steps.get()
    assert "Not taken: Choose at most 2 options." in step.text
    assert questions.press(pending.token, ALICE, GROUP, DONE, ["9"]) is InputPress.INVALID
    assert questions.press(pending.token, ALICE, GROUP, DONE, ["1", "0"]) is InputPress.TAKEN

    assert "Hero: Superman\nFish: Tuna, Salmon" in await send(questions, steps)
    assert await task == InputAnswer(
        InputAction.ACCEPT, {"hero": "hero-1", "fish": ["fish-1", "fish-2"]}
    )


def typed_field(kind: InputFieldKind, **limits: Any) -> InputQuestion:
    field = InputField("value", "Value", kind, limits=InputLimits(**limits))
    return InputQuestion("Tell me", fields=(field,))


@pytest.mark.parametrize(
    ("question", "refused", "reason", "taken", "value"),
    [
        (
            typed_field(InputFieldKind.INTEGER, minimum=1, maximum=100),
            "500",
            "The largest allowed is 100.",
            "42",
            42,
        ),
        (
            typed_field(InputFieldKind.INTEGER, minimum=1),
            "0",
            "The smallest allowed is 1.",
            "\uff11\uff12",  # full-width digits
            12,
        ),
        (typed_field(InputFieldKind.INTEGER), "²", "Type a whole number, like 42.", "-3", -3),
        (typed_field(InputFieldKind.INTEGER), "4.5", "Type a whole number, like 42.", "+7", 7),
        (
            typed_field(InputFieldKind.NUMBER, maximum=1000),
            "1e9",
            "The largest allowed is 1000.",
            "3.14",
            3.14,
        ),
        (typed_field(InputFieldKind.NUMBER), "nan", "Type a number, like 3.5.", "2", 2),
        (
            typed_field(InputFieldKind.TEXT, min_length=3),
            "ab",
            "Use at least 3 characters.",
            "abc",
            "abc",
        ),
        (
            typed_field(InputFieldKind.TEXT, max_length=1),
            "ab",
            "Use at most 1 character.",
            "a",
            "a",
        ),
        (
            typed_field(InputFieldKind.TEXT, format="email"),
            "ann at x",
            "Type an email address",
            "ann@example.com",
            "ann@example.com",
        ),
        (
            typed_field(InputFieldKind.TEXT, format="uri"),
            "https://exa mple.com",
            "Type a full web address",
            "https://example.com/x",
            "https://example.com/x",
        ),
        (
            typed_field(InputFieldKind.TEXT, format="uri"),
            "http://",  # a web address without a host
            "Type a full web address",
            "mailto:ann@example.com",
            "mailto:ann@example.com",
        ),
        (
            typed_field(InputFieldKind.TEXT, format="date"),
            "2026-02-30",
            "Type a date as year-month-day",
            "2026-02-28",
            "2026-02-28",
        ),
        (
            typed_field(InputFieldKind.TEXT, format="date-time"),
            "2026-12-31 18:30",
            "with its time zone",
            "2026-12-31 18:30:00+08:00",
            "2026-12-31T18:30:00+08:00",
        ),
        (
            typed_field(InputFieldKind.TEXT, pattern="^[A-Z]{3}-[0-9]+$"),
            "ab-1",
            "That is not in the form asked for.",
            "ABC-12",
            "ABC-12",
        ),
    ],
)
async def test_a_typed_value_breaking_a_limit_is_told_and_asked_again(
    question: InputQuestion, refused: str, reason: str, taken: str, value: object
) -> None:
    questions = InputQuestions(timeout=30)
    task, steps = await run(questions, question)
    await steps.get()
    assert questions.reply(ALICE, GROUP, refused)
    _, step = await steps.get()
    assert "Not taken: " in step.text and reason in step.text
    assert questions.reply(ALICE, GROUP, taken)
    await send(questions, steps)
    assert await task == InputAnswer(InputAction.ACCEPT, {"value": value})


async def test_a_pattern_that_backtracks_forever_is_left_to_the_server(
    caplog: pytest.LogCaptureFixture,
) -> None:
    questions = InputQuestions(timeout=30)
    task, steps = await run(questions, typed_field(InputFieldKind.TEXT, pattern="^(a|a)+$"))
    await steps.get()
    assert questions.reply(ALICE, GROUP, "a" * 40 + "!")
    await send(questions, steps)
    assert await task == InputAnswer(InputAction.ACCEPT, {"value": "a" * 40 + "!"})
    assert "took too long" in caplog.text


async def test_the_reason_is_in_the_readers_language() -> None:
    questions = InputQuestions(timeout=30)
    question = typed_field(InputFieldKind.INTEGER, minimum=1, maximum=100)
    with use_locale("zh_CN"):
        task, steps = await run(questions, question)
        _, step = await steps.get()
        assert "请回复一个整数。" in step.text and "允许：1 到 100。" in step.text
        assert questions.reply(ALICE, GROUP, "\uff15\uff10\uff10")  # full-width: "500"
        _, step = await steps.get()
        assert "未采用：最大允许值为 100。" in step.text
        assert questions.reply(ALICE, GROUP, "\uff15\uff10")
        assert "请检查你的回答，然后按“发送”：" in await send(questions, steps)
        assert await task == InputAnswer(InputAction.ACCEPT, {"value": 50})


async def test_control_and_bidi_characters_are_shown_not_obeyed() -> None:
    questions = InputQuestions(timeout=30)
    field = InputField(
        "pick",
        "Pick\u202e",
        InputFieldKind.CHOICE,
        choices=(InputChoice("a", "evil\u202egnp.exe"), InputChoice("b", "line\x1b[2J")),
    )
    task, steps = await run(questions, InputQuestion("Hello\u2067 world\x00", fields=(field,)))
    pending, step = await steps.get()
    assert "Hello<U+2067> world<U+0000>" in step.text and "Pick<U+202E>" in step.text
    assert [label for label, _ in step.buttons][:2] == ["evil<U+202E>gnp.exe", "line<U+001B>[2J"]
    assert questions.press(pending.token, ALICE, GROUP, "0") is InputPress.TAKEN
    assert "Pick<U+202E>: evil<U+202E>gnp.exe" in await send(questions, steps)
    assert await task == InputAnswer(InputAction.ACCEPT, {"pick": "a"})


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("https://evil.example\\@accounts.google.com/", "a backslash"),
        ("https://user:secret@accounts.google.com/", "credentials"),
        ("http://accounts.google.com/", "only https"),
        ("javascript:alert(1)", "only https"),
        ("https://accounts.google.com/\n.evil", "control characters"),
        ("https://" + "a" * 2001 + ".com/", "longer than"),
        ("https://exa mple.com/", "whitespace"),
    ],
)
async def test_a_link_that_must_not_be_shown_is_declined_and_logged(
    url: str, problem: str, caplog: pytest.LogCaptureFixture
) -> None:
    questions = InputQuestions(timeout=30)
    shown: list[InputStep] = []

    async def show(pending: PendingInput, step: InputStep) -> None:
        shown.append(step)

    link = InputQuestion("Sign in", url=url, source="web")
    assert await questions.ask(ALICE, GROUP, link, show) == InputAnswer(InputAction.DECLINE)
    assert not shown
    assert "a link from web was not shown to test:alice and was declined" in caplog.text
    assert problem in caplog.text


async def test_a_link_names_the_host_a_browser_opens_in_ascii_with_a_warning() -> None:
    questions = InputQuestions(timeout=30)
    link = InputQuestion("Sign in", url="https://BÜCHER.example/path?q=1", asked_by="S")
    task, steps = await run(questions, link)
    pending, step = await steps.get()
    assert step.url == "https://xn--bcher-kva.example/path?q=1"
    assert step.domain == link.domain == "xn--bcher-kva.example"
    assert "It leads to xn--bcher-kva.example." in step.text
    assert "Careful: xn--bcher-kva.example is how a name with non-Latin letters" in step.text
    assert questions.press(pending.token, ALICE, GROUP, DONE) is InputPress.TAKEN
    assert await task == InputAnswer(InputAction.ACCEPT)


async def test_the_answers_are_shown_before_they_go_and_can_be_changed() -> None:
    questions = InputQuestions(timeout=30)
    task, steps = await run(questions, typed_field(InputFieldKind.TEXT))
    pending, _ = await steps.get()
    assert questions.reply(ALICE, GROUP, "first try")
    _, review = await steps.get()
    assert "Value: first try" in review.text and not review.typed
    assert not questions.reply(ALICE, GROUP, "more words")  # a turn of its own now
    assert questions.press(pending.token, ALICE, GROUP, CHANGE) is InputPress.TAKEN
    _, step = await steps.get()
    assert step.typed  # the first field again
    assert questions.reply(ALICE, GROUP, "second try")
    assert "Value: second try" in await send(questions, steps)
    assert await task == InputAnswer(InputAction.ACCEPT, {"value": "second try"})
