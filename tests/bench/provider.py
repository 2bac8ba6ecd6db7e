"""Provider benchmark: CPU per streamed model call, the SDK's typed path vs Parley's.

Both talk to the same scripted server (a child process) through the same `openai`
client; the request carries a 20-message history and the answer is 60 words in
10 chunks. "typed" is `chat.completions.create(stream=True)` iterating pydantic
chunks; "lean" is `OpenAICompatProvider`: the SDK's `post()` and `json.loads` per
SSE line. Compare the two as a ratio: both ran in this one process, one after the other.

Usage: python tests/bench/provider.py [--calls 300]
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import openai

from bot.domain import ChatMessage, Role
from bot.llm.openai_compat import OpenAICompatProvider, to_openai_messages
from tests.bench.engine import serve

HISTORY = [
    ChatMessage(Role.USER if i % 2 == 0 else Role.ASSISTANT, f"message {i} " + "words " * 30)
    for i in range(20)
]


async def measure(label: str, call: object, calls: int) -> float:
    for _ in range(20):
        await call()  # type: ignore[operator]
    cpu = time.process_time()
    wall = time.perf_counter()
    for _ in range(calls):
        await call()  # type: ignore[operator]
    cpu_ms = 1000 * (time.process_time() - cpu) / calls
    wall_ms = 1000 * (time.perf_counter() - wall) / calls
    print(f"{label:<44} {cpu_ms:>7.2f} ms CPU {wall_ms:>7.2f} ms wall per call")
    return cpu_ms


async def bench(base_url: str, calls: int) -> None:
    client = openai.AsyncOpenAI(base_url=base_url, api_key="bench")
    provider = OpenAICompatProvider(base_url=base_url, api_key="bench", model="scripted")
    messages = to_openai_messages(HISTORY)

    async def typed() -> None:
        stream = await client.chat.completions.create(
            model="scripted",
            messages=messages,
            stream=True,  # type: ignore[arg-type]
            stream_options={"include_usage": True},
        )
        async for chunk in stream:
            if chunk.choices:
                _ = chunk.choices[0].delta.content

    async def lean() -> None:
        async for _event in provider.stream(HISTORY, []):
            pass

    print(f"provider benchmark: {calls} streamed calls, 20-message history, 60-word answer")
    typed_cpu = await measure("openai SDK, chat.completions.create(stream)", typed, calls)
    lean_cpu = await measure("OpenAICompatProvider (post + json.loads)", lean, calls)
    print(f"CPU ratio typed / lean: {typed_cpu / lean_cpu:.1f}x")
    await client.close()
    await provider.aclose()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--calls", type=int, default=300)
    args = parser.parse_args()
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    server = context.Process(target=serve, args=(queue,), daemon=True)
    server.start()
    try:
        asyncio.run(bench(queue.get(timeout=30), args.calls))
    finally:
        server.terminate()
        server.join(5)


if __name__ == "__main__":
    main()
