"""Row-level security policies that confine a statement to one namespace.

Each table that holds a namespace's memories gets a policy: a row is visible (and may be
written) when the transaction names no namespace (``soma.namespace`` unset, empty or ``*``),
or names the row's. The policies bind only once row security is enabled on the tables, which
the service does at startup when ``SOMA_POSTGRES_ROW_SECURITY`` is on (see ARCHITECTURE.md);
until then they change nothing.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-07
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = ("memories", "memory_versions", "memory_links", "pending_vectors")
CONFINED = "coalesce(nullif(current_setting('soma.namespace', true), ''), '*') IN ('*', namespace)"


def upgrade() -> None:
    for table in TABLES:
        op.execute(
            f"CREATE POLICY namespace_confinement ON {table} USING ({CONFINED}) "
            f"WITH CHECK ({CONFINED})"
        )


def downgrade() -> None:
    for table in TABLES:
        op.execute(f"ALTER TABLE {table} NO FORCE ROW LEVEL SECURITY")
        op.execute(f"ALTER TABLE {table} DISABLE ROW LEVEL SECURITY")
        op.execute(f"DROP POLICY namespace_confinement ON {table}")
