"""Confirmations of side-effecting tools: Block Kit buttons bound to the user who asked."""

from __future__ import annotations

import asyncio
import secrets
from typing import Any

CONFIRM_YES = "parley_confirm_yes"
CONFIRM_NO = "parley_confirm_no"


class Confirmations:
    """Confirmation requests waiting for a button press, by token, bound to one user."""

    def __init__(self) -> None:
        self._pending: dict[str, tuple[str, asyncio.Future[bool]]] = {}

    def open(self, user_id: str) -> tuple[str, asyncio.Future[bool]]:
        token = secrets.token_urlsafe(12)
        future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._pending[token] = (user_id, future)
        return token, future

    def owner(self, token: str) -> str | None:
        entry = self._pending.get(token)
        return entry[0] if entry else None

    def resolve(self, token: str, answer: bool) -> bool:
        """Answer a request; False if it is unknown, expired or already answered."""
        entry = self._pending.pop(token, None)
        if entry is None or entry[1].done():
            return False
        entry[1].set_result(answer)
        return True

    def discard(self, token: str) -> None:
        self._pending.pop(token, None)

    def __len__(self) -> int:
        return len(self._pending)


def confirmation_blocks(question: str, user_id: str, token: str) -> list[dict[str, Any]]:
    """The question and Confirm/Cancel buttons; the token ties a press to the request."""
    return [
        {"type": "section", "text": {"type": "mrkdwn", "text": f"<@{user_id}>: {question}"}},
        {
            "type": "actions",
            "block_id": "parley_confirm",
            "elements": [
                {
                    "type": "button",
                    "action_id": CONFIRM_YES,
                    "text": {"type": "plain_text", "text": "Confirm"},
                    "style": "primary",
                    "value": token,
                },
                {
                    "type": "button",
                    "action_id": CONFIRM_NO,
                    "text": {"type": "plain_text", "text": "Cancel"},
                    "style": "danger",
                    "value": token,
                },
            ],
        },
    ]
