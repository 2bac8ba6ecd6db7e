"""Indexes for the scheduler's pick-up and the turn prune; each email recipient's result

The scheduler asks every few seconds for pending reminders created since its last look,
and the leader's hourly prune for finished turns by age: without these indexes both scan
their whole table (tens of milliseconds at 60,000 pending reminders). `sent_emails`
gains what the mail server answered for each recipient.

Revision ID: 0018
Revises: 0016
Create Date: 2026-12-07 18:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0018"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_reminders_status_created_at", "reminders", ["status", "created_at"])
    op.create_index("ix_turns_state_updated_at", "turns", ["state", "updated_at"])
    with op.batch_alter_table("sent_emails") as batch:
        batch.add_column(
            sa.Column("recipient_results", sa.JSON(), nullable=False, server_default="{}")
        )


def downgrade() -> None:
    with op.batch_alter_table("sent_emails") as batch:
        batch.drop_column("recipient_results")
    op.drop_index("ix_turns_state_updated_at", table_name="turns")
    op.drop_index("ix_reminders_status_created_at", table_name="reminders")
