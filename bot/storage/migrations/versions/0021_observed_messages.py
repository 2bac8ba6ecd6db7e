"""Observed group context: group messages not addressed to Parley, kept opt-in

`PARLEY_GROUP_CONTEXT_MESSAGES` (0: off) keeps the last N per group for at most
`PARLEY_GROUP_CONTEXT_HOURS`; the next turn addressed to Parley there sees them. One
message once (platform, chat, message id); read newest first per chat and topic; pruned
by age.

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-08 00:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0021"
down_revision: str | None = "0020"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "observed_messages",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("platform", sa.String(length=32), nullable=False),
        sa.Column("chat_id", sa.String(length=128), nullable=False),
        sa.Column("thread_key", sa.String(length=128), nullable=False),
        sa.Column("message_id", sa.String(length=128), nullable=False),
        sa.Column("author_id", sa.String(length=128), nullable=False),
        sa.Column("author", sa.String(length=255), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("observed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("platform", "chat_id", "message_id"),
    )
    op.create_index(
        "ix_observed_messages_chat",
        "observed_messages",
        ["platform", "chat_id", "thread_key", "id"],
    )
    op.create_index("ix_observed_messages_observed_at", "observed_messages", ["observed_at"])


def downgrade() -> None:
    op.drop_index("ix_observed_messages_observed_at", table_name="observed_messages")
    op.drop_index("ix_observed_messages_chat", table_name="observed_messages")
    op.drop_table("observed_messages")
