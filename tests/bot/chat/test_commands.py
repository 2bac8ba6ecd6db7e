"""The chat commands' words exist once (bot/chat/commands.py): every platform's /help is
rendered from the one table, each in the way that platform writes a command."""

from __future__ import annotations

import pytest

from bot.chat import COMMANDS, CommandStyle, help_lines, help_text
from bot.i18n import use_locale
from integrations.console import STYLE as CONSOLE
from integrations.slack.commands import style_of
from integrations.telegram.platform import STYLE as TELEGRAM

SURFACES = {"telegram": TELEGRAM, "slack": style_of("/parley"), "console": CONSOLE}
LISTED = ["reset", "tools", "memory", "language", "provider", "help"]


@pytest.mark.parametrize("locale", ["en", "zh_CN"])
@pytest.mark.parametrize("surface", sorted(SURFACES))
def test_help_on_every_surface_is_the_one_tables_lines(surface: str, locale: str) -> None:
    style = SURFACES[surface]
    assert sorted(c.name for c in COMMANDS if c.help is not None) == sorted(LISTED)
    with use_locale(locale):
        shown = help_text(style)
        lines = help_lines(style)
    assert len(lines) == len(LISTED)
    for name, line in zip(LISTED, lines, strict=True):
        assert line in shown
        # Each line starts with its command, written this platform's way.
        assert line.startswith(style.written(name, "").rstrip("`"))


def test_each_platform_writes_the_commands_its_own_way() -> None:
    telegram, slack, console = (help_text(SURFACES[n]) for n in ("telegram", "slack", "console"))
    assert "\n/reset starts a new conversation (the old one is kept)\n" in telegram
    assert "/help: this help" in telegram
    assert "`/parley reset` starts a new conversation" in slack
    assert "`/parley forget 3` (or `/parley forget all`) forgets it" in slack
    assert console.startswith("Commands: /reset starts a new conversation")
    assert "\n" not in console and console.endswith("Ctrl-D quits.")
    # The same sentence, once, behind all three.
    for shown in (telegram, slack, console):
        assert shown.count("lists what you asked me to remember") == 1
    custom = CommandStyle("{commands}", written=lambda name, argument: f"!{name}")
    first = help_text(custom).splitlines()[0]
    assert first == "!reset starts a new conversation (the old one is kept)"


def test_help_reads_chinese_on_every_surface() -> None:
    with use_locale("zh_CN"):
        shown = {name: help_text(style) for name, style in SURFACES.items()}
    assert "/reset 开始新对话（旧对话会保留）" in shown["telegram"]
    assert "`/parley reset` 开始新对话" in shown["slack"]
    assert shown["console"].startswith("命令：/reset 开始新对话")
