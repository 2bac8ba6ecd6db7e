"""The `Platform` protocol: what a chat adapter gives the application.

The composition root builds one `Platform` per configured chat service (Telegram,
Slack) and runs them inside `parley run`: `start()` after migrations, the web routes
mounted on Parley's own ASGI app (webhooks), `stop()` on shutdown in reverse order.
`messenger` lets the scheduler deliver reminders without knowing the platform.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from starlette.routing import BaseRoute

from bot.surface import Messenger


class Platform(Protocol):
    name: str
    messenger: Messenger

    def routes(self) -> Sequence[BaseRoute]:
        """Web routes to mount (webhooks); empty for polling or socket modes."""
        ...

    async def start(self) -> None:
        """Connect and begin taking messages (polling, sockets, webhook registration)."""
        ...

    async def stop(self) -> None:
        """Stop taking new messages and finish what is in flight."""
        ...
