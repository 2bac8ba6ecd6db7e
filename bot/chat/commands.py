"""Parley's chat commands, written once for every platform: /help /reset /tools /memory
/forget /language /provider (and /start, Telegram's greeting, which answers as /help).

An adapter recognises a command the platform's way (Telegram's `/reset@parley_bot`,
Slack's `/parley reset`, a typed `/reset` in the terminal), calls `run(...)` with the
command's name and what follows it, and renders the `Reply`: its text, and for /tools
the switches (a Telegram keyboard, Block Kit checkboxes). The wording is here and only
here; what differs per platform is how a command is written and how the bot is reached,
a `CommandStyle` each adapter declares.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from dataclasses import dataclass, field

from bot.chat.approval_commands import approval_command, grants_text
from bot.chat.desk import AskPlatform, Desk
from bot.domain import ChatKind, IncomingMessage
from bot.i18n import N_, _
from bot.toolkit import Tool


@dataclass(frozen=True)
class Command:
    """One command: its name, its line in a platform's command menu, and its line in the
    help (`{command}` is where the command is written; None: not listed)."""

    name: str
    menu: str
    help: str | None


COMMANDS = (
    Command("start", N_("Say hello and see what I can do"), None),
    Command("help", N_("How to talk to me"), N_("{help}: this help")),
    Command(
        "reset",
        N_("Start a new conversation"),
        N_("{reset} starts a new conversation (the old one is kept)"),
    ),
    Command(
        "tools",
        N_("Show the tools I can use in this chat"),
        N_("{tools} shows the tools I can use in this chat"),
    ),
    Command(
        "memory",
        N_("What I remember about you"),
        N_("{memory} lists what you asked me to remember; {forget} (or {forget_all}) forgets it"),
    ),
    Command(
        "forget",
        N_("Forget a remembered fact: /forget 3, /forget all; /forget context: kept chat messages"),
        None,
    ),
    Command(
        "language",
        N_("Choose my language: /language zh, /language en, /language auto"),
        N_("{language} (or en, or auto) chooses the language I write in"),
    ),
    Command(
        "provider",
        N_("Show or choose the model provider of this chat (admins choose)"),
        N_("{provider} shows which model provider answers here; admins choose one"),
    ),
)
NAMES = frozenset(command.name for command in COMMANDS)
# The help lists the commands in this order (the menu keeps the table's).
HELP_ORDER = ("reset", "tools", "memory", "language", "provider", "help")


def _slash(name: str, argument: str = "") -> str:
    return f"/{name} {argument}".strip()


@dataclass(frozen=True)
class CommandStyle:
    """How one platform writes a command and introduces its help.

    `written(name, argument)` is the command as a user types it there; `intro` (a
    message id with a `{commands}` placeholder) says how the bot is reached and places
    the command lines; `one_line` joins them with "; " (a terminal greeting) rather
    than one per line; `threads_are_conversations`: a channel's threads are its
    conversations (Slack), so /reset there has nothing to close.
    """

    intro: str
    written: Callable[[str, str], str] = field(default=_slash)
    one_line: bool = False
    threads_are_conversations: bool = False


RESET_IN_CHANNEL = N_(
    "In channels every thread is its own conversation: mention me in a new message to start afresh."
)


@dataclass(frozen=True)
class Reply:
    """What a command answers: the text for the asker alone; for /tools also every tool
    with whether it is on here (`tools`, to draw switches) and the standing approvals
    (`grants`, also part of `text`)."""

    text: str
    tools: list[tuple[Tool, bool]] | None = None
    grants: str = ""


def help_lines(style: CommandStyle) -> list[str]:
    """The help's line for each listed command on one platform, in the current language."""
    by_name = {command.name: command for command in COMMANDS}
    written = {
        "help": style.written("help", ""),
        "reset": style.written("reset", ""),
        "tools": style.written("tools", ""),
        "memory": style.written("memory", ""),
        "forget": style.written("forget", "3"),
        "forget_all": style.written("forget", "all"),
        "language": style.written("language", "zh"),
        "provider": style.written("provider", ""),
    }
    return [_(text, **written) for name in HELP_ORDER if (text := by_name[name].help)]


