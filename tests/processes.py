"""`parley run` as a child process for tests: a clean environment, a deadline on every
wait, and the process always stopped (the caller's `finally` calls `stop`, or `with`).

`Run` is the process; `ParleyProcess` a served one (Slack over HTTP against a fake Web
API, the console on, readiness from `/readyz`), for measuring what one request costs.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from types import TracebackType

import httpx

from tests.fakes.slack_server import FakeSlackServer
from tests.ports import free_port

PARLEY = [sys.executable, "-m", "bot.cli"]
REPO = Path(__file__).resolve().parents[1]


def environment(tmp_path: Path, **extra: str) -> dict[str, str]:
    """PATH and friends, the repository on PYTHONPATH, a database under `tmp_path`."""
    keep = {
        k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "SYSTEMROOT", "USER")
    }
    return {
        **keep,
        "PYTHONPATH": str(REPO),
        "DATABASE_URL": f"sqlite:///{tmp_path / 'data' / 'parley.db'}",
        "PARLEY_HTTP_PORT": "0",
        **extra,
    }


class Run:
    """A running `parley run`; its output goes to files (a pipe nobody reads while the
    test waits would fill at DEBUG and stall the process)."""

    def __init__(self, tmp_path: Path, **env: str) -> None:
        self._out, self._err = tmp_path / "stdout.txt", tmp_path / "stderr.txt"
        with self._out.open("w") as out, self._err.open("w") as err:
            self.process = subprocess.Popen(
                [*PARLEY, "run"],
                cwd=tmp_path,
                env=environment(tmp_path, **env),
                stdout=out,
                stderr=err,
            )

    @property
    def returncode(self) -> int | None:
        return self.process.returncode

    def output(self) -> tuple[str, str]:
        return self._out.read_text(), self._err.read_text()

    def wait_ready(self, url: str, *, within: float = 120.0) -> None:
        """Return once `url` answers 200; AssertionError (with its stderr) if the process
        exits first or `within` seconds pass. Generous: on a busy 2-core machine a start
        (imports, migrations, the platforms' first calls) has taken more than 60 s."""
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"parley run exited: {self.output()[1]}")
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(url, timeout=2).status_code == 200:
                    return
            time.sleep(0.05)
        raise AssertionError(f"parley run was not ready in {within} s: {self.output()[1]}")

    def finish(self, *, within: float = 60.0) -> tuple[str, str]:
        """Wait for the process to end by itself (AssertionError past `within` seconds);
        its stdout and stderr."""
        try:
            self.process.wait(timeout=within)
        except subprocess.TimeoutExpired:
            self.stop()
            raise AssertionError(f"parley did not exit within {within} s") from None
        return self.output()

    def stop(self) -> tuple[str, str]:
        """SIGTERM, then SIGKILL if it lingers; its stdout and stderr."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=20)
        except BaseException as exc:
            # Lingering, or the test's own timeout fired while it waited here: either
            # way the process must not outlive the test (it would hold ports, files and
            # CPU the next tests need).
            self.process.kill()
            self.process.wait()
            if not isinstance(exc, subprocess.TimeoutExpired):
                raise
        return self.output()


SIGNING_SECRET = "memory-test-signing-secret"


def ready_run(tmp_path: Path, **env: str) -> tuple[Run, str]:
    """`parley run` on a free port, returned once its /readyz answers 200."""
    port = free_port()
    run = Run(tmp_path, PARLEY_HTTP_PORT=str(port), **env)
    url = f"http://127.0.0.1:{port}"
    try:
        run.wait_ready(f"{url}/readyz")
    except BaseException:
        run.stop()
        raise
    return run, url


class ParleyProcess:
    """A served `parley run` in `directory`: Slack in HTTP mode and the console on; the
    model points at a closed port, since nothing here gets far enough to call it, and the
    Slack Web API at a fake of its own (Slack checks its token at start)."""

    def __init__(self, directory: Path, **env: str) -> None:
        self.directory = directory
        self.port = free_port()
        self.slack = FakeSlackServer()
        self.env = {
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
        self.run: Run | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> ParleyProcess:
        self.slack.start()
        self.env.setdefault("PARLEY_SLACK_API_URL", self.slack.api_url)
        try:
            self.run = Run(self.directory, **self.env)
            self.run.wait_ready(f"{self.url}/readyz")
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def status(self, field: str) -> int:
        """A field of /proc/<pid>/status in KiB (VmHWM: the peak resident memory)."""
        assert self.run is not None
        for line in Path(f"/proc/{self.run.process.pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
        raise KeyError(field)

    def stop(self) -> None:
        try:
            if self.run is not None:
                self.run.stop()
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
