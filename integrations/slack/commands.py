"""The slash command (`/parley` by default): help, reset and a Block Kit view of tools."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from bot.admin import NOT_ADMIN
from bot.approval_commands import approval_command, grants_text
from bot.desk import AskPlatform, Desk
from bot.domain import ChatKind, ChatRef, IncomingMessage, UserRef
from bot.i18n import N_, _
from bot.toolkit import Tool
from integrations.slack.convert import PLATFORM

log = logging.getLogger(__name__)

HELP = N_(
    "*Parley* answers in DMs, and in channels when you mention it (the answer goes in a "
    "thread; reply in that thread to continue).\n"
    "`{command} help`: this help\n"
    "`{command} reset`: start a new conversation in this DM\n"
    "`{command} tools`: the tools Parley may use in this channel\n"
    "`{command} memory`: what you asked Parley to remember; "
    "`{command} forget 3` (or `forget all`) forgets it\n"
    "`{command} language zh` (or `en`, or `auto`): the language I write to you in"
)
RESET_IN_CHANNEL = N_(
    "In channels every thread is its own conversation: mention me in a new message to start afresh."
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
        name = str(command.get("command", "/parley"))
        words = str(command.get("text", "")).split()
        sub = words[0].lower() if words else "help"
        message = command_message(command)
        if sub == "help":
            await ack(text=_(HELP, command=name), response_type="ephemeral")
        elif sub == "reset":
            if message.chat.kind is not ChatKind.DM:
                await ack(text=_(RESET_IN_CHANNEL), response_type="ephemeral")
                return
            closed = await self.desk.reset(message)
            await ack(
                text=_("Started a new conversation.")
                if closed
                else _("There was nothing to reset: your next message starts a new conversation."),
                response_type="ephemeral",
            )
        elif sub == "language":
            text = await self.desk.language_text(message.user, " ".join(words[1:]))
            await ack(text=text, response_type="ephemeral")
        elif sub == "memory":
            await ack(text=await self.desk.memory_text(message), response_type="ephemeral")
        elif sub == "forget":
            text = await self.desk.forget_text(message, " ".join(words[1:]))
            await ack(text=text, response_type="ephemeral")
        elif sub == "tools":
            answer = await approval_command(
                self.desk,
                message.user,
                message.chat,
                words[1:],
                ask=self.admin_question(message.user),
            )
            if answer is not None:
                await ack(text=answer, response_type="ephemeral")
                return
            overview = await self.desk.tool_overview(message)
            grants = await grants_text(self.desk, message.user)
            blocks = tools_blocks(overview)
            if grants:
                blocks.append(
                    {"type": "section", "text": {"type": "mrkdwn", "text": grants[:3000]}}
                )
            await ack(
                text="\n\n".join(filter(None, [tools_text(overview), grants])),
                blocks=blocks[:50],
                response_type="ephemeral",
            )
        else:
            await ack(
                text=_(
                    "I don't know `{command} {sub}`.\n{help}",
                    command=name,
                    sub=sub,
                    help=_(HELP, command=name),
                ),
                response_type="ephemeral",
            )

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
        note = ""
        try:
            index = int(str(action.get("action_id", "")).rpartition(":")[2])
        except ValueError:
            index = -1
        chunk = overview[index * CHUNK : (index + 1) * CHUNK] if index >= 0 else []
        selected = {str(o.get("value")) for o in action.get("selected_options") or []}
        changes = [
            (item.name, item.name in selected)
            for item, on in chunk
            if (item.name in selected) != on
        ]
        if changes:
            done = await self.desk.set_tools(
                message.user, message.chat, changes, ask=self.admin_question(message.user)
            )
            if done:
                note = "Saved: " + ", ".join(
                    f"{tool_name} {'on' if enabled else 'off'}" for tool_name, enabled in changes
                )
            else:
                log.info(
                    "slack: refused a tool change by %s in %s",
                    message.user.platform_user_id,
                    channel,
                )
                note = _(NOT_ADMIN)
            overview = await self.desk.tool_overview(message)
        await respond(
            replace_original=True,
            response_type="ephemeral",
            text=note or tools_text(overview),
            blocks=tools_blocks(overview, note=note),
        )


def command_message(command: dict[str, Any]) -> IncomingMessage:
    """A slash command's place and user, as `Engine.reset`/`tool_overview` need them."""
    channel = str(command.get("channel_id", ""))
    kind = ChatKind.DM if channel.startswith("D") else ChatKind.CHANNEL
    user = UserRef(PLATFORM, str(command.get("user_id", "")), str(command.get("user_name", "")))
    return IncomingMessage(chat=ChatRef(PLATFORM, channel, kind), user=user, text="")


def tools_text(overview: list[tuple[Tool, bool]]) -> str:
    enabled = [item.name for item, on in overview if on]
    if not enabled:
        return _("Tools in this channel: none")
    return _("Tools in this channel: {tools}", tools=", ".join(enabled))


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
