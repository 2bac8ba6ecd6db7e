"""`parley run` as a child process for tests: a clean environment, a deadline on every
wait, and the process always stopped (the caller's `finally` calls `stop`)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

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
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        return self.output()
