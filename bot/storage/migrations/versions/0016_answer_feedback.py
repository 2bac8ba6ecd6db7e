"""answer_feedback: thumbs up or down on an answer, once per answer and person;
channel_prompts: suggested prompts per channel

Revision ID: 0016
Revises: 0017
Create Date: 2026-12-01 16:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0016"
down_revision: str | None = "0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "answer_feedback",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("platform", sa.String(length=32), nullable=False),
        sa.Column("chat", sa.String(length=128), nullable=False),
        sa.Column("message_ref", sa.String(length=128), nullable=False),
        sa.Column("voter", sa.String(length=160), nullable=False),
        sa.Column("helpful", sa.Boolean(), nullable=False),
        sa.Column("answer", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("platform", "chat", "message_ref", "voter"),
    )
    op.create_index(
        "ix_answer_feedback_platform_chat_created_at",
        "answer_feedback",
        ["platform", "chat", "created_at"],
    )
    op.create_table(
        "channel_prompts",
        sa.Column("channel_id", sa.Integer(), nullable=False),
        sa.Column("prompts", sa.JSON(), nullable=False),
        sa.Column("changed_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["channel_id"], ["channels.id"]),
        sa.PrimaryKeyConstraint("channel_id"),
    )


def downgrade() -> None:
    op.drop_table("channel_prompts")
    op.drop_index("ix_answer_feedback_platform_chat_created_at", table_name="answer_feedback")
    op.drop_table("answer_feedback")
