"""budget_reservations: token estimates of admitted turns, held until they settle

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-01 13:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "budget_reservations",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("channel_id", sa.Integer(), nullable=False),
        sa.Column("tokens", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("settled_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"]),
        sa.ForeignKeyConstraint(["channel_id"], ["channels.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "ix_budget_reservations_user_id_created_at",
        "budget_reservations",
        ["user_id", "created_at"],
    )
    op.create_index(
        "ix_budget_reservations_channel_id_settled_at",
        "budget_reservations",
        ["channel_id", "settled_at"],
    )
    op.create_index("ix_budget_reservations_expires_at", "budget_reservations", ["expires_at"])


def downgrade() -> None:
    op.drop_index("ix_budget_reservations_expires_at", table_name="budget_reservations")
    op.drop_index("ix_budget_reservations_channel_id_settled_at", table_name="budget_reservations")
    op.drop_index("ix_budget_reservations_user_id_created_at", table_name="budget_reservations")
    op.drop_table("budget_reservations")
