"""Parley as the floor benchmarks run it: `parley run` in a process of its own, settings
from the environment, plus a profile on request.

With PARLEY_BENCH_PROFILE=1, SIGUSR1 starts cProfile (the benchmark sends it when the
measured load begins) and SIGTERM stops it and writes the top entries by own time to
PARLEY_BENCH_PROFILE_OUT (default: stderr) before shutting down.

Usage: PYTHONPATH=<a Parley tree> python -P tests/bench/_parley_bot.py
"""

import asyncio
import cProfile
import io
import logging
import os
import pstats
import signal
import sys

from bot.app import Application
from bot.config import Settings

PROFILE = os.environ.get("PARLEY_BENCH_PROFILE") == "1"


def write_profile(profiler: cProfile.Profile) -> None:
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out).sort_stats("tottime")
    stats.print_stats(int(os.environ.get("PARLEY_BENCH_PROFILE_TOP", "25")))
    # Who calls the ten costliest entries: a system call's own time says little alone.
    stats.print_callers(10)
    target = os.environ.get("PARLEY_BENCH_PROFILE_OUT")
    if target:
        with open(target, "w") as file:
            file.write(out.getvalue())
    else:
        sys.stderr.write(out.getvalue())


async def main() -> None:
    settings = Settings.load(env_file=None)
    application = Application(settings)
    profiler = cProfile.Profile() if PROFILE else None
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()

    def finish() -> None:
        if profiler is not None:
            profiler.disable()
            write_profile(profiler)
        stop.set()

    loop.add_signal_handler(signal.SIGTERM, finish)
    if profiler is not None:
        loop.add_signal_handler(signal.SIGUSR1, profiler.enable)
    try:
        await application.start()
        await application.serve(stop)
    finally:
        await application.aclose()


logging.basicConfig(level=logging.WARNING)
asyncio.run(main())
