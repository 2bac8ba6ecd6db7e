"""Budgets and the rate limit from outside: real `parley run` processes in Telegram
webhook mode against the fake Bot API and the scripted model, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from tests.databases import fresh_postgres_database, sqlite_url
from tests.fakes.openai_server import ScriptedOpenAIServer, text_reply
from tests.fakes.telegram_server import BOT_USERNAME, TOKEN, FakeTelegramServer, group_message
from tests.processes import Run, free_port

SECRET = "budget-webhook-secret"
HOOK = "https://parley.example.test/telegram/hook"
ALICE_ID = 4711
TURN_TOKENS = 1000  # what every scripted answer reports using

# Two `parley run` processes start, answer and stop on a busy machine: bounded, generously.
pytestmark = pytest.mark.timeout(240)


@pytest.fixture(params=["sqlite", "postgres"])
async def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    if request.param == "sqlite":
        yield sqlite_url(tmp_path)
        return
    async with fresh_postgres_database(request.getfixturevalue("postgres_url")) as url:
        yield url.replace("postgresql+asyncpg://", "postgresql://")


def start(
    directory: Path, llm: ScriptedOpenAIServer, telegram: FakeTelegramServer, **env: str
) -> tuple[Run, str]:
    """`parley run` in Telegram webhook mode on a free port (not waited for yet)."""
    directory.mkdir(exist_ok=True)
    port = free_port()
    run = Run(
        directory,
        PARLEY_HTTP_PORT=str(port),
        OPENAI_API_KEY="sk-x",
        OPENAI_BASE_URL=llm.base_url,
        TELEGRAM_BOT_TOKEN=TOKEN,
        PARLEY_TELEGRAM_BASE_URL=telegram.base_url,
        PARLEY_TELEGRAM_WEBHOOK_URL=HOOK,
        PARLEY_TELEGRAM_WEBHOOK_SECRET=SECRET,
        **env,
    )
    return run, f"http://127.0.0.1:{port}"


async def mention_in_groups(bases: list[str], count: int) -> None:
    """Alice mentions the bot in `count` groups at once, spread over the replicas."""
    headers = {"X-Telegram-Bot-Api-Secret-Token": SECRET}
    async with httpx.AsyncClient(timeout=30) as client:
        answers = await asyncio.gather(
            *(
                client.post(
                    f"{bases[n % len(bases)]}/telegram/hook",
                    json={
                        "update_id": 9000 + n,
                        **group_message(-1000 - n, ALICE_ID, f"@{BOT_USERNAME} question {n}"),
                    },
                    headers=headers,
                )
                for n in range(count)
            )
        )
    assert [a.status_code for a in answers] == [200] * count


async def replies_per_group(
    telegram: FakeTelegramServer, count: int, runs: list[Run]
) -> dict[int, list[str]]:
    """Once every group got a final reply (up to a generous deadline): the texts each
    group was sent (new messages, rich ones and edits)."""
    deadline = time.monotonic() + 90
    while True:
        texts: dict[int, list[str]] = {}
        for call in telegram.calls_of("sendMessage", "editMessageText", "sendRichMessage"):
            # Answers are rich messages (Bot API 10.1); refusals and previews plain text.
            rich = call.params.get("rich_message")
            text = rich.get("markdown", "") if isinstance(rich, dict) else call.params["text"]
            texts.setdefault(int(call.params["chat_id"]), []).append(str(text))
        finished = [chat for chat, sent in texts.items() if any(final(t) for t in sent)]
        if len(finished) == count:
            return texts
        for run in runs:
            assert run.returncode is None, run.output()[1]
        assert time.monotonic() < deadline, (texts, [run.output()[1] for run in runs])
        await asyncio.sleep(0.1)


def final(text: str) -> bool:
    return text == "answered" or "budget" in text or "faster than the limit" in text


async def test_twenty_groups_at_once_spend_at_most_the_budget_plus_one_turn(
    tmp_path: Path, llm: ScriptedOpenAIServer, telegram: FakeTelegramServer, database_url: str
) -> None:
    llm.set_default(text_reply("answered", delay=1.0, usage=(600, 400)))
    budget = 5000
    run, base = start(
        tmp_path / "one",
        llm,
        telegram,
        DATABASE_URL=database_url,
        PARLEY_USER_DAILY_TOKENS=str(budget),
        PARLEY_TURN_TOKEN_ESTIMATE=str(TURN_TOKENS),
    )
    try:
        run.wait_ready(f"{base}/readyz")
        await mention_in_groups([base], 20)
        texts = await replies_per_group(telegram, 20, [run])
    finally:
        _, log = run.stop()

    assert "Traceback" not in log
    answered = [chat for chat, sent in texts.items() if "answered" in sent]
    told = [chat for chat, sent in texts.items() if any("budget" in t for t in sent)]
    # Each model call reports TURN_TOKENS: the calls made are what was spent.
    assert len(llm.requests) * TURN_TOKENS <= budget + TURN_TOKENS
    assert len(answered) == len(llm.requests) and answered
    assert sorted(answered + told) == sorted(texts), "every group got one outcome"


async def test_two_replicas_on_one_database_share_the_rate_limit(
    tmp_path: Path, llm: ScriptedOpenAIServer, telegram: FakeTelegramServer, database_url: str
) -> None:
    llm.set_default(text_reply("answered", delay=0.2))
    env = {"DATABASE_URL": database_url, "PARLEY_USER_MESSAGES_PER_MINUTE": "3"}
    first, first_base = start(tmp_path / "first", llm, telegram, **env)
    try:
        first.wait_ready(f"{first_base}/readyz")  # it made the schema: the second finds it
        second, second_base = start(tmp_path / "second", llm, telegram, **env)
        try:
            second.wait_ready(f"{second_base}/readyz")
            await mention_in_groups([first_base, second_base], 8)
            texts = await replies_per_group(telegram, 8, [first, second])
        finally:
            second.stop()
    finally:
        first.stop()

    answered = [chat for chat, sent in texts.items() if "answered" in sent]
    limited = [
        chat for chat, sent in texts.items() if any("faster than the limit of 3" in t for t in sent)
    ]
    assert len(answered) == 3 == len(llm.requests)
    assert len(limited) == 5
