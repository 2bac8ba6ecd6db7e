"""Durable turns benchmark: what the journal costs per turn, and how long a resume takes.

1. CPU per turn through the desk, in one run, interleaved: the plain claim
   (`Desk.claim` + `Engine.handle`, what every platform did before durable turns) against
   the durable one (`Desk.claim_turn`: the event and the turn's input in one
   transaction, the turn marked running with its question, done after the reply).
2. Resume after a crash: `--in-flight` turns are claimed by a process that then dies
   (its lease is gone), and a second application on the same database takes them over
   with one sweep and answers them all: the time from the sweep to the last answer.
   The lease's expiry itself (PARLEY_TURN_LEASE_SECONDS) comes on top.

Real SQLite in WAL mode, the real openai client, the scripted model in a child process
answering at once with a 60-word stream.

Usage: python tests/bench/durable.py [--turns 400] [--in-flight 100]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import multiprocessing
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bot.app import Application
from bot.config import Settings
from bot.domain import ChatKind, ChatMessage, ChatRef, IncomingMessage, Role, UserRef
from bot.storage import StoredMessage
from bot.storage.turns import StoredTurn
from bot.turn.context import message_tokens
from bot.turn.durable import TurnTicket
from tests.bench.engine import serve
from tests.fakes.surface import RecordingSurface


def application(base_url: str, database: Path) -> Application:
    settings = Settings.load(
        env_file=None,
        llm={"base_url": base_url, "api_key": "bench", "model": "scripted"},
        database={"url": f"sqlite:///{database}"},
    )
    return Application(settings, tools=[])


_events = itertools.count()


def message(user: int, turn: int, kind: str) -> IncomingMessage:
    return IncomingMessage(
        chat=ChatRef("bench", f"dm{user}", ChatKind.DM),
        user=UserRef("bench", f"u{user}", f"User {user}"),
        text=f"question {turn} from user {user}",
        event_id=f"{kind}-{next(_events)}",
    )


async def plain_turn(app: Application, incoming: IncomingMessage) -> None:
    assert await app.desk.claim(incoming.platform, "bench", incoming.event_id)
    outcome = await app.desk.turn(incoming, RecordingSurface())
    assert not outcome.error, outcome.error


async def durable_turn(app: Application, incoming: IncomingMessage) -> None:
    ticket = await app.desk.claim_turn(incoming, "bench", {"chat": incoming.chat.platform_chat_id})
    assert ticket is not None
    outcome = await app.desk.turn(incoming, RecordingSurface(), ticket)
    assert not outcome.error, outcome.error


async def cost_per_turn(app: Application, turns: int, users: int = 20) -> dict[str, float]:
    """CPU ms per turn of each path, in alternating batches of one turn per user."""
    cpu = {"plain": 0.0, "durable": 0.0}
    count = {"plain": 0, "durable": 0}
    for batch in range(turns // users):
        for kind, run in (("plain", plain_turn), ("durable", durable_turn)):
            before = time.process_time()
            await asyncio.gather(*(run(app, message(u, batch, kind)) for u in range(users)))
            cpu[kind] += time.process_time() - before
            count[kind] += users
    return {kind: 1000 * cpu[kind] / count[kind] for kind in cpu}


async def resume_time(base_url: str, directory: Path, in_flight: int) -> tuple[float, int]:
    """Seconds from the sweep to the last of `in_flight` resumed answers, and how many
    answers went out."""
    database = directory / "resume.db"
    dead = application(base_url, database)
    await dead.start()
    # The dying process: its turns are claimed and running, its lease never renewed.
    for user in range(in_flight):
        incoming = message(user, 0, "crash")
        ticket = await dead.desk.claim_turn(incoming, "bench", {})
        assert ticket is not None
        await dead.store.begin_turn(incoming, _said(incoming), turn_id=ticket.id, resumed=False)
    await dead.aclose()
    survivor = application(base_url, database)
    await survivor.start()
    surfaces: list[RecordingSurface] = []

    def surface_for(turn: StoredTurn, ticket: TurnTicket) -> RecordingSurface:
        surfaces.append(RecordingSurface())
        return surfaces[-1]

    survivor.recovery.surface_for = surface_for
    await survivor.process_lease.start()
    try:
        started = time.perf_counter()
        taken = await survivor.recovery.sweep()
        await survivor.recovery.wait()
        elapsed = time.perf_counter() - started
        assert taken == in_flight, taken
        assert not await survivor.turn_store.open_turns()
        return elapsed, sum(1 for s in surfaces if s.finished)
    finally:
        await survivor.process_lease.stop()
        await survivor.aclose()


def _said(incoming: IncomingMessage) -> StoredMessage:
    said = ChatMessage(Role.USER, incoming.text)
    return StoredMessage(said, message_tokens(said))


async def bench(base_url: str, turns: int, in_flight: int) -> None:
    with tempfile.TemporaryDirectory() as name:
        directory = Path(name)
        app = application(base_url, directory / "cost.db")
        await app.start()
        await app.process_lease.start()
        try:
            await cost_per_turn(app, 40)  # warm-up: connections, imports, statement caches
            cost = await cost_per_turn(app, turns)
        finally:
            await app.process_lease.stop()
            await app.aclose()
        print(f"durable turns benchmark, SQLite, zero-latency model, {turns} turns per path")
        print(f"CPU per turn, plain claim:   {cost['plain']:.2f} ms")
        print(f"CPU per turn, durable claim: {cost['durable']:.2f} ms")
        print(
            f"journal cost per turn:       {cost['durable'] - cost['plain']:+.2f} ms "
            f"({100 * (cost['durable'] / cost['plain'] - 1):+.1f} %)"
        )
        seconds, answered = await resume_time(base_url, directory, in_flight)
        print(
            f"resume after a crash, {in_flight} turns in flight: {seconds:.2f} s "
            f"from the sweep to the last answer ({answered} answered)"
        )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--turns", type=int, default=400)
    parser.add_argument("--in-flight", type=int, default=100)
    args = parser.parse_args()
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    server = context.Process(target=serve, args=(queue,), daemon=True)
    server.start()
    try:
        base_url = queue.get(timeout=30)
        asyncio.run(bench(base_url, args.turns, args.in_flight))
    finally:
        server.terminate()
        server.join(5)


if __name__ == "__main__":
    main()
