"""Questions a tool asks the user mid-call (an MCP server's elicitation), in chat.

`InputQuestions` (one per process, built by bot/app.py) holds every open question. A
Surface's `ask` runs `InputQuestions.ask` with a function that shows one step at a
time: a field of the form (buttons for a boolean or a choice, toggled options and Done
for a multi-choice, a typed reply for text and numbers, "Keep …" for a default) or the
link (URL mode, with the host a browser would open, bot/links.py), always with Decline
and Cancel. The step's text and buttons are written here, once, for every platform, with
the server's words made safe to show (`visible`). Every value is checked against its
field's limits before it is taken (bot/approvals/forms.py): one that does not fit is not sent, the
step is shown again with the reason. A link that must not be shown is declined unasked.

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
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from bot.approvals.forms import NotAValue, parse, problem, shown
from bot.domain import (
    ChatRef,
    InputAction,
    InputAnswer,
    InputChoice,
    InputField,
    InputFieldKind,
    InputQuestion,
    InputValue,
    UserRef,
)
from bot.i18n import _
from bot.links import inspect_link, visible

log = logging.getLogger(__name__)

# Button keys (a press carries one): a choice's index, or one of these.
YES, NO, SKIP, DONE, DECLINE, CANCEL, KEEP, CHANGE = "y", "n", "s", "a", "d", "c", "k", "r"
SHORT_LABEL = 40  # a default's words on a "Keep …" button


class InputPress(enum.StrEnum):
    """What became of a press or typed value."""

    TAKEN = "taken"
    NOT_YOURS = "not_yours"
    EXPIRED = "expired"
    INVALID = "invalid"


@dataclass(frozen=True, slots=True)
class InputStep:
    """What a Surface shows now: `text`, buttons as (label, key), whether a typed reply
    is expected (`typed`), the link (`url`, normalised, and its `domain`), and for a
    multi-choice its `options` as (label, key, selected), toggled by pressing their key
    and sent with Done. `refresh`: the same step again with only its selection changed
    (a platform that can edit the shown step in place does)."""

    text: str
    buttons: tuple[tuple[str, str], ...]
    typed: bool = False
    url: str = ""
    domain: str = ""
    options: tuple[tuple[str, str, bool], ...] = ()
    refresh: bool = False


class PendingInput:
    """One open question: its asker, chat and progress through the fields."""

    def __init__(self, token: str, user: UserRef, chat: ChatRef, question: InputQuestion) -> None:
        self.token = token
        self.user = user
        self.chat = chat
        self.question = question
        self.values: dict[str, InputValue] = {}
        self.result: InputAnswer | None = None
        self._index = 0
        self._note = ""  # why the last value was not taken
        self._selected: set[str] = set()  # a multi-choice's values toggled on
        self._refresh = False
        self._reviewing = False  # every field answered: the answers shown before they go
        self._start_field()
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
        message = visible(question.message)
        closing = ((_("Decline"), DECLINE), (_("Cancel"), CANCEL))
        if question.url:
            link = inspect_link(question.url)
            text = _(
                "{who} asks you to open a link: {message}\n{url}\nIt leads to {domain}. "
                "Press Done when you have finished there.",
                who=who,
                message=message,
                url=link.href,
                domain=link.host,
            )
            if link.is_punycode:
                text += "\n" + _(
                    "Careful: {domain} is how a name with non-Latin letters is written; "
                    "it may look like another site's.",
                    domain=link.host,
                )
            done = ((_("Done"), DONE), *closing)
            return InputStep(text, done, url=link.href, domain=link.host)
        if self._reviewing:
            return self._review(who, message, closing)
        field = self.field
        if field is None:  # a form without fields: only consent is asked
            text = _("{who} asks: {message}", who=who, message=message)
            return InputStep(text, ((_("Continue"), DONE), *closing))
        label = visible(field.label, lines=False)
        lines = [_("{who} asks: {message}", who=who, message=message)]
        lines.append(f"{label}: {visible(field.description)}" if field.description else label)
        buttons: list[tuple[str, str]] = []
        options: tuple[tuple[str, str, bool], ...] = ()
        typed = False
        if field.kind is InputFieldKind.BOOLEAN:
            buttons = [(_("Yes"), YES), (_("No"), NO)]
        elif field.kind is InputFieldKind.CHOICE:
            buttons = [(self._label(c), str(n)) for n, c in enumerate(field.choices)]
        elif field.kind is InputFieldKind.MULTI_CHOICE:
            options = tuple(
                (self._label(c), str(n), c.value in self._selected)
                for n, c in enumerate(field.choices)
            )
            lines.append(_("Choose any of the options, then press Done."))
            buttons = [(_("Done"), DONE)]
        else:
            typed = True
            lines.append(_typed_hint(field))
        lines.extend(_limits_hint(field))
        if field.default is not None and field.kind is not InputFieldKind.MULTI_CHOICE:
            default = visible(shown(field, field.default), lines=False)
            lines.append(_("Default: {value}", value=default))
            buttons.append((_("Keep {value}", value=_short(default)), KEEP))
        if self._note:
            lines.append(self._note)
        if not field.required:
            buttons.append((_("Skip"), SKIP))
        text = "\n".join(lines)
        return InputStep(
            text, (*buttons, *closing), typed=typed, options=options, refresh=self._refresh
        )

    def _review(self, who: str, message: str, closing: tuple[tuple[str, str], ...]) -> InputStep:
        """The answers as they will be sent: Send them, or Change (from the first field)."""
        lines = [_("{who} asks: {message}", who=who, message=message)]
        lines.append(_("Check your answers, then press Send:"))
        for field in self.question.fields:
            value = self.values.get(field.name)
            answer = _("(skipped)") if value is None else visible(shown(field, value))
            lines.append(f"{visible(field.label, lines=False)}: {answer}")
        buttons = ((_("Send"), DONE), (_("Change"), CHANGE), *closing)
        return InputStep("\n".join(lines), buttons)

    @staticmethod
    def _label(choice: InputChoice) -> str:
        return visible(choice.label, lines=False)

    def take_key(self, key: str, selection: Sequence[str] | None = None) -> bool:
        """A pressed button (with Done of a multi-choice, the option keys chosen, where
        the platform keeps the selection itself); False if it does not belong here."""
        self._refresh = False
        if key in (DECLINE, CANCEL):
            action = InputAction.DECLINE if key == DECLINE else InputAction.CANCEL
            return self._decide(InputAnswer(action))
        if self._reviewing:
            if key == CHANGE:  # asked again from the first field
                self._reviewing, self._index, self.values = False, 0, {}
                self._start_field()
                self.changed.set()
                return True
            return key == DONE and self._decide(InputAnswer(InputAction.ACCEPT, dict(self.values)))
        if self.question.url or self.field is None:
            return key == DONE and self._decide(InputAnswer(InputAction.ACCEPT))
        field = self.field
        if key == SKIP and not field.required:
            return self._advance()
        # A press of this step's is taken even when its value breaks a limit (a server's
        # default may): the reason is shown with the step again.
        if key == KEEP and field.default is not None:
            return self._offer(field, field.default) or True
        if field.kind is InputFieldKind.BOOLEAN and key in (YES, NO):
            return self._offer(field, key == YES) or True
        choice = _choice(field, key)
        if field.kind is InputFieldKind.CHOICE and choice is not None:
            return self._offer(field, choice.value) or True
        if field.kind is not InputFieldKind.MULTI_CHOICE:
            return False
        if choice is not None:
            self._selected ^= {choice.value}
            self._refresh = True
            self.changed.set()
            return True
        if key != DONE:
            return False
        if selection is not None:
            chosen = [_choice(field, item) for item in selection]
            if None in chosen:
                return False
            self._selected = {c.value for c in chosen if c is not None}
        chosen_values = [c.value for c in field.choices if c.value in self._selected]
        return self._offer(field, chosen_values) or True

    def take_text(self, text: str) -> bool:
        """A typed reply for the current field; False (with the reason shown next) if it
        is not a value the field takes."""
        self._refresh = False
        field = self.field
        if field is None or self.question.url or field.kind in _PRESSED:
            return False
        try:
            value = parse(field, text)
        except NotAValue as exc:
            self._refuse(exc.reason)
            return False
        return self._offer(field, value)

    def _offer(self, field: InputField, value: InputValue) -> bool:
        """`value` for `field`, taken if it meets the field's limits; otherwise the reason
        is shown and the field asked again."""
        reason = problem(field, value)
        if reason:
            self._refuse(reason)
            return False
        self.values[field.name] = value
        return self._advance()

    def _refuse(self, reason: str) -> None:
        self._note = _("Not taken: {reason}", reason=reason)
        self.changed.set()

    def _start_field(self) -> None:
        field = self.field
        default = field.default if field is not None else None
        self._selected = set(default) if isinstance(default, list) else set()

    def _advance(self) -> bool:
        self._note = ""
        self._index += 1
        self._start_field()
        self._reviewing = self.field is None
        self.changed.set()
        return True

    def _decide(self, answer: InputAnswer) -> bool:
        if self.result is None:
            self.result = answer
        self.changed.set()
        return True


def _choice(field: InputField, key: str) -> InputChoice | None:
    if key.isascii() and key.isdigit() and len(key) < 4 and int(key) < len(field.choices):
        return field.choices[int(key)]
    return None


def _short(text: str) -> str:
    return text if len(text) <= SHORT_LABEL else text[: SHORT_LABEL - 1] + "…"


def _typed_hint(field: InputField) -> str:
    if field.kind is InputFieldKind.INTEGER:
        return _("Reply with a whole number.")
    if field.kind is InputFieldKind.NUMBER:
        return _("Reply with a number.")
    hints = {
        "email": _("Reply with an email address."),
        "uri": _("Reply with a web address."),
        "date": _("Reply with a date (year-month-day)."),
        "date-time": _("Reply with a date and time, with its time zone."),
    }
    return hints.get(field.limits.format, _("Reply with the text."))


def _limits_hint(field: InputField) -> list[str]:
    """The field's bounds, told up front."""
    limits = field.limits
    low, high = limits.minimum, limits.maximum
    if field.kind is InputFieldKind.MULTI_CHOICE:
        low, high = limits.min_items, limits.max_items
    elif field.kind is InputFieldKind.TEXT:
        low, high = limits.min_length, limits.max_length
    elif field.kind not in (InputFieldKind.NUMBER, InputFieldKind.INTEGER):
        return []
    if low is None and high is None:
        return []
    if field.kind is InputFieldKind.MULTI_CHOICE:
        what = _("Choices")
    elif field.kind is InputFieldKind.TEXT:
        what = _("Characters")
    else:
        what = _("Allowed")
    if low is not None and high is not None:
        bounds = _(
            "{what}: from {low} to {high}.",
            what=what,
            low=shown(field, low),
            high=shown(field, high),
        )
    elif low is not None:
        bounds = _("{what}: at least {low}.", what=what, low=shown(field, low))
    else:
        bounds = _("{what}: at most {high}.", what=what, high=shown(field, high or 0))
    return [bounds]


