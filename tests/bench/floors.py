"""Parley beside the floors: the same load, the same loopback fakes, one run.

Every bot runs in a process of its own (measured from outside: CPU through /proc, peak
RSS as VmHWM), against the scripted model of tests/bench/_loopback.py (zero latency, a
60-word streamed answer; `--model-delay` makes it slow) and a fresh fake platform:

Telegram: 20 users x 10 private messages in a closed loop (the fake Bot API queues a
  user's next message when it receives their answer); every fourth message asks for the
  weather, which Parley answers after a get_weather round (the floor offers no tools, so
  the model answers it directly). Contenders: python-telegram-bot + openai
  (_floor_ptb.py) and Parley (_parley_bot.py, Telegram only).
Slack: 400 signed DM events from 16 clients (25 each, the next once the previous is
  acked), no retries. Contenders: a bare bolt echo and bolt + openai (_floor_bolt.py), and
  Parley (Slack only, HTTP mode).

Figures: messages (events) per second from the first message to the last answer, CPU ms
per message of the bot's process, its peak RSS, Bot/Web API calls per answer (getUpdates
and auth.test not counted), first/final reply latency (Telegram) and ack latency (Slack),
and whether every message was answered exactly once. `--parley DIR` (repeatable) adds a
Parley tree as a contender (e.g. a base commit's worktree); rounds interleave contenders
and the last table is the median of the rounds.

Usage: python -P tests/bench/floors.py [--platform telegram|slack|both] [--rounds 3]
           [--parley . --parley /work/wt-perf-base] [--model-delay 0.5] [--profile DIR]
(--profile writes each Parley's cProfile top entries to DIR, one file per run)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

_HERE = Path(__file__).resolve().parent
REPO = _HERE.parents[1]
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]
sys.path.insert(0, str(REPO))

from tests.bench._loopback import (  # noqa: E402
    WEATHER_QUESTION,
    cpu_seconds,
    peak_rss_mib,
    percentile,
    serve_model,
)
from tests.fakes.telegram_server import TOKEN  # noqa: E402

SECRET = "bench-signing-secret"
FIRST_USER = 10_000
WARM_USERS = 3
# An answer is a sendMessage (the floors, Parley's HTML path) or a rich message (Parley).
ANSWERS = ("sendMessage", "sendRichMessage")
PREVIEWS = ("sendMessage", "sendMessageDraft", "sendRichMessage", "sendRichMessageDraft")


@dataclass
class Contender:
    label: str
    command: list[str]
    env: dict[str, str] = field(default_factory=dict)
    parley: bool = False


@dataclass
class Figures:
    label: str
    rate: float
    cpu_ms: float
    rss: float
    calls: float
    once: str
    latency: dict[str, float]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def base_env(root: Path, tmp: Path) -> dict[str, str]:
    keep = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "USER")}
    return {**keep, "PYTHONPATH": str(root), "DATABASE_URL": f"sqlite:///{tmp / 'parley.db'}"}


MIGRATE = (
    "import asyncio, os; from bot.storage import migrate; "
    "asyncio.run(migrate(os.environ['DATABASE_URL']))"
)


def start(contender: Contender, tmp: Path, profile_to: Path | None) -> subprocess.Popen[bytes]:
    env = dict(contender.env)
    if contender.parley:  # a deployment restarting: its database is already migrated
        subprocess.run([sys.executable, "-c", MIGRATE], env=env, cwd=env["PYTHONPATH"], check=True)
    if contender.parley and profile_to is not None:
        env["PARLEY_BENCH_PROFILE"] = "1"
        env["PARLEY_BENCH_PROFILE_OUT"] = str(profile_to)
    log = (tmp / "bot.log").open("wb")
    cwd = env.get("PYTHONPATH", str(REPO))
    return subprocess.Popen(contender.command, env=env, cwd=cwd, stdout=log, stderr=log)


def stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(10)


def check_alive(process: subprocess.Popen[bytes], tmp: Path) -> None:
    if process.poll() is not None:
        raise SystemExit(f"the bot exited ({process.returncode}):\n{(tmp / 'bot.log').read_text()}")


# -- Telegram -------------------------------------------------------------------------


def serve_telegram(conn: Connection, users: int, messages: int) -> None:
    """Child process: the fake Bot API, closing each user's loop."""
    from tests.fakes.telegram_server import FakeTelegramServer, private_message

    class LoopingServer(FakeTelegramServer):
        def __init__(self) -> None:
            super().__init__()
            self.pushed: dict[int, list[float]] = {}

        def next_message(self, user: int) -> None:
            sent = self.pushed.setdefault(user, [])
            if len(sent) < messages:
                text = WEATHER_QUESTION if len(sent) % 4 == 3 else f"question {len(sent)}"
                sent.append(time.monotonic())
                self.push(private_message(user, text))

        def _m_sendMessage(self, params: dict[str, Any]) -> Any:
            return self._answered(params, super()._m_sendMessage(params))

        def _m_sendRichMessage(self, params: dict[str, Any]) -> Any:
            return self._answered(params, super()._m_sendRichMessage(params))

        def _answered(self, params: dict[str, Any], result: Any) -> Any:
            if int(params["chat_id"]) >= FIRST_USER:
                self.next_message(int(params["chat_id"]))
            return result

    server = LoopingServer()
    server.start()
    conn.send(server.base_url)
    bench = range(FIRST_USER, FIRST_USER + users)
    while True:
        command = conn.recv()
        if command == "polling":
            conn.send(bool(server.calls_of("getUpdates")))
        elif command == "warm":
            for user in range(1, WARM_USERS + 1):
                server.push(private_message(user, "warm-up"))
            conn.send(None)
        elif command == "warmed":
            warm = [c for c in server.calls_of(*ANSWERS) if int(c.params["chat_id"]) < 100]
            conn.send(len(warm))
        elif command == "go":
            for user in bench:
                server.next_message(user)
            conn.send(None)
        elif command == "count":
            conn.send(
                sum(1 for c in server.calls_of(*ANSWERS) if int(c.params["chat_id"]) in bench)
            )
        elif command == "results":
            calls = [
                (
                    c.method,
                    int(c.params["chat_id"]),
                    bool(c.params.get("text") or c.params.get("rich_message")),
                    c.at,
                )
                for c in server.calls
                if str(c.params.get("chat_id", "x")).isdigit() and int(c.params["chat_id"]) in bench
            ]
            conn.send((server.pushed, calls))
        else:
            break
    server.stop()


