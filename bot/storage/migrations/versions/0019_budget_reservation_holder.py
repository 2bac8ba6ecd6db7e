"""Budget reservations name the process that holds them

A reservation of a turn whose process died (kill -9) held the user's budget and turns in
flight until it expired; with `holder` (the process's lease) the sweep that resumes the
turn releases it at once.

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-07 19:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0019"
down_revision: str | None = "0018"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("budget_reservations") as batch:
        batch.add_column(sa.Column("holder", sa.String(length=128), nullable=True))
        batch.create_index("ix_budget_reservations_holder", ["holder"])


def downgrade() -> None:
    with op.batch_alter_table("budget_reservations") as batch:
        batch.drop_index("ix_budget_reservations_holder")
        batch.drop_column("holder")