_PRESSED = (InputFieldKind.BOOLEAN, InputFieldKind.CHOICE, InputFieldKind.MULTI_CHOICE)
ShowStep = Callable[[PendingInput, InputStep], Awaitable[None]]
# How a surface puts a tool's question to a user: `InputQuestions.ask`, handed over by the desk.
AskUser = Callable[[UserRef, ChatRef, InputQuestion, ShowStep], Awaitable[InputAnswer]]


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
        the time runs out (cancelled). A link that must not be put to a user (bot/links.py)
        is declined for them, and logged."""
        if question.url and not (link := inspect_link(question.url)).ok:
            log.warning(
                "a link from %s was not shown to %s and was declined: %s",
                question.source or "a tool",
                user.qualified_id,
                link.problem,
            )
            return InputAnswer(InputAction.DECLINE)
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

    def press(
        self,
        token: str,
        presser: UserRef,
        chat: ChatRef,
        key: str,
        selection: Sequence[str] | None = None,
    ) -> InputPress:
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
        return InputPress.TAKEN if pending.take_key(key, selection) else InputPress.INVALID

    def reply(self, user: UserRef, chat: ChatRef, text: str) -> bool:
        """Take `text` as the answer to this user's open question in this chat, if one
        waits for a typed reply (True: the message was an answer, not a new turn)."""
        for pending in self._open.values():
            if pending.is_askers(user, chat) and pending.step().typed:
                pending.take_text(text)
                return True
        return False
