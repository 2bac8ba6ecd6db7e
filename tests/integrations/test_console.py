from __future__ import annotations

import io

from bot.domain import ChatRef, ToolCall, ToolResult, UserRef
from integrations.console import ConsoleMessenger, ConsoleSurface

USER = UserRef("console", "me")


async def never_called(prompt: str) -> str:
    raise AssertionError("no input expected")


async def test_streamed_text_and_tool_lines_read_cleanly() -> None:
    out = io.StringIO()
    surface = ConsoleSurface(out, never_called, color=False)
    call = ToolCall("c1", "get_current_time", {"timezone": "UTC"})
    await surface.start()
    for delta in ("Let me ", "check."):
        await surface.stream(delta)
    await surface.tool_started(call)
    await surface.tool_finished(call, ToolResult("c1", "get_current_time", "12:00"))
    for delta in ("\n\n", "It is ", "noon.\n\nBye."):
        await surface.stream(delta)
    await surface.finish("")
    assert out.getvalue() == (
        "Let me check.\n"
        '  → get_current_time({"timezone": "UTC"})\n'
        "  ← get_current_time: 12:00\n"
        "It is noon.\n\nBye.\n"
    )


async def test_colour_only_on_request_and_errors_are_marked() -> None:
    out = io.StringIO()
    surface = ConsoleSurface(out, never_called, color=True)
    call = ToolCall("c1", "t", None, "{bad")
    await surface.tool_finished(call, ToolResult("c1", "t", "x" * 500, is_error=True))
    text = out.getvalue()
    assert text.startswith("\x1b[2m  ✗ t: xxx") and text.endswith("…\x1b[0m\n")
    assert len(text) < 200


async def test_confirmation_needs_an_explicit_yes() -> None:
    answers = iter(["y", "no", ""])

    async def reader(prompt: str) -> str:
        return next(answers)

    surface = ConsoleSurface(io.StringIO(), reader, color=False)
    assert [await surface.confirm(USER, "Send?") for _ in range(3)] == [True, False, False]

    async def eof(prompt: str) -> str:
        raise EOFError

    assert await ConsoleSurface(io.StringIO(), eof, color=False).confirm(USER, "Send?") is False


async def test_proactive_messages_are_printed() -> None:
    # Reminders and follow-ups reach the terminal through its Messenger (a Surface only
    # answers the turn it was made for).
    out = io.StringIO()
    messenger = ConsoleMessenger(out)
    await messenger.send(ChatRef("console", "local"), "Reminder!")
    assert messenger.platform == "console"
    assert out.getvalue() == "\nReminder!\n"
