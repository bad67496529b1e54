"""Keyword search: full-text over the payload's text, with a GIN index.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


# All string values of the payload, at any depth, under an explicit configuration (immutable, so
# indexable); keyword search spells the same expression (stores/postgres_keyword.py).
DOCUMENT = "jsonb_to_tsvector('english'::regconfig, payload, '[\"string\"]'::jsonb)"


def upgrade() -> None:
    op.create_index(
        "memories_payload_fts_idx",
        "memories",
        [sa.text(DOCUMENT)],
        postgresql_using="gin",
    )


def downgrade() -> None:
    op.drop_index("memories_payload_fts_idx", table_name="memories")
