"""Questions a tool asks the user mid-call (an MCP server's elicitation), in chat.

`InputQuestions` (one per process, built by bot/app.py) holds every open question. A
Surface's `ask` runs `InputQuestions.ask` with a function that shows one step at a
time: a field of the form (buttons for a boolean or a choice, a typed reply for text and
numbers) or the link (URL mode, with the domain it leads to), always with Decline and
Cancel. The step's text and buttons are written here, once, for every platform.

A press (`press`) or a typed reply (`reply`) counts only from the asker, in the chat
where the question was asked; anyone else's press is refused and logged. A question not
finished within PARLEY_MCP_QUESTION_TIMEOUT seconds is cancelled. Open questions live in
this process, as the tool call waiting for them does: a press that reaches another
replica (or comes after a restart) is told the question expired.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from bot.domain import (
    ChatRef,
    InputAction,
    InputAnswer,
    InputField,
    InputFieldKind,
    InputQuestion,
    UserRef,
)
from bot.i18n import _

log = logging.getLogger(__name__)

# Button keys (a press carries one): a choice's index, or one of these.
YES, NO, SKIP, DONE, DECLINE, CANCEL = "y", "n", "s", "a", "d", "c"


class InputPress(enum.StrEnum):
    """What became of a press or typed value."""

    TAKEN = "taken"
    NOT_YOURS = "not_yours"
    EXPIRED = "expired"
    INVALID = "invalid"


@dataclass(frozen=True, slots=True)
class InputStep:
    """What a Surface shows now: `text`, buttons as (label, key), and whether a typed
    reply is expected (`typed`)."""

    text: str
    buttons: tuple[tuple[str, str], ...]
    typed: bool = False
    url: str = ""


class PendingInput:
    """One open question: its asker, chat and progress through the fields."""

    def __init__(self, token: str, user: UserRef, chat: ChatRef, question: InputQuestion) -> None:
        self.token = token
        self.user = user
        self.chat = chat
        self.question = question
        self.values: dict[str, str | int | float | bool] = {}
        self.result: InputAnswer | None = None
        self._index = 0
        self._note = ""  # why the last typed value was not taken
        self.changed = asyncio.Event()

    @property
    def field(self) -> InputField | None:
        fields = self.question.fields
        return fields[self._index] if self._index < len(fields) else None

    def is_askers(self, user: UserRef, chat: ChatRef) -> bool:
        return user.qualified_id == self.user.qualified_id and (
            chat.platform,
            chat.platform_chat_id,
        ) == (self.chat.platform, self.chat.platform_chat_id)

    def step(self) -> InputStep:
        question = self.question
        who = _(question.asked_by, name=question.source) if question.asked_by else _("A tool")
        closing = ((_("Decline"), DECLINE), (_("Cancel"), CANCEL))
        if question.url:
            text = _(
                "{who} asks you to open a link: {message}\n{url}\nIt leads to {domain}. "
                "Press Done when you have finished there.",
                who=who,
                message=question.message,
                url=question.url,
                domain=question.domain or "?",
            )
            return InputStep(text, ((_("Done"), DONE), *closing), url=question.url)
        field = self.field
        if field is None:  # a form without fields: only consent is asked
            text = _("{who} asks: {message}", who=who, message=question.message)
            return InputStep(text, ((_("Continue"), DONE), *closing))
        lines = [_("{who} asks: {message}", who=who, message=question.message)]
        label = f"{field.label}: {field.description}" if field.description else field.label
        lines.append(label)
        buttons: list[tuple[str, str]] = []
        typed = False
        if field.kind is InputFieldKind.BOOLEAN:
            buttons = [(_("Yes"), YES), (_("No"), NO)]
        elif field.kind is InputFieldKind.CHOICE:
            buttons = [(choice, str(number)) for number, choice in enumerate(field.choices)]
        else:
            typed = True
            lines.append(
                _("Reply with a number.")
                if field.kind in (InputFieldKind.NUMBER, InputFieldKind.INTEGER)
                else _("Reply with the text.")
            )
        if self._note:
            lines.append(self._note)
        if not field.required:
            buttons.append((_("Skip"), SKIP))
        return InputStep("\n".join(lines), (*buttons, *closing), typed=typed)

    def take_key(self, key: str) -> bool:
        """A pressed button; False if it does not belong to the current step."""
        if key in (DECLINE, CANCEL):
            action = InputAction.DECLINE if key == DECLINE else InputAction.CANCEL
            return self._decide(InputAnswer(action))
        if self.question.url or self.field is None:
            return key == DONE and self._decide(InputAnswer(InputAction.ACCEPT))
        field = self.field
        if key == SKIP and not field.required:
            return self._advance()
        if field.kind is InputFieldKind.BOOLEAN and key in (YES, NO):
            self.values[field.name] = key == YES
            return self._advance()
        if field.kind is InputFieldKind.CHOICE and key.isdigit() and int(key) < len(field.choices):
            self.values[field.name] = field.choices[int(key)]
            return self._advance()
        return False

    def take_text(self, text: str) -> bool:
        """A typed reply for the current field; False (with a note shown next) if it
        is not a value of the field's kind."""
        field = self.field
        if field is None or self.question.url or field.kind in _PRESSED:
            return False
        text = text.strip()
        try:
            if field.kind is InputFieldKind.INTEGER:
                self.values[field.name] = int(text)
            elif field.kind is InputFieldKind.NUMBER:
                self.values[field.name] = float(text)
            elif text:
                self.values[field.name] = text
            else:
                raise ValueError(text)
        except ValueError:
            self._note = _("That is not a value for {label}; try again.", label=field.label)
            self.changed.set()
            return False
        return self._advance()

    def _advance(self) -> bool:
        self._note = ""
        self._index += 1
        if self.field is None:
            return self._decide(InputAnswer(InputAction.ACCEPT, dict(self.values)))
        self.changed.set()
        return True

    def _decide(self, answer: InputAnswer) -> bool:
        if self.result is None:
            self.result = answer
        self.changed.set()
        return True


