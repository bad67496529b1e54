"""Time travel: a delete keeps the memory's versions and marks the last one deleted_at.

The history of a deleted memory stays for SOMA_DELETED_HISTORY_RETENTION_SECONDS, so reads
``as_of`` a moment before the delete still answer; a background purge removes it after that.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "memory_versions", sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True)
    )
    op.create_index(
        "memory_versions_deleted_idx",
        "memory_versions",
        ["deleted_at"],
        postgresql_where=sa.text("deleted_at IS NOT NULL"),
    )


def downgrade() -> None:
    # the schema before kept no history of deleted memories: drop what is kept now
    op.execute(
        "DELETE FROM memory_versions v WHERE NOT EXISTS "
        "(SELECT 1 FROM memories m WHERE m.namespace = v.namespace AND m.coord = v.coord)"
    )
    op.drop_index("memory_versions_deleted_idx", table_name="memory_versions")
    op.drop_column("memory_versions", "deleted_at")
