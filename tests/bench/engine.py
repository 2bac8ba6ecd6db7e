"""Engine benchmark: turns per second and the engine's own overhead per turn.

Runs turns through the real engine (real openai client, real SQLite in WAL mode)
against the scripted OpenAI-compatible server, which runs in a child process so that
it does not compete for this process's GIL. The model answers at once (zero latency)
with a streamed 60-word answer.

    overhead = turn wall time - time spent inside the provider's stream

so it is what the engine itself costs: resolving the conversation, loading and
trimming history, storing messages and usage, running tools, streaming to the surface.

The last scenario is long conversations: a 600-token context budget, so history
overflows after a few turns and rolling summaries (one extra model call each, after the
turn) are written; it prints how many and the CPU they add per turn.

Usage: python tests/bench/engine.py [--turns 500] [--users 20] [--limits]
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bot.app import Application
from bot.config import Settings
from bot.domain import ChatKind, ChatRef, IncomingMessage, UserRef
from tests.fakes.surface import RecordingSurface
from tools import ALL_TOOLS

ANSWER = " ".join(["word"] * 60)


def serve(queue: Any) -> None:
    """Child process: the scripted server answering every request with the same stream."""
    from tests.fakes.openai_server import ScriptedOpenAIServer, text_reply

    server = ScriptedOpenAIServer()
    server.start()
    server.set_default(text_reply(ANSWER, chunk_size=6))
    queue.put(server.base_url)
    # Requests are recorded for tests; here they would only grow memory.
    while True:
        time.sleep(0.5)
        server.requests.clear()
        server.request_headers.clear()


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


async def run_turns(
    app: Application, users: int, turns: int, *, concurrent: bool
) -> dict[str, Any]:
    """`turns` turns spread over `users` conversations, one at a time or all at once."""
    overheads: list[float] = []
    totals: list[float] = []
    per_user = max(1, turns // users)

    async def one_turn(index: int, turn: int) -> None:
        user = UserRef("bench", f"u{index}", f"User {index}")
        chat = ChatRef("bench", f"dm{index}", ChatKind.DM)
        outcome = await app.engine.handle(
            IncomingMessage(chat=chat, user=user, text=f"question {turn} from user {index}"),
            RecordingSurface(),
        )
        if outcome.error:
            raise RuntimeError(outcome.error)
        overheads.append(outcome.total_seconds - outcome.provider_seconds)
        totals.append(outcome.total_seconds)

    async def user_loop(index: int) -> None:
        for turn in range(per_user):
            await one_turn(index, turn)

    cpu_before = time.process_time()
    started = time.perf_counter()
    if concurrent:
        await asyncio.gather(*(user_loop(i) for i in range(users)))
    else:
        for turn in range(per_user):
            for index in range(users):
                await one_turn(index, turn)
    elapsed = time.perf_counter() - started
    cpu = time.process_time() - cpu_before
    count = len(totals)
    return {
        "turns": count,
        "turns_per_s": count / elapsed,
        "overhead_p50_ms": 1000 * statistics.median(overheads),
        "overhead_p99_ms": 1000 * percentile(overheads, 0.99),
        "latency_p50_ms": 1000 * statistics.median(totals),
        "latency_p99_ms": 1000 * percentile(totals, 0.99),
        "cpu_ms_per_turn": 1000 * cpu / count,
    }


# `--limits`: every limit on, none reached, so each turn takes and settles a reservation.
LIMITS_ON = {
    "user_daily_tokens": 10**9,
    "channel_daily_tokens": 10**9,
    "user_messages_per_minute": 10**6,
    "user_turns_in_flight": 100,
}


async def bench(base_url: str, turns: int, users: int, *, limits: bool = False) -> None:
    variants = [("", {})]
    if limits:  # the same turns without and with reservations, alternated, in one run
        variants = [("no limits: ", {}), ("limits: ", LIMITS_ON)] * 2
    print(f"engine benchmark, SQLite, zero-latency model, 60-word streamed answers, {turns} turns")
    print(
        f"{'scenario':<40} {'turns/s':>8} {'overhead p50':>13} {'p99':>8} "
        f"{'latency p50':>12} {'p99':>8} {'CPU/turn':>9}"
    )
    for prefix, limit_values in variants:
        with tempfile.TemporaryDirectory() as directory:
            settings = Settings.load(
                env_file=None,
                llm={"base_url": base_url, "api_key": "bench", "model": "scripted"},
                database={"url": f"sqlite:///{Path(directory) / 'bench.db'}"},
                limits=limit_values,
            )
            app = Application(settings, tools=ALL_TOOLS)
            await app.start()
            try:
                await run_turns(
                    app, users=2, turns=40, concurrent=True
                )  # warm-up: connections, imports
                scenarios = (
                    (f"{prefix}{users} users, one at a time", False),
                    (f"{prefix}{users} users, concurrent", True),
                )
                for label, concurrent in scenarios:
                    r = await run_turns(app, users=users, turns=turns, concurrent=concurrent)
                    print(
                        f"{label:<40} {r['turns_per_s']:>8.1f} {r['overhead_p50_ms']:>10.2f} ms "
                        f"{r['overhead_p99_ms']:>5.2f} ms {r['latency_p50_ms']:>9.2f} ms "
                        f"{r['latency_p99_ms']:>5.1f} ms {r['cpu_ms_per_turn']:>6.2f} ms"
                    )
            finally:
                await app.aclose()
    with tempfile.TemporaryDirectory() as directory:
        await bench_long_conversations(base_url, directory, turns, users)


async def bench_long_conversations(base_url: str, directory: str, turns: int, users: int) -> None:
    """The same turns with summaries off and on, in conversations that overflow."""
    for summaries in (False, True):
        settings = Settings.load(
            env_file=None,
            llm={"base_url": base_url, "api_key": "bench", "model": "scripted"},
            database={"url": f"sqlite:///{Path(directory) / f'long-{summaries}.db'}"},
            bot={"context_tokens": 600, "summaries": summaries},
        )
        app = Application(settings, tools=ALL_TOOLS)
        await app.start()
        try:
            cpu_before = time.process_time()
            r = await run_turns(app, users=users, turns=turns, concurrent=True)
            await app.summariser.drain(30)
            cpu = time.process_time() - cpu_before
            label = f"long, summaries {'on' if summaries else 'off'}"
            print(
                f"{label:<40} {r['turns_per_s']:>8.1f} {r['overhead_p50_ms']:>10.2f} ms "
                f"{r['overhead_p99_ms']:>5.2f} ms {r['latency_p50_ms']:>9.2f} ms "
                f"{r['latency_p99_ms']:>5.1f} ms {1000 * cpu / r['turns']:>6.2f} ms "
                f"({app.summariser.written} summaries)"
            )
        finally:
            await app.aclose()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--turns", type=int, default=500)
    parser.add_argument("--users", type=int, default=20)
    parser.add_argument(
        "--limits", action="store_true", help="also run every turn under budgets (reservations)"
    )
    args = parser.parse_args()
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    server = context.Process(target=serve, args=(queue,), daemon=True)
    server.start()
    try:
        base_url = queue.get(timeout=30)
        asyncio.run(bench(base_url, args.turns, args.users, limits=args.limits))
    finally:
        server.terminate()
        server.join(5)


if __name__ == "__main__":
    main()
