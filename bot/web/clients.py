"""Who is asking: the client's address and scheme, believing forwarding headers only
from proxies the operator named (PARLEY_HTTP_TRUSTED_PROXIES).

uvicorn's own proxy-header handling is off (bot/web/server.py): by default it believes
X-Forwarded-For from 127.0.0.1, so anyone able to reach a local port, or to send a header
through a proxy that passes it on, could pick the address the console's sign-in slowing
counts by.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

from starlette.datastructures import Headers
from starlette.types import Scope

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class ClientResolver:
    """The client of a request: the peer, or what trusted proxies say the peer was."""

    def __init__(self, trusted: Sequence[Network] = ()) -> None:
        self.trusted = tuple(trusted)

    def is_trusted(self, address: str) -> bool:
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(ip in network for network in self.trusted)

    def address(self, scope: Scope) -> str:
        """The nearest address in the forwarding chain that is not a trusted proxy.

        X-Forwarded-For is read right to left (each proxy appends the address it saw), so
        a client cannot hide behind an entry it wrote itself."""
        peer = _peer(scope)
        if not self.trusted or not self.is_trusted(peer):
            return peer
        chain = [item.strip() for item in _joined(scope, "x-forwarded-for").split(",")]
        chain = [item for item in chain if item]
        for hop in reversed(chain):
            if not self.is_trusted(hop):
                return _valid(hop)
        return _valid(chain[0]) if chain else peer

    def scheme(self, scope: Scope) -> str:
        """`https` or `http`, as the client used it (X-Forwarded-Proto from a trusted proxy)."""
        scheme = str(scope.get("scheme", "http"))
        if self.trusted and self.is_trusted(_peer(scope)):
            forwarded = _joined(scope, "x-forwarded-proto").split(",")[-1].strip().lower()
            if forwarded in ("http", "https"):
                return forwarded
        return scheme


def _peer(scope: Scope) -> str:
    client = scope.get("client")
    return str(client[0]) if client else "?"


def _joined(scope: Scope, name: str) -> str:
    return ",".join(Headers(scope=scope).getlist(name))


def _valid(hop: str) -> str:
    """A forwarded entry as an address; anything else is one shared bucket, not a key an
    attacker can vary."""
    try:
        return str(ipaddress.ip_address(hop))
    except ValueError:
        return "invalid-forwarded-address"
