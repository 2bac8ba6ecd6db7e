"""The slash command (`/parley` by default): help, reset and a Block Kit view of tools."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from bot.chat import CommandStyle, commands, presses
from bot.chat.desk import AskPlatform, Desk
from bot.domain import ChatKind, ChatRef, IncomingMessage, UserRef
from bot.i18n import N_, _
from bot.toolkit import Tool
from integrations.slack.convert import PLATFORM

log = logging.getLogger(__name__)

# How Slack writes a command: a subcommand of the slash command (`/parley` by default,
# filled in per command as it is called), in code font; a channel's threads are its
# conversations.
INTRO = N_(
    "*Parley* answers in DMs, and in channels when you mention it (the answer goes in a "
    "thread; reply in that thread to continue).\n{commands}"
)


def style_of(command: str) -> CommandStyle:
    """The command style for the slash command `command`."""
    return CommandStyle(
        INTRO,
        written=lambda name, argument: f"`{' '.join(filter(None, (command, name, argument)))}`",
        threads_are_conversations=True,
    )


AdminQuestion = Callable[[UserRef], AskPlatform]
TOOLS_ACTION = "parley_tools"
CHUNK = 10  # Slack allows at most 10 options in one checkboxes element


class SlashCommands:
    """Answers the slash command inside bolt's 3-second ack, as an ephemeral reply, and
    the tool checkboxes it shows (admins only may change them)."""

    def __init__(self, desk: Desk, admin_question: AdminQuestion) -> None:
        self.desk = desk
        self.admin_question = admin_question

    async def handle(self, ack: Callable[..., Awaitable[None]], command: dict[str, Any]) -> None:
        words = str(command.get("text", "")).split()
        message = command_message(command)
        reply = await commands.run(
            self.desk,
            style_of(str(command.get("command", "/parley"))),
            message,
            words[0] if words else "help",
            " ".join(words[1:]),
            ask=self.admin_question(message.user),
        )
        if reply.tools is None:
            await ack(text=reply.text, response_type="ephemeral")
            return
        blocks = tools_blocks(reply.tools)
        if reply.grants:
            blocks.append(
                {"type": "section", "text": {"type": "mrkdwn", "text": reply.grants[:3000]}}
            )
        await ack(text=reply.text, blocks=blocks[:50], response_type="ephemeral")

    async def toggle(
        self,
        ack: Callable[..., Awaitable[None]],
        body: dict[str, Any],
        action: dict[str, Any],
        respond: Callable[..., Awaitable[Any]],
    ) -> None:
        """A press on the tool checkboxes: check the presser, apply, audit, redraw."""
        await ack()
        channel = str(
            (body.get("channel") or {}).get("id")
            or (body.get("container") or {}).get("channel_id")
            or ""
        )
        presser = body.get("user") or {}
        message = command_message(
            {
                "channel_id": channel,
                "user_id": presser.get("id", ""),
                "user_name": presser.get("username") or presser.get("name") or "",
            }
        )
        overview = await self.desk.tool_overview(message)
        try:
            index = int(str(action.get("action_id", "")).rpartition(":")[2])
        except ValueError:
            index = -1
        chunk = overview[index * CHUNK : (index + 1) * CHUNK] if index >= 0 else []
        selected = {str(o.get("value")) for o in action.get("selected_options") or []}
        reply = await presses.toggle(
            self.desk,
            message.user,
            message.chat,
            set_to={item.name: item.name in selected for item, _on in chunk},
            ask=self.admin_question(message.user),
        )
        note = reply.notice
        overview = reply.tools if reply.tools is not None else overview
        await respond(
            replace_original=True,
            response_type="ephemeral",
            text=note or commands.tools_text(overview),
            blocks=tools_blocks(overview, note=note),
        )


def command_message(command: dict[str, Any]) -> IncomingMessage:
    """A slash command's place and user, as `Engine.reset`/`tool_overview` need them."""
    channel = str(command.get("channel_id", ""))
    kind = ChatKind.DM if channel.startswith("D") else ChatKind.CHANNEL
    user = UserRef(PLATFORM, str(command.get("user_id", "")), str(command.get("user_name", "")))
    return IncomingMessage(chat=ChatRef(PLATFORM, channel, kind), user=user, text="")


def tools_blocks(overview: list[tuple[Tool, bool]], *, note: str = "") -> list[dict[str, Any]]:
    """A header, checkboxes (10 tools per group, as Slack allows) and a footnote."""
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": _("Tools in this channel")}}
    ]
    if note:
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": note[:3000]}})
    if not overview:
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": _("No tools.")}})
    # Slack messages take at most 50 blocks: 40 groups of 10 is plenty.
    for index in range(0, min(len(overview), 40 * CHUNK), CHUNK):
        chunk = overview[index : index + CHUNK]
        options = [_option(item) for item, _ in chunk]
        element: dict[str, Any] = {
            "type": "checkboxes",
            "action_id": f"{TOOLS_ACTION}:{index // CHUNK}",
            "options": options,
        }
        initial = [option for option, (_, on) in zip(options, chunk, strict=True) if on]
        if initial:
            element["initial_options"] = initial
        blocks.append(
            {
                "type": "actions",
                "block_id": f"{TOOLS_ACTION}:{index // CHUNK}",
                "elements": [element],
            }
        )
    blocks.append(
        {
            "type": "context",
            "elements": [
                {
                    "type": "mrkdwn",
                    "text": _(
                        "Everyone may look; only admins may change. "
                        ":warning: marks tools that ask before they act."
                    ),
                }
            ],
        }
    )
    return blocks


def _option(item: Tool) -> dict[str, Any]:
    summary = item.description.strip().splitlines()[0] if item.description.strip() else ""
    mark = " :warning:" if item.side_effect else ""
    option: dict[str, Any] = {
        "text": {"type": "mrkdwn", "text": f"*{item.name}*{mark}"[:75]},
        "value": item.name,
    }
    if summary:
        option["description"] = {"type": "mrkdwn", "text": summary[:75]}
    return option
