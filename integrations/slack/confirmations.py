"""Confirmations of side-effecting tools: Block Kit buttons bound to the user who asked
(the open questions themselves are `bot.desk.Confirmations`)."""

from __future__ import annotations

from typing import Any

CONFIRM_YES = "parley_confirm_yes"
CONFIRM_NO = "parley_confirm_no"


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
