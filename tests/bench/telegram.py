"""Telegram benchmark: messages per second and reply latency through the real adapter.

M users each send K private messages in a closed loop (the next one as soon as the
previous answer arrived). Parley runs here with the Telegram adapter long-polling; the
fake Bot API and the scripted zero-latency model (a streamed 60-word answer) run in
child processes so that they do not compete for this process's GIL. The fake Bot API
drives the loop itself: when it receives a user's final answer it queues that user's
next update, and it stamps every update and every call with the system-wide monotonic
clock, so the latencies below are measured where Telegram would see them:

    first reply = update queued -> first draft or message with text for that chat
    final reply = update queued -> the sendMessage (or sendRichMessage) carrying the answer

Figures cover this process only (CPU per message, peak RSS); every message must be
answered exactly once or the script fails.

Usage: python tests/bench/telegram.py [--users 20 --messages 10] [--profile]
(without --users: one user sending 100 messages, then 20 users sending 10 each)
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import multiprocessing
import pstats
import resource
import statistics
import sys
import tempfile
import time
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

# This file is named telegram.py: its own directory must not shadow python-telegram-bot.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]
sys.path.insert(0, str(_HERE.parents[1]))

from bot.app import Application  # noqa: E402
from bot.config import Settings  # noqa: E402
from tests.fakes.telegram_server import TOKEN  # noqa: E402

ANSWER = " ".join(["word"] * 60)
ANSWERS = ("sendMessage", "sendRichMessage")
PREVIEWS = ("sendMessage", "sendMessageDraft", "sendRichMessage", "sendRichMessageDraft")
FIRST_USER = 10_000


def serve_model(queue: Any) -> None:
    """Child process: the scripted model answering every request with the same stream."""
    from tests.fakes.openai_server import ScriptedOpenAIServer, text_reply

    server = ScriptedOpenAIServer()
    server.start()
    server.set_default(text_reply(ANSWER, chunk_size=6))
    queue.put(server.base_url)
    while True:
        time.sleep(0.5)
        server.requests.clear()
        server.request_headers.clear()


def serve_telegram(conn: Connection, users: int, messages: int) -> None:
    """Child process: the fake Bot API, closing the loop of each user."""
    from tests.fakes.telegram_server import FakeTelegramServer, private_message

    class LoopingServer(FakeTelegramServer):
        def __init__(self) -> None:
            super().__init__()
            self.pushed: dict[int, list[float]] = {}

        def next_message(self, user: int) -> None:
            sent = self.pushed.setdefault(user, [])
            if len(sent) < messages:
                sent.append(time.monotonic())
                self.push(private_message(user, f"question {len(sent)} from {user}"))

        def _m_sendMessage(self, params: dict[str, Any]) -> Any:
            result = super()._m_sendMessage(params)
            self.next_message(int(params["chat_id"]))
            return result

        def _m_sendRichMessage(self, params: dict[str, Any]) -> Any:
            result = super()._m_sendRichMessage(params)
            self.next_message(int(params["chat_id"]))
            return result

    server = LoopingServer()
    server.start()
    conn.send(server.base_url)
    conn.recv()  # go
    for user in range(FIRST_USER, FIRST_USER + users):
        server.next_message(user)
    while True:
        command = conn.recv()
        if command == "count":
            conn.send(len(server.calls_of(*ANSWERS)))
        elif command == "results":
            calls = [
                (
                    c.method,
                    c.params.get("chat_id"),
                    bool(c.params.get("text") or c.params.get("rich_message")),
                    c.at,
                )
                for c in server.calls
            ]
            conn.send((server.pushed, calls))
        else:
            break
    server.stop()


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def latencies(
    pushed: dict[int, list[float]], calls: list[tuple[str, int, bool, float]]
) -> tuple[list[float], list[float], int]:
    """(first-reply latencies, final-reply latencies, extra answers) per message."""
    first: list[float] = []
    final: list[float] = []
    extra = 0
    for user, times in pushed.items():
        mine = [c for c in calls if c[1] == user]
        answers = [c[3] for c in mine if c[0] in ANSWERS]
        extra += max(0, len(answers) - len(times))
        for index, at in enumerate(times):
            until = times[index + 1] if index + 1 < len(times) else float("inf")
            visible = [c[3] for c in mine if c[0] in PREVIEWS and c[2] and at <= c[3] < until]
            done = [t for t in answers if at <= t < until]
            if visible and done:
                first.append(visible[0] - at)
                final.append(done[0] - at)
    return first, final, extra


async def run(users: int, messages: int, profile: bool = False) -> None:
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    model = context.Process(target=serve_model, args=(queue,), daemon=True)
    model.start()
    parent, child = context.Pipe()
    telegram = context.Process(target=serve_telegram, args=(child, users, messages), daemon=True)
    telegram.start()
    model_url, telegram_url = queue.get(timeout=30), parent.recv()
    total = users * messages
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings.load(
            env_file=None,
            llm={"base_url": model_url, "api_key": "sk-bench", "model": "bench", "max_retries": 0},
            database={"url": f"sqlite:///{Path(tmp) / 'bench.db'}"},
            telegram={"bot_token": TOKEN, "base_url": telegram_url},
        )
        app = Application(settings, tools=[])
        await app.start()
        [platform] = app.platforms
        await platform.start()
        profiler = cProfile.Profile() if profile else None
        if profiler is not None:
            profiler.enable()
        cpu, wall = time.process_time(), time.perf_counter()
        parent.send("go")
        deadline = time.monotonic() + 120
        while True:
            await asyncio.sleep(0.1)
            parent.send("count")
            if parent.recv() >= total or time.monotonic() > deadline:
                break
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        if profiler is not None:
            profiler.disable()
            pstats.Stats(profiler).sort_stats("tottime").print_stats(30)
        await asyncio.sleep(0.3)  # let any duplicate show up before counting
        parent.send("results")
        pushed, calls = parent.recv()
        await platform.stop()
        await app.aclose()
    parent.send("stop")
    telegram.join(timeout=10)
    model.kill()

    first, final, extra = latencies(pushed, calls)
    answered = sum(1 for c in calls if c[0] in ANSWERS)
    bot_calls = len([c for c in calls if c[0] != "getUpdates"])
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"{users} users x {messages} messages, private chats, zero-latency streamed model")
    print(f"  answered          {answered}/{total} (duplicates: {extra})")
    print(f"  messages/s        {total / wall:.1f}")
    print(f"  CPU per message   {cpu / total * 1000:.2f} ms (this process)")
    print(f"  Bot API calls     {bot_calls / total:.2f} per message (besides getUpdates)")
    for name, values in (("first reply", first), ("final reply", final)):
        print(
            f"  {name:<17} p50 {percentile(values, 0.5) * 1000:.1f} ms  "
            f"p95 {percentile(values, 0.95) * 1000:.1f} ms  "
            f"p99 {percentile(values, 0.99) * 1000:.1f} ms  "
            f"(mean {statistics.fmean(values) * 1000:.1f} ms)"
        )
    print(f"  peak memory       {peak:.0f} MiB RSS")
    if answered != total or extra or len(final) != total:
        raise SystemExit(f"expected {total} answers exactly once, got {answered}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, help="default: 1 x 100, then 20 x 10")
    parser.add_argument("--messages", type=int, default=10)
    parser.add_argument("--profile", action="store_true", help="print where the CPU goes")
    args = parser.parse_args()
    scenarios = [(args.users, args.messages)] if args.users else [(1, 100), (20, 10)]
    for users, messages in scenarios:
        asyncio.run(run(users, messages, args.profile))


if __name__ == "__main__":
    main()