def telegram_latencies(
    pushed: dict[int, list[float]], calls: list[tuple[str, int, bool, float]]
) -> tuple[list[float], list[float], int]:
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


def run_telegram(
    contender: Contender, urls: tuple[str, str, str], args: Any, profile_to: Path | None
) -> Figures:
    context = multiprocessing.get_context("spawn")
    parent, child = context.Pipe()
    fake = context.Process(
        target=serve_telegram, args=(child, args.users, args.messages), daemon=True
    )
    fake.start()
    bot_url = parent.recv()
    model_url, geocoding, forecast = urls
    total = args.users * args.messages

    def ask(command: str) -> Any:
        parent.send(command)
        return parent.recv()

    with tempfile.TemporaryDirectory() as directory:
        tmp = Path(directory)
        if contender.parley:
            contender.env.update(
                {
                    "TELEGRAM_BOT_TOKEN": TOKEN,
                    "PARLEY_TELEGRAM_BASE_URL": bot_url,
                    "PARLEY_HTTP_PORT": str(free_port()),
                    "OPENAI_BASE_URL": model_url,
                    "OPENAI_API_KEY": "sk-bench",
                    "PARLEY_MODEL": "bench",
                    "PARLEY_WEATHER_GEOCODING_URL": geocoding,
                    "PARLEY_WEATHER_FORECAST_URL": forecast,
                    "DATABASE_URL": f"sqlite:///{tmp / 'parley.db'}",
                }
            )
        else:
            contender.command = [*contender.command, bot_url, TOKEN, model_url]
        process = start(contender, tmp, profile_to)
        try:
            deadline = time.monotonic() + 60
            while not ask("polling"):
                check_alive(process, tmp)
                if time.monotonic() > deadline:
                    raise SystemExit(f"{contender.label} never polled")
                time.sleep(0.05)
            ask("warm")
            while ask("warmed") < WARM_USERS:
                check_alive(process, tmp)
                time.sleep(0.02)
            if contender.parley and profile_to is not None:
                process.send_signal(10)  # SIGUSR1: the profile starts
            cpu, wall = cpu_seconds(process.pid), time.monotonic()
            ask("go")
            deadline = time.monotonic() + 180
            while ask("count") < total and time.monotonic() < deadline:
                check_alive(process, tmp)
                time.sleep(0.02)
            wall, cpu = time.monotonic() - wall, cpu_seconds(process.pid) - cpu
            rss = peak_rss_mib(process.pid)
            time.sleep(0.3)  # a duplicate would show up now
            pushed, calls = ask("results")
        finally:
            stop(process)
            parent.send("stop")
            fake.join(10)
    first, final, extra = telegram_latencies(pushed, calls)
    answered = sum(1 for c in calls if c[0] in ANSWERS)
    return Figures(
        contender.label,
        total / wall,
        1000 * cpu / total,
        rss,
        len([c for c in calls if c[0] != "getUpdates"]) / total,
        f"{len(final)}/{total}" + (f" (+{extra} duplicates)" if extra else ""),
        {
            "first p50": 1000 * percentile(first, 0.5),
            "final p50": 1000 * percentile(final, 0.5),
            "final p99": 1000 * percentile(final, 0.99),
        }
        if answered
        else {},
    )


