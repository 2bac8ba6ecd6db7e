"""A real `parley run` in a child process, for measuring what one request costs it.

Slack in HTTP mode and the console are on; the model points at a closed port, since
nothing here gets far enough to call it, and the Slack Web API at a fake of its own (Slack
checks its token at start). Readiness is `/readyz`.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from types import TracebackType

import httpx

from tests.fakes.slack_server import FakeSlackServer

REPO = Path(__file__).resolve().parents[2]
SIGNING_SECRET = "memory-test-signing-secret"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ParleyProcess:
    def __init__(self, directory: Path, **env: str) -> None:
        self.directory = directory
        self.port = free_port()
        self.slack = FakeSlackServer()
        keep = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "USER")}
        self.env = {
            **keep,
            "PYTHONPATH": str(REPO),
            "DATABASE_URL": f"sqlite:///{directory / 'parley.db'}",
            "PARLEY_HTTP_PORT": str(self.port),
            "OPENAI_API_KEY": "sk-unused",
            "OPENAI_BASE_URL": "http://127.0.0.1:9/v1",
            "SLACK_BOT_TOKEN": "xoxb-unused",
            "SLACK_SIGNING_SECRET": SIGNING_SECRET,
            "PARLEY_ADMIN_PASSWORD": "memory-test-password",
            "PARLEY_LOG_LEVEL": "WARNING",
            **env,
        }
        self.log = directory / "parley.log"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> ParleyProcess:
        self.slack.start()
        self.env.setdefault("PARLEY_SLACK_API_URL", self.slack.api_url)
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "bot.cli", "run"],
                cwd=self.directory,
                env=self.env,
                stdout=subprocess.DEVNULL,
                stderr=log,
            )
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def _wait_ready(self, within: float = 60.0) -> None:
        assert self.process is not None
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"parley run exited: {self.log.read_text()}")
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"{self.url}/readyz", timeout=2).status_code == 200:
                    return
            time.sleep(0.05)
        raise AssertionError(f"parley run was not ready in {within} s: {self.log.read_text()}")

    def status(self, field: str) -> int:
        """A field of /proc/<pid>/status in KiB (VmHWM: the peak resident memory)."""
        assert self.process is not None
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
        raise KeyError(field)

    def stop(self) -> None:
        try:
            if self.process is not None and self.process.poll() is None:
                self.process.send_signal(signal.SIGTERM)
                try:
                    self.process.wait(timeout=20)
                finally:
                    if self.process.poll() is None:
                        self.process.kill()
                        self.process.wait()
        finally:
            self.slack.stop()


async def upload(total: int, size: int = 1 << 20) -> AsyncIterator[bytes]:
    """`total` bytes in `size` pieces, made as they are sent (the client holds one piece)."""
    piece = b"x" * size
    sent = 0
    while sent < total:
        part = piece if total - sent >= size else piece[: total - sent]
        sent += len(part)
        yield part
