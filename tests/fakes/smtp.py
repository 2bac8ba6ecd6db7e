"""A real SMTP server for tests: aiosmtpd's Controller on 127.0.0.1, port 0.

`messages` holds what was accepted: envelope sender, recipients and the parsed message.
AUTH is offered without TLS (`auth_require_tls=False`) and accepts `user`/`secret`.
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from tests.fakes.http import FakeServer, listening_socket

USERNAME, PASSWORD = "user", "secret"


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    message: EmailMessage
    auth: str | None


class _Handler:
    def __init__(self, server: SMTPServer) -> None:
        self.server = server

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        parsed = email.message_from_bytes(envelope.content, policy=email.policy.default)
        login = session.auth_data.login.decode() if session.auth_data else None
        self.server.messages.append(
            Received(envelope.mail_from, list(envelope.rcpt_tos), parsed, login)  # type: ignore[arg-type]
        )
        # Held: the message is in (a real server may deliver it from here on), the client
        # has no 250 yet (RFC 1047's window: a client that dies now cannot know).
        await asyncio.get_running_loop().run_in_executor(None, self.server.released.wait)
        return "250 Message accepted for delivery"


def _authenticate(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> Any:
    ok = isinstance(data, LoginPassword) and (data.login, data.password) == (
        USERNAME.encode(),
        PASSWORD.encode(),
    )
    return AuthResult(success=ok, handled=False, auth_data=data if ok else None)


class _PortZeroController(Controller):
    """Serves on a socket bound to port 0 (with IPPROTO_TCP, so TCP_NODELAY is set)."""

    def __init__(self, handler: Any, sock: socket.socket, **kwargs: Any) -> None:
        self._sock = sock
        super().__init__(handler, hostname="127.0.0.1", port=sock.getsockname()[1], **kwargs)

    def _create_server(self) -> Any:
        return self.loop.create_server(self._factory_invoker, sock=self._sock)


class _SMTPThread:
    """aiosmtpd's Controller (its own loop in a thread) as a `ServerThread`."""

    def __init__(self, handler: Any) -> None:
        self.handler = handler
        self.port = 0
        self._controller: Controller | None = None

    @property
    def stopping(self) -> bool:
        return False  # no handler waits: nothing to give up

    def start(self) -> None:
        sock = listening_socket()
        self.port = sock.getsockname()[1]
        self._controller = _PortZeroController(
            self.handler,
            sock,
            authenticator=_authenticate,
            auth_require_tls=False,
        )
        self._controller.start()  # returns once it answers (aiosmtpd's ready check)

    def stop(self, wake: Callable[[], None] | None = None) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None


class SMTPServer(FakeServer):
    """`hold()` keeps each accepted message's 250 reply back until `release()`."""

    def __init__(self) -> None:
        self.messages: list[Received] = []
        self.host = "127.0.0.1"
        self.released = threading.Event()
        self.released.set()
        super().__init__(_SMTPThread(_Handler(self)))

    def hold(self) -> None:
        self.released.clear()

    def release(self) -> None:
        self.released.set()
