"""Vectors still to write or remove (the outbox the reconciler drains); client vectors.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # a client-supplied vector is canonical too: the reconciler re-indexes it, not the text
    op.add_column("memories", sa.Column("vector", postgresql.ARRAY(sa.REAL), nullable=True))
    op.create_table(
        "pending_vectors",
        sa.Column("namespace", sa.Text, nullable=False),
        sa.Column("coord", sa.Text, nullable=False),
        # the memory version whose vector is due; 0 = the vector must go
        sa.Column("version", sa.BigInteger, nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("last_error", sa.Text, nullable=True),
        sa.Column(
            "enqueued_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.PrimaryKeyConstraint("namespace", "coord", name="pending_vectors_pkey"),
    )
    op.create_index("pending_vectors_enqueued_idx", "pending_vectors", ["enqueued_at"])


def downgrade() -> None:
    op.drop_index("pending_vectors_enqueued_idx", table_name="pending_vectors")
    op.drop_table("pending_vectors")
    op.drop_column("memories", "vector")
