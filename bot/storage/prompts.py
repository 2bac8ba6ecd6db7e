"""`PromptStore`: the suggested prompts admins set per channel (title and message each)."""

from __future__ import annotations

from sqlmodel import select

from bot.domain import ChatRef
from bot.i18n import _
from bot.storage.database import Database
from bot.storage.models import Channel, ChannelPrompts, utcnow

MAX_PROMPTS = 4  # Slack shows at most four suggested prompts
TITLE_CHARS = 100
MESSAGE_CHARS = 500


class BadPrompts(ValueError):
    """Prompts an admin typed that cannot be shown; the message says why."""


def parse_prompts(text: str) -> list[dict[str, str]]:
    """One prompt per line, `title | message` (a line without `|` is both); empty lines
    are skipped. Raises `BadPrompts` for too many or too long ones."""
    prompts = []
    for line in text.splitlines():
        if not line.strip():
            continue
        title, bar, message = line.partition("|")
        title, message = title.strip(), (message if bar else title).strip()
        if not title or not message:
            raise BadPrompts(
                _("A prompt needs a title and a message: {line}", line=line.strip()[:80])
            )
        if len(title) > TITLE_CHARS or len(message) > MESSAGE_CHARS:
            raise BadPrompts(
                _(
                    "A prompt's title may have {title} characters and its message {message}.",
                    title=TITLE_CHARS,
                    message=MESSAGE_CHARS,
                )
            )
        prompts.append({"title": title, "message": message})
    if len(prompts) > MAX_PROMPTS:
        raise BadPrompts(_("At most {count} prompts.", count=MAX_PROMPTS))
    return prompts


class PromptStore:
    def __init__(self, database: Database) -> None:
        self.db = database

    async def of_channel(self, channel_id: int) -> list[dict[str, str]]:
        async with self.db.read() as session:
            row = await session.get(ChannelPrompts, channel_id)
        return list(row.prompts) if row is not None else []

    async def of_chat(self, chat: ChatRef) -> list[dict[str, str]]:
        """The chat's prompts; empty when none were set (or the chat is unknown)."""
        async with self.db.read() as session:
            rows = await session.exec(
                select(ChannelPrompts.prompts)
                .join(Channel, Channel.id == ChannelPrompts.channel_id)  # type: ignore[arg-type]
                .where(
                    Channel.platform == chat.platform,
                    Channel.platform_chat_id == chat.platform_chat_id,
                )
            )
            found = rows.first()
        return list(found) if found else []

    async def set(self, channel_id: int, prompts: list[dict[str, str]]) -> None:
        """Replace the channel's prompts (empty: back to the defaults)."""
        async with self.db.write() as session:
            row = await session.get(ChannelPrompts, channel_id)
            if not prompts:
                if row is not None:
                    await session.delete(row)
                return
            if row is None:
                session.add(ChannelPrompts(channel_id=channel_id, prompts=prompts))
            else:
                row.prompts, row.changed_at = prompts, utcnow()
                session.add(row)
