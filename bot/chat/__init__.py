"""The chat work, written once for every platform.

What a person does in a chat that is not a turn lives here, so Slack, Telegram and the
terminal answer it with the same words: the commands (/help /reset /tools /memory /forget
/language, `commands.run`) with each platform's `CommandStyle` (how a command is written
there and how the bot is reached) and the `Reply` an adapter only renders (text, and for
/tools the switches it draws as a keyboard or Block Kit).
"""

from bot.chat.commands import (
    COMMANDS,
    NAMES,
    Command,
    CommandStyle,
    Reply,
    help_lines,
    help_text,
    run,
    tools_text,
)

__all__ = [
    "COMMANDS",
    "NAMES",
    "Command",
    "CommandStyle",
    "Reply",
    "help_lines",
    "help_text",
    "run",
    "tools_text",
]
