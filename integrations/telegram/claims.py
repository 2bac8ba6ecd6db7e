"""Claiming an update before it counts as received.

An update that asks anything of Parley is claimed in the database first: a text turn as
a durable turn (with its input and reply address: it survives this process), anything
else as an event (`processed_events`), keyed by bot because each bot's update ids are its
own. A re-delivered update, even after a restart, is then seen as taken and does nothing.

When the claim cannot be written (the database is away) after the desk's bounded retry,
`claim_update` raises: by webhook, Telegram is answered 503 and delivers the update again
(webhook.py); by long polling, PTB's `Updater` has already confirmed the update's offset,
so it is lost, after a longer retry (docs/reliability.md).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from telegram import Update

from bot.chat.desk import Desk, TurnTicket
from bot.domain import UserRef
from integrations.telegram.convert import ReadUpdate, UpdateKind
from integrations.telegram.surface import PLATFORM

# Long polling cannot ask Telegram to deliver again: the claim is tried for longer.
POLLING_PATIENCE = 30.0


@dataclass(frozen=True, slots=True)
class Claim:
    """An update's claim: `first` unless it was claimed before; a text turn's `ticket`."""

    first: bool
    ticket: TurnTicket | None = None


async def claim_update(
    desk: Desk, update: Update, read: ReadUpdate, bot_id: str, *, within: float | None = None
) -> Claim:
    """Claim `update` (read once as `read`, for bot `bot_id`); raises when the database
    does not take it within the desk's patience (or `within` seconds)."""
    patience = {} if within is None else {"within": within}
    if read.kind is UpdateKind.TURN and read.incoming and read.reply:
        ticket = await desk.claim_turn(read.incoming, bot_id, asdict(read.reply), **patience)
        return Claim(ticket is not None, ticket)
    return Claim(await desk.claim(PLATFORM, bot_id, str(update.update_id), **patience))


def reader_of(update: Update) -> UserRef | None:
    """The person an update's answer is written to (for their language), if any."""
    sender = update.effective_user
    if sender is None or sender.is_bot:
        return None
    return UserRef(PLATFORM, str(sender.id), sender.full_name, language=sender.language_code or "")