def help_text(style: CommandStyle) -> str:
    """The help on one platform, in the current language."""
    lines = help_lines(style)
    return _(style.intro, commands=("; " if style.one_line else "\n").join(lines))


def tools_text(overview: list[tuple[Tool, bool]]) -> str:
    """The tools on here, one line each with the first line of its description."""
    enabled = [item for item, on in overview if on]
    if not enabled:
        return _("No tools are enabled in this chat.")
    lines = [_("Tools I can use in this chat:")]
    for item in enabled:
        summary = item.description.strip().splitlines()[0] if item.description.strip() else ""
        lines.append(
            _("• {tool} (asks before acting): {summary}", tool=item.name, summary=summary)
            if item.side_effect
            else _("• {tool}: {summary}", tool=item.name, summary=summary)
        )
    return "\n".join(lines)


async def run(
    desk: Desk,
    style: CommandStyle,
    message: IncomingMessage,
    name: str,
    argument: str = "",
    *,
    ask: AskPlatform,
    where: Hashable = "",
) -> Reply:
    """Answer the command `name` (its words after the name in `argument`) sent as
    `message`; `ask` is the platform's admin question for `/tools rule`, cached per
    `where`. An unknown name answers with the help."""
    name = name.lower()
    if name in ("help", "start"):
        return Reply(help_text(style))
    if name == "reset":
        if style.threads_are_conversations and message.chat.kind is not ChatKind.DM:
            return Reply(_(RESET_IN_CHANNEL))
        if await desk.reset(message):
            return Reply(_("Started a new conversation."))
        return Reply(_("There was nothing to reset: your next message starts a new conversation."))
    if name == "language":
        return Reply(await desk.language_text(message.user, argument))
    if name == "memory":
        return Reply(await desk.memory_text(message))
    if name == "forget":
        return Reply(await desk.forget_text(message, argument))
    if name == "provider":
        return Reply(await provider_text(desk, style, message, argument, ask=ask, where=where))
    if name == "tools":
        words = argument.split()
        answer = await approval_command(
            desk, message.user, message.chat, words, ask=ask, where=where
        )
        if answer is not None:
            return Reply(answer)
        overview = await desk.tool_overview(message)
        grants = await grants_text(desk, message.user)
        text = "\n\n".join(filter(None, [tools_text(overview), grants]))
        return Reply(text, tools=overview, grants=grants)
    return Reply(
        _(
            "I don't know {command}.\n{help}",
            command=style.written(name, ""),
            help=help_text(style),
        )
    )


async def provider_text(
    desk: Desk,
    style: CommandStyle,
    message: IncomingMessage,
    argument: str,
    *,
    ask: AskPlatform,
    where: Hashable = "",
) -> str:
    """/provider: which provider answers this chat, and the names there are;
    `/provider <name>` (admins) makes that one answer here, `/provider default` the
    default again. Unknown names are refused with the known ones."""
    names = desk.providers
    if not names:
        return _(
            "This bot has one model provider ({model}): there is nothing to choose. "
            "Operators can name several in a providers file.",
            model=desk.model,
        )
    word = argument.strip()
    if word:
        chosen = None if word.lower() == "default" else word
        refusal = await desk.set_provider(message.user, message.chat, chosen, ask=ask, where=where)
        if refusal:
            return refusal
        if chosen is None:
            return _(
                "This chat is answered by the default provider again ({provider}).",
                provider=names[0],
            )
        return _("This chat is now answered by {provider}.", provider=chosen)
    provider, model = await desk.provider_here(message.chat)
    lines = [
        _("This chat is answered by {provider}, model {model}.", provider=provider, model=model)
        if model
        else _("This chat is answered by {provider}.", provider=provider),
        _(
            "Providers: {names} ({default} is the default).",
            names=", ".join(names),
            default=names[0],
        ),
        _(
            "Admins choose one with {choose}, or {default} for the default.",
            choose=style.written("provider", names[-1]),
            default=style.written("provider", "default"),
        ),
    ]
    return "\n".join(lines)