# -- Slack ----------------------------------------------------------------------------


def serve_slack(queue: Any, commands: Any) -> None:
    """Child process: the fake Slack Web API."""
    from tests.fakes.slack_server import FakeSlackServer

    server = FakeSlackServer()
    server.start()
    queue.put(server.api_url)
    while True:
        command = commands.get()
        if command == "done":  # replies complete: posted whole, or a stream stopped
            queue.put(server.count("chat.postMessage") + server.count("chat.stopStream"))
        elif command == "reset":
            server.reset()
            queue.put(None)
        elif command == "report":
            threads: dict[str, int] = {}
            for body in server.bodies("chat.postMessage") + server.bodies("chat.startStream"):
                threads[body["thread_ts"]] = threads.get(body["thread_ts"], 0) + 1
            counts = {m: server.count(m) for m in list(server.calls) if m != "auth.test"}
            queue.put((threads, counts))
        else:
            break


def event_body(user: int, message: int, ts: str) -> bytes:
    event = {
        "type": "message",
        "channel": f"D{user:05d}",
        "channel_type": "im",
        "user": f"U{user:05d}",
        "text": f"message {message} from user {user}",
        "ts": ts,
    }
    body = {
        "team_id": "T0001",
        "api_app_id": "A0001",
        "type": "event_callback",
        "event_id": f"Ev{user:05d}x{message:05d}",
        "event_time": int(time.time()),
        "event": event,
    }
    return json.dumps(body).encode()


async def post(session: Any, url: str, body: bytes) -> float:
    from slack_sdk.signature import SignatureVerifier

    timestamp = str(int(time.time()))
    signature = SignatureVerifier(SECRET).generate_signature(timestamp=timestamp, body=body)
    headers = {
        "Content-Type": "application/json",
        "X-Slack-Request-Timestamp": timestamp,
        "X-Slack-Signature": signature,
    }
    started = time.monotonic()
    async with session.post(url, data=body, headers=headers) as response:
        await response.read()
        if response.status != 200:
            raise RuntimeError(f"event refused: HTTP {response.status}")
    return time.monotonic() - started


def send_events(url: str, clients: int, messages: int, go: Any, results: Any) -> None:
    """Child process: the clients, signing and posting every event once told to go;
    reports each thread's send time and every ack latency."""
    import aiohttp

    go.get()

    async def run() -> tuple[dict[str, float], list[float]]:
        sent: dict[str, float] = {}
        acks: list[float] = []
        connector = aiohttp.TCPConnector(limit=clients)
        async with aiohttp.ClientSession(connector=connector) as session:

            async def client(user: int) -> None:
                for message in range(messages):
                    ts = f"{time.time():.6f}{user:05d}"
                    body = event_body(user, message, ts)
                    sent[ts] = time.monotonic()
                    acks.append(await post(session, url, body))

            await asyncio.gather(*(client(user) for user in range(clients)))
        return sent, acks

    results.put(asyncio.run(run()))


