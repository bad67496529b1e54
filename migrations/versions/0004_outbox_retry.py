"""Per-entry retry times in the vector outbox, so one failing entry backs off alone.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # NULL: due as soon as its grace period is over; else not before this time. An entry whose
    # attempts reach the reconciler's limit is parked (never due) until its memory is written again.
    op.add_column(
        "pending_vectors", sa.Column("retry_at", sa.DateTime(timezone=True), nullable=True)
    )


def downgrade() -> None:
    op.drop_column("pending_vectors", "retry_at")
