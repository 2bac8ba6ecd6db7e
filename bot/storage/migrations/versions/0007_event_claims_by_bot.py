"""processed_events keyed by bot: (platform, bot, event_id)

Two bots on one database (or Telegram's re-randomised update ids) could collide on
(platform, event_id). Rows claimed before this revision keep bot "" and age out with
the retention period (PARLEY_EVENT_RETENTION_HOURS).

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01 10:30:00
"""

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLE = "processed_events"
# PostgreSQL's name for the primary key 0001 created unnamed.
PRIMARY_KEY = "processed_events_pkey"
INDEX = "ix_processed_events_created_at"


def upgrade() -> None:
    _rekey(["platform", "bot", "event_id"], with_bot=True)


def downgrade() -> None:
    # Claims of different bots for one id would break the old key: keep one of each.
    op.execute(
        "DELETE FROM processed_events WHERE EXISTS (SELECT 1 FROM processed_events AS other "
        "WHERE other.platform = processed_events.platform "
        "AND other.event_id = processed_events.event_id AND other.bot < processed_events.bot)"
    )
    _rekey(["platform", "event_id"], with_bot=False)


def _rekey(key: list[str], *, with_bot: bool) -> None:
    if op.get_bind().dialect.name == "postgresql":
        if with_bot:
            op.add_column(
                TABLE, sa.Column("bot", sa.String(length=64), nullable=False, server_default="")
            )
        op.drop_constraint(PRIMARY_KEY, TABLE, type_="primary")
        op.create_primary_key(PRIMARY_KEY, TABLE, key)
        if with_bot:  # the default only filled the rows already there
            op.alter_column(TABLE, "bot", server_default=None)
        else:
            op.drop_column(TABLE, "bot")
        return
    # SQLite cannot change a primary key in place: build the table anew and copy the rows
    # (what batch mode does, without its warning about the differing key).
    columns: list[sa.Column[Any]] = [
        sa.Column("platform", sa.String(length=32), nullable=False),
        sa.Column("event_id", sa.String(length=255), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    ]
    if with_bot:
        columns.insert(1, sa.Column("bot", sa.String(length=64), nullable=False))
    op.create_table("_new_processed_events", *columns, sa.PrimaryKeyConstraint(*key))
    op.execute(
        "INSERT INTO _new_processed_events (platform, bot, event_id, created_at) "
        "SELECT platform, '', event_id, created_at FROM processed_events"
        if with_bot
        else "INSERT INTO _new_processed_events (platform, event_id, created_at) "
        "SELECT platform, event_id, created_at FROM processed_events"
    )
    op.drop_index(INDEX, table_name=TABLE)
    op.drop_table(TABLE)
    op.rename_table("_new_processed_events", TABLE)
    op.create_index(INDEX, TABLE, ["created_at"], unique=False)