async def warm_up(url: str, count: int, deadline: float) -> None:
    import aiohttp

    async with aiohttp.ClientSession() as session:
        for user in range(count):
            body = event_body(90_000 + user, 0, f"warm.{user}")
            while True:
                try:
                    await post(session, url, body)
                    break
                except (aiohttp.ClientError, RuntimeError):
                    if time.monotonic() > deadline:
                        raise
                    await asyncio.sleep(0.1)


def run_slack(
    contender: Contender, urls: tuple[str, str, str], args: Any, profile_to: Path | None
) -> Figures:
    context = multiprocessing.get_context("spawn")
    queue, commands = context.Queue(), context.Queue()
    fake = context.Process(target=serve_slack, args=(queue, commands), daemon=True)
    fake.start()
    api_url = queue.get(timeout=30)
    port = free_port()
    url = f"http://127.0.0.1:{port}/slack/events"
    total = args.clients * args.events

    def ask(command: str) -> Any:
        commands.put(command)
        return queue.get(timeout=30)

    with tempfile.TemporaryDirectory() as directory:
        tmp = Path(directory)
        if contender.parley:
            contender.env.update(
                {
                    "SLACK_BOT_TOKEN": "xoxb-bench",
                    "SLACK_SIGNING_SECRET": SECRET,
                    "PARLEY_SLACK_API_URL": api_url,
                    "PARLEY_HTTP_PORT": str(port),
                    "OPENAI_BASE_URL": urls[0],
                    "OPENAI_API_KEY": "sk-bench",
                    "PARLEY_MODEL": "bench",
                    "DATABASE_URL": f"sqlite:///{tmp / 'parley.db'}",
                }
            )
        else:
            contender.command = [*contender.command[:3], str(port), api_url, SECRET, urls[0]]
            contender.command += ["--echo"] if "echo" in contender.label else []
        process = start(contender, tmp, profile_to)
        go, results = context.Queue(), context.Queue()
        sender = context.Process(
            target=send_events, args=(url, args.clients, args.events, go, results), daemon=True
        )
        sender.start()
        try:
            asyncio.run(warm_up(url, WARM_USERS, time.monotonic() + 60))
            deadline = time.monotonic() + 30
            while ask("done") < WARM_USERS and time.monotonic() < deadline:
                check_alive(process, tmp)
                time.sleep(0.02)
            ask("reset")
            if contender.parley and profile_to is not None:
                process.send_signal(10)  # SIGUSR1: the profile starts
            cpu, wall = cpu_seconds(process.pid), time.monotonic()
            go.put(True)
            sent, acks = results.get(timeout=180)
            finished = time.monotonic()
            # A bot that lost an event never answers it: give up after 15 s without progress.
            done, last, stalled = ask("done"), 0, time.monotonic() + 15
            while done < total and time.monotonic() < stalled:
                check_alive(process, tmp)
                time.sleep(0.02)
                done, last = ask("done"), done
                if done != last:
                    stalled, finished = time.monotonic() + 15, time.monotonic()
            wall = (finished if done < total else time.monotonic()) - wall
            cpu = cpu_seconds(process.pid) - cpu
            rss = peak_rss_mib(process.pid)
            time.sleep(0.3)  # a duplicate would show up now
            threads, counts = ask("report")
        finally:
            sender.terminate()
            sender.join(10)
            stop(process)
            commands.put("stop")
            fake.join(10)
    once = sum(1 for ts in sent if threads.get(ts) == 1)
    return Figures(
        contender.label,
        total / wall,
        1000 * cpu / total,
        rss,
        sum(counts.values()) / total,
        f"{once}/{total}",
        {
            "ack p50": 1000 * percentile(acks, 0.5),
            "ack p99": 1000 * percentile(acks, 0.99),
        },
    )


# -- the run --------------------------------------------------------------------------


def python() -> str:
    return sys.executable


