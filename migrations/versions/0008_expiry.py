"""Expiry and decay: expires_at and last access on memories, per-namespace policies.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("memories", sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("memories", sa.Column("ttl_seconds", sa.BigInteger, nullable=True))
    op.add_column(
        "memories",
        sa.Column("refresh_on_read", sa.Boolean, nullable=False, server_default=sa.false()),
    )
    op.add_column("memories", sa.Column("accessed_at", sa.DateTime(timezone=True), nullable=True))
    op.create_index(
        "memories_expires_at_idx",
        "memories",
        ["expires_at"],
        postgresql_where=sa.text("expires_at IS NOT NULL"),
    )


def downgrade() -> None:
    op.drop_index("memories_expires_at_idx", table_name="memories")
    op.drop_column("memories", "accessed_at")
    op.drop_column("memories", "refresh_on_read")
    op.drop_column("memories", "ttl_seconds")
    op.drop_column("memories", "expires_at")
