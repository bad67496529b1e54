"""How far the Redis-only journal has been replayed into PostgreSQL.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "journal_replay",
        sa.Column("journal", sa.Text, primary_key=True),
        # the last Redis stream id applied; replay resumes after it, so nothing applies twice
        sa.Column("last_id", sa.Text, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("journal_replay")