def contenders(platform: str, trees: list[str]) -> list[Contender]:
    tmp_env = base_env(REPO, Path(tempfile.gettempdir()))
    floor = [python(), "-P"]
    found: list[Contender] = []
    if platform == "telegram":
        found.append(Contender("ptb+openai", [*floor, str(_HERE / "_floor_ptb.py")], tmp_env))
    else:
        for label in ("bolt echo", "bolt+openai"):
            found.append(Contender(label, [*floor, str(_HERE / "_floor_bolt.py")], tmp_env))
    for tree in trees:
        root = Path(tree).resolve()
        label = "parley " + (
            subprocess.run(
                ["git", "-C", str(root), "rev-parse", "--short", "HEAD"],
                capture_output=True,
                text=True,
                check=False,
            ).stdout.strip()
            + ("" if root != REPO else "+")
        )
        env = base_env(root, Path(tempfile.gettempdir()))
        found.append(Contender(label, [*floor, str(_HERE / "_parley_bot.py")], env, parley=True))
    return found


def show(title: str, rows: list[Figures]) -> None:
    keys = list(rows[0].latency) if rows else []
    header = f"{'':<18}{'msg/s':>8}{'CPU ms':>8}{'RSS MiB':>9}{'calls':>7}  " + "".join(
        f"{k:>11}" for k in keys
    )
    print(title)
    print(header + "  once")
    for row in rows:
        print(
            f"{row.label:<18}{row.rate:8.1f}{row.cpu_ms:8.2f}{row.rss:9.1f}{row.calls:7.2f}  "
            + "".join(f"{row.latency.get(k, 0):9.1f}ms" for k in keys)
            + f"  {row.once}"
        )
    sys.stdout.flush()


def median_rows(rounds: list[list[Figures]]) -> list[Figures]:
    medians = []
    for column in zip(*rounds, strict=True):
        first = column[0]
        medians.append(
            Figures(
                first.label,
                statistics.median(r.rate for r in column),
                statistics.median(r.cpu_ms for r in column),
                statistics.median(r.rss for r in column),
                statistics.median(r.calls for r in column),
                ", ".join(r.once for r in column),
                {k: statistics.median(r.latency.get(k, 0) for r in column) for k in first.latency},
            )
        )
    return medians


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--platform", choices=("telegram", "slack", "both"), default="both")
    parser.add_argument("--parley", action="append", help="a Parley tree (default: this one)")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--users", type=int, default=20)
    parser.add_argument("--messages", type=int, default=10)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--events", type=int, default=25, help="per Slack client")
    parser.add_argument("--model-delay", type=float, default=0.0)
    parser.add_argument("--profile", type=Path, help="write Parley's cProfile tops here")
    parser.add_argument("--no-floors", action="store_true")
    args = parser.parse_args()
    trees = args.parley or [str(REPO)]
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    model = context.Process(target=serve_model, args=(queue, args.model_delay), daemon=True)
    model.start()
    urls = queue.get(timeout=30)
    if args.profile:
        args.profile.mkdir(parents=True, exist_ok=True)
    platforms = ("telegram", "slack") if args.platform == "both" else (args.platform,)
    try:
        for platform in platforms:
            workload = (
                f"{args.users} users x {args.messages} messages, closed loop, 1/4 weather"
                if platform == "telegram"
                else f"{args.clients * args.events} signed DM events from {args.clients} clients"
            )
            runner = run_telegram if platform == "telegram" else run_slack
            rounds: list[list[Figures]] = []
            for number in range(1, args.rounds + 1):
                row = []
                for contender in contenders(platform, trees):
                    if args.no_floors and not contender.parley:
                        continue
                    profile_to = None
                    if args.profile and contender.parley:
                        name = contender.label.replace(" ", "-").replace("+", "-after")
                        profile_to = args.profile / f"{platform}-{name}-{number}.txt"
                    row.append(runner(contender, urls, args, profile_to))
                rounds.append(row)
                show(
                    f"{platform}, round {number}: {workload}, model delay {args.model_delay} s",
                    row,
                )
            if args.rounds > 1:
                show(f"{platform}, median of {args.rounds} rounds", median_rows(rounds))
    finally:
        model.terminate()
        model.join(5)


if __name__ == "__main__":
    main()
