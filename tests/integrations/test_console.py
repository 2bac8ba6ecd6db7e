from __future__ import annotations

import io
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from bot.app import Application
from bot.approvals import Answer, Approvals
from bot.config import Settings
from bot.domain import (
    ChatRef,
    IncomingMessage,
    InputAction,
    InputAnswer,
    InputField,
    InputFieldKind,
    InputQuestion,
    ToolCall,
    ToolResult,
    UserRef,
)
from bot.questions import InputQuestions
from integrations.console import CONSOLE_CHAT, ConsoleMessenger, ConsoleSurface, run_console
from tests.apps import two_providers
from tests.fakes.openai_server import ScriptedOpenAIServer, text_reply, tool_call_reply
from tools.email import SendEmailParams, send_email

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
    await surface.tool_started(call, "Running get_current_time…")
    await surface.tool_progress(call, "1 of 2: asking the clock")
    await surface.tool_finished(call, ToolResult("c1", "get_current_time", "12:00"))
    for delta in ("\n\n", "It is ", "noon.\n\nBye."):
        await surface.stream(delta)
    await surface.finish("")
    assert out.getvalue() == (
        "Let me check.\n"
        '  → get_current_time({"timezone": "UTC"})\n'
        "  … get_current_time: 1 of 2: asking the clock\n"
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


async def test_a_question_needs_an_explicit_answer_and_shows_all_on_request() -> None:
    approvals = Approvals(None, None, timeout_seconds=30)
    chat = CONSOLE_CHAT

    async def ask(*typed: str, body: str = "Hi.") -> tuple[Answer, str]:
        answers = iter(typed)

        async def reader(prompt: str) -> str:
            return next(answers)

        out = io.StringIO()
        params = SendEmailParams(to=["ops@example.com"], subject="Hello", body=body)
        question = await approvals.open(USER, chat, 0, send_email, params, True)
        answer = await ConsoleSurface(out, reader, color=False).confirm(USER, question)
        return answer, out.getvalue()

    once, shown = await ask("o")
    assert once is Answer.ONCE and "To: ops@example.com" in shown and "Approved once" in shown
    assert (await ask("a"))[0] is Answer.ALWAYS
    assert (await ask("no"))[0] is Answer.DENIED
    assert (await ask(""))[0] is Answer.DENIED
    long_body = "word " * 1600  # 8,000 characters
    answer, shown = await ask("s", "d", body=long_body)
    assert answer is Answer.DENIED and "Body (8000 characters)" in shown
    assert long_body.strip() in shown  # "show" printed the whole body

    async def eof(prompt: str) -> str:
        raise EOFError

    params = SendEmailParams(to=["ops@example.com"], subject="Hello", body="Hi.")
    question = await approvals.open(USER, chat, 0, send_email, params, True)
    assert await ConsoleSurface(io.StringIO(), eof, color=False).confirm(USER, question) is (
        Answer.DENIED
    )


async def test_proactive_messages_are_printed() -> None:
    # Reminders and follow-ups reach the terminal through its Messenger (a Surface only
    # answers the turn it was made for).
    out = io.StringIO()
    messenger = ConsoleMessenger(out)
    await messenger.send(ChatRef("console", "local"), "Reminder!")
    assert messenger.platform == "console"
    assert out.getvalue() == "\nReminder!\n"


async def test_the_terminal_runs_turns_reset_and_tools_on_the_desk(
    llm: ScriptedOpenAIServer, tmp_path: Path
) -> None:
    llm.script(text_reply("Hello from the model."))
    app = Application(terminal_settings(llm, tmp_path), tools=[])
    typed = typed_lines("hello", "/tools", "/reset", "/help")

    out = io.StringIO()
    try:
        await app.start()
        await run_console(app.desk, reader=typed, out=out, user=USER, color=False)
        # The turn went through the core: stored, in the console's own conversation.
        message = IncomingMessage(chat=CONSOLE_CHAT, user=USER, text="")
        assert await app.desk.reset(message) is False  # /reset already closed it
    finally:
        await app.aclose()
    shown = out.getvalue()
    assert shown.startswith("Parley (scripted). Commands: /reset")
    assert "Hello from the model." in shown
    assert "No tools are enabled in this chat.\n" in shown
    assert "Started a new conversation.\n" in shown
    assert shown.count("Commands: /reset") == 2
    [request] = llm.requests
    assert request["messages"][-1] == {"role": "user", "content": "hello"}


async def test_the_terminal_lists_and_forgets_what_it_remembers(
    llm: ScriptedOpenAIServer, tmp_path: Path
) -> None:
    llm.script(
        tool_call_reply(("remember", {"text": "I am vegetarian", "scope": "private"})),
        text_reply("Noted."),
    )
    app = Application(terminal_settings(llm, tmp_path))
    typed = typed_lines(
        "remember I'm vegetarian", "/memory", "/forget 999", "/forget all", "/memory"
    )

    out = io.StringIO()
    try:
        await app.start()
        await run_console(app.desk, reader=typed, out=out, user=USER, color=False)
    finally:
        await app.aclose()
    shown = out.getvalue()
    assert "What I remember about you:" in shown and "I am vegetarian" in shown
    assert "There is no fact 999 here; /memory lists them." in shown
    assert "Forgot 1 fact." in shown
    assert "I don't remember anything about you." in shown


async def test_the_terminal_answers_numbers_that_are_not_plain_numbers(
    llm: ScriptedOpenAIServer, tmp_path: Path
) -> None:
    huge = "1234567890123456789012345"
    app = Application(terminal_settings(llm, tmp_path))
    typed = typed_lines("/forget ²", f"/forget {huge}", "/tools revoke ²", f"/tools revoke {huge}")

    out = io.StringIO()
    try:
        await app.start()
        await run_console(app.desk, reader=typed, out=out, user=USER, color=False)
    finally:
        await app.aclose()
    shown = out.getvalue()
    assert shown.count("/forget followed by its number") == 2
    assert "You have no standing approval ²." in shown
    assert f"You have no standing approval {huge}." in shown
    assert llm.requests == []


def terminal_settings(llm: ScriptedOpenAIServer, tmp_path: Path) -> Settings:
    return Settings.load(
        env_file=None,
        llm={"base_url": llm.base_url, "api_key": "sk-test", "model": "scripted"},
        database={"url": f"sqlite:///{tmp_path / 'parley.db'}"},
    )


def typed_lines(*typed: str) -> Callable[[str], Awaitable[str]]:
    """A reader that types `typed`, one line per prompt, then Ctrl-D."""
    lines = iter(typed)

    async def read(prompt: str) -> str:
        try:
            return next(lines)
        except StopIteration:
            raise EOFError from None

    return read


async def test_the_terminal_speaks_its_lang_and_language_changes_it(
    llm: ScriptedOpenAIServer, tmp_path: Path
) -> None:
    app = Application(terminal_settings(llm, tmp_path), tools=[])
    chinese = UserRef("console", "li", "li", language="zh_CN")
    typed = typed_lines("/tools", "/language en", "/tools", "/language auto")

    out = io.StringIO()
    try:
        await app.start()
        await run_console(app.desk, reader=typed, out=out, user=chinese, color=False)
    finally:
        await app.aclose()
    shown = out.getvalue()
    assert shown.startswith("Parley (scripted). 命令：/reset 开始新对话")
    assert "这个聊天中没有启用任何工具。\n" in shown
    assert "From now on I write to you in English.\nNo tools are enabled in this chat.\n" in shown
    assert shown.endswith("从现在起，我会用中文给你写消息。\n\n")  # and Ctrl-D


async def test_a_tools_form_and_link_in_the_terminal() -> None:
    form = InputQuestion(
        "Book a table",
        fields=(
            InputField("guests", "Guests", InputFieldKind.INTEGER),
            InputField("outside", "Outside", InputFieldKind.BOOLEAN),
        ),
        asked_by="MCP server {name}",
        source="web",
    )
    typed = iter(["four", "4", "maybe", "y", ""])  # Enter sends the answers

    async def reader(prompt: str) -> str:
        return next(typed)

    out = io.StringIO()
    surface = ConsoleSurface(out, reader, color=False, questions=InputQuestions(timeout=30))
    answer = await surface.ask(USER, form)
    assert answer == InputAnswer(InputAction.ACCEPT, {"guests": 4, "outside": True})
    shown = out.getvalue()
    assert "MCP server web asks: Book a table" in shown
    assert "Not taken: Type a whole number, like 42." in shown
    assert "Check your answers, then press Send:\n  Guests: 4\n  Outside: Yes" in shown

    link = InputQuestion("Sign in", url="https://auth.example.com/x", asked_by="MCP server web")
    typed = iter(["d"])
    out = io.StringIO()
    surface = ConsoleSurface(out, reader, color=False, questions=InputQuestions(timeout=30))
    assert await surface.ask(USER, link) == InputAnswer(InputAction.DECLINE)
    assert "It leads to auth.example.com" in out.getvalue()

    async def eof(prompt: str) -> str:
        raise EOFError

    surface = ConsoleSurface(io.StringIO(), eof, color=False, questions=InputQuestions(30))
    assert await surface.ask(USER, link) == InputAnswer(InputAction.CANCEL)


async def test_the_terminal_chooses_a_provider_in_chinese_for_parley_admins(
    llm: ScriptedOpenAIServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The terminal has no admins of its own: PARLEY_ADMINS decides; the words are the
    catalog's, here in Chinese."""
    settings = Settings.load(
        env_file=None,
        llm=two_providers(tmp_path, llm.base_url, monkeypatch),
        database={"url": f"sqlite:///{tmp_path / 'parley.db'}"},
        admin={"admins": "console:li"},
    )
    llm.script(text_reply("你好。"))
    app = Application(settings, tools=[])
    chinese = UserRef("console", "li", "li", language="zh_CN")
    typed = typed_lines("/provider", "/provider nobody", "/provider backup", "hello")
    out = io.StringIO()
    try:
        await app.start()
        await run_console(app.desk, reader=typed, out=out, user=chinese, color=False)
    finally:
        await app.aclose()
    shown = out.getvalue()
    assert "此聊天由 primary 回答。\n模型服务商：primary, backup（默认为 primary）。" in shown
    assert "没有名为 nobody 的模型服务商。已配置的服务商：primary, backup。" in shown
    assert "此聊天现在由 backup 回答。" in shown
    [request] = llm.requests
    assert request["model"] == "backup-model"


async def test_the_terminal_says_there_is_one_provider_without_a_file(
    llm: ScriptedOpenAIServer, tmp_path: Path
) -> None:
    app = Application(terminal_settings(llm, tmp_path), tools=[])
    out = io.StringIO()
    try:
        await app.start()
        await run_console(
            app.desk, reader=typed_lines("/provider x"), out=out, user=USER, color=False
        )
    finally:
        await app.aclose()
    assert "This bot has one model provider (scripted): there is nothing to choose." in (
        out.getvalue()
    )
