"""The reference MCP servers as real parts of the suite: installed from the registries,
started on 127.0.0.1, stopped in `finally`.

- `mcp-server-time`, `mcp-server-fetch`, `mcp-server-git` come from PyPI (dev
  dependencies in uv.lock): `python_server("mcp_server_time")` is their config entry.
- `@modelcontextprotocol/server-everything` comes from npm, pinned to
  `EVERYTHING_VERSION`, installed once into `.cache/npm` of the repository (a file lock
  keeps parallel test workers from racing); the `everything_package` fixture skips its
  tests with a clear reason only where npm is absent.
  `everything_stdio(package)` is a stdio config entry; `EverythingHTTP(package)` runs its
  streamable HTTP mode on a free port of 127.0.0.1 (`url`, `restart()`), readiness by
  polling the port, never by sleeping; the `everything_http` fixture is one, running for
  the test and stopped after it (config entry: `{"url": everything_http.url}`).

Fixtures (registered for the whole suite in tests/conftest.py): `everything_package`
(session), `everything_http` (per test). A test of the elicitation forms uses either
transport: `everything_stdio(everything_package)` or `{"url": everything_http.url}`, and
calls `trigger-elicitation-request` (registered only for a client that advertises
elicitation, as Parley's does).

Its tools (read from its package source, `dist/tools/`): echo, get-sum,
get-structured-content (output schema), trigger-long-running-operation (progress, with
`duration` and `steps`), trigger-elicitation-request (a form: titled single- and
multi-select, constrained and defaulted fields), trigger-url-elicitation,
simulate-research-query (`execution.taskSupport: "required"`).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.ports import free_port

REPO = Path(__file__).resolve().parents[2]
EVERYTHING = "@modelcontextprotocol/server-everything"
EVERYTHING_VERSION = "2026.8.31"  # `npm view @modelcontextprotocol/server-everything version`
NPM_CACHE = REPO / ".cache" / "npm"
LOOPBACK_ONLY = Path(__file__).with_name("loopback_only.mjs")
INSTALL_SECONDS = 300.0
START_SECONDS = 30.0


def python_server(module: str, *args: str) -> dict[str, Any]:
    """The config entry of a Python reference server installed from PyPI."""
    return {"command": sys.executable, "args": ["-m", module, *args]}


def install_everything() -> Path:
    """server-everything's package folder, installed with npm on first use (pinned).

    Raises `FileNotFoundError` when npm is not installed."""
    npm = shutil.which("npm")
    if npm is None:
        raise FileNotFoundError("npm")
    package = NPM_CACHE / "node_modules" / EVERYTHING
    NPM_CACHE.mkdir(parents=True, exist_ok=True)
    with (NPM_CACHE / ".install.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one worker installs, the others wait for it
        if _installed_version(package) != EVERYTHING_VERSION:
            subprocess.run(
                [
                    npm,
                    "install",
                    "--prefix",
                    str(NPM_CACHE),
                    "--no-audit",
                    "--no-fund",
                    f"{EVERYTHING}@{EVERYTHING_VERSION}",
                ],
                check=True,
                capture_output=True,
                timeout=INSTALL_SECONDS,
            )
    return package


def _installed_version(package: Path) -> str:
    try:
        return str(json.loads((package / "package.json").read_text("utf-8"))["version"])
    except (OSError, ValueError, KeyError):
        return ""


@pytest.fixture(scope="session")
def everything_package() -> Path:
    """server-everything installed from npm; its tests skip only where npm is absent."""
    try:
        return install_everything()
    except FileNotFoundError:
        pytest.skip(f"npm is not installed: {EVERYTHING}@{EVERYTHING_VERSION} needs it")


def _node() -> str:
    node = shutil.which("node")
    if node is None:
        pytest.skip(f"node is not installed: {EVERYTHING}@{EVERYTHING_VERSION} needs it")
    return node


def everything_stdio(package: Path, **extra: Any) -> dict[str, Any]:
    """A config entry running server-everything over stdio."""
    return {"command": _node(), "args": [str(package / "dist" / "index.js"), "stdio"], **extra}


@pytest.fixture
def everything_http(everything_package: Path, tmp_path: Path) -> Iterator[EverythingHTTP]:
    """server-everything over streamable HTTP on 127.0.0.1, stopped after the test."""
    server = EverythingHTTP(everything_package, tmp_path / "everything-http.log")
    server.start()
    try:
        yield server
    finally:
        server.stop()


class EverythingHTTP:
    """server-everything in its `streamableHttp` mode on 127.0.0.1 (a context manager)."""

    def __init__(self, package: Path, log: Path) -> None:
        self.package = package
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/mcp"
        self.starts = 0
        self._log = log
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self._log.open("ab") as out:
            self._process = subprocess.Popen(
                [
                    _node(),
                    "--import",
                    LOOPBACK_ONLY.as_uri(),
                    str(self.package / "dist" / "index.js"),
                    "streamableHttp",
                ],
                env={**os.environ, "PORT": str(self.port)},
                stdout=out,
                stderr=out,
                stdin=subprocess.DEVNULL,
            )
        self.starts += 1
        self._wait_listening()

    def _wait_listening(self) -> None:
        deadline = time.monotonic() + START_SECONDS
        while time.monotonic() < deadline:
            assert self._process is not None
            if self._process.poll() is not None:
                raise AssertionError(f"server-everything exited: {self._log.read_text()}")
            with (
                contextlib.suppress(OSError),
                socket.create_connection(("127.0.0.1", self.port), timeout=1),
            ):
                return
            time.sleep(0.05)
        raise AssertionError(f"server-everything did not listen in {START_SECONDS} s")

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def restart(self) -> None:
        """Stop it and start a new instance on the same port: every session is forgotten."""
        self.stop()
        self.start()

    def __enter__(self) -> EverythingHTTP:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
