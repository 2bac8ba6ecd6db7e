"""`parley chat`: the core in a terminal, with the same database as the bot.

A third platform on the same desk as Slack and Telegram, to show what one needs: a
converter (a typed line → the message and where to answer), a Surface (the terminal),
a Messenger (reminders printed) and rendering (dim tool lines); turns, reset and the
tools list are the desk's. The answer is printed as it streams; each tool call and its
result show as a dim line. `/reset` starts a new conversation, `/tools` lists the tools
and your standing approvals (`/tools revoke N` takes one back), `/help` lists commands,
Ctrl-D quits. An approval question shows the tool's card and reads once / always / deny
(or "show" for the whole of a shortened card). A tool's question (bot/approvals/questions.py)
shows each step with its keys; a typed value answers a text or number field.
"""

from __future__ import annotations

import asyncio
import getpass
import json
import os
import sys
from collections.abc import Awaitable, Callable
from typing import TextIO

from bot.approvals.questions import CANCEL, DONE, KEEP, AskUser, InputStep, PendingInput
from bot.chat import NAMES, CommandStyle, commands, help_text
from bot.chat.desk import Desk
from bot.domain import (
    ChatKind,
    ChatRef,
    IncomingMessage,
    InputAction,
    InputAnswer,
    InputQuestion,
    ToolCall,
    ToolResult,
    UserRef,
)
from bot.i18n import N_, _, use_locale
from bot.surface import Answer, ApprovalPrompt

Reader = Callable[[str], Awaitable[str]]

# The terminal's help: the commands on one line, and how to leave.
STYLE = CommandStyle(N_("Commands: {commands}; Ctrl-D quits."), one_line=True)
RESULT_PREVIEW_CHARS = 160
# A card in the terminal: long enough for every line, short enough to read at a glance.
CARD_LIMIT = 2000
ANSWERS = {
    "o": Answer.ONCE,
    "once": Answer.ONCE,
    "y": Answer.ONCE,
    "yes": Answer.ONCE,
    "a": Answer.ALWAYS,
    "always": Answer.ALWAYS,
}


async def read_line(prompt: str) -> str:
    """`input()` without blocking the event loop; raises EOFError on Ctrl-D."""
    return await asyncio.to_thread(input, prompt)


def console_user() -> UserRef:
    """The person at this terminal; their language is the terminal's (LANG)."""
    name = getpass.getuser()
    language = os.environ.get("LC_ALL") or os.environ.get("LANG") or ""
    return UserRef("console", name, name, language=language.split(".")[0])


CONSOLE_CHAT = ChatRef("console", "local", ChatKind.DM, "terminal")


def to_incoming_message(line: str, user: UserRef) -> tuple[IncomingMessage, ChatRef]:
    """A typed line as the core's message, and where its answer goes (this terminal)."""
    return IncomingMessage(chat=CONSOLE_CHAT, user=user, text=line), CONSOLE_CHAT


