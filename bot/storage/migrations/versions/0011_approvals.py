"""approvals: questions to askers, "always allow" grants, admins' rules per channel and tool

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-01 13:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _id() -> sa.Column[int]:
    return sa.Column(
        "id",
        sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
        autoincrement=True,
        nullable=False,
    )


def upgrade() -> None:
    op.create_table(
        "approval_requests",
        _id(),
        sa.Column("token", sa.String(length=32), nullable=False),
        sa.Column("asker", sa.String(length=160), nullable=False),
        sa.Column("place", sa.String(length=160), nullable=False),
        sa.Column("channel_id", sa.Integer(), nullable=False),
        sa.Column("tool", sa.String(length=64), nullable=False),
        sa.Column("call", sa.Text(), nullable=False),
        sa.Column("full_text", sa.Text(), nullable=False),
        sa.Column("may_remember", sa.Boolean(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("answered_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("token"),
    )
    op.create_index("ix_approval_requests_expires_at", "approval_requests", ["expires_at"])
    op.create_table(
        "approval_grants",
        _id(),
        sa.Column("asker", sa.String(length=160), nullable=False),
        sa.Column("place", sa.String(length=160), nullable=False),
        sa.Column("channel_id", sa.Integer(), nullable=False),
        sa.Column("tool", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("asker", "channel_id", "tool"),
    )
    op.create_table(
        "approval_rules",
        _id(),
        sa.Column("channel_id", sa.Integer(), nullable=False),
        sa.Column("tool", sa.String(length=64), nullable=False),
        sa.Column("mode", sa.String(length=16), nullable=False),
        sa.Column("set_by", sa.String(length=160), nullable=False),
        sa.Column("set_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("channel_id", "tool"),
    )


def downgrade() -> None:
    op.drop_table("approval_rules")
    op.drop_table("approval_grants")
    op.drop_index("ix_approval_requests_expires_at", table_name="approval_requests")
    op.drop_table("approval_requests")
