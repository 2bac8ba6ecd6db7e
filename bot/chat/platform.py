"""The `Platform` protocol: what a chat adapter gives the application.

The composition root builds one `Platform` per configured chat service (Telegram,
Slack) and runs them inside `parley run`: `start()` after migrations, the web routes
mounted on Parley's own ASGI app (webhooks), `stop()` on shutdown in reverse order.
`messenger` lets the scheduler deliver reminders without knowing the platform.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Protocol, runtime_checkable

from starlette.routing import BaseRoute

from bot.surface import Messenger, Surface


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


@runtime_checkable
class ResumesTurns(Protocol):
    """A platform that can answer a turn again after a restart (bot/turn/durable.py)."""

    def resume_surface(
        self, reply: dict[str, Any], preview: str, on_preview: Callable[[str], Awaitable[None]]
    ) -> Surface:
        """A surface for the stored reply address `reply` (what the platform gave
        `Desk.claim_turn`); `preview` names the message that showed the half-written
        answer before (empty: none), which the surface finishes or replaces."""
        ...
