"""`tests.ports.free_port`: the port stays held for the child that is told its number."""

from __future__ import annotations

import asyncio
import errno
import socket

import pytest

from tests.ports import free_port


def test_a_reserved_port_is_refused_to_a_plain_bind() -> None:
    # What the kernel's own picks (bind to port 0, a connection's source port) also
    # respect: a port in TIME_WAIT is not handed out.
    port = free_port()
    with socket.socket() as other, pytest.raises(OSError, match="in use") as refused:
        other.bind(("127.0.0.1", port))
    assert refused.value.errno == errno.EADDRINUSE


async def test_a_server_that_sets_so_reuseaddr_binds_the_reserved_port() -> None:
    port = free_port()
    server = await asyncio.start_server(lambda reader, writer: None, "127.0.0.1", port)
    try:
        assert server.sockets[0].getsockname()[1] == port
    finally:
        server.close()
        await server.wait_closed()