class ConsoleSurface:
    """Prints the reply as it grows; asks confirmations on the terminal."""

    def __init__(
        self,
        out: TextIO,
        reader: Reader,
        *,
        color: bool | None = None,
        ask_user: AskUser | None = None,
    ) -> None:
        self.out = out
        self.reader = reader
        self.ask_user = ask_user  # None: tools' questions are cancelled (no desk)
        self.color = out.isatty() if color is None else color
        self._at_line_start = True
        # Right after a dim tool line the engine's round separator would only add blank lines.
        self._after_dim_line = False

    def _write(self, text: str) -> None:
        self.out.write(text)
        self.out.flush()
        if text:
            self._at_line_start = text.endswith("\n")

    def _dim(self, text: str) -> None:
        if not self._at_line_start:
            self._write("\n")
        self._write(f"\x1b[2m{text}\x1b[0m\n" if self.color else f"{text}\n")
        self._after_dim_line = True

    async def start(self) -> None:
        self._at_line_start = True

    async def stream(self, delta: str) -> None:
        if self._after_dim_line and not delta.strip():
            return
        self._after_dim_line = False
        self._write(delta)

    async def status(self, text: str) -> None:
        return None  # the tool lines already say what runs

    async def thinking(self, delta: str) -> None:
        """The terminal shows the answer and the tool lines, not the reasoning."""

    async def tool_started(self, call: ToolCall, progress: str) -> None:
        arguments = (
            json.dumps(call.arguments, ensure_ascii=False)
            if call.arguments is not None
            else call.raw_arguments
        )
        self._dim(f"  → {call.name}({arguments})")

    async def tool_progress(self, call: ToolCall, progress: str) -> None:
        self._dim(f"  … {call.name}: {progress}")

    async def tool_finished(self, call: ToolCall, result: ToolResult) -> None:
        preview = result.content.replace("\n", " ")
        if len(preview) > RESULT_PREVIEW_CHARS:
            preview = preview[: RESULT_PREVIEW_CHARS - 1] + "…"
        self._dim(f"  {'✗' if result.is_error else '←'} {call.name}: {preview}")

    async def finish(self, text: str) -> None:
        if not self._at_line_start:
            self._write("\n")

    async def fail(self, text: str) -> None:
        self._dim(f"! {text}")

    async def confirm(self, user: UserRef, question: ApprovalPrompt) -> Answer:
        card = question.render(CARD_LIMIT)
        self._dim("? " + card.text.replace("\n", "\n  "))
        choices = _("[o]nce, [a]lways, [d]eny") if question.may_remember else _("[o]nce, [d]eny")
        if card.cut:
            choices += _(", [s]how all")
        while True:
            try:
                typed = (await self.reader(f"  {choices}: ")).strip().lower()
            except EOFError:
                return await question.respond(Answer.DENIED)
            if card.cut and typed in ("s", "show"):
                self._write(question.full_text + "\n")
                continue
            answer = ANSWERS.get(typed, Answer.DENIED)
            if answer is Answer.ALWAYS and not question.may_remember:
                answer = Answer.ONCE
            final = await question.respond(answer)
            self._dim(final.note(question.tool))
            return final

    async def ask(self, user: UserRef, question: InputQuestion) -> InputAnswer:
        if self.ask_user is None:
            return InputAnswer(InputAction.CANCEL)
        return await self.ask_user(user, CONSOLE_CHAT, question, self._show_step)

    async def _show_step(self, pending: PendingInput, step: InputStep) -> None:
        """A step on the terminal: a choice's options numbered from 1 (a multi-choice's
        marked [x] when chosen: type several numbers), then the keys; Enter keeps the
        default, or else presses Done (Send, for the answers)."""
        self._dim("? " + step.text.replace("\n", "\n  "))
        numbered = [label for label, key in step.buttons if key.isdigit()]
        for number, (label, _key, on) in enumerate(step.options, 1):
            self._dim(f"  {number}) [{'x' if on else ' '}] {label}")
        for number, label in enumerate(numbered, 1):
            self._dim(f"  {number}) {label}")
        keys = {key: label for label, key in step.buttons if not key.isdigit()}
        hints = [f"[{key}] {label}" for key, label in keys.items()]
        enter = KEEP if KEEP in keys else DONE if DONE in keys else ""
        if enter:
            hints.insert(0, _("[Enter] {action}", action=keys[enter]))
        if step.options:
            hints.insert(0, _("numbers, like 1 3"))
        elif numbered:
            hints.insert(0, _("a number"))
        while True:
            try:
                typed = (await self.reader(f"  {', '.join(hints)}: ")).strip()
            except EOFError:
                pending.take_key(CANCEL)
                return
            numbers = _numbers(typed, len(step.options) or len(numbered))
            if typed.lower() in keys:
                pending.take_key(typed.lower())
            elif not typed and enter:
                pending.take_key(enter)
            elif step.options and numbers is not None:
                pending.take_key(DONE, [str(n - 1) for n in numbers])
            elif numbered and numbers is not None and len(numbers) == 1:
                pending.take_key(str(numbers[0] - 1))
            elif step.typed and typed:
                pending.take_text(typed)
            else:
                continue
            return


def _numbers(typed: str, highest: int) -> list[int] | None:
    """Numbers from 1 to `highest` typed with spaces or commas between, or None."""
    words = typed.replace(",", " ").split()
    if not words or not all(w.isascii() and w.isdigit() and len(w) < 4 for w in words):
        return None
    numbers = sorted({int(w) for w in words})
    return numbers if all(1 <= n <= highest for n in numbers) else None


class ConsoleMessenger:
    """Delivers reminders and follow-ups for the `console` platform by printing them."""

    platform = "console"

    def __init__(self, out: TextIO | None = None) -> None:
        self.out = out

    async def send(self, chat: ChatRef, text: str, thread_key: str = "") -> None:
        stream = self.out or sys.stdout
        stream.write(f"\n{text}\n")
        stream.flush()


async def run_console(
    desk: Desk,
    *,
    reader: Reader = read_line,
    out: TextIO | None = None,
    user: UserRef | None = None,
    color: bool | None = None,
) -> None:
    """Read lines until EOF; each line is a turn."""
    stream = out or sys.stdout
    surface = ConsoleSurface(stream, reader, color=color, ask_user=desk.ask_user)
    who = user or console_user()
    with use_locale(await desk.locale_of(who)):
        stream.write(f"Parley ({desk.model}). {help_text(STYLE)}\n")
    stream.flush()
    while True:
        try:
            line = (await reader("you> ")).strip()
        except EOFError:
            stream.write("\n")
            stream.flush()
            return
        if not line:
            continue
        with use_locale(await desk.locale_of(who)):
            await _line(desk, surface, who, line)


async def _not_an_admin() -> bool:
    """The terminal has no admins of its own: PARLEY_ADMINS decides."""
    return False


async def _line(desk: Desk, surface: ConsoleSurface, who: UserRef, line: str) -> None:
    """One line typed at the terminal: a command of Parley's, or a turn."""
    message, _chat = to_incoming_message(line, who)
    word, _space, argument = line.partition(" ")
    if word.startswith("/") and word[1:].lower() in NAMES:
        reply = await commands.run(desk, STYLE, message, word[1:], argument, ask=_not_an_admin)
        surface._dim(reply.text)
        return
    await desk.turn(message, surface)
