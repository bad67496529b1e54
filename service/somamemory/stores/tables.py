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
    # expiry (NULL: never); reads filter on it, the sweeper deletes past it (expiry.py)
    sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("ttl_seconds", sa.BigInteger, nullable=True),  # kept for refresh_on_read
    sa.Column("refresh_on_read", sa.Boolean, nullable=False, server_default=sa.false()),
    # the last read, written in batches (decay.py); decay counts from it or updated_at
    sa.Column("accessed_at", sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint("namespace", "coord", name="memories_pkey"),
    sa.CheckConstraint(_MEMORY_TYPE_CHECK, name="memories_memory_type_check"),
    sa.Index("memories_namespace_type_idx", "namespace", "memory_type"),
    sa.Index(
        "memories_expires_at_idx",
        "expires_at",
        postgresql_where=sa.text("expires_at IS NOT NULL"),
    ),
    # keyword search: full text over every string of the payload (stores/postgres_keyword.py)
    sa.Index(
        "memories_payload_fts_idx",
        sa.text("jsonb_to_tsvector('english'::regconfig, payload, '[\"string\"]'::jsonb)"),
        postgresql_using="gin",
    ),
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
    # set on the version a delete ended: the memory was gone from then on (time travel reads
    # answer 404 after it); such histories are purged after the retention period (history.py)
    sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint("namespace", "coord", "version", name="memory_versions_pkey"),
    sa.CheckConstraint(_MEMORY_TYPE_CHECK, name="memory_versions_memory_type_check"),
    # the purge's oldest deletions first; only deleted histories are in it
    sa.Index(
        "memory_versions_deleted_idx",
        "deleted_at",
        postgresql_where=sa.text("deleted_at IS NOT NULL"),
    ),
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

# The memory graph: typed, directed links between two memories of one namespace. One namespace
# column and a foreign key to each end keep links inside their namespace, and deleting a memory
# deletes its links (ON DELETE CASCADE, in the delete's own statement).
memory_links = sa.Table(
    "memory_links",
    metadata,
    sa.Column("namespace", sa.Text, nullable=False),
    sa.Column("from_coord", sa.Text, nullable=False),
    sa.Column("to_coord", sa.Text, nullable=False),
    sa.Column("link_type", sa.Text, nullable=False),
    sa.Column("strength", sa.Float, nullable=False, server_default="1"),
    sa.Column("metadata", postgresql.JSONB, nullable=False, server_default="{}"),
    sa.Column(
        "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
    ),
    # the primary key's index serves outgoing walks (namespace, from_coord)
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
    # incoming walks, and the cascade of a deleted memory's incoming links
    sa.Index("memory_links_to_idx", "namespace", "to_coord"),
)

# Per-namespace policies (policies.py): a NULL column, or no row, falls back to the settings
# (SOMA_DEFAULT_TTL_SECONDS, SOMA_MAX_MEMORIES).
namespace_policies = sa.Table(
    "namespace_policies",
    metadata,
    sa.Column("namespace", sa.Text, nullable=False),
    sa.Column("episodic_ttl_seconds", sa.BigInteger, nullable=True),
    sa.Column("semantic_ttl_seconds", sa.BigInteger, nullable=True),
    sa.Column("max_memories", sa.BigInteger, nullable=True),
    sa.Column(
        "updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
    ),
    sa.PrimaryKeyConstraint("namespace", name="namespace_policies_pkey"),
    sa.CheckConstraint(
        "episodic_ttl_seconds > 0 AND semantic_ttl_seconds > 0 AND max_memories > 0",
        name="namespace_policies_positive_check",
    ),
)
