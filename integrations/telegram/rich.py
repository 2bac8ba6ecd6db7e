"""Rich messages (Bot API 10.1): the model's Markdown as Telegram renders it itself.

`sendRichMessage` and `editMessageText(rich_message=...)` take an InputRichMessage with
exactly one of `markdown`, `html` or `blocks`; Telegram parses headings, tables, lists
and code on its side, so the answer goes out as the model wrote it. python-telegram-bot
22.8 types the API up to 10.0 only: these are raw calls through `Bot.do_api_request`.

`split_rich` cuts an answer longer than one rich message between blocks (paragraphs,
whole code fences, whole tables), never inside a code fence or a table; a single block
larger than a message falls back to `split_markdown`'s cuts. The limits (32,768
characters, 500 blocks) come from third-party libraries, not the Bot API pages: both are
kept with room to spare, and a refusal falls back to the HTML path anyway.
"""

from __future__ import annotations

import warnings
from typing import Any

from telegram import Bot, Message, ReplyParameters
from telegram.warnings import PTBUserWarning

from integrations.telegram.formatting import split_markdown, utf16_len

RICH_LIMIT = 32_000  # characters per rich message (32,768 UNVERIFIED), with room
RICH_BLOCKS = 450  # blocks per rich message (500 UNVERIFIED), with room
_JOIN = "\n\n"


def _blocks(text: str) -> list[str]:
    """`text` as the blocks Telegram would see, each kept whole: a code fence, a table
    (consecutive `|` lines), or a paragraph (lines up to a blank line)."""
    blocks: list[str] = []
    lines: list[str] = []
    fence = False
    table = False

    def close() -> None:
        nonlocal table
        if lines:
            blocks.append("\n".join(lines))
            lines.clear()
        table = False

    for line in text.splitlines():
        if fence:
            lines.append(line)
            if line.strip().startswith("```"):
                fence = False
                close()
            continue
        if line.strip().startswith("```"):
            close()
            lines.append(line)
            fence = True
            continue
        is_row = line.lstrip().startswith("|")
        if not line.strip():
            close()
        elif is_row != table:
            close()
            lines.append(line)
            table = is_row
        else:
            lines.append(line)
    close()
    return [block for block in blocks if block.strip()]


def _weight(block: str) -> int:
    """Telegram's block count of one of `_blocks`'s blocks, rounded up: a code fence is
    one block, every other line (table row, list item) may be one."""
    if block.lstrip().startswith("```"):
        return 1
    return max(1, sum(1 for line in block.splitlines() if line.strip()))


def split_rich(text: str, limit: int = RICH_LIMIT, max_blocks: int = RICH_BLOCKS) -> list[str]:
    """Cut `text` into rich messages of at most `limit` UTF-16 units and `max_blocks`
    blocks, between blocks; one message if it fits."""
    text = text.strip()
    if not text:
        return []
    if utf16_len(text) <= limit and _weight_of(text) <= max_blocks:
        return [text]
    parts: list[str] = []
    current: list[str] = []
    size = weight = 0
    for block in _blocks(text):
        pieces = split_markdown(block, limit) if utf16_len(block) > limit else [block]
        for piece in pieces:
            piece_size, piece_weight = utf16_len(piece), _weight(piece)
            if current and (
                size + len(_JOIN) + piece_size > limit or weight + piece_weight > max_blocks
            ):
                parts.append(_JOIN.join(current))
                current, size, weight = [], 0, 0
            current.append(piece)
            size += piece_size + (len(_JOIN) if len(current) > 1 else 0)
            weight += piece_weight
    if current:
        parts.append(_JOIN.join(current))
    return parts


def _weight_of(text: str) -> int:
    return sum(_weight(block) for block in _blocks(text))


# PTB warns when a raw call names a method it knows: `rich_message` on editMessageText
# is what it does not know. Only that one notice is silenced (set once, at import:
# `catch_warnings` around an await is not safe with concurrent tasks).
warnings.filterwarnings("ignore", r"Please use 'Bot\.editMessageText' instead", PTBUserWarning)


async def _raw(bot: Bot, method: str, kwargs: dict[str, Any], returns: type[Message] | None) -> Any:
    return await bot.do_api_request(method, api_kwargs=kwargs, return_type=returns)


async def send_rich(
    bot: Bot,
    chat_id: int,
    markdown: str,
    *,
    thread_id: int | None = None,
    reply_to: int | None = None,
) -> Message:
    kwargs: dict[str, Any] = {"chat_id": chat_id, "rich_message": {"markdown": markdown}}
    if thread_id is not None:
        kwargs["message_thread_id"] = thread_id
    if reply_to:
        kwargs["reply_parameters"] = ReplyParameters(reply_to, allow_sending_without_reply=True)
    message: Message = await _raw(bot, "sendRichMessage", kwargs, Message)
    return message


async def edit_rich(bot: Bot, chat_id: int, message_id: int, markdown: str) -> None:
    kwargs = {"chat_id": chat_id, "message_id": message_id, "rich_message": {"markdown": markdown}}
    await _raw(bot, "editMessageText", kwargs, None)


async def send_rich_draft(
    bot: Bot, chat_id: int, draft_id: int, html: str, *, thread_id: int | None = None
) -> None:
    """A private chat's draft as a rich message in HTML (the form that carries a
    `<tg-thinking>` block, allowed in drafts only)."""
    kwargs: dict[str, Any] = {
        "chat_id": chat_id,
        "draft_id": draft_id,
        "rich_message": {"html": html},
    }
    if thread_id is not None:
        kwargs["message_thread_id"] = thread_id
    await _raw(bot, "sendRichMessageDraft", kwargs, None)
