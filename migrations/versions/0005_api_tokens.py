"""Minted API tokens: scoped to namespaces and a role, stored as digests.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "api_tokens",
        sa.Column("id", sa.Text, nullable=False),
        sa.Column("digest", postgresql.BYTEA, nullable=False),
        sa.Column("role", sa.Text, nullable=False),
        sa.Column("namespaces", postgresql.ARRAY(sa.Text), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("description", sa.Text, nullable=True),
        sa.PrimaryKeyConstraint("id", name="api_tokens_pkey"),
        sa.UniqueConstraint("digest", name="api_tokens_digest_key"),
        sa.CheckConstraint("role IN ('read', 'write', 'admin')", name="api_tokens_role_check"),
    )


def downgrade() -> None:
    op.drop_table("api_tokens")
