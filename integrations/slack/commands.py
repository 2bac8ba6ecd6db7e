"""The slash command (`/parley` by default): help, reset and a Block Kit view of tools."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from bot.domain import ChatKind, ChatRef, IncomingMessage, UserRef
from bot.engine import Engine
from bot.toolkit import Tool
from integrations.slack.convert import PLATFORM

log = logging.getLogger(__name__)

HELP = (
    "*Parley* answers in DMs, and in channels when you mention it (the answer goes in a "
    "thread; reply in that thread to continue).\n"
    "`{command} help`: this help\n"
    "`{command} reset`: start a new conversation in this DM\n"
    "`{command} tools`: the tools Parley may use in this channel"
)
RESET_IN_CHANNEL = (
    "In channels every thread is its own conversation: mention me in a new message to start afresh."
)


class SlashCommands:
    """Answers the slash command inside bolt's 3-second ack, as an ephemeral reply."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    async def handle(self, ack: Callable[..., Awaitable[None]], command: dict[str, Any]) -> None:
        name = str(command.get("command", "/parley"))
        words = str(command.get("text", "")).split()
        sub = words[0].lower() if words else "help"
        message = command_message(command)
        if sub == "help":
            await ack(text=HELP.format(command=name), response_type="ephemeral")
        elif sub == "reset":
            if message.chat.kind is not ChatKind.DM:
                await ack(text=RESET_IN_CHANNEL, response_type="ephemeral")
                return
            closed = await self.engine.reset(message)
            await ack(
                text="Started a new conversation."
                if closed
                else "There was nothing to reset: your next message starts a new conversation.",
                response_type="ephemeral",
            )
        elif sub == "tools":
            overview = await self.engine.tool_overview(message)
            await ack(
                text=tools_text(overview), blocks=tools_blocks(overview), response_type="ephemeral"
            )
        else:
            await ack(
                text=f"I don't know `{name} {sub}`.\n" + HELP.format(command=name),
                response_type="ephemeral",
            )


def command_message(command: dict[str, Any]) -> IncomingMessage:
    """A slash command's place and user, as `Engine.reset`/`tool_overview` need them."""
    channel = str(command.get("channel_id", ""))
    kind = ChatKind.DM if channel.startswith("D") else ChatKind.CHANNEL
    user = UserRef(PLATFORM, str(command.get("user_id", "")), str(command.get("user_name", "")))
    return IncomingMessage(chat=ChatRef(PLATFORM, channel, kind), user=user, text="")


def tools_text(overview: list[tuple[Tool, bool]]) -> str:
    enabled = [item.name for item, on in overview if on]
    return f"Tools in this channel: {', '.join(enabled) or 'none'}"


def tools_blocks(overview: list[tuple[Tool, bool]]) -> list[dict[str, Any]]:
    """A header and one section per tool: name, on/off, the first line of its description."""
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": "Tools in this channel"}}
    ]
    for item, on in overview[:45]:
        summary = item.description.strip().splitlines()[0] if item.description.strip() else ""
        mark = ":white_check_mark: enabled" if on else ":no_entry: disabled"
        confirm = " · asks before it acts" if item.side_effect else ""
        blocks.append(
            {
                "type": "section",
                "text": {
                    "type": "mrkdwn",
                    "text": f"*{item.name}*  {mark}{confirm}\n{summary}"[:3000],
                },
            }
        )
    if not overview:
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": "No tools."}})
    blocks.append(
        {
            "type": "context",
            "elements": [
                {"type": "mrkdwn", "text": "Admins decide which tools a channel may use."}
            ],
        }
    )
    return blocks
