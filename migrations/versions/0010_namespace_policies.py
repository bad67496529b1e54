"""Per-namespace policies: default TTL per memory type, memory cap.

A namespace without a row (or with a NULL column) uses the service's settings
(SOMA_DEFAULT_TTL_SECONDS, SOMA_MAX_MEMORIES).

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-06
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
        "namespace_policies",
        sa.Column("namespace", sa.Text, nullable=False),
        sa.Column("episodic_ttl_seconds", sa.BigInteger, nullable=True),
        sa.Column("semantic_ttl_seconds", sa.BigInteger, nullable=True),
        sa.Column("max_memories", sa.BigInteger, nullable=True),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            nullable=False,
            server_default=sa.func.now(),
        ),
        sa.PrimaryKeyConstraint("namespace", name="namespace_policies_pkey"),
        sa.CheckConstraint(
            "episodic_ttl_seconds > 0 AND semantic_ttl_seconds > 0 AND max_memories > 0",
            name="namespace_policies_positive_check",
        ),
    )


def downgrade() -> None:
    op.drop_table("namespace_policies")
