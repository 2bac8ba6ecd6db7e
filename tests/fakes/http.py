"""What every fake server shares: a server thread on 127.0.0.1, port 0, and `FakeServer`.

`ThreadedServer` serves an ASGI app with uvicorn, `AiohttpServer` an aiohttp app (the
Slack fake's WebSockets); tests/fakes/smtp.py adds aiosmtpd's. Each runs its own event
loop in a thread, so a test talks to a real server over real sockets no matter which
event loop (or none) the test itself runs. `FakeServer` gives every fake the same
lifecycle (`start`, `stop`, `with`) and the same way to wait for what it has seen.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Callable
from types import TracebackType
from typing import Any, Protocol, Self

import uvicorn
from aiohttp import web


def listening_socket() -> socket.socket:
    """A TCP socket bound to an ephemeral port of 127.0.0.1.

    proto=IPPROTO_TCP matters: asyncio sets TCP_NODELAY only on sockets that say they are
    TCP, and without it responses wait ~40 ms on the client's delayed ACK."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.bind(("127.0.0.1", 0))
    return sock


class ServerThread(Protocol):
    """A server in a thread of its own: `start()` returns once `port` listens."""

    port: int

    @property
    def stopping(self) -> bool: ...

    def start(self) -> None: ...

    def stop(self, wake: Callable[[], None] | None = None) -> None: ...


class FakeServer:
    """The lifecycle of every fake: `start()` returns once it listens, `stop()` shuts it
    down and joins its thread (also as `with Fake() as fake:`); `wait_until` polls what
    the fake has seen, for tests that wait for readiness rather than sleep.

    A fake passes its `ServerThread` to `__init__`, sets its URLs in `started(root)` and
    unblocks waiting handlers (long polls, open sockets) in `wake()`.
    """

    def __init__(self, server: ServerThread) -> None:
        self._http = server

    @property
    def port(self) -> int:
        return self._http.port

    @property
    def stopping(self) -> bool:
        """True once `stop()` began (waiting handlers should give up)."""
        return self._http.stopping

    def start(self) -> None:
        """Bind an ephemeral port and serve in a background thread; returns when ready."""
        self._http.start()
        self.started(f"http://127.0.0.1:{self._http.port}")

    def stop(self) -> None:
        """Shut the server down and wait for its thread."""
        self._http.stop(wake=self.wake)

    def started(self, root: str) -> None:
        """Set the fake's URLs from `root` (http://127.0.0.1:port)."""

    def wake(self) -> None:
        """Unblock handlers that wait, before the server stops."""

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    async def wait_until(
        self, condition: Callable[[], bool], seen: Callable[[], str], *, within: float = 5.0
    ) -> None:
        """Return once `condition()` holds; after `within` seconds fail with `seen()`,
        what the fake has seen so far."""
        deadline = time.monotonic() + within
        while not condition():
            if time.monotonic() > deadline:
                raise AssertionError(f"condition not met within {within} s; {seen()}")
            await asyncio.sleep(0.01)


class ThreadedServer:
    """`start()` returns once the port listens; `stop()` shuts down and joins the thread.

    `lifespan="on"` for apps that start work in their lifespan (the MCP SDK's).
    `on_loop` runs inside the server's own event loop before it serves (for fakes that
    need loop-bound objects such as an `asyncio.Event`).
    """

    def __init__(
        self,
        app: Any,
        *,
        name: str,
        on_loop: Callable[[], None] | None = None,
        lifespan: str = "off",
    ) -> None:
        self.app = app
        self.lifespan = lifespan
        self.name = name
        self.on_loop = on_loop
        self.port = 0
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def running(self) -> bool:
        return self._thread is not None

    @property
    def stopping(self) -> bool:
        """True once `stop()` asked uvicorn to exit (waiting handlers should give up)."""
        return self._server is not None and self._server.should_exit

    def start(self) -> None:
        if self._thread is not None:
            raise RuntimeError(f"{self.name} already started")
        sock = listening_socket()
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(
            self.app,
            log_config=None,
            log_level="warning",
            access_log=False,
            lifespan=self.lifespan,
            http="h11",
            loop="asyncio",
            interface="asgi3",
            proxy_headers=False,
            server_header=False,
            timeout_graceful_shutdown=1,
        )
        server = uvicorn.Server(config)

        async def serve() -> None:
            if self.on_loop is not None:
                self.on_loop()
            await server.serve(sockets=[sock])

        thread = threading.Thread(target=lambda: asyncio.run(serve()), name=self.name, daemon=True)
        thread.start()
        deadline = time.monotonic() + 10
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                sock.close()
                raise RuntimeError(f"{self.name} failed to start")
            time.sleep(0.005)
        self._server, self._thread = server, thread

    def stop(self, wake: Callable[[], None] | None = None) -> None:
        """Shut down; `wake` unblocks handlers that wait (e.g. long polls) first."""
        if self._server is None or self._thread is None:
            return
        self._server.should_exit = True
        if wake is not None:
            wake()
        self._thread.join(timeout=10)
        self._server = self._thread = None


class AiohttpServer:
    """An aiohttp app in a thread of its own loop (`loop`), the `ServerThread` of fakes
    that need aiohttp's WebSockets. `build()` makes the app inside that loop."""

    def __init__(self, build: Callable[[], web.Application], *, name: str) -> None:
        self.build = build
        self.name = name
        self.port = 0
        self.loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._stopping = False

    @property
    def stopping(self) -> bool:
        return self._stopping

    def start(self) -> None:
        if self._thread is not None:
            raise RuntimeError(f"{self.name} already started")
        sock = listening_socket()
        self.port = sock.getsockname()[1]
        self._stopping = False
        ready = threading.Event()
        errors: list[BaseException] = []

        def run() -> None:
            loop = asyncio.new_event_loop()
            self.loop = loop
            runner = web.AppRunner(self.build(), access_log=None, handle_signals=False)
            try:
                loop.run_until_complete(runner.setup())
                loop.run_until_complete(web.SockSite(runner, sock).start())
            except BaseException as exc:
                errors.append(exc)
                ready.set()
                return
            ready.set()
            loop.run_forever()
            loop.run_until_complete(runner.cleanup())
            loop.close()

        thread = threading.Thread(target=run, name=self.name, daemon=True)
        thread.start()
        ready.wait(10)
        if errors:
            raise RuntimeError(f"{self.name} failed to start") from errors[0]
        self._thread = thread

    def stop(self, wake: Callable[[], None] | None = None) -> None:
        """Shut down; `wake` (run first) closes what would keep the loop busy."""
        if self.loop is None or self._thread is None:
            return
        self._stopping = True
        if wake is not None:
            wake()
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)
        self.loop = self._thread = None