_PRESSED = (InputFieldKind.BOOLEAN, InputFieldKind.CHOICE)
ShowStep = Callable[[PendingInput, InputStep], Awaitable[None]]


class InputQuestions:
    """Every open question of this process, by token."""

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self._open: dict[str, PendingInput] = {}

    def open(self, user: UserRef, chat: ChatRef, question: InputQuestion) -> PendingInput:
        token = secrets.token_urlsafe(8)
        pending = PendingInput(token, user, chat, question)
        self._open[token] = pending
        return pending

    def close(self, pending: PendingInput) -> None:
        self._open.pop(pending.token, None)

    async def ask(
        self, user: UserRef, chat: ChatRef, question: InputQuestion, show: ShowStep
    ) -> InputAnswer:
        """Show each step with `show` until the asker finishes, declines or cancels, or
        the time runs out (cancelled)."""
        pending = self.open(user, chat, question)
        try:
            async with asyncio.timeout(self.timeout):
                while pending.result is None:
                    pending.changed.clear()
                    await show(pending, pending.step())
                    await pending.changed.wait()
        except TimeoutError:
            log.info("a question to %s was not answered in time; cancelled", user.qualified_id)
            return InputAnswer(InputAction.CANCEL)
        finally:
            self.close(pending)
        return pending.result

    def press(self, token: str, presser: UserRef, chat: ChatRef, key: str) -> InputPress:
        pending = self._open.get(token)
        if pending is None:
            return InputPress.EXPIRED
        if not pending.is_askers(presser, chat):
            log.warning(
                "%s pressed a button of a question to %s; refused",
                presser.qualified_id,
                pending.user.qualified_id,
            )
            return InputPress.NOT_YOURS
        return InputPress.TAKEN if pending.take_key(key) else InputPress.INVALID

    def reply(self, user: UserRef, chat: ChatRef, text: str) -> bool:
        """Take `text` as the answer to this user's open question in this chat, if one
        waits for a typed reply (True: the message was an answer, not a new turn)."""
        for pending in self._open.values():
            if pending.is_askers(user, chat) and pending.step().typed:
                pending.take_text(text)
                return True
        return False


def press_notice(outcome: InputPress) -> str:
    """What the presser is told when their press was not taken."""
    if outcome is InputPress.NOT_YOURS:
        return _("This question is for someone else.")
    if outcome is InputPress.EXPIRED:
        return _("This question has expired.")
    return _("That answer does not fit this question.")
