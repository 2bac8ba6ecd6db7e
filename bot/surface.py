"""The `Surface` protocol: how the engine talks back to a chat, whatever the platform.

An adapter gives the engine one Surface per turn. The engine calls `start`, then
`stream` with each text delta, `thinking` with the model's reasoning where the vendor
streams it, `status` and `tool_started`/`tool_progress`/`tool_finished` while tools run,
and `finish` with the whole answer (adapters may ignore deltas and render only on
finish). `confirm` shows the user who started the turn an approval question (an
`ApprovalPrompt`, made by bot/approvals/gate.py) and returns their `Answer`; `ask` puts a
tool's question to them (bot/approvals/questions.py) and returns what they answered. The surface
imports nothing of approvals: the types both sides need are declared here.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from bot.domain import ChatRef, InputAnswer, InputQuestion, ToolCall, ToolResult, UserRef
from bot.i18n import N_, _

# What a chat shows instead of an empty answer, on every platform (a chat message may not
# be empty): the engine streams it when the model answered nothing, and a Surface or
# Messenger given empty text sends it rather than an empty message.
# How long a text is on a platform (Telegram counts UTF-16 units, Slack characters).
Measure = Callable[[str], int]


@dataclass(frozen=True, slots=True)
class RenderedCard:
    """An approval card as text within a platform's limit; `cut` when shortened."""

    text: str
    cut: bool


NO_ANSWER = N_("(The model returned an empty answer. Please try rephrasing your message.)")


ANSWERED_ONCE = N_("Approved once.")
ANSWERED_ALWAYS = N_(
    "Always allowed: {tool} now runs for you in this chat without asking (/tools lists "
    "it and takes it back)."
)
ANSWERED_DENIED = N_("Denied, so nothing was done.")
ANSWERED_EXPIRED = N_("No answer in time, so nothing was done.")


class Answer(enum.Enum):
    """What became of an approval question."""

    ONCE = "once"
    ALWAYS = "always"
    DENIED = "denied"
    EXPIRED = "expired"

    @property
    def allows(self) -> bool:
        return self in (Answer.ONCE, Answer.ALWAYS)

    def note(self, tool: str) -> str:
        """What the question says once it is answered, in the reader's language."""
        if self is Answer.ONCE:
            return _(ANSWERED_ONCE)
        if self is Answer.ALWAYS:
            return _(ANSWERED_ALWAYS, tool=tool)
        if self is Answer.DENIED:
            return _(ANSWERED_DENIED)
        return _(ANSWERED_EXPIRED)


class ApprovalPrompt(Protocol):
    """An open approval question as a Surface sees it (bot/approvals/gate.py makes them):
    render the card, offer the answers, then `await answer()` (a press on any replica),
    or `respond(...)` where the surface takes the answer itself (the terminal)."""

    @property
    def token(self) -> str: ...
    @property
    def user(self) -> UserRef: ...
    @property
    def tool(self) -> str: ...
    @property
    def may_remember(self) -> bool: ...
    @property
    def full_text(self) -> str: ...

    def render(self, limit: int, measure: Measure = len) -> RenderedCard: ...

    async def answer(self) -> Answer: ...

    async def respond(self, answer: Answer) -> Answer: ...


@runtime_checkable
class Surface(Protocol):
    async def start(self) -> None:
        """A reply is about to be written (show typing, open a draft)."""

    async def stream(self, delta: str) -> None:
        """Append streamed text to the reply being written."""

    async def status(self, text: str) -> None:
        """Show a transient "working" line, e.g. which tool is running."""

    async def thinking(self, delta: str) -> None:
        """Append to the model's reasoning (never part of the answer; may be ignored)."""

    async def tool_started(self, call: ToolCall, progress: str) -> None:
        """A tool call is about to run; `progress` says so for people, in their language
        ("Checking the weather in Beijing…")."""

    async def tool_progress(self, call: ToolCall, progress: str) -> None:
        """A running call says how far it is: `progress` is a short line ("3 of 5:
        Analysing"), to show with the call's line until the next one or its end."""

    async def tool_finished(self, call: ToolCall, result: ToolResult) -> None:
        """A tool call finished (successfully or not)."""

    async def finish(self, text: str) -> None:
        """The reply is complete: `text` is its whole, final content."""

    async def fail(self, text: str) -> None:
        """The turn failed: show `text` (already safe for users) instead of a reply."""

    async def confirm(self, user: UserRef, question: ApprovalPrompt) -> Answer:
        """Show `user` (and only them, where the platform can) the question's card with
        Approve once, Always allow (if `question.may_remember`) and Deny, then return
        `await question.answer()` (or `question.respond(...)` when the answer is typed
        here); the shown question then says what became of it."""

    async def ask(self, user: UserRef, question: InputQuestion) -> InputAnswer:
        """Put a tool's question to `user` (only they may answer) step by step through
        `InputQuestions.ask`: buttons for booleans and choices, a typed reply for text,
        the link and its domain in URL mode, Decline and Cancel always."""


@runtime_checkable
class Messenger(Protocol):
    """Posts messages nobody is waiting for (reminders, follow-ups) to one platform."""

    platform: str

    async def send(self, chat: ChatRef, text: str, thread_key: str = "") -> None:
        """Deliver `text` to `chat` (and thread); raises on failure so callers can retry."""
