"""Memories and their versions.

Revision ID: 0001
Revises:
Create Date: 2026-11-25
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_MEMORY_TYPE_CHECK = "memory_type IN ('episodic', 'semantic')"


def upgrade() -> None:
    op.create_table(
        "memories",
        sa.Column("namespace", sa.Text, nullable=False),
        sa.Column("coord", sa.Text, nullable=False),
        sa.Column("memory_type", sa.Text, nullable=False),
        sa.Column("payload", postgresql.JSONB, nullable=False),
        sa.Column("importance", sa.Float, nullable=False, server_default="0"),
        sa.Column("version", sa.BigInteger, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("namespace", "coord", name="memories_pkey"),
        sa.CheckConstraint(_MEMORY_TYPE_CHECK, name="memories_memory_type_check"),
    )
    op.create_index("memories_namespace_type_idx", "memories", ["namespace", "memory_type"])
    op.create_table(
        "memory_versions",
        sa.Column("namespace", sa.Text, nullable=False),
        sa.Column("coord", sa.Text, nullable=False),
        sa.Column("version", sa.BigInteger, nullable=False),
        sa.Column("memory_type", sa.Text, nullable=False),
        sa.Column("payload", postgresql.JSONB, nullable=False),
        sa.Column("importance", sa.Float, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("namespace", "coord", "version", name="memory_versions_pkey"),
        sa.CheckConstraint(_MEMORY_TYPE_CHECK, name="memory_versions_memory_type_check"),
    )


def downgrade() -> None:
    op.drop_table("memory_versions")
    op.drop_index("memories_namespace_type_idx", table_name="memories")
    op.drop_table("memories")
