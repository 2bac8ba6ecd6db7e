"""`parley run` with Telegram as a new user meets it: a real process, the real PTB bot,
the fake Bot API. A rejected token or an unreachable API ends the run with one line that
names the setting and never the token; at DEBUG the token appears nowhere."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

from tests.fakes.openai_server import ScriptedOpenAIServer, text_reply
from tests.fakes.telegram_server import TOKEN, FakeTelegramServer, private_message
from tests.processes import Run

WRONG_TOKEN = "7000001:WRONG-token_zyxwvutsrqponmlkjihgfedcba"


def model(llm: ScriptedOpenAIServer) -> dict[str, str]:
    return {"OPENAI_API_KEY": "sk-test-secret", "OPENAI_BASE_URL": llm.base_url}


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def assert_one_clean_line(stdout: str, stderr: str, secret: str) -> str:
    output = stdout + stderr
    assert "Traceback" not in output, output
    assert secret not in output and secret.replace(":", "%3A") not in output, output
    last = stderr.strip().splitlines()[-1]
    assert last.startswith("parley: "), stderr
    return last


def test_a_rejected_token_ends_the_run_with_one_line_naming_the_setting(
    tmp_path: Path, llm: ScriptedOpenAIServer, telegram: FakeTelegramServer
) -> None:
    process = Run(
        tmp_path,
        **model(llm),
        TELEGRAM_BOT_TOKEN=WRONG_TOKEN,
        PARLEY_TELEGRAM_BASE_URL=telegram.base_url,
    )
    try:
        stdout, stderr = process.finish()
    finally:
        process.stop()
    assert process.returncode == 2, stderr
    assert assert_one_clean_line(stdout, stderr, WRONG_TOKEN) == (
        "parley: configuration error: TELEGRAM_BOT_TOKEN was rejected by the Telegram Bot API "
        "(401 Unauthorized)"
    )
    assert [call.method for call in telegram.calls] == []  # refused before any method ran


def test_an_unreachable_bot_api_ends_the_run_with_one_line_naming_the_setting(
    tmp_path: Path, llm: ScriptedOpenAIServer
) -> None:
    base_url = f"http://127.0.0.1:{closed_port()}/bot"
    process = Run(
        tmp_path, **model(llm), TELEGRAM_BOT_TOKEN=TOKEN, PARLEY_TELEGRAM_BASE_URL=base_url
    )
    try:
        stdout, stderr = process.finish()
    finally:
        process.stop()
    assert process.returncode == 1, stderr
    last = assert_one_clean_line(stdout, stderr, TOKEN)
    assert last.startswith(
        f"parley: cannot reach the Telegram Bot API at PARLEY_TELEGRAM_BASE_URL ({base_url}): "
    ), last


async def test_at_debug_the_token_never_reaches_the_output(
    tmp_path: Path, llm: ScriptedOpenAIServer, telegram: FakeTelegramServer
) -> None:
    llm.script(text_reply("Hello from Parley."))
    process = Run(
        tmp_path,
        **model(llm),
        TELEGRAM_BOT_TOKEN=TOKEN,
        PARLEY_TELEGRAM_BASE_URL=telegram.base_url,
        PARLEY_LOG_LEVEL="DEBUG",
    )
    try:
        telegram.push(private_message(42, "hi"))
        await telegram.wait_for(lambda t: bool(t.calls_of("sendRichMessage")), within=60)
        # The bot polled, answered and is polling again: every kind of call has been made.
        polls = len(telegram.calls_of("getUpdates"))
        await telegram.wait_for(lambda t: len(t.calls_of("getUpdates")) > polls, within=30)
    finally:
        stdout, stderr = await asyncio.to_thread(process.stop)
    assert process.returncode == 0, stderr
    [answer] = telegram.calls_of("sendRichMessage")  # rich answers by default
    assert answer.params["rich_message"] == {"markdown": "Hello from Parley."}
    assert " DEBUG " in stderr  # Parley's own debug lines are there
    assert TOKEN not in stdout + stderr
    assert TOKEN.replace(":", "%3A") not in stdout + stderr
