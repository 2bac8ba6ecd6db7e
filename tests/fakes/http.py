"""`ThreadedServer`: an ASGI app served by uvicorn on 127.0.0.1, port 0, in a thread.

Every HTTP fake uses it, so each test talks to a real server over real sockets no
matter which event loop (or none) the test itself runs.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

import uvicorn


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
        # proto=IPPROTO_TCP matters: asyncio sets TCP_NODELAY only on sockets that say they
        # are TCP, and without it responses wait ~40 ms on the client's delayed ACK.
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.bind(("127.0.0.1", 0))
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
