"""Ports for servers that a test starts in another process, which must be told a number.

A port merely found free (bind to 0, close, hand the number on) can be taken by anyone in
the seconds before the child binds it: a server another test worker binds to port 0, or
the source port of any outgoing connection. `free_port` reserves it instead: it leaves a
connection to the port in TIME_WAIT, and for the next 60 s the kernel hands that port to
no bind(0) and no connect(), while a server that sets SO_REUSEADDR (uvicorn, asyncio,
Node: all of them) may still bind it.
"""

from __future__ import annotations

import socket


def free_port() -> int:
    """A port of 127.0.0.1 that only an explicit bind with SO_REUSEADDR will get."""
    with socket.socket() as server:
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        address = server.getsockname()
        with socket.create_connection(address) as client:
            accepted, _ = server.accept()
            # The side that closes first keeps the TIME_WAIT: the server's, on our port.
            accepted.close()
            client.recv(1)  # its FIN has arrived, so the close above completed
        return int(address[1])
