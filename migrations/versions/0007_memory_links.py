"""The memory graph: links between memories of one namespace.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "memory_links",
        sa.Column("namespace", sa.Text, nullable=False),
        sa.Column("from_coord", sa.Text, nullable=False),
        sa.Column("to_coord", sa.Text, nullable=False),
        sa.Column("link_type", sa.Text, nullable=False),
        sa.Column("strength", sa.Float, nullable=False, server_default="1"),
        sa.Column("metadata", postgresql.JSONB, nullable=False, server_default="{}"),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            nullable=False,
            server_default=sa.func.now(),
        ),
        sa.PrimaryKeyConstraint(
            "namespace", "from_coord", "to_coord", "link_type", name="memory_links_pkey"
        ),
        sa.ForeignKeyConstraint(
            ["namespace", "from_coord"],
            ["memories.namespace", "memories.coord"],
            name="memory_links_namespace_from_coord_fkey",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["namespace", "to_coord"],
            ["memories.namespace", "memories.coord"],
            name="memory_links_namespace_to_coord_fkey",
            ondelete="CASCADE",
        ),
    )
    op.create_index("memory_links_to_idx", "memory_links", ["namespace", "to_coord"])


def downgrade() -> None:
    op.drop_index("memory_links_to_idx", table_name="memory_links")
    op.drop_table("memory_links")
