"""Scale-out benchmark: 1, 2 (or more) `parley run` replicas on one PostgreSQL database.

Each replica is a real `parley run` process, Telegram in webhook mode and Slack in HTTP
mode. This process is the fake Bot API and the fake Slack Web API (threads) and the load
spreader: M users (even ones on Telegram, odd ones in Slack DMs) each send K messages in a
closed loop, each POSTed to the next replica in round-robin order; one message in five is
also POSTed to the following replica (Telegram redelivering, Slack retrying), which must
not produce a second answer. The model (zero latency, a streamed 60-word answer, or
`--model-delay` seconds before it) runs in a child process.

    latency = webhook POST sent -> the answer's sendRichMessage (or sendMessage) /
              chat.postMessage (a reply sent whole) or chat.stopStream at the fake

Printed per scenario: messages/s, latency percentiles, answered, duplicates (must be 0),
lost (must be 0) and each replica's RSS at the end. `--soak 600` runs one long scenario
instead (the 10-minute soak) and also prints the replicas' RSS drift from the first
minute to the end.

Usage: python -P tests/bench/scale.py [--replicas 1 2] [--users 20 --messages 10]
       [--model-delay 0.5] [--soak SECONDS] [--postgres URL]
(PostgreSQL: --postgres, else PARLEY_TEST_POSTGRES, else postgres@127.0.0.1:5432/test)
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import multiprocessing
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]
sys.path.insert(0, str(_HERE.parents[1]))

import httpx  # noqa: E402
from slack_sdk.signature import SignatureVerifier  # noqa: E402

from tests.databases import fresh_postgres_database  # noqa: E402
from tests.fakes.slack_server import TEAM_ID, FakeSlackServer  # noqa: E402
from tests.fakes.telegram_server import TOKEN, FakeTelegramServer, private_message  # noqa: E402

REPO = _HERE.parents[1]
ANSWER = " ".join(["word"] * 60)
SECRET = "bench-webhook-secret"
SLACK_SECRET = "bench-signing-secret"
FIRST_USER = 20_000


def serve_model(queue: Any, delay: float) -> None:
    """Child process: the scripted model answering every request with the same stream."""
    from tests.fakes.openai_server import ScriptedOpenAIServer, text_reply

    server = ScriptedOpenAIServer()
    server.start()
    server.set_default(text_reply(ANSWER, chunk_size=6, delay=delay))
    queue.put(server.base_url)
    while True:
        time.sleep(0.5)
        server.requests.clear()
        server.request_headers.clear()


class CountingServer(FakeTelegramServer):
    """The fake Bot API, waking the user whose answer just arrived."""

    def __init__(self) -> None:
        super().__init__()
        self.answers: dict[int, list[float]] = {}
        self.waiters: dict[int, tuple[asyncio.AbstractEventLoop, asyncio.Event]] = {}

    def _m_sendMessage(self, params: dict[str, Any]) -> Any:
        return self._answered(params, super()._m_sendMessage(params))

    def _m_sendRichMessage(self, params: dict[str, Any]) -> Any:
        return self._answered(params, super()._m_sendRichMessage(params))

    def _answered(self, params: dict[str, Any], result: Any) -> Any:
        chat = int(params["chat_id"])
        self.answers.setdefault(chat, []).append(time.monotonic())
        waiter = self.waiters.get(chat)
        if waiter is not None:
            waiter[0].call_soon_threadsafe(waiter[1].set)
        return result


class SlackCountingServer(FakeSlackServer):
    """The fake Slack Web API, waking the user whose answer was just posted whole or
    whose streamed answer just closed."""

    def __init__(self) -> None:
        super().__init__()
        self.answers: dict[str, list[float]] = {}
        self.waiters: dict[str, tuple[asyncio.AbstractEventLoop, asyncio.Event]] = {}

    def _answer(self, method: str, body: dict[str, Any]) -> dict[str, Any]:
        result = super()._answer(method, body)
        if method in ("chat.postMessage", "chat.stopStream"):
            channel = str(body.get("channel", ""))
            self.answers.setdefault(channel, []).append(time.monotonic())
            waiter = self.waiters.get(channel)
            if waiter is not None:
                waiter[0].call_soon_threadsafe(waiter[1].set)
        return result


def slack_event(user: int, text: str, event_id: str) -> dict[str, Any]:
    return {
        "token": "legacy",
        "team_id": TEAM_ID,
        "api_app_id": "A0001",
        "type": "event_callback",
        "event_id": event_id,
        "event_time": int(time.time()),
        "event": {
            "type": "message",
            "channel": f"D{user}",
            "channel_type": "im",
            "user": f"U{user}",
            "text": text,
            "ts": f"{time.time():.6f}",
        },
    }


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] if ordered else 0.0


def start_replica(
    directory: Path,
    index: int,
    port: int,
    database: str,
    model_url: str,
    bot_api: str,
    slack_api: str,
) -> subprocess.Popen[bytes]:
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": os.environ.get("HOME", ""),
        "PYTHONPATH": str(REPO),
        "DATABASE_URL": database,
        "OPENAI_API_KEY": "sk-bench",
        "OPENAI_BASE_URL": model_url,
        "PARLEY_MODEL": "bench",
        "TELEGRAM_BOT_TOKEN": TOKEN,
        "PARLEY_TELEGRAM_BASE_URL": bot_api,
        "PARLEY_TELEGRAM_WEBHOOK_URL": "https://bench.example.test/telegram/hook",
        "PARLEY_TELEGRAM_WEBHOOK_SECRET": SECRET,
        "SLACK_BOT_TOKEN": "xoxb-bench",
        "SLACK_SIGNING_SECRET": SLACK_SECRET,
        "PARLEY_SLACK_API_URL": slack_api,
        "PARLEY_HTTP_PORT": str(port),
        "PARLEY_LOG_LEVEL": "WARNING",
    }
    with open(directory / f"replica{index}.log", "w") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "bot.cli", "run"],
            cwd=directory,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=log,
        )


def stop_replicas(directory: Path, processes: list[subprocess.Popen[bytes]]) -> None:
    """SIGTERM each (a graceful stop), and show the logs of any that did not exit 0."""
    for process in processes:
        process.terminate()
    for process in processes:
        try:
            process.wait(timeout=40)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    exits = [process.returncode for process in processes]
    if any(exits):
        print(f"  replica exit codes {exits}")
        for log_file in sorted(directory.glob("replica*.log")):
            print(log_file.read_text()[-2000:])


async def scenario(
    postgres: str,
    model_url: str,
    fake: CountingServer,
    slack: SlackCountingServer,
    *,
    replicas: int,
    users: int,
    messages: int,
    delay: float,
    soak: float = 0.0,
) -> bool:
    fake.reset()
    fake.answers.clear()
    slack.reset()
    slack.answers.clear()
    async with fresh_postgres_database(postgres) as database:
        ports = [free_port() for _ in range(replicas)]
        with tempfile.TemporaryDirectory() as tmp:
            processes = [
                start_replica(
                    Path(tmp), index, port, database, model_url, fake.base_url, slack.api_url
                )
                for index, port in enumerate(ports)
            ]
            try:
                async with httpx.AsyncClient(timeout=30) as client:
                    await wait_ready(client, ports, processes)
                    ok = await drive(
                        client,
                        fake,
                        slack,
                        ports,
                        processes,
                        replicas,
                        users,
                        messages,
                        delay,
                        soak,
                    )
            finally:
                stop_replicas(Path(tmp), processes)
    return ok


async def wait_ready(
    client: httpx.AsyncClient, ports: list[int], processes: list[subprocess.Popen[bytes]]
) -> None:
    deadline = time.monotonic() + 60
    for port, process in zip(ports, processes, strict=True):
        while True:
            if process.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"replica on port {port} did not start")
            try:
                if (await client.get(f"http://127.0.0.1:{port}/readyz")).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.1)


async def drive(
    client: httpx.AsyncClient,
    fake: CountingServer,
    slack: SlackCountingServer,
    ports: list[int],
    processes: list[subprocess.Popen[bytes]],
    replicas: int,
    users: int,
    messages: int,
    delay: float,
    soak: float,
) -> bool:
    loop = asyncio.get_running_loop()
    spread = itertools.cycle(range(replicas))
    update_ids = itertools.count(1)
    signer = SignatureVerifier(SLACK_SECRET)
    latencies: list[float] = []
    lost = 0
    sent = 0
    started = time.perf_counter()
    until = time.monotonic() + soak if soak else 0.0
    early_rss: list[float] = []

    async def post(url: str, content: bytes, headers: dict[str, str]) -> None:
        for _ in range(50):  # a 503 (a replica stopping) is retried, as the platforms do
            if (await client.post(url, content=content, headers=headers)).status_code == 200:
                return
            await asyncio.sleep(0.1)

    async def deliver(port: int, number: int, user: int, text: str, retry: bool) -> None:
        base = f"http://127.0.0.1:{port}"
        if user % 2 == 0:  # even users are on Telegram, odd ones on Slack
            body = json.dumps({"update_id": number, **private_message(user, text)}).encode()
            headers = {
                "X-Telegram-Bot-Api-Secret-Token": SECRET,
                "Content-Type": "application/json",
            }
            await post(f"{base}/telegram/hook", body, headers)
            return
        raw = json.dumps(slack_event(user, text, f"EvB{number}"))
        stamp = str(int(time.time()))
        headers = {
            "Content-Type": "application/json",
            "X-Slack-Request-Timestamp": stamp,
            "X-Slack-Signature": signer.generate_signature(timestamp=stamp, body=raw),
        }
        if retry:
            headers.update({"X-Slack-Retry-Num": "1", "X-Slack-Retry-Reason": "http_timeout"})
        await post(f"{base}/slack/events", raw.encode(), headers)

    async def user(number: int) -> None:
        nonlocal lost, sent
        event = asyncio.Event()
        key = f"D{number}"
        if number % 2 == 0:
            fake.waiters[number] = (loop, event)
        else:
            slack.waiters[key] = (loop, event)
        count = 0
        while (count < messages) if not soak else (time.monotonic() < until):
            count += 1
            event.clear()
            update_id = next(update_ids)
            target = next(spread)
            at = time.monotonic()
            sent += 1
            text = f"question {count}"
            await deliver(ports[target], update_id, number, text, False)
            if update_id % 5 == 0 and replicas > 1:  # redelivered to another replica
                await deliver(ports[(target + 1) % replicas], update_id, number, text, True)
            try:
                await asyncio.wait_for(event.wait(), timeout=30 + delay)
            except TimeoutError:
                lost += 1
                continue
            answers = fake.answers[number] if number % 2 == 0 else slack.answers[key]
            latencies.append(answers[-1] - at)

    async def sample_rss() -> None:
        await asyncio.sleep(min(60.0, soak / 2))
        early_rss.extend(rss_mib(p.pid) for p in processes)

    sampler = asyncio.create_task(sample_rss()) if soak else None
    await asyncio.gather(*(user(FIRST_USER + i) for i in range(users)))
    wall = time.perf_counter() - started
    if sampler is not None:
        await sampler
    await asyncio.sleep(0.5)  # let any duplicate answer arrive before counting
    answered = sum(len(times) for times in fake.answers.values())
    answered += sum(len(times) for times in slack.answers.values())
    duplicates = max(0, answered - (sent - lost))
    rss = [rss_mib(p.pid) for p in processes]
    label = f"{soak:.0f} s soak" if soak else f"{users} users x {messages} messages"
    print(
        f"{replicas} replica(s), {label}, model delay {delay * 1000:.0f} ms, "
        "half Telegram webhooks, half Slack HTTP events, PostgreSQL"
    )
    print(f"  messages/s        {sent / wall:.1f}  ({sent} in {wall:.1f} s)")
    print(
        f"  latency           p50 {percentile(latencies, 0.5) * 1000:.0f} ms  "
        f"p95 {percentile(latencies, 0.95) * 1000:.0f} ms  "
        f"p99 {percentile(latencies, 0.99) * 1000:.0f} ms  "
        f"(mean {statistics.fmean(latencies or [0]) * 1000:.0f} ms)"
    )
    print(f"  answered {answered}, duplicates {duplicates}, lost {lost}")
    print(f"  replica RSS       {', '.join(f'{m:.0f}' for m in rss)} MiB")
    if early_rss:
        drift = [late - early for early, late in zip(early_rss, rss, strict=True)]
        print(f"  RSS drift         {', '.join(f'{d:+.1f}' for d in drift)} MiB")
    return duplicates == 0 and lost == 0


async def main_async(args: argparse.Namespace) -> bool:
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    model = context.Process(target=serve_model, args=(queue, args.model_delay), daemon=True)
    model.start()
    model_url = queue.get(timeout=30)
    fake = CountingServer()
    fake.start()
    slack = SlackCountingServer()
    slack.start()
    ok = True
    try:
        if args.soak:
            ok = await scenario(
                args.postgres,
                model_url,
                fake,
                slack,
                replicas=max(args.replicas),
                users=args.users,
                messages=0,
                delay=args.model_delay,
                soak=args.soak,
            )
        else:
            for replicas in args.replicas:
                ok = (
                    await scenario(
                        args.postgres,
                        model_url,
                        fake,
                        slack,
                        replicas=replicas,
                        users=args.users,
                        messages=args.messages,
                        delay=args.model_delay,
                    )
                    and ok
                )
    finally:
        fake.stop()
        slack.stop()
        model.kill()
    return ok


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--replicas", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--users", type=int, default=20)
    parser.add_argument("--messages", type=int, default=10)
    parser.add_argument("--model-delay", type=float, default=0.0)
    parser.add_argument("--soak", type=float, default=0.0, help="seconds of closed-loop load")
    parser.add_argument(
        "--postgres",
        default=os.environ.get("PARLEY_TEST_POSTGRES")
        or "postgresql://postgres@127.0.0.1:5432/test",
    )
    args = parser.parse_args()
    url = urlsplit(args.postgres)
    try:
        socket.create_connection((url.hostname or "127.0.0.1", url.port or 5432), 2).close()
    except OSError as exc:
        print(f"scale.py skipped: no PostgreSQL at {url.hostname}:{url.port or 5432} ({exc})")
        return
    if not asyncio.run(main_async(args)):
        raise SystemExit("duplicates or lost messages")


if __name__ == "__main__":
    main()
