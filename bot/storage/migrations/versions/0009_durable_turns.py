"""durable turns: the turns journal, the side-effecting tool call journal, messages.turn_id

Revision ID: 0009
Revises: 0015
Create Date: 2026-12-01 12:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "turns",
        sa.Column("id", _BIG_ID, autoincrement=True, nullable=False),
        sa.Column("platform", sa.String(length=32), nullable=False),
        sa.Column("bot", sa.String(length=64), nullable=False),
        sa.Column("event_id", sa.String(length=255), nullable=False),
        sa.Column("holder", sa.String(length=128), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("chat_id", sa.String(length=128), nullable=False),
        sa.Column("chat_kind", sa.String(length=16), nullable=False),
        sa.Column("chat_title", sa.String(length=255), nullable=False),
        sa.Column("thread_key", sa.String(length=128), nullable=False),
        sa.Column("user_id", sa.String(length=128), nullable=False),
        sa.Column("user_name", sa.String(length=255), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("platform_message_id", sa.String(length=128), nullable=False),
        sa.Column("reply", sa.JSON(), nullable=False),
        sa.Column("preview", sa.String(length=128), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("platform", "bot", "event_id"),
    )
    op.create_index("ix_turns_state_holder", "turns", ["state", "holder"])
    op.create_table(
        "tool_call_journal",
        sa.Column("turn_id", _BIG_ID, nullable=False),
        sa.Column("round", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("tool", sa.String(length=128), nullable=False),
        sa.Column("arguments_digest", sa.String(length=64), nullable=False),
        sa.Column("settled", sa.Boolean(), nullable=False),
        sa.Column("result", sa.Text(), nullable=True),
        sa.Column("is_error", sa.Boolean(), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("settled_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("turn_id", "round", "position"),
    )
    with op.batch_alter_table("messages") as batch:
        batch.add_column(sa.Column("turn_id", _BIG_ID, nullable=True))
    op.create_index("ix_messages_turn_id", "messages", ["turn_id"])


def downgrade() -> None:
    op.drop_index("ix_messages_turn_id", table_name="messages")
    with op.batch_alter_table("messages") as batch:
        batch.drop_column("turn_id")
    op.drop_table("tool_call_journal")
    op.drop_index("ix_turns_state_holder", table_name="turns")
    op.drop_table("turns")
