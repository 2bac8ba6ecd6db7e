"""Slack benchmark: signed events through the real `/slack/events` endpoint.

M users each send K DM messages (each also re-delivered once with X-Slack-Retry-Num, as
Slack does after a slow ack) to a running Parley: bolt verifies each signature and acks,
the event is claimed in SQLite, the engine runs the turn against a zero-latency model
(a 60-word streamed answer) and the reply reaches the fake Slack Web API (whole in one
chat.postMessage when it is done within PARLEY_PREVIEW_DELAY, else streamed). The
model, the fake Slack and the users (signing and posting events) each run in a child
process, so they neither compete for this process's GIL nor count in its CPU. A user
sends their next message once the previous one is acked (not answered), so turns of one
user queue behind each other in the engine; with --closed a
user waits for the final answer first, as a person would.

Prints events per second (first delivery to last final reply), ack latency, first-reply
latency (event sent -> chat.postMessage or chat.startStream) and final-reply latency
(-> that chat.postMessage, or chat.stopStream), CPU per event, Web API calls per event,
peak memory, and whether every event was answered exactly once.

Usage: python tests/bench/slack.py [--users 20] [--messages 10]
       python tests/bench/slack.py --closed --users 1 --messages 50   (no queueing)
       PARLEY_PREVIEW_DELAY=0 python tests/bench/slack.py   (every reply streamed)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import multiprocessing
import resource
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
from slack_sdk.signature import SignatureVerifier

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bot.app import Application
from bot.config import Settings
from tools import ALL_TOOLS

ANSWER = " ".join(["word"] * 60)
SECRET = "bench-signing-secret"
WARMUP = 5


def serve_model(queue: Any) -> None:
    from tests.fakes.openai_server import ScriptedOpenAIServer, text_reply

    server = ScriptedOpenAIServer()
    server.start()
    server.set_default(text_reply(ANSWER, chunk_size=6))
    queue.put(server.base_url)
    while True:
        time.sleep(0.5)
        server.requests.clear()
        server.request_headers.clear()


REPLIES = ("chat.postMessage", "chat.startStream")  # the first call of a reply


def serve_slack(queue: Any, commands: Any) -> None:
    from tests.fakes.slack_server import FakeSlackServer

    server = FakeSlackServer()
    server.start()
    queue.put(server.api_url)

    def timed(method: str) -> list[tuple[dict[str, Any], float]]:
        return list(zip(server.bodies(method), server.call_times[method], strict=True))

    while True:
        command = commands.get()
        if command == "report":
            # (thread_ts, message ts, sent at, whole): a whole message is also its end.
            replies = [
                (b["thread_ts"], b["_ts"], t, method == "chat.postMessage")
                for method in REPLIES
                for b, t in timed(method)
            ]
            stops = {b["ts"]: t for b, t in timed("chat.stopStream")}
            counts = {method: server.count(method) for method in list(server.calls)}
            queue.put({"replies": replies, "stops": stops, "counts": counts})
        elif command == "done":  # replies complete: posted whole, or a stream stopped
            queue.put(server.count("chat.postMessage") + server.count("chat.stopStream"))
        elif isinstance(command, tuple):  # ("answered", thread_ts): is that reply done?
            thread = command[1]
            posted = any(b["thread_ts"] == thread for b in server.bodies("chat.postMessage"))
            streams = {
                b["_ts"] for b in server.bodies("chat.startStream") if b["thread_ts"] == thread
            }
            queue.put(posted or any(b["ts"] in streams for b in server.bodies("chat.stopStream")))


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def event_body(user: int, message: int, ts: str) -> str:
    event = {
        "type": "message",
        "channel": f"D{user:05d}",
        "channel_type": "im",
        "user": f"U{user:05d}",
        "text": f"message {message} from user {user}",
        "ts": ts,
    }
    return json.dumps(
        {
            "team_id": "T0001",
            "api_app_id": "A0001",
            "type": "event_callback",
            "event_id": f"Ev{user:05d}x{message:05d}",
            "event_time": int(time.time()),
            "event": event,
        }
    )


async def post(
    session: aiohttp.ClientSession, url: str, body: str, retry: int | None = None
) -> float:
    timestamp = str(int(time.time()))
    headers = {
        "Content-Type": "application/json",
        "X-Slack-Request-Timestamp": timestamp,
        "X-Slack-Signature": SignatureVerifier(SECRET).generate_signature(
            timestamp=timestamp, body=body
        ),
    }
    if retry is not None:
        headers["X-Slack-Retry-Num"] = str(retry)
        headers["X-Slack-Retry-Reason"] = "http_timeout"
    started = time.monotonic()
    async with session.post(url, data=body.encode(), headers=headers) as response:
        await response.read()
        if response.status != 200:
            raise RuntimeError(f"event refused: HTTP {response.status}")
    return time.monotonic() - started


def send_events(args: Any, go: Any, results: Any, queue: Any, commands: Any) -> None:
    """Child process: the users. It signs and posts every event (and its retry) so that
    the load generator's own CPU is not counted as Parley's; it reports when each thread
    was started, every ack latency, and how long sending took."""

    async def run(url: str) -> tuple[dict[str, float], list[float], float]:
        sent: dict[str, float] = {}
        acks: list[float] = []
        connector = aiohttp.TCPConnector(limit=args.users * 2)
        async with aiohttp.ClientSession(connector=connector) as session:

            async def user_loop(user: int) -> None:
                for message in range(args.messages):
                    ts = f"{time.time():.6f}{user:05d}"
                    body = event_body(user, message, ts)
                    sent[ts] = time.monotonic()
                    acks.append(await post(session, url, body))
                    acks.append(await post(session, url, body, retry=1))
                    while args.closed:
                        commands.put(("answered", ts))  # only this process asks meanwhile
                        if queue.get():
                            break
                        await asyncio.sleep(0.01)

            started = time.monotonic()
            await asyncio.gather(*(user_loop(user) for user in range(args.users)))
            return sent, acks, time.monotonic() - started

    results.put(asyncio.run(run(go.get())))


async def bench(
    model_url: str, slack_url: str, queue: Any, commands: Any, go: Any, results: Any, args: Any
) -> None:
    with tempfile.TemporaryDirectory() as directory:
        settings = Settings.load(
            env_file=None,
            llm={"base_url": model_url, "api_key": "bench", "model": "scripted"},
            database={"url": f"sqlite:///{Path(directory) / 'bench.db'}"},
            http={"port": 0},
            slack={"bot_token": "xoxb-bench", "signing_secret": SECRET, "api_url": slack_url},
        )
        preview_delay = settings.bot.preview_delay_seconds
        app = Application(settings, tools=ALL_TOOLS)
        await app.start()
        stop = asyncio.Event()
        serving = asyncio.create_task(app.serve(stop))
        while app.web is None or not app.platforms[0].client.session:  # type: ignore[attr-defined]  # noqa: ASYNC110
            await asyncio.sleep(0.01)
        url = f"http://127.0.0.1:{app.web.port}/slack/events"
        total = args.users * args.messages
        loop = asyncio.get_running_loop()
        lock = asyncio.Lock()

        async def ask(command: Any) -> Any:
            # The fake answers through a blocking queue: wait on a thread, not on the loop.
            async with lock:
                commands.put(command)
                return await loop.run_in_executor(None, queue.get)

        async def answered(count: int) -> None:
            deadline = time.monotonic() + 120
            while await ask("done") < count and time.monotonic() < deadline:  # noqa: ASYNC110
                await asyncio.sleep(0.02)  # polling another process: no event to wait on

        try:
            async with aiohttp.ClientSession() as session:
                # Warm-up: connections, bolt's auth.test, first-call imports; not measured.
                for user in range(WARMUP):
                    await post(session, url, event_body(90_000 + user, 0, f"warm.{user}"))
                await answered(WARMUP)
            cpu = time.process_time()
            started = time.monotonic()
            go.put(url)  # the sender process is waiting for it
            sent, acks, sending = await loop.run_in_executor(None, results.get)
            await answered(WARMUP + total)
            elapsed = time.monotonic() - started
            cpu = time.process_time() - cpu
        finally:
            stop.set()
            await serving
            await app.aclose()
    commands.put("report")
    report = queue.get()
    replies_per_thread: dict[str, int] = {}
    first, final = [], []
    for thread_ts, message_ts, at, whole in report["replies"]:
        if thread_ts not in sent:
            continue  # a warm-up event
        replies_per_thread[thread_ts] = replies_per_thread.get(thread_ts, 0) + 1
        first.append(at - sent[thread_ts])
        end = at if whole else report["stops"].get(message_ts)
        if end is not None:
            final.append(end - sent[thread_ts])
    once = sum(1 for ts in sent if replies_per_thread.get(ts) == 1)
    calls = sum(c for m, c in report["counts"].items() if m != "auth.test")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    ms = 1000
    print(
        f"slack benchmark: {args.users} users x {args.messages} messages = {total} events "
        f"(+{total} retries), {'closed' if args.closed else 'open'} loop, zero-latency "
        f"model, 60-word streamed answers, SQLite, preview delay {preview_delay} s"
    )
    print(f"events/s (all answered)   {total / elapsed:8.1f}   (acks sent in {sending:.2f} s)")
    print(
        f"ack latency               p50 {ms * percentile(acks, 0.5):7.1f} ms   "
        f"p99 {ms * percentile(acks, 0.99):7.1f} ms   max {ms * max(acks):7.1f} ms"
    )
    print(
        f"first reply               p50 {ms * percentile(first, 0.5):7.1f} ms   "
        f"p99 {ms * percentile(first, 0.99):7.1f} ms"
    )
    print(
        f"final reply               p50 {ms * percentile(final, 0.5):7.1f} ms   "
        f"p99 {ms * percentile(final, 0.99):7.1f} ms"
    )
    print(f"CPU per event             {ms * cpu / total:8.2f} ms (Parley's process)")
    print(f"Web API calls per event   {calls / (total + WARMUP):8.2f}   (auth.test not counted)")
    print(f"peak memory (RSS)         {peak:8.1f} MiB")
    print(
        f"answered exactly once     {once}/{total}; Web API calls (incl. {WARMUP} warm-up): "
        + ", ".join(f"{m} {c}" for m, c in sorted(report["counts"].items()))
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--users", type=int, default=20)
    parser.add_argument("--messages", type=int, default=10)
    parser.add_argument(
        "--closed", action="store_true", help="each user waits for the answer before the next"
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    context = multiprocessing.get_context("spawn")
    queue, commands = context.Queue(), context.Queue()
    model = context.Process(target=serve_model, args=(queue,), daemon=True)
    model.start()
    model_url = queue.get(timeout=30)
    slack = context.Process(target=serve_slack, args=(queue, commands), daemon=True)
    slack.start()
    go, results = context.Queue(), context.Queue()
    sender = context.Process(
        target=send_events, args=(args, go, results, queue, commands), daemon=True
    )
    sender.start()
    try:
        slack_url = queue.get(timeout=30)
        asyncio.run(bench(model_url, slack_url, queue, commands, go, results, args))
    finally:
        for process in (model, slack, sender):
            process.terminate()
            process.join(5)


if __name__ == "__main__":
    main()
