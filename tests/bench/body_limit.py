"""Body-limit benchmark: what one 200 MB request costs a real `parley run` in peak memory.

Starts `parley run` (Slack over HTTP, the console on), waits for /readyz, and sends each
case once, streamed from the client in 1 MiB pieces: an unsigned body declared by
Content-Length, a chunked one with fresh signature headers (read up to the limit, then
refused), and a chunked one to the console's sign-in. Prints the growth of VmHWM (peak
RSS, /proc/<pid>/status), the answer and the time per case; then the same with every
limit raised to 1 GiB, to show what the limits save (before them, /slack/events read any
body whole, signed or not).

Usage: python -P tests/bench/body_limit.py [--mib 200]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.processes import ParleyProcess, upload

NO_LIMITS = {
    "PARLEY_HTTP_SLACK_EVENTS_MAX_BYTES": str(1 << 30),
    "PARLEY_HTTP_SLACK_FORMS_MAX_BYTES": str(1 << 30),
    "PARLEY_HTTP_CONSOLE_MAX_BYTES": str(1 << 30),
}


def cases(size: int) -> list[tuple[str, str, dict[str, str]]]:
    fresh = {
        "Content-Type": "application/json",
        "X-Slack-Request-Timestamp": str(int(time.time())),
        "X-Slack-Signature": "v0=" + "0" * 64,
    }
    return [
        (
            "unsigned, Content-Length",
            "/slack/events",
            {"Content-Length": str(size), "Content-Type": "application/json"},
        ),
        ("fresh headers, chunked", "/slack/events", fresh),
        (
            "console sign-in, chunked",
            "/admin/login",
            {"Content-Type": "application/x-www-form-urlencoded"},
        ),
    ]


async def measure(label: str, size: int, env: dict[str, str]) -> None:
    """Each case in a process of its own: VmHWM only grows, so a second case would hide
    behind the first one's peak."""
    print(label)
    for name, path, headers in cases(size):
        with (
            tempfile.TemporaryDirectory() as directory,
            ParleyProcess(Path(directory), **env) as parley,
        ):
            async with httpx.AsyncClient(base_url=parley.url, timeout=600) as client:
                for warm in ("/slack/events", "/admin/login"):
                    await client.post(warm, content=b"{}", headers={"Content-Type": "text/plain"})
                before = parley.status("VmHWM")
                started = time.perf_counter()
                try:
                    response = await client.post(path, content=upload(size), headers=headers)
                    answer = str(response.status_code)
                except httpx.HTTPError as exc:
                    answer = type(exc).__name__
                seconds = time.perf_counter() - started
                grown = (parley.status("VmHWM") - before) / 1024
        print(
            f"  {name:26} {path:14} -> {answer:5} idle peak {before / 1024:6.1f} MiB, "
            f"+{grown:6.1f} MiB, {seconds:5.2f} s"
        )


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mib", type=int, default=200)
    args = parser.parse_args()
    size = args.mib * 1024 * 1024
    print(f"one {args.mib} MiB body per case, streamed in 1 MiB pieces")
    await measure("limits (defaults)", size, {})
    await measure("every limit raised to 1 GiB (the body is read whole)", size, NO_LIMITS)


if __name__ == "__main__":
    asyncio.run(main())
