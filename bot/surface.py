"""The `Surface` protocol: how the engine talks back to a chat, whatever the platform.

An adapter gives the engine one Surface per turn. The engine calls `start`, then
`stream` with each text delta, `thinking` with the model's reasoning where the vendor
streams it, `status` and `tool_started`/`tool_progress`/`tool_finished` while tools run,
and `finish` with the whole answer (adapters may ignore deltas and render only on
finish). `confirm`
shows the user who started the turn an approval question (bot/approvals.py) and returns
their answer; `ask` puts a tool's question to them (bot/questions.py) and returns what
they answered.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol, runtime_checkable

from bot.domain import ChatRef, InputAnswer, InputQuestion, ToolCall, ToolResult, UserRef
from bot.i18n import N_

if TYPE_CHECKING:
    from bot.approvals import Answer, ApprovalQuestion

# What a chat shows instead of an empty answer, on every platform (a chat message may not
# be empty): the engine streams it when the model answered nothing, and a Surface or
# Messenger given empty text sends it rather than an empty message.
NO_ANSWER = N_("(The model returned an empty answer. Please try rephrasing your message.)")


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

    async def confirm(self, user: UserRef, question: ApprovalQuestion) -> Answer:
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
