"""Anthropic provider benchmark: CPU per streamed call, the SDK's typed paths vs Parley's.

All three talk to the same scripted Anthropic server (a child process) through the same
`anthropic` client; the request carries a 20-message history and the answer is 60 words
in 10-ish deltas. "typed" is `messages.create(stream=True)` iterating pydantic events;
"helper" is `messages.stream()` (which also accumulates a message snapshot); "lean" is
`AnthropicProvider`: the SDK's `post()` and `json.loads` per SSE data line.

Usage: python tests/bench/anthropic_provider.py [--calls 300]
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import anthropic

from bot.llm.anthropic import AnthropicProvider, to_anthropic_messages
from tests.bench.engine import ANSWER
from tests.bench.provider import HISTORY, measure


def serve(queue: Any) -> None:
    from tests.fakes.anthropic_server import ScriptedAnthropicServer, anthropic_text_reply

    server = ScriptedAnthropicServer()
    server.start()
    server.set_default(anthropic_text_reply(ANSWER, chunk_size=6))
    queue.put(server.base_url)
    while True:
        time.sleep(0.5)
        server.requests.clear()
        server.request_headers.clear()


async def bench(base_url: str, calls: int) -> None:
    client = anthropic.AsyncAnthropic(base_url=base_url, api_key="bench")
    provider = AnthropicProvider(base_url=base_url, api_key="bench", model="scripted")
    _, messages = to_anthropic_messages(HISTORY)

    async def typed() -> None:
        stream = await client.messages.create(
            model="scripted", max_tokens=1024, messages=messages, stream=True
        )
        async for event in stream:
            if event.type == "content_block_delta" and event.delta.type == "text_delta":
                _ = event.delta.text

    async def helper() -> None:
        async with client.messages.stream(
            model="scripted", max_tokens=1024, messages=messages
        ) as stream:
            async for _text in stream.text_stream:
                pass

    async def lean() -> None:
        async for _event in provider.stream(HISTORY, []):
            pass

    print(f"anthropic benchmark: {calls} streamed calls, 20-message history, 60-word answer")
    typed_cpu = await measure("anthropic SDK, messages.create(stream)", typed, calls)
    helper_cpu = await measure("anthropic SDK, messages.stream() helper", helper, calls)
    lean_cpu = await measure("AnthropicProvider (post + json.loads)", lean, calls)
    print(
        f"CPU ratio typed / lean: {typed_cpu / lean_cpu:.1f}x, helper / lean: "
        f"{helper_cpu / lean_cpu:.1f}x"
    )
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
