"""A real SMTP server for tests: aiosmtpd's Controller on 127.0.0.1, port 0.

`messages` holds what was accepted: envelope sender, recipients and the parsed message.
AUTH accepts `user`/`secret`. Plain (`tls="none"`), AUTH is offered without TLS; with
`tls="starttls"` the server refuses every command but EHLO/STARTTLS/QUIT before TLS and
offers AUTH only after it, as Exim and Postfix do; with `tls="tls"` it speaks TLS from
the first byte (SMTPS). The certificate is the `certificate` given (a trustme leaf for
127.0.0.1). `refuse` maps an address to the reply its RCPT gets ("550 5.1.1 ..."), so a
message can be accepted for some recipients and refused for others.
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import socket
import ssl
import threading
from collections.abc import Callable
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Any, Literal

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

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: Any
    ) -> str:
        refusal = self.server.refuse.get(address.lower())
        if refusal:
            return refusal
        envelope.rcpt_tos.append(address)
        return "250 OK"

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
        return self.loop.create_server(self._factory_invoker, sock=self._sock, ssl=self.ssl_context)


TLSMode = Literal["none", "starttls", "tls"]


class _SMTPThread:
    """aiosmtpd's Controller (its own loop in a thread) as a `ServerThread`."""

    def __init__(self, handler: Any, tls: TLSMode, context: ssl.SSLContext | None) -> None:
        self.handler = handler
        self.port = 0
        self._tls = tls
        self._context = context
        self._controller: Controller | None = None

    @property
    def stopping(self) -> bool:
        return False  # no handler waits: nothing to give up

    def start(self) -> None:
        sock = listening_socket()
        self.port = sock.getsockname()[1]
        secure: dict[str, Any] = {"auth_require_tls": False}
        if self._tls == "starttls":
            secure = {"tls_context": self._context, "require_starttls": True}
        elif self._tls == "tls":
            # The whole session is TLS; aiosmtpd only counts STARTTLS as TLS for AUTH.
            secure = {"ssl_context": self._context, "auth_require_tls": False}
        self._controller = _PortZeroController(
            self.handler, sock, authenticator=_authenticate, **secure
        )
        self._controller.start()  # returns once it answers (aiosmtpd's ready check)

    def stop(self, wake: Callable[[], None] | None = None) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None


class SMTPServer(FakeServer):
    """`hold()` keeps each accepted message's 250 reply back until `release()`."""

    def __init__(self, tls: TLSMode = "none", certificate: ssl.SSLContext | None = None) -> None:
        if tls != "none" and certificate is None:
            raise ValueError("a TLS server needs a certificate (a server-side SSLContext)")
        self.messages: list[Received] = []
        self.refuse: dict[str, str] = {}
        self.host = "127.0.0.1"
        self.released = threading.Event()
        self.released.set()
        super().__init__(_SMTPThread(_Handler(self), tls, certificate))

    def hold(self) -> None:
        self.released.clear()

    def release(self) -> None:
        self.released.set()
