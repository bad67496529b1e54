"""The PostgreSQL schema, declared once: what the Alembic migrations build, as SQLAlchemy metadata.

Alembic compares this with a migrated database (``alembic check``, ``alembic revision
--autogenerate``), so a schema change starts here and the migration is generated from it. The
service itself never reads these objects: its SQL goes through asyncpg (``postgres.py``,
``outbox.py``) and the tables are created by migrations only.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

# Constraint names follow PostgreSQL's own defaults, as the migrations spell them.
metadata = sa.MetaData()

_MEMORY_TYPE_CHECK = "memory_type IN ('episodic', 'semantic')"

memories = sa.Table(
    "memories",
    metadata,
    sa.Column("namespace", sa.Text, nullable=False),
    sa.Column("coord", sa.Text, nullable=False),
    sa.Column("memory_type", sa.Text, nullable=False),
    sa.Column("payload", postgresql.JSONB, nullable=False),
    sa.Column("importance", sa.Float, nullable=False, server_default="0"),
    # the memory's current version; every write increments it, history is in memory_versions
    sa.Column("version", sa.BigInteger, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    # a client-supplied vector is canonical too: the reconciler re-indexes it, not the text
    sa.Column("vector", postgresql.ARRAY(sa.REAL), nullable=True),
    sa.PrimaryKeyConstraint("namespace", "coord", name="memories_pkey"),
    sa.CheckConstraint(_MEMORY_TYPE_CHECK, name="memories_memory_type_check"),
    sa.Index("memories_namespace_type_idx", "namespace", "memory_type"),
)

memory_versions = sa.Table(
    "memory_versions",
    metadata,
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

# The vector outbox the reconciler drains: one entry per memory whose vector is still owed.
pending_vectors = sa.Table(
    "pending_vectors",
    metadata,
    sa.Column("namespace", sa.Text, nullable=False),
    sa.Column("coord", sa.Text, nullable=False),
    # the memory version whose vector is due; 0 = the vector must go
    sa.Column("version", sa.BigInteger, nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("last_error", sa.Text, nullable=True),
    sa.Column(
        "enqueued_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
    ),
    # NULL: due once its grace period is over; else not before this time (per-entry backoff)
    sa.Column("retry_at", sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint("namespace", "coord", name="pending_vectors_pkey"),
    sa.Index("pending_vectors_enqueued_idx", "enqueued_at"),
)

# How far the Redis-only journal has been replayed into PostgreSQL.
journal_replay = sa.Table(
    "journal_replay",
    metadata,
    sa.Column("journal", sa.Text, nullable=False),
    # the last Redis stream id applied; replay resumes after it, so nothing applies twice
    sa.Column("last_id", sa.Text, nullable=False),
    sa.PrimaryKeyConstraint("journal", name="journal_replay_pkey"),
)

# Minted API tokens: only the SHA-256 digest of each secret is kept.
api_tokens = sa.Table(
    "api_tokens",
    metadata,
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
